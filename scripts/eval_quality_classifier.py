"""The quality classifier against human judgement, and its scoring speed.

    python scripts/eval_quality_classifier.py                 # everything below (~10 min on 2 cores)
    python scripts/eval_quality_classifier.py --skip-run --run-dir /tmp/qc-run   # reuse a run
    python scripts/eval_quality_classifier.py --only bench

Human labels: ../shared/corpora/quality/dclm-agreement.jsonl, 281 Common Crawl texts with a
0/1 quality label (DCLM's annotated data). Every figure is an AUC (or precision/recall at a
threshold) on these labels.

  cv          5-fold stratified cross-validation trained on the labels themselves, mean over
              seeds: what a model of this kind reaches with ~225 in-domain human labels.
  bootstrap   `curate train-quality --from-run`: a run of extract -> quality (rule filters
              only) over the shared corpora *without* quality/ (the labelled texts never enter
              it), positives = documents kept with margin (plus a reference source),
              negatives = rule-removed documents; then scored on the 281 labelled texts.
  rules       the quality stage's rule filters alone on the 281 texts: kept = 1, removed = 0,
              so its AUC is (TPR + TNR) / 2; and rules AND classifier at the same keep rate.
  bench       docs/s of raw fastText `predict(list, k=1)` vs `QualityModel.score` (Arrow column
              in, float32 out) vs the classifier filter's `process`, on the same texts.
              `bench(quick)` is what scripts/bench.py imports.
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
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate import classifier
from curate.classifier import Labelled, TrainParams

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("CURATE_SHARED", ROOT.parent / "shared")) / "corpora"
LABELS = CORPORA / "quality" / "dclm-agreement.jsonl"


def agreement() -> Labelled:
    return classifier.read_labelled(LABELS)


# -- cross-validation on the human labels ------------------------------------------------------
def cv_on_labels(data: Labelled, params: TrainParams, folds: int = 5, seeds=(0, 1, 2)) -> dict:
    aucs = [classifier.cross_validate(data, params, folds, seed)["auc"] for seed in seeds]
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
        except OSError:
            shutil.copytree(sub, dst / sub.name, symlinks=True, dirs_exist_ok=True)
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


def bootstrap_model(out: Path, model_path: Path, params: TrainParams, margin: float = 0.1,
                    reference_sources=(), sources=("web", "text"), seed: int = 0, balance: bool = False) -> dict:
    data, summary = classifier.bootstrap_from_run(out, sources, reference_sources, margin)
    if balance:
        data = classifier.balance(data, seed)
    card = classifier.fit(data, params, seed, 0.1, model_path, provenance={"bootstrap": summary})
    return card


def score_labels(model_path: Path, data: Labelled) -> np.ndarray:
    return classifier.QualityModel.load(model_path).score(data.texts)


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
    """docs/s of raw fastText batch predict and of curate's scoring on the same texts.

    Raw: `model.predict(list, k=1)` on Python strings with newlines already replaced (the
    least fastText needs; the replacing is not timed). Curate: `QualityModel.score` from an
    Arrow column of the original texts to a float32 array (normalisation included). Best of
    `rounds`, alternating, so both see the same machine load.
    """
    scorer = classifier.QualityModel.load(model_path)
    raw = [t.replace("\n", " ") for t in texts]
    column = pa.array(texts, pa.large_string())
    t_raw = t_score = float("inf")
    for _ in range(rounds):
        t_raw = min(t_raw, _best(lambda: scorer.model.predict(raw, k=1), 1))
        t_score = min(t_score, _best(lambda: scorer.score(column), 1))
    mb = sum(len(t.encode()) for t in texts) / 1e6
    return {"docs": len(texts), "mb": round(mb, 1),
            "raw_predict_docs_per_s": round(len(texts) / t_raw), "score_docs_per_s": round(len(texts) / t_score),
            "score_vs_raw": round(t_raw / t_score, 3)}


def bench(quick: bool = False) -> dict:
    """What scripts/bench.py reports: scoring throughput vs raw fastText predict."""
    with tempfile.TemporaryDirectory(prefix="curate-qc-bench-") as tmp:
        model = Path(tmp) / "quality.bin"
        classifier.fit(agreement(), TrainParams(), 0, 0.0, model)
        return bench_scoring(model, bench_texts(1 if quick else 10), rounds=2 if quick else 3)


# -- the whole evaluation ------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", type=Path, default=Path(tempfile.gettempdir()) / "curate-qc-eval")
    ap.add_argument("--skip-run", action="store_true", help="reuse RUN_DIR/out from an earlier call")
    ap.add_argument("--only", choices=["cv", "bootstrap", "rules", "bench"], action="append")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    only = set(args.only or ["cv", "bootstrap", "rules", "bench"])
    results: dict = {}
    data = agreement()
    params = TrainParams()
    print(f"labels: {len(data)} texts, {int(data.labels.sum())} positive", flush=True)

    if "cv" in only:
        results["cv"] = cv_on_labels(data, params)
        print("cv on labels:", results["cv"], flush=True)

    if {"bootstrap", "rules"} & only:
        out = args.run_dir / "out"
        if not args.skip_run:
            corpus_run(args.run_dir, args.workers)
        results["bootstrap"] = {}
        for name, kwargs in BOOTSTRAP_VARIANTS.items():
            model = args.run_dir / f"boot-{name}.bin"
            card = bootstrap_model(out, model, params, **kwargs)
            scores = score_labels(model, data)
            boot = card["data"]["bootstrap"]
            results["bootstrap"][name] = {
                "positives": card["data"]["positive"], "negatives": card["data"]["negative"],
                "own_valid_auc": card["metrics"]["valid"]["auc"], "human_auc": round(classifier.auc(data.labels, scores), 4),
                "negative_reasons": dict(list(boot["negative_reasons"].items())[:5]),
            }
            print(f"bootstrap {name}:", results["bootstrap"][name], flush=True)

    if "bench" in only:
        results["bench"] = bench(quick=False)
        print("bench:", results["bench"], flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


BOOTSTRAP_VARIANTS = {
    "margin0.1": dict(margin=0.1),
    "margin0": dict(margin=0.0),
    "margin0.25": dict(margin=0.25),
    "margin0.1+academic": dict(margin=0.1, reference_sources=("academic",)),
    "margin0.1-balanced": dict(margin=0.1, balance=True),
}


if __name__ == "__main__":
    main()
