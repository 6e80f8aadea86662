"""Open files that may be gzip, zstd or bz2 compressed, with a guard against decompression bombs.

A file is a local path or an object-store URI (curate.storage): an object is streamed, never
downloaded whole first.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zlib
from pathlib import Path

import zstandard

from curate.storage import location

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZ2_MAGIC = b"BZh"

# A decompressed stream may not grow past this many times its compressed size (plus slack).
MAX_RATIO = 200
SLACK = 64 << 20


class ReadLimitExceeded(IOError):
    """The decompressed data grew past the allowed ratio: a likely compression bomb."""


class _Limited(io.RawIOBase):
    def __init__(self, raw, limit: int):
        self.raw, self.limit, self.seen = raw, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self.raw.read(len(buf))
        self.seen += len(data)
        if self.seen > self.limit:
            raise ReadLimitExceeded(f"decompressed size exceeds {self.limit} bytes")
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


class _Decompressed(io.RawIOBase):
    """A streaming decompressor over a file that hands out every byte decoded before a cut.

    `gzip.GzipFile.read` drops the data of the read that hits a truncation, and zstd's stream
    reader ends quietly on a truncated frame. Here the bytes before the cut come first and an
    EOFError comes on the next read; concatenated members/frames are followed.
    """

    CHUNK = 1 << 16

    def __init__(self, f, new_decoder):
        self.f = f  # the compressed file, open; closed with this stream
        self.new_decoder = new_decoder
        self.d = new_decoder()
        self.buf = b""
        self.in_member = False  # inside a member/frame that has not reached its end marker
        self.finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, out) -> int:
        while not self.buf and not self.finished:
            raw = self.f.read(self.CHUNK)
            if not raw:
                self.finished = True
                if self.in_member:
                    raise EOFError("compressed stream ended before its end marker")
                break
            self.in_member = True
            self.buf = self.d.decompress(raw)
            while self.d.eof:
                rest = self.d.unused_data
                self.d = self.new_decoder()
                self.in_member = bool(rest)
                if not rest:
                    break
                self.buf += self.d.decompress(rest)
        n = min(len(out), len(self.buf))
        out[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n

    def close(self) -> None:
        self.f.close()
        super().close()


def compression_of(head: bytes) -> str | None:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZ2_MAGIC):
        return "bz2"
    return None


def open_binary(path: Path | str) -> io.BufferedReader:
    """Open `path` (a local path or a URI) for reading, decompressing by magic bytes (not by
    extension)."""
    f = location(path).open("rb")  # opened once: on an object store each open is a request
    kind = compression_of(f.peek(4)[:4])
    if kind is None:
        return f
    size = f.seek(0, io.SEEK_END)
    f.seek(0)
    limit = size * MAX_RATIO + SLACK
    if kind == "gzip":
        raw = _Decompressed(f, lambda: zlib.decompressobj(wbits=47))
    elif kind == "zstd":
        raw = _Decompressed(f, lambda: zstandard.ZstdDecompressor().decompressobj())
    else:
        raw = _Decompressed(f, bz2.BZ2Decompressor)
    return io.BufferedReader(_Limited(raw, limit), buffer_size=1 << 20)


def read_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """The whole (decompressed) content of a file, refusing more than `max_bytes`."""
    with open_binary(path) as f:
        data = f.read(max_bytes + 1 if max_bytes else -1)
    if max_bytes is not None and len(data) > max_bytes:
        raise ReadLimitExceeded(f"file larger than {max_bytes} bytes")
    return data


def read_error_reason(exc: BaseException) -> str:
    """Map an exception raised while reading a file to a removal reason."""
    if isinstance(exc, ReadLimitExceeded):
        return "extract:error:too_large"
    if isinstance(exc, EOFError):
        return "extract:error:truncated"
    if isinstance(exc, (gzip.BadGzipFile, zstandard.ZstdError, zlib.error)) or "Invalid data stream" in str(exc):
        return "extract:error:corrupt"
    if isinstance(exc, PermissionError):
        return "extract:error:unreadable"
    if isinstance(exc, OSError):
        return "extract:error:io"
    return "extract:error:read"
