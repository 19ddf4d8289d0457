"""Spatial statistics of tapped feature maps (pure functions).

Shapes: a tapped map is (N * P, C, h, w) where ``P`` phase groups were stacked on the batch axis
by polyphase pooling (``P = 1`` otherwise). Every statistic returns (N, C) or keeps space.
"""
from __future__ import annotations

import torch

#: epsilon of LPIPS' channel normalisation (kept for parity; computed in float32 so it cannot
#: underflow in half precision)
LPIPS_EPS = 1e-10


def unit_normalize(feat: torch.Tensor, eps: float = LPIPS_EPS) -> torch.Tensor:
    """LPIPS' ``normalize_tensor``: divide each position's channel vector by its L2 norm.

    ``f / (sqrt(sum_c f^2) + eps)``, evaluated in float32. (N, C, h, w) -> same shape, float32.
    """
    feat = feat.float()
    norm = torch.sqrt(torch.sum(feat * feat, dim=1, keepdim=True))
    return feat / (norm + eps)


def global_average(feat: torch.Tensor, phases: int = 1) -> torch.Tensor:
    """Global Average Pooling over space and over ``phases`` stacked polyphase groups.

    (N * P, C, h, w) -> (N, C), float32: ``g_c = mean_{p, y, x} f[p*N + n, c, y, x]``.
    """
    feat = feat.float()
    if phases == 1:
        return feat.mean(dim=(2, 3))
    n = feat.shape[0] // phases
    return feat.reshape(phases, n, feat.shape[1], -1).mean(dim=(0, 3))


def spatial_average(x: torch.Tensor, keepdim: bool = True) -> torch.Tensor:
    """Mean over the two spatial axes (LPIPS' ``spatial_average``)."""
    return x.mean(dim=(2, 3), keepdim=keepdim)
