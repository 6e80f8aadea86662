"""The whole pipeline (extract, langid, quality, dedup, bucket, tokenize) on a real mixed corpus:
deterministic, and unharmed by SIGKILL.

- Determinism: two uninterrupted runs of the same command give byte-identical Parquet, .bin/.idx,
  manifest, tokenizer, done-files and ledgers (EXCLUDED and TIMING_KEY say what may differ).
- Driver kill: the driver is SIGKILLed at random points spread over the stages (shard maps and
  global steps), the same command resumes each time, and the end result equals the reference.
- Worker kill: Ray worker processes busy with a shard or a global step are SIGKILLed at random
  moments of one run; the executor retries, the run ends with exit code 0, and the result equals
  the reference.

Every run is a `curate run` subprocess in its own session, writing to the same path (BASE/out),
then moved aside (an OUT can move: what it records of its inputs is relative to it, or the
corpus's content listing). Runs start their own Ray (5-15 s each).
"""

from __future__ import annotations

import fnmatch
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from conftest import corpus
from test_resume import split_corpus

STAGES = ("extract", "langid", "quality", "dedup", "bucket", "tokenize")
DIRS = {name: name for name in STAGES} | {"tokenize": "shards"}  # tokenize writes OUT/shards
RUN_TIMEOUT = 300  # seconds one run may take on a loaded 2-core machine before the test fails
# Seeds the kill points; set CURATE_CRASH_SEED to try others (the kills are printed: pytest -s).
SEED = int(os.environ.get("CURATE_CRASH_SEED", "20251123"))

CONFIG = """\
stages: [extract, langid, quality, dedup, bucket, tokenize]
run:
  shard_mb: 0.5             # small files grouped into 14 shards per stage: resume points
  batch_docs: 20            # several process() calls per shard
  task_retries: 3           # each worker kill costs its shard (or step item) one retry
tokenize:
  vocab_size: 1000          # what a 1 MB corpus can fill
  train_mb: 8
  shard_tokens: 100000      # several .bin/.idx shards per bucket
"""

# What two runs of the same command may differ in (fnmatch patterns over paths under OUT, or over
# file names); everything else must be byte-identical.
EXCLUDED = {
    "run.json": "start/end timestamps, Ray start-up seconds, the Ray node id, per-stage wall times",
    "*/_work/*": "scratch of global steps and shard heartbeats (dedup's shuffles, tokenize's "
                 "sample and regrouping plan): nothing reads it once the stage's _stats.json "
                 "exists, its step done-files hold timings, and a resumed run leaves other files",
    ".*.tmp-*": "temp files of atomic writes, named by pid: none may be left at all (no_temp_files)",
}
# Keys ending in this are measured durations (wall_seconds, process_seconds, step_seconds,
# dedup's step_task_seconds ...): removed from _stats.json and _done/*.json before comparing them.
# A JSON file without such keys (manifest.json, tokenizer.json, _stage.json) is compared as bytes.
TIMING_KEY = "_seconds"


# --- the corpus and the runs ----------------------------------------------------------------


