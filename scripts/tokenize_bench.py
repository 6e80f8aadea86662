"""Tokenize stage throughput: its encoding against raw `Tokenizer.encode_batch`, and the whole stage per CPU.

The target: the stage's `process()` (Arrow table in, Arrow `tokens` column out, EOS appended)
runs at >= 90% of the throughput of calling `Tokenizer.encode_batch` on a Python list of the same
texts, one worker, the same RAYON_NUM_THREADS on both sides. The two are timed alternately,
batch by batch, back to back, several times; the best time of each batch is kept, so load from
other processes on a shared machine hits both alike.

Texts: real documents from ../shared/corpora (Common Crawl, source code, LaTeX), repeated up to
--mb megabytes. Tokenizer: a byte-level BPE trained on them (--vocab-size), or --tokenizer FILE.

    python scripts/tokenize_bench.py [--mb 8] [--vocab-size 8000] [--repeats 3] [--threads 1]

--stage instead runs the whole stage in this process, as the pipeline's driver and one worker
would (prepare: sample and train the tokenizer; process every part; finish: the shards), on
--parts Parquet parts of --mb megabytes, with the default config but --vocab-size (--tokenizer
FILE instead of training), and reports the CPU seconds of this process for each step, megabytes
per CPU second, and a sha256 over the shards (.bin, .idx, .parquet) and the tokenizer. It uses only
the stage's public interface, so any checkout's Python can run it: the same command before and
after a change compares the two, and equal digests mean byte-identical shards.

    python scripts/tokenize_bench.py --stage [--mb 64] [--parts 8] [--vocab-size 32000] [--tokenizer FILE]

--compression MB [MB ...] trains the tokenizer on samples of that many megabytes of every document
of the shared corpora (shuffled, seeded; a tenth held out) and reports the training CPU seconds
and the bytes per token on the held-out tenth: what `tokenize.train_mb` trades.

    python scripts/tokenize_bench.py --compression 2 4 8 16 32 64 [--vocab-size 32000]

`run(...)` and `run_stage(...)` return the numbers as a dict; `bench(quick)` is what
scripts/bench.py calls.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import html
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

CORPORA = Path(os.environ.get("CURATE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "corpora"


def corpus_texts(limit_bytes: int) -> list[str]:
    """A mix of real documents from the shared corpora, repeated up to limit_bytes of UTF-8."""
    texts = []
    with gzip.open(CORPORA / "web/jsonl/dolma-cc-sample.jsonl.gz", "rt", encoding="utf-8") as f:
        texts += [t for t in (json.loads(line).get("text") for line in f) if t]
    for pattern in ("code/linguist/Python/*", "code/linguist/C/*", "code/linguist/JavaScript/*",
                    "academic/openlogic/content/**/*.tex"):
        for path in sorted(CORPORA.glob(pattern)):
            if path.is_file():
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
    out, size, i = [], 0, 0
    while size < limit_bytes:
        text = texts[i % len(texts)]
        out.append(text)
        size += len(text.encode("utf-8"))
        i += 1
    return out


def shared_documents() -> list[str]:
    """Every document of ../shared/corpora as text, each corpus read the way the pipeline reads it
    (charset detection; HTML reduced to its text; fortune files split at `%` lines)."""
    from curate.readers.decode import decode, decode_html, looks_binary

    docs: list[str] = []
    with gzip.open(CORPORA / "web/jsonl/dolma-cc-sample.jsonl.gz", "rt", encoding="utf-8") as f:
        docs += [json.loads(line).get("text") or "" for line in f]
    with open(CORPORA / "quality/dclm-agreement.jsonl", encoding="utf-8") as f:
        docs += [json.loads(line)["text"] for line in f]
    for pattern in ("web/html-gold/*/input/*", "web/html/python-docs/**/*.html",
                    "multilingual/parallel-docs/debian-reference/*/*.html"):
        for path in sorted(CORPORA.glob(pattern)):
            docs.append(_html_text(decode_html(path.read_bytes())[0]))
    for pattern in ("web/html-gold/*/gold/*", "code/linguist/**/*", "academic/openlogic/**/*.tex",
                    "academic/arxiv-engrafo/**/*.tex", "multilingual/udhr/*"):
        for path in sorted(CORPORA.glob(pattern)):
            data = path.read_bytes() if path.is_file() else b""
            if data and not looks_binary(data):
                docs.append(decode(data)[0])
    for path in sorted(CORPORA.glob("multilingual/fortunes-*/**/*")):
        data = path.read_bytes() if path.is_file() else b""
        if data and not looks_binary(data):
            docs += re.split(r"(?m)^%\n", decode(data)[0])
    return [d for d in docs if d]


def _html_text(page: str) -> str:
    """Text of a page, cheaply: tags out, entities decoded (not the extractor: the test needs text
    from every page in seconds, not the cleanest text)."""
    return html.unescape(re.sub(r"(?s)<(script|style)\b.*?</\1>|<[^>]*>", " ", page))


def _timed(fn) -> tuple[float, float]:
    """Wall and CPU seconds of one call (CPU time counts every thread of this process)."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def bench(quick: bool = False) -> dict:
    """For scripts/bench.py: the figures of `run`, smaller with quick."""
    return run(mb=1.0, vocab_size=2000, repeats=1) if quick else run()


