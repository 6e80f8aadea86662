"""The prose of a document: what prose rules and language ID measure, apart from code and markup.

A document's stored text keeps everything; the rules that judge language (Gopher, C4, FineWeb,
langid) read a view of it without what is not prose:

- code blocks: extraction writes a code block of a web page between ``` fence lines (as
  Markdown does; JSONL documents written in Markdown mark theirs the same way). `code_lines`
  tells which lines of a text are inside such a block, `without_code` drops those blocks;
- LaTeX markup, for academic documents: `latex_prose` drops math, commands and environment
  names and keeps the words of command arguments (`\\emph{word}` -> `word`).

Everything is Arrow kernels (RE2) over whole columns: no per-row Python.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.text.stats import Pieces, as_text, to_numpy

# A fence line: three or more backticks at the start of a line (an info string may follow).
FENCE_LINE = r"^[ \t]*```"
# A fenced block, or an unclosed fence to the end of the text (CommonMark closes it there too).
_FENCED = r"(?m)^[ \t]*```[^\n]*(?:\n(?s:.*?))?\n[ \t]*```+[ \t]*$\n?|^[ \t]*```[^\n]*(?s:.*)\z"

# Math (inline, display, and the display environments), as LaTeX writes it.
DISPLAY_ENVS = ("equation", "align", "gather", "multline", "eqnarray", "displaymath", "math", "flalign")
MATH = "|".join(
    [r"\$\$[^$]*\$\$", r"\$[^$]+\$", r"\\\((?s:.*?)\\\)", r"\\\[(?s:.*?)\\\]"]
    + [rf"\\begin\{{{env}(\*?)\}}(?s:.*?)\\end\{{{env}\*?\}}" for env in DISPLAY_ENVS]
)
# Commands whose arguments are keys, labels or layout, not words.
_KEY_COMMANDS = (r"\\(?:cite[a-zA-Z]*|ref|eqref|autoref|cref|Cref|label|url|href|includegraphics|input|include|"
                 r"usepackage|bibliographystyle|bibliography|begin|end|vspace|hspace|setlength|newcommand|"
                 r"renewcommand)\*?(?:\[[^\]]*\])*(?:\{[^{}]*\})?")


def has_code(text: pa.Array) -> bool:
    return bool(pc.any(pc.match_substring_regex(text, f"(?m){FENCE_LINE}")).as_py())


def without_code(text: pa.Array) -> pa.Array:
    """The text without its fenced code blocks (unchanged where it has none)."""
    text = as_text(text)
    if not has_code(text):
        return text
    return pc.replace_substring_regex(text, _FENCED, "")


def code_lines(lines: Pieces) -> np.ndarray:
    """For each line of `lines` (a document's lines, in order): whether it is part of a code
    block, its fence lines included. A fence opens a block and the next one closes it."""
    fence = lines.matches(FENCE_LINE)
    if not fence.any():
        return np.zeros(len(fence), bool)
    # fences seen up to and including each line, counted within its document
    total = np.cumsum(fence)
    first = np.r_[True, lines.parents[1:] != lines.parents[:-1]] if len(fence) else fence
    before_doc = np.maximum.accumulate(np.where(first, total - fence, 0))
    seen = total - before_doc
    return fence | (seen % 2 == 1)


def latex_prose(text: pa.Array) -> pa.Array:
    """LaTeX source -> its running words: math, comments, key-like commands (\\cite, \\ref,
    \\label, \\begin/\\end ...) with their arguments and every other command name go; braces go
    and the words inside them stay."""
    text = as_text(text)
    text = pc.replace_substring_regex(text, MATH, " ")
    text = pc.replace_substring_regex(text, r"(?m)(?:^|[^\\])%.*$", " ")
    text = pc.replace_substring_regex(text, _KEY_COMMANDS, " ")
    text = pc.replace_substring_regex(text, r"\\[A-Za-z@]+\*?|\\.", " ")
    text = pc.replace_substring_regex(text, r"[{}\[\]&~^_#]", " ")
    return pc.replace_substring_regex(text, r"[ \t]+", " ")


def prose_of(text: pa.Array, source: pa.Array | None) -> pa.Array:
    """What language is judged on for each document: LaTeX prose for `academic` documents, the
    text without code blocks for the others."""
    text = without_code(as_text(text))
    if source is None:
        return text
    academic = to_numpy(pc.fill_null(pc.equal(source, "academic"), False)).astype(bool)
    if not academic.any():
        return text
    rows = pa.array(np.flatnonzero(academic))
    mask = pa.array(academic)
    return pc.replace_with_mask(text, mask, latex_prose(text.take(rows)))
