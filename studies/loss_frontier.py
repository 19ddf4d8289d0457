#!/usr/bin/env python
"""The registered family as a training loss: designs of ``registered_select.py`` in the training run.

    python studies/loss_frontier.py --terms data/registered_terms.npz --refs ../shared/data/kodak24 \\
        --designs "tex12+lab|s1.c32|λ0.25|r1|μ0.5,tex12+lab|s1.c32|λ0.25|r1+lab|μ1" \\
        --out studies/results/loss_frontier [--steps 1000 --crop 48 --batch 4] [--seed 1]
    python studies/loss_frontier.py --terms data/registered_terms.npz --exponent-terms data/registered_exp.npz \
        --refs ../shared/data/kodak24 --designs "tex12+lab|s1.c64|λ1|r1+lab.q4|μ2" --out studies/results/loss_frontier

Each design (a name of :func:`registered_select.design_pool`) becomes a metric with the design's terms and
its scales normalised on every dev pair (as ``registered_select.py --ship`` writes them: no human score),
and trains the denoiser of ``benchmarks/loss.py train`` (same batches, same seed, targets misregistered by
up to 3 px). Reported: aligned PSNR and sharpness on the held-out crops (1 = the truth's). Nothing here
reads RAID or a human score; the scoring side of each design (nested SRCC, probes) is in registered_select.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from registered_designs import design_metric, design_pool, exponents_in, lab_blocks, local_radii, with_columns
from selection import Cells, design_coefficients, with_floor_columns

from invariant_lpips.benchmarks.environment import environment
from invariant_lpips.benchmarks.loss import as_loss, evaluate_restorer, train_restorer
from invariant_lpips.data.io import list_images, load_image
from invariant_lpips.data.type_level import read_type_level_table
from invariant_lpips.metric.registry import MetricAdapter, get_spec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terms", required=True)
    ap.add_argument("--table", default="../shared/data/kadid_dev_type_level.csv")
    ap.add_argument("--refs", required=True)
    ap.add_argument("--designs", required=True, help="comma-separated design names")
    ap.add_argument("--floors", default="0", help="energy floors the designs may use (as registered_select)")
    ap.add_argument("--local-terms", default="", help="local-matching columns (registered_terms.py --local)")
    ap.add_argument("--lab-terms", default="", help="low-passed CIELab columns (registered_terms.py --lab-blocks)")
    ap.add_argument("--exponent-terms", default="", help="pooled columns (registered_terms.py --exponents)")
    ap.add_argument("--per-term-exponents", action="store_true",
                    help="also the designs pooling one registered term only (r1.q<q>+lab, r1+lab.lq<q>)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--crop", type=int, default=48)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0,
                    help="training seed (batches and initial weights; the held-out crops stay the same)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    z = np.load(args.terms)
    floors = [float(k) for k in args.floors.split(",")]
    X, names = with_floor_columns(z["X"], [str(n) for n in z["names"]], z, floors)
    local, blocks, exponents = local_radii(args.local_terms), lab_blocks(args.lab_terms), exponents_in(args.exponent_terms)
    for extra in (args.local_terms, args.lab_terms, args.exponent_terms):
        if extra:
            X, names = with_columns(X, names, z["dist"], extra)
    cells = Cells(X, names, z["type"], z["level"], read_type_level_table(args.table))
    pool = {d["name"]: d for d in design_pool(floors, local, blocks, exponents, args.per_term_exponents)}
    refs = [load_image(p) for p in list_images(args.refs)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("train.json" if not args.seed else f"train_seed{args.seed}.json")
    settings = {"steps": args.steps, "crop": args.crop, "batch": args.batch, "train_refs": 20, "test_refs": len(refs) - 20,
                "pairs_for_scales": int(len(X)), **({"seed": args.seed} if args.seed else {})}
    old = json.loads(path.read_text()) if path.exists() else {}
    results = old.get("designs", {}) if old.get("settings") == settings else {}
    for name in args.designs.split(","):
        if name not in pool:
            raise SystemExit(f"unknown design {name!r}; names look like {next(iter(pool))!r}")
        nm, coef = design_coefficients(cells, pool[name], cells.types)
        metric = design_metric(pool[name], nm, coef)
        t0 = time.time()
        # the registry's convention ([0, 1] in, (N,) out), as benchmarks/loss.py's build_metric gives it
        adapter = MetricAdapter.for_module(get_spec("registered-blur"), metric)
        net = train_restorer(as_loss(adapter), refs[:20], args.steps, size=args.crop, batch=args.batch, seed=args.seed)
        results[name] = {"mean": evaluate_restorer(net, refs[20:]), "seconds": time.time() - t0,
                         "scales": dict(zip(metric.terms, map(float, metric.scales)))}
        m = results[name]["mean"]
        print(f"{name}: {time.time() - t0:.0f} s; aligned PSNR {m['aligned_psnr']:.2f} dB, sharpness "
              f"{m['sharpness']:.2f}", flush=True)
        path.write_text(json.dumps({"settings": settings, "environment": environment("cpu"), "designs": results},
                                   indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
