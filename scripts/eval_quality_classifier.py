"""The quality classifier against human judgement, and its scoring speed.

    python scripts/eval_quality_classifier.py                 # everything (~10 min on 2 cores)
    python scripts/eval_quality_classifier.py --skip-run      # reuse the corpus run of a previous call
    python scripts/eval_quality_classifier.py --only bench

Human labels: ../shared/corpora/quality/dclm-agreement.jsonl, 281 Common Crawl texts with a
0/1 quality label (DCLM's annotated data). Every figure is an AUC on these labels, unless named
otherwise.

  cv_on_labels  5-fold stratified cross-validation trained on the labels themselves (mean over
                3 seeds): what a model of this kind reaches with ~225 in-domain human labels.
  rules_alone   the quality stage's default rule filters on the 281 texts: kept = 1, removed
                = 0 (an AUC of a yes/no decision is (TPR + TNR) / 2).
  bootstrap     `curate train-quality --from-run` recipes, never trained on the labels: a run
                of extract -> langid -> quality (rules only) over the shared corpora *without*
                quality/, then labels from its decisions (curate.filters.classifier.labels.bootstrap_from_run).
                human_auc is the classifier alone; rules_then_classifier_auc orders texts by
                the rules' decision first and the score second (the classifier placed after
                the rules); own_valid_auc is on the bootstrap's own held-out 10%.
  bench         docs/s of raw fastText `predict(list, k=1)` vs `QualityModel.score` (an Arrow
                column in, float32 out) vs the classifier filter's `measure`, on the same
                texts. `bench(quick)` is what scripts/bench.py imports.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.filters.classifier.labels import Labelled, bootstrap_from_run, nonempty, read_labelled
from curate.filters.classifier.metrics import auc, metrics
from curate.filters.classifier.model import QualityModel, blank, normalize
from curate.filters.classifier.train import TrainParams, fit, require_both_classes, stratified_split, train

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("CURATE_SHARED", ROOT.parent / "shared")) / "corpora"
LABELS = CORPORA / "quality" / "dclm-agreement.jsonl"


def agreement() -> Labelled:
    return read_labelled(LABELS)


# -- cross-validation on the human labels ------------------------------------------------------
def cross_validate(data: Labelled, params: TrainParams, folds: int = 5, seed: int = 0) -> dict:
    """Out-of-fold scores of `folds`-fold stratified cross-validation, and their metrics."""
    require_both_classes(data, minimum=folds)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(data), dtype=np.int64)
    for cls in (0, 1):
        rows = rng.permutation(np.flatnonzero(data.labels == cls))
        fold_of[rows] = np.arange(rows.size) % folds
    scores = np.zeros(len(data), dtype=np.float32)
    per_fold = []
    for k in range(folds):
        test = np.flatnonzero(fold_of == k)
        model = train(data.take(np.flatnonzero(fold_of != k)), params, seed + k)
        scores[test] = QualityModel(model).score(data.texts.take(pa.array(test, pa.int64())))
        per_fold.append(auc(data.labels[test], scores[test]))
    return {"scores": scores, "fold_auc": [round(a, 4) for a in per_fold], **metrics(data.labels, scores)}


def cv_on_labels(data: Labelled, params: TrainParams, folds: int = 5, seeds=(0, 1, 2)) -> dict:
    aucs = [cross_validate(data, params, folds, seed)["auc"] for seed in seeds]
    return {"auc_mean": round(float(np.mean(aucs)), 4), "auc_std": round(float(np.std(aucs)), 4),
            "seeds": list(seeds), "folds": folds}


# -- a curate run over the shared corpora, without the labelled texts ----------------------------
RUN_CONFIG = """\
stages: [extract, langid, quality]
extract:
  sources:
    "web/**": web
    "academic/**": academic
    "code/**": code
