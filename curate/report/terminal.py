"""The report in a terminal: rich tables of the summary and of what-ifs."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from curate.report.summary import Summary, size_bins
from curate.report.whatif import StageWhatIf, headline

TOP = 4  # sources/languages shown per reason


def num(value) -> str:
    return "—" if value is None else f"{value:,}"


def size(value) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return str(value)


def pct(part: int, whole: int | None) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def top(counts: dict[str, int], n: int = TOP) -> str:
    items = list(counts.items())
    shown = ", ".join(f"{k} {v:,}" for k, v in items[:n])
    rest = sum(v for _, v in items[n:])
    return shown + (f", other {rest:,}" if rest else "")


def _table(title: str, *columns: str, numeric: tuple[int, ...] = ()) -> Table:
    t = Table(title=title, title_justify="left", title_style="bold")
    for i, c in enumerate(columns):
        t.add_column(c, justify="right" if i in numeric else "left", overflow="fold")
    return t


def render(summary: Summary, console: Console) -> None:
    run = summary.run
    meta = run.run
    console.print(f"[bold]curate report[/bold] {run.out}")
    if meta:
        console.print(f"config {meta.get('config_source', '?')} (hash {meta.get('config_hash', '?')}), "
                      f"input {meta.get('input') or '?'}, started {meta.get('started') or '?'}, "
                      f"ended {meta.get('ended') or 'not yet'}")

    t = _table("Funnel", "stage", "docs in", "docs out", "removed", "kept", "bytes in", "bytes out",
               "tokens in", "tokens out", "wall s", numeric=tuple(range(1, 10)))
    for r in summary.funnel:
        if not r.complete:
            t.add_row(r.stage, f"incomplete ({r.shards_done} shards done)", *[""] * 8)
            continue
        t.add_row(r.stage, num(r.docs_in), num(r.docs_out), num(r.removed), pct(r.docs_out, r.docs_in),
                  size(r.bytes_in), size(r.bytes_out), num(r.tokens_in), num(r.tokens_out),
                  "—" if r.wall_seconds is None else f"{r.wall_seconds:,.1f}")
    console.print(t)

    for rem in summary.removals:
        if not rem.rows:
            continue
        t = _table(f"Removed by {rem.stage} (of {rem.docs_in:,} documents in)", "reason", "docs",
                   "share", "by source", "by language", numeric=(1, 2))
        for row in rem.rows:
            t.add_row(row.reason, num(row.docs), pct(row.docs, rem.docs_in), top(row.by_source), top(row.by_lang))
        console.print(t)

    if summary.dedup is not None:
        d = summary.dedup
        console.print(f"[bold]Duplicate clusters[/bold]: {d.clusters:,} clusters of 2+ documents hold "
                      f"{d.docs_in_clusters:,} of {d.docs_in:,} documents; dedup removed {d.removed:,} "
                      f"({pct(d.removed, d.docs_in)})")
        if d.size_counts:
            t = _table("Cluster sizes", "size", "clusters", "documents", numeric=(1, 2))
            for label, clusters, docs in size_bins(d.size_counts):
                t.add_row(label, num(clusters), num(docs))
            console.print(t)
            console.print("largest: " + ", ".join(f"{s:,} (cluster {c})" for c, s in d.largest[:5]))
        if d.ledger:
            console.print("dedup ledger: " + ", ".join(f"{k} {v:,}" for k, v in d.ledger.items()))

    if summary.languages:
        t = _table("Languages at langid", "lang", "kept", "removed", "share", numeric=(1, 2, 3))
        total = sum(k + r for k, r in summary.languages.values())
        items = list(summary.languages.items())
        for lang, (k, r) in items[:15]:
            t.add_row(lang, num(k), num(r), pct(k + r, total))
        if len(items) > 15:
            k = sum(v[0] for _, v in items[15:])
            r = sum(v[1] for _, v in items[15:])
            t.add_row(f"{len(items) - 15} others", num(k), num(r), pct(k + r, total))
        console.print(t)

    if summary.mix:
        t = _table("Curriculum mix (buckets in curriculum order)", "bucket", "docs", "share", "chars",
                   "share of chars", "tokens", "by source", "by language", numeric=(1, 2, 3, 4, 5))
        for m in summary.mix:
            t.add_row(m.bucket, num(m.docs), share(m.share), num(m.chars), share(m.share_chars), num(m.tokens),
                      top(m.by_source), top(m.by_lang))
        console.print(t)

    if summary.privacy:
        p = summary.privacy
        if p.pii:
            console.print("[bold]PII replaced[/bold] in kept documents: " + privacy_line(p.pii))
        if p.contaminated:
            t = _table("Benchmark contamination (quality decontam)", "evaluation set", "docs matched",
                       "removed", numeric=(1, 2))
            for name, docs in p.contaminated.items():
                t.add_row(name, num(docs), num(p.removed.get(name, 0)))
            console.print(t)
        if p.cut_docs is not None:
            console.print(f"decontam cut {num(p.cut_words)} words from {num(p.cut_docs)} kept documents")

    if summary.signals:
        t = _table("Signals", "stage", "signal", "p5", "median", "p95", "threshold", numeric=(2, 3, 4))
        for s in summary.signals:
            q = s.hist.get("quantiles", {})
            t.add_row(s.stage, s.signal, _q(q, "0.05"), _q(q, "0.5"), _q(q, "0.95"),
                      "; ".join([f"{b.rule.name}: {b.describe()}" for b in s.rules]
                                + [f"bucket {label}" for _, label in s.bounds]))
        console.print(t)

    for w in summary.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


def privacy_line(pii: dict[str, int]) -> str:
    items = ", ".join(f"{kind} {n:,}" for kind, n in pii.items() if kind != "docs")
    return f"{items} ({pii.get('docs', 0):,} documents)"


def _q(quantiles: dict, key: str) -> str:
    v = quantiles.get(key)
    return "—" if v is None else f"{v:.4g}"


def render_what_if(results: list[StageWhatIf], console: Console) -> None:
    for w in results:
        changed, was = headline(w)
        tag = " [yellow](approximate)[/yellow]" if w.approximate else ""
        console.print(f"[bold]What if {changed}[/bold] (run: {was}){tag}")
        console.print(f"{w.stage}: {w.docs_in:,} documents in; removed {w.actual:,} in the run, "
                      f"{w.what_if:,} with the change: {w.newly_removed:,} more removed, "
                      f"{w.let_through:,} let through")
        t = _table("by reason", "reason", "run", "what-if", "change", numeric=(1, 2, 3))
        for reason, (a, b) in w.by_reason.items():
            t.add_row(reason, num(a), num(b), f"{b - a:+,}")
        console.print(t)
        t = _table("by source and language", "source", "lang", "docs in", "run removed", "what-if removed",
                   "more removed", "let through", numeric=(2, 3, 4, 5, 6))
        for g in w.groups[:30]:
            t.add_row(g.source, g.lang, num(g.docs_in), num(g.actual), num(g.what_if),
                      num(g.newly_removed), num(g.let_through))
        if len(w.groups) > 30:
            t.add_row(f"{len(w.groups) - 30} more groups", "", "", "", "", "", "")
        console.print(t)
        for note in w.notes:
            console.print(f"[yellow]note:[/yellow] {note}")
