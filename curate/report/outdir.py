"""OUT read back: run.json, each stage's ledger and Parquet parts, the tokenizer's manifest.

OUT is a local directory or an object-store URI (curate.storage).

A stage directory is recognised by what it holds (`_stats.json` or `_stage.json` name the
stage), so a report needs neither the config nor the stage modules, and works on a partial or
interrupted run: a stage with a `_stage.json` but no `_stats.json` is reported as incomplete.
Parquet is read column by column: a report over a large run never loads `text` wholesale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from curate import registry, schema, storage
from curate.errors import UserError

KEPT, REMOVED = "kept", "removed"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}") from None


@dataclass
class StageOutput:
    name: str
    path: Path
    stats: dict | None  # the ledger; None while the stage is incomplete

    @property
    def complete(self) -> bool:
        return self.stats is not None

    @property
    def shards_done(self) -> int:
        return len(list((self.path / "_done").glob("*.json")))

    @property
    def input(self) -> storage.PathLike | None:
        """The directory the stage read (from its _stage.json; a stage output inside OUT is named
        relative to OUT, so a moved OUT still knows it)."""
        marker = _read_json(self.path / "_stage.json") or {}
        if not marker.get("input"):
            return None
        where = storage.location(marker["input"])
        if not storage.is_remote(where) and not where.is_absolute():
            where = self.path.parent / marker["input"]
        return where

    def parts(self, side: str) -> list[storage.PathLike]:
        where = self.path if side == KEPT else self.path / "removed"
        return sorted(where.glob("part-*.parquet"))

    def read(self, side: str, columns: list[str]) -> pa.Table:
        """The named columns of every part on one side; a column a part lacks reads as nulls."""
        tables = []
        for part in self.parts(side):
            names = storage.read_schema(part).names
            tables.append(storage.read_table(part, columns=[c for c in columns if c in names]))
        if not tables:
            return pa.table({})
        return pa.concat_tables(tables, promote_options="default")

    def read_all(self, columns: list[str]) -> pa.Table:
        """Kept and removed rows together: the stage's input. Kept rows have a null `reason`."""
        want = [c for c in columns if c != schema.REASON]
        kept = self.read(KEPT, want)
        removed = self.read(REMOVED, want + [schema.REASON])
        if kept.num_columns or kept.num_rows:
            kept = kept.append_column(schema.REASON, pa.nulls(kept.num_rows, pa.string()))
        tables = [t for t in (kept, removed) if t.num_columns]
        if not tables:
            return pa.table({schema.REASON: pa.array([], pa.string())})
        table = pa.concat_tables(tables, promote_options="default")
        if schema.REASON in table.column_names and table.schema.field(schema.REASON).type != pa.string():
            table = schema.set_column(table, schema.REASON, table.column(schema.REASON).cast(pa.string()))
        return table


class RunDir:
    """An output directory OUT, as written by `curate run` / `curate stage`."""

    def __init__(self, out):
        self.out = storage.location(out)
        if not self.out.is_dir():
            raise UserError(f"not a directory: {self.out}")
        self.run = _read_json(self.out / "run.json") or {}
        self.config: dict = self.run.get("config") or {}
        found: dict[str, StageOutput] = {}
        for sub in sorted(p for p in self.out.iterdir() if p.is_dir()):
            stats = _read_json(sub / "_stats.json")
            marker = stats or _read_json(sub / "_stage.json")
            name = (marker or {}).get("stage")
            if name:
                found[name] = StageOutput(name, sub, stats)
        if not found:
            raise UserError(f"{self.out} holds no stage output (no <stage>/_stats.json): run a stage first")
        order = list(self.config.get("stages") or [])
        order += [s for s in registry.STAGES if s not in order]
        order += sorted(s for s in found if s not in order)
        self.stages = [found[s] for s in order if s in found]
        self.manifest = self._manifest()

    def _manifest(self) -> dict | None:
        tok = self.get("tokenize")
        for where in ([tok.path] if tok else []) + [self.out / "shards"]:
            manifest = _read_json(where / "manifest.json")
            if manifest is not None:
                return manifest
        return None

    def get(self, name: str) -> StageOutput | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def complete_stages(self) -> list[StageOutput]:
        return [s for s in self.stages if s.complete]

    def section(self, stage: str) -> dict:
        return self.config.get(stage) or {}
