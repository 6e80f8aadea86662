"""Batch text statistics the quality filters share: lines, tokens, duplicates, per-document sums.

Everything works on a whole batch at once: Arrow string kernels (RE2) for lines and substrings,
numpy over flat arrays plus "parent" indices (which document each line or token belongs to) for
the per-document reductions. `Docs` wraps one batch and computes each view on first use, so
filters that need the same view (Gopher's tokens, FineWeb's lines) pay for it once.

Python's string semantics are kept where the published filters rely on them: `str.splitlines`
(which also breaks at \\r, \\v, \\f, \\x1c-\\x1e, \\x85, \\u2028, \\u2029), `str.strip`/`str.split`
whitespace, and lengths in code points.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.text.words import UNSPACED, WordSplitter, ranges, sentence_terminals

# Python's str.isspace() characters, as an RE2 class body (RE2's \s is ASCII only).
WS = r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
# Where str.splitlines() breaks a line.
LINE_BREAK = r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x{85}\x{2028}\x{2029}]"


def as_text(column) -> pa.Array:
    """One large_string array, nulls as empty strings."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if column.type != pa.large_string():
        column = column.cast(pa.large_string())
    return pc.fill_null(column, "")


def strip(text: pa.Array) -> pa.Array:
    """str.strip() on every row (Arrow's Unicode whitespace is Python's; tests check it)."""
    return pc.utf8_trim_whitespace(text)


