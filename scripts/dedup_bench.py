"""Dedup benchmarks: signature throughput, connected components, and a scale run.

    python scripts/dedup_bench.py signatures [--docs 1000] [--datatrove-python /path/to/venv/bin/python]
    python scripts/dedup_bench.py components [--edges 2000000]
    python scripts/dedup_bench.py scale --docs 1000000 [--workers 2] [--keep DIR]

signatures  one core, CPU seconds (time.process_time, so other load on the machine inflates
            everyone alike rather than whoever ran last): our vectorised path (normalise, shingle,
            exact hash, 128-perm signature, band keys) against datasketch's MinHash.update_batch
            (its default scheme and hash, and the legacy scheme we match with xxh3_64 as its hash
            function) and datatrove's
            MinhashDedupSignature (get_shingles + get_signature, 16 buckets x 8 = 128 hashes,
            32-bit), on the same ~8,000-character web documents. datatrove needs its own
            interpreter (its pins clash with ours): give one with --datatrove-python.
components  one graph of duplicate clusters (power-law sizes, all pairs inside a cluster):
            Python union-find, scipy.sparse.csgraph, our numpy hook-and-jump, and the two-level
            scheme the stage runs (per-group contraction, then one global pass).
scale       N documents made by perturbation (70% distinct mixtures of corpus sentences, 30% of
            them in near-duplicate families of 2-5 with 0-10% word edits and exact copies) as
            stage-output parts, then `curate stage dedup` on them; reports time per step and the
            peak of the summed PSS (proportional set size: shared object-store pages counted once)
            of the curate process and every process under it (Ray's raylet, GCS, workers).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from curate import schema
from curate.stages.dedup import components, minhash

CORPORA = Path(os.environ.get("CURATE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "corpora"


def web_docs(n: int, chars: int = 8000) -> list[str]:
    """n documents of `chars` characters cut from the web JSONL sample (repeated as needed)."""
    with gzip.open(CORPORA / "web/jsonl/dolma-cc-sample.jsonl.gz", "rt") as f:
        text = " ".join(json.loads(line)["text"] for line in f)
    text = (text + " ") * (1 + n * chars // max(1, len(text)))
    return [text[i * chars: (i + 1) * chars] for i in range(n)]


def cpu_rate(fn, n_docs: int, repeat: int = 3) -> float:
    """Best docs per CPU second over `repeat` runs."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return n_docs / best


WORD = re.compile(r"\W+")


def datasketch_rate(docs: list[str], scheme: str, hashfunc=None) -> float:
    from datasketch import MinHash

    def run():
        for d in docs:
            words = WORD.sub(" ", d.lower()).split()
            shingles = [" ".join(words[i: i + 5]) for i in range(max(1, len(words) - 4))]
            m = MinHash(num_perm=128, seed=1, scheme=scheme, hashfunc=hashfunc)
            m.update_batch([s.encode() for s in shingles])

    return cpu_rate(run, len(docs), repeat=1)


DATATROVE = """
import sys, json, time
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.hashing import HashConfig
docs = json.load(open(sys.argv[1]))
sig = MinhashDedupSignature(output_folder=sys.argv[2], config=MinhashConfig(
    num_buckets=16, hashes_per_bucket=8, hash_config=HashConfig(precision=32)))
t0 = time.process_time()
for d in docs:
    sig.get_signature(sig.get_shingles(d))
print(len(docs) / (time.process_time() - t0))
"""


