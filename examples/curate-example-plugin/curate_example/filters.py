"""blockwords: remove documents that use words from a block list the user gives.

A filter measures, the quality stage decides: `measure` returns one float per document for each
signal column (NaN where it does not apply), and the `rules` say which threshold of the config
removes a document when its signal crosses it. So the stage stores `blockwords_hits` and
`blockwords_share` for every document, removes with `quality:blockwords:<rule>`, and
`curate report --what-if quality.blockwords.max_hits=3` replays a changed threshold.
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
from pydantic import Field

from curate.filters.base import Filter, FilterConfig, Rule
from curate.text.stats import Docs, ratio, to_numpy


class BlockWordsConfig(FilterConfig):
    words: list[str] = Field(default_factory=list, description="blocked words, matched whole and case-blind")
    max_hits: int | None = Field(0, ge=0, description="more blocked words than this: removed")
    max_share: float | None = Field(None, ge=0, le=1, description="a larger share of blocked words: removed")


class BlockWordsFilter(Filter):
    name = "blockwords"
    Config = BlockWordsConfig
    sources = ("web", "text")  # prose only; `quality.blockwords.sources` changes it
    rules = (
        # the document uses blocked words more often than allowed
        Rule("blocked_words", "blockwords_hits", "gt", "max_hits"),
        # blocked words are too large a share of its words
        Rule("blocked_share", "blockwords_share", "gt", "max_share"),
    )
    signals = ("blockwords_hits", "blockwords_share")

    def __init__(self, config: BlockWordsConfig):
        super().__init__(config)
        self.words = sorted({w.lower() for w in config.words})

    def measure(self, docs: Docs) -> dict[str, np.ndarray]:
        # Words are runs of letters and digits, lower-cased; counted per document with bincount
        # over the flattened word list: no Python loop over documents.
        words = pc.split_pattern_regex(pc.utf8_lower(docs.text), r"[^\pL\pN]+")
        flat = pc.list_flatten(words)
        parents = to_numpy(pc.list_parent_indices(words))
        nonempty = to_numpy(pc.greater(pc.utf8_length(flat), 0)).astype(float)
        hit = to_numpy(pc.is_in(flat, value_set=_array(self.words))).astype(float) if self.words else nonempty * 0
        hits = np.bincount(parents, weights=hit, minlength=docs.n)
        total = np.bincount(parents, weights=nonempty, minlength=docs.n)
        return {"blockwords_hits": hits, "blockwords_share": ratio(hits, total)}


def _array(words: list[str]):
    import pyarrow as pa

    return pa.array(words, pa.string())
