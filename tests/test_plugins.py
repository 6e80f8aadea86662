"""Plugins: the example package (examples/curate-example-plugin) installed with pip and run by
`curate run` with no change to curate; plugins named by import path; their mistakes and crashes
as one line naming them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate import config, readers, registry
from curate.errors import UserError
from curate.filters import FILTERS
from curate.filters.base import Filter, FilterConfig, Rule

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "curate-example-plugin"
CURATE = [sys.executable, "-m", "curate.cli"]

CORPUS = {
    "notes.csv": "id,text,url\n"
                 '1,"The harbour town keeps its old fish market open every morning, and visitors walk the pier.",'
                 "https://a.example/1\n"
                 '2,"Buy cheap pills now, spam offers and more spam deals for everyone reading this page today.",'
                 "https://b.example/2\n"
                 '5,"THIS ROW IS WRITTEN ALL IN CAPITAL LETTERS, AS IF SHOUTED ACROSS THE HARBOUR.",'
                 "https://e.example/5\n"
                 "3,short,https://c.example/3\n"
                 "4,,https://d.example/4\n",
    "more.jsonl": json.dumps({"text": "Growing vegetables needs good soil, water and patience; spam is a canned meat."})
                  + "\n",
}
PIPELINE = """
stages: [extract, length, quality]   # a plugin stage between two built-in ones
plugins: [shouty_plugin:ShoutyFilter]   # a filter named by import path, beside the installed ones
run: {workers: 1}
length: {min_chars: 20}
quality:
  filters: [url, blockwords, shouty]   # a built-in filter and the plugins', in this order
  blockwords: {words: [spam, pills], max_hits: 1}
