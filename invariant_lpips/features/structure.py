"""Shift-tolerant *structure* statistics: where things are, at a coarse, anti-aliased scale.

The pooled statistics of :mod:`invariant_lpips.features.pooled` remove space entirely, so a mirror image
or a shuffle of blocks costs (almost) nothing. The statistics here keep a coarse arrangement:

``coarse map``  ``R_g(f)``: a tapped map ``f`` (N, C, h, w) at input stride ``s`` reduced by a Gaussian
                pyramid (binomial-5 low-pass, then subsample by 2; ``log2(g / s)`` steps) to one cell per
                ``g`` input pixels: (N, C, H / g, W / g). Each cell is a local mean of the channel over a
                Gaussian-like window about ``1.1 g`` px wide at half height. The low-pass before every
                subsampling makes the map change smoothly with the input's position: a shift by ``t`` px
                changes it by about ``t / g`` of its spatial variation, so a 1-2 px shift is nearly free
                and the cost grows with the displacement until ``t`` is about ``g``.

Comparisons of two coarse maps ``a``, ``b`` (same grid; centred per channel over positions:
``a~ = a - mean_p a``), each in [0, 2] and exactly 0 for ``a = b``:

``centred``  ``S = sum_c sum_p (a~_c - b~_c)^2 / (sum_c sum_p (a~_c^2 + b~_c^2) + c0)``
             the energy of the difference of the arrangements, relative to the arrangements' energy:
             blind to a per-channel offset (the pooled means carry those), sensitive to layout. It equals
             ``1 - rho`` for a single channel, with ``rho`` DISTS' structure similarity; summed over
             channels first, weak channels cannot blow it up.
``uncentred``  the same without centring (layout and level together).

Shapes: maps (N, C, h, w); comparisons return (N,). Two images of different sizes give grids of
different sizes; the larger grid is then resampled (area) to the smaller one before comparing.
"""
from __future__ import annotations

import math
from typing import Dict

import torch
import torch.nn.functional as F

#: the ``c0`` of the comparisons (features are O(1); maps of zero spread compare as equal)
STRUCTURE_C = 1e-6
COMPARISONS = ("centred", "uncentred")

_BINOMIAL5 = (1.0, 4.0, 6.0, 4.0, 1.0)


def pyramid_down(x: torch.Tensor, circular: bool = False) -> torch.Tensor:
    """One Gaussian-pyramid step: binomial-5 low-pass (separable), then keep every other cell.

    (N, C, h, w) -> (N, C, ceil(h / 2), ceil(w / 2)). ``circular`` pads circularly (exact invariance to
    circular shifts by multiples of the cell size), else by replicating the edge.
    """
    c = x.shape[1]
    k = torch.tensor(_BINOMIAL5, device=x.device, dtype=x.dtype)
    for axis in (2, 3):
        if x.shape[axis] < 2:
            continue
        radius = min(2, x.shape[axis] - 1)
        kk = k[2 - radius:3 + radius]
        kk = kk / kk.sum()
        if axis == 3:
            pad, weight = (radius, radius, 0, 0), kk.view(1, 1, 1, -1)
        else:
            pad, weight = (0, 0, radius, radius), kk.view(1, 1, -1, 1)
        x = F.conv2d(F.pad(x, pad, mode="circular" if circular else "replicate"),
                     weight.expand(c, 1, *weight.shape[2:]), groups=c)
    return x[:, :, ::2, ::2]


def coarse_map(feat: torch.Tensor, stride: int, cell_px: int, phases: int = 1, circular: bool = False
               ) -> torch.Tensor:
    """``R_g(f)``: (N * P, C, h, w) at input stride ``stride`` -> (N, C, h', w') float32, one cell per ``cell_px``.

    ``cell_px`` must be ``stride`` times a power of two (the phases of polyphase pooling are averaged).
    """
    steps = math.log2(cell_px / stride)
    if steps < 0 or abs(steps - round(steps)) > 1e-9:
        raise ValueError(f"cell_px ({cell_px}) must be the tap's stride ({stride}) times a power of two")
    f = feat if feat.dtype == torch.float64 else feat.float()
    if phases > 1:
        f = f.reshape(phases, f.shape[0] // phases, *f.shape[1:]).mean(dim=0)
    for _ in range(int(round(steps))):
        f = pyramid_down(f, circular)
    return f


def _common_grid(a: torch.Tensor, b: torch.Tensor):
    if a.shape[-2:] == b.shape[-2:]:
        return a, b
    h, w = min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1])
    return (F.adaptive_avg_pool2d(a, (h, w)) if a.shape[-2:] != (h, w) else a,
            F.adaptive_avg_pool2d(b, (h, w)) if b.shape[-2:] != (h, w) else b)


def compare_maps(a: torch.Tensor, b: torch.Tensor, comparison: str = "centred",
                 channel_weights: torch.Tensor = None) -> torch.Tensor:
    """The structure dissimilarity of two coarse maps (see the module docstring): (N, C, h, w) x2 -> (N,).

    ``a`` and ``b`` broadcast over N. ``channel_weights`` (C,) >= 0 weight the channels' energies.
    """
    if comparison not in COMPARISONS:
        raise ValueError(f"comparison must be one of {COMPARISONS}, got {comparison!r}")
    work = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    a, b = _common_grid(a.to(work), b.to(work))
    if comparison == "centred":
        a = a - a.mean(dim=(2, 3), keepdim=True)
        b = b - b.mean(dim=(2, 3), keepdim=True)
    diff = a - b
    num = (diff * diff).mean(dim=(2, 3))
    den = (a * a + b * b).mean(dim=(2, 3))
    if channel_weights is not None:
        w = channel_weights.to(num.device, num.dtype)
        num, den = num * w, den * w
    return num.sum(-1) / (den.sum(-1) + STRUCTURE_C)


def structure_key(tap: str, cell_px: int) -> str:
    """Key of a coarse map in a statistics dict: ``"raw.coarse<g>.<tap>"``."""
    return f"raw.coarse{cell_px}.{tap}"


def coarse_maps(feats: Dict[str, torch.Tensor], cells: Dict[str, int], strides: Dict[str, int],
                phases: Dict[str, int] = None, circular: bool = False) -> Dict[str, torch.Tensor]:
    """Coarse maps of several taps: ``{structure_key(tap, g): (N, C, h', w')}`` for ``cells = {tap: g}``."""
    phases = phases or {}
    return {structure_key(tap, g): coarse_map(feats[tap], strides[tap], g, phases.get(tap, 1), circular)
            for tap, g in cells.items()}
