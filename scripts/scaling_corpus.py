"""A seeded web corpus with growing near-duplicate clusters, for `scripts/bench.py --scaling`.

    python scripts/scaling_corpus.py --docs 20000 --out /tmp/scaling-20k [--seed 0] [--parts DIR]

Originals: the non-empty documents of the Common Crawl sample in ../shared/corpora (670 real web
pages). Every other document is a copy of an original drawn at random, so an original has more
copies as the corpus grows (about 6.5 at 5k, 29 at 20k, 118 at 80k): real crawls hold such
clusters (boilerplate pages, mirrors, templated sites). Copies are 40% exact, 40% with 2% of
their words dropped and 1% doubled, 20% with 6% dropped and 4% doubled. The documents are
shuffled into 8 JSONL files (what `curate run` reads); `--parts` also writes them as a stage
output (parquet parts with the stage schema), which `curate stage dedup --input` reads, to
measure dedup alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("CURATE_SHARED", ROOT.parent / "shared")) / "corpora"
FILES = 8
# (share of the copies, share of words dropped, share of words doubled)
MIX = ((0.4, 0.0, 0.0), (0.4, 0.02, 0.01), (0.2, 0.06, 0.04))


def originals() -> list[dict]:
    with gzip.open(CORPORA / "web" / "jsonl" / "dolma-cc-sample.jsonl.gz", "rt") as f:
        docs = [json.loads(line) for line in f if line.strip()]
    return [d for d in docs if (d.get("text") or "").strip()]


def perturb(text: str, drop: float, double: float, rng: np.random.Generator) -> str:
    """Each word dropped with probability `drop`, else doubled with probability `double`; the
    line structure is kept (words are split per line)."""
    lines = []
    for line in text.split("\n"):
        words = line.split(" ")
        u = rng.random(len(words))
        reps = np.where(u < drop, 0, np.where(u < drop + double, 2, 1))
        lines.append(" ".join(w for w, r in zip(words, reps) for _ in range(r)))
    return "\n".join(lines)


def build(n_docs: int, seed: int = 0, max_originals: int | None = None) -> list[dict]:
    """n_docs documents (originals, then copies), in a seeded shuffled order; `max_originals`
    makes larger clusters from fewer originals (small tests)."""
    rng = np.random.default_rng(seed)
    src = originals()
    n_orig = min(len(src), n_docs, max_originals or n_docs)
    docs = [{"id": d["id"], "text": d["text"], "source": "web", "url": (d.get("metadata") or {}).get("url")}
            for d in src[:n_orig]]
    n_copies = n_docs - n_orig
    of = rng.integers(0, n_orig, n_copies)
    # kinds in exact proportions, in a random order
    counts = [int(round(share * n_copies)) for share, _, _ in MIX[:-1]]
    kinds = np.repeat(np.arange(len(MIX)), counts + [n_copies - sum(counts)])
    rng.shuffle(kinds)
    for j, (o, k) in enumerate(zip(of, kinds)):
        base = docs[o]
        _, drop, double = MIX[k]
        text = base["text"] if drop == 0 and double == 0 else perturb(base["text"], drop, double, rng)
        docs.append({"id": f"{base['id']}-copy{j}", "text": text, "source": "web", "url": base["url"]})
    order = rng.permutation(len(docs))
    return [docs[i] for i in order]


def write_jsonl(docs: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    per_file = -(-len(docs) // FILES)
    for f in range(FILES):
        with open(out / f"web-{f}.jsonl", "w") as fh:
            for d in docs[f * per_file: (f + 1) * per_file]:
                fh.write(json.dumps(d) + "\n")


def write_parts(docs: list[dict], out: Path) -> None:
    """The documents as a stage output directory (FILES parquet parts and a _stats.json)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate import schema

    out.mkdir(parents=True, exist_ok=True)
    per_file = -(-len(docs) // FILES)
    for f in range(FILES):
        chunk = docs[f * per_file: (f + 1) * per_file]
        table = schema.conform(pa.table({
            "id": [d["id"] for d in chunk], "origin": [f"web-{f}.jsonl" for _ in chunk],
            "text": pa.array([d["text"] for d in chunk], pa.large_string()), "source": [d["source"] for d in chunk],
            "url": [d["url"] for d in chunk]}))
        pq.write_table(table, out / f"part-{f:05d}.parquet")
    (out / "_stats.json").write_text(json.dumps({"stage": "generated", "docs_in": len(docs), "docs_out": len(docs),
                                                 "removed": {}}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True, help="folder for the JSONL files")
    ap.add_argument("--parts", type=Path, help="also write the documents as a stage output here")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    docs = build(args.docs, args.seed)
    write_jsonl(docs, args.out)
    if args.parts:
        write_parts(docs, args.parts)
    print(f"{len(docs)} documents, {sum(len(d['text'].encode()) for d in docs) / 2**20:.1f} MB of text")


if __name__ == "__main__":
    main()
