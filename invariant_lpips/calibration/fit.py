"""Fitting non-negative per-channel weights on cached pair features.

Every distance is a function of a per-pair matrix ``phi`` built from cached pooled statistics
(:func:`~invariant_lpips.calibration.pairs.design_matrix`):

* a model linear in its parameters (LPIPS-style per-channel weights, or per-term scales of a ``mean-spread`` variant):
  ``d = phi @ w``
* ``paper``: ``d = sqrt(phi @ w^2 / C)``

(the variant's formulation predicts: :meth:`invariant_lpips.features.formulations.Formulation.predict`)

so calibration never touches the trunk: it runs in seconds on a CPU. Weights are kept
non-negative by a softplus parametrisation, pulled towards their initial values by ``weight_decay``
(an L2 penalty on ``w - w_init``, relative to ``mean(w_init^2)``), trained full-batch with Adam and
early-stopped on a validation split of *references* (never of pairs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..data.correlation import srcc
from ..features.formulations import Formulation, get_formulation
from .losses import pairwise_rank_loss, pearson_loss, two_afc_bce_loss


@dataclass
class FitConfig:
    loss: str = "pearson"            # pearson | rank | 2afc
    #: a Formulation or its name: how ``X`` and the parameters give a distance (calibration.pairs.fit_formulation
    #: gives a variant's); the default, ``lpips``, is the plain ``X @ w``
    formulation: Union[str, Formulation] = "weighted"
    lr: float = 0.02
    max_steps: int = 2000
    weight_decay: float = 1e-3
    patience: int = 100              # steps without validation improvement
    val_fraction: float = 0.2        # of references (0 disables early stopping)
    seed: int = 0


@dataclass
class FitResult:
    weights: torch.Tensor            # (D,) non-negative
    history: List[dict] = field(default_factory=list)
    best_step: int = 0
    best_val: float = float("nan")


def _inverse_softplus(w: torch.Tensor) -> torch.Tensor:
    w = w.clamp_min(1e-6)
    return torch.where(w > 20, w, torch.log(torch.expm1(w)))


def predict(phi: torch.Tensor, w: torch.Tensor, formulation: Union[str, Formulation]) -> torch.Tensor:
    """The distance of every pair from its design row ``phi`` and the parameters ``w`` (the formulation's)."""
    return get_formulation(formulation).predict(phi, w)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    r = srcc(a, b) if len(a) >= 3 else float("nan")
    return r if np.isfinite(r) else 0.0


def fit_weights(
    phi: torch.Tensor,
    target: torch.Tensor,
    groups: Sequence[str],
    init: torch.Tensor,
    config: FitConfig = FitConfig(),
    phi1: Optional[torch.Tensor] = None,
    progress: bool = False,
) -> FitResult:
    """Learn non-negative weights.

    Args:
        phi: (P, D) pair features (for ``2afc``: the reference-vs-p0 features).
        target: (P,) human impairment (higher = worse), or for ``2afc`` the fraction preferring p1.
        groups: (P,) reference id of each pair: the validation split holds out whole references.
        init: (D,) initial non-negative weights (e.g. LPIPS v0.1's, or ones).
        phi1: (P, D) reference-vs-p1 features, for ``2afc`` only.
        progress: a progress bar over the optimisation steps (on stderr; it ends early with early stopping).
    """
    if phi.ndim != 2 or phi.shape[0] != target.shape[0] or phi.shape[1] != init.shape[0]:
        raise ValueError(f"shapes do not fit: phi {tuple(phi.shape)}, target {tuple(target.shape)}, "
                         f"init {tuple(init.shape)}")
    if config.loss == "2afc" and phi1 is None:
        raise ValueError("loss '2afc' needs phi1 (the features of the second distorted image)")
    if config.loss not in ("pearson", "rank", "2afc"):
        raise ValueError(f"loss must be pearson, rank or 2afc, got {config.loss!r}")
    g = torch.Generator().manual_seed(config.seed)
    phi = phi.double()
    phi1 = phi1.double() if phi1 is not None else None
    target = target.double()
    init = init.double().clamp_min(0)
    # reference-level validation split
    refs = sorted(set(groups))
    rng = np.random.default_rng(config.seed)
    n_val = int(round(config.val_fraction * len(refs))) if len(refs) > 2 else 0
    val_refs = set(rng.permutation(refs)[:n_val].tolist()) if n_val else set()
    is_val = torch.tensor([grp in val_refs for grp in groups])
    tr = ~is_val
    # scale phi so the initial distances have unit std: Adam's step size is then scale-free
    with torch.no_grad():
        d0 = predict(phi[tr], init, config.formulation)
        scale = float(d0.std()) if float(d0.std()) > 0 else 1.0
    theta = _inverse_softplus(init).clone().requires_grad_(True)
    ref_sq = float((init ** 2).mean()) or 1.0
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta, log_t], lr=config.lr)

    def objective(mask):
        w = torch.nn.functional.softplus(theta)
        d = predict(phi[mask], w, config.formulation) / scale
        if config.loss == "pearson":
            main = pearson_loss(d, target[mask])
        elif config.loss == "rank":
            main = pairwise_rank_loss(d, target[mask], generator=g)
        else:
            d1 = predict(phi1[mask], w, config.formulation) / scale
            main = two_afc_bce_loss(d, d1, target[mask], log_t)
        reg = config.weight_decay * ((w - init) ** 2).mean() / ref_sq
        return main, reg, w

    def val_score(w):
        if not bool(is_val.any()):
            return float("nan")
        with torch.no_grad():
            d = predict(phi[is_val], w, config.formulation)
            if config.loss == "2afc":
                d1 = predict(phi1[is_val], w, config.formulation)
                agree = ((d < d1).double() * (1 - target[is_val]) + (d > d1).double() * target[is_val])
                return float(agree.mean())
            return _spearman(d.numpy(), target[is_val].numpy())

    best = (-float("inf"), 0, torch.nn.functional.softplus(theta).detach().clone())
    history = []
    from ..progress import progress_bar

    bar = progress_bar(total=config.max_steps, desc="fitting weights", unit="step", disable=not progress)
    for step in range(config.max_steps):
        bar.update(1)
        main, reg, w = objective(tr)
        loss = main + reg
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == config.max_steps - 1:
            w_now = torch.nn.functional.softplus(theta).detach()
            v = val_score(w_now)
            history.append({"step": step, "loss": float(main.detach()), "reg": float(reg.detach()), "val": v})
            if not np.isnan(v):
                if v > best[0] + 1e-6:
                    best = (v, step, w_now.clone())
                elif step - best[1] >= config.patience:
                    break
            else:
                best = (float("nan"), step, w_now.clone())
    bar.close()
    weights = best[2].float()
    return FitResult(weights=weights, history=history, best_step=best[1], best_val=best[0])
