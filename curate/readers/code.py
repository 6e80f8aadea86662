"""Source code files, recognised by extension: one unit per file, source=code, lang=code:<language>.

`parse` keeps the text exactly as written (decoded, nothing stripped) and drops only what is
not source text at all, each with its reason:

- `extract:code:binary`: NUL bytes, control characters, or bytes that read as no text (not
  UTF-8, and mostly high bytes or undecodable in the detected code page);
- `extract:code:too_large`: files over `extract.code.max_bytes` (1 MB, as The Stack).

Minified, generated and data-blob files are the quality stage's `code` filter's to judge
(filters/code.py): it measures them into signal columns, so its thresholds can be replayed by
`curate report --what-if`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator


from curate.readers import Doc, Reader, register, unit
from curate.readers.compression import read_bytes, read_error_reason
from curate.readers.decode import decode, looks_binary

# Read at most this much; `code.max_bytes` (smaller) decides what is kept.
MAX_FILE_BYTES = 64 << 20

# language (code:<language>, the GitHub Linguist name lower-cased, spaces as '-', '+' as 'p',
# '#' as 'sharp') -> file extensions, or whole lower-case file names that end the same way.
# An extension belongs to one language; ambiguous ones go to the most common owner
# (.h: c, .m: objective-c, .pl: perl, .v: verilog).
LANGUAGES: dict[str, tuple[str, ...]] = {
    "python": (".py", ".pyw", ".pyi"),
    "cython": (".pyx", ".pxd"),
    "javascript": (".js", ".mjs", ".cjs", ".jsx"),
    "typescript": (".ts", ".mts", ".cts"),
    "tsx": (".tsx",),
    "java": (".java",),
    "kotlin": (".kt", ".kts"),
    "scala": (".scala",),
    "groovy": (".groovy", ".gvy", "jenkinsfile"),
    "gradle": (".gradle",),
    "c": (".c", ".h"),
    "cpp": (".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp", ".tcc"),
    "csharp": (".cs", ".csx"),
    "fsharp": (".fs", ".fsi", ".fsx"),
    "visual-basic-.net": (".vb",),
    "go": (".go",),
    "rust": (".rs",),
    "swift": (".swift",),
    "objective-c": (".m",),
    "objective-cpp": (".mm",),
    "ruby": (".rb", ".rake", ".gemspec", "rakefile", "gemfile", "vagrantfile"),
    "php": (".php", ".phtml", ".php3", ".php4", ".php5", ".phpt"),
    "perl": (".pl", ".pm", ".t"),
    "raku": (".raku", ".rakumod", ".p6", ".pm6"),
    "lua": (".lua",),
    "luau": (".luau",),
    "r": (".r",),
    "julia": (".jl",),
    "haskell": (".hs", ".lhs"),
    "ocaml": (".ml", ".mli"),
    "standard-ml": (".sml",),
    "elixir": (".ex", ".exs"),
    "erlang": (".erl", ".hrl"),
    "clojure": (".clj", ".cljs", ".cljc"),
    "common-lisp": (".lisp", ".lsp"),
    "emacs-lisp": (".el",),
    "scheme": (".scm", ".ss"),
    "racket": (".rkt",),
    "dart": (".dart",),
    "shell": (".sh", ".bash", ".zsh", ".ksh"),
    "fish": (".fish",),
    "powershell": (".ps1", ".psm1", ".psd1"),
    "batchfile": (".bat", ".cmd"),
    "makefile": (".mk", ".mak", "makefile", "gnumakefile"),
    "cmake": (".cmake", "cmakelists.txt"),
    "dockerfile": (".dockerfile", "dockerfile"),
    "sql": (".sql",),
    "plpgsql": (".pgsql",),
    "css": (".css",),
    "scss": (".scss",),
    "sass": (".sass",),
    "less": (".less",),
    "stylus": (".styl",),
    "vue": (".vue",),
    "svelte": (".svelte",),
    "astro": (".astro",),
    "json": (".json",),
    "json5": (".json5",),
    "yaml": (".yaml", ".yml"),
    "toml": (".toml",),
    "xml": (".xml", ".xsd", ".wsdl"),
    "xslt": (".xsl", ".xslt"),
    "ini": (".ini",),
    "protocol-buffer": (".proto",),
    "thrift": (".thrift",),
    "graphql": (".graphql", ".gql"),
    "fortran": (".f", ".for", ".f77", ".f90", ".f95", ".f03", ".f08"),
    "cobol": (".cob", ".cbl"),
    "pascal": (".pas", ".dpr"),
    "ada": (".adb", ".ads"),
    "d": (".d",),
    "nim": (".nim",),
    "zig": (".zig",),
    "crystal": (".cr",),
    "elm": (".elm",),
    "purescript": (".purs",),
    "idris": (".idr",),
    "agda": (".agda",),
    "lean": (".lean",),
    "verilog": (".v", ".vh"),
    "systemverilog": (".sv", ".svh"),
    "vhdl": (".vhd", ".vhdl"),
    "assembly": (".asm", ".s", ".nasm"),
    "cuda": (".cu", ".cuh"),
    "opencl": (".cl", ".opencl"),
    "glsl": (".glsl", ".vert", ".frag", ".geom", ".comp", ".tesc", ".tese"),
    "hlsl": (".hlsl",),
    "wgsl": (".wgsl",),
    "metal": (".metal",),
    "solidity": (".sol",),
    "vyper": (".vy",),
    "move": (".move",),
    "cairo": (".cairo",),
    "tcl": (".tcl",),
    "awk": (".awk",),
    "sed": (".sed",),
    "vim-script": (".vim", "vimrc"),
    "haxe": (".hx",),
    "abap": (".abap",),
    "smalltalk": (".st",),
    "nix": (".nix",),
    "hcl": (".hcl", ".tf", ".tfvars"),
    "puppet": (".pp",),
    "coffeescript": (".coffee",),
    "livescript": (".ls",),
    "handlebars": (".hbs", ".handlebars"),
    "jinja": (".jinja", ".jinja2", ".j2"),
    "gdscript": (".gd",),
    "starlark": (".bzl",),
    "webassembly": (".wat", ".wast"),
    "prolog": (".prolog",),
    "apex": (".apex",),
    "ballerina": (".bal",),
    "chapel": (".chpl",),
    "pony": (".pony",),
    "golo": (".golo",),
    "nit": (".nit",),
    "x10": (".x10",),
    "gams": (".gms",),
    "applescript": (".applescript",),
    "autohotkey": (".ahk",),
    "mathematica": (".wl", ".nb"),
    "stata": (".do", ".ado"),
    "sas": (".sas",),
    "matlab": (".matlab",),
    "coq": (".coq",),
    "isabelle": (".thy",),
    "java-properties": (".properties",),
    "smali": (".smali",),
    "qml": (".qml",),
    "nginx": (".nginxconf",),
}

EXTENSION_LANGUAGE = {ext: lang for lang, exts in LANGUAGES.items() for ext in exts}
assert len(EXTENSION_LANGUAGE) == sum(map(len, LANGUAGES.values())), "an extension has two languages"


def language_of(name: str) -> str | None:
    """The language a file name's extension (or whole name) says, or None."""
    lower = name.lower()
    best, best_len = None, 0
    for ext, lang in EXTENSION_LANGUAGE.items():
        if lower.endswith(ext) and len(ext) > best_len and (ext[0] == "." or lower == ext or lower.endswith("/" + ext)):
            best, best_len = lang, len(ext)
    return best


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _undecodable(text: str, data: bytes) -> bool:
    """A legacy-encoding guess that does not read as source code: replacement characters the
    bytes did not hold, or mostly non-ASCII (code is mostly ASCII keywords and identifiers, so
    that many high bytes are data, whatever code page the detector picked)."""
    if "\ufffd" in text and b"\xef\xbf\xbd" not in data:
        return True
    return len(_NON_ASCII.findall(text)) > 0.25 * len(text)


