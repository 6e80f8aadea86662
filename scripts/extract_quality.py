"""HTML extraction: quality on html-gold and throughput on python-docs, ours vs plain trafilatura.

    python scripts/extract_quality.py [--corpora ../shared/corpora] [--every N] [--limit N] [--rounds 3]

Quality: token F1 (bag of lowercase whitespace tokens) of the extracted text against the gold
text of the 245 html-gold pages, for plain `trafilatura.extract(raw_bytes)` loops (its defaults;
datatrove's settings: favor_precision, no comments, deduplicate) and for our HTML parse
(`curate.readers.html_text.extract_page` with the default extract config).

Throughput: pages/s on web/html/python-docs for the same plain loops, plain trafilatura with our
settings in full mode (what our parse would cost without the adaptive fast path), and our
parse. The shared box is noisy, so each page is timed in turn by every contender (order
rotating) and the best of `rounds` passes is kept; CPU time of this process is reported beside
wall time. `bench(quick)` returns the figures for scripts/bench.py.
"""

from __future__ import annotations

import argparse
import html
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import lxml.html
import trafilatura

from curate.readers.html_text import extract_page
from curate.stages.extract import HtmlConfig

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPORA = ROOT.parent / "shared" / "corpora"

_URL_LINE = re.compile(r"\A\s*URL:[^\n]*\n")
_BLOCK_MARK = re.compile(r"^[ \t]*<[phl]>", re.MULTILINE)


@dataclass
class GoldPage:
    name: str  # subset/file
    raw: bytes
    gold: str


def gold_text(text: str, kind: str) -> str:
    """The gold main text as plain text: readability gold is HTML, the others are marked text."""
    if kind == "readability":
        text = lxml.html.fromstring(text).text_content() if text.strip() else ""
    else:  # CleanEval and CleanPortalEval: a URL: line, then <p>/<h>/<l> block prefixes
        text = _BLOCK_MARK.sub(" ", _URL_LINE.sub("", text, count=1))
    return html.unescape(text)


def token_f1(predicted: str | None, gold: str) -> float:
    """F1 of the multisets of lowercase whitespace tokens (1.0 when both are empty)."""
    pred = Counter((predicted or "").lower().split())
    want = Counter(gold.lower().split())
    if not pred and not want:
        return 1.0
    overlap = sum((pred & want).values())
    if overlap == 0:
        return 0.0
    precision = overlap / sum(pred.values())
    recall = overlap / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def load_gold(corpora: Path, every: int = 1) -> list[GoldPage]:
    """The html-gold pages with their gold text, in name order; `every` n-th page only."""
    pages = []
    for subset in sorted((corpora / "web" / "html-gold").iterdir()):
        for path in sorted((subset / "input").iterdir()):
            gold = subset / "gold" / f"{path.stem}.txt"
            if gold.is_file():
                text = gold.read_text(encoding="utf-8", errors="replace")
                pages.append(GoldPage(f"{subset.name}/{path.name}", path.read_bytes(), gold_text(text, subset.name)))
    return pages[::every]


def plain(**settings) -> Callable[[bytes], str | None]:
    """A plain trafilatura loop body: raw bytes in, trafilatura decodes and parses itself."""
    return lambda raw: trafilatura.extract(raw, **settings)


# datatrove's Trafilatura extractor: favour_precision, no comments, trafilatura's dedup cache
DATATROVE_SETTINGS = dict(favor_precision=True, include_comments=False, deduplicate=True)


def ours(settings: HtmlConfig | None = None) -> Callable[[bytes], str | None]:
    settings = settings or HtmlConfig()
    return lambda raw: extract_page(raw, settings).text


def plain_same_settings(settings: HtmlConfig | None = None) -> Callable[[bytes], str | None]:
    """Plain trafilatura in full mode with the options our parse passes to its full pass."""
    s = settings or HtmlConfig()
    return plain(include_comments=s.include_comments, include_tables=s.include_tables,
                 favor_precision=s.favor == "precision", favor_recall=s.favor == "recall")


def timed(contenders: dict[str, Callable[[bytes], str | None]], pages: list[bytes], rounds: int = 1) -> dict:
    """Run every contender on every page, interleaved; best-of-rounds wall and CPU seconds."""
    names = list(contenders)
    best = {n: {"wall": float("inf"), "cpu": float("inf")} for n in names}
    outputs: dict[str, list] = {}
    for r in range(rounds):
        wall = dict.fromkeys(names, 0.0)
        cpu = dict.fromkeys(names, 0.0)
        outs: dict[str, list] = {n: [] for n in names}
        for i, raw in enumerate(pages):
            k = (i + r) % len(names)
            for name in names[k:] + names[:k]:  # rotate who goes first: caches favour no one
                w0, c0 = time.perf_counter(), time.process_time()
                outs[name].append(contenders[name](raw))
                cpu[name] += time.process_time() - c0
                wall[name] += time.perf_counter() - w0
        for n in names:
            best[n]["wall"] = min(best[n]["wall"], wall[n])
            best[n]["cpu"] = min(best[n]["cpu"], cpu[n])
        outputs = outs
    n = len(pages)
    return {name: {"pages": n, "wall_s": round(b["wall"], 3), "cpu_s": round(b["cpu"], 3),
                   "pages_per_s": round(n / max(b["wall"], 1e-9), 2),
                   "pages_per_cpu_s": round(n / max(b["cpu"], 1e-9), 2),
                   "outputs": outputs[name]}
            for name, b in best.items()}


