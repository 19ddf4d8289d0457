#!/usr/bin/env bash
# Translation-robustness figures of README.md ("Translation robustness"), on Kodak24.
#   bash benchmarks/robustness_kodak.sh [KODAK_DIR] [OUT_DIR]
# Needs the peers for the last two columns of metrics: pip install ".[peers]".
set -euo pipefail
KODAK=${1:-../shared/data/kodak24}
OUT=${2:-benchmarks/results/robustness}
# 12 images, 192x192 centre crops; crop-shift sweeps 0..16 px; rank flips at 1 px (136 triplets per
# image from 17 distortions of 4 kinds); shift-to-distortion ratios at 1 px (noise 0.02, blur 0.5)
invariant-lpips robustness --images "$KODAK" --out "$OUT/main" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 \
    --metrics stlpips-vgg,dists,gap-lin-blur,lpips-vgg,paper,gap-lin,gap-lin-l2,gap-lin-aps
# the two remaining variants, as a second run (same settings)
invariant-lpips robustness --images "$KODAK" --out "$OUT/more" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics paper-blur,gap-lin-blur5
# the pooled-statistics variants, one run each (same settings)
invariant-lpips robustness --images "$KODAK" --out "$OUT/stats" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics gap-lin-ms
invariant-lpips robustness --images "$KODAK" --out "$OUT/stats_sq" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics gap-lin-ms-sq
# texture-blur (texture terms only), same settings
invariant-lpips robustness --images "$KODAK" --out "$OUT/texture" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics texture-blur
# structure-blur (the previous default), same settings
invariant-lpips robustness --images "$KODAK" --out "$OUT/structure" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics structure-blur
# registered-blur (a default of 2026-12-03), same settings
invariant-lpips robustness --images "$KODAK" --out "$OUT/registered" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics registered-blur
# registered-lab-blur (a default of 2026-12-04), same settings
invariant-lpips robustness --images "$KODAK" --out "$OUT/registered_lab" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics registered-lab-blur
# registered-lab-q4-blur (the scoring variant), same settings
invariant-lpips robustness --images "$KODAK" --out "$OUT/registered_lab_q4" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics registered-lab-q4-blur
# registered-lab-rq3-blur (only the relu1_2 registered term pooled, q 3), same settings
invariant-lpips robustness --images "$KODAK" --out "$OUT/registered_lab_rq3" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics registered-lab-rq3-blur
# registered-lab-lq4-blur (only the CIELab registered term pooled, q 4), same settings
invariant-lpips robustness --images "$KODAK" --out "$OUT/registered_lab_lq4" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics registered-lab-lq4-blur
# registered-lab-lq3-subpixel-blur (the default: CIELab pooled with q 3, registering to sub-pixel precision), same settings
invariant-lpips robustness --images "$KODAK" --out "$OUT/registered_lab_lq3_subpixel" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics registered-lab-lq3-subpixel-blur
# registered-lab-lq3-similarity-blur (the default also registering rotation and zoom; not adopted), same settings
invariant-lpips robustness --images "$KODAK" --out "$OUT/registered_lab_lq3_similarity" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics registered-lab-lq3-similarity-blur
# the default and the peers in one run (README's protocol columns), same settings
invariant-lpips robustness --images "$KODAK" --out "$OUT/default_and_peers" --size 192 --max-images 12 \
    --shifts 0..16 --protocols crop --flip-shifts 1 --metrics registered-lab-lq3-subpixel-blur,stlpips-vgg,dists,lpips-vgg
# period and ripple of the crop-shift sweep d(x, T_k x), k = 0..16, come from the same run
python benchmarks/robustness_table.py "$OUT/main/robustness.json" "$OUT/more/robustness.json" \
    "$OUT/stats/robustness.json" "$OUT/stats_sq/robustness.json" "$OUT/texture/robustness.json" \
    "$OUT/structure/robustness.json" "$OUT/registered/robustness.json" "$OUT/registered_lab/robustness.json" \
    "$OUT/registered_lab_q4/robustness.json" "$OUT/registered_lab_rq3/robustness.json" \
    "$OUT/registered_lab_lq4/robustness.json" "$OUT/registered_lab_lq3_subpixel/robustness.json" | tee "$OUT/table.md"
