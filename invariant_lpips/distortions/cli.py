"""``invariant-lpips make-dataset``: write a KADID-10k-style distorted dataset, or (``make-dataset
raid-kodak``) RAID's stimuli rebuilt from the Kodak photographs.

(The ``type-level`` command, which needs a metric, lives with the metric code.)
"""
from __future__ import annotations

import argparse
from typing import List, Optional, Tuple


def _parse_int_list(text: str, what: str, lo: int, hi: int) -> List[int]:
    """``"1,3,5-7"`` -> ``[1, 3, 5, 6, 7]``."""
    out: List[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                a_i, b_i = int(a), int(b)
                if a_i > b_i:
                    raise ValueError
                out.extend(range(a_i, b_i + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {what} {part!r} in {text!r}; use comma-separated ints or ranges, e.g. 1,3,5-7"
            ) from None
    bad = [v for v in out if not lo <= v <= hi]
    if bad:
        raise argparse.ArgumentTypeError(f"{what} out of range {bad}; valid {what} are {lo}..{hi}")
    if not out:
        raise argparse.ArgumentTypeError(f"no {what} given in {text!r}")
    return list(dict.fromkeys(out))


def _types(text: str) -> List[int]:
    return _parse_int_list(text, "types", 1, 25)


def _levels(text: str) -> List[int]:
    return _parse_int_list(text, "levels", 1, 5)


def _size(text: str) -> Optional[Tuple[int, int]]:
    """``WIDTHxHEIGHT`` / ``N`` / ``none`` -> ``(width, height)`` or None (:func:`~invariant_lpips.data.sizes.parse_size`)."""
    from ..data.sizes import parse_size  # deferred: start-up time (the data package imports torch)

    try:
        size = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if size is not None and min(size) < 2:
        raise argparse.ArgumentTypeError(f"size must be at least 2x2, got {text!r}")
    return size


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative int, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative int, got {text!r}")
    return v


def _run_make_dataset(args: argparse.Namespace) -> int:
    if args.kind == "raid-kodak":
        return _run_raid_kodak(args)
    from .dataset import write_kadid_style_dataset  # deferred: start-up time (scipy, torch)

    info = write_kadid_style_dataset(
        args.refs,
        args.out,
        types=args.types,
        levels=args.levels,
        size=args.size,
        seed=args.seed,
        progress=not args.no_progress,
    )
    print(
        f"wrote {info['n_refs']} references and {info['n_distorted']} distorted images to "
        f"{info['images_dir']}; index: {info['dmos_csv']}, sources: {info['refs_csv']}"
    )
    return 0


def _run_raid_kodak(args: argparse.Namespace) -> int:
    given = [f"--{n}" for n in ("types", "levels", "size") if getattr(args, n) is not _KADID_DEFAULTS[n]]
    if given:
        raise SystemExit(f"make-dataset raid-kodak: {', '.join(given)} apply to KADID-style datasets only; "
                         "RAID's stimuli are 454x454, 4 distortions x 10 levels")
    from .raid_kodak import write_raid_kodak  # deferred: start-up time (scipy)

    info = write_raid_kodak(args.refs, args.out, seed=args.seed, progress=not args.no_progress)
    print(f"wrote {info['n_files']} RAID stimuli (images {info['images'][0]:02d}..{info['images'][-1]:02d}) "
          f"to {info['out']}; parameters: {info['params']}")
    return 0


_KADID_DEFAULTS = {"types": None, "levels": [1, 2, 3, 4, 5], "size": (512, 384)}


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``make-dataset`` sub-command."""
    p = subparsers.add_parser(
        "make-dataset",
        help="write a KADID-10k-style dataset (25 distortion types x 5 levels) from reference images, "
             "or RAID's stimuli from the Kodak photographs (make-dataset raid-kodak)",
        description=(
            "Default (kadid): distort every image of --refs with the KADID-10k distortions and write "
            "OUT/images/I01.png, OUT/images/I01_TT_LL.png, OUT/dmos.csv (dmos/var empty) and OUT/refs.csv. "
            "raid-kodak: rebuild RAID's 960 stimuli from --refs/kodim01..24.png (454x454, soft circular "
            "window on grey; rot/trans/scale/gn x 10 levels) as OUT/{rot|trans|scale|gn}_img_XX_level_YY.png, "
            "OUT/img_XX.png and OUT/params.json (see docs/raid.md)."
        ),
    )
    p.add_argument("kind", nargs="?", choices=("kadid", "raid-kodak"), default="kadid",
                   help="what to write (default kadid)")
    p.add_argument("--refs", required=True, metavar="DIR",
                   help="folder of reference images (png, jpg, bmp, tif, webp; sorted by name)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--types", type=_types, default=_KADID_DEFAULTS["types"], metavar="LIST",
                   help="distortion type ids, e.g. 1,3,5-7 (default: all 25)")
    p.add_argument("--levels", type=_levels, default=_KADID_DEFAULTS["levels"], metavar="LIST",
                   help="levels, e.g. 1,3,5 (default: 1-5)")
    p.add_argument("--size", type=_size, default=_KADID_DEFAULTS["size"], metavar="WxH",
                   help="reference size WIDTHxHEIGHT (or N for NxN) after scale-to-cover + centre crop "
                        "(default 512x384; 'none' keeps sizes)")
    p.add_argument("--seed", type=_seed, default=0, metavar="N", help="base random seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_make_dataset)
