"""The global steps of the dedup stage: map functions over input parts or key groups.

Every step is a module-level function of one item (a `DedupJob` and an index) that `ctx.map` runs
as a Ray task. It reads what the step before wrote under the work directory and writes its own
files atomically, then a done-file listing them (`curate.storage.resumable`); an item whose
done-file and files exist is skipped, so a killed run resumes where it stopped and a deleted
intermediate file is rebuilt.

Documents are named by a 64-bit key, `part_no << 32 | row`. A part belongs to group
`part_no % groups`; every shuffle writes one file per (destination group, source item), so a
group's worker reads only its own files. The steps, in order:

  sign      part  -> sign/P (exact hash, signature, keep-policy fields) and bands/gK/P
                       (bucket key -> doc, one entry per band plus one for the exact hash)
  bucket    group -> cand/gA/bK: document pairs sharing a bucket, sent to the group of `a`
  attach    group -> side/gB/fA: pairs with a's signature and fields, sent to the group of `b`
  compare   group -> verified/sig-gB (sure by signature, or exact copies) and ambig/gA/fB
                       (pairs near the threshold, keys and fields)
  join      one   -> joined/labels: components of the verified pairs so far
  exact     group -> verified/exact-gA: the near-threshold pairs not already joined with exact
                       Jaccard >= threshold
  contract  group -> comp/gG (star edges of the group's components) and ranks/gG
  decide    one   -> decisions/P: per document its cluster, cluster size, kept id and reason
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import storage
from curate.stages.dedup import components, minhash
from curate.stage import merge_counters
from curate.storage import write_parquet

ROW_BITS = 32
ROW_MASK = (1 << ROW_BITS) - 1
EXACT_SALT = np.uint64(0xE7AC7E7AC7E7AC7)

PAIR_SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.int64())])
# One entry per (document, band) and one per document for its exact hash (`is_exact`); `exact`
# is the low half of the document's exact hash either way.
BAND_SCHEMA = pa.schema([("bkey", pa.uint64()), ("doc", pa.int64()), ("exact", pa.uint64()), ("is_exact", pa.bool_())])


@dataclass(frozen=True)
class DedupJob:
    """What every step needs to know; small and picklable."""

    work: storage.PathLike
    parts: tuple[tuple[str, storage.PathLike], ...]  # (name, input part), index = part number
    groups: int
    hasher: minhash.Hasher
    threshold: float
    margin: float  # pairs whose estimate is within this of the threshold get exact Jaccard
    max_bucket: int  # buckets up to this size give all pairs, larger ones a star

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)

    def group_of(self, keys: np.ndarray) -> np.ndarray:
        return (keys >> ROW_BITS) % self.groups

    @property
    def sig_schema(self) -> pa.Schema:
        return pa.schema([
            ("key", pa.int64()), ("id", pa.string()), ("quality", pa.float64()), ("length", pa.int64()),
            ("exact_hi", pa.uint64()), ("exact_lo", pa.uint64()), ("n_shingles", pa.int32()),
            ("sig", pa.list_(pa.uint32(), self.hasher.num_perm)),
        ])


# -- files ---------------------------------------------------------------------------------
def read_all(paths: list[Path], schema: pa.Schema | None = None) -> pa.Table:
    """All rows of `paths` (written by the same step, so of one schema)."""
    tables = [storage.read_table(p) for p in paths]
    nonempty = [t for t in tables if t.num_rows]
    if nonempty:
        return pa.concat_tables(nonempty)
    if tables:
        return tables[0]
    if schema is None:
        raise FileNotFoundError("no input files for this step")
    return schema.empty_table()


def run_item(plan: DedupJob, step: str, item: str, fn) -> dict:
    """Run `fn() -> (files, stats)` unless a done-file says its files are already there."""

    def work() -> dict:
        t0, c0 = time.perf_counter(), time.process_time()
        files, stats = fn()
        release_memory()
        # CPU seconds too: on a busy machine a task's wall time says more about its neighbours
        return {"files": [f.relative_to(plan.work).as_posix() for f in files],
                "seconds": round(time.perf_counter() - t0, 4), "cpu_seconds": round(time.process_time() - c0, 4), **stats}

    return storage.resumable(plan.path(), f"{step}/{item}", work)


def release_memory() -> None:
    """Hand freed memory back to the OS after a step's item: a Ray worker stays alive between
    tasks, and Arrow's pool and glibc otherwise keep part of its largest item mapped."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _scatter(plan: DedupJob, table: pa.Table, dest_groups: np.ndarray, subdir: str, name: str) -> list[Path]:
    """Write `table` split by destination group as subdir/gXXX/name.parquet (every group)."""
    order = np.argsort(dest_groups, kind="stable")
    table = table.take(order)
    bounds = np.searchsorted(dest_groups[order], np.arange(plan.groups + 1))
    files = []
    for g in range(plan.groups):
        path = plan.path(subdir, f"g{g:03d}", f"{name}.parquet")
        write_parquet(path, table.slice(bounds[g], bounds[g + 1] - bounds[g]))
        files.append(path)
    return files


