"""The bucket stage: signals, rules, the mix in _stats.json, config errors, and the default
thresholds on real corpora."""

from __future__ import annotations

import glob
import gzip
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

from curate import config
from curate.stages.bucket import signals
from curate.errors import UserError
from curate.storage import write_json as atomic_write_json
from curate.stages.bucket import SIGNAL_COLUMNS, BucketConfig, BucketStage, Range, BucketRule
from conftest import corpus

MATH = (
    "Let $f(x) = x^2 + 3x - 4$. We want the roots of f. By the quadratic formula, "
    "$x = \\frac{-3 \\pm \\sqrt{9 + 16}}{2}$, hence x = 1 or x = -4. Therefore f(x) = (x - 1)(x + 4), "
    "and the sum of the roots is -3, as Vieta's formulas predict."
)
CODE = '''import os

def list_files(root):
    """Return every file below root."""
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            out.append(os.path.join(dirpath, name))
    return sorted(out)

if __name__ == "__main__":
    print(len(list_files(".")))
'''
ENCYCLOPEDIA = (
    "The cat is a small animal that lives with people in many parts of the world. Cats have soft "
    "fur, sharp claws and good eyes. They like to sleep in warm places and often hunt mice and "
    "birds. A young cat is called a kitten. Most cats live for about fifteen years. Many people "
    "keep cats as pets because they are calm and clean."
)
BUREAUCRATIC = (
    "The committee's deliberations regarding intergovernmental appropriations necessitated considerable "
    "administrative reorganization, particularly concerning the implementation of comprehensive "
    "environmental regulations, notwithstanding substantial opposition from representatives of "
    "agricultural constituencies, who characterized the proposals as economically unsustainable."
)


def table(texts, source="text", lang=None, **extra) -> pa.Table:
    n = len(texts)
    cols = {"id": [f"d{i}" for i in range(n)], "text": pa.array(texts, pa.large_string()),
            "source": source if isinstance(source, list) else [source] * n,
            "lang": pa.array(lang if isinstance(lang, list) else [lang] * n, pa.string())}
    cols.update(extra)
    return pa.table(cols)


def buckets_of(result) -> list[str]:
    return result.kept.column("bucket").to_pylist()


def test_hand_written_texts_get_their_buckets():
    result = BucketStage(BucketConfig()).process(table([MATH, CODE, ENCYCLOPEDIA, BUREAUCRATIC], lang="en"))
    assert buckets_of(result) == ["reasoning", "code", "easy", "general"]
    row = {c: result.kept.column(c).to_numpy() for c in SIGNAL_COLUMNS}
    assert row["bucket_math_density"][0] > 0.03 and row["bucket_latex"][0] > 0
    assert row["bucket_code_density"][1] > 0.5 and row["bucket_code_density"][2] == 0
    assert row["bucket_readability"][2] > 60 > row["bucket_readability"][3]
    assert row["bucket_long_words"][3] > 0.5 > row["bucket_long_words"][2]


def test_signals_are_float32_and_nothing_is_removed():
    texts = [ENCYCLOPEDIA, "", None, "   \n\n  ", "x"]
    result = BucketStage(BucketConfig()).process(table(texts))
    assert result.kept.num_rows == len(texts) and result.removed.num_rows == 0
    assert "reason" in result.removed.column_names
    for name in SIGNAL_COLUMNS:
        col = result.kept.column(name)
        assert col.type == pa.float32() and col.null_count == 0
        assert np.isfinite(col.to_numpy()).all()
    # No words: every measure is 0 and the default bucket takes the document.
    assert buckets_of(result)[1:4] == ["general"] * 3
    assert all(result.kept.column(name)[1].as_py() == 0 for name in SIGNAL_COLUMNS)


def test_anchored_patterns_count_lines_not_match_restarts():
    # pyarrow's count_substring_regex re-matches ^ after each match; line_counts must not.
    text = pa.array(["a;\nb;\nc", "x = 1;"], pa.large_string())
    lines, matched = signals.line_counts(text, {"semi": r";\s*$", "start": r"^\S"})
    assert lines.tolist() == [3, 1]
    assert matched["semi"].tolist() == [2, 1] and matched["start"].tolist() == [3, 1]


