"""Run stages of a pipeline into OUT: preflight checks, resume, the ledger and run.json.

Everything a user can get wrong is checked before Ray starts. A stage whose `_stats.json`
exists with the same fingerprint is complete and skipped; a stage with some done-files resumes
with the shards still missing; a stage made with a different config is refused unless `fresh`.
"""

from __future__ import annotations

import json
import os
import platform
import time
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
    """What to run: stages in order, each with its input and fingerprint."""

    def __init__(self, pipeline: Pipeline, out: storage.PathLike, stages: list[str], input_path: storage.PathLike | None):
        self.pipeline, self.out, self.stages = pipeline, out, stages
        self.inputs: dict[str, Path] = {}
        self.fingerprints: dict[str, str] = {}
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
            self.fingerprints[name] = f"{pipeline.stage_hash(name)}:{src.resolve()}"

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
        storage.check_output(self.out)
        changed = [n for n in self.stages if self._recorded(n) not in (None, self.fingerprints[n])]
        if changed and not fresh:
            raise UserError(
                f"{self.out}/{changed[0]} was made with a different config or input; "
                "rerun with --fresh to redo it and the stages after it"
            )
        if fresh:
            start = changed[0] if changed else self.stages[0]
            self.clear_from(start)

    def _recorded(self, name: str) -> str | None:
        path = stage_dir(self.out, name) / STAGE_FILE
        if not path.is_file():
            return None
        return json.loads(path.read_text()).get("fingerprint")

    def clear_from(self, name: str) -> None:
        order = self.pipeline.stages
        start = order.index(name) if name in order else 0
        for later in order[start:]:
            storage.remove_tree(stage_dir(self.out, later))


def _tasks_for(plan: Plan, name: str, sdir: Path) -> list[ShardTask]:
    src = plan.inputs[name]
    if name == "extract":
        root = src if src.is_dir() else src.parent
        files = discover.discover(src)
        groups = discover.shard(files, int(plan.pipeline.run.shard_mb * (1 << 20)))
        return [ShardTask(f"part-{i:05d}", input_root=root, files=g) for i, g in enumerate(groups)]
    parts = sorted(src.glob("part-*.parquet"))
    return [ShardTask(p.stem, input_path=p) for p in parts]


def _pending(tasks: list[ShardTask], sdir: Path) -> list[ShardTask]:
    done = storage.done_items(sdir)
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
    plan = Plan(pipeline, out, stages, input_path)
    plan.preflight(fresh)
    workers = workers or pipeline.run.workers or (os.cpu_count() or 1)
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
    with Executor(workers, ray_address, pipeline.run, env=storage.worker_env() if remote else None) as ex:
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
    if done_stats is not None and plan._recorded(name) == plan.fingerprints[name]:
        log(f"[{name}] complete, skipped ({done_stats['docs_out']} of {done_stats['docs_in']} documents kept)")
        return {"wall_seconds": done_stats["wall_seconds"], "skipped": True}
    t0 = time.perf_counter()
    ex.step_seconds = 0.0
    sdir.mkdir(parents=True, exist_ok=True)
    storage.write_json(sdir / STAGE_FILE, {"stage": name, "fingerprint": plan.fingerprints[name],
                                          "input": str(plan.inputs[name])})
    cls = registry.stage_class(name)
    config = pipeline.section(name)
    work_dir = sdir / "_work"
    work_dir.mkdir(exist_ok=True)
    ctx = StageContext(out=out, stage_dir=sdir, work_dir=work_dir, config=config, executor=ex,
                       input=plan.inputs[name])
    tasks = _tasks_for(plan, name, sdir)
    # what a killed run left: temp files, and the parts of shards it did not finish
    storage.clean_partial(sdir, [t.name for t in tasks], subdirs=(".", "removed"))
    # A driver-side instance only for stages with global steps: others load models on workers only.
    has_global = cls.prepare is not Stage.prepare or cls.finish is not Stage.finish
    stage = cls(config, work_dir) if has_global else None
    if stage is not None:
        stage.prepare(ctx)
    pending = _pending(tasks, sdir)
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
