"""Find the input files of a corpus directory and cut them into shards.

The corpus is a local directory or an object-store prefix (curate.storage); both are walked the
same way. The walk is deterministic (sorted names) and loses nothing: what is not read (hidden
files, symlinks leaving the corpus, binaries, special files) is still listed, with the reason the
extract stage records it as removed.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from curate import readers, storage

SNIFF_BYTES = 8192
MB = 1 << 20
# The automatic shard size (run.shard_mb: null): SHARDS_PER_WORKER shards for each worker, so
# that workers finish together (the last shard leaves the others idle for about half a shard),
# progress and resume points come often, and a killed run redoes little; within [MIN_SHARD_MB,
# MAX_SHARD_MB]. Measured: a shard costs 0.22 s through the six stages (48 tiny shards against
# one), about 3% of a 1 MB shard of the bench input (8 worker-seconds per MB); above 64 MB a part
# is more than a step's item should hold in memory.
SHARDS_PER_WORKER = 8
MIN_SHARD_MB = 1
MAX_SHARD_MB = 64


@dataclass(frozen=True)
class InputFile:
    rel: str  # POSIX path relative to the input root: the origin of its units
    size: int
    format: str | None  # reader format, None when skipped
    skip: str | None = None  # removal reason when the file is not read


def _sniff(path: Path) -> tuple[str | None, str | None]:
    try:
        with path.open("rb") as f:
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


def discover(root: storage.PathLike) -> list[InputFile]:
    """Every input unit under `root` (a directory or a single file), in a deterministic order."""
    root = storage.location(root)
    if root.is_file():
        return [_classify(root, root.name, root.stat().st_size)]
    if storage.is_remote(root):
        root = root.listed()  # the whole tree in one listing, not one per folder
    real_root = root.resolve()
    out: list[InputFile] = []

    def walk(directory, prefix: str) -> None:
        try:
            entries = sorted(directory.iterdir(), key=lambda p: p.name)
        except OSError:
            out.append(InputFile(prefix.rstrip("/") or ".", 0, None, "extract:error:unreadable"))
            return
        for path in entries:
            rel = prefix + path.name
            if path.name.startswith("."):
                out.append(InputFile(rel, 0, None, "extract:skip:hidden"))
                continue
            kind, size = _kind(path, real_root)
            if kind == "dir":
                claimed = _claim_directory(path)
                if claimed is not None:
                    out.append(InputFile(rel, _tree_size(path), claimed))
                else:
                    walk(path, rel + "/")
            elif kind == "file":
                out.append(_classify(path, rel, size))
            else:
                out.append(InputFile(rel, 0, None, kind))

    walk(root, "")
    return out


def _kind(path, real_root) -> tuple[str, int]:
    """('dir' | 'file' | the reason it is not read, size in bytes). An object store has neither
    links nor special files; a local link is followed only to a file inside the corpus."""
    if storage.is_remote(path):
        return ("dir", 0) if path.is_dir() else ("file", path.stat().st_size)
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            target = path.resolve()
            if not target.is_relative_to(real_root):
                return "extract:skip:symlink_outside", 0
            if target.is_dir():  # followed directory links could loop or double-count
                return "extract:skip:symlink_dir", 0
            st = path.stat()
    except OSError:
        return "extract:error:unreadable", 0
    if stat.S_ISDIR(st.st_mode):
        return "dir", 0
    if stat.S_ISREG(st.st_mode):
        return "file", st.st_size
    return "extract:skip:not_regular", 0


def _claim_directory(path: Path) -> str | None:
    """A reader may take a whole directory as one unit (a LaTeX source tree)."""
    for reader in readers.ordered():  # a plugin reader claims before the built-in ones
        if reader.claims_dir is not None and reader.claims_dir(path):
            return reader.format
    return None


def _tree_size(path) -> int:
    total = 0
    for _folder, _dirs, files in storage.walk(path):
        for f in files:
            try:
                total += f.lstat().st_size if isinstance(f, Path) else f.stat().st_size
            except OSError:
                pass
    return total


def shard_size(total_bytes: int, workers: int, shard_mb: float | None = None) -> int:
    """Bytes per extract shard: `shard_mb` when the config sets it, else chosen from the corpus
    size and the worker count (see SHARDS_PER_WORKER)."""
    if shard_mb is not None:
        return int(shard_mb * MB)
    per_shard = total_bytes / (SHARDS_PER_WORKER * max(workers, 1))
    return int(min(max(per_shard, MIN_SHARD_MB * MB), MAX_SHARD_MB * MB))


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
