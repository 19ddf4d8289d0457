"""``invariant-lpips score``: distance between two images, or between two folders (paired by name);
``invariant-lpips variants``: the metrics ``--variant`` accepts.

``--variant`` takes any metric of the registry: our variants, ``lpips-vgg``, and the peers and pixel metrics
(``lpips-pkg``, ``dists``, ``ssim``, ``psnr``, ``mse``, ...) whose package is installed; a peer whose package
is missing is refused with the extra that provides it. Errors about an input name its file.

Registration imports nothing heavy (no torch): ``invariant-lpips --help`` must start at once.
Metrics are built by the one public accessor (:func:`invariant_lpips.metric.registry.build_metric`: [0, 1]
in, (N,) out).
Whatever a first run's weight fetch prints goes to stderr, so ``--json`` output on stdout stays valid.
"""
from __future__ import annotations

import contextlib
import csv
import json
import re
import sys
from pathlib import Path
from typing import List, Optional, TextIO, Tuple

#: what ``--variant`` falls back to; resolved at run time so that registration needs no torch
_DEFAULT_HELP = "the package's default variant, marked * by 'invariant-lpips variants'"


def register(sub) -> None:
    p = sub.add_parser(
        "score", help="distance between two images, or two folders paired by file name",
        description="Score REF against DIST (lower = more similar). With two image files, prints the distance "
                    "(or a JSON object with --json). With two folders, files with the same name are paired and "
                    "one CSV row (file,distance) per pair is written as it is scored (--out, or stdout), "
                    "or one JSON document with --json.")
    p.add_argument("ref", metavar="REF", help="reference image file, or folder of reference images")
    p.add_argument("dist", metavar="DIST", help="distorted image file, or folder of images with the same names")
    p.add_argument("--variant", default=None, metavar="NAME",
                   help=f"InvariantLPIPS variant, 'lpips-vgg' for the exact LPIPS-VGG baseline, or another metric "
                        f"of the registry whose package is installed (lpips-pkg, dists, ssim, psnr, mse, ...) "
                        f"(default: {_DEFAULT_HELP}); see 'invariant-lpips variants'")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="linear weights file from 'invariant-lpips calibrate' instead of the variant's shipped "
                        "weights")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--json", action="store_true", help="print JSON instead of plain text / CSV")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="write the result (CSV, or JSON with --json) to FILE instead of stdout; checked to be "
                        "writable before anything is scored")
    p.add_argument("--skip-missing", action="store_true",
                   help="folder mode: skip files without a partner and unreadable or invalid images, and list "
                        "them on stderr at the end (default: stop at the first one, naming it; rows already "
                        "written stay in the CSV)")
    p.set_defaults(func=run_score)

    v = sub.add_parser("variants", help="list the InvariantLPIPS variants (the names --variant accepts)",
                       description="The registered InvariantLPIPS variants; * marks the default. 'lpips-vgg' "
                                   "(the exact LPIPS-VGG baseline) and the other metrics of the registry (peers "
                                   "when their package is installed) are accepted by --variant too; the text "
                                   "listing ends with them.")
    v.add_argument("--json", action="store_true", help="print the table as JSON")
    v.set_defaults(func=run_variants)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _variant_name(args) -> str:
    if args.variant:
        return args.variant
    from ..features.variants import DEFAULT_VARIANT

    return DEFAULT_VARIANT


