"""`curate run --ray-address` against a real two-node Ray cluster started with `ray start`.

Both nodes live on this machine on loopback addresses (127.0.0.2 and 127.0.0.3: Ray rewrites
127.0.0.1 to the machine's outward address, other loopback addresses it leaves alone). The
cluster uses Ray's token authentication, as `ray start` does by default since Ray 2.60; curate
joins it with the same token, never by switching authentication off.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from test_resume import counts, outputs, split_corpus

RAY = str(Path(sys.executable).with_name("ray"))
CFG = "stages: [extract]\nrun:\n  shard_mb: 0.01\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return s.getsockname()[1]


def ray_node(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([RAY, "start", "--block", "--num-cpus=1", "--object-store-memory=80000000",
                             "--disable-usage-stats", *args], env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def wait_for_nodes(address: str, n: int, env: dict, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run([RAY, "status", f"--address={address}"], env=env, capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.count(" node_") >= n:
            return
        time.sleep(2)
    pytest.fail(f"the Ray cluster did not reach {n} nodes: {proc.stdout[-500:]} {proc.stderr[-500:]}")


@pytest.mark.skipif(not Path(RAY).exists(), reason="the `ray` command is not installed beside this Python")
def test_two_node_cluster_matches_embedded_run(cli, tmp_path):
    src = tmp_path / "corpus"
    split_corpus(src, n_files=12)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG)
    ref = tmp_path / "ref"
    assert cli("run", "--config", cfg, "--input", src, "--output", ref).exit_code == 0

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=uuid.uuid4().hex)
    port = free_port()
    address = f"127.0.0.2:{port}"
    head = ray_node(["--head", f"--port={port}", "--node-ip-address=127.0.0.2", "--include-dashboard=false"],
                    env, tmp_path / "head.log")
    worker = None
    try:
        wait_for_nodes(address, 1, env)
        worker = ray_node([f"--address={address}", "--node-ip-address=127.0.0.3"], env, tmp_path / "worker.log")
        wait_for_nodes(address, 2, env)
        out = tmp_path / "out"
        proc = subprocess.run([sys.executable, "-m", "curate.cli", "run", "--config", str(cfg), "--input", str(src),
                               "--output", str(out), "--ray-address", address, "--workers", "2"],
                              env=env, capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        for p in (worker, head):
            if p is not None:
                stop(p)
    run = json.loads((out / "run.json").read_text())
    assert len(run["nodes_used"]) == 2, "both nodes should have processed shards"
    assert run["ray_address"] == address
    kept, removed = outputs(out / "extract")
    ref_kept, ref_removed = outputs(ref / "extract")
    assert kept == ref_kept and removed == ref_removed
    a = json.loads((out / "extract" / "_stats.json").read_text())
    b = json.loads((ref / "extract" / "_stats.json").read_text())
    assert counts(a) == counts(b)
    for part in sorted((ref / "extract").glob("part-*.parquet")):  # byte-identical shards
        assert (out / "extract" / part.name).read_bytes() == part.read_bytes()
