"""``invariant-lpips score``: distance between two images, or between two folders (paired by name)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def register(sub) -> None:
    from ..features.variants import DEFAULT_VARIANT

    p = sub.add_parser("score", help="distance between two images, or two folders paired by file name",
                       description="Score REF against DIST. With two folders, files with the same name are "
                                   "paired and a CSV is written (--out, or stdout).")
    p.add_argument("ref", help="reference image file or folder")
    p.add_argument("dist", help="distorted image file or folder")
    p.add_argument("--variant", default=DEFAULT_VARIANT,
                   help=f"InvariantLPIPS variant, or 'lpips-vgg' for the LPIPS baseline (default {DEFAULT_VARIANT}); "
                        "see 'invariant-lpips variants'")
    p.add_argument("--weights", default=None, help="linear weights file from 'invariant-lpips calibrate'")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--json", action="store_true", help="print JSON instead of plain text")
    p.add_argument("--out", default=None, help="folder mode: CSV file to write (default: stdout)")
    p.set_defaults(func=run_score)

    v = sub.add_parser("variants", help="list the InvariantLPIPS variants")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=run_variants)


def _build(args):
    import torch

    from .invariant import InvariantLPIPS
    from .lpips_baseline import LPIPS

    device = torch.device(args.device)
    if args.variant in ("lpips-vgg", "lpips"):
        m = LPIPS(weights=args.weights)
    else:
        m = InvariantLPIPS(args.variant, weights=args.weights)
    return m.to(device).eval(), device


def run_score(args) -> int:
    import torch

    from ..data.io import list_images, load_image

    ref, dist = Path(args.ref), Path(args.dist)
    for p in (ref, dist):
        if not p.exists():
            raise FileNotFoundError(f"not found: {p}")
    metric, device = _build(args)
    if ref.is_file() and dist.is_file():
        with torch.inference_mode():
            d = float(metric(load_image(ref, device=device), load_image(dist, device=device), normalize=True))
        if args.json:
            print(json.dumps({"ref": str(ref), "dist": str(dist), "variant": args.variant, "distance": d}))
        else:
            print(f"{d:.6f}")
        return 0
    if not (ref.is_dir() and dist.is_dir()):
        raise ValueError("REF and DIST must both be files or both be folders")
    from tqdm import tqdm

    refs = {p.name: p for p in list_images(ref)}
    dists = {p.name: p for p in list_images(dist)}
    common = sorted(set(refs) & set(dists))
    if not common:
        raise ValueError(f"no file names in common between {ref} and {dist}")
    missing = sorted(set(refs) ^ set(dists))
    if missing:
        print(f"warning: {len(missing)} files have no partner and are skipped: {missing[:5]}", file=sys.stderr)
    rows = []
    for name in tqdm(common, desc="scoring", unit="pair", file=sys.stderr, disable=not sys.stderr.isatty()):
        with torch.inference_mode():
            d = float(metric(load_image(refs[name], device=device), load_image(dists[name], device=device),
                             normalize=True))
        rows.append({"file": name, "distance": d})
    if args.json:
        text = json.dumps({"variant": args.variant, "pairs": rows}, indent=1)
        (Path(args.out).write_text(text) if args.out else print(text))
        return 0
    fh = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        w = csv.DictWriter(fh, fieldnames=["file", "distance"])
        w.writeheader()
        for r in rows:
            w.writerow({"file": r["file"], "distance": f"{r['distance']:.6f}"})
    finally:
        if args.out:
            fh.close()
    return 0


def run_variants(args) -> int:
    from ..features.variants import DEFAULT_VARIANT, variant_table

    rows = variant_table()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        star = "*" if r["name"] == DEFAULT_VARIANT else " "
        print(f"{star} {r['name']:<22} {r['formulation']:<6} pooling={r['pooling']:<40} weights={r['weights']}")
        print(f"    {r['description']}\n    invariance: {r['invariance']}")
    return 0
