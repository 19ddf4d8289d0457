"""Differentiable losses for calibrating linear weights against human judgements (pure functions).

Conventions: ``d`` are predicted distances (higher = more different); ``target`` is the human
*impairment* (higher = worse: pass ``-MOS`` for datasets whose score is higher = better). Every loss
is minimised when ``d`` agrees with ``target``.
"""
from __future__ import annotations

from typing import Optional

import torch


def pearson_loss(d: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``1 - PLCC(d, target)`` (the paper's loss, Alabau-Bosque et al. 2026)."""
    dc = d - d.mean()
    tc = target - target.mean()
    r = (dc * tc).sum() / torch.sqrt((dc * dc).sum() * (tc * tc).sum() + eps)
    return 1 - r


def pairwise_rank_loss(d: torch.Tensor, target: torch.Tensor, n_pairs: int = 20000,
                       generator: Optional[torch.Generator] = None, temperature: float = 0.1) -> torch.Tensor:
    """Pairwise logistic rank loss: mean ``log(1 + exp(-(d_i - d_j) / (tau * std(d))))`` over sampled
    pairs with ``target_i > target_j`` (a differentiable surrogate of 1 - SRCC; scale-free)."""
    n = d.shape[0]
    i = torch.randint(0, n, (n_pairs,), generator=generator)
    j = torch.randint(0, n, (n_pairs,), generator=generator)
    sign = torch.sign(target[i] - target[j])
    keep = sign != 0
    if not bool(keep.any()):
        return d.sum() * 0
    scale = d.detach().std().clamp_min(1e-12) * temperature
    z = sign[keep] * (d[i[keep]] - d[j[keep]]) / scale
    return torch.nn.functional.softplus(-z).mean()


def two_afc_bce_loss(d0: torch.Tensor, d1: torch.Tensor, judge: torch.Tensor,
                     log_temperature: torch.Tensor) -> torch.Tensor:
    """2AFC binary cross-entropy (LPIPS' objective, with a logistic link instead of its small net).

    ``P(humans prefer p1) = sigmoid((d0 - d1) / T)``; ``judge`` is the fraction preferring p1.
    """
    logits = (d0 - d1) / log_temperature.exp()
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, judge)


LOSSES = ("pearson", "rank", "2afc")
