"""The numbers of a report, computed once and rendered twice (terminal and HTML).

Counts come from the ledgers (`_stats.json`); the Parquet parts are read only for what a ledger
does not hold (a removal's source and language, cluster sizes, bucket and language columns), and
a breakdown that does not add up to its ledger is reported as a warning, not hidden.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import schema
from curate.report import rules
from curate.report.outdir import KEPT, REMOVED, RunDir, StageOutput

NONE_LABEL = "(none)"  # a null source/language/bucket


@dataclass
class FunnelRow:
    stage: str
    complete: bool
    shards_done: int
    docs_in: int | None = None
    docs_out: int | None = None
    removed: int | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    wall_seconds: float | None = None


@dataclass
class ReasonRow:
    reason: str
    docs: int  # from the ledger
    share: float  # of the stage's docs_in
    by_source: dict[str, int]
    by_lang: dict[str, int]


@dataclass
class StageRemovals:
    stage: str
    docs_in: int
    rows: list[ReasonRow]

    def by_filter(self) -> dict[str, int]:
        """`stage:filter` -> documents, in order of size."""
        out: dict[str, int] = defaultdict(int)
        for row in self.rows:
            out[filter_of(row.reason)] += row.docs
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class DedupSummary:
    docs_in: int
    removed: int  # documents removed by dedup
    clusters: int  # clusters of two or more documents
    docs_in_clusters: int
    size_counts: dict[int, int]  # cluster size -> number of clusters
    largest: list[tuple[int, int]]  # (dup_cluster, dup_size), largest first
    ledger: dict = field(default_factory=dict)  # what dedup's _stats.json adds (pairs, steps)


@dataclass
class MixRow:
    bucket: str
    docs: int
    share: float  # of documents
    chars: int | None = None
    share_chars: float | None = None
    tokens: int | None = None  # from shards/manifest.json
    by_source: dict[str, int] = field(default_factory=dict)
    by_lang: dict[str, int] = field(default_factory=dict)


@dataclass
class SignalPlot:
    stage: str
    signal: str
    hist: dict  # the ledger's histogram: edges, kept, removed, quantiles
    rules: list[rules.BoundRule]  # removal thresholds on this signal
    bounds: list[tuple[float, str]] = field(default_factory=list)  # bucket rules' bounds
    # Per bin, the removed documents whose reason is one of `rules` (the ledger's `removed`
    # counts every reason); None when no rule of the stage is over this signal.
    removed_own: list[int] | None = None


@dataclass
class Summary:
    run: RunDir
    funnel: list[FunnelRow]
    removals: list[StageRemovals]
    dedup: DedupSummary | None
    languages: dict[str, tuple[int, int]] | None  # at langid: lang -> (kept, removed)
    mix: list[MixRow] | None
    signals: list[SignalPlot]
    warnings: list[str]
    privacy: "PrivacySummary | None" = None


@dataclass
class PrivacySummary:
    """What quality's pii and decontam filters put in its ledger (counters.pii, counters.decontam)."""

    pii: dict[str, int]  # type -> items replaced in kept documents; "docs": documents with any
    contaminated: dict[str, int]  # evaluation set -> documents that matched it
    removed: dict[str, int]  # evaluation set -> documents removed as quality:decontam:<set>
    cut_docs: int | None = None  # cut mode: kept documents with spans cut, and the words cut
    cut_words: int | None = None


def privacy(st: StageOutput) -> PrivacySummary | None:
    counters = st.stats.get("counters") or {}
    pii, decontam = counters.get("pii") or {}, counters.get("decontam") or {}
    if not pii and not decontam:
        return None
    prefix = "quality:decontam:"
    removed = {r[len(prefix):]: n for r, n in (st.stats.get("removed") or {}).items() if r.startswith(prefix)}
    return PrivacySummary(dict(pii), dict(decontam.get("docs") or {}), removed,
                          _int(decontam.get("cut_docs")), _int(decontam.get("cut_words")))


def filter_of(reason: str) -> str:
    return ":".join(reason.split(":")[:2])


def _label(value) -> str:
    return NONE_LABEL if value is None or value == "" else str(value)