def signature_rates(n_docs: int, datatrove_python: str | None = None) -> dict:
    """Docs per CPU second of our signature path, datasketch's (two schemes) and datatrove's."""
    docs = web_docs(n_docs)
    arr = pa.array(docs, pa.large_string())
    hasher = minhash.Hasher()
    hasher.perms, minhash._word_char_table()  # one-time set-up outside the timing

    def ours():
        for i in range(0, len(docs), 500):
            hasher.hash_texts(arr[i: i + 500])

    rates = {"docs": len(docs), "chars_per_doc": len(docs[0]), "curate": round(cpu_rate(ours, len(docs)), 1)}
    sample = docs[: max(50, len(docs) // 5)]
    rates["datasketch_affine32"] = round(datasketch_rate(sample, "affine32"), 1)
    rates["datasketch_legacy_xxh3"] = round(datasketch_rate(sample, "legacy", hashfunc=xxhash.xxh3_64_intdigest), 1)
    if datatrove_python:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "docs.json"
            path.write_text(json.dumps(sample[:200]))
            out = subprocess.run([datatrove_python, "-c", DATATROVE, str(path), tmp], capture_output=True, text=True)
            if out.returncode:  # e.g. datatrove beside an xxhash it does not fit: say so, go on
                rates["datatrove_error"] = (out.stderr.strip().splitlines() or ["failed"])[-1]
            else:
                rates["datatrove"] = round(float(out.stdout.strip().splitlines()[-1]), 1)
    for peer in ("datasketch_affine32", "datasketch_legacy_xxh3", "datatrove"):
        if peer in rates:
            rates[f"curate_vs_{peer}"] = round(rates["curate"] / rates[peer], 2)
    return rates


def bench_signatures(args) -> None:
    r = signature_rates(args.docs, args.datatrove_python)
    print(f"signatures on {r['docs']} docs of {r['chars_per_doc']:,} characters, one core (docs per CPU second):")
    print(f"  curate (normalise, shingle, exact hash, signature, bands): {r['curate']:,.0f}")
    print(f"  datasketch update_batch, default scheme (affine32, sha1):   {r['datasketch_affine32']:,.0f}"
          f"  -> curate is {r['curate_vs_datasketch_affine32']:.1f}x")
    print(f"  datasketch update_batch, legacy scheme (ours), xxh3_64:   {r['datasketch_legacy_xxh3']:,.0f}"
          f"  -> curate is {r['curate_vs_datasketch_legacy_xxh3']:.1f}x")
    if "datatrove" in r:
        print(f"  datatrove MinhashDedupSignature (128 hashes, 32-bit):   {r['datatrove']:,.0f}"
              f"  -> curate is {r['curate_vs_datatrove']:.1f}x")


def bench(quick: bool = False) -> dict:
    """Signature rates for scripts/bench.py; datatrove from CURATE_DATATROVE_PYTHON (an
    interpreter with datatrove 0.10) or from this one when it has datatrove."""
    import importlib.util

    peer = os.environ.get("CURATE_DATATROVE_PYTHON") or (
        sys.executable if importlib.util.find_spec("datatrove") else None)
    return signature_rates(200 if quick else 1000, peer)


def cluster_graph(edges: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """All pairs inside clusters of power-law size (2..50) over shuffled int64 keys."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(2 + rng.zipf(2.0, edges), 50)
    pairs = sizes * (sizes - 1) // 2
    sizes = sizes[: np.searchsorted(np.cumsum(pairs), edges) + 1]
    keys = rng.permutation(int(sizes.sum()) * 3)[: sizes.sum()].astype(np.int64) << 8
    us, vs, start = [], [], 0
    for s in np.unique(sizes):
        members = np.flatnonzero(sizes == s)
        base = start + np.concatenate([[0], np.cumsum(sizes)])[members]
        i, j = np.triu_indices(s, 1)
        us.append((base[:, None] + i[None, :]).ravel())
        vs.append((base[:, None] + j[None, :]).ravel())
    u, v = np.concatenate(us), np.concatenate(vs)
    return keys[u], keys[v]


def bench_components(args) -> None:
    from dedup_reference import components_scipy, union_find

    u, v = cluster_graph(args.edges)
    print(f"components: {u.size:,} edges over {np.unique(np.concatenate([u, v])).size:,} nodes")
    ref = None
    groups = 8

    def two_level(u, v):
        g = (u >> 8) % groups
        stars = [components.contract(u[g == k], v[g == k]) for k in range(groups)]
        su = np.concatenate([s[0] for s in stars])
        sv = np.concatenate([s[1] for s in stars])
        return components.components(su, sv), su.size

    for name, fn in [("numpy hook-and-jump", components.components), ("scipy csgraph", components_scipy),
                     ("python union-find", union_find)]:
        t0 = time.perf_counter()
        nodes, labels = fn(u, v)
        secs = time.perf_counter() - t0
        ok = "" if ref is None else ("" if np.array_equal(labels, ref) else "  (DIFFERS)")
        ref = labels if ref is None else ref
        print(f"  {name:<22} {secs:7.2f} s{ok}")
    t0 = time.perf_counter()
    (nodes, labels), star_edges = two_level(u, v)
    secs = time.perf_counter() - t0
    print(f"  {'two-level (8 groups)':<22} {secs:7.2f} s  (global pass sees {star_edges:,} star edges; "
          f"{'same' if np.array_equal(labels, ref) else 'DIFFERENT'} labels)")


# -- scale ----------------------------------------------------------------------------------
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentence_pool() -> list[str]:
    texts = []
    with gzip.open(CORPORA / "web/jsonl/dolma-cc-sample.jsonl.gz", "rt") as f:
        texts += [json.loads(line)["text"] for line in f]
    with open(CORPORA / "quality/dclm-agreement.jsonl") as f:
        texts += [json.loads(line)["text"] for line in f]
    texts += [p.read_text(errors="replace") for p in sorted((CORPORA / "academic/openlogic").rglob("*.tex"))]
    pool = {s.strip() for t in texts for s in SENTENCE.split(t.replace("\n", " ")) if 6 <= len(s.split()) <= 80}
    return sorted(pool)


def generate(n_docs: int, out: Path, per_part: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    pool = sentence_pool()
    vocab = sorted({w for s in pool[:5000] for w in s.split()})
    out.mkdir(parents=True, exist_ok=True)
    docs: list[str] = []
    part = 0

    def flush():
        nonlocal docs, part
        order = list(range(len(docs)))
        rng.shuffle(order)
        origins = [f"scale/{part}/{i}" for i in order]
        table = schema.conform(pa.table({"id": [schema.doc_id(o) for o in origins], "origin": origins,
                                         "text": pa.array([docs[i] for i in order], pa.large_string()),
                                         "source": ["text"] * len(order)}))
        pq.write_table(table, out / f"part-{part:05d}.parquet")
        part += 1
        docs = []

    made = 0
    while made < n_docs:
        picks = nrng.integers(0, len(pool), nrng.integers(8, 20))
        base = " ".join(pool[i] for i in picks)
        docs.append(base)
        made += 1
        if rng.random() < 0.3:  # a near-duplicate family around this document
            for _ in range(rng.randint(1, 4)):
                if made >= n_docs:
                    break
                if rng.random() < 0.25:
                    docs.append(base.upper() if rng.random() < 0.5 else base)
                else:
                    words = base.split()
                    for _ in range(int(rng.uniform(0, 0.1) * len(words)) + 1):
                        k, i = rng.randrange(3), rng.randrange(len(words))
                        if k == 0 and len(words) > 10:
                            del words[i]
                        elif k == 1:
                            words.insert(i, rng.choice(vocab))
                        else:
                            words[i] = rng.choice(vocab)
                    docs.append(" ".join(words))
                made += 1
        if len(docs) >= per_part:
            flush()
    if docs:
        flush()
    (out / "_stats.json").write_text(json.dumps({"stage": "generated", "docs_in": made, "docs_out": made, "removed": {}}))


class PeakMemory:
    """Peak of the summed PSS of a process and all its descendants, sampled every `every` s."""

    def __init__(self, pid: int, every: float = 1.0):
        import psutil

        self.root = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.peak_at = 0.0
        self.t0 = time.perf_counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self.stop.is_set():
            total = 0
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except psutil.Error:
                break
            for p in procs:
                try:
                    total += p.memory_full_info().pss
                except psutil.Error:
                    pass
            if total > self.peak:
                self.peak, self.peak_at = total, time.perf_counter() - self.t0
            self.stop.wait(self.every)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def bench_scale(args) -> None:
    root = args.keep or Path(tempfile.mkdtemp(prefix="dedup-scale-"))
    inp = root / "input"
    if not (inp / "_stats.json").is_file():
        t0 = time.perf_counter()
        generate(args.docs, inp, per_part=args.per_part)
        print(f"generated {args.docs:,} documents in {time.perf_counter() - t0:.0f}s "
              f"({sum(p.stat().st_size for p in inp.glob('*.parquet')) / 1e9:.2f} GB Parquet)")
    out = root / "out"
    cfg = root / "dedup.yaml"
    cfg.write_text("stages: [extract, dedup]\nrun:\n  object_store_mb: %d\n" % args.object_store_mb)
    cmd = [str(Path(sys.executable).with_name("curate")), "stage", "dedup", "--input", str(inp), "--output", str(out),
           "--config", str(cfg), "--workers", str(args.workers)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    with PeakMemory(proc.pid) as mem:
        rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc:
        sys.exit(f"curate exited {rc}")
    stats = json.loads((out / "dedup" / "_stats.json").read_text())
    d = stats["dedup"]
    print(f"scale: {stats['docs_in']:,} documents, {stats['docs_out']:,} kept, removed {stats['removed']}")
    print(f"  wall {wall:.0f}s (stage {stats['wall_seconds']:.0f}s), peak PSS of curate + Ray {mem.peak / 2**30:.2f} GiB")
    print(f"  steps (s): {d['step_seconds']}")
    # which step held the peak: the steps run in order after Ray's start-up, then the shard map
    run = json.loads((out / "run.json").read_text())
    t, where = run.get("ray_startup_seconds", 0.0), "start-up"
    from curate.stages.dedup import STEPS

    for name, secs in [(n, d["step_seconds"][n]) for n in STEPS] + [("map over shards", 1e9)]:
        if mem.peak_at >= t:
            where = name
        t += secs
    print(f"  peak memory at {mem.peak_at:.0f}s, during: {where}")
    print(f"  bands x rows {d['bands']}x{d['rows']}, {d['candidate_pairs']:,} candidate pairs, "
          f"{d['pairs_verified']:,} verified ({d['pairs_checked_exactly']:,} checked exactly), {d['clusters']:,} clusters")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("signatures")
    s.add_argument("--docs", type=int, default=1000)
    s.add_argument("--datatrove-python", help="a Python with datatrove 0.10 installed")
    c = sub.add_parser("components")
    c.add_argument("--edges", type=int, default=2_000_000)
    sc = sub.add_parser("scale")
    sc.add_argument("--docs", type=int, default=1_000_000)
    sc.add_argument("--per-part", type=int, default=10_000)
    sc.add_argument("--workers", type=int, default=2)
    sc.add_argument("--object-store-mb", type=int, default=256)
    sc.add_argument("--keep", type=Path)
    args = ap.parse_args()
    {"signatures": bench_signatures, "components": bench_components, "scale": bench_scale}[args.what](args)


if __name__ == "__main__":
    main()
