#!/usr/bin/env python
"""Check the RAID reconstruction's guesses against pixel statistics the RAID authors published.

    python studies/raid_recipe_check.py --stimuli data/raid_kodak --published rmse_consecutive_results.csv \\
        --out studies/results/raid_recipe_check

``--published``: ``rmse_consecutive_results.csv`` of the public repository
``DavidAgost-Beltran/rotation_perception_experiment`` (a companion of RAID by its authors; columns
``Transformation, Image_ID, Level_A, Level_B, RMSE``): for each of the 24 RAID images, the RMSE (pixels in
[0, 1]) between consecutive levels of ``gaussian_noise`` and ``rotation`` of the *real* RAID stimuli. It is
not bundled here (not ours to redistribute); fetch it from that repository.

The same RMSE of the reconstructed stimuli (``benchmarks/raid_table.py`` or ``invariant-lpips make-dataset
raid-kodak`` builds them) tests two guesses of the recipe (docs/raid.md) without any human data:

* **noise fields**: with independent draws per level, RMSE(L, L+1) grows like sqrt(var_L + var_L+1);
  with one noise field scaled per level it would grow like sqrt(var_L+1) - sqrt(var_L), many times
  smaller. The published values tell which.
* **rotation**: spacing, centre and interpolation set RMSE(L, L+1) per image (content dependent), and the
  first step (level 1 is not interpolated) stands out.

Reported per distortion and level pair: the mean over images of both RMSEs and their ratio, the Pearson
correlation over images, and the largest per-image relative difference. Evaluation of the reconstruction
only; nothing here looks at a metric or at human responses.
"""
from __future__ import annotations

import argparse
import csv
import json
import os

import numpy as np
from PIL import Image

KINDS = {"gaussian_noise": "gn", "rotation": "rot"}


def load(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stimuli", default="data/raid_kodak")
    ap.add_argument("--published", required=True, help="rmse_consecutive_results.csv (see above)")
    ap.add_argument("--out", default="studies/results/raid_recipe_check")
    args = ap.parse_args(argv)

    published = {}
    with open(args.published, newline="") as f:
        for row in csv.DictReader(f):
            kind = KINDS.get(row["Transformation"])
            if kind:
                published[(kind, int(row["Image_ID"]), int(row["Level_A"]), int(row["Level_B"]))] = float(row["RMSE"])
    if not published:
        raise SystemExit(f"{args.published}: no gaussian_noise or rotation rows (columns Transformation, Image_ID, "
                         "Level_A, Level_B, RMSE expected)")

    ours = {}
    for (kind, image, a, b) in sorted(published):
        pa = os.path.join(args.stimuli, f"{kind}_img_{image:02d}_level_{a:02d}.png")
        pb = os.path.join(args.stimuli, f"{kind}_img_{image:02d}_level_{b:02d}.png")
        if not (os.path.isfile(pa) and os.path.isfile(pb)):
            continue
        ours[(kind, image, a, b)] = float(np.sqrt(np.mean((load(pa) - load(pb)) ** 2)))
    if not ours:
        raise SystemExit(f"{args.stimuli}: no stimuli (build them with `invariant-lpips make-dataset raid-kodak "
                         f"--refs KODAK --out {args.stimuli}`)")

    rows = []
    for kind in ("gn", "rot"):
        for a in range(1, 10):
            keys = [k for k in ours if k[0] == kind and k[2] == a and k[3] == a + 1]
            if not keys:
                continue
            o = np.array([ours[k] for k in keys])
            p = np.array([published[k] for k in keys])
            r = float(np.corrcoef(o, p)[0, 1]) if len(keys) > 2 else float("nan")
            rows.append({"distortion": kind, "levels": f"{a}-{a + 1}", "images": len(keys),
                         "ours": float(o.mean()), "published": float(p.mean()), "ratio": float(o.mean() / p.mean()),
                         "pearson_over_images": r, "max_rel_diff": float(np.max(np.abs(o / p - 1)))})

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"rows": rows, "pairs": {"|".join(map(str, k)): [ours[k], published[k]] for k in ours}}, f, indent=1)
    lines = ["| distortion | levels | images | RMSE here | RMSE published | ratio | r over images | max rel. diff |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['distortion']} | {r['levels']} | {r['images']} | {r['ours']:.4f} | {r['published']:.4f} | "
                     f"{r['ratio']:.3f} | {r['pearson_over_images']:.3f} | {100 * r['max_rel_diff']:.1f}% |")
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
