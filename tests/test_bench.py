"""scripts/bench.py --quick runs end to end and writes its figures (speed is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import corpus

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_writes_json_and_markdown(tmp_path):
    corpus("web", "jsonl")
    out, md = tmp_path / "bench.json", tmp_path / "BENCH.md"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--json", str(out),
                           "--markdown", str(md)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["quick"] and r["workers_1"]["extract"]["docs_in"] > 0 and r["workers_1"]["_run"]["peak_rss_sum_mb"] > 0
    assert r["overhead"]["ratio"] >= 1.0 and r["scaling"]["pipeline"]["speedup"] > 0
    assert r["extract_python_docs"]["pages"] == 30 and r["extract_python_docs"]["stage_vs_our_parse"] > 0
    for stage in r["stages"]:  # the same documents reach every stage whatever the worker count
        assert r["workers_1"][stage]["docs_in"] == r["workers_2"][stage]["docs_in"]
    assert "| extract |" in md.read_text()


def test_bench_scaling_smoke(tmp_path):
    """--scaling on a tiny input: dedup alone at one size on one and two workers."""
    corpus("web", "jsonl")
    out, md = tmp_path / "scaling.json", tmp_path / "SCALING.md"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--scaling", "--sizes", "900",
                           "--workers", "1,2", "--only", "dedup", "--json", str(out), "--markdown", str(md)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())["scaling"]
    one, two = r["900-w1"], r["900-w2"]
    for row in (one, two):
        d = row["stages"]["dedup"]
        assert row["docs"] == d["docs_in"] == 900 and d["docs_out"] < 900 and d["ms_per_doc"] > 0
        assert d["candidate_pairs"] > 0 and row["peak_rss_sum_mb"] > row["peak_rss_largest_mb"] > 0 and row["cpu_s"] > 0
    assert one["stages"]["dedup"]["docs_out"] == two["stages"]["dedup"]["docs_out"] and two["efficiency"] > 0
    assert "| 900 | 2 |" in md.read_text()
