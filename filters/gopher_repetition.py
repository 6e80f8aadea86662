"""Gopher repetition rules: Rae et al. 2021, "Scaling Language Models: Methods, Analysis &
Insights from Training Gopher", appendix A.1.1 and table A1.

Lines are split at runs of newlines, paragraphs at blank lines (of the stripped text); a
fraction of characters is relative to the whole text. N-grams are of curate.text.words tokens:
"top n-gram" is the most frequent n-gram (the first one on a tie) times its length with
spaces; "duplicate n-grams" counts the characters of n-grams seen before in the text, walking
left to right and jumping past each duplicate, as datatrove does. N-gram rules are not measured
for languages written without spaces (their tokens are characters, not words).

Defaults are the paper's (table A1) but for the duplicated 5- to 10-gram shares, three times the
paper's (0.45 ... 0.30; `DUP_N` keeps the paper's, the fineweb preset uses them): reference
documentation repeats its formulas ("Return value: New reference. Part of the Stable ABI.",
"... or NULL on failure. This is the equivalent of the Python expression o1 + o2."). The
paper's limits removed 75 of 530 Python docs pages, twice them 11 (API pages of the C API,
email.generator, compileall, importlib.resources), three times 3; anywhere from 2.5 to 3.5
times the decisions are the same on every reference set, and on the Common Crawl sample
(web/jsonl) three times keeps 2 more pages, both technical (an Android API page, an octal
conversion tutorial). On DCLM's human labels these rules removed none of the 129 bad texts at
any of these settings. Measured effect of the defaults (scripts/eval_curation.py, documents for
which this filter's rule fired first): no Debian Reference page, 3 of 530 Python docs pages
(c-api/number.html, whose 5-grams repeat 46%; c-api/long.html's repeated lines; token.html's
"Token value for" list), 3 of 129 bad and none of 152 good DCLM-labelled texts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.filters.base import Filter, FilterConfig, Rule
from curate.text.stats import Docs, Pieces, first_seen, ratio, strip, to_numpy

TOP_N = {2: 0.2, 3: 0.18, 4: 0.16}  # n -> max share of characters in the most frequent n-gram
DUP_N = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}  # n -> the paper's max share in repeated n-grams
DUP_N_DEFAULT = {n: round(3 * t, 2) for n, t in DUP_N.items()}  # curate's: three times the paper's (see above)


class GopherRepetitionConfig(FilterConfig):
    max_dup_para_frac: float | None = Field(0.3, ge=0, le=1, description="share of paragraphs that repeat an earlier one")
    max_dup_para_char_frac: float | None = Field(0.2, ge=0, le=1, description="share of characters in repeated paragraphs")
    max_dup_line_frac: float | None = Field(0.3, ge=0, le=1, description="share of lines that repeat an earlier one")
    max_dup_line_char_frac: float | None = Field(0.2, ge=0, le=1, description="share of characters in repeated lines")
    max_top_2_gram_frac: float | None = Field(TOP_N[2], ge=0, description="share of characters in the most frequent 2-gram")
    max_top_3_gram_frac: float | None = Field(TOP_N[3], ge=0, description="share of characters in the most frequent 3-gram")
    max_top_4_gram_frac: float | None = Field(TOP_N[4], ge=0, description="share of characters in the most frequent 4-gram")
    max_dup_5_gram_frac: float | None = Field(DUP_N_DEFAULT[5], ge=0, description="share of characters in repeated 5-grams")
    max_dup_6_gram_frac: float | None = Field(DUP_N_DEFAULT[6], ge=0, description="share of characters in repeated 6-grams")
    max_dup_7_gram_frac: float | None = Field(DUP_N_DEFAULT[7], ge=0, description="share of characters in repeated 7-grams")
    max_dup_8_gram_frac: float | None = Field(DUP_N_DEFAULT[8], ge=0, description="share of characters in repeated 8-grams")
    max_dup_9_gram_frac: float | None = Field(DUP_N_DEFAULT[9], ge=0, description="share of characters in repeated 9-grams")
    max_dup_10_gram_frac: float | None = Field(DUP_N_DEFAULT[10], ge=0, description="share of characters in repeated 10-grams")


P = "gopher_repetition_"


class GopherRepetitionFilter(Filter):
    name = "gopher_repetition"
    measures_prose = True
    Config = GopherRepetitionConfig
    rules = (
        # "duplicate paragraph fraction 0.30", "duplicate paragraph character fraction 0.20"
        Rule("max_dup_para_frac", P + "dup_para_frac", "gt", "max_dup_para_frac"),
        Rule("max_dup_para_char_frac", P + "dup_para_char_frac", "gt", "max_dup_para_char_frac"),
        # "duplicate line fraction 0.30", "duplicate line character fraction 0.20"
        Rule("max_dup_line_frac", P + "dup_line_frac", "gt", "max_dup_line_frac"),
        Rule("max_dup_line_char_frac", P + "dup_line_char_frac", "gt", "max_dup_line_char_frac"),
        # "top 2-gram character fraction 0.20", "top 3-gram ... 0.18", "top 4-gram ... 0.16"
        *(Rule(f"max_top_{n}_gram_frac", f"{P}top_{n}_gram_frac", "gt", f"max_top_{n}_gram_frac") for n in TOP_N),
        # "duplicate 5-gram character fraction 0.15" ... "duplicate 10-gram character fraction 0.10"
        *(Rule(f"max_dup_{n}_gram_frac", f"{P}dup_{n}_gram_frac", "gt", f"max_dup_{n}_gram_frac") for n in DUP_N),
    )
    signals = tuple(r.signal for r in rules)

    def measure(self, docs: Docs) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for kind, pieces in (("para", Pieces.split(strip(docs.text), r"\n{2,}")),
                             ("line", Pieces.split(docs.text, r"\n+"))):
            dup = pieces.duplicates()
            out[f"{P}dup_{kind}_frac"] = pieces.fraction(dup)
            out[f"{P}dup_{kind}_char_frac"] = ratio(pieces.total(np.where(dup, pieces.lengths(), 0)), docs.length)
        for name, chars in ngram_chars(docs).items():
            value = ratio(chars, docs.length)
            value[docs.unspaced] = np.nan
            out[P + name] = value
        return out


# Odd 64-bit multipliers for polynomial hashes of token-id sequences (n-gram keys).
_MUL = np.uint64(0x9E3779B97F4A7C15)
_DOC = np.uint64(0xC2B2AE3D27D4EB4F)


def ngram_chars(docs: Docs) -> dict[str, np.ndarray]:
    """Per document: characters in the top n-gram (n in TOP_N) and in repeated n-grams (DUP_N).

    An n-gram is keyed by a 64-bit polynomial hash of its token ids (and its document). Only
    n-grams whose (n-1)-gram prefix occurs twice can occur twice themselves, so from n = 3 on
    only those positions are hashed and counted: in ordinary text a small share of the words.
    """
    tokens = docs.tokens
    n_tok = len(tokens.ids)
    out = {f"top_{n}_gram_frac": np.zeros(docs.n) for n in TOP_N}
    out.update({f"dup_{n}_gram_frac": np.zeros(docs.n) for n in DUP_N})
    if n_tok == 0:
        return out
    ids = tokens.ids.astype(np.uint64) + np.uint64(1)
    char_cum = np.concatenate([[0], np.cumsum(tokens.fact("length"), dtype=np.int64)])
    doc_end = tokens.offsets[1:][tokens.parents]  # exclusive end of each token's document
    doc_start = tokens.offsets[:-1]
    starts = np.arange(n_tok)  # positions still able to start a repeated n-gram
    h = ids.copy()  # hash of the n-gram at each of `starts`
    with np.errstate(over="ignore"):
        for n in range(2, max(DUP_N) + 1):
            fits = starts + n <= doc_end[starts]
            starts, h = starts[fits], h[fits]
            h = h * _MUL + ids[starts + n - 1]
            if len(starts) == 0:
                continue
            doc = tokens.parents[starts]
            codes = to_numpy(pc.dictionary_encode(pa.array(h ^ (doc.astype(np.uint64) * _DOC))).indices)
            counts = np.bincount(codes)
            chars = char_cum[starts + n] - char_cum[starts]
            if n in TOP_N:
                long_enough = tokens.count >= n
                first = np.zeros(docs.n)
                first[long_enough] = char_cum[doc_start[long_enough] + n] - char_cum[doc_start[long_enough]] + (n - 1)
                out[f"top_{n}_gram_frac"] = _top_chars(codes, counts, chars + (n - 1), doc, first)
            if n in DUP_N:
                out[f"dup_{n}_gram_frac"] = _repeated_chars(codes, counts, chars, starts, doc, n, docs.n)
            again = counts[codes] > 1
            starts, h = starts[again], h[again]
    return out


def _top_chars(codes: np.ndarray, counts: np.ndarray, chars: np.ndarray, doc: np.ndarray,
               first_ngram: np.ndarray) -> np.ndarray:
    """Characters covered by each document's most frequent n-gram: its length times its count,
    the earliest such n-gram on a tie (as Counter.most_common). Where no n-gram occurs twice that
    is the document's first n-gram (`first_ngram`, its length with spaces)."""
    out = first_ngram.copy()
    first = first_seen(codes)
    code_doc = doc[first]  # codes are numbered in order of first appearance, document by document
    repeated = counts > 1
    if not repeated.any():
        return out
    n_docs = len(first_ngram)
    best = np.zeros(n_docs, np.int64)
    np.maximum.at(best, code_doc[repeated], counts[repeated])
    is_best = repeated & (counts == best[code_doc])
    winner_doc, winner_index = np.unique(code_doc[is_best], return_index=True)
    winner = np.flatnonzero(is_best)[winner_index]
    out[winner_doc] = chars[first][winner] * counts[winner]
    return out


def _repeated_chars(codes: np.ndarray, counts: np.ndarray, chars: np.ndarray, starts: np.ndarray,
                    doc: np.ndarray, n: int, n_docs: int) -> np.ndarray:
    """Characters of n-grams already seen, walking each document left to right and jumping n
    tokens past each repeat. Only n-grams that occur twice or more can repeat, so the walk visits
    just those positions (few in ordinary text)."""
    out = np.zeros(n_docs)
    again = counts[codes] > 1
    if not again.any():
        return out
    skip_to = -1  # positions before this were jumped over
    seen: set[int] = set()
    for pos, code, length, d in zip(starts[again].tolist(), codes[again].tolist(), chars[again].tolist(),
                                    doc[again].tolist()):
        if pos < skip_to:
            continue
        if code in seen:
            out[d] += length
            skip_to = pos + n
        else:
            seen.add(code)
    return out
