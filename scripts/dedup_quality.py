"""Recall and precision of dedup's verified pairs on a generated near-duplicate set.

    python scripts/dedup_quality.py                       # ~1,500 families, the CLI on 2 workers
    python scripts/dedup_quality.py --families 300 --variants    # also the alternative settings

Generator: source documents from ../shared/corpora (web JSONL, DCLM texts, Open Logic LaTeX,
UDHR translations), made mutually distinct first with datasketch's own MinHashLSH at Jaccard 0.5
(an implementation independent of ours), each cut to at most `--max-words` words. Every source
gets a family: itself, sometimes a copy differing only in case and punctuation (an exact
duplicate after normalisation), and `--edited` copies with word deletions, insertions and
substitutions at a rate drawn uniformly from [0, `--max-rate`] (the S-curve's hard part sits
around 2-3% for word 5-grams at 0.8), a third of them with boilerplate added before or after.

Truth: the Jaccard of the shingle *string* sets (no hashing) of every pair inside a family, and
of every reported pair across families. A true pair has Jaccard >= threshold. precision =
reported pairs that are true / reported pairs; recall = true pairs whose two documents the
reported pairs join into one cluster / true pairs (what decides which documents dedup removes;
dedup reports a spanning set of each cluster's pairs, not every pair); pair recall = true pairs
reported themselves / true pairs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate import schema
from dedup_reference import normalise_text, shingle_strings

CORPORA = Path(os.environ.get("CURATE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "corpora"
BOILERPLATE = [
    "Accept cookies We use cookies to improve your experience on our site By continuing to browse you agree to our use of cookies Privacy policy Terms of use",
    "Home About us Contact Blog Shop Careers Press Sitemap Follow us on Facebook Twitter Instagram and LinkedIn for the latest news and offers",
    "Copyright all rights reserved No part of this page may be reproduced without written permission Powered by WordPress Theme by Example Studio",
    "Subscribe to our newsletter and get ten percent off your first order Enter your email address below and click the button to join thousands of readers",
    "Related posts You may also like Leave a comment Your email address will not be published Required fields are marked Name Email Website Post comment",
]


def source_texts(max_words: int) -> list[str]:
    """Real texts from the shared corpora, cut to at most max_words words, >= 40 words each."""
    texts: list[str] = []
    with gzip.open(CORPORA / "web/jsonl/dolma-cc-sample.jsonl.gz", "rt") as f:
        texts += [json.loads(line)["text"] for line in f]
    with open(CORPORA / "quality/dclm-agreement.jsonl") as f:
        texts += [json.loads(line)["text"] for line in f]
    texts += [p.read_text(errors="replace") for p in sorted((CORPORA / "academic/openlogic").rglob("*.tex"))]
    texts += [p.read_text(errors="replace") for p in sorted((CORPORA / "multilingual/udhr").iterdir()) if p.is_file()
              and ("UTF8" in p.name or "Latin1" in p.name)]
    out = []
    for t in texts:
        words = (t or "").split()
        for i in range(0, len(words), max_words):
            chunk = words[i: i + max_words]
            if len(chunk) >= 40:
                out.append(" ".join(chunk))
    return out


def distinct(texts: list[str], threshold: float = 0.5) -> list[str]:
    """Drop texts that datasketch's MinHashLSH finds similar to an earlier one."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=64)
    keep = []
    for i, t in enumerate(texts):
        m = MinHash(num_perm=64)
        m.update_batch([s.encode() for s in shingle_strings(normalise_text(t), 5)])
        if not lsh.query(m):
            lsh.insert(str(i), m)
            keep.append(t)
    return keep


def edit(text: str, rate: float, rng: random.Random, vocab: list[str]) -> str:
    words = text.split()
    n_edits = max(1, round(rate * len(words))) if rate > 0 else 0
    for _ in range(n_edits):
        kind = rng.randrange(3)
        i = rng.randrange(len(words))
        if kind == 0 and len(words) > 10:
            del words[i]
        elif kind == 1:
            words.insert(i, rng.choice(vocab))
        else:
            words[i] = rng.choice(vocab)
    out = " ".join(words)
    if rng.random() < 1 / 3:
        bp = rng.choice(BOILERPLATE)
        out = f"{bp}\n{out}" if rng.random() < 0.5 else f"{out}\n{bp}"
    return out


def case_copy(text: str, rng: random.Random) -> str:
    """Same words, different case and punctuation: equal after normalisation."""
    words = text.split()
    return " ".join((w.upper() if rng.random() < 0.1 else w) + ("," if rng.random() < 0.05 else "") for w in words)


