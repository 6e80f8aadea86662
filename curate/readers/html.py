"""HTML pages (.html, .htm, .xhtml, gzipped or not, or sniffed): one unit per file.

The reader only reads the bytes; `parse` decodes them and extracts the main text with
`curate.readers.html_text` (trafilatura), keeping title, date and canonical URL in meta/url.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from curate.readers.html_text import extract_page
from curate.readers import Doc, Reader, register, unit
from curate.readers.compression import read_bytes, read_error_reason

# Read at most this much; the config's `html.max_bytes` (smaller) decides what is extracted.
MAX_FILE_BYTES = 64 << 20

_HTML_HEAD = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>]|head[\s>])",
                        re.IGNORECASE | re.DOTALL)


def looks_like_html(head: bytes) -> bool:
    """A file without a known extension that starts like an HTML document."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return bool(_HTML_HEAD.match(head[:4096]))


def read(path: Path, origin: str) -> Iterator[dict]:
    try:
        yield unit(origin, "html", read_bytes(path, MAX_FILE_BYTES))
    except Exception as exc:
        yield unit(origin, "html", error=read_error_reason(exc))


def page_doc(data: bytes, config, *, url: str | None = None, http_charset: str | None = None) -> Doc:
    """Extract one page; shared with the WARC reader, whose responses are pages too."""
    page = extract_page(data, config.html, url=url, http_charset=http_charset)
    return Doc(text=page.text, url=url or page.url, meta=page.meta or None, reason=page.reason)


def parse(row: dict, config) -> Doc:
    return page_doc(row["payload"], config, url=row["url"])


READER = register(
    Reader("html", (".html", ".htm", ".xhtml", ".html.gz", ".htm.gz", ".xhtml.gz"), read, parse,
           source="web", sniff=looks_like_html)
)