"""
SHOUTY = '''
import pyarrow.compute as pc

from curate.filters.base import Filter, FilterConfig, Rule
from curate.text.stats import ratio, to_numpy


class ShoutyConfig(FilterConfig):
    max_caps: float | None = 0.5


class ShoutyFilter(Filter):
    name = "shouty"
    Config = ShoutyConfig
    rules = (Rule("caps", "shouty_caps", "gt", "max_caps"),)
    signals = ("shouty_caps",)

    def measure(self, docs):
        upper = to_numpy(pc.count_substring_regex(docs.text, r"\\p{Lu}"))
        letters = to_numpy(pc.count_substring_regex(docs.text, r"\\pL"))
        return {"shouty_caps": ratio(upper, letters)}
'''
CRASHY = '''
from shouty_plugin import ShoutyFilter
from curate.filters.base import Rule


class Crashy(ShoutyFilter):  # as if its model file were broken: it raises on every batch
    name = "crashy"
    rules = (Rule("caps", "crashy_caps", "gt", "max_caps"),)
    signals = ("crashy_caps",)

    def measure(self, docs):
        raise ValueError("the model file is corrupt")
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example package installed with pip into a folder of its own (put on PYTHONPATH: its
    entry points are found there, and nothing is left in the test environment), plus a plugin
    module that raises, named by import path."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--quiet", "--target", str(target), str(EXAMPLE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (target / "curate_example").is_dir() and list(target.glob("curate_example_plugin-*.dist-info"))
    (target / "crashy_plugin.py").write_text(CRASHY)
    (target / "shouty_plugin.py").write_text(SHOUTY)
    return target


@pytest.fixture
def env(site):
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def registered(site, monkeypatch):
    """This process sees the example package; every registration is undone afterwards."""
    monkeypatch.syspath_prepend(str(site))
    readers.loaded()  # the built-in readers are part of what is restored
    saved = dict(registry.PLUGINS), dict(FILTERS), dict(readers.REGISTRY), registry._installed_loaded
    registry._installed_loaded = False
    yield
    for live, old in zip((registry.PLUGINS, FILTERS, readers.REGISTRY), saved[:3]):
        live.clear()
        live.update(old)
    registry._installed_loaded = saved[3]


def corpus_dir(tmp_path: Path) -> Path:
    src = tmp_path / "corpus"
    src.mkdir()
    for name, text in CORPUS.items():
        (src / name).write_text(text)
    return src


def curate(*args, env, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(CURATE + [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


@pytest.mark.slow
def test_example_package_runs_end_to_end(tmp_path, env):
    src, out, cfg = corpus_dir(tmp_path), tmp_path / "out", tmp_path / "pipeline.yaml"
    cfg.write_text(PIPELINE)
    proc = curate("run", "--config", cfg, "--input", src, "--output", out, env=env)
    assert proc.returncode == 0, proc.stderr

    stats = {s: json.loads((out / s / "_stats.json").read_text()) for s in ("extract", "length", "quality")}
    for s in stats.values():
        assert s["docs_in"] == s["docs_out"] + sum(s["removed"].values())
    # the reader: four CSV rows and a JSONL line; the row without text is removed with its reason
    assert (stats["extract"]["docs_in"], stats["extract"]["removed"]) == (6, {"extract:error:csv:no_text": 1})
    assert stats["length"]["removed"] == {"length:too_short": 1}
    assert stats["quality"]["removed"] == {"quality:blockwords:blocked_words": 1, "quality:shouty:caps": 1}
    assert stats["length"]["counters"]["length_chars_kept"] > 0

    kept = pq.read_table(out / "quality" / "part-00000.parquet")
    removed = pq.read_table(out / "quality" / "removed" / "part-00000.parquet").sort_by("url")
    assert removed.column("url").to_pylist() == ["https://b.example/2", "https://e.example/5"]
    assert removed.column("blockwords_hits").to_pylist() == [3.0, 0.0]  # pills, spam, spam
    assert removed.column("shouty_caps").to_pylist()[1] == 1.0
    assert sorted(kept.column("blockwords_hits").to_pylist()) == [0.0, 1.0]  # stored for the kept too
    assert "length_chars" in kept.column_names and kept.column("source").to_pylist() == ["text", "text"]
    csv_row = [json.loads(m) for m, o in zip(kept.column("meta").to_pylist(), kept.column("origin").to_pylist())
               if o.startswith("notes.csv")]
    assert csv_row == [{"id": "1"}]
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["quality"]["blockwords"]["words"] == ["spam", "pills"]

    # the report shows its reason and signals, and --what-if replays its threshold
    proc = curate("report", out, "--no-html", "--what-if", "quality.blockwords.max_hits=3",
                  "--what-if", "quality.shouty.max_caps=1", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "quality:blockwords:blocked_words" in proc.stdout and "blockwords_hits > 1" in proc.stdout
    assert "shouty_caps > 0.5" in proc.stdout
    assert "removed 2 in the run, 0 with the change" in proc.stdout

    # the same command resumes: every stage, the plugin's too, is complete and skipped
    proc = curate("run", "--config", cfg, "--input", src, "--output", out, env=env)
    assert proc.returncode == 0 and proc.stderr.count("complete, skipped") == 3, proc.stderr


@pytest.mark.slow
def test_a_plugin_that_raises_is_retried_then_named_with_the_shard(tmp_path, env):
    cfg = tmp_path / "crash.yaml"
    cfg.write_text("stages: [extract, quality]\nplugins: [crashy_plugin:Crashy]\nrun: {workers: 1, task_retries: 1}\n"
                   "quality: {filters: [crashy]}\n")
    proc = curate("run", "--config", cfg, "--input", corpus_dir(tmp_path), "--output", tmp_path / "out", env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert "retrying part-00000 after: plugin filter crashy (crashy_plugin:Crashy)" in proc.stderr
    assert lines[-1] == ("error: shard part-00000 failed 2 times (input: extract/part-00000.parquet): plugin filter "
                         "crashy (crashy_plugin:Crashy) raised ValueError: the model file is corrupt")
    assert "Traceback" not in proc.stderr


def test_a_misspelt_plugin_path_is_one_line_exit_2_before_ray(tmp_path, env):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("stages: [extract]\nplugins: [curate_exampel.filters:BlockWordsFilter]\n")
    out = tmp_path / "out"
    proc = curate("run", "--config", cfg, "--input", corpus_dir(tmp_path), "--output", out, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: {cfg}: plugins: curate_exampel.filters:BlockWordsFilter: no module named "
                                   "'curate_exampel' (is the package installed?)")
    assert not out.exists()  # nothing written: Ray never started


@pytest.mark.parametrize("ref, message", [
    ("curate_example.filters:BlockWordFilter", "module curate_example.filters has no 'BlockWordFilter'"),
    ("curate_example.filters", "a plugin is named module:attr"),
    ("json:dumps", "not a curate.filters.base.Filter or curate.stage.Stage subclass, nor a curate.readers.Reader"),
    ("curate.filters.gopher:GopherQualityFilter", "filter 'gopher' is built into curate"),
])
def test_plugin_mistakes_are_one_user_error(registered, ref, message):
    with pytest.raises(UserError, match="plugins: .*" + re.escape(message)):
        config.from_dict({"stages": ["extract"], "plugins": [ref]}, "cfg.yaml")


def test_installed_plugins_are_found_and_validated_like_built_ins(registered):
    pipeline = config.from_dict({"stages": ["extract", "length", "quality"],
                                 "quality": {"filters": ["blockwords"], "blockwords": {"words": ["Spam"]}}})
    assert pipeline.section("quality").blockwords.words == ["Spam"]
    assert pipeline.section("length").min_chars == 20
    assert registry.plugins("reader")["csv"].ref == "curate_example.readers:CSV_READER"
    assert readers.by_extension("notes.CSV").format == "csv"
    with pytest.raises(UserError, match=r"^cfg.yaml: quality.blockwords.max_hitz: unknown key; allowed: sources, "
                                        r"words, max_hits, max_share; in the section of plugin filter blockwords "
                                        r"\(curate_example.filters:BlockWordsFilter\)$"):
        config.from_dict({"quality": {"filters": ["blockwords"], "blockwords": {"max_hitz": 3}}}, "cfg.yaml")
    with pytest.raises(UserError, match="length.min_chars: Input should be greater than or equal to 0 .*plugin stage length"):
        config.from_dict({"stages": ["extract", "length"], "length": {"min_chars": -1}}, "cfg.yaml")
    # built-in stages keep their order; a plugin stage stands anywhere
    config.from_dict({"stages": ["length", "extract", "quality"]})
    with pytest.raises(UserError, match="must follow the pipeline order"):
        config.from_dict({"stages": ["quality", "length", "extract"]})


def test_a_config_without_plugins_is_unchanged_by_installed_ones(registered):
    before = config.from_dict(None)
    registry.load_installed()
    after = config.from_dict(None)
    assert after.dump() == before.dump() and "blockwords" not in after.dump()["quality"]
    assert [after.stage_hash(s) for s in after.stages] == [before.stage_hash(s) for s in before.stages]
    with_plugin = config.from_dict({"quality": {"filters": ["gopher", "blockwords"]}})
    assert with_plugin.stage_hash("quality") != after.stage_hash("quality")
    assert with_plugin.stage_hash("langid") == after.stage_hash("langid")


def test_a_quality_section_with_a_plugin_filter_survives_pickling(registered):
    from ray import cloudpickle

    section = config.from_dict({"quality": {"filters": ["blockwords"], "blockwords": {"words": ["x"]}}}).section("quality")
    back = cloudpickle.loads(cloudpickle.dumps(section))
    assert back == section and type(back) is type(section) and back.blockwords.words == ["x"]


def odd_filter(**changes) -> type[Filter]:
    class OddConfig(FilterConfig):
        max_v: float | None = 1.0

    body = {"name": "odd", "Config": OddConfig, "signals": ("odd_v",), "rules": (Rule("v", "odd_v", "gt", "max_v"),),
            "measure": lambda self, docs: {}} | changes
    return type("Odd", (Filter,), {k: v for k, v in body.items() if v is not None})


@pytest.mark.parametrize("changes, message", [
    ({"signals": ("score",)}, "its column 'score' must start with odd_"),
    ({"rules": (Rule("v", "odd_w", "gt", "max_v"),)}, "rule v: its signal 'odd_w' is not in signals"),
    ({"rules": (Rule("v", "odd_v", "gt", "max_w"),)}, "rule v: its threshold 'max_w' is not a key of its Config"),
    ({"rules": (Rule("v", "odd_v", "ge", "max_v"),)}, "rule v: op must be 'lt' or 'gt'"),
    ({"measure": None}, "it must implement measure"),
])
def test_the_filter_contract_is_checked_when_a_plugin_registers(changes, message):
    odd_filter().check_contract()  # the filter as declared passes
    with pytest.raises(ValueError, match=message):
        odd_filter(**changes).check_contract()


def test_a_plugin_reader_claims_its_files_before_the_built_in_ones(registered, tmp_path):
    from curate import discover
    from curate.readers import Doc, Reader

    notes = Reader("notes", (".txt",), read=lambda path, origin: iter(()), parse=lambda row, cfg: Doc(),
                   sniff=lambda head: head.startswith(b"NOTE:"))
    (tmp_path / "a.txt").write_text("plain")
    (tmp_path / "b.md").write_text("plain")
    (tmp_path / "c").write_text("NOTE: no extension, sniffed")
    (tmp_path / "d").write_text("plain text, sniffed")
    (tmp_path / "e.csv").write_text("text,url\nhello,\n")
    before = [f.format for f in discover.discover(tmp_path)]
    assert before == ["text", "text", "text", "text", "text"]
    registry.load_installed()
    registry._register(notes, "test:notes", "notes")
    assert [f.format for f in discover.discover(tmp_path)] == ["notes", "text", "notes", "text", "csv"]


def test_report_names_a_plugin_it_cannot_import(capsys):
    from curate.report.rules import filter_classes

    classes = filter_classes(["no_such_plugin_pkg.filters:Gone"])
    assert "gopher" in classes  # the report still has the built-in rules
    err = capsys.readouterr().err
    assert "no_such_plugin_pkg" in err and "left out of the report" in err
