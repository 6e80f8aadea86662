"""`--what-if STAGE.FILTER.PARAM=VALUE`: a stage's removals recomputed from stored signals.

Every document that entered the stage is in its kept or removed parts with every signal (filters
measure all documents, no short-circuit), so changed thresholds are applied to the stored float32
columns with the filters' own `Rule.fires`, and each document takes the reason of the first rule
that fires, in the order the stage checks them (quality: its `filters` list, then each filter's
rules; langid: `low_score`, then the language gate, recomputed from the stored `lang` and
`langid.languages`); no stage runs again. With the run's own thresholds this reproduces the
run's removals exactly, and any document it does not reproduce is counted and reported.

Removals decided before any measurement (`<stage>:error:*`, a document that hung a worker) are
held as they were. A removal with another reason that no Rule explains is held too, and where
the change lets documents through beside such removals the figures are marked approximate: a
document let through might have been removed for that reason instead. A setting that changes
what a stage measures (C4's line rules, which decide the cleaned text) is not a threshold and is
refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from curate import schema
from curate.errors import UserError
from curate.report import rules
from curate.report.outdir import RunDir
from curate.report.summary import NONE_LABEL


@dataclass(frozen=True)
class Change:
    key: str  # quality.gopher.min_doc_words
    value: float | None  # None turns the rule off

    @property
    def stage(self) -> str:
        return self.key.split(".", 1)[0]


def parse(item: str) -> Change:
    key, eq, raw = item.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not eq or len(parts) < 2:
        raise UserError(f"--what-if {item}: expected STAGE.FILTER.PARAM=VALUE (e.g. quality.gopher.min_doc_words=80)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise UserError(f"--what-if {item}: the value must be a number, or null to turn the rule off")
    return Change(".".join(parts), None if value is None else float(value))


@dataclass
class GroupRow:
    source: str
    lang: str
    docs_in: int
    actual: int  # removed by the stage in the run
    what_if: int  # removed with the changed thresholds
    newly_removed: int
    let_through: int


@dataclass
class StageWhatIf:
    stage: str
    changes: list[Change]
    rules: list[rules.BoundRule]  # every threshold rule of the stage, thresholds as run
    docs_in: int
    actual: int
    what_if: int
    newly_removed: int
    let_through: int
    by_reason: dict[str, tuple[int, int]]  # reason -> (actual, what-if)
    groups: list[GroupRow]
    held: dict[str, int]  # removals no threshold decides, held as they were
    unreproduced: int  # decisions the run's thresholds do not reproduce (should be 0)
    approximate: bool
    notes: list[str] = field(default_factory=list)


def _value(v: float | None) -> str:
    return "off" if v is None else f"{v:g}"


def headline(w: StageWhatIf, sep: str = "=") -> tuple[str, str]:
    """('key=new, ...', 'key=as run, ...') for a what-if's title."""
    run = {b.key: b.threshold for b in w.rules}
    changed = ", ".join(f"{c.key}{sep}{_value(c.value)}" for c in w.changes)
    was = ", ".join(f"{c.key}{sep}{_value(run.get(c.key))}" for c in w.changes)
    return changed, was


def _resolve(run: RunDir, changes: list[Change]) -> dict[str, list[Change]]:
    """Group changes by stage, refusing any that is not a threshold over a stored signal."""
    by_stage: dict[str, list[Change]] = {}
    for ch in changes:
        st = run.get(ch.stage)
        if st is None or not st.complete:
            done = ", ".join(s.name for s in run.complete_stages)
            raise UserError(f"--what-if {ch.key}: stage {ch.stage} has not run in {run.out} (complete: {done})")
        bound = rules.stage_rules(ch.stage, run.config)
        if ch.key not in {b.key for b in bound}:
            why = rules.not_a_threshold(ch.key, run.config)
            if why:
                raise UserError(f"--what-if {ch.key}: not a threshold over a stored signal ({why}); only a "
                                f"re-run shows its effect: curate stage {ch.stage} --output OUT "
                                f"--set {ch.key}=VALUE --fresh")
            known = ", ".join(sorted({b.key for b in bound})) or "none"
            raise UserError(f"--what-if {ch.key}: unknown threshold; the thresholds of {ch.stage} in this "
                            f"run: {known}")
        by_stage.setdefault(ch.stage, []).append(ch)
    return by_stage


def compute(run: RunDir, changes: list[Change]) -> list[StageWhatIf]:
    return [_stage(run, stage, chs) for stage, chs in _resolve(run, changes).items()]


def _fires(table, bound: list[rules.BoundRule], thresholds: list[float | None]) -> np.ndarray:
    """[rule, document] -> whether the rule removes the document at the given thresholds."""
    out = np.zeros((len(bound), table.num_rows), dtype=bool)
    for i, (b, t) in enumerate(zip(bound, thresholds)):
        if b.rule.signal in table.column_names:  # the stored float32 column, as the stage compared it
            out[i] = b.rule.fires(table.column(b.rule.signal).to_numpy(zero_copy_only=False), t)
    return out


def _first(fires: np.ndarray) -> np.ndarray:
    """Index of the first rule that fires on each document; -1 where none does."""
    if fires.shape[0] == 0:
        return np.full(fires.shape[1], -1)
    return np.where(fires.any(axis=0), fires.argmax(axis=0), -1)


