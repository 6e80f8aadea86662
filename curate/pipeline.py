"""Run stages of a pipeline into OUT: preflight checks, resume, the ledger and run.json.

Everything a user can get wrong is checked before Ray starts. A stage whose `_stats.json`
exists with the same fingerprint is complete and skipped; a stage with some done-files resumes
with the shards still missing; a stage made with a different config is refused unless `fresh`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from curate import __version__, discover, ledger, registry, storage
from curate.config import Pipeline
from curate.errors import UserError
from curate.executor import Executor, StageContext
from curate.worker import ShardTask
from curate.stage import Stage

STAGE_FILE = "_stage.json"


def stage_dir(out: Path, name: str) -> Path:
    cls = registry.stage_class(name)
    return out / (cls.output_dir or name)


def previous_stage(pipeline: Pipeline, name: str) -> str | None:
    order = pipeline.stages
    i = order.index(name)
    return order[i - 1] if i > 0 else None


class Plan:
    """What to run: stages in order, each with its input and the fingerprint it is made with.

    A fingerprint is the stage's config hash plus its input: a stage output inside OUT by its
    path relative to OUT, so OUT can be moved or copied; anything else by its content listing
    (file names and sizes; the corpus as discovery lists it), so the input can move too.
    """

    def __init__(self, pipeline: Pipeline, out: storage.PathLike, stages: list[str],
                 input_path: storage.PathLike | None, workers: int):
        self.pipeline, self.out, self.stages, self.workers = pipeline, out, stages, workers
        self.inputs: dict[str, storage.PathLike] = {}
        self.fingerprints: dict[str, str] = {}
        self.files: list[discover.InputFile] = []  # extract's input, as discovered
        self.shard_bytes = 0  # extract's shard size
        for i, name in enumerate(stages):
            if name == "extract":
                if input_path is None:
                    raise UserError("extract needs --input DIR: the corpus directory")
                src = input_path
            elif i == 0 and input_path is not None:
                src = input_path
            else:
                prev = stages[i - 1] if i > 0 else previous_stage(pipeline, name)
                if prev is None:
                    raise UserError(f"{name} is the first stage of the config; give --input")
                src = stage_dir(out, prev)
            self.inputs[name] = src.resolve()

    def preflight(self, fresh: bool) -> None:
        for i, name in enumerate(self.stages):
            src = self.inputs[name]
            first = i == 0
            if first:
                storage.check_input(src)
            if first and name != "extract":
                if not list(src.glob("part-*.parquet")):
                    raise UserError(f"{src} holds no stage output (part-*.parquet); run the stage before {name} first")
                if not (src / "_stats.json").is_file():
                    raise UserError(f"{src} is incomplete (no _stats.json); finish that stage first")
        if "extract" in self.stages:
            self.files = discover.discover(self.inputs["extract"])
            _check_documents(self.inputs["extract"], self.files)
        storage.check_output(self.out)
        self.fingerprints = {name: f"{self.pipeline.stage_hash(name)}:{self._input_fingerprint(name)}"
                             for name in self.stages}
        changed = [n for n in self.stages if self.recorded(n).get("fingerprint") not in (None, self.fingerprints[n])]
        if changed and not fresh:
            raise UserError(
                f"{self.out}/{changed[0]} was made with a different config or input; "
                "rerun with --fresh to redo it and the stages after it"
            )
        if fresh:
            start = changed[0] if changed else self.stages[0]
            self.clear_from(start)
        if "extract" in self.stages:  # a resumed stage keeps the shards it started with
            self.shard_bytes = self.recorded("extract").get("shard_bytes") or discover.shard_size(
                sum(f.size for f in self.files), self.workers, self.pipeline.run.shard_mb)

    def _input_fingerprint(self, name: str) -> str:
        src = self.inputs[name]
        inside = storage.relative(src, self.out.resolve())
        if inside is not None:
            return f"OUT/{inside}"
        if name == "extract":
            listing = [[f.rel, f.size, f.format, f.skip] for f in self.files]
        else:
            listing = [[p.name, p.stat().st_size] for p in sorted(src.glob("part-*.parquet"))]
        return "listing:" + hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]

    def label(self, path: storage.PathLike) -> str:
        """How OUT's files name a path: relative to OUT when inside it, so OUT can move."""
        inside = storage.relative(path, self.out.resolve())
        return inside if inside is not None else str(path)

    def recorded(self, name: str) -> dict:
        """The stage's _stage.json: its fingerprint and, for extract, its shard size."""
        path = stage_dir(self.out, name) / STAGE_FILE
        return json.loads(path.read_text()) if path.is_file() else {}

    def clear_from(self, name: str) -> None:
        order = self.pipeline.stages
        start = order.index(name) if name in order else 0
        for later in order[start:]:
            storage.remove_tree(stage_dir(self.out, later))


def _check_documents(src: storage.PathLike, files: list[discover.InputFile]) -> None:
    """An input with nothing a reader takes is a mistake, found before Ray starts."""
    if any(f.skip is None for f in files):
        return
    if not files:
        raise UserError(f"no documents found in {src}: it is empty")
    why = Counter(f.skip for f in files)
    raise UserError(f"no documents found in {src}: {len(files)} entries, none readable "
                    f"({', '.join(f'{n} {reason}' for reason, n in why.most_common())})")


