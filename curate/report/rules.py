"""The thresholds a run applied, as data: each filter's `Rule`s bound to run.json's config.

A quality filter declares `rules: tuple[Rule, ...]`; the threshold of a rule is the filter's
config key `quality.<filter>.<rule.param>` in run.json's resolved config, and the reason it
writes is `quality:<filter>:<rule.name>`. Language ID has one such rule of its own:
`lang_score < langid.min_score`. Decisions that are not a threshold over a stored signal
(C4's line removal, a timeout) have no Rule and are held fixed by a what-if.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.filters.base import Rule

# Language ID's threshold rule; its reason is `langid:<name>`.
LANGID_RULE = Rule(name="low_score", signal="lang_score", op="lt", param="min_score")
# Langid's other removal, `langid:not_allowed:<lang>`: a language outside `langid.languages`.
LANGID_GATE = "langid:not_allowed:"
LANGID_LANGUAGES = "languages"


@dataclass(frozen=True)
class BoundRule:
    stage: str
    filter: str | None  # None for a stage-level rule (langid)
    rule: Rule
    threshold: float | None

    @property
    def key(self) -> str:
        """The config key of the threshold, as `--what-if` and `--set` spell it."""
        parts = [self.stage] + ([self.filter] if self.filter else []) + [self.rule.param]
        return ".".join(parts)

    @property
    def reason(self) -> str:
        parts = [self.stage] + ([self.filter] if self.filter else []) + [self.rule.name]
        return ":".join(parts)

    def matches(self, reasons: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Rows whose recorded reason is this rule's (a `:detail` suffix allowed)."""
        exact = pc.equal(reasons, self.reason)
        detail = pc.starts_with(reasons, self.reason + ":")
        return pc.fill_null(pc.or_(exact, detail), False).to_numpy(zero_copy_only=False)

    @property
    def symbol(self) -> str:
        return "<" if self.rule.op == "lt" else ">"

    def describe(self, threshold: float | None = None) -> str:
        """`signal < threshold`, or "no threshold" for a rule the config turned off."""
        t = self.threshold if threshold is None else threshold
        if t is None:
            return "no threshold"
        return f"{self.rule.signal} {self.symbol} {t:g}"

    def explain(self, value: float) -> str:
        """Why this rule fired for a document: `gopher_words = 23 < 50 (quality.gopher.min_doc_words)`."""
        return f"{self.rule.signal} = {value:.4g} {self.symbol} {self.threshold:g} ({self.key})"


def filter_classes(plugins: list[str] = ()) -> dict[str, type]:
    """Quality filter name -> class (curate.filters.FILTERS), in the default order, with the
    installed plugin filters and those of `plugins` (a run's config's import paths). A plugin
    that no longer imports leaves its rules out, not the report, and says so on stderr."""
    import sys

    from curate import registry
    from curate.errors import UserError
    from curate.filters import FILTERS

    for register in (registry.load_installed, *[lambda ref=ref: registry.use([ref]) for ref in plugins]):
        try:
            register()
        except UserError as exc:
            print(f"warning: {exc}; its rules are left out of the report", file=sys.stderr)
    return dict(FILTERS)


def as_threshold(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def quality_filters(section: dict, classes: dict[str, type]) -> list[str]:
    """The filters the quality stage ran, in its order: its `filters` list, or (a config without
    one) every known filter with a section."""
    listed = section.get("filters")
    if isinstance(listed, list):
        return [str(f) for f in listed]
    return [name for name in classes if isinstance(section.get(name), dict)]


def stage_rules(stage: str, config: dict) -> list[BoundRule]:
    """The threshold rules `stage` applied, in the order the stage checks them."""
    section = config.get(stage) or {}
    if stage == "langid":
        if LANGID_RULE.param not in section:
            return []
        return [BoundRule("langid", None, LANGID_RULE, as_threshold(section[LANGID_RULE.param]))]
    if stage != "quality":
        return []
    classes = filter_classes(config.get("plugins") or [])
    out = []
    for name in quality_filters(section, classes):
        cls, params = classes.get(name), section.get(name) or {}
        for rule in getattr(cls, "rules", ()):
            if rule.param in params:
                out.append(BoundRule("quality", name, rule, as_threshold(params[rule.param])))
    return out


def not_a_threshold(key: str, config: dict) -> str | None:
    """Why a config key that exists but is no rule's threshold cannot be recomputed (None: the
    key is not in the config at all)."""
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or parts[-1] not in node:
        return None
    classes = filter_classes(config.get("plugins") or [])
    cls = classes.get(parts[1]) if parts[0] == "quality" and len(parts) == 3 else None
    if cls is not None and parts[-1] in getattr(cls, "measure_params", ()):
        what = "decides which lines are kept, so the cleaned text and " if getattr(cls, "rewrites_text", False) else ""
        return f"it {what}changes what {cls.name} measures"
    return f"it changes what {parts[0]} computes, not where a threshold lies"


def thresholds_by_signal(config: dict, stages: list[str]) -> dict[str, list[BoundRule]]:
    """signal column -> the rules (with thresholds) applied to it, for the histograms."""
    out: dict[str, list[BoundRule]] = {}
    for stage in stages:
        for bound in stage_rules(stage, config):
            out.setdefault(bound.rule.signal, []).append(bound)
    return out


def bucket_bounds(config: dict) -> dict[str, list[tuple[float, str]]]:
    """column -> (value, label) of every numeric bound in the bucket stage's rules, e.g.
    `bucket_readability` -> [(60.0, "easy ≥ 60")]: where a histogram crosses into a bucket."""
    out: dict[str, list[tuple[float, str]]] = {}
    for rule in (config.get("bucket") or {}).get("rules") or []:
        for column, cond in (rule.get("when") or {}).items():
            if not isinstance(cond, dict):
                continue
            for key, sign in (("min", "≥"), ("max", "≤")):
                if isinstance(cond.get(key), (int, float)):
                    out.setdefault(column, []).append((float(cond[key]), f"{rule.get('bucket')} {sign} {cond[key]:g}"))
    return out
