"""HTML extraction: decoding, metadata, bad pages, and quality against plain trafilatura."""

from __future__ import annotations

import sys

import pytest

from conftest import ROOT, corpus
from curate.readers.html_text import extract_page, visible_chars, parse
from curate.readers import html as html_reader
from curate.stages.extract import ExtractConfig, HtmlConfig
from curate.readers.decode import charset_of_content_type, decode, decode_html, html_meta_charset, looks_binary

ARTICLE = """<html lang="fr"><head><title>Le titre</title>
<meta property="article:published_time" content="2021-03-04T10:00:00Z">
<link rel="canonical" href="https://example.org/a">
{head}</head><body>
<nav><a href="/">Accueil</a> <a href="/b">Blog</a></nav>
<article><h1>Le titre</h1>
{paras}
</article>
<footer>Mentions légales · Contact · Plan du site</footer></body></html>"""
PARA = "<p>Ceci est une phrase assez longue pour être du contenu principal, écrite à la main numéro {i}.</p>"


def article(head: str = "", n: int = 8) -> str:
    return ARTICLE.format(head=head, paras="\n".join(PARA.format(i=i) for i in range(n)))


# -- decoding ----------------------------------------------------------------------------------
def test_decode_order_bom_declared_utf8_detector():
    assert decode("naïve".encode("utf-16"), "iso-8859-1") == ("naïve", "utf-16-le")  # BOM first
    assert decode("Grüße".encode("utf-8"), "iso-8859-1")[0] == "Grüße"  # valid UTF-8 beats a latin-1 label
    assert decode("Grüße “quoted”".encode("cp1252"), "iso-8859-1") == ("Grüße “quoted”", "cp1252")  # WHATWG
    russian = "Привет, как дела? Всё хорошо, спасибо. Сегодня хорошая погода, и мы идём гулять в парк. " * 4
    assert decode(russian.encode("koi8-r"), None) == (russian, "koi8-r")  # the detector
    french = "Le café était très agréable, nous y avons mangé des crêpes délicieuses. " * 3
    assert decode(french.encode("latin-1"), None) == (french, "cp1252")  # ties go to cp1252
    text, enc = decode("déjà vu ".encode() * 3 + b"\xff\xfe\xfa", None)
    assert enc == "utf-8" and text.startswith("déjà vu") and "\ufffd" in text  # a few broken bytes
    assert decode(b"\x80\x81\xff" * 10, "no-such-charset")[0]  # never raises


def test_charset_sources():
    page = b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
    assert html_meta_charset(page) == "windows-1251"
    assert html_meta_charset(b"<meta charset='utf-8'>") == "utf-8"
    assert html_meta_charset(b'<?xml version="1.0" encoding="ISO-8859-15"?>\n<html>') == "ISO-8859-15"
    assert charset_of_content_type('text/html; charset="ISO-8859-2"') == "ISO-8859-2"
    body = "<html><head><meta charset=windows-1251></head><body>Привет мир</body></html>".encode("cp1251")
    assert "Привет мир" in decode_html(body)[0]
    assert decode_html(body, http_charset="cp1251")[1] == "cp1251"


