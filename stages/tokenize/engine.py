"""Which library encodes: tiktoken when it gives exactly the ids `tokenizers` gives, else `tokenizers`.

A byte-level BPE in the GPT-2 style (what curate trains) is fully described by its pre-tokenisation
regex and its merges. tiktoken runs the same algorithm about 4x faster on one thread, given the
merges as ranks: the rank of a merged token is its merge priority. `plan` reads the tokenizer's
JSON and accepts only what that translation reproduces exactly (no normalizer; the ByteLevel
pre-tokenizer with its regex and no prefix space; a plain BPE model whose merge results have ids
rising with merge order; every byte in the vocabulary; added tokens all special, which curate
encodes as text); `choose` then checks that both encode every vocabulary token alike. Anything
else goes to `tokenizers`. `Encoder.why` says which and why; the stage logs it and records it in
its _stats.json.

Encoding never downloads anything: the tiktoken Encoding is built from the ranks in memory.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Callable

import numpy as np


# The pattern of tokenizers' ByteLevel pre-tokenizer (use_regex=True), the GPT-2 split.
BYTE_LEVEL_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_EMPTY: frozenset = frozenset()


def byte_chars() -> dict[str, int]:
    """The printable character ByteLevel stands for each byte with -> that byte (GPT-2's table):
    printable Latin-1 bytes stand for themselves, the others for 256, 257, ... in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


@dataclass(frozen=True)
class TiktokenPlan:
    ranks: dict[bytes, int]
    special: dict[str, int]


def _byte_level_pre_tokenizer(spec: dict | None) -> bool:
    if spec is not None and spec.get("type") == "Sequence" and len(spec.get("pretokenizers") or []) == 1:
        spec = spec["pretokenizers"][0]
    return (spec is not None and spec.get("type") == "ByteLevel" and spec.get("use_regex", True) is True
            and spec.get("add_prefix_space") is False)


def plan(spec: dict) -> TiktokenPlan | str:
    """The tiktoken ranks that encode exactly as this tokenizer JSON does, or why there are none."""
    if spec.get("normalizer") is not None:
        return "it has a normalizer"
    if not _byte_level_pre_tokenizer(spec.get("pre_tokenizer")):
        return "its pre-tokenizer is not ByteLevel with the GPT-2 regex and no prefix space"
    if spec.get("truncation") is not None or spec.get("padding") is not None:
        return "it truncates or pads"
    if spec.get("post_processor") not in (None, {}) and spec["post_processor"].get("type") not in ("ByteLevel",):
        return f"its post-processor is {spec['post_processor'].get('type')}"
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        return f"its model is {model.get('type')}, not BPE"
    for key in ("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key) not in (None, ""):
            return f"its BPE sets {key}"
    if model.get("byte_fallback"):
        return "its BPE sets byte_fallback"
    added = spec.get("added_tokens") or []
    if any(not t.get("special") for t in added):
        return "it has non-special added tokens, which split the text before BPE"
    special = {t["content"]: int(t["id"]) for t in added}

    chars = byte_chars()
    vocab: dict[str, int] = model.get("vocab") or {}
    ids = set()
    ranks: dict[bytes, int] = {}
    for token, i in vocab.items():
        if token in special and special[token] == i:
            continue  # an added special token also listed in the vocabulary: never made by merges
        try:
            key = bytes(chars[c] for c in token)
        except KeyError:
            return f"its vocabulary has {token!r}, not a byte-level token"
        if key in ranks or i in ids or i in special.values():
            return f"its vocabulary gives {token!r} or id {i} twice"
        ranks[key] = int(i)
        ids.add(i)
    if any(bytes([b]) not in ranks for b in range(256)):
        return "its vocabulary lacks some single bytes"

    # tiktoken merges the adjacent pair whose concatenation has the lowest rank: the same as BPE's
    # lowest merge index when merge results are the vocabulary's only multi-byte tokens and their
    # ids rise with merge order.
    previous, made = -1, set()
    for merge in model.get("merges") or []:
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        try:
            key = bytes(chars[c] for c in left + right)
        except KeyError:
            return f"its merge {left!r} {right!r} is not byte-level"
        rank = ranks.get(key)
        if rank is None or rank <= previous or key in made:
            return f"its merge {left!r} {right!r} does not give a new token with a larger id than the merge before"
        previous = rank
        made.add(key)
    if len(made) != len(ranks) - 256:
        return "its vocabulary has multi-byte tokens no merge makes"
    return TiktokenPlan(ranks, special)


@dataclass(frozen=True)
class Encoder:
    """encode(texts, eos_id) -> (offsets int32 [n + 1], flat uint32 ids): each text's ids, then
    eos_id. No special tokens are matched: a literal special token inside a text is text."""
    name: str  # "tiktoken" or "tokenizers"
    why: str
    encode: Callable[[list[str], int], tuple[np.ndarray, np.ndarray]]


def _offsets(lengths) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(lengths, np.int32, len(lengths)), out=offsets[1:])
    return offsets


def _tokenizers_encoder(tokenizer, why: str) -> Encoder:
    def encode(texts: list[str], eos_id: int) -> tuple[np.ndarray, np.ndarray]:
        ids = [e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
        for doc in ids:
            doc.append(eos_id)
        offsets = _offsets([len(d) for d in ids])
        return offsets, np.fromiter(itertools.chain.from_iterable(ids), np.uint32, int(offsets[-1]))
    return Encoder("tokenizers", why, encode)


def _tiktoken_encoder(p: TiktokenPlan) -> Encoder:
    import tiktoken

    core = tiktoken.Encoding("curate-bpe", pat_str=BYTE_LEVEL_PATTERN, mergeable_ranks=p.ranks,
                             special_tokens=p.special)._core_bpe

    def encode(texts: list[str], eos_id: int) -> tuple[np.ndarray, np.ndarray]:
        eos = np.array([eos_id], np.uint32)
        docs = [np.frombuffer(core.encode_to_tiktoken_buffer(t, _EMPTY), np.uint32) for t in texts]
        offsets = _offsets([d.size + 1 for d in docs])
        flat = np.concatenate([a for d in docs for a in (d, eos)]) if docs else np.zeros(0, np.uint32)
        return offsets, flat
    return Encoder("tiktoken", "byte-level BPE with the GPT-2 regex: tiktoken gives the same ids", encode)


def _disagreement(tiktoken_enc: Encoder, tokenizer, ranks: dict[bytes, int]) -> str | None:
    """tiktoken takes a pre-token found whole in the vocabulary as that token; BPE builds it by
    merges, which may end elsewhere for a token its own merges cannot reach. Encode every token
    that is text with both and compare (about 0.3 s for 32k tokens, once per worker)."""
    texts = []
    for key in ranks:
        try:
            texts.append(key.decode("utf-8"))
        except UnicodeDecodeError:
            continue  # not text on its own, so never a whole pre-token
    offsets, flat = tiktoken_enc.encode(texts, 0)
    theirs = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    for i, (text, b) in enumerate(zip(texts, theirs)):
        if flat[offsets[i]:offsets[i + 1] - 1].tolist() != b.ids:
            return f"tokenizers splits the vocabulary token {text!r} differently"
    return None


def choose(tokenizer, spec_text: str) -> Encoder:
    """The fastest exact encoder for this tokenizer (a tokenizers.Tokenizer and its JSON)."""
    try:
        import tiktoken  # noqa: F401
    except ImportError:
        return _tokenizers_encoder(tokenizer, "tiktoken is not installed")
    p = plan(json.loads(spec_text))
    if isinstance(p, str):
        return _tokenizers_encoder(tokenizer, f"tiktoken cannot reproduce it exactly: {p}")
    fast = _tiktoken_encoder(p)
    why = _disagreement(fast, tokenizer, p.ranks)
    return _tokenizers_encoder(tokenizer, why) if why else fast
