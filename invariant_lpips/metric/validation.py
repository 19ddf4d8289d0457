"""Input checks shared by every metric, with messages that say what is wrong and how to fix it.

Warnings are issued with :func:`warn_at_caller`, so they are reported at the user's line (not inside this
package or PyTorch), and Python's default filter shows each once per call site.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Optional, Tuple, Type

import torch

#: float error allowed when telling which range values are in (e.g. "both inputs lie in [0, 1]")
RANGE_TOLERANCE = 1e-3
#: values up to this fraction of the expected range's width outside it are scored as given, as lpips does
#: (bicubic overshoot, a generator's output in [-1.05, 1.05], [0, 1] * 1.001): [-0.25, 1.25] with
#: ``normalize=True``, [-1.5, 1.5] with ``normalize=False``
RANGE_BAND = 0.25
#: with normalize=False, both inputs inside [0, 1] and each spanning at least this much -> warn
NORMALIZE_TRAP_SPAN = 0.25


class NormalizeWarning(UserWarning):
    """Inputs look like [0, 1] images but ``normalize=False`` treats them as [-1, 1].

    Silence it with ``warnings.filterwarnings("ignore", category=invariant_lpips.NormalizeWarning)``.
    """


#: packages whose frames a warning skips to reach the user's line (their directories, when imported)
_PASS_THROUGH_PACKAGES = ("invariant_lpips", "torch", "torchmetrics", "lightning", "pytorch_lightning")


def _pass_through_dirs() -> Tuple[str, ...]:
    dirs = []
    for name in _PASS_THROUGH_PACKAGES:
        mod = sys.modules.get(name)
        file = getattr(mod, "__file__", None)
        if file:
            dirs.append(os.path.dirname(os.path.abspath(file)) + os.sep)
    return tuple(dirs)


def caller_stacklevel() -> int:
    """The ``stacklevel`` (for a ``warnings.warn`` in the function that calls this one) of the first frame
    outside this package, PyTorch and torchmetrics/Lightning: the user's line, however the metric was
    reached (``metric(x, y)``, ``metric.forward(x, y)``, ``distance(...)``, a torchmetrics wrapper)."""
    skip = _pass_through_dirs()
    frame = sys._getframe(1)  # the function that will call warnings.warn: stacklevel 1
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(skip):
        frame = frame.f_back
        level += 1
    return level


def warn_at_caller(message: str, category: Type[Warning] = UserWarning) -> None:
    """``warnings.warn`` reported at the user's line (see :func:`caller_stacklevel`)."""
    warnings.warn(message, category, stacklevel=caller_stacklevel())


def check_image_batch(
    x: torch.Tensor,
    name: str,
    *,
    normalize: bool,
    min_size: int,
    check_values: bool = True,
) -> torch.Tensor:
    """Validate one input batch and return it as (N, 3, H, W) floating point.

    Accepts (N, 1, H, W) by repeating the channel three times (grey images).
    """
    return _check_image_batch(x, name, normalize=normalize, min_size=min_size, check_values=check_values)[0]