@functools.cache
def sentence_end_class() -> str:
    """An RE2 character class of Unicode's sentence-terminal characters."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(sentence_terminals())) + "]"


def to_numpy(array) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False)


def lengths(strings: pa.Array) -> np.ndarray:
    """Code points per string (Python's len)."""
    return to_numpy(pc.utf8_length(strings)).astype(np.int64)


class Pieces:
    """The pieces (lines, paragraphs) of every document: one flat string array, and which
    document each piece belongs to."""

    def __init__(self, values: pa.Array, parents: np.ndarray, n_docs: int):
        self.values = values
        self.parents = parents
        self.n_docs = n_docs

    @classmethod
    def split(cls, text: pa.Array, pattern: str, regex: bool = True) -> "Pieces":
        lists = pc.split_pattern_regex(text, pattern) if regex else pc.split_pattern(text, pattern)
        return cls(pc.list_flatten(lists), to_numpy(pc.list_parent_indices(lists)), len(text))

    @classmethod
    def splitlines(cls, text: pa.Array) -> "Pieces":
        """str.splitlines() of every document (no piece after a final line break; none for "")."""
        p = cls.split(text, LINE_BREAK)
        ends_broken = to_numpy(pc.match_substring_regex(text, f"(?:{LINE_BREAK})$")) | (lengths(text) == 0)
        # the last piece of a document that ends in a line break (or is empty) is not a line
        last = np.r_[p.parents[1:] != p.parents[:-1], True] if len(p.parents) else np.zeros(0, bool)
        keep = ~(last & ends_broken[p.parents])
        return p.filter(keep)

    def filter(self, mask: np.ndarray) -> "Pieces":
        return Pieces(self.values.filter(pa.array(mask)), self.parents[mask], self.n_docs)

    def count(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Pieces per document (those where `mask` holds, if given)."""
        weights = None if mask is None else mask.astype(np.float64)
        return np.bincount(self.parents, weights=weights, minlength=self.n_docs)

    def total(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.parents, weights=values, minlength=self.n_docs)

    def fraction(self, mask: np.ndarray) -> np.ndarray:
        """Share of each document's pieces where `mask` holds (NaN for a document without any)."""
        return ratio(self.count(mask), self.count())

    def matches(self, pattern: str, ignore_case: bool = False) -> np.ndarray:
        return to_numpy(pc.match_substring_regex(self.values, pattern, ignore_case=ignore_case))

    def lengths(self) -> np.ndarray:
        return lengths(self.values)

    def duplicates(self) -> np.ndarray:
        """True for a piece equal to an earlier piece of the same document."""
        return repeated_within(to_numpy(pc.dictionary_encode(self.values).indices), self.parents)


def first_seen(codes: np.ndarray) -> np.ndarray:
    """True where a code appears for the first time, for codes numbered in order of first
    appearance (as `dictionary_encode` numbers them)."""
    if len(codes) == 0:
        return np.zeros(0, bool)
    running_max = np.maximum.accumulate(codes)
    return np.r_[True, running_max[1:] > running_max[:-1]]


def repeated_within(codes: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """True for an element whose code already occurred earlier in the same group (document)."""
    if len(codes) == 0:
        return np.zeros(0, bool)
    width = int(codes.max()) + 1
    keys = groups.astype(np.int64) * width + codes
    return ~first_seen(to_numpy(pc.dictionary_encode(pa.array(keys)).indices))


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (nothing to measure)."""
    num = np.asarray(numerator, np.float64)
    den = np.asarray(denominator, np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


class Tokens:
    """Token ids of every document (see curate.text.words) with per-document reductions."""

    def __init__(self, splitter: WordSplitter, ids: np.ndarray, offsets: np.ndarray, chunk_start: np.ndarray):
        self.splitter = splitter
        self.vocab = splitter.vocab
        self.ids = ids
        self.chunk_start = chunk_start  # the token begins a whitespace-separated chunk
        self.offsets = offsets
        self.n_docs = len(offsets) - 1
        self.count = np.diff(offsets)
        self.parents = np.repeat(np.arange(self.n_docs), self.count)

    def total(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.parents, weights=values, minlength=self.n_docs)

    def per_chunk(self, facts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each whitespace-separated chunk: whether any of its tokens has `facts`, and the
        document it belongs to."""
        chunk = np.cumsum(self.chunk_start) - 1
        n_chunks = int(chunk[-1]) + 1 if len(chunk) else 0
        hit = np.bincount(chunk[facts], minlength=n_chunks) > 0
        return hit, self.parents[self.chunk_start]

    def fact(self, name: str) -> np.ndarray:
        """A per-token fact of the vocabulary (length, is_word, has_alpha, ...) for every token."""
        return getattr(self.vocab, name)[self.ids]

    def select(self, groups: np.ndarray) -> "Tokens":
        """The tokens of some groups (in the given order)."""
        counts = self.count[groups]
        at = ranges(self.offsets[:-1][groups], counts)
        return Tokens(self.splitter, self.ids[at], np.concatenate([[0], np.cumsum(counts)]), self.chunk_start[at])

    def regroup(self, parents: np.ndarray, n_groups: int) -> "Tokens":
        """Tokens of larger groups made of consecutive ones (lines -> documents): group i of
        these tokens belongs to group parents[i] (non-decreasing) of the result."""
        counts = np.bincount(parents, weights=self.count, minlength=n_groups).astype(np.int64)
        return Tokens(self.splitter, self.ids, np.concatenate([[0], np.cumsum(counts)]), self.chunk_start)

    @classmethod
    def interleave(cls, parts: list[tuple[np.ndarray, "Tokens"]], n_groups: int, splitter: WordSplitter) -> "Tokens":
        """One Tokens from parts that each hold the groups at some positions (`rows`)."""
        counts = np.zeros(n_groups, np.int64)
        for rows, tokens in parts:
            counts[rows] = tokens.count
        offsets = np.concatenate([[0], np.cumsum(counts)])
        ids = np.empty(offsets[-1], np.int32)
        chunk_start = np.empty(offsets[-1], bool)
        for rows, tokens in parts:
            at = ranges(offsets[:-1][rows], counts[rows])
            ids[at] = tokens.ids
            chunk_start[at] = tokens.chunk_start
        return cls(splitter, ids, offsets, chunk_start)


class Docs:
    """One batch of documents and the views filters measure them through, each built once."""

    def __init__(self, text, lang=None, splitter: WordSplitter | None = None, default_lang: str = "en", url=None,
                 source=None):
        self.text = as_text(text)
        self.n = len(self.text)
        self.url = None if url is None else as_text(url)
        self.source = None if source is None else as_text(source)  # web, code, academic, text
        if lang is None:
            lang = pa.nulls(self.n, pa.string())
        if isinstance(lang, pa.ChunkedArray):
            lang = lang.combine_chunks() if lang.num_chunks != 1 else lang.chunk(0)
        # a document without a language (langid did not run) is read as `default_lang`
        self.lang_array = pc.fill_null(lang.cast(pa.string()), default_lang)
        self.splitter = splitter or WordSplitter()

    def take(self, rows: np.ndarray) -> "Docs":
        indices = pa.array(rows, pa.int64())
        url = None if self.url is None else self.url.take(indices)
        source = None if self.source is None else self.source.take(indices)
        return Docs(self.text.take(indices), self.lang_array.take(indices), self.splitter, url=url, source=source)

    def with_text(self, text: pa.Array, tokens: Tokens | None = None) -> "Docs":
        """The same documents with new text (after a filter rewrote it), and its tokens where the
        rewriting filter already knows them."""
        docs = Docs(text, self.lang_array, self.splitter, url=self.url, source=self.source)
        if tokens is not None:
            docs.tokens = tokens
        return docs

    @functools.cached_property
    def prose(self) -> "Docs":
        """The same documents without their fenced code blocks (curate.text.prose): what prose
        rules measure. Itself when no document has one."""
        from curate.text.prose import has_code, without_code

        if not has_code(self.text):
            return self
        return self.with_text(without_code(self.text))

    @functools.cached_property
    def length(self) -> np.ndarray:
        """Code points per document."""
        return lengths(self.text)

    @functools.cached_property
    def lang(self) -> np.ndarray:
        return to_numpy(self.lang_array).astype(object)

    @functools.cached_property
    def unspaced(self) -> np.ndarray:
        """Documents in a language written without spaces between words (zh, ja, th, ...)."""
        return to_numpy(pc.is_in(self.lang_array, pa.array(sorted(UNSPACED)))).astype(bool)

    @functools.cached_property
    def tokens(self) -> Tokens:
        """Tokens of every document (those of its lines: a token never spans a line break)."""
        return self.line_tokens.regroup(self.lines.parents, self.n)

    @functools.cached_property
    def line_tokens(self) -> Tokens:
        """Tokens of every line of `lines`."""
        return self.tokens_of(self.lines.values, self.unspaced[self.lines.parents])

    def tokens_of(self, strings: pa.Array, unspaced: np.ndarray) -> Tokens:
        return Tokens(self.splitter, *self.splitter.split_chunks(strings, unspaced))

    @functools.cached_property
    def lines(self) -> Pieces:
        """str.splitlines() of every document."""
        return Pieces.splitlines(self.text)

    def count(self, substring: str) -> np.ndarray:
        """Non-overlapping occurrences of `substring` in each document (str.count)."""
        return to_numpy(pc.count_substring(self.text, substring)).astype(np.int64)
