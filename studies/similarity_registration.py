#!/usr/bin/env python
"""Similarity registration (a variant's ``similarity=True``): where it acts and what it does to the distance.

    python studies/similarity_registration.py --parts kadid  --refs ../shared/data/kodak24 --out studies/results/similarity_registration
    python studies/similarity_registration.py --parts graded --refs ../shared/data/kodak24 --out studies/results/similarity_registration

* **kadid**: the KADID-style dev pairs (``make-dataset --types 1,3,4,6,8,9,11,13,16,18,20,22,24 --size 512x384``,
  rebuilt in memory with its seeds): the pairs in which ``estimate_similarity`` finds a rotation or zoom, and
  the time it takes per pair. Only those pairs' distances can differ from the variant without it, so this
  bounds what the option can do to the KADID selection (rule 1 of docs/similarity-registration-2026-12-08.md).
* **graded** (rule 6; no human data): each photo turned by 2, 4, .., 18 degrees and zoomed by 1, 2, .., 9%
  about its centre (bilinear, the whole photo, then the central ``--size`` px), against the unchanged
  central crop; also faint Gaussian noise (sigma 0.02 on [0, 1], the arrangement probe's ``noise0.02``).
  Per photo: the Spearman correlation of the distance with the angle (the zoom), and the largest change's
  distance over the noise's; for the variant with and without similarity registration (same weights).

Nothing human is read. Writes ``OUT/kadid.json`` / ``OUT/graded.json`` and ``OUT/summary.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
from scipy.stats import spearmanr

import invariant_lpips as il
from invariant_lpips.benchmarks.environment import environment, machine_line
from invariant_lpips.data.io import list_images, load_image
from invariant_lpips.distortions.tensor import gaussian_noise
from invariant_lpips.features.similarity import estimate_similarity, similarity_warp
from invariant_lpips.features.variants import get_variant

ANGLES = [2.0 * k for k in range(1, 10)]
ZOOMS = [1.0 + 0.01 * k for k in range(1, 10)]
VARIANT = "registered-lab-lq3-similarity-blur"


def kadid(args) -> dict:
    from invariant_lpips.distortions.dataset import fit_crop, load_uint8
    from invariant_lpips.distortions.kadid import distort

    types = [int(t) for t in args.types.split(",")]
    found, pairs, seconds = [], 0, 0.0
    for r, path in enumerate(list_images(args.refs), start=1):
        ref = fit_crop(load_uint8(path), (512, 384))
        seed = int(np.random.SeedSequence([0, r]).generate_state(1)[0])
        x0 = torch.from_numpy(ref).permute(2, 0, 1)[None].float() / 255
        ys = torch.cat([torch.from_numpy(distort(ref, t, lv, seed=seed)).permute(2, 0, 1)[None].float() / 255
                        for t in types for lv in range(1, 6)])
        t0 = time.perf_counter()
        est = estimate_similarity(x0, ys)
        seconds += time.perf_counter() - t0
        for k, (t, lv) in enumerate((t, lv) for t in types for lv in range(1, 6)):
            pairs += 1
            if bool((est[k] != 0).any()):
                found.append({"ref": r, "type": t, "level": lv, "angle": float(est[k, 0]),
                              "zoom": math.exp(float(est[k, 1]))})
        print(f"reference {r}: {len(found)} of {pairs} pairs turned or zoomed", flush=True)
    return {"pairs": pairs, "found": found, "ms_per_pair": 1000 * seconds / pairs}


def graded(args) -> dict:
    torch.manual_seed(0)
    base = get_variant(VARIANT)
    metrics = {name: il.InvariantLPIPS(base.with_(name=name, similarity=sim)).eval()
               for name, sim in ((base.name, True), (base.name + "-without", False))}
    rows = []
    for i, path in enumerate(list_images(args.refs)[: args.limit or None]):
        photo = load_image(path)                                     # (1, 3, H, W) in [0, 1]
        h, w = photo.shape[-2:]
        s = min(args.size, h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2

        def crop(x):
            return x[..., y0:y0 + s, x0:x0 + s]

        ref = crop(photo)
        one = torch.ones(1)
        turned = torch.cat([crop(similarity_warp(photo, one * a, one * 0.0, mode="bilinear")) for a in ANGLES])
        zoomed = torch.cat([crop(similarity_warp(photo, one * 0.0, one * math.log(z), mode="bilinear")) for z in ZOOMS])
        noisy = gaussian_noise(0.02, seed=i)(ref)
        row = {"photo": path.name}
        for name, m in metrics.items():
            with torch.no_grad():
                d = {k: m(ref, v, normalize=True).view(-1).tolist()
                     for k, v in (("rot", turned), ("zoom", zoomed), ("noise", noisy))}
            row[name] = {**d,
                         "rot_srcc": float(spearmanr(ANGLES, d["rot"])[0]),
                         "zoom_srcc": float(spearmanr(ZOOMS, d["zoom"])[0]),
                         "rot18/noise": d["rot"][-1] / d["noise"][0],
                         "zoom9/noise": d["zoom"][-1] / d["noise"][0],
                         "rot2/rot18": d["rot"][0] / d["rot"][-1],
                         "zoom1/zoom9": d["zoom"][0] / d["zoom"][-1]}
        rows.append(row)
        print(path.name, {n: {k: round(v, 3) for k, v in row[n].items() if "/" in k or "srcc" in k}
                          for n in metrics}, flush=True)
    summary = {}
    for name in metrics:
        r = [row[name] for row in rows]
        summary[name] = {"min rot_srcc": min(x["rot_srcc"] for x in r), "min zoom_srcc": min(x["zoom_srcc"] for x in r),
                         "min rot18/noise": min(x["rot18/noise"] for x in r),
                         "min zoom9/noise": min(x["zoom9/noise"] for x in r),
                         "median rot2/rot18": float(np.median([x["rot2/rot18"] for x in r])),
                         "median zoom1/zoom9": float(np.median([x["zoom1/zoom9"] for x in r]))}
    return {"size": args.size, "angles": ANGLES, "zooms": ZOOMS, "rows": rows, "summary": summary}


def markdown(out: str) -> str:
    lines = ["# Similarity registration: where it acts, what it does (no human data)", ""]
    kp, gp = os.path.join(out, "kadid.json"), os.path.join(out, "graded.json")
    if os.path.isfile(kp):
        k = json.load(open(kp))
        lines += [f"KADID-style dev pairs: a rotation or zoom found in {len(k['found'])} of {k['pairs']} pairs "
                  f"({k['ms_per_pair']:.0f} ms per pair for the estimate). Machine: {machine_line(k['environment'])}.", ""]
        for f in k["found"]:
            lines.append(f"- reference {f['ref']}, type {f['type']}, level {f['level']}: {f['angle']:.2f} degrees, "
                         f"zoom {f['zoom']:.4f}")
        lines.append("")
    if os.path.isfile(gp):
        g = json.load(open(gp))
        keys = list(next(iter(g["summary"].values())))
        lines += [f"Graded, not blind: {len(g['rows'])} photos, central {g['size']} px, turned 2-18 degrees and zoomed "
                  f"1-9% about the centre; noise sigma 0.02. Machine: {machine_line(g['environment'])}.", "",
                  "| variant | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
        for name, s in g["summary"].items():
            lines.append(f"| {name} | " + " | ".join(f"{s[k]:.3f}" for k in keys) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--refs", required=True, help="folder of the Kodak photographs")
    ap.add_argument("--out", default="studies/results/similarity_registration")
    ap.add_argument("--parts", default="kadid,graded")
    ap.add_argument("--types", default="1,3,4,6,8,9,11,13,16,18,20,22,24")
    ap.add_argument("--size", type=int, default=256, help="graded: the central crop (px)")
    ap.add_argument("--limit", type=int, default=0, help="graded: only the first N photos")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    env = environment("cpu")
    for part in [p.strip() for p in args.parts.split(",") if p.strip()]:
        res = {"kadid": kadid, "graded": graded}[part](args)
        res["environment"] = env
        with open(os.path.join(args.out, f"{part}.json"), "w") as f:
            json.dump(res, f, indent=1)
    md = markdown(args.out)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
