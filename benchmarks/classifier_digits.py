#!/usr/bin/env python
"""Reproducible CPU run of the classification study on scikit-learn's digits (issue 7).

A small conv trunk is pretrained on randomly placed digits and frozen; the paper's four heads
(``baseline`` Flatten, ``finalgap``, ``multigap``, ``gap_flatten``) are trained on its features of
*centred* digits (16x16 digits on a 48x48 zero canvas) and tested with the digit moved by
``dx, dy in [-16, 16]``. See :mod:`invariant_lpips.classifier.digits` for the protocol.

    python benchmarks/classifier_digits.py            # ~1-2 min on 2 CPU cores
    python benchmarks/classifier_digits.py --out /tmp/digits --threads 2

Writes into ``--out`` (default ``benchmarks/results/classifier/digits``): ``results.json`` (all
numbers, curves and settings), ``summary.csv`` (the table printed at the end), ``shift_curve.csv``
(horizontal sweep, step 1), ``shift_grid.csv`` (2-D grid), ``digits_shift_curves.png`` and
``digits_heatmaps.png``, plus ``environment.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "classifier" / "digits"


def main(argv=None) -> int:
    # deferred: start-up time (--help answers without importing torch)
    from invariant_lpips.benchmarks.environment import environment
    from invariant_lpips.classifier.digits import DigitsConfig, run_digits_demo

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT),
                    help="output folder (default benchmarks/results/classifier/digits)")
    ap.add_argument("--seed", type=int, default=666, help="seed of the split, the trunk and the heads (default 666)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1 is fastest on a shared 2-core machine)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)

    cfg = DigitsConfig(seed=args.seed)
    t0 = time.time()
    res = run_digits_demo(args.out, cfg, progress=not args.quiet, num_threads=args.threads)
    env = {**environment("cpu", packages=("scikit-learn",)), "wall_seconds": round(time.time() - t0, 1),
           "command": "python benchmarks/classifier_digits.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    with open(Path(args.out) / "environment.json", "w") as fh:
        json.dump(env, fh, indent=2)
    print(f"\ntrunk: {res['trunk']['parameters']:,} parameters (frozen), pretraining val accuracy "
          f"{res['trunk']['pretrain_best_val_accuracy']:.4f}; wall time {env['wall_seconds']} s")
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
