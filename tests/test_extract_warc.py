"""WARC/ARC/WET reading: record kinds and their reasons, transfer codings, broken files."""

from __future__ import annotations

import gzip
import io
import zlib
from collections import Counter
from pathlib import Path

import brotli
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from conftest import corpus
from curate import readers
from curate.readers import warc
from curate.stages.extract import ExtractConfig, ExtractStage

PAGE = ("<html><head><title>T {n}</title></head><body><article>"
        + "<p>Record {n} carries a paragraph of real looking text, long enough to be main content here.</p>" * 6
        + "</article></body></html>")


def page(n: int) -> bytes:
    return PAGE.format(n=n).encode()


def chunked(data: bytes, size: int = 100) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size]) for i in range(0, len(data), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def response(w: WARCWriter, uri: str, body: bytes, status: str = "200 OK", ctype: str = "text/html; charset=utf-8",
             **headers: str) -> None:
    http = StatusAndHeaders(status, [("Content-Type", ctype)] + [(k.replace("_", "-"), v) for k, v in headers.items()],
                            protocol="HTTP/1.1")
    w.write_record(w.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http))


def build_warc(gz: bool = True) -> bytes:
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=gz)
    w.write_record(w.create_warcinfo_record("test.warc", {"software": "pytest"}))
    response(w, "http://a.example/plain", page(1))
    response(w, "http://a.example/chunked", chunked(page(2)), Transfer_Encoding="chunked")
    response(w, "http://a.example/gzip", gzip.compress(page(3)), Content_Encoding="gzip")
    response(w, "http://a.example/brotli", brotli.compress(page(4)), Content_Encoding="br")
    response(w, "http://a.example/both", chunked(zlib.compress(page(5))), Transfer_Encoding="chunked",
             Content_Encoding="deflate")
    response(w, "http://a.example/missing", b"not found", status="404 Not Found")
    response(w, "http://a.example/img.png", b"\x89PNG\r\n\x1a\n" + bytes(100), ctype="image/png")
    response(w, "http://a.example/badgzip", b"\x1f\x8bnot really gzip", Content_Encoding="gzip")
    req = StatusAndHeaders("GET / HTTP/1.1", [("Host", "a.example")], is_http_request=True)
    w.write_record(w.create_warc_record("http://a.example/", "request", http_headers=req))
    w.write_record(w.create_warc_record("http://a.example/plain", "revisit", payload=io.BytesIO(b""),
                                        http_headers=StatusAndHeaders("200 OK", [], protocol="HTTP/1.1")))
    w.write_record(w.create_warc_record("http://a.example/meta", "metadata", payload=io.BytesIO(b"via: x"),
                                        warc_content_type="application/warc-fields"))
    w.write_record(w.create_warc_record("http://a.example/res", "resource", payload=io.BytesIO(page(6)),
                                        warc_content_type="text/html"))
    w.write_record(w.create_warc_record("http://a.example/wet", "conversion",
                                        payload=io.BytesIO("Plain text of the page, already extracted. Ünïcode.".encode()),
                                        warc_content_type="text/plain"))
    return buf.getvalue()


EXPECTED = [None, None, None, None, None, "extract:warc:status_404", "extract:warc:non_html",
            "extract:warc:bad_encoding", "extract:warc:request", "extract:warc:revisit", "extract:warc:metadata",
            None, None]


def units(path: Path) -> list[dict]:
    return list(warc.read(path, path.name))


def extract(rows: list[dict]):
    return ExtractStage(ExtractConfig()).process(pa.Table.from_pylist(rows, schema=readers.UNIT_SCHEMA))


