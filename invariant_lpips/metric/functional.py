"""Functional forms: ``distance(x, y, variant=...)`` and file-level ``distance_files``."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple, Union

import torch

from .variants import DEFAULT_VARIANT

_CACHE: Dict[Tuple[str, str], torch.nn.Module] = {}


def get_metric(variant: str = DEFAULT_VARIANT, device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """A cached metric instance (``variant="lpips-vgg"`` gives the LPIPS baseline)."""
    key = (variant, str(device))
    if key not in _CACHE:
        if variant in ("lpips-vgg", "lpips"):
            from .lpips_baseline import LPIPS

            m = LPIPS()
        else:
            from .invariant import InvariantLPIPS

            m = InvariantLPIPS(variant=variant)
        _CACHE[key] = m.to(device).eval()
    return _CACHE[key]


def distance(x: torch.Tensor, y: torch.Tensor, variant: str = DEFAULT_VARIANT, normalize: bool = True,
             reduction: str = "none") -> torch.Tensor:
    """Perceptual distance between two image batches (functional form, metric built once and cached).

    Args:
        x, y: (N, 3, H, W) images, in [0, 1] by default (``normalize=True``) or [-1, 1].
        variant: an InvariantLPIPS variant name, or ``"lpips-vgg"`` for the LPIPS baseline.
        reduction: ``"none"`` -> (N,), ``"mean"`` or ``"sum"`` -> scalar.
    """
    metric = get_metric(variant, x.device)
    d = metric(x, y, normalize=normalize).flatten()
    if reduction == "mean":
        return d.mean()
    if reduction == "sum":
        return d.sum()
    if reduction != "none":
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    return d


def distance_files(ref: Union[str, Path], dist: Union[str, Path], variant: str = DEFAULT_VARIANT,
                   device: Union[str, torch.device] = "cpu") -> float:
    """Distance between two image files (loaded with Pillow; sizes may differ for InvariantLPIPS)."""
    from ..data.io import load_image

    x = load_image(ref, device=device)
    y = load_image(dist, device=device)
    with torch.inference_mode():
        return float(distance(x, y, variant=variant))
