"""The tokenize engine: tiktoken encodes only when it gives exactly the ids `tokenizers` gives.

The unit tests build tokenizer JSONs that tiktoken can and cannot reproduce and check which engine
is chosen and why. The corpus test trains the tokenizer curate trains and compares the ids of both
engines on every document of ../shared/corpora (web, code, academic, multilingual text) and on
adversarial strings."""

from __future__ import annotations

import functools
import importlib.util
import json
import unicodedata

import numpy as np
import pytest

from curate.stages.tokenize import bpe, engine
from curate.stages.tokenize import TokenizeConfig, TokenizeStage
from conftest import ROOT, corpus
from test_tokenize import TRAIN, TRICKY, docs_table, random_texts, run_tokenize

def _load_bench():
    spec = importlib.util.spec_from_file_location("tokenize_bench", ROOT / "scripts" / "tokenize_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shared_documents = _load_bench().shared_documents

ADVERSARIAL = [
    " " * 20000, "\n" * 5000, "\r\n" * 3000, "\t \t \n \n" * 1000, " \u00a0 \u3000 \u2028\u2029\u0085\x0b\x0c " * 200,
    "1234567890" * 2000, "9" * 30000, "٠١٢٣٤٥٦٧٨٩ ０１２３ ²³¹ ⅠⅡⅢⅻ ½¾ 𝟘𝟙𝟚",
    "\x00" * 1000, "a\x00b\x00 \x00\x00 c", "\x01\x02\x7f\x1b[0m\x80\x9f",
    "😀" * 500, "👩‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 👍🏽👍🏿 ✌︎✌️ #️⃣", "e" + "\u0301\u0302\u0303\u0304" * 300,
    "\ufeff\ufffe\uffff\U0010ffff\U000e0001\U000e0041\ue000\U000f0000 \u200b\u200c\u200d\u2060",
    "\u202e\u202d right-to-left \u200f\u200e עברית العربية ܐܪܡܝܐ ދިވެހި",
    "x" * 100_000, "supercalifragilistic" * 3000, "'s 'S 'll 'LL 're 've 'm 'd 't ''' ’s ‘t",
    " 's's 'lls 've're", "<|endoftext|><|endoftext|> <|endoftext|>", "한국어 ᄀᄁᄂ 日本語ｶﾀｶﾅ 中文　全角",
    "ⅰⅱ ǅǈ ᾈ ﬁﬂ İı ẞß Σς", "\u0378\u0530\U0001fffe \U000e01ef", "a1b2c3 !!!??? ... --- ___ ===",
]


def every_character() -> list[str]:
    """Each assigned code point in the contexts the GPT-2 regex tells apart: after a letter,
    a digit, a space, an apostrophe, and repeated; 64 code points to a text."""
    chars = [chr(c) for c in range(0x110000)
             if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) not in ("Cn", "Co")]
    return ["".join(f"a{c}b {c}1{c}  {c}'{c}{c}\n" for c in chars[i:i + 64]) for i in range(0, len(chars), 64)]


def assert_same_ids(encoder: engine.Encoder, reference: engine.Encoder, texts: list[str]) -> None:
    step = 2000
    for a in range(0, len(texts), step):
        chunk = texts[a:a + step]
        ours, theirs = encoder.encode(chunk, 0), reference.encode(chunk, 0)
        if not (np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])):
            for i, text in enumerate(chunk):
                x = ours[1][ours[0][i]:ours[0][i + 1]]
                y = theirs[1][theirs[0][i]:theirs[0][i + 1]]
                assert x.tolist() == y.tolist(), f"document {a + i} ({text[:60]!r}...) differs"


@functools.cache
def _trained_text(vocab_size: int = 400) -> str:
    return bpe.train(TRAIN, vocab_size=vocab_size)


def _trained() -> dict:
    return json.loads(_trained_text())


def _edit(path: str, value) -> dict:
    """The trained tokenizer's JSON with one key (a dotted path) set to value."""
    spec = _trained()
    *keys, last = path.split(".")
    node = spec
    for key in keys:
        node = node[key]
    node[last] = value
    return spec


def _word_level() -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = sorted({w for t in TRAIN for w in t.split()})
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate([bpe.DEFAULT_EOS, "[UNK]", *words])}, "[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # only the model differs
    return tokenizer.to_str()


def _choose(spec: dict) -> bpe.Loaded:
    return bpe.from_text(json.dumps(spec))


# --- which engine ---------------------------------------------------------------------------------


def test_the_trained_tokenizer_is_encoded_by_tiktoken_with_the_same_ids():
    spec = _trained()
    loaded = _choose(spec)
    assert loaded.encoder.name == "tiktoken", loaded.encoder.why
    reference = engine._tokenizers_encoder(loaded.tokenizer, "reference")
    assert_same_ids(loaded.encoder, reference, TRICKY + ADVERSARIAL + random_texts(100, seed=4))
    # A GPT-2 style file that also lists its special token in the model's vocabulary.
    spec["model"]["vocab"][bpe.DEFAULT_EOS] = 0
    assert _choose(spec).encoder.name == "tiktoken"


