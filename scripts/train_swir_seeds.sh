#!/usr/bin/env bash
# SNLSR (source only) and A-SNLSR (adapted) x4 SWIR1 -> SWIR2, compact config, seeds 1..3,
# on the real scenes of ../shared/data. Run folders: $RUNS/<method>_s<seed> (default runs/swir).
# The A-SNLSR repository's SNLSR baseline (random, frozen unmixing):
#   RUNS=runs/swir_frozen METHODS=snlsr EXTRA="--frozen-unmixing --endmember-init random" bash $0
# Oracle (SNLSR trained on the target range's HR data; HYDICE stops at 2369 nm, so not in it):
#   RUNS=runs/swir_oracle METHODS=snlsr SOURCE_ONLY= EXTRA="--source-range 1700-2500" bash $0
set -euo pipefail
D=${GEOHSR_SHARED_DATA:-../shared/data}
BATCHES=${BATCHES:-1000}
SCENES=("$D/indian_pines" "$D/jasper_ridge/jasperRidge2_R198.mat"
        "$D/enmap_potsdam/enmap_potsdam_mosaic_x160-224_y64-192.tif" "$D/aviris_abu/sandiego.mat")
# HR SWIR1 data only: HYDICE Urban covers 400-2369 nm, short of the SWIR2 grid's 2446 nm
read -r -a SOURCE_ONLY <<< "${SOURCE_ONLY-$D/aviris_abu/hydice.mat}"
SRC=(); TGT=()
for s in "${SCENES[@]}"; do SRC+=(--source "$s"); TGT+=(--target "$s"); done
for s in "${SOURCE_ONLY[@]}"; do SRC+=(--source "$s"); done
for seed in ${SEEDS:-1 2 3}; do
  for m in ${METHODS:-a-snlsr snlsr}; do
    out=${RUNS:-runs/swir}/${m}_s${seed}
    [ -f "$out/card.json" ] && continue
    resume=(); [ -f "$out/checkpoint/state.json" ] && resume=(--resume)
    geohsr train "$m" "${SRC[@]}" "${TGT[@]}" --scale 4 --out "$out" --config compact \
        --psf ../shared/data/psf/asnlsr_psf_32x32.mat \
      --batches "$BATCHES" --val-every 250 --ckpt-every 50 --seed "$seed" --threads 1 -q "${resume[@]}" ${EXTRA:-}
  done
done
