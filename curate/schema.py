"""The record schema every stage reads and writes (ARCHITECTURE.md, "The record").

Fixed columns come first in a fixed order; signal columns (float32, prefixed by the filter
that measured them) and stage columns follow in the order they were added. A column stays
null until the stage that fills it has run.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

BASE = pa.schema(
    [
        ("id", pa.string()),
        ("origin", pa.string()),
        ("text", pa.large_string()),
        ("source", pa.string()),
        ("url", pa.string()),
        ("meta", pa.string()),
        ("lang", pa.string()),
        ("lang_score", pa.float32()),
    ]
)

# Columns with a fixed type that some stage adds after extract.
STAGE_COLUMNS = {
    "dup_cluster": pa.int64(),
    "dup_size": pa.int64(),
    "dup_of": pa.string(),
    "bucket": pa.string(),
}

REASON = "reason"
SOURCES = ("web", "code", "academic", "text")


def doc_id(origin: str) -> str:
    """Hex of a 128-bit hash of the origin: stable and independent of run order."""
    return xxhash.xxh3_128_hexdigest(origin.encode("utf-8", "surrogatepass"))


def conform(table: pa.Table) -> pa.Table:
    """Return `table` with every base column present, typed and first; others keep their order.

    Missing base columns are added as nulls; known columns are cast to their fixed type.
    """
    n = table.num_rows
    columns, names = [], []
    for field in BASE:
        if field.name in table.column_names:
            col = table.column(field.name)
            if col.type != field.type:
                col = col.cast(field.type)
        else:
            col = pa.nulls(n, field.type)
        columns.append(col)
        names.append(field.name)
    for name in table.column_names:
        if name in names:
            continue
        col = table.column(name)
        want = STAGE_COLUMNS.get(name)
        if want is not None and col.type != want:
            col = col.cast(want)
        columns.append(col)
        names.append(name)
    return pa.Table.from_arrays(columns, names=names)


def with_reason(table: pa.Table, reasons) -> pa.Table:
    """Attach the `reason` column (one string, or an array of strings) to removed rows."""
    if isinstance(reasons, str):
        reasons = pa.array([reasons] * table.num_rows, pa.string())
    elif not isinstance(reasons, (pa.Array, pa.ChunkedArray)):
        reasons = pa.array(reasons, pa.string())
    if REASON in table.column_names:
        table = table.drop_columns([REASON])
    return table.append_column(REASON, reasons)


def text_bytes(table: pa.Table) -> int:
    """UTF-8 bytes of the text column (0 for an empty table or all-null text)."""
    if table.num_rows == 0 or "text" not in table.column_names:
        return 0
    total = pc.sum(pc.binary_length(table.column("text"))).as_py()
    return int(total or 0)


def set_column(table: pa.Table, name: str, values, type_: pa.DataType | None = None) -> pa.Table:
    """Add or replace column `name` keeping its position when it already exists."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type_)
    if type_ is not None and arr.type != type_:
        arr = arr.cast(type_)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, arr)
    return table.append_column(name, arr)
