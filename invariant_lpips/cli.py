"""Command-line entry point: ``invariant-lpips <command> ...``.

This module is deliberately thin. Each feature folder owns a ``cli.py`` with a
``register(subparsers)`` function that adds its sub-commands; this file only
collects them and dispatches.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

# Feature modules that contribute sub-commands, in the order shown by --help.
COMMAND_MODULES = (
    "invariant_lpips.metric.cli",         # score
    "invariant_lpips.weights.cli",        # weights fetch | info
    "invariant_lpips.distortions.cli",    # make-dataset, type-level
    "invariant_lpips.robustness.cli",     # robustness
    "invariant_lpips.calibration.cli",    # calibrate
    "invariant_lpips.benchmarks.cli",     # bench
    "invariant_lpips.classifier.cli",     # classifier
)


def build_parser() -> argparse.ArgumentParser:
    from invariant_lpips import __version__

    parser = argparse.ArgumentParser(
        prog="invariant-lpips",
        description="Translation-robust perceptual image distance (InvariantLPIPS) and tools around it.",
    )
    parser.add_argument("--version", action="version", version=f"invariant-lpips {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a feature folder without a CLI yet
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"invariant-lpips {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
