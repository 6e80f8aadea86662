"""WARC, ARC and WET files: one unit per record, streamed.

HTTP 200 HTML responses (and HTML resource records) become units whose `parse` runs the HTML
extractor; WET conversion records are plain text; every other record is a removed unit whose
reason names what it was (`extract:warc:request`, `extract:warc:revisit`,
`extract:warc:status_404`, `extract:warc:non_html`, ...), so the ledger counts every record.
Origins are `path#n`, n the 1-based record number; `url` is WARC-Target-URI (without the angle
brackets WARC 1.0 writers put around it).

Two libraries, chosen by coverage on web/warc (62 files from warcio, pywb, resiliparse,
ukwa and Common Crawl test data): FastWARC is faster, reads LZ4, and reads gzip files that are
one gzip member for many records or whose members split records, which warcio refuses; warcio
reads ARC and resynchronises after a wrong Content-Length, where FastWARC stops. So FastWARC
reads WARC/WET, warcio reads ARC and takes over where FastWARC gives up (skipping the
records already read). HTTP bodies are de-chunked and decompressed here (gzip,
deflate, brotli) under a size limit, not by the libraries: warcio's brotli path breaks with
brotli 1.2, and a mislabelled body must cost one record, not the rest of the file.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import brotli
import orjson

from curate.readers import Doc, Reader, clean_url, register, unit
from curate.readers.compression import open_binary
from curate.readers.html import looks_like_html, page_doc
from curate.readers.decode import charset_of_content_type, decode

MAX_RECORD_BYTES = 32 << 20  # a larger (decoded) payload is removed as extract:warc:too_large
LZ4_MAGIC = b"\x04\x22\x4d\x18"

# Record types that never hold a document, and the reason they are removed with.
SKIPPED_TYPES = {"warcinfo", "request", "metadata", "revisit", "continuation"}


class BodyError(ValueError):
    """An HTTP body that does not decode (bad gzip, a bomb past the size limit)."""


@dataclass
class Record:
    """What we need of a WARC record, whichever library read it."""

    type: str  # response, resource, conversion, request, ...
    uri: str | None
    record_id: str | None
    date: str | None
    status: int | None  # HTTP status (0: unreadable status line); None for non-HTTP records
    content_type: str | None  # HTTP Content-Type, or the WARC one for non-HTTP records
    transfer_encoding: str | None
    content_encoding: str | None
    warc_truncated: str | None  # the crawler's WARC-Truncated header (length, time, ...)
    body: bytes | None = None  # raw payload (after HTTP headers), when the record may be a document
    too_large: bool = False
    cut_short: bool = False  # the file ended inside this record
    headers_cut: bool = False  # ... even inside its WARC headers: nothing of it is usable


def _wants_body(rec_type: str) -> bool:
    return rec_type in ("response", "resource", "conversion")


def _read_limited(stream) -> tuple[bytes, bool]:
    data = stream.read(MAX_RECORD_BYTES + 1)
    return data[:MAX_RECORD_BYTES], len(data) > MAX_RECORD_BYTES


_STATUS = re.compile(rb"^\S*\s+(\d{3})\b")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def split_http(block: bytes) -> tuple[int, dict[str, str], bytes]:
    """An HTTP response block -> (status, lower-cased headers, body); lenient about the status
    line (`HTTP/1.0 302` with no reason, `HTTPX/1.1 200 OK`): 0 when there is no status."""
    end = _HEADER_END.search(block, 0, 1 << 16)
    head, body = (block[:end.start()], block[end.end():]) if end else (block, b"")
    lines = head.decode("latin-1").splitlines()
    m = _STATUS.match(lines[0].encode("latin-1")) if lines else None
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers.setdefault(key.strip().lower(), value.strip())
    return (int(m.group(1)) if m else 0), headers, body


def _record(rec_type: str, header, block: bytes | None, too_large: bool, cut_short: bool) -> Record:
    """Build a Record from WARC headers (`header(name)`) and the raw content block."""
    warc_type = header("Content-Type")
    headers_cut = header("Content-Length") is None  # mandatory: the file ended in the headers
    status, http, body = None, {}, block
    if block is not None and ("application/http" in (warc_type or "").lower() or block.startswith(b"HTTP/")):
        status, http, body = split_http(block)
    return Record(rec_type, clean_url(header("WARC-Target-URI")), header("WARC-Record-ID"), header("WARC-Date"), status,
                  http.get("content-type") or (None if status is not None else warc_type),
                  http.get("transfer-encoding"), http.get("content-encoding"), header("WARC-Truncated"),
                  body, too_large, cut_short or headers_cut, headers_cut)


# -- the two libraries: record framing only, HTTP is parsed above ----------------------------
def _warcio_records(f, arc: bool = False) -> Iterator[Record]:
    from warcio.archiveiterator import ArchiveIterator

    for r in ArchiveIterator(f, arc2warc=True, no_record_parse=True):
        block, too_large = _read_limited(r.raw_stream) if _wants_body(r.rec_type) else (None, False)
        if not too_large:  # drain (warcio would anyway) to see whether the file ended early
            while r.raw_stream.read(1 << 16):
                pass
        cut_short = not too_large and getattr(r.raw_stream, "limit", 0) > 0
        header = r.rec_headers.get_header
        if arc:  # ARC records have no id: warcio makes up a random one, which would differ per run
            header = _without_record_id(header)
        yield _record(r.rec_type, header, block, too_large, cut_short)


def _without_record_id(header):
    return lambda name: None if name == "WARC-Record-ID" else header(name)


class ShortRecord(IOError):
    """FastWARC delivered less than a record's Content-Length: cut, or framed wrongly."""