def verdict(data: bytes, cfg) -> str | None:
    """The removal reason for a source file's bytes under `cfg` (the `code` section), or None.
    Only what is not text at all is decided here; the StarCoder rules are the quality stage's."""
    if cfg.max_bytes is not None and len(data) > cfg.max_bytes:
        return "extract:code:too_large"
    if looks_binary(data):
        return "extract:code:binary"
    return None


def read(path: Path, origin: str) -> Iterator[dict]:
    try:
        yield unit(origin, "code", read_bytes(path, MAX_FILE_BYTES))
    except Exception as exc:
        yield unit(origin, "code", error=read_error_reason(exc))


def parse(row: dict, config) -> Doc:
    data = row["payload"]
    lang = language_of(row["origin"].split("#", 1)[0])
    tag = f"code:{lang}" if lang else None
    if not data.strip():
        return Doc(text="", lang=tag)  # extract:empty, not a rule's verdict
    reason = verdict(data, config.code)
    if reason is not None:
        return Doc(reason=reason, lang=tag)
    text, encoding = decode(data)
    if encoding != "utf-8" and not encoding.startswith("utf") and _undecodable(text, data):
        return Doc(reason="extract:code:binary", lang=tag)
    return Doc(text=text, lang=tag, meta={"encoding": encoding} if encoding != "utf-8" else None)


READER = register(Reader("code", tuple(EXTENSION_LANGUAGE), read, parse, source="code"))
