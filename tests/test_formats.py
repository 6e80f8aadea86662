"""The shards as training jobs read them: the `.bin`/`.idx` files through Megatron-Core's own
`IndexedDataset`, and the Parquet files (token shards, stage parts) through DuckDB, a second
Arrow consumer. Both agree with the manifest and the ledger, so the formats stay compatible
with the tools users already have."""

from __future__ import annotations

import json
import os
import random
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate import api, megatron

WORDS = ("river town market bread water light garden soil seed frost oven loaf dough salt time morning "
         "people walk buy fish fruit season heat day hills plants strong week evening").split()


def needs(module: str):
    """The dev extra's readers; missing: skipped with the reason (a failure under CI=true)."""
    try:
        return pytest.importorskip(module, reason=f"needs {module} (pip install -e '.[dev]')")
    except pytest.skip.Exception:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {module} is missing: pip install -e '.[dev]'")
        raise


@pytest.fixture(scope="module")
def run(tmp_path_factory, ray_session):
    """extract -> tokenize on a small JSONL corpus: two files, so several parts and shards."""
    tmp = tmp_path_factory.mktemp("formats")
    rng = random.Random(7)
    src = tmp / "corpus"
    src.mkdir()
    for f in range(2):
        with open(src / f"docs-{f}.jsonl", "w") as out:
            for _ in range(60):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 80))) + "."
                out.write(json.dumps({"text": text}) + "\n")
            out.write(json.dumps({"text": ""}) + "\n")  # removed by extract: a reason for DuckDB to count
    cfg = api.config({"stages": ["extract", "tokenize"], "run": {"workers": 2, "shard_mb": 0.004},
                      "tokenize": {"vocab_size": 300, "train_mb": 0.05, "shard_tokens": 2000}})
    return api.run(cfg, src, tmp / "out")


def test_megatron_core_reads_the_token_shards(run):
    needs("torch")
    with warnings.catch_warnings():  # megatron-core warns that Apex/Transformer Engine are absent
        warnings.simplefilter("ignore")
        indexed = needs("megatron.core.datasets.indexed_dataset")
    shards = run.path / "shards"
    manifest = megatron.read_manifest(shards)
    files = [f for b in manifest.buckets for f in b.files]
    assert len(files) >= 2
    for f in files:
        prefix = str(shards / f.prefix)
        assert indexed.IndexedDataset.exists(prefix)
        dataset = indexed.IndexedDataset(prefix, multimodal=False, mmap=True)
        tokens = pq.read_table(shards / f.parquet, columns=["tokens"]).column("tokens").to_pylist()
        assert len(dataset) == f.documents == len(tokens)
        assert dataset.document_indices.tolist() == list(range(len(dataset) + 1))
        assert int(dataset.sequence_lengths.sum()) == f.tokens
        for i in (0, len(dataset) // 2, len(dataset) - 1):
            assert dataset[i].tolist() == tokens[i]
            assert dataset[i][-1] == manifest.eos_id
        assert dataset[0].dtype == np.dtype(manifest.dtype)
    assert sum(f.documents for f in files) == run.stats("tokenize")["docs_out"]


def test_duckdb_reads_the_parquet_shards_and_stage_parts(run):
    duckdb = needs("duckdb")
    shards = run.path / "shards"
    manifest = megatron.read_manifest(shards)
    files = [str(shards / f.parquet) for b in manifest.buckets for f in b.files]
    docs, tokens = duckdb.sql(f"SELECT count(*), sum(len(tokens)) FROM read_parquet({files!r})").fetchall()[0]
    assert (docs, tokens) == (sum(b.documents for b in manifest.buckets), sum(b.tokens for b in manifest.buckets))

    kept = [str(p) for p in run.files("extract")]
    removed = [str(p) for p in run.files("extract", removed=True)]
    stats = run.stats("extract")
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet({kept!r})").fetchall()[0][0] == stats["docs_out"]
    by_reason = dict(duckdb.sql(f"SELECT reason, count(*) FROM read_parquet({removed!r}) GROUP BY reason").fetchall())
    assert by_reason == stats["removed"] == {"extract:empty": 2}
    # the text DuckDB reads is the text Arrow reads, byte for byte
    duck = duckdb.sql(f"SELECT id, text FROM read_parquet({kept!r}) ORDER BY id").fetchall()
    arrow = run.kept("extract", columns=["id", "text"]).sort_by("id")
    assert duck == list(zip(arrow.column("id").to_pylist(), arrow.column("text").to_pylist()))
