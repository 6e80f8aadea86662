"""dedup: exact and MinHash near-duplicate removal, one document kept per cluster.

Consumes: `id`, `text`, and `quality_score` when the quality stage ran before.
Adds:     `dup_cluster` (int64: the cluster's smallest document key; null for a document with no
          duplicate), `dup_size` (int64: the cluster's size before removal, 1 for a singleton) and
          `dup_of` (the kept document's id; null on the kept one), on kept and removed documents.
Drops:    every member of a cluster but one: `dedup:exact` when its normalised text equals the kept
          document's (xxh3-128 of lowercase text with punctuation and whitespace folded),
          `dedup:minhash` when it is a near duplicate (Jaccard of word 5-gram shingle sets at or
          above `threshold`, or linked to the kept one through such pairs).
Keeps:    per cluster, the highest `quality_score` (when present and not null), then the longest
          text, then the smallest id: deterministic, independent of order and sharding.

Steps (curate.stages.dedup.steps, each a Ray map over input parts or key groups, resumable per item):
    prepare   sign -> bucket -> attach -> compare -> join -> exact -> contract -> decide, writing
              _work/decisions/<part>.parquet: the documents in clusters with their verdicts.
              Candidates come from an LSH banding tuned below the threshold (high recall),
              exact copies collapsed to one document per band bucket and joined by a star;
              the signature estimate verifies the clear cases, and pairs within `margin` of the
              threshold get the exact Jaccard of their shingle sets (high precision) unless
              the clear cases already join them. The verified pairs are thus a spanning set of
              each cluster, not all of its pairs: cost grows with documents, not with pairs.
    process   each shard joins its batches with its part's decisions, loaded once per shard.
    finish    writes OUT/dedup/pairs/ (id_a, id_b, jaccard: the verified pairs) and step
              statistics for _stats.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from curate import schema, storage
from curate.stages.dedup import minhash, steps
from curate.config import Section
from curate.stage import Result, Stage, merge_counters, split

STEPS = ("sign", "bucket", "attach", "compare", "join", "exact", "contract", "decide")


class DedupConfig(Section):
    threshold: float = Field(0.8, gt=0, lt=1, description="Jaccard of shingle sets at or above which two documents are duplicates")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations")
    seed: int = Field(1, ge=0, description="seeds the permutations (datasketch's MinHash seed)")
    ngram: int = Field(5, ge=1, le=64, description="tokens per shingle")
    unit: Literal["word", "char"] = Field("word", description="shingle tokens: words, or characters (spaces included)")
    candidate_threshold: float | None = Field(
        None, gt=0, lt=1, description="the banding is tuned for this Jaccard (below `threshold`, for recall); null: threshold - 0.25")
    bands: int | None = Field(None, ge=1, description="LSH bands; null: chosen from candidate_threshold (with `rows`)")
    rows: int | None = Field(None, ge=1, description="signature rows per band; set both or neither")
    margin: float = Field(0.1, ge=0, le=1, description="pairs whose signature estimate is within this of the threshold get exact Jaccard")
    max_bucket: int = Field(64, ge=2, description="buckets up to this size give all their pairs, larger ones a star")
    partitions: int = Field(0, ge=0, description="key groups of the shuffles; 0: from the number of input parts")

    @model_validator(mode="after")
    def _banding(self) -> DedupConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm {self.num_perm}")
        return self

    def banding(self) -> tuple[int, int]:
        if self.bands is not None:
            return self.bands, self.rows
        target = self.candidate_threshold if self.candidate_threshold is not None else max(0.05, self.threshold - 0.25)
        return minhash.optimal_param(target, self.num_perm)

    def hasher(self) -> minhash.Hasher:
        bands, rows = self.banding()
        return minhash.Hasher(num_perm=self.num_perm, seed=self.seed, ngram=self.ngram, unit=self.unit,
                              bands=bands, rows=rows)


def make_job(config: DedupConfig, work_dir: Path, input_dir: Path, workers: int) -> steps.DedupJob:
    """The plan of a run, fixed in work_dir/plan.json on the first run so a resumed run (even
    with another --workers) uses the same groups."""
    parts = sorted(storage.location(input_dir).glob("part-*.parquet"))
    saved = work_dir / "plan.json"
    groups = config.partitions or max(1, min(len(parts), 2 * max(1, workers), 64))
    if saved.is_file():
        groups = json.loads(saved.read_text())["groups"]
    plan = steps.DedupJob(work=work_dir, parts=tuple((p.stem, p) for p in parts), groups=groups,
                      hasher=config.hasher(), threshold=config.threshold, margin=config.margin,
                      max_bucket=config.max_bucket)
    if not saved.is_file():
        storage.write_json(saved, {"groups": groups, "parts": [p.stem for p in parts],
                                  "bands": plan.hasher.bands, "rows": plan.hasher.rows})
    return plan


def run_steps(plan: steps.DedupJob, map_fn) -> dict[str, dict]:
    """Every global step in order; `map_fn(fn, items, desc)` runs one step's items."""
    items = {
        "sign": [(plan, i) for i in range(len(plan.parts))],
        "join": [(plan, 0)],
        "decide": [(plan, 0)],
    }
    report: dict[str, dict] = {}
    for name in STEPS:
        fn = getattr(steps, name)
        t0 = time.perf_counter()
        records = map_fn(fn, items.get(name, [(plan, g) for g in range(plan.groups)]), f"dedup:{name}")
        merged: dict[str, Any] = {}
        for r in records:
            merged = merge_counters(merged, {k: v for k, v in r.items() if k not in ("files", "skipped")})
        merged["task_seconds"] = round(merged.pop("seconds", 0.0), 3)
        merged["cpu_seconds"] = round(merged.pop("cpu_seconds", 0.0), 3)
        merged["wall_seconds"] = round(time.perf_counter() - t0, 3)
        report[name] = merged
    return report


