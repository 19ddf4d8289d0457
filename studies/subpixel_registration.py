#!/usr/bin/env python
"""Sub-pixel compensation (a variant's ``subpixel=True``): what it buys the default, with and without.

    python studies/subpixel_registration.py --refs ../shared/data/kodak24 --variant registered-lab-lq4-blur \
        --out studies/results/subpixel_registration
    python studies/subpixel_registration.py --refs ../shared/data/kodak24 --parts probe --peers '' \
        --variant registered-lab-lq3-subpixel-blur --out studies/results/subpixel_registration_lq3

For a registered variant (``--variant``, default: the default variant; the 2026-12-06 run: ``registered-lab-lq4-blur``)
registering whole pixels only and with ``subpixel=True`` (same weights):

* **probe**: on 24 photo crops at half resolution (``half_pixel_view``: 2x2 means, 128 px), the distance of
  the same view displaced by half pixels ((0.5, 0), (0.5, -1.5)) and by a whole pixel, over the distance of
  faint Gaussian noise (sigma 2/255): median over photos; also for the peers (``--peers``, registry names);
* **descent** (as ``benchmarks/loss.py misaligned``, 2 crops of 64 px, 150 steps, Adam lr 0.02 from blur +
  noise): four targets displaced by half pixels (``--subpixel`` there) and by whole pixels; aligned PSNR and
  sharpness of the result.

* **kadid** (``--parts kadid``): the KADID-style dev pairs (``make-dataset --types 1,3,4,6,8,9,11,13,16,18,20,22,24
  --size 512x384``, rebuilt in memory with its seeds): how many pairs registration displaces, and how many of them
  ``subpixel`` would change (an accepted displacement with a fraction of 0.1 px or more). Only those pairs' values
  can differ, so this bounds what the option can do to the KADID selection.

Nothing human is read. Writes ``OUT/summary.json`` and ``OUT/summary.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

import invariant_lpips as il
from invariant_lpips.benchmarks.environment import environment, machine_line
from invariant_lpips.benchmarks.loss import (MISALIGNED_SHIFTS, aligned_psnr_half, crop, descend_misaligned, figures,
                                              half_pixel_view)
from invariant_lpips.data.io import list_images, load_image
from invariant_lpips.distortions.tensor import gaussian_blur
from invariant_lpips.features.variants import DEFAULT_VARIANT, get_variant
from invariant_lpips.metric.registry import build_metric


def metric(subpixel: bool, variant: str = DEFAULT_VARIANT):
    """``variant`` (same weights) registering whole pixels only or to sub-pixel precision; named as the
    registry does when that is the variant's own setting, else with ``+subpixel`` / ``+wholepixel``."""
    v = get_variant(variant)
    name = v.name if v.subpixel == subpixel else v.name + ("+subpixel" if subpixel else "+wholepixel")
    m = il.InvariantLPIPS(v.with_(name=name, subpixel=subpixel)).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def probe(m, refs):
    """``m``: images in [0, 1] -> (N,) or (N, 1, 1, 1) distances."""
    ratios = {"0.5 px": [], "(0.5, -1.5) px": [], "1 px": []}
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for r in refs:
            h, w = r.shape[-2:]
            y0, x0 = (h - 256) // 2, (w - 256) // 2
            t = half_pixel_view(r, y0, x0, 128)
            noise = float(m(t, (t + 2 / 255 * torch.randn(t.shape, generator=g)).clamp(0, 1)))
            for name, (dy, dx) in zip(ratios, [(1, 0), (1, -3), (2, 0)]):
                ratios[name].append(float(m(t, half_pixel_view(r, y0, x0, 128, dy, dx))) / noise)
    return {k: float(np.median(v)) for k, v in ratios.items()}


