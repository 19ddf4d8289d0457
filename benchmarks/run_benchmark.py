#!/usr/bin/env python
"""Thin wrapper around :func:`invariant_lpips.benchmarks.runner.run_benchmark` (same options as
``invariant-lpips bench``), convenient under torchrun::

    python benchmarks/run_benchmark.py --dataset raid --root data/RAID --metrics lpips-vgg,lpips-gap --out results/raid
    torchrun --nproc_per_node 4 benchmarks/run_benchmark.py --dataset kadid10k --root data/kadid10k \
        --metrics lpips-vgg,lpips-gap --out results/kadid --device cuda --dtype bf16
"""
import sys

from invariant_lpips.benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main())