def test_rules_first_match_wins_with_sources_prefixes_and_ranges():
    cfg = BucketConfig(
        order=["kids", "rest", "maths", "python"],
        default="rest",
        rules=[
            BucketRule(bucket="python", when={"lang": ["code:python"]}),
            BucketRule(bucket="maths", when={"source": ["academic"]}),
            BucketRule(bucket="maths", when={"lang": ["code:*"], "bucket_math_density": Range(min=0.01)}),
            BucketRule(bucket="kids", when={"bucket_readability": Range(min=80), "quality_score": Range(min=0.5)}),
        ],
    )
    texts = [CODE, BUREAUCRATIC, "x = 1 + 2 and y = 3 * 4", ENCYCLOPEDIA, ENCYCLOPEDIA, ENCYCLOPEDIA]
    t = table(texts, source=["code", "academic", "code", "web", "web", "web"],
              lang=["code:python", "en", "code:julia", "en", "en", "en"],
              quality_score=pa.array([0.9, 0.9, 0.9, 0.9, 0.1, None], pa.float32()))
    result = BucketStage(cfg).process(t)
    # The null quality_score is skipped, so the last document is judged on readability alone.
    assert buckets_of(result) == ["python", "maths", "maths", "kids", "rest", "kids"]
    assert result.counters["rules"] == {"1:python": 1, "2:maths": 1, "3:maths": 1, "4:kids": 2, "default:rest": 1}
    assert result.counters["skipped_conditions"] == {"quality_score": 1}


def test_conditions_on_missing_columns_are_skipped_and_counted():
    cfg = BucketConfig(order=["good", "other"], default="other",
                       rules=[BucketRule(bucket="good", when={"quality_score": Range(min=0.5), "lang": ["en"]})])
    t = table([ENCYCLOPEDIA, ENCYCLOPEDIA], lang=["en", "de"]).drop_columns(["lang"])
    result = BucketStage(cfg).process(t)  # neither langid nor quality ran
    assert buckets_of(result) == ["good", "good"]
    assert result.counters["skipped_conditions"] == {"quality_score": 2, "lang": 2}


def test_a_range_on_a_string_column_is_an_error():
    # Upstream columns of unknown type are checked on the batch...
    cfg = BucketConfig(order=["a", "b"], default="b", rules=[BucketRule(bucket="a", when={"url_kind": Range(min=1)})])
    with pytest.raises(ValueError, match="url_kind is string, a range needs a numeric column"):
        BucketStage(cfg).process(table(["text"], url_kind=["blog"]))
    # ...schema columns in the config already.
    with pytest.raises(ValueError, match="source is a string"):
        BucketRule(bucket="a", when={"source": Range(min=1)})


def test_mix_counts_documents_and_characters_per_bucket_source_language():
    t = table([CODE, ENCYCLOPEDIA, ENCYCLOPEDIA, "Ünïcödé"], source=["code", "web", "web", "text"],
              lang=["code:python", "en", "en", None])
    mix = BucketStage(BucketConfig()).process(t).counters["mix"]
    assert mix["code"]["code"]["code:python"] == {"documents": 1, "chars": len(CODE)}
    assert mix["easy"]["web"]["en"] == {"documents": 2, "chars": 2 * len(ENCYCLOPEDIA)}
    assert mix["general"]["text"]["unknown"] == {"documents": 1, "chars": 7}  # characters, not bytes


