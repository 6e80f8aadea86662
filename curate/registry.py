"""Where each stage lives. The canonical order is the pipeline's order."""

from __future__ import annotations

import importlib
import importlib.util

# name -> "module:Class"; a stage is available once its module exists.
STAGES = {
    "extract": "curate.stages.extract:ExtractStage",
    "langid": "curate.stages.langid:LangIdStage",
    "quality": "curate.stages.quality:QualityStage",
    "dedup": "curate.stages.dedup:DedupStage",
    "bucket": "curate.stages.bucket:BucketStage",
    "tokenize": "curate.stages.tokenize:TokenizeStage",
}


def available() -> list[str]:
    """Stage names whose module is installed, in pipeline order."""
    return [name for name, target in STAGES.items() if importlib.util.find_spec(target.split(":")[0])]


def stage_class(name: str):
    module, cls = STAGES[name].split(":")
    return getattr(importlib.import_module(module), cls)