def _check_image_batch(x, name, *, normalize, min_size, check_values) -> Tuple[torch.Tensor, Optional[Tuple[float, float]]]:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, 3, H, W), got {type(x).__name__}; "
                        "load images with invariant_lpips.load_image()")
    if x.is_meta:
        raise ValueError(f"{name} is on the 'meta' device: it has a shape {tuple(x.shape)} but no values (made "
                         "under torch.device('meta') or by a lazy/empty initialisation). Create or load the real "
                         "image on 'cpu' or 'cuda' (e.g. invariant_lpips.load_image(path)) and pass that")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {tuple(x.shape)} ({x.ndim} dims). "
                         f"{_ndim_hint(x)}")
    if x.is_complex():
        raise TypeError(f"{name} has complex dtype {x.dtype}; images are real: pass x.real (or x.abs() for a "
                        "magnitude) as a float tensor")
    if x.dtype == torch.bool:
        raise TypeError(f"{name} has dtype torch.bool (a mask, not an image); convert it with x.float() "
                        "(0 and 1) and pass normalize=True")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} has integer dtype {x.dtype}; convert it to float first, e.g. x.float() / 255 "
            "with normalize=True (inputs in [0, 1])"
        )
    c = x.shape[1]
    if c == 1:
        x = x.expand(-1, 3, -1, -1)
    elif c != 3:
        raise ValueError(f"{name} must have 3 (RGB) or 1 (grey) channels on axis 1, got {c} in shape "
                         f"{tuple(x.shape)}; channels-last arrays need x.permute(0, 3, 1, 2)")
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        why = {32: " (the minimum for every variant: at 32 px pool5, the deepest VGG-16 tap a variant can read, "
                   "keeps one cell; variants that stop earlier accept the same minimum)",
               16: " (LPIPS' deepest VGG-16 tap, relu5_3, follows four halvings of the size)"}.get(min_size, "")
        raise ValueError(f"{name} is {h}x{w} pixels (HxW); this metric needs at least {min_size}x{min_size}{why}. "
                         "Upsample or use larger crops.")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N=0)")
    value_range = None
    if check_values:
        with torch.no_grad():
            finite = torch.isfinite(x).all()
            lo, hi = x.min(), x.max()
        if not bool(finite):
            raise ValueError(f"{name} contains NaN or Inf values; clean the input (torch.nan_to_num) first")
        lo, hi = float(lo), float(hi)
        low, high = expected_range(normalize)
        a, b = accepted_range(normalize)
        if lo < a or hi > b:
            raise ValueError(
                f"{name} has values in [{lo:.4g}, {hi:.4g}] but normalize={normalize} expects "
                f"[{low:g}, {high:g}] (values up to {a:g} / {b:g} are scored as given, as lpips does); "
                f"{range_hint(x, lo, hi, normalize)}. To score the values exactly as they are, build the "
                "metric with check_inputs=False"
            )
        value_range = (lo, hi)
    return x, value_range


def expected_range(normalize: bool) -> Tuple[float, float]:
    """The range images are expected in: [0, 1] with ``normalize=True``, else [-1, 1]."""
    return (0.0, 1.0) if normalize else (-1.0, 1.0)


def accepted_range(normalize: bool) -> Tuple[float, float]:
    """The expected range widened by :data:`RANGE_BAND` of its width on each side (values in it are scored
    as given): ``[low - 0.25 (high - low), high + 0.25 (high - low)]``, i.e. [-0.25, 1.25] or [-1.5, 1.5]."""
    low, high = expected_range(normalize)
    band = RANGE_BAND * (high - low)
    return low - band, high + band


def _ndim_hint(x: torch.Tensor) -> str:
    """How to turn a tensor of the wrong number of dimensions into (N, 3, H, W)."""
    shape = tuple(x.shape)
    if x.ndim == 3:
        if shape[-1] in (1, 3) and shape[0] not in (1, 3):
            return ("It looks like one (H, W, C) image: use x.permute(2, 0, 1).unsqueeze(0) "
                    f"-> (1, {shape[-1]}, {shape[0]}, {shape[1]}).")
        return f"Add a batch axis with x.unsqueeze(0) -> (1, {shape[0]}, {shape[1]}, {shape[2]})."
    if x.ndim == 2:
        return (f"It looks like one grey (H, W) image: use x[None, None] -> (1, 1, {shape[0]}, {shape[1]}) "
                "(grey is repeated to RGB).")
    if x.ndim == 5:
        merged = shape[0] * shape[1]
        return ("It looks like a video or a stack of batches (T, N, 3, H, W) / (N, T, 3, H, W): merge the two "
                f"leading axes with x.flatten(0, 1) -> ({merged}, {shape[2]}, {shape[3]}, {shape[4]}), and "
                "reshape the distances back with d.view(" + f"{shape[0]}, {shape[1]}) afterwards.")
    if x.ndim > 5:
        return (f"Merge the leading axes into one batch axis: x.flatten(0, {x.ndim - 4}) -> "
                f"({'*'.join(str(n) for n in shape[:-3])}, {shape[-3]}, {shape[-2]}, {shape[-1]}).")
    return "An image batch has 4 dims: (batch, channels, height, width); load images with invariant_lpips.load_image()."


