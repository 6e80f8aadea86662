"""`curate run --ray-address` against a real two-node Ray cluster started with `ray start`.

Both nodes live on this machine on loopback addresses (127.0.0.2 and 127.0.0.3: Ray rewrites
127.0.0.1 to the machine's outward address, other loopback addresses it leaves alone). The
cluster uses Ray's token authentication, as `ray start` does by default since Ray 2.60; curate
joins it with the same token, never by switching authentication off. The second test shares no
path between the nodes: input and output live on the S3 server of the `s3_server` fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
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


@contextlib.contextmanager
def two_node_cluster(tmp_path: Path, env: dict):
    """A head and a worker node started with `ray start` on loopback; yields the head's address."""
    port = free_port()
    address = f"127.0.0.2:{port}"
    head = ray_node(["--head", f"--port={port}", "--node-ip-address=127.0.0.2", "--include-dashboard=false"],
                    env, tmp_path / "head.log")
    worker = None
    try:
        wait_for_nodes(address, 1, env)
        worker = ray_node([f"--address={address}", "--node-ip-address=127.0.0.3"], env, tmp_path / "worker.log")
        wait_for_nodes(address, 2, env)
        yield address
    finally:
        for p in (worker, head):
            if p is not None:
                stop(p)


def cluster_env() -> dict:
    """The nodes' environment: token authentication, and no object-store credentials (the driver
    hands its own to the workers)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=uuid.uuid4().hex)
    return env


needs_ray = pytest.mark.skipif(not Path(RAY).exists(), reason="the `ray` command is not installed beside this Python")


@pytest.fixture
def embedded(cli, tmp_path) -> tuple[Path, Path, Path]:
    """(corpus, config, OUT of the run on the embedded Ray): what the cluster's run must equal."""
    src = tmp_path / "corpus"
    split_corpus(src, n_files=12)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG)
    ref = tmp_path / "ref"
    assert cli("run", "--config", cfg, "--input", src, "--output", ref).exit_code == 0
    return src, cfg, ref


@needs_ray
def test_two_node_cluster_matches_embedded_run(embedded, tmp_path):
    src, cfg, ref = embedded
    env = cluster_env()
    with two_node_cluster(tmp_path, env) as address:
        out = tmp_path / "out"
        proc = subprocess.run([sys.executable, "-m", "curate.cli", "run", "--config", str(cfg), "--input", str(src),
                               "--output", str(out), "--ray-address", address, "--workers", "2"],
                              env=env, capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stderr[-3000:]
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


@needs_ray
def test_two_node_cluster_with_s3_input_and_output(embedded, s3_server, tmp_path):
    """No path shared between the nodes: the corpus and OUT are on the S3 server, and only the
    driver has the credentials (the workers get them from it)."""
    src, cfg, ref = embedded
    bucket = s3_server.bucket("cluster-" + uuid.uuid4().hex[:8])
    s3_server.upload(src, f"{bucket}/corpus")

    env = cluster_env()
    with two_node_cluster(tmp_path, env) as address:
        driver_env = s3_server.env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=env["RAY_AUTH_TOKEN"])
        proc = subprocess.run([sys.executable, "-m", "curate.cli", "run", "--config", str(cfg),
                               "--input", f"{bucket}/corpus", "--output", f"{bucket}/out", "--ray-address", address,
                               "--workers", "2"], env=driver_env, capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stderr[-3000:]
    out = s3_server.download(f"{bucket}/out", tmp_path / "from-s3")
    run = json.loads((out / "run.json").read_text())
    assert len(run["nodes_used"]) == 2, "both nodes should have processed shards"
    a = json.loads((out / "extract" / "_stats.json").read_text())
    b = json.loads((ref / "extract" / "_stats.json").read_text())
    assert counts(a) == counts(b)
    parts = sorted((ref / "extract").glob("**/part-*.parquet"))
    assert parts and all((out / p.relative_to(ref)).read_bytes() == p.read_bytes() for p in parts)