"""


def corpus_tree(dst: Path) -> Path:
    """The shared corpora minus quality/ (the evaluation labels), as hard links (copies if the
    filesystem refuses): the run must never see the texts it is evaluated on."""
    if dst.exists():
        shutil.rmtree(dst)
    for sub in sorted(p for p in CORPORA.iterdir() if p.is_dir() and p.name != "quality"):
        try:
            shutil.copytree(sub, dst / sub.name, copy_function=os.link, symlinks=True)
        except OSError:  # start that folder over as copies (never copy onto a link of the original)
            shutil.rmtree(dst / sub.name, ignore_errors=True)
            shutil.copytree(sub, dst / sub.name, symlinks=True)
    return dst


def corpus_run(run_dir: Path, workers: int = 2, log=print) -> Path:
    """`curate run` (extract, langid, quality with its default rule filters) into run_dir."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "eval-config.yaml"
    config.write_text(RUN_CONFIG)
    tree = corpus_tree(run_dir / "_input")
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "curate.cli", "run", "--config", str(config), "--input", str(tree),
           "--output", str(run_dir / "out"), "--workers", str(workers)]
    subprocess.run(cmd, check=True)
    log(f"corpus run: {time.perf_counter() - t0:.0f}s -> {run_dir / 'out'}")
    return run_dir / "out"


def bootstrap_labels(out: Path, margin: float = 0.0, reference_sources=(),
                     sources=("web", "text")) -> tuple[Labelled, dict]:
    return bootstrap_from_run(out, sources, reference_sources, margin)


def rules_alone(data: Labelled) -> np.ndarray:
    """1 where the quality stage's default rule filters keep a text (as web, English), else 0."""
    from curate import schema
    from curate.stages.quality import QualityConfig, QualityStage

    n = len(data)
    stage = QualityStage(QualityConfig.model_validate({}))
    batch = schema.conform(pa.table({
        "id": [str(i) for i in range(n)], "origin": [f"labels#{i}" for i in range(n)],
        "text": data.texts, "source": ["web"] * n, "lang": ["en"] * n,
    }))
    kept = set(stage.process(batch).kept.column("id").to_pylist())
    return np.array([str(i) in kept for i in range(n)], dtype=np.float64)


def judge(train_data: Labelled, human: Labelled, rule_keep: np.ndarray, params: TrainParams, seeds=(0, 1, 2)) -> dict:
    """Train on `train_data` (a seeded 10% held out), score the human-labelled texts.

    human_auc: the classifier alone. rules_then_classifier_auc: the rules' decision first,
    the classifier's score ordering documents within kept and within removed (what the
    quality stage does when the classifier runs after the rules)."""
    own, alone, combined = [], [], []
    for seed in seeds:
        data, _ = nonempty(train_data)
        train_rows, valid_rows = stratified_split(data.labels, 0.1, seed)
        scorer = QualityModel(train(data.take(train_rows), params, seed))
        own.append(auc(data.labels[valid_rows], scorer.score(data.texts.take(pa.array(valid_rows)))))
        scores = scorer.score(human.texts)
        alone.append(auc(human.labels, scores))
        combined.append(auc(human.labels, rule_keep + scores))
    mean = lambda v: round(float(np.mean(v)), 4)  # noqa: E731
    return {"positives": int(train_data.labels.sum()), "negatives": int(len(train_data) - train_data.labels.sum()),
            "own_valid_auc": mean(own), "human_auc": mean(alone), "human_auc_std": round(float(np.std(alone)), 4),
            "rules_then_classifier_auc": mean(combined)}


# -- speed ---------------------------------------------------------------------------------------
def bench_texts(copies: int) -> list[str]:
    """The labelled texts and the Common Crawl JSONL sample, `copies` times (non-blank only)."""
    texts = [json.loads(line)["text"] for line in LABELS.open()]
    with gzip.open(CORPORA / "web" / "jsonl" / "dolma-cc-sample.jsonl.gz", "rt") as f:
        texts += [json.loads(line)["text"] for line in f]
    return [t for t in texts if t and t.strip()] * copies


