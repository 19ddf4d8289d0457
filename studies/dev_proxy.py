"""KADID dev proxy: type-level accuracy of every metric, and calibration of the ``mean-spread`` variants.

    # 1. a KADID-style set from the Kodak24 references (13 dev types, 5 levels, 512x384)
    invariant-lpips make-dataset --refs ../shared/data/kodak24 --out data/kodak_dev \\
        --types 1,3,4,6,8,9,11,13,16,18,20,22,24 --size 512x384
    # 2. per-pair distances of the peers, cached as CSV (a trunk pass per pair; ~1 h on 2 cores)
    python benchmarks/peer_scores.py --dataset data/kodak_dev --metrics lpips-vgg,dists --size 512x384 \\
        --out studies/results/dev_proxy_512/peers
    # 3. this script: our variants from the feature cache (one trunk pass per image, once), then seconds
    python studies/dev_proxy.py --dataset data/kodak_dev --table ../shared/data/kadid_dev_type_level.csv \\
        --peers-dir studies/results/dev_proxy_512/peers --out studies/results/dev_proxy_512

For each metric, distances of every (reference, distorted) pair are averaged per (type, level) cell and
correlated with the human mean DMOS of the cell (SRCC, KRCC, PLCC; positive = agreement).

Per type ``t`` it also prints the *leave-this-type-out* SRCC:
* ``drop``: the metric as shipped, SRCC over the cells of the other 12 types (does one type carry it?);
* ``loto``: for calibrated designs, scales fitted WITHOUT type ``t``, SRCC over all 65 cells (can it place
  a type it never saw?); for fixed metrics this is their plain SRCC.

Calibrated designs (``--designs``) fit one non-negative scale per term (per statistic and tap) with a
Pearson loss on the pairs; they are reported under k-fold by reference and by type (held-out predictions
pooled over folds) and leave-one-type-out. Only the 13 types in the table are used; the other 12 KADID
types are withheld for independent evaluation and never read.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from invariant_lpips.benchmarks.environment import environment
from invariant_lpips.calibration.fit import FitConfig, fit_weights, predict
from invariant_lpips.calibration.pairs import design_matrix, fit_formulation, initial_parameters, variant_tensors
from invariant_lpips.calibration.type_folds import (evaluate_distances, human_targets, kfold_type_level,
                                                    leave_one_type_out, leave_one_type_out_fixed)
from invariant_lpips.data.generated import read_generated_set, read_peer_scores
from invariant_lpips.data.sizes import hw, parse_size
from invariant_lpips.data.type_level import read_type_level_table
from invariant_lpips.features.cache import FeatureCache
from invariant_lpips.features.variants import Variant, get_variant, list_variants

KEEP = ("srcc", "krcc", "plcc", "mean_per_type_srcc")

#: calibrated designs: name -> Variant fields on top of the default trunk (blurmax, pool taps)
DESIGNS = {
    "norms-mean": dict(statistics=("mean",)),
    "norms-mean+lab": dict(statistics=("mean",), colour_statistics=("mean", "std")),
    "norms-mean-std": dict(statistics=("mean", "std")),
    "norms-mean-std+lab": dict(statistics=("mean", "std"), colour_statistics=("mean", "std")),  # gap-lin-ms
    "norms-all+lab": dict(statistics=("mean", "std", "local"), colour_statistics=("mean", "std", "local")),
    # DISTS-style similarity of raw pooled statistics + squared CIELab differences (texture-blur's terms),
    # starting from texture-blur's shipped scales (1 / mean term over the set: no human data)
    "texture-mean-std+lab": dict(formulation="texture", taps=("pool1", "pool2"), statistics=("mean", "std"),
                                 colour_statistics=("mean", "std"), weights_file="texture_blur.safetensors"),
}
#: the fit of every design, and of the shipped gap-lin-ms weights (invariant-lpips calibrate, same settings)
FIT = dict(loss="pearson", weight_decay=1.0, max_steps=2000, lr=0.05, val_fraction=0.0)


def design_variant(name: str, base: str = "gap-lin-blur") -> Variant:
    b = get_variant(base)
    fields = {"formulation": "mean-spread", "weights_file": b.weights_file, **DESIGNS[name]}
    return b.with_(name=name, **fields)


def read_peer_csv(path: Path, pairs) -> np.ndarray:
    return np.array(read_peer_scores(path, [p.dist_path.name for p in pairs]))


def summarise(pairs, d, table) -> dict:
    ev = evaluate_distances(pairs, d, table)
    return {**{k: ev[k] for k in KEEP}, "per_type": {int(t): v["srcc"] for t, v in ev["per_type"].items()},
            "drop": {r["type"]: r["srcc_rest"] for r in leave_one_type_out_fixed(pairs, d, table)}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="generated KADID-layout folder")
    ap.add_argument("--table", required=True, help="type-level human table (kadid_dev_type_level.csv)")
    ap.add_argument("--out", required=True, help="folder for dev_proxy.json and dev_proxy.md")
    ap.add_argument("--peers-dir", default=None, help="folder of per-pair peer CSVs from peer_scores.py")
    ap.add_argument("--peers", default="lpips-vgg,dists", help="peer metrics to read from --peers-dir")
    ap.add_argument("--variants", default=",".join(list_variants()),
                    help="registered variants to evaluate with their shipped weights")
    ap.add_argument("--designs", default=",".join(DESIGNS), help="calibrated designs to cross-validate")
    ap.add_argument("--refs", type=int, default=0, help="use the first N references (0 = all)")
    ap.add_argument("--size", default="none",
                    help="resize every image to WIDTHxHEIGHT before the metric (e.g. 256x192; default: as generated)")
    ap.add_argument("--folds", type=int, default=4, help="folds of the k-fold by reference")
    ap.add_argument("--cache", default=None, help="feature cache folder (default: the package cache)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"),
                    help="autocast dtype of the trunk pass (bf16 on CPU too; fp16 on CUDA only); its own cache entries")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads for the fits (0 = torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    table = read_type_level_table(args.table)
    types = sorted({t for t, _ in table})
    pairs = read_generated_set(args.dataset, types=types)
    refs = sorted({p.ref_id for p in pairs})[: args.refs or None]
    pairs = [p for p in pairs if p.ref_id in refs]
    size = parse_size(args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"config": {"dataset": args.dataset, "table": args.table, "refs": refs, "n_pairs": len(pairs),
                          "types": types, "size": size, "environment": environment("cpu")}, "metrics": {}, "designs": {}}

    for name in [n for n in args.peers.split(",") if n]:
        if args.peers_dir is None:
            break
        tag = f"{size[0]}x{size[1]}" if size else "*"
        path = next(Path(args.peers_dir).glob(f"{name}_{tag}.csv"), None)
        if path is None:
            print(f"skip {name}: no CSV in {args.peers_dir} (run benchmarks/peer_scores.py)", file=sys.stderr)
            continue
        results["metrics"][name] = summarise(pairs, read_peer_csv(path, pairs), table)

    paths = sorted({str(p.ref_path) for p in pairs} | {str(p.dist_path) for p in pairs})
    caches, features = {}, {}

    def stats_for(v: Variant):
        key = v.trunk  # a TrunkConfig: equal configurations share a cache
        if key not in features:
            t0 = time.time()
            caches[key] = FeatureCache(v, root=args.cache, device=args.device, size=hw(size),
                                       dtype={"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype])
            features[key] = caches[key].features_for_files(paths, progress=True)
            print(f"features {v.name}: {caches[key].misses} trunk passes, {caches[key].hits} cached, "
                  f"{time.time() - t0:.1f} s", file=sys.stderr)
        return features[key]

    for vname in [n for n in args.variants.split(",") if n]:
        v = get_variant(vname)
        feats = stats_for(v)
        tensors = variant_tensors(v, "shipped")
        X = design_matrix([feats[str(p.ref_path)] for p in pairs], [feats[str(p.dist_path)] for p in pairs], v, tensors)
        d = predict(X, initial_parameters(v, tensors), fit_formulation(v)).numpy()
        results["metrics"][vname] = summarise(pairs, d, table)

    for dname in [n for n in args.designs.split(",") if n]:
        v = design_variant(dname)
        feats = stats_for(v)
        tensors = variant_tensors(v, "shipped")
        X = design_matrix([feats[str(p.ref_path)] for p in pairs], [feats[str(p.dist_path)] for p in pairs], v, tensors)
        init = initial_parameters(v, tensors)  # unit scales, or the shipped normalisation (texture)
        cfg = FitConfig(**FIT, formulation=fit_formulation(v))
        entry = {"terms": v.terms(), "unit_scales": summarise(pairs, predict(X, init, cfg.formulation).numpy(), table)}
        full = fit_weights(X, human_targets(pairs, table), [p.ref_id for p in pairs], init, cfg).weights.double()
        entry["fitted_all_types"] = summarise(pairs, predict(X, full, cfg.formulation).numpy(), table)
        entry["scales"] = dict(zip(v.terms(), full.tolist()))
        entry["kfold_reference"] = kfold_type_level(pairs, X, table, init, cfg, k=args.folds, by="reference")["mean"]
        entry["kfold_type"] = kfold_type_level(pairs, X, table, init, cfg, k=len(types), by="type")["mean"]
        loto = leave_one_type_out(pairs, X, table, init, cfg)
        entry["loto"] = {r["type"]: r["srcc_all"] for r in loto}
        entry["loto_rest"] = {r["type"]: r["srcc_rest"] for r in loto}
        results["designs"][dname] = entry
        print(f"{dname:24s} unit {entry['unit_scales']['srcc']:.3f} | fitted(all) {entry['fitted_all_types']['srcc']:.3f}"
              f" | by-type pooled {entry['kfold_type']['pooled_fitted_srcc']:.3f} | by-ref pooled "
              f"{entry['kfold_reference']['pooled_fitted_srcc']:.3f} | LOTO min {min(entry['loto'].values()):.3f}",
              flush=True)

    (out / "dev_proxy.json").write_text(json.dumps(results, indent=1, default=float))
    write_markdown(results, out / "dev_proxy.md")
    print((out / "dev_proxy.md").read_text())
    return 0


def write_markdown(results, path):
    c = results["config"]
    types = c["types"]
    lines = [f"{c['n_pairs']} pairs, {len(c['refs'])} references, size {c.get('size') or 'as generated'}, "
             f"types {types}", "",
             "| metric | SRCC | KRCC | PLCC | min drop-type SRCC |", "|---|---:|---:|---:|---:|"]
    for name, e in results["metrics"].items():
        lines.append(f"| {name} | {e['srcc']:.3f} | {e['krcc']:.3f} | {e['plcc']:.3f} | {min(e['drop'].values()):.3f} |")
    if results["designs"]:
        lines += ["", "Calibrated designs (one scale per term; SRCC over all cells of held-out predictions):", "",
                  "| design | unit scales | fitted on all 13 types | k-fold by type | k-fold by reference | min LOTO |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, e in results["designs"].items():
            lines.append(f"| {name} | {e['unit_scales']['srcc']:.3f} | {e['fitted_all_types']['srcc']:.3f} | "
                         f"{e['kfold_type']['pooled_fitted_srcc']:.3f} | {e['kfold_reference']['pooled_fitted_srcc']:.3f} | "
                         f"{min(e['loto'].values()):.3f} |")
    lines += ["", "Leave-this-type-out SRCC per type (drop: shipped metric, other types' cells; "
              "loto: fitted without the type, all cells):", "",
              "| metric | " + " | ".join(str(t) for t in types) + " |", "|---|" + "---:|" * len(types)]
    for name, e in results["metrics"].items():
        lines.append(f"| {name} (drop) | " + " | ".join(f"{e['drop'][t]:.3f}" for t in types) + " |")
    for name, e in results["designs"].items():
        lines.append(f"| {name} (loto) | " + " | ".join(f"{e['loto'][t]:.3f}" for t in types) + " |")
        lines.append(f"| {name} (loto, other types) | " + " | ".join(f"{e['loto_rest'][t]:.3f}" for t in types) + " |")
    Path(path).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
