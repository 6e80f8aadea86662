"""A run killed with SIGKILL at any moment, then re-run with the same command, ends with
exactly the documents and ledger of an uninterrupted run: nothing lost, nothing twice."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from conftest import corpus

CFG = "stages: [extract]\nrun:\n  shard_mb: 0.01\n  batch_docs: 7\n"


def split_corpus(dst: Path, n_files: int = 40) -> None:
    """The real Common Crawl sample cut into many small files, so a run has many shards."""
    lines = gzip.open(corpus("web", "jsonl", "dolma-cc-sample.jsonl.gz"), "rb").read().split(b"\n")
    lines = [l for l in lines if l.strip()]
    dst.mkdir(parents=True)
    for i in range(n_files):
        (dst / f"part-{i:03d}.jsonl").write_bytes(b"\n".join(lines[i::n_files]) + b"\n")


def outputs(stage_dir: Path) -> tuple[list[str], list[str]]:
    def read(pattern):
        out = []
        for p in sorted(stage_dir.glob(pattern)):
            out += pq.read_table(p, columns=["id"]).column("id").to_pylist()
        return out

    return read("part-*.parquet"), read("removed/part-*.parquet")


def counts(stats: dict) -> tuple:
    return stats["docs_in"], stats["docs_out"], stats["removed"], stats["bytes_in"], stats["bytes_out"], stats["shards"]


def start(cfg: Path, src: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "run", "--config", str(cfg), "--input", str(src),
         "--output", str(out), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the driver alone (what the test is about), then reap the Ray processes it left."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_sigkill_anywhere_resumes_to_same_result(cli, tmp_path):
    src = tmp_path / "corpus"
    split_corpus(src)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG)

    ref = tmp_path / "ref"
    assert cli("run", "--config", cfg, "--input", src, "--output", ref).exit_code == 0
    ref_kept, ref_removed = outputs(ref / "extract")
    ref_stats = json.loads((ref / "extract" / "_stats.json").read_text())

    out = tmp_path / "out"
    rng = random.Random(7)
    kills = 0
    for attempt in range(6):
        proc = start(cfg, src, out)
        done_dir = out / "extract" / "_done"
        # Kill at a random moment once this attempt has made progress (or during start-up).
        target = len(list(done_dir.glob("*.json"))) + rng.randint(0, 6) if done_dir.exists() else rng.randint(0, 4)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if done_dir.exists() and len(list(done_dir.glob("*.json"))) >= target:
                break
            time.sleep(0.05)
        if proc.poll() is not None:  # it finished before we could kill it
            break
        kill_group(proc)
        kills += 1
        if kills >= 3:
            break
    assert kills >= 1, "the run always finished before it could be killed"
    proc = start(cfg, src, out)  # the final, uninterrupted resume
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]

    kept, removed = outputs(out / "extract")
    assert sorted(kept) == sorted(ref_kept) and len(kept) == len(set(kept))
    assert sorted(removed) == sorted(ref_removed)
    stats = json.loads((out / "extract" / "_stats.json").read_text())
    assert counts(stats) == counts(ref_stats)
    assert not list((out / "extract").rglob(".*.tmp-*"))  # no temp files left behind
