"""`curate inspect`: sample documents of one stage, with their signals and reasons.

Removed documents (or kept ones with `--kept`) are drawn with a fixed seed from the stage's
Parquet parts and shown top-down: the reason and the signal that decided it (value and
threshold), the document's facts and text, then its other signals. For dedup, the largest
duplicate clusters are shown with a few members side by side, one row per field, with their
Jaccard similarity where dedup recorded the pair in `pairs/`.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from curate import schema, storage
from curate.errors import UserError
from curate.report import rules, samples
from curate.report.outdir import RunDir, StageOutput

FIELDS = ("source", "lang", "url", "bucket", "dup_cluster", "dup_size", "dup_of")


def clip(text: str | None, limit: int) -> str:
    if text is None:
        return ""
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + f" … [{len(text) - limit:,} more characters]"


def signal_values(row: dict, columns: list[str]) -> dict[str, float]:
    """The measured (non-null, finite) float signals of one document."""
    out = {}
    for c in columns:
        v = row.get(c)
        if isinstance(v, float) and math.isfinite(v):
            out[c] = v
    return out


def float_columns(table: pa.Table) -> list[str]:
    return [f.name for f in table.schema if pa.types.is_floating(f.type)]


def fired(reason: str | None, bound: list[rules.BoundRule]) -> rules.BoundRule | None:
    """The threshold rule that wrote `reason`, if a threshold rule did."""
    return next((b for b in bound if reason and b.threshold is not None
                 and (reason == b.reason or reason.startswith(b.reason + ":"))), None)


def document(row: dict, signals: list[str], limit: int, bound: list[rules.BoundRule]) -> Group:
    """A document top-down: its verdict and the signal that decided it (value and threshold),
    its facts, its clipped text, then every other measured signal."""
    reason = row.get(schema.REASON)
    verdict = Text(reason or "kept", style="bold")
    rule = fired(reason, bound)
    values = signal_values(row, signals)
    if rule is not None and rule.rule.signal in values:
        verdict.append("\n" + rule.explain(values.pop(rule.rule.signal)))
    facts = Text()
    for name in FIELDS:
        if row.get(name) is not None:
            facts.append(f"{name} ", style="dim")
            facts.append(f"{row[name]}  ")
    parts = [verdict, facts, Text(clip(row.get("text"), limit))]  # Text: a document's brackets are not markup
    if values:
        rest = Text("\n", style="dim")
        for name, v in values.items():
            rest.append(f"{name} {v:.4g}  ")
        parts.append(rest)
    return Group(*parts)


def show_documents(table: pa.Table, console: Console, limit: int, bound: list[rules.BoundRule]) -> None:
    signals = float_columns(table)
    for row in table.to_pylist():
        title = Text(f"{row.get('id') or '?'}  {row.get('origin') or ''}")
        console.print(Panel(document(row, signals, limit, bound), title=title, title_align="left"))


def _pairs(st: StageOutput, ids: list[str]) -> dict[frozenset, float]:
    """Jaccard of the recorded pairs among `ids` (dedup's pairs/), where recorded."""
    out: dict[frozenset, float] = {}
    wanted = pa.array(ids, pa.string())
    for part in sorted((st.path / "pairs").glob("*.parquet")):
        names = storage.read_schema(part).names
        if not {"id_a", "id_b", "jaccard"} <= set(names):
            continue
        t = storage.read_table(part, columns=["id_a", "id_b", "jaccard"])
        t = t.filter(pc.and_(pc.is_in(t.column("id_a"), wanted), pc.is_in(t.column("id_b"), wanted)))
        for a, b, j in zip(*(t.column(c).to_pylist() for c in ("id_a", "id_b", "jaccard"))):
            out[frozenset((a, b))] = j
    return out


CLUSTER_NOTE = ("Largest duplicate clusters, the kept document first. A cluster is named by its dup_cluster: "
                "dedup's key of the cluster's first document (its input part and row), not a count or a rank.")


def show_clusters(st: StageOutput, console: Console, n: int, members: int, limit: int) -> None:
    clusters = samples.largest_clusters(st, n, members)
    if not clusters:
        console.print(f"{st.name}: no duplicate clusters (no document has dup_size >= 2)")
        return
    console.print(CLUSTER_NOTE)
    for cl in clusters:
        rows = cl.members.to_pylist()
        pairs = _pairs(st, [r["id"] for r in rows if r.get("id")])
        # One row per field, a column per member: every member's value of a field on one line.
        t = Table(title=f"cluster {cl.cluster}: {cl.size:,} documents (showing {len(rows)})",
                  title_justify="left", expand=True)
        t.add_column("", style="dim", no_wrap=True)
        for i, r in enumerate(rows):
            role = "kept" if r.get(schema.REASON) is None else r[schema.REASON]
            j = pairs.get(frozenset((rows[0].get("id"), r.get("id")))) if i else None
            t.add_column(Text(role + (f"  jaccard {j:.3f}" if j is not None else "")), ratio=1, overflow="fold")

        def field(name: str, fmt=str) -> None:
            t.add_row(name, *[Text(fmt(r[name]) if r.get(name) is not None else "—") for r in rows])

        for name in ("id", "origin", *FIELDS):
            field(name)
        t.add_section()
        t.add_row("text", *[Text(clip(r.get("text"), limit)) for r in rows])
        t.add_section()
        values = [signal_values(r, float_columns(cl.members)) for r in rows]
        for name in dict.fromkeys(k for v in values for k in v):
            t.add_row(name, *[Text(f"{v[name]:.4g}" if name in v else "—") for v in values])
        console.print(t)


def run(out, stage: str, reason: str | None, kept: bool, n: int, limit: int, seed: int, console: Console) -> None:
    rd = RunDir(out)
    st = rd.get(stage)
    if st is None:
        raise UserError(f"no output of stage {stage} in {rd.out}; stages there: "
                        f"{', '.join(s.name for s in rd.stages)}")
    if stage == "dedup" and not kept and reason is None:
        show_clusters(st, console, n, members=3, limit=limit)
        return
    if kept and reason:
        raise UserError("--reason selects removed documents; it cannot be combined with --kept")
    table, total = samples.sample(st, kept=kept, reason_prefix=reason, n=n, seed=seed)
    bound = rules.stage_rules(stage, rd.config)
    what = "kept documents" if kept else "removed documents" + (f" with reason {reason}*" if reason else "")
    if total == 0:
        known = ", ".join((st.stats or {}).get("removed", {})) or "none"
        console.print(f"{stage}: no {what}" + ("" if kept else f" (reasons: {known})"))
        return
    console.print(f"{stage}: {table.num_rows} of {total:,} {what}")
    show_documents(table, console, limit, bound)
