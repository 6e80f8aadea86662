"""HTML bytes -> main text and metadata: our decoding and parsing, trafilatura's extraction.

What we add around `trafilatura.extract`, each measured by scripts/extract_quality.py on
html-gold (token F1) and python-docs (pages/s):

- decoding: BOM, HTTP charset, <meta charset>, then UTF-8 or a detector (curate.readers.decode);
  trafilatura alone ignores the declarations and guesses.
- one parse per page, reused by every extraction pass, with the parser's depth limit reported
  (libxml2 silently drops content nested deeper than 256 elements).
- adaptive mode: trafilatura's fast mode first (its own extractor, no readability/jusText
  comparison; recall focus, which measured both faster and more accurate than balanced
  there), and the full cascade only when the fast text covers less than `rerun_below_share`
  of the page's visible text (a looser share on small pages, which are cheap to redo), a sign
  that the fast pass missed the content, unless the page is mostly link text (an index or
  table of contents, where the full pass finds no article either and costs the most).
- cheap metadata (title, canonical URL, publication date, html lang) from a few XPaths:
  trafilatura's metadata extraction costs as much as the fast extraction itself.

Nothing here touches the network: trafilatura gets a parsed tree, never a URL to fetch.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

import trafilatura
from lxml import etree
from lxml.html import HTMLParser, HtmlElement, document_fromstring

from curate.readers.decode import decode_html, looks_binary

# trafilatura logs every page it discards at WARNING: noise in a pipeline that records reasons.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

# Separate from trafilatura's parser so its error log (the depth limit) is ours to read.
_PARSER = HTMLParser(collect_ids=False, default_doctype=False, remove_comments=True, remove_pis=True)
# lxml refuses str input that declares an encoding: the bytes are already decoded.
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)

_BODY_CHARS = etree.XPath("string-length(//body)")
_VISIBLE = etree.XPath("string(//body)")
_INVISIBLE = etree.XPath("//body//script | //body//style | //body//noscript | //body//template")
_LINK_TEXT = etree.XPath("//body//a//text()")

# Metadata from <head> only: a whole-document scan per field would cost as much as parsing.
_TITLE = etree.XPath("/html/head/meta[@property='og:title']/@content | /html/head/title/text()")
_CANONICAL = etree.XPath("/html/head/link[@rel='canonical']/@href | /html/head/meta[@property='og:url']/@content")
_DATE = etree.XPath(
    "/html/head/meta[@property='article:published_time' or @name='article:published_time'"
    " or @itemprop='datePublished' or @name='date' or @name='DC.date.issued' or @name='dc.date'"
    " or @name='dcterms.date' or @name='pubdate' or @name='publishdate' or @name='sailthru.date'"
    " or @name='parsely-pub-date' or @property='og:published_time']/@content")
_LANG = etree.XPath("/html/@lang")
# Permalink anchors beside headings (Sphinx's "¶", "#", "§", a link symbol): not text.
_PERMALINKS = etree.XPath(
    "//a[contains(concat(' ', normalize-space(@class), ' '), ' headerlink ')"
    " or (starts-with(@href, '#') and normalize-space(.) != ''"
    " and translate(normalize-space(.), '¶#§🔗⚓', '') = '')]")


_PRE = etree.XPath("//pre")
# Around the text of each <pre>: trafilatura turns some code blocks into quotes or paragraphs
# (a <pre> inside a definition list), so the marks, not its tags, tell `render` what is code.
CODE_START, CODE_END = "\ue001", "\ue002"  # private-use characters
_CODE_SPAN = re.compile(f"{CODE_START}(.*?)(?:{CODE_END}|$)", re.DOTALL)


def drop_permalinks(tree: HtmlElement) -> None:
    for anchor in _PERMALINKS(tree):
        anchor.drop_tree()  # keeps the text after it


def mark_code(tree: HtmlElement) -> None:
    """Put CODE_START and CODE_END around the text of every <pre> (outermost ones)."""
    for pre in _PRE(tree):
        if any(a.tag == "pre" for a in pre.iterancestors()):
            continue
        pre.text = CODE_START + (pre.text or "")
        last = pre
        while len(last):
            last = last[-1]
        if last is pre:
            pre.text += CODE_END
        else:
            last.tail = (last.tail or "") + CODE_END


@dataclass
class Page:
    """The extraction of one HTML page: text and metadata, or the reason there is none."""

    text: str | None = None
    reason: str | None = None
    meta: dict = field(default_factory=dict)  # title, date, canonical_url, html_lang, encoding
    url: str | None = None  # the canonical URL the page names (absolute http(s) only)
    full_pass: bool = False  # whether trafilatura's full cascade ran (adaptive mode)


def parse(text: str) -> tuple[HtmlElement | None, bool]:
    """Parse decoded HTML; returns (tree or None, whether the depth limit cut content)."""
    text = _XML_DECL.sub("", text, count=1)
    try:
        tree = document_fromstring(text, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return None, False
    too_deep = any(e.type_name == "ERR_RESOURCE_LIMIT" for e in _PARSER.error_log)
    return tree, too_deep


def visible_chars(tree: HtmlElement) -> int:
    """Characters of the body's text outside scripts and styles, whitespace collapsed."""
    total = len(" ".join(_VISIBLE(tree).split()))
    for el in _INVISIBLE(tree):
        total -= len(" ".join(el.text_content().split()))
    return max(total, 0)


