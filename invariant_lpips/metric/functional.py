"""Functional forms: ``distance(x, y, variant=...)`` and file-level ``distance_files``.

Both get their metric from the one registry (:func:`invariant_lpips.metric.registry.shared_module`: built
once per variant and device, then kept).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

from ..data.io import load_image
from ..features.variants import DEFAULT_VARIANT
from .registry import shared_module

#: the kept metric module of a variant (``"lpips-vgg"`` for the LPIPS baseline); an alias of the registry's
get_metric = shared_module


def distance(x: torch.Tensor, y: torch.Tensor, variant: str = DEFAULT_VARIANT, normalize: bool = False,
             reduction: str = "none") -> torch.Tensor:
    """Perceptual distance between two image batches (the metric is built once and kept).

    Args:
        x, y: (N, 3, H, W) images in [-1, 1], or [0, 1] with ``normalize=True`` (the same default as
            the classes and as ``lpips``; a one-time warning flags [0, 1] inputs passed without it).
        variant: an InvariantLPIPS variant name, or ``"lpips-vgg"`` for the LPIPS baseline.
        reduction: ``"none"`` -> (N,), ``"mean"`` or ``"sum"`` -> scalar.
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    d = shared_module(variant, x.device)(x, y, normalize=normalize).flatten()
    if reduction == "mean":
        return d.mean()
    if reduction == "sum":
        return d.sum()
    return d


def distance_files(ref: Union[str, Path], dist: Union[str, Path], variant: str = DEFAULT_VARIANT,
                   device: Union[str, torch.device] = "cpu") -> float:
    """Distance between two image files (loaded with Pillow; sizes may differ for InvariantLPIPS)."""
    x = load_image(ref, device=device)
    y = load_image(dist, device=device)
    with torch.inference_mode():
        return float(distance(x, y, variant=variant, normalize=True))
