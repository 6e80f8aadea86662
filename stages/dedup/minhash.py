"""MinHash for near-duplicate detection, vectorised over a whole batch of documents.

The path from text to LSH bucket keys never builds a Python object per shingle:

1. normalise: Unicode lowercase (Arrow), then every character that is not a letter, digit or
   mark becomes a space and runs of spaces fold to one (numpy over the UTF-8 bytes).
2. tokens: words (split on the single spaces) or characters (UTF-8 sequences, spaces kept).
3. token hash: additive tabulation hashing over the token's bytes (a 64x256 table of
   splitmix64 values indexed by position-in-token and byte, summed with a prefix sum), mixed
   by the MurmurHash3 64-bit finalizer.
4. shingle hash: the n token hashes of a window, each times its own odd constant, summed
   modulo 2^64 and mixed again. `shingle_hash(s)` is the same function on one shingle string.
5. signature: datasketch's "legacy" MinHash scheme, bit for bit: permutations
   (a, b) from `np.random.RandomState(seed)`, value `((a*h + b) mod 2^64) mod (2^61-1)`, keep
   the low 32 bits, min per document. The modulo by the Mersenne prime is done with shifts
   and masks instead of a division, perm by perm over cache-sized chunks of shingles, and the
   per-document minimum by `np.minimum.reduceat`.
6. bands: each band's rows hashed to one 64-bit bucket key (the band index mixed in, so keys
   of different bands do not meet).

Bands x rows for a Jaccard threshold come from `optimal_param`, the same search as datasketch's
`_optimal_param` (weighted false positive and false negative areas under the S-curve); the
integrals are exact Gauss-Legendre sums, since the S-curve is a polynomial.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

U64 = np.uint64
MERSENNE = U64((1 << 61) - 1)
MAX_HASH = (1 << 32) - 1  # the "empty" signature value, as datasketch's legacy scheme
SPACE = 0x20
TAB_POSITIONS = 64  # token bytes past this position reuse the table rows (j mod 64)
# Shingles per chunk of the permutation loop: 8 bytes x 32k stays in L2 cache.
CHUNK = 1 << 15
# Text bytes hashed at once: the per-byte temporaries of a slice stay in L2 cache.
SLICE_BYTES = 1 << 19


# -- 64-bit mixing ---------------------------------------------------------------------------
def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: an avalanching bijection on uint64 (in place)."""
    h ^= h >> U64(33)
    h *= U64(0xFF51AFD7ED558CCD)
    h ^= h >> U64(33)
    h *= U64(0xC4CEB9FE1A85EC53)
    h ^= h >> U64(33)
    return h


def splitmix64(n: int, salt: int) -> np.ndarray:
    """n well-mixed uint64 constants (SplitMix64 over a salted counter): fixed across numpy
    versions, unlike a random generator's stream."""
    with np.errstate(over="ignore"):
        x = (np.arange(1, n + 1, dtype=U64) + U64(salt)) * U64(0x9E3779B97F4A7C15)
    return fmix64(x)


TOKEN_TABLE = splitmix64(TAB_POSITIONS * 256, salt=0x5EED)
WINDOW_CONSTANTS = splitmix64(64, salt=0x51A6) | U64(1)  # odd: multiplication is a bijection
BAND_CONSTANTS = splitmix64(4096, salt=0xBA4D) | U64(1)


# -- normalisation -----------------------------------------------------------------------
# Code point -> letter, digit or mark (Unicode categories L*, N*, M*), filled in for the code
# points met so far: a text uses a few hundred of the 1.1M, and the whole table costs seconds
# of unicodedata calls in every worker process.
_WORD_CHAR = np.zeros(0x110000, bool)
_KNOWN = np.zeros(0x110000, bool)


def _is_word_char(cp: np.ndarray) -> np.ndarray:
    new = np.unique(cp[~_KNOWN[cp]])
    if new.size:
        _WORD_CHAR[new] = [unicodedata.category(chr(c))[0] in "LNM" for c in new.tolist()]
        _KNOWN[new] = True
    return _WORD_CHAR[cp]


def _word_char_table() -> np.ndarray:
    """The whole code point table (for tests and benches)."""
    return _is_word_char(np.arange(0x110000))


