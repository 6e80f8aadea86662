"""How a run starts, resumes and reports itself (issue 19, items 4-7): an empty input is a
mistake caught before Ray; a resumed run says so; shards are sized from the corpus and the
workers, and progress moves within a shard; OUT can be moved or copied."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from curate import discover, schema, storage
from curate.progress import Progress
from curate.stage import Result, Stage
from curate.worker import ShardTask, run_shard

CFG = "stages: [extract, langid]\nrun:\n  shard_mb: 0.01\n"


def corpus(root: Path, files: int = 6) -> Path:
    """A few JSONL files of short English and German documents: several shards at 0.01 MB."""
    root.mkdir(parents=True)
    for i in range(files):
        docs = [{"text": f"Document {i}-{j}: the quick brown fox jumps over the lazy dog near the river bank. " * 6}
                for j in range(20)]
        docs += [{"text": f"Dokument {i}: der schnelle braune Fuchs springt über den faulen Hund am Fluss. " * 6}]
        (root / f"part-{i}.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    return root


def test_empty_input_is_refused_before_ray_starts(tmp_path):
    """Exit code 2 and 'no documents found'; the run points at a Ray address where nothing
    listens, so a check made after Ray would have failed there instead."""
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG)
    for src in (empty, tmp_path / "hidden-only"):
        if src.name == "hidden-only":
            src.mkdir()
            (src / ".gitignore").write_text("*.pyc\n")
        r = subprocess.run([sys.executable, "-m", "curate.cli", "run", "--config", str(cfg), "--input", str(src),
                            "--output", str(tmp_path / "out"), "--ray-address", "127.0.0.1:9"],
                           capture_output=True, text=True, timeout=120)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 2 and len(lines) == 1, r.stderr[-2000:]
        assert lines[0].startswith(f"error: no documents found in {src}"), lines
    assert "1 extract:skip:hidden" in lines[0]


def test_resumed_run_says_what_is_done(cli, tmp_path):
    src, cfg, out = corpus(tmp_path / "corpus"), tmp_path / "c.yaml", tmp_path / "out"
    cfg.write_text(CFG)
    assert cli("run", "--config", cfg, "--input", src, "--output", out).exit_code == 0
    shards = json.loads((out / "langid" / "_stats.json").read_text())["shards"]
    assert shards >= 4
    # an interrupted langid: no ledger, two shards not done
    (out / "langid" / "_stats.json").unlink()
    for name in ("part-00001", "part-00003"):
        storage.done_path(out / "langid", name).unlink()
    r = cli("run", "--config", cfg, "--input", src, "--output", out)
    assert r.exit_code == 0, r.output
    assert "[extract] complete, skipped" in r.stderr
    assert f"[langid] resuming: {shards - 2} of {shards} shards done" in r.stderr


def test_shard_size_follows_corpus_and_workers(cli, tmp_path):
    mb = discover.MB
    # several shards per worker, within bounds; an explicit shard_mb wins
    assert discover.shard_size(800 * mb, 4) == 800 * mb // (4 * discover.SHARDS_PER_WORKER)
    assert discover.shard_size(100 * mb, 64) == discover.MIN_SHARD_MB * mb
    assert discover.shard_size(100_000 * mb, 2) == discover.MAX_SHARD_MB * mb
    assert discover.shard_size(800 * mb, 4, shard_mb=64) == 64 * mb
    # a 9 MB corpus on two workers is cut into several shards per worker, not one 64 MB shard
    src = tmp_path / "corpus"
    src.mkdir()
    line = json.dumps({"text": "plain words of a web page, " * 40}) + "\n"
    for i in range(12):
        (src / f"f{i:02d}.jsonl").write_text(line * (750_000 // len(line)))
    cfg, out = tmp_path / "c.yaml", tmp_path / "out"
    cfg.write_text("stages: [extract]\n")
    assert cli("run", "--config", cfg, "--input", src, "--output", out, "--workers", "2").exit_code == 0
    marker = json.loads((out / "extract" / "_stage.json").read_text())
    assert json.loads((out / "extract" / "_stats.json").read_text())["shards"] >= 2 * 2
    assert marker["shard_bytes"] == discover.shard_size(sum(p.stat().st_size for p in src.iterdir()), 2)
    # resumed with other --workers, the stage keeps the shards it was made with
    (out / "extract" / "_stats.json").unlink()
    r = cli("run", "--config", cfg, "--input", src, "--output", out, "--workers", "1")
    assert r.exit_code == 0 and "resuming" in r.stderr, r.output
    assert json.loads((out / "extract" / "_stage.json").read_text())["shard_bytes"] == marker["shard_bytes"]


class Counting(Stage):
    name = "counting"

    def process(self, batch):
        return Result(batch, schema.with_reason(batch.slice(0, 0), []))


def test_progress_moves_within_a_shard(tmp_path):
    """The worker reports the documents done after every batch, and the bar on a terminal counts
    the running shards' documents, not only those of finished shards."""
    part = tmp_path / "in" / "part-00000.parquet"
    part.parent.mkdir()
    origins = [f"d#{i}" for i in range(10)]
    pq.write_table(schema.conform(pa.table({"id": [schema.doc_id(o) for o in origins], "origin": origins,
                                            "text": pa.array(["x"] * 10, pa.large_string())})), part)
    seen: list[int] = []
    run_shard(Counting(None), ShardTask("part-00000", input_path=part), tmp_path / "out", batch_docs=3,
              batch_bytes=1 << 20, on_batch=seen.append)
    assert seen == [3, 6, 9, 10]
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    bar = Progress("extract", total=4, console=console)
    assert bar.live
    bar.running(1234)
    bar.bar.refresh()
    bar.close()
    assert "1,234 docs" in console.file.getvalue()


def test_out_can_be_moved_or_copied(cli, tmp_path):
    """Fingerprints name stage inputs inside OUT relative to OUT and the corpus by its listing:
    a copied OUT, fed a copied corpus, is complete."""
    src, cfg, out = corpus(tmp_path / "corpus"), tmp_path / "c.yaml", tmp_path / "full"
    cfg.write_text(CFG)
    assert cli("run", "--config", cfg, "--input", src, "--output", out).exit_code == 0
    copy, moved_src = tmp_path / "copy", tmp_path / "elsewhere" / "corpus"
    shutil.copytree(out, copy)
    shutil.copytree(src, moved_src)
    r = cli("run", "--config", cfg, "--input", moved_src, "--output", copy)
    assert r.exit_code == 0, r.output
    assert r.stderr.count("complete, skipped") == 2
    marker = json.loads((copy / "langid" / "_stage.json").read_text())
    assert marker["input"] == "extract" and str(out) not in json.dumps(marker)
    done = json.loads(storage.done_path(copy / "langid", "part-00000").read_text())
    assert done["input"] == "extract/part-00000.parquet"
    # a changed corpus is still noticed
    (moved_src / "part-0.jsonl").write_text('{"text": "something else entirely"}\n')
    assert cli("run", "--config", cfg, "--input", moved_src, "--output", copy).exit_code == 2
