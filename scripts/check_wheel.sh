#!/usr/bin/env bash
# The package installs whole: build the wheel, install it in a fresh venv (the CPU torch wheel
# first), then super-resolve the bundled demo scene with DualSR from another folder, so that
# nothing can come from the repository (weights, catalogue and sample scene are package data).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m pip install -q build
.venv/bin/python -m build --wheel --outdir "$work/dist" . >/dev/null
rm -rf build
$PYTHON -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/python" -m pip install -q torch==2.13.0
"$work/venv/bin/python" -m pip install -q "$work"/dist/*.whl
cd "$work"
demo=$("$work/venv/bin/python" -c 'import geohsr; print(geohsr.demo_scene_path())')
case "$demo" in "$work/venv/"*) ;; *) echo "the demo scene is not package data: $demo"; exit 1;; esac
"$work/venv/bin/geohsr" run "$demo" -s 4 -m dualsr -o "$work/out.tif" -q
"$work/venv/bin/geohsr" info "$work/out.tif" | head -2
echo "wheel check passed: installed from $(ls "$work"/dist), ran DualSR x4 from $work"