def range_hint(x: torch.Tensor, lo: float, hi: float, normalize: bool) -> str:
    """Advice that fits the range the values actually span: [0, 255], [0, 65535], [-1, 1] or none of these."""
    tol = RANGE_TOLERANCE
    with torch.no_grad():
        whole = hi > 1 and bool(torch.equal(x, x.round()))
    if lo >= -tol and hi <= 255 + tol and (hi > 10 or whole):
        # 8-bit values as float: large, or whole numbers (a [0, 2] float image is neither)
        return ("values look like [0, 255]: divide by 255" + ("" if normalize else " and pass normalize=True"))
    if lo >= -tol and 255 < hi <= 65535 + tol:
        return ("values look like 16-bit [0, 65535]: divide by 65535" +
                ("" if normalize else " and pass normalize=True"))
    if normalize and lo >= -1 - tol and hi <= 1 + tol:
        if lo < -0.5:
            return "values look like [-1, 1]: pass normalize=False"
        return ("values look like [-1, 1] images (pass normalize=False) or [0, 1] images that overshoot below 0 "
                "(clamp them: x.clamp(0, 1))")
    clamp = "x.clamp(0, 1)" if normalize else "x.clamp(-1, 1)"
    return ("the values fit none of the ranges this metric knows ([0, 1] with normalize=True, [-1, 1] with "
            "normalize=False, [0, 255] or [0, 65535] to divide first). If the images were standardised "
            "((x - mean) / std, e.g. with ImageNet's mean and std), undo that first (x * std + mean gives [0, 1]) "
            f"and pass normalize=True; if they are images that overshoot their range (resampling, a generator's "
            f"output), clamp them: {clamp}")


def check_pair(
    in0: torch.Tensor,
    in1: torch.Tensor,
    *,
    normalize: bool,
    min_size: int,
    same_size: bool,
    check_values: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Validate a pair of batches: devices, batch sizes (1 broadcasts) and, if asked, sizes."""
    in0, r0 = _check_image_batch(in0, "in0", normalize=normalize, min_size=min_size, check_values=check_values)
    in1, r1 = _check_image_batch(in1, "in1", normalize=normalize, min_size=min_size, check_values=check_values)
    if not normalize and r0 is not None and r1 is not None and all(
            r[0] >= -RANGE_TOLERANCE and r[1] - r[0] >= NORMALIZE_TRAP_SPAN for r in (r0, r1)):
        warn_at_caller("both inputs lie in [0, 1] but normalize=False treats them as [-1, 1] images, which gives "
                       "a wrong distance for [0, 1] images: pass normalize=True (or map them with 2 * x - 1). "
                       "Silence with warnings.filterwarnings('ignore', category=invariant_lpips.NormalizeWarning).",
                       NormalizeWarning)
    if in0.device != in1.device:
        raise ValueError(f"in0 is on {in0.device} but in1 is on {in1.device}; move both to the same device "
                         "(and the metric too: metric.to(device))")
    n0, n1 = in0.shape[0], in1.shape[0]
    if n0 != n1 and n0 != 1 and n1 != 1:
        raise ValueError(f"batch sizes differ: in0 has {n0} images and in1 has {n1}; they must be equal, "
                         "or one of them 1 (broadcast against the other)")
    if same_size and in0.shape[-2:] != in1.shape[-2:]:
        raise ValueError(f"in0 is {tuple(in0.shape[-2:])} and in1 is {tuple(in1.shape[-2:])} (H, W); the "
                         "spatial LPIPS baseline needs equal sizes (InvariantLPIPS accepts different sizes)")
    return in0, in1


def check_module_device(module: torch.nn.Module, x: torch.Tensor) -> None:
    p = next(module.parameters(), None)
    if p is None:
        p = next(module.buffers(), None)
    if p is not None and p.is_meta:
        raise ValueError("the metric's weights are on the 'meta' device (it was built under torch.device('meta') "
                         "or an empty-weights context), so they hold no values; build it outside that context, "
                         f"e.g. {type(module).__name__}().to('{x.device}')")
    if p is not None and p.device != x.device:
        raise ValueError(f"the metric is on {p.device} but the inputs are on {x.device}; call "
                         f"metric.to('{x.device}') or move the inputs")
