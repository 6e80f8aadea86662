"""One shard of one stage, read and written: the I/O around a stage's pure `process`.

Output files are written atomically and the done-file holding the shard's counters is committed
last (curate.storage), so a shard with a done-file is complete and a killed shard leaves nothing
that a re-run would mistake for output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate import readers, schema, storage
from curate.discover import InputFile
from curate.stage import Stage, merge_counters, reason_counts


@dataclass
class ShardTask:
    name: str  # part-00000
    input_root: storage.PathLike | None = None  # extract: the corpus root
    files: list[InputFile] = field(default_factory=list)  # extract: the files of this shard
    input_path: storage.PathLike | None = None  # later stages: one Parquet part of the previous stage
    label: str | None = None  # how done-files and errors name input_path (relative to OUT when inside it)

    def __post_init__(self):
        if self.input_root is not None:
            self.input_root = storage.location(self.input_root)
        if self.input_path is not None:
            self.input_path = storage.location(self.input_path)

    @property
    def size(self) -> int:
        """Bytes stored: what the executor orders shards by."""
        if self.input_path is not None:
            return self.input_path.stat().st_size
        return sum(f.size for f in self.files)

    def describe(self) -> str:
        if self.input_path is not None:
            return self.label or str(self.input_path)
        names = [f.rel for f in self.files[:3]]
        more = f" and {len(self.files) - 3} more" if len(self.files) > 3 else ""
        return ", ".join(names) + more


class TableWriter:
    """Streams tables into one Parquet file, staged (curate.storage); `close` puts it in place."""

    def __init__(self, path: Path, fallback: pa.Schema):
        self.path = path
        self.staged: storage.Staged | None = None
        self.fallback = fallback
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0
        self.bytes = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0 and self.writer is not None:
            return
        if self.writer is None:
            self._open(table.schema)
        elif table.schema != self.writer.schema:
            table = table.select(self.writer.schema.names).cast(self.writer.schema)
        if table.num_rows:
            self.writer.write_table(table)
            self.rows += table.num_rows
            self.bytes += schema.text_bytes(table)

    def _open(self, table_schema: pa.Schema) -> None:
        self.staged = storage.Staged(self.path)
        self.writer = pq.ParquetWriter(self.staged.local, table_schema, **storage.PARQUET_OPTS)

    def close(self) -> None:
        if self.writer is None:
            self._open(self.fallback)
        self.writer.close()
        self.staged.commit()


def _unit_tables(task: ShardTask, batch_docs: int, batch_bytes: int) -> Iterator[pa.Table]:
    """Units of an extract shard, in file order, batched by count and bytes."""
    pending: list[dict] = []
    size = 0

    def flush():
        nonlocal pending, size
        table = pa.Table.from_pylist(pending, schema=readers.UNIT_SCHEMA)
        pending, size = [], 0
        return table

    root = task.input_root
    for f in task.files:
        origin = readers.origin_of(f.rel)  # '#' and '%' escaped: '#' starts a record number
        if f.skip is not None:
            units: Iterator = iter([readers.unit(origin, f.format or "", error=f.skip)])
        else:
            units = _guarded(readers.get(f.format).read(root / f.rel, origin), f)
        for u in units:
            if isinstance(u, pa.Table):
                if pending:
                    yield flush()
                yield u
                continue
            pending.append(u)
            size += len(u["payload"] or b"")
            if len(pending) >= batch_docs or size >= batch_bytes:
                yield flush()
    if pending:
        yield flush()


def _guarded(units: Iterator, f: InputFile) -> Iterator:
    """A reader that raises mid-file still leaves a removed record, never a crashed shard; a file
    that holds no record at all (an empty JSONL, a WARC of nothing) is recorded as empty."""
    n = 0
    try:
        for u in units:
            n += 1
            yield u
    except Exception as exc:
        origin = readers.origin_of(f.rel)
        yield readers.unit(f"{origin}#error{n + 1}", f.format or "", error=f"extract:error:read:{type(exc).__name__}")
        n += 1
    if n == 0:
        yield readers.unit(readers.origin_of(f.rel), f.format or "", error="extract:empty")


def _parquet_tables(task: ShardTask, batch_docs: int) -> Iterator[pa.Table]:
    pf = storage.parquet_file(task.input_path)
    for batch in pf.iter_batches(batch_size=batch_docs):
        yield schema.conform(pa.Table.from_batches([batch]))


def input_tables(task: ShardTask, batch_docs: int, batch_bytes: int) -> Iterator[pa.Table]:
    if task.input_path is None:
        yield from _unit_tables(task, batch_docs, batch_bytes)
        return
    empty = True
    for table in _parquet_tables(task, batch_docs):
        empty = False
        yield table
    if empty:  # an empty part still goes through the stage once, to get the stage's columns:
        # the stages after it read them (an empty file with the input's schema lacks them)
        yield schema.conform(storage.read_schema(task.input_path).empty_table())


def quarantine(stage: Stage, batch: pa.Table, units: bool) -> tuple[pa.Table, pa.Table | None]:
    """Take out documents that hung a worker before (their origin is in `stage.poisoned`).

    Extract units get the timeout as their read error, so extract records them like any other
    unreadable unit; documents of later stages come back as removed rows.
    """
    if not stage.poisoned or batch.num_rows == 0:
        return batch, None
    import pyarrow.compute as pc

    hit = pc.is_in(batch.column("origin"), pa.array(sorted(stage.poisoned), pa.string()))
    if not pc.any(hit).as_py():
        return batch, None
    reason = f"{stage.name}:error:timeout"
    if units:
        error = pc.if_else(hit, pa.scalar(reason), batch.column("error"))
        return batch.set_column(batch.column_names.index("error"), "error", error), None
    return batch.filter(pc.invert(hit)), schema.with_reason(batch.filter(hit), reason)


def run_shard(stage: Stage, task: ShardTask, out_dir: storage.PathLike, batch_docs: int, batch_bytes: int,
              on_batch: Callable[[int], None] | None = None) -> dict:
    """Process one shard end to end and write its kept, removed and done files. `on_batch` hears
    the documents done so far after every batch (the executor's progress within a shard)."""
    out_dir = storage.location(out_dir)
    if task.input_path is not None:
        fallback = schema.conform(storage.read_schema(task.input_path).empty_table()).schema
    else:
        fallback = schema.BASE
    for folder in (out_dir, out_dir / "removed", out_dir / storage.DONE):  # left by a failed attempt
        storage.clean_temps(folder, task.name)
    kept_w = TableWriter(out_dir / f"{task.name}.parquet", fallback)
    removed_w = TableWriter(out_dir / "removed" / f"{task.name}.parquet", fallback.append(pa.field(schema.REASON, pa.string())))
    counters: dict = {"docs_in": 0, "docs_out": 0, "removed": {}, "bytes_in": 0, "bytes_out": 0, "process_seconds": 0.0}
    extra: dict = {}
    stage.start_shard(task.name)
    for batch in input_tables(task, batch_docs, batch_bytes):
        counters["docs_in"] += batch.num_rows
        counters["bytes_in"] += stage.input_bytes(batch)
        batch, timed_out = quarantine(stage, batch, units=task.input_path is None)
        t0 = time.perf_counter()
        result = stage.process(batch)
        counters["process_seconds"] += time.perf_counter() - t0
        stage.heartbeat(None)  # between batches the worker is not stuck on any document
        kept = schema.conform(result.kept)
        removed = schema.conform(result.removed)
        if timed_out is not None:
            removed = pa.concat_tables([removed, schema.conform(timed_out)], promote_options="default")
        kept_w.write(kept)
        removed_w.write(removed)
        counters["docs_out"] += kept.num_rows
        counters["bytes_out"] += schema.text_bytes(kept)
        counters["removed"] = merge_counters(counters["removed"], reason_counts(removed))
        extra = merge_counters(extra, result.counters)
        if on_batch is not None:
            on_batch(counters["docs_in"])
    kept_w.close()
    removed_w.close()
    counters["counters"] = extra
    counters["shard"] = task.name
    counters["input"] = task.describe()
    lost = counters["docs_in"] - counters["docs_out"] - sum(counters["removed"].values())
    if lost:
        raise RuntimeError(f"{stage.name} lost {lost} documents in {task.name}: the stage broke the ledger law")
    storage.commit(out_dir, task.name, counters)
    return counters
