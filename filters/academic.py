r"""Academic (LaTeX) rules: our own, in the spirit of the arXiv subsets of RedPajama (Together
2023) and the Pile (Gao et al. 2020), which keep papers whole and drop what is not a paper.

Documents of source `academic` are LaTeX after extract's cleaning (comments, preamble and
bibliography removed, \\input files inlined). A document is removed when it has too little prose
to be a paper or a section (`min_words`), when it is mostly formulas (`max_math_frac`: a table of
equations or a notation dump, not text a model learns language from) or when LaTeX commands
outnumber the words (`max_command_ratio`: macro definitions, TikZ pictures, a broken
extraction). Thresholds were chosen on the 663 documents extract makes of the Open Logic
textbook (../shared/corpora/academic/openlogic) and the 5 arXiv papers: a proof-heavy logic text
has a median math share of 0.21 (95th percentile 0.49) and 0.21 commands per word (95th
percentile 0.75, 99th 1.69). The defaults remove 52 of the 663 (scripts/eval_curation.py): 47
part and chapter files of under 100 words (an editorial note and the \olimport lines of their
sections), 2 pages of derivations over 70% math and 3 inference-rule tables in bussproofs markup
with over 2 commands per word. Limits of 0.6 math and 1 command per word removed 23 more,
proof-rule sections with prose among them, and kept 88% of the textbook's documents.

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
    max_math_frac: float | None = Field(0.7, ge=0, le=1, description="share of characters in math above: removed")
    max_command_ratio: float | None = Field(2.0, ge=0, description="LaTeX commands per word above: removed")


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
