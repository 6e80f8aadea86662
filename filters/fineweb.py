"""FineWeb quality rules: Penedo et al. 2024, "The FineWeb Datasets: Decanting the Web for the
Finest Text Data at Scale", section 3.3 (custom filters).

Lines are the document's non-blank `\\n`-separated lines, unstripped (a line "ends with
punctuation" only if its very last character is one, as in datatrove). Terminal punctuation is
Unicode's Sentence_Terminal set (. ! ? 。 । ؟ ...). The newline ratio divides by curate.text.words
tokens. `short_line_length` changes what is measured, so a what-if on it needs a re-run.

Defaults are datatrove 0.10's but for the duplicated-line share: 0.2, not datatrove's 0.01 (nor
the paper's 0.1). API reference repeats whole lines ("Part of the Stable ABI.", "Return value:
New reference."): 0.01 removed 87 of 530 Python docs pages and 0.1 still 16, while on DCLM's
human labels the rule removed none of the 129 bad texts at any of these settings. Measured effect
of the defaults (scripts/eval_curation.py, documents for which this filter's rule fired first):
1 Debian Reference page (the Spanish title page), 4 of 530 Python docs pages, 9 of 129 bad and 3
of 152 good DCLM-labelled texts.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from curate.filters.base import Filter, FilterConfig, Rule
from curate.text.stats import WS, Docs, Pieces, ratio, sentence_end_class


class FineWebConfig(FilterConfig):
    min_lines: int | None = Field(1, ge=0, description="fewer non-blank lines: removed (an empty document)")
    min_line_punct_ratio: float | None = Field(0.12, ge=0, le=1, description="share of lines ending in terminal punctuation below: removed")
    max_short_line_ratio: float | None = Field(0.67, ge=0, le=1, description="share of short lines above: removed")
    short_line_length: int = Field(30, ge=0, description="a line of at most this many characters is short (a measurement setting)")
    max_char_dup_ratio: float | None = Field(0.2, ge=0, le=1, description="share of characters in repeated lines above: removed")
    max_newline_ratio: float | None = Field(0.3, ge=0, description="newlines per word above: removed (lists)")


class FineWebQualityFilter(Filter):
    name = "fineweb"
    measures_prose = True
    Config = FineWebConfig
    measure_params = ("short_line_length",)
    rules = (
        # an empty document has nothing to judge
        Rule("min_lines", "fineweb_lines", "lt", "min_lines"),
        # "remove documents where the fraction of lines ending with punctuation ≤ 0.12"
        Rule("min_line_punct_ratio", "fineweb_line_punct_ratio", "lt", "min_line_punct_ratio"),
        # "... where the fraction of lines shorter than 30 characters ≥ 0.67"
        Rule("max_short_line_ratio", "fineweb_short_line_ratio", "gt", "max_short_line_ratio"),
        # "... where the fraction of characters in duplicated lines ≥ 0.1" (datatrove: 0.01)
        Rule("max_char_dup_ratio", "fineweb_char_dup_ratio", "gt", "max_char_dup_ratio"),
        # datatrove's list filter: newlines per word above 0.3
        Rule("max_newline_ratio", "fineweb_newline_ratio", "gt", "max_newline_ratio"),
    )
    signals = tuple(r.signal for r in rules)

    def measure(self, docs: Docs) -> dict[str, np.ndarray]:
        lines = Pieces.split(docs.text, "\n", regex=False)
        lines = lines.filter(lines.matches(f"[^{WS}]"))  # drop blank lines
        dup = lines.duplicates()
        newlines = docs.count("\n")
        return {
            "fineweb_lines": lines.count(),
            "fineweb_line_punct_ratio": lines.fraction(lines.matches(sentence_end_class() + "$")),
            "fineweb_char_dup_ratio": ratio(lines.total(np.where(dup, lines.lengths(), 0)), docs.length - newlines),
            "fineweb_short_line_ratio": lines.fraction(lines.lengths() <= self.config.short_line_length),
            "fineweb_newline_ratio": ratio(newlines, docs.tokens.count),
        }
