"""``invariant-lpips robustness``: translation-robustness measurements of metrics on a folder of images.

Example::

    invariant-lpips robustness --images photos/ --metrics lpips-vgg,invariant:gap,mse \\
        --out results/robustness --size 192 --shifts 0..32 --device cuda

Metrics are built by :func:`resolve_metric` (``mse`` and ``l1`` are built in;
every other name goes through ``invariant_lpips.benchmarks.adapters.get_metric``).
Writes ``robustness.json``, ``sweeps.csv``, ``rank_flips.csv``,
``summary.csv`` and, when matplotlib is installed, ``sweep_<protocol>.png``
and ``rank_flips.png`` into ``--out``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# --------------------------------------------------------------------------- metrics


class _PixelMetric:
    """Built-in pixel metrics: mean over C, H, W of ``|x - y|^p``."""

    lower_is_better = True

    def __init__(self, name: str, power: int):
        self.name = name
        self.power = power

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        diff = (x - y).abs()
        if self.power == 2:
            diff = diff * diff
        return diff.flatten(1).mean(dim=1)

    def __repr__(self) -> str:
        return f"_PixelMetric({self.name!r})"


BUILTIN_METRICS = {"mse": lambda: _PixelMetric("mse", 2), "l1": lambda: _PixelMetric("l1", 1)}


def resolve_metric(name: str, device: Union[str, torch.device] = "cpu") -> Callable[[Tensor, Tensor], Tensor]:
    """Build the metric called ``name`` on ``device``.

    ``mse`` and ``l1`` are built in; anything else is delegated to
    ``invariant_lpips.benchmarks.adapters.get_metric(name, device=device)``.
    Tests replace this function (monkeypatch) to inject fake metrics.
    """
    key = name.strip().lower()
    if key in BUILTIN_METRICS:
        return BUILTIN_METRICS[key]()
    try:
        from invariant_lpips.benchmarks.adapters import get_metric
    except ModuleNotFoundError as exc:
        if exc.name in ("invariant_lpips.benchmarks.adapters", "invariant_lpips.benchmarks"):
            raise RuntimeError(
                f"metric {name!r} needs invariant_lpips.benchmarks.adapters, which is not available; "
                f"built-in metrics: {', '.join(sorted(BUILTIN_METRICS))}"
            ) from exc
        raise
    return get_metric(name, device=device)


# --------------------------------------------------------------------------- images


def _load_image_pil(path: Path) -> Tensor:
    """Fallback loader: RGB float tensor (3, H, W) in [0, 1] via Pillow."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def _loader() -> Callable[[Path], Tensor]:
    try:
        from invariant_lpips.data.io import load_image
    except ModuleNotFoundError as exc:
        if exc.name in ("invariant_lpips.data.io", "invariant_lpips.data"):
            return _load_image_pil
        raise
    except ImportError:  # the module exists but has no load_image yet
        return _load_image_pil
    return load_image


