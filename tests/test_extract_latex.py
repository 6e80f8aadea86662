"""LaTeX: cleaning (comments, includes, preamble, bibliography, macros) and safe archive reading."""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from pathlib import Path

import pytest

from conftest import corpus
from curate.readers import latex_clean as latex
from curate.readers import latex as reader
from curate.stages.extract import ExtractConfig, LatexConfig

CFG = LatexConfig()
PROSE = "This paragraph is ordinary running text written by the authors of the paper, long enough."


def doc(files: dict[str, str], **cfg) -> latex.LatexDoc:
    return latex.clean_document(files, LatexConfig(**cfg))


def paper(body: str, preamble: str = "") -> str:
    return (f"\\documentclass{{article}}\n{preamble}\n\\title{{A \\emph{{Good}} Title}}\n"
            f"\\begin{{document}}\n\\maketitle\n{body}\n\\end{{document}}\nafter the end\n")


# -- pieces -----------------------------------------------------------------------------------
def test_strip_comments():
    src = "keep 50\\% of it % drop this\n% whole line\nline \\\\% gone\n\\begin{comment}x\\end{comment}y\n\\iffalse hidden \\fi z"
    assert latex.strip_comments(src) == "keep 50\\% of it \nline \\\\\ny\n z"


def test_brace_group_and_prose_words():
    assert latex.brace_group("x {a{b}c\\}d} rest", 1) == ("a{b}c\\}d", 12)
    assert latex.brace_group("no group", 0) is None
    assert latex.prose_words("\\chapter{Title}\n\\input{a}\n\\input{b}\n") == 0
    assert latex.prose_words("Some words here and $x$ math.\n") == 5


def test_main_file_preamble_title_and_end():
    out = doc({"main.tex": paper(f"\\section{{Intro}}\n{PROSE} $E = mc^2$.\n")})
    assert out.reason is None
    assert out.text.startswith("\\maketitle\n\\section{Intro}") and "$E = mc^2$" in out.text
    assert "documentclass" not in out.text and "after the end" not in out.text
    assert out.meta["title"] == "A Good Title" and out.meta["main_file"] == "main.tex"


def test_find_main_prefers_the_root_that_is_not_included():
    files = {"appendix.tex": "\\documentclass{article}\\begin{document}x\\end{document}",
             "ms.tex": "\\documentclass{article}\\begin{document}\\input{appendix}\\end{document}",
             "part.tex": "\\documentclass[ms]{subfiles}\\begin{document}y\\end{document}"}
    assert latex.find_main(files) == "ms.tex"
    assert latex.find_main({"a.tex": "no document", "b.tex": "here"}) is None


def test_inputs_are_inlined_with_notes():
    files = {
        "main.tex": paper("\\input{sections/intro}\n\\include{sections/end.tex}\n\\input{missing}\n\\input bare\n"),
        "sections/intro.tex": f"\\section{{Intro}}\n{PROSE}\n\\input{{sections/deeper}}\n",
        "sections/deeper.tex": "Deeper text.\n",
        "sections/end.tex": "The end.\n",
        "bare.tex": "Bare input text.\n",
    }
    out = doc(files)
    text = out.text
    assert text.index("Intro") < text.index("Deeper text.") < text.index("The end.") < text.index("Bare input")
    assert out.meta["missing_inputs"] == ["missing"]
    assert set(out.meta["inputs"]) == {"sections/intro.tex", "sections/deeper.tex", "sections/end.tex", "bare.tex"}


def test_recursive_and_too_deep_inputs_stop():
    files = {"main.tex": paper(f"{PROSE}\n\\input{{a}}"), "a.tex": "A text \\input{b}", "b.tex": "B text \\input{a}"}
    out = doc(files)
    assert "A text" in out.text and "B text" in out.text and out.meta["recursive_inputs"] == ["a.tex"]
    chain = {"main.tex": paper(f"{PROSE}\n\\input{{c0}}")}
    chain.update({f"c{i}.tex": f"level {i} \\input{{c{i + 1}}}" for i in range(20)})
    out = doc(chain, max_input_depth=3)
    assert "level 2" in out.text and "level 5" not in out.text and out.meta["too_deep_inputs"]


