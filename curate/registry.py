"""Where each stage lives. The canonical order is the pipeline's order."""

from __future__ import annotations

import importlib

# name -> "module:Class", in pipeline order. Every stage ships with curate: a stage whose module
# fails to import is an error that surfaces as itself when the stage is used, never a missing stage.
STAGES = {
    "extract": "curate.stages.extract:ExtractStage",
    "langid": "curate.stages.langid:LangIdStage",
    "quality": "curate.stages.quality:QualityStage",
    "dedup": "curate.stages.dedup:DedupStage",
    "bucket": "curate.stages.bucket:BucketStage",
    "tokenize": "curate.stages.tokenize:TokenizeStage",
}


def names() -> list[str]:
    """Every stage name, in pipeline order."""
    return list(STAGES)


def stage_class(name: str):
    module, cls = STAGES[name].split(":")
    return getattr(importlib.import_module(module), cls)
