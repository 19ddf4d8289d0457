"""Command-line entry point: ``invariant-lpips <command> ...``.

This module is deliberately thin. Each feature folder owns a ``cli.py`` with a
``register(subparsers)`` function that adds its sub-commands; this file only
collects them and dispatches.

Start-up rule: ``invariant-lpips --help`` and ``--version`` must answer at once. They are served
from the table below without importing any feature module (a feature package's ``__init__`` may
import torch). A command imports only its own module. Beyond that, no ``register`` function
imports torch (so ``invariant-lpips score --help`` is quick too), command functions import what
they need when they run, and every option carries a ``help`` string;
``tests/test_cli_and_docs.py`` checks all of these rules.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Dict, List, Optional, Sequence, Tuple

#: (command, module that registers it, one-line help), in the order shown by --help.
#: The help strings must equal the ones the modules register (checked by the tests).
COMMANDS: Tuple[Tuple[str, str, str], ...] = (
    ("score", "invariant_lpips.metric.cli", "distance between two images, or two folders paired by file name"),
    ("variants", "invariant_lpips.metric.cli", "list the InvariantLPIPS variants (the names --variant accepts)"),
    ("weights", "invariant_lpips.weights.cli",
     "fetch the VGG-16 trunk weights, or show where every weight file came from"),
    ("make-dataset", "invariant_lpips.distortions.cli",
     "write a KADID-10k-style dataset (25 distortion types x 5 levels) from reference images, or RAID's stimuli "
     "from the Kodak photographs (make-dataset raid-kodak)"),
    ("robustness", "invariant_lpips.robustness.cli",
     "measure the translation robustness of metrics on a folder of images"),
    ("calibrate", "invariant_lpips.calibration.cli", "learn per-channel weights of a variant from human judgements"),
    ("bench", "invariant_lpips.benchmarks.cli", "benchmark metrics against human scores (KADID-10k, RAID, TID, CSIQ)"),
    ("classifier", "invariant_lpips.classifier.cli",
     "the paper's classification study: VGG-16 heads, translation test"),
)

#: feature modules that contribute sub-commands (each once, in --help order)
COMMAND_MODULES: Tuple[str, ...] = tuple(dict.fromkeys(module for _, module, _ in COMMANDS))

_DESCRIPTION = "Translation-robust perceptual image distance (InvariantLPIPS) and tools around it."


def _version() -> str:
    from invariant_lpips import __version__  # the package __init__ imports nothing heavy

    return f"invariant-lpips {__version__}"


def _root_parser() -> Tuple[argparse.ArgumentParser, "argparse._SubParsersAction"]:
    parser = argparse.ArgumentParser(prog="invariant-lpips", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser, sub


def _register(sub, module_name: str) -> bool:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:  # a feature folder without a CLI yet
        if exc.name == module_name:
            return False
        raise
    module.register(sub)
    return True


def build_parser(command: Optional[str] = None, full: bool = True) -> argparse.ArgumentParser:
    """The argument parser.

    Args:
        command: register only the module that owns this command (the others get a stub with
            their one-line help), so running one command imports nothing of the others.
        full: register every module (``command`` ignored): the whole tree, for tests and docs.
            With ``full=False`` and no ``command`` only stubs are made: ``--help`` without imports.
    """
    parser, sub = _root_parser()
    wanted: Dict[str, bool] = {}
    for name, module, _ in COMMANDS:
        wanted[module] = wanted.get(module, False) or full or name == command
    registered = set()
    for name, module, help_text in COMMANDS:
        if wanted[module]:
            if module not in registered:
                registered.add(module)
                if not _register(sub, module):
                    wanted[module] = False
            if wanted[module]:
                continue
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _command_in(argv: Sequence[str]) -> Optional[str]:
    """The sub-command named by ``argv`` (its first argument that is not an option), if any."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(command=_command_in(argv), full=False)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except (ValueError, OSError, RuntimeError) as exc:  # OSError includes FileNotFoundError, PermissionError
        print(f"invariant-lpips {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"invariant-lpips {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
