"""The executor: the only code that knows Ray.

It starts an embedded local Ray (or joins a cluster), keeps `workers` actors busy with one shard
each, retries failed or hung shards on a fresh actor, and gives stages' global steps a bounded
parallel `map`. Each actor builds its stage once, so models and tokenizers load once per worker.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from curate.progress import Progress
from curate.shardio import ShardTask, run_shard

# One thread per worker for every library that would otherwise spawn one per core: on a small
# machine N workers x M threads each only thrash.
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONWARNINGS": "ignore",
}


class PipelineError(Exception):
    """A failure of the run itself (not a user mistake): exit code 1 with one clear line."""


def limit_threads() -> None:
    os.environ.update(THREAD_ENV)
    import pyarrow

    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(2)


class ShardWorker:
    """Holds one stage instance; runs shards one at a time (a Ray actor)."""

    def __init__(self, stage_cls, config, work_dir: str | None):
        limit_threads()
        self.stage = stage_cls(config, Path(work_dir) if work_dir else None)

    def run(self, task: ShardTask, out_dir: str, batch_docs: int, batch_bytes: int) -> dict:
        return run_shard(self.stage, task, Path(out_dir), batch_docs, batch_bytes)

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()


@dataclass
class StageContext:
    """What a stage's global steps (`prepare`, `finish`) get from the executor."""

    out: Path
    stage_dir: Path
    work_dir: Path
    config: Any  # the stage's config section
    executor: "Executor"

    def map(self, fn: Callable, items: Iterable, desc: str = "") -> list:
        return self.executor.map(fn, list(items), desc)


class Executor:
    def __init__(self, workers: int, ray_address: str | None, run_config):
        self.workers = workers
        self.ray_address = ray_address
        self.run_config = run_config
        self.started_ray = False
        self.startup_seconds = 0.0
        self.nodes_used: set[str] = set()

    # -- Ray lifecycle --------------------------------------------------------------------
    def __enter__(self) -> "Executor":
        import ray

        t0 = time.perf_counter()
        os.environ.update(THREAD_ENV)
        runtime_env = {"env_vars": dict(THREAD_ENV)}
        if ray.is_initialized():
            pass  # an embedding program (or the test suite) already holds a Ray
        elif self.ray_address:
            ray.init(address=self.ray_address, runtime_env=runtime_env, logging_level=logging.WARNING,
                     log_to_driver=False)
            self.started_ray = True
        else:
            os.environ.pop("RAY_ADDRESS", None)
            ray.init(
                address="local",
                num_cpus=max(self.workers, os.cpu_count() or 1),
                object_store_memory=self.run_config.object_store_mb << 20,
                include_dashboard=False,
                runtime_env=runtime_env,
                logging_level=logging.WARNING,
                log_to_driver=False,
                configure_logging=True,
            )
            self.started_ray = True
        self.startup_seconds = time.perf_counter() - t0
        return self

    def __exit__(self, *exc) -> None:
        if self.started_ray:
            import ray

            ray.shutdown()

    # -- shards -------------------------------------------------------------------------
    def _actor(self, stage_cls, config, work_dir):
        import ray

        cls = ray.remote(num_cpus=1, max_restarts=0)(ShardWorker)
        return cls.remote(stage_cls, config, str(work_dir) if work_dir else None)

    def run_shards(self, stage_cls, config, work_dir: Path | None, tasks: list[ShardTask], out_dir: Path,
                   label: str, total: int) -> dict[str, str]:
        """Run `tasks` (the shards not yet done) on up to `workers` actors.

        Returns shard name -> node id of the worker that did it. A shard that fails (an exception,
        a dead worker, or a hang past `shard_timeout_s`) is retried on a fresh actor; after
        `task_retries` retries the run stops with an error naming the shard's input.
        """
        import ray

        rc = self.run_config
        batch_bytes = int(rc.batch_mb * (1 << 20))
        progress = Progress(label, total=total, done=total - len(tasks))
        queue = list(reversed(tasks))
        attempts: dict[str, int] = {}
        actors = [self._actor(stage_cls, config, work_dir) for _ in range(min(self.workers, len(tasks)))]
        idle = list(actors)
        running: dict[Any, tuple[Any, ShardTask, float]] = {}  # ref -> (actor, task, start)
        done_nodes: dict[str, str] = {}
        node_of: dict[Any, str] = {}
        try:
            while queue or running:
                while queue and idle:
                    actor = idle.pop()
                    task = queue.pop()
                    ref = actor.run.remote(task, str(out_dir), rc.batch_docs, batch_bytes)
                    running[ref] = (actor, task, time.monotonic())
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                now = time.monotonic()
                for ref in ready:
                    actor, task, _start = running.pop(ref)
                    try:
                        counters = ray.get(ref)
                    except Exception as exc:  # the task raised, or its worker died
                        self._retry(task, exc, attempts, queue)
                        ray.kill(actor, no_restart=True)
                        actor = self._actor(stage_cls, config, work_dir)
                    else:
                        if actor not in node_of:
                            node_of[actor] = ray.get(actor.node.remote())
                        done_nodes[task.name] = node_of[actor]
                        progress.advance(counters["docs_in"])
                    idle.append(actor)
                for ref, (actor, task, start) in list(running.items()):
                    if now - start > rc.shard_timeout_s:
                        running.pop(ref)
                        ray.kill(actor, no_restart=True)
                        self._retry(task, TimeoutError(f"no result after {rc.shard_timeout_s:.0f}s"), attempts, queue)
                        idle.append(self._actor(stage_cls, config, work_dir))
        finally:
            progress.close()
            for actor in idle + [a for a, _, _ in running.values()]:
                ray.kill(actor, no_restart=True)
        self.nodes_used.update(done_nodes.values())
        return done_nodes

    def _retry(self, task: ShardTask, exc: Exception, attempts: dict, queue: list) -> None:
        n = attempts.get(task.name, 0) + 1
        attempts[task.name] = n
        if n > self.run_config.task_retries:
            cause = str(exc).strip().splitlines()
            cause = cause[-1] if cause else type(exc).__name__
            raise PipelineError(f"shard {task.name} failed {n} times (input: {task.describe()}): {cause}")
        logging.getLogger("curate").warning("retrying %s after: %s", task.name, str(exc).strip().splitlines()[-1:] )
        queue.append(task)

    # -- global steps -------------------------------------------------------------------
    def map(self, fn: Callable, items: list, desc: str = "") -> list:
        """Run `fn(item)` for every item as Ray tasks, at most `workers` at once; ordered results."""
        import ray

        remote = ray.remote(num_cpus=1, max_retries=self.run_config.task_retries)(_call_limited)
        results: list = [None] * len(items)
        pending: dict[Any, int] = {}
        next_i = 0
        progress = Progress(desc or getattr(fn, "__name__", "map"), total=len(items), done=0)
        try:
            while next_i < len(items) or pending:
                while next_i < len(items) and len(pending) < self.workers:
                    pending[remote.remote(fn, items[next_i])] = next_i
                    next_i += 1
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    i = pending.pop(ref)
                    try:
                        results[i] = ray.get(ref)
                    except Exception as exc:
                        cause = str(exc).strip().splitlines()
                        raise PipelineError(f"{desc or 'step'} failed on item {i}: {cause[-1] if cause else exc}") from None
                    progress.advance(0)
        finally:
            progress.close()
        return results


def _call_limited(fn: Callable, item):
    limit_threads()
    return fn(item)
