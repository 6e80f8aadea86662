"""tokenize: documents -> token ids, then per-bucket token shards that a training job reads.

Consumes: `text`, `bucket` (documents without one go to the bucket "all"), `id`, `source`, `lang`.
Adds:     `tokens` (list<uint32>, the document's ids followed by the end-of-document id) and
          `token_count` (int32).
Drops:    documents with empty or null text (`tokenize:empty`): they have no tokens to train on.

Steps:
    prepare   the tokenizer, written to OUT/shards/tokenizer.json: the `tokenizer` file the config
              names, copied; or a byte-level BPE of `vocab_size` trained on a sample of the input
              (documents whose id hashes below a rate chosen to give about `train_mb` of text).
    process   per worker, the tokenizer is loaded once; batches are encoded by tiktoken when it
              gives exactly tokenizers' ids (curate.stages.tokenize.engine decides from the JSON;
              the trained tokenizer always qualifies), else by tokenizers' encode_batch_fast, and
              the ids turned into one Arrow list column without a per-token Python loop.
              The executor writes the result to OUT/shards/part-NNNNN.parquet (one per input part).
    finish    regroups those parts into OUT/shards/<bucket>/part-NNNNN.{bin,idx,parquet} of about
              `shard_tokens` tokens (curate.stages.tokenize.shards), and writes OUT/shards/manifest.json with
              the buckets in curriculum order (the bucket stage's `order`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from curate import schema, storage
from curate.stages.tokenize import bpe, shards
from curate.config import ResourcePath, Section
from curate.megatron import Bucket, Manifest, token_dtype, write_manifest
from curate.stage import Result, Stage, split

log = logging.getLogger("curate.tokenize")
TOKENIZER_FILE = "tokenizer.json"
# Text encoded per encoder call: bounds the ids alive at once (tokenizers hands back Python lists,
# ~36 bytes a token; tiktoken 4-byte arrays).
ENCODE_CHUNK_BYTES = 4 << 20


class TokenizeConfig(Section):
    tokenizer: ResourcePath | None = Field(
        None, description="a tokenizer.json (HF tokenizers) to use as is; null: train a byte-level BPE on the input")
    vocab_size: int = Field(32000, ge=260, description="vocabulary of the trained tokenizer, special token included")
    min_frequency: int = Field(2, ge=1, description="a pair seen fewer times is never merged")
    # 8 MB: training time grows with the sample (about 1 CPU second a MB at 32k on varied text);
    # held-out compression is 3.3% below a 64 MB sample's (BENCHMARKS.md, tokenize).
    train_mb: float = Field(8.0, gt=0, description="megabytes of input text sampled to train on")
    eos_token: str = Field(bpe.DEFAULT_EOS, min_length=1, description="appended to every document")
    shard_tokens: int = Field(50_000_000, ge=1, description="tokens per output shard (a longer document gets its own)")
    shuffle: bool = Field(True, description="shuffle documents within each bucket (seeded), else keep input order")
    seed: int = Field(0, ge=0, description="seeds the training sample and the shuffle")

    @model_validator(mode="after")
    def _usable_tokenizer(self) -> TokenizeConfig:
        if self.tokenizer is not None:
            bpe.load(self.tokenizer, self.eos_token)  # a ValueError here is a config error line
        return self


def _chunks(text: pa.Array, limit: int) -> list[tuple[int, int]]:
    """Row ranges of about `limit` text bytes each."""
    if len(text) == 0:
        return []
    ends = np.cumsum(pc.fill_null(pc.binary_length(text), 0).to_numpy(zero_copy_only=False))
    cuts = np.unique(np.searchsorted(ends, np.arange(limit, int(ends[-1]) if ends.size else 0, limit), side="right"))
    bounds = [0] + [int(c) for c in cuts if 0 < c < len(text)] + [len(text)]
    return list(zip(bounds[:-1], bounds[1:]))


# --- prepare: a deterministic training sample and the trainer, as Ray tasks ------------------------


def _text_bytes(part: Path) -> int:
    """Text bytes of a part from the Parquet footer alone (uncompressed size of the text column)."""
    meta = storage.read_metadata(part)
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if "text" not in names:
        return 0
    i = names.index("text")
    return sum(meta.row_group(g).column(i).total_uncompressed_size for g in range(meta.num_row_groups))


def sample_part(item: dict) -> int:
    """Write the documents of one part whose id hashes below the rate; returns their bytes."""
    import xxhash

    table = storage.read_table(item["part"], columns=["id", "text"])
    threshold = int(item["rate"] * 2**64)
    seed = item["seed"]
    ids = pc.fill_null(table.column("id"), "").to_pylist()
    keep = np.fromiter((xxhash.xxh3_64_intdigest(i.encode(), seed=seed) < threshold for i in ids), bool, len(ids))
    sample = table.select(["text"]).filter(pa.array(keep))
    storage.write_parquet(item["out"], sample)
    return int(pc.sum(pc.binary_length(sample.column("text"))).as_py() or 0)


def train_tokenizer(item: dict) -> str:
    """Train on the sample files in name order (a Ray task: one Rayon thread, see curate.stages.tokenize.bpe)."""

    def texts():
        for path in sorted(item["dir"].glob("*.parquet")):
            for batch in storage.parquet_file(path).iter_batches(batch_size=1000, columns=["text"]):
                yield from (t for t in batch.column(0).to_pylist() if t)

    return bpe.train(texts(), item["vocab_size"], item["min_frequency"], item["eos"])


def _bucket_order(input_dir: Path | None) -> list[str]:
    """The curriculum order the bucket stage recorded in its _stats.json, if tokenize reads it."""
    stats = input_dir / "_stats.json" if input_dir else None
    if stats is None or not stats.is_file():
        return []
    return list(json.loads(stats.read_text()).get("bucket_order", []))


class TokenizeStage(Stage):
    name = "tokenize"
    Config = TokenizeConfig
    output_dir = "shards"
    adds = ("tokens", "token_count")

    def __init__(self, config: TokenizeConfig, work_dir: Path | None = None):
        super().__init__(config, work_dir)
        self.shards_dir = work_dir.parent if work_dir is not None else None
        path = self.shards_dir / TOKENIZER_FILE if self.shards_dir is not None else None
        if path is None or not path.is_file():
            path = config.tokenizer  # the driver's instance exists before prepare() writes the file
        self.loaded = bpe.load(path, config.eos_token) if path is not None else None

    def prepare(self, ctx) -> None:
        cfg = self.config
        target = ctx.stage_dir / TOKENIZER_FILE
        if cfg.tokenizer is not None:
            data = cfg.tokenizer.read_bytes()
            if not target.is_file() or target.read_bytes() != data:
                storage.write_bytes(target, data)
        elif not target.is_file():  # a resumed run keeps the tokenizer it trained
            parts = sorted(ctx.input.glob("part-*.parquet"))
            total = sum(_text_bytes(p) for p in parts)
            rate = min(1.0, cfg.train_mb * (1 << 20) / total) if total else 1.0
            sample_dir = ctx.work_dir / "train-sample"
            ctx.map(sample_part, [{"part": p, "rate": rate, "seed": cfg.seed, "out": sample_dir / p.name}
                                  for p in parts], "tokenize: sample")
            text = ctx.map(train_tokenizer, [{"dir": sample_dir, "vocab_size": cfg.vocab_size,
                                              "min_frequency": cfg.min_frequency, "eos": cfg.eos_token}],
                           "tokenize: train")[0]
            storage.write_bytes(target, text.encode())
            storage.remove_tree(sample_dir)
        self.loaded = bpe.load(target, cfg.eos_token)
        encoder = self.loaded.encoder
        log.info("tokenize: encoding with %s (%s)", encoder.name, encoder.why)

    def process(self, batch: pa.Table) -> Result:
        if self.loaded is None:
            raise RuntimeError("tokenize: no tokenizer loaded (prepare() writes OUT/shards/tokenizer.json first)")
        batch = schema.conform(batch)
        has_text = pc.fill_null(pc.greater(pc.binary_length(batch.column("text")), 0), False)
        kept, removed = split(batch, has_text, pa.repeat(pa.scalar("tokenize:empty"), batch.num_rows))
        text = kept.column("text").combine_chunks() if kept.num_rows else pa.array([], pa.large_string())
        offsets, values = [np.zeros(1, np.int32)], []
        for a, z in _chunks(text, ENCODE_CHUNK_BYTES):
            off, ids = self.loaded.encoder.encode(text.slice(a, z - a).to_pylist(), self.loaded.eos_id)
            offsets.append(off[1:] + offsets[-1][-1])
            values.append(ids)
        offsets = np.concatenate(offsets)
        flat = np.concatenate(values) if values else np.zeros(0, np.uint32)
        tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))
        kept = schema.set_column(kept, "tokens", tokens)
        kept = schema.set_column(kept, "token_count", pa.array(np.diff(offsets), pa.int32()))
        return Result(kept, removed, {"tokens": int(flat.size)})

    def finish(self, ctx) -> dict[str, Any]:
        cfg = self.config
        out = ctx.stage_dir
        data = (out / TOKENIZER_FILE).read_bytes()
        spec = data.decode("utf-8")  # the driver's instance loaded it in prepare(): reuse its encoder
        loaded = self.loaded if self.loaded is not None and self.loaded.spec == spec else bpe.from_text(spec, cfg.eos_token)
        dtype = token_dtype(loaded.vocab_size).name
        plan = shards.make_layout(sorted(out.glob("part-*.parquet")), _bucket_order(ctx.input),
                                     cfg.shard_tokens, cfg.shuffle, cfg.seed)
        files = shards.build(plan, out, ctx.work_dir / "finish", dtype, ctx.map)
        buckets = tuple(Bucket(name, sum(f.documents for f in fs), sum(f.tokens for f in fs), tuple(fs))
                        for name, fs in files.items())
        sha = hashlib.sha256(data).hexdigest()
        write_manifest(out, Manifest(TOKENIZER_FILE, sha, dtype, loaded.eos_id, loaded.vocab_size, buckets))
        return {
            "tokenizer": {"path": TOKENIZER_FILE, "sha256": sha, "trained": cfg.tokenizer is None,
                          "vocab_size": loaded.vocab_size, "eos_id": loaded.eos_id},
            "engine": {"name": loaded.encoder.name, "why": loaded.encoder.why},
            "dtype": dtype,
            "tokens": sum(b.tokens for b in buckets),
            "shard_tokens": cfg.shard_tokens,
            "buckets": [{"name": b.name, "documents": b.documents, "tokens": b.tokens, "shards": len(b.files)}
                        for b in buckets],
        }
