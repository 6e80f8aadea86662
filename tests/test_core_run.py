"""The core run path: discovery, simple readers, the ledger and its law, run.json, resume."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from conftest import corpus
from curate import discover, schema
from curate.config import load
from curate.stage import Result, Stage

CFG = "stages: [extract]\nrun:\n  shard_mb: {mb}\n"


def config(tmp_path: Path, mb: float = 64) -> Path:
    p = tmp_path / "extract.yaml"
    p.write_text(CFG.format(mb=mb))
    return p


def ids(stage_dir: Path, removed: bool = False) -> list[str]:
    pattern = "removed/part-*.parquet" if removed else "part-*.parquet"
    out = []
    for p in sorted(stage_dir.glob(pattern)):
        out += pq.read_table(p, columns=["id"]).column("id").to_pylist()
    return out


def test_jsonl_corpus_acceptance(cli, tmp_path):
    out = tmp_path / "out"
    res = cli("stage", "extract", "--input", corpus("web", "jsonl"), "--output", out, "--config", config(tmp_path))
    assert res.exit_code == 0, res.output
    stats = json.loads((out / "extract" / "_stats.json").read_text())
    assert (stats["docs_in"], stats["docs_out"], stats["removed"]) == (697, 670, {"extract:empty": 27})
    assert stats["docs_in"] == stats["docs_out"] + sum(stats["removed"].values())
    kept = pq.read_table(out / "extract" / "part-00000.parquet")
    assert kept.schema.field("text").type == pa.large_string()
    assert kept.column_names[:8] == schema.BASE.names
    row = kept.slice(0, 1).to_pylist()[0]
    assert row["origin"].startswith("dolma-cc-sample.jsonl.gz#") and "." in row["url"]
    assert row["id"] == schema.doc_id(row["origin"]) and len(row["id"]) == 32
    meta = json.loads(row["meta"])
    assert "metadata" in meta and "text" not in meta  # the input's own fields, never schema clashes
    assert len(set(ids(out / "extract") + ids(out / "extract", True))) == 697
    run = json.loads((out / "run.json").read_text())
    assert run["versions"]["ray"] and run["config_hash"] and run["stages"]["extract"]["wall_seconds"] > 0
    # the same command again: complete stage skipped, nothing changes
    before = (out / "extract" / "_stats.json").read_text()
    assert cli("stage", "extract", "--input", corpus("web", "jsonl"), "--output", out,
               "--config", config(tmp_path)).exit_code == 0
    assert (out / "extract" / "_stats.json").read_text() == before


def make_inputs(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    good = [{"text": f"document number {i}", "url": f"http://x/{i}", "extra": i} for i in range(5)]
    lines = [json.dumps(d) for d in good] + ["{broken", json.dumps({"text": 5}), json.dumps([1, 2]), "",
                                             json.dumps({"text": "   "}), json.dumps({"text": "m", "metadata": {"url": "http://m"}})]
    (root / "a.jsonl").write_text("\n".join(lines) + "\n")
    with gzip.open(root / "sub" / "b.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps({"text": f"gz {i}"}) for i in range(3)) + "\n")
    # a truncated gzip: the lines read before the cut are kept, the cut is recorded
    whole = gzip.compress(("\n".join(json.dumps({"text": "t" * 50 + str(i)}) for i in range(2000)) + "\n").encode())
    (root / "sub" / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    (root / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "zstd doc"}\n'))
    pq.write_table(pa.table({"text": ["p1", "p2", None], "url": ["u1", None, None], "score": [1, 2, 3]}), root / "d.parquet")
    (root / "notes.md").write_text("# Title\n\nSome markdown text.\n")
    (root / "latin1-noext").write_bytes("Grüße aus Köln, schöne Straße".encode("latin-1"))
    (root / "blob").write_bytes(bytes(range(256)) * 4)
    (root / ".hidden.jsonl").write_text('{"text": "hidden"}\n')
    (root / "empty.txt").write_bytes(b"")
    outside = root.parent / "outside.txt"
    outside.write_text("outside the corpus")
    os.symlink(outside, root / "link-out.txt")
    os.symlink(root / "notes.md", root / "link-in.md")


def test_simple_readers_lose_nothing(cli, tmp_path):
    src = tmp_path / "corpus"
    make_inputs(src)
    out = tmp_path / "out"
    res = cli("stage", "extract", "--input", src, "--output", out, "--config", config(tmp_path))
    assert res.exit_code == 0, res.output
    stats = json.loads((out / "extract" / "_stats.json").read_text())
    removed = stats["removed"]
    assert removed["extract:error:bad_json"] == 1
    assert removed["extract:error:bad_json:text_type"] == 1
    assert removed["extract:error:bad_json:not_object"] == 1
    assert removed["extract:skip:hidden"] == 1
    assert removed["extract:skip:symlink_outside"] == 1
    assert removed["extract:skip:binary"] == 1
    assert removed["extract:error:truncated"] == 1
    assert removed["extract:empty"] == 3  # whitespace text, empty file, null parquet text
    kept = pq.read_table(out / "extract" / "part-00000.parquet").to_pylist()
    by_origin = {r["origin"]: r for r in kept}
    assert by_origin["a.jsonl#11"]["url"] == "http://m"
    assert json.loads(by_origin["a.jsonl#1"]["meta"]) == {"extra": 0}
    assert by_origin["d.parquet#1"]["url"] == "u1" and json.loads(by_origin["d.parquet#2"]["meta"]) == {"score": 2}
    assert by_origin["c.jsonl.zst#1"]["text"] == "zstd doc"
    assert "Grüße aus Köln" in by_origin["latin1-noext"]["text"]
    assert "link-in.md" in by_origin and "notes.md" in by_origin
    truncated = [o for o in by_origin if o.startswith("sub/cut.jsonl.gz#")]
    assert 0 < len(truncated) < 2000
    assert stats["docs_in"] == stats["docs_out"] + sum(removed.values())
    assert len(set(ids(out / "extract") + ids(out / "extract", True))) == stats["docs_in"]


def test_discovery_is_deterministic_and_shards_bounded(tmp_path):
    src = tmp_path / "corpus"
    make_inputs(src)
    a, b = discover.discover(src), discover.discover(src)
    assert a == b and [f.rel for f in a] == sorted(f.rel for f in a)
    shards = discover.shard(a, 200)
    assert sum(len(s) for s in shards) == len(a)
    for s in shards:
        assert len(s) == 1 or sum(f.size for f in s) <= 200


def test_a_column_declared_but_not_measured_upstream_is_the_next_stage_s_signal(tmp_path):
    """extract's parts declare `lang_score` (all null): langid measures it, so its histogram
    belongs in langid's ledger, while quality must not count langid's values as its own."""
    from curate import ledger

    declared = pa.table({"lang_score": pa.nulls(3, pa.float32()), "gopher_words": pa.array([1.0, None, 3.0], pa.float32())})
    pq.write_table(declared, tmp_path / "part-00000.parquet")
    pq.write_table(declared.slice(0, 0), tmp_path / "part-00001.parquet")
    assert ledger.part_signals(tmp_path) == {"gopher_words"}


class LosingStage(Stage):
    name = "extract"

    def process(self, batch):
        return Result(batch.slice(1), batch.slice(0, 0).append_column("reason", pa.array([], pa.string())))


def test_law_violation_fails_loudly(ray_session, tmp_path):
    from curate.worker import ShardTask, run_shard

    src = tmp_path / "c"
    src.mkdir()
    (src / "x.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n')
    files = discover.discover(src)
    stage = LosingStage(load(None).section("extract"))
    with pytest.raises(RuntimeError, match="lost 1 documents"):
        run_shard(stage, ShardTask("part-00000", str(src), files), tmp_path / "o", 100, 1 << 20)
    assert not (tmp_path / "o" / "_done" / "part-00000.json").exists()


def test_changed_config_refused_then_fresh(cli, tmp_path):
    src = tmp_path / "corpus"
    src.mkdir()
    (src / "a.txt").write_text("hello world")
    out = tmp_path / "out"
    assert cli("stage", "extract", "--input", src, "--output", out, "--config", config(tmp_path)).exit_code == 0
    res = cli("stage", "extract", "--input", src, "--output", out, "--config", config(tmp_path),
              "--set", "extract.sources={'*': academic}")
    assert res.exit_code == 2 and "--fresh" in res.output
    res = cli("stage", "extract", "--input", src, "--output", out, "--config", config(tmp_path),
              "--set", "extract.sources={'*': academic}", "--fresh")
    assert res.exit_code == 0
    assert pq.read_table(out / "extract" / "part-00000.parquet").column("source").to_pylist() == ["academic"]


def test_a_part_emptied_early_flows_through_every_stage(cli, tmp_path):
    """One input file whose documents are all removed by extract leaves an empty part; each stage
    after it still writes that part with its own columns, and tokenize assembles its shards."""
    src = tmp_path / "src"
    src.mkdir()
    text = ("The committee met on Tuesday to review the annual budget and the plans for the new "
            "library, which will open next spring in the old market building near the river. ")
    (src / "a.jsonl").write_text("".join(json.dumps({"text": f"{i}. {text * 3}"}) + "\n" for i in range(8)))
    (src / "b.jsonl").write_text(json.dumps({"text": ""}) + "\n" + json.dumps({"text": "  "}) + "\n")
    cfg = tmp_path / "all.yaml"
    cfg.write_text("stages: [extract, langid, quality, dedup, bucket, tokenize]\nrun:\n  shard_mb: 0.0001\n"
                   "quality:\n  gopher:\n    min_doc_words: 5\ntokenize:\n  vocab_size: 300\n  min_frequency: 1\n")
    out = tmp_path / "out"
    res = cli("run", "--config", cfg, "--input", src, "--output", out)
    assert res.exit_code == 0, res.output
    for stage in ("extract", "langid", "quality", "dedup", "bucket"):
        parts = sorted((out / stage).glob("part-*.parquet"))
        assert len(parts) == 2 and pq.read_metadata(parts[1]).num_rows == 0
        assert pq.read_schema(parts[1]) == pq.read_schema(parts[0]), stage  # same columns when empty
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    assert manifest and not list(out.rglob(".*.tmp-*"))
