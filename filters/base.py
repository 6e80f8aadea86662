"""What every quality filter shares: its rules, declared as data.

A rule removes a document when its measured signal crosses a threshold from the config:
`op="lt"` removes when signal < threshold, `op="gt"` removes when signal > threshold. A
threshold of None turns the rule off. Because rules are data over stored signal columns,
`curate report --what-if quality.FILTER.PARAM=VALUE` recomputes decisions without a re-run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rule:
    name: str  # the reason's last part: quality:<filter>:<name>
    signal: str  # the column the value was measured into (float32)
    op: str  # "lt" or "gt": remove when signal < threshold (lt) or signal > threshold (gt)
    param: str  # the filter's config key holding the threshold

    def fires(self, values: np.ndarray, threshold: float | None) -> np.ndarray:
        """Boolean mask of documents this rule removes (NaN, i.e. not measured, never fires)."""
        if threshold is None:
            return np.zeros(len(values), dtype=bool)
        with np.errstate(invalid="ignore"):
            return values < threshold if self.op == "lt" else values > threshold
