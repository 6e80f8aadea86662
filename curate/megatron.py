"""Token shards: Megatron-LM indexed datasets (MMIDIDX v1) and the curate shards manifest.

The tokenize stage writes, and `curate train` reads, tokens in the indexed-dataset format of
Megatron-LM (`megatron/core/datasets/indexed_dataset.py`), so the same shards also feed
Megatron-LM and the trainers that read its format. A dataset is two files sharing a prefix:

    PREFIX.bin   the tokens of every sequence, concatenated, in the index's dtype
    PREFIX.idx   little-endian, in this order:
                   9 bytes    magic b"MMIDIDX\\x00\\x00"
                   <Q         version, 1
                   <B         dtype code (DTYPE_CODES)
                   <Q         sequence count S
                   <Q         document count D, the length of document_indices
                   int32[S]   sequence_lengths, in tokens
                   int64[S]   sequence_pointers, byte offset of each sequence in the .bin
                   int64[D]   document_indices, index of each document's first sequence, then S

curate stores one sequence per document (document_indices = 0, 1, ..., S) and ends every
document with the tokenizer's EOS, so packed training windows still show document boundaries.

A shards directory lists its datasets in manifest.json (see `Manifest`), one bucket after the
other in curriculum order, with paths relative to the directory.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from curate import storage
from curate.errors import UserError

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
# Megatron-LM's DType codes.
DTYPE_CODES = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.int8),
    3: np.dtype(np.int16),
    4: np.dtype(np.int32),
    5: np.dtype(np.int64),
    6: np.dtype(np.float64),
    7: np.dtype(np.float32),
    8: np.dtype(np.uint16),
}
_CODE_OF = {dtype: code for code, dtype in DTYPE_CODES.items()}
_HEADER = struct.Struct("<9sQBQQ")  # magic, version, dtype code, sequence count, document count

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "curate-shards"
MANIFEST_VERSION = 1


class ShardFormatError(UserError, ValueError):
    """Shards on disk that do not match the format: a bad manifest, a corrupt or missing .idx.
    A UserError, so the CLI reports it as one line with exit code 2."""


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest dtype for token ids, with Megatron-LM's threshold: uint16 below 65500."""
    return np.dtype(np.uint16) if vocab_size < 65500 else np.dtype(np.int32)


