"""What every quality filter shares: its rules, declared as data, and the `Filter` base class.

A rule removes a document when its measured signal crosses a threshold from the config:
`op="lt"` removes when signal < threshold, `op="gt"` removes when signal > threshold. A
threshold of None turns the rule off. Because rules are data over stored signal columns,
`curate report --what-if quality.FILTER.PARAM=VALUE` recomputes decisions without a re-run.

A filter measures (`measure`: one float32 array per signal column, NaN for a document it does
not apply to or cannot measure), and the quality stage applies its `rules` to the stored
values; so `Rule.fires` on the stored columns reproduces the stage's decisions exactly. Two
things are not a threshold over a stored signal, and a what-if cannot replay them:
  - `rewrites_text` filters (C4) remove lines: the kept text and every signal measured after
    them depend on their line rules;
  - `measure_params` change what is measured (a line counts as short below N characters), not
    where the threshold lies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field

from curate.config import Section

if TYPE_CHECKING:
    import pyarrow as pa

    from curate.text.stats import Docs

Source = Literal["web", "code", "academic", "text"]
PROSE: tuple[str, ...] = ("web", "text")  # prose rules apply to these sources


@dataclass(frozen=True)
class Rule:
    name: str  # the reason's last part: quality:<filter>:<name>
    signal: str  # the column the value was measured into (float32)
    op: str  # "lt" or "gt": remove when signal < threshold (lt) or signal > threshold (gt)
    param: str  # the filter's config key holding the threshold

    def fires(self, values: np.ndarray, threshold: float | None) -> np.ndarray:
        """Boolean mask of documents this rule removes (NaN, i.e. not measured, never fires).

        The threshold is compared at the precision of the values: a float32 signal of exactly
        0.3 does not exceed a threshold of 0.3 (in float64, float32(0.3) > 0.3 would be true)."""
        values = np.asarray(values)
        if threshold is None:
            return np.zeros(len(values), dtype=bool)
        t = values.dtype.type(threshold) if np.issubdtype(values.dtype, np.floating) else threshold
        with np.errstate(invalid="ignore"):
            return values < t if self.op == "lt" else values > t


class FilterConfig(Section):
    """Base of a filter's config section: thresholds are its other keys (None turns a rule off)."""

    sources: list[Source] | None = Field(
        None, description="sources the filter applies to; null: the filter's own (see its docstring)")


class Filter:
    """Base class of a quality filter. A subclass declares:

    name      config section and reason part: quality:<name>:<rule>
    Config    its FilterConfig subclass, the thresholds with their published defaults
    rules     Rule(name, signal, op, param) in the order they are checked
    signals   every column `measure` returns (prefixed `<name>_`), ruled or informative
    sources   the sources it applies to by default
    measures_prose  (optional) whether it judges language: it then measures the documents'
              prose (their text without fenced code blocks, curate.text.prose)
    columns   (optional) non-float columns `measure` also returns: name -> Arrow type
    """

    name: ClassVar[str]
    Config: ClassVar[type[FilterConfig]] = FilterConfig
    rules: ClassVar[tuple[Rule, ...]] = ()
    signals: ClassVar[tuple[str, ...]] = ()
    sources: ClassVar[tuple[str, ...]] = PROSE
    rewrites_text: ClassVar[bool] = False
    measures_prose: ClassVar[bool] = False  # measure `docs.prose`: the text without code blocks
    measure_params: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[dict[str, "pa.DataType"]] = {}  # null for a document not measured

    def __init__(self, config: FilterConfig):
        self.config = config

    @classmethod
    def check_contract(cls) -> None:
        """What the quality stage and the report rely on, checked when a plugin filter is
        registered (ValueError with what is wrong): a filter from outside curate is held to it."""
        if not (isinstance(cls.Config, type) and issubclass(cls.Config, FilterConfig)):
            raise ValueError("its Config must subclass curate.filters.base.FilterConfig")
        if cls.measure is Filter.measure and not cls.rewrites_text:
            raise ValueError("it must implement measure(docs)")
        for signal in (*cls.signals, *cls.columns):
            if not signal.startswith(f"{cls.name}_"):
                raise ValueError(f"its column {signal!r} must start with {cls.name}_ (the stored columns of all "
                                 "filters share one table)")
        for rule in cls.rules:
            if rule.signal not in cls.signals:
                raise ValueError(f"rule {rule.name}: its signal {rule.signal!r} is not in signals")
            if rule.op not in ("lt", "gt"):
                raise ValueError(f"rule {rule.name}: op must be 'lt' or 'gt', not {rule.op!r}")
            if rule.param not in cls.Config.model_fields:
                raise ValueError(f"rule {rule.name}: its threshold {rule.param!r} is not a key of its Config")

    def applies_to(self) -> tuple[str, ...]:
        return tuple(self.config.sources) if self.config.sources is not None else self.sources

    def thresholds(self) -> list[tuple[Rule, float | None]]:
        return [(rule, getattr(self.config, rule.param)) for rule in self.rules]

    def measure(self, docs: "Docs") -> dict[str, np.ndarray]:
        """Signal column -> one value per document of `docs` (float64 is fine; the stage stores
        float32). Vectorised over the batch."""
        raise NotImplementedError

    def rewrite(self, docs: "Docs") -> tuple[dict[str, np.ndarray], "pa.Array | Docs"]:
        """For `rewrites_text` filters: the signals and the new text of every document, as a
        string array or as a `Docs` of it (`docs.with_text(text, tokens)`), which hands what the
        filter already computed about the new text (its tokens) to the filters after it."""
        raise NotImplementedError

    def counters(self, signals: dict[str, np.ndarray], kept: np.ndarray) -> dict:
        """The filter's entry in the batch's ledger counters (`counters[<name>]`), from the
        stage's signal columns (NaN where not measured) and the kept mask; none by default."""
        return {}
