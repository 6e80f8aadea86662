"""Benchmark decontamination: documents that share a long word n-gram (13 words by default,
after lowercasing and folding punctuation) with an item of an evaluation set the config names,
as GPT-3 (Brown et al. 2020, appendix C) and most pretraining corpora since do it. Matching and
the n-gram index: filters/decontam/index.py.

    quality:
      decontam:
        mode: remove            # or cut
        sets:
          - {name: mmlu, path: evals/mmlu_test.jsonl, fields: [question, choices], id_field: id}
          - {name: gsm8k, path: evals/gsm8k_test.parquet, fields: [question, answer]}
          - {name: my_qa, path: evals/questions.txt}   # one item per line

mode remove: a document with more than `max_ngrams` matched n-grams of a set is removed as
  `quality:decontam:<set>` (sets checked in the order listed).
mode cut:    the matched spans are cut out of the text (`rewrites_text`), unless more than
  `max_cut_coverage` of the document's words are inside them: then the document is a copy of
  benchmark items rather than a text that quotes one, and is removed as
  `quality:decontam:mostly_eval`.

Signals: `decontam_matches` (distinct evaluation items matched), `decontam_coverage` (share of
the words inside a matched n-gram), `decontam_words_cut` (cut mode: words cut), and
`decontam_<set>` (matched n-grams of each set). The matched items are in the string column
`decontam_items`: a JSON list of "<set>:<item id>" (the first MAX_ITEMS in order; null when
none). The ledger gets `counters.decontam`: `docs` (documents matching each set, whatever their
fate) and, in cut mode, `cut_docs` and `cut_words` of the kept documents.

The index is built once per worker. With no `sets` the filter does nothing and adds no column.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from curate.filters.decontam import index as decontam
from curate.readers import records
from curate.config import ResourcePath, Section
from curate.filters.base import Filter, FilterConfig, Rule
from curate.text.stats import Docs

MAX_ITEMS = 20  # matched items listed per document; decontam_matches counts them all


class EvalSet(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", description="the set's name, in reasons and columns")
    path: ResourcePath = Field(description=f"the items: {records.FORMATS}")
    fields: list[str] | None = Field(None, description="JSON/Parquet fields joined into an item; null: every text field")
    id_field: str | None = Field("id", description="field holding the item id; missing: the line or row number")

    @model_validator(mode="after")
    def _readable(self) -> "EvalSet":
        decontam.read_eval_set(self.path, self.fields, self.id_field)  # a bad file: one config error
        return self


class DecontamConfig(FilterConfig):
    sets: list[EvalSet] = Field(default_factory=list, description="evaluation sets to decontaminate against")
    ngram: int = Field(13, ge=1, description="words in a shared n-gram (a measurement setting)")
    mode: Literal["remove", "cut"] = Field("remove", description="remove a matching document, or cut the matched spans")
    max_ngrams: int | None = Field(0, ge=0, description="remove mode: more matched n-grams of a set: removed")
    max_cut_coverage: float | None = Field(0.5, ge=0, le=1,
                                           description="cut mode: a larger share of words in matched n-grams: removed")

    @field_validator("sets")
    @classmethod
    def _unique(cls, sets: list[EvalSet]) -> list[EvalSet]:
        names = [s.name for s in sets]
        if len(set(names)) != len(names):
            raise ValueError("two evaluation sets have the same name")
        return sets


class DecontamFilter(Filter):
    name = "decontam"
    Config = DecontamConfig
    sources = ("web", "text", "academic", "code")
    measure_params = ("ngram", "mode")
    columns = {"decontam_items": pa.string()}

    def __init__(self, config: DecontamConfig):
        super().__init__(config)
        sets = {s.name: decontam.read_eval_set(s.path, s.fields, s.id_field) for s in config.sets}
        self.set_names = list(sets)
        self.index = decontam.Index(sets, config.ngram) if sets else None
        # Columns and rules follow the configured sets, so they live on the instance; without a
        # set the filter measures nothing and adds no column.
        self.signals = ("decontam_matches", "decontam_coverage", "decontam_words_cut") + tuple(
            f"decontam_{name}" for name in self.set_names) if sets else ()
        self.columns = type(self).columns if sets else {}
        self.rewrites_text = config.mode == "cut" and bool(sets)
        if config.mode == "remove":
            self.rules = tuple(Rule(name, f"decontam_{name}", "gt", "max_ngrams") for name in self.set_names)
        else:
            self.rules = (Rule("mostly_eval", "decontam_coverage", "gt", "max_cut_coverage"),) if sets else ()

    def measure(self, docs: Docs) -> dict[str, np.ndarray]:
        return self.rewrite(docs)[0]

    def rewrite(self, docs: Docs) -> tuple[dict, pa.Array]:
        if self.index is None:
            return {}, docs.text
        out: dict = {signal: np.zeros(docs.n) for signal in self.signals}
        out["decontam_items"] = np.full(docs.n, None, object)
        hits = self.index.match(docs.text)
        out["decontam_matches"] = hits.item_counts().astype(np.float64)
        out["decontam_coverage"] = hits.coverage()
        for s, name in enumerate(self.set_names):
            out[f"decontam_{name}"] = hits.per_set[:, s].astype(np.float64)
        for doc, items in hits.items.items():
            out["decontam_items"][doc] = orjson.dumps(items[:MAX_ITEMS]).decode()
        text = docs.text
        if self.rewrites_text and hits.matched.any():
            # A document the rule removes whole keeps its text; the rule sees the stored float32.
            whole = self.rules[0].fires(out["decontam_coverage"].astype(np.float32), self.config.max_cut_coverage)
            rows = np.flatnonzero(hits.matched & ~whole)
            if len(rows):
                mask = np.zeros(docs.n, bool)
                mask[rows] = True
                text = pc.replace_with_mask(text, pa.array(mask), decontam.cut(text, hits, rows))
                out["decontam_words_cut"][rows] = hits.covered_words()[rows]
        return out, text

    def counters(self, signals: dict[str, np.ndarray], kept: np.ndarray) -> dict:
        if self.index is None:
            return {}
        out = {"docs": {name: int(np.sum(signals[f"decontam_{name}"] > 0)) for name in self.set_names}}
        if self.rewrites_text:
            cut = np.nan_to_num(signals["decontam_words_cut"])
            out["cut_docs"] = int(np.sum((cut > 0) & kept))
            out["cut_words"] = int(cut[kept].sum())
        return out
