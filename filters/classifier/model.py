"""The fastText quality classifier: text normalisation, training, scoring, metrics.

One module holds everything the trainer (`curate train-quality`) and the scorer (the quality
stage's `classifier` filter) must agree on, so a model is always scored on text normalised
exactly as it was trained on. A model is a plain fastText supervised model with two labels,
`__label__hq` (the positive, "keep this kind of text") and `__label__lq`; its score for a
document is the probability of the positive label.

Next to the model file, training writes a JSON card (`MODEL.json`): data sizes, parameters,
held-out metrics, curate version, seed and the normalisation it was trained with.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import mmap
import os
import struct
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


# -- the model file -------------------------------------------------------------------------
FASTTEXT_MAGIC = 793712314
_checked: dict[tuple, "ModelInfo"] = {}


@dataclass(frozen=True)
class ModelInfo:
    dim: int
    labels: tuple[str, ...]
    words: int
    quantized: bool


class _Cursor:
    """Reads fastText's little-endian binary layout, failing with `corrupt` past the end."""

    def __init__(self, buf, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise UserError(f"{self.path}: corrupt fastText model (truncated)")
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return values

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise UserError(f"{self.path}: corrupt fastText model (truncated)")
        self.pos += n

    def cstring(self) -> bytes:
        end = self.buf.find(b"\0", self.pos)
        if end < 0:
            raise UserError(f"{self.path}: corrupt fastText model (truncated)")
        s = self.buf[self.pos:end]
        self.pos = end + 1
        return s

    def matrix(self, quantized: bool) -> int:
        """Skip a saved matrix; returns its row count."""
        if not quantized:
            m, n = self.take("<qq")
            self.skip(m * n * 4)
            return m
        qnorm, m, n, codesize = self.take("<?qqi")
        self.skip(codesize)
        self._product_quantizer()
        if qnorm:
            self.skip(m)
            self._product_quantizer()
        return m

    def _product_quantizer(self) -> None:
        dim, _nsubq, _dsub, _lastdsub = self.take("<iiii")
        self.skip(dim * 256 * 4)  # centroids: dim x 256 float32


def inspect_model(path: Path) -> ModelInfo:
    """Check that `path` is a complete fastText supervised model; returns its shape and labels.

    fastText itself loads a truncated file without a word (zero-filled weights), so this walks
    the saved layout (header, dictionary, matrices) and requires it to end exactly at the end
    of the file. Any mismatch is a UserError naming the file. Cached per (path, size, mtime).
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise UserError(f"model file not found: {path}") from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _checked:
        return _checked[key]
    if st.st_size == 0:
        raise UserError(f"{path}: corrupt fastText model (empty file)")
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            info = _walk(_Cursor(buf, path), len(buf))
    except OSError as e:
        raise UserError(f"{path}: cannot read model: {e.strerror or e}") from None
    _checked[key] = info
    return info


def _walk(cur: _Cursor, size: int) -> ModelInfo:
    path = cur.path
    magic, version = cur.take("<ii")
    if magic != FASTTEXT_MAGIC or not 11 <= version <= 12:
        raise UserError(f"{path}: not a fastText model")
    dim, _ws, _epoch, _mincount, _neg, _ngrams, _loss, model, bucket, _minn, _maxn, _lru = cur.take("<12i")
    cur.take("<d")
    if model != 3:  # model_name::sup
        raise UserError(f"{path}: a fastText word-vector model, not a supervised classifier")
    entries, nwords, nlabels, _ntokens, pruned = cur.take("<iiiqq")
    if not (0 <= nwords <= entries and nlabels == entries - nwords and pruned >= -1):
        raise UserError(f"{path}: corrupt fastText model (bad dictionary header)")
    labels = []
    for _ in range(entries):
        word = cur.cstring()
        _count, kind = cur.take("<qb")
        if kind == 1:
            labels.append(word.decode("utf-8", "replace"))
    cur.skip(max(pruned, 0) * 8)
    (quant_input,) = cur.take("<?")
    rows = cur.matrix(quant_input)
    (quant_output,) = cur.take("<?")
    cur.matrix(quant_output)
    if cur.pos != size:
        raise UserError(f"{path}: corrupt fastText model ({size - cur.pos} unexpected trailing bytes)")
    if not quant_input and pruned <= 0 and rows != nwords + bucket:
        raise UserError(f"{path}: corrupt fastText model (input matrix has {rows} rows)")
    return ModelInfo(dim=dim, labels=tuple(labels), words=nwords, quantized=quant_input)


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
        import fasttext

        path = Path(path)
        info = inspect_model(path)
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
        try:
            model = fasttext.load_model(str(path))
        except ValueError as e:
            raise UserError(f"{path}: cannot load fastText model: {e}") from None
        return cls(model, positive_label)

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


# -- metrics --------------------------------------------------------------------------------
def auc(labels, scores) -> float:
    """Area under the ROC curve: P(a random positive scores above a random negative), ties 1/2.

    The Mann-Whitney U statistic from average ranks. NaN when one class is absent.
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    npos = int(y.sum())
    nneg = y.size - npos
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    _, inverse, counts = np.unique(s[order], return_inverse=True, return_counts=True)
    end = np.cumsum(counts)
    ranks = np.empty(s.size)
    ranks[order] = ((end - counts + 1 + end) / 2.0)[inverse]  # tied values share their mean rank
    return float((ranks[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def metrics(labels, scores, threshold: float = 0.5) -> dict:
    """Precision, recall, F1 (positive class, predicted when score >= threshold), accuracy, AUC."""
    y = np.asarray(labels).astype(bool)
    pred = np.asarray(scores) >= threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": int(y.size), "positives": int(y.sum()), "threshold": threshold,
        "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
        "accuracy": round(float((pred == y).mean()) if y.size else 0.0, 4),
        "auc": round(auc(y, scores), 4),
    }


# -- training data ---------------------------------------------------------------------------
@dataclass
class Labelled:
    """Texts with 0/1 labels (1 = positive), as an Arrow string array and a numpy array."""

    texts: pa.Array
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> "Labelled":
        return Labelled(self.texts.take(pa.array(rows, pa.int64())), self.labels[rows])

    @staticmethod
    def join(parts: list["Labelled"]) -> "Labelled":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Labelled(pa.array([], pa.large_string()), np.zeros(0, np.int8))
        texts = pa.concat_arrays([p.texts.cast(pa.large_string()) for p in parts])
        return Labelled(texts, np.concatenate([p.labels for p in parts]).astype(np.int8))

    @staticmethod
    def of(texts, label: int) -> "Labelled":
        arr = texts if isinstance(texts, pa.Array) else pa.array(texts, pa.large_string())
        return Labelled(arr, np.full(len(arr), label, np.int8))


def nonempty(data: Labelled) -> tuple[Labelled, int]:
    """Drop blank texts (nothing to learn from); returns the rest and how many were dropped."""
    empty = blank(normalize(data.texts))
    return data.take(np.flatnonzero(~empty)), int(empty.sum())


JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".ndjson.gz", ".json.gz")


def _files(path: Path) -> list[Path]:
    """The files under `path`. A curate stage output (a folder holding part-*.parquet) means its
    kept documents only: name OUT/<stage>/removed for the removed ones. Hidden and `_`-prefixed
    entries (a stage's _done/, _stats.json, _work/) are skipped."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"training data not found: {path}")
    parts = sorted(path.glob("part-*.parquet"))
    if parts:
        return parts
    return sorted(p for p in path.rglob("*") if p.is_file()
                  and not any(s.startswith((".", "_")) for s in p.relative_to(path).parts))


def _is_jsonl(path: Path) -> bool:
    return path.name.lower().endswith(JSONL_SUFFIXES)


def _read_parquet(path: Path, columns: list[str]) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception:
        raise UserError(f"{path}: not a readable Parquet file") from None
    missing = [c for c in columns if c not in names]
    if missing:
        raise UserError(f"{path}: no {missing[0]!r} column (columns: {', '.join(names)})")
    return pq.read_table(path, columns=columns)


def _read_jsonl(path: Path, fields: list[str]) -> dict[str, list]:
    import orjson

    from curate.readers.compression import open_binary

    out: dict[str, list] = {f: [] for f in fields}
    try:
        with open_binary(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise UserError(f"{path}:{n}: not valid JSON") from None
                if not isinstance(obj, dict) or any(k not in obj for k in fields):
                    raise UserError(f"{path}:{n}: expected a JSON object with {' and '.join(map(repr, fields))}")
                for k in fields:
                    out[k].append(obj[k])
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read: {e}") from None
    return out


def _as_text_array(values, path: Path) -> pa.Array:
    try:
        return pa.array(values, pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise UserError(f"{path}: a `text` value is not a string") from None


def read_texts(path: Path) -> tuple[pa.Array, int]:
    """Texts of every document under `path`, and how many files were skipped as binary.

    JSONL (`text` field) and Parquet (`text` column) hold one document per record; any other
    file is one document (decoded like extract does); binary files inside a folder are skipped.
    """
    from curate import readers
    from curate.readers.compression import read_bytes
    from curate.readers.decode import decode

    path = Path(path)
    chunks, singles, skipped = [], [], 0
    for f in _files(path):
        if f.suffix.lower() == ".parquet":
            col = _read_parquet(f, ["text"]).column("text")
            chunks.append(col.cast(pa.large_string()).combine_chunks())
        elif _is_jsonl(f):
            chunks.append(_as_text_array(_read_jsonl(f, ["text"])["text"], f))
        else:
            try:
                data = read_bytes(f, 256 << 20)
            except (OSError, EOFError) as e:
                raise UserError(f"{f}: cannot read: {e}") from None
            if not readers.get("text").sniff(data[:4096]):  # via the registry: it loads every reader
                if f == path:
                    raise UserError(f"{f}: not a text, JSONL or Parquet file")
                skipped += 1
                continue
            singles.append(decode(data)[0])
    if singles:
        chunks.append(pa.array(singles, pa.large_string()))
    texts = pa.concat_arrays(chunks) if chunks else pa.array([], pa.large_string())
    return texts, skipped


def _labels(values, path: Path) -> np.ndarray:
    out = np.empty(len(values), dtype=np.int8)
    for i, v in enumerate(values):
        if not isinstance(v, (bool, int, float)) or v not in (0, 1):
            raise UserError(f"{path}: label {v!r} of record {i + 1} is not 0 or 1")
        out[i] = int(v)
    return out


def read_labelled(path: Path) -> Labelled:
    """Records with `text` and a 0/1 (or boolean) `label`, from JSONL or Parquet files."""
    path = Path(path)
    parts = []
    for f in _files(path):
        if f.suffix.lower() == ".parquet":
            table = _read_parquet(f, ["text", "label"])
            texts = table.column("text").cast(pa.large_string()).combine_chunks()
            labels = table.column("label").to_pylist()
        elif _is_jsonl(f):
            rec = _read_jsonl(f, ["text", "label"])
            texts, labels = _as_text_array(rec["text"], f), rec["label"]
        else:
            raise UserError(f"{f}: a labelled file is JSONL or Parquet with `text` and `label`")
        parts.append(Labelled(texts, _labels(labels, f)))
    return Labelled.join(parts)


# -- labels from a curate run ----------------------------------------------------------------
FILTER_NAME = "classifier"  # the quality filter that applies these models (filters/classifier/__init__.py)


def tightened(threshold: float, op: str, margin: float) -> float:
    """A threshold made stricter by `margin` (relative): `lt` rules rise, `gt` rules fall."""
    step = margin * abs(threshold)
    return threshold + step if op == "lt" else threshold - step


def _column(table: pa.Table, name: str, type_: pa.DataType) -> pa.Array:
    """A column of a stage's parts read back (an empty side has no columns at all)."""
    if name not in table.column_names:
        return pa.array([], type_)
    return table.column(name).combine_chunks().cast(type_)


def bootstrap_from_run(out: Path, sources=("web", "text"), reference_sources=(),
                       margin: float = 0.0) -> tuple[Labelled, dict]:
    """Labels made from a curate run's quality stage, without human labels.

    Positives: documents of `sources` the rule filters kept, with `margin`: that every
    threshold rule of the run would still keep with its threshold made `margin` stricter
    (relative: min_doc_words 50 -> 55 at 0.1); plus every kept document of
    `reference_sources` (text you want more of, e.g. academic). Negatives: documents of
    `sources` a quality rule removed (`quality:*` reasons, except the classifier's own and
    errors): the classifier never learns from its own decisions.
    """
    from curate.report import rules as run_rules
    from curate.report.outdir import KEPT, REMOVED, RunDir

    run = RunDir(Path(out))
    stage = run.get("quality")
    if stage is None or not stage.complete:
        raise UserError(f"{out}: no complete quality stage output; run `curate stage quality --output {out}` first")
    bound = [b for b in run_rules.stage_rules("quality", run.config)
             if b.filter != FILTER_NAME and b.threshold is not None]
    signals = sorted({b.rule.signal for b in bound})
    kept = stage.read(KEPT, ["text", "source"] + signals)
    removed = stage.read(REMOVED, ["text", "source", "reason"])

    def of_sources(table: pa.Table, names) -> np.ndarray:
        source = _column(table, "source", pa.string())
        return pc.fill_null(pc.is_in(source, pa.array(list(names), pa.string())), False).to_numpy(zero_copy_only=False)

    safe = np.ones(kept.num_rows, dtype=bool)
    for b in bound:
        if b.rule.signal in kept.column_names:
            values = kept.column(b.rule.signal).to_numpy(zero_copy_only=False).astype(np.float64)
            safe &= ~b.rule.fires(values, tightened(b.threshold, b.rule.op, margin))
    by_margin = of_sources(kept, sources) & safe
    by_reference = of_sources(kept, reference_sources) & ~by_margin

    reasons = _column(removed, "reason", pa.string())

    def starts(prefix: str) -> np.ndarray:
        return pc.fill_null(pc.starts_with(reasons, prefix), False).to_numpy(zero_copy_only=False)

    by_rule = starts("quality:") & ~starts(f"quality:{FILTER_NAME}:") & ~starts("quality:error")
    negative = of_sources(removed, sources) & by_rule

    def texts(table: pa.Table, mask: np.ndarray) -> pa.Array:
        return _column(table, "text", pa.large_string()).filter(pa.array(mask))

    counts = reasons.filter(pa.array(negative)).value_counts().to_pylist()
    summary = {
        "from_run": str(Path(out).resolve()), "run_sources": list(sources),
        "reference_sources": list(reference_sources), "margin": margin,
        "rules": [f"{b.reason}: {b.describe(tightened(b.threshold, b.rule.op, margin))}" for b in bound],
        "kept_in_sources": int(of_sources(kept, sources).sum()),
        "positives_with_margin": int(by_margin.sum()), "positives_reference": int(by_reference.sum()),
        "negatives": int(negative.sum()),
        "negative_reasons": {str(r["values"]): int(r["counts"]) for r in sorted(counts, key=lambda r: -r["counts"])},
    }
    positives = Labelled.of(texts(kept, by_margin | by_reference), 1)
    return Labelled.join([positives, Labelled.of(texts(removed, negative), 0)]), summary


# -- training -------------------------------------------------------------------------------
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


def cross_validate(data: Labelled, params: TrainParams, folds: int = 5, seed: int = 0) -> dict:
    """Out-of-fold scores of `folds`-fold stratified cross-validation, and their metrics."""
    require_both_classes(data, minimum=folds)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(data), dtype=np.int64)
    for cls in (0, 1):
        rows = rng.permutation(np.flatnonzero(data.labels == cls))
        fold_of[rows] = np.arange(rows.size) % folds
    scores = np.zeros(len(data), dtype=np.float32)
    per_fold = []
    for k in range(folds):
        test = np.flatnonzero(fold_of == k)
        model = train(data.take(np.flatnonzero(fold_of != k)), params, seed + k)
        scores[test] = QualityModel(model).score(data.texts.take(pa.array(test, pa.int64())))
        per_fold.append(auc(data.labels[test], scores[test]))
    return {"scores": scores, "fold_auc": [round(a, 4) for a in per_fold], **metrics(data.labels, scores)}


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
            quantiles[name] = {str(q): round(float(v), 4) for q, v in zip(QUANTILES, values)}
        measured = {**metrics(valid.labels, scores, threshold), "score_quantiles": quantiles}
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