def _string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes and int64 offsets (starting at 0) of a string array; nulls are empty."""
    arr = pc.fill_null(arr.cast(pa.large_string()), "")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset: arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    buf = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    buf = buf[offsets[0]: offsets[-1]]
    return buf, offsets - offsets[0]


def _blank_non_word_chars(buf: np.ndarray) -> None:
    """Overwrite every byte of a multi-byte character that is not a letter/digit/mark with a
    space (in place); decodes the code points of lead bytes only."""
    lead = np.flatnonzero(buf >= 0xC0)
    if lead.size == 0:
        return
    b0 = buf[lead].astype(np.int64)
    n = np.where(b0 >= 0xF0, 4, np.where(b0 >= 0xE0, 3, 2))
    last = buf.size - 1
    c1, c2, c3 = (buf[np.minimum(lead + k, last)].astype(np.int64) & 0x3F for k in (1, 2, 3))
    cp = np.where(n == 2, ((b0 & 0x1F) << 6) | c1,
                  np.where(n == 3, ((b0 & 0x0F) << 12) | (c1 << 6) | c2,
                           ((b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3))
    sep = ~_is_word_char(np.clip(cp, 0, 0x10FFFF))
    if not sep.any():
        return
    starts, lens = lead[sep], n[sep]
    for k in range(4):  # a character has at most 4 bytes
        idx = starts[lens > k] + k
        buf[idx[idx <= last]] = SPACE


def normalise(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Normalised UTF-8 of each text: lowercase, non-word characters folded to single spaces,
    no leading or trailing space. Returns (bytes, offsets) with offsets[i]:offsets[i+1] the
    i-th document."""
    buf, offsets = _string_buffers(pc.utf8_lower(texts))
    # ASCII other than [a-z0-9] becomes a space; bytes of multi-byte characters stay for now
    word = ((buf >= ord("a")) & (buf <= ord("z"))) | ((buf >= ord("0")) & (buf <= ord("9"))) | (buf >= 0x80)
    buf = np.where(word, buf, np.uint8(SPACE))  # a copy: Arrow's buffer is read-only
    _blank_non_word_chars(buf)
    # Keep word bytes and the first space of every run of spaces, except at a document's start
    # (leading) and the one left at its end (trailing).
    sp = buf == SPACE
    keep = ~sp
    keep[1:] |= sp[1:] & ~sp[:-1]
    nonempty = offsets[:-1][np.diff(offsets) > 0]
    keep[nonempty] = ~sp[nonempty]
    kept = np.flatnonzero(keep)
    new_off = np.searchsorted(kept, offsets)
    last = kept[new_off[1:][new_off[1:] > new_off[:-1]] - 1]  # each non-empty document's last byte
    trailing = last[sp[last]]
    if trailing.size:
        kept = np.delete(kept, np.searchsorted(kept, trailing))
        new_off = np.searchsorted(kept, offsets)
    return buf[kept], new_off