def _fastwarc_records(f, short_is_error: bool, last_pos: list[int]) -> Iterator[Record]:
    """FastWARC's records; `last_pos[0]` follows the offset where the latest record starts (in a
    .warc.gz, where its gzip member starts)."""
    from fastwarc.warc import ArchiveIterator

    for r in ArchiveIterator(f, parse_http=False, auto_decode="none"):
        last_pos[0] = r.stream_pos
        rec_type = str(r.record_type)
        block, too_large = _read_limited(r.reader) if _wants_body(rec_type) else (None, False)
        cut_short = block is not None and not too_large and len(block) < r.content_length
        if cut_short and short_is_error:  # let warcio, which resynchronises, judge the record
            raise ShortRecord(f"record {r.record_id}: {len(block)} of {r.content_length} bytes")
        yield _record(rec_type, r.headers.get, block, too_large, cut_short)


def _gzip_cut(path: Path, start: int = 0) -> bool:
    """Whether a gzip file ends before its last member does, checked from offset `start` (the
    last record's member: the members before it were read whole already, so the file is not
    read twice). From the top where `start` is not where a member begins."""
    with path.open("rb") as f:
        if f.read(2) != b"\x1f\x8b":
            return False
        if start:
            f.seek(start)
            if f.read(2) != b"\x1f\x8b":
                start = 0
    try:
        with path.open("rb") as raw:
            raw.seek(start)
            with gzip.open(raw, "rb") as g:
                while g.read(1 << 22):
                    pass
    except EOFError:
        return True
    except (OSError, zlib.error):
        return False  # corrupt rather than cut: the readers report what they make of it
    return False


def _is_arc(path: Path) -> bool:
    with open_binary(path) as f:
        return f.read(11) == b"filedesc://"


def records(path: Path) -> Iterator[Record]:
    """Every record of a WARC/ARC/WET file in order; raises where the file stops being readable."""
    if _is_arc(path):
        with path.open("rb") as f:
            yield from _warcio_records(f, arc=True)
        return
    with path.open("rb") as f:
        lz4 = f.read(4) == LZ4_MAGIC  # warcio reads no LZ4: FastWARC has the last word there
    done, last_pos = 0, [0]
    try:
        with path.open("rb") as f:
            for rec in _fastwarc_records(f, short_is_error=not lz4, last_pos=last_pos):
                done += 1
                yield rec
        if _gzip_cut(path, last_pos[0]):  # FastWARC ends quietly where a file is cut inside a member header
            raise EOFError("the gzip stream ends inside a member")
        return
    except Exception as exc:
        failure = exc
    if lz4:
        raise failure
    # FastWARC gave up (a wrong Content-Length, a cut record): warcio resynchronises on the
    # next record header. It reads the same records up to there; yield only those after.
    seen = 0
    try:
        with path.open("rb") as f:
            for rec in _warcio_records(f):
                seen += 1
                if seen > done:
                    yield rec
    except Exception:
        if seen <= done:
            raise failure from None
        raise
    if seen <= done:  # warcio got no further: the file does end there
        raise failure


# -- HTTP bodies ------------------------------------------------------------------------
def dechunk(body: bytes) -> bytes | None:
    """Undo chunked transfer encoding; None when the body is not validly chunked (crawlers
    often store the de-chunked body but keep the header)."""
    out, pos = [], 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            return None
        try:
            size = int(body[pos:end].split(b";", 1)[0].strip(), 16)
        except ValueError:
            return None
        if size == 0:
            return b"".join(out)
        start = end + 2
        if start + size > len(body):
            return None
        out.append(body[start:start + size])
        pos = start + size + 2


def _inflate(data: bytes, wbits: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, MAX_RECORD_BYTES)
    if d.unconsumed_tail:
        raise BodyError("too_large")
    return out


def _unbrotli(data: bytes) -> bytes:
    d = brotli.Decompressor()
    out = d.process(data, output_buffer_limit=MAX_RECORD_BYTES + 1)
    if len(out) > MAX_RECORD_BYTES or not d.can_accept_more_data():
        raise BodyError("too_large")
    return out


