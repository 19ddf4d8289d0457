"""The one weighted distance between pooled statistics (used by the metric and by calibration).

A *term* ``k`` is one (space, statistic, tap) key of :mod:`invariant_lpips.features.pooled`, e.g.
``unit.mean.pool3``, with non-negative per-channel weights ``w_k`` (C_k,). Its weighted squared
difference is ``D_k(x, y) = sum_c w_kc (s_kc(x) - s_kc(y))^2``. The formulations:

``lpips`` (LPIPS-style GAP)  ``d = sum_k D_k``                      terms ``unit.mean.<tap>``
``paper`` (Alabau-Bosque)    ``d = sqrt( sum_k D_k / C )``,  w_k = (per-channel weight)^2,  C = sum_k C_k;
                             terms ``raw.mean.<tap>``
``stats``                    ``d = sum_k a_k (sqrt(D_k + e^2) - e)``  with scalars ``a_k >= 0``, e = 1e-6
``stats-sq``                 ``d = sum_k a_k D_k``  (the same terms, summed as squares, as LPIPS does)
``texture``                  ``d = sum_k a_k T_k`` on *raw* statistics, where for a trunk tap
                             ``T_k = sum_c w_kc (1 - (2 s_x s_y + c0) / (s_x^2 + s_y^2 + c0)) / sum_c w_kc``
                             ``= sum_c w_kc (s_x - s_y)^2 / (s_x^2 + s_y^2 + c0) / sum_c w_kc``
                             (DISTS' texture similarity of pooled means and spreads, c0 = 1e-6) and for
                             the CIELab tap ``T_k = D_k`` (squared differences, Lab / 100)

``stats`` sums *norms*, not squared norms: a local distortion covering a fraction ``a`` of the image
moves a pooled statistic by about ``a``, so ``D_k`` shrinks like ``a^2`` but its norm like ``a`` (as LPIPS,
which compares before pooling). The ``e`` keeps the gradient finite at d(x, x) = 0.

Shapes: statistics dicts of (N, C_k) tensors; returns (N,) and optionally the per-term (N,) tensors.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple, Union

import torch

from .pooled import Stats

#: the ``e`` of the ``stats`` formulation
NORM_EPS = 1e-6
#: the ``c0`` of the ``texture`` formulation (DISTS' constant)
TEXTURE_C = 1e-6


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not NaN/Inf) gradient at 0, so d(x, x) = 0 is differentiable."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def term_differences(s0: Stats, s1: Stats, terms: Sequence[str], channel_weights: Dict[str, torch.Tensor],
                     formulation: str = "lpips") -> torch.Tensor:
    """``D_k`` for every term (``T_k`` for ``texture``): (N, K) float32 (N broadcasts between the two sides)."""
    cols = []
    for k in terms:
        a, b = s0[k].float(), s1[k].float()
        w = channel_weights[k].to(a.device).float()
        if formulation == "texture" and not k.startswith("lab."):
            diff = a - b  # 1 - (2ab + c) / (a^2 + b^2 + c), written so that it is exactly >= 0 and 0 at a = b
            dissim = diff * diff / (a * a + b * b + TEXTURE_C)
            cols.append((w * dissim).sum(dim=-1) / w.sum().clamp_min(1e-12))
        else:
            diff = a - b
            cols.append((w * diff * diff).sum(dim=-1))
    return torch.stack(cols, dim=-1)


def combine(D: torch.Tensor, formulation: str, term_scales: Union[torch.Tensor, None] = None,
            n_channels: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-term squared differences (..., K) -> (distance (...), per-term contributions (..., K)).

    The contributions add up to the distance for ``lpips`` and ``stats``; for ``paper`` they are
    ``D_k / C`` (they add up to the distance squared), as the paper's per-layer terms.
    """
    if formulation == "lpips":
        return D.sum(-1), D
    if formulation in ("stats-sq", "texture"):
        if term_scales is None:
            raise ValueError(f"the {formulation!r} formulation needs term_scales (one a_k >= 0 per term)")
        per = term_scales.to(D.device, D.dtype) * D
        return per.sum(-1), per
    if formulation == "paper":
        per = D / n_channels
        return safe_sqrt(per.sum(-1)), per
    if formulation == "stats":
        if term_scales is None:
            raise ValueError("the 'stats' formulation needs term_scales (one a_k >= 0 per term)")
        per = term_scales.to(D.device, D.dtype) * (torch.sqrt(D + NORM_EPS ** 2) - NORM_EPS)
        return per.sum(-1), per
    raise ValueError(f"formulation must be 'lpips', 'paper', 'stats', 'stats-sq' or 'texture', got {formulation!r}")


def distance(s0: Stats, s1: Stats, terms: Sequence[str], channel_weights: Dict[str, torch.Tensor],
             formulation: str, term_scales: Union[torch.Tensor, None] = None, n_channels: int = 1
             ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The distance between two batches of statistics: returns ((N,), per-term (N, K))."""
    return combine(term_differences(s0, s1, terms, channel_weights, formulation), formulation, term_scales,
                   n_channels)
