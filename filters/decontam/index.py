"""Benchmark decontamination: which documents share a long word n-gram with an evaluation item.

Normalisation, the same for documents and items: a word is a maximal run of letters, digits and
combining marks; everything else (punctuation, symbols, spaces) only separates words, so
punctuation is folded away; words are lowercased. An n-gram is n consecutive words of one
document or one item (n = 13 by default, as GPT-3's contamination study, Brown et al. 2020,
appendix C). An item shorter than n words has no n-gram and cannot be matched; `Index.short`
counts them.

Hashing runs on the whole batch at once: the distinct words of the batch (Arrow's
dictionary_encode) are hashed with numpy over their UTF-8 bytes, an n-gram's hash is a
polynomial of its word hashes, and both go through the splitmix64 finaliser. With a million
indexed n-grams and a billion document n-grams, the expected number of chance collisions is
about 1e15 / 2^64 = 5e-5.

The index holds the sorted distinct n-gram hashes of every item of every evaluation set and, for
each, the first item it came from; a batch is matched with one np.searchsorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import UserError
from curate.readers import records
from curate.text.matches import Matches, string_buffers
from curate.text.stats import as_text

WORD = r"[\pL\pN\pM]+"
PUNCTUATION = r"[^\pL\pN\pM\s]+"  # every separator that is not ASCII whitespace

_BYTE_BASE = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime, as the base over a word's bytes
_WORD_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, golden ratio: the base over an n-gram's words
_LENGTH_SALT = np.uint64(0xD6E8FEB86659FD93)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole output (uint64 wraps)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def hash_strings(values: pa.Array) -> np.ndarray:
    """A 64-bit hash of each non-empty string: a polynomial over its bytes, finalised."""
    offsets, data = string_buffers(values)
    lengths = np.diff(offsets)
    if len(values) == 0:
        return np.zeros(0, dtype=np.uint64)
    start, end = offsets[0], offsets[-1]
    from_end = np.repeat(offsets[1:], lengths) - 1 - np.arange(start, end)
    powers = np.ones(max(int(lengths.max()), 1), dtype=np.uint64)  # 1, B, B^2, ... (mod 2^64)
    powers[1:] = np.cumprod(np.full(len(powers) - 1, _BYTE_BASE, dtype=np.uint64))
    contrib = (data[start:end].astype(np.uint64) + np.uint64(1)) * powers[from_end]
    sums = np.add.reduceat(contrib, offsets[:-1] - start) if len(contrib) else np.zeros(len(values), np.uint64)
    return mix64(sums ^ (lengths.astype(np.uint64) * _LENGTH_SALT))


@dataclass
class Words:
    """The normalised words of a batch: one hash per word, and which words each document holds."""

    hashes: np.ndarray  # uint64, all words of all documents in order
    offsets: np.ndarray  # int64 (n_docs + 1,): document d holds words offsets[d]:offsets[d+1]


def words(text: pa.Array | pa.ChunkedArray) -> Words:
    # Lowercasing never turns a letter into a separator, so words are the same before and after.
    # The same words as the runs of WORD, twice as fast: RE2 only visits punctuation runs.
    folded = pc.replace_substring_regex(pc.utf8_lower(as_text(text)), PUNCTUATION, " ")
    pieces = pc.utf8_split_whitespace(folded)
    flat = pc.list_flatten(pieces)
    doc = pc.list_parent_indices(pieces).to_numpy()
    keep = pc.greater(pc.binary_length(flat), 0)
    flat = flat.filter(keep)
    doc = doc[keep.to_numpy(zero_copy_only=False)]
    encoded = pc.dictionary_encode(flat)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    hashes = hash_strings(encoded.dictionary)[indices] if len(indices) else np.zeros(0, np.uint64)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(doc, minlength=len(text)))]).astype(np.int64)
    return Words(hashes, offsets)


@dataclass
class Grams:
    hashes: np.ndarray  # uint64, one per n-gram
    start: np.ndarray  # int64, the n-gram's first word (index into Words.hashes)
    doc: np.ndarray  # int64, its document


def ngrams(w: Words, n: int) -> Grams:
    """Every run of n consecutive words inside one document, hashed."""
    total = len(w.hashes)
    if total < n:
        empty = np.zeros(0, np.int64)
        return Grams(np.zeros(0, np.uint64), empty, empty)
    count = total - n + 1
    acc = np.zeros(count, dtype=np.uint64)
    for j in range(n):  # n passes over all words of the batch
        acc *= _WORD_BASE
        acc += w.hashes[j: j + count]
    doc_of_word = np.repeat(np.arange(len(w.offsets) - 1), np.diff(w.offsets))
    start = np.arange(count)
    inside = start + n <= w.offsets[1:][doc_of_word[:count]]
    return Grams(mix64(acc[inside]), start[inside], doc_of_word[:count][inside])


# ---- evaluation sets ---------------------------------------------------------------------------

@dataclass
class EvalItems:
    ids: list[str]
    texts: list[str]


def _strings(value) -> list[str]:
    """The text an item field contributes: a string, a list of strings (answer choices), or a
    number (GSM8K-style answers); anything else (objects, booleans, null) nothing."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    return []


def read_eval_set(path: Path, fields: list[str] | None = None, id_field: str | None = "id") -> EvalItems:
    """Items of an evaluation file (read by curate/readers/records.py): JSON lines or Parquet
    records (the named fields, or every field but the id, joined by newlines; the item id from
    `id_field`, else the line or row number), or text (one item per non-empty line, numbered by
    line). Raises ValueError naming the problem: it is a config error."""
    optional = [id_field] if id_field else []
    try:
        found = records.read(Path(path), fields, optional=optional, lines=True, what="evaluation set")
    except UserError as e:
        raise ValueError(str(e)) from None
    given = found.fields.get(id_field) if id_field else None
    ids = [str(v) if v is not None else key for v, key in zip(given or [None] * len(found), found.keys)]
    names = fields if fields is not None else [name for name in found.fields if name != id_field]
    columns = [found.fields[name] for name in names]
    texts = ["\n".join(part for column in columns for part in _strings(column[i])) for i in range(len(found))]
    return EvalItems(ids, texts)


