"""Functional forms: ``distance(x, y, variant=...)`` and file-level ``distance_files``.

Both score with a module built by the one registry (``registry._build_module``) and kept *privately* per
(variant, device): it is never handed out, so casting or moving a metric got elsewhere
(``build_metric()``, ``InvariantLPIPS()``) cannot change what :func:`distance` computes.

>>> import torch
>>> reduce_distances(torch.tensor([1.0, 3.0]), "mean"), reduce_distances(torch.tensor([1.0, 3.0]), "sum")
(tensor(2.), tensor(4.))
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional, Union

import torch

from ..data.io import load_image
from ..features.variants import DEFAULT_VARIANT
from .registry import _build_module

#: ``"none"`` -> per image (N,), ``"mean"`` / ``"sum"`` -> a scalar
REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: Optional[str]) -> str:
    """A valid reduction name (``None`` is ``"none"``, as torchmetrics allows)."""
    reduction = "none" if reduction is None else reduction
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def reduce_distances(d: torch.Tensor, reduction: Optional[str], count: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The one reduction switch: ``d`` as it is (``"none"``), its sum, or its mean (the sum over ``count``
    when given: torchmetrics' accumulated sum and count)."""
    reduction = check_reduction(reduction)
    if reduction == "none":
        return d
    total = d.sum()
    if reduction == "sum":
        return total
    return total / (d.numel() if count is None else count)


@functools.lru_cache(maxsize=8)
def _private_module(variant: str, device: str) -> torch.nn.Module:
    return _build_module(variant, device=device)


def distance(x: torch.Tensor, y: torch.Tensor, variant: str = DEFAULT_VARIANT, normalize: bool = False,
             reduction: str = "none") -> torch.Tensor:
    """Perceptual distance between two image batches (the metric is built once per variant and device).

    Args:
        x, y: (N, 3, H, W) images in [-1, 1], or [0, 1] with ``normalize=True`` (the same default as
            the classes and as ``lpips``; a one-time warning flags [0, 1] inputs passed without it).
        variant: an InvariantLPIPS variant name, or ``"lpips-vgg"`` for the LPIPS baseline.
        reduction: ``"none"`` -> (N,), ``"mean"`` or ``"sum"`` -> scalar.
    """
    check_reduction(reduction)
    d = _private_module(variant, str(x.device))(x, y, normalize=normalize).flatten()
    return reduce_distances(d, reduction)


def distance_files(ref: Union[str, Path], dist: Union[str, Path], variant: str = DEFAULT_VARIANT,
                   device: Union[str, torch.device] = "cpu") -> float:
    """Distance between two image files (loaded with Pillow; sizes may differ for InvariantLPIPS)."""
    x = load_image(ref, device=device)
    y = load_image(dist, device=device)
    with torch.inference_mode():
        return float(distance(x, y, variant=variant, normalize=True))
