"""Records with a text field, from the files a user names as training data or evaluation sets.

The quality classifier's training data (`curate train-quality --positive/--negative/--labelled`)
and decontamination's evaluation sets are read here. Unlike the extract readers, which turn
every unit into a kept or removed document, these are read whole before any work starts, and a
bad record is the user's mistake: one UserError naming the file and line (exit 2).

A path is a file or a folder of them (hidden and `_`-prefixed entries skipped, so a stage's
`_done/` and `_stats.json` are not read); a curate stage output folder (one holding
`part-*.parquet`) means its kept documents: name `OUT/<stage>/removed` for the removed ones.
Files are opened through curate/readers/compression.py, so compression (gzip, zstd, bz2) is
found from the bytes, whatever the name says.

  JSON lines  .jsonl .ndjson .json      one JSON object per line; its keys are the fields
  Parquet     .parquet .pq              one record per row; its columns are the fields
  text        .txt .text .md .markdown  one record with the field `text`: per file, or with
              .rst (and .gz of them)    `lines=True` per non-empty line (a list of questions)

In a folder read per file (`lines=False`), a file with another name that looks like text is
one record too and a binary one is skipped (counted in `Records.skipped`); read per line, an
unknown name is an error (a CSV file is not a list of items).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import UserError
from curate.readers.compression import open_binary, read_bytes
from curate.readers.decode import decode

JSON_LINES = (".jsonl", ".ndjson", ".json")
PARQUET = (".parquet", ".pq")
TEXT = (".txt", ".text", ".md", ".markdown", ".rst")
COMPRESSED = (".gz", ".zst", ".bz2")
FORMATS = ("JSON lines (.jsonl, .ndjson, .json), Parquet (.parquet, .pq) or text (.txt, .text, .md); "
           "JSON lines and text may be compressed (.gz, .zst, .bz2)")
MAX_TEXT_FILE_BYTES = 256 << 20  # one text file read as one record


@dataclass
class Records:
    """The values of each field, one list entry per record, and where each record came from."""

    fields: dict[str, list] = field(default_factory=dict)
    # The record's line (JSON lines, text) or row (Parquet) number, 1-based; inside a folder
    # prefixed with the file's path in it: "sub/items.jsonl:3".
    keys: list[str] = field(default_factory=list)
    skipped: int = 0  # binary files of a folder, skipped

    def __len__(self) -> int:
        return len(self.keys)

    def extend(self, other: "Records") -> None:
        """Append `other`'s records; a field one side lacks is None there."""
        for name in other.fields:
            self.fields.setdefault(name, [None] * len(self))
        for name, values in self.fields.items():
            values.extend(other.fields.get(name) or [None] * len(other))
        self.keys.extend(other.keys)
        self.skipped += other.skipped


def format_of(path: Path) -> str | None:
    """`jsonl`, `parquet` or `text` by the file's name (a compression suffix aside); None: unknown."""
    name = path.name.lower()
    base = next((name[: -len(s)] for s in COMPRESSED if name.endswith(s)), name)
    if name.endswith(PARQUET):  # Parquet compresses inside the file
        return "parquet"
    return next((kind for kind, suffixes in (("jsonl", JSON_LINES), ("text", TEXT)) if base.endswith(suffixes)), None)


def files(path: Path, what: str = "input") -> list[Path]:
    """The files a path names: itself, a stage output's kept parts, or a folder's visible files."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"{what} not found: {path}")
    parts = sorted(path.glob("part-*.parquet"))
    if parts:
        return parts
    return sorted(p for p in path.rglob("*") if p.is_file()
                  and not any(s.startswith((".", "_")) for s in p.relative_to(path).parts))


def read(path: Path, fields: Sequence[str] | None = ("text",), *, optional: Sequence[str] = (),
         lines: bool = False, what: str = "input") -> Records:
    """Every record under `path` (a file or a folder): the `fields` each must have (None: every
    field any record has, absent ones None), and the `optional` ones where present (else None).
    `what` names the data in error messages ("training data", "evaluation set")."""
    path = Path(path)
    single = path.is_file()
    out = Records()
    for f in files(path, what):
        try:
            got = _read_file(f, fields, optional, lines, what, alone=single)
        except (OSError, EOFError) as e:
            raise UserError(f"{f}: cannot read: {e}") from None
        if not single:
            prefix = f.relative_to(path).as_posix()
            got.keys = [f"{prefix}:{k}" for k in got.keys]
        out.extend(got)
    if fields is not None:  # a folder without records still has the fields asked for
        for name in (*fields, *optional):
            out.fields.setdefault(name, [])
    return out


def _read_file(path: Path, fields, optional, lines: bool, what: str, alone: bool) -> Records:
    kind = format_of(path)
    if kind == "jsonl":
        return _json_lines(path, fields, optional)
    if kind == "parquet":
        return _parquet(path, fields, optional)
    if kind is None and lines:
        raise UserError(f"{path}: unknown {what} format; use {FORMATS}")
    wanted = [name for name in (fields or ()) if name != "text"]
    if wanted:
        raise UserError(f"{path}: a text file holds only text, not {wanted[0]!r}; give JSON lines or Parquet")
    if lines:
        numbered = [(n, line.rstrip("\r")) for n, line in enumerate(_text(path).split("\n"), 1) if line.strip()]
        return Records({"text": [t for _, t in numbered]}, [str(n) for n, _ in numbered])
    from curate.readers.text import looks_like_text

    data = read_bytes(path, MAX_TEXT_FILE_BYTES)
    if not looks_like_text(data[:4096]):
        if alone:
            raise UserError(f"{path}: not a text, JSON lines or Parquet file")
        return Records(skipped=1)
    return Records({"text": [decode(data)[0]]}, ["1"])


def _text(path: Path) -> str:
    return decode(read_bytes(path))[0]  # not splitlines() later: JSON strings may hold U+2028


def _json_lines(path: Path, fields, optional) -> Records:
    rows: list[dict] = []
    keys: list[str] = []
    with open_binary(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise UserError(f"{path}:{n}: bad JSON ({e})") from None
            if not isinstance(record, dict):
                raise UserError(f"{path}:{n}: a line must be a JSON object")
            for name in fields or ():
                if name not in record:
                    expected = " and ".join(map(repr, fields))
                    raise UserError(f"{path}:{n}: no field {name!r} (expected a JSON object with {expected})")
            rows.append(record)
            keys.append(str(n))
    if fields is None:
        names = list(dict.fromkeys(name for record in rows for name in record))
    else:
        names = [*fields, *(name for name in optional if name not in fields)]
    return Records({name: [record.get(name) for record in rows] for name in names}, keys)


def _parquet(path: Path, fields, optional) -> Records:
    with open_binary(path) as f:
        try:
            pf = pq.ParquetFile(f)
            names = pf.schema_arrow.names
        except (pa.ArrowException, OSError) as e:
            raise UserError(f"{path}: not a readable Parquet file ({e})") from None
        missing = [name for name in fields or () if name not in names]
        if missing:
            raise UserError(f"{path}: no field {missing[0]!r} (its columns: {', '.join(names)})")
        wanted = names if fields is None else [*fields, *(n for n in optional if n in names and n not in fields)]
        table = pf.read(columns=list(dict.fromkeys(wanted)))
    values = {name: table.column(name).to_pylist() for name in table.column_names}
    for name in optional:
        values.setdefault(name, [None] * table.num_rows)
    return Records(values, [str(n) for n in range(1, table.num_rows + 1)])
