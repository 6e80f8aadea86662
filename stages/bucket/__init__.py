"""bucket: every document -> one curriculum bucket.

Consumes: `text`, and whatever earlier stages left that a rule names (`source`, `lang`,
          `quality_score`, any signal column).
Adds:     float32 signals `bucket_<name>` for each measure of `curate.stages.bucket.signals` (readability,
          math density, code density, reasoning markers, ...) and `bucket`.
Drops:    nothing: a document no rule takes goes to the default bucket.

Buckets and their rules are config. `order` is the curriculum (the order training sees them, and
the order of the shards manifest); `rules` are tried top to bottom and the first whose conditions
all hold decides the bucket. A condition on a column is a range (`{min: 60, max: 120}`, both
inclusive) for numbers or a list of values for strings (`[web, text]`; `code:*` matches a
prefix). A condition whose column is missing (the stage that makes it did not run) or null for a
document is skipped, so the same rules work with or without langid and quality; the skips are
counted in the stage's counters (`skipped_conditions`).

The stage's _stats.json reports the mix: documents and characters per bucket x source x language
(`counters.mix`), and per bucket in curriculum order (`buckets`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from curate import schema
from curate.stages.bucket import signals
from curate.config import Section
from curate.stage import Result, Stage, split
from curate.stages.tokenize.shards import check_bucket_name

PREFIX = "bucket_"
SIGNAL_COLUMNS = tuple(PREFIX + name for name in signals.SIGNALS)
UNKNOWN = "unknown"  # the mix's key for a null source or language


class Range(Section):
    min: float | None = None
    max: float | None = None


# A list of strings for string columns, a range for numeric ones.
Condition = list[str] | Range


class BucketRule(Section):
    bucket: str
    when: dict[str, Condition] = Field(default_factory=dict, description="column -> condition; all must hold")

    @field_validator("when", mode="before")
    @classmethod
    def _one_value_is_a_list(cls, when):
        if isinstance(when, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in when.items()}
        return when

    @field_validator("when")
    @classmethod
    def _known_columns(cls, when: dict[str, Condition]) -> dict[str, Condition]:
        """Catch what can be caught before the run: misspelt signals, a condition of the wrong kind
        on a column of known type. Other columns are checked when the batch shows their type."""
        for column, cond in when.items():
            if column.startswith(PREFIX) and column not in SIGNAL_COLUMNS:
                raise ValueError(f"unknown signal {column!r}; the bucket stage measures {', '.join(SIGNAL_COLUMNS)}")
            known = pa.float32() if column in SIGNAL_COLUMNS else schema.BASE.field(column).type if column in schema.BASE.names else None
            if known is not None and pa.types.is_floating(known) and not isinstance(cond, Range):
                raise ValueError(f"{column} is a number: give a range such as {{min: 0.5}}")
            if known is not None and not pa.types.is_floating(known) and isinstance(cond, Range):
                raise ValueError(f"{column} is a string: give a list of values such as [web, text]")
        return when


def _rule(bucket: str, **when) -> BucketRule:
    return BucketRule(bucket=bucket, when={k: (v if isinstance(v, list) else Range(**v)) for k, v in when.items()})


# Thresholds were set by looking at the shared corpora: Common Crawl (dolma sample), linguist
# source files, a LaTeX logic textbook and the Python docs (see tests/test_bucket.py).
DEFAULT_RULES = [
    _rule("code", source=["code"]),
    _rule("reasoning", source=["academic"]),
    # Text dominated by code: Common Crawl pages stay below 0.05, source files sit around 0.5.
    _rule("code", bucket_code_density={"min": 0.5}),
    _rule("reasoning", bucket_latex={"min": 0.02}),
    _rule("reasoning", bucket_math_density={"min": 0.03}),
    # Enough words that a handful of markers is a pattern, not one "therefore" in a forum post.
    _rule("reasoning", bucket_reasoning_markers={"min": 0.01}, bucket_words={"min": 300}),
    # Plain English prose: readable, sentences neither fragments nor run-ons, few long words.
    _rule("easy", source=["web", "text"], lang=["en"], quality_score={"min": 0.5},
          bucket_words={"min": 30}, bucket_readability={"min": 60}, bucket_sentence_words={"min": 6, "max": 25},
          bucket_long_words={"max": 0.3}, bucket_numbers={"max": 0.1}),
]


class BucketConfig(Section):
    order: list[str] = Field(default_factory=lambda: ["easy", "general", "reasoning", "code"],
                             description="the buckets in curriculum order")
    rules: list[BucketRule] = Field(default_factory=lambda: list(DEFAULT_RULES),
                              description="tried in order; the first whose conditions all hold wins")
    default: str = Field("general", description="the bucket of documents no rule takes")

    @model_validator(mode="after")
    def _consistent(self) -> BucketConfig:
        if not self.order:
            raise ValueError("order: name at least one bucket")
        if len(set(self.order)) != len(self.order):
            raise ValueError(f"order: a bucket is listed twice in {self.order}")
        for name in self.order:
            check_bucket_name(name)
        if self.default not in self.order:
            raise ValueError(f"default: bucket {self.default!r} is not in order {self.order}")
        for i, rule in enumerate(self.rules):
            if rule.bucket not in self.order:
                hint = "" if "rules" in self.model_fields_set else " (these are the default rules: give your own `rules` with a new `order`)"
                raise ValueError(f"rules[{i}]: bucket {rule.bucket!r} is not in order {self.order}{hint}")
        return self


def _numeric(column: pa.ChunkedArray | pa.Array, name: str) -> np.ndarray:
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type) or pa.types.is_null(column.type)):
        raise ValueError(f"bucket rule: {name} is {column.type}, a range needs a numeric column")
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)


def _holds(column, name: str, cond: Condition) -> tuple[np.ndarray, np.ndarray]:
    """Where the condition holds, and where it was skipped (null value)."""
    if isinstance(cond, Range):
        values = _numeric(column, name)
        skipped = np.isnan(values)
        ok = np.ones(len(values), dtype=bool)
        with np.errstate(invalid="ignore"):
            if cond.min is not None:
                ok &= values >= cond.min
            if cond.max is not None:
                ok &= values <= cond.max
        return ok | skipped, skipped
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_null(column.type)):
        raise ValueError(f"bucket rule: {name} is {column.type}, a list of values needs a string column")
    column = pc.cast(column, pa.string())
    exact = [v for v in cond if not v.endswith("*")]
    hit = pc.is_in(column, value_set=pa.array(exact, pa.string()))
    for prefix in (v[:-1] for v in cond if v.endswith("*")):
        hit = pc.or_(hit, pc.starts_with(column, prefix))
    skipped = pc.is_null(column).to_numpy(zero_copy_only=False)
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False) | skipped, skipped


def _mix(bucket: pa.Array, table: pa.Table) -> dict[str, Any]:
    """documents and characters per bucket -> source -> language."""
    groups = pa.table({
        "bucket": bucket,
        "source": pc.fill_null(table.column("source"), UNKNOWN),
        "lang": pc.fill_null(table.column("lang"), UNKNOWN),
        "chars": pc.fill_null(pc.utf8_length(table.column("text")), 0),
    }).group_by(["bucket", "source", "lang"]).aggregate([("chars", "sum"), ("chars", "count")])
    mix: dict[str, Any] = {}
    for row in groups.to_pylist():  # one row per group, not per document
        by_lang = mix.setdefault(row["bucket"], {}).setdefault(row["source"], {})
        by_lang[row["lang"]] = {"documents": row["chars_count"], "chars": row["chars_sum"]}
    return mix


class BucketStage(Stage):
    name = "bucket"
    Config = BucketConfig
    adds = SIGNAL_COLUMNS + ("bucket",)

    def process(self, batch: pa.Table) -> Result:
        cfg = self.config
        batch = schema.conform(batch)
        for name, values in signals.measure(batch.column("text")).items():
            batch = schema.set_column(batch, PREFIX + name, pa.array(values, pa.float32()))
        n = batch.num_rows
        order = {name: i for i, name in enumerate(cfg.order)}
        choice = np.full(n, order[cfg.default], dtype=np.int32)
        undecided = np.ones(n, dtype=bool)
        taken: dict[str, int] = {}
        skipped: dict[str, int] = {}
        for i, rule in enumerate(cfg.rules):
            match = undecided.copy()
            for column, cond in rule.when.items():
                if column not in batch.column_names:
                    skipped[column] = skipped.get(column, 0) + int(match.sum())
                    continue
                ok, null = _holds(batch.column(column), column, cond)
                if null.any():
                    skipped[column] = skipped.get(column, 0) + int((match & null).sum())
                match &= ok
            choice[match] = order[rule.bucket]
            undecided &= ~match
            taken[f"{i + 1}:{rule.bucket}"] = int(match.sum())
        taken[f"default:{cfg.default}"] = int(undecided.sum())
        bucket = pc.take(pa.array(cfg.order, pa.string()), pa.array(choice))
        batch = schema.set_column(batch, "bucket", bucket)
        kept, removed = split(batch, pa.array(np.ones(n, dtype=bool)), None)
        counters = {"mix": _mix(bucket, batch), "rules": taken}
        if skipped:
            counters["skipped_conditions"] = skipped
        return Result(kept, removed, counters)

    def finish(self, ctx) -> dict[str, Any]:
        """The mix per bucket in curriculum order; `bucket_order` tells tokenize the order."""
        from curate import ledger

        mix = ledger.merge(ctx.stage_dir)["counters"].get("mix", {})
        total_docs = sum(c["documents"] for s in mix.values() for l in s.values() for c in l.values()) or 1
        total_chars = sum(c["chars"] for s in mix.values() for l in s.values() for c in l.values()) or 1
        buckets = []
        for name in self.config.order:
            cells = [c for l in mix.get(name, {}).values() for c in l.values()]
            docs, chars = sum(c["documents"] for c in cells), sum(c["chars"] for c in cells)
            buckets.append({"name": name, "documents": docs, "chars": chars,
                            "share_documents": round(docs / total_docs, 4), "share_chars": round(chars / total_chars, 4)})
        return {"bucket_order": list(self.config.order), "buckets": buckets}
