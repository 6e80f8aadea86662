"""The stage contract (ARCHITECTURE.md, "A stage").

A stage is a small class with a pure core: `process(batch)` takes an Arrow table and returns
the kept table, the removed table (with `reason`) and counters. No I/O and no Ray there, so a
unit test calls it directly. Heavy state is loaded in `__init__`, which the executor calls
once per worker.

Stages that need a global view (dedup, tokenizer training) also implement `prepare`, which
runs on the driver before the map and may fan work out with `ctx.map`; what it computes is
written under `ctx.work_dir` and read back by `__init__`/`process` on the workers. `finish`
runs on the driver after every shard is done (writing a manifest, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel

from curate import schema

if TYPE_CHECKING:
    from curate.executor import StageContext


@dataclass
class Result:
    """What `process` returns: kept rows, removed rows with `reason`, and counters."""

    kept: pa.Table
    removed: pa.Table
    counters: dict[str, Any] = field(default_factory=dict)


class Stage:
    """Base class of every pipeline stage."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    # Where the stage writes its kept output, relative to OUT (tokenize writes shards/).
    output_dir: ClassVar[str | None] = None
    # Columns this stage adds; the executor uses them only for documentation and checks.
    adds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: BaseModel, work_dir: Path | None = None):
        self.config = config
        self.work_dir = work_dir
        # Origins that hung a worker on an earlier attempt; the stage removes them as
        # `<stage>:error:timeout` instead of processing them again.
        self.poisoned: set[str] = set()

    def heartbeat(self, origin: str | None) -> None:
        """Called by per-document loops before costly work, so a hang can be traced to its
        document. The executor replaces it on workers; a no-op in unit tests."""

    def start_shard(self, name: str) -> None:
        """Called by the executor before the first batch of shard `name` (e.g. `part-00003`),
        for stages whose global step wrote per-part state (dedup's decisions)."""

    def process(self, batch: pa.Table) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError

    def input_bytes(self, batch: pa.Table) -> int:
        """Bytes entering the stage, for the ledger (extract counts raw payload instead)."""
        return schema.text_bytes(batch)

    def prepare(self, ctx: "StageContext") -> None:
        """Global step before the map (optional)."""

    def finish(self, ctx: "StageContext") -> dict[str, Any]:
        """Global step after the map; returns extra entries for _stats.json (optional)."""
        return {}


def split(batch: pa.Table, keep_mask: pa.Array, reasons: pa.Array | list | None) -> tuple[pa.Table, pa.Table]:
    """Split `batch` by a boolean mask into kept rows and removed rows with their reasons.

    `reasons` has one entry per row of `batch` (entries for kept rows are ignored).
    """
    import pyarrow.compute as pc

    keep_mask = pa.array(keep_mask, pa.bool_()) if not isinstance(keep_mask, (pa.Array, pa.ChunkedArray)) else keep_mask
    kept = batch.filter(keep_mask)
    drop = pc.invert(keep_mask)
    removed = batch.filter(drop)
    if reasons is None:
        reasons = pa.nulls(batch.num_rows, pa.string())
    elif not isinstance(reasons, (pa.Array, pa.ChunkedArray)):
        reasons = pa.array(reasons, pa.string())
    removed = schema.with_reason(removed, reasons.filter(drop))
    return kept, removed


def reason_counts(removed: pa.Table) -> dict[str, int]:
    if removed.num_rows == 0:
        return {}
    counts = removed.column(schema.REASON).value_counts()
    return {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}


def merge_counters(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Add two counter dicts: numbers add, nested dicts merge recursively."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = merge_counters(out[key], value)
        elif isinstance(value, (int, float)) and isinstance(out[key], (int, float)):
            out[key] = out[key] + value
        else:
            out[key] = value
    return out

