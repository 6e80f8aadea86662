"""csv: a reader for CSV files with a header row, one document per row.

A reader does only I/O: `read(path, origin)` yields one unit per document (curate.readers.unit),
and `parse(unit, extract_config)` turns a unit into a `Doc`. The `text` column is the document,
`url` its URL, every other column goes to `meta`. A row without text is removed by extract with
its reason, like any unreadable unit.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterator

from curate.readers import Doc, Reader, unit


def read(path: Path, origin: str) -> Iterator[dict]:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=1):
            text = row.pop("text", None)
            url = row.pop("url", None) or None
            meta = json.dumps(row, sort_keys=True) if row else None
            if not text:
                yield unit(f"{origin}#{n}", "csv", error="extract:error:csv:no_text")
                continue
            yield unit(f"{origin}#{n}", "csv", text=text, url=url, meta=meta)


def parse(row: dict, config) -> Doc:
    return Doc(text=row["text"], url=row["url"], meta=json.loads(row["meta"]) if row["meta"] else None)


def sniff(head: bytes) -> bool:
    """An extension-less file whose first line is a CSV header with a `text` column."""
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    return "," in first and "text" in next(csv.reader(io.StringIO(first)), [])


# Not registered here: curate registers it (with its checks) when it finds the entry point.
CSV_READER = Reader("csv", (".csv",), read, parse, source="text", sniff=sniff)
