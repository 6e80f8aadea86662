"""Writing safely and resuming: the one owner of atomic writes, temp files and done-files.

Every file curate writes into OUT goes through this module, and is atomic: the data goes to a
temp file `.NAME.tmp-PID` beside the target, which is renamed into place once complete. A writer
killed half-way leaves only a temp file, never a half file under the real name; `clean_temps`
removes such leftovers.

An item of work (a stage's shard, an item of a global step) is committed by its done-file,
`<folder>/_done/<item>.json`, written last, after every file of the item is stored: an item with
a done-file is complete, and whatever else of it a killed run left is redone on resume
(`clean_partial`, `resumable`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTS = dict(compression="zstd", write_statistics=False)
DONE = "_done"
TEMP_GLOB = ".*.tmp-*"


# -- atomic writes ------------------------------------------------------------------------------
def temp_path(path: Path) -> Path:
    """Where `path` is written before it is renamed into place (named by pid: two writers never
    share one)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


class Staged:
    """A file to write `target`'s content into: `commit()` puts it in place whole, `abort()`
    drops it. As a context manager it commits when the block ends and aborts on an exception.

        with Staged(path) as tmp:
            pq.write_table(table, tmp)
    """

    def __init__(self, target: Path):
        self.target = Path(target)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.local = temp_path(self.target)

    def commit(self) -> None:
        os.replace(self.local, self.target)

    def abort(self) -> None:
        self.local.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.local

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_bytes(path: Path, data: bytes) -> None:
    with Staged(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())  # a done-file must not be renamed into place before its data is on disk


def write_json(path: Path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n").encode())


def write_parquet(path: Path, table: pa.Table) -> None:
    with Staged(path) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTS)


def remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def clean_temps(folder: Path, item: str | None = None) -> None:
    """Remove the temp files of killed writers: every one under `folder`, or those of one item's
    files directly in it (a failed attempt of that item)."""
    found = folder.glob(f".{item}.*.tmp-*") if item else folder.rglob(TEMP_GLOB)
    for path in list(found):
        path.unlink(missing_ok=True)


# -- done-files: an item is complete when its done-file exists ------------------------------------
def done_path(folder: Path, item: str) -> Path:
    return folder / DONE / f"{item}.json"


def done_paths(folder: Path) -> list[Path]:
    """The done-files directly under `folder/_done`, in name order."""
    return sorted((folder / DONE).glob("*.json"))


def done_items(folder: Path) -> set[str]:
    return {p.stem for p in done_paths(folder)}


def commit(folder: Path, item: str, record: dict) -> None:
    """Mark `item` complete; call it only once every file of the item is stored."""
    write_json(done_path(folder, item), record)


def clean_partial(folder: Path, items: Iterable[str], subdirs: Iterable[str] = (".",)) -> None:
    """Remove what killed writers left under `folder`: temp files, and the files `<item>.parquet`
    (in each of `subdirs`) of items without a done-file, so a resumed run redoes them whole."""
    clean_temps(folder)
    done = done_items(folder)
    pending = set(items) - done
    for sub in subdirs:
        for part in (folder / sub).glob("*.parquet"):
            if part.stem in pending:
                part.unlink(missing_ok=True)


def resumable(folder: Path, item: str, work: Callable[[], dict]) -> dict:
    """The record of a resumable item: read back from its done-file when it is complete, else made
    by `work()` and committed. A record that lists `files` (relative to `folder`) is complete only
    while they all exist, so a deleted intermediate file is rebuilt. A record read back gets
    `skipped: True`."""
    path = done_path(folder, item)
    if path.is_file():
        record = json.loads(path.read_text())
        if all((folder / f).is_file() for f in record.get("files", ())):
            record["skipped"] = True
            return record
    record = work()
    commit(folder, item, record)
    return record