def exact_hashes(buf: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """xxh3_128 of each normalised document, as an (n, 2) uint64 array (high, low)."""
    mv = memoryview(buf)
    f = xxhash.xxh3_128_intdigest
    out = np.empty((offsets.size - 1, 2), U64)
    mask = (1 << 64) - 1
    for i in range(offsets.size - 1):  # one call per document (no vectorised xxh3 exists)
        h = f(mv[offsets[i]: offsets[i + 1]])
        out[i, 0] = h >> 64
        out[i, 1] = h & mask
    return out


# -- tokens and shingles -----------------------------------------------------------------
def _tokens(buf: np.ndarray, offsets: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token byte spans of normalised text: (token starts, token ends, tokens per doc)."""
    n = buf.size
    if unit == "word":  # words are separated by single spaces and never span documents
        sp = np.flatnonzero(buf == SPACE)
        nonempty = np.diff(offsets) > 0
        is_start = np.zeros(n + 1, bool)
        is_start[sp + 1] = True
        is_start[offsets[:-1][nonempty]] = True
        is_end = np.zeros(n + 1, bool)
        is_end[sp] = True
        is_end[offsets[1:][nonempty]] = True
        starts, ends = np.flatnonzero(is_start[:n]), np.flatnonzero(is_end)
    else:  # characters: every UTF-8 lead byte starts one
        starts = np.flatnonzero((buf & 0xC0) != 0x80)
        ends = np.append(starts[1:], n)
    per_doc = np.diff(np.searchsorted(starts, offsets))
    return starts, ends, per_doc


def _token_hashes(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Tabulation hash of each token: sum of TABLE[position mod 64, byte], then fmix64."""
    if starts.size == 0:
        return np.zeros(0, U64)
    n = buf.size
    # position of every byte inside its token: index minus the latest token start at or before it
    mark = np.zeros(n, np.int32)
    mark[starts] = starts
    np.maximum.accumulate(mark, out=mark)
    pos = np.arange(n, dtype=np.int32)
    pos -= mark
    pos &= TAB_POSITIONS - 1
    pos <<= 8
    pos |= buf
    total = np.cumsum(TOKEN_TABLE[pos])  # wraps modulo 2^64; bytes between tokens cancel out
    h = total[ends - 1]
    inner = starts > 0
    h[inner] -= total[starts[inner] - 1]
    return fmix64(h)


def _window_hashes(th: np.ndarray, per_doc: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of every window of n consecutive tokens inside a document; a document
    with 1 to n-1 tokens gives one shingle of all of them. Returns (hashes, shingle offsets)."""
    t_off = np.concatenate([[0], np.cumsum(per_doc)])
    n_sh = np.where(per_doc >= n, per_doc - n + 1, (per_doc > 0).astype(np.int64))
    s_off = np.concatenate([[0], np.cumsum(n_sh)])
    out = np.zeros(s_off[-1], U64)
    if s_off[-1] == 0:
        return out, s_off
    short = (per_doc > 0) & (per_doc < n)
    with np.errstate(over="ignore"):
        # full windows: slide over the whole token array, keep windows inside one document
        w = th.size - n + 1
        if w > 0 and (~short).any():
            acc = th[:w] * WINDOW_CONSTANTS[0]
            for j in range(1, n):
                acc += th[j: j + w] * WINDOW_CONSTANTS[j]
            valid = np.ones(w + n, bool)
            ends = t_off[1:]
            for j in range(1, n):  # a window starting in a document's last n-1 tokens crosses its end
                valid[np.maximum(ends - j, 0)] = False
            full = acc[valid[:w]]
            is_short_slot = np.zeros(out.size, bool)
            is_short_slot[s_off[:-1][short]] = True
            out[~is_short_slot] = full
        # documents with fewer than n tokens: one window of all their tokens
        if short.any():
            first, width = t_off[:-1][short], per_doc[short]
            acc = np.zeros(first.size, U64)
            for j in range(n - 1):
                take = width > j
                acc[take] += th[first[take] + j] * WINDOW_CONSTANTS[j]
            out[s_off[:-1][short]] = acc
    return fmix64(out), s_off


def shingle_hashes(buf: np.ndarray, offsets: np.ndarray, n: int, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of all shingles of normalised documents: (hashes, per-doc offsets)."""
    starts, lens, per_doc = _tokens(buf, offsets, unit)
    th = _token_hashes(buf, starts, lens)
    return _window_hashes(th, per_doc, n)


def shingle_hash(shingle: str | bytes, unit: str = "word") -> int:
    """The hash of one shingle (already normalised text: `n` words joined by single spaces, or
    `n` characters): the per-shingle form of `shingle_hashes`, e.g. a datasketch hashfunc."""
    data = shingle.encode("utf-8") if isinstance(shingle, str) else bytes(shingle)
    buf = np.frombuffer(data, np.uint8)
    offsets = np.array([0, buf.size], np.int64)
    starts, lens, per_doc = _tokens(buf, offsets, unit)
    th = _token_hashes(buf, starts, lens)
    h, _ = _window_hashes(th, per_doc, max(1, int(per_doc[0])))
    if h.size != 1:
        raise ValueError(f"not one shingle: {shingle!r}")
    return int(h[0])


# -- signatures ----------------------------------------------------------------------------
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of datasketch's legacy scheme: per permutation, a in [1, p) then b in [0, p)."""
    gen = np.random.RandomState(seed)
    ab = np.array([(gen.randint(1, MERSENNE, dtype=U64), gen.randint(0, MERSENNE, dtype=U64))
                   for _ in range(num_perm)], dtype=U64)
    return ab[:, 0].copy(), ab[:, 1].copy()


def signatures(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures, (n_docs, num_perm) uint32; a document with no shingles gets MAX_HASH
    everywhere (as an empty datasketch MinHash)."""
    n_docs = offsets.size - 1
    num_perm = a.size
    out = np.full((n_docs, num_perm), MAX_HASH, np.uint32)
    total = hashes.size
    if total == 0:
        return out
    nonempty_starts = offsets[:-1][np.diff(offsets) > 0]
    v = np.empty(min(CHUNK, total), U64)
    t = np.empty_like(v)
    w = np.empty(v.size, np.uint32)
    for c0 in range(0, total, CHUNK):
        c1 = min(c0 + CHUNK, total)
        h = hashes[c0:c1]
        m = c1 - c0
        vv, tt, ww = v[:m], t[:m], w[:m]
        # segments: the parts of documents inside this chunk
        inner = nonempty_starts[(nonempty_starts > c0) & (nonempty_starts < c1)]
        seg = np.concatenate([[c0], inner])
        seg_doc = np.searchsorted(offsets, seg, side="right") - 1
        mins = np.empty((num_perm, seg.size), np.uint32)
        rel = seg - c0
        for k in range(num_perm):
            np.multiply(h, a[k], out=vv)  # wraps modulo 2^64, as datasketch's uint64 numpy code
            vv += b[k]
            np.right_shift(vv, U64(61), out=tt)  # x mod (2^61-1) = (x & p) + (x >> 61), then once - p
            vv &= MERSENNE
            vv += tt
            if vv.max() >= MERSENNE:
                np.subtract(vv, MERSENNE, out=vv, where=vv >= MERSENNE)
            np.copyto(ww, vv, casting="unsafe")  # the low 32 bits
            mins[k] = np.minimum.reduceat(ww, rel)
        out[seg_doc] = np.minimum(out[seg_doc], mins.T)
    return out


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) uint64 bucket keys: each band's rows mixed with the band's index."""
    n = sigs.shape[0]
    keys = np.empty((n, bands), U64)
    s = sigs.astype(U64)
    with np.errstate(over="ignore"):
        for i in range(bands):
            acc = np.full(n, BAND_CONSTANTS[(i * 97) % BAND_CONSTANTS.size] ^ U64(i), U64)
            for j in range(rows):
                acc += s[:, i * rows + j] * BAND_CONSTANTS[(i * rows + j) % BAND_CONSTANTS.size]
            keys[:, i] = fmix64(acc)
    return keys


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal signature values, row by row."""
    return (sig_a == sig_b).mean(axis=1)


# -- LSH parameters ------------------------------------------------------------------------
def optimal_param(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising fp_weight * false-positive area + fn_weight * false-negative
    area of the banding S-curve P(s) = 1 - (1 - s^r)^b, as datasketch's `_optimal_param`:
    same candidates (b from 1, r from 1, b*r <= num_perm), same first-minimum tie rule."""
    # P(s) is a polynomial of degree b*r <= num_perm: Gauss-Legendre with num_perm//2+1 nodes
    # integrates it exactly.
    x, w = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    lo_s = (x + 1) * (threshold / 2)  # nodes on [0, threshold]
    lo_w = w * (threshold / 2)
    hi_s = threshold + (x + 1) * ((1 - threshold) / 2)  # nodes on [threshold, 1]
    hi_w = w * ((1 - threshold) / 2)
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        r = np.arange(1, num_perm // b + 1, dtype=np.float64)[:, None]
        fp = ((1 - (1 - lo_s ** r) ** b) * lo_w).sum(axis=1)
        fn = (((1 - hi_s ** r) ** b) * hi_w).sum(axis=1)
        err = fp * fp_weight + fn * fn_weight
        i = int(np.argmin(err))
        if err[i] < best:
            best, opt = float(err[i]), (b, i + 1)
    return opt


@dataclass(frozen=True)
class Hasher:
    """Everything that turns texts into exact hashes, signatures and band keys."""

    num_perm: int = 128
    seed: int = 1
    ngram: int = 5
    unit: str = "word"
    bands: int = 21
    rows: int = 6

    @functools.cached_property
    def perms(self) -> tuple[np.ndarray, np.ndarray]:
        return permutations(self.num_perm, self.seed)

    def hash_texts(self, texts: pa.Array) -> dict[str, np.ndarray]:
        """Exact hashes, shingle counts, signatures and band keys of `texts`, computed in slices
        of about SLICE_BYTES of text so the per-byte arrays stay in cache."""
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        sizes = pc.fill_null(pc.binary_length(texts), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        ends = np.cumsum(sizes)
        cuts = np.searchsorted(ends, np.arange(SLICE_BYTES, int(ends[-1]) if ends.size else 0, SLICE_BYTES), side="right")
        bounds = np.unique(np.concatenate([[0], cuts, [len(texts)]]))
        parts = [self._hash_slice(texts.slice(s, e - s)) for s, e in zip(bounds[:-1], bounds[1:]) if e > s]
        if not parts:
            parts = [self._hash_slice(texts)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _hash_slice(self, texts: pa.Array) -> dict[str, np.ndarray]:
        buf, off = normalise(texts)
        sh, s_off = shingle_hashes(buf, off, self.ngram, self.unit)
        a, b = self.perms
        sigs = signatures(sh, s_off, a, b)
        return {
            "exact": exact_hashes(buf, off),
            "n_shingles": np.diff(s_off).astype(np.int32),
            "signature": sigs,
            "bands": band_keys(sigs, self.bands, self.rows),
        }
