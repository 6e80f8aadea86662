"""Plain text and Markdown files, and files of no known extension that look like text: one unit
each; those of them whose content reads as code are code documents (curate.readers.code_language)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from curate.readers import Doc, Reader, path_of, register, unit
from curate.readers.code_language import looks_like_code
from curate.readers.compression import read_bytes, read_error_reason
from curate.readers.decode import decode

MAX_FILE_BYTES = 256 << 20


def looks_like_text(head: bytes) -> bool:
    """True for bytes that decode as UTF-8 or are mostly printable single-byte text.

    NUL bytes mean binary (or UTF-16, which we do not sniff); legacy 8-bit encodings pass and
    are decoded by extract's charset detection.
    """
    if not head:
        return True
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as e:
        if e.start >= len(head) - 4:  # a multi-byte character cut by the sniff window
            return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return control / len(head) < 0.01


def read(path: Path, origin: str) -> Iterator[dict]:
    try:
        yield unit(origin, "text", read_bytes(path, MAX_FILE_BYTES))
    except Exception as exc:
        yield unit(origin, "text", error=read_error_reason(exc))


EXTENSIONS = (".txt", ".md", ".markdown", ".rst", ".text", ".txt.gz")


def parse(row: dict, config) -> Doc:
    """A text file; one whose name does not say it is text (it was sniffed) and that reads as
    code becomes a code document (`code:unknown`), so prose rules never judge it."""
    text, encoding = decode(row["payload"])
    meta = {"encoding": encoding} if encoding != "utf-8" else None
    if not path_of(row["origin"]).lower().endswith(EXTENSIONS) and looks_like_code(text):
        return Doc(text=text, meta=meta, source="code", lang="code:unknown")
    return Doc(text=text, meta=meta)


READER = register(Reader("text", EXTENSIONS, read, parse, sniff=looks_like_text))
