"""Source code: language by extension, what extract drops (not text), and what the quality
stage's code filter (the StarCoder rules) removes from real files."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from conftest import corpus
from curate import readers, schema
from curate.readers import code, code_language
from curate.stages.extract import CodeConfig, ExtractConfig
from curate.stages.quality import QualityConfig, QualityStage

CFG = CodeConfig()
PY = b'import os\n\n\ndef main():\n    """Print the cwd."""\n    print(os.getcwd())\n'


def row(name: str, data: bytes) -> dict:
    return {"origin": name, "payload": data, "url": None, "meta": None}


def test_language_table():
    assert len(code_language.LANGUAGES) >= 50
    for name, lang in [("a.py", "python"), ("x/y/lib.RS", "rust"), ("Main.java", "java"), ("v.hpp", "cpp"),
                       ("Makefile", "makefile"), ("src/CMakeLists.txt", "cmake"), ("Dockerfile", "dockerfile"),
                       ("k.kts", "kotlin"), ("s.tsx", "tsx"), ("notes.txt", None), ("page.html", None)]:
        assert code_language.language_of(name) == lang, name
    # the registry routes the same names to the code reader, and leaves prose to the others
    assert readers.by_extension("CMakeLists.txt").format == "code"
    assert readers.by_extension("notes.txt").format == "text" and readers.by_extension("a.tex").format == "latex"


@pytest.mark.parametrize("name, text, lang", [
    ("a.m", "#import <Foundation/Foundation.h>\n@interface Foo : NSObject\n@end\n", "objective-c"),
    ("a.m", "function y = f(x)\n% square it\ny = x.^2;\nend\n", "matlab"),
    ("a.m", ":- module hello.\n:- interface.\n:- import_module io.\n", "mercury"),
    ("a.m", "START ; entry point\n S X=1\n W !,\"Hello\"\n Q\n", "m"),
    ("a.m", "f[x_] := x^2\n(* a comment *)\nPlot[f[x], {x, 0, 1}]\n", "wolfram-language"),
    ("a.v", "Require Import Arith.\nTheorem t : 1 + 1 = 2.\nProof. reflexivity. Qed.\n", "rocq-prover"),
    ("a.v", "module counter(input clk, output reg q);\nalways @(posedge clk) q <= ~q;\nendmodule\n", "verilog"),
    ("a.h", "namespace x {\nclass A { public: virtual ~A(); };\n}\n", "cpp"),
    ("a.h", "int add(int a, int b);\n", "c"),
    ("a.t", "use v6;\nuse Test;\nplan 1;\nok 1, 'fine';\n", "raku"),
    ("a.t", "use strict;\nuse Test::More tests => 1;\nmy $x = 1;\nok($x);\n", "perl"),
    ("a.pl", "parent(tom, bob).\nancestor(X, Y) :- parent(X, Y).\n", "prolog"),
    ("a.hh", "<?hh // strict\nfunction f(): int { return 1; }\n", "hack"),
    ("a.ts", '<?xml version="1.0" encoding="utf-8"?>\n<TS version="2.1"></TS>\n', "xml"),
    ("a.py", "print('x')\n", "python"),  # an unambiguous extension is not second-guessed
])
def test_language_by_content_where_the_extension_is_shared(name, text, lang):
    from curate.readers.code_language import language_of_file

    assert language_of_file(name, text) == lang
    assert code.parse(row(name, text.encode()), ExtractConfig()).lang == f"code:{lang}"


def test_a_hash_in_a_path_is_not_a_record_number():
    assert readers.origin_of("code/C#/Program.cs") == "code/C%23/Program.cs"
    assert readers.origin_of("100%/a#b") == "100%25/a%23b" and readers.origin_of("plain/a.py") == "plain/a.py"
    for path in ("code/C#/Program.cs", "100%/a#b", "%23 literally", "plain/a.py"):
        assert readers.path_of(readers.origin_of(path)) == path
        assert readers.path_of(readers.origin_of(path) + "#12") == path
    doc = code.parse(row(readers.origin_of("linguist/C#/Program.cs"), b"class P { static void Main() {} }\n"),
                     ExtractConfig())
    assert doc.lang == "code:csharp"


def test_files_of_unknown_extension_are_code_or_text_by_content():
    from curate.readers import text as text_reader

    c = text_reader.parse({"origin": "src/module.bsl", "payload": b"Procedure Run(x)\n  If x > 0 Then\n    a = b[1];\n"
                           b"  EndIf;\nEndProcedure // {done}\n"}, ExtractConfig())
    assert (c.source, c.lang) == ("code", "code:unknown")
    prose = b"All human beings are born free and equal in dignity and rights. They are endowed with reason.\n" * 3
    t = text_reader.parse({"origin": "udhr/English-Latin1", "payload": prose}, ExtractConfig())
    assert t.source is None and t.lang is None
    # a .txt file is text whatever it holds
    assert text_reader.parse({"origin": "notes.txt", "payload": b"x = {1; 2};\n" * 5}, ExtractConfig()).source is None


# English prose drawn through a made-up font encoding, as legacy Devanagari, Ethiopic and Burmese
# fonts drew their letters on ASCII codes: some letters become brackets and other symbols.
FONT = str.maketrans({"b": "[", "k": "]", "w": "{", "v": "}", "h": "@", "f": "$", "p": "&", "u": "|", "g": "^"})
PROSE = ("Everyone has the right to life, liberty and security of person. No one shall be held in "
         "slavery or servitude; slavery and the slave trade shall be prohibited in all their forms. "
         "Everyone has the right to recognition everywhere as a person before the law.")


def test_prose_in_a_font_encoding_is_text_and_code_stays_code():
    from curate.readers import text as text_reader

    import textwrap

    garbled = "\n".join(textwrap.wrap(PROSE.translate(FONT), 70) * 4)
    assert code_language.looks_like_code(garbled) is False
    doc = text_reader.parse({"origin": "udhr/Example-Font", "payload": garbled.encode()}, ExtractConfig())
    assert doc.source is None and doc.lang is None
    # underscores standing for letters between non-ASCII ones are no identifiers
    assert not code_language.looks_like_code(("\u00e4\u00f6_ \u00fc\u00df_\u00e9\u00e8 " * 12 + "\n") * 20)
    # code keeps being code: its brackets nest, its lines show it (indented, ending in ; or {)
    c_code = "int main(void) {\n    int a[4] = {1, 2, 3, 4};\n    return a[0] + f(a[1]);\n}\n" * 10
    assert code_language.looks_like_code(c_code)
    # and so does data on one long line, its brackets nested
    assert code_language.looks_like_code('{"a": [1, 2, {"b": 3}], "c": {"d": [4, 5]}}, ' * 40 + "{}")


@pytest.mark.parametrize("codec", ["iso2022_jp", "iso2022_kr", "hz"])
def test_seven_bit_cjk_encodings_are_decoded(codec):
    from curate.readers.decode import decode

    sentence = {"iso2022_jp": "すべての人間は、生まれながらにして自由であり、尊厳と権利とについて平等である。",
                "iso2022_kr": "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.",
                "hz": "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心。"}[codec]
    text, encoding = decode((sentence + "\n").encode(codec) * 3)
    assert text == (sentence + "\n") * 3 and codecs_name(encoding) in {codecs_name(codec), "iso2022_jp_2"}
    # ASCII that merely holds ~{..~} or a terminal's ESC ( B is ASCII
    assert decode(b"see Figure~{ab~} and ~{cd~}\n")[1] == "utf-8"
    assert decode(b"\x1b(B\x1b[m done \x1b(B\x1b[m\n")[1] == "utf-8"


def codecs_name(name: str) -> str:
    import codecs

    return codecs.lookup(name).name


@pytest.mark.corpora
def test_udhr_prose_is_text_in_every_encoding_and_unlisted_code_stays_code():
    """Every UDHR translation (legacy font encodings, ISO-2022-JP and HZ included) is text; the
    linguist samples of an unknown extension stay code (2,009 of 2,240; 2,013 before the
    font-encoding test: two Python pickles and two Roff documents left)."""
    from curate.discover import discover
    from curate.readers import text as text_reader
    from curate.readers.decode import decode

    def unknown_extension(root):
        return [root / f.rel for f in discover(root) if f.skip is None and f.format == "text"
                and not f.rel.lower().endswith(text_reader.EXTENSIONS)]

    udhr = unknown_extension(corpus("multilingual", "udhr"))
    assert len(udhr) > 300
    code_like = [p.name for p in udhr if code_language.looks_like_code(decode(p.read_bytes())[0])]
    assert code_like == []
    assert decode(corpus("multilingual", "udhr", "Japanese_Nihongo-JIS").read_bytes())[0].startswith("『世界人権宣言』")
    assert decode(corpus("multilingual", "udhr", "Chinese_Mandarin-HZ").read_bytes())[0].startswith("世界人权宣言")
    linguist = unknown_extension(corpus("code", "linguist"))
    code_files = sum(code_language.looks_like_code(decode(p.read_bytes())[0]) for p in linguist)
    assert code_files >= 2000 and code_files / len(linguist) > 0.89


def test_code_is_kept_exactly():
    doc = code.parse(row("pkg/main.py", PY), ExtractConfig())
    assert doc.reason is None and doc.text == PY.decode() and doc.lang == "code:python"
    crlf = b"int main(void)\r\n{\r\n\treturn 0;  \r\n}\r\n"
    assert code.parse(row("m.c", crlf), ExtractConfig()).text == crlf.decode()
    latin = "/* Grüße aus Köln, schöne Straße */\nint x = 1;\n".encode("latin-1")
    doc = code.parse(row("g.c", latin), ExtractConfig())
    assert doc.reason is None and "Köln" in doc.text and doc.meta["encoding"] != "utf-8"


@pytest.mark.parametrize("data, reason", [
    (b"\x7fELF\x02\x01\x01\x00" + bytes(500), "extract:code:binary"),
    (b"x" * (2 << 20), "extract:code:too_large"),
    # what is text goes on to the quality stage's code filter, which measures and judges it
    (b"// Code generated by protoc-gen-go. DO NOT EDIT.\npackage x\n", None),
    (b"var a=1;" * 200 + b"\n", None),
    (b"[\n" + b"  ,,  ;;  ..  ,,\n" * 50 + b"]\n", None),
])
def test_extract_drops_only_what_is_not_text(data, reason):
    assert code.verdict(data, CFG) == reason
    assert code.parse(row("f.py", data), ExtractConfig()).reason == reason


def test_size_limit_can_be_turned_off():
    assert code.verdict(b"x" * (2 << 20), CodeConfig(max_bytes=None)) is None


def test_undecodable_is_binary():
    junk = bytes((i * 37) % 128 + 128 for i in range(20))  # high bytes no 8-bit code page fits
    data = b"".join(b"int x%d = 1; // " % i + junk + b"\n" for i in range(20))
    assert code.parse(row("u.c", data), ExtractConfig()).reason == "extract:code:binary"


@pytest.mark.corpora
def test_linguist_languages_and_drops():
    root = corpus("code", "linguist")

    def slug(folder: str) -> str:  # Linguist's name -> our code:<language> spelling
        return folder.lower().replace("++", "pp").replace("#", "sharp").replace(" ", "-")

    agree: Counter = Counter()
    reasons: Counter = Counter()
    kept: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        reader = readers.by_extension(path.name)
        if reader is None or reader.format != "code":
            continue
        rel = path.relative_to(root).as_posix()
        doc = code.parse(next(code.read(path, readers.origin_of(rel))), ExtractConfig())
        reasons[doc.reason] += 1
        if doc.reason is None:
            kept.append(doc.text)
        folder = rel.split("/", 1)[0]
        if slug(folder) in code_language.LANGUAGES:
            agree[doc.lang == f"code:{slug(folder)}"] += 1
    assert sum(reasons.values()) > 800
    assert reasons[None] / sum(reasons.values()) > 0.99  # extract removes only what is not text
    # the quality stage's code filter removes generated, minified and data files (46 of 940)
    stage = QualityStage(QualityConfig(filters=["code"]))
    n = len(kept)
    batch = pa.table({"id": [str(i) for i in range(n)], "origin": [str(i) for i in range(n)],
                      "text": pa.array(kept, pa.large_string()), "source": ["code"] * n})
    removed = Counter(stage.process(schema.conform(batch)).removed.column("reason").to_pylist())
    assert removed["quality:code:generated"] >= 20
    assert removed["quality:code:max_line_length"] + removed["quality:code:max_mean_line_length"] >= 10
    assert sum(removed.values()) < 0.07 * n
    # shared extensions (.m, .h, .pl, .v) decided by content (the target, with Linguist's dialects
    # counted as their language, is tests/test_curation.py's)
    assert agree[True] / sum(agree.values()) > 0.93
