"""curate/readers/records.py: the one reader of training data and evaluation sets."""

from __future__ import annotations

import bz2
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from curate.errors import UserError
from curate.readers import records


def _jsonl(rows: list[dict]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def test_formats_by_name_and_compression_by_content(tmp_path):
    rows = [{"text": "one", "label": 1}, {"text": "two", "label": 0}]
    (tmp_path / "a.jsonl").write_bytes(_jsonl(rows))
    (tmp_path / "b.ndjson.zst").write_bytes(zstandard.ZstdCompressor().compress(_jsonl(rows)))
    (tmp_path / "c.json.bz2").write_bytes(bz2.compress(_jsonl(rows)))
    (tmp_path / "d.jsonl").write_bytes(gzip.compress(_jsonl(rows)))  # gzip without .gz: found by its bytes
    pq.write_table(pa.table({"text": ["p1", "p2"], "label": [1, 0], "other": [1.5, 2.5]}), tmp_path / "e.parquet")
    for name in ("a.jsonl", "b.ndjson.zst", "c.json.bz2", "d.jsonl"):
        got = records.read(tmp_path / name, ["text", "label"])
        assert got.fields == {"text": ["one", "two"], "label": [1, 0]} and got.keys == ["1", "2"], name
    got = records.read(tmp_path / "e.parquet", ["text"], optional=["label", "missing"])
    assert got.fields == {"text": ["p1", "p2"], "label": [1, 0], "missing": [None, None]}
    assert records.format_of(tmp_path / "x.TXT.gz") == "text" and records.format_of(tmp_path / "x.csv") is None


def test_text_per_file_or_per_line(tmp_path):
    (tmp_path / "q.txt").write_text("first question\n\n  \nsecond one\r\n")
    assert records.read(tmp_path / "q.txt", lines=True).fields["text"] == ["first question", "second one"]
    assert records.read(tmp_path / "q.txt", lines=True).keys == ["1", "4"]
    assert records.read(tmp_path / "q.txt").fields["text"] == ["first question\n\n  \nsecond one\r\n"]
    (tmp_path / "latin1").write_bytes("Größe und Übermaß des Ärgers".encode("latin-1"))  # no suffix: sniffed
    assert records.read(tmp_path / "latin1").fields["text"] == ["Größe und Übermaß des Ärgers"]
    (tmp_path / "items.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="unknown evaluation set format"):
        records.read(tmp_path / "items.csv", lines=True, what="evaluation set")
    with pytest.raises(UserError, match="a text file holds only text, not 'label'"):
        records.read(tmp_path / "q.txt", ["text", "label"])


def test_folders_and_stage_outputs(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.jsonl").write_bytes(_jsonl([{"text": "j1", "id": "x"}, {"text": "j2"}]))
    (folder / "b.md").write_text("a markdown page")
    (folder / "blob.bin").write_bytes(b"\x00\x01binary" * 10)  # skipped, counted
    (folder / ".hidden.txt").write_text("never read")
    (folder / "_stats.json").write_text("{}")
    got = records.read(folder, ["text"], optional=["id"])
    assert got.fields == {"text": ["a markdown page", "j1", "j2"], "id": [None, "x", None]}
    assert got.keys == ["b.md:1", "sub/a.jsonl:1", "sub/a.jsonl:2"] and got.skipped == 1
    stage = tmp_path / "quality"  # a stage output: its kept parts only
    (stage / "removed").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["kept"]}), stage / "part-00000.parquet")
    pq.write_table(pa.table({"text": ["gone"], "reason": ["quality:x"]}), stage / "removed" / "part-00000.parquet")
    assert records.read(stage).fields["text"] == ["kept"]
    assert records.read(stage / "removed").fields["text"] == ["gone"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert records.read(empty, ["text"], optional=["id"]).fields == {"text": [], "id": []}


def test_every_field_keeps_first_seen_order(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_bytes(_jsonl([{"id": 1, "q": "a", "choices": ["x"]}, {"q": "b", "answer": 3}]))
    got = records.read(path, None)
    assert list(got.fields) == ["id", "q", "choices", "answer"]
    assert got.fields["answer"] == [None, 3]


@pytest.mark.parametrize("name, content, message", [
    ("bad.jsonl", b'{"text": "ok"}\n{not json}\n', "bad.jsonl:2: bad JSON"),
    ("list.jsonl", b'["a"]\n', "list.jsonl:1: a line must be a JSON object"),
    ("missing.jsonl", b'{"label": 1}\n', "missing.jsonl:1: no field 'text' \\(expected a JSON object with 'text'\\)"),
    ("bad.parquet", b"not parquet at all", "bad.parquet: not a readable Parquet file"),
    ("cut.jsonl.gz", gzip.compress(b'{"text": "x"}\n' * 1000)[:40], "cut.jsonl.gz: cannot read"),
    ("blob.dat", b"\x00\x01\x02binary", "blob.dat: not a text, JSON lines or Parquet file"),
])
def test_errors_name_the_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError, match=message):
        records.read(tmp_path / name, ["text"])


def test_missing_path_and_parquet_column(tmp_path):
    with pytest.raises(UserError, match="training data not found"):
        records.read(tmp_path / "nowhere", what="training data")
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "t.parquet")
    with pytest.raises(UserError, match="no field 'text' \\(its columns: body\\)"):
        records.read(tmp_path / "t.parquet", ["text"])
