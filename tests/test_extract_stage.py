"""The extract stage over every format: hang protection in process(), bad inputs through a whole
run (each a removed record with its reason, memory bounded), and every shared corpus at once."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, corpus
from curate import readers
from curate.stages.extract import ExtractConfig, ExtractStage
from curate.worker import quarantine

PAGE = "<html><head><title>P</title></head><body><article>" + "<p>Real words in a paragraph of the page.</p>" * 20 + "</article></body></html>"


def unit_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([readers.unit(**r) for r in rows], schema=readers.UNIT_SCHEMA)


class Recording(ExtractStage):
    def __init__(self, config):
        super().__init__(config)
        self.beats: list[str | None] = []
        self.heartbeat = self.beats.append


def test_heartbeat_before_costly_parses_and_poisoned_origins():
    stage = Recording(ExtractConfig())
    stage.poisoned = {"hang.html"}
    batch = unit_table([
        {"origin": "a.jsonl#1", "fmt": "jsonl", "payload": b'{"text": "json doc"}'},
        {"origin": "p.html", "fmt": "html", "payload": PAGE.encode()},
        {"origin": "hang.html", "fmt": "html", "payload": PAGE.encode()},
        {"origin": "x.tex", "fmt": "latex", "payload": b"not a packed tree"},
        {"origin": "m.py", "fmt": "code", "payload": b"print('hi')\n"},
    ])
    batch, _ = quarantine(stage, batch, units=True)  # what the worker does before process()
    result = stage.process(batch)
    assert stage.beats == ["p.html", "x.tex"]  # costly formats only; the poisoned one is not tried
    removed = dict(zip(result.removed.column("origin").to_pylist(), result.removed.column("reason").to_pylist()))
    assert removed["hang.html"] == "extract:error:timeout"
    assert removed["x.tex"].startswith("extract:error:latex:")  # a parser exception is a reason, not a crash
    kept = {r["origin"]: r for r in result.kept.to_pylist()}
    assert set(kept) == {"a.jsonl#1", "p.html", "m.py"}
    assert (kept["p.html"]["source"], kept["m.py"]["source"], kept["m.py"]["lang"]) == ("web", "code", "code:python")
    assert result.kept.num_rows + result.removed.num_rows == batch.num_rows


def test_each_extension_has_one_reader():
    owners = Counter(ext for r in readers.loaded().values() for ext in r.extensions)
    assert [ext for ext, n in owners.items() if n > 1] == []  # e.g. .wat: WebAssembly, not WARC


def test_sources_config_overrides_reader_default():
    stage = ExtractStage(ExtractConfig(sources={"docs/*": "text"}))
    result = stage.process(unit_table([{"origin": "docs/p.html", "fmt": "html", "payload": PAGE.encode()}]))
    assert result.kept.column("source").to_pylist() == ["text"]


# -- bad inputs --------------------------------------------------------------------------------------
def gzip_bomb(decompressed_mb: int) -> bytes:
    """A multi-member gzip of zeros: small on disk, `decompressed_mb` MB when read."""
    member = gzip.compress(bytes(16 << 20), compresslevel=1)
    return member * (decompressed_mb // 16)


def make_bad_corpus(root: Path) -> dict[str, str | None]:
    """Write the bad inputs; returns origin -> expected removal reason (None: kept)."""
    root.mkdir(parents=True)
    whole = gzip.compress(PAGE.encode() * 200)
    (root / "cut.html.gz").write_bytes(whole[: len(whole) // 2])
    (root / "invalid-utf8.html").write_bytes(PAGE.encode().replace(b"Real words", b"Real \xff\xfe words"))
    (root / "binary.html").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 64)
    for name in ("empty.html", "empty.py", "empty.tex", "empty.warc", "empty.txt"):
        (root / name).write_bytes(b"")
    (root / "oneline.html").write_bytes(b"<html><body><p>" + b"word " * (10 << 20) + b"</p></body></html>")
    (root / "oneline.js").write_bytes(b"var a=" + b"1+" * (25 << 20) + b"1;")
    (root / "deep.html").write_bytes(b"<html><body>" + b"<div>" * 20000 + b"<p>deep text</p>" + b"</div>" * 20000 + b"</body></html>")
    paper = root / "recursive-paper"
    paper.mkdir()
    (paper / "main.tex").write_text("\\documentclass{article}\n\\begin{document}\n\\input{a}\n\\end{document}\n")
    (paper / "a.tex").write_text("\\section{A}\n\\input{b}\n")
    (paper / "b.tex").write_text("\\section{B}\n\\input{a}\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("ms.tex", b"\\documentclass{article}\\begin{document}Hi\\end{document}"), ("../escape.tex", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (root / "evil.tar.gz").write_bytes(buf.getvalue())
    (root / "bomb.html.gz").write_bytes(gzip_bomb(2048))
    (root / "good.html").write_text(PAGE)
    return {
        "cut.html.gz": "extract:error:truncated", "invalid-utf8.html": None, "binary.html": "extract:html:binary",
        "empty.html": "extract:empty", "empty.py": "extract:empty", "empty.tex": "extract:empty",
        "empty.txt": "extract:empty", "oneline.html": "extract:html:too_large",
        "oneline.js": "extract:code:too_large", "deep.html": "extract:html:too_deep",
        "recursive-paper": "extract:latex:no_text", "evil.tar.gz": "extract:latex:unsafe_path",
        "bomb.html.gz": "extract:error:too_large", "good.html": None,
    }


def run_config(tmp_path: Path) -> Path:
    """A shared 2-core box can take minutes over one big page (python-docs contents.html: 49k
    elements, 5 s of CPU): no false hang detection here."""
    path = tmp_path / "extract.yaml"
    path.write_text("stages: [extract]\nrun:\n  doc_timeout_s: 900\n")
    return path


def outcomes(stage_dir: Path) -> dict[str, str | None]:
    out = {}
    for p in sorted(stage_dir.glob("part-*.parquet")):
        out.update((o, None) for o in pq.read_table(p, columns=["origin"]).column("origin").to_pylist())
    for p in sorted(stage_dir.glob("removed/part-*.parquet")):
        t = pq.read_table(p, columns=["origin", "reason"])
        out.update(zip(t.column("origin").to_pylist(), t.column("reason").to_pylist()))
    return out


@pytest.mark.slow
def test_bad_inputs_each_leave_a_reason(cli, tmp_path):
    expected = make_bad_corpus(tmp_path / "bad")
    out = tmp_path / "out"
    res = cli("stage", "extract", "--input", tmp_path / "bad", "--output", out, "--workers", "2",
              "--config", run_config(tmp_path))
    assert res.exit_code == 0, res.output
    stats = json.loads((out / "extract" / "_stats.json").read_text())
    assert stats["docs_in"] == stats["docs_out"] + sum(stats["removed"].values())
    got = outcomes(out / "extract")
    for origin, reason in expected.items():
        assert got[origin] == reason, (origin, got[origin])
    assert got["empty.warc"] == "extract:empty"  # no record, but the file is in the ledger


BOUNDED = """
import resource, sys
from pathlib import Path
from curate import discover
from curate.worker import ShardTask, input_tables
from curate.stages.extract import ExtractConfig, ExtractStage
from curate.worker import quarantine
root = Path(sys.argv[1])
stage = ExtractStage(ExtractConfig())
task = ShardTask("part-00000", input_root=str(root), files=discover.discover(root))
n = 0
for batch in input_tables(task, 2000, 32 << 20):
    r = stage.process(batch)
    n += r.kept.num_rows + r.removed.num_rows
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10)
"""


@pytest.mark.slow
def test_bad_inputs_memory_is_bounded(tmp_path):
    """Reading and extracting a 2 GB gzip bomb, 50 MB single lines and the rest stays within a
    few hundred MB: every reader caps what it reads, whatever the file claims."""
    make_bad_corpus(tmp_path / "bad")
    proc = subprocess.run([sys.executable, "-c", BOUNDED, str(tmp_path / "bad")], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    docs, peak_mb = map(int, proc.stdout.split())
    assert docs >= 15
    assert peak_mb < 1024, peak_mb  # a 50 MB line is held a few times over (bytes, str, Arrow); far under the 4 GB bound


# -- every shared corpus in one run ------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.corpora
@pytest.mark.timeout(1800)  # 2-3 minutes on a quiet 2-core box; far more on a shared, loaded one
def test_all_corpora_in_one_run(cli, tmp_path):
    out = tmp_path / "out"
    res = cli("stage", "extract", "--input", corpus(), "--output", out, "--workers", "2",
              "--config", run_config(tmp_path))
    assert res.exit_code == 0, res.output
    stats = json.loads((out / "extract" / "_stats.json").read_text())
    assert stats["docs_in"] == stats["docs_out"] + sum(stats["removed"].values())
    assert not any(r.startswith("extract:error:unknown_format") for r in stats["removed"])
    sources: Counter = Counter()
    escopete = []
    for p in sorted((out / "extract").glob("part-*.parquet")):
        t = pq.read_table(p, columns=["origin", "source", "url", "text"])
        sources.update(t.column("source").to_pylist())
        escopete += [o for o, u in zip(t.column("origin").to_pylist(), t.column("url").to_pylist())
                     if u == "https://an.wikipedia.org/wiki/Escopete"]
    assert all(sources[s] > 0 for s in ("web", "code", "academic", "text")), sources
    assert sources["web"] > 900 and sources["code"] > 800 and sources["academic"] > 400
    # the Common Crawl page, from the WARC and from the WET
    assert sorted(o.split("#")[0] for o in escopete) == ["web/warc/whirlwind__whirlwind.warc.gz",
                                                          "web/warc/whirlwind__whirlwind.warc.wet.gz"]
    assert stats["removed"].get("extract:skip:hidden", 0) >= 125  # linguist's dot-files
