"""Curation accuracy: what a config keeps of good text, removes of junk, and whether kept text is intact.

    python scripts/eval_curation.py [--config FILE] [--set STAGE.KEY=VALUE ...] [--corpora DIR]
                                    [--only NAME ...] [--json OUT] [--markdown OUT]

Runs extract -> langid -> quality of the config (the packaged default unless --config) in this
process, stage by stage through each stage's pure `process()`, on the reference sets of
../shared/corpora, and prints one table:

(a) reference-quality text that must be kept: debian-reference (the same 15-page manual in 10
    languages), python-docs (530 pages), openlogic (a logic textbook, 722 .tex files) and the
    arXiv papers (3 source trees, 2 bundles): documents extract produced, the share of them the
    quality stage keeps, and the share of their characters that survive (filters that cut lines
    lose characters even from kept documents);
(b) dclm-agreement (281 Common Crawl texts with a human 0/1 label): good texts kept and bad
    texts removed by the rules (langid and quality; no classifier model is configured);
(c) paragraph integrity on html-gold (245 pages): of the gold paragraphs that appear in the
    extracted text, the share found on one line of it (a paragraph cut by hard line wraps or
    glued to its neighbours is not);
(d) python-docs: of the kept prose lines (outside ``` code blocks) found in their page's HTML,
    the share that begin inside a paragraph of the source, not at its start (hard line wraps,
    and what line-removing filters leave of a paragraph);
(e) code language: on the github-linguist samples whose extension is in curate's code table,
    the share labelled with the language their folder names.

Nothing is timed here (scripts/bench.py is for speed); the counts are deterministic.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import lxml.html  # noqa: E402
import pyarrow as pa  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPORA = Path(os.environ.get("CURATE_SHARED", ROOT.parent / "shared")) / "corpora"
DEBIAN_LANGS = ("de", "en", "es", "fr", "id", "it", "ja", "pt", "zh-cn", "zh-tw")
BATCH = 64  # units per process() call


@dataclass
class Outcome:
    """What one reference set became: per extracted document, its text before and after."""

    extracted: dict[str, str] = field(default_factory=dict)  # origin -> text extract produced
    kept: dict[str, str] = field(default_factory=dict)  # origin -> text quality kept
    lang: dict[str, str] = field(default_factory=dict)  # origin -> lang langid gave
    extract_removed: Counter = field(default_factory=Counter)
    removed: dict[str, str] = field(default_factory=dict)  # origin -> langid/quality reason

    def merge(self, other: "Outcome") -> "Outcome":
        for name in ("extracted", "kept", "lang", "removed"):
            getattr(self, name).update(getattr(other, name))
        self.extract_removed.update(other.extract_removed)
        return self

    def figures(self) -> dict:
        docs = len(self.extracted)
        chars = sum(map(len, self.extracted.values()))
        kept_chars = sum(map(len, self.kept.values()))
        return {"docs": docs, "kept_docs": len(self.kept), "doc_share": _share(len(self.kept), docs),
                "char_share": _share(kept_chars, chars), "reasons": dict(Counter(self.removed.values()).most_common()),
                "extract_removed": dict(self.extract_removed)}


def _share(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


class Chain:
    """extract -> langid -> quality of one config, run in this process."""

    def __init__(self, config: str | None = None, overrides: list[str] = ()):
        from curate import config as cfg
        from curate.stages.extract import ExtractStage
        from curate.stages.langid import LangIdStage
        from curate.stages.quality import QualityStage

        pipeline = cfg.load(config, list(overrides))
        self.extract = ExtractStage(pipeline.section("extract"))
        self.langid = LangIdStage(pipeline.section("langid")) if "langid" in pipeline.stages else None
        self.quality = QualityStage(pipeline.section("quality"))

    def units(self, root: Path):
        from curate import readers
        from curate.discover import discover

        base = root.parent if root.is_file() else root
        for f in discover(root):
            if f.skip is not None:
                yield readers.unit(readers.origin_of(f.rel), f.format or "", error=f.skip)
            else:
                yield from readers.get(f.format).read(base / f.rel, readers.origin_of(f.rel))

    def run(self, root: Path) -> Outcome:
        from curate import readers

        out = Outcome()
        pending: list[dict] = []
        for u in self.units(root):
            if isinstance(u, pa.Table):  # Parquet readers hand whole tables
                self._batch(u, out)
                continue
            pending.append(u)
            if len(pending) >= BATCH:
                self._batch(pa.Table.from_pylist(pending, schema=readers.UNIT_SCHEMA), out)
                pending = []
        if pending:
            self._batch(pa.Table.from_pylist(pending, schema=readers.UNIT_SCHEMA), out)
        return out

    def _batch(self, units: pa.Table, out: Outcome) -> None:
        ext = self.extract.process(units)
        out.extract_removed.update(ext.removed.column("reason").to_pylist())
        out.extracted.update(zip(ext.kept.column("origin").to_pylist(), ext.kept.column("text").to_pylist()))
        table = ext.kept
        for stage in (self.langid, self.quality):
            if stage is None or table.num_rows == 0:
                continue
            result = stage.process(table)
            removed = result.removed.column("origin").to_pylist()
            out.removed.update(zip(removed, result.removed.column("reason").to_pylist()))
            out.lang.update(zip(removed, result.removed.column("lang").to_pylist()))
            table = result.kept
        out.kept.update(zip(table.column("origin").to_pylist(), table.column("text").to_pylist()))
        out.lang.update(zip(table.column("origin").to_pylist(), table.column("lang").to_pylist()))


# -- (a) reference sets --------------------------------------------------------------------------

def reference_sets(corpora: Path) -> dict[str, list[Path]]:
    sets = {f"debian-reference/{lang}": [corpora / "multilingual" / "parallel-docs" / "debian-reference" / lang]
            for lang in DEBIAN_LANGS}
    sets["python-docs"] = [corpora / "web" / "html" / "python-docs"]
    sets["openlogic"] = [corpora / "academic" / "openlogic"]
    sets["arxiv"] = [corpora / "academic" / "arxiv-engrafo" / "tests" / "integration" / "papers",
                     corpora / "academic" / "arxiv-s2orc" / "tests" / "latex"]
    return sets


def run_set(chain: Chain, roots: list[Path]) -> Outcome:
    out = Outcome()
    for root in roots:
        out.merge(chain.run(root))
    return out


# -- (b) dclm-agreement ------------------------------------------------------------------------

def dclm(chain: Chain, corpora: Path) -> dict:
    path = corpora / "quality" / "dclm-agreement.jsonl"
    labels = [json.loads(line)["label"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    outcome = chain.run(path)
    good = bad = good_kept = bad_removed = 0
    lost: Counter = Counter()
    caught: Counter = Counter()
    for line_no, label in enumerate(labels, 1):
        origin = f"{path.name}#{line_no}"
        kept = origin in outcome.kept
        if label:
            good += 1
            good_kept += kept
            if not kept:
                lost[outcome.removed.get(origin) or _extract_reason(outcome, origin)] += 1
        else:
            bad += 1
            bad_removed += not kept
            if not kept:
                caught[outcome.removed.get(origin) or _extract_reason(outcome, origin)] += 1
    return {"good": good, "good_kept": good_kept, "good_kept_share": _share(good_kept, good), "bad": bad,
            "bad_removed": bad_removed, "bad_removed_share": _share(bad_removed, bad),
            "good_lost_to": dict(lost.most_common()), "bad_removed_by": dict(caught.most_common())}


def _extract_reason(outcome: Outcome, origin: str) -> str:
    return "extract" if origin not in outcome.extracted else "?"


# -- (c) paragraph integrity on html-gold ---------------------------------------------------------

_URL_LINE = re.compile(r"\A\s*URL:[^\n]*\n")
_BLOCK_MARK = re.compile(r"^[ \t]*<[phl]>", re.MULTILINE)
_LEAF_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "td", "th", "dd", "dt", "figcaption", "caption"}
_BR = "\ue000"  # a <br> in readability's gold HTML (a private-use character)
MIN_PARAGRAPH_WORDS = 4  # shorter gold blocks (a menu word, a date) are on one line by nature


def norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", html.unescape(text)).split())


def gold_paragraphs(text: str, kind: str) -> list[str]:
    """The gold main text's paragraphs: CleanEval and CleanPortalEval mark each block with a
    <p>, <h> or <l> prefix; readability gold is HTML, whose leaf blocks (and <br>) separate them."""
    if kind == "readability":
        if not text.strip():
            return []
        tree = lxml.html.fromstring(text)
        for br in tree.iter("br"):
            br.tail = _BR + (br.tail or "")
        blocks = [el for el in tree.iter() if isinstance(el.tag, str) and el.tag in _LEAF_BLOCKS
                  and not any(isinstance(d.tag, str) and d.tag in _LEAF_BLOCKS | {"pre"} for d in el.iterdescendants())]
        pieces = [piece for el in blocks for piece in el.text_content().split(_BR)]
    else:
        pieces = _BLOCK_MARK.split(_URL_LINE.sub("", text, count=1))[1:]
    paragraphs = [norm(p) for p in pieces]
    return [p for p in paragraphs if len(p.split()) >= MIN_PARAGRAPH_WORDS]


def integrity(chain: Chain, corpora: Path) -> dict:
    """Of the gold paragraphs present in the extracted text (whitespace aside), the share that
    stand on one line of it."""
    from curate import readers

    present = intact = 0
    examples = []
    for subset in sorted((corpora / "web" / "html-gold").iterdir()):
        for path in sorted((subset / "input").iterdir()):
            gold_path = subset / "gold" / f"{path.stem}.txt"
            if not gold_path.is_file():
                continue
            unit = readers.unit(path.name, "html", path.read_bytes())
            ext = chain.extract.process(pa.Table.from_pylist([unit], schema=readers.UNIT_SCHEMA))
            text = ext.kept.column("text")[0].as_py() if ext.kept.num_rows else ""
            whole = norm(text)
            lines = [norm(line) for line in text.splitlines()]
            for para in gold_paragraphs(gold_path.read_text(encoding="utf-8", errors="replace"), subset.name):
                if para not in whole:
                    continue
                present += 1
                if any(para in line for line in lines):
                    intact += 1
                elif len(examples) < 5:
                    examples.append(f"{subset.name}/{path.name}: {para[:80]}")
    return {"paragraphs": present, "intact": intact, "share": _share(intact, present), "broken_examples": examples}


# -- (d) mid-sentence lines --------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```")
_SOURCE_BLOCKS = ("p", "li", "dd", "dt", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "caption", "figcaption")
KEY_CHARS = 60  # a line is found in its page by its first characters


def prose_lines(text: str) -> list[str]:
    """Non-blank lines outside ``` code blocks."""
    out, in_code = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.strip():
            out.append(line)
    return out


def page_blocks(raw: bytes) -> str:
    """The text of every paragraph-like block of an HTML page, whitespace collapsed, each block
    after a NUL: a line found right after a NUL starts a block, one found elsewhere starts inside."""
    tree = lxml.html.fromstring(raw)
    blocks = [norm(el.text_content()) for el in tree.iter(*_SOURCE_BLOCKS)]
    return "".join("\x00" + b for b in blocks if b)


def mid_sentence(outcome: Outcome, root: Path) -> dict:
    """Of the kept prose lines found in their page's HTML, the share that begin inside a source
    paragraph (a hard line wrap, or what a line filter left of a paragraph) rather than at its start."""
    starts = mids = 0
    examples = []
    for origin, text in sorted(outcome.kept.items()):
        from curate import readers

        blocks = page_blocks((root / readers.path_of(origin)).read_bytes())
        for line in prose_lines(text):
            key = norm(line)[:KEY_CHARS]
            if len(key) < 20:
                continue  # too short to place
            if "\x00" + key in blocks:
                starts += 1
            elif key in blocks:
                mids += 1
                if len(examples) < 5:
                    examples.append(line[:80])
    return {"lines": starts + mids, "mid_sentence": mids, "share": _share(mids, starts + mids), "examples": examples}


# -- (e) code language -------------------------------------------------------------------------

def slug(folder: str) -> str:
    """A Linguist language name as curate spells it in code:<language>."""
    return folder.lower().replace("++", "pp").replace("#", "sharp").replace(" ", "-")


# Linguist languages that are a dialect or a schema of one of curate's (an OpenAPI document is
# YAML, T-SQL is SQL): a file labelled with the family is right.
SAME = {"oasv2-yaml": "yaml", "oasv3-yaml": "yaml", "miniyaml": "yaml", "oasv2-json": "json",
        "oasv3-json": "json", "json-with-comments": "json", "unix-assembly": "assembly",
        "motorola-68k-assembly": "assembly", "cairo-zero": "cairo", "lean-4": "lean",
        "gradle-kotlin-dsl": "kotlin", "plpgsql": "sql", "sqlpl": "sql", "plsql": "sql", "tsql": "sql",
        "ant-build-system": "xml", "maven-pom": "xml"}


def code_languages(chain: Chain, corpora: Path) -> dict:
    from curate.readers import code

    root = corpora / "code" / "linguist"
    outcome = chain.run(root)
    right = total = 0
    confusions: Counter = Counter()
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    in_table = sorted(rel for rel in files if code.language_of(rel.rsplit("/", 1)[-1]) is not None
                      and not rel.rsplit("/", 1)[-1].startswith("."))
    lang_of = outcome.lang
    for rel in in_table:
        origin = _origin_of(rel)
        truth = "code:" + _family(slug(rel.split("/", 1)[0]))
        got = lang_of.get(origin)
        got = got and "code:" + _family(got.removeprefix("code:"))
        total += 1
        right += got == truth
        if got != truth:
            confusions[f"{truth} -> {got}"] += 1
    return {"files": total, "right": right, "share": _share(right, total), "confusions": dict(confusions.most_common(8))}


def _family(lang: str) -> str:
    return SAME.get(lang, lang)


def _origin_of(rel: str) -> str:
    """The origin extract gave a file: its path, escaped where the path holds '#' or '%'."""
    from curate import readers

    return readers.origin_of(rel)


# -- the table ---------------------------------------------------------------------------------

def evaluate(corpora: Path, config: str | None = None, overrides: list[str] = (), only: list[str] | None = None) -> dict:
    chain = Chain(config, overrides)
    wanted = (lambda name: any(name.startswith(o) for o in only)) if only else (lambda name: True)
    result: dict = {"reference": {}}
    for name, roots in reference_sets(corpora).items():
        if wanted(name):
            outcome = run_set(chain, roots)
            result["reference"][name] = outcome.figures()
            if name == "python-docs":
                result["mid_sentence"] = mid_sentence(outcome, roots[0])
    if wanted("dclm"):
        result["dclm"] = dclm(chain, corpora)
    if wanted("html-gold"):
        result["integrity"] = integrity(chain, corpora)
    if wanted("code"):
        result["code"] = code_languages(chain, corpora)
    return result


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def markdown(r: dict) -> str:
    lines = ["| set | documents | kept | characters kept | main reasons removed |", "|---|---:|---:|---:|---|"]
    for name, f in r.get("reference", {}).items():
        reasons = ", ".join(f"{k} {v}" for k, v in list(f["reasons"].items())[:4]) or "–"
        lines.append(f"| {name} | {f['docs']} | {f['kept_docs']} ({_pct(f['doc_share'])}) | {_pct(f['char_share'])} | {reasons} |")
    lines.append("")
    if "dclm" in r:
        d = r["dclm"]
        lost = ", ".join(f"{k} {v}" for k, v in list(d["good_lost_to"].items())[:5])
        lines.append(f"- dclm-agreement: good kept {d['good_kept']}/{d['good']} ({_pct(d['good_kept_share'])}), "
                     f"bad removed {d['bad_removed']}/{d['bad']} ({_pct(d['bad_removed_share'])}); good lost to: {lost}")
    if "integrity" in r:
        i = r["integrity"]
        lines.append(f"- html-gold paragraph integrity: {i['intact']}/{i['paragraphs']} gold paragraphs on one line ({_pct(i['share'])})")
    if "mid_sentence" in r:
        m = r["mid_sentence"]
        lines.append(f"- python-docs kept prose lines beginning mid-sentence: {m['mid_sentence']}/{m['lines']} ({_pct(m['share'])})")
    if "code" in r:
        c = r["code"]
        conf = ", ".join(f"{k} {v}" for k, v in list(c["confusions"].items())[:5])
        lines.append(f"- code language on linguist files with a known extension: {c['right']}/{c['files']} ({_pct(c['share'])}); "
                     f"most frequent errors: {conf}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None, help="pipeline config (default: the packaged default.yaml)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="STAGE.KEY=VALUE")
    ap.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    ap.add_argument("--only", nargs="*", default=None,
                    help="sets to run: prefixes of debian-reference/<lang>, python-docs, openlogic, arxiv, dclm, html-gold, code")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    if not args.corpora.is_dir():
        ap.error(f"no corpora at {args.corpora} (clone the project with ../shared beside it, or pass --corpora)")
    sys.path.insert(0, str(ROOT))
    result = evaluate(args.corpora, args.config, args.overrides, args.only)
    table = markdown(result)
    print(table)
    for key in ("integrity", "mid_sentence"):
        for example in result.get(key, {}).get("broken_examples", result.get(key, {}).get("examples", [])):
            print(f"  {key} example: {example}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    if args.markdown:
        args.markdown.write_text(table)


if __name__ == "__main__":
    main()