def decode_body(body: bytes, transfer_encoding: str | None, content_encoding: str | None) -> bytes:
    """The entity an HTTP response carried: chunking undone, content codings removed."""
    if transfer_encoding and "chunked" in transfer_encoding.lower():
        body = dechunk(body) or body
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding in ("identity", "none", "utf-8", "binary", "text"):
            continue
        if looks_like_html(body[:1024]):  # already decoded by the crawler, the header left behind
            break
        try:
            if coding in ("gzip", "x-gzip"):
                body = _inflate(body, 16 + zlib.MAX_WBITS)
            elif coding == "deflate":
                try:
                    body = _inflate(body, zlib.MAX_WBITS)
                except zlib.error:  # many servers send raw deflate without the zlib header
                    body = _inflate(body, -zlib.MAX_WBITS)
            elif coding in ("br", "brotli"):
                body = _unbrotli(body)
            else:
                raise BodyError(f"unknown_coding:{coding}")
        except (zlib.error, brotli.error) as exc:
            raise BodyError("bad_encoding") from exc
    return body


# -- records -> units --------------------------------------------------------------------
def _is_html(content_type: str | None, body: bytes) -> bool:
    if content_type:
        mime = content_type.split(";", 1)[0].strip().lower()
        if "html" in mime:
            return True
        if mime not in ("", "application/octet-stream", "unknown/unknown", "application/http"):
            return False
    return looks_like_html(body[:4096])


def _skip_reason(rec: Record) -> str | None:
    """Why a record is no document, or None when it may be one."""
    if rec.type in SKIPPED_TYPES:
        return f"extract:warc:{rec.type}"
    if rec.type not in ("response", "resource", "conversion"):
        return f"extract:warc:{rec.type or 'unknown'}"
    if rec.too_large:
        return "extract:warc:too_large"
    if rec.status is not None and rec.status != 200:
        return f"extract:warc:status_{rec.status or 'unknown'}"
    return None


def to_unit(rec: Record, origin: str) -> dict:
    meta = {k: v for k, v in (("warc_type", rec.type), ("warc_record_id", rec.record_id),
                              ("warc_date", rec.date), ("content_type", rec.content_type),
                              ("warc_truncated", rec.warc_truncated or ("eof" if rec.cut_short else None))) if v}
    reason = _skip_reason(rec)
    body = rec.body
    if reason is None and rec.type != "conversion":
        try:
            body = decode_body(body or b"", rec.transfer_encoding, rec.content_encoding)
        except BodyError as exc:
            reason = f"extract:warc:{exc}" if str(exc) == "too_large" else "extract:warc:bad_encoding"
        else:
            if not _is_html(rec.content_type, body):
                reason = "extract:warc:non_html"
    elif reason is None and rec.content_type and not rec.content_type.lower().startswith("text/"):
        reason = "extract:warc:non_text"
    payload = body if reason is None else None
    return unit(origin, "warc", payload, url=rec.uri, meta=orjson.dumps(meta).decode(), error=reason)


def _stream_error(exc: BaseException, path: Path) -> str:
    """A file that stops being readable: truncation (the compressed stream ends early, or the
    libraries say so), else a record the parsers cannot frame."""
    if isinstance(exc, (EOFError, zlib.error)) or "truncat" in str(exc).lower() or "eof" in str(exc).lower():
        return "extract:warc:truncated"
    try:  # neither library tells a cut gzip file apart from garbage; gzip itself does
        with open_binary(path) as f:
            while f.read(1 << 20):
                pass
    except EOFError:
        return "extract:warc:truncated"
    except Exception:
        return "extract:warc:corrupt"
    return "extract:warc:corrupt"


def read(path: Path, origin: str) -> Iterator[dict]:
    n = 0
    try:
        for rec in records(path):
            n += 1
            if rec.cut_short:  # the file ends here: keep what the record had, record the cut
                if not rec.headers_cut:
                    yield to_unit(rec, f"{origin}#{n}")
                    n += 1
                yield unit(f"{origin}#{n}", "warc", url=rec.uri, error="extract:warc:truncated")
                return
            yield to_unit(rec, f"{origin}#{n}")
    except Exception as exc:  # keep what was read; the unreadable rest is one removed unit
        yield unit(f"{origin}#{n + 1}", "warc", error=_stream_error(exc, path))
        return
    if n == 0:  # an empty container still leaves its file in the ledger
        yield unit(origin, "warc", error="extract:empty")


def parse(row: dict, config) -> Doc:
    meta = orjson.loads(row["meta"]) if row["meta"] else {}
    content_type = meta.get("content_type")
    if meta.get("warc_type") == "conversion":  # WET: the crawler's own text extraction, UTF-8
        text, _ = decode(row["payload"], charset_of_content_type(content_type))
        return Doc(text=text)
    return page_doc(row["payload"], config, url=row["url"], http_charset=charset_of_content_type(content_type))


def looks_like_warc(head: bytes) -> bool:
    return head.startswith((b"WARC/1.", b"WARC/0.", b"filedesc://")) or head.startswith(LZ4_MAGIC)


READER = register(
    # not bare .wat: that is WebAssembly text (Common Crawl's WAT files are .warc.wat.gz)
    Reader("warc", (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz", ".wat.gz",
                    ".warc.lz4", ".warc.wet.gz", ".warc.wat.gz"),
           read, parse, source="web", sniff=looks_like_warc)
)