@contextlib.contextmanager
def rayon_threads(threads: int):
    """RAYON_NUM_THREADS (the tokenizers' pool) set for the block, then put back."""
    saved = {k: os.environ.get(k) for k in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")}
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(mb: float = 8.0, vocab_size: int = 8000, repeats: int = 3, threads: int = 1,
        tokenizer: str | None = None, batch_docs: int = 200) -> dict:
    with rayon_threads(threads):
        return _measure(mb, vocab_size, repeats, threads, tokenizer, batch_docs)


def _measure(mb: float, vocab_size: int, repeats: int, threads: int, tokenizer: str | None, batch_docs: int) -> dict:
    import numpy as np
    import pyarrow as pa

    from curate.stages.tokenize import bpe
    from curate.stages.tokenize import TokenizeConfig, TokenizeStage

    texts = corpus_texts(int(mb * (1 << 20)))
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    with tempfile.TemporaryDirectory() as tmp:
        train_s = None
        if tokenizer is None:
            t0 = time.perf_counter()
            tokenizer = str(Path(tmp) / "tokenizer.json")
            Path(tokenizer).write_text(bpe.train(texts, vocab_size))
            train_s = time.perf_counter() - t0
        stage = TokenizeStage(TokenizeConfig(tokenizer=tokenizer), None)
    raw_tok = stage.loaded.tokenizer  # the same object, same settings (encode_special_tokens)
    table = pa.table({"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.large_string())})
    batches = [table.slice(a, batch_docs) for a in range(0, table.num_rows, batch_docs)]
    lists = [texts[a:a + batch_docs] for a in range(0, len(texts), batch_docs)]

    # Per batch, raw then ours, back to back; the best of `repeats` per batch, summed: a burst of
    # load from other processes spoils one timing of one batch, not the comparison.
    # encode_batch_fast (no offsets) is what the tokenizers engine calls; the stage's engine alone
    # (tiktoken where it qualifies) is the yardstick of the stage's own cost.
    encoder = stage.loaded.encoder
    raw_t, fast_t, engine_t, our_t = (np.full((len(batches), 2), np.inf) for _ in range(4))
    for _ in range(repeats):
        for i, (batch, texts_i) in enumerate(zip(batches, lists)):
            raw_t[i] = np.minimum(raw_t[i], _timed(lambda: raw_tok.encode_batch(texts_i)))
            fast_t[i] = np.minimum(fast_t[i], _timed(lambda: raw_tok.encode_batch_fast(texts_i)))
            engine_t[i] = np.minimum(engine_t[i], _timed(lambda: encoder.encode(texts_i, 0)))
            our_t[i] = np.minimum(our_t[i], _timed(lambda: stage.process(batch)))
    (raw_wall, raw_cpu), (fast_wall, fast_cpu), (_, engine_cpu), (our_wall, our_cpu) = (
        t.sum(axis=0) for t in (raw_t, fast_t, engine_t, our_t))
    mbs = nbytes / 1e6
    return {
        "texts": len(texts), "mb": round(mbs, 2), "vocab_size": stage.loaded.vocab_size,
        "rayon_threads": threads, "train_seconds": round(train_s, 2) if train_s else None,
        "raw_encode_batch_mb_s": round(mbs / raw_wall, 3), "stage_process_mb_s": round(mbs / our_wall, 3),
        "raw_encode_batch_mb_cpu_s": round(mbs / raw_cpu, 3), "stage_process_mb_cpu_s": round(mbs / our_cpu, 3),
        "raw_encode_batch_fast_mb_cpu_s": round(mbs / fast_cpu, 3),
        "ratio_wall": round(raw_wall / our_wall, 3), "ratio_cpu": round(raw_cpu / our_cpu, 3),
        "ratio_cpu_vs_encode_batch_fast": round(fast_cpu / our_cpu, 3),
        "engine": encoder.name, "engine_mb_cpu_s": round(mbs / engine_cpu, 3),
        "ratio_cpu_vs_engine": round(engine_cpu / our_cpu, 3),
        "target": 0.9,
    }


def run_stage(mb: float = 64.0, parts: int = 8, vocab_size: int = 32000, tokenizer: str | None = None,
              keep: str | None = None) -> dict:
    """The whole tokenize stage in this process, one thread, timed in CPU seconds per step."""
    with rayon_threads(1):
        if keep:
            return _stage(Path(keep), mb, parts, vocab_size, tokenizer)
        with tempfile.TemporaryDirectory() as tmp:
            return _stage(Path(tmp), mb, parts, vocab_size, tokenizer)


def _stage(root: Path, mb: float, parts: int, vocab_size: int, tokenizer: str | None) -> dict:
    import hashlib
    from types import SimpleNamespace

    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate import schema
    from curate.stages.tokenize import TokenizeConfig, TokenizeStage

    texts = corpus_texts(int(mb * (1 << 20)))
    src, out = root / "bucket", root / "shards"
    (out / "_work").mkdir(parents=True, exist_ok=True)
    src.mkdir(parents=True, exist_ok=True)
    for p in range(parts):
        idx = list(range(p, len(texts), parts))
        table = pa.table({"id": [f"doc-{i:07d}" for i in idx], "origin": [f"bench#{i}" for i in idx],
                          "text": pa.array([texts[i] for i in idx], pa.large_string()),
                          "source": ["bench"] * len(idx), "lang": ["en"] * len(idx)})
        pq.write_table(schema.conform(table), src / f"part-{p:05d}.parquet")
    cfg = TokenizeConfig(vocab_size=vocab_size, tokenizer=tokenizer)
    ctx = SimpleNamespace(out=root, stage_dir=out, work_dir=out / "_work", input=src,
                          map=lambda fn, items, desc="": [fn(item) for item in items])
    clock = time.process_time
    t0 = clock()
    driver = TokenizeStage(cfg, ctx.work_dir)
    driver.prepare(ctx)
    t1 = clock()
    worker = TokenizeStage(cfg, ctx.work_dir)  # what a worker does: load the tokenizer, then its parts
    for path in sorted(src.glob("part-*.parquet")):
        pq.write_table(schema.conform(worker.process(pq.read_table(path)).kept), out / path.name)
    t2 = clock()
    stats = driver.finish(ctx)
    t3 = clock()
    digest = hashlib.sha256()
    for path in sorted(out.glob("*/part-*.*")) + [out / "tokenizer.json"]:
        digest.update(path.relative_to(out).as_posix().encode() + b"\0" + path.read_bytes())
    nbytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    total = t3 - t0
    return {"mb": round(nbytes, 2), "documents": len(texts), "tokens": stats["tokens"],
            "vocab_size": stats["tokenizer"]["vocab_size"], "trained": tokenizer is None,
            "engine": stats.get("engine", {}).get("name", "tokenizers"),
            "prepare_cpu_s": round(t1 - t0, 2), "process_cpu_s": round(t2 - t1, 2), "finish_cpu_s": round(t3 - t2, 2),
            "stage_cpu_s": round(total, 2), "stage_mb_per_cpu_s": round(nbytes / total, 3),
            "process_mb_per_cpu_s": round(nbytes / (t2 - t1), 3), "shards_sha256": digest.hexdigest()}


def run_compression(train_mbs: list[float], vocab_size: int = 32000, seed: int = 0) -> list[dict]:
    import random

    from curate.stages.tokenize import bpe

    docs = shared_documents()
    random.Random(seed).shuffle(docs)
    held, pool = docs[:len(docs) // 10], docs[len(docs) // 10:]
    held_bytes = sum(len(d.encode("utf-8")) for d in held)
    rows = []
    with rayon_threads(1):
        for mb in train_mbs:
            sample, size = [], 0
            for doc in pool:
                if size >= mb * (1 << 20):
                    break
                sample.append(doc)
                size += len(doc.encode("utf-8"))
            t0 = time.process_time()
            loaded = bpe.from_text(bpe.train(sample, vocab_size))
            seconds = time.process_time() - t0
            _, flat = loaded.encoder.encode(held, loaded.eos_id)
            rows.append({"train_mb": mb, "sample_mb": round(size / 1e6, 1), "train_cpu_s": round(seconds, 2),
                         "held_out_mb": round(held_bytes / 1e6, 1),
                         "held_out_bytes_per_token": round(held_bytes / (flat.size - len(held)), 4)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=8.0, help="megabytes of text")
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="RAYON_NUM_THREADS on both sides")
    ap.add_argument("--tokenizer", default=None, help="a tokenizer.json instead of training one")
    ap.add_argument("--stage", action="store_true", help="time the whole stage per CPU second instead")
    ap.add_argument("--parts", type=int, default=8, help="--stage: input parts")
    ap.add_argument("--keep", default=None, help="--stage: work in this folder and keep it")
    ap.add_argument("--compression", type=float, nargs="+", default=None, metavar="MB",
                    help="held-out bytes per token of tokenizers trained on samples of these sizes")
    args = ap.parse_args(argv)
    if not CORPORA.is_dir():
        print(f"needs the shared corpora at {CORPORA}", file=sys.stderr)
        return 2
    if args.compression:
        for row in run_compression(args.compression, args.vocab_size):
            print(json.dumps(row))
        return 0
    if args.stage:
        print(json.dumps(run_stage(args.mb, args.parts, args.vocab_size, args.tokenizer, args.keep), indent=1))
        return 0
    result = run(args.mb, args.vocab_size, args.repeats, args.threads, args.tokenizer)
    print(json.dumps(result, indent=1))
    ok = result["ratio_cpu"] >= result["target"]
    print(f"stage/raw throughput: {result['ratio_cpu']:.1%} (CPU time), {result['ratio_wall']:.1%} (wall): "
          f"{'meets' if ok else 'misses'} the {result['target']:.0%} target", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
