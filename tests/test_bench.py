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
