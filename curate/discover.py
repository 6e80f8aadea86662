"""Find the input files of a corpus directory and cut them into shards.

The walk is deterministic (sorted names) and loses nothing: what is not read (hidden files,
symlinks leaving the corpus, binaries, special files) is still listed, with the reason the
extract stage records it as removed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from curate import readers

SNIFF_BYTES = 8192


@dataclass(frozen=True)
class InputFile:
    rel: str  # POSIX path relative to the input root: the origin of its units
    size: int
    format: str | None  # reader format, None when skipped
    skip: str | None = None  # removal reason when the file is not read


def _sniff(path: Path) -> tuple[str | None, str | None]:
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return None, "extract:error:unreadable"
    from curate.readers.compression import compression_of, open_binary

    if compression_of(head):  # look inside a compressed file without an extension we know
        try:
            with open_binary(path) as f:
                head = f.read(SNIFF_BYTES)
        except Exception:
            return None, "extract:error:corrupt"
    reader = readers.by_content(head)
    if reader is None:
        return None, "extract:skip:binary"
    return reader.format, None


def _classify(path: Path, rel: str, size: int) -> InputFile:
    reader = readers.by_extension(path.name)
    if reader is not None:
        return InputFile(rel, size, reader.format)
    fmt, skip = _sniff(path)
    return InputFile(rel, size, fmt, skip)


def discover(root: Path) -> list[InputFile]:
    """Every input unit under `root` (a directory or a single file), in a deterministic order."""
    root = Path(root)
    if root.is_file():
        return [_classify(root, root.name, root.stat().st_size)]
    real_root = root.resolve()
    out: list[InputFile] = []

    def walk(directory: Path, prefix: str) -> None:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            out.append(InputFile(prefix.rstrip("/") or ".", 0, None, "extract:error:unreadable"))
            return
        for name in names:
            path = directory / name
            rel = prefix + name
            if name.startswith("."):
                out.append(InputFile(rel, 0, None, "extract:skip:hidden"))
                continue
            try:
                st = path.lstat()
            except OSError:
                out.append(InputFile(rel, 0, None, "extract:error:unreadable"))
                continue
            if stat.S_ISLNK(st.st_mode):
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    out.append(InputFile(rel, 0, None, "extract:skip:symlink_outside"))
                    continue
                if target.is_dir():  # followed directory links could loop or double-count
                    out.append(InputFile(rel, 0, None, "extract:skip:symlink_dir"))
                    continue
                try:
                    st = path.stat()
                except OSError:
                    out.append(InputFile(rel, 0, None, "extract:error:unreadable"))
                    continue
            if stat.S_ISDIR(st.st_mode):
                claimed = _claim_directory(path)
                if claimed is not None:
                    out.append(InputFile(rel, _tree_size(path), claimed))
                else:
                    walk(path, rel + "/")
            elif stat.S_ISREG(st.st_mode):
                out.append(_classify(path, rel, st.st_size))
            else:
                out.append(InputFile(rel, 0, None, "extract:skip:not_regular"))

    walk(root, "")
    return out


def _claim_directory(path: Path) -> str | None:
    """A reader may take a whole directory as one unit (a LaTeX source tree)."""
    for reader in readers.loaded().values():
        if reader.claims_dir is not None and reader.claims_dir(path):
            return reader.format
    return None


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def shard(files: list[InputFile], shard_bytes: int) -> list[list[InputFile]]:
    """Group files in order into shards of at most `shard_bytes` (a bigger file is a shard alone)."""
    shards: list[list[InputFile]] = []
    current: list[InputFile] = []
    size = 0
    for f in files:
        if current and size + f.size > shard_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        shards.append(current)
    return shards
