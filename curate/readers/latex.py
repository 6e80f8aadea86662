"""LaTeX: a .tex file, a source directory, or an arXiv bundle (.tar, .tar.gz, a single-file .gz)
becomes one unit, parsed into one academic document by `curate.readers.latex_clean`.

What is one document:
- a directory is claimed whole (`claims_dir`) when its top level holds a *root* file (a
  `\\documentclass` other than subfiles/standalone, plus `\\begin{document}`), and either only
  one root or a root that includes other files there: an arXiv-style source tree, whose
  figures, styles and parts are not documents of their own. A folder of independent papers
  (several roots, none including another file there) is not claimed: each file is a document.
- in a tree or an archive, every root that no other root includes is a document of its own
  (`documents_of`): a paper and its supplement become two units, `tree#1` and `tree#2`, each
  with the shared files and without the other root. A root another root includes (an appendix
  that also compiles alone) is inlined there.
- other .tex files are documents on their own. The Open Logic Project (academic/openlogic) is
  such a tree: 720 of its 722 files are `subfiles` parts, each a section or chapter that
  compiles alone once its parent's preamble is there, and no root document exists. Its
  sections become one document each; chapter and part files, which only `\\olimport` their
  sections, keep no prose and are removed as `extract:latex:no_text` instead of duplicating
  the sections they would inline.
- an archive is one document (arXiv ships a paper as one tarball); its main file is found the
  same way as in a directory.

Archives are read in memory and streamed (never extracted to disk): a member named with `..`
or an absolute path refuses the whole archive (`extract:latex:unsafe_path`); sizes, member
count and the decompression ratio are bounded (`extract:latex:too_large`, with
`curate.readers.compression` refusing bombs). Only .tex/.ltx members are kept.
"""

from __future__ import annotations

import os
import posixpath
import struct
import tarfile
from pathlib import Path, PurePosixPath
from typing import Iterator

from curate import storage
from curate.readers import latex_clean as latex
from curate.readers import Doc, Reader, register, unit
from curate.readers.compression import ReadLimitExceeded, open_binary, read_error_reason
from curate.readers.decode import decode

TEX_SUFFIXES = (".tex", ".ltx")
MAX_SOURCE_BYTES = 16 << 20  # one .tex file
MAX_TREE_BYTES = 64 << 20  # all .tex files of one document
MAX_MEMBERS = 20_000  # archive members (any kind) read through
MAX_ARCHIVE_BYTES = 512 << 20  # decompressed archive bytes streamed through
TAR_MAGIC_OFFSET = 257
HEAD_BYTES = 64 << 10  # claims_dir looks this far into a top-level .tex


class UnsafeArchive(ValueError):
    pass


class TooLarge(ValueError):
    pass


# -- the payload: a small in-memory tree of files -------------------------------------------------
def pack(files: dict[str, bytes]) -> bytes:
    """Serialise path -> bytes as length-prefixed records (the unit's payload)."""
    out = bytearray()
    for name, data in files.items():
        raw = name.encode("utf-8", "surrogateescape")
        out += struct.pack(">IQ", len(raw), len(data)) + raw + data
    return bytes(out)


def unpack(payload: bytes) -> dict[str, bytes]:
    files, pos, view = {}, 0, memoryview(payload)
    while pos < len(payload):
        name_len, data_len = struct.unpack_from(">IQ", payload, pos)
        pos += 12
        if pos + name_len + data_len > len(payload):
            raise ValueError("not a packed source tree")
        name = bytes(view[pos:pos + name_len]).decode("utf-8", "surrogateescape")
        pos += name_len
        files[name] = bytes(view[pos:pos + data_len])
        pos += data_len
    return files


