"""curate.api: a config built in Python, a run and one stage driven from Python with the CLI's
resume, fingerprints and errors, and the outputs read back as Arrow."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from curate import api

DOCS = [
    "The river town keeps an old market open every morning, and people walk along the water to buy bread, "
    "fish and the first fruit of the season before the heat of the day sets in over the hills.",
    "Short one.",
    "A long report on gardens: the soil is turned in spring, the seeds go in when the frost is over, and the "
    "beds are watered every evening until the plants are strong enough to stand a dry week on their own.",
    "",
    "Notes on bread: flour, water, salt and time make a loaf; the dough rests overnight, is shaped in the "
    "morning and baked hot, and the crust tells the baker whether the oven was ready for it or not yet.",
]
CONFIG = {
    "stages": ["extract", "quality"],
    "run": {"workers": 1},
    "quality": {"filters": ["gopher"], "gopher": {"min_doc_words": 10}},
}


def corpus(tmp_path: Path) -> Path:
    src = tmp_path / "corpus"
    src.mkdir()
    (src / "docs.jsonl").write_text("".join(json.dumps({"text": t, "url": f"https://x.example/{i}"}) + "\n"
                                            for i, t in enumerate(DOCS)))
    return src


def data_digest(out: Path) -> dict[str, str]:
    """Every data file of a run (Parquet parts and ledgers' removed counts), by content."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*.parquet"))}


def test_a_run_from_python_reads_back_as_arrow(tmp_path, ray_session):
    cfg = api.config(CONFIG)
    logged: list[str] = []
    out = api.run(cfg, corpus(tmp_path), tmp_path / "out", log=logged.append)
    assert out.stages == ["extract", "quality"]
    stats = out.stats("quality")
    kept, removed = out.kept("quality"), out.removed("quality")
    assert kept.num_rows == stats["docs_out"] == 3
    assert removed.num_rows == sum(stats["removed"].values()) == 1
    assert removed.column("reason").to_pylist() == ["quality:gopher:min_doc_words"]
    assert removed.column("text").to_pylist() == ["Short one."]
    assert out.stats("extract")["removed"] == {"extract:empty": 1}
    assert "gopher_words" in kept.column_names  # the signals travel with the documents
    dataset = out.dataset("quality")
    assert isinstance(dataset, ds.Dataset)
    assert dataset.count_rows(filter=pc.field("gopher_words") > 30) == 3
    assert out.dataset("extract", removed=True).to_table().column("reason").to_pylist() == ["extract:empty"]
    assert any(line.startswith("[quality] 4 in, 3 kept, 1 removed") for line in logged)

    # the same call again resumes: both stages complete, nothing rewritten
    before = data_digest(out.path)
    logged.clear()
    api.run(cfg, corpus_path := tmp_path / "corpus", tmp_path / "out", log=logged.append)
    assert [line.split("]")[0] for line in logged if "complete, skipped" in line] == ["[extract", "[quality"]
    assert data_digest(out.path) == before

    # a changed threshold is refused like on the command line, and --fresh redoes quality only
    changed = api.config(CONFIG, overrides=["quality.gopher.min_doc_words=1"])
    with pytest.raises(api.UserError, match="quality was made with a different config"):
        api.run(changed, corpus_path, tmp_path / "out")
    api.run(changed, corpus_path, tmp_path / "out", fresh=True)
    reopened = api.open_run(tmp_path / "out")
    assert reopened.info["config"]["quality"]["gopher"]["min_doc_words"] == 1
    assert reopened.stats("quality")["removed"] == {"quality:gopher:min_stop_words": 1}  # the next rule in line


def test_the_cli_and_the_api_write_the_same_bytes(tmp_path, cli):
    src = corpus(tmp_path)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(json.dumps(CONFIG))  # JSON is YAML
    result = cli("run", "--config", cfg_file, "--input", src, "--output", tmp_path / "by-cli")
    assert result.exit_code == 0, result.output
    api.run(api.load_config(cfg_file), src, tmp_path / "by-api")
    assert data_digest(tmp_path / "by-api") == data_digest(tmp_path / "by-cli")
    # one stage from Python, reading the stage before it from OUT
    api.run_stage("quality", api.load_config(cfg_file, ["quality.gopher.min_doc_words=1"]), tmp_path / "by-api",
                  fresh=True)
    assert api.open_run(tmp_path / "by-api").stats("quality")["removed"] == {"quality:gopher:min_stop_words": 1}


def test_user_mistakes_raise_before_ray(tmp_path):
    cfg = api.config(CONFIG)
    with pytest.raises(api.UserError, match="input not found|does not exist|no such"):
        api.run(cfg, tmp_path / "missing", tmp_path / "out")
    with pytest.raises(api.UserError, match="unknown stage 'dedupe'"):
        api.run_stage("dedupe", cfg, tmp_path / "out")
    with pytest.raises(api.UserError, match="stage 'dedup' is not in <config>'s stages"):
        api.run_stage("dedup", cfg, tmp_path / "out")
    with pytest.raises(api.UserError, match="stages: the list is empty"):
        api.run(api.config({"stages": []}), corpus(tmp_path), tmp_path / "out")
    with pytest.raises(api.UserError, match="quality.gopher.min_doc_wordz: unknown key"):
        api.config({"quality": {"gopher": {"min_doc_wordz": 3}}})
    with pytest.raises(api.UserError, match="not a directory"):
        api.open_run(tmp_path / "nowhere")
    assert not (tmp_path / "out").exists()
    assert api.load_config("demo").stages[-1] == "tokenize"  # packaged configs by name