def _stage(run: RunDir, stage: str, changes: list[Change]) -> StageWhatIf:
    bound = rules.stage_rules(stage, run.config)
    changed = {c.key: c.value for c in changes}
    table = run.get(stage).read_all([schema.REASON, "source", "lang"] + sorted({b.rule.signal for b in bound}))
    n = table.num_rows
    reasons = table.column(schema.REASON)
    removed = pc.is_valid(reasons).to_numpy(zero_copy_only=False)
    vocab, actual_code = _encode(reasons)

    # A removal whose reason names no rule (and, for langid, is not the language gate) is held.
    named = np.zeros(n, dtype=bool)
    for b in bound:
        named |= b.matches(reasons)
    gate = _LanguageGate(table, run.section("langid")) if stage == "langid" else None
    if gate is not None:
        named |= gate.refused(reasons)
    held_mask = removed & ~named

    first_actual = _first(_fires(table, bound, [b.threshold for b in bound]))
    first_new = _first(_fires(table, bound, [changed.get(b.key, b.threshold) for b in bound]))
    vocab += [b.reason for b in bound if b.reason not in vocab]
    rule_code = np.array([vocab.index(b.reason) for b in bound] + [-1])  # [-1]: no rule fires

    def decide(first: np.ndarray) -> np.ndarray:
        """Each document's reason code (-1: kept) when `first` rules fire."""
        code = np.where(held_mask, actual_code, rule_code[first])
        return gate.apply(code, vocab) if gate is not None else code

    # The run's own thresholds must give each document its recorded fate and reason.
    unreproduced = int((decide(first_actual) != actual_code).sum())
    new_code = decide(first_new)
    new_removed = new_code >= 0
    through = removed & ~new_removed
    held_n = np.bincount(actual_code[held_mask], minlength=len(vocab))
    held = {vocab[i]: int(held_n[i]) for i in np.flatnonzero(held_n)}
    opaque = [r for r in held if not r.startswith(f"{stage}:error:")]
    actual_n = np.bincount(actual_code[removed], minlength=len(vocab))
    new_n = np.bincount(new_code[new_removed], minlength=len(vocab))

    notes = []
    if opaque and through.any():
        notes.append(f"approximate: {int(through.sum()):,} documents let through might have been removed "
                     f"instead for a reason no threshold decides ({', '.join(opaque)}: held as in the run)")
    if unreproduced:
        notes.append(f"approximate: the thresholds in run.json do not reproduce {unreproduced:,} of the run's "
                     "decisions (was the stage run with another config?)")
    approximate = bool(notes)
    if stage != run.complete_stages[-1].name:
        notes.append(f"only {stage} is recomputed; the stages after it would see a different input")
    return StageWhatIf(
        stage=stage, changes=changes, rules=bound, docs_in=n,
        actual=int(removed.sum()), what_if=int(new_removed.sum()),
        newly_removed=int((new_removed & ~removed).sum()), let_through=int(through.sum()),
        by_reason={vocab[i]: (int(actual_n[i]), int(new_n[i])) for i in np.flatnonzero(actual_n + new_n)},
        groups=_groups(table, removed, new_removed), held=held,
        unreproduced=unreproduced, approximate=approximate, notes=notes,
    )


class _LanguageGate:
    """Langid's check after `low_score`: a scored document whose language is not in
    `langid.languages` (null: every language) is removed as `langid:not_allowed:<lang>`."""

    def __init__(self, table, section: dict):
        self.allowed = section.get(rules.LANGID_LANGUAGES)
        n = table.num_rows
        self.langs, self.lang_code = (_encode(table.column("lang")) if "lang" in table.column_names
                                      else ([], np.full(n, -1)))
        score = table.column("lang_score") if "lang_score" in table.column_names else pa.nulls(n, pa.float32())
        self.scored = pc.is_valid(score).to_numpy(zero_copy_only=False)  # code documents have no score

    @staticmethod
    def refused(reasons) -> np.ndarray:
        return pc.fill_null(pc.starts_with(reasons, rules.LANGID_GATE), False).to_numpy(zero_copy_only=False)

    def apply(self, code: np.ndarray, vocab: list[str]) -> np.ndarray:
        """`code` (reason codes, -1: kept) with the gate applied where no rule removed."""
        if self.allowed is None:
            return code
        code = code.copy()
        for i, lang in enumerate(self.langs):
            mine = (code < 0) & self.scored & (self.lang_code == i)
            if lang not in self.allowed and mine.any():
                reason = rules.LANGID_GATE + lang
                if reason not in vocab:
                    vocab.append(reason)
                code[mine] = vocab.index(reason)
        return code


def _encode(column) -> tuple[list[str], np.ndarray]:
    """(distinct values, the code of each row, -1 for null)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column.cast(pa.string()))
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return encoded.dictionary.to_pylist(), codes


def _groups(table, removed: np.ndarray, new_removed: np.ndarray) -> list[GroupRow]:
    n = table.num_rows
    names, codes = [], []
    for col in ("source", "lang"):
        if col in table.column_names:
            values, code = _encode(table.column(col))
        else:
            values, code = [], np.full(n, -1, dtype=np.int64)
        names.append(values + [NONE_LABEL])  # code -1 indexes the null label
        codes.append(code)
    key = (codes[0] + 1) * (len(names[1]) + 1) + (codes[1] + 1)
    uniq, inverse = np.unique(key, return_inverse=True)

    def per(mask: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=mask, minlength=uniq.size).astype(int)

    docs = np.bincount(inverse, minlength=uniq.size)
    actual, what_if = per(removed), per(new_removed)
    new, through = per(new_removed & ~removed), per(removed & ~new_removed)
    rows = []
    for i, k in enumerate(uniq.tolist()):
        s, l = divmod(k, len(names[1]) + 1)
        rows.append(GroupRow(names[0][s - 1], names[1][l - 1], int(docs[i]), int(actual[i]), int(what_if[i]),
                             int(new[i]), int(through[i])))
    rows.sort(key=lambda r: (-(r.newly_removed + r.let_through), -r.docs_in, r.source, r.lang))
    return rows
