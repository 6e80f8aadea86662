"""The executor: the only code that knows Ray.

It starts an embedded local Ray (or joins a cluster), keeps `workers` actors busy with one shard
each, retries failed or hung shards on a fresh actor, and gives stages' global steps a bounded
parallel `map`. Each actor builds its stage once, so models and tokenizers load once per worker.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from curate import storage
from curate.progress import Progress
from curate.worker import ShardTask, run_shard

# One thread per worker for every library that would otherwise spawn one per core: on a small
# machine N workers x M threads each only thrash.
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONWARNINGS": "ignore",
    # Ray's usage statistics probe cloud metadata addresses and report home: a curation run
    # never touches the network.
    "RAY_USAGE_STATS_ENABLED": "0",
}


class PipelineError(Exception):
    """A failure of the run itself (not a user mistake): exit code 1 with one clear line."""


def limit_threads() -> None:
    os.environ.update(THREAD_ENV)
    import pyarrow

    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(2)


POISONED = "poisoned.txt"  # in the stage's work dir: origins that hung a worker, one per line
# A heartbeat file: the origin a worker is busy with (BEAT_BYTES), then the documents of its shard
# done so far (DOCS_BYTES), each a line padded with spaces and rewritten in place.
BEAT_BYTES = 4096
DOCS_BYTES = 32
BEAT_POLL_S = 5.0  # how often the heartbeats of workers on other machines are fetched


def read_beat(path: str) -> tuple[str, float, int] | None:
    """(the origin a worker is busy with, '' between costly documents; seconds since the file
    last changed; documents of the shard done), or None when there is no heartbeat file."""
    try:
        age = time.time() - os.stat(path).st_mtime
        with open(path, "rb") as f:
            data = f.read(BEAT_BYTES + DOCS_BYTES)
    except OSError:
        return None
    origin = data[:BEAT_BYTES].split(b"\n", 1)[0].decode("utf-8", "replace")
    docs = data[BEAT_BYTES:].split(b"\n", 1)[0].strip()
    return origin, age, int(docs) if docs.isdigit() else 0


class BeatReader:
    """A Ray actor pinned to one machine that reads the heartbeat files of the workers there:
    a cluster's machines share no disk, so the driver asks."""

    def read(self, paths: list[str]) -> dict[str, tuple[str, float, int] | None]:
        return {p: read_beat(p) for p in paths}


class Heartbeats:
    """The heartbeat files of running shards. Each worker writes one on its own machine's local
    disk (one file per shard attempt, so a retry never reads its predecessor's); the driver reads
    those on its machine directly and fetches the others through a BeatReader per machine."""

    def __init__(self):
        self.dir = os.path.join(tempfile.gettempdir(), f"curate-beats-{os.getuid()}", f"{os.getpid()}-{time.time_ns()}")
        self.here: str | None = None  # the driver's node id
        self.readers: dict[str, Any] = {}  # node id -> BeatReader
        self.pending: dict[str, tuple[Any, float]] = {}  # node id -> (outstanding read, when asked)
        self.fetched: dict[str, tuple[tuple[str, float, int] | None, float]] = {}  # path -> (reading, when)

    def path(self, shard: str, attempt: int) -> str:
        return os.path.join(self.dir, f"beat-{shard}-{attempt}")

    def read(self, path: str, node: str | None) -> tuple[str, float, int] | None:
        """The latest reading of a beat file: (origin, age in seconds, documents done)."""
        if node is None or node == self.here:
            return read_beat(path)
        reading, when = self.fetched.get(path, (None, 0.0))
        return None if reading is None else (reading[0], reading[1] + time.monotonic() - when, reading[2])

    def poll(self, running: list[tuple[str, str | None]]) -> None:
        """Fetch the beat files of shards running on other machines, every BEAT_POLL_S, without
        waiting for the answers (they are used from the next call on)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        now = time.monotonic()
        by_node: dict[str, list[str]] = {}
        for path, node in running:
            if node is not None and node != self.here:
                by_node.setdefault(node, []).append(path)
        for node, paths in by_node.items():
            ref, asked = self.pending.get(node, (None, float("-inf")))
            if ref is not None and ray.wait([ref], timeout=0)[0]:
                try:
                    for path, reading in ray.get(ref).items():
                        self.fetched[path] = (reading, asked)
                except Exception:  # the machine is gone: its shards fail on their own
                    pass
                ref = None
                self.pending[node] = (None, asked)
            if ref is None and now - asked >= BEAT_POLL_S:
                if node not in self.readers:
                    self.readers[node] = ray.remote(num_cpus=0)(BeatReader).options(
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
                self.pending[node] = (self.readers[node].read.remote(paths), now)


def use_cluster_token() -> None:
    """Join token-authenticated clusters (the default of `ray start` since Ray 2.60) when a
    token is at hand and the user has not chosen a mode."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    token_file = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(token_file):
        os.environ["RAY_AUTH_MODE"] = "token"


