"""Training a quality classifier: fastText parameters, a seeded stratified split, the model
file and its card (`MODEL.json`: data sizes, parameters, held-out metrics, version, seed and the
normalisation the model was trained with).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import UserError
from curate.filters.classifier.labels import Labelled, nonempty
from curate.filters.classifier.metrics import metrics
from curate.filters.classifier.model import NEGATIVE, NORMALIZATION, POSITIVE, QualityModel, card_path, normalize


@dataclass(frozen=True)
class TrainParams:
    """fastText supervised parameters. Defaults chosen by measurement on the 281 human labels
    (scripts/eval_quality_classifier.py: 5-fold CV on them, and models bootstrapped from a run):
    lr 0.1 beat 0.3 and 0.5 on both (more fitting of bootstrapped labels learns the proxy
    task, not quality), dim 100 beat 64 in CV, epoch 10 edged out 5, bucket 100k = 1M here,
    min_count 2 halves the model (words seen once are most of a vocabulary) for -0.003 AUC."""

    word_ngrams: int = 2  # word bigrams: "click here" says more than "click" and "here"
    dim: int = 100
    epoch: int = 10
    lr: float = 0.1
    min_count: int = 2
    bucket: int = 100_000  # hashed n-gram rows (the model is ~(words + bucket) x dim floats)
    threads: int = 1  # one thread: training is deterministic for a seed

    def fasttext_kwargs(self, seed: int) -> dict:
        return dict(wordNgrams=self.word_ngrams, dim=self.dim, epoch=self.epoch, lr=self.lr,
                    minCount=self.min_count, bucket=self.bucket, thread=self.threads, seed=seed,
                    minn=0, maxn=0, loss="softmax", verbose=0)


def require_both_classes(data: Labelled, minimum: int = 2) -> None:
    pos = int(data.labels.sum())
    neg = len(data) - pos
    if pos == 0 or neg == 0:
        which = "positive" if pos == 0 else "negative"
        raise UserError(f"the training data has no {which} documents ({pos} positive, {neg} negative): "
                        "a classifier needs both classes")
    if min(pos, neg) < minimum:
        raise UserError(f"too few documents to train and validate: {pos} positive, {neg} negative "
                        f"(need at least {minimum} of each)")


def stratified_split(labels: np.ndarray, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, valid): `valid_fraction` of each class held out, at least one each."""
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for cls in (0, 1):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        n_valid = min(max(1, round(rows.size * valid_fraction)), rows.size - 1)
        valid.append(rows[:n_valid])
        train.append(rows[n_valid:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


M_PERTURB = -6  # glibc mallopt parameter


@contextlib.contextmanager
def zeroed_allocations():
    """Make every malloc return zeroed memory while fastText trains.

    fasttext-numpy2 allocates the input matrix without zeroing it, and single-threaded it
    randomises only the first tenth (upstream fastText relies on std::vector zeroing the
    rest). Reused heap memory then made training depend on what the process did before:
    different models for one seed and random "Encountered NaN" (measured: 1 run in 3 within
    one process). glibc's M_PERTURB fills every allocation with the complement of the byte
    given, so 0xFF gives zeros, as upstream fastText has. Elsewhere this is a no-op (a fresh
    process gets fresh zeroed pages for the large matrix, so training stays deterministic).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(M_PERTURB, 0xFF)
    try:
        yield
    finally:
        mallopt(M_PERTURB, 0)


def train(data: Labelled, params: TrainParams, seed: int):
    """Train a fastText model on `data` (normalised here); returns the fastText model object.

    fastText reads its training file front to back without shuffling, so the lines are written
    in a seeded random order: one class after the other would teach it only the last one.
    """
    import fasttext

    norm = normalize(data.texts)
    prefixes = pa.array(np.where(data.labels == 1, POSITIVE, NEGATIVE), pa.large_string())
    lines = pc.binary_join_element_wise(prefixes, norm, pa.scalar(" ", pa.large_string()))
    order = np.random.default_rng(seed).permutation(len(data))
    fd, tmp = tempfile.mkstemp(prefix="curate-train-quality-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines.take(pa.array(order, pa.int64())).to_pylist()))
            f.write("\n")
        with zeroed_allocations():
            return fasttext.train_supervised(input=tmp, **params.fasttext_kwargs(seed))
    except RuntimeError as e:
        if "NaN" not in str(e):
            raise
        raise UserError(f"training diverged (NaN) at lr {params.lr:g}: lower --lr") from None
    finally:
        os.unlink(tmp)


def save_model(model, path: Path) -> None:
    """Write the model atomically: a killed run never leaves a half-written model behind."""
    from curate import storage

    with storage.Staged(Path(path)) as tmp:
        model.save_model(str(tmp))


def write_card(path: Path, card: dict) -> Path:
    from curate import storage

    target = card_path(path)
    storage.write_json(target, card)
    return target


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
# Held-out scores whose 10th to 90th percentile span less than this sit too close together for a
# threshold to mean anything, however well they rank. Measured: on the 281 human labels the
# default parameters give AUC 0.867 with every score in 0.50005-0.50014 (a span of 0.00007);
# the separated synthetic sets of tests/test_quality_classifier.py span 0.995.
MIN_SPREAD = 0.05


def spread_warning(measured: dict | None) -> str | None:
    """Why a score threshold would decide at random, when the held-out scores do not spread."""
    if not measured or measured["score_spread"] >= MIN_SPREAD:
        return None
    return (f"held-out scores barely spread (10th to 90th percentile span {measured['score_spread']:.2g}, "
            f"AUC {measured['auc']:.3f}): they rank documents, but a threshold such as "
            f"{measured['threshold']:g} decides almost at random. Train on more documents, or with more "
            "--epoch or a higher --lr, or keep a share with quality.classifier.top_fraction")


def fit(data: Labelled, params: TrainParams, seed: int, valid_fraction: float, output: Path,
        threshold: float = 0.5, provenance: dict | None = None) -> dict:
    """Train on a seeded stratified split, measure on the held-out part, save model and card.

    Returns the card. With valid_fraction 0 every document trains and no metrics are given.
    """
    import fasttext

    from curate import __version__

    data, empty = nonempty(data)
    require_both_classes(data)
    if valid_fraction > 0:
        train_rows, valid_rows = stratified_split(data.labels, valid_fraction, seed)
    else:
        train_rows, valid_rows = np.arange(len(data)), np.zeros(0, np.int64)
    t0 = time.perf_counter()
    model = train(data.take(train_rows), params, seed)
    seconds = time.perf_counter() - t0
    valid = data.take(valid_rows)
    measured = None
    if len(valid):
        scores = QualityModel(model).score(valid.texts)
        # Where each class's scores lie on held-out documents: what a threshold can be chosen from.
        quantiles = {}
        for name, cls in (("positive", 1), ("negative", 0)):
            values = np.quantile(scores[valid.labels == cls], QUANTILES)
            quantiles[name] = {str(q): round(float(v), 6) for q, v in zip(QUANTILES, values)}
        p10, p90 = np.quantile(scores, (0.1, 0.9))
        measured = {**metrics(valid.labels, scores, threshold), "score_quantiles": quantiles,
                    "score_spread": round(float(p90 - p10), 6)}
    save_model(model, output)
    card = {
        "model": Path(output).name,
        "task": "quality classifier: P(positive) = P(" + POSITIVE + ")",
        "labels": {"positive": POSITIVE, "negative": NEGATIVE},
        "normalization": NORMALIZATION,
        "curate_version": __version__,
        "fasttext_version": getattr(fasttext, "__version__", None) or _dist_version("fasttext-numpy2"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": seed,
        "params": asdict(params),
        "data": {
            "positive": int(data.labels.sum()), "negative": int(len(data) - data.labels.sum()),
            "empty_skipped": empty, "train": int(train_rows.size), "valid": int(valid_rows.size),
            "valid_fraction": valid_fraction, **(provenance or {}),
        },
        "metrics": {"valid": measured},
        "warnings": [w for w in (spread_warning(measured),) if w],
        "train_seconds": round(seconds, 2),
        "file": {"bytes": Path(output).stat().st_size, "sha256": file_digest(Path(output))},
    }
    write_card(output, card)
    return card


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
