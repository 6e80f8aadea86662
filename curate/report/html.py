"""report.html: one self-contained file that opens offline.

No script, stylesheet, font or image is fetched: the style is inline, the figures are inline SVG,
and every piece of document text is escaped (a sampled web page's markup stays text).
"""

from __future__ import annotations

import html
import math

import pyarrow as pa

from curate.report import plots, samples
from curate.report.summary import Summary, size_bins
from curate.report.terminal import num, pct, privacy_line, share, size
from curate.report.whatif import StageWhatIf, headline

SAMPLES = 3  # documents shown per removal reason
CHARS = 600  # characters of each sample's text
BREAKDOWN = 6  # sources/languages listed per reason

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;margin-top:2em} h3{margin-bottom:.3em}
.meta{color:#555} nav a{margin-right:1em}
table{border-collapse:collapse;margin:.5em 0} th,td{padding:3px 9px;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:8px} .grid figure{margin:0;border:1px solid #eee;width:410px}
figure svg{max-width:100%;height:auto}
details{margin:.4em 0} summary{cursor:pointer;font-weight:600}
.doc{border:1px solid #ddd;border-radius:4px;padding:.5em;margin:.5em 0;background:#fafafa}
.doc pre{white-space:pre-wrap;word-break:break-word;margin:.4em 0 0;font-size:12px;max-height:18em;overflow:auto}
.doc .facts{color:#555;font-size:12px}
.swatch{display:inline-block;width:.9em;height:.9em;margin:0 .25em 0 .4em;vertical-align:-.1em} .warn{color:#9a5b00} .small{font-size:12px;color:#555}
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def table(header: list[str], rows: list[list], numeric: set[int] = frozenset(), attrs: str = "",
          row_attrs: list[str] | None = None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        ra = f" {row_attrs[i]}" if row_attrs else ""
        cells = "".join(f'<td class="n">{esc(c)}</td>' if j in numeric else f"<td>{esc(c)}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr{ra}>{cells}</tr>")
    return f"<table {attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(svg: str, caption: str = "") -> str:
    cap = f"<figcaption class='small'>{esc(caption)}</figcaption>" if caption else ""
    return f"<figure>{svg}{cap}</figure>"


def breakdown(counts: dict[str, int]) -> str:
    items = list(counts.items())
    text = ", ".join(f"{k} {v:,}" for k, v in items[:BREAKDOWN])
    rest = sum(v for _, v in items[BREAKDOWN:])
    return text + (f", other {rest:,}" if rest else "")


def _funnel(s: Summary) -> str:
    rows, attrs = [], []
    for r in s.funnel:
        attrs.append(f'data-stage="{esc(r.stage)}"')
        if not r.complete:
            rows.append([r.stage, f"incomplete ({r.shards_done} shards done)"] + [""] * 8)
            continue
        rows.append([r.stage, num(r.docs_in), num(r.docs_out), num(r.removed), pct(r.docs_out, r.docs_in),
                     size(r.bytes_in), size(r.bytes_out), num(r.tokens_in), num(r.tokens_out),
                     "—" if r.wall_seconds is None else f"{r.wall_seconds:,.1f}"])
    out = table(["stage", "docs in", "docs out", "removed", "kept", "bytes in", "bytes out", "tokens in",
                 "tokens out", "wall s"], rows, set(range(1, 10)), 'id="funnel-table"', attrs)
    if any(r.complete for r in s.funnel):
        out += figure(plots.funnel(s.funnel), "documents kept and removed per stage")
    return out


def _removals(s: Summary) -> str:
    parts = []
    for rem in s.removals:
        parts.append(f"<h3>{esc(rem.stage)}</h3>")
        if not rem.rows:
            parts.append(f"<p>{esc(rem.stage)} removed nothing ({rem.docs_in:,} documents in).</p>")
            continue
        rows = [[r.reason, num(r.docs), pct(r.docs, rem.docs_in), breakdown(r.by_source), breakdown(r.by_lang)]
                for r in rem.rows]
        attrs = [f'data-reason="{esc(r.reason)}"' for r in rem.rows]
        parts.append(table(["reason", "docs", f"share of {rem.docs_in:,} in", "by source", "by language"],
                           rows, {1, 2}, f'class="removals" data-stage="{esc(rem.stage)}"', attrs))
        parts.append(figure(plots.hbars(rem.by_filter(), "documents removed"), f"{rem.stage}: removals per filter"))
    return "".join(parts) or "<p>No stage has finished.</p>"


def _signals(s: Summary) -> str:
    if not s.signals:
        return "<p>No stage that ran stores signals (langid, quality and bucket do).</p>"
    figs = []
    for p in s.signals:
        lines = "; ".join([f"{b.reason} if {b.describe()}" if b.threshold is not None else f"{b.reason}: no threshold"
                           for b in p.rules] + [f"bucket {label}" for _, label in p.bounds]) or "no threshold"
        figs.append(figure(plots.signal(p), f"{p.hist.get('count', 0):,} measured, "
                                            f"{p.hist.get('nulls', 0):,} null. {lines}"))
    key = "".join(f"<span class='swatch' style='background:{color}'></span>{label} "
                  for color, label in ((plots.KEPT_COLOR, "kept"), (plots.REMOVED_COLOR, "removed by a rule on this signal"),
                                       (plots.OTHER_COLOR, "removed for another reason")))
    return (f"<p class='small'>The stage ledgers' histograms, stacked: {key}. Dashed lines mark the removal "
            "thresholds of the run's config, dotted lines the bounds of the bucket rules; counts are on a log "
            "scale where one bin dwarfs the rest.</p>"
            "<div class='grid'>" + "".join(figs) + "</div>")


def _languages(s: Summary) -> str:
    if not s.languages:
        return "<p>Language ID has not run.</p>"
    total = sum(k + r for k, r in s.languages.values())
    rows = [[lang, num(k), num(r), pct(k + r, total)] for lang, (k, r) in s.languages.items()]
    return (figure(plots.stacked(s.languages, "documents at langid"), "the 25 most frequent languages")
            + "<details><summary>all languages</summary>"
            + table(["lang", "kept", "removed", "share"], rows, {1, 2, 3}, 'id="languages-table"')
            + "</details>")


def _dedup(s: Summary) -> str:
    d = s.dedup
    if d is None:
        return "<p>Dedup has not run.</p>"
    text = (f"<p>{d.clusters:,} clusters of two or more documents hold {d.docs_in_clusters:,} of "
            f"{d.docs_in:,} documents; dedup removed {d.removed:,} ({pct(d.removed, d.docs_in)}).</p>")
    if not d.size_counts:
        return text
    if d.ledger:
        text += "<p class='small'>dedup ledger: " + esc(", ".join(f"{k} {v:,}" for k, v in d.ledger.items())) + "</p>"
    rows = [[label, num(c), num(n)] for label, c, n in size_bins(d.size_counts)]
    largest = ", ".join(f"{sz:,} (cluster {c})" for c, sz in d.largest)
    return (text + figure(plots.cluster_sizes(d.size_counts), "duplicate clusters per size")
            + table(["size", "clusters", "documents"], rows, {1, 2}, 'id="cluster-table"')
            + f"<p class='small'>Largest: {esc(largest)}. See them with "
              f"<code>curate inspect OUT --stage dedup</code>.</p>")


def _mix(s: Summary) -> str:
    if not s.mix:
        return "<p>Bucket has not run.</p>"
    shares = {"documents": [m.share for m in s.mix]}
    if all(m.share_chars is not None for m in s.mix):
        shares["characters"] = [m.share_chars for m in s.mix]
    tok_total = sum(m.tokens or 0 for m in s.mix)
    if tok_total:
        shares["tokens"] = [(m.tokens or 0) / tok_total for m in s.mix]
    rows = [[m.bucket, num(m.docs), share(m.share), num(m.chars), share(m.share_chars), num(m.tokens),
             breakdown(m.by_source), breakdown(m.by_lang)] for m in s.mix]
    return (figure(plots.mix([m.bucket for m in s.mix], shares), "the buckets in curriculum order")
            + table(["bucket", "docs", "share", "chars", "share of chars", "tokens", "by source", "by language"],
                    rows, {1, 2, 3, 4, 5}, 'id="mix-table"'))


def _privacy(s: Summary) -> str:
    p = s.privacy
    parts = [f"<p>PII replaced in kept documents: {esc(privacy_line(p.pii))}.</p>"] if p.pii else []
    if p.contaminated:
        rows = [[name, num(docs), num(p.removed.get(name, 0))] for name, docs in p.contaminated.items()]
        parts.append(table(["evaluation set", "docs matched", "removed"], rows, {1, 2}, 'id="decontam-table"'))
    if p.cut_docs is not None:
        parts.append(f"<p>Decontamination cut {num(p.cut_words)} words from {num(p.cut_docs)} kept documents.</p>")
    return "".join(parts)


def _what_if(results: list[StageWhatIf]) -> str:
    parts = []
    for w in results:
        changed, was = headline(w, " = ")
        parts.append(f"<h3>What if {esc(changed)} (run: {esc(was)}){' — approximate' if w.approximate else ''}</h3>")
        parts.append(f"<p>{esc(w.stage)}: {w.docs_in:,} documents in; removed {w.actual:,} in the run, "
                     f"{w.what_if:,} with the change: {w.newly_removed:,} more removed, {w.let_through:,} let "
                     "through.</p>")
        parts.append(table(["reason", "run", "what-if", "change"],
                           [[r, num(a), num(b), f"{b - a:+,}"] for r, (a, b) in w.by_reason.items()], {1, 2, 3}))
        parts.append(table(["source", "lang", "docs in", "run removed", "what-if removed", "more removed",
                            "let through"],
                           [[g.source, g.lang, num(g.docs_in), num(g.actual), num(g.what_if), num(g.newly_removed),
                             num(g.let_through)] for g in w.groups], {2, 3, 4, 5, 6}))
        parts.extend(f"<p class='warn'>{esc(n)}</p>" for n in w.notes)
    return "".join(parts)


def _doc(row: dict, signal_cols: list[str]) -> str:
    facts = " · ".join(f"{k} {esc(row[k])}" for k in ("id", "origin", "source", "lang", "url", "bucket")
                       if row.get(k) is not None)
    sig = ", ".join(f"{c} {row[c]:.4g}" for c in signal_cols
                    if isinstance(row.get(c), float) and math.isfinite(row[c]))
    text = row.get("text") or ""
    clipped = text[:CHARS] + (f" … [{len(text) - CHARS:,} more characters]" if len(text) > CHARS else "")
    return (f"<div class='doc'><div class='facts'>{facts}</div>"
            + (f"<div class='facts'>signals: {esc(sig)}</div>" if sig else "")
            + f"<pre>{esc(clipped)}</pre></div>")


def _samples(s: Summary) -> str:
    parts = []
    for st in s.run.complete_stages:
        by_reason = samples.per_reason(st, SAMPLES)
        if not by_reason:
            continue
        parts.append(f"<h3>{esc(st.name)}</h3>")
        counts = st.stats.get("removed", {})
        for reason, docs in by_reason.items():
            cols = [f.name for f in docs.schema if pa.types.is_floating(f.type)]
            body = "".join(_doc(r, cols) for r in docs.to_pylist())
            n = counts.get(reason, docs.num_rows)
            parts.append(f"<details><summary>{esc(reason)} ({n:,} removed; {docs.num_rows} shown)</summary>"
                         f"{body}</details>")
    return "".join(parts) or "<p>No document was removed.</p>"


def render(s: Summary, what_ifs: list[StageWhatIf] = ()) -> str:
    meta = s.run.run
    title = f"curate report: {s.run.out}"
    info = (f"config {meta.get('config_source', '?')} (hash {meta.get('config_hash', '?')}) · input "
            f"{meta.get('input') or '?'} · started {meta.get('started') or '?'} · ended {meta.get('ended') or 'not yet'}"
            if meta else "no run.json")
    sections = [("funnel", "Funnel", _funnel(s)), ("removals", "Removals per filter", _removals(s)),
                ("signals", "Signals and thresholds", _signals(s)), ("languages", "Languages", _languages(s)),
                ("dedup", "Duplicate clusters", _dedup(s)), ("mix", "Curriculum mix", _mix(s))]
    if s.privacy:
        sections.insert(2, ("privacy", "PII and benchmark contamination", _privacy(s)))
    if what_ifs:
        sections.append(("what-if", "What if", _what_if(list(what_ifs))))
    sections.append(("samples", "Sample removed documents", _samples(s)))
    if s.warnings:
        sections.append(("warnings", "Warnings", "".join(f"<p class='warn'>{esc(w)}</p>" for w in s.warnings)))
    nav = "".join(f"<a href='#{k}'>{esc(t)}</a>" for k, t, _ in sections)
    body = "".join(f"<section id='{k}'><h2>{esc(t)}</h2>{content}</section>" for k, t, content in sections)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{CSS}</style></head>"
            f"<body><h1>curate report</h1><p class='meta'>{esc(s.run.out)}<br>{esc(info)}</p><nav>{nav}</nav>"
            f"{body}</body></html>\n")