class ShardWorker:
    """A Ray actor that runs shards one at a time. It keeps its stage instance while it serves
    the same stage, so a model loads once per worker, and the process is reused by the stages
    that follow (a new stage replaces the old instance)."""

    def __init__(self, plugins: tuple[str, ...] = ()):
        limit_threads()
        from curate import registry

        registry.load_installed()  # the same filters, stages and readers the driver knows
        registry.use(list(plugins))
        self.key: tuple | None = None
        self.stage = None

    def _stage_for(self, stage_cls, config, work_dir: storage.PathLike | None):
        key = (stage_cls.__module__, stage_cls.__qualname__, str(work_dir))
        if key != self.key:
            self.stage = None  # free the previous stage's model before loading the next
            self.stage = stage_cls(config, work_dir)
            self.key = key
        poisoned = work_dir / POISONED if work_dir is not None else None
        if poisoned is not None and poisoned.is_file():  # another worker may have added one
            self.stage.poisoned = set(poisoned.read_text().splitlines())
        return self.stage

    def run(self, stage_cls, config, work_dir: storage.PathLike | None, task: ShardTask, out_dir: storage.PathLike,
            batch_docs: int, batch_bytes: int, beat: str) -> dict:
        stage = self._stage_for(stage_cls, config, work_dir)
        # The stage's per-document loop calls heartbeat(origin) before costly work; the driver
        # reads this file (on this machine's disk) to name the document if the worker hangs.
        path = Path(beat)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

        def beat(origin: str | None) -> None:
            data = (origin or "").encode("utf-8", "replace")[: BEAT_BYTES - 1] + b"\n"
            os.pwrite(fd, data.ljust(BEAT_BYTES, b" "), 0)

        def docs_done(n: int) -> None:
            os.pwrite(fd, f"{n}\n".encode().ljust(DOCS_BYTES, b" "), BEAT_BYTES)

        stage.heartbeat = beat
        try:
            return run_shard(stage, task, out_dir, batch_docs, batch_bytes, on_batch=docs_done)
        except Exception as exc:
            from curate import registry

            plugin = registry.plugin_of(exc)
            if plugin is None:
                raise
            raise registry.PluginError(f"{plugin.describe()} raised {type(exc).__name__}: {exc}") from exc
        finally:
            os.close(fd)
            path.unlink(missing_ok=True)

    def call(self, fn: Callable, item) -> tuple[float, Any]:
        """One item of a global step: (seconds inside `fn`, its result)."""
        t0 = time.perf_counter()
        result = fn(item)
        return time.perf_counter() - t0, result

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()


@dataclass
class StageContext:
    """What a stage's global steps (`prepare`, `finish`) get from the executor."""

    out: storage.PathLike
    stage_dir: storage.PathLike
    work_dir: storage.PathLike
    config: Any  # the stage's config section
    executor: "Executor"
    input: storage.PathLike | None = None  # the stage's input: a previous stage's output dir (or extract's corpus)

    def map(self, fn: Callable, items: Iterable, desc: str = "") -> list:
        return self.executor.map(fn, list(items), desc)


