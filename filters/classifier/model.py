"""The quality classifier's model: the text it sees, the file it is, the scores it gives.

A model is a plain fastText supervised model with two labels, `__label__hq` (the positive,
"keep this kind of text") and `__label__lq`; its score for a document is the probability of the
positive label. Training (train.py) and scoring (the `classifier` filter) both normalise text
with `normalize` here, so a model is always scored on text normalised exactly as it was trained
on; the card beside the model (`MODEL.json`, written by train.py) records which normalisation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import fasttext_model
from curate.errors import UserError

POSITIVE = "__label__hq"
NEGATIVE = "__label__lq"
# Bumped whenever `normalize` changes: a card with another tag means the model saw other text.
NORMALIZATION = "v1:newline-to-space,label-defused"


# -- normalisation ------------------------------------------------------------------------
def normalize(texts) -> pa.Array:
    """The text a model sees: one line per document, no text that fastText reads as a label.

    fastText splits words on whitespace itself and takes a newline as the end of an example,
    so newlines become spaces; a literal `__label__` inside a document would be read as a
    label, so it is broken. Nothing else: case and punctuation carry quality signal, and
    measured, punctuation splitting or whitespace regexes cost more than fastText's predict
    saves (see scripts/eval_quality_classifier.py). Null becomes "". Vectorised on Arrow.
    """
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(texts, pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.large_string())
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    arr = pc.fill_null(arr, "")
    arr = pc.replace_substring(arr, "\n", " ")
    return pc.replace_substring(arr, "__label__", "__label ")


def blank(norm: pa.Array) -> np.ndarray:
    """Rows of normalised text with no word in them (empty or whitespace only)."""
    empty = pc.or_(pc.equal(pc.binary_length(norm), 0), pc.utf8_is_space(norm))
    return empty.to_numpy(zero_copy_only=False)


# -- the model file and its card ----------------------------------------------------------
def card_path(model_path: Path) -> Path:
    return Path(model_path).with_name(Path(model_path).name + ".json")


def read_card(model_path: Path) -> dict | None:
    path = card_path(model_path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable model card: {e}") from None


class QualityModel:
    """A quality classifier ready to score: `score(texts)` gives P(positive) per text, float32.

    `QualityModel.load(path)` checks and loads a model file; build it once per worker (it holds
    the whole fastText model in memory), then call `score` on batches: one
    `predict(list, k=1)` call per batch, the rest is Arrow and numpy.
    """

    def __init__(self, model, positive_label: str = POSITIVE):
        self.model = model
        self.positive = positive_label
        self.labels = tuple(model.labels)

    @classmethod
    def load(cls, path: Path, positive_label: str = POSITIVE) -> "QualityModel":
        """Check the file (complete, supervised, has `positive_label`, matching normalisation), load it."""
        path = Path(path)
        info = fasttext_model.inspect(path)
        if positive_label not in info.labels:
            shown = ", ".join(info.labels[:4]) + (f" and {len(info.labels) - 4} more" if len(info.labels) > 4 else "")
            raise UserError(f"{path}: the model has no label {positive_label!r} (its labels: {shown})")
        if len(info.labels) < 2:
            raise UserError(f"{path}: the model has one label only; a classifier needs two")
        card = read_card(path)
        if card is not None and card.get("normalization") not in (None, NORMALIZATION):
            raise UserError(
                f"{path}: trained with text normalisation {card['normalization']!r}, this curate uses "
                f"{NORMALIZATION!r}; retrain it with `curate train-quality`"
            )
        return cls(fasttext_model.load(path), positive_label)

    def score(self, texts) -> np.ndarray:
        """P(positive label) per text (float32); blank texts score 0: nothing there to keep."""
        norm = normalize(texts)
        out = np.zeros(len(norm), dtype=np.float32)
        filled = ~blank(norm)
        rows = np.flatnonzero(filled)
        if rows.size:
            lines = (norm if rows.size == len(norm) else norm.filter(pa.array(filled))).to_pylist()
            out[rows] = self._predict(lines)
        return out

    def _predict(self, lines: list[str]) -> np.ndarray:
        if len(self.labels) == 2:
            # Two labels: the top label and its probability say everything; k=1 is cheapest.
            labels, probs = self.model.predict(lines, k=1)
            p = np.concatenate(probs).astype(np.float32)
            top_is_pos = np.fromiter((lab[0] == self.positive for lab in labels), bool, len(lines))
            p = np.where(top_is_pos, p, 1.0 - p)
        else:
            labels, probs = self.model.predict(lines, k=len(self.labels))
            p = np.fromiter((dict(zip(lab, pr)).get(self.positive, 0.0) for lab, pr in zip(labels, probs)),
                            np.float32, len(lines))
        # fastText adds 1e-5 inside its log-softmax: clip so scores stay probabilities.
        return np.clip(p, 0.0, 1.0).astype(np.float32)
