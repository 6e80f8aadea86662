"""Source code files, recognised by extension: one unit per file, source=code, lang=code:<language>
(curate.readers.code_language: by extension, and by content where an extension is shared).

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

from curate.readers import Doc, Reader, path_of, register, unit
from curate.readers.code_language import EXTENSION_LANGUAGE, language_of, language_of_file
from curate.readers.compression import read_bytes, read_error_reason
from curate.readers.decode import decode, looks_binary

# Read at most this much; `code.max_bytes` (smaller) decides what is kept.
MAX_FILE_BYTES = 64 << 20

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
    path = path_of(row["origin"])
    if not data.strip():
        return Doc(text="", lang=_tag(language_of(path)))  # extract:empty, not a rule's verdict
    reason = verdict(data, config.code)
    if reason is not None:
        return Doc(reason=reason, lang=_tag(language_of(path)))
    text, encoding = decode(data)
    lang = _tag(language_of_file(path, text))
    if encoding != "utf-8" and not encoding.startswith("utf") and _undecodable(text, data):
        return Doc(reason="extract:code:binary", lang=lang)
    return Doc(text=text, lang=lang, meta={"encoding": encoding} if encoding != "utf-8" else None)


def _tag(lang: str | None) -> str | None:
    return f"code:{lang}" if lang else None


READER = register(Reader("code", tuple(EXTENSION_LANGUAGE), read, parse, source="code"))