@pytest.mark.parametrize("gz", [True, False])
def test_every_record_is_a_unit_with_its_reason(tmp_path, gz):
    path = tmp_path / ("a.warc.gz" if gz else "a.warc")
    path.write_bytes(build_warc(gz))
    us = units(path)
    assert [u["error"] for u in us] == ["extract:warc:warcinfo"] + EXPECTED
    assert [u["origin"] for u in us] == [f"{path.name}#{i}" for i in range(1, 15)]
    assert us[1]["url"] == "http://a.example/plain"
    result = extract(us)
    assert result.kept.num_rows == 7 and result.kept.num_rows + result.removed.num_rows == 14
    kept = result.kept.to_pylist()
    for n, row in zip([1, 2, 3, 4, 5, 6], kept):  # chunked, gzip, brotli, deflate: all decoded
        assert f"Record {n} carries" in row["text"] and row["source"] == "web"
        assert orjson.loads(row["meta"])["title"] == f"T {n}"
    wet = kept[-1]
    assert wet["text"].startswith("Plain text of the page") and wet["url"] == "http://a.example/wet"
    assert orjson.loads(wet["meta"])["warc_type"] == "conversion"


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("keep", [0.3, 0.45, 0.6, 0.75, 0.9])
def test_truncated_file_keeps_what_was_read(tmp_path, gz, keep):
    data = build_warc(gz)
    path = tmp_path / ("cut.warc.gz" if gz else "cut.warc")
    path.write_bytes(data[: int(len(data) * keep)])
    us = units(path)
    assert us[-1]["error"] == "extract:warc:truncated"
    whole = ["extract:warc:warcinfo"] + EXPECTED
    complete = us[:-2]  # the records before the cut are read as in the whole file
    assert [u["error"] for u in complete] == whole[: len(complete)]
    assert [u["origin"] for u in us] == [f"{path.name}#{i}" for i in range(1, len(us) + 1)]


@pytest.mark.parametrize("keep", [0.5, 0.8, 0.999])
def test_a_file_compressed_as_one_gzip_member_and_cut_is_truncated(tmp_path, keep):
    """The cut check reads on from the last record's gzip member; where the whole file is one
    member (record offsets are not member offsets) it reads from the top."""
    data = gzip.compress(build_warc(gz=False))
    path = tmp_path / "one-member.warc.gz"
    path.write_bytes(data[: int(len(data) * keep)])
    assert units(path)[-1]["error"] == "extract:warc:truncated"


def test_wrong_content_length_resynchronises(tmp_path):
    data = build_warc(gz=False)
    # the second record claims 40 bytes fewer than it has: FastWARC stops, warcio skips ahead
    marker = data.index(b"WARC-Target-URI: http://a.example/plain")
    record = data.rfind(b"WARC/1.", 0, marker)
    cl = data.index(b"Content-Length: ", record, data.index(b"\r\n\r\n", marker))
    end = data.index(b"\r\n", cl)
    broken = data[:cl] + b"Content-Length: %d" % (int(data[cl + 16:end]) - 40) + data[end:]
    path = tmp_path / "wrong.warc"
    path.write_bytes(broken)
    us = units(path)
    assert len(us) >= 12  # the records after the broken one are still read
    assert any(u["url"] == "http://a.example/res" and u["error"] is None for u in us)


def test_dechunk_and_decode_body():
    assert warc.dechunk(chunked(b"hello world", 3)) == b"hello world"
    assert warc.dechunk(b"<html>not chunked") is None
    assert warc.decode_body(b"<html>already decoded", None, "gzip") == b"<html>already decoded"
    with pytest.raises(warc.BodyError):
        warc.decode_body(b"garbage", None, "gzip")
    bomb = zlib.compress(bytes(warc.MAX_RECORD_BYTES + 10))
    with pytest.raises(warc.BodyError, match="too_large"):
        warc.decode_body(bomb, None, "deflate")


def test_split_http_is_lenient():
    status, headers, body = warc.split_http(b"HTTPX/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>x")
    assert (status, headers["content-type"], body) == (200, "text/html", b"<p>x")
    assert warc.split_http(b"HTTP/1.0 302 \r\nLocation: /x\r\n\r\n")[0] == 302
    assert warc.split_http(b"garbage without status")[0] == 0


@pytest.mark.corpora
def test_common_crawl_warc_and_wet_yield_the_page():
    root = corpus("web", "warc")
    cfg = ExtractConfig()
    for name in ("whirlwind__whirlwind.warc.gz", "whirlwind__whirlwind.warc.wet.gz"):
        us = units(root / name)
        pages = [u for u in us if u["error"] is None]
        assert len(pages) == 1 and pages[0]["url"] == "https://an.wikipedia.org/wiki/Escopete"
        doc = warc.parse(pages[0], cfg)
        assert "Escopete" in doc.text and len(doc.text.split()) > 50
    wat = units(root / "whirlwind__whirlwind.warc.wat.gz")
    assert [u["error"] for u in wat] == ["extract:warc:warcinfo", "extract:warc:metadata"]


