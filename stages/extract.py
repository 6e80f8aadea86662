"""extract: input units (file contents, JSONL lines, container records) -> documents.

Consumes: the unit table of `curate.readers` (origin, format, payload or text, url, meta, error).
Adds:     every schema column extract owns: id, origin, text, source, url, meta (and lang for code).
Drops:    units a reader could not read (`extract:error:*`, `extract:skip:*`, with the reader's
          reason), units that do not parse (`extract:error:bad_json`, ...), and documents whose
          text is empty after extraction (`extract:empty`).
"""

from __future__ import annotations

import fnmatch
from typing import Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate import readers, schema
from curate.config import Section
from curate.stage import Result, Stage, split

Source = Literal["web", "code", "academic", "text"]


class ExtractConfig(Section):
    sources: dict[str, Source] = Field(
        default_factory=dict,
        description="glob over paths relative to --input -> source; overrides each reader's default",
    )


def _json(meta: dict | None) -> str | None:
    if not meta:
        return None
    return orjson.dumps(meta, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class ExtractStage(Stage):
    name = "extract"
    Config = ExtractConfig

    def input_bytes(self, batch: pa.Table) -> int:
        payload = pc.sum(pc.binary_length(batch.column("payload"))).as_py() or 0
        return int(payload) + schema.text_bytes(batch)

    def _source_for(self, path: str, default: str) -> str:
        for pattern, source in self.config.sources.items():
            if fnmatch.fnmatch(path, pattern):
                return source
        return default

    def process(self, batch: pa.Table) -> Result:
        cols = {k: [] for k in ("id", "origin", "text", "source", "url", "meta", "lang")}
        reasons: list[str | None] = []
        for row in batch.to_pylist():
            origin = row["origin"]
            fmt = row["format"]
            reader = readers.REGISTRY.get(fmt) if fmt else None
            if row["error"] is not None or reader is None:
                doc = readers.Doc(reason=row["error"] or f"extract:error:unknown_format:{fmt}")
                default_source = reader.source if reader else "text"
            else:
                try:
                    doc = reader.parse(row, self.config)
                except Exception as exc:  # a parser bug must not stop the run: record it
                    doc = readers.Doc(reason=f"extract:error:{fmt}:{type(exc).__name__}")
                default_source = reader.source
            meta = doc.meta
            if row["meta"] and row["format"] != "parquet":
                container = orjson.loads(row["meta"])
                meta = {**container, **(meta or {})}
            reason = doc.reason
            if reason is None and (doc.text is None or not doc.text.strip()):
                reason = "extract:empty"
            path = origin.split("#", 1)[0]
            cols["id"].append(schema.doc_id(origin))
            cols["origin"].append(origin)
            cols["text"].append(doc.text)
            cols["source"].append(doc.source or self._source_for(path, default_source))
            cols["url"].append(doc.url if doc.url is not None else row["url"])
            cols["meta"].append(_json(meta))
            cols["lang"].append(doc.lang)
            reasons.append(reason)
        table = schema.conform(pa.table({k: pa.array(v, schema.BASE.field(k).type) for k, v in cols.items()}))
        keep = pa.array([r is None for r in reasons], pa.bool_())
        kept, removed = split(table, keep, pa.array(reasons, pa.string()))
        return Result(kept, removed)
