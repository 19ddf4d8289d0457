"""``invariant-lpips bench``: score a human-judgement dataset with several metrics.

Under torchrun: ``torchrun --nproc_per_node 4 -m invariant_lpips bench ...``. Writes
``scores_<metric>.csv``, ``summary.json``, ``summary.md`` and ``manifest.json`` into ``--out``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

BENCH_DATASETS = ("kadid10k", "raid", "tid2013", "tid2008", "csiq")

DESCRIPTION = """\
Score a human-judgement dataset (KADID-10k, RAID, TID2008/2013, CSIQ) with several metrics and
correlate the distances with the human scores (SRCC, KRCC, PLCC with bootstrap CIs).

Writes scores_<metric>.csv, summary.json, summary.md and manifest.json into --out (and
raid_curves.png for RAID). An interrupted run resumes where it stopped when started again with the
same arguments (--no-resume starts over). Our GAP variants read pooled trunk statistics from the
feature cache (--cache), so a second run over the same images needs no trunk pass.

examples:
  invariant-lpips bench --dataset kadid10k --root data/kadid10k \\
      --metrics lpips-vgg,gap-lin,paper,lpips-pkg,dists --out results/kadid --device cuda --dtype bf16

  # several GPUs / processes: each rank scores a share of the references, rank 0 writes the results
  torchrun --nproc_per_node 4 -m invariant_lpips bench --dataset kadid10k --root data/kadid10k \\
      --metrics lpips-vgg,gap-lin --out results/kadid --device cuda
"""


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--dataset", required=True, choices=BENCH_DATASETS, help="dataset layout to read")
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--metrics", required=True,
                   help="comma-separated metric names (lpips-vgg, our variants such as gap-lin or paper, "
                        "lpips-pkg, dists, stlpips-vgg, ssim, ms-ssim, psnr, mse, l1)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="distorted images per metric call (default 16)")
    p.add_argument("--workers", type=int, default=2, help="image-decoding worker processes (default 2)")
    p.add_argument("--dtype", default=None, choices=["fp32", "bf16", "fp16"],
                   help="autocast precision on CUDA (default float32; ignored on CPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile our metrics' VGG trunks")
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out pairs with missing/corrupt images (counted and listed in the summary)")
    p.add_argument("--no-resume", action="store_true", help="discard earlier scores in --out and start over")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="feature-cache folder for our GAP variants' pooled statistics (default: features/ in "
                        "the package cache, $INVARIANT_LPIPS_HOME or ~/.cache/invariant_lpips)")
    p.add_argument("--no-cache", action="store_true",
                   help="keep pooled statistics in memory only (nothing read from or written to the cache)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% CIs (0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="no RAID curve plot")
    return p


def run(args: argparse.Namespace) -> int:
    from .runner import run_benchmark  # deferred: building the parser must not import torch (start-up time)

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not metrics:
        raise ValueError("--metrics is empty")
    summary = run_benchmark(
        args.dataset, metrics, args.out, device=args.device, batch_size=args.batch_size,
        num_workers=args.workers, dtype=None if args.dtype in (None, "fp32") else args.dtype,
        compile=args.compile, skip_missing=args.skip_missing, resume=not args.no_resume,
        progress=not args.no_progress, bootstrap=args.bootstrap, root=args.root, seed=args.seed,
        plots=not args.no_plots, cache_root=args.cache, feature_cache=not args.no_cache,
    )
    if summary is not None:  # rank 0
        print((Path(args.out) / "summary.md").read_text(encoding="utf-8"))
        print(f"results in {args.out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark metrics against human scores (KADID-10k, RAID, TID, CSIQ)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)
