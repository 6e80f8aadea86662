"""quality: rule filters (URL block lists, Gopher, C4, FineWeb, code, academic) -> documents
that pass every rule.

Consumes: documents with `text`, `source`, `url` and `lang` (run langid first: stop words and
          word splitting follow `lang`; a document without one is read as `default_lang`).
Adds:     every signal of every listed filter as a float32 column (`gopher_*`, `c4_*`, ...),
          NaN where a filter does not apply to the document's source or cannot measure it.
          Prose rules (Gopher, Gopher repetition, FineWeb) measure the text without its fenced
          code blocks (`Filter.measures_prose`). C4 with `remove_lines: true` and PII
          redaction rewrite `text`: kept documents leave with the cleaned text.
Drops:    documents where a rule fires, as `quality:<filter>:<rule>`: the first rule that
          fires, in the order of `filters` and then of each filter's rules. Every filter
          measures every document it applies to (no short-circuit), so `curate report
          --what-if quality.<filter>.<param>=<value>` recomputes the decisions from the stored
          signals with each filter's `Rule.fires`. Documents that hung a worker before are
          removed as `quality:error:timeout`.

Removed documents keep the text they came with; signals of filters after a rewriting C4 were
measured on the cleaned text (see filters/c4.py).
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, create_model, field_validator

from curate import schema
from curate.config import Section
from curate.filters import BUILTIN, FILTERS
from curate.filters.base import Filter
from curate.stage import Result, Stage, split
from curate.text.stats import Docs, as_text, to_numpy
from curate.text.words import WordSplitter



class _QualityBase(Section):
    filters: list[str] = Field(
        default_factory=lambda: list(BUILTIN),
        description=f"filters applied, in this order (reasons follow it); built in: {', '.join(BUILTIN)}; "
                    "plugin filters are added by name",
    )
    default_lang: str = Field("en", description="language of documents without `lang` (langid did not run)")

    @field_validator("filters")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in FILTERS or n not in cls.model_fields]
        if unknown:
            known = [n for n in FILTERS if n in cls.model_fields]
            raise ValueError(f"unknown filter {unknown[0]!r}; known: {', '.join(known)}")
        if len(set(names)) != len(names):
            raise ValueError("a filter is listed twice")
        return names

    def __reduce__(self):
        # A section with plugin filters is an instance of a class made for them (config_model):
        # a worker rebuilds that class by the plugins' names (it has registered them too).
        plugins = tuple(n for n in type(self).model_fields if n in FILTERS and n not in BUILTIN)
        return _rebuild, (plugins, dict(self))


@functools.cache
def config_model(plugins: tuple[str, ...] = ()) -> type[_QualityBase]:
    """The section with one sub-section per filter: quality.<filter>.<param>, plus `plugins`
    (registered plugin filters the config names)."""
    return create_model(
        "QualityConfig",
        __base__=_QualityBase,
        **{name: (FILTERS[name].Config, Field(default_factory=FILTERS[name].Config)) for name in (*BUILTIN, *plugins)},
    )


def _rebuild(plugins: tuple[str, ...], values: dict):
    return config_model(plugins).model_construct(**values)


QualityConfig = config_model()


class QualityStage(Stage):
    name = "quality"
    Config = QualityConfig

    @classmethod
    def config_for(cls, section) -> type[_QualityBase]:
        """The section's model for a config: with the plugin filters it names (in `filters` or
        as a key), so a config that names none is unchanged by the plugins installed."""
        section = section if isinstance(section, dict) else {}
        listed = section.get("filters")
        named = set(section) | ({n for n in listed if isinstance(n, str)} if isinstance(listed, list) else set())
        return config_model(tuple(n for n in FILTERS if n not in BUILTIN and n in named))

    def __init__(self, config, work_dir=None):
        super().__init__(config, work_dir)
        self.filters: list[Filter] = [FILTERS[name](getattr(config, name)) for name in config.filters]
        self.splitter = WordSplitter()  # remembers chunks across batches of this worker

    @property
    def signal_columns(self) -> list[str]:
        return [s for f in self.filters for s in f.signals]

    def process(self, batch: pa.Table) -> Result:
        self.splitter.reset_if_large()
        n = batch.num_rows
        text = as_text(batch.column("text"))
        source = to_numpy(pc.fill_null(batch.column("source"), "text")).astype(object)
        docs = Docs(text, batch.column("lang"), self.splitter, self.config.default_lang, url=batch.column("url"),
                    source=batch.column("source"))
        signals = {column: np.full(n, np.nan, np.float32) for column in self.signal_columns}
        columns = {column: np.full(n, None, object) for f in self.filters for column in f.columns}
        counters: dict = {}
        for f in self.filters:
            rows = np.flatnonzero(np.isin(source, f.applies_to()))
            if len(rows) == 0:
                continue
            sub = docs if len(rows) == n else docs.take(rows)
            if f.rewrites_text:
                measured, new = f.rewrite(sub)  # the new text, or a Docs view of it
                new_text = new.text if isinstance(new, Docs) else new
                if len(rows) == n:
                    text = new_text
                    docs = new if isinstance(new, Docs) else docs.with_text(text)
                else:
                    text = _replace_rows(text, rows, new_text)
                    docs = docs.with_text(text)
            else:
                measured = f.measure(sub.prose if f.measures_prose else sub)
            for column in f.signals:
                signals[column][rows] = measured[column]
            for column in f.columns:
                columns[column][rows] = measured[column]
        reasons = self._decide(signals, n)
        keep = pc.is_null(reasons)
        table = batch
        for column, values in signals.items():
            table = schema.set_column(table, column, pa.array(values, pa.float32()))
        for f in self.filters:
            for column, type_ in f.columns.items():
                table = schema.set_column(table, column, pa.array(columns[column], type_))
            extra = f.counters(signals, to_numpy(keep).astype(bool))
            if extra:
                counters[f.name] = extra
        _, removed = split(table, keep, reasons)
        kept = schema.set_column(table, "text", text).filter(keep)
        rewritten = schema.text_bytes(table.filter(keep)) - schema.text_bytes(kept)
        if rewritten:
            counters["bytes_cut_from_kept_text"] = rewritten
        return Result(kept, removed, counters)

    def _decide(self, signals: dict[str, np.ndarray], n: int) -> pa.Array:
        """The reason of each document: the first rule that fires (null: kept)."""
        reasons = np.full(n, None, object)
        open_ = np.ones(n, bool)
        for f in self.filters:
            for rule, threshold in f.thresholds():
                fired = open_ & rule.fires(signals[rule.signal], threshold)
                reasons[fired] = f"quality:{f.name}:{rule.name}"
                open_ &= ~fired
        return pa.array(reasons, pa.string())


def _replace_rows(text: pa.Array, rows: np.ndarray, values: pa.Array) -> pa.Array:
    mask = np.zeros(len(text), bool)
    mask[rows] = True
    return pc.replace_with_mask(text, pa.array(mask), values)