def _int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# ---------------------------------------------------------------- funnel


def stage_tokens(stats: dict) -> tuple[int | None, int | None]:
    """(tokens in, tokens out) where a ledger records them (the tokenize stage)."""
    counters = stats.get("counters") or {}
    found_in = found_out = None
    for source in (stats, counters):
        found_in = found_in if found_in is not None else _int(source.get("tokens_in"))
        for key in ("tokens_out", "tokens"):
            found_out = found_out if found_out is not None else _int(source.get(key))
    return found_in, found_out


def manifest_tokens(manifest: dict | None) -> tuple[int | None, dict[str, int]]:
    """(total tokens, tokens per bucket) from shards/manifest.json (`buckets`: name, tokens)."""
    if not manifest or not isinstance(manifest.get("buckets"), list):
        return None, {}
    per_bucket = {str(b["name"]): int(b["tokens"]) for b in manifest["buckets"]
                  if isinstance(b, dict) and "name" in b and _int(b.get("tokens")) is not None}
    return (sum(per_bucket.values()) if per_bucket else None), per_bucket


def _column_sum(st: StageOutput, column: str) -> int | None:
    table = st.read(KEPT, [column])
    if column not in table.column_names:
        return None
    return int(pc.sum(table.column(column)).as_py() or 0)


def funnel(run: RunDir) -> list[FunnelRow]:
    rows = []
    manifest_total, _ = manifest_tokens(run.manifest)
    for st in run.stages:
        if not st.complete:
            rows.append(FunnelRow(st.name, False, st.shards_done))
            continue
        s = st.stats
        t_in, t_out = stage_tokens(s)
        if st.name == "tokenize" and t_out is None:
            t_out = manifest_total if manifest_total is not None else _column_sum(st, "token_count")
        rows.append(FunnelRow(
            st.name, True, s.get("shards", st.shards_done), s["docs_in"], s["docs_out"],
            sum(s["removed"].values()), s.get("bytes_in"), s.get("bytes_out"), t_in, t_out,
            s.get("wall_seconds"),
        ))
    return rows


# ---------------------------------------------------------------- removals


def _counts_by(table: pa.Table, key: str) -> dict[tuple[str, str], int]:
    """(reason, label of `key`) -> rows."""
    if table.num_rows == 0:
        return {}
    if key not in table.column_names:
        table = table.append_column(key, pa.nulls(table.num_rows, pa.string()))
    grouped = table.select([schema.REASON, key]).group_by([schema.REASON, key], use_threads=False)
    out = grouped.aggregate([([], "count_all")])
    reasons = out.column(schema.REASON).to_pylist()
    keys = out.column(key).to_pylist()
    counts = out.column("count_all").to_pylist()
    return {(str(r), _label(k)): int(c) for r, k, c in zip(reasons, keys, counts)}