@pytest.mark.corpora
def test_all_warc_test_files_read_without_crashing():
    root = corpus("web", "warc")
    reasons: Counter = Counter()
    for path in sorted(root.iterdir()):
        assert readers.by_extension(path.name) is not None or warc.looks_like_warc(
            gzip.open(path).read(16) if path.read_bytes()[:2] == b"\x1f\x8b" else path.read_bytes()[:16]), path.name
        for u in units(path):
            reasons[u["error"]] += 1
    assert reasons[None] >= 200  # pages and WET texts
    assert reasons["extract:warc:revisit"] > 100 and reasons["extract:warc:request"] > 400
    assert reasons["extract:warc:status_404"] >= 3
    # LZ4 (FastWARC), ARC (warcio) and the brotli transfer test each give their pages
    for name, least in (("resiliparse__tests__data__warcfile.warc.lz4", 16), ("warcio__test__data__example.arc.gz", 1),
                        ("ukwa__warc-indexer__src__test__resources__compression__transfer_compression_brotli.warc.gz", 1)):
        assert sum(u["error"] is None for u in units(root / name)) >= least, name


# -- issue 19 item 1: WARC 1.0 writers bracket the target URI ------------------------------------
def test_urls_lose_angle_brackets_and_whitespace(tmp_path):
    assert readers.clean_url(" <https://a.example/x> ") == "https://a.example/x"
    assert readers.clean_url("<  http://b.example/ >") == "http://b.example/"
    assert readers.clean_url("http://c.example/<y>") == "http://c.example/<y>"  # only a bracketing pair
    assert readers.clean_url("  ") is None and readers.clean_url("<>") is None and readers.clean_url(None) is None
    buf = io.BytesIO()
    response(WARCWriter(buf, gzip=False), "<http://a.example/bracketed>", page(1))
    path = tmp_path / "old.warc"
    path.write_bytes(buf.getvalue())
    assert units(path)[0]["url"] == "http://a.example/bracketed"
    # every reader's URL, whatever the format: a JSONL `url` too
    jsonl = [readers.unit("a.jsonl#1", "jsonl", b'{"text": "some words here", "url": " <https://j.example/p> "}')]
    assert extract(jsonl).kept.column("url").to_pylist() == ["https://j.example/p"]


@pytest.mark.corpora
def test_bracketed_target_uris_of_a_real_warc_match_the_domain_block_list(tmp_path):
    from curate.filters.url import UrlConfig, UrlFilter
    from curate.text.stats import Docs

    kept = extract(units(corpus("web", "warc") / "dolma__sample-0000.warc.gz")).kept
    urls = kept.column("url").to_pylist()
    assert urls and not any(u.startswith("<") or u.endswith(">") for u in urls)
    blocked = tmp_path / "domains.txt"
    blocked.write_text("semanticscholar.org\n")
    hits = UrlFilter(UrlConfig(domains=blocked)).measure(Docs(kept.column("text"), url=kept.column("url")))
    assert hits["url_domain_hits"].sum() == sum("semanticscholar.org/" in u for u in urls) > 0


# -- issue 19 item 2: ARC records have no record id; none is made up -----------------------------
@pytest.mark.corpora
def test_arc_records_read_the_same_every_time():
    path = corpus("web", "warc") / "warcio__test__data__example.arc"
    first, second = units(path), units(path)
    assert first == second
    assert not any("warc_record_id" in orjson.loads(u["meta"]) for u in first)  # warcio invents one per read
    warc_units = units(corpus("web", "warc") / "warcio__test__data__example.warc")
    assert all(orjson.loads(u["meta"])["warc_record_id"].startswith("<urn:uuid:") for u in warc_units)


@pytest.mark.corpora
@pytest.mark.slow
def test_two_runs_over_warc_and_arc_give_identical_data_files(tmp_path, cli):
    src = tmp_path / "in"
    src.mkdir()
    root = corpus("web", "warc")
    for name in ("warcio__test__data__example.arc", "pywb__sample_archive__warcs__example.arc.gz",
                 "dolma__sample-0000.warc.gz", "whirlwind__whirlwind.warc.gz", "whirlwind__whirlwind.warc.wet.gz",
                 "warcio__test__data__example.warc.gz"):
        (src / name).write_bytes((root / name).read_bytes())
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text("stages: [extract, langid, quality, dedup]\nrun:\n  shard_mb: 0.05\n")
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        result = cli("run", "--config", cfg, "--input", src, "--output", out, "--workers", "2")
        assert result.exit_code == 0, result.output

    def data_files(out: Path) -> dict[str, bytes]:
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.parquet"))
                if "_work" not in p.relative_to(out).parts}

    a, b = data_files(outs[0]), data_files(outs[1])
    assert len(a) > 8 and a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []
    arc = pa.concat_tables([pq.read_table(outs[0] / p) for p in a if p.startswith("extract/part-")])
    assert any(o.startswith("warcio__test__data__example.arc#") for o in arc.column("origin").to_pylist())
