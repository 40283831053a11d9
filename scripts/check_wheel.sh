#!/usr/bin/env bash
# CI: the wheel a user installs works on its own. Build it, install it into a fresh venv (no
# system site-packages, no source checkout on the path), build a home from the bundled sample and
# answer a report and a noise question from it: these need the encoder weights, the noise model
# (regen/weights/quality.json) and the prompt templates, all shipped as package data.
# Usage: scripts/check_wheel.sh [PYTHON]   (about 1-3 minutes; dependencies come from pip's
# configured indexes, torch==2.13.0 the CPU build, never a CUDA one)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
ROOT=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# build from a copy, so the checkout gains no build/ or *.egg-info
mkdir "$WORK/src"
cp -r pyproject.toml README.md regen index db prompts "$WORK/src/"
"$PY" -m venv "$WORK/venv"
V="$WORK/venv/bin"
"$V/pip" install -q --upgrade pip
"$V/pip" wheel -q --no-deps -w "$WORK/dist" "$WORK/src"
"$V/pip" install -q 'torch==2.13.0'
"$V/pip" install -q "$WORK"/dist/regen-*.whl

# run from an empty folder: nothing of the checkout can be imported or read by accident
cd "$WORK"
"$V/python" -c 'import regen, sys; assert "site-packages" in regen.__file__, regen.__file__'
"$V/regen" index rebuild --data "$ROOT/data/ptbxl-sample" --folds 1-8 --home "$WORK/home" \
  >/dev/null
QUERY="$ROOT/data/ptbxl-sample/records100/01000/01469_lr"
"$V/regen" report "$QUERY" --home "$WORK/home" --no-log
"$V/regen" ask "$QUERY" "Does this ECG show baseline drift in lead II?" --home "$WORK/home" \
  --no-log
echo "check_wheel: the installed wheel answered a report and a noise question"
