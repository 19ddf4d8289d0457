"""torchmetrics wrappers: :class:`InvariantLPIPSMetric` and :class:`LPIPSMetric` (the exact LPIPS-VGG baseline).

Optional extra: ``pip install 'invariant-lpips[torchmetrics]'``.

They follow torchmetrics' ``LearnedPerceptualImagePatchSimilarity`` (LPIPS) conventions:

* ``update(preds, target)`` scores a batch, ``compute()`` reduces every score since the last ``reset()``:
  ``reduction="mean"`` (default) -> the mean over all images of all updates, ``"sum"`` -> their sum,
  ``"none"`` -> all scores, (N_total,);
* ``normalize=False`` (default): inputs in [-1, 1]; ``normalize=True``: inputs in [0, 1];
* calling the metric (``metric(preds, target)``) returns the batch's value and accumulates it;
  that value is differentiable (``is_differentiable = True``), usable as a loss;
* ``higher_is_better = False``, ``full_state_update = False``.

States are registered with ``add_state`` so that DDP synchronisation and ``merge_state`` work:
``sum_scores`` and ``total`` (``dist_reduce_fx="sum"``) for mean/sum, a list ``scores``
(``dist_reduce_fx="cat"``) for ``reduction="none"``.

Example::

    from invariant_lpips.torchmetrics import InvariantLPIPSMetric

    metric = InvariantLPIPSMetric(normalize=True).to(device)   # inputs in [0, 1]
    for preds, target in loader:
        metric.update(preds.to(device), target.to(device))
    print(float(metric.compute()))
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

try:
    from torchmetrics import Metric
    from torchmetrics.utilities import dim_zero_cat
except ImportError as _exc:  # pragma: no cover - exercised in a test by hiding torchmetrics
    raise ImportError(
        "invariant_lpips.torchmetrics needs the torchmetrics package: "
        "pip install 'invariant-lpips[torchmetrics]' (or pip install torchmetrics)"
    ) from _exc

import torch
from torch import Tensor

from .metric.functional import check_reduction, reduce_distances

__all__ = ["InvariantLPIPSMetric", "LPIPSMetric"]

#: keyword arguments consumed by ``torchmetrics.Metric`` itself; every other one goes to the module
METRIC_KWARGS = ("compute_on_cpu", "dist_sync_on_step", "process_group", "dist_sync_fn",
                 "distributed_available_fn", "sync_on_compute", "compute_with_cache")


def _split_kwargs(kwargs: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    metric = {k: v for k, v in kwargs.items() if k in METRIC_KWARGS}
    module = {k: v for k, v in kwargs.items() if k not in METRIC_KWARGS}
    return metric, module


class _PerceptualMetric(Metric):
    higher_is_better: bool = False
    is_differentiable: bool = True
    full_state_update: bool = False
    plot_lower_bound: float = 0.0

    sum_scores: Tensor
    total: Tensor

    def __init__(self, net: torch.nn.Module, reduction: Optional[str], normalize: bool,
                 metric_kwargs: Dict[str, Any]):
        super().__init__(**metric_kwargs)
        reduction = check_reduction(reduction)  # torchmetrics accepts None for "none"
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize must be a bool (True: inputs in [0, 1]; False: in [-1, 1]), "
                             f"got {normalize!r}")
        self.net = net
        self.reduction = reduction
        self.normalize = normalize
        if reduction == "none":
            self.add_state("scores", default=[], dist_reduce_fx="cat")
        else:
            self.add_state("sum_scores", default=torch.tensor(0.0), dist_reduce_fx="sum")
            self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:  # type: ignore[override]
        """Score a batch: ``preds`` and ``target`` (N, 3, H, W) (either may have N = 1: broadcast)."""
        d = self.net(preds, target, normalize=self.normalize).reshape(-1).float()
        if self.reduction == "none":
            self.scores.append(d)
        else:
            self.sum_scores = self.sum_scores + d.sum()
            self.total = self.total + d.numel()

    def compute(self) -> Tensor:  # type: ignore[override]
        """The reduced distance: mean or sum over every scored image, or all scores (``"none"``)."""
        if self.reduction == "none":
            return dim_zero_cat(self.scores)
        return reduce_distances(self.sum_scores, self.reduction, count=self.total)

    def plot(self, val=None, ax=None):  # pragma: no cover - needs matplotlib
        return self._plot(val, ax)


def _check_net_type(cls_name: str, net_type: str) -> None:
    if net_type != "vgg":
        raise ValueError(f"{cls_name}(net_type={net_type!r}) is not supported: every metric here is built on "
                         "VGG-16; use net_type='vgg' (torchmetrics' 'alex' and 'squeeze' are not provided)")


class InvariantLPIPSMetric(_PerceptualMetric):
    """torchmetrics ``Metric`` around :class:`~invariant_lpips.InvariantLPIPS`.

    Args:
        variant: an InvariantLPIPS variant name (default: the package's default variant).
        net_type: ``"vgg"`` only (torchmetrics' LPIPS argument name, accepted for compatibility).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over all images of all updates.
        normalize: ``True`` for inputs in [0, 1]; ``False`` (default, as torchmetrics) for [-1, 1].
        weights: linear weights file or dict instead of the variant's shipped ones.
        **kwargs: ``torchmetrics.Metric`` options (``dist_sync_on_step``, ``process_group``,
            ``sync_on_compute``, ...); every other keyword goes to :class:`~invariant_lpips.InvariantLPIPS`
            (``trunk_weights``, ``padding_mode``, ``check_inputs``, lpips' constructor arguments, ...).
    """

    def __init__(self, variant: Optional[str] = None, net_type: str = "vgg", reduction: Optional[str] = "mean",
                 normalize: bool = False, weights=None, **kwargs: Any):
        _check_net_type(type(self).__name__, net_type)
        from .metric.registry import _build_module

        metric_kwargs, module_kwargs = _split_kwargs(kwargs)
        if variant is None:
            from .features.variants import DEFAULT_VARIANT

            variant = DEFAULT_VARIANT
        if variant in ("lpips", "lpips-vgg"):
            raise ValueError(f"variant {variant!r} is the LPIPS baseline: use invariant_lpips.torchmetrics.LPIPSMetric")
        net = _build_module(variant, weights=weights, **module_kwargs)
        super().__init__(net, reduction, normalize, metric_kwargs)
        self.variant = variant


class LPIPSMetric(_PerceptualMetric):
    """torchmetrics ``Metric`` around :class:`~invariant_lpips.LPIPS`, the exact LPIPS-VGG v0.1 baseline
    (the same values as torchmetrics' ``LearnedPerceptualImagePatchSimilarity(net_type="vgg")``).

    Args: as :class:`InvariantLPIPSMetric`, without ``variant``; extra keywords go to
    :class:`~invariant_lpips.LPIPS` (``trunk_weights``, lpips' constructor arguments, ...).
    """

    def __init__(self, net_type: str = "vgg", reduction: Optional[str] = "mean", normalize: bool = False,
                 weights=None, **kwargs: Any):
        _check_net_type(type(self).__name__, net_type)
        from .metric.registry import _build_module

        metric_kwargs, module_kwargs = _split_kwargs(kwargs)
        if module_kwargs.get("spatial"):
            raise ValueError("LPIPSMetric(spatial=True) is not possible: a Metric reduces to scores; use "
                             "invariant_lpips.LPIPS(spatial=True) for distance maps")
        net = _build_module("lpips-vgg", weights=weights, **module_kwargs)
        super().__init__(net, reduction, normalize, metric_kwargs)
        self.variant = "lpips-vgg"
