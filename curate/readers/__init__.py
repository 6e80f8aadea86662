"""Readers turn input files into *units*: the raw material the extract stage's pure core parses.

A unit is one document-to-be: a plain file, a JSONL line, a WARC record, a Parquet row. Readers
do only I/O (open, decompress, split a container into records); decoding and parsing happen in
`curate.stages.extract`, so extraction can be tested and timed without files.

Each reader module registers a `Reader` with the file extensions it owns. `by_extension` picks
the reader by extension; files with no or an unknown extension are sniffed. A reader of a
user's own is a `Reader` in a plugin (curate.registry registers it): its extensions, sniffer and
directory claim take part in the same dispatch, in every process of the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa

# The unit table: what readers produce and extract.process() consumes.
UNIT_SCHEMA = pa.schema(
    [
        ("origin", pa.string()),  # origin_of(path relative to the input root), plus #n inside containers
        ("format", pa.string()),  # the reader's format name (jsonl, parquet, text, ...)
        ("payload", pa.large_binary()),  # raw bytes of the unit (null when `text` is given)
        ("text", pa.large_string()),  # already-decoded text (Parquet rows)
        ("url", pa.string()),
        ("meta", pa.string()),  # JSON of what the container said about the unit
        ("error", pa.string()),  # set when the reader could not read the unit: the removal reason
    ]
)


_ESCAPED = re.compile(r"%(25|23)")


def origin_of(rel: str) -> str:
    """The origin of a file's units: its path relative to the input root, with `%` and `#`
    written %25 and %23, so that a `#` in an origin always starts a record number
    (`code/C#/x.cs` -> `code/C%23/x.cs`; `data.jsonl#3` is line 3 of data.jsonl)."""
    return rel.replace("%", "%25").replace("#", "%23") if "%" in rel or "#" in rel else rel


def path_of(origin: str) -> str:
    """The file path an origin names: its record number dropped, `origin_of`'s escapes undone."""
    path = origin.split("#", 1)[0]
    return _ESCAPED.sub(lambda m: "%" if m.group(1) == "25" else "#", path) if "%" in path else path


def unit(origin: str, fmt: str, payload: bytes | None = None, *, text: str | None = None,
         url: str | None = None, meta: str | None = None, error: str | None = None) -> dict:
    return {"origin": origin, "format": fmt, "payload": payload, "text": text, "url": url,
            "meta": meta, "error": error}


def clean_url(value: str | None) -> str | None:
    """A URL as read from any input, without the angle brackets WARC 1.0 writers put around
    WARC-Target-URI (`<https://...>`) and without surrounding whitespace; None when empty."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value or None


@dataclass
class Doc:
    """What parsing one unit gives: the document's fields, or the reason it is removed."""

    text: str | None = None
    url: str | None = None
    meta: dict | None = None
    source: str | None = None  # None: the reader's default source
    lang: str | None = None  # set for code (code:<language>)
    reason: str | None = None


@dataclass(frozen=True)
class Reader:
    format: str
    extensions: tuple[str, ...]  # lower-case; the longest matching extension wins
    read: Callable[[Path, str], Iterator[dict]]  # I/O: (absolute path, origin) -> units
    parse: Callable[[dict, object], Doc]  # pure: (unit row, extract config) -> Doc
    source: str = "text"  # the source of its documents unless the config maps them
    sniff: Callable[[bytes], bool] | None = None  # claims an extension-less file from its head
    claims_dir: Callable[[Path], bool] | None = None  # takes a whole directory as one unit


REGISTRY: dict[str, Reader] = {}


def register(reader: Reader) -> Reader:
    REGISTRY[reader.format] = reader
    return reader


_loaded = False


def loaded() -> dict[str, "Reader"]:
    """The registry with every built-in reader imported (once). Checking for an empty registry
    is not enough: importing one reader module registers that reader alone."""
    global _loaded
    if not _loaded:
        _load_builtin()
        _loaded = True
    return REGISTRY


def _load_builtin() -> None:
    # Import for the side effect of registering; order decides sniffing priority.
    from curate.readers import jsonl, parquet, text  # noqa: F401

    # Extraction formats; their sniffers look for distinct heads (WARC/ARC records, <html>,
    # \documentclass or a tarball), and plain text, always sniffed last, claims what is left.
    from curate.readers import warc, html, latex, code  # noqa: F401


def builtin() -> set[str]:
    """The formats curate itself reads (a plugin reader may not take one of these names)."""
    return {fmt for fmt, reader in loaded().items() if _is_builtin(reader)}


def _is_builtin(reader: Reader) -> bool:
    return reader.read.__module__.startswith("curate.readers.")


def ordered() -> list[Reader]:
    """Plugin readers first: a user's reader claims its files even where a built-in one would
    (the same extension, a head both sniffers accept)."""
    return sorted(loaded().values(), key=_is_builtin)


def by_extension(name: str) -> Reader | None:
    lower = name.lower()
    best, best_len = None, 0
    for reader in ordered():
        for ext in reader.extensions:
            if lower.endswith(ext) and len(ext) > best_len:
                best, best_len = reader, len(ext)
    return best


def by_content(head: bytes) -> Reader | None:
    # Specific formats first; plain text claims whatever readable text is left.
    for reader in sorted(ordered(), key=lambda r: r.format == "text"):
        if reader.sniff is not None and reader.sniff(head):
            return reader
    return None


def get(fmt: str) -> Reader:
    return loaded()[fmt]
