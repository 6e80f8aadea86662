"""Config loading: typed, validated, one clear line and exit code 2 for every user mistake."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate import config
from curate.errors import UserError

CURATE = [sys.executable, "-m", "curate.cli"]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_packaged_default_loads():
    p = config.load(None)
    assert p.stages[0] == "extract"
    assert p.run.batch_docs > 0


@pytest.mark.parametrize(
    "text, expect",
    [
        ("stages: [extract]\nextract:\n  sourcez: {}\n", "extract.sourcez: unknown key; allowed: sources"),
        ("stages: [extract]\nrun:\n  batch_docs: many\n", "run.batch_docs"),
        ("stages: [extract]\nrun:\n  batch_docs: 0\n", "greater than or equal to 1"),
        ("stages: [extrakt]\n", "unknown stage 'extrakt'"),
        ("stages: [extract]\nbogus: 1\n", "bogus: unknown key"),
        ("stages: [extract\n", "invalid YAML"),
        ("- just\n- a list\n", "a config is a mapping"),
        ("stages: [extract]\nextract:\n  sources: {'*.x': !!python/object/apply:os.system ['true']}\n", "invalid YAML"),
    ],
)
def test_mistakes_name_file_and_key(tmp_path, text, expect):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as e:
        config.load(path)
    msg = str(e.value)
    assert str(path) in msg and expect in msg
    assert "\n" not in msg


def test_overrides_are_typed(tmp_path):
    p = config.load(write(tmp_path, "stages: [extract]\n"), ["run.batch_docs=17", "extract.sources={'*.md': academic}"])
    assert p.run.batch_docs == 17
    assert p.section("extract").sources == {"*.md": "academic"}
    with pytest.raises(UserError, match="run.batch_docs"):
        config.load(write(tmp_path, "stages: [extract]\n"), ["run.batch_docs=-3"])
    with pytest.raises(UserError, match="STAGE.KEY=VALUE"):
        config.load(None, ["run.batch_docs"])


def test_stage_hash_follows_config(tmp_path):
    a = config.load(write(tmp_path, "stages: [extract]\n"))
    b = config.load(write(tmp_path, "stages: [extract]\n"), ["run.batch_docs=5"])
    c = config.load(write(tmp_path, "stages: [extract]\n"), ["extract.sources={'*': code}"])
    assert a.stage_hash("extract") == b.stage_hash("extract")  # batch size does not change output
    assert a.stage_hash("extract") != c.stage_hash("extract")


def test_cli_misspelt_key_fails_before_ray(tmp_path):
    cfg = write(tmp_path, "stages: [extract]\nextract:\n  sourcess: {}\n")
    out = tmp_path / "out"
    t0 = time.monotonic()
    proc = subprocess.run(CURATE + ["run", "--config", str(cfg), "--input", str(tmp_path), "--output", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "extract.sourcess: unknown key" in lines[0] and str(cfg) in lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # nothing ran
    assert time.monotonic() - t0 < 30


def test_cli_missing_input_and_config(tmp_path):
    proc = subprocess.run(CURATE + ["run", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "input not found" in proc.stderr
    proc = subprocess.run(CURATE + ["run", "--config", str(tmp_path / "no.yaml"), "--input", str(tmp_path),
                                    "--output", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and "config file not found" in proc.stderr


def test_cli_version_and_help():
    proc = subprocess.run(CURATE + ["--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "curate" in proc.stdout
    for cmd in ("run", "stage"):
        proc = subprocess.run(CURATE + [cmd, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "Example" in proc.stdout


def test_default_yaml_is_generated_from_the_models():
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / "write_default_config.py"),
                           "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_packaged_configs_load():
    for name in ("default", "demo"):
        from curate.cli.common import resolve_config

        assert config.load(resolve_config(name)).stages[-1] == "tokenize"


# -- issue 19 item 8: a --set mistake names the --set option, not the config file ------------------
@pytest.mark.parametrize("item, expect", [
    ("quality.gopher.min_doc_word=80", "--set quality.gopher.min_doc_word=80: quality.gopher.min_doc_word: unknown key"),
    ("quality.gopher.min_doc_words=many", "--set quality.gopher.min_doc_words=many: quality.gopher.min_doc_words: "),
    ("run={'shard_mb': -1}", "--set run={'shard_mb': -1}: run.shard_mb: "),
    ("stages=[extract, nope]", "--set stages=[extract, nope]: stages: unknown stage 'nope'"),
])
def test_set_mistakes_name_the_set_option(tmp_path, item, expect):
    path = write(tmp_path, "stages: [extract, langid, quality]\n")
    with pytest.raises(UserError) as e:
        config.load(path, ["run.batch_docs=5", item])
    assert str(e.value).startswith(expect) and str(path) not in str(e.value)
    with pytest.raises(UserError, match=f"^{path}: quality.gopher.min_doc_words"):  # the file's own mistake
        config.load(write(tmp_path, "quality:\n  gopher:\n    min_doc_words: many\n"), ["run.batch_docs=5"])


def test_set_mistake_from_the_cli_is_one_line(tmp_path):
    proc = subprocess.run(CURATE + ["stage", "quality", "--config", "demo", "--output", str(tmp_path / "o"),
                                    "--set", "quality.gopher.min_doc_word=80"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: --set quality.gopher.min_doc_word=80: ") and "demo.yaml" not in proc.stderr


# -- issue 19 item 14: nested defaults in block style, and the file still means the defaults ---------
def test_default_yaml_writes_nested_values_in_block_style():
    text = (Path(__file__).resolve().parents[1] / "configs" / "default.yaml").read_text()
    values = [line.split("  # ", 1)[0] for line in text.splitlines()]
    assert max(len(v) for v in values) <= 100, max(values, key=len)
    assert "  rules:  # tried in order" in text and "    - bucket: code\n      when:\n        source: [code]\n" in text
    assert config.load(None).dump() == config.pipeline_model()().model_dump(mode="json")
