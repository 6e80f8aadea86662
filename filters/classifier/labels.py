"""Labelled texts to train a quality classifier on: read from files, or made from a curate run.

Files are read by curate/readers/records.py (JSON lines, Parquet, text, folders, stage outputs).
A run gives labels without a human: documents its quality rules kept with a margin are positives,
documents they removed are negatives (`bootstrap_from_run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import UserError
from curate.filters.classifier.model import blank, normalize
from curate.readers import records


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


def _text_array(values: list, path: Path) -> pa.Array:
    try:
        return pa.array(values, pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise UserError(f"{path}: a `text` value is not a string") from None


def read_texts(path: Path) -> tuple[pa.Array, int]:
    """Texts of every document under `path`, and how many files were skipped as binary.

    JSON lines (`text` field) and Parquet (`text` column) hold one document per record; any
    other file is one document (decoded like extract does); binary files inside a folder are
    skipped. Read by curate/readers/records.py, as evaluation sets are.
    """
    found = records.read(Path(path), ["text"], what="training data")
    return _text_array(found.fields["text"], Path(path)), found.skipped


def read_labelled(path: Path) -> Labelled:
    """Records with `text` and a 0/1 (or boolean) `label`, from JSON lines or Parquet files."""
    path = Path(path)
    found = records.read(path, ["text", "label"], what="labelled data")
    labels = np.empty(len(found), dtype=np.int8)
    for i, (v, key) in enumerate(zip(found.fields["label"], found.keys)):
        if not isinstance(v, (bool, int, float)) or v not in (0, 1):
            raise UserError(f"{path}: label {v!r} of record {key} is not 0 or 1")
        labels[i] = int(v)
    return Labelled(_text_array(found.fields["text"], path), labels)


# -- labels from a curate run ----------------------------------------------------------------
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
    from curate.filters.classifier import ClassifierFilter
    from curate.report import rules as run_rules
    from curate.report.outdir import KEPT, REMOVED, RunDir

    own = ClassifierFilter.name

    run = RunDir(Path(out))
    stage = run.get("quality")
    if stage is None or not stage.complete:
        raise UserError(f"{out}: no complete quality stage output; run `curate stage quality --output {out}` first")
    bound = [b for b in run_rules.stage_rules("quality", run.config)
             if b.filter != own and b.threshold is not None]
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

    by_rule = starts("quality:") & ~starts(f"quality:{own}:") & ~starts("quality:error")
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