def _best(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_scoring(model_path: Path, texts: list[str], rounds: int = 3) -> dict:
    """docs/s of raw fastText batch predict, curate's scorer and the filter on the same texts.

    Raw: `model.predict(list, k=1)` on Python strings with newlines already replaced (the
    least fastText needs; the replacing is not timed). Scorer: `QualityModel.score` from an
    Arrow column of the original texts to float32 (normalisation included). Filter:
    `ClassifierFilter.measure` (scores, per-source columns, ranks). Best of `rounds`,
    taken in turn so all three see the same machine load.
    """
    from curate.filters.classifier import ClassifierConfig, ClassifierFilter
    from curate.text.stats import Docs

    scorer = QualityModel.load(model_path)
    filt = ClassifierFilter(ClassifierConfig(model=model_path))
    raw = [t.replace("\n", " ") for t in texts]
    column = pa.array(texts, pa.large_string())
    docs = Docs(column, source=pa.array(["web", "text"] * (len(texts) // 2) + ["web"] * (len(texts) % 2)))
    def own_work():  # what the scorer adds around predict: normalise, find blanks, hand over strings
        norm = normalize(column)
        blank(norm)
        norm.to_pylist()

    best = {"raw": float("inf"), "score": float("inf"), "filter": float("inf"), "own": float("inf")}
    for _ in range(rounds):
        best["raw"] = min(best["raw"], _best(lambda: scorer.model.predict(raw, k=1), 1))
        best["score"] = min(best["score"], _best(lambda: scorer.score(column), 1))
        best["filter"] = min(best["filter"], _best(lambda: filt.measure(docs), 1))
        best["own"] = min(best["own"], _best(own_work, 1))
    n = len(texts)
    return {"docs": n, "mb": round(sum(len(t.encode()) for t in texts) / 1e6, 1),
            "raw_predict_docs_per_s": round(n / best["raw"]), "score_docs_per_s": round(n / best["score"]),
            "filter_docs_per_s": round(n / best["filter"]),
            "score_vs_raw": round(best["raw"] / best["score"], 3),
            "filter_vs_raw": round(best["raw"] / best["filter"], 3),
            # stabler than the ratios on a shared machine: curate's own work as a share of predict
            "own_work_vs_raw": round(best["own"] / best["raw"], 3)}


def bench(quick: bool = False) -> dict:
    """What scripts/bench.py reports: scoring throughput vs raw fastText predict."""
    with tempfile.TemporaryDirectory(prefix="curate-qc-bench-") as tmp:
        model = Path(tmp) / "quality.bin"
        fit(agreement(), TrainParams(), 0, 0.0, model)
        return bench_scoring(model, bench_texts(1 if quick else 10), rounds=5)


# -- the whole evaluation ------------------------------------------------------------------------
# Bootstrap recipes compared on the human labels: the rules' own labels, a stricter copy of
# them, and the recipe the README recommends (a reference source as extra positives).
BOOTSTRAP_VARIANTS = {
    "rules: kept vs removed": dict(margin=0.0),
    "rules with margin 0.1": dict(margin=0.1),
    "rules + academic reference": dict(margin=0.0, reference_sources=("academic",)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", type=Path, default=Path(tempfile.gettempdir()) / "curate-qc-eval")
    ap.add_argument("--skip-run", action="store_true", help="reuse RUN_DIR/out from an earlier call")
    ap.add_argument("--only", choices=["cv", "bootstrap", "bench"], action="append")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    only = set(args.only or ["cv", "bootstrap", "bench"])
    results: dict = {}
    human = agreement()
    params = TrainParams()
    print(f"labels: {len(human)} texts, {int(human.labels.sum())} positive; params {params}", flush=True)

    if "cv" in only:
        results["cv_on_labels"] = cv_on_labels(human, params)
        print("cv on the labels:", results["cv_on_labels"], flush=True)

    if "bootstrap" in only:
        rule_keep = rules_alone(human)
        results["rules_alone"] = {**metrics(human.labels, rule_keep),
                                  "keep_rate": round(float(rule_keep.mean()), 4)}
        print("rules alone:", results["rules_alone"], flush=True)
        if not args.skip_run:
            corpus_run(args.run_dir, args.workers)
        results["bootstrap"] = {}
        for name, kwargs in BOOTSTRAP_VARIANTS.items():
            data, _ = bootstrap_labels(args.run_dir / "out", **kwargs)
            results["bootstrap"][name] = judge(data, human, rule_keep, params)
            print(f"bootstrap, {name}:", results["bootstrap"][name], flush=True)

    if "bench" in only:
        results["bench"] = bench(quick=False)
        print("bench:", results["bench"], flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
