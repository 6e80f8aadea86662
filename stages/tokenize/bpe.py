"""Byte-level BPE tokenizers (HF `tokenizers`): train one, or load the one a user names.

Byte-level with no normalizer, so decoding gives back every text byte for byte: no unknown
token, no Unicode normalisation, no added prefix space. The end-of-document token is the first
special token (id 0 when we train) and is never produced from text: `encode_special_tokens` makes
a literal "<|endoftext|>" inside a document encode as ordinary text; the tokenize stage appends
the id itself.

Training is deterministic: the same texts, in any order, give the same JSON byte for byte
(tests/test_tokenize.py checks it; we also saw it with 2 Rayon threads on tokenizers 0.23). We
still train in a Ray task, where the executor sets RAYON_NUM_THREADS=1, so that a release which
merged per-thread counts in arrival order could not change the vocabulary between runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable

from curate import storage
from curate.stages.tokenize import engine

DEFAULT_EOS = "<|endoftext|>"


@dataclass(frozen=True)
class Loaded:
    tokenizer: object  # tokenizers.Tokenizer
    eos_id: int
    vocab_size: int  # largest id + 1, added tokens included
    spec: str = field(repr=False)  # the tokenizer's JSON

    @cached_property
    def encoder(self) -> engine.Encoder:
        """What encodes: tiktoken when it gives the same ids, else `tokenizer` (built on first use:
        checking a config needs no encoder)."""
        return engine.choose(self.tokenizer, self.spec)


def train(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, eos: str = DEFAULT_EOS) -> str:
    """Train a byte-level BPE on `texts`; returns the tokenizer's JSON."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[eos],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is unknown
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer.to_str(pretty=True)


def load(path: str | Path, eos: str = DEFAULT_EOS) -> Loaded:
    """Load a tokenizer.json; ValueError (one line) when it cannot be read or lacks `eos`."""
    try:
        text = storage.location(path).read_text(encoding="utf-8")
    except Exception as exc:
        raise ValueError(f"{path}: not a tokenizers JSON file ({_first_line(exc)})") from None
    return from_text(text, eos, str(path))


def from_text(text: str, eos: str = DEFAULT_EOS, name: str = "tokenizer") -> Loaded:
    """A tokenizer from its JSON (`name` says where it came from in an error)."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(text)
    except Exception as exc:  # tokenizers raises a bare Exception for a malformed file
        raise ValueError(f"{name}: not a tokenizers JSON file ({_first_line(exc)})") from None
    eos_id = tokenizer.token_to_id(eos)
    if eos_id is None:
        raise ValueError(f"{name}: the tokenizer has no token {eos!r} to end documents with (set tokenize.eos_token)")
    tokenizer.encode_special_tokens = True
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    return Loaded(tokenizer, eos_id, max(vocab.values()) + 1, text)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else repr(exc)