def _first(values: list, limit: int = 500) -> str | None:
    for v in values:
        v = " ".join(str(v).split())
        if v:
            return v[:limit]
    return None


def _iso_date(value: str | None) -> str | None:
    """A date as YYYY-MM-DD when it parses as ISO 8601, else the raw value if it has a year."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        return value[:40] if re.search(r"\b(1[89]|20)\d\d\b", value) else None


def metadata(tree: HtmlElement) -> tuple[dict, str | None]:
    """(meta fields found in the head, the page's own absolute canonical URL or None)."""
    meta = {}
    title = _first(_TITLE(tree))
    if title:
        meta["title"] = title
    date = _iso_date(_first(_DATE(tree), 100))
    if date:
        meta["date"] = date
    lang = _first(_LANG(tree), 35)
    if lang:
        meta["html_lang"] = lang
    canonical = _first(_CANONICAL(tree), 2000)
    if canonical and not canonical.lower().startswith(("http://", "https://")):
        canonical = None
    return meta, canonical


def _trafilatura(tree: HtmlElement, settings, url: str | None, fast: bool) -> str:
    favor = settings.fast_favor if fast else settings.favor
    doc = trafilatura.bare_extraction(
        tree,  # trafilatura copies a tree it is given, so one parse serves every pass
        url=url,
        fast=fast,
        include_comments=settings.include_comments,
        include_tables=settings.include_tables,
        favor_precision=favor == "precision",
        favor_recall=favor == "recall",
        deduplicate=False,  # a per-process cache would make output depend on shard order
    )
    if doc is None or doc.body is None:
        return ""
    text = render(doc.body)
    if settings.include_comments and doc.commentsbody is not None and len(doc.commentsbody):
        comments = render(doc.commentsbody)
        text = f"{text}\n{comments}" if text and comments else text or comments
    return text


# -- trafilatura's tree -> text as a reader sees it ---------------------------------------------

# Elements of trafilatura's output tree that hold running text of a block (their children and
# their text flow on one line); every other element with text is a block of its own.
_INLINE = frozenset({"hi", "ref", "del", "span", "sub", "sup", "abbr", "em", "b", "i", "u", "s", "mark", "small"})
# Where a <code> is inline (a name inside a sentence) unless it spans lines.
_INLINE_HOSTS = frozenset({"p", "head", "cell", "hi", "ref", "del", "span", "quote", "item"})
_BREAK = "\x00"  # a <br> while a block is collected (a character that parsed HTML never holds)
_BACKTICKS = re.compile(r"^[ \t]*(`{3,})", re.MULTILINE)


def fence(code: str) -> str:
    """A code block between ``` lines (longer when the code has such lines itself, as in
    CommonMark), so that filters can tell code from prose and leave its lines as they are."""
    longest = max((len(m) for m in _BACKTICKS.findall(code)), default=0)
    mark = "`" * max(3, longest + 1)
    return f"{mark}\n{code}\n{mark}"


def _is_code_block(el) -> bool:
    text = "".join(el.itertext())
    parent = el.getparent()
    return "\n" in text.strip() or parent is None or parent.tag not in _INLINE_HOSTS


def render(body) -> str:
    """trafilatura's extracted tree -> text: each block (paragraph, heading, list item, table
    row, quote) on one line with its whitespace runs as single spaces, so a paragraph the HTML
    source wrapped over several lines is one line again; <br> breaks a line; code blocks keep
    their lines verbatim, fenced with ```; table cells are joined with " | "."""
    blocks: list[str] = []
    current: list[str] = []

    def prose(text: str) -> None:
        lines = (" ".join(line.split()) for line in text.split(_BREAK))
        block = "\n".join(line for line in lines if line)
        if block:
            blocks.append(block)

    def code(text: str) -> None:
        text = text.replace(CODE_START, "").replace(CODE_END, "").replace(_BREAK, "\n").strip("\n").rstrip()
        if text.strip():
            blocks.append(fence(text))

    def flush() -> None:
        text = "".join(current)
        current.clear()
        start = 0
        for m in _CODE_SPAN.finditer(text):  # a marked <pre> inside what trafilatura calls prose
            prose(text[start:m.start()])
            code(m.group(1))
            start = m.end()
        prose(text[start:].replace(CODE_END, ""))

    def inline_text(el) -> str:
        return " ".join("".join(el.itertext()).replace(CODE_START, "").replace(CODE_END, "").split())

    def walk(el) -> None:
        tag = el.tag
        if not isinstance(tag, str):  # a comment or processing instruction
            pass
        elif tag == "lb":
            current.append(_BREAK)
        elif tag == "graphic":
            pass
        elif tag == "code" and _is_code_block(el):
            flush()
            code("".join(el.itertext()))
        elif tag == "row":
            flush()
            cells = [inline_text(c) for c in el]
            row = " | ".join(c for c in cells if c)
            if row:
                blocks.append(row)
        elif tag in _INLINE or tag == "code":
            current.append(el.text or "")
            for child in el:
                walk(child)
        else:  # a block: paragraph, heading, item, list, table, quote, div ...
            flush()
            current.append(el.text or "")
            for child in el:
                walk(child)
            flush()
        current.append(el.tail or "")

    current.append(body.text or "")
    for child in body:
        walk(child)
    flush()
    return "\n".join(blocks)


def _looks_short(text: str, tree: HtmlElement, settings) -> bool:
    """Whether the fast text covers too little of the page's visible characters: less than
    `rerun_below_share`, or `rerun_small_below_share` on small pages, which are cheap to redo.
    The body's raw string length bounds the visible characters from above and is cheap, so the
    exact count is only taken when that bound does not already settle it."""
    n, upper = len(text), _BODY_CHARS(tree)
    big, small, small_page = settings.rerun_below_share, settings.rerun_small_below_share, settings.small_page_chars
    if n >= max(big, small) * upper:
        return False
    if n >= big * upper and n >= small * small_page:  # a large page passes big, a small one small
        return False
    visible = visible_chars(tree)
    return n < (small if visible < small_page else big) * visible


def link_share(tree: HtmlElement) -> float:
    """Share of the visible characters that are link text: near 1 on indexes and tables of
    contents, where no article exists for a second extraction pass to find."""
    return sum(len(" ".join(t.split())) for t in _LINK_TEXT(tree)) / max(visible_chars(tree), 1)


def main_text(tree: HtmlElement, settings, url: str | None = None) -> tuple[str, bool]:
    """The page's main text per `settings.mode`; returns (text, whether the full pass ran)."""
    if settings.mode == "full":
        return _trafilatura(tree, settings, url, fast=False), True
    text = _trafilatura(tree, settings, url, fast=True)
    if settings.mode == "fast" or not _looks_short(text, tree, settings):
        return text, False
    if link_share(tree) > settings.rerun_max_link_share:
        return text, False
    full = _trafilatura(tree, settings, url, fast=False)
    return (full or text), True


def extract_page(data: bytes, settings, *, url: str | None = None, http_charset: str | None = None) -> Page:
    """Raw page bytes -> `Page`. `settings` is the extract config's `html` section."""
    if len(data) > settings.max_bytes:
        return Page(reason="extract:html:too_large")
    if looks_binary(data):
        return Page(reason="extract:html:binary")
    html, encoding = decode_html(data, http_charset)
    tree, too_deep = parse(html)
    if tree is None:
        return Page(reason="extract:empty")
    meta, canonical = metadata(tree)
    drop_permalinks(tree)
    mark_code(tree)
    if encoding != "utf-8":
        meta["encoding"] = encoding
    text, full = main_text(tree, settings, url or canonical)
    if too_deep:
        meta["truncated"] = "depth"
    if not text.strip():
        return Page(reason="extract:html:too_deep" if too_deep else "extract:empty", meta=meta, url=canonical)
    return Page(text=text, meta=meta, url=canonical, full_pass=full)