def _inbox(plan: DedupJob, subdir: str, g: int) -> list[Path]:
    return sorted(plan.path(subdir, f"g{g:03d}").glob("*.parquet"))


def part_name(plan: DedupJob, part_no: int) -> str:
    return plan.parts[part_no][0]


# -- per-document lookups ------------------------------------------------------------------
def load_fields(plan: DedupJob, keys: np.ndarray, columns: list[str]) -> pa.Table:
    """Rows of sign/P for `keys` (sorted, unique), in key order."""
    pieces = []
    parts = keys >> ROW_BITS
    bounds = np.flatnonzero(np.diff(parts)) + 1
    for chunk in np.split(keys, bounds):
        if chunk.size == 0:
            continue
        table = storage.read_table(plan.path("sign", f"{part_name(plan, int(chunk[0] >> ROW_BITS))}.parquet"), columns=columns)
        pieces.append(table.take(pa.array(chunk & ROW_MASK)))
    if not pieces:
        return pa.schema([plan.sig_schema.field(c) for c in columns]).empty_table()
    return pa.concat_tables(pieces)


def load_shingle_sets(plan: DedupJob, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique shingle hashes of each document in `keys` (sorted, unique), re-read from the
    input parts: (hashes, offsets)."""
    all_h, all_n = [], []
    parts = keys >> ROW_BITS
    bounds = np.flatnonzero(np.diff(parts)) + 1
    for chunk in np.split(keys, bounds):
        if chunk.size == 0:
            continue
        path = plan.parts[int(chunk[0] >> ROW_BITS)][1]
        texts = storage.read_table(path, columns=["text"]).column("text").take(pa.array(chunk & ROW_MASK))
        h, n = shingle_sets(plan.hasher, texts)
        all_h.append(h)
        all_n.append(n)
    if not all_h:
        return np.zeros(0, np.uint64), np.zeros(1, np.int64)
    counts = np.concatenate(all_n)
    return np.concatenate(all_h), np.concatenate([[0], np.cumsum(counts)])


def shingle_sets(hasher: minhash.Hasher, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(each document's shingle hashes cut to their low 52 bits, unique and sorted, grouped by
    document; count per document): the order in which exact_jaccard merges instead of sorting."""
    buf, off = minhash.normalise(texts)
    h, s_off = minhash.shingle_hashes(buf, off, hasher.ngram, hasher.unit)
    h &= HASH_MASK
    doc = np.repeat(np.arange(s_off.size - 1), np.diff(s_off))
    order = np.lexsort((h, doc))  # by document, then hash: one sort for the whole batch
    h, doc = h[order], doc[order]
    first = np.ones(h.size, bool)
    first[1:] = (h[1:] != h[:-1]) | (doc[1:] != doc[:-1])
    return h[first], np.bincount(doc[first], minlength=s_off.size - 1).astype(np.int64)


# Pairs compared at once in exact_jaccard: bounds its temporaries to some tens of megabytes. A
# pair's index takes the top PAIR_BITS bits of a sort key, the shingle hash's low 52 bits the rest.
JACCARD_PAIRS = 4096
PAIR_BITS = 12
HASH_MASK = np.uint64((1 << (64 - PAIR_BITS)) - 1)


def exact_jaccard(sets: tuple[np.ndarray, np.ndarray], ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Jaccard of the sets ia[i] and ib[i] of `sets` = (hashes, offsets), each set without
    repeats (faster when each is sorted by its low 52 bits, as shingle_sets gives them: the sort
    below then merges two sorted runs). Two hashes meet when their low 52 bits are equal: a false
    match has a chance of |A||B| / 2^52 per pair."""
    hs, off = sets
    n = ia.size
    out = np.zeros(n, np.float64)
    for p0 in range(0, n, JACCARD_PAIRS):
        p1 = min(n, p0 + JACCARD_PAIRS)
        (ha, oa), (hb, ob) = _per_pair(hs, off, ia[p0:p1]), _per_pair(hs, off, ib[p0:p1])
        na, nb = np.diff(oa), np.diff(ob)
        tag = np.arange(p1 - p0, dtype=np.uint64) << np.uint64(64 - PAIR_BITS)
        keys = np.concatenate([(ha & HASH_MASK) | np.repeat(tag, na), (hb & HASH_MASK) | np.repeat(tag, nb)])
        keys.sort(kind="stable")  # two sorted runs when the sets are sorted: a linear merge
        same = keys[1:][keys[1:] == keys[:-1]]
        inter = np.bincount((same >> np.uint64(64 - PAIR_BITS)).astype(np.int64), minlength=p1 - p0)
        union = na + nb - inter
        out[p0:p1] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return out


def _per_pair(hs: np.ndarray, off: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sets of documents `which` (indexes into the (hs, off) sets), laid out one per pair."""
    counts = np.diff(off)[which]
    starts = np.concatenate([[0], np.cumsum(counts)])
    idx = np.repeat(off[:-1][which] - starts[:-1], counts) + np.arange(starts[-1])
    return hs[idx], starts


# -- steps -----------------------------------------------------------------------------------
def sign(args: tuple[DedupJob, int]) -> dict:
    plan, part_no = args
    name, path = plan.parts[part_no]

    def work():
        pf = storage.parquet_file(path)
        has_quality = "quality_score" in pf.schema_arrow.names
        columns = ["id", "text"] + (["quality_score"] if has_quality else [])
        tables, entries, row0 = [], [], 0
        h = plan.hasher
        for batch in pf.iter_batches(batch_size=2000, columns=columns):
            text = batch.column("text")
            out = h.hash_texts(text)
            n = batch.num_rows
            keys = (np.int64(part_no) << ROW_BITS) | np.arange(row0, row0 + n, dtype=np.int64)
            row0 += n
            quality = batch.column("quality_score").cast(pa.float64()) if has_quality else pa.nulls(n, pa.float64())
            sig = pa.FixedSizeListArray.from_arrays(pa.array(out["signature"].reshape(-1)), h.num_perm)
            tables.append(pa.table({
                "key": keys, "id": batch.column("id").cast(pa.string()), "quality": quality,
                "length": pc.fill_null(pc.utf8_length(text.cast(pa.large_string())), 0).cast(pa.int64()),
                "exact_hi": out["exact"][:, 0], "exact_lo": out["exact"][:, 1],
                "n_shingles": out["n_shingles"], "sig": sig,
            }, schema=plan.sig_schema))
            # bucket entries: every band of documents with shingles, and the exact hash of all
            has = out["n_shingles"] > 0
            band_keys = out["bands"][has].reshape(-1)
            band_docs = np.repeat(keys[has], h.bands)
            ex = out["exact"][:, 1]
            exact_keys = minhash.fmix64(ex ^ EXACT_SALT)
            entries.append(pa.table({
                "bkey": np.concatenate([band_keys, exact_keys]), "doc": np.concatenate([band_docs, keys]),
                "exact": np.concatenate([np.repeat(ex[has], h.bands), ex]),
                "is_exact": np.concatenate([np.zeros(band_keys.size, bool), np.ones(n, bool)])}, schema=BAND_SCHEMA))
        table = pa.concat_tables(tables) if tables else plan.sig_schema.empty_table()
        bands = pa.concat_tables(entries) if entries else BAND_SCHEMA.empty_table()
        bkey = bands.column("bkey").to_numpy()
        files = _scatter(plan, bands, (bkey % np.uint64(plan.groups)).astype(np.int64), "bands", name)
        sign_path = plan.path("sign", f"{name}.parquet")
        write_parquet(sign_path, table)
        n_sh = table.column("n_shingles").to_numpy()
        return files + [sign_path], {"docs": table.num_rows, "shingles": int(n_sh.sum()),
                                     "no_shingles": int((n_sh == 0).sum())}

    return run_item(plan, "sign", name, work)


def bucket_pairs(bkey: np.ndarray, doc: np.ndarray, max_bucket: int, exact: np.ndarray | None = None,
                 is_exact: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Document pairs (a < b) sharing a bucket key, unique: all pairs in buckets of up to
    `max_bucket` documents, a star around the smallest key in larger ones.

    With `exact` (each entry's exact hash) and `is_exact` (entries of exact-hash buckets):
    an exact-hash bucket gives a star (its documents are copies of one another: the star joins
    them all), and a band bucket keeps one document per exact hash, the smallest key (copies have
    equal signatures, so all of them meet in every band bucket of one: the star of their exact
    bucket links the rest). A cluster's pairs then grow with its distinct texts, not its copies."""
    if exact is not None:
        band = ~is_exact
        order = np.lexsort((doc[band], exact[band], bkey[band]))
        bk, ex, dc = bkey[band][order], exact[band][order], doc[band][order]
        first = np.ones(bk.size, bool)
        first[1:] = (bk[1:] != bk[:-1]) | (ex[1:] != ex[:-1])
        a1, b1 = bucket_pairs(bk[first], dc[first], max_bucket)
        a2, b2 = bucket_pairs(bkey[is_exact], doc[is_exact], 2)  # max 2: every exact bucket a star
        return unique_pairs(np.concatenate([a1, a2]), np.concatenate([b1, b2]))
    order = np.lexsort((doc, bkey))
    bkey, doc = bkey[order], doc[order]
    start = np.flatnonzero(np.concatenate([[True], bkey[1:] != bkey[:-1]]))
    size = np.diff(np.append(start, bkey.size))
    # rank of each entry inside its bucket, and its bucket's size
    rank = np.arange(bkey.size) - np.repeat(start, size)
    bsize = np.repeat(size, size)
    small = bsize <= max_bucket
    # small buckets: entry at rank r pairs with the (size - 1 - r) entries after it
    follow = np.where(small, bsize - 1 - rank, 0)
    left = np.repeat(np.arange(bkey.size), follow)
    step = np.arange(left.size) - np.repeat(np.cumsum(follow) - follow, follow) + 1
    a_small, b_small = doc[left], doc[left + step]
    # large buckets: every entry after the first pairs with the first (the smallest key)
    big = ~small & (rank > 0)
    a_big = doc[np.flatnonzero(big) - rank[big]]
    a = np.concatenate([a_small, a_big])
    b = np.concatenate([b_small, doc[big]])
    keep = a != b
    return unique_pairs(a[keep], b[keep])


def unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.size == 0:
        return a, b
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    first = np.ones(a.size, bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[first], b[first]


def bucket(args: tuple[DedupJob, int]) -> dict:
    plan, k = args

    def work():
        t = read_all(_inbox(plan, "bands", k), BAND_SCHEMA)
        col = lambda name: t.column(name).to_numpy()  # noqa: E731
        a, b = bucket_pairs(col("bkey"), col("doc"), plan.max_bucket, col("exact"), col("is_exact"))
        files = _scatter(plan, pa.table({"a": a, "b": b}, schema=PAIR_SCHEMA), plan.group_of(a), "cand", f"b{k:03d}")
        return files, {"entries": t.num_rows, "pairs": int(a.size)}

    return run_item(plan, "bucket", f"g{k:03d}", work)


SIDE_FIELDS = ["id", "quality", "length", "exact_hi", "exact_lo", "n_shingles"]


def _with_side(plan: DedupJob, pairs: pa.Table, side: str, columns: list[str]) -> pa.Table:
    """Append `columns` of document `side` (a or b) as `<column>_<side>`."""
    keys = pairs.column(side).to_numpy()
    uniq, inv = np.unique(keys, return_inverse=True)
    fields = load_fields(plan, uniq, columns).take(pa.array(inv))
    for c in columns:
        pairs = pairs.append_column(f"{c}_{side}", fields.column(c))
    return pairs


def attach(args: tuple[DedupJob, int]) -> dict:
    """Pairs whose `a` lives in this group get a's signature and fields, then go to b's group."""
    plan, g = args

    def work():
        t = read_all(_inbox(plan, "cand", g), PAIR_SCHEMA)
        a, b = unique_pairs(t.column("a").to_numpy(), t.column("b").to_numpy())
        pairs = _with_side(plan, pa.table({"a": a, "b": b}, schema=PAIR_SCHEMA), "a", SIDE_FIELDS + ["sig"])
        files = _scatter(plan, pairs, plan.group_of(b), "side", f"f{g:03d}")
        return files, {"candidates": int(a.size)}

    return run_item(plan, "attach", f"g{g:03d}", work)


def _verified(pairs: pa.Table, jaccard: np.ndarray, how: str) -> pa.Table:
    keep = ["a", "b"] + [f"{c}_{s}" for s in "ab" for c in SIDE_FIELDS]
    return pairs.select(keep).append_column("jaccard", pa.array(jaccard, pa.float32())) \
        .append_column("how", pa.array([how] * pairs.num_rows, pa.string()))


# Pairs handled at once by compare and exact: bounds a task's memory whatever a group holds.
PAIR_CHUNK = 1 << 16


def _chunks(paths: list[Path]):
    """The rows of `paths` as tables of at most PAIR_CHUNK rows."""
    for path in paths:
        for batch in storage.parquet_file(path).iter_batches(batch_size=PAIR_CHUNK):
            yield pa.Table.from_batches([batch])


def compare(args: tuple[DedupJob, int]) -> dict:
    """Pairs whose `b` lives here: estimated Jaccard from the two signatures. Exact copies and
    clear cases are decided here; pairs within `margin` of the threshold go to a's group for an
    exact Jaccard (as keys and fields: the exact step loads each document's shingles once)."""
    plan, g = args

    def work():
        files, stats = [], {"pairs": 0, "sure": 0, "exact_copies": 0, "ambiguous": 0}
        for i, pairs in enumerate(_chunks(_inbox(plan, "side", g))):
            pairs = _with_side(plan, pairs, "b", SIDE_FIELDS + ["sig"])
            num_perm = plan.hasher.num_perm
            sig_a = pairs.column("sig_a").combine_chunks().flatten().to_numpy().reshape(-1, num_perm)
            sig_b = pairs.column("sig_b").combine_chunks().flatten().to_numpy().reshape(-1, num_perm)
            est = minhash.estimated_jaccard(sig_a, sig_b)
            col = lambda name: pairs.column(name).to_numpy()  # noqa: E731
            copy = (col("exact_hi_a") == col("exact_hi_b")) & (col("exact_lo_a") == col("exact_lo_b"))
            empty = (col("n_shingles_a") == 0) | (col("n_shingles_b") == 0)
            t, m = plan.threshold, plan.margin
            sure = copy | (~empty & (est >= t + m))
            ambiguous = ~copy & ~empty & (est >= t - m) & (est < t + m)
            out = plan.path("verified", f"sig-g{g:03d}-{i:04d}.parquet")
            write_parquet(out, _verified(pairs.filter(pa.array(sure)), np.where(copy, 1.0, est)[sure], "signature"))
            files.append(out)
            amb = pairs.filter(pa.array(ambiguous)).drop_columns(["sig_a", "sig_b"])
            del sig_a, sig_b
            files += _scatter(plan, amb, plan.group_of(amb.column("a").to_numpy()), "ambig", f"f{g:03d}-{i:04d}")
            stats = merge_counters(stats, {"pairs": int(est.size), "sure": int(sure.sum()),
                                           "exact_copies": int(copy.sum()), "ambiguous": int(ambiguous.sum())})
        return files, stats

    return run_item(plan, "compare", f"g{g:03d}", work)


def _side_schema() -> pa.Schema:
    """A pair and both documents' fields (what compare hands to exact)."""
    fields = [("a", pa.int64()), ("b", pa.int64())]
    types = {"id": pa.string(), "quality": pa.float64(), "length": pa.int64(), "exact_hi": pa.uint64(),
             "exact_lo": pa.uint64(), "n_shingles": pa.int32()}
    return pa.schema(fields + [(f"{c}_{s}", types[c]) for s in "ab" for c in SIDE_FIELDS])


def _verified_schema() -> pa.Schema:
    return _side_schema().append(pa.field("jaccard", pa.float32())).append(pa.field("how", pa.string()))


LABEL_SCHEMA = pa.schema([("node", pa.int64()), ("label", pa.int64())])


def join(args: tuple[DedupJob, int]) -> dict:
    """Components of the pairs verified so far (exact copies and sure by signature): a pair near
    the threshold whose two documents they already join needs no exact check, since it cannot
    change a cluster. In a large cluster of near copies that is most of its pairs."""
    plan, _ = args

    def work():
        t = read_all(sorted(plan.path("verified").glob("sig-*.parquet")), _verified_schema())
        nodes, labels = components.components(t.column("a").to_numpy(), t.column("b").to_numpy())
        out = plan.path("joined", "labels.parquet")
        write_parquet(out, pa.table({"node": nodes, "label": labels}, schema=LABEL_SCHEMA))
        return [out], {"nodes": int(nodes.size), "clusters": int(np.unique(labels).size)}

    return run_item(plan, "join", "all", work)


def _labels_of(labels: pa.Table, keys: np.ndarray) -> np.ndarray:
    """Each key's component label from join, or the key itself when no verified pair has it."""
    nodes = labels.column("node").to_numpy()
    pos = np.clip(np.searchsorted(nodes, keys), 0, max(nodes.size - 1, 0))
    found = nodes[pos] == keys if nodes.size else np.zeros(keys.size, bool)
    return np.where(found, labels.column("label").to_numpy()[pos] if nodes.size else keys, keys)


# Shingle hashes (8 bytes each) of the documents loaded at once by the exact step: bounds its
# memory to some hundreds of megabytes whatever a group holds.
SHINGLE_BUDGET = 16 << 20


def _blocks(a: np.ndarray, b: np.ndarray, n_a: np.ndarray, n_b: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive pair ranges whose documents' shingles (each document counted once) stay
    within budget: a document in many pairs is loaded once per block."""
    out, start, cost, seen = [], 0, 0, set()
    for i, (x, y, nx, ny) in enumerate(zip(a.tolist(), b.tolist(), n_a.tolist(), n_b.tolist())):
        add = (0 if x in seen else nx) + (0 if y in seen or y == x else ny)
        if cost + add > budget and i > start:
            out.append((start, i))
            start, cost, seen = i, nx + ny, set()
        else:
            cost += add
        seen.update((x, y))
    if start < a.size:
        out.append((start, int(a.size)))
    return out


def exact(args: tuple[DedupJob, int]) -> dict:
    """Near-threshold pairs whose `a` lives here, unless join already links them: exact Jaccard
    of the two shingle sets, each document's set computed once per block of pairs (one block
    unless the group's documents hold more than SHINGLE_BUDGET shingles)."""
    plan, g = args

    def work():
        amb = read_all(_inbox(plan, "ambig", g), _side_schema())
        labels = storage.read_table(plan.path("joined", "labels.parquet"))
        a, b = amb.column("a").to_numpy(), amb.column("b").to_numpy()
        todo = _labels_of(labels, a) != _labels_of(labels, b)
        order = np.flatnonzero(todo)[np.lexsort((b[todo], a[todo]))]
        amb = amb.take(pa.array(order))
        del labels
        out_tables, stats = [], {"ambiguous": int(todo.size), "checked": int(order.size), "accepted": 0}
        col = lambda name: amb.column(name).to_numpy()  # noqa: E731
        for p0, p1 in _blocks(col("a"), col("b"), col("n_shingles_a"), col("n_shingles_b"), SHINGLE_BUDGET):
            block = amb.slice(p0, p1 - p0)
            a, b = block.column("a").to_numpy(), block.column("b").to_numpy()
            uniq, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
            jac = exact_jaccard(load_shingle_sets(plan, uniq), inv[: a.size], inv[a.size:])
            ok = jac >= plan.threshold
            out_tables.append(_verified(block.filter(pa.array(ok)), jac[ok], "exact"))
            stats["accepted"] += int(ok.sum())
        out = plan.path("verified", f"exact-g{g:03d}-0000.parquet")
        write_parquet(out, pa.concat_tables(out_tables) if out_tables else _verified_schema().empty_table())
        return [out], stats

    return run_item(plan, "exact", f"g{g:03d}", work)


def verified_files(plan: DedupJob) -> list[Path]:
    return sorted(plan.path("verified").glob("*.parquet"))


def contract(args: tuple[DedupJob, int]) -> dict:
    """Local components of this group's verified pairs as star edges, plus each node's fields."""
    plan, g = args

    def work():
        t = read_all(sorted(plan.path("verified").glob(f"*-g{g:03d}-*.parquet")), _verified_schema())
        u, v = components.contract(t.column("a").to_numpy(), t.column("b").to_numpy())
        comp = plan.path("comp", f"g{g:03d}.parquet")
        write_parquet(comp, pa.table({"node": u, "root": v}))
        sides = []
        for s in "ab":
            cols = [s] + [f"{c}_{s}" for c in SIDE_FIELDS]
            sides.append(t.select(cols).rename_columns(["node"] + SIDE_FIELDS))
        nodes = pa.concat_tables(sides)
        keys = nodes.column("node").to_numpy()
        _, first = np.unique(keys, return_index=True)
        ranks = plan.path("ranks", f"g{g:03d}.parquet")
        write_parquet(ranks, nodes.take(pa.array(first)))
        return [comp, ranks], {"edges": t.num_rows, "star_edges": int(u.size)}

    return run_item(plan, "contract", f"g{g:03d}", work)


DECISION_SCHEMA = pa.schema([("id", pa.string()), ("dup_cluster", pa.int64()), ("dup_size", pa.int64()),
                             ("dup_of", pa.string()), ("reason", pa.string())])


def decide(args: tuple[DedupJob, int]) -> dict:
    """Global components over the star edges, then one kept document per cluster: highest
    quality, then longest text, then smallest id. Writes decisions/P for every part."""
    plan, _ = args

    def work():
        comp = read_all(sorted(plan.path("comp").glob("*.parquet")), pa.schema([("node", pa.int64()), ("root", pa.int64())]))
        nodes, labels = components.components(comp.column("node").to_numpy(), comp.column("root").to_numpy())
        ranks = read_all(sorted(plan.path("ranks").glob("*.parquet")))
        files = []
        if ranks.num_rows:
            keys = ranks.column("node").to_numpy()
            _, first = np.unique(keys, return_index=True)
            ranks = ranks.take(pa.array(first))  # one row per node, in key order
        table = _decisions(nodes, labels, ranks)
        part_of = table.column("key").to_numpy() >> ROW_BITS if table.num_rows else np.zeros(0, np.int64)
        order = np.argsort(part_of, kind="stable")
        table, part_of = table.take(pa.array(order)), part_of[order]
        bounds = np.searchsorted(part_of, np.arange(len(plan.parts) + 1))
        for p, (name, _path) in enumerate(plan.parts):
            out = plan.path("decisions", f"{name}.parquet")
            write_parquet(out, table.slice(bounds[p], bounds[p + 1] - bounds[p]).select(DECISION_SCHEMA.names))
            files.append(out)
        sizes = table.column("dup_size").to_numpy() if table.num_rows else np.zeros(0, np.int64)
        reasons = table.column("reason").to_pylist() if table.num_rows else []
        hist = np.bincount(sizes[table.column("dup_of").is_null().to_numpy(zero_copy_only=False)]) if sizes.size else np.zeros(0)
        return files, {"clusters": int(hist.sum()), "docs_in_clusters": int(sizes.size),
                       "cluster_sizes": {str(s): int(c) for s, c in enumerate(hist) if c},
                       "exact": reasons.count("dedup:exact"), "near": reasons.count("dedup:minhash")}

    return run_item(plan, "decide", "all", work)


def _decisions(nodes: np.ndarray, labels: np.ndarray, ranks: pa.Table) -> pa.Table:
    schema = pa.schema([("key", pa.int64())] + list(DECISION_SCHEMA))
    if nodes.size == 0:
        return schema.empty_table()
    # ranks is in key order and holds every node (each node came from a verified pair)
    assert np.array_equal(ranks.column("node").to_numpy(), nodes)
    quality = ranks.column("quality").to_numpy(zero_copy_only=False)
    quality = np.where(np.isnan(quality), -np.inf, quality)  # null quality ranks last
    length = ranks.column("length").to_numpy()
    id_rank = np.empty(nodes.size, np.int64)
    id_rank[pc.sort_indices(ranks.column("id")).to_numpy()] = np.arange(nodes.size)
    order = np.lexsort((id_rank, -length, -quality, labels))
    is_best = np.ones(nodes.size, bool)
    is_best[1:] = labels[order][1:] != labels[order][:-1]
    best = order[is_best]  # one per cluster, clusters in label order
    cluster_labels = labels[best]
    which = np.searchsorted(cluster_labels, labels)
    kept = best[which]  # index of the kept node of each node's cluster
    size = np.bincount(which)[which]
    ids = ranks.column("id")
    is_kept = kept == np.arange(nodes.size)
    ex_hi, ex_lo = ranks.column("exact_hi").to_numpy(), ranks.column("exact_lo").to_numpy()
    copy = (ex_hi == ex_hi[kept]) & (ex_lo == ex_lo[kept])
    reason = np.where(is_kept, None, np.where(copy, "dedup:exact", "dedup:minhash"))
    dup_of = ids.take(pa.array(kept))
    dup_of = pc.if_else(pa.array(is_kept), pa.nulls(nodes.size, pa.string()), dup_of)
    return pa.table({"key": nodes, "id": ids, "dup_cluster": labels, "dup_size": size.astype(np.int64),
                     "dup_of": dup_of, "reason": pa.array(reason.tolist(), pa.string())}, schema=schema)
