"""``invariant-lpips robustness``: translation-robustness measurements of metrics on a folder of images.

Example::

    invariant-lpips robustness --images photos/ --metrics lpips-vgg,gap-lin-blur,mse \\
        --out results/robustness --size 192 --shifts 0..32 --device cuda

Metrics come from the metric registry (:func:`resolve_metric` ->
:func:`invariant_lpips.metric.registry.build_metric`); images from the package's loader
(:mod:`invariant_lpips.data.io`), centre-cropped to ``--size`` (``WIDTHxHEIGHT`` or ``N``).
Writes ``robustness.json``, ``sweeps.csv``, ``rank_flips.csv``,
``summary.csv`` and, when matplotlib is installed, ``sweep_<protocol>.png``
and ``rank_flips.png`` into ``--out``, and prints a summary table (one row per metric) on stdout.

Start-up rule of the command line: this module imports no torch at import time; :func:`run`
imports the study when the command runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Union

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor


# --------------------------------------------------------------------------- metrics


def resolve_metric(name: str, device="cpu") -> Callable[["Tensor", "Tensor"], "Tensor"]:
    """Build the metric called ``name`` on ``device`` from the metric registry
    (:func:`invariant_lpips.metric.registry.build_metric`: ``mse``, ``l1``, ``lpips-vgg``, every
    variant, the installed peers). Tests replace this function (monkeypatch) to inject fake metrics."""
    from ..metric.registry import build_metric  # deferred: start-up time (imports torch and the metrics)

    return build_metric(name.strip().lower(), device=device)


# --------------------------------------------------------------------------- arguments


def parse_shifts(text: str) -> List[Union[int, float]]:
    """``'0..32'`` (inclusive), ``'0..32:2'`` (step), ``'0,1,2,4'``, or a mix
    (``'0..4,8,16'``); values are ints when whole, else floats."""

    def num(s: str) -> Union[int, float]:
        f = float(s)
        return int(f) if f.is_integer() else f

    out: List[Union[int, float]] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if ".." in part:
                rng, _, step_s = part.partition(":")
                a_s, b_s = rng.split("..", 1)
                a, b = float(a_s), float(b_s)
                step = float(step_s) if step_s else 1.0
                if step <= 0:
                    raise ValueError
                n = int(round((b - a) / step + 1e-9)) + 1 if b >= a else 0
                out.extend(num(str(round(a + i * step, 10))) for i in range(n))
            else:
                out.append(num(part))
    except ValueError:
        raise ValueError(f"cannot parse shifts {text!r}; use e.g. 0..32, 0..32:2 or 0,1,2,4") from None
    if not out:
        raise ValueError(f"no shifts in {text!r}")
    return out


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "robustness",
        help="measure the translation robustness of metrics on a folder of images",
        description=(
            "Shift sweeps d(x, T_k x) with their dominant period and ripple, rank-flip rates under "
            "k-pixel shifts, and the shift-to-distortion ratio, for each metric; writes JSON, CSV and PNG."
        ),
    )
    p.add_argument("--images", required=True, metavar="DIR",
                   help="folder of images (png, jpg, bmp, tif, webp; sorted by name)")
    p.add_argument("--metrics", required=True, metavar="NAME[,NAME...]",
                   help="metric names from the registry: mse, l1, lpips-vgg, any variant (also as "
                        "invariant:<variant>), installed peers (dists, stlpips-vgg, lpips-pkg, ssim, ...)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--size", default="192", metavar="WxH",
                   help="centre crop: WIDTHxHEIGHT, N for NxN, or 'none' for images of one size (default 192)")
    p.add_argument("--resize", action="store_true", help="rescale each image to cover --size before cropping")
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="use the first N images (sorted by name)")
    p.add_argument("--shifts", default="0..32", help="sweep shifts: A..B[:STEP] or a comma list (default 0..32)")
    p.add_argument("--axis", choices=("x", "y"), default="x", help="shift direction (default x)")
    p.add_argument("--protocols", default="crop,mirror",
                   help="comma list of sweep protocols: crop, mirror, circular, fourier, bilinear (default crop,mirror)")
    p.add_argument("--flip-shifts", default="1,2,3", help="shifts for rank flips, or 'none' (default 1,2,3)")
    p.add_argument("--flip-images", type=int, default=None, metavar="N",
                   help="rank flips on the first N images only (136 triplets each; default all)")
    p.add_argument("--batch-size", type=int, default=16, metavar="N",
                   help="image pairs per metric call (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise distortions")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="autocast precision of the metrics (default fp32; bf16 on CPU is fast only with AMX)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    # deferred: start-up time (the study imports torch; registering the command must not)
    import torch

    from ..data.sizes import hw, parse_size
    from ..progress import progress_bar
    from .images import load_images
    from .measures import PROTOCOLS, evaluate_metric, evaluate_stages
    from .report import matplotlib_available, write_report

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"--device must be cpu or cuda, got {device!r}")
    from ..metric.cli import parse_device

    device = str(parse_device(device))  # a clear message when CUDA is asked for but not usable
    names = [n.strip() for n in str(args.metrics).split(",") if n.strip()]
    if not names:
        raise ValueError("--metrics is empty")
    protocols = [p.strip() for p in str(args.protocols).split(",") if p.strip()]
    for proto in protocols:
        if proto not in PROTOCOLS:
            raise ValueError(f"unknown protocol {proto!r}; choose from {', '.join(PROTOCOLS)}")
    shifts = parse_shifts(args.shifts)
    flip_shifts = None if str(args.flip_shifts).strip().lower() in ("", "none", "0") else parse_shifts(args.flip_shifts)
    size = hw(parse_size(args.size))  # (height, width)
    plots = not args.no_plots
    if plots and not matplotlib_available():
        print("invariant-lpips robustness: matplotlib is not installed, skipping plots "
              "(pip install matplotlib)", file=sys.stderr)
        plots = False

    files, images = load_images(args.images, size, args.max_images, resize=args.resize)
    images = images.to(device)

    config = {
        "images": str(args.images),
        "files": [p.name for p in files],
        "size": list(size) if size else None,
        "resize": bool(args.resize),
        "shifts": shifts,
        "axis": args.axis,
        "protocols": protocols,
        "flip_shifts": flip_shifts,
        "flip_images": args.flip_images,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "device": device,
        "metrics": names,
        "dtype": args.dtype,
    }
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    # fail fast: every metric must build before hours of work start
    for name in names:
        del_me = resolve_metric(name, device)
        del del_me
    stages = evaluate_stages(protocols, flip_shifts)
    results = []
    with progress_bar(total=len(names) * len(stages), desc="robustness", unit="stage", disable=args.quiet) as bar:
        for name in names:
            metric = resolve_metric(name, device)
            bar.set_postfix({"metric": name})

            def step(stage: str, _bar=bar, _name=name) -> None:
                _bar.set_postfix({"metric": f"{_name} {stage}"})
                _bar.update(1)

            with torch.autocast(torch.device(device).type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                res = evaluate_metric(
                    metric,
                    images,
                    shifts=shifts,
                    axis=args.axis,
                    protocols=protocols,
                    flip_shifts=flip_shifts,
                    flip_images=args.flip_images,
                    batch_size=args.batch_size,
                    name=str(getattr(metric, "name", None) or name),
                    seed=args.seed,
                    callback=step,
                )
            res["requested_name"] = name
            results.append(res)
            del metric
            write_report(results, args.out, config=config, plots=False)  # partial results survive a crash

    paths = write_report(results, args.out, config=config, plots=plots)
    from .report import summary_table

    print(summary_table(results))
    print("(flip rate: share of triplets whose order a small shift flips; shift/noise, shift/blur: median "
          "distance of a shift over that of a faint distortion; ripple: the periodic part of the shift sweep; "
          "lower is more robust everywhere)")
    if not args.quiet:
        print(f"files in {args.out}: " + ", ".join(Path(p).name for p in paths.values()))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run only this sub-command (``python -m invariant_lpips.robustness.cli ...``)."""
    parser = argparse.ArgumentParser(prog="invariant-lpips")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["robustness", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
