"""The one metric protocol: ``features(x) -> F`` and ``distance(F0, F1) -> (N,)`` (after piq's
``get_features`` / ``compute_distance``).

Every metric of the package exposes it: :class:`~invariant_lpips.InvariantLPIPS`, the LPIPS baseline
(:class:`~invariant_lpips.LPIPS`), and every metric of the registry as a
:class:`~invariant_lpips.metric.registry.MetricAdapter` (ours, the baseline, each peer, the pixel metrics).
A metric's forward *is* ``distance(features(x), features(y))``, so anything that scores many pairs (the
benchmark runner, RAID, the feature cache) computes each image's ``F`` once and pairs them afterwards.

Input convention: the one of the object's own forward.

* :class:`~invariant_lpips.metric.registry.MetricAdapter` (what the commands and studies use): images in
  [0, 1], ``distance`` returns (N,);
* our ``nn.Module`` s (``InvariantLPIPS``, ``LPIPS``): lpips' convention, images in [-1, 1], or [0, 1]
  with ``features(x, normalize=True)``; ``distance`` returns (N,) (their forward returns (N, 1, 1, 1)).

``F`` is whatever the metric needs of one image: a tensor (pixel metrics: the image), a list of feature
maps (the lpips-style peers, DISTS) or a dict (ours). It is per image: :func:`take` selects images
(rows) of it and :func:`cat` concatenates batches of it, for any of these structures. ``distance`` takes
two ``F`` of the same batch size; ours also accept a batch of one on either side (it broadcasts,
``MetricSpec.broadcasts``).

What is cacheable: ``F`` is a function of one image, but for a metric that must see both images (the
*registered* terms of ``registered-*`` variants: a displacement estimated on the pair, then the overlap
compared) ``F`` carries the image itself and its maps, and the *pair step* runs inside ``distance``
(:meth:`InvariantLPIPS.pair_differences <invariant_lpips.InvariantLPIPS.pair_differences>`); only the
per-image statistics of ``F`` are cacheable (:class:`~invariant_lpips.features.cache.FeatureCache`), the
pair step is not. ``MetricAdapter.statistics_cached`` (``InvariantLPIPS.statistics_cached``) says whether a
metric's ``F`` is nothing but pooled statistics, which the benchmark runner and RAID then read through the
feature cache instead of calling ``features``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence, Union

import torch

__all__ = ["take", "cat", "batch_size"]


def take(f: Any, idx: Union[Sequence[int], torch.Tensor, slice]) -> Any:
    """The images ``idx`` (rows) of features ``f``: a tensor, a dict, a list/tuple (named tuples too) or a
    dataclass of them."""
    if isinstance(f, torch.Tensor):
        if f.dim() == 0:
            return f
        if isinstance(idx, slice):
            return f[idx]
        return f[torch.as_tensor(idx, dtype=torch.long, device=f.device)]
    if isinstance(f, dict):
        return type(f)((k, take(v, idx)) for k, v in f.items())
    if isinstance(f, tuple) and hasattr(f, "_fields"):
        return type(f)(*[take(v, idx) for v in f])
    if isinstance(f, (list, tuple)):
        return type(f)(take(v, idx) for v in f)
    if dataclasses.is_dataclass(f) and not isinstance(f, type):
        return dataclasses.replace(f, **{fl.name: take(getattr(f, fl.name), idx) for fl in dataclasses.fields(f)})
    if f is None:
        return None
    raise TypeError(f"cannot select images of features of type {type(f).__name__}")


def cat(items: Sequence[Any]) -> Any:
    """Features of several batches (the same structure) as one batch, in order."""
    first = items[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(list(items), 0)
    if isinstance(first, dict):
        return type(first)((k, cat([it[k] for it in items])) for k in first)
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*[cat([it[j] for it in items]) for j in range(len(first))])
    if isinstance(first, (list, tuple)):
        return type(first)(cat([it[j] for it in items]) for j in range(len(first)))
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        return dataclasses.replace(first, **{fl.name: cat([getattr(it, fl.name) for it in items])
                                             for fl in dataclasses.fields(first)})
    if first is None:
        return None
    raise TypeError(f"cannot concatenate features of type {type(first).__name__}")


def batch_size(f: Any) -> int:
    """The number of images ``f`` holds (its first tensor's first dimension)."""
    if isinstance(f, torch.Tensor):
        return int(f.shape[0])
    if isinstance(f, dict):
        return batch_size(next(iter(f.values())))
    if isinstance(f, (list, tuple)):
        return batch_size(f[0])
    if dataclasses.is_dataclass(f) and not isinstance(f, type):
        return batch_size(getattr(f, dataclasses.fields(f)[0].name))
    raise TypeError(f"no batch in features of type {type(f).__name__}")
