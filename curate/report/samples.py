"""Sample documents from a stage's output, and its largest duplicate clusters.

Choosing reads one narrow column (`reason`, `dup_cluster`) of every part; the wide columns
(`text` above all) are then read only from the row groups that hold a chosen row. Samples are
drawn with a seeded generator, so the same command shows the same documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import schema, storage
from curate.report.outdir import KEPT, REMOVED, StageOutput

SHOWN = ["id", "origin", "source", "lang", "url", "text", schema.REASON,
         "dup_cluster", "dup_size", "dup_of", "bucket"]


def signal_columns(part: Path) -> list[str]:
    return [f.name for f in storage.read_schema(part) if pa.types.is_floating(f.type)]


def take(part: Path, rows: np.ndarray, columns: list[str]) -> pa.Table:
    """Rows (indices into the part, sorted) of `columns`, reading only the row groups they fall in."""
    f = storage.parquet_file(part)
    present = [c for c in columns if c in f.schema_arrow.names]
    starts = np.cumsum([0] + [f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)])
    pieces = []
    for g in range(f.num_row_groups):
        lo, hi = starts[g], starts[g + 1]
        inside = rows[(rows >= lo) & (rows < hi)]
        if inside.size:
            group = f.read_row_group(g, columns=present)
            pieces.append(group.take(pa.array(inside - lo)))
    if not pieces:
        return f.schema_arrow.empty_table().select(present)
    return pa.concat_tables(pieces)


def _doc_columns(part: Path) -> list[str]:
    return SHOWN + [c for c in signal_columns(part) if c not in SHOWN]


def _gather(chosen: list[tuple[Path, np.ndarray]]) -> pa.Table:
    tables = [take(part, np.sort(rows), _doc_columns(part)) for part, rows in chosen if rows.size]
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")


def sample(st: StageOutput, *, kept: bool, reason_prefix: str | None, n: int, seed: int = 0) -> tuple[pa.Table, int]:
    """Up to `n` documents (kept, or removed with a reason starting with `reason_prefix`) and
    how many matched."""
    side = KEPT if kept else REMOVED
    parts = st.parts(side)
    candidates: list[tuple[Path, np.ndarray]] = []
    for part in parts:
        if kept or not reason_prefix:
            rows = np.arange(storage.read_metadata(part).num_rows)
        else:
            reasons = storage.read_table(part, columns=[schema.REASON]).column(schema.REASON)
            hit = pc.fill_null(pc.starts_with(reasons, reason_prefix), False)
            rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
        candidates.append((part, rows))
    total = sum(r.size for _, r in candidates)
    if total == 0:
        return pa.table({}), 0
    pick = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    offsets = np.cumsum([0] + [r.size for _, r in candidates])
    chosen = [(part, rows[pick[(pick >= offsets[i]) & (pick < offsets[i + 1])] - offsets[i]])
              for i, (part, rows) in enumerate(candidates)]
    return _gather(chosen), total


def per_reason(st: StageOutput, k: int, seed: int = 0) -> dict[str, pa.Table]:
    """Up to `k` removed documents for every reason of the stage."""
    located: dict[str, list[tuple[int, np.ndarray]]] = {}  # reason -> [(part index, rows)]
    parts = st.parts(REMOVED)
    for i, part in enumerate(parts):
        reasons = storage.read_table(part, columns=[schema.REASON]).column(schema.REASON).combine_chunks()
        encoded = pc.dictionary_encode(pc.fill_null(reasons, ""))
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        for code, reason in enumerate(encoded.dictionary.to_pylist()):
            located.setdefault(reason, []).append((i, np.flatnonzero(codes == code)))
    rng = np.random.default_rng(seed)
    wanted: dict[int, list[np.ndarray]] = {}
    for reason, where in located.items():
        part_of = np.concatenate([np.full(rows.size, i) for i, rows in where])
        row_of = np.concatenate([rows for _, rows in where])
        pick = rng.choice(row_of.size, size=min(k, row_of.size), replace=False)
        for i in np.unique(part_of[pick]):
            wanted.setdefault(int(i), []).append(row_of[pick][part_of[pick] == i])
    table = _gather([(parts[i], np.concatenate(rows)) for i, rows in sorted(wanted.items())])
    if table.num_rows == 0:
        return {}
    return {reason: table.filter(pc.equal(table.column(schema.REASON), reason)) for reason in sorted(located)}


@dataclass
class Cluster:
    cluster: int
    size: int  # documents in the cluster before dedup removed any
    members: pa.Table  # the kept document first, then its duplicates


def largest_clusters(st: StageOutput, n: int = 3, members: int = 3) -> list[Cluster]:
    """The `n` largest duplicate clusters, each with up to `members` of its documents."""
    parts = [p for side in (KEPT, REMOVED) for p in st.parts(side)
             if {"dup_cluster", "dup_size"} <= set(storage.read_schema(p).names)]
    cols: dict[str, list[np.ndarray]] = {"cluster": [], "size": [], "part": [], "row": []}
    for i, part in enumerate(parts):
        t = storage.read_table(part, columns=["dup_cluster", "dup_size"])
        ok = pc.fill_null(pc.greater_equal(t.column("dup_size"), 2), False)
        ok = pc.and_(ok, pc.is_valid(t.column("dup_cluster"))).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(ok)
        cols["cluster"].append(t.column("dup_cluster").to_numpy(zero_copy_only=False)[rows].astype(np.int64))
        cols["size"].append(t.column("dup_size").to_numpy(zero_copy_only=False)[rows].astype(np.int64))
        cols["part"].append(np.full(rows.size, i))
        cols["row"].append(rows)
    if not parts:
        return []
    cluster, size, part_of, row_of = (np.concatenate(cols[k]) for k in ("cluster", "size", "part", "row"))
    ids, first = np.unique(cluster, return_index=True)
    top = np.lexsort((ids, -size[first]))[:n]
    out = []
    for c, s in zip(ids[top].tolist(), size[first][top].tolist()):
        # Parts are ordered kept first, so a cluster's first members include its kept document.
        mine = np.flatnonzero(cluster == c)[:members]
        chosen = [(parts[i], row_of[mine][part_of[mine] == i]) for i in np.unique(part_of[mine]).tolist()]
        out.append(Cluster(int(c), int(s), _gather(chosen)))
    return out
