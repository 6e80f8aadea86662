r"""Academic (LaTeX) rules: our own, in the spirit of the arXiv subsets of RedPajama (Together
2023) and the Pile (Gao et al. 2020), which keep papers whole and drop what is not a paper.

Documents of source `academic` are LaTeX after extract's cleaning (comments, preamble and
bibliography removed, \\input files inlined). A document is removed when it has too little prose
to be a paper or a section (`min_words`), when it is mostly formulas (`max_math_frac`: a table of
equations or a notation dump, not text a model learns language from) or when LaTeX commands
outnumber the words (`max_command_ratio`: macro definitions, TikZ pictures, a broken
extraction). Thresholds were chosen on the 725 .tex files of ../shared/corpora/academic (the
Open Logic textbook and three arXiv papers): a proof-heavy logic text has a median math share of
0.21 (95th percentile 0.49) and 0.23 commands per word (95th percentile 0.69); the defaults
remove 1% of those files for math (tables of derivations), 4% for commands (inference-rule
tables in bussproofs markup) and the stubs of under 100 words (files that only \input others).

Words are runs of letters not part of a command; math is the text inside $...$, $$...$$,
\\(...\\), \\[...\\] and the display environments (equation, align, gather, multline, eqnarray).
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
from pydantic import Field

from curate.filters.base import Filter, FilterConfig, Rule
from curate.text.prose import MATH
from curate.text.stats import Docs, lengths, ratio, to_numpy

WORD = r"(?:^|[^\\\pL])\pL+"  # a run of letters not preceded by a backslash (not a command name)
COMMAND = r"\\[A-Za-z]+"


class AcademicConfig(FilterConfig):
    min_words: int | None = Field(100, ge=0, description="fewer prose words: removed")
    max_math_frac: float | None = Field(0.6, ge=0, le=1, description="share of characters in math above: removed")
    max_command_ratio: float | None = Field(1.0, ge=0, description="LaTeX commands per word above: removed")


class AcademicFilter(Filter):
    name = "academic"
    Config = AcademicConfig
    sources = ("academic",)
    rules = (
        # too little prose to be a paper or a section
        Rule("min_words", "academic_words", "lt", "min_words"),
        # mostly formulas
        Rule("max_math_frac", "academic_math_frac", "gt", "max_math_frac"),
        # more markup than words
        Rule("max_command_ratio", "academic_command_ratio", "gt", "max_command_ratio"),
    )
    signals = tuple(r.signal for r in rules)

    def measure(self, docs: Docs) -> dict[str, np.ndarray]:
        text = docs.text
        math_chars = docs.length - lengths(pc.replace_substring_regex(text, MATH, ""))
        words = _count(text, WORD)
        return {
            "academic_words": words,
            "academic_math_frac": ratio(math_chars, docs.length),
            "academic_command_ratio": ratio(_count(text, COMMAND), words),
        }


def _count(text, pattern: str) -> np.ndarray:
    return to_numpy(pc.count_substring_regex(text, pattern)).astype(np.float64)
