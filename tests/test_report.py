"""`curate report` and `curate inspect`: numbers equal the ledgers, what-ifs reproduce the run,
the HTML opens offline in a real browser.

Stages not built yet are stood in for by a run written by hand in OUT's layout (Parquet parts,
done-files merged by the real ledger code, run.json), with a fake quality filter declaring
`Rule`s; extract runs for real on the shared corpus.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import corpus

from curate import ledger, megatron, schema
from curate.filters import FILTERS
from curate.filters.base import Filter, Rule
from curate.report import rules, samples, summary, whatif
from curate.report.outdir import RunDir
from curate.storage import write_json as atomic_write_json
from curate.stages.bucket import BucketConfig, BucketStage


class FakeFilter(Filter):
    """A quality filter as the quality stage sees one: a name, rules over stored signals, and a
    setting that changes what it measures."""

    name = "fake"
    measure_params = ("min_line_words",)
    rules = (
        Rule(name="min_words", signal="fake_words", op="lt", param="min_words"),
        Rule(name="max_ratio", signal="fake_ratio", op="gt", param="max_ratio"),
    )


CONFIG = {
    "stages": ["extract", "langid", "quality", "dedup", "bucket", "tokenize"],
    "extract": {"sources": {}},
    "langid": {"min_score": 0.5, "languages": ["en", "de", "fr"]},
    # min_line_words is not a threshold over a stored signal: a what-if must refuse it.
    "quality": {"filters": ["fake"], "fake": {"min_words": 10, "max_ratio": 0.45, "min_line_words": 3}},
    "dedup": {},
    "bucket": BucketConfig().model_dump(mode="json"),  # the real bucket stage runs on the documents
    "tokenize": {},
}
HELD = "quality:fake:all_lines_removed"  # a removal no Rule explains
EVIL = '<script>alert("pwned")</script> <b>bold</b> & <img src="http://example.com/x.png">'


@pytest.fixture(scope="module", autouse=True)
def fake_filter():
    """The fake filter, registered beside the real ones for this module's tests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(FILTERS, "fake", FakeFilter)
        yield


def invoke(*args):
    from curate.cli.main import cli as root

    return CliRunner().invoke(root, [str(a) for a in args], catch_exceptions=False)


# ------------------------------------------------------------------ a run written by hand


def _halves(kept: pa.Table, removed: pa.Table) -> list[tuple[pa.Table, pa.Table, dict]]:
    """A stage's output as two shards, each (kept, removed, counters)."""
    k, r = kept.num_rows // 2, removed.num_rows // 2
    return [(kept.slice(0, k), removed.slice(0, r), {}), (kept.slice(k), removed.slice(r), {})]


def _write_stage(out: Path, name: str, shards: list[tuple[pa.Table, pa.Table, dict]], upstream: set[str],
                 finish=None, dirname: str | None = None) -> dict:
    """Write a stage's shards with their done-files, then its ledger with the real ledger code."""
    sdir = out / (dirname or name)
    (sdir / "removed").mkdir(parents=True)
    (sdir / "_done").mkdir()
    for i, (k, r, extra_counters) in enumerate(shards):
        part = f"part-{i:05d}"
        pq.write_table(k, sdir / f"{part}.parquet")
        if r.num_rows:
            pq.write_table(r, sdir / "removed" / f"{part}.parquet")
        counters = {"docs_in": k.num_rows + r.num_rows, "docs_out": k.num_rows,
                    "bytes_in": schema.text_bytes(k) + schema.text_bytes(r), "bytes_out": schema.text_bytes(k),
                    "process_seconds": 0.01, "removed": {}, "counters": extra_counters}
        if r.num_rows:
            for reason, n in zip(*np.unique(r.column("reason").to_numpy(zero_copy_only=False), return_counts=True)):
                counters["removed"][str(reason)] = int(n)
        atomic_write_json(sdir / "_done" / f"{part}.json", counters)
    previous = [d for d in out.iterdir() if (d / "_stats.json").is_file()]  # stages are written in order
    source = max(previous, key=lambda d: (d / "_stats.json").stat().st_mtime_ns) if previous else Path("/corpus")
    atomic_write_json(sdir / "_stage.json", {"stage": name, "fingerprint": "test", "input": str(source)})
    extra = finish(sdir) if finish else {}
    return ledger.write_stats(name, sdir, 0.5, upstream, extra)


def _split(table: pa.Table, reasons: np.ndarray) -> tuple[pa.Table, pa.Table]:
    removed = reasons != ""
    kept = table.filter(pa.array(~removed))
    gone = schema.with_reason(table.filter(pa.array(removed)), pa.array(reasons[removed], pa.string()))
    return kept, gone


