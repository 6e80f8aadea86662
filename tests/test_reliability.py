"""Poisoned input, hostile environments and the network: the run completes, every input is
accounted for, memory stays bounded, nothing leaves the machine, errors are one clear line."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("fuzz_corpus", ROOT / "scripts" / "fuzz_corpus.py")
fuzz_corpus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz_corpus)

CURATE = [sys.executable, "-m", "curate.cli"]


def origins(stage_dir: Path) -> list[str]:
    out = []
    for p in sorted(stage_dir.glob("part-*.parquet")) + sorted(stage_dir.glob("removed/part-*.parquet")):
        out += pq.read_table(p, columns=["origin"]).column("origin").to_pylist()
    return out


def group_rss(pgid: int) -> int:
    total = 0
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid:
                total += p.memory_info().rss
        except (psutil.Error, ProcessLookupError, PermissionError):
            pass
    return total


def run_measured(args: list[str], env=None, timeout=600, **kw) -> tuple[subprocess.CompletedProcess, int]:
    """Run curate in its own process group; returns the result and the peak RSS summed over
    the driver and every Ray process it started (object store included: it is shared memory
    mapped into the raylet)."""
    proc = subprocess.Popen(CURATE + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True, **kw)
    peak = 0
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, group_rss(proc.pid))
        time.sleep(0.25)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), err.decode()), peak


def test_fuzzed_inputs_complete_accounted_and_bounded(tmp_path):
    src = tmp_path / "fuzz"
    paths = fuzz_corpus.write(src, n=1000, seed=3, big=True)
    assert len(paths) >= 1000
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stages: [extract]\nrun:\n  doc_timeout_s: 60\n")
    out = tmp_path / "out"
    res, peak = run_measured(["stage", "extract", "--config", str(cfg), "--input", str(src), "--output", str(out),
                              "--workers", "2"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    stats = json.loads((out / "extract" / "_stats.json").read_text())
    assert stats["docs_in"] == stats["docs_out"] + sum(stats["removed"].values())
    seen = origins(out / "extract")
    assert len(seen) == len(set(seen)) == stats["docs_in"]
    files = {o.split("#", 1)[0] for o in seen}
    for p in paths:  # every input file is in the ledger, kept or removed with a reason
        rel = p.relative_to(src).as_posix()
        assert rel in files or any(f.startswith(rel + "/") for f in files), rel
    assert any(r.startswith("extract:error:too_large") for r in stats["removed"])  # the bomb
    assert peak < 4 << 30, f"peak memory {peak / 2**30:.2f} GiB"


SITECUSTOMIZE = '''
import os, socket
_log = os.environ["CURATE_NET_LOG"]
_orig = socket.socket.connect
def _guard(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if not (host.startswith("127.") or host in ("::1", "localhost") or host == os.environ.get("CURATE_LOCAL_IP")):
            with open(_log, "a") as f:
                f.write(f"{os.getpid()} {address} {open('/proc/self/cmdline').read()[:300]!r}\\n")
            raise OSError("network access blocked by the test")
    return _orig(self, address)
socket.socket.connect = _guard
socket.socket.connect_ex = lambda self, a: (_guard(self, a), 0)[1]
'''


def test_no_network_access_during_a_run(tmp_path):
    """Every process of the run (driver and Ray workers) refuses connections that leave the
    machine; Ray's own traffic to this machine's address is allowed."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "net.log"
    env = dict(os.environ, PYTHONPATH=f"{guard}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               CURATE_NET_LOG=str(log), CURATE_LOCAL_IP=_local_ip())
    out = tmp_path / "out"
    res, _ = run_measured(["run", "--config", str(ROOT / "configs" / "demo.yaml"), "--input", str(ROOT / "curate" / "demo"),
                           "--output", str(out)], env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    attempts = log.read_text().splitlines() if log.exists() else []
    # Ray's own dashboard process probes the cloud metadata address once at start-up, even with
    # usage statistics off; it is refused like everything else and the run does not need it.
    ours = [a for a in attempts if "ray/dashboard/" not in a]
    assert ours == [], ours


def _local_ip() -> str:
    import socket

    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def test_disk_full_is_one_line_and_resumes(tmp_path):
    """OUT on a tiny tmpfs fills up mid-stage; after the disk grows, the same command resumes."""
    import random

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        rng = random.Random(0)
        words = [f"w{rng.getrandbits(24):x}" for _ in range(5000)]  # incompressible enough
        src = tmp_path / "in"
        src.mkdir()
        for i in range(4):
            (src / f"{i}.jsonl").write_text(
                "\n".join(json.dumps({"text": " ".join(rng.choices(words, k=300))}) for _ in range(300)) + "\n")
        cfg = tmp_path / "c.yaml"
        cfg.write_text("stages: [extract]\nrun:\n  task_retries: 0\n  shard_mb: 0.1\n")
        out = disk / "out"
        args = ["stage", "extract", "--config", str(cfg), "--input", str(src), "--output", str(out), "--workers", "1"]
        res, _ = run_measured(args)
        assert res.returncode == 1, res.stderr[-2000:]
        lines = [l for l in res.stderr.splitlines() if l.startswith("error:")]
        assert len(lines) == 1 and "No space left" in lines[0] and "part-0000" in lines[0], res.stderr[-2000:]
        assert "Traceback" not in res.stderr
        done_before = len(list((out / "extract" / "_done").glob("*.json")))
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        res, _ = run_measured(args)
        assert res.returncode == 0, res.stderr[-2000:]
        stats = json.loads((out / "extract" / "_stats.json").read_text())
        assert stats["docs_in"] == stats["docs_out"] == 1200 and stats["shards"] == 4
        assert done_before < 4
        assert not list(out.rglob(".*.tmp-*"))
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_unwritable_output_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = subprocess.run(CURATE + ["stage", "extract", "--input", str(tmp_path), "--output", str(blocker / "out")],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error: output directory not writable") and "\n" not in res.stderr.strip()


def test_outputs_have_ordinary_permissions_and_stay_inside(cli, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text("hello there")
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        assert cli("stage", "extract", "--input", src, "--output", out).exit_code == 0
    finally:
        os.umask(old)
    for p in out.rglob("*"):
        assert p.resolve().is_relative_to(out.resolve())
        if p.is_file():
            assert p.stat().st_mode & 0o777 == 0o644, p


def test_nothing_unpickles_or_evaluates_input():
    """Input data is parsed, never executed: no pickle/marshal loads, eval or exec in the code,
    and YAML only through safe loaders."""
    import re

    import yaml

    from curate.trainer import config as trainer_config

    bad = ("pickle.load", "marshal.load", "eval(", "exec(", "shelve.open")
    for folder in ("curate", "stages", "filters"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            for b in bad:
                assert b not in text, f"{path}: {b}"
            for line in text.splitlines():
                if "yaml.load(" not in line:
                    continue
                loader = re.search(r"Loader=(\w+)", line)
                assert loader, f"{path}: yaml.load without a Loader"
                cls = getattr(trainer_config, loader.group(1), None)
                assert isinstance(cls, type) and issubclass(cls, yaml.SafeLoader), f"{path}: {line.strip()}"
