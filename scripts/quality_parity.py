"""Parity and speed of the quality rule filters against datatrove 0.10 (not a test; a report).

    python scripts/quality_parity.py [--html] [--limit N] [--repeat 3] [--json OUT]

Parity: the `fineweb` preset (configs/fineweb.yaml), which reproduces datatrove's FineWeb chain,
next to datatrove with the FineWeb pipeline's settings: each of our Gopher quality, Gopher
repetition, C4 and FineWeb filters alone against datatrove's GopherQualityFilter,
GopherRepetitionFilter, C4QualityFilter(filter_no_terminal_punct=False) and FineWebQualityFilter
alone, then the whole chain, on the same texts: the web JSONL corpus, and with --html the pages
of web/html-gold and web/html/python-docs as curate's extract gets their main text. Every
document is read as English, as datatrove's filters are by default. For C4 it also compares the
cleaned text of documents both keep. Then our word splitter against spaCy's English tokenizer
(what datatrove splits words with). curate's default config is not datatrove's on purpose
(CURATION.md says why and what it changes).

Speed: the quality stage with those four filters against the same four datatrove filters, on one
core (process time, best of --repeat rounds that interleave the contenders, so a busy machine
slows them alike): as datatrove runs them (a chain that stops at the first filter that removes a
document) and with every filter on every document (the work our stage does: it measures every
signal of every document).
Ours is timed three ways, because the word splitter remembers the chunks it has seen: a fresh
stage (every chunk new), a stage that has seen the other half of the corpus (the steady state of
a worker, which keeps its stage across shards), and one that has seen these documents. And on
"8k-character" documents (consecutive corpus documents joined), the size the issue was measured on.

Peers that are not installed (datatrove, spaCy) are skipped. `pip install datatrove==0.10.1 spacy`.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

pa.set_cpu_count(1)

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("CURATE_SHARED", ROOT.parent / "shared")) / "corpora"
FOUR = ["gopher_repetition", "gopher", "c4", "fineweb"]  # datatrove's FineWeb order
PEER = {"gopher": "GopherQualityFilter", "gopher_repetition": "GopherRepetitionFilter",
        "c4": "C4QualityFilter", "fineweb": "FineWebQualityFilter"}
PEER_SETTINGS = {"c4": {"filter_no_terminal_punct": False}}  # as datatrove's FineWeb pipeline
PRESET = ROOT / "configs" / "fineweb.yaml"


def preset_section():
    """The quality section of the fineweb preset."""
    from curate import config

    return config.load(PRESET).section("quality")

# Why the decisions that differ differ, by cause (see the report this script prints).
KNOWN_DIFFERENCES = """\
Known causes of the differences that remain (kept on purpose):
- Our word splitter keeps spaCy's English rules but treats every script's letters alike (spaCy's
  letter classes miss Armenian, Thaana, ...: it does not split `ի-ից` or `word.` there).
