"""Input checks shared by every metric, with messages that say what is wrong and how to fix it."""
from __future__ import annotations

import warnings
from typing import Optional, Tuple

import torch

#: values may exceed the declared range by this much (resampling overshoot, float error)
RANGE_TOLERANCE = 1e-3
#: with normalize=False, both inputs inside [0, 1] and each spanning at least this much -> warn
NORMALIZE_TRAP_SPAN = 0.25


class NormalizeWarning(UserWarning):
    """Inputs look like [0, 1] images but ``normalize=False`` treats them as [-1, 1].

    Silence it with ``warnings.filterwarnings("ignore", category=invariant_lpips.NormalizeWarning)``.
    """


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
    if x.ndim != 4:
        hint = " Add a batch axis with x.unsqueeze(0)." if x.ndim == 3 else ""
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {tuple(x.shape)} ({x.ndim} dims).{hint}")
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
        raise ValueError(f"{name} is {h}x{w} pixels; this metric needs at least {min_size}x{min_size} "
                         "(the trunk halves the size five times). Upsample or use larger crops.")
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
        low, high = (0.0, 1.0) if normalize else (-1.0, 1.0)
        if lo < low - RANGE_TOLERANCE or hi > high + RANGE_TOLERANCE:
            if normalize:
                hint = ("values look like [0, 255]: divide by 255" if hi > 1.5 else
                        "values look like [-1, 1]: pass normalize=False")
            else:
                hint = ("values look like [0, 255]: divide by 255 and pass normalize=True" if hi > 1.5 else
                        "inputs in [0, 1] need normalize=True")
            raise ValueError(
                f"{name} has values in [{lo:.4g}, {hi:.4g}] but normalize={normalize} expects "
                f"[{low:g}, {high:g}]; {hint}"
            )
        value_range = (lo, hi)
    return x, value_range


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
        warnings.warn("both inputs lie in [0, 1] but normalize=False treats them as [-1, 1] images, which gives "
                      "a wrong distance for [0, 1] images: pass normalize=True (or map them with 2 * x - 1). "
                      "Silence with warnings.filterwarnings('ignore', category=invariant_lpips.NormalizeWarning).",
                      NormalizeWarning, stacklevel=4)
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
    if p is not None and p.device != x.device:
        raise ValueError(f"the metric is on {p.device} but the inputs are on {x.device}; call "
                         f"metric.to('{x.device}') or move the inputs")
