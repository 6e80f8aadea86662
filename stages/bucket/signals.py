"""Measurements of a text column that say what kind of text a document is, computed on the
whole Arrow column at once (RE2 kernels of pyarrow.compute and numpy, no per-row Python).

The bucket stage sorts documents into curriculum buckets with them:

    words              words (for conditions that need enough text to judge)
    readability        Flesch reading ease (206.835 - 1.015 words/sentence - 84.6 syllables/word;
                       Flesch 1948), syllables estimated from vowel groups: plain prose 60-80,
                       academic prose below 30. Calibrated for English; other languages are rough.
    sentence_words     words per sentence (a line without final punctuation counts as a sentence:
                       headings, list items)
    long_words         share of words of 7 or more letters (the "long words" of LIX, Björnsson 1968):
                       a language-neutral stand-in for uncommon vocabulary
    math_density       math per word: operators between operands (x = 2, a^n, 3 + 4), math symbols
                       (U+2200.. operators, arrows, relations) and TeX math commands (\\frac, \\sum)
    latex              TeX commands (\\section, \\emph, \\alpha, ...) per word
    numbers            numbers per word
    code_density       share of non-empty lines that look like source code (definitions, imports,
                       C-style control flow, assignments, lines ending in ; or {, lone brackets)
    reasoning_markers  argument and proof words per word (therefore, hence, suppose, lemma, ...)

A "word" is a whitespace-separated token that is not only punctuation. Every measure is 0 for a
document without words, so no ratio divides by zero; nulls count as empty text.

Anchors (^, $) are evaluated per line on the split lines: pyarrow's count_substring_regex
restarts the match at each previous match, where ^ would match again.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Punctuation trimmed from whitespace-separated tokens before they count as words.
PUNCTUATION = ".,;:!?\"'()[]{}<>«»“”‘’„*_-–—/|…"
NUMBER = r"\pN+(?:[.,]\pN+)*"
# Vowel groups approximate syllables; a final e after a vowel-consonant pair is silent (make, fine).
VOWEL_GROUP = r"(?i)[aeiouyàáâäèéêëìíîïòóôöùúûüÿæœ]+"
SILENT_E = r"(?i)[aeiouy][b-df-hj-np-tv-xz]e\b"
SENTENCE_END = r"[.!?…。！？]+[\"'”’)\]]*(?:\s|$)"
LINE_ENDS_SENTENCE = r"[.!?…。！？:][\"'”’)\]]*\s*$"

# An operator between operands that are single letters, numbers or brackets (x = 2, a^n, 3 + 4,
# f(x) <= 1); '-' and '/' are left out (hyphenated words, dates, paths, URLs).
MATH_OPERATION = r"(?:\b\pL|\pN|[)\]}])\s?[+*^=<>≤≥≠≈≡×÷±]\s?(?:\pL\b|\pN|[(\[{\\])"
MATH_SYMBOL = r"[√∞∂∇∑∏∫∮∝∘∴∵\x{2200}-\x{22FF}\x{27C0}-\x{27EF}\x{2980}-\x{2AFF}\x{21D0}-\x{21FF}\x{1D400}-\x{1D7FF}]"
TEX_MATH = (r"\\(?:frac|dfrac|sqrt|sum|prod|int|oint|lim|limsup|liminf|infty|partial|nabla|cdot|times|leq?|geq?|"
            r"neq?|approx|equiv|in|notin|subseteq?|supseteq?|cup|cap|forall|exists|rightarrow|Rightarrow|"
            r"iff|implies|mapsto|mathbb|mathcal|mathrm|mathbf|alpha|beta|gamma|delta|epsilon|varepsilon|"
            r"theta|lambda|mu|sigma|phi|varphi|psi|omega|pi|binom|log|ln|exp|sin|cos|tan|det|max|min)\b")
# A command followed by an argument, a space or math, not a Windows path (C:\\Users\\x).
TEX_COMMAND = r"\\[A-Za-z]+(?:[{\[(\s$_^]|$)"

CODE_LINE = "|".join([
    r"^\s*[}\])]+[;,)]*\s*$",  # a lone closing bracket
    r"^\s*(?:def|fn|func|function|sub|proc)\s+[A-Za-z_$][\w$.!?]*",  # definitions
    r"^\s*(?:class|interface|trait|module|struct|enum)\s+[A-Z_]\w*",
    r"^\s*(?:end|fi|done|esac|then|do|else|endif|endfor|endwhile)\s*;?\s*$",  # block ends
    r"^\s*(?:#!/|\w+=\S|(?:echo|export|local|require|require_relative|attr_accessor|include)\s+\S)",  # shell, Ruby
    r"^\s*(?:import\s+[\w.{*]|from\s+[\w.]+\s+import\b|package\s+[\w.]+|#\s*(?:include|define|ifn?def|endif|pragma)\b|using\s+[\w.]+\s*;|require\s*\(|use\s+[\w:]+;)",
    r"^\s*(?:if|for|while|switch|catch|foreach|elif)\s*\(",
    r"^\s*(?:if|elif|else|for|while|with|try|except|finally)\b.*:\s*$",  # Python blocks
    r"^\s*(?:return|yield|raise|throw|break|continue|pass)\b",
    r"^\s*(?:public|private|protected|static|final|const|let|var|val|void|int|char|float|double|bool|auto|struct|enum|impl|pub|async)\s+[\w<>\[\]*&:]+",
    r"^\s*[\w.\[\]\"']+\s*(?:=|:=|\+=|-=|\*=|/=|\|=|&=|<-)\s*\S.*[;)\]}\"'\w]\s*$",  # assignment
    r"^\s*[\w.]+\(.*\)\s*;?\s*$",  # a call on its own line
    r"^\s*@[\w.]+(?:\(.*\))?\s*$",  # a decorator or annotation
    r"^\s*</?[A-Za-z][\w:-]*(?:\s[^>]*)?/?>",  # markup
    r"^\s*(?://|/\*)",
    r"[;{]\s*$",
    r"(?:=>|->|::|==|!=|&&|\|\||\+\+)",
])

REASONING_MARKER = (
    r"(?i)\b(?:therefore|thus|hence|consequently|implies|implied|it follows|follows that|suppose|assume|"
    r"assuming|proof|prove|proves|proved|lemma|theorem|corollary|proposition|axiom|hypothesis|"
    r"contradiction|by induction|if and only if|iff|q\.e\.d|we conclude|we obtain|we have shown|"
    r"without loss of generality|necessarily|equation|coefficient|derivative|integral|probability|"
    r"such that)\b|[∴∵⇒⟹]"
)

SIGNALS = ("words", "readability", "sentence_words", "long_words", "math_density", "latex", "numbers",
           "code_density", "reasoning_markers")


def _text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return pc.fill_null(column, "")


def count(text: pa.Array, pattern: str) -> np.ndarray:
    """Matches of `pattern` per document, as float64 (nulls count 0)."""
    return pc.count_substring_regex(text, pattern).to_numpy(zero_copy_only=False).astype(np.float64)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def line_counts(text: pa.Array, patterns: dict[str, str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Non-empty lines per document, and per pattern how many of them match it."""
    lines = pc.split_pattern(text, "\n")
    flat = pc.list_flatten(lines)
    parent = pc.list_parent_indices(lines).to_numpy()
    n = len(text)
    non_empty = pc.match_substring_regex(flat, r"\S").to_numpy(zero_copy_only=False)
    totals = np.bincount(parent, weights=non_empty, minlength=n)
    matched = {}
    for name, pattern in patterns.items():
        hit = pc.match_substring_regex(flat, pattern).to_numpy(zero_copy_only=False) & non_empty
        matched[name] = np.bincount(parent, weights=hit, minlength=n)
    return totals, matched