def descent(m, refs, half: bool, size=64, steps=150):
    rows = []
    for i, r in enumerate(refs):
        h, w = r.shape[-2:]
        if half:
            y0, x0 = (h - 2 * size) // 2, (w - 2 * size) // 2
            truth = half_pixel_view(r, y0, x0, size)
            targets = [half_pixel_view(r, y0, x0, size, dy, dx) for dy, dx in MISALIGNED_SHIFTS]
        else:
            y0, x0 = (h - size) // 2, (w - size) // 2
            truth = crop(r, y0, x0, size)
            targets = [crop(r, y0 + dy, x0 + dx, size) for dy, dx in MISALIGNED_SHIFTS]
        g = torch.Generator().manual_seed(i)
        start = (gaussian_blur(1.5)(truth) + 0.04 * torch.randn(truth.shape, generator=g)).clamp(0, 1)
        y = descend_misaligned(lambda t, z: m(t, z, normalize=True).flatten(), targets, start, steps, 0.02)
        f = figures(y, truth)
        rows.append({"aligned_psnr": aligned_psnr_half(y, r, y0, x0) if half else f["aligned_psnr"],
                     "sharpness": f["sharpness"]})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def kadid(args) -> int:
    from invariant_lpips.distortions.dataset import fit_crop, load_uint8
    from invariant_lpips.distortions.kadid import distort
    from invariant_lpips.features.registration import SUBPIXEL_MIN, estimate_shift

    v = get_variant(args.variant)
    types = [int(t) for t in args.types.split(",")]
    counts = {"pairs": 0, "displaced": 0, "changed_by_subpixel": 0}
    per_type = {t: {"displaced": 0, "changed_by_subpixel": 0} for t in types}
    changed = []
    for r, path in enumerate(list_images(args.refs), start=1):
        ref = fit_crop(load_uint8(path), (512, 384))
        seed = int(np.random.SeedSequence([0, r]).generate_state(1)[0])
        x0 = torch.from_numpy(ref).permute(2, 0, 1)[None].float() / 255
        ys = torch.cat([torch.from_numpy(distort(ref, t, lv, seed=seed)).permute(2, 0, 1)[None].float() / 255
                        for t in types for lv in range(1, 6)])
        d = estimate_shift(x0, ys, max_shift=v.max_shift)
        frac = d - torch.round(d)
        for k, (t, lv) in enumerate((t, lv) for t in types for lv in range(1, 6)):
            counts["pairs"] += 1
            if bool((d[k] != 0).any()):
                counts["displaced"] += 1
                per_type[t]["displaced"] += 1
                if bool((frac[k].abs() >= SUBPIXEL_MIN).any()):
                    counts["changed_by_subpixel"] += 1
                    per_type[t]["changed_by_subpixel"] += 1
                    changed.append({"ref": r, "type": t, "level": lv, "shift": [float(a) for a in d[k]]})
        print(f"reference {r}: {counts}", flush=True)
    env = environment("cpu")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "kadid.json"), "w") as f:
        json.dump({"counts": counts, "per_type": per_type, "changed": changed, "environment": env}, f, indent=1)
    print(json.dumps({"counts": counts, "per_type": {t: c for t, c in per_type.items() if c["displaced"]}}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--refs", required=True, help="folder of the Kodak photographs")
    ap.add_argument("--out", default="studies/results/subpixel_registration")
    ap.add_argument("--peers", default="lpips-vgg,dists,stlpips-vgg", help="probe only; '' for none")
    ap.add_argument("--parts", default="probe,descent", help="probe,descent (with and without subpixel), kadid")
    ap.add_argument("--types", default="1,3,4,6,8,9,11,13,16,18,20,22,24", help="kadid: the dev types")
    ap.add_argument("--variant", default=DEFAULT_VARIANT, help="the registered variant, with and without subpixel")
    args = ap.parse_args(argv)
    if args.parts == "kadid":
        return kadid(args)
    refs = [load_image(p) for p in list_images(args.refs)]
    results = {}
    for sub in (False, True):
        t0 = time.time()
        m = metric(sub, args.variant)
        results[m.variant.name] = {"probe": probe(lambda a, b: m(a, b, normalize=True), refs)}
        if "descent" in args.parts:
            results[m.variant.name].update(descent_half_pixel=descent(m, refs[:2], True),
                                           descent_whole_pixel=descent(m, refs[:2], False))
        results[m.variant.name]["seconds"] = time.time() - t0
        print(m.variant.name, results[m.variant.name], flush=True)
    for name in filter(None, args.peers.split(",")):
        peer = build_metric(name)
        with torch.no_grad():
            results[name] = {"probe": probe(peer, refs)}
        print(name, results[name], flush=True)
    env = environment("cpu")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"results": results, "environment": env}, f, indent=1)
    lines = [f"Machine: {machine_line(env)}.", "",
             "| variant | half-pixel / noise | (0.5, -1.5) px / noise | 1 px / noise | descent, half-pixel targets: "
             "PSNR / sharpness | descent, whole-pixel targets: PSNR / sharpness |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        p, dh, dw = r["probe"], r.get("descent_half_pixel"), r.get("descent_whole_pixel")
        cell = lambda d: f"{d['aligned_psnr']:.2f} / {d['sharpness']:.2f}" if d else "-"  # noqa: E731
        lines.append(f"| {name} | {p['0.5 px']:.2f} | {p['(0.5, -1.5) px']:.2f} | {p['1 px']:.3f} | {cell(dh)} | {cell(dw)} |")
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