def load_image(path: Union[str, Path]) -> Tensor:
    """Load one image as a float tensor (3, H, W) in [0, 1]; errors name the path.

    Uses ``invariant_lpips.data.io.load_image`` when available (its
    ``(1, 3, H, W)`` result is squeezed), else a Pillow fallback."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        img = _loader()(path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:  # unreadable: always a ValueError naming the path
        msg = str(exc) if str(path) in str(exc) else f"cannot read image {path}: {exc}"
        raise ValueError(msg) from exc
    if isinstance(img, Tensor) and img.dim() == 4 and img.shape[0] == 1:
        img = img[0]  # data.io.load_image returns (1, 3, H, W)
    if not isinstance(img, Tensor) or img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"image {path}: expected a (3, H, W) tensor, got {getattr(img, 'shape', type(img))}")
    return img.float()


def parse_size(text: Union[str, int, None]) -> Optional[Tuple[int, int]]:
    """``'192'`` -> (192, 192); ``'256x192'`` (W x H) -> (192, 256) as (height, width)."""
    if text is None:
        return None
    if isinstance(text, int):
        return (text, text)
    t = str(text).strip().lower()
    try:
        if "x" in t:
            w, h = t.split("x", 1)
            size = (int(h), int(w))
        else:
            size = (int(t), int(t))
    except ValueError:
        raise ValueError(f"size must be N or WxH, got {text!r}") from None
    if min(size) < 1:
        raise ValueError(f"size must be positive, got {text!r}")
    return size


def center_crop(img: Tensor, size: Tuple[int, int], path: Any = None, resize: bool = False) -> Tensor:
    """Centre crop of (height, width) ``size``. With ``resize``, the image is
    first rescaled (antialiased bilinear) so that it just covers ``size``;
    without, an image smaller than ``size`` is an error naming ``path``."""
    h, w = int(img.shape[-2]), int(img.shape[-1])
    th, tw = size
    if resize:
        scale = max(th / h, tw / w)
        nh, nw = max(th, int(round(h * scale))), max(tw, int(round(w * scale)))
        if (nh, nw) != (h, w):
            img = torch.nn.functional.interpolate(
                img.unsqueeze(0), size=(nh, nw), mode="bilinear", align_corners=False, antialias=True
            ).squeeze(0).clamp(0, 1)
            h, w = nh, nw
    if h < th or w < tw:
        raise ValueError(f"image {path} is {w}x{h}, smaller than the crop {tw}x{th} (use --resize)")
    top = (h - th) // 2
    left = (w - tw) // 2
    return img[:, top : top + th, left : left + tw]


def list_images(folder: Union[str, Path]) -> List[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no .png/.jpg images in {folder}")
    return files


def load_images(
    folder: Union[str, Path], size: Optional[Tuple[int, int]], max_images: Optional[int] = None, resize: bool = False
) -> Tuple[List[Path], Tensor]:
    files = list_images(folder)
    if max_images is not None:
        files = files[: int(max_images)]
    imgs = []
    for p in files:
        img = load_image(p)
        if size is not None:
            img = center_crop(img, size, path=p, resize=resize)
        imgs.append(img)
    shapes = {tuple(i.shape) for i in imgs}
    if len(shapes) > 1:
        raise ValueError(f"images in {folder} have different sizes {sorted(shapes)}; give --size")
    return files, torch.stack(imgs).contiguous()


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


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "robustness",
        help="measure the translation robustness of metrics on a folder of images",
        description=(
            "Shift sweeps d(x, T_k x) with their dominant period and ripple, rank-flip rates under "
            "k-pixel shifts, and the shift-to-distortion ratio, for each metric; writes JSON, CSV and PNG."
        ),
    )
    p.add_argument("--images", required=True, metavar="DIR", help="folder of .png/.jpg images")
    p.add_argument("--metrics", required=True, metavar="NAME[,NAME...]",
                   help="metric names: mse, l1 (built in) or any name known to the benchmark adapters "
                        "(lpips-vgg, invariant:<variant>, dists, stlpips-vgg, ...)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--size", default="192", help="centre crop: N (square) or WxH (default 192)")
    p.add_argument("--resize", action="store_true", help="rescale each image to cover --size before cropping")
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="use the first N images (sorted by name)")
    p.add_argument("--shifts", default="0..32", help="sweep shifts: A..B[:STEP] or a comma list (default 0..32)")
    p.add_argument("--axis", choices=("x", "y"), default="x", help="shift direction (default x)")
    p.add_argument("--protocols", default="crop,mirror",
                   help="comma list of sweep protocols: crop, mirror, circular, fourier, bilinear (default crop,mirror)")
    p.add_argument("--flip-shifts", default="1,2,3", help="shifts for rank flips, or 'none' (default 1,2,3)")
    p.add_argument("--flip-images", type=int, default=None, metavar="N",
                   help="rank flips on the first N images only (136 triplets each; default all)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0, help="seed of the noise distortions")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .measures import PROTOCOLS, evaluate_metric, evaluate_stages
    from .report import matplotlib_available, write_report

    device = args.device or _default_device()
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"--device must be cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but CUDA is not available")
    names = [n.strip() for n in str(args.metrics).split(",") if n.strip()]
    if not names:
        raise ValueError("--metrics is empty")
    protocols = [p.strip() for p in str(args.protocols).split(",") if p.strip()]
    for proto in protocols:
        if proto not in PROTOCOLS:
            raise ValueError(f"unknown protocol {proto!r}; choose from {', '.join(PROTOCOLS)}")
    shifts = parse_shifts(args.shifts)
    flip_shifts = None if str(args.flip_shifts).strip().lower() in ("", "none", "0") else parse_shifts(args.flip_shifts)
    size = parse_size(args.size)
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
    }
    # fail fast: every metric must build before hours of work start
    for name in names:
        del_me = resolve_metric(name, device)
        del del_me
    stages = evaluate_stages(protocols, flip_shifts)
    results = []
    with tqdm(total=len(names) * len(stages), desc="robustness", unit="stage", disable=args.quiet,
              file=sys.stderr) as bar:
        for name in names:
            metric = resolve_metric(name, device)
            bar.set_postfix_str(name)

            def step(stage: str, _bar=bar, _name=name) -> None:
                _bar.set_postfix_str(f"{_name} {stage}")
                _bar.update(1)

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
    if not args.quiet:
        for key, path in paths.items():
            print(f"{key}: {path}")
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