def test_finish_reports_the_mix_in_curriculum_order(tmp_path):
    stage = BucketStage(BucketConfig())
    (tmp_path / "_done").mkdir()
    for i, texts in enumerate([[CODE, ENCYCLOPEDIA], [ENCYCLOPEDIA, BUREAUCRATIC, MATH]]):
        counters = stage.process(table(texts, lang="en")).counters
        atomic_write_json(tmp_path / "_done" / f"part-{i:05d}.json", {"counters": counters, "docs_in": 0,
                          "docs_out": 0, "bytes_in": 0, "bytes_out": 0, "process_seconds": 0, "removed": {}})
    extra = stage.finish(SimpleNamespace(stage_dir=tmp_path))
    assert extra["bucket_order"] == ["easy", "general", "reasoning", "code"]
    assert [(b["name"], b["documents"]) for b in extra["buckets"]] == [("easy", 2), ("general", 1), ("reasoning", 1), ("code", 1)]
    assert extra["buckets"][0]["chars"] == 2 * len(ENCYCLOPEDIA)
    assert sum(b["share_documents"] for b in extra["buckets"]) == pytest.approx(1.0)


def _write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(body)
    return path


@pytest.mark.parametrize("body, message", [
    ("bucket: {order: [a, b], default: c}", "default: bucket 'c' is not in order"),
    ("bucket: {order: [a, b], default: b, rules: [{bucket: z}]}", "rules[0]: bucket 'z' is not in order"),
    ("bucket: {order: [a, b], default: b}", "give your own `rules`"),
    ("bucket: {order: [Easy], default: Easy}", "cannot name a shards folder"),
    ("bucket: {order: [removed, b], default: b}", "cannot name a shards folder"),
    ("bucket: {order: [a, a], default: a}", "listed twice"),
    ("bucket: {order: [a, b], default: b, rules: [{bucket: a, when: {bucket_readabilty: {min: 1}}}]}", "unknown signal"),
    ("bucket: {order: [a, b], default: b, rules: [{bucket: a, when: {bucket_words: [x]}}]}", "is a number"),
    ("bucket: {order: [a, b], default: b, rules: [{bucket: a, when: {bucket_words: {mni: 3}}}]}", "mni"),
])
def test_config_mistakes_are_one_clear_line(tmp_path, body, message):
    with pytest.raises(UserError) as err:
        config.load(_write_config(tmp_path, body))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_user_defined_config_loads_from_yaml(tmp_path):
    path = _write_config(tmp_path, """
bucket:
  order: [short, long]
  default: long
  rules:
    - {bucket: short, when: {bucket_words: {max: 50}, lang: en}}
""")
    cfg = config.load(path).section("bucket")
    assert cfg.rules[0].when["lang"] == ["en"]
    result = BucketStage(cfg).process(table(["a few words", BUREAUCRATIC + " " + ENCYCLOPEDIA], lang="en"))
    assert buckets_of(result) == ["short", "long"]


# --- the default thresholds on real documents ------------------------------------------------------


def _bucket_counts(texts: list[str], source: str = "text") -> Counter:
    return Counter(buckets_of(BucketStage(BucketConfig()).process(table(texts, source=source))))


@pytest.mark.corpora
def test_default_rules_on_real_corpora():
    web = gzip.open(corpus("web/jsonl/dolma-cc-sample.jsonl.gz"), "rt", encoding="utf-8")
    web = [t for t in (json.loads(line)["text"] for line in web) if t]
    counts = _bucket_counts(web, "web")
    # Common Crawl is mostly general prose, some of it easy, little code or maths.
    assert counts["code"] + counts["reasoning"] <= 0.02 * len(web)
    assert 0.05 * len(web) <= counts["easy"] <= 0.3 * len(web)

    # Source files and a LaTeX textbook, given as plain text (source `text`): the signals alone
    # must recognise them.
    root = corpus("code/linguist")
    code = [Path(p).read_text(errors="replace") for lang in ("Python", "C", "Java", "JavaScript", "Go", "Rust")
            for p in sorted(glob.glob(str(root / lang / "*.*")))]
    assert _bucket_counts(code)["code"] >= 0.85 * len(code)
    tex = [Path(p).read_text(errors="replace") for p in sorted(glob.glob(str(corpus("academic/openlogic") / "**/*.tex"), recursive=True))]
    assert _bucket_counts(tex)["reasoning"] >= 0.95 * len(tex)
