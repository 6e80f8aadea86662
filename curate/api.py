"""curate from Python: load or build a config, run the pipeline or one stage, read what a run
wrote. `curate run` and `curate stage` are thin wrappers around `run` and `run_stage`, so a run
started here resumes, fingerprints, keeps its ledger and fails exactly as one started from the
command line: a mistake a user can make raises `UserError` before Ray starts (the CLI: exit 2),
a failed run raises `PipelineError` (exit 1).

    from curate import api

    cfg = api.load_config("demo", overrides=["quality.gopher.min_doc_words=30"])
    out = api.run(cfg, "demo", "out/demo")
    out.kept("quality")                      # pyarrow.Table of the documents quality kept
    out.removed("quality")                   # ... and of those it removed, with `reason`
    out.stats("quality")["removed"]          # reason -> count (the stage's _stats.json)
    out.dataset("dedup").to_table(filter=...)  # pyarrow.dataset over the stage's parts

A config can also be built from a mapping (`api.config({"stages": [...], "quality": {...}})`),
and filters, stages and readers of your own are named in its `plugins:` list or installed as a
package (README, "Writing your own filter").
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa

from curate import config as config_mod
from curate import storage
from curate.config import Pipeline
from curate.errors import UserError
from curate.executor import PipelineError

__all__ = ["Pipeline", "PipelineError", "RunOutput", "UserError", "config", "load_config", "open_run", "run",
           "run_stage"]

PACKAGED_CONFIGS = ("demo", "default", "fineweb")  # names of the configs shipped with curate


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Pipeline:
    """A config file, or a packaged one by name (`demo`, `default`, `fineweb`); None is
    `default`. `overrides` are `--set` items, `quality.gopher.min_doc_words=80`."""
    return config_mod.load(config_path(path), list(overrides))


def config(data: dict | None = None, overrides: list[str] | tuple[str, ...] = (),
           base_dir: str | Path | None = None) -> Pipeline:
    """A config built from a mapping, validated as a file would be; resource paths it names are
    relative to `base_dir` (default: the current directory)."""
    return config_mod.from_dict(data, "<config>", Path(base_dir) if base_dir is not None else None, list(overrides))


def run(cfg: Pipeline, input: str | Path, output: str | Path, *, workers: int = 0, ray_address: str | None = None,
        fresh: bool = False, log: Callable[[str], Any] | None = None) -> "RunOutput":
    """Every stage of `cfg` from a corpus (`demo`: the bundled one) into the run root `output`.
    Rerunning resumes; a changed config is refused unless `fresh`."""
    src = input_path(input)
    storage.check_input(src)
    if not cfg.stages:
        raise UserError(f"{cfg.source}: stages: the list is empty")
    return _execute(cfg, output, cfg.stages, src, workers, ray_address, fresh, log)


def run_stage(name: str, cfg: Pipeline, output: str | Path, *, input: str | Path | None = None, workers: int = 0,
              ray_address: str | None = None, fresh: bool = False,
              log: Callable[[str], Any] | None = None) -> "RunOutput":
    """The one stage `name`: extract reads `input` (the corpus), any other stage reads `input`
    (a stage output directory) or OUT/<the stage before it in the config>."""
    from curate import registry

    if name not in registry.names():
        raise UserError(f"unknown stage {name!r}; stages: {', '.join(registry.names())}")
    if name not in cfg.stages:
        raise UserError(f"stage {name!r} is not in {cfg.source}'s stages: {', '.join(cfg.stages)}")
    src = input_path(input)
    if src is not None:
        storage.check_input(src)
    return _execute(cfg, output, [name], src, workers, ray_address, fresh, log)


def _execute(cfg, output, stages, src, workers, ray_address, fresh, log) -> "RunOutput":
    from curate import pipeline

    pipeline.execute(cfg, output, stages, src, workers, ray_address, fresh, log=log or (lambda _m: None))
    return RunOutput(output)


def open_run(output: str | Path) -> "RunOutput":
    """The outputs of a run made earlier (by the CLI or this API)."""
    out = RunOutput(output)
    if not out.path.is_dir():
        raise UserError(f"not a directory: {out.path}")
    return out


class RunOutput:
    """What a run root OUT holds, read as Arrow: per stage, the kept documents, the removed ones
    with their `reason`, and the ledger (`_stats.json`)."""

    def __init__(self, output: str | Path):
        self.path = storage.location(output)

    @property
    def info(self) -> dict:
        """run.json: the resolved config, versions, per-stage wall time."""
        return json.loads((self.path / "run.json").read_text())

    @property
    def stages(self) -> list[str]:
        """The stages with a finished ledger, in the config's order."""
        order = self.info.get("config", {}).get("stages", []) if (self.path / "run.json").is_file() else []
        return [s for s in order if (self._dir(s) / "_stats.json").is_file()]

    def _dir(self, stage: str):
        from curate import pipeline, registry

        if stage not in registry.names():  # a plugin stage: installed, or named in the run's config
            registry.load_installed()
            cfg = self.info.get("config", {}) if (self.path / "run.json").is_file() else {}
            registry.use(cfg.get("plugins") or [], f"{self.path}/run.json: plugins")
            if stage not in registry.names():
                raise UserError(f"unknown stage {stage!r}; stages: {', '.join(registry.names())}")
        return pipeline.stage_dir(self.path, stage)

    def files(self, stage: str, removed: bool = False) -> list:
        """The stage's Parquet parts (tokenize: every bucket's), in order."""
        sdir = self._dir(stage)
        if removed:
            return sorted((sdir / "removed").glob("part-*.parquet"))
        parts = sorted(sdir.glob("part-*.parquet"))
        if not parts:  # tokenize writes one folder per bucket
            parts = sorted(p for d in sorted(sdir.iterdir()) if d.is_dir() and not d.name.startswith(("_", "."))
                           and d.name != "removed" for p in d.glob("part-*.parquet"))
        return parts

    def stats(self, stage: str) -> dict:
        """The stage's ledger: docs_in, docs_out, removed (reason -> count), bytes, histograms."""
        path = self._dir(stage) / "_stats.json"
        if not path.is_file():
            raise UserError(f"{stage} has no ledger in {self.path} (not run, or not finished)")
        return json.loads(path.read_text())

    def kept(self, stage: str, columns: list[str] | None = None) -> pa.Table:
        return self._table(self.files(stage), columns)

    def removed(self, stage: str, columns: list[str] | None = None) -> pa.Table:
        """Removed documents with every column they had plus `reason`."""
        return self._table(self.files(stage, removed=True), columns)

    def dataset(self, stage: str, removed: bool = False):
        """A `pyarrow.dataset.Dataset` over the stage's kept (or removed) parts, for filtered or
        streamed reads of outputs too big for memory."""
        import pyarrow.dataset as ds

        files = self.files(stage, removed)
        if not files:
            raise UserError(f"{stage} has no {'removed' if removed else 'kept'} parts in {self.path}")
        if storage.is_remote(self.path):
            fs = files[0].store.fs
            paths = [f.path for f in files]
        else:
            fs, paths = None, [str(f) for f in files]
        schema = pa.unify_schemas([storage.read_schema(f) for f in files])  # an empty part may lack a column
        return ds.dataset(paths, format="parquet", filesystem=fs, schema=schema)

    @staticmethod
    def _table(files: list, columns: list[str] | None) -> pa.Table:
        tables = [storage.read_table(f, columns=columns) for f in files]
        if not tables:
            return pa.table({})
        return pa.concat_tables(tables, promote_options="default")


def config_path(name_or_path: str | Path | None):
    """`demo`, `default` or `fineweb` name a packaged config; anything else is a file path."""
    if isinstance(name_or_path, str) and name_or_path in PACKAGED_CONFIGS and not Path(name_or_path).exists():
        return Path(str(resources.files("curate.configs").joinpath(f"{name_or_path}.yaml")))
    return name_or_path


def input_path(path: str | Path | None):
    """`demo` names the bundled demo corpus; anything else is a path or an object-store URI."""
    if path is None:
        return None
    if str(path) == "demo" and not Path(path).exists():
        return Path(str(resources.files("curate").joinpath("demo")))
    return storage.location(path)