def _nest(counts: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    nested: dict[str, dict[str, int]] = defaultdict(dict)
    for (reason, label), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        nested[reason][label] = n
    return nested


def removals(st: StageOutput, warnings: list[str]) -> StageRemovals:
    table = st.read(REMOVED, [schema.REASON, "source", "lang"])
    by_source = _nest(_counts_by(table, "source"))
    by_lang = _nest(_counts_by(table, "lang"))
    docs_in = st.stats["docs_in"]
    rows = []
    for reason, n in st.stats["removed"].items():
        found = sum(by_source.get(reason, {}).values())
        if found != n:
            warnings.append(f"{st.name}: ledger counts {n} removals for {reason} but removed/ holds {found}")
        rows.append(ReasonRow(reason, n, n / docs_in if docs_in else 0.0,
                              by_source.get(reason, {}), by_lang.get(reason, {})))
    for reason in sorted(set(by_source) - set(st.stats["removed"])):
        warnings.append(f"{st.name}: removed/ holds {sum(by_source[reason].values())} documents with reason "
                        f"{reason}, which the ledger does not count")
    return StageRemovals(st.name, docs_in, rows)


# ---------------------------------------------------------------- dedup


def dedup_summary(st: StageOutput, warnings: list[str], largest: int = 10) -> DedupSummary | None:
    table = st.read_all(["dup_cluster", "dup_size"])
    if "dup_cluster" not in table.column_names or "dup_size" not in table.column_names:
        return None
    cluster = table.column("dup_cluster").to_numpy(zero_copy_only=False)
    size = table.column("dup_size").to_numpy(zero_copy_only=False)
    valid = pc.and_(pc.is_valid(table.column("dup_cluster")), pc.is_valid(table.column("dup_size")))
    valid = valid.to_numpy(zero_copy_only=False)
    cluster, size = cluster[valid].astype(np.int64), size[valid].astype(np.int64)
    multi = size >= 2
    ids, first = np.unique(cluster[multi], return_index=True)
    sizes = size[multi][first]
    values, counts = np.unique(sizes, return_counts=True)
    order = np.lexsort((ids, -sizes))[:largest]
    removed = sum(n for r, n in st.stats["removed"].items() if r.startswith("dedup:"))
    size_counts = {int(v): int(c) for v, c in zip(values, counts)}
    extra = st.stats.get("dedup") if isinstance(st.stats.get("dedup"), dict) else {}
    recorded = extra.get("cluster_sizes")
    if isinstance(recorded, dict) and {int(k): int(v) for k, v in recorded.items()} != size_counts:
        warnings.append(f"dedup: the ledger's cluster sizes {recorded} differ from the dup_cluster/dup_size "
                        f"columns' {size_counts}")
    return DedupSummary(
        docs_in=st.stats["docs_in"], removed=removed, clusters=int(ids.size),
        docs_in_clusters=int(sizes.sum()), size_counts=size_counts,
        largest=[(int(ids[i]), int(sizes[i])) for i in order],
        ledger={k: v for k, v in extra.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
    )


def size_bins(size_counts: dict[int, int], exact_up_to: int = 12) -> list[tuple[str, int, int]]:
    """(size label, clusters, documents): each size while there are few, else power-of-two bins."""
    if len(size_counts) <= exact_up_to:
        return [(str(size), n, n * size) for size, n in sorted(size_counts.items())]
    bins: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for size, n in size_counts.items():
        b = int(np.floor(np.log2(size)))
        bins[b][0] += n
        bins[b][1] += n * size
    out = []
    for b in sorted(bins):
        lo, hi = 2 ** b, 2 ** (b + 1) - 1
        out.append((str(lo) if lo == hi else f"{lo}-{hi}", bins[b][0], bins[b][1]))
    return out


# ---------------------------------------------------------------- languages and mix


def languages(st: StageOutput) -> dict[str, tuple[int, int]]:
    table = st.read_all(["lang"])
    if "lang" not in table.column_names:
        return {}
    table = table.append_column("is_kept", pc.is_null(table.column(schema.REASON)))
    out = table.group_by(["lang", "is_kept"], use_threads=False).aggregate([([], "count_all")])
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for lang, kept, n in zip(out.column("lang").to_pylist(), out.column("is_kept").to_pylist(),
                             out.column("count_all").to_pylist()):
        acc[_label(lang)][0 if kept else 1] += int(n)
    return {k: (v[0], v[1]) for k, v in sorted(acc.items(), key=lambda kv: (-sum(kv[1]), kv[0]))}


def mix(run: RunDir, st: StageOutput, warnings: list[str]) -> list[MixRow]:
    """Documents, characters and tokens per bucket, in curriculum order.

    The bucket ledger's `buckets` (name, documents, chars, shares) and `counters.mix` (bucket ->
    source -> language -> documents, chars) give the numbers; the `bucket` column checks them.
    """
    table = st.read(KEPT, ["bucket"])
    counted: dict[str, int] = {}
    if "bucket" in table.column_names and table.num_rows:
        for item in table.column("bucket").value_counts().to_pylist():
            counted[_label(item["values"])] = int(item["counts"])
    _, tokens = manifest_tokens(run.manifest)
    cells = (st.stats.get("counters") or {}).get("mix") or {}
    listed = st.stats.get("buckets")
    if isinstance(listed, list) and listed:
        entries = [(str(b["name"]), int(b["documents"]), b.get("chars")) for b in listed]
    else:  # a ledger without the per-bucket list: count the column
        entries = [(name, n, None) for name, n in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))]
    total = sum(n for _, n, _ in entries)
    total_chars = sum(c or 0 for _, _, c in entries)
    rows = []
    for name, docs, chars in entries:
        if counted.get(name, 0) != docs:
            warnings.append(f"bucket: the ledger counts {docs} documents in {name} but the bucket column "
                            f"holds {counted.get(name, 0)}")
        by_source: dict[str, int] = defaultdict(int)
        by_lang: dict[str, int] = defaultdict(int)
        for source, langs in (cells.get(name) or {}).items():
            for lang, cell in langs.items():
                by_source[source] += int(cell.get("documents", 0))
                by_lang[lang] += int(cell.get("documents", 0))
        rows.append(MixRow(name, docs, docs / total if total else 0.0, chars,
                           chars / total_chars if chars is not None and total_chars else None, tokens.get(name),
                           dict(sorted(by_source.items(), key=lambda kv: -kv[1])),
                           dict(sorted(by_lang.items(), key=lambda kv: -kv[1]))))
    return rows


