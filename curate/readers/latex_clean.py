"""LaTeX sources -> one cleaned LaTeX document, in the spirit of RedPajama's arXiv processing.

Input is a source tree in memory (relative path -> decoded text). The result stays LaTeX (math,
section titles and environments as written) without what a model should not learn from:

1. comments (`%` lines, `\\begin{comment}`, `\\iffalse ... \\fi`) go, so commented-out
   `\\input`s are not followed;
2. the main file is the one with `\\documentclass` and `\\begin{document}` (ties: not included by
   another file, then a conventional name, then size);
3. `\\input`, `\\include`, `\\subfile`, `\\import` are inlined, with a depth limit, recursion
   detection, and missing files noted in meta;
4. the preamble (everything before `\\begin{document}`) and what follows `\\end{document}` go,
   after macros and the title were read from it;
5. the bibliography goes, and so do the authors' names, e-mail addresses, ORCIDs and
   affiliations (`\\author`, `\\email`, `\\orcid`, `\\affiliation`, `\\thanks`, ...: personal data,
   not the paper's text);
6. simple macros (`\\newcommand`, `\\renewcommand`, `\\providecommand`, `\\def`,
   `\\DeclareMathOperator`, with up to 9 arguments and an optional default) are expanded.

Pure functions on strings: no file system, no subprocess, bounded output.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

MAX_TEXT_CHARS = 32 << 20  # inlining and expansion stop growing a document past this
MAX_MACRO_PASSES = 5  # macros using macros: expand this many rounds
MAIN_NAMES = ("main", "ms", "paper", "article", "manuscript", "root")

_FULL_COMMENT_LINE = re.compile(r"^[ \t]*(?<!\\)%.*(?:\n|$)", re.MULTILINE)
_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%.*$", re.MULTILINE)
_COMMENT_ENV = re.compile(r"\\begin\{comment\}.*?\\end\{comment\}", re.DOTALL)
_IFFALSE = re.compile(r"\\iffalse\b.*?\\fi\b", re.DOTALL)
_DOCUMENTCLASS = re.compile(r"\\documentclass\s*(?:\[[^\]]*\])?\s*\{\s*([^}]*?)\s*\}")
_BEGIN_DOC = re.compile(r"\\begin\s*\{document\}")
_END_DOC = re.compile(r"\\end\s*\{document\}")
_INCLUDE = re.compile(
    r"\\(?P<cmd>input|include|subfile|InputIfFileExists)\s*\{(?P<name>[^{}]*)\}"
    r"|\\input\s+(?P<bare>[^\s{}\\%]+)"
    r"|\\(?P<icmd>import|subimport|inputfrom|subinputfrom|includefrom|subincludefrom)\*?\s*"
    r"\{(?P<dir>[^{}]*)\}\s*\{(?P<file>[^{}]*)\}")
_BIBLIOGRAPHY = re.compile(
    r"\\begin\{thebibliography\}.*?(?:\\end\{thebibliography\}|\Z)"
    r"|\\bibliography\s*\{[^}]*\}|\\bibliographystyle\s*\{[^}]*\}"
    r"|\\printbibliography\b(?:\[[^\]]*\])?|\\addbibresource\s*(?:\[[^\]]*\])?\{[^}]*\}"
    r"|\\nocite\s*\{[^}]*\}", re.DOTALL)
_TITLE = re.compile(r"\\title\s*(?:\[[^\]]*\])?\s*\{")
# Commands naming people and where to reach them -> how many {...} arguments they take.
PERSONAL_COMMANDS = {"author": 1, "email": 1, "orcid": 1, "affiliation": 1, "affil": 1, "address": 1,
                     "thanks": 1, "institute": 1, "altaffiliation": 1, "homepage": 1, "IEEEauthorblockN": 1,
                     "IEEEauthorblockA": 1, "icmlauthor": 2, "icmlaffiliation": 2, "icmlcorrespondingauthor": 2,
                     "correspondingauthor": 1, "corref": 1, "fnref": 1, "ead": 1}
_PERSONAL = re.compile(r"\\(" + "|".join(PERSONAL_COMMANDS) + r")(?![A-Za-z@])\*?")
_DEFINITION = re.compile(
    r"\\(?P<new>(?:re)?newcommand|providecommand|DeclareRobustCommand)\*?"
    r"|\\(?P<def>g?def|edef|xdef)(?![A-Za-z@])"
    r"|\\(?P<op>DeclareMathOperator)(?P<star>\*?)")
_CONTROL_WORD = re.compile(r"\\[A-Za-z@]+")
_ENDS_IN_CONTROL_WORD = re.compile(r"\\[A-Za-z@]+$")
_PARAM = re.compile(r"#([1-9])")
_PROSE_NOISE = re.compile(r"\\[A-Za-z@]+\*?|\\.|[{}\[\]$&^_~#]")
_WORD = re.compile(r"[^\W\d_]{2,}")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)


@dataclass
class Macro:
    nargs: int
    body: str
    default: str | None = None  # the optional first argument's default, if it has one


@dataclass
class LatexDoc:
    text: str | None = None
    reason: str | None = None
    meta: dict = field(default_factory=dict)


# -- small parsers ------------------------------------------------------------------------
def strip_comments(text: str) -> str:
    """Remove comments: whole comment lines (with their newline, so no paragraph break is
    invented), trailing `% ...`, comment environments and `\\iffalse` blocks."""
    text = _FULL_COMMENT_LINE.sub("", text)
    text = _COMMENT.sub(r"\1", text)
    text = _COMMENT_ENV.sub("", text)
    return _IFFALSE.sub("", text)


def _skip_space(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in " \t\n":
        i += 1
    return i


def brace_group(text: str, i: int) -> tuple[str, int] | None:
    """The balanced `{...}` group starting at `text[i]` (after whitespace): (content, end)."""
    n = len(text)
    i = _skip_space(text, i)
    if i >= n or text[i] != "{":
        return None
    depth, j = 0, i
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j], j + 1
        j += 1
    return None


def _bracket(text: str, i: int) -> tuple[str, int] | None:
    """An optional `[...]` argument at `text[i]` (after whitespace), brace-aware."""
    n = len(text)
    i = _skip_space(text, i)
    if i >= n or text[i] != "[":
        return None
    depth, j = 0, i + 1
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "]" and depth == 0:
            return text[i + 1:j], j + 1
        j += 1
    return None


def _argument(text: str, i: int) -> tuple[str, int] | None:
    """One macro argument: a brace group, a control word, or a single character."""
    group = brace_group(text, i)
    if group is not None:
        return group
    i = _skip_space(text, i)
    if i >= len(text):
        return None
    m = _CONTROL_WORD.match(text, i)
    if m:
        return m.group(0), m.end()
    return text[i], i + 1


# -- main file and inlining ------------------------------------------------------------------
def document_class(text: str) -> str | None:
    m = _DOCUMENTCLASS.search(text)
    return m.group(1) if m else None


def is_root(text: str) -> bool:
    """A file that compiles on its own as a whole document (subfiles/standalone parts do not)."""
    cls = document_class(text)
    return cls is not None and cls not in ("subfiles", "standalone") and bool(_BEGIN_DOC.search(text))


def include_targets(text: str) -> list[str]:
    """The file names a (comment-free) text includes, as written."""
    out = []
    for m in _INCLUDE.finditer(text):
        if m.group("icmd"):
            out.append(posixpath.join(m.group("dir").strip(), m.group("file").strip()))
        else:
            out.append((m.group("name") or m.group("bare") or "").strip())
    return [t for t in out if t]


def _resolve(name: str, files: dict[str, str], *dirs: str) -> str | None:
    for base in dirs:
        path = posixpath.normpath(posixpath.join(base, name))
        for candidate in (path + ".tex", path) if not path.endswith((".tex", ".ltx")) else (path,):
            if candidate in files:
                return candidate
    return None


def find_main(files: dict[str, str]) -> str | None:
    """The main file of a (comment-free) source tree, or None when no file is a document."""
    if len(files) == 1:
        return next(iter(files))
    roots = [p for p, t in files.items() if is_root(t)]
    if not roots:
        roots = [p for p, t in files.items() if _BEGIN_DOC.search(t)]
    if not roots:
        return None
    included = set()
    for path, text in files.items():
        for name in include_targets(text):
            target = _resolve(name, files, posixpath.dirname(path), "")
            if target:
                included.add(target)

    def rank(path: str):
        stem = posixpath.splitext(posixpath.basename(path))[0].lower()
        return (path in included, stem not in MAIN_NAMES, -len(include_targets(files[path])),
                path.count("/"), -len(files[path]), path)

    return min(roots, key=rank)


def inline(main: str, files: dict[str, str], max_depth: int, notes: dict) -> str:
    """`files[main]` with every include replaced by the included file's text, recursively.

    Names resolve against the main file's directory (LaTeX's working directory), then the
    including file's. Missing, recursive and too-deep includes become nothing and are noted.
    """
    root = posixpath.dirname(main)
    size = [len(files[main])]

    def expand(path: str, stack: tuple[str, ...]) -> str:
        text = files[path]
        here = posixpath.dirname(path)

        def replace(m: re.Match) -> str:
            if m.group("icmd"):
                sub = m.group("icmd").startswith("sub")
                name = posixpath.join(m.group("dir").strip(), m.group("file").strip())
                bases = (here,) if sub else (root, here)
            else:
                name = (m.group("name") or m.group("bare") or "").strip()
                bases = (root, here)
            target = _resolve(name, files, *bases)
            if target is None:
                notes.setdefault("missing_inputs", []).append(name)
                return ""
            if target in stack:
                notes.setdefault("recursive_inputs", []).append(target)
                return ""
            if len(stack) > max_depth:
                notes.setdefault("too_deep_inputs", []).append(target)
                return ""
            if size[0] + len(files[target]) > MAX_TEXT_CHARS:
                notes.setdefault("skipped_inputs", []).append(target)
                return ""
            size[0] += len(files[target])
            notes.setdefault("inputs", []).append(target)
            body = expand(target, stack + (target,))
            # a subfile is a document of its own: only its body joins the main text
            begin, end = _BEGIN_DOC.search(body), _END_DOC.search(body)
            if begin and document_class(body):
                body = body[begin.end():end.start() if end else len(body)]
            return "\n" + body + "\n"

        return _INCLUDE.sub(replace, text)

    return expand(main, (main,))


# -- macros ---------------------------------------------------------------------------------
def _definition(text: str, m: re.Match) -> tuple[str, Macro, int] | None:
    """Parse the definition whose command matched at `m`: (name, macro, end) or None."""
    i = m.end()
    if m.group("op"):  # \DeclareMathOperator{\name}{text}
        name = brace_group(text, i)
        body = brace_group(text, name[1]) if name else None
        if not name or not body:
            return None
        limits = "\\limits" if m.group("star") else ""
        return name[0].strip(), Macro(0, f"\\operatorname{{{body[0]}}}{limits}"), body[1]
    if m.group("def"):  # \def\name#1#2{body}
        nm = _CONTROL_WORD.match(text, i)
        if not nm:
            return None
        j = text.find("{", nm.end())
        params = text[nm.end():j] if j >= 0 else ""
        if j < 0 or not re.fullmatch(r"(?:#\d)*", params.strip()):
            return None  # delimited parameters: not a simple macro
        body = brace_group(text, j)
        if not body:
            return None
        return nm.group(0), Macro(params.count("#"), body[0]), body[1]
    # \newcommand{\name}[n][default]{body} or \newcommand\name...
    group = brace_group(text, i)
    if group is not None:
        name, j = group[0].strip(), group[1]
    else:
        nm = _CONTROL_WORD.match(text, _skip_space(text, i))
        if not nm:
            return None
        name, j = nm.group(0), nm.end()
    if not _CONTROL_WORD.fullmatch(name):
        return None
    nargs, default = 0, None
    count = _bracket(text, j)
    if count is not None:
        if not count[0].strip().isdigit():
            return None
        nargs, j = int(count[0]), count[1]
        opt = _bracket(text, j)
        if opt is not None:
            default, j = opt
    body = brace_group(text, j)
    if body is None or nargs > 9:
        return None
    return name, Macro(nargs, body[0], default), body[1]


def collect_macros(text: str) -> tuple[dict[str, Macro], str]:
    """Every simple macro defined in `text`, and `text` with those definitions removed."""
    macros: dict[str, Macro] = {}
    out, pos = [], 0
    for m in _DEFINITION.finditer(text):
        if m.start() < pos:
            continue  # inside a definition already consumed
        parsed = _definition(text, m)
        if parsed is None:
            continue
        name, macro, end = parsed
        if m.group("new") == "providecommand" and name in macros:
            pass  # \providecommand does not override
        else:
            macros[name] = macro
        out.append(text[pos:m.start()])
        pos = end
    out.append(text[pos:])
    return macros, "".join(out)


def expand_macros(text: str, macros: dict[str, Macro], limit: int = MAX_TEXT_CHARS) -> tuple[str, int]:
    """Expand uses of `macros` in `text`; returns (text, expansions). Stops growing at `limit`."""
    if not macros:
        return text, 0
    names = sorted((n[1:] for n in macros), key=len, reverse=True)
    pattern = re.compile(r"\\(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z@])")
    total = 0
    for _ in range(MAX_MACRO_PASSES):
        out, pos, count = [], 0, 0
        while True:
            m = pattern.search(text, pos)
            if m is None:
                break
            macro = macros["\\" + m.group(1)]
            j, args = m.end(), []
            if macro.default is not None:
                opt = _bracket(text, j)
                args.append(opt[0] if opt else macro.default)
                j = opt[1] if opt else j
            ok = True
            while len(args) < macro.nargs:
                arg = _argument(text, j)
                if arg is None:
                    ok = False
                    break
                args.append(arg[0])
                j = arg[1]
            if not ok:
                out.append(text[pos:m.end()])
                pos = m.end()
                continue
            body = _PARAM.sub(lambda a: args[int(a.group(1)) - 1] if int(a.group(1)) <= len(args) else "",
                              macro.body) if args else macro.body
            if j < len(text) and text[j].isalpha() and _ENDS_IN_CONTROL_WORD.search(body):
                body += " "  # `\foo` -> `\bar` must not glue onto a following letter
            out.append(text[pos:m.start()])
            out.append(body)
            pos = j
            count += 1
        out.append(text[pos:])
        new = "".join(out)
        if count == 0 or len(new) > limit:
            break
        text, total = new, total + count
    return text, total


# -- the document ------------------------------------------------------------------------------
def drop_personal(text: str) -> str:
    """`text` without the commands of PERSONAL_COMMANDS and their arguments ([...] options and
    their {...} groups, brace-balanced)."""
    out, pos = [], 0
    for m in _PERSONAL.finditer(text):
        if m.start() < pos:
            continue  # inside an argument already dropped
        j = m.end()
        opt = _bracket(text, j)
        while opt is not None:
            j = opt[1]
            opt = _bracket(text, j)
        for _ in range(PERSONAL_COMMANDS[m.group(1)]):
            group = brace_group(text, j)
            if group is None:
                break
            j = group[1]
        out.append(text[pos:m.start()])
        pos = j
    out.append(text[pos:])
    return "".join(out)


def title_of(text: str) -> str | None:
    m = _TITLE.search(text)
    group = brace_group(text, m.end() - 1) if m else None
    if not group:
        return None
    title = " ".join(_PROSE_NOISE.sub(" ", group[0]).split())
    return title[:500] or None


def prose_words(text: str) -> int:
    """Words of running text: on lines that do not start with a command, markup ignored. A
    file that only assembles others (`\\chapter{..}` then `\\input{..}` lines) has none."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("\\")]
    return len(_WORD.findall(_PROSE_NOISE.sub(" ", "\n".join(lines))))


