"""C4 rules: Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified
Text-to-Text Transformer", section 2.2 ("Colossal Clean Crawled Corpus"), and the rules of its
reference code (TFDS c4_utils) that datatrove 0.10's C4QualityFilter also applies.

C4 cleans lines before it judges the page: it keeps only lines (of the stripped text, as
str.splitlines) that pass every line rule, and removes the page for lorem ipsum, a curly bracket,
or too few sentences in what is left. Deleting lines shreds good text: headings, list items,
table rows and, where a source wraps its paragraphs, every wrapped line without a full stop
(python-docs `c-api/concrete.html` went from 1,057 to 435 characters of fragments). So by default
the line rules only measure (`remove_lines: false`): a page is judged on the lines C4 would keep,
and kept pages leave with their text whole. With `remove_lines: true` this filter rewrites `text`
as C4 did (`rewrites_text`: removed documents keep the text they came with, filters after it
measure the cleaned text); the fineweb preset does, without the terminal-punctuation rule. Lines
inside fenced code blocks are neither judged nor cut. `c4_removed_char_frac` is the share of
characters the line rules drop (or would drop).

Defaults differ from C4's where measurement said so (scripts/eval_curation.py): 4 sentences,
not 5 (on DCLM's human labels, with Gopher's 50 words, 138 of 152 good texts kept and 76 of 129
bad removed against 133 and 86 at 5; with the defaults this rule is the first to fire for 22 bad
and 6 good texts, 7 of 530 Python docs pages (chapter and index pages of a sentence or two) and
the title page of 8 of the 10 Debian Reference languages), and no curly-bracket
rule (`max_curly_bracket_lines: null`: code is fenced and not judged, and in prose a brace is a
shell variable, as on 5 Debian Reference pages per language that the rule removed).

What-if: the page rules below are thresholds over stored signals. The line rules (the settings
without `max_`/`min_`) decide what is measured: a what-if on them needs a re-run.

Sentences are counted per kept line as spaCy's sentencizer counts them on curate.text.words tokens
(a new sentence starts at a word after a sentence-terminal token). Terminal punctuation for
lines is C4's . ? ! " ' plus Unicode's other sentence terminals (。 । ؟ ...), so that lines in
other scripts are not all dropped, and a terminal may be followed by closing brackets and quotes
(`.)`, `.”`, `?»`, `。」`: C4's own list takes `."` but not its typographic twin). That keeps 1
more of 152 good DCLM texts (a paragraph ending in `Texas.)`), no bad one, and the Python docs
start page (a table cell ending in `answers!)`); `end_punctuation: false` (the fineweb preset)
is unaffected.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.filters.base import Filter, FilterConfig, Rule
from curate.text.prose import code_lines
from curate.text.stats import WS, Docs, Pieces, Tokens, lengths, ratio, sentence_end_class, strip, to_numpy

CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"  # Wikipedia-style markers removed from lines
# What may follow a sentence's terminal at the end of a line: closing brackets and quotes, as in
# `.)`, `.”`, `?»`, `。」`, German `.“` (C4 itself accepts a final `"` or `'` alone), and the space
# French sets before `»`.
CLOSERS = "\"')\\]}»›”’“‘」』）】〉》〕〗〙〛］｝"
POLICY = r"terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies"


class C4Config(FilterConfig):
    # page rules (thresholds over stored signals)
    max_lorem_ipsum_lines: int | None = Field(0, ge=0, description="lines with 'lorem ipsum' above this: removed")
    max_curly_bracket_lines: int | None = Field(None, ge=0, description="lines with '{' above this: removed")
    min_num_sentences: int | None = Field(4, ge=0, description="fewer sentences in the kept lines: removed")
    min_kept_lines: int | None = Field(1, ge=0, description="fewer kept lines: removed (nothing left)")
    remove_lines: bool = Field(False, description="delete the lines the line rules drop from kept documents (false: the rules only measure)")
    # line rules (decide which lines are kept)
    remove_citations: bool = Field(True, description="delete [1], [edit], [citation needed] from lines")
    end_punctuation: bool = Field(True, description="drop lines not ending in terminal punctuation (or ending in '...')")
    min_words_per_line: int | None = Field(3, ge=0, description="drop lines with fewer words")
    max_word_length: int | None = Field(1000, ge=1, description="drop lines with a longer word")
    javascript_lines: bool = Field(True, description="drop lines mentioning javascript")
    policy_lines: bool = Field(True, description="drop lines about terms of use, privacy or cookie policy")


class C4QualityFilter(Filter):
    name = "c4"
    Config = C4Config
    rewrites_text = True
    measure_params = ("remove_citations", "end_punctuation", "min_words_per_line", "max_word_length",
                      "javascript_lines", "policy_lines", "remove_lines")
    rules = (
        # "We removed any page where the phrase 'lorem ipsum' appeared"
        Rule("lorem_ipsum", "c4_lorem_ipsum_lines", "gt", "max_lorem_ipsum_lines"),
        # "We removed any pages that contained a curly bracket"
        Rule("curly_bracket", "c4_curly_bracket_lines", "gt", "max_curly_bracket_lines"),
        # "We discarded any page with fewer than 5 sentences"
        Rule("min_num_sentences", "c4_sentences", "lt", "min_num_sentences"),
        # a page whose every line was dropped
        Rule("no_lines_left", "c4_kept_lines", "lt", "min_kept_lines"),
    )
    signals = tuple(r.signal for r in rules) + ("c4_lines", "c4_removed_char_frac")

    def measure(self, docs: Docs) -> dict[str, np.ndarray]:
        return self.rewrite(docs)[0]

    def rewrite(self, docs: Docs) -> tuple[dict[str, np.ndarray], Docs]:
        cfg = self.config
        lines = docs.lines
        stripped = strip(lines.values)
        code = code_lines(lines)  # kept as they are and not judged: the rules are for prose
        keep = np.ones(len(stripped), bool)
        words = _word_count(stripped)  # str.split() words, counted before citations go
        unspaced = docs.unspaced[lines.parents]
        if unspaced.any():  # no spaces between words: count the splitter's character words
            rows = np.flatnonzero(unspaced)
            tokens = docs.line_tokens.select(rows)
            words[rows] = tokens.total(tokens.fact("is_word"))
        if cfg.max_word_length is not None:
            # "Remove lines with one word over 1000 chars"
            keep &= ~_has_long_word(stripped, cfg.max_word_length)
        changed = np.zeros(len(stripped), bool)
        if cfg.remove_citations:
            uncited = pc.replace_substring_regex(stripped, CITATION, "")
            changed = to_numpy(pc.not_equal(uncited, stripped)).astype(bool)
            stripped = uncited
        if cfg.end_punctuation:
            # "We only retained lines that ended in a terminal punctuation mark"
            ends = f"(?:[.?!]|{sentence_end_class()})[{CLOSERS}{WS}]*$|[\"']$"
            keep &= to_numpy(pc.match_substring_regex(stripped, ends))
            keep &= ~to_numpy(pc.ends_with(stripped, "..."))
        if cfg.min_words_per_line is not None:
            # "only retained lines that contained at least 3 words"
            keep &= words >= cfg.min_words_per_line
        keep |= code
        prose = keep & ~code
        lorem = prose & to_numpy(pc.match_substring(stripped, "lorem ipsum", ignore_case=True))
        if cfg.javascript_lines:
            # "We removed any line with the word Javascript"
            prose &= ~to_numpy(pc.match_substring(stripped, "javascript", ignore_case=True))
        curly = prose & to_numpy(pc.match_substring(stripped, "{"))
        if cfg.policy_lines:
            # reference code: drop lines about cookies and terms of use
            prose &= ~to_numpy(pc.match_substring_regex(stripped, POLICY, ignore_case=True))
        keep = prose | code
        if code.any():  # code lines stay as written: indented, citation-like [1] untouched
            stripped = pc.if_else(pa.array(code), lines.values, stripped)
            changed &= ~code
        kept = Pieces(stripped, lines.parents, docs.n).filter(keep)
        new_text = _join_lines(kept, docs.n)
        kept_tokens = _kept_line_tokens(docs, np.flatnonzero(keep), changed, stripped)
        signals = {
            "c4_lorem_ipsum_lines": lines.count(lorem),
            "c4_curly_bracket_lines": lines.count(curly),
            "c4_sentences": kept.total(_sentences_per_line(kept_tokens) * ~code[keep]),
            "c4_kept_lines": lines.count(prose),
            "c4_lines": lines.count(),
            "c4_removed_char_frac": 1.0 - ratio(lengths(new_text), docs.length),
        }
        if not cfg.remove_lines:
            return signals, docs
        # the cleaned text's tokens are its kept lines' tokens: later filters need not split again
        return signals, docs.with_text(new_text, kept_tokens.regroup(kept.parents, docs.n))


def _kept_line_tokens(docs: Docs, kept: np.ndarray, changed: np.ndarray, lines: pa.Array) -> Tokens:
    """Tokens of the kept lines: those of the document's lines, split again only where a
    citation marker was cut out of the line."""
    redo = changed[kept]
    parts = [(np.flatnonzero(~redo), docs.line_tokens.select(kept[~redo]))]
    if redo.any():
        rows = kept[redo]
        parts.append((np.flatnonzero(redo), docs.tokens_of(lines.take(pa.array(rows)), docs.unspaced[docs.lines.parents[rows]])))
    return Tokens.interleave(parts, len(kept), docs.splitter)


def _word_count(lines: pa.Array) -> np.ndarray:
    """len(line.split()) of every (stripped) line."""
    chunks = to_numpy(pc.list_value_length(pc.utf8_split_whitespace(lines)))
    return np.where(lengths(lines) == 0, 0, chunks)


def _has_long_word(lines: pa.Array, max_length: int) -> np.ndarray:
    """Lines with a whitespace-separated word longer than `max_length` characters."""
    out = np.zeros(len(lines), bool)
    candidates = np.flatnonzero(lengths(lines) > max_length)  # only these can hold such a word
    if len(candidates):
        words = pc.utf8_split_whitespace(lines.take(pa.array(candidates)))
        long = lengths(pc.list_flatten(words)) > max_length
        owner = to_numpy(pc.list_parent_indices(words))
        out[candidates[np.unique(owner[long])]] = True
    return out


def _join_lines(lines: Pieces, n_docs: int) -> pa.Array:
    """Each document's lines joined with newlines ("" for a document without lines)."""
    counts = lines.count().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    lists = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), lines.values)
    return pc.binary_join(lists, pa.scalar("\n", pa.large_string()))


def _sentences_per_line(tokens: Tokens) -> np.ndarray:
    """Sentences in each line as spaCy's sentencizer splits them: a token that is neither
    punctuation nor a terminal starts a new sentence when a sentence-terminal token (. ! ?)
    appears after the line's previous word."""
    n_lines = tokens.n_docs
    count = np.ones(n_lines)
    count[tokens.count == 0] = 0
    if len(tokens.ids) == 0:
        return count
    terminal = tokens.fact("ends_sentence")
    word = ~tokens.fact("is_punct") & ~terminal
    position = np.arange(len(tokens.ids))
    line_start = tokens.offsets[:-1][tokens.parents]
    # the last word before each token, not before its line's start
    last_word = np.maximum.accumulate(np.where(word, position, -1))
    previous_word = np.concatenate([[-1], last_word[:-1]])
    previous_word = np.maximum(previous_word, line_start - 1)
    terminal_cum = np.concatenate([[0], np.cumsum(terminal)])
    terminals_between = terminal_cum[position] - terminal_cum[previous_word + 1]
    starts = word & (terminals_between > 0)
    return count + np.bincount(tokens.parents, weights=starts, minlength=n_lines)