class DedupStage(Stage):
    name = "dedup"
    Config = DedupConfig
    adds = ("dup_cluster", "dup_size", "dup_of")

    def __init__(self, config: DedupConfig, work_dir: Path | None = None):
        super().__init__(config, work_dir)
        self._decisions: pa.Table | None = None
        self._report: dict[str, dict] = {}

    # -- global steps ---------------------------------------------------------------------
    def prepare(self, ctx) -> None:
        plan = make_job(self.config, ctx.work_dir, ctx.input, ctx.executor.workers)
        self._report = run_steps(plan, ctx.map)
        storage.write_json(ctx.work_dir / "steps.json", self._report)

    def finish(self, ctx) -> dict[str, Any]:
        plan = make_job(self.config, ctx.work_dir, ctx.input, ctx.executor.workers)
        t0 = time.perf_counter()
        n_pairs = write_pairs(plan, ctx.stage_dir / "pairs")
        report = json.loads((ctx.work_dir / "steps.json").read_text()) if not self._report else self._report
        decide = report.get("decide", {})
        return {"dedup": {
            "bands": plan.hasher.bands, "rows": plan.hasher.rows, "groups": plan.groups,
            "candidate_pairs": report.get("attach", {}).get("candidates", 0),
            "pairs_verified": n_pairs,
            "pairs_by_signature": report.get("compare", {}).get("sure", 0),
            "pairs_near_threshold": report.get("exact", {}).get("ambiguous", 0),
            "pairs_checked_exactly": report.get("exact", {}).get("checked", 0),
            "clusters": decide.get("clusters", 0), "docs_in_clusters": decide.get("docs_in_clusters", 0),
            "removed_exact": decide.get("exact", 0), "removed_near": decide.get("near", 0),
            "cluster_sizes": decide.get("cluster_sizes", {}),
            # wall time of each step in this run; CPU-side task time summed over its items, as
            # first computed (a resumed run skips done items but keeps their recorded time)
            "step_seconds": {k: v["wall_seconds"] for k, v in report.items()} | {
                "pairs": round(time.perf_counter() - t0, 3)},
            "step_task_seconds": {k: v["task_seconds"] for k, v in report.items()},
            "step_cpu_seconds": {k: v.get("cpu_seconds", 0.0) for k, v in report.items()},
        }}

    # -- per shard -------------------------------------------------------------------------
    def start_shard(self, name: str) -> None:
        self._decisions = storage.read_table(self._decisions_dir() / f"{name}.parquet")

    def _decisions_dir(self) -> Path:
        if self.work_dir is None:
            raise RuntimeError("dedup: no work directory (prepare() writes the decisions there first)")
        return self.work_dir / "decisions"

    def process(self, batch: pa.Table) -> Result:
        if self._decisions is None:  # no shard announced (a direct call): every part's decisions
            paths = sorted(self._decisions_dir().glob("*.parquet"))
            self._decisions = steps.read_all(paths, steps.DECISION_SCHEMA) if paths else steps.DECISION_SCHEMA.empty_table()
        dec = self._decisions
        idx = pc.index_in(batch.column("id"), value_set=dec.column("id"))
        out = batch
        for name in ("dup_cluster", "dup_of"):
            out = schema.set_column(out, name, pc.take(dec.column(name), idx), schema.STAGE_COLUMNS[name])
        size = pc.fill_null(pc.take(dec.column("dup_size"), idx), 1)
        out = schema.set_column(out, "dup_size", size, pa.int64())
        reason = pc.take(dec.column("reason"), idx)
        kept, removed = split(out, pc.is_null(reason), reason)
        return Result(kept, removed)


def write_pairs(plan: steps.DedupJob, pairs_dir: Path) -> int:
    """OUT/dedup/pairs/part-NNNNN.parquet (id_a, id_b, jaccard) from the verified pairs; parts
    already there are kept (they are written atomically)."""
    pairs_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    for i, path in enumerate(steps.verified_files(plan)):
        out = pairs_dir / f"part-{i:05d}.parquet"
        if out.is_file():
            total += storage.read_metadata(out).num_rows
            continue
        t = storage.read_table(path, columns=["id_a", "id_b", "jaccard"])
        storage.write_parquet(out, t)
        total += t.num_rows
    return total