@pytest.mark.parametrize("spec, why", [
    (_edit("normalizer", {"type": "NFC"}), "normalizer"),
    (_edit("pre_tokenizer", {"type": "Whitespace"}), "pre-tokenizer"),
    (_edit("pre_tokenizer.add_prefix_space", True), "pre-tokenizer"),
    (_edit("pre_tokenizer.use_regex", False), "pre-tokenizer"),
    (_edit("model.dropout", 0.1), "dropout"),
    (_edit("model.byte_fallback", True), "byte_fallback"),
    (_edit("truncation", {"direction": "Right", "max_length": 5, "strategy": "LongestFirst", "stride": 0}),
     "truncates"),
    (json.loads(_word_level()), "model is WordLevel"),
    (_edit("added_tokens", _trained()["added_tokens"] + [
        {"id": 400, "content": "cat", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": False}]), "non-special added tokens"),
])
def test_what_tiktoken_cannot_reproduce_goes_to_tokenizers(spec, why):
    loaded = _choose(spec)
    assert loaded.encoder.name == "tokenizers" and why in loaded.encoder.why
    if spec["model"].get("dropout"):
        return  # a random split: no two encodings need agree
    # ... and encodes exactly as the tokenizer does.
    offsets, flat = loaded.encoder.encode(TRICKY, 7)
    for i, text in enumerate(TRICKY):
        assert flat[offsets[i]:offsets[i + 1]].tolist() == loaded.tokenizer.encode(text).ids + [7]


def test_merges_whose_ids_do_not_follow_merge_order_go_to_tokenizers():
    spec = _trained()
    merges, vocab = spec["model"]["merges"], spec["model"]["vocab"]
    first, second = ("".join(m) for m in merges[:2])
    vocab[first], vocab[second] = vocab[second], vocab[first]
    assert "larger id" in _choose(spec).encoder.why


def test_a_token_its_own_merges_cannot_reach_goes_to_tokenizers():
    # "abc" is a token, made from "ab" + "c"; but "bc" merges first, so BPE gives [a, bc] for
    # "abc" while tiktoken takes a whole pre-token found in the vocabulary as that token.
    spec = _trained()
    base = [t for t, i in spec["model"]["vocab"].items() if i <= 256]
    vocab = {t: i for i, t in enumerate(base)}
    for token in ("qz", "jq", "jqz"):
        vocab[token] = len(vocab)
    spec["model"]["vocab"] = vocab
    spec["model"]["merges"] = [["q", "z"], ["j", "q"], ["jq", "z"]]
    chosen = _choose(spec).encoder
    assert chosen.name == "tokenizers" and "'jqz'" in chosen.why
    # The same vocabulary with merges that do reach it is tiktoken's.
    spec["model"]["vocab"] = {**{t: i for i, t in enumerate(base)}, "jq": 257, "qz": 258, "jqz": 259}
    spec["model"]["merges"] = [["j", "q"], ["q", "z"], ["jq", "z"]]
    assert _choose(spec).encoder.name == "tiktoken"


def test_the_stage_encodes_with_the_engine_chosen_and_records_it(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(_edit("normalizer", {"type": "NFC"})))
    stage = TokenizeStage(TokenizeConfig(tokenizer=path))
    assert stage.loaded.encoder.name == "tokenizers"
    kept = stage.process(docs_table(["Cafe\u0301 au lait"], None, "n")).kept
    assert kept.column("tokens").to_pylist()[0][:-1] == stage.loaded.tokenizer.encode("Café au lait").ids
    stats = run_tokenize(tmp_path / "run", [docs_table(TRICKY, None, "s")], TokenizeConfig(vocab_size=300), None)
    assert stats["engine"]["name"] == "tiktoken"


# --- every document of the shared corpora ---------------------------------------------------------


@pytest.mark.corpora
@pytest.mark.slow
def test_tiktoken_ids_equal_tokenizers_ids_on_every_corpus_document():
    corpus("web")  # skips without the shared corpora (fails under CI=true)
    texts = shared_documents()
    assert len(texts) > 60_000  # every corpus was read
    # The tokenizer curate trains (the default vocabulary), on a sample of the same documents.
    spec_text = bpe.train(texts[::20], vocab_size=32000)
    loaded = bpe.from_text(spec_text)
    assert loaded.encoder.name == "tiktoken", loaded.encoder.why
    reference = engine._tokenizers_encoder(loaded.tokenizer, "reference")
    assert_same_ids(loaded.encoder, reference, texts + ADVERSARIAL + every_character())
