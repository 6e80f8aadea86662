"""Parquet dumps: one unit per row; the `text` column is taken as is, other columns go to meta."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from curate import storage
from curate.readers import UNIT_SCHEMA, Doc, Reader, register, unit

SCHEMA_COLUMNS = {"text", "url"}


def _urls(batch: pa.RecordBatch) -> pa.Array:
    if "url" in batch.schema.names:
        return batch.column("url").cast(pa.string())
    if "metadata" in batch.schema.names and pa.types.is_struct(batch.schema.field("metadata").type):
        meta = batch.column("metadata")
        if "url" in [f.name for f in meta.type]:
            return pc.struct_field(meta, "url").cast(pa.string())
    return pa.nulls(batch.num_rows, pa.string())


def read(path: Path, origin: str) -> Iterator[dict | pa.Table]:
    try:
        pf = storage.parquet_file(path)
    except Exception:
        yield unit(origin, "parquet", error="extract:error:bad_parquet")
        return
    if "text" not in pf.schema_arrow.names:
        yield unit(origin, "parquet", error="extract:error:no_text_column")
        return
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=2048):
            n = batch.num_rows
            text = batch.column("text")
            if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
                text = pa.nulls(n, pa.large_string())  # wrong type: extract removes as empty
            others = [c for c in batch.schema.names if c not in SCHEMA_COLUMNS]
            rows = batch.select(others).to_pylist() if others else [{}] * n
            meta = [orjson.dumps(r, default=str, option=orjson.OPT_NON_STR_KEYS).decode() for r in rows]
            yield pa.Table.from_arrays(
                [
                    pa.array([f"{origin}#{row + i + 1}" for i in range(n)], pa.string()),
                    pa.array(["parquet"] * n, pa.string()),
                    pa.nulls(n, pa.large_binary()),
                    text.cast(pa.large_string()),
                    _urls(batch),
                    pa.array(meta, pa.string()),
                    pa.nulls(n, pa.string()),
                ],
                schema=UNIT_SCHEMA,
            )
            row += n
    except Exception:
        yield unit(f"{origin}#{row + 1}", "parquet", error="extract:error:bad_parquet")


def parse(row: dict, config) -> Doc:
    meta = orjson.loads(row["meta"]) if row["meta"] else None
    return Doc(text=row["text"], url=row["url"], meta=meta)


READER = register(Reader("parquet", (".parquet",), read, parse))