def build_run(out: Path, n: int = 400, seed: int = 7) -> dict:
    """A complete run of six stages over `n` generated documents; returns the generated data."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 60, n)
    texts = [" ".join(f"w{(i * 7 + j) % 97}" for j in range(w)) or "x" for i, w in enumerate(words)]
    texts[3] = EVIL
    source = rng.choice(["web", "text", "code"], n)
    lang = np.where(source == "code", "code:python", rng.choice(["en", "de", "fr", "es"], n))
    lang_score = rng.uniform(0.2, 1.0, n).astype(np.float32)
    fake_words = words.astype(np.float32)
    fake_ratio = rng.uniform(0.0, 0.6, n).astype(np.float32)
    fake_words[5] = np.nan  # not measured: never fires
    # document 3, with markup in its text, passes langid and times out in quality (a lone reason)
    source[3], lang[3], lang_score[3], fake_words[3], fake_ratio[3] = "web", "en", 0.9, 50, 0.1
    base = schema.conform(pa.table({
        "id": [f"{i:032x}" for i in range(n)], "origin": [f"gen.jsonl#{i}" for i in range(n)],
        "text": pa.array(texts, pa.large_string()), "source": source.tolist(), "url": [f"https://e.org/{i}" for i in range(n)],
    }))
    run = {"config": CONFIG, "config_hash": "0123456789abcdef", "config_source": "test.yaml",
           "input": "/corpus", "started": "2026-01-01T00:00:00+00:00", "ended": "2026-01-01T00:01:00+00:00",
           "stages": {}}
    out.mkdir(parents=True)
    atomic_write_json(out / "run.json", run)

    # extract: n documents kept, 6 empty units removed
    empties = schema.with_reason(schema.conform(pa.table({
        "id": [f"e{i}" for i in range(6)], "origin": [f"gen.jsonl#e{i}" for i in range(6)],
        "text": pa.array([""] * 6, pa.large_string()), "source": ["text"] * 6})), "extract:empty")
    stats = {"extract": _write_stage(out, "extract", _halves(base, empties), set())}

    # langid, as the stage decides: code is not scored; low score first, then the language gate
    lang_score[source == "code"] = np.nan
    t = schema.set_column(schema.set_column(base, "lang", lang.tolist(), pa.string()), "lang_score",
                          pa.array(lang_score, pa.float32(), mask=np.isnan(lang_score)))
    allowed = np.isin(lang, ["en", "de", "fr"]) | (source == "code")
    with np.errstate(invalid="ignore"):
        low = lang_score < np.float32(0.5)
    reason = np.where(low, "langid:low_score",
                      np.where(~allowed, np.char.add("langid:not_allowed:", lang.astype(str)), ""))
    kept, gone = _split(t, reason)
    stats["langid"] = _write_stage(out, "langid", _halves(kept, gone), set())
    alive = reason == ""

    # quality: every document measured; the first rule that fires names the removal
    t = schema.set_column(schema.set_column(t, "fake_words", fake_words), "fake_ratio", fake_ratio)
    q = {"fake_words": fake_words, "fake_ratio": fake_ratio}
    with np.errstate(invalid="ignore"):
        fires_words, fires_ratio = fake_words < 10, fake_ratio > np.float32(0.45)
    held = (np.arange(n) % 37 == 1) & ~fires_words & ~fires_ratio
    qreason = np.where(fires_words, "quality:fake:min_words",
                       np.where(fires_ratio, "quality:fake:max_ratio", np.where(held, HELD, "")))
    qreason = qreason.astype(object)
    qreason[3], held[3] = "quality:error:timeout", True
    qreason = qreason.astype(str)
    t_q = t.filter(pa.array(alive))
    kept, gone = _split(t_q, qreason[alive])
    stats["quality"] = _write_stage(out, "quality", _halves(kept, gone), {"lang_score"})
    in_quality = alive.copy()
    alive = alive & (qreason == "")

    # dedup: clusters of 5, 4, 3, 3, 2, 2 among the first survivors; the first member is kept
    idx = np.flatnonzero(alive)
    sizes = [5, 4, 3, 3, 2, 2]
    cluster = np.full(n, -1)
    size = np.ones(n, dtype=np.int64)
    dup_of = np.full(n, None, dtype=object)
    dreason = np.full(n, "", dtype=object)
    pos, pairs = 0, []
    for c, s in enumerate(sizes):
        members = idx[pos:pos + s]
        pos += s
        cluster[members], size[members] = 100 + c, s
        dup_of[members[1:]] = f"{members[0]:032x}"
        dreason[members[1:]] = "dedup:minhash"
        pairs += [(f"{members[0]:032x}", f"{m:032x}", 0.8 + 0.01 * c) for m in members[1:]]
    singles = alive & (cluster < 0)
    cluster[singles] = 10_000 + np.flatnonzero(singles)
    t_d = schema.set_column(t, "dup_cluster", cluster, pa.int64())
    t_d = schema.set_column(t_d, "dup_size", size, pa.int64())
    t_d = schema.set_column(t_d, "dup_of", dup_of.tolist(), pa.string()).filter(pa.array(alive))
    dedup_kept, gone = _split(t_d, dreason[alive].astype(str))
    stats["dedup"] = _write_stage(out, "dedup", _halves(dedup_kept, gone), {"lang_score", "fake_words", "fake_ratio"})
    (out / "dedup" / "pairs").mkdir()
    pq.write_table(pa.table({"id_a": [p[0] for p in pairs], "id_b": [p[1] for p in pairs],
                             "jaccard": pa.array([p[2] for p in pairs], pa.float32())}),
                   out / "dedup" / "pairs" / "part-00000.parquet")
    alive = alive & (dreason == "")

    # bucket: the real stage, shard by shard, and its finish step writing the mix to the ledger
    stage = BucketStage(BucketConfig())
    half = dedup_kept.num_rows // 2
    shards = []
    for piece in (dedup_kept.slice(0, half), dedup_kept.slice(half)):
        res = stage.process(piece)
        shards.append((res.kept, res.removed, res.counters))
    upstream = {"lang_score", "fake_words", "fake_ratio"}
    stats["bucket"] = _write_stage(out, "bucket", shards, upstream,
                                   finish=lambda sdir: stage.finish(SimpleNamespace(stage_dir=sdir)))
    bucketed = pa.concat_tables([k for k, _, _ in shards])
    bucket = np.array(bucketed.column("bucket").to_pylist())

    # tokenize into shards/, with the manifest curate.megatron writes
    n_tokens = (words[alive] + 1).astype(np.int64)
    t_t = bucketed.append_column("token_count", pa.array(n_tokens))
    no_reason = t_t.slice(0, 0).append_column("reason", pa.array([], pa.string()))
    stats["tokenize"] = _write_stage(out, "tokenize", [(t_t, no_reason, {"tokens": int(n_tokens.sum())})],
                                     upstream | set(BucketStage.adds), dirname="shards")
    order = stats["bucket"]["bucket_order"]
    per_bucket = {b: int(n_tokens[bucket == b].sum()) for b in order}
    manifest = megatron.Manifest("tokenizer.json", "0" * 64, "uint16", 0, 8000, tuple(
        megatron.Bucket(b, int((bucket == b).sum()), per_bucket[b], ()) for b in order))
    atomic_write_json(out / "shards" / "manifest.json", manifest.to_json())
    run["stages"] = {s: {"wall_seconds": 0.5} for s in CONFIG["stages"]}
    atomic_write_json(out / "run.json", run)
    return {"stats": stats, "source": source, "lang": lang, "lang_score": lang_score, "in_quality": in_quality,
            "qreason": qreason, "held": held, **q, "clusters": sizes, "tokens": int(n_tokens.sum()),
            "per_bucket_tokens": per_bucket, "bucket": bucket, "order": order}


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    data = build_run(out)
    return out, data


# ------------------------------------------------------------------ numbers equal the ledgers


def test_summary_equals_ledgers(handmade):
    out, data = handmade
    s = summary.summarize(RunDir(out))
    assert s.warnings == []
    assert [r.stage for r in s.funnel] == CONFIG["stages"]
    for row in s.funnel:
        st = data["stats"][row.stage]
        assert (row.docs_in, row.docs_out, row.removed) == (st["docs_in"], st["docs_out"], sum(st["removed"].values()))
        assert (row.bytes_in, row.bytes_out) == (st["bytes_in"], st["bytes_out"])
    assert s.funnel[-1].tokens_out == data["tokens"]
    # stage i's output is stage i+1's input
    for a, b in zip(s.funnel, s.funnel[1:]):
        assert a.docs_out == b.docs_in

    by_stage = {r.stage: r for r in s.removals}
    for name, rem in by_stage.items():
        ledger_removed = data["stats"][name]["removed"]
        assert {r.reason: r.docs for r in rem.rows} == ledger_removed
        for r in rem.rows:
            assert sum(r.by_source.values()) == sum(r.by_lang.values()) == r.docs
            assert r.share == pytest.approx(r.docs / data["stats"][name]["docs_in"])
    # breakdown by source of a quality reason, counted independently from the generated columns
    q = data["in_quality"] & (data["qreason"] == "quality:fake:min_words")
    expect = {s_: int((data["source"][q] == s_).sum()) for s_ in np.unique(data["source"][q])}
    got = next(r for r in by_stage["quality"].rows if r.reason == "quality:fake:min_words").by_source
    assert got == expect

    d = s.dedup
    assert d.clusters == len(data["clusters"]) and d.docs_in_clusters == sum(data["clusters"])
    assert d.removed == sum(c - 1 for c in data["clusters"]) == data["stats"]["dedup"]["removed"]["dedup:minhash"]
    assert d.size_counts == {2: 2, 3: 2, 4: 1, 5: 1}
    assert [size for _, size in d.largest[:2]] == [5, 4]

    langs = s.languages
    assert sum(k + r for k, r in langs.values()) == data["stats"]["langid"]["docs_in"]
    assert sum(k for k, _ in langs.values()) == data["stats"]["langid"]["docs_out"]
    assert langs["es"][0] == 0  # es is not allowed: never kept

    assert [m.bucket for m in s.mix] == data["order"]  # curriculum order
    assert {m.bucket: m.docs for m in s.mix} == {b: int((data["bucket"] == b).sum()) for b in data["order"]}
    assert {m.bucket: m.tokens for m in s.mix} == data["per_bucket_tokens"]
    assert sum(m.docs for m in s.mix) == data["stats"]["bucket"]["docs_out"]
    assert [m.docs for m in s.mix] == [b["documents"] for b in data["stats"]["bucket"]["buckets"]]
    code = next(m for m in s.mix if m.bucket == "code")
    assert code.docs > 0 and code.by_source["code"] == int((data["bucket"] == "code").sum())

    plotted = {(p.stage, p.signal) for p in s.signals}
    assert {("langid", "lang_score"), ("quality", "fake_words"), ("quality", "fake_ratio")} <= plotted
    fw = next(p for p in s.signals if p.signal == "fake_words")
    assert [(b.rule.name, b.threshold) for b in fw.rules] == [("min_words", 10.0)]
    readability = next(p for p in s.signals if p.signal == "bucket_readability")
    assert readability.stage == "bucket" and (60.0, "easy ≥ 60") in readability.bounds


def test_breakdown_that_disagrees_with_the_ledger_is_a_warning(handmade, tmp_path):
    out, _ = handmade
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    stats = json.loads((copy / "quality" / "_stats.json").read_text())
    stats["removed"]["quality:fake:min_words"] += 1
    (copy / "quality" / "_stats.json").write_text(json.dumps(stats))
    s = summary.summarize(RunDir(copy))
    assert any("quality:fake:min_words" in w and "removed/ holds" in w for w in s.warnings)
    stats["docs_in"] += 1  # quality read more than langid kept
    (copy / "quality" / "_stats.json").write_text(json.dumps(stats))
    atomic_write_json(copy / "quality" / "_stage.json", {"stage": "quality", "input": str(copy / "langid")})
    s = summary.summarize(RunDir(copy))
    assert any(w.startswith(f"quality read {stats['docs_in']:,} documents but langid kept") for w in s.warnings)


def test_terminal_report(handmade):
    out, data = handmade
    result = invoke("report", out, "--no-html")
    assert result.exit_code == 0, result.output
    text = result.output
    for name in CONFIG["stages"]:
        st = data["stats"][name]
        assert re.search(rf"{name}\s*│\s*{st['docs_in']:,}\s*│\s*{st['docs_out']:,}\s*│", text), name
    assert f"{data['tokens']:,}" in text
    assert "quality:fake:min_words" in text and "Duplicate clusters" in text and "Curriculum mix" in text
    assert not (out / "report.html").exists()


def test_partial_run_of_the_real_pipeline(cli, tmp_path, monkeypatch):
    monkeypatch.delitem(FILTERS, "fake")  # the real quality stage runs only the real filters
    out = tmp_path / "out"
    result = cli("stage", "extract", "--input", corpus("web", "jsonl"), "--output", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "extract" / "_stats.json").read_text())
    result = invoke("report", out)
    assert result.exit_code == 0, result.output
    assert re.search(rf"extract\s*│\s*{stats['docs_in']:,}\s*│\s*{stats['docs_out']:,}\s*│", result.output)
    s = summary.summarize(RunDir(out))
    assert [r.stage for r in s.funnel] == ["extract"] and s.warnings == []
    assert {r.reason: r.docs for r in s.removals[0].rows} == stats["removed"] == {"extract:empty": 27}
    page = (out / "report.html").read_text()
    assert "extract:empty" in page and f">{stats['docs_in']:,}<" in page and "Dedup has not run" in page
    result = invoke("inspect", out, "--stage", "extract", "-n", "2")
    assert result.exit_code == 0 and "2 of 27 removed documents" in result.output
    result = invoke("report", out, "--what-if", "quality.gopher.min_doc_words=80")
    assert result.exit_code == 2 and "stage quality has not run" in result.output

    # then the real langid and quality stages: what-ifs replay their decisions from the stored signals
    config = tmp_path / "filters.yaml"
    config.write_text("stages: [extract, langid, quality]\n")
    for stage in ("langid", "quality"):
        result = cli("stage", stage, "--output", out, "--config", config, "--workers", "1")
        assert result.exit_code == 0, result.output
    rd = RunDir(out)
    keys = {b.key: b.threshold for st in ("langid", "quality") for b in rules.stage_rules(st, rd.config)}
    assert "langid.min_score" in keys and "quality.gopher.min_doc_words" in keys
    results = whatif.compute(rd, [whatif.Change(k, v) for k, v in keys.items()])
    for w in results:
        ledger_removed = rd.get(w.stage).stats["removed"]
        assert (w.unreproduced, w.approximate, w.newly_removed, w.let_through) == (0, False, 0, 0), w.notes
        assert {r: a for r, (a, b) in w.by_reason.items() if a} == ledger_removed
        assert all(a == b for a, b in w.by_reason.values())
    # raising gopher's word minimum removes exactly the kept documents below it, nothing else
    kept_words = pq.read_table(out / "quality" / "part-00000.parquet", columns=["gopher_words"]).column(0)
    minimum = float(np.quantile(kept_words.to_numpy(), 0.25)) + 1
    below = int(pc.sum(pc.less(kept_words, minimum)).as_py())
    [w] = whatif.compute(rd, [whatif.Change("quality.gopher.min_doc_words", minimum)])
    assert below > 0 and (w.newly_removed, w.let_through, w.approximate) == (below, 0, False)
    result = invoke("report", out, "--no-html", "--what-if", "langid.min_score=0.3")
    assert result.exit_code == 0 and "What if langid.min_score=0.3 (run: langid.min_score=0.5)" in result.output


def test_report_on_no_run(tmp_path):
    result = invoke("report", tmp_path / "missing")
    assert result.exit_code == 2 and "not a directory" in result.output
    result = invoke("report", tmp_path)
    assert result.exit_code == 2 and "holds no stage output" in result.output


def test_incomplete_stage_is_reported(handmade, tmp_path):
    out, _ = handmade
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "notes").mkdir()  # a folder that is no stage's output is ignored
    (copy / "dedup" / "_stats.json").unlink()  # dedup killed after its shards, before its ledger
    s = summary.summarize(RunDir(copy))
    row = next(r for r in s.funnel if r.stage == "dedup")
    assert not row.complete and row.shards_done == 2 and s.dedup is None
    assert [r.stage for r in s.funnel] == CONFIG["stages"]
    assert any("dedup is incomplete" in w for w in s.warnings)
    assert invoke("report", copy, "--no-html").exit_code == 0


# ------------------------------------------------------------------ what-if


def _what_if(out, *items):
    return whatif.compute(RunDir(out), [whatif.parse(i) for i in items])


@pytest.mark.parametrize("item", ["quality.fake.min_words=10", "quality.fake.max_ratio=0.45",
                                  "langid.min_score=0.5"])
def test_what_if_with_the_actual_thresholds_reproduces_the_run(handmade, item):
    out, data = handmade
    [w] = _what_if(out, item)
    ledger_removed = data["stats"][w.stage]["removed"]
    assert w.unreproduced == 0
    assert w.actual == w.what_if == sum(ledger_removed.values())
    assert w.newly_removed == w.let_through == 0
    assert {r: a for r, (a, _) in w.by_reason.items() if a} == ledger_removed
    assert all(a == b for a, b in w.by_reason.values())
    assert all(g.actual == g.what_if for g in w.groups)
    assert sum(g.docs_in for g in w.groups) == data["stats"][w.stage]["docs_in"]


def test_what_if_changed_threshold(handmade):
    out, data = handmade
    [w] = _what_if(out, "quality.fake.min_words=25", "quality.fake.max_ratio=null")
    iq = data["in_quality"]
    with np.errstate(invalid="ignore"):
        words = data["fake_words"][iq] < 25
    held = data["held"][iq]
    expect = words | held
    actual = data["qreason"][iq] != ""
    assert (w.actual, w.what_if) == (int(actual.sum()), int(expect.sum()))
    assert w.newly_removed == int((expect & ~actual).sum()) and w.let_through == int((actual & ~expect).sum())
    assert w.by_reason["quality:fake:min_words"][1] == int((words & ~held).sum())  # held keep their reason
    assert w.by_reason["quality:fake:max_ratio"][1] == 0
    assert w.by_reason[HELD] == (int(held.sum()) - 1, int(held.sum()) - 1)
    assert w.by_reason["quality:error:timeout"] == (1, 1)
    assert w.let_through and w.approximate and any("might have been removed" in n for n in w.notes)
    src, lang = data["source"][iq], data["lang"][iq]
    for g in w.groups:
        m = (src == g.source) & (lang == g.lang)
        assert (g.docs_in, g.actual, g.what_if) == (int(m.sum()), int((actual & m).sum()), int((expect & m).sum()))

    [w] = _what_if(out, "langid.min_score=0.3")
    score, lang = data["lang_score"], data["lang"]
    not_allowed = ~(np.isin(lang, ["en", "de", "fr"]) | (data["source"] == "code"))
    with np.errstate(invalid="ignore"):
        low = score < np.float32(0.3)
    assert w.what_if == int((low | not_allowed).sum())
    assert w.by_reason["langid:low_score"][1] == int(low.sum())
    assert w.by_reason["langid:not_allowed:es"][1] == int((~low & not_allowed).sum())
    assert not w.approximate  # the language gate is recomputed from lang and langid.languages
    # raising a threshold lets nothing through: exact although the stage has held removals
    [w] = _what_if(out, "quality.fake.min_words=12")
    assert w.let_through == 0 and w.newly_removed > 0 and not w.approximate


def test_what_if_language_gate(tmp_path):
    """A document let through by a lower langid.min_score still meets the language gate."""
    out = tmp_path / "out"
    out.mkdir()
    config = {"stages": ["langid"], "langid": {"min_score": 0.5, "languages": ["en"]}}
    atomic_write_json(out / "run.json", {"config": config})
    docs = schema.conform(pa.table({
        "id": list("abcdef"), "text": pa.array(["t"] * 6, pa.large_string()), "source": ["web"] * 5 + ["code"],
        "lang": ["en", "en", "es", "es", "zz", "code:c"],
        "lang_score": pa.array([0.9, 0.3, 0.9, 0.3, 0.2, None], pa.float32())}))  # code is not scored
    reasons = np.array(["", "langid:low_score", "langid:not_allowed:es", "langid:low_score", "langid:low_score", ""])
    _write_stage(out, "langid", [(*_split(docs, reasons), {})], set())
    [w] = _what_if(out, "langid.min_score=0.1")
    assert (w.actual, w.what_if, w.let_through, w.approximate) == (4, 3, 1, False)  # only the en one
    assert w.by_reason == {"langid:low_score": (3, 0), "langid:not_allowed:es": (1, 2), "langid:not_allowed:zz": (0, 1)}
    [w] = _what_if(out, "langid.min_score=0.5")
    assert (w.actual, w.what_if, w.unreproduced, w.approximate) == (4, 4, 0, False)
    config["langid"]["languages"] = None  # every language allowed: the gate refuses nothing
    atomic_write_json(out / "run.json", {"config": config})
    [w] = _what_if(out, "langid.min_score=0.1")
    assert w.unreproduced == 1 and w.approximate  # es was refused in the run: not this config


def test_what_if_notices_thresholds_the_run_did_not_use(handmade, tmp_path):
    out, _ = handmade
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    run = json.loads((copy / "run.json").read_text())
    run["config"]["quality"]["fake"]["min_words"] = 12  # not what the stage applied (10)
    (copy / "run.json").write_text(json.dumps(run))
    [w] = _what_if(copy, "quality.fake.min_words=12")
    assert w.unreproduced > 0 and w.approximate and any("do not reproduce" in n for n in w.notes)


def test_the_real_filters_rules_bind_to_their_config():
    """Every Rule of every registered filter finds its threshold in a resolved config."""
    real = {n: c for n, c in FILTERS.items() if n != "fake"}
    section = {"filters": list(real), **{n: c.Config().model_dump(mode="json") for n, c in real.items()}}
    config = {"quality": section}
    bound = rules.stage_rules("quality", config)
    assert [(b.filter, b.rule) for b in bound] == [(n, r) for n, c in real.items() for r in c.rules]
    for b in bound:
        assert b.threshold == getattr(real[b.filter].Config(), b.rule.param)
        assert b.reason == f"quality:{b.filter}:{b.rule.name}" and b.key == f"quality.{b.filter}.{b.rule.param}"
    c4 = next(n for n, c in real.items() if getattr(c, "rewrites_text", False))
    line_rule = real[c4].measure_params[0]
    assert "decides which lines are kept" in rules.not_a_threshold(f"quality.{c4}.{line_rule}", config)
    assert rules.not_a_threshold("quality.nope.x", config) is None
    # a filter left out of `filters` applied no rule
    section["filters"] = [n for n in real if n != c4]
    assert all(b.filter != c4 for b in rules.stage_rules("quality", config))


def test_what_if_cli_and_mistakes(handmade):
    out, _ = handmade
    result = invoke("report", out, "--no-html", "--what-if", "quality.fake.min_words=25")
    assert result.exit_code == 0, result.output
    assert "What if quality.fake.min_words=25" in result.output and "(run: quality.fake.min_words=10)" in result.output
    for item, message in [("quality.fake.min_line_words=5", "not a threshold over a stored signal (it changes what fake measures)"),
                          ("quality.fake.nope=1", "unknown threshold"),
                          ("quality.fake.min_words=abc", "must be a number"),
                          ("gopher=3", "expected STAGE.FILTER.PARAM=VALUE")]:
        result = invoke("report", out, "--no-html", "--what-if", item)
        assert result.exit_code == 2, item
        assert message in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------ inspect


def test_inspect_removed_kept_and_clusters(handmade):
    out, data = handmade
    result = invoke("inspect", out, "--stage", "quality", "--reason", "quality:fake:max", "-n", "2")
    assert result.exit_code == 0, result.output
    n = data["stats"]["quality"]["removed"]["quality:fake:max_ratio"]
    assert f"2 of {n:,} removed documents" in result.output
    assert result.output.count("quality:fake:max_ratio") >= 2 and "fake_ratio" in result.output
    result = invoke("inspect", out, "--stage", "langid", "--kept", "-n", "1")
    assert "1 of" in result.output and "kept documents" in result.output
    result = invoke("inspect", out, "--stage", "dedup", "-n", "2")
    assert "cluster 100: 5 documents" in result.output and "cluster 101: 4 documents" in result.output
    assert "jaccard 0.800" in result.output and "dedup:minhash" in result.output
    result = invoke("inspect", out, "--stage", "nope")
    assert result.exit_code == 2 and "no output of stage nope" in result.output


def test_largest_clusters_kept_member_first(handmade):
    out, _ = handmade
    [c] = samples.largest_clusters(RunDir(out).get("dedup"), n=1, members=3)
    assert (c.cluster, c.size, c.members.num_rows) == (100, 5, 3)
    reasons = c.members.column("reason").to_pylist()
    assert reasons[0] is None and reasons[1:] == ["dedup:minhash", "dedup:minhash"]
    assert c.members.column("dup_of").to_pylist()[1:] == [c.members.column("id")[0].as_py()] * 2


# ------------------------------------------------------------------ the HTML


class _Page(HTMLParser):
    """Tags, attributes and text of a page, to check what it references."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _page(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    return p


