"""curate.megatron: the MMIDIDX v1 writer and reader, checked byte by byte, and the manifest."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from curate.errors import UserError
from curate.megatron import (
    Bucket,
    IndexedDataset,
    IndexedDatasetWriter,
    Manifest,
    ShardFile,
    ShardFormatError,
    read_manifest,
    token_dtype,
    write_manifest,
)

DOCS = [[5, 6, 7, 0], [1, 0], [], [65535, 2, 0]]


def write(prefix, docs=DOCS, dtype=np.uint16):
    with IndexedDatasetWriter(prefix, dtype) as w:
        w.add_document(np.array(docs[0]))
        rest = docs[1:]
        w.add_documents(np.concatenate([np.array(d, dtype=np.int64) for d in rest]), [len(d) for d in rest])
    return w


def test_index_bytes_follow_the_format(tmp_path):
    write(tmp_path / "part")
    raw = (tmp_path / "part.idx").read_bytes()
    lengths = [len(d) for d in DOCS]
    assert raw[:9] == b"MMIDIDX\x00\x00"
    assert struct.unpack_from("<Q", raw, 9) == (1,)  # version
    assert raw[17] == 8  # dtype code of uint16
    assert struct.unpack_from("<QQ", raw, 18) == (4, 5)  # sequences, len(document_indices)
    assert struct.unpack_from("<4i", raw, 34) == tuple(lengths)
    assert struct.unpack_from("<4q", raw, 34 + 16) == (0, 8, 12, 12)  # byte offsets: 2 bytes a token
    assert struct.unpack_from("<5q", raw, 34 + 16 + 32) == (0, 1, 2, 3, 4)
    assert len(raw) == 34 + 16 + 32 + 40
    expected_bin = np.concatenate([np.array(d, dtype="<u2") for d in DOCS]).tobytes()
    assert (tmp_path / "part.bin").read_bytes() == expected_bin


def test_round_trip(tmp_path):
    w = write(tmp_path / "part")
    ds = IndexedDataset(tmp_path / "part")
    assert (w.documents, w.tokens) == (4, 9)
    assert len(ds) == 4 and ds.num_tokens == 9 and ds.dtype == np.uint16
    for i, doc in enumerate(DOCS):
        assert ds[i].tolist() == doc
    assert ds[-1].tolist() == DOCS[-1]
    assert ds.lengths.tolist() == [4, 2, 0, 3]
    assert ds.pointers.tolist() == [0, 8, 12, 12]
    assert ds.document_indices.tolist() == [0, 1, 2, 3, 4]
    assert not ds[0].flags.writeable  # a view of the memory map, not a copy
    with pytest.raises(IndexError):
        ds[4]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.int64, np.float64, np.float32, np.uint16])
def test_every_dtype_code(tmp_path, dtype):
    docs = [[1, 2, 3], [4]]
    with IndexedDatasetWriter(tmp_path / "p", dtype) as w:
        for d in docs:
            w.add_document(np.array(d, dtype=dtype))
    codes = {np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5, np.float64: 6, np.float32: 7, np.uint16: 8}
    assert (tmp_path / "p.idx").read_bytes()[17] == codes[dtype]
    ds = IndexedDataset(tmp_path / "p")
    assert ds.dtype == np.dtype(dtype)
    assert [ds[i].tolist() for i in range(2)] == docs
    assert ds.pointers.tolist() == [0, 3 * np.dtype(dtype).itemsize]


def test_empty_dataset(tmp_path):
    IndexedDatasetWriter(tmp_path / "empty", np.int32).close()
    ds = IndexedDataset(tmp_path / "empty")
    assert len(ds) == 0 and ds.num_tokens == 0 and ds.document_indices.tolist() == [0]


def test_writer_is_atomic(tmp_path):
    w = IndexedDatasetWriter(tmp_path / "part", np.uint16)
    w.add_document(np.arange(10))
    assert not (tmp_path / "part.bin").exists() and not (tmp_path / "part.idx").exists()
    w.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part.bin", "part.idx"]

    with pytest.raises(RuntimeError):
        with IndexedDatasetWriter(tmp_path / "broken", np.uint16) as w:
            w.add_document(np.arange(10))
            raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part.bin", "part.idx"]  # no temp left


def test_writer_refuses_bad_input(tmp_path):
    with IndexedDatasetWriter(tmp_path / "p", np.uint16) as w:
        with pytest.raises(ValueError, match="outside the range"):
            w.add_document(np.array([70000]))
        with pytest.raises(ValueError, match="lengths sum"):
            w.add_documents(np.arange(5), [2, 2])
    with pytest.raises(ValueError, match="no MMIDIDX code"):
        IndexedDatasetWriter(tmp_path / "q", np.uint32)


def test_reader_rejects_corrupt_index(tmp_path):
    write(tmp_path / "part")
    idx = tmp_path / "part.idx"
    good = idx.read_bytes()
    for bad, message in [
        (b"NOTMAGIC!" + good[9:], "not an MMIDIDX index"),
        (good[:9] + struct.pack("<Q", 2) + good[17:], "version 2"),
        (good[:17] + bytes([9]) + good[18:], "unknown dtype code"),
        (good[:-8], "the header implies"),
        (good[:20], "too short|the header implies"),
    ]:
        idx.write_bytes(bad)
        with pytest.raises(ShardFormatError, match=message):
            IndexedDataset(tmp_path / "part")
    idx.write_bytes(good)
    (tmp_path / "part.bin").write_bytes(b"\x00\x00")
    with pytest.raises(ShardFormatError, match="points up to byte 18"):
        IndexedDataset(tmp_path / "part")
    with pytest.raises(ShardFormatError, match="missing"):
        IndexedDataset(tmp_path / "nothing")


def test_token_dtype_threshold():
    assert token_dtype(257) == np.uint16
    assert token_dtype(65499) == np.uint16
    assert token_dtype(65500) == np.int32
    assert token_dtype(200_000) == np.int32


def manifest_with(tmp_path, names=("easy", "code")) -> Manifest:
    buckets = []
    for name in names:
        (tmp_path / name).mkdir(exist_ok=True)
        w = write(tmp_path / name / "part-00000")
        part = ShardFile(f"{name}/part-00000.bin", f"{name}/part-00000.idx", f"{name}/part-00000.parquet", w.documents, w.tokens)
        buckets.append(Bucket(name, w.documents, w.tokens, (part,)))
    return Manifest("tokenizer.json", "ab" * 32, "uint16", 0, 65536 - 40, tuple(buckets))


def test_manifest_round_trip(tmp_path):
    manifest = manifest_with(tmp_path)
    path = write_manifest(tmp_path, manifest)
    obj = json.loads(path.read_text())
    assert obj["format"] == "curate-shards" and obj["version"] == 1
    assert obj["tokenizer"] == {"path": "tokenizer.json", "sha256": "ab" * 32}
    assert obj["buckets"][0]["files"][0] == {"bin": "easy/part-00000.bin", "idx": "easy/part-00000.idx",
                                             "parquet": "easy/part-00000.parquet", "documents": 4, "tokens": 9}
    assert [b["name"] for b in obj["buckets"]] == ["easy", "code"]  # curriculum order kept
    back = read_manifest(tmp_path)
    assert back == manifest
    assert back.bucket("code").files[0].prefix == "code/part-00000"
    assert back.bucket("reasoning") is None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(format="other"), "format is 'other'"),
    (lambda m: m.update(version=2), "version 2"),
    (lambda m: m.pop("eos_id"), "missing key 'eos_id'"),
    (lambda m: m.update(vocab_size="8000"), "vocab_size: expected int"),
    (lambda m: m.update(vocab_size=True), "vocab_size: expected int"),
    (lambda m: m.update(dtype="int32"), "needs 'uint16'"),
    (lambda m: m.update(eos_id=70000), "below vocab_size"),
    (lambda m: m["buckets"][0].update(tokens=1), "files add up to 9"),
    (lambda m: m["buckets"][0]["files"][0].update(bin="/abs/part.bin"), "inside the shards directory"),
    (lambda m: m["buckets"][0]["files"][0].update(idx="../x.idx"), "inside the shards directory"),
    (lambda m: m["buckets"][0]["files"][0].update(idx="easy/other.idx"), "PREFIX.bin and PREFIX.idx"),
    (lambda m: m["buckets"][1].update(name="easy"), "appears twice"),
    (lambda m: m["buckets"][0]["files"][0].update(bin="easy/gone.bin", idx="easy/gone.idx"), "missing"),
])
def test_manifest_mistakes_are_one_clear_error(tmp_path, edit, message):
    write_manifest(tmp_path, manifest_with(tmp_path))
    obj = json.loads((tmp_path / "manifest.json").read_text())
    edit(obj)
    (tmp_path / "manifest.json").write_text(json.dumps(obj))
    with pytest.raises(ShardFormatError, match=message) as info:
        read_manifest(tmp_path)
    assert isinstance(info.value, UserError) and "\n" not in str(info.value)


def test_manifest_missing_or_not_json(tmp_path):
    with pytest.raises(ShardFormatError, match="manifest.json: missing"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ShardFormatError, match="not readable JSON"):
        read_manifest(tmp_path)


def test_write_manifest_validates(tmp_path):
    bad = Manifest("tokenizer.json", "x", "int32", 0, 1000, ())
    with pytest.raises(ShardFormatError, match="needs 'uint16'"):
        write_manifest(tmp_path, bad)
    assert not (tmp_path / "manifest.json").exists()
