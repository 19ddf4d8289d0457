#!/usr/bin/env python
"""Which term of a variant drives its RAID curves? Per-term contributions along RAID's levels.

    python studies/raid_terms.py --stimuli data/raid_kodak --images 1-12 --out studies/results/raid_terms

Evaluation only: it reads RAID's reconstructed stimuli (``benchmarks/raid_table.py`` builds them, or
``invariant-lpips make-dataset raid-kodak``), never its human data, and nothing is chosen from it. For
each image, distortion (rot, trans, scale, gn) and level L = 2..10 it computes the variant's per-term
contributions to d(level 1, level L) (``retPerLayer``: the contributions add up to the distance) and
reports, per distortion and level, the mean over images of each term's contribution and of the total,
and each term's share of the total. The question it answers: where the curve of a variant jumps at
level 2 (the first resampled rotation or zoom, or the first noise draw), which term makes the jump.

Writes ``OUT/<variant>.json`` (every value) and ``OUT/<variant>.md`` (the tables).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

import invariant_lpips as il
from invariant_lpips.benchmarks.environment import environment, machine_line

DISTORTIONS = ("rot", "trans", "scale", "gn")


def parse_images(spec: str):
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stimuli", default="data/raid_kodak")
    ap.add_argument("--images", default="1-12")
    ap.add_argument("--variant", default=None, help="default: the package's default variant")
    ap.add_argument("--out", default="studies/results/raid_terms")
    args = ap.parse_args(argv)

    metric = il.InvariantLPIPS(args.variant) if args.variant else il.InvariantLPIPS()
    name = metric.variant.name
    terms = list(metric.terms)
    images = parse_images(args.images)
    rows = []
    t0 = time.time()
    with torch.no_grad():
        for i in images:
            for dist in DISTORTIONS:
                paths = [os.path.join(args.stimuli, f"{dist}_img_{i:02d}_level_{lv:02d}.png") for lv in range(1, 11)]
                missing = [p for p in paths if not os.path.isfile(p)]
                if missing:
                    raise SystemExit(f"missing stimulus {missing[0]}: build them with `invariant-lpips make-dataset "
                                     f"raid-kodak --refs KODAK --out {args.stimuli}`")
                ref = il.load_image(paths[0])
                batch = torch.cat([il.load_image(p) for p in paths[1:]])
                total, per = metric(ref, batch, normalize=True, retPerLayer=True)
                per = torch.stack([p.flatten() for p in per], 1)
                for k, lv in enumerate(range(2, 11)):
                    rows.append({"image": i, "distortion": dist, "level": lv, "total": float(total.flatten()[k]),
                                 "terms": dict(zip(terms, map(float, per[k])))})
            print(f"image {i}: {time.time() - t0:.0f} s", file=sys.stderr)

    summary = {}
    for dist in DISTORTIONS:
        for lv in range(2, 11):
            sel = [r for r in rows if r["distortion"] == dist and r["level"] == lv]
            tot = float(np.mean([r["total"] for r in sel]))
            means = {t: float(np.mean([r["terms"][t] for r in sel])) for t in terms}
            summary[f"{dist}/{lv}"] = {"total": tot, "terms": means}

    os.makedirs(args.out, exist_ok=True)
    env = environment("cpu")
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump({"variant": name, "images": images, "terms": terms, "rows": rows, "summary": summary,
                   "environment": env}, f, indent=1)

    lines = [f"# Per-term contributions of `{name}` along RAID's levels (images {args.images}, mean over images)", "",
             "d(level 1, level L); each term's mean contribution (they add up to the total), and for levels 2 and 10 "
             "each term's share of the total. Evaluation only: nothing is chosen from it.", "",
             f"Machine: {machine_line(env)}.", ""]
    short = [t.replace("raw.", "").replace(".pool", "@p") for t in terms]
    for dist in DISTORTIONS:
        lines += [f"## {dist}", "", "| level | total | " + " | ".join(short) + " |",
                  "|---:|---:|" + "---:|" * len(terms)]
        for lv in range(2, 11):
            s = summary[f"{dist}/{lv}"]
            lines.append(f"| {lv} | {s['total']:.3g} | " + " | ".join(f"{s['terms'][t]:.3g}" for t in terms) + " |")
        for lv in (2, 10):
            s = summary[f"{dist}/{lv}"]
            lines.append(f"| share at {lv} | 100% | " + " | ".join(f"{100 * s['terms'][t] / s['total']:.0f}%" for t in terms) + " |")
        lines.append("")
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
