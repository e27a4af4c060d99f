#!/usr/bin/env bash
# geohsr run end to end on a lent GPU machine, in one device call (with .gpu-site carried; see
# scripts/gpu_site.py): the demo scene with DualSR ×4 on CUDA against the CPU (same file but for
# TF32 rounding), one worker against two, a batch of blocks against one block, bf16, the scene
# adaptation on CUDA for one minute, then the inference check of scripts/gpu_check_infer.py.
# Writes summary.json and the logs into OUT (at most 8 files come back from a device call).
# Run on the lent H200 in session 29 (327 s; benchmarks/results/gpu_h200_run_check_s29.json).
#
#   bash scripts/gpu_run_check.sh "$OUT" [cuda]        # there
#   bash scripts/gpu_run_check.sh /tmp/gpurc cpu        # here, to check the script (slow; METHOD=bicubic
#       SITE=.gpu-site/site-3.11.tar.xz PYTHON=... for a quick check with another interpreter)
set -u
OUT=${1:?usage: gpu_run_check.sh OUT [device]}
DEV=${2:-cuda}
mkdir -p "$OUT" /tmp/site /tmp/gpurc
SITE=${SITE:-.gpu-site/site.tar.xz}
M=${METHOD:-dualsr}
if [ -f "$SITE" ]; then
  tar -xJf "$SITE" -C /tmp/site || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PROJ_DATA=/tmp/site/rasterio/proj_data
fi
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
demo=geohsr/data/enmap_potsdam_demo.tif
log="$OUT/run.log"
: >"$log"
step() {  # name, then the command: its wall time and exit code go to the summary
  local name=$1; shift
  local t0=$EPOCHREALTIME
  echo "== $name: $*" >>"$log"
  "$@" >>"$log" 2>&1
  local rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"s\": $(awk "BEGIN{print $EPOCHREALTIME - $t0}")}" | tee -a "$OUT/steps.jsonl"
}
step imports $PY -c "import rasterio, pyproj, rioxarray, dask, torch; print(rasterio.__version__, pyproj.__version__, torch.cuda.is_available())"
step cpu_dualsr $PY -m geohsr run $demo -s 4 -m $M --device cpu -o /tmp/gpurc/cpu.tif --progress none --overwrite
step dev_dualsr_w1 $PY -m geohsr run $demo -s 4 -m $M --device "$DEV" --workers 1 -o /tmp/gpurc/w1.tif --progress none --overwrite
step dev_dualsr_w2 $PY -m geohsr run $demo -s 4 -m $M --device "$DEV" --workers 2 -o /tmp/gpurc/w2.tif --progress none --overwrite
step dev_dualsr_batch1 $PY -m geohsr run $demo -s 4 -m $M --device "$DEV" --batch 1 --block-size 64 -o /tmp/gpurc/b1.tif --progress none --overwrite
step dev_dualsr_bf16 $PY -m geohsr run $demo -s 4 -m $M --device "$DEV" --precision bf16 -o /tmp/gpurc/bf16.tif --progress none --overwrite
step dev_adapt_1min $PY -m geohsr run $demo -s 4 -m $M --device "$DEV" --adapt 1 -o /tmp/gpurc/adapt.tif --progress none --overwrite
$PY - "$OUT" <<'EOF' >>"$log" 2>&1
import json, sys
import numpy as np
import rasterio

from geohsr.metrics import psnr

out = sys.argv[1]
ref = rasterio.open("/tmp/gpurc/cpu.tif")
a = ref.read().astype(np.float64)
peak = float(np.nanmax(np.abs(a))) or 1.0
res = {"reference": "--device cpu", "peak": peak}
for name in ("w1", "w2", "b1", "bf16", "adapt"):
    try:
        d = rasterio.open(f"/tmp/gpurc/{name}.tif")
    except Exception as e:
        res[name] = {"error": repr(e)}
        continue
    b = d.read().astype(np.float64)
    p = psnr(a, b, peak)
    res[name] = {"same_grid": d.crs == ref.crs and d.transform == ref.transform and d.shape == ref.shape,
                 "same_nodata_and_tags": d.nodata == ref.nodata and d.tags(1) == ref.tags(1),
                 "psnr_vs_cpu": None if p == float("inf") else p,
                 "identical": bool(np.array_equal(a, b, equal_nan=True))}
open(f"{out}/summary.json", "w").write(json.dumps(res, indent=1) + "\n")
print(json.dumps(res))
EOF
tail -c 2000 "$OUT/summary.json" 2>/dev/null
if [ "$DEV" != cpu ]; then
  timeout 150 $PY scripts/gpu_check_infer.py "$OUT" --side 48 --batch 8 >"$OUT/check.log" 2>&1
fi