@pytest.fixture(scope="module")
def page(handmade, tmp_path_factory) -> Path:
    """The HTML report of the hand-made run, with a what-if."""
    out, _ = handmade
    target = tmp_path_factory.mktemp("html") / "report.html"
    result = invoke("report", out, "--html", target, "--what-if", "quality.fake.min_words=25")
    assert result.exit_code == 0, result.output
    return target


def test_html_is_self_contained_and_escaped(handmade, page):
    out, data = handmade
    text = page.read_text()
    parsed = _page(text)
    names = [t for t, _ in parsed.tags]
    assert "script" not in names and "link" not in names and "img" not in names and "iframe" not in names
    for tag, attrs in parsed.tags:
        for key in ("src", "href", "xlink:href"):
            value = attrs.get(key) or ""
            assert not re.match(r"(https?:)?//", value), (tag, key, value)
    assert "pwned" in text and '<script>alert("pwned")' not in text  # the sample is text, not markup
    # one figure per stored signal with its threshold, plus funnel, filters, languages, clusters, mix
    n_signals = len(summary.summarize(RunDir(out)).signals)
    assert names.count("svg") == n_signals + 1 + 4 + 1 + 1 + 1
    assert "min_words = 10" in text and "max_ratio = 0.45" in text and "min_score = 0.5" in text
    assert "What if quality.fake.min_words = 25" in text
    assert "<details><summary>quality:fake:min_words" in text and HELD in text


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but chromium is not installed (apt-get install chromium chromium-driver)")
    pytest.skip("needs headless chromium (apt-get install chromium chromium-driver) to render report.html")