def _metric_spec(name: str, weights=None):
    """The registry entry of ``--variant``, checked before anything is loaded: an unknown name lists the
    names that work (and those an extra would add), a peer whose package is missing names the extra."""
    import importlib.util

    from . import peers
    from .registry import get_spec, list_metrics

    try:
        spec = get_spec(name)
    except ValueError:
        installed = list_metrics(installed_only=True)
        missing = [m for m in list_metrics(installed_only=False) if m not in installed]
        more = (f"; after pip install 'invariant-lpips[peers]' also: {', '.join(missing)}" if missing else "")
        raise ValueError(f"unknown metric {name!r} for --variant; installed: {', '.join(installed)}{more}") from None
    if spec.kind == "peer" and importlib.util.find_spec(peers.PEER_PACKAGES[spec.name][0]) is None:
        raise ValueError(f"metric {name!r} ({spec.description}) needs the optional package(s) {spec.package!r}, "
                         f"which is not installed: pip install 'invariant-lpips[peers]' (or pip install "
                         f"{spec.package})")
    if weights is not None and spec.kind not in ("ours", "baseline"):
        raise ValueError(f"--weights applies to InvariantLPIPS variants and lpips-vgg only, not to {name!r}")
    return spec


def _metric_on(name: str, weights, device):
    """The metric from the one public accessor (:func:`~invariant_lpips.metric.registry.build_metric`,
    images in [0, 1]); anything printed while resolving weights goes to stderr."""
    from . import registry

    with contextlib.redirect_stdout(sys.stderr):
        try:
            return registry.build_metric(name, device=device, weights=weights)
        except ImportError as exc:  # a peer importable only in part (its own undeclared dependencies)
            raise ValueError(str(exc)) from None


def parse_device(text: str):
    """``--device`` as a ``torch.device``, refused with a clear message when it is not usable here
    (no CUDA GPU visible, an index past the last GPU, no MPS) instead of the driver's raw error."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"--device {text!r} is not a device name; use cpu, cuda, cuda:1 or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = torch.version.cuda
            why = (f"this PyTorch ({torch.__version__}) is built for CUDA {built} but sees no GPU (driver missing, "
                   "CUDA_VISIBLE_DEVICES empty, or no GPU on this machine)" if built else
                   f"this PyTorch ({torch.__version__}) is a CPU-only build")
            raise ValueError(f"--device {text}: {why}; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {text}: only {torch.cuda.device_count()} CUDA GPU(s) are visible "
                             f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"--device {text}: Apple's MPS backend is not available here; use --device cpu")
    return device


def check_readable(path: Path) -> None:
    """Fail fast, before the model is built: ``path`` exists, is a file, can be read and decodes as an
    image header (the full decode happens when it is scored)."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise FileNotFoundError(f"not found: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    try:
        with Image.open(path) as im:
            im.size  # noqa: B018 - reads the header only
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not an image PIL can read (png, jpg, bmp, tiff, webp, ...)") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None


def _load_checked(path: Path, spec, device):
    """``path`` loaded in [0, 1] and checked for the metric, errors naming the file (not in0/in1)."""
    from ..data.io import load_image
    from .validation import check_image_batch

    x = load_image(path, device=device)
    check_image_batch(x, str(path), normalize=True, min_size=spec.min_size)
    return x


def _score_pair(metric, spec, ref: Path, dist: Path, x, y) -> float:
    """One distance; an error of the metric names the two files instead of in0/in1."""
    import torch

    if spec.kind != "ours" and x.shape[-2:] != y.shape[-2:]:
        raise ValueError(f"{ref} is {x.shape[-1]}x{x.shape[-2]} and {dist} is {y.shape[-1]}x{y.shape[-2]} "
                         f"(WIDTHxHEIGHT); {spec.name} compares images position by position, so the sizes must "
                         "be equal (InvariantLPIPS variants accept different sizes)")
    try:
        with torch.inference_mode():
            return float(metric(x, y))
    except ValueError as exc:
        msg = re.sub(r"\bin0\b", lambda _: str(ref), re.sub(r"\bin1\b", lambda _: str(dist), str(exc)))
        raise ValueError(msg) from None