def make_families(sources: list[str], edited: int, max_rate: float, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    vocab = sorted({w for t in sources[:200] for w in t.split()})
    families = []
    for src in sources:
        members = [src]
        if rng.random() < 0.3:
            members.append(case_copy(src, rng))
        members += [edit(src, rng.uniform(0, max_rate), rng, vocab) for _ in range(edited)]
        families.append(members)
    return families


def write_input(families: list[list[str]], out: Path, per_part: int, seed: int) -> dict[str, tuple[int, int]]:
    """Shuffled documents as stage-output parts (plus a _stats.json); returns id -> (family, member)."""
    docs = [(f, m, t) for f, members in enumerate(families) for m, t in enumerate(members)]
    random.Random(seed).shuffle(docs)
    out.mkdir(parents=True, exist_ok=True)
    where = {}
    for p, i in enumerate(range(0, len(docs), per_part)):
        chunk = docs[i: i + per_part]
        ids = [schema.doc_id(f"gen/{f}/{m}") for f, m, _ in chunk]
        where.update({d: (f, m) for d, (f, m, _) in zip(ids, chunk)})
        table = schema.conform(pa.table({"id": ids, "origin": [f"gen/{f}/{m}" for f, m, _ in chunk],
                                         "text": pa.array([t for _, _, t in chunk], pa.large_string()),
                                         "source": ["text"] * len(chunk)}))
        pq.write_table(table, out / f"part-{p:05d}.parquet")
    (out / "_stats.json").write_text(json.dumps({"stage": "generated", "docs_in": len(docs), "docs_out": len(docs),
                                                 "removed": {}}))
    return where


def shingle_set(text: str, n: int = 5) -> frozenset[str]:
    return frozenset(shingle_strings(normalise_text(text), n))


def jaccard(a: frozenset, b: frozenset) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def true_pairs(families: list[list[str]], where: dict, threshold: float) -> tuple[set, list[float]]:
    by_member = {fm: d for d, fm in where.items()}
    truth, within = set(), []
    for f, members in enumerate(families):
        sets = [shingle_set(t) for t in members]
        for i, j in combinations(range(len(members)), 2):
            jac = jaccard(sets[i], sets[j])
            within.append(jac)
            if jac >= threshold:
                truth.add(tuple(sorted((by_member[(f, i)], by_member[(f, j)]))))
    return truth, within


def read_pairs(pairs_dir: Path) -> set:
    paths = sorted(pairs_dir.glob("*.parquet"))
    if not paths:
        return set()
    t = pa.concat_tables([pq.read_table(p) for p in paths])
    return {tuple(sorted(p)) for p in zip(t.column("id_a").to_pylist(), t.column("id_b").to_pylist())}


def score(found: set, truth: set, families, where, threshold: float) -> dict:
    true_found = found & truth
    # reported pairs outside the within-family truth: measure them (they may be true across families)
    extra = 0
    for a, b in found - truth:
        (fa, ma), (fb, mb) = where[a], where[b]
        if fa != fb and jaccard(shingle_set(families[fa][ma]), shingle_set(families[fb][mb])) >= threshold:
            extra += 1
    hits = len(true_found) + extra
    root = clusters(found)
    joined = sum(1 for a, b in truth if root.get(a, a) == root.get(b, b)) + extra
    return {"reported": len(found), "true": len(truth) + extra, "hits": hits,
            "recall": round(joined / max(1, len(truth) + extra), 4),
            "pair_recall": round(hits / max(1, len(truth) + extra), 4), "precision": round(hits / max(1, len(found)), 4)}


def clusters(pairs: set) -> dict:
    """Document -> a representative of its connected component under `pairs`."""
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in sorted(pairs):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


def run_cli(inp: Path, out: Path, settings: dict, workers: int) -> float:
    cfg = out.parent / f"{out.name}.yaml"
    cfg.write_text("stages: [extract, dedup]\ndedup:\n" + "".join(f"  {k}: {v}\n" for k, v in settings.items()))
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("curate")), "stage", "dedup", "--input", str(inp), "--output", str(out),
                    "--config", str(cfg), "--workers", str(workers)], check=True)
    return time.perf_counter() - t0


VARIANTS = {
    "default (candidates at 0.55, exact Jaccard within 0.1 of the threshold)": {},
    "signature estimate only (margin 0)": {"margin": 0.0},
    "exact Jaccard for every candidate (margin 1)": {"margin": 1.0},
    "one banding at the threshold, signature only (datasketch-like)": {"candidate_threshold": 0.8, "margin": 0.0},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", type=int, default=1500)
    ap.add_argument("--edited", type=int, default=4, help="edited copies per source")
    ap.add_argument("--max-rate", type=float, default=0.1)
    ap.add_argument("--max-words", type=int, default=600)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", action="store_true", help="also score the alternative settings")
    ap.add_argument("--keep", type=Path, help="work in this folder (kept) instead of a temp one")
    args = ap.parse_args()
    sources = distinct(source_texts(args.max_words))[: args.families]
    families = make_families(sources, args.edited, args.max_rate, args.seed)
    root = args.keep or Path(tempfile.mkdtemp(prefix="dedup-quality-"))
    where = write_input(families, root / "input", per_part=1000, seed=args.seed)
    truth, within = true_pairs(families, where, args.threshold)
    within = np.array(within)
    print(f"{len(sources)} families, {len(where)} documents, {len(truth)} true pairs (Jaccard >= {args.threshold}); "
          f"within-family pairs with Jaccard in [0.7, 0.9): {((within >= 0.7) & (within < 0.9)).mean():.1%}")
    runs = VARIANTS if args.variants else dict(list(VARIANTS.items())[:1])
    for i, (label, settings) in enumerate(runs.items()):
        out = root / f"out{i}"
        secs = run_cli(root / "input", out, {"threshold": args.threshold, **settings}, args.workers)
        result = score(read_pairs(out / "dedup" / "pairs"), truth, families, where, args.threshold)
        stats = json.loads((out / "dedup" / "_stats.json").read_text())["dedup"]
        print(f"{label}: recall {result['recall']:.4f} precision {result['precision']:.4f} "
              f"(pair recall {result['pair_recall']:.4f}) "
              f"({result['reported']} reported, {result['true']} true; bands x rows {stats['bands']}x{stats['rows']}, "
              f"{stats['candidate_pairs']} candidates, {stats['pairs_checked_exactly']} checked exactly, {secs:.1f}s)")


if __name__ == "__main__":
    main()