def _browser(exe: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_html_renders_in_headless_chromium(handmade, page, tmp_path):
    from PIL import Image

    exe = _chromium()
    out, data = handmade
    dom = _browser(exe, tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _page(dom.stdout)
    rows = {}
    cells: list[str] = []
    # the funnel table as the browser built it: stage -> its cells
    for m in re.finditer(r'<tr data-stage="(\w+)">(.*?)</tr>', dom.stdout):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", m.group(2))
        rows[m.group(1)] = cells
    assert list(rows) == CONFIG["stages"]
    for name, cells in rows.items():
        st = data["stats"][name]
        assert cells[1:4] == [f"{st['docs_in']:,}", f"{st['docs_out']:,}", f"{sum(st['removed'].values()):,}"]
    assert rows["tokenize"][8] == f"{data['tokens']:,}"
    assert sum(1 for t, _ in parsed.tags if t == "svg") >= 8

    shot = tmp_path / "shot.png"
    r = _browser(exe, tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", "--hide-scrollbars", page.as_uri())
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)
    assert img.shape[:2] == (2400, 1200)
    assert img.std() > 20  # not a blank page
    # the plots' bar colours are on screen: the SVG figures rendered, not just the tables
    for hex_color in ("#4c78a8", "#e45756"):
        rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(img - rgb).sum(axis=2) < 12).sum() > 500, hex_color


# ------------------------------------------------------------------ issue 19 items 10-12: readable signals


def _signal_plot(kept, removed, edges, rules_=(), own=None, stage="quality", signal="sig"):
    hist = {"edges": list(edges), "kept": list(kept), "removed": list(removed), "count": int(sum(kept) + sum(removed))}
    return summary.SignalPlot(stage, signal, hist, list(rules_), removed_own=own)


def _renderer(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _extents(fig, artists):
    renderer = _renderer(fig)
    return [a.get_window_extent(renderer) for a in artists if a.get_visible() and a.get_text()]


def test_skewed_histograms_use_a_log_scale_and_labels_stay_off_the_bars():
    from curate.report import plots

    edges = np.linspace(0, 20000, 31)
    spike = [600] + [12, 8, 5, 3, 2] + [0] * 23 + [1]  # one spike at 0 and a long tail: log
    bound = rules.BoundRule("quality", "gopher", Rule("min_doc_words", "gopher_words", "lt", "min_doc_words"), 50.0)
    top = rules.BoundRule("quality", "gopher", Rule("max_doc_words", "gopher_words", "gt", "max_doc_words"), 100.0)
    fig = plots.signal_figure(_signal_plot(spike, [40] + [0] * 29, edges, [bound, top], own=[40] + [0] * 29))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    area = ax.get_window_extent(_renderer(fig))
    labels = [t for t in ax.texts + fig.texts if "min_doc_words" in t.get_text() or "max_doc_words" in t.get_text()]
    assert len(labels) == 2
    for box in _extents(fig, labels):  # threshold labels sit above the plot area, never over the bars
        assert box.y0 >= area.y1 - 1
    boxes = _extents(fig, labels)
    assert not boxes[0].overlaps(boxes[1])  # two close thresholds do not print over each other
    ticks = _extents(fig, ax.get_xticklabels())
    assert len(ticks) >= 3 and not any(a.overlaps(b) for a, b in zip(ticks, ticks[1:]))
    even = [20, 25, 30, 28, 22, 18, 15] + [0] * 23  # a plain distribution keeps linear counts
    assert plots.signal_figure(_signal_plot(even, [0] * 30, np.linspace(0, 1, 31))).axes[0].get_yscale() == "linear"


def test_removed_bars_count_only_the_signals_own_rule(handmade):
    out, data = handmade
    s = summary.summarize(RunDir(out))
    ratio = next(p for p in s.signals if p.signal == "fake_ratio")
    words = next(p for p in s.signals if p.signal == "fake_words")
    q = data["qreason"][data["in_quality"]]
    assert sum(ratio.removed_own) == int((q == "quality:fake:max_ratio").sum())
    assert sum(words.removed_own) == int((q == "quality:fake:min_words").sum())
    assert sum(ratio.hist["removed"]) > sum(ratio.removed_own)  # min_words and others removed the rest
    assert all(o <= r for o, r in zip(ratio.removed_own, ratio.hist["removed"]))
    readability = next(p for p in s.signals if p.signal == "bucket_readability")
    assert readability.removed_own is None  # no rule removes on it


def test_a_disabled_threshold_says_no_threshold(handmade, tmp_path):
    off = rules.BoundRule("quality", "code", Rule("min_alpha_frac", "code_alpha_frac", "lt", "min_alpha_frac"), None)
    assert off.describe() == "no threshold"
    assert rules.BoundRule("quality", "code", off.rule, 0.25).describe() == "code_alpha_frac < 0.25"
    out, _ = handmade
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    run = json.loads((copy / "run.json").read_text())
    run["config"]["quality"]["fake"]["max_ratio"] = None
    atomic_write_json(copy / "run.json", run)
    result = invoke("report", copy, "--no-html")
    assert "max_ratio: no threshold" in result.output and "< off" not in result.output and "> off" not in result.output


# ------------------------------------------------------------------ issue 19 item 13: inspect reads top-down


def test_inspect_shows_the_reason_and_its_signal_first_then_the_text_then_the_rest(handmade):
    out, data = handmade
    result = invoke("inspect", out, "--stage", "quality", "--reason", "quality:fake:max_ratio", "-n", "1")
    assert result.exit_code == 0, result.output
    text = result.output
    fired = re.search(r"fake_ratio = ([\d.]+) > 0\.45 \(quality\.fake\.max_ratio\)", text)
    assert fired and float(fired.group(1)) > 0.45
    reason = text.index("quality:fake:max_ratio")
    words = re.search(r"\bw\d+ w\d+", text)  # the generated text
    others = text.index("fake_words ")
    assert reason < fired.start() < words.start() < others


def test_inspect_dedup_lines_members_up_and_explains_cluster_ids(handmade):
    out, _ = handmade
    result = invoke("inspect", out, "--stage", "dedup", "-n", "1")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "cluster 100: 5 documents" in text
    assert re.search(r"dup_size\s*│\s*5\s*│\s*5\s*│\s*5\s*│", text)  # one row per field, every member in it
    assert re.search(r"dup_of\s*│\s*—\s*│\s*0+\w+\s*│", text)  # the kept member has none: a dash keeps the row
    assert "dup_cluster" in text and "key" in text.split("cluster 100")[0]  # what the id is, said before it