- A token of bullets or other symbols (•, ·, ©, °) is not a word for us; datatrove's punctuation
  table misses them and counts them as words (Gopher's word count and mean length).
- C4 accepts Unicode's sentence terminals (。 । ؟) as line ends besides . ? ! " ', so lines in
  Chinese, Hindi or Arabic are not all dropped.
- Rare tokenizer differences (emoticons, `x.y.z.`, LaTeX in web pages) near a threshold."""


def load_jsonl(limit: int | None) -> list[str]:
    path = CORPORA / "web" / "jsonl" / "dolma-cc-sample.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    texts = [t for t in texts if t and t.strip()]
    return texts[:limit] if limit else texts


def load_html(limit: int | None) -> list[str]:
    """Main text of the HTML pages, as curate's extract stage gets it."""
    from curate.readers.html import page_doc
    from curate.stages.extract import ExtractConfig

    settings = ExtractConfig()
    paths = sorted((CORPORA / "web" / "html-gold").glob("*/input/*.htm*")) + sorted(
        (CORPORA / "web" / "html" / "python-docs").rglob("*.htm*"))
    texts = []
    for p in paths[:limit] if limit else paths:
        doc = page_doc(p.read_bytes(), settings)
        if doc.text and doc.text.strip():
            texts.append(doc.text)
    return texts


def our_decisions(name: str, texts: list[str]) -> tuple[np.ndarray, list[str | None], list[str] | None]:
    """Keep mask, first rule that fired, and the cleaned text (C4), for our filter alone."""
    from curate.filters import FILTERS
    from curate.text.stats import Docs

    cls = FILTERS[name]
    f = cls(getattr(preset_section(), name))
    docs = Docs(pa.array(texts, pa.large_string()))
    if cls.rewrites_text:
        signals, new = f.rewrite(docs)
        cleaned = new.text.to_pylist()
    else:
        signals, cleaned = f.measure(docs), None
    reasons: list[str | None] = [None] * len(texts)
    for rule, threshold in f.thresholds():
        for i in np.flatnonzero(rule.fires(np.asarray(signals[rule.signal], np.float32), threshold)):
            reasons[i] = reasons[i] or rule.name
    return np.array([r is None for r in reasons]), reasons, cleaned


def peer_decisions(name: str, texts: list[str]):
    from datatrove.data import Document
    from datatrove.pipeline import filters

    f = getattr(filters, PEER[name])(**PEER_SETTINGS.get(name, {}))
    keep, reasons, cleaned = [], [], []
    for i, text in enumerate(texts):
        doc = Document(text=text, id=str(i))
        try:
            verdict = f.filter(doc)
        except Exception as exc:  # datatrove's unguarded ratios (ZeroDivisionError on blank text)
            verdict = (False, f"error:{type(exc).__name__}")
        keep.append(verdict is True)
        reasons.append(None if verdict is True else (verdict[1] if isinstance(verdict, tuple) else "removed"))
        cleaned.append(doc.text)
    return np.array(keep), reasons, cleaned


def parity(texts: list[str], label: str, out: dict) -> None:
    print(f"\n== parity on {label}: {len(texts)} documents ==")
    for name in FOUR:
        keep, reasons, cleaned = our_decisions(name, texts)
        peer_keep, peer_reasons, peer_cleaned = peer_decisions(name, texts)
        differ = np.flatnonzero(keep != peer_keep)
        agree = 1 - len(differ) / len(texts)
        line = f"{name:18s} agree {agree:7.2%}  ({len(differ)} differ; kept: ours {keep.sum()}, datatrove {peer_keep.sum()})"
        entry = {"agree": agree, "differ": len(differ), "kept_ours": int(keep.sum()), "kept_datatrove": int(peer_keep.sum())}
        if cleaned is not None:
            both = np.flatnonzero(keep & peer_keep)
            same = sum(cleaned[i] == peer_cleaned[i] for i in both)
            line += f"; cleaned text identical on {same} of {len(both)} kept by both"
            entry["cleaned_identical"] = [int(same), int(len(both))]
        print(line)
        for i in differ[:8]:
            print(f"    doc {i}: ours {reasons[i] or 'kept'}, datatrove {peer_reasons[i] or 'kept'}: {texts[i][:70]!r}")
        out.setdefault(label, {})[name] = entry
    chain_parity(texts, label, out)


def chain_parity(texts: list[str], label: str, out: dict) -> float:
    """The whole chain: our quality stage with the preset against datatrove's four filters in a
    row (a document is kept when every filter keeps it)."""
    from datatrove.data import Document
    from datatrove.pipeline import filters

    from curate import schema
    from curate.stages.quality import QualityStage

    n = len(texts)
    batch = schema.conform(pa.table({"text": pa.array(texts, pa.large_string()), "source": ["web"] * n,
                                     "origin": [str(i) for i in range(n)], "lang": ["en"] * n}))
    kept = QualityStage(preset_section()).process(batch).kept.column("origin").to_pylist()
    ours = np.zeros(n, bool)
    ours[[int(o) for o in kept]] = True
    peers = [getattr(filters, PEER[name])(**PEER_SETTINGS.get(name, {})) for name in FOUR]
    theirs = np.zeros(n, bool)
    for i, text in enumerate(texts):
        doc = Document(text=text, id=str(i))
        try:
            theirs[i] = all(f.filter(doc) is True for f in peers)
        except Exception:  # datatrove's unguarded ratios on blank text
            theirs[i] = False
    agree = float((ours == theirs).mean())
    print(f"{'chain':18s} agree {agree:7.2%}  ({int((ours != theirs).sum())} differ; kept: ours {ours.sum()}, datatrove {theirs.sum()})")
    out.setdefault(label, {})["chain"] = {"agree": agree, "kept_ours": int(ours.sum()), "kept_datatrove": int(theirs.sum())}
    return agree


def tokenizer_agreement(texts: list[str], out: dict) -> None:
    from datatrove.utils.text import split_into_words

    from curate.text.words import WordSplitter

    ws = WordSplitter()
    ids, offsets = ws.split(pa.array(texts, pa.large_string()))
    ours = [[ws.vocab.strings[i] for i in ids[offsets[k]:offsets[k + 1]]] for k in range(len(texts))]
    theirs = [split_into_words(t) for t in texts]
    identical = sum(a == b for a, b in zip(ours, theirs))
    err = np.array([abs(len(a) - len(b)) / max(len(b), 1) for a, b in zip(ours, theirs)])
    print(f"\n== word splitter vs spaCy English: identical token lists on {identical} of {len(texts)} documents; "
          f"token count off by {err.mean():.3%} on average (99th percentile {np.percentile(err, 99):.2%}) ==")
    out["tokenizer"] = {"identical_docs": identical, "docs": len(texts), "mean_count_error": float(err.mean())}


def speed(texts: list[str], label: str, repeat: int, out: dict) -> None:
    """Docs/s of each contender, best of `repeat` rounds; the rounds interleave the contenders,
    so a busy machine slows them alike."""
    from curate import schema
    from curate.stages.quality import QualityStage

    def batch(ts):
        return schema.conform(pa.table({"text": pa.array(ts, pa.large_string()), "source": ["web"] * len(ts),
                                        "origin": [str(i) for i in range(len(ts))]}))

    config = preset_section()
    n = len(texts)
    full, half_a, half_b = batch(texts), batch(texts[::2]), batch(texts[1::2])
    warm_stage = QualityStage(config)
    warm_stage.process(full)

    def timed(fn, *args) -> float:
        t0 = time.process_time()
        fn(*args)
        return time.process_time() - t0

    def steady() -> float:  # a stage that has seen the other half: a worker some shards in
        stage = QualityStage(config)
        stage.process(half_a)
        return timed(stage.process, half_b)

    contenders = {
        "ours, fresh stage": (n, lambda: timed(QualityStage(config).process, full)),
        "ours, steady state": (half_b.num_rows, steady),
        "ours, documents seen before": (n, lambda: timed(warm_stage.process, full)),
    }
    try:
        from datatrove.data import Document
        from datatrove.pipeline import filters
    except ImportError:
        print("datatrove not installed: only our rates")
    else:
        peers = [getattr(filters, PEER[name])(**PEER_SETTINGS.get(name, {})) for name in FOUR]

        def chain():  # as a datatrove pipeline runs them: the first removal ends a document
            for i, text in enumerate(texts):
                doc = Document(text=text, id=str(i))
                for f in peers:
                    try:
                        if f.filter(doc) is not True:
                            break
                    except Exception:
                        break

        def every():  # every filter on every document, as our stage measures
            for i, text in enumerate(texts):
                for f in peers:
                    try:
                        f.filter(Document(text=text, id=str(i)))
                    except Exception:
                        pass

        contenders["datatrove, chain"] = (n, lambda: timed(chain))
        contenders["datatrove, every filter"] = (n, lambda: timed(every))
    best = {key: float("inf") for key in contenders}
    for _ in range(repeat):
        for key, (_, run) in contenders.items():
            best[key] = min(best[key], run())
    rates = {key: contenders[key][0] / seconds for key, seconds in best.items()}
    chars = sum(map(len, texts)) / n
    print(f"\n== speed on {label}: {n} documents, {chars:,.0f} characters each on average, one core ==")
    chain_rate, every_rate = rates.get("datatrove, chain"), rates.get("datatrove, every filter")
    for key, rate in rates.items():
        vs = f"  ({rate / chain_rate:5.1f}x datatrove's chain, {rate / every_rate:5.1f}x every filter)" \
            if chain_rate and key.startswith("ours") else ""
        print(f"{key:30s} {rate:8.1f} docs/s{vs}")
    out.setdefault("speed", {})[label] = rates


def eight_k(texts: list[str]) -> list[str]:
    """Consecutive documents joined into ones of 8,000 to 16,000 characters (longer ones alone)."""
    out, current = [], ""
    for t in texts:
        if len(t) >= 8000:
            out.append(t[:16000])
            continue
        current = f"{current}\n\n{t}" if current else t
        if len(current) >= 8000:
            out.append(current)
            current = ""
    return out


def bench(quick: bool = False) -> dict:
    """Docs per CPU second of the four rule filters, ours and datatrove's (when installed), on
    the Common Crawl sample, for scripts/bench.py."""
    sys.path.insert(0, str(ROOT))
    out: dict = {}
    speed(load_jsonl(200 if quick else None), "web/jsonl", 1 if quick else 3, out)
    rates = {k.replace(", ", "_").replace(" ", "_"): round(v, 1) for k, v in out["speed"]["web/jsonl"].items()}
    chain = rates.get("datatrove_chain")
    if chain:
        rates["steady_state_vs_datatrove_chain"] = round(rates["ours_steady_state"] / chain, 2)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", action="store_true", help="also the extracted HTML pages")
    ap.add_argument("--limit", type=int, default=None, help="documents per source")
    ap.add_argument("--repeat", type=int, default=3, help="timing runs (the best counts)")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    ap.add_argument("--speed-only", action="store_true", help="skip the parity part")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    have_peer = importlib.util.find_spec("datatrove") is not None
    if not have_peer:
        print("datatrove is not installed: parity skipped (pip install datatrove==0.10.1 spacy)")
    out: dict = {}
    web = load_jsonl(args.limit)
    sources = [("web/jsonl", web)]
    if args.html and not args.speed_only:
        sources.append(("extracted HTML pages", load_html(args.limit)))
    if have_peer and not args.speed_only:
        for label, texts in sources:
            parity(texts, label, out)
        print(KNOWN_DIFFERENCES)
        try:
            tokenizer_agreement(web, out)
        except ImportError:
            print("spaCy is not installed: word splitter comparison skipped")
    speed(web, "web/jsonl", args.repeat, out)
    speed(eight_k(web), "documents of about 8,000 characters (web/jsonl joined)", args.repeat, out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