def html_quality(corpora: Path = DEFAULT_CORPORA, every: int = 1, rounds: int = 1,
                 settings: HtmlConfig | None = None) -> dict:
    """Mean token F1 of plain trafilatura and of our parse on html-gold, with their speed."""
    pages = load_gold(corpora, every)
    runs = timed({"plain": plain(), "plain_datatrove": plain(**DATATROVE_SETTINGS), "ours": ours(settings)},
                 [p.raw for p in pages], rounds)
    result = {}
    for name, run in runs.items():
        scores = [token_f1(out, p.gold) for out, p in zip(run.pop("outputs"), pages)]
        by_subset: dict[str, list[float]] = {}
        for p, s in zip(pages, scores):
            by_subset.setdefault(p.name.split("/")[0], []).append(s)
        run["f1"] = round(sum(scores) / len(scores), 4)
        run["f1_by_subset"] = {k: round(sum(v) / len(v), 4) for k, v in by_subset.items()}
        result[name] = run
    return result


def html_throughput(corpora: Path = DEFAULT_CORPORA, limit: int | None = None, rounds: int = 3,
                    settings: HtmlConfig | None = None) -> dict:
    """Pages/s on python-docs: plain trafilatura (defaults, and our settings) vs our parse."""
    paths = sorted((corpora / "web" / "html" / "python-docs").rglob("*.html"))[:limit]
    pages = [p.read_bytes() for p in paths]
    runs = timed({"plain_default": plain(), "plain_datatrove": plain(**DATATROVE_SETTINGS),
                  "plain_same_settings": plain_same_settings(settings), "ours": ours(settings)}, pages, rounds)
    for run in runs.values():
        run.pop("outputs")
    return runs


def bench(quick: bool = False) -> dict:
    """Figures for scripts/bench.py: F1 and speed on html-gold, pages/s on python-docs, each for
    plain trafilatura loops and our parse (quick: a quarter of the gold pages, 60 docs pages)."""
    trafilatura.extract("<html><body><p>warm up</p></body></html>")
    quality = html_quality(every=4 if quick else 1, rounds=1)
    speed = html_throughput(limit=60 if quick else None, rounds=1 if quick else 2)
    figures = {f"gold_f1_{k}": v["f1"] for k, v in quality.items()}
    figures.update({f"gold_pages_per_cpu_s_{k}": v["pages_per_cpu_s"] for k, v in quality.items()})
    figures.update({f"docs_pages_per_s_{k}": v["pages_per_s"] for k, v in speed.items()})
    figures.update({f"docs_pages_per_cpu_s_{k}": v["pages_per_cpu_s"] for k, v in speed.items()})
    figures["docs_speedup_vs_plain_default"] = round(speed["plain_default"]["cpu_s"] / max(speed["ours"]["cpu_s"], 1e-9), 2)
    figures["gold_pages"], figures["docs_pages"] = quality["ours"]["pages"], speed["ours"]["pages"]
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    ap.add_argument("--every", type=int, default=1, help="score every n-th html-gold page only")
    ap.add_argument("--limit", type=int, default=None, help="python-docs pages to time")
    ap.add_argument("--rounds", type=int, default=3, help="timing passes; the best is kept")
    ap.add_argument("--mode", choices=["adaptive", "fast", "full"], default=None, help="override html.mode")
    args = ap.parse_args()
    settings = HtmlConfig(mode=args.mode) if args.mode else HtmlConfig()
    trafilatura.extract("<html><body><p>warm up</p></body></html>")  # imports and caches, untimed

    q = html_quality(args.corpora, args.every, args.rounds, settings)
    print(f"html-gold ({q['ours']['pages']} pages), token F1 and speed (best of {args.rounds}):")
    for name in ("plain", "plain_datatrove", "ours"):
        r = q[name]
        print(f"  {name:15s} F1 {r['f1']:.4f}  {r['pages_per_s']:6.1f} pages/s  {r['pages_per_cpu_s']:6.1f} pages/cpu-s"
              f"  {r['f1_by_subset']}")
    ratio = q["plain"]["cpu_s"] / max(q["ours"]["cpu_s"], 1e-9)
    print(f"  ours - plain F1 {q['ours']['f1'] - q['plain']['f1']:+.4f}, speed x{ratio:.2f} (CPU)")

    t = html_throughput(args.corpora, args.limit, args.rounds, settings)
    print(f"python-docs ({t['ours']['pages']} pages), throughput (best of {args.rounds}):")
    for name, r in t.items():
        print(f"  {name:20s} {r['pages_per_s']:6.1f} pages/s  {r['pages_per_cpu_s']:6.1f} pages/cpu-s")
    base = t["plain_default"]["cpu_s"]
    print(f"  ours x{base / max(t['ours']['cpu_s'], 1e-9):.2f} of plain_default, "
          f"x{t['plain_same_settings']['cpu_s'] / max(t['ours']['cpu_s'], 1e-9):.2f} of plain_same_settings (CPU)")


if __name__ == "__main__":
    main()
