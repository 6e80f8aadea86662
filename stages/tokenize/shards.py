"""Tokenized documents, one Parquet part per input shard -> per-bucket token shards of a set size.

The tokenize stage's map writes OUT/shards/part-NNNNN.parquet: each input shard's documents with
`bucket`, `tokens` (ending with EOS) and `token_count`. Its `finish` calls `build` to regroup them:

    OUT/shards/<bucket>/part-00000.bin + .idx   Megatron-LM indexed dataset (curate.megatron)
    OUT/shards/<bucket>/part-00000.parquet      id, tokens, bucket, source, lang: the same documents

in three steps, each a pure function of its inputs, so two runs give byte-identical shards:

1. plan (driver): reads only `bucket` and `token_count` of each part. A bucket's documents are
   taken in part order, or in a permutation seeded by (seed, bucket name); a shard is filled until
   the next document would take it past `shard_tokens` (a longer document gets a shard of its
   own). Memory: a few arrays of one number per document.
2. scatter (a task per input part): reads the part once and writes, for every output shard it
   feeds, those documents and their positions in the shard to a spill file.
3. gather (a task per output shard): reads its spill files, puts the documents in plan order and
   writes .parquet, .bin and .idx (each atomically), then its done-file, then drops its spill files.

A task holds one input part or one output shard in memory, never a bucket. Done-files under
`work/_done/` (curate.storage) let a killed finish resume where it stopped; they are only trusted
for the same plan (its digest is in work/plan.json; a different plan clears them and the old
bucket folders).
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import storage
from curate.megatron import IndexedDatasetWriter, ShardFile

UNBUCKETED = "all"  # the bucket of documents that reached tokenize without a bucket stage
SHARD_COLUMNS = ("id", "tokens", "bucket", "source", "lang")
# A bucket names a folder of the shards directory, OUT/shards/<bucket>/, beside the executor's.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_RESERVED = {"removed"}


def check_bucket_name(name: str) -> str:
    if not _BUCKET_NAME.match(name) or name in _RESERVED:
        raise ValueError(f"bucket {name!r} cannot name a shards folder: use lower-case letters, digits, _ or -"
                         f" (not {', '.join(sorted(_RESERVED))})")
    return name


@dataclass(frozen=True)
class OutputShard:
    bucket: str
    index: int
    documents: int
    tokens: int
    parts: tuple[int, ...]  # indices of the input parts that feed it

    @property
    def prefix(self) -> str:
        return f"{self.bucket}/part-{self.index:05d}"


@dataclass
class ShardLayout:
    buckets: list[str]  # every bucket that has documents, in curriculum order
    shards: list[OutputShard]  # bucket by bucket, in order
    parts: list[Path]
    # Per input part, one entry per row: bucket index, shard index within the bucket, position in the shard.
    assignment: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    digest: str


def _part_columns(path: Path) -> tuple[pa.Array, np.ndarray]:
    names = storage.read_schema(path).names
    table = storage.read_table(path, columns=[c for c in ("bucket", "token_count") if c in names])
    if "bucket" in names:
        bucket = pc.fill_null(pc.cast(table.column("bucket").combine_chunks(), pa.string()), UNBUCKETED)
    else:
        bucket = pa.repeat(pa.scalar(UNBUCKETED, pa.string()), table.num_rows)
    return bucket, table.column("token_count").to_numpy().astype(np.int64)


def _cut(tokens: np.ndarray, shard_tokens: int) -> np.ndarray:
    """Shard index of each document (in order): fill a shard up to shard_tokens, never past it
    unless one document alone is longer. One iteration per shard, not per document."""
    ends = np.cumsum(tokens)
    shard = np.empty(tokens.size, dtype=np.int32)
    start, k = 0, 0
    while start < tokens.size:
        base = ends[start] - tokens[start]
        stop = max(int(np.searchsorted(ends, base + shard_tokens, side="right")), start + 1)
        shard[start:stop] = k
        start, k = stop, k + 1
    return shard


def make_layout(parts: list[Path], order: list[str], shard_tokens: int, shuffle: bool, seed: int) -> ShardLayout:
    """Which output shard, and which position in it, each document of each part goes to."""
    columns = [_part_columns(p) for p in parts]
    found = set()
    for bucket, _ in columns:
        found.update(bucket.unique().to_pylist())
    names = [b for b in order if b in found] + sorted(found - set(order))
    for name in names:
        check_bucket_name(name)
    index = pa.array(names, pa.string())
    code = np.concatenate([pc.index_in(b, value_set=index).to_numpy() for b, _ in columns] or [np.zeros(0, np.int32)])
    tokens = np.concatenate([t for _, t in columns] or [np.zeros(0, np.int64)])
    part_of = np.repeat(np.arange(len(parts), dtype=np.int32), [len(t) for _, t in columns])
    shard_of = np.zeros(code.size, dtype=np.int32)
    pos_of = np.zeros(code.size, dtype=np.int32)
    shards: list[OutputShard] = []
    for b, name in enumerate(names):
        docs = np.flatnonzero(code == b)
        if shuffle:
            docs = docs[np.random.default_rng([seed, zlib.crc32(name.encode())]).permutation(docs.size)]
        shard = _cut(tokens[docs], shard_tokens)
        first = np.flatnonzero(np.r_[True, shard[1:] != shard[:-1]])
        shard_of[docs] = shard
        pos_of[docs] = np.arange(docs.size) - first[shard]
        counts = np.diff(np.r_[first, docs.size])
        sums = np.add.reduceat(tokens[docs], first)
        # (shard, part) pairs, sorted by shard: which parts feed each shard.
        feeds = np.unique(shard.astype(np.int64) * len(parts) + part_of[docs])
        cuts = np.searchsorted(feeds // len(parts), np.arange(first.size + 1))
        for k in range(first.size):
            sources = feeds[cuts[k]:cuts[k + 1]] % len(parts)
            shards.append(OutputShard(name, k, int(counts[k]), int(sums[k]), tuple(int(p) for p in sources)))
    bounds = np.cumsum([0] + [len(t) for _, t in columns])
    assignment = [(code[a:z].astype(np.int16), shard_of[a:z], pos_of[a:z]) for a, z in zip(bounds[:-1], bounds[1:])]
    h = hashlib.sha256(json.dumps([names, shard_tokens, shuffle, seed, [p.name for p in parts]]).encode())
    for arr in (code, tokens, shard_of, pos_of):
        h.update(arr.tobytes())
    return ShardLayout(names, shards, list(parts), assignment, h.hexdigest()[:16])


# --- the tasks (module-level functions, so Ray pickles them by reference) --------------------------


def scatter(item: dict) -> dict:
    """Split one input part into the spill files of the output shards it feeds."""
    return storage.resumable(item["work"], f"scatter/{item['name']}", lambda: _scatter(item))


def _scatter(item: dict) -> dict:
    bucket, shard, pos = item["bucket"], item["shard"], item["pos"]
    if bucket.size == 0:  # every document of the part was removed
        return {"documents": 0}
    table = storage.read_table(item["part"], columns=["id", "tokens", "source", "lang"])
    order = np.lexsort((pos, shard, bucket))
    key = bucket[order].astype(np.int64) << 32 | shard[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    for a, z in zip(starts, np.r_[starts[1:], order.size]):
        rows = order[a:z]
        piece = table.take(pa.array(rows)).append_column("pos", pa.array(pos[rows], pa.int32()))
        name, k = item["buckets"][bucket[rows[0]]], int(shard[rows[0]])
        storage.write_parquet(item["spill"] / name / f"{k:05d}" / f"{item['name']}.parquet", piece)
    return {"documents": int(order.size)}


def gather(item: dict) -> dict:
    """Write one output shard from its spill files: .parquet, .bin and .idx, then its done-file."""
    record = storage.resumable(item["work"], f"gather/{item['prefix']}", lambda: _gather(item))
    storage.remove_tree(item["spill"])  # only once committed: until then a retry reads them
    return record


def _gather(item: dict) -> dict:
    spill = item["spill"]
    pieces = [storage.read_table(spill / f"{name}.parquet") for name in item["parts"]]
    table = pa.concat_tables(pieces)
    table = table.take(pc.sort_indices(table, [("pos", "ascending")]))
    if not np.array_equal(table.column("pos").to_numpy(), np.arange(item["documents"])):
        raise RuntimeError(f"{item['prefix']}: spill files hold {table.num_rows} documents, the plan {item['documents']}")
    tokens = table.column("tokens").combine_chunks()
    flat = pc.list_flatten(tokens).to_numpy()
    lengths = pc.list_value_length(tokens).to_numpy()
    if flat.size != item["tokens"]:
        raise RuntimeError(f"{item['prefix']}: {flat.size} tokens, the plan says {item['tokens']}")
    prefix = item["out"] / item["prefix"]
    out = table.select(["id", "tokens", "source", "lang"])
    out = out.add_column(2, "bucket", pa.repeat(pa.scalar(item["bucket"], pa.string()), out.num_rows))
    storage.write_parquet(prefix.with_name(prefix.name + ".parquet"), out.select(list(SHARD_COLUMNS)))
    with IndexedDatasetWriter(prefix, item["dtype"]) as writer:
        writer.add_documents(flat, lengths)
    return {"documents": int(lengths.size), "tokens": int(flat.size)}


# --- the driver side ---------------------------------------------------------------------------------


def _reset_if_stale(plan: ShardLayout, out: Path, work: Path) -> None:
    record = work / "plan.json"
    if record.is_file():
        old = json.loads(record.read_text())
        if old.get("digest") == plan.digest:
            return
        for name in old.get("buckets", []):
            storage.remove_tree(out / name)
    storage.remove_tree(work)
    work.mkdir(parents=True)
    storage.write_json(record, {"digest": plan.digest, "buckets": plan.buckets})


def build(plan: ShardLayout, out: Path, work: Path, dtype: str, map_fn: Callable = None) -> dict[str, list[ShardFile]]:
    """Run scatter and gather with `map_fn(fn, items)` (ctx.map, or a plain map in tests);
    returns each bucket's files in order."""
    map_fn = map_fn or (lambda fn, items, desc="": [fn(i) for i in items])
    out, work = storage.location(out), storage.location(work)
    _reset_if_stale(plan, out, work)
    spill = work / "spill"
    map_fn(scatter, [
        {"part": path, "name": path.stem, "buckets": plan.buckets, "bucket": b, "shard": s, "pos": p,
         "spill": spill, "work": work}
        for path, (b, s, p) in zip(plan.parts, plan.assignment)
    ], "tokenize: scatter")
    items = [
        {"bucket": sh.bucket, "prefix": sh.prefix, "documents": sh.documents, "tokens": sh.tokens,
         "parts": [plan.parts[i].stem for i in sh.parts], "spill": spill / sh.bucket / f"{sh.index:05d}",
         "out": out, "dtype": dtype, "work": work}
        for sh in plan.shards
    ]
    results = map_fn(gather, items, "tokenize: gather")
    storage.remove_tree(spill)  # only empty folders are left once every shard is gathered
    files: dict[str, list[ShardFile]] = {name: [] for name in plan.buckets}
    for sh, res in zip(plan.shards, results):
        files[sh.bucket].append(ShardFile(f"{sh.prefix}.bin", f"{sh.prefix}.idx", f"{sh.prefix}.parquet",
                                          res["documents"], res["tokens"]))
    return files