class IndexedDatasetWriter:
    """Streams documents into PREFIX.bin and PREFIX.idx.

    Tokens go to a staged .bin (curate.storage) as they arrive; only the lengths stay in memory.
    `close()` writes the index and puts both files in place (.bin first, so an .idx is never
    visible without its .bin); `abort()`, or leaving a `with` block by an exception, drops them.

        with IndexedDatasetWriter("out/shards/easy/part-00000", np.uint16) as w:
            w.add_document(ids)                      # one document
            w.add_documents(flat_ids, doc_lengths)   # many at once, no Python loop
    """

    def __init__(self, prefix: str | Path, dtype):
        self.dtype = np.dtype(dtype)
        if self.dtype not in _CODE_OF:
            raise ValueError(f"dtype {self.dtype} has no MMIDIDX code; use one of {sorted(map(str, _CODE_OF))}")
        prefix = storage.location(prefix)
        self.bin_path = prefix.with_name(prefix.name + ".bin")
        self.idx_path = prefix.with_name(prefix.name + ".idx")
        self._staged_bin = storage.Staged(self.bin_path)
        self._staged_idx = storage.Staged(self.idx_path)
        self._bin = open(self._staged_bin.local, "wb")
        self._lengths: list[np.ndarray] = []
        self.documents = 0
        self.tokens = 0

    def add_document(self, tokens) -> None:
        tokens = np.asarray(tokens)
        self.add_documents(tokens, [tokens.size])

    def add_documents(self, tokens, lengths) -> None:
        """Append len(lengths) documents: tokens is their concatenation, flat."""
        tokens = np.asarray(tokens).reshape(-1)
        lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if lengths.size and (lengths.min() < 0 or lengths.max() > np.iinfo(np.int32).max):
            raise ValueError("document lengths must be in [0, 2**31)")
        if int(lengths.sum()) != tokens.size:
            raise ValueError(f"lengths sum to {int(lengths.sum())} but {tokens.size} tokens were given")
        if tokens.size and tokens.dtype != self.dtype and self.dtype.kind in "iu":
            info = np.iinfo(self.dtype)
            if tokens.min() < info.min or tokens.max() > info.max:
                raise ValueError(f"token ids outside the range of {self.dtype}")
        tokens.astype(self.dtype, copy=False).tofile(self._bin)
        self._lengths.append(lengths.astype(np.int32))
        self.documents += lengths.size
        self.tokens += tokens.size

    def close(self) -> None:
        self._bin.close()
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int32)
        pointers = np.zeros(lengths.size, dtype=np.int64)
        np.cumsum(lengths[:-1], dtype=np.int64, out=pointers[1:])
        pointers *= self.dtype.itemsize
        document_indices = np.arange(lengths.size + 1, dtype=np.int64)
        with open(self._staged_idx.local, "wb") as f:
            f.write(_HEADER.pack(MAGIC, VERSION, _CODE_OF[self.dtype], lengths.size, document_indices.size))
            f.write(lengths.astype("<i4").tobytes())
            f.write(pointers.astype("<i8").tobytes())
            f.write(document_indices.astype("<i8").tobytes())
        self._staged_bin.commit()
        self._staged_idx.commit()

    def abort(self) -> None:
        self._bin.close()
        self._staged_bin.abort()
        self._staged_idx.abort()

    def __enter__(self) -> IndexedDatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class IndexedDataset:
    """A memory-mapped PREFIX.bin/.idx pair; `ds[i]` is document i as a read-only array view."""

    def __init__(self, prefix: str | Path):
        prefix = Path(prefix)
        idx_path = prefix.with_name(prefix.name + ".idx")
        bin_path = prefix.with_name(prefix.name + ".bin")
        for path in (idx_path, bin_path):
            if not path.is_file():
                raise ShardFormatError(f"{path}: missing")
        index = np.memmap(idx_path, dtype=np.uint8, mode="r")
        if index.size < _HEADER.size:
            raise ShardFormatError(f"{idx_path}: too short for an MMIDIDX header")
        magic, version, code, count, doc_count = _HEADER.unpack(bytes(index[: _HEADER.size]))
        if magic != MAGIC:
            raise ShardFormatError(f"{idx_path}: not an MMIDIDX index (magic {magic!r})")
        if version != VERSION:
            raise ShardFormatError(f"{idx_path}: MMIDIDX version {version}, only {VERSION} is supported")
        if code not in DTYPE_CODES:
            raise ShardFormatError(f"{idx_path}: unknown dtype code {code}")
        expected = _HEADER.size + 12 * count + 8 * doc_count
        if index.size != expected:
            raise ShardFormatError(f"{idx_path}: {index.size} bytes, the header implies {expected}")
        self.dtype = DTYPE_CODES[code]
        offset = _HEADER.size
        self.lengths = np.frombuffer(index, dtype="<i4", count=count, offset=offset)
        self.pointers = np.frombuffer(index, dtype="<i8", count=count, offset=offset + 4 * count)
        self.document_indices = np.frombuffer(index, dtype="<i8", count=doc_count, offset=offset + 12 * count)
        bin_bytes = bin_path.stat().st_size
        end = int(self.pointers[-1]) + int(self.lengths[-1]) * self.dtype.itemsize if count else 0
        if end > bin_bytes:
            raise ShardFormatError(f"{bin_path}: {bin_bytes} bytes, the index points up to byte {end}")
        # np.memmap refuses empty files; an empty dataset has an empty .bin.
        if bin_bytes:
            self.tokens = np.memmap(bin_path, dtype=self.dtype, mode="r", shape=(bin_bytes // self.dtype.itemsize,))
        else:
            self.tokens = np.zeros(0, dtype=self.dtype)
        self._starts = self.pointers // self.dtype.itemsize
        self.prefix = prefix

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum(dtype=np.int64))

    def __len__(self) -> int:
        return self.lengths.size

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"document {i} out of range for {len(self)} documents")
        start = int(self._starts[i])
        return self.tokens[start : start + int(self.lengths[i])]


# --- the manifest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardFile:
    """One part of a bucket: paths relative to the shards directory."""

    bin: str  # easy/part-00000.bin
    idx: str  # easy/part-00000.idx
    parquet: str  # easy/part-00000.parquet: the same documents with their ids
    documents: int
    tokens: int

    @property
    def prefix(self) -> str:
        """The path without .bin, as IndexedDataset and Megatron-LM's data_path take it."""
        return self.bin[: -len(".bin")]


@dataclass(frozen=True)
class Bucket:
    name: str
    documents: int
    tokens: int
    files: tuple[ShardFile, ...]


@dataclass(frozen=True)
class Manifest:
    """What manifest.json says: the tokenizer, the token dtype and the buckets in curriculum order.

        {"format": "curate-shards", "version": 1,
         "tokenizer": {"path": "tokenizer.json", "sha256": "..."},
         "dtype": "uint16", "eos_id": 0, "vocab_size": 8000,
         "buckets": [{"name": "easy", "documents": 10, "tokens": 12345,
                      "files": [{"bin": "easy/part-00000.bin", "idx": "easy/part-00000.idx",
                                 "parquet": "easy/part-00000.parquet",
                                 "documents": 10, "tokens": 12345}]}, ...]}
    """

    tokenizer_path: str
    tokenizer_sha256: str
    dtype: str  # token_dtype(vocab_size).name
    eos_id: int
    vocab_size: int
    buckets: tuple[Bucket, ...]

    def bucket(self, name: str) -> Bucket | None:
        return next((b for b in self.buckets if b.name == name), None)

    def to_json(self) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "tokenizer": {"path": self.tokenizer_path, "sha256": self.tokenizer_sha256},
            "dtype": self.dtype,
            "eos_id": self.eos_id,
            "vocab_size": self.vocab_size,
            "buckets": [{**asdict(b), "files": [asdict(f) for f in b.files]} for b in self.buckets],
        }


