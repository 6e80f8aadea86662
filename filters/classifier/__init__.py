"""A fastText quality classifier: the probability that a document is the kind of text the model
was trained to prefer, in the manner of CCNet/LLaMA (Wenzek et al. 2020; Touvron et al. 2023:
"a linear model trained to classify pages used as references in Wikipedia v.s. randomly
sampled pages") and DCLM (Li et al. 2024: keep the top 10% of pages by a fastText score).
Train a model with `curate train-quality`. Beside this filter: model.py (the text a model sees,
loading, `QualityModel.score`), train.py (training, the model card), labels.py (training data
from files or from a run) and metrics.py (AUC, precision/recall).

    quality:
      classifier:
        model: models/quality.bin     # relative to the config file; no model: the filter is off
        languages: [en]               # score only the languages the model was trained on
        threshold_web: 0.65           # remove a web document scoring below this
        threshold_text: 0.65
        threshold_academic: null      # null: not scored (unless listed in `sources`), never removed
        top_fraction: null            # or e.g. 0.3: keep the best 30% of each source in each batch

Scores are not calibrated across corpora: pick thresholds from the score quantiles in the
model card and the `quality_score_<source>` histograms of `curate report`, and try them with
`curate report OUT --what-if quality.classifier.threshold_web=0.7` before re-running.

Signals: `quality_score`, P(positive label) for every scored document (0 for a blank one);
`quality_score_<source>`, the same value for the documents of that source only (NaN for the
rest), so that each source's threshold is a plain `Rule` over a stored column and a what-if
replays it exactly; and `quality_rank`, a document's position from the top among the scored
documents of its source in the same batch, as a share (midrank: 0 = best, 1 = worst).

Removes `quality:classifier:low_score` when the score of the document's source is below its
`threshold_<source>`, and `quality:classifier:below_top_fraction` when `quality_rank` exceeds
`top_fraction`. Top-fraction mode is not a score threshold: the score it cuts at depends on the
batch (`run.batch_docs` documents; a batch's few documents of a rare source are ranked among
themselves), and documents the rules remove are ranked too (filters measure every document),
so it keeps about, not exactly, the top fraction of the corpus. A what-if on `top_fraction`
replays the stored ranks of the batches as they were.

Sources scored: `sources` when given, else those with a threshold (all four with top_fraction);
with `languages`, only documents whose `lang` is listed (others get NaN and are never removed:
a model trained on English text has no opinion on German). The model is loaded once per
worker, when the stage builds its filters.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from curate.filters.classifier.model import POSITIVE, QualityModel
from curate import fasttext_model
from curate.config import ResourcePath
from curate.errors import UserError
from curate.filters.base import Filter, FilterConfig, Rule
from curate.schema import SOURCES
from curate.text.stats import Docs, to_numpy


class ClassifierConfig(FilterConfig):
    model: ResourcePath | None = Field(
        None, description="fastText model from `curate train-quality` (relative to the config file); null: off")
    positive_label: str = Field(POSITIVE, description="the label whose probability is the score")
    threshold_web: float | None = Field(0.5, ge=0, le=1, description="web: a lower score is removed")
    threshold_text: float | None = Field(0.5, ge=0, le=1, description="text: a lower score is removed")
    threshold_code: float | None = Field(None, ge=0, le=1, description="code: a lower score is removed")
    threshold_academic: float | None = Field(None, ge=0, le=1, description="academic: a lower score is removed")
    top_fraction: float | None = Field(
        None, gt=0, le=1, description="keep only this share of each source's best-scored documents per batch")
    languages: list[str] | None = Field(
        None, description="score only documents whose `lang` is listed (the model's languages); null: all")

    @model_validator(mode="after")
    def _usable_model(self) -> "ClassifierConfig":
        if self.model is not None:
            try:  # reads the file's layout only; the worker loads the weights
                labels = fasttext_model.inspect(self.model).labels
            except UserError as e:
                raise ValueError(str(e)) from None
            if self.positive_label not in labels:
                raise ValueError(f"{self.model}: the model has no label {self.positive_label!r}")
        return self


def _rank_within(scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per group: (documents scoring higher + half of those scoring the same) / group size."""
    rank = np.empty(len(scores), dtype=np.float64)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        ordered = np.sort(scores[rows])
        below = np.searchsorted(ordered, scores[rows], side="left")
        upto = np.searchsorted(ordered, scores[rows], side="right")
        higher = rows.size - upto
        rank[rows] = (higher + 0.5 * (upto - below)) / rows.size
    return rank


class ClassifierFilter(Filter):
    name = "classifier"
    Config = ClassifierConfig
    sources = SOURCES
    rules = tuple(Rule("low_score", f"quality_score_{s}", "lt", f"threshold_{s}") for s in SOURCES) + (
        # keep the best `top_fraction` of each source in the batch
        Rule("below_top_fraction", "quality_rank", "gt", "top_fraction"),
    )
    signals = ("quality_score", "quality_rank") + tuple(f"quality_score_{s}" for s in SOURCES)

    def __init__(self, config: ClassifierConfig):
        super().__init__(config)
        self.model = None
        if config.model is None:  # off: measures nothing, adds no column
            self.signals, self.rules = (), ()
            return
        self.model = QualityModel.load(config.model, config.positive_label)

    def applies_to(self) -> tuple[str, ...]:
        if self.config.sources is not None:
            return tuple(self.config.sources)
        if self.config.top_fraction is not None:
            return SOURCES
        return tuple(s for s in SOURCES if getattr(self.config, f"threshold_{s}") is not None)

    def measure(self, docs: Docs) -> dict[str, np.ndarray]:
        if self.model is None:
            return {}
        if docs.source is None:
            raise ValueError("the classifier filter needs each document's source (Docs.source)")
        source = to_numpy(docs.source).astype(object)
        source[source == ""] = "text"  # the stage reads a missing source as text
        rows = np.arange(docs.n)
        if self.config.languages is not None:  # a model judges only the languages it learned
            listed = pc.is_in(docs.lang_array, pa.array(self.config.languages, pa.string()))
            rows = np.flatnonzero(to_numpy(listed))
        score = np.full(docs.n, np.nan)
        rank = np.full(docs.n, np.nan)
        if rows.size:
            text = docs.text if rows.size == docs.n else docs.text.take(pa.array(rows))
            score[rows] = self.model.score(text)
            rank[rows] = _rank_within(score[rows], source[rows])
        out = {"quality_score": score, "quality_rank": rank}
        for s in SOURCES:
            out[f"quality_score_{s}"] = np.where(source == s, score, np.nan)
        return out
