"""extract: input units (file contents, JSONL lines, container records) -> documents.

Consumes: the unit table of `curate.readers` (origin, format, payload or text, url, meta, error).
Adds:     every schema column extract owns: id, origin, text, source, url, meta (and lang for code).
Drops:    units a reader could not read (`extract:error:*`, `extract:skip:*`, with the reader's
          reason, e.g. `extract:warc:non_html`), units that do not parse (`extract:error:bad_json`,
          `extract:html:binary`, `extract:code:binary`, `extract:latex:no_main`, ...), units that
          hung a worker before (`extract:error:timeout`), and documents whose text is empty after
          extraction (`extract:empty`).

Formats: JSONL, Parquet, plain text, HTML, WARC/ARC/WET, source code (by extension), LaTeX
(a file, a source directory, an arXiv tarball). Each reader's `parse` is the per-unit core;
this module only loops over units, guards each parse and assembles the columns.
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

# Formats whose parse can take long enough (or hang in C code) to need a heartbeat first.
COSTLY_FORMATS = frozenset({"html", "warc", "latex"})


class HtmlConfig(Section):
    """Main-text extraction with trafilatura; defaults chosen by scripts/extract_quality.py."""

    mode: Literal["adaptive", "fast", "full"] = Field(
        "adaptive",
        description="fast: trafilatura's fast mode only; full: its whole cascade (readability and "
        "jusText comparison); adaptive: fast, then full where the fast text looks too short",
    )
    rerun_below_share: float = Field(
        0.1, ge=0, le=1,
        description="adaptive: rerun in full mode when the fast text has fewer characters than "
        "this share of the page's visible text",
    )
    rerun_small_below_share: float = Field(
        0.3, ge=0, le=1, description="adaptive: the same share for pages under small_page_chars")
    small_page_chars: int = Field(3000, ge=0, description="adaptive: visible characters of a small page")
    rerun_max_link_share: float = Field(
        0.6, ge=0, le=1, description="adaptive: no rerun on pages whose visible text is more link text than this")
    include_comments: bool = Field(False, description="keep reader comments below the main text")
    include_tables: bool = Field(True, description="keep the text of <table> elements")
    favor: Literal["balanced", "precision", "recall"] = Field(
        "balanced", description="trafilatura's focus in full mode")
    fast_favor: Literal["balanced", "precision", "recall"] = Field(
        "recall", description="trafilatura's focus in fast mode (and the first pass of adaptive)")
    max_bytes: int = Field(8 << 20, ge=1, description="larger pages are removed (extract:html:too_large)")


class CodeConfig(Section):
    """Source files: extract drops only what is not text; the StarCoder rules (minified,
    generated, data blobs) are the quality stage's `code` filter (filters/code.py)."""

    max_bytes: int | None = Field(1 << 20, ge=1, description="larger files: extract:code:too_large (The Stack: 1 MB)")


class LatexConfig(Section):
    """LaTeX sources (.tex, source directories, arXiv bundles) -> one document each."""

    max_input_depth: int = Field(8, ge=0, description="nesting limit of \\input/\\include")
    expand_macros: bool = Field(
        True, description="expand simple \\newcommand/\\def/\\DeclareMathOperator macros (up to 9 arguments)")
    keep_bibliography: bool = Field(False, description="keep the bibliography (thebibliography, \\bibliography)")
    min_words: int = Field(
        10, ge=0, description="fewer words of running text: extract:latex:no_text (files that only include others)")


class ExtractConfig(Section):
    sources: dict[str, Source] = Field(
        default_factory=dict,
        description="glob over paths relative to --input -> source; overrides each reader's default",
    )
    html: HtmlConfig = Field(default_factory=HtmlConfig)
    code: CodeConfig = Field(default_factory=CodeConfig)
    latex: LatexConfig = Field(default_factory=LatexConfig)


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

    def _parse(self, row: dict, reader: readers.Reader | None) -> readers.Doc:
        """One unit -> Doc; never raises (a parser bug becomes the unit's removal reason)."""
        if row["error"] is not None:
            return readers.Doc(reason=row["error"])
        if reader is None:
            return readers.Doc(reason=f"extract:error:unknown_format:{row['format']}")
        origin = row["origin"]
        if reader.format in COSTLY_FORMATS:
            self.heartbeat(origin)
        try:
            return reader.parse(row, self.config)
        except RecursionError:
            return readers.Doc(reason=f"extract:error:{reader.format}:too_deep")
        except Exception as exc:  # a parser bug must not stop the run: record it
            return readers.Doc(reason=f"extract:error:{reader.format}:{type(exc).__name__}")

    def process(self, batch: pa.Table) -> Result:
        cols = {k: [] for k in ("id", "origin", "text", "source", "url", "meta", "lang")}
        reasons: list[str | None] = []
        for row in batch.to_pylist():
            origin = row["origin"]
            fmt = row["format"]
            reader = readers.loaded().get(fmt) if fmt else None
            doc = self._parse(row, reader)
            meta = doc.meta
            if row["meta"] and fmt != "parquet":
                container = orjson.loads(row["meta"])
                meta = {**container, **(meta or {})}
            reason = doc.reason
            if reason is None and (doc.text is None or not doc.text.strip()):
                reason = "extract:empty"
            path = readers.path_of(origin)
            cols["id"].append(schema.doc_id(origin))
            cols["origin"].append(origin)
            cols["text"].append(doc.text)
            cols["source"].append(doc.source or self._source_for(path, reader.source if reader else "text"))
            cols["url"].append(readers.clean_url(doc.url if doc.url is not None else row["url"]))
            cols["meta"].append(_json(meta))
            cols["lang"].append(doc.lang)
            reasons.append(reason)
        table = schema.conform(pa.table({k: pa.array(v, schema.BASE.field(k).type) for k, v in cols.items()}))
        keep = pa.array([r is None for r in reasons], pa.bool_())
        kept, removed = split(table, keep, pa.array(reasons, pa.string()))
        return Result(kept, removed)
