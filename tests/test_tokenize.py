"""The tokenize stage: exact round trips, deterministic training, and shards that an independent
reader of the MMIDIDX format agrees with; then the pipeline extract -> bucket -> tokenize."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import config, megatron, schema
from curate.stages.tokenize import bpe, shards
from curate.errors import UserError
from curate.storage import write_json as atomic_write_json
from curate.stages.tokenize import TokenizeConfig, TokenizeStage
from conftest import corpus

WORDS = ("the a cat dog sat on mat and ran fast slow house tree river city people water light time "
         "because therefore theorem proof function return value integer sum of roots equals").split()
TRICKY = [
    "plain ascii text.",
    "  leading spaces, trailing spaces  ",
    "tabs\tand\r\nwindows line ends\r\n",
    "NUL \x00 and other controls \x01\x1b[31m",
    "Ünïcödé: naïve café, Straße, 東京, Москва, مرحبا, emoji 😀👩‍👩‍👧, combining e\u0301, ZWJ \u200d",
    "a literal <|endoftext|> inside a document is text, not the end of it",
    "\n\n\n" + " " * 300 + "x",
    "x" * 5000,
    "def f(x):\n    return x ** 2  # code\n",
]


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 120))) + "." for _ in range(n)]


TRAIN = random_texts(300) + TRICKY


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    path.write_text(bpe.train(TRAIN, vocab_size=400))
    return path


def read_mmidx(prefix: Path) -> tuple[list[np.ndarray], np.ndarray, int]:
    """An independent reader written from the format description: documents, document_indices, dtype code."""
    idx = prefix.with_name(prefix.name + ".idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack_from("<Q", idx, 9)
    assert version == 1
    (code,) = struct.unpack_from("<B", idx, 17)
    n_seq, n_doc = struct.unpack_from("<QQ", idx, 18)
    at = 34
    lengths = np.frombuffer(idx, "<i4", n_seq, at)
    at += 4 * n_seq
    pointers = np.frombuffer(idx, "<i8", n_seq, at)
    at += 8 * n_seq
    doc_index = np.frombuffer(idx, "<i8", n_doc, at)
    assert at + 8 * n_doc == len(idx)
    dtype = np.dtype({8: "<u2", 4: "<i4"}[code])
    data = np.frombuffer(prefix.with_name(prefix.name + ".bin").read_bytes(), dtype)
    assert data.size == lengths.sum()
    docs = [data[p // dtype.itemsize: p // dtype.itemsize + n] for p, n in zip(pointers, lengths)]
    return docs, doc_index, code


def map_here(fn, items, desc=""):
    return [fn(item) for item in items]


def run_tokenize(root: Path, parts: list[pa.Table], cfg: TokenizeConfig, order: list[str] | None) -> dict:
    """What the pipeline driver does for the tokenize stage, in this process: prepare, process each part, finish."""
    src, shards = root / "bucket", root / "shards"
    src.mkdir(parents=True, exist_ok=True)
    (shards / "_work").mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(parts):
        pq.write_table(schema.conform(part), src / f"part-{i:05d}.parquet")
    if order is not None:
        atomic_write_json(src / "_stats.json", {"bucket_order": order})
    ctx = SimpleNamespace(out=root, stage_dir=shards, work_dir=shards / "_work", input=src, map=map_here)
    driver = TokenizeStage(cfg, ctx.work_dir)
    driver.prepare(ctx)
    worker = TokenizeStage(cfg, ctx.work_dir)
    for path in sorted(src.glob("part-*.parquet")):
        result = worker.process(pq.read_table(path))
        pq.write_table(schema.conform(result.kept), shards / path.name)
    return driver.finish(ctx)


def docs_table(texts: list[str], buckets: list[str] | None, prefix: str, source: str = "web") -> pa.Table:
    n = len(texts)
    cols = {"id": [f"{prefix}{i:04d}" for i in range(n)], "origin": [f"{prefix}#{i}" for i in range(n)],
            "text": pa.array(texts, pa.large_string()), "source": [source] * n, "lang": ["en"] * n}
    if buckets is not None:
        cols["bucket"] = buckets
    return pa.table(cols)


def tree_digest(shards: Path) -> dict[str, str]:
    """sha256 of what the stage delivers: manifest, tokenizer, every bucket's files, and the
    tokenized parts (not the executor's bookkeeping: done-files and timings)."""
    files = [shards / "manifest.json", shards / "tokenizer.json", *shards.glob("part-*.parquet"),
             *shards.glob("*/part-*.*")]
    return {str(p.relative_to(shards)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(files) if p.parent.name != "removed" and not p.parent.name.startswith("_")}


# --- the tokenizer -------------------------------------------------------------------------------


def test_training_is_deterministic_and_order_independent():
    first = bpe.train(TRAIN, vocab_size=400)
    assert bpe.train(TRAIN, vocab_size=400) == first
    shuffled = list(TRAIN)
    random.Random(1).shuffle(shuffled)
    assert bpe.train(shuffled, vocab_size=400) == first
    # With more Rayon threads (a fresh process: the pool size is fixed at first use) too.
    env = {**os.environ, "RAYON_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "true"}
    code = "import json, sys; from curate.stages.tokenize import bpe; sys.stdout.write(bpe.train(json.load(sys.stdin), 400))"
    threaded = subprocess.run([sys.executable, "-c", code], input=json.dumps(TRAIN), env=env,
                              capture_output=True, text=True, check=True).stdout
    assert threaded == first
    loaded = json.loads(first)
    assert loaded["normalizer"] is None and loaded["added_tokens"][0]["content"] == bpe.DEFAULT_EOS
    assert loaded["added_tokens"][0]["id"] == 0


def test_every_text_decodes_back_exactly(tokenizer_file):
    stage = TokenizeStage(TokenizeConfig(tokenizer=tokenizer_file))
    texts = TRICKY + random_texts(50, seed=7)
    result = stage.process(docs_table(texts, None, "t"))
    loaded = stage.loaded
    assert result.kept.column("tokens").type == pa.list_(pa.uint32())
    assert result.kept.column("token_count").to_pylist() == [len(t) for t in result.kept.column("tokens").to_pylist()]
    for text, tokens in zip(texts, result.kept.column("tokens").to_pylist()):
        assert tokens[-1] == loaded.eos_id and loaded.eos_id not in tokens[:-1]
        assert loaded.tokenizer.decode(tokens[:-1], skip_special_tokens=False) == text
    assert result.counters["tokens"] == sum(result.kept.column("token_count").to_pylist())


def test_empty_documents_are_removed_with_a_reason(tokenizer_file):
    stage = TokenizeStage(TokenizeConfig(tokenizer=tokenizer_file))
    result = stage.process(docs_table(["one", "", None, "two"], None, "e"))
    assert result.kept.column("text").to_pylist() == ["one", "two"]
    assert result.removed.column("reason").to_pylist() == ["tokenize:empty", "tokenize:empty"]


def test_large_batches_are_encoded_in_chunks_with_the_same_result(tokenizer_file, monkeypatch):
    from curate.stages import tokenize

    stage = TokenizeStage(TokenizeConfig(tokenizer=tokenizer_file))
    table = docs_table(random_texts(200, seed=3), None, "c")
    whole = stage.process(table).kept.column("tokens")
    monkeypatch.setattr(tokenize, "ENCODE_CHUNK_BYTES", 1000)
    assert stage.process(table).kept.column("tokens").equals(whole)


def test_a_named_tokenizer_is_checked_and_copied(tmp_path, tokenizer_file):
    (tmp_path / "tok.json").write_bytes(tokenizer_file.read_bytes())
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("tokenize: {tokenizer: tok.json}\n")  # relative to the config file
    cfg = config.load(cfg_path).section("tokenize")
    assert cfg.tokenizer == (tmp_path / "tok.json").resolve()
    run_tokenize(tmp_path / "run", [docs_table(TRICKY, None, "n")], cfg, None)
    assert (tmp_path / "run/shards/tokenizer.json").read_bytes() == tokenizer_file.read_bytes()
    cfg_path.write_text("tokenize: {tokenizer: tok.json, eos_token: '</s>'}\n")
    with pytest.raises(UserError, match="has no token '</s>'"):
        config.load(cfg_path)
    cfg_path.write_text("tokenize: {tokenizer: missing.json}\n")
    with pytest.raises(UserError, match="file not found"):
        config.load(cfg_path)


# --- cutting buckets into shards ------------------------------------------------------------------


def test_cut_fills_shards_up_to_the_limit():
    shard = shards._cut(np.array([3, 3, 3, 10, 1, 1, 4]), 6)
    assert shard.tolist() == [0, 0, 1, 2, 3, 3, 3]  # 6 | 3 | 10 alone | 6
    assert shards._cut(np.array([], dtype=np.int64), 6).size == 0


def _parts_for_plan(tmp_path: Path, sizes: list[list[tuple[str, int]]]) -> list[Path]:
    paths = []
    for i, docs in enumerate(sizes):
        path = tmp_path / f"part-{i:05d}.parquet"
        pq.write_table(pa.table({"bucket": [b for b, _ in docs], "token_count": pa.array([n for _, n in docs], pa.int32())}), path)
        paths.append(path)
    return paths


def test_plan_orders_buckets_and_shuffles_deterministically(tmp_path):
    rng = random.Random(0)
    sizes = [[(rng.choice(["easy", "code", "zeta"]), rng.randint(1, 50)) for _ in range(200)] for _ in range(3)]
    parts = _parts_for_plan(tmp_path, sizes)
    plain = shards.make_layout(parts, ["easy", "general", "code"], 500, shuffle=False, seed=0)
    assert plain.buckets == ["easy", "code", "zeta"]  # empty buckets dropped, unknown ones last
    a = shards.make_layout(parts, ["easy", "general", "code"], 500, shuffle=True, seed=0)
    b = shards.make_layout(parts, ["easy", "general", "code"], 500, shuffle=True, seed=0)
    c = shards.make_layout(parts, ["easy", "general", "code"], 500, shuffle=True, seed=1)
    assert a.digest == b.digest != c.digest != plain.digest
    for p in (plain, a):
        assert sum(s.documents for s in p.shards) == 600
        assert all(s.tokens <= 500 for s in p.shards)
        for name in p.buckets:  # positions within each shard are 0..n-1, each once
            bi = p.buckets.index(name)
            for sh in [s for s in p.shards if s.bucket == name]:
                pos = np.concatenate([pp[bi == bb][ss[bi == bb] == sh.index] for bb, ss, pp in p.assignment])
                assert sorted(pos.tolist()) == list(range(sh.documents))
    # Without shuffle, a bucket's documents stay in (part, row) order.
    first = plain.assignment[0]
    easy = first[0] == 0
    keys = first[1][easy].astype(np.int64) * 10**6 + first[2][easy]
    assert (np.diff(keys) > 0).all()


# --- shards on disk -------------------------------------------------------------------------------


def _three_parts() -> tuple[list[pa.Table], dict[str, str]]:
    rng = random.Random(5)
    parts, texts = [], {}
    for p in range(3):
        body = random_texts(40, seed=10 + p) + TRICKY[p * 3:(p + 1) * 3]
        buckets = [rng.choice(["easy", "general", "code", "extra"]) for _ in body]
        table = docs_table(body, buckets, f"p{p}-")
        parts.append(table)
        texts.update(zip(table.column("id").to_pylist(), body))
    parts.insert(1, docs_table(["", None], ["easy", "code"], "gone-"))  # a part whose documents are all removed
    return parts, texts


def test_shards_agree_with_an_independent_reader(tmp_path, tokenizer_file):
    parts, texts = _three_parts()
    cfg = TokenizeConfig(tokenizer=tokenizer_file, shard_tokens=1500, shuffle=True, seed=3)
    stats = run_tokenize(tmp_path, parts, cfg, ["easy", "general", "reasoning", "code"])
    shards = tmp_path / "shards"
    manifest = megatron.read_manifest(shards)
    raw = json.loads((shards / "manifest.json").read_text())
    assert raw["format"] == "curate-shards" and raw["dtype"] == "uint16" and raw["eos_id"] == 0
    assert raw["tokenizer"]["sha256"] == hashlib.sha256((shards / "tokenizer.json").read_bytes()).hexdigest()
    assert [b.name for b in manifest.buckets] == ["easy", "general", "code", "extra"]
    tok = bpe.load(shards / "tokenizer.json").tokenizer
    seen = []
    for bucket in manifest.buckets:
        assert len(bucket.files) >= 2  # shard_tokens cuts each bucket into several parts
        for f in bucket.files:
            docs, doc_index, code = read_mmidx(shards / f.prefix)
            table = pq.read_table(shards / f.parquet)
            assert code == 8 and doc_index.tolist() == list(range(len(docs) + 1))
            assert table.column_names == ["id", "tokens", "bucket", "source", "lang"]
            assert table.column("tokens").type == pa.list_(pa.uint32())
            assert set(table.column("bucket").to_pylist()) == {bucket.name}
            assert f.documents == len(docs) == table.num_rows
            assert f.tokens == sum(d.size for d in docs)
            assert f.tokens <= 1500 or f.documents == 1
            for doc, row in zip(docs, table.to_pylist()):
                assert doc.tolist() == row["tokens"]
                assert doc[-1] == 0 and 0 not in doc[:-1]
                assert tok.decode(doc[:-1].tolist(), skip_special_tokens=False) == texts[row["id"]]
                seen.append(row["id"])
    assert sorted(seen) == sorted(texts)  # every document exactly once
    assert stats["tokens"] == sum(b.tokens for b in manifest.buckets)
    assert [b["name"] for b in stats["buckets"]] == ["easy", "general", "code", "extra"]
    assert not (shards / "_work/finish/spill").exists()


def test_without_a_bucket_stage_everything_is_one_bucket(tmp_path, tokenizer_file):
    cfg = TokenizeConfig(tokenizer=tokenizer_file, shuffle=False)
    run_tokenize(tmp_path, [docs_table(TRICKY, None, "u")], cfg, None)
    manifest = megatron.read_manifest(tmp_path / "shards")
    assert [(b.name, b.documents) for b in manifest.buckets] == [("all", len(TRICKY))]
    ids = pq.read_table(tmp_path / "shards/all/part-00000.parquet", columns=["id"]).column("id").to_pylist()
    assert ids == [f"u{i:04d}" for i in range(len(TRICKY))]  # input order without shuffle


def test_int32_tokens_when_the_vocabulary_needs_them(tmp_path, tokenizer_file):
    stage = TokenizeStage(TokenizeConfig(tokenizer=tokenizer_file))
    part = tmp_path / "part-00000.parquet"
    pq.write_table(stage.process(docs_table(TRICKY, ["b"] * len(TRICKY), "i")).kept, part)
    plan = shards.make_layout([part], ["b"], 10**9, shuffle=False, seed=0)
    files = shards.build(plan, tmp_path, tmp_path / "work", "int32")
    docs, _, code = read_mmidx(tmp_path / files["b"][0].prefix)
    assert code == 4
    assert [d.tolist() for d in docs] == pq.read_table(part).column("tokens").to_pylist()


def test_training_and_shards_are_deterministic_and_resume_after_a_crash(tmp_path, monkeypatch):
    parts, _ = _three_parts()
    cfg = TokenizeConfig(vocab_size=350, shard_tokens=1200, train_mb=0.01, seed=2)
    run_tokenize(tmp_path / "a", parts, cfg, ["easy", "general", "code"])
    run_tokenize(tmp_path / "b", parts, cfg, ["easy", "general", "code"])
    expected = tree_digest(tmp_path / "a/shards")
    assert tree_digest(tmp_path / "b/shards") == expected
    assert any(name.endswith(".bin") for name in expected) and "tokenizer.json" in expected

    # A gather that dies after two shards: the rerun finishes the rest, with the same bytes.
    real, calls = shards.gather, []

    def dying(item):
        calls.append(item["prefix"])
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(item)

    monkeypatch.setattr(shards, "gather", dying)
    with pytest.raises(RuntimeError, match="killed"):
        run_tokenize(tmp_path / "c", parts, cfg, ["easy", "general", "code"])
    monkeypatch.setattr(shards, "gather", real)
    assert not (tmp_path / "c/shards/manifest.json").exists()
    run_tokenize(tmp_path / "c", parts, cfg, ["easy", "general", "code"])
    assert tree_digest(tmp_path / "c/shards") == expected


# --- through the CLI: extract -> bucket -> tokenize -----------------------------------------------


@pytest.mark.corpora
@pytest.mark.slow
def test_pipeline_writes_shards_and_identical_ones_again(tmp_path, cli):
    src = tmp_path / "corpus"
    (src / "web").mkdir(parents=True)
    (src / "code").mkdir()
    with gzip.open(corpus("web/jsonl/dolma-cc-sample.jsonl.gz"), "rt", encoding="utf-8") as f:
        web = [json.loads(line) for line in f][:240]
    for i in range(3):  # three files, so extract makes several shards
        with open(src / "web" / f"cc-{i}.jsonl", "w", encoding="utf-8") as out:
            out.writelines(json.dumps({"text": d["text"], "url": d.get("metadata", {}).get("url")}) + "\n" for d in web[i::3])
    code = sorted(corpus("code/linguist/Python").glob("*.py"))[:8]
    with open(src / "code" / "py.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps({"text": p.read_text(encoding="utf-8")}) + "\n" for p in code)
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text("""
stages: [extract, bucket, tokenize]
run: {shard_mb: 0.2, workers: 2}
extract: {sources: {"code/*": code, "web/*": web}}
tokenize: {vocab_size: 600, shard_tokens: 40000, train_mb: 0.5}
""")
    out = tmp_path / "out"
    result = cli("run", "--config", cfg, "--input", src, "--output", out)
    assert result.exit_code == 0, result.output
    shards = out / "shards"
    first = tree_digest(shards)
    assert "tokenizer.json" in first and any(name.endswith(".idx") for name in first)
    # The tokenize stage again from scratch (a new tokenizer, new shards): the same bytes.
    result = cli("stage", "tokenize", "--config", cfg, "--output", out, "--fresh")
    assert result.exit_code == 0, result.output
    assert tree_digest(shards) == first

    manifest = megatron.read_manifest(shards)
    assert [b.name for b in manifest.buckets][0] in ("easy", "general")
    assert manifest.bucket("code").documents >= len(code)
    kept = pa.concat_tables(pq.read_table(p, columns=["id", "text"]) for p in sorted((out / "bucket").glob("part-*.parquet")))
    texts = dict(zip(kept.column("id").to_pylist(), kept.column("text").to_pylist()))
    tok = bpe.load(shards / "tokenizer.json").tokenizer
    total = 0
    for bucket in manifest.buckets:
        for f in bucket.files:
            docs, _, _ = read_mmidx(shards / f.prefix)
            ids = pq.read_table(shards / f.parquet, columns=["id"]).column("id").to_pylist()
            for doc, doc_id in zip(docs, ids):
                assert tok.decode(doc[:-1].tolist(), skip_special_tokens=False) == texts[doc_id]
            total += len(docs)
    assert total == len(texts)
    stats = json.loads((shards / "_stats.json").read_text())
    assert stats["docs_in"] == stats["docs_out"] + sum(stats["removed"].values()) == len(texts)
    assert stats["tokens"] == sum(b.tokens for b in manifest.buckets)
    mix = json.loads((out / "bucket/_stats.json").read_text())
    assert [b["name"] for b in mix["buckets"]] == ["easy", "general", "reasoning", "code"]