def build_corpus(dst: Path) -> None:
    """Web JSONL (the Common Crawl sample in 10 files), Python documentation pages, source files
    of many languages and LaTeX, each under its own relative path (readers pick by extension)."""
    split_corpus(dst / "web" / "cc", n_files=10)

    def copy(files: list[Path], base: Path, to: str) -> None:
        for f in files:
            target = dst / to / f.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)

    docs = corpus("web", "html", "python-docs")
    # Prose pages (tutorial, FAQ, usage): most reference pages are mostly code and none survive
    # the quality stage, which would leave empty parts.
    pages = sorted(p for d in ("faq", "tutorial", "using") for p in (docs / d).rglob("*.html"))
    copy(pages[:: max(1, len(pages) // 20)][:20], docs, "web/python-docs")
    code = corpus("code", "linguist")
    files = [p for p in sorted(code.rglob("*"))
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(code).parts)]
    copy(files[:: len(files) // 30][:30], code, "code")
    papers = corpus("academic", "openlogic")
    copy(sorted(papers.rglob("*.tex"))[:4], papers, "academic")


def session_procs(sid: int) -> list[psutil.Process]:
    """The processes of a run: its driver started a new session, and Ray's processes (raylet,
    GCS, workers; workers have their own process group) stay in it."""
    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid:
                out.append(p)
        except (ProcessLookupError, PermissionError):
            pass
    return out


def reap(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of a run's session and wait until it is gone, so that no orphaned
    worker writes into OUT while the next attempt runs."""
    procs = session_procs(proc.pid)
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=30)
    assert not alive, f"processes of the killed run survive: {alive}"


class Run:
    """`curate run` of the test's config into BASE/out, as a subprocess in its own session."""

    def __init__(self, base: Path):
        self.base, self.out = base, base / "out"
        self.log = base / f"log-{time.monotonic_ns()}.txt"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "curate.cli", "run", "--config", str(base / "config.yaml"),
                 "--input", str(base / "corpus"), "--output", str(self.out), "--workers", "2"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.started = time.time()

    def running(self) -> bool:
        return self.proc.poll() is None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def last_line(self) -> str:
        lines = [l for l in self.log.read_text(errors="replace").replace("\r", "\n").splitlines() if l.strip()]
        return lines[-1][:100] if lines else "start-up"

    def wait(self) -> int:
        try:
            rc = self.proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            reap(self.proc)
            pytest.fail(f"run did not end within {RUN_TIMEOUT}s:\n{self.tail()}")
        reap(self.proc)
        return rc

    def kill(self) -> bool:
        """SIGKILL the driver alone, then the Ray it leaves; True if it was still running."""
        was_running = self.running()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        reap(self.proc)
        return was_running

    def reached(self, stage: str) -> bool:
        """This run has started `stage` or a later one (run_stage writes _stage.json first; a
        stage completed by an earlier attempt is skipped without touching it)."""
        for name in STAGES[STAGES.index(stage):]:
            path = self.out / DIRS[name] / "_stage.json"
            try:
                if path.stat().st_mtime >= self.started:
                    return True
            except FileNotFoundError:
                pass
        return False

    def until(self, cond, timeout: float = RUN_TIMEOUT) -> bool:
        """Poll until `cond()` or the run ends; True if `cond()` held first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            if not self.running():
                return False
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"run made no progress within {timeout}s:\n{self.tail()}")


def complete_run(base: Path, keep_as: str) -> Path:
    """One uninterrupted run into BASE/out, moved to BASE/<keep_as>."""
    fresh_out(base)
    run = Run(base)
    assert run.wait() == 0, run.tail()
    return keep(base, keep_as)


def fresh_out(base: Path) -> None:
    shutil.rmtree(base / "out", ignore_errors=True)


def keep(base: Path, name: str) -> Path:
    target = base / name
    shutil.rmtree(target, ignore_errors=True)
    (base / "out").rename(target)
    return target


# --- comparing two outputs --------------------------------------------------------------------


def excluded(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(name, pattern) for pattern in EXCLUDED)


def files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
            if p.is_file() and not excluded(p.relative_to(root).as_posix())}


def without_timings(obj):
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if not k.endswith(TIMING_KEY)}
    if isinstance(obj, list):
        return [without_timings(v) for v in obj]
    return obj


def differences(ref: Path, out: Path) -> list[str]:
    """Every way `out` differs from `ref`, outside EXCLUDED and timing keys."""
    a, b = files(ref), files(out)
    diffs = [f"only in the reference: {r}" for r in sorted(a.keys() - b.keys())]
    diffs += [f"not in the reference: {r}" for r in sorted(b.keys() - a.keys())]
    for rel in sorted(a.keys() & b.keys()):
        x, y = a[rel].read_bytes(), b[rel].read_bytes()
        if x == y:
            continue
        if rel.endswith(".json"):
            jx, jy = json.loads(x), json.loads(y)
            if without_timings(jx) != jx and without_timings(jx) == without_timings(jy):
                continue  # differs in timings only
        diffs.append(f"differs: {rel}")
    return diffs


def ids(paths: list[Path]) -> list[str]:
    out: list[str] = []
    for p in paths:
        out += pq.read_table(p, columns=["id"]).column("id").to_pylist()
    return out


def summary(out: Path) -> dict:
    """Per stage: kept and removed ids and the ledger's counts; per token shard: ids and tokens."""
    s = {}
    for name in STAGES:
        d = out / DIRS[name]
        stats = json.loads((d / "_stats.json").read_text())
        s[name] = {
            "kept": ids(sorted(d.glob("part-*.parquet"))),
            "removed": ids(sorted(d.glob("removed/part-*.parquet"))),
            "ledger": {k: stats[k] for k in ("docs_in", "docs_out", "removed", "bytes_in", "bytes_out", "shards")},
        }
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    for bucket in manifest["buckets"]:
        for f in bucket["files"]:
            t = pq.read_table(out / "shards" / f["parquet"], columns=["id", "tokens"])
            s[f["parquet"]] = {"ids": t.column("id").to_pylist(), "tokens": t.column("tokens").to_pylist(),
                               "bin": (out / "shards" / f["bin"]).read_bytes()}
    return s


def check_no_duplicates(s: dict) -> None:
    for name in STAGES:
        kept, removed = s[name]["kept"], s[name]["removed"]
        assert len(set(kept) | set(removed)) == len(kept) + len(removed), f"{name}: a document appears twice"
        if name != "extract":  # extract counts units, some of which (hidden files ...) have no id
            assert len(kept) + len(removed) == s[name]["ledger"]["docs_in"], f"{name}: documents lost or added"
        assert len(kept) == s[name]["ledger"]["docs_out"], f"{name}: kept files disagree with the ledger"
    shard_ids = [i for k, v in s.items() if k not in STAGES for i in v["ids"]]
    assert sorted(shard_ids) == sorted(s["tokenize"]["kept"]), "token shards do not hold the kept documents once each"


def no_temp_files(out: Path) -> None:
    """Every write is a temp file renamed into place: none may be left once a run has ended,
    including those of shard attempts that failed and were retried."""
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob(".*.tmp-*"))
    assert not left, f"temp files left behind in {out.name}: {left[:10]}"


def assert_same_as_reference(ref: Path, out: Path) -> None:
    s_ref, s_out = summary(ref), summary(out)
    check_no_duplicates(s_out)
    for key in s_ref:  # first the documents, tokens and ledgers, for a readable failure
        for field in s_ref[key]:
            assert s_out.get(key, {}).get(field) == s_ref[key][field], f"{key}: {field} differs from the reference"
    assert s_out.keys() == s_ref.keys()
    diffs = differences(ref, out)
    assert not diffs, "\n".join(diffs[:30])
    no_temp_files(out)


# --- the tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("crash")
    build_corpus(base / "corpus")
    (base / "config.yaml").write_text(CONFIG)
    return base


@pytest.fixture(scope="module")
def reference(base) -> Path:
    ref = complete_run(base, "ref")
    for name in STAGES:
        stats = json.loads((ref / DIRS[name] / "_stats.json").read_text())
        assert stats["shards"] > 1, f"{name} ran as one shard: no resume points"
        assert stats["docs_out"] > 0, f"{name} kept nothing"
    manifest = json.loads((ref / "shards" / "manifest.json").read_text())
    shards = [f for b in manifest["buckets"] for f in b["files"]]
    assert len(shards) > 1 and all((ref / "shards" / f["bin"]).stat().st_size > 0 for f in shards)
    assert all((ref / "shards" / f["idx"]).is_file() for f in shards)
    check_no_duplicates(summary(ref))
    return ref


def test_two_runs_are_byte_identical(base, reference):
    second = complete_run(base, "second")
    compared = files(second)
    for suffix in (".parquet", ".bin", ".idx", "manifest.json", "tokenizer.json", "_stats.json"):
        assert any(r.endswith(suffix) for r in compared), f"no {suffix} file compared"
    diffs = differences(reference, second)
    assert not diffs, "\n".join(diffs[:30])
    no_temp_files(reference)
    no_temp_files(second)


DEDUP_STEPS = ("sign", "bucket", "attach", "compare", "exact", "contract", "decide")


def kill_points(rng: random.Random, parts: int) -> list[tuple[str, str, int]]:
    """Four random points, in pipeline order, as (label, glob under OUT, files): the run is killed
    once this attempt has written that many files matching the glob. One lands in a shard map of
    the first stages, one in a global step of dedup (its steps' done-files), one in the later
    shard maps or tokenizer training, one in tokenize's regrouping into .bin/.idx shards."""
    def shard_map(stage: str) -> tuple[str, str, int]:
        return f"{stage} map", f"{DIRS[stage]}/_done/*.json", rng.randint(1, parts - 1)

    step = rng.choice(DEDUP_STEPS)
    later = rng.choice([
        shard_map("dedup"), shard_map("bucket"),
        ("tokenize: sample", "shards/_work/train-sample/*.parquet", rng.randint(1, parts - 1)),
        ("tokenize: train", "shards/_work/train-sample/*.parquet", parts),  # sampled: training runs
        shard_map("tokenize"),
    ])
    return [
        shard_map(rng.choice(["extract", "langid", "quality"])),
        (f"dedup: {step}", f"dedup/_work/_done/{step}/*.json", 1),
        later,
        rng.choice([("tokenize: scatter", "shards/_work/finish/_done/scatter/*.json", rng.randint(1, parts - 1)),
                    ("tokenize: gather", "shards/_work/finish/_done/gather/*/*.json", 1)]),
    ]


def test_driver_sigkill_at_random_points_resumes_to_the_same_result(base, reference):
    rng = random.Random(SEED)
    parts = json.loads((reference / "bucket" / "_stats.json").read_text())["shards"]
    fresh_out(base)
    kills = []
    for label, pattern, count in kill_points(rng, parts):
        run = Run(base)

        def written() -> bool:  # by this attempt: a resumed run rewrites some files (the sample)
            return sum(p.stat().st_mtime >= run.started for p in (base / "out").glob(pattern)) >= count

        if not run.until(written):
            assert run.wait() == 0, run.tail()  # it finished before that point
            break
        time.sleep(rng.uniform(0.0, 0.3))
        last = run.last_line()
        if run.kill():
            kills.append(f"{label} (after {count} x {pattern}; log: {last})")
    else:
        run = Run(base)  # the final, uninterrupted resume
        assert run.wait() == 0, run.tail()
    print("driver kills:", *kills, sep="\n  ")
    assert len(kills) >= 3, f"only {len(kills)} kills landed mid-run: {kills}"
    out = keep(base, "driver-killed")
    assert_same_as_reference(reference, out)


def busy_workers(sid: int) -> list[psutil.Process]:
    """Ray worker processes of the run that are running something: a shard or a global step on
    a pooled actor (ray::ShardWorker.run, ray::ShardWorker.call); idle ones are ray::IDLE or
    ray::ShardWorker."""
    out = []
    for p in session_procs(sid):
        try:
            title = " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if not title.startswith("ray::"):
            continue
        what = title[5:].split()[0] if title[5:].strip() else ""
        if what and what not in ("IDLE", "ShardWorker", "DashboardAgent", "RuntimeEnvAgent"):
            out.append(p)
    return out


def test_worker_sigkill_is_retried_to_the_same_result(base, reference):
    rng = random.Random(SEED + 1)
    targets = sorted(rng.sample(STAGES, 3), key=STAGES.index)
    fresh_out(base)
    run = Run(base)
    kills = []
    for stage in targets:
        if not run.until(lambda: run.reached(stage)):
            break
        time.sleep(rng.uniform(0.0, 0.3))
        done = base / "out" / DIRS[stage] / "_stats.json"
        busy: list[psutil.Process] = []

        def victims() -> bool:
            busy[:] = busy_workers(run.proc.pid)
            return bool(busy) or done.exists()

        if run.until(victims) and busy:
            victim = rng.choice(busy)
            try:
                title = " ".join(victim.cmdline()).strip()
                victim.kill()
                kills.append(f"{stage}: {title}")
            except psutil.NoSuchProcess:
                kills.append(f"{stage}: missed, the worker had ended")
        else:
            kills.append(f"{stage}: missed, no busy worker before the stage ended")
    rc = run.wait()
    print("worker kills:", *kills, sep="\n  ")
    assert rc == 0, f"kills: {kills}\n{run.tail()}"
    assert sum("missed" not in k for k in kills) >= 2, f"fewer than 2 workers were killed: {kills}"
    out = keep(base, "worker-killed")
    assert_same_as_reference(reference, out)