class Executor:
    def __init__(self, workers: int, ray_address: str | None, run_config, env: dict[str, str] | None = None,
                 plugins: tuple[str, ...] = ()):
        self.workers = workers
        self.plugins = tuple(plugins)  # import paths the config names: every worker registers them
        self.ray_address = ray_address
        self.run_config = run_config
        self.env = dict(THREAD_ENV) | (env or {})  # what every worker's environment holds
        self.beats = Heartbeats()
        self.node_refs: dict[Any, Any] = {}  # actor -> its node() call
        self.nodes: dict[Any, str] = {}  # actor -> node id
        self.started_ray = False
        self.startup_seconds = 0.0
        self.nodes_used: set[str] = set()
        self.pool: list = []  # idle ShardWorker actors, reused from one stage to the next
        self.step_seconds = 0.0  # time inside global steps' items (`map`), for the ledger

    # -- Ray lifecycle --------------------------------------------------------------------
    def __enter__(self) -> "Executor":
        if self.ray_address:
            use_cluster_token()  # before Ray is imported: it reads the mode once, at import
        import ray

        t0 = time.perf_counter()
        os.environ.update(THREAD_ENV)
        runtime_env = {"env_vars": self.env}
        if ray.is_initialized():
            pass  # an embedding program (or the test suite) already holds a Ray
        elif self.ray_address:
            try:
                ray.init(address=self.ray_address, runtime_env=runtime_env, logging_level=logging.WARNING,
                         log_to_driver=False)
            except ConnectionError as e:
                raise PipelineError(
                    f"cannot join the Ray cluster at {self.ray_address}: {e}. A cluster started with "
                    "`ray start` uses token authentication: run curate with RAY_AUTH_MODE=token and the "
                    "cluster's token in ~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH"
                ) from None
            self.started_ray = True
        else:
            os.environ.pop("RAY_ADDRESS", None)
            # Ray 2.60 turns token authentication on for a new local instance and warns about
            # its own default; the embedded Ray is ours, so the warning is not news.
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
            ray.init(
                address="local",
                num_cpus=max(self.workers, os.cpu_count() or 1),
                object_store_memory=self.run_config.object_store_mb << 20,
                include_dashboard=False,
                runtime_env=runtime_env,
                logging_level=logging.ERROR,  # the embedded Ray is ours: its start-up chatter is not news
                log_to_driver=False,
            )
            self.started_ray = True
        # Start the workers now, once for the whole run: their processes (interpreter, imports)
        # come up while nothing else waits, and count as start-up, not as any stage's time. On a
        # cluster short of CPUs some may stay pending; the run goes on with those that started.
        self.pool = [self._actor() for _ in range(self.workers)]
        ray.wait([self.node_refs.setdefault(a, a.node.remote()) for a in self.pool], num_returns=self.workers,
                 timeout=120)
        self.beats.here = ray.get_runtime_context().get_node_id()
        self.startup_seconds = time.perf_counter() - t0
        return self

    def __exit__(self, *exc) -> None:
        if self.pool:
            self._drain_pool()
        storage.remove_tree(Path(self.beats.dir))  # on this machine; the others keep empty folders
        if self.started_ray:
            import ray

            ray.shutdown()

    # -- shards -------------------------------------------------------------------------
    def _actor(self):
        import ray

        return ray.remote(num_cpus=1, max_restarts=0)(ShardWorker).remote(self.plugins)

    def _take_actors(self, n: int) -> list:
        while len(self.pool) < n:
            self.pool.append(self._actor())
        taken, self.pool = self.pool[:n], self.pool[n:]
        return taken

    def _drain_pool(self) -> None:
        """End the idle workers (at the end of a run: an embedding program's Ray stays up)."""
        import ray

        for actor in self.pool:
            ray.kill(actor, no_restart=True)
        self.pool = []

    def run_shards(self, stage_cls, config, work_dir: storage.PathLike | None, tasks: list[ShardTask],
                   out_dir: storage.PathLike, label: str, total: int) -> dict[str, str]:
        """Run `tasks` (the shards not yet done) on up to `workers` actors.

        Returns shard name -> node id of the worker that did it. A shard that fails (an exception,
        a dead worker, or a hang past `shard_timeout_s`) is retried on a fresh actor; after
        `task_retries` retries the run stops with an error naming the shard's input.
        """
        import ray

        rc = self.run_config
        batch_bytes = int(rc.batch_mb * (1 << 20))
        progress = Progress(label, total=total, done=total - len(tasks))
        # Largest shards first (the queue pops from its end): a big shard started last would
        # leave the other workers idle at the end of the stage.
        queue = sorted(tasks, key=lambda t: (t.size, t.name))
        attempts: dict[str, int] = {}  # failures per shard
        tries: dict[str, int] = {}  # dispatches per shard: each has its own heartbeat file
        idle = self._take_actors(min(self.workers, len(tasks)))
        running: dict[Any, tuple[Any, ShardTask, float, str]] = {}  # ref -> (actor, task, start, beat file)
        done_nodes: dict[str, str] = {}
        try:
            while queue or running:
                while queue and idle:
                    actor = idle.pop()
                    task = queue.pop()
                    tries[task.name] = tries.get(task.name, 0) + 1
                    beat = self.beats.path(f"{label}-{task.name}", tries[task.name])
                    ref = actor.run.remote(stage_cls, config, work_dir, task, out_dir, rc.batch_docs, batch_bytes, beat)
                    running[ref] = (actor, task, time.monotonic(), beat)
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                now = time.monotonic()
                for ref in ready:
                    actor, task, _start, _beat = running.pop(ref)
                    try:
                        counters = ray.get(ref)
                    except Exception as exc:  # the task raised, or its worker died
                        self._retry(task, exc, attempts, queue)
                        ray.kill(actor, no_restart=True)
                        actor = self._actor()
                    else:
                        done_nodes[task.name] = self._node(actor, wait=True)
                        progress.advance(counters["docs_in"])
                    idle.append(actor)
                self.beats.poll([(beat, self._node(actor)) for actor, _, _, beat in running.values()])
                readings = {beat: self.beats.read(beat, self._node(actor)) for actor, _, _, beat in running.values()}
                if progress.live:
                    progress.running(sum(r[2] for r in readings.values() if r is not None))
                for ref, (actor, task, start, beat) in list(running.items()):
                    hung = self._hung_document(readings[beat])
                    if hung is None and now - start <= rc.shard_timeout_s:
                        continue
                    running.pop(ref)
                    ray.kill(actor, no_restart=True)
                    if hung:  # the document is removed on the retry; the shard is not at fault
                        poisoned = work_dir / POISONED
                        known = poisoned.read_text() if poisoned.is_file() else ""
                        storage.write_bytes(poisoned, (known + hung + "\n").encode())
                        queue.append(task)
                    else:
                        self._retry(task, TimeoutError(f"no result after {rc.shard_timeout_s:.0f}s"), attempts, queue)
                    idle.append(self._actor())
        finally:
            progress.close()
            for actor in [r[0] for r in running.values()]:  # only after an error
                ray.kill(actor, no_restart=True)
            self.pool.extend(idle)
        self.nodes_used.update(done_nodes.values())
        return done_nodes

    def _node(self, actor, wait: bool = False) -> str | None:
        """The node id an actor runs on (None while it is still starting, unless `wait`)."""
        import ray

        if actor not in self.nodes:
            ref = self.node_refs.setdefault(actor, actor.node.remote())
            if not wait and not ray.wait([ref], timeout=0)[0]:
                return None
            self.nodes[actor] = ray.get(ref)
        return self.nodes[actor]

    def _hung_document(self, reading: tuple[str, float, int] | None) -> str | None:
        """The origin a worker has been stuck on for more than doc_timeout_s, if any."""
        if reading is None or reading[1] <= self.run_config.doc_timeout_s:
            return None
        return reading[0] or None

    def _retry(self, task: ShardTask, exc: Exception, attempts: dict, queue: list) -> None:
        n = attempts.get(task.name, 0) + 1
        attempts[task.name] = n
        if n > self.run_config.task_retries:
            raise PipelineError(f"shard {task.name} failed {n} times (input: {task.describe()}): {_why(exc)}")
        logging.getLogger("curate").warning("retrying %s after: %s", task.name, _why(exc))
        queue.append(task)

    # -- global steps -------------------------------------------------------------------
    def map(self, fn: Callable, items: list, desc: str = "") -> list:
        """Run `fn(item)` for every item on the pooled workers, at most `workers` at once;
        ordered results. The same processes serve shards and global steps, so a step starts no
        new Python process. An item whose worker dies is retried on a fresh one (`task_retries`
        times); an exception raised by `fn` stops the run."""
        import ray
        from ray.exceptions import RayActorError

        results: list = [None] * len(items)
        queue = list(reversed(range(len(items))))
        attempts: dict[int, int] = {}
        idle = self._take_actors(min(self.workers, len(items)))
        running: dict[Any, tuple[Any, int]] = {}  # ref -> (actor, item index)
        progress = Progress(desc or getattr(fn, "__name__", "map"), total=len(items), done=0)
        try:
            while queue or running:
                while queue and idle:
                    actor, i = idle.pop(), queue.pop()
                    running[actor.call.remote(fn, items[i])] = (actor, i)
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    actor, i = running.pop(ref)
                    try:
                        seconds, results[i] = ray.get(ref)
                    except RayActorError as exc:  # the worker died: the item is not at fault
                        attempts[i] = attempts.get(i, 0) + 1
                        if attempts[i] > self.run_config.task_retries:
                            raise PipelineError(f"{desc or 'step'}: item {i} lost its worker {attempts[i]} times: "
                                                f"{_last_line(exc)}") from None
                        ray.kill(actor, no_restart=True)
                        idle.append(self._actor())
                        queue.append(i)
                        continue
                    except Exception as exc:
                        raise PipelineError(f"{desc or 'step'} failed on item {i}: {_last_line(exc)}") from None
                    self.step_seconds += seconds
                    idle.append(actor)
                    progress.advance(0)
        finally:
            progress.close()
            for actor, _ in running.values():  # only after an error
                ray.kill(actor, no_restart=True)
            self.pool.extend(idle)
        return results


def _why(exc: BaseException) -> str:
    """A failed shard's cause in one line: a plugin's error as the worker worded it (it names the
    plugin), anything else by the last line of its traceback."""
    from curate.registry import PluginError

    cause = getattr(exc, "cause", exc)
    return str(cause.args[0]) if isinstance(cause, PluginError) and cause.args else _last_line(exc)


def _last_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__
