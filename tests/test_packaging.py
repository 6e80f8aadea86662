"""The package builds quietly and completely: every folder declared, every data file installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

SOURCES = ("pyproject.toml", "README.md", "curate", "stages", "filters", "configs")


@pytest.mark.slow
def test_wheel_builds_without_warnings_and_holds_every_data_file(tmp_path):
    src, dist = tmp_path / "src", tmp_path / "dist"
    src.mkdir()
    for name in SOURCES:  # a copy: building writes build/ and *.egg-info beside the sources
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}))
    proc = subprocess.run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_wheel({str(dist)!r})"],
                          cwd=src, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = proc.stdout + proc.stderr
    assert "would be ignored" not in log and "absent from the `packages`" not in log, log[-3000:]
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [p for folder in ("curate/demo", "configs") for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts]
    wanted = {("curate/" + p.relative_to(ROOT).as_posix()) if p.is_relative_to(ROOT / "configs")
              else p.relative_to(ROOT).as_posix() for p in data}
    assert "curate/demo/misc/.scratch.txt" in wanted  # the demo's hidden file (extract:skip:hidden)
    assert sorted(wanted - names) == []
