"""JSON Lines (.jsonl, .jsonl.gz, .jsonl.zst): one unit per non-blank line, parsed by extract."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import orjson

from curate.readers import Doc, Reader, register, unit
from curate.readers.compression import open_binary, read_error_reason

MAX_LINE_BYTES = 256 << 20  # a longer line is recorded as removed, never loaded whole


def read(path: Path, origin: str) -> Iterator[dict]:
    line_no = 0
    try:
        with open_binary(path) as f:
            while True:
                line = f.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return
                line_no += 1
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    # Skip the rest of the oversized line, then record it as removed.
                    while line and not line.endswith(b"\n"):
                        line = f.readline(MAX_LINE_BYTES)
                    yield unit(f"{origin}#{line_no}", "jsonl", error="extract:error:too_large")
                    continue
                if line.strip():  # blank lines carry no record
                    yield unit(f"{origin}#{line_no}", "jsonl", line)
    except Exception as exc:  # a truncated or corrupt stream: keep what was read, record the rest
        yield unit(f"{origin}#{line_no + 1}", "jsonl", error=read_error_reason(exc))


def parse(row: dict, config) -> Doc:
    """`text` becomes the document, `url` (or `metadata.url`) the URL, everything else meta."""
    try:
        obj = orjson.loads(row["payload"])
    except orjson.JSONDecodeError:
        return Doc(reason="extract:error:bad_json")
    if not isinstance(obj, dict):
        return Doc(reason="extract:error:bad_json:not_object")
    text = obj.pop("text", None)
    if text is not None and not isinstance(text, str):
        return Doc(reason="extract:error:bad_json:text_type", meta=obj)
    url = obj.pop("url", None)
    metadata = obj.get("metadata")
    if url is None and isinstance(metadata, dict):
        url = metadata.get("url")
    if url is not None and not isinstance(url, str):
        url = str(url)
    return Doc(text=text, url=url, meta=obj or None)


READER = register(Reader("jsonl", (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".ndjson.gz"), read, parse))