def clean_document(files: dict[str, str], cfg) -> LatexDoc:
    """A source tree (path -> text) -> one cleaned document. `cfg`: the extract config's `latex`."""
    files = {p: strip_comments(t.replace("\r\n", "\n")) for p, t in files.items()}
    main = find_main(files)
    if main is None:
        return LatexDoc(reason="extract:latex:no_main", meta={"tex_files": len(files)})
    meta: dict = {"main_file": main}
    text = inline(main, files, cfg.max_input_depth, meta)
    begin = _BEGIN_DOC.search(text)
    preamble, body = (text[:begin.start()], text[begin.end():]) if begin else ("", text)
    end = _END_DOC.search(body)
    if end:
        body = body[:end.start()]
    title = title_of(preamble) or title_of(body)
    if title:
        meta["title"] = title
    macros, _ = collect_macros(preamble)
    body_macros, body = collect_macros(body)
    macros.update(body_macros)
    if not cfg.keep_bibliography:
        body = _BIBLIOGRAPHY.sub("", body)
    body = drop_personal(body)
    if cfg.expand_macros:
        body, n = expand_macros(body, macros)
        if n:
            meta["macros_expanded"] = n
    body = _BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("", body)).strip()
    if prose_words(body) < cfg.min_words:
        return LatexDoc(reason="extract:latex:no_text", meta=meta)
    return LatexDoc(text=body + "\n", meta=meta)
