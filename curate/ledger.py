"""The ledger: OUT/<stage>/_stats.json, merged from the shards' done-files.

Each shard's counters are written once, in its done-file, so a resumed run counts every shard
exactly once. The law every stage obeys is checked here: docs_in == docs_out + sum(removed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate import storage
from curate.stage import merge_counters

HIST_BINS = 30
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class LedgerError(Exception):
    pass


def merge(stage_dir: Path) -> dict:
    total = {"docs_in": 0, "docs_out": 0, "removed": {}, "bytes_in": 0, "bytes_out": 0,
             "process_seconds": 0.0, "counters": {}}
    shards = 0
    for path in storage.done_paths(stage_dir):
        c = json.loads(path.read_text())
        shards += 1
        for key in ("docs_in", "docs_out", "bytes_in", "bytes_out", "process_seconds"):
            total[key] += c[key]
        total["removed"] = merge_counters(total["removed"], c["removed"])
        total["counters"] = merge_counters(total["counters"], c.get("counters", {}))
    total["shards"] = shards
    total["removed"] = dict(sorted(total["removed"].items(), key=lambda kv: (-kv[1], kv[0])))
    return total


def check_law(stats: dict) -> None:
    removed = sum(stats["removed"].values())
    if stats["docs_in"] != stats["docs_out"] + removed:
        raise LedgerError(
            f"{stats['stage']}: ledger does not add up: docs_in {stats['docs_in']} != "
            f"docs_out {stats['docs_out']} + removed {removed}"
        )


def signal_columns(table_schema: pa.Schema, exclude: set[str]) -> list[str]:
    """Float columns a filter measured (lang_score included), minus those already upstream."""
    return [f.name for f in table_schema if pa.types.is_floating(f.type) and f.name not in exclude]


def histograms(stage_dir: Path, columns: list[str]) -> dict:
    """Per signal: bin edges, kept and removed counts per bin, quantiles, null count."""
    if not columns:
        return {}
    values: dict[str, dict[str, list[np.ndarray]]] = {c: {"kept": [], "removed": []} for c in columns}
    for side, pattern in (("kept", "part-*.parquet"), ("removed", "removed/part-*.parquet")):
        for path in sorted(stage_dir.glob(pattern)):
            names = set(storage.read_schema(path).names)
            present = [c for c in columns if c in names]
            if not present:
                continue
            table = storage.read_table(path, columns=present)
            for c in present:
                values[c][side].append(table.column(c).to_numpy(zero_copy_only=False).astype(np.float64))
    out = {}
    for c, sides in values.items():
        kept = np.concatenate(sides["kept"]) if sides["kept"] else np.empty(0)
        removed = np.concatenate(sides["removed"]) if sides["removed"] else np.empty(0)
        both = np.concatenate([kept, removed])
        finite = both[np.isfinite(both)]
        if finite.size == 0:  # never measured here (lang_score before langid)
            continue
        lo, hi = float(finite.min()), float(finite.max())
        if hi <= lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, HIST_BINS + 1)
        out[c] = {
            "count": int(finite.size),
            "nulls": int(both.size - finite.size),
            "edges": [round(float(e), 6) for e in edges],
            "kept": np.histogram(kept[np.isfinite(kept)], edges)[0].tolist(),
            "removed": np.histogram(removed[np.isfinite(removed)], edges)[0].tolist(),
            "quantiles": {str(q): round(float(v), 6) for q, v in zip(QUANTILES, np.quantile(finite, QUANTILES))},
        }
    return out


def write_stats(stage: str, stage_dir: Path, wall_seconds: float, upstream_signals: set[str], extra: dict) -> dict:
    stats = {"stage": stage, **merge(stage_dir), "wall_seconds": round(wall_seconds, 3)}
    check_law(stats)
    parts = sorted(stage_dir.glob("part-*.parquet"))
    cols = signal_columns(storage.read_schema(parts[0]), upstream_signals) if parts else []
    stats["signals"] = histograms(stage_dir, cols)
    stats.update(extra)
    storage.write_json(stage_dir / "_stats.json", stats)
    return stats


def read_stats(stage_dir: Path) -> dict | None:
    path = stage_dir / "_stats.json"
    return json.loads(path.read_text()) if path.is_file() else None


def part_signals(stage_dir: Path) -> set[str]:
    """Float columns an earlier stage measured: those with a value in its parts. A column that is
    only declared there (`lang_score` in extract's output) is measured by a later stage, whose
    histogram it belongs in. (The parts carry no column statistics, so the columns are read:
    four bytes a document.)"""
    measured: set[str] = set()
    for path in sorted(stage_dir.glob("part-*.parquet")):
        floats = signal_columns(storage.read_schema(path), measured)
        if floats:
            table = storage.read_table(path, columns=floats)
            measured.update(c for c in floats if table.column(c).null_count < table.num_rows)
    return measured