def _get(obj, key: str, kind: type, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise ShardFormatError(f"{where}: missing key {key!r}")
    value = obj[key]
    # bool is an int in Python; a count of True is still a mistake.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ShardFormatError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    if kind is int and value < 0:
        raise ShardFormatError(f"{where}.{key}: must be >= 0, got {value}")
    return value


def _relative_path(value: str, where: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or not value:
        raise ShardFormatError(f"{where}: {value!r} must be a path inside the shards directory")
    return value


def _parse_file(obj, where: str) -> ShardFile:
    bin_path = _relative_path(_get(obj, "bin", str, where), f"{where}.bin")
    idx_path = _relative_path(_get(obj, "idx", str, where), f"{where}.idx")
    if not bin_path.endswith(".bin") or idx_path != bin_path[: -len(".bin")] + ".idx":
        raise ShardFormatError(f"{where}: bin and idx must be PREFIX.bin and PREFIX.idx, got {bin_path}, {idx_path}")
    parquet = _relative_path(_get(obj, "parquet", str, where), f"{where}.parquet")
    return ShardFile(bin_path, idx_path, parquet, _get(obj, "documents", int, where), _get(obj, "tokens", int, where))


def _parse_bucket(obj, where: str) -> Bucket:
    name = _get(obj, "name", str, where)
    files = tuple(_parse_file(f, f"{where}.files[{i}]") for i, f in enumerate(_get(obj, "files", list, where)))
    bucket = Bucket(name, _get(obj, "documents", int, where), _get(obj, "tokens", int, where), files)
    for key in ("documents", "tokens"):
        total = sum(getattr(f, key) for f in files)
        if getattr(bucket, key) != total:
            raise ShardFormatError(f"{where} ({name}): {key} is {getattr(bucket, key)} but its files add up to {total}")
    return bucket


def parse_manifest(obj, where: str = MANIFEST_NAME) -> Manifest:
    """Validate a manifest's JSON object; every mistake is one ShardFormatError line."""
    if _get(obj, "format", str, where) != MANIFEST_FORMAT:
        raise ShardFormatError(f"{where}: format is {obj['format']!r}, expected {MANIFEST_FORMAT!r}")
    if _get(obj, "version", int, where) != MANIFEST_VERSION:
        raise ShardFormatError(f"{where}: version {obj['version']}, only {MANIFEST_VERSION} is supported")
    tokenizer = _get(obj, "tokenizer", dict, where)
    vocab_size = _get(obj, "vocab_size", int, where)
    eos_id = _get(obj, "eos_id", int, where)
    dtype = _get(obj, "dtype", str, where)
    if vocab_size == 0 or eos_id >= vocab_size:
        raise ShardFormatError(f"{where}: eos_id {eos_id} must be below vocab_size {vocab_size}")
    if dtype != token_dtype(vocab_size).name:
        needed = token_dtype(vocab_size).name
        raise ShardFormatError(f"{where}: dtype {dtype!r} but vocab_size {vocab_size} needs {needed!r}")
    buckets = tuple(_parse_bucket(b, f"{where}: buckets[{i}]") for i, b in enumerate(_get(obj, "buckets", list, where)))
    names = [b.name for b in buckets]
    if len(set(names)) != len(names):
        raise ShardFormatError(f"{where}: a bucket name appears twice in {names}")
    return Manifest(
        tokenizer_path=_relative_path(_get(tokenizer, "path", str, f"{where}: tokenizer"), f"{where}: tokenizer.path"),
        tokenizer_sha256=_get(tokenizer, "sha256", str, f"{where}: tokenizer"),
        dtype=dtype,
        eos_id=eos_id,
        vocab_size=vocab_size,
        buckets=buckets,
    )


def read_manifest(shards_dir: str | Path) -> Manifest:
    """Read and validate SHARDS/manifest.json, and check that every .bin/.idx it names exists."""
    shards_dir = storage.location(shards_dir)
    path = shards_dir / MANIFEST_NAME
    if not path.is_file():
        raise ShardFormatError(f"{path}: missing (is {shards_dir} the shards/ folder the tokenize stage wrote?)")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ShardFormatError(f"{path}: not readable JSON: {e}") from None
    manifest = parse_manifest(obj, str(path))
    for bucket in manifest.buckets:
        for f in bucket.files:
            for rel in (f.bin, f.idx):
                if not (shards_dir / rel).is_file():
                    raise ShardFormatError(f"{shards_dir / rel}: listed in {path} but missing")
    return manifest


def write_manifest(shards_dir: str | Path, manifest: Manifest) -> Path:
    """Validate and write SHARDS/manifest.json atomically; returns its path."""
    obj = manifest.to_json()
    parse_manifest(obj, "manifest to write")
    path = storage.location(shards_dir) / MANIFEST_NAME
    storage.write_json(path, obj)
    return path
