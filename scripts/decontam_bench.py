"""Throughput of benchmark decontamination (curate.filters.decontam.index) and PII redaction (curate.filters.pii.detect) on
real web text.

Documents: the Common Crawl sample of ../shared/corpora/web/jsonl (697 documents, 2.9 MB),
repeated. Evaluation set: the 281 human-labelled DCLM passages of
../shared/corpora/quality/dclm-agreement.jsonl, one item each. One document in twenty gets a
40-word excerpt of an item pasted into its middle, so the timed work includes matching hits and
cutting spans, and the planted excerpts give a recall check (every one must be found).

PII: the same web documents through `pii.redact` with every type on; and, for e-mail and IP
addresses only, against datatrove's PIIFormatter (when installed) on speed and on the hard
negatives of tests/data/pii_labelled.jsonl (documentation domains, private ranges, version
numbers: values that must survive).

    python scripts/decontam_bench.py [--repeat 8] [--ngram 13] [--mode remove|cut]

`bench(quick)` returns every figure for scripts/bench.py.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.filters.decontam import index as decontam
from curate.filters.pii import detect as pii

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
WEB = CORPORA / "web" / "jsonl" / "dolma-cc-sample.jsonl.gz"
EVAL = CORPORA / "quality" / "dclm-agreement.jsonl"
LABELLED = ROOT / "tests" / "data" / "pii_labelled.jsonl"


def _inputs(repeat: int, seed: int = 0) -> tuple[list[str], decontam.EvalItems, np.ndarray]:
    with gzip.open(WEB, "rt", encoding="utf-8") as f:
        web = [json.loads(line)["text"] for line in f]
    with open(EVAL, encoding="utf-8") as f:
        passages = [json.loads(line)["text"] for line in f]
    items = decontam.EvalItems([str(i) for i in range(len(passages))], passages)
    rng = random.Random(seed)
    long_enough = [p for p in passages if len(p.split()) >= 40]
    docs, planted = [], []
    for _ in range(repeat):
        for text in web:
            if rng.random() < 0.05:
                words = rng.choice(long_enough).split()
                start = rng.randrange(max(len(words) - 40, 1))
                excerpt = " ".join(words[start: start + 40])
                cut = len(text) // 2
                text = f"{text[:cut]}\n{excerpt}\n{text[cut:]}"
                planted.append(len(docs))
            docs.append(text)
    return docs, items, np.array(planted, dtype=np.int64)


def throughput(repeat: int = 8, ngram: int = 13, mode: str = "remove", batch_docs: int = 2000) -> dict:
    """docs/s and MB/s of matching (and cutting, with mode="cut") in batches of `batch_docs`."""
    docs, items, planted = _inputs(repeat)
    t0 = time.perf_counter()
    index = decontam.Index({"dclm": items}, ngram)
    build_s = time.perf_counter() - t0
    table = pa.array(docs, pa.large_string())
    mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    matched = np.zeros(len(docs), dtype=bool)
    t0 = time.perf_counter()
    for lo in range(0, len(docs), batch_docs):
        batch = table.slice(lo, batch_docs)
        hits = index.match(batch)
        matched[lo: lo + len(batch)] = hits.matched
        if mode == "cut" and hits.matched.any():
            decontam.cut(batch, hits, np.flatnonzero(hits.matched))
    seconds = time.perf_counter() - t0
    return {
        "docs": len(docs), "mb": round(mb, 2), "seconds": round(seconds, 3),
        "docs_per_s": round(len(docs) / seconds, 1), "mb_per_s": round(mb / seconds, 2),
        "index_ngrams": len(index), "index_build_s": round(build_s, 3),
        "planted": len(planted), "planted_found": int(matched[planted].sum()),
        "matched_docs": int(matched.sum()), "mode": mode, "ngram": ngram,
    }


def _timed(fn, texts: list[str], batch_docs: int = 2000) -> float:
    table = pa.array(texts, pa.large_string())
    t0 = time.perf_counter()
    for lo in range(0, len(texts), batch_docs):
        fn(table.slice(lo, batch_docs))
    return time.perf_counter() - t0


def pii_throughput(repeat: int = 8, kinds: tuple[str, ...] = pii.KINDS) -> dict:
    """docs/s and MB/s of pii.redact with `kinds` on, over the web documents repeated."""
    with gzip.open(WEB, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f] * repeat
    seconds = _timed(lambda b: pii.redact(b, {k: np.ones(len(b), bool) for k in kinds}), texts)
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    return {"docs": len(texts), "mb": round(mb, 2), "seconds": round(seconds, 3),
            "docs_per_s": round(len(texts) / seconds, 1), "mb_per_s": round(mb / seconds, 2), "kinds": list(kinds)}


def email_ip_vs_datatrove(repeat: int = 8) -> dict:
    """curate (e-mail and IP only) vs datatrove's PIIFormatter: speed, and the e-mail/IP hard
    negatives of the labelled set each one leaves intact."""
    ours = pii_throughput(repeat, ("email", "ip_address"))
    with open(LABELLED, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    # Hard negatives that either tool could touch: those with an @ or dotted/colon-ed numbers.
    keep = [(r["text"], v) for r in records if r["source"] != "code" for v in r["keep"]
            if "@" in v or v.count(".") == 3 or "::" in v]
    redacted = pii.redact(pa.array([t for t, _ in keep], pa.large_string()),
                          {k: np.ones(len(keep), bool) for k in ("email", "ip_address")}).text.to_pylist()
    out = {"curate": {**ours, "hard_negatives_kept": f"{sum(v in d for (_, v), d in zip(keep, redacted))}/{len(keep)}"}}
    try:
        from datatrove.pipeline.formatters import PIIFormatter
    except ImportError:
        return out
    formatter = PIIFormatter()
    with gzip.open(WEB, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f] * repeat
    t0 = time.perf_counter()
    for text in texts:
        formatter.format(text)
    seconds = time.perf_counter() - t0
    kept = sum(v in formatter.format(t) for t, v in keep)
    out["datatrove"] = {"docs_per_s": round(len(texts) / seconds, 1), "mb_per_s": round(ours["mb"] / seconds, 2),
                        "hard_negatives_kept": f"{kept}/{len(keep)}"}
    return out


def bench(quick: bool = False) -> dict:
    repeat = 1 if quick else 8
    return {"decontam_remove": throughput(repeat, mode="remove"), "decontam_cut": throughput(repeat, mode="cut"),
            "pii": pii_throughput(repeat), "pii_email_ip": email_ip_vs_datatrove(repeat)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--ngram", type=int, default=13)
    ap.add_argument("--mode", choices=("remove", "cut"), default="remove")
    ap.add_argument("--pii", action="store_true", help="time PII redaction too (and datatrove's e-mail/IP formatter)")
    args = ap.parse_args()
    result = {"decontam": throughput(args.repeat, args.ngram, args.mode)}
    if args.pii:
        result["pii"] = pii_throughput(args.repeat)
        result["pii_email_ip"] = email_ip_vs_datatrove(args.repeat)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