def test_commented_input_is_not_followed():
    out = doc({"main.tex": paper(f"{PROSE}\n% \\input{{secret}}\n"), "secret.tex": "SECRET"})
    assert "SECRET" not in out.text and "inputs" not in out.meta


def test_subfile_contributes_its_body_only():
    files = {"main.tex": paper(f"{PROSE}\n\\subfile{{chap}}"),
             "chap.tex": "\\documentclass[main]{subfiles}\n\\begin{document}\nChapter body.\n\\end{document}\n"}
    out = doc(files)
    assert "Chapter body." in out.text and "subfiles" not in out.text


def test_bibliography_removed_unless_kept():
    body = f"{PROSE}\n\\bibliographystyle{{plain}}\n\\bibliography{{refs}}\n\\begin{{thebibliography}}{{9}}\n\\bibitem{{a}} A. Author.\n\\end{{thebibliography}}"
    assert "bibitem" not in doc({"m.tex": paper(body)}).text and "refs" not in doc({"m.tex": paper(body)}).text
    assert "bibitem" in doc({"m.tex": paper(body)}, keep_bibliography=True).text


def test_macros_are_expanded():
    preamble = ("\\newcommand{\\R}{\\mathbb{R}}\n\\newcommand\\pair[2]{(#1, #2)}\n"
                "\\newcommand{\\greet}[2][World]{Hello #1 and #2}\n\\def\\twice#1{#1#1}\n"
                "\\DeclareMathOperator{\\argmax}{arg\\,max}\n\\newcommand{\\RR}{\\R^2}\n\\newcommand{\\loop}{\\loop x}\n")
    body = f"{PROSE}\n$x \\in \\R$, $\\pair{{a}}{{b}}$, \\greet{{you}}, \\greet[Moon]{{me}}, \\twice{{ab}}, $\\argmax_x$, $\\RR$, \\Rfoo."
    out = doc({"m.tex": paper(body, preamble)})
    t = out.text
    assert "$x \\in \\mathbb{R}$" in t and "(a, b)" in t and "Hello World and you" in t and "Hello Moon and me" in t
    assert "abab" in t and "\\operatorname{arg\\,max}_x" in t and "\\mathbb{R}^2" in t
    assert "\\Rfoo" in t  # a longer control word is not the macro
    assert "newcommand" not in t and out.meta["macros_expanded"] >= 8
    looped = doc({"m.tex": paper(f"{PROSE} \\loop", "\\newcommand{\\loop}{\\loop x}")})
    assert looped.text.count("x") <= latex.MAX_MACRO_PASSES + 2  # self-reference stops
    assert "\\mathbb" not in doc({"m.tex": paper(body, preamble)}, expand_macros=False).text


def test_only_includes_is_no_text():
    out = doc({"chap.tex": "\\documentclass[../main]{subfiles}\n\\begin{document}\n\\chapter{Sets}\n\\olimport{a}\n\\olimport{b}\n\\end{document}\n"})
    assert out.reason == "extract:latex:no_text"


def test_no_main_in_a_tree():
    assert doc({"a.tex": "just a fragment", "b.tex": "another one"}).reason == "extract:latex:no_main"