# ---- the index ----------------------------------------------------------------------------------

@dataclass
class Hits:
    """What one batch shares with the index."""

    per_set: np.ndarray  # int64 (n_docs, n_sets): matched n-grams per document and set
    items: dict[int, list[str]]  # document -> distinct matched items, as "<set>:<item id>"
    covered: np.ndarray  # bool per word of the batch (Words order): inside a matched n-gram
    words: Words

    @property
    def matched(self) -> np.ndarray:
        return self.per_set.sum(axis=1) > 0

    def item_counts(self) -> np.ndarray:
        out = np.zeros(len(self.per_set), dtype=np.int64)
        for doc, items in self.items.items():
            out[doc] = len(items)
        return out

    def covered_words(self) -> np.ndarray:
        """Words of each document inside a matched n-gram."""
        w = self.words
        doc = np.repeat(np.arange(len(w.offsets) - 1), np.diff(w.offsets))
        return np.bincount(doc, weights=self.covered, minlength=len(w.offsets) - 1)

    def coverage(self) -> np.ndarray:
        """Share of each document's words inside a matched n-gram (0 for a document without words)."""
        total = np.diff(self.words.offsets)
        return np.divide(self.covered_words(), total, out=np.zeros(len(total)), where=total > 0)


class Index:
    """Sorted n-gram hashes of every evaluation item, built once per worker."""

    def __init__(self, sets: dict[str, EvalItems], n: int):
        self.n = n
        self.set_names = list(sets)
        item_ids, item_set, texts = [], [], []
        for s, (name, items) in enumerate(sets.items()):
            item_ids += items.ids
            item_set += [s] * len(items.ids)
            texts += items.texts
        self.item_ids = item_ids
        self.item_set = np.array(item_set, dtype=np.int64)
        grams = ngrams(words(pa.array(texts, pa.large_string())), n)
        self.short = int((np.bincount(grams.doc, minlength=len(texts)) == 0).sum())
        self.hashes, first = np.unique(grams.hashes, return_index=True)
        self.item = grams.doc[first]
        # A bitmap over the top hash bits, ~32 slots per n-gram: most document n-grams miss it
        # with one lookup, and only the rest pay for a binary search.
        self.bits = int(np.clip(np.ceil(np.log2(max(len(self.hashes), 1) * 32)), 16, 28))
        self.shift = np.uint64(64 - self.bits)
        self.present = np.zeros(1 << self.bits, dtype=bool)
        self.present[self.hashes >> self.shift] = True

    def __len__(self) -> int:
        return len(self.hashes)

    def match(self, text: pa.Array | pa.ChunkedArray) -> Hits:
        w = words(text)
        grams = ngrams(w, self.n)
        n_docs, n_sets = len(w.offsets) - 1, len(self.set_names)
        covered = np.zeros(len(w.hashes), dtype=bool)
        if len(self.hashes) == 0 or len(grams.hashes) == 0:
            return Hits(np.zeros((n_docs, n_sets), np.int64), {}, covered, w)
        maybe = np.flatnonzero(self.present[grams.hashes >> self.shift])
        pos = np.minimum(np.searchsorted(self.hashes, grams.hashes[maybe]), len(self.hashes) - 1)
        found = self.hashes[pos] == grams.hashes[maybe]
        hit, pos = maybe[found], pos[found]
        doc, item, start = grams.doc[hit], self.item[pos], grams.start[hit]
        item_set = self.item_set[item]
        per_set = np.bincount(doc * n_sets + item_set, minlength=n_docs * n_sets).reshape(n_docs, n_sets)
        # Words inside any matched n-gram: +1 where one starts, -1 where it ends.
        delta = np.zeros(len(w.hashes) + 1, dtype=np.int64)
        np.add.at(delta, start, 1)
        np.add.at(delta, start + self.n, -1)
        covered = np.cumsum(delta[:-1]) > 0
        items: dict[int, list[str]] = {}
        pairs = np.unique(np.stack([doc, item], axis=1), axis=0) if len(doc) else np.zeros((0, 2), np.int64)
        for d, i in pairs:  # only contaminated documents, and each of their items once
            items.setdefault(int(d), []).append(f"{self.set_names[self.item_set[i]]}:{self.item_ids[i]}")
        return Hits(per_set, items, covered, w)


def cut(text: pa.Array | pa.ChunkedArray, hits: Hits, rows: np.ndarray) -> pa.Array:
    """The texts of `rows` without their covered words.

    A run of covered words goes together with the separators inside it and the one after it, so
    `a. <benchmark passage>. b` becomes `a. b` and paragraph breaks before a passage survive."""
    text = as_text(text).take(pa.array(rows, pa.int64()))
    m = Matches(text, WORD)
    w = hits.words
    # Covered flags of each selected row's words, in the order Matches finds them (same words).
    spans = [np.arange(w.offsets[r], w.offsets[r + 1]) for r in rows]
    covered = hits.covered[np.concatenate(spans)] if spans else np.zeros(0, bool)
    drop = np.zeros(len(m.pieces), dtype=bool)
    drop[m.index] = covered
    # The separator after a covered word: dropped unless it ends the row (then it is "").
    after = m.index + 1
    drop[after] |= covered
    return m.drop(drop)