def word_counts(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Words per document, and how many of them are long (7+ letters, letters only)."""
    tokens = pc.utf8_split_whitespace(text)
    parent = pc.list_parent_indices(tokens).to_numpy()
    trimmed = pc.utf8_trim(pc.list_flatten(tokens), characters=PUNCTUATION)
    length = pc.utf8_length(trimmed).to_numpy(zero_copy_only=False)
    is_long = (length >= 7) & pc.utf8_is_alpha(trimmed).to_numpy(zero_copy_only=False)
    n = len(text)
    return np.bincount(parent, weights=length > 0, minlength=n), np.bincount(parent, weights=is_long, minlength=n)


def measure(column: pa.Array | pa.ChunkedArray) -> dict[str, np.ndarray]:
    """Every signal of SIGNALS for each document of a string column, as float32 arrays."""
    text = _text(column)
    words, long_words = word_counts(text)
    lines, matched = line_counts(text, {"code": CODE_LINE, "sentence_end": LINE_ENDS_SENTENCE})
    # Sentence ends inside lines, plus lines that end without one (headings, list items).
    sentences = count(text, SENTENCE_END) + (lines - matched["sentence_end"])
    sentences = np.maximum(sentences, np.minimum(words, 1))
    syllables = np.maximum(count(text, VOWEL_GROUP) - count(text, SILENT_E), words)
    flesch = 206.835 - 1.015 * ratio(words, sentences) - 84.6 * ratio(syllables, words)
    math = count(text, MATH_OPERATION) + count(text, MATH_SYMBOL) + count(text, TEX_MATH)
    out = {
        "words": words,
        "readability": np.where(words > 0, flesch, 0.0),
        "sentence_words": ratio(words, sentences),
        "long_words": ratio(long_words, words),
        "math_density": ratio(math, words),
        "latex": ratio(count(text, TEX_COMMAND), words),
        "numbers": ratio(count(text, NUMBER), words),
        "code_density": ratio(matched["code"], lines),
        "reasoning_markers": ratio(count(text, REASONING_MARKER), words),
    }
    return {name: values.astype(np.float32) for name, values in out.items()}