# -- reading: directories and archives ----------------------------------------------------------------
def tar_bytes(members: dict[str, bytes], gz: bool = True, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo("link.tex")
            info.type, info.linkname = tarfile.SYMTYPE, symlink
            tar.addfile(info)
    return buf.getvalue()


def parse_path(path: Path):
    unit = next(reader.read(path, path.name))
    if unit["error"]:
        return unit["error"], None
    d = reader.parse(unit, ExtractConfig())
    return d.reason, d


ARXIV = {"./ms.tex": paper(f"{PROSE}\n\\input{{sec}}").encode(), "./sec.tex": b"Section text from the tarball.\n",
         "./._ms.tex": b"\x00\x05\x16\x07 AppleDouble junk", "./fig.pdf": b"%PDF-1.4 binary"}


def test_arxiv_tarball_and_single_gz(tmp_path):
    (tmp_path / "2101.00001.tar.gz").write_bytes(tar_bytes(ARXIV, symlink="/etc/passwd"))
    reason, d = parse_path(tmp_path / "2101.00001.tar.gz")
    assert reason is None and "Section text from the tarball." in d.text and d.meta["main_file"] == "ms.tex"
    plain = tmp_path / "2101.00002"  # arXiv's extension-less download: sniffed as a tarball
    plain.write_bytes(gzip.compress(tar_bytes(ARXIV, gz=False)))
    assert reader.looks_like_latex(gzip.decompress(plain.read_bytes())[:8192])
    single = tmp_path / "2101.00003.gz"
    single.write_bytes(gzip.compress(paper(PROSE).encode()))
    reason, d = parse_path(single)
    assert reason is None and PROSE in d.text


@pytest.mark.parametrize("name", ["../evil.tex", "a/../../evil.tex", "/abs/evil.tex"])
def test_unsafe_member_names_refuse_the_archive(tmp_path, name):
    path = tmp_path / "bad.tar"
    path.write_bytes(tar_bytes({"ms.tex": paper(PROSE).encode(), name: b"x"}, gz=False))
    assert parse_path(path)[0] == "extract:latex:unsafe_path"


def gzip_stream_to(path: Path, chunks) -> None:
    """Compress `chunks` into a gzip file as they come: a bomb is never held in memory."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(comp.compress(chunk))
        f.write(comp.flush())


def test_bombs_are_refused(tmp_path):
    # a tarball whose .tex member claims 300 MB: refused from its header, nothing decompressed
    big = tmp_path / "bomb.tar.gz"
    info = tarfile.TarInfo("ms.tex")
    info.size = 300 << 20
    gzip_stream_to(big, [info.tobuf(), *(bytes(1 << 20) for _ in range(300)), bytes(1024)])
    assert parse_path(big)[0] == "extract:latex:too_large"
    # a single-file .gz of 200 MB zeros: reading stops at the source-size limit
    single = tmp_path / "paper.tex.gz"
    gzip_stream_to(single, (bytes(1 << 20) for _ in range(200)))
    assert single.stat().st_size < 1 << 20
    assert parse_path(single)[0] == "extract:latex:too_large"


def test_truncated_archive(tmp_path):
    data = tar_bytes({"ms.tex": paper(PROSE).encode() * 50, "z.tex": bytes(range(256)) * 400})
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    reason, _ = parse_path(path)
    assert reason in ("extract:error:truncated", "extract:error:corrupt")


def test_claims_dir(tmp_path):
    paper_dir = tmp_path / "paper"
    (paper_dir / "sec").mkdir(parents=True)
    (paper_dir / "main.tex").write_text(paper("\\input{sec/a}"))
    (paper_dir / "sec" / "a.tex").write_text(PROSE)
    (paper_dir / "README.md").write_text("readme")
    assert reader.claims_dir(paper_dir)
    reason, d = parse_path(paper_dir)
    assert reason is None and PROSE in d.text
    many = tmp_path / "papers"  # independent papers side by side: each file is a document
    many.mkdir()
    for i in range(3):
        (many / f"p{i}.tex").write_text(paper(PROSE))
    assert not reader.claims_dir(many)
    parts = tmp_path / "parts"  # subfiles parts without their root: not a source tree
    parts.mkdir()
    (parts / "s.tex").write_text("\\documentclass[../x]{subfiles}\n\\begin{document}\nx\n\\end{document}")
    assert not reader.claims_dir(parts)


def test_pack_roundtrip():
    files = {"a.tex": b"x", "dir/b.tex": b"\x00\xff" * 3, "ü.tex": b""}
    assert reader.unpack(reader.pack(files)) == files


# -- the real corpora ------------------------------------------------------------------------------------
@pytest.mark.corpora
def test_arxiv_source_trees_and_bundles():
    papers = corpus("academic", "arxiv-engrafo", "tests", "integration", "papers")
    for d in sorted(papers.iterdir()):
        assert reader.claims_dir(d), d.name
        reason, out = parse_path(d)
        assert reason is None and out.meta["main_file"] == "main.tex" and len(out.text) > 10_000
        assert "\\documentclass" not in out.text and "\\begin{document}" not in out.text
    titles = {}
    for gz in sorted(corpus("academic", "arxiv-s2orc", "tests", "latex").glob("*.gz")):
        reason, out = parse_path(gz)
        assert reason is None and len(out.text) > 20_000
        titles[gz.name] = out.meta["title"]
    assert titles["1911.02782.gz"].startswith("S2ORC")
    assert titles["2004.14974.gz"].startswith("Fact or Fiction")


@pytest.mark.corpora
def test_openlogic_sections_are_documents_and_chapters_are_not():
    root = corpus("academic", "openlogic", "content")
    assert not reader.claims_dir(root) and not reader.claims_dir(root / "set-theory")
    section, _ = parse_path(root / "set-theory" / "story" / "extensionality.tex")
    assert section is None
    assert parse_path(root / "set-theory" / "story" / "story.tex")[0] == "extract:latex:no_text"


# -- issue 19 item 3: every root of a source tree is a document, or a removed record -----------------
def extract_dir(root: Path):
    """Discovery, the readers and the extract stage over a directory, as a run does them."""
    import pyarrow as pa

    from curate import readers as all_readers
    from curate.discover import discover
    from curate.stages.extract import ExtractStage

    units = [u for f in discover(root) for u in all_readers.get(f.format).read(root / f.rel, f.rel)]
    return ExtractStage(ExtractConfig()).process(pa.Table.from_pylist(units, schema=all_readers.UNIT_SCHEMA))


def test_roots_that_input_their_own_name_are_documents_each(tmp_path):
    folder = tmp_path / "in" / "roots"
    folder.mkdir(parents=True)
    for i in range(35):
        (folder / f"r{i:02d}.tex").write_text(paper(f"Paper {i} says this. {PROSE}\n\\input{{r{i:02d}}}"))
    result = extract_dir(tmp_path / "in")
    assert result.removed.num_rows == 0
    texts = result.kept.column("text").to_pylist()
    assert len(texts) == 35 and all(f"Paper {i} says" in texts[i] for i in range(35))


def test_a_tree_with_several_roots_gives_one_document_per_root(tmp_path):
    tree = tmp_path / "in" / "paper"
    (tree / "sections").mkdir(parents=True)
    (tree / "main.tex").write_text(paper("Main paper. \\input{sections/intro}\n\\input{appendix}"))
    (tree / "supplement.tex").write_text(paper("Supplementary material. \\input{sections/intro}"))
    (tree / "appendix.tex").write_text(paper(f"Appendix, also compiled alone. {PROSE}"))  # a root main includes
    (tree / "sections" / "intro.tex").write_text(f"Shared introduction. {PROSE}\n")
    assert reader.claims_dir(tree)
    result = extract_dir(tmp_path / "in")
    assert result.removed.num_rows == 0
    kept = {row["origin"]: row for row in result.kept.to_pylist()}
    assert set(kept) == {"paper#1", "paper#2"}
    main, supplement = kept["paper#1"]["text"], kept["paper#2"]["text"]
    assert "Main paper." in main and "Shared introduction." in main and "Appendix, also" in main
    assert "Supplementary material." in supplement and "Shared introduction." in supplement
    assert "Main paper." not in supplement and "Appendix" not in supplement
    import json

    assert [json.loads(kept[o]["meta"])["main_file"] for o in ("paper#1", "paper#2")] == ["main.tex", "supplement.tex"]


def test_authors_emails_orcids_and_affiliations_are_dropped():
    body = ("\\author[E. G.]{Edisson {G}allego}\n\\email{egalleg@gmail.com}\n\\orcid{0000-0001-8407-7176}\n"
            "\\affiliation{\\institution{University of Queensland}}\n\\icmlauthor{Ada}{inst1}\n" + PROSE)
    text = doc({"main.tex": paper(body)}).text
    for gone in ("Gallego", "egalleg", "0000-0001", "Queensland", "Ada", "inst1"):
        assert gone not in text
    assert PROSE in text
