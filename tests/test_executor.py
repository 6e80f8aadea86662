"""The executor's promises: failing shards are retried, a shard failing every time stops the run
naming its input, and a document that hangs a worker is removed instead of stalling the run."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ray import cloudpickle
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import schema
from curate.config import RunConfig, Section
from curate.executor import Executor, PipelineError
from curate.worker import ShardTask
from curate.stage import Result, Stage

# Workers cannot import this test module: ship its stage classes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Empty(Section):
    pass


class HangingStage(Stage):
    name = "hangtest"
    Config = Empty

    def process(self, batch):
        for origin, text in zip(batch.column("origin").to_pylist(), batch.column("text").to_pylist()):
            self.heartbeat(origin)
            if "HANG" in text:
                time.sleep(3600)  # stands in for C code that ignores signals
        return Result(batch, schema.with_reason(batch.slice(0, 0), []))


class FailingStage(Stage):
    name = "failtest"
    Config = Empty

    def process(self, batch):
        raise ValueError("this shard always fails")


class FlakyStage(Stage):
    """Fails the first time it sees a shard (a marker file remembers), then works."""

    name = "flaky"
    Config = Empty

    def process(self, batch):
        marker = self.work_dir / "failed-once"
        if not marker.exists():
            marker.write_text("x")
            raise RuntimeError("transient failure")
        return Result(batch, schema.with_reason(batch.slice(0, 0), []))


def make_part(path: Path, texts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    origins = [f"doc#{i}" for i in range(len(texts))]
    table = schema.conform(pa.table({"id": [schema.doc_id(o) for o in origins], "origin": origins,
                                     "text": pa.array(texts, pa.large_string())}))
    pq.write_table(table, path)


def run(ex: Executor, cls, tmp_path: Path, parts: list[Path]):
    out = tmp_path / "out"
    work = out / "_work"
    work.mkdir(parents=True, exist_ok=True)
    tasks = [ShardTask(p.stem, input_path=str(p)) for p in parts]
    with ex:  # joins the test session's Ray; frees its workers on exit
        return ex.run_shards(cls, Empty(), work, tasks, out, cls.name, total=len(tasks)), out


def test_hanging_document_is_removed_not_stalled(ray_session, tmp_path):
    part = tmp_path / "in" / "part-00000.parquet"
    make_part(part, ["fine one", "this one will HANG forever", "fine two"])
    ex = Executor(2, None, RunConfig(doc_timeout_s=3, task_retries=0))
    t0 = time.monotonic()
    _, out = run(ex, HangingStage, tmp_path, [part])
    assert time.monotonic() - t0 < 400  # generous: a loaded 2-core box starts Ray actors slowly
    kept = pq.read_table(out / "part-00000.parquet").column("origin").to_pylist()
    removed = pq.read_table(out / "removed" / "part-00000.parquet").to_pylist()
    assert kept == ["doc#0", "doc#2"]
    assert [(r["origin"], r["reason"]) for r in removed] == [("doc#1", "hangtest:error:timeout")]


def test_shard_failing_every_time_names_its_input(ray_session, tmp_path):
    part = tmp_path / "in" / "part-00003.parquet"
    make_part(part, ["a", "b"])
    ex = Executor(1, None, RunConfig(task_retries=1))
    with pytest.raises(PipelineError) as e:
        run(ex, FailingStage, tmp_path, [part])
    msg = str(e.value)
    assert "part-00003" in msg and str(part) in msg and "failed 2 times" in msg and "always fails" in msg


def test_failed_shard_is_retried(ray_session, tmp_path):
    part = tmp_path / "in" / "part-00000.parquet"
    make_part(part, ["a", "b", "c"])
    ex = Executor(1, None, RunConfig(task_retries=1))
    done, out = run(ex, FlakyStage, tmp_path, [part])
    assert list(done) == ["part-00000"]
    assert pq.read_table(out / "part-00000.parquet").num_rows == 3


def _square_or_die(item):
    """Squares its number; the first call for a marked item kills its worker process."""
    n, marker = item
    if marker is not None and not Path(marker).exists():
        Path(marker).write_text("x")
        import os

        os._exit(1)  # the worker dies: not the item's fault
    if n < 0:
        raise ValueError(f"negative item {n}")
    return n * n


def test_global_step_map_orders_results_and_survives_a_dead_worker(ray_session, tmp_path):
    ex = Executor(2, None, RunConfig(task_retries=1))
    items = [(n, str(tmp_path / "died") if n == 3 else None) for n in range(6)]
    with ex:
        assert ex.map(_square_or_die, items, "square") == [0, 1, 4, 9, 16, 25]
        assert (tmp_path / "died").exists() and ex.step_seconds > 0
        with pytest.raises(PipelineError, match="square failed on item 1: .*negative item -1"):
            ex.map(_square_or_die, [(0, None), (-1, None)], "square")