def _tasks_for(plan: Plan, name: str) -> list[ShardTask]:
    src = plan.inputs[name]
    if name == "extract":
        root = src if src.is_dir() else src.parent
        groups = discover.shard(plan.files, plan.shard_bytes)
        return [ShardTask(f"part-{i:05d}", input_root=root, files=g) for i, g in enumerate(groups)]
    parts = sorted(src.glob("part-*.parquet"))
    return [ShardTask(p.stem, input_path=p, label=plan.label(p)) for p in parts]


def _pending(tasks: list[ShardTask], done: set[str]) -> list[ShardTask]:
    return [t for t in tasks if t.name not in done]


def versions() -> dict:
    import pyarrow
    import ray

    return {"curate": __version__, "ray": ray.__version__, "pyarrow": pyarrow.__version__,
            "python": platform.python_version()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def execute(pipeline: Pipeline, out, stages: list[str], input_path, workers: int,
            ray_address: str | None, fresh: bool, log=print) -> dict:
    """Run `stages` into `out` (a local path or an object-store URI); returns run.json's content."""
    out = storage.location(out)
    input_path = storage.location(input_path) if input_path is not None else None
    workers = workers or pipeline.run.workers or (os.cpu_count() or 1)
    plan = Plan(pipeline, out, stages, input_path, workers)
    plan.preflight(fresh)
    run_path = out / "run.json"
    run = json.loads(run_path.read_text()) if run_path.is_file() else {}
    run.update({
        "config": pipeline.dump(), "config_hash": pipeline.config_hash(), "config_source": pipeline.source,
        "input": str(input_path.resolve()) if input_path else run.get("input"),
        "started": _now(), "ended": None, "workers": workers, "ray_address": ray_address,
    })
    run.setdefault("stages", {})
    # Workers on other machines see the same object store with the same identity as this process.
    remote = storage.is_remote(out) or storage.is_remote(input_path)
    with Executor(workers, ray_address, pipeline.run, env=storage.worker_env() if remote else None,
                  plugins=tuple(pipeline.plugins)) as ex:
        run["versions"] = versions()
        run["ray_startup_seconds"] = round(ex.startup_seconds, 3)
        storage.write_json(run_path, run)
        for name in stages:
            entry = run_stage(plan, name, ex, log)
            run["stages"][name] = entry
            storage.write_json(run_path, run)
        run["nodes_used"] = sorted(ex.nodes_used)
    run["ended"] = _now()
    storage.write_json(run_path, run)
    return run


def run_stage(plan: Plan, name: str, ex: Executor, log) -> dict:
    pipeline, out = plan.pipeline, plan.out
    sdir = stage_dir(out, name)
    done_stats = ledger.read_stats(sdir)
    if done_stats is not None and plan.recorded(name).get("fingerprint") == plan.fingerprints[name]:
        log(f"[{name}] complete, skipped ({done_stats['docs_out']} of {done_stats['docs_in']} documents kept)")
        return {"wall_seconds": done_stats["wall_seconds"], "skipped": True}
    t0 = time.perf_counter()
    ex.step_seconds = 0.0
    sdir.mkdir(parents=True, exist_ok=True)
    marker = {"stage": name, "fingerprint": plan.fingerprints[name], "input": plan.label(plan.inputs[name])}
    if name == "extract":
        marker["shard_bytes"] = plan.shard_bytes
    storage.write_json(sdir / STAGE_FILE, marker)
    cls = registry.stage_class(name)
    config = pipeline.section(name)
    work_dir = sdir / "_work"
    work_dir.mkdir(exist_ok=True)
    ctx = StageContext(out=out, stage_dir=sdir, work_dir=work_dir, config=config, executor=ex,
                       input=plan.inputs[name])
    tasks = _tasks_for(plan, name)
    # what a killed run left: temp files, and the parts of shards it did not finish
    storage.clean_partial(sdir, [t.name for t in tasks], subdirs=(".", "removed"))
    done = storage.done_items(sdir) & {t.name for t in tasks}
    if done:
        log(f"[{name}] resuming: {len(done)} of {len(tasks)} shards done")
    # A driver-side instance only for stages with global steps: others load models on workers only.
    has_global = cls.prepare is not Stage.prepare or cls.finish is not Stage.finish
    stage = cls(config, work_dir) if has_global else None
    if stage is not None:
        stage.prepare(ctx)
    pending = _pending(tasks, done)
    ex.run_shards(cls, config, work_dir, pending, sdir, name, total=len(tasks))
    extra = (stage.finish(ctx) or {}) if stage is not None else {}
    if stage is not None:  # the global steps' share of the stage's core time
        extra["step_seconds"] = round(ex.step_seconds, 3)
    upstream = ledger.part_signals(plan.inputs[name]) if name != "extract" else set()
    wall = time.perf_counter() - t0
    stats = ledger.write_stats(name, sdir, wall, upstream, extra)
    removed = sum(stats["removed"].values())
    log(f"[{name}] {stats['docs_in']} in, {stats['docs_out']} kept, {removed} removed "
        f"({wall:.1f}s, {stats['docs_in'] / max(wall, 1e-9):,.0f} docs/s)")
    return {"wall_seconds": round(wall, 3), "process_seconds": round(stats["process_seconds"], 3),
            "step_seconds": extra.get("step_seconds", 0.0)}