def test_looks_binary():
    assert looks_binary(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert looks_binary(bytes(range(1, 32)) * 20)
    assert not looks_binary("<html>é</html>".encode())
    assert not looks_binary("hi".encode("utf-16"))


# -- extraction --------------------------------------------------------------------------------
def test_main_text_and_metadata():
    page = extract_page(article().encode("utf-8"), HtmlConfig())
    assert page.reason is None
    assert "phrase assez longue" in page.text and "numéro 7" in page.text
    assert "Mentions légales" not in page.text and "Accueil" not in page.text
    assert page.meta["title"] == "Le titre" and page.meta["date"] == "2021-03-04"
    assert page.meta["html_lang"] == "fr" and page.url == "https://example.org/a"


def test_declared_charset_is_used():
    raw = article(head='<meta charset="iso-8859-1">').encode("cp1252")
    page = extract_page(raw, HtmlConfig())
    assert "écrite à la main" in page.text and page.meta["encoding"] == "cp1252"


@pytest.mark.parametrize("mode", ["fast", "full", "adaptive"])
def test_modes_extract_the_article(mode):
    page = extract_page(article().encode(), HtmlConfig(mode=mode))
    assert "numéro 3" in page.text and page.full_pass == (mode == "full")


def test_adaptive_reruns_when_fast_text_is_short(monkeypatch):
    from curate.readers import html_text

    calls = []
    fast_text = {"value": "x"}
    monkeypatch.setattr(html_text, "_trafilatura",
                        lambda tree, s, url, fast: calls.append(fast) or (fast_text["value"] if fast else "full text"))
    small = parse(article(n=4))[0]  # about 400 visible characters
    assert html_text.main_text(small, HtmlConfig()) == ("full text", True) and calls == [True, False]
    calls.clear()
    off = HtmlConfig(rerun_below_share=0.0, rerun_small_below_share=0.0)
    assert html_text.main_text(small, off) == ("x", False) and calls == [True]
    # an index page (mostly link text) has no article for the full pass to find
    links = parse("<html><body><ul>" + "".join(f'<li><a href="/p{i}">Chapter {i} of the book</a></li>'
                                               for i in range(200)) + "</ul></body></html>")[0]
    calls.clear()
    assert html_text.main_text(links, HtmlConfig()) == ("x", False) and calls == [True]
    assert html_text.link_share(links) > 0.9 and html_text.link_share(small) < 0.1  # nav links only
    # a fifth of the page: rerun on a small page (share 0.3), not on a large one (share 0.1)
    large = parse(article(n=80))[0]
    for tree, rerun in ((small, True), (large, False)):
        fast_text["value"] = "y" * (visible_chars(tree) // 5)
        assert html_text.main_text(tree, HtmlConfig())[1] is rerun


def test_visible_chars_ignores_scripts():
    tree = parse("<html><body><p>hello world</p><script>var x = 'not text at all';</script></body></html>")[0]
    assert visible_chars(tree) == len("hello world")


@pytest.mark.parametrize("raw, reason", [
    (b"", "extract:empty"),
    (b"   \n\t ", "extract:empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(2000), "extract:html:binary"),
    (b"<html><body>" + b"<div>" * 5000 + b"<p>deep</p>" + b"</div>" * 5000 + b"</body></html>", "extract:html:too_deep"),
    (b"<html><body><p>" + b"x" * 200 + b"</p></body></html>", None),
])
def test_bad_pages_have_reasons(raw, reason):
    page = extract_page(raw, HtmlConfig(max_bytes=1 << 20))
    if reason is None:
        assert page.reason is None or page.reason == "extract:empty"
    else:
        assert page.reason == reason and page.text is None


def test_too_large_and_invalid_utf8():
    assert extract_page(b"<p>" + b"a" * 2000 + b"</p>", HtmlConfig(max_bytes=1000)).reason == "extract:html:too_large"
    raw = article().encode("utf-8").replace("numéro 3".encode(), b"num\xff\xfe 3")
    page = extract_page(raw, HtmlConfig())
    assert page.reason is None and "numéro 4" in page.text  # the rest of the page stays readable


def test_reader_sniffs_html_and_parses_row():
    assert html_reader.looks_like_html(b"\xef\xbb\xbf  <!DOCTYPE html><html>")
    assert html_reader.looks_like_html(b"<!-- c --><html lang=en>")
    assert html_reader.looks_like_html(b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN">')
    assert not html_reader.looks_like_html(b"Just text mentioning <html> later")
    doc = html_reader.parse({"payload": article().encode(), "url": "http://given/url", "origin": "a.html"}, ExtractConfig())
    assert doc.url == "http://given/url" and doc.meta["title"] == "Le titre"


# -- text as a reader sees it -----------------------------------------------------------------------
WRAPPED = """<html><head><title>Docs</title></head><body><div class="body">
<h1>Concrete Objects Layer<a class="headerlink" href="#concrete" title="Link">¶</a></h1>
<p>The functions in this chapter are specific to certain Python object types. Passing them an
object of the wrong type is not a good idea; if you receive an object from a Python program and
you are not sure that it has the right type, you must perform a type check first.</p>
<p>For example, a loop that walks a list and prints each element with its index looks like
this, and it is the usual way to do it in ordinary code:</p>
<pre>for i, item in enumerate(items):
    print(i, item)

total = sum(items)</pre>
<ul><li>A first list item that is long enough to be text
wrapped over two lines of the source.</li><li>A second item.</li></ul>
<p>An address keeps its breaks:<br>221B Baker Street<br>London</p>
<h2>Section<a href="#s">#</a></h2>
<p>The last paragraph says that the page ends here, after the list, the code and the address.</p>
</div></body></html>"""


def test_paragraphs_are_lines_and_code_keeps_its_lines():
    text = extract_page(WRAPPED.encode(), HtmlConfig(mode="full")).text
    lines = text.split("\n")
    assert ("The functions in this chapter are specific to certain Python object types. Passing them an "
            "object of the wrong type is not a good idea; if you receive an object from a Python program and "
            "you are not sure that it has the right type, you must perform a type check first.") in lines
    # code verbatim between fences: indentation and the blank line kept
    assert "```\nfor i, item in enumerate(items):\n    print(i, item)\n\ntotal = sum(items)\n```" in text
    assert "221B Baker Street" in lines and "London" in lines  # <br> is a line break


def test_render_blocks_of_trafilaturas_tree():
    from lxml import etree

    from curate.readers.html_text import render

    body = etree.fromstring(
        "<body><head rend='h1'>A   title</head><list><item>first\n  item</item><item>second <hi>bold</hi>"
        "</item></list><table><row><cell>a</cell><cell>b\nc</cell></row></table>"
        "<p>inline <code>x = 1</code> code</p><code>one line block</code><quote><p>quoted\ntext</p></quote></body>")
    assert render(body).split("\n") == ["A title", "first item", "second bold", "a | b c", "inline x = 1 code",
                                         "```", "one line block", "```", "quoted text"]


def test_code_that_trafilatura_calls_a_quote_stays_code():
    """A <pre> inside a definition list comes out of trafilatura as a <quote>: the marks that
    mark_code put around every <pre> make it a fenced code block all the same."""
    from lxml import etree

    from curate.readers.html_text import CODE_END, CODE_START, mark_code, render

    tree, _ = parse("<html><body><dl><dd><p>Called as:</p><pre>x = f(a,\n      b)</pre></dd></dl></body></html>")
    mark_code(tree)
    assert tree.xpath("string(//pre)") == f"{CODE_START}x = f(a,\n      b){CODE_END}"
    body = etree.fromstring(f"<body><p>Called as:</p><quote>{CODE_START}x = f(a,\n      b){CODE_END}</quote>"
                            f"<p>where f is {CODE_START}g{CODE_END} here</p></body>")
    assert render(body) == "Called as:\n```\nx = f(a,\n      b)\n```\nwhere f is\n```\ng\n```\nhere"


def test_permalinks_are_dropped():
    from curate.readers.html_text import drop_permalinks

    tree, _ = parse(WRAPPED)
    drop_permalinks(tree)
    headings = [h.text_content() for h in tree.iter("h1", "h2")]
    assert headings == ["Concrete Objects Layer", "Section"]


def test_fence_is_longer_than_backticks_inside():
    from curate.readers.html_text import fence

    assert fence("x = 1") == "```\nx = 1\n```"
    assert fence("```\nmarkdown\n```") == "````\n```\nmarkdown\n```\n````"


# -- quality against plain trafilatura ---------------------------------------------------------------
def test_f1_scorer():
    sys.path.insert(0, str(ROOT / "scripts"))
    import extract_quality as eq

    assert eq.token_f1("a b c", "a b c") == 1.0
    assert eq.token_f1("", "") == 1.0 and eq.token_f1(None, "x") == 0.0
    assert eq.token_f1("A a b", "a b d") == pytest.approx(2 / 3)
    assert eq.gold_text("URL: http://x\n<h>Title\n<p>Body &amp; more\n<l> * item", "cleaneval").split() == \
        ["Title", "Body", "&", "more", "*", "item"]
    assert eq.gold_text("<div><p>Para <b>bold</b></p></div>", "readability").split() == ["Para", "bold"]


@pytest.mark.corpora
def test_ours_at_least_as_good_as_plain_trafilatura_on_a_subset():
    sys.path.insert(0, str(ROOT / "scripts"))
    import extract_quality as eq

    result = eq.html_quality(corpus(), every=4)  # 62 pages across the three gold sets
    assert result["ours"]["pages"] == 62
    assert result["ours"]["f1"] >= result["plain"]["f1"], result
    assert result["ours"]["f1"] > 0.8
