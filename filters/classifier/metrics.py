"""Held-out measures of a quality classifier: AUC and precision/recall/F1 at a threshold."""

from __future__ import annotations

import numpy as np


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
