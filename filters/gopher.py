"""Gopher quality rules: Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights
from Training Gopher", appendix A.1.1 (MassiveWeb quality filters), with the paper's thresholds
but for the minimum of 80 words (the paper's 50: see the field).

Words are the paper's: whitespace-separated (`words: whitespace`). A word counts as alphabetic
when it has a letter, so `/etc/fstab,` and `(UEFI)` are words with letters, and the mean word
length is over the words' letters and digits (their word tokens; `--` is no word). datatrove 0.10
counts spaCy-English tokens instead, punctuation included (`words: tokens`, as the fineweb
preset): every comma and bracket is then a "word" without a letter, which removed every English,
German, Spanish, French, Indonesian, Italian and Portuguese chapter of the Debian Reference and
361 of the 530 Python docs pages (alphabetic share 0.61-0.77 in tokens, 0.75-0.93 in whitespace
words). Measured effect of the defaults (scripts/eval_curation.py, text without code blocks;
documents for which this filter's rule fired first): no Debian Reference chapter and 42 of 530
Python docs pages (32 under 80 words, 6 with fewer than 2 stop words: navigation and index
stubs; 4 tables of identifiers), 53 of 129 bad and 4 of 152 good DCLM-labelled texts.

Per language: the stop-word rule uses the document's language list (NaN, so skipped, where
curate.text.words has none); for languages written without spaces (zh, ja, th, ...) words are
characters (curate.text.words tokens that are not punctuation), so the mean word length is not
measured and the word counts count characters.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from curate.filters.base import Filter, FilterConfig, Rule
from curate.text.stats import WS, Docs, ratio


class GopherConfig(FilterConfig):
    words: Literal["whitespace", "tokens"] = Field(
        "whitespace", description="what a word is (a measurement setting): whitespace: the paper's "
        "whitespace-separated words; tokens: spaCy-English tokens, punctuation included, as datatrove 0.10")
    # 80, not the paper's 50: DCLM's human labels call short snippets bad (13 more of 129 bad texts
    # removed, 1 of 152 good lost, 2 of 530 Python docs pages)
    min_doc_words: int | None = Field(80, ge=0, description="fewer words: removed")
    max_doc_words: int | None = Field(100_000, ge=0, description="more words: removed")
    min_avg_word_length: float | None = Field(3, ge=0, description="shorter mean word length: removed")
    max_avg_word_length: float | None = Field(10, ge=0, description="longer mean word length: removed")
    max_symbol_word_ratio: float | None = Field(0.1, ge=0, description="'#' or ellipses per word above: removed")
    max_bullet_lines_ratio: float | None = Field(0.9, ge=0, le=1, description="share of lines starting with a bullet above: removed")
    max_ellipsis_lines_ratio: float | None = Field(0.3, ge=0, le=1, description="share of lines ending in an ellipsis above: removed")
    min_alpha_words_ratio: float | None = Field(0.8, ge=0, le=1, description="share of words with a letter below: removed")
    min_stop_words: int | None = Field(2, ge=0, description="fewer distinct stop words: removed")


class GopherQualityFilter(Filter):
    name = "gopher"
    measures_prose = True
    Config = GopherConfig
    rules = (
        # "word count ... outside the range of 50 to 100,000 words"
        Rule("min_doc_words", "gopher_words", "lt", "min_doc_words"),
        Rule("max_doc_words", "gopher_words", "gt", "max_doc_words"),
        # "mean word length outside the range of 3 to 10 characters"
        Rule("min_avg_word_length", "gopher_mean_word_length", "lt", "min_avg_word_length"),
        Rule("max_avg_word_length", "gopher_mean_word_length", "gt", "max_avg_word_length"),
        # "symbol-to-word ratio greater than 0.1 for either the hash symbol or the ellipsis"
        Rule("max_hash_ratio", "gopher_hash_ratio", "gt", "max_symbol_word_ratio"),
        Rule("max_ellipsis_ratio", "gopher_ellipsis_ratio", "gt", "max_symbol_word_ratio"),
        # "more than 90% of lines starting with a bullet point"
        Rule("max_bullet_lines_ratio", "gopher_bullet_lines_ratio", "gt", "max_bullet_lines_ratio"),
        # "more than 30% ending with an ellipsis"
        Rule("max_ellipsis_lines_ratio", "gopher_ellipsis_lines_ratio", "gt", "max_ellipsis_lines_ratio"),
        # "80% of words in a document contain at least one alphabetic character"
        Rule("min_alpha_words_ratio", "gopher_alpha_words_ratio", "lt", "min_alpha_words_ratio"),
        # "contain at least two of the following English words: the, be, to, of, and, that, have, with"
        Rule("min_stop_words", "gopher_stop_words", "lt", "min_stop_words"),
    )
    signals = tuple(dict.fromkeys(r.signal for r in rules))
    measure_params = ("words",)

    def measure(self, docs: Docs) -> dict[str, np.ndarray]:
        tokens = docs.tokens
        if self.config.words == "whitespace":
            words, word_chars, measured, alpha_words = whitespace_words(docs)
            denominator = words
        else:  # datatrove: counts and lengths over word tokens, ratios over every token
            is_word = tokens.fact("is_word")
            words = tokens.total(is_word)
            word_chars = tokens.total(np.where(is_word, tokens.fact("length"), 0))
            alpha_words = tokens.total(tokens.fact("has_alpha"))
            denominator = tokens.count.astype(np.float64)
            measured = words
        mean_length = ratio(word_chars, measured)
        mean_length[docs.unspaced] = np.nan  # characters are not words: no word length
        lines = docs.lines
        return {
            "gopher_words": words,
            "gopher_mean_word_length": mean_length,
            "gopher_hash_ratio": ratio(docs.count("#"), denominator),
            "gopher_ellipsis_ratio": ratio(docs.count("...") + docs.count("…"), denominator),
            "gopher_bullet_lines_ratio": lines.fraction(lines.matches(f"^[{WS}]*[•\\-]")),
            "gopher_ellipsis_lines_ratio": lines.fraction(lines.matches(f"(?:\\.\\.\\.|…)[{WS}]*$")),
            "gopher_alpha_words_ratio": ratio(alpha_words, denominator),
            "gopher_stop_words": stop_words(docs),
        }


def whitespace_words(docs: Docs) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per document: words (whitespace-separated chunks); the characters of their word tokens
    and how many words have one (the mean word length is over those, punctuation aside: `--` is
    no word of length 0); and the words with a letter. Documents in languages written without
    spaces count their character words instead (curate.text.words tokens), punctuation aside."""
    tokens = docs.tokens
    is_word = tokens.fact("is_word")
    has_word, owner = tokens.per_chunk(is_word)
    has_alpha, _ = tokens.per_chunk(tokens.fact("has_alpha"))
    words = np.bincount(owner, minlength=docs.n).astype(np.float64)
    cored = np.bincount(owner, weights=has_word, minlength=docs.n)
    alpha = np.bincount(owner, weights=has_alpha, minlength=docs.n)
    chars = tokens.total(np.where(is_word, tokens.fact("length"), 0))
    unspaced = np.flatnonzero(docs.unspaced)
    if len(unspaced):
        words[unspaced] = tokens.total(is_word)[unspaced]
        alpha[unspaced] = tokens.total(is_word & tokens.fact("has_alpha"))[unspaced]
    return words, chars, cored, alpha


def stop_words(docs: Docs) -> np.ndarray:
    """Distinct stop words of its language in each document; NaN where the language has no list."""
    tokens = docs.tokens
    out = np.full(docs.n, np.nan)
    lang = docs.lang
    for code in np.unique(lang):
        stop = docs.splitter.stop_word_ids(code)
        if stop is None:
            continue
        in_lang = lang == code
        out[in_lang] = 0
        hit = np.isin(tokens.ids, stop) & in_lang[tokens.parents]
        if hit.any():
            pairs = np.unique(tokens.parents[hit].astype(np.int64) * (len(tokens.vocab) + 1) + tokens.ids[hit])
            out += np.bincount(pairs // (len(tokens.vocab) + 1), minlength=docs.n)
    return out

