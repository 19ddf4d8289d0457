"""KADID dev proxy: type-level accuracy of every metric, and k-fold calibration of our variants.

    # 1. a KADID-style set from the Kodak24 references (13 dev types, 5 levels, 512x384)
    invariant-lpips make-dataset --refs ../shared/data/kodak24 --out data/kodak_dev \
        --types 1,3,4,6,8,9,11,13,16,18,20,22,24 --size 512x384
    # 2. this script
    python benchmarks/dev_proxy.py --dataset data/kodak_dev --table ../shared/data/kadid_dev_type_level.csv \
        --out benchmarks/results/dev_proxy

For each metric, distances of every (reference, distorted) pair are averaged per (type, level) cell and
correlated with the human mean DMOS of the cell (SRCC, KRCC, PLCC; positive = agreement) plus the
mean per-type SRCC over the 5 levels. Our GAP variants are then calibrated (Pearson loss, non-negative
weights) with k-fold by reference: the figures of a fold come from references that fold never trained on.
Only the 13 types in the table are used; the other 12 KADID types are withheld for independent evaluation.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from invariant_lpips.calibration.features import FeatureCache
from invariant_lpips.calibration.fit import FitConfig, fit_weights, predict, split_weights
from invariant_lpips.calibration.type_level import (evaluate_distances, human_targets, kfold_type_level,
                                                    pair_features, read_generated_set)
from invariant_lpips.distortions.type_level import read_type_level_table
from invariant_lpips.features.variants import get_variant
from invariant_lpips.trunk.vgg16 import TAP_CHANNELS
from invariant_lpips.weights.linear import load_shipped


def parse_size(text):
    if not text or text == "none":
        return None
    w, h = text.lower().split("x")
    return int(w), int(h)


def peer_distances(name, pairs, size, device):
    from invariant_lpips.benchmarks.adapters import get_metric
    from invariant_lpips.data.io import load_image

    metric = get_metric(name, device)
    by_ref = {}
    for i, p in enumerate(pairs):
        by_ref.setdefault(str(p.ref_path), []).append(i)
    out = np.zeros(len(pairs))
    for ref_path, idx in by_ref.items():
        ref = load_image(ref_path, size=size)
        for j in range(0, len(idx), 8):
            chunk = idx[j:j + 8]
            dist = torch.cat([load_image(pairs[i].dist_path, size=size) for i in chunk])
            with torch.inference_mode():
                out[chunk] = metric(ref, dist).double().numpy()
    return out if metric.lower_is_better else -out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--variants", default="paper,paper-blur,lpips-gap,lpips-gap-blur,lpips-gap-blur5,lpips-gap-l2,lpips-gap-aps")
    ap.add_argument("--peers", default="lpips-vgg,dists,ssim")
    ap.add_argument("--refs", type=int, default=0, help="use the first N references (0 = all)")
    ap.add_argument("--size", default="none", help="resize every image to WxH before the metric (e.g. 256x192)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--calibrate", action="store_true", help="also run k-fold calibration of each variant")
    ap.add_argument("--cache", default=None, help="feature cache folder (default: the package cache)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    table = read_type_level_table(args.table)
    types = sorted({t for t, _ in table})
    all_pairs = read_generated_set(args.dataset, types=types)
    refs = sorted({p.ref_id for p in all_pairs})
    if args.refs:
        refs = refs[: args.refs]
    pairs = [p for p in all_pairs if p.ref_id in refs]
    size = parse_size(args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"config": {"dataset": args.dataset, "table": args.table, "refs": refs, "n_pairs": len(pairs),
                          "size": size, "types": types, "torch": torch.__version__}, "metrics": {}}
    res_path = out / "dev_proxy.json"
    if res_path.exists():
        old = json.loads(res_path.read_text())
        if old.get("config", {}).get("refs") == refs and old.get("config", {}).get("size") == (list(size) if size else None):
            results["metrics"] = old.get("metrics", {})

    def save():
        res_path.write_text(json.dumps(results, indent=1, default=float))

    keep = ("srcc", "krcc", "plcc", "mean_per_type_srcc")
    for name in [n for n in args.peers.split(",") if n]:
        if name in results["metrics"]:
            continue
        t0 = time.time()
        try:
            d = peer_distances(name, pairs, size, args.device)
        except ImportError as exc:
            print(f"skip {name}: {exc}", file=sys.stderr)
            continue
        ev = evaluate_distances(pairs, d, table)
        results["metrics"][name] = {**{k: ev[k] for k in keep}, "per_type": ev["per_type"], "seconds": time.time() - t0}
        print(f"{name:18s} SRCC {ev['srcc']:.3f} KRCC {ev['krcc']:.3f} PLCC {ev['plcc']:.3f} "
              f"per-type {ev['mean_per_type_srcc']:.3f}", flush=True)
        save()

    for vname in [n for n in args.variants.split(",") if n]:
        v = get_variant(vname)
        t0 = time.time()
        cache = FeatureCache(v, root=args.cache, device=args.device, size=size)
        stat = "unit" if v.formulation == "lpips" else "raw"
        phi = pair_features(cache, pairs, stat, progress=True)
        shipped, _ = load_shipped(v.weights_file)
        init = torch.cat([shipped[t] for t in v.taps]).double()
        ones = torch.ones_like(init)
        entry = {"seconds_features": time.time() - t0}
        for label, w in (("shipped", init), ("ones", ones)):
            d = predict(phi.double(), w, v.formulation).numpy()
            ev = evaluate_distances(pairs, d, table)
            entry[label] = {**{k: ev[k] for k in keep}, "per_type": ev["per_type"]}
        line = (f"{vname:18s} shipped SRCC {entry['shipped']['srcc']:.3f} per-type "
                f"{entry['shipped']['mean_per_type_srcc']:.3f} | ones SRCC {entry['ones']['srcc']:.3f}")
        if args.calibrate:
            cfg = FitConfig(loss="pearson", formulation=v.formulation)
            kf = kfold_type_level(pairs, phi, table, init, cfg, k=args.folds, by="reference")
            entry["kfold"] = kf["mean"]
            kt = kfold_type_level(pairs, phi, table, init, cfg, k=args.folds, by="type")
            entry["kfold_types"] = kt["mean"]
            line += (f" | by-ref k-fold fitted SRCC {kf['mean']['fitted_srcc']:.3f} (initial "
                     f"{kf['mean']['initial_srcc']:.3f}) | by-type fitted {kt['mean']['fitted_srcc']:.3f} "
                     f"(initial {kt['mean']['initial_srcc']:.3f})")
        results["metrics"][vname] = entry
        print(line, flush=True)
        save()
    write_markdown(results, out / "dev_proxy.md")
    return 0


def write_markdown(results, path):
    lines = ["| metric | weights | SRCC | KRCC | PLCC | mean per-type SRCC |", "|---|---|---|---|---|---|"]
    for name, e in results["metrics"].items():
        if "srcc" in e:
            lines.append(f"| {name} | - | {e['srcc']:.3f} | {e['krcc']:.3f} | {e['plcc']:.3f} | {e['mean_per_type_srcc']:.3f} |")
            continue
        for label in ("shipped", "ones"):
            r = e[label]
            lines.append(f"| {name} | {label} | {r['srcc']:.3f} | {r['krcc']:.3f} | {r['plcc']:.3f} | {r['mean_per_type_srcc']:.3f} |")
        for key, label in (("kfold", "calibrated, k-fold by reference"), ("kfold_types", "calibrated, k-fold by type")):
            if key in e:
                k = e[key]
                lines.append(f"| {name} | {label} | {k['fitted_srcc']:.3f} | {k['fitted_krcc']:.3f} | "
                             f"{k['fitted_plcc']:.3f} | {k['fitted_mean_per_type_srcc']:.3f} |")
    c = results["config"]
    lines.append("")
    lines.append("k-fold rows average the correlations of the held-out folds (fewer cells each): compare them with the "
                 "same folds' shipped-weight figures (`kfold.initial_*` in dev_proxy.json), not with the full-set rows.")
    lines.append("")
    lines.append(f"{c['n_pairs']} pairs, {len(c['refs'])} references, size {c['size'] or 'as generated'}, "
                 f"types {c['types']}")
    Path(path).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