# ---------------------------------------------------------------- signals


def signals(run: RunDir) -> list[SignalPlot]:
    names = [st.name for st in run.complete_stages]
    by_signal = rules.thresholds_by_signal(run.config, names)
    bounds = rules.bucket_bounds(run.config) if "bucket" in names else {}
    out = []
    for st in run.complete_stages:
        plots = []
        for signal, hist in (st.stats.get("signals") or {}).items():
            if hist.get("edges"):
                applied = [b for b in by_signal.get(signal, []) if b.stage == st.name]
                plots.append(SignalPlot(st.name, signal, hist, applied, bounds.get(signal, [])))
        _own_removals(st, [p for p in plots if p.rules])
        out += plots
    return out


def _own_removals(st: StageOutput, plots: list[SignalPlot]) -> None:
    """Fill `removed_own`: each signal's removed documents binned as the ledger bins them, counting
    only those its own rules removed (a FineWeb spike at 1.0 removed by Gopher is not FineWeb's)."""
    if not plots:
        return
    table = st.read(REMOVED, [schema.REASON] + sorted({p.signal for p in plots}))
    for p in plots:
        edges = np.asarray(p.hist["edges"], dtype=np.float64)
        if p.signal not in table.column_names or schema.REASON not in table.column_names:
            p.removed_own = [0] * (edges.size - 1)
            continue
        own = np.zeros(table.num_rows, dtype=bool)
        for bound in p.rules:
            own |= bound.matches(table.column(schema.REASON))
        values = table.column(p.signal).to_numpy(zero_copy_only=False).astype(np.float64)[own]
        values = np.clip(values[np.isfinite(values)], edges[0], edges[-1])  # the ledger rounds its edges
        p.removed_own = np.histogram(values, edges)[0].tolist()


def summarize(run: RunDir) -> Summary:
    warnings: list[str] = []
    done = run.complete_stages
    dedup = run.get("dedup")
    langid = run.get("langid")
    bucket = run.get("bucket")
    quality = run.get("quality")
    for st in run.stages:
        if not st.complete:
            warnings.append(f"{st.name} is incomplete ({st.shards_done} shards done, no _stats.json): "
                            "run the same command again to finish it")
    for before, after in zip(done, done[1:]):  # a stage read its predecessor: the counts must chain
        if after.input is not None and after.input.resolve() == before.path.resolve() \
                and after.stats["docs_in"] != before.stats["docs_out"]:
            warnings.append(f"{after.name} read {after.stats['docs_in']:,} documents but {before.name} kept "
                            f"{before.stats['docs_out']:,}: was {before.name} re-run after {after.name}?")
    return Summary(
        run=run,
        funnel=funnel(run),
        removals=[removals(st, warnings) for st in done],
        dedup=dedup_summary(dedup, warnings) if dedup and dedup.complete else None,
        languages=languages(langid) if langid and langid.complete else None,
        mix=mix(run, bucket, warnings) if bucket and bucket.complete else None,
        signals=signals(run),
        warnings=warnings,
        privacy=privacy(quality) if quality and quality.complete else None,
    )
