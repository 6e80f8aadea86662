"""length: a stage of its own that drops documents too short or too long to train on.

A stage is a class with a pure core: `process(batch)` gets an Arrow table of documents and
returns the kept ones, the removed ones with a `reason` (`length:too_short`), and counters.
curate runs it over shards on Ray, resumes it, and keeps its ledger like any built-in stage; it
may stand anywhere in the config's `stages:` list.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.config import Section
from curate.stage import Result, Stage, split


class LengthConfig(Section):
    min_chars: int = Field(20, ge=0, description="fewer characters: removed as length:too_short")
    max_chars: int | None = Field(None, ge=1, description="more characters: removed as length:too_long")


class LengthStage(Stage):
    name = "length"
    Config = LengthConfig
    adds = ("length_chars",)

    def process(self, batch: pa.Table) -> Result:
        chars = pc.fill_null(pc.utf8_length(batch.column("text")), 0).to_numpy(zero_copy_only=False)
        short = chars < self.config.min_chars
        long = chars > self.config.max_chars if self.config.max_chars is not None else np.zeros(len(chars), bool)
        reasons = np.where(short, "length:too_short", np.where(long, "length:too_long", None))
        keep = ~(short | long)
        table = batch.append_column("length_chars", pa.array(chars, pa.int64()))
        kept, removed = split(table, pa.array(keep), pa.array(reasons, pa.string()))
        return Result(kept, removed, {"length_chars_kept": int(chars[keep].sum())})