# -- reading the three shapes ---------------------------------------------------------------------
def _safe_name(name: str) -> str:
    """A member name relative to the archive root; raises for absolute or escaping names."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(name)
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(name)
    return "/".join(parts)


def _skipped_name(rel: str) -> bool:
    """Hidden files and macOS resource forks (`._x`, __MACOSX/) are no sources."""
    return any(p.startswith(".") or p == "__MACOSX" for p in rel.split("/"))


class _Counting:
    """A read-only stream that refuses to deliver more than `limit` bytes in total."""

    def __init__(self, raw, limit: int):
        self.raw, self.limit, self.seen = raw, limit, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.seen += len(data)
        if self.seen > self.limit:
            raise TooLarge(f"archive larger than {self.limit} bytes decompressed")
        return data


def _read_tar(stream) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    with tarfile.open(fileobj=_Counting(stream, MAX_ARCHIVE_BYTES), mode="r|") as tar:
        for i, member in enumerate(tar):
            if i >= MAX_MEMBERS:
                raise TooLarge("too many archive members")
            rel = _safe_name(member.name)  # checked for every member, files or not
            if not member.isfile() or _skipped_name(rel) or not rel.lower().endswith(TEX_SUFFIXES):
                continue  # links are never followed; figures and styles are not read
            if member.size > MAX_SOURCE_BYTES or total + member.size > MAX_TREE_BYTES:
                raise TooLarge(f"{rel}: {member.size} bytes")
            f = tar.extractfile(member)
            data = f.read(member.size) if f else b""
            total += len(data)
            files[rel] = data
    return files


def read_archive(path: Path) -> dict[str, bytes]:
    """The .tex files of a tar / tar.gz / single-file .gz, read in memory."""
    with open_binary(path) as f:
        head = f.read(512)
        if head[TAR_MAGIC_OFFSET:TAR_MAGIC_OFFSET + 5] == b"ustar":
            return _read_tar(_Prefixed(head, f))
        rest = f.read(MAX_SOURCE_BYTES + 1 - len(head))
    data = head + rest
    if len(data) > MAX_SOURCE_BYTES:
        raise TooLarge(f"{path.name}: larger than {MAX_SOURCE_BYTES} bytes")
    stem = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    return {stem if stem.lower().endswith(TEX_SUFFIXES) else stem + ".tex": data}


class _Prefixed:
    """A stream whose first bytes were already read (to look for the tar magic)."""

    def __init__(self, head: bytes, raw):
        self.head, self.raw = head, raw

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return self.raw.read(n)
        if n < 0:
            data, self.head = self.head + self.raw.read(), b""
            return data
        data, self.head = self.head[:n], self.head[n:]
        if len(data) < n:
            data += self.raw.read(n - len(data))
        return data


def read_tree(path: Path) -> dict[str, bytes]:
    """The .tex files under a source directory (hidden files and symlinks skipped)."""
    files: dict[str, bytes] = {}
    total = 0
    for _folder, dirs, names in storage.walk(path):
        dirs[:] = [d for d in dirs if not d.name.startswith(".") and not d.is_symlink()]
        for full in names:
            rel = full.relative_to(path).as_posix()
            if _skipped_name(rel) or full.is_symlink() or not full.name.lower().endswith(TEX_SUFFIXES):
                continue
            size = full.stat().st_size
            if size > MAX_SOURCE_BYTES or total + size > MAX_TREE_BYTES:
                raise TooLarge(f"{rel}: {size} bytes")
            files[rel] = full.read_bytes()
            total += size
    return files


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnsafeArchive):
        return "extract:latex:unsafe_path"
    if isinstance(exc, (TooLarge, ReadLimitExceeded)):
        return "extract:latex:too_large"
    if isinstance(exc, tarfile.ReadError):
        return "extract:error:truncated" if "unexpected end" in str(exc).lower() else "extract:error:corrupt"
    return read_error_reason(exc)


def read(path: Path, origin: str) -> Iterator[dict]:
    try:
        if path.is_dir():
            files = read_tree(path)
        elif path.name.lower().endswith(TEX_SUFFIXES):
            size = path.stat().st_size
            if size > MAX_SOURCE_BYTES:
                raise TooLarge(f"{size} bytes")
            files = {path.name: path.read_bytes()}
        else:
            files = read_archive(path)
    except Exception as exc:
        yield unit(origin, "latex", error=_reason(exc))
        return
    if not files:
        yield unit(origin, "latex", error="extract:latex:no_tex")
        return
    mains = documents_of(files)
    if len(mains) <= 1:
        yield unit(origin, "latex", pack(files))
        return
    for n, main in enumerate(mains, 1):  # one unit per document, each without the other roots
        others = set(mains) - {main}
        yield unit(f"{origin}#{n}", "latex", pack({p: d for p, d in files.items() if p not in others}))


# -- what is a document ---------------------------------------------------------------------------
def _source(data: bytes) -> str:
    return latex.strip_comments(decode(data)[0])


def _head(path: Path) -> str:
    try:
        with path.open("rb") as f:
            return _source(f.read(HEAD_BYTES))
    except OSError:
        return ""


def _includes(root: str, text: str, candidates: set[str]) -> set[str]:
    """The files of `candidates` that `root` includes, other than itself (resolved against its
    directory, then the tree's top, as LaTeX does)."""
    found = set()
    for target in latex.include_targets(text):
        for base in (posixpath.dirname(root), ""):
            path = posixpath.normpath(posixpath.join(base, target))
            found |= {p for p in (path, path + ".tex", path + ".ltx") if p in candidates}
    return found - {root}


def documents_of(files: dict[str, bytes]) -> list[str]:
    """The root files of a tree that are documents of their own, in order: every root no other
    root includes. A root that another includes is part of that document (an appendix that
    also compiles alone); a root including only itself is still its own document."""
    roots = sorted(p for p, data in files.items() if latex.is_root(_source(data[:HEAD_BYTES])))
    if len(roots) < 2:
        return roots
    included = set().union(*(_includes(r, _source(files[r]), set(roots)) for r in roots))
    return [r for r in roots if r not in included]


def claims_dir(path: Path) -> bool:
    """A directory whose top level holds the root file of a LaTeX source tree."""
    try:
        names = sorted(p.name for p in path.iterdir() if p.name.lower().endswith(TEX_SUFFIXES) and not p.name.startswith("."))
    except OSError:
        return False
    heads = {n: _head(path / n) for n in names if (path / n).is_file()}
    roots = [n for n, t in heads.items() if latex.is_root(t)]
    if len(roots) == 1:
        return True
    return any(_includes(r, heads[r], set(heads)) for r in roots)


def looks_like_latex(head: bytes) -> bool:
    """An extension-less or .gz file holding TeX source or a tarball (arXiv's download format)."""
    if head[TAR_MAGIC_OFFSET:TAR_MAGIC_OFFSET + 5] == b"ustar":
        return True
    return b"\\documentclass" in head or b"\\begin{document}" in head


def parse(row: dict, config) -> Doc:
    files = {name: decode(data)[0] for name, data in unpack(row["payload"]).items()}
    if not any(text.strip() for text in files.values()):
        return Doc(text="")  # extract:empty
    result = latex.clean_document(files, config.latex)
    return Doc(text=result.text, meta=result.meta or None, reason=result.reason)


READER = register(
    Reader("latex", (".tex", ".ltx", ".tar", ".tar.gz", ".tgz"), read, parse, source="academic",
           sniff=looks_like_latex, claims_dir=claims_dir)
)