def _open_out(path: Optional[str]) -> Tuple[TextIO, bool]:
    """``(file, close_it)``: ``path`` opened for writing now (before any scoring), or stdout."""
    if not path:
        return sys.stdout, False
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. {out / 'scores.csv'}")
    try:
        return open(out, "w", newline="", encoding="utf-8"), True
    except OSError as exc:
        raise ValueError(f"cannot write --out {out}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------------------------
# score
# --------------------------------------------------------------------------------------------
def run_score(args) -> int:
    ref, dist = Path(args.ref), Path(args.dist)
    for p in (ref, dist):
        if not p.exists():
            raise FileNotFoundError(f"not found: {p}")
    _metric_spec(_variant_name(args), args.weights)  # a bad --variant fails before anything is loaded
    if not ref.is_dir() and not dist.is_dir():
        check_readable(ref)
        check_readable(dist)
    if ref.is_dir() != dist.is_dir():
        raise ValueError(f"REF and DIST must both be image files or both be folders ({ref} is a "
                         f"{'folder' if ref.is_dir() else 'file'}, {dist} is a {'folder' if dist.is_dir() else 'file'})")
    if ref.is_dir():
        return _score_folders(args, ref, dist)
    return _score_files(args, ref, dist)


def _score_files(args, ref: Path, dist: Path) -> int:
    import torch

    name = _variant_name(args)
    spec = _metric_spec(name, args.weights)
    fh, close = _open_out(args.out)
    try:
        device = parse_device(args.device)
        x, y = _load_checked(ref, spec, device), _load_checked(dist, spec, device)  # before the (slow) build
        from ..features.tiling import tiling

        with tiling(progress=True):  # a big image is scored in strips, with a progress bar
            d = _score_pair(_metric_on(name, args.weights, device), spec, ref, dist, x, y)
        if args.json:
            fh.write(json.dumps({"ref": str(ref), "dist": str(dist), "variant": name, "distance": d,
                                 "lower_is_better": spec.lower_is_better}) + "\n")
        else:
            fh.write(f"{d:.6f}\n")
        fh.flush()
    finally:
        if close:
            fh.close()
    return 0


def _pair_folders(ref: Path, dist: Path, skip: bool) -> Tuple[List[str], dict, dict, List[Tuple[str, str]]]:
    from ..data.io import list_images

    refs = {p.name: p for p in list_images(ref)}
    dists = {p.name: p for p in list_images(dist)}
    common = sorted(set(refs) & set(dists))
    problems: List[Tuple[str, str]] = []
    for name in sorted(set(refs) ^ set(dists)):
        present, absent = (ref, dist) if name in refs else (dist, ref)
        problems.append((name, f"in {present} only, no file of that name in {absent}"))
    for name in list(common):  # unreadable files are found before the model is built
        for folder, files in ((ref, refs), (dist, dists)):
            try:
                check_readable(files[name])
            except (ValueError, OSError) as exc:
                problems.append((name, f"in {folder}: {exc}"))
                common.remove(name)
                break
    if problems and not skip:
        shown = "; ".join(f"{p}: {why}" for p, why in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(f"{len(problems)} file(s) have no partner or cannot be read: {shown}{more}. Pass "
                         "--skip-missing to score the pairs that exist and list the rest at the end")
    if not common:
        raise ValueError(f"no file names in common between {ref} and {dist}")
    return common, refs, dists, problems


def _score_folders(args, ref: Path, dist: Path) -> int:
    import torch

    from ..progress import progress_bar

    name = _variant_name(args)
    spec = _metric_spec(name, args.weights)
    common, refs, dists, problems = _pair_folders(ref, dist, args.skip_missing)
    fh, close = _open_out(args.out)  # before the (possibly slow) metric build and any scoring
    rows: List[dict] = []
    writer = None
    try:
        device = parse_device(args.device)
        metric = _metric_on(name, args.weights, device)
        if not args.json:
            writer = csv.DictWriter(fh, fieldnames=["file", "distance"])
            writer.writeheader()
            fh.flush()
        for file in progress_bar(common, desc="scoring", unit="pair"):
            try:
                x = _load_checked(refs[file], spec, device)
                y = _load_checked(dists[file], spec, device)
                d = _score_pair(metric, spec, refs[file], dists[file], x, y)
            except (ValueError, OSError) as exc:  # unreadable/corrupt/vanished image, or invalid for the metric
                if not args.skip_missing:
                    raise ValueError(f"pair {file!r} ({refs[file]} vs {dists[file]}): {exc}. Pass --skip-missing "
                                     "to skip such files and list them at the end") from None
                problems.append((file, str(exc)))
                continue
            rows.append({"file": file, "distance": d})
            if writer is not None:
                writer.writerow({"file": file, "distance": f"{d:.6f}"})
                fh.flush()
    except BaseException as exc:
        if args.json:  # still one valid JSON document, saying what went wrong
            _write_json(fh, name, rows, problems, error=str(exc) or type(exc).__name__)
        raise
    else:
        if args.json:
            _write_json(fh, name, rows, problems)
    finally:
        if close:
            fh.close()
        _report_problems(problems)
    return 0


def _write_json(fh: TextIO, variant: str, rows: List[dict], problems: List[Tuple[str, str]],
                error: Optional[str] = None) -> None:
    doc = {"variant": variant, "pairs": rows, "skipped": [{"file": f, "reason": r} for f, r in problems]}
    if error is not None:
        doc["error"] = error
    fh.write(json.dumps(doc, indent=1) + "\n")
    fh.flush()


def _report_problems(problems: List[Tuple[str, str]]) -> None:
    if not problems:
        return
    print(f"skipped {len(problems)} file(s) (names as in the CSV's 'file' column):", file=sys.stderr)
    for file, why in problems:
        print(f"  {file}: {why}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# variants
# --------------------------------------------------------------------------------------------
def used_pooling(name: str) -> str:
    """The down-samplers a variant's trunk really runs (up to its deepest tap): ``blurmax×2`` for a
    trunk that stops at pool2, ``max×5`` for one reaching pool5, ``a/b/...`` when they differ."""
    from ..features.variants import get_variant
    from ..trunk.vgg16 import POOL_LAYER_INDICES, TAP_LAYER_INDEX

    trunk = get_variant(name).trunk
    deepest = max(TAP_LAYER_INDEX[t] for t in trunk.taps)
    used = [p for p, idx in zip(trunk.pooling, POOL_LAYER_INDICES) if idx <= deepest]
    if not used:
        return "none"
    return f"{used[0]}×{len(used)}" if len(set(used)) == 1 else "/".join(used)


def run_variants(args) -> int:
    from ..features.variants import DEFAULT_VARIANT, variant_table
    from .registry import get_spec

    rows = variant_table()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    pools = {r["name"]: used_pooling(r["name"]) for r in rows}
    wn = max(len(r["name"]) for r in rows + [{"name": "lpips-vgg"}])
    wf = max(len(r["formulation"]) for r in rows)
    wp = max(len(p) for p in pools.values())
    wt = max(len(r["taps"]) for r in rows)
    for r in rows:
        get_spec(r["name"])  # every listed variant is a registry metric
        star = "*" if r["name"] == DEFAULT_VARIANT else " "
        print(f"{star} {r['name']:<{wn}}  {r['formulation']:<{wf}}  pooling={pools[r['name']]:<{wp}}  "
              f"taps={r['taps']:<{wt}}  weights={r['weights']}")
        print(f"    {r['description']}\n    invariance: {r['invariance']}")
    print(f"  {'lpips-vgg':<{wn}}  {get_spec('lpips-vgg').description} (the baseline; --variant accepts it too)")
    from .registry import list_metrics

    installed = set(list_metrics(installed_only=True))
    others = [m for m in list_metrics(installed_only=False) if get_spec(m).kind in ("peer", "pixel")]
    if others:
        print("\n  other metrics --variant accepts (for comparisons):")
        for m in others:
            spec = get_spec(m)
            status = "" if m in installed else f"  [not installed: pip install 'invariant-lpips[peers]']"
            print(f"  {m:<{wn}}  {spec.description}{status}")
    return 0
