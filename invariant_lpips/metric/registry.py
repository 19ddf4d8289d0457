"""The one metric registry and the package's one public accessor, :func:`build_metric`.

``build_metric(name)`` builds any metric, ours and peers alike, as a :class:`MetricAdapter`: one input
convention, (N, 3, H, W) images in [0, 1] (as images load), and (N,) distances out; ``adapter(x, y)``,
either side may have N = 1, and the one protocol ``adapter.features(x)`` / ``adapter.distance(F0, F1)``
(:mod:`invariant_lpips.metric.protocol`). Without a name it builds the default variant.

The lpips-style classes, :class:`~invariant_lpips.InvariantLPIPS` and :class:`~invariant_lpips.LPIPS`, keep
lpips' convention ((N, 3, H, W) in [-1, 1], or [0, 1] with ``normalize=True``; output (N, 1, 1, 1)), as do
:func:`~invariant_lpips.distance` and the torchmetrics wrappers. Inside the package they are built by name
with the private :func:`_build_module` (which constructs exactly those classes).

Each entry (:class:`MetricSpec`) names a metric and says how it is called:

* ``lower_is_better``: True for distances (every metric here but PSNR);
* ``input_range``: what the *underlying* metric takes; :func:`build_metric` always takes [0, 1];
* ``kind``: ``ours`` (InvariantLPIPS variants), ``baseline`` (our exact LPIPS-VGG), ``peer``
  (optional packages) or ``pixel``;
* ``cost``: trunk passes per pair, roughly (``0`` for pixel metrics);
* ``min_size``: the smallest image side it accepts; ``package``: the pip requirement of a peer.

Every registered :class:`~invariant_lpips.features.variants.Variant` is a metric under its own
name (also as ``invariant:<name>``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Union

import torch

from ..features.variants import DEFAULT_VARIANT, RENAMED, canonical_variant_name, get_variant, list_variants
from ..weights.linear import variant_notes
from . import peers
from .invariant import InvariantLPIPS
from .lpips_baseline import LPIPS


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str
    lower_is_better: bool = True
    input_range: str = "0,1"
    cost: float = 1.0
    min_size: int = 32
    package: Optional[str] = None
    description: str = ""
    #: the metric computes a batch-of-1 side once itself (no expand needed)
    broadcasts: bool = False


class MetricAdapter(torch.nn.Module):
    """A metric under the studies' convention and the one protocol (:mod:`invariant_lpips.metric.protocol`):
    images in [0, 1]; ``features(x) -> F`` per image, ``distance(F0, F1) -> (N,)``; ``adapter(x, y)`` is
    ``distance(features(x), features(y))`` (a batch of one on either side is expanded first, except for
    metrics that broadcast it themselves: ``spec.broadcasts``, whose ``distance`` also accepts it).

    ``pair``: our modules' forward (``m(x, y, normalize=True)``), which is that composition plus input
    checks and one execution path for both sides under autograd; the adapter's forward calls it."""

    def __init__(self, spec: MetricSpec, features: Callable, distance: Callable,
                 module: Optional[torch.nn.Module] = None, pair: Optional[Callable] = None):
        super().__init__()
        self.spec = spec
        self._features = features
        self._distance = distance
        self._pair = pair
        self.module = module if module is not None else torch.nn.Identity()

    @classmethod
    def for_module(cls, spec: MetricSpec, m: torch.nn.Module) -> "MetricAdapter":
        """One of our modules (``InvariantLPIPS``, ``LPIPS``) under ``spec``."""
        return cls(spec, lambda x: m.features(x, normalize=True), m.distance, m,
                   pair=lambda x, y: m(x, y, normalize=True))

    name = property(lambda self: self.spec.name)
    lower_is_better = property(lambda self: self.spec.lower_is_better)
    kind = property(lambda self: self.spec.kind)
    min_size = property(lambda self: self.spec.min_size)
    broadcasts = property(lambda self: self.spec.broadcasts)

    @property
    def statistics_cached(self) -> bool:
        """Whether ``F`` is nothing but per-image pooled statistics that
        :class:`~invariant_lpips.features.cache.FeatureCache` holds (our variants without registered terms):
        ``distance`` then takes the cache's entries (stacked) directly."""
        return isinstance(self.module, InvariantLPIPS) and self.module.statistics_cached

    @property
    def trunk(self):
        """Our metrics' shared trunk (:class:`~invariant_lpips.trunk.vgg16.VGG16Trunk`), None for others."""
        return self.module.net if isinstance(self.module, (InvariantLPIPS, LPIPS)) else None

    def features(self, x: torch.Tensor):
        """``F`` of a batch (N, 3, H, W) in [0, 1]."""
        return self._features(x)

    def distance(self, f0, f1) -> torch.Tensor:
        """(N,) distances between two batches of features."""
        return self._distance(f0, f1).reshape(-1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != y.shape[0] and not self.spec.broadcasts:
            n = max(x.shape[0], y.shape[0])
            x = x.expand(n, -1, -1, -1) if x.shape[0] == 1 else x
            y = y.expand(n, -1, -1, -1) if y.shape[0] == 1 else y
        if self._pair is not None:
            return self._pair(x, y).reshape(-1)
        return self.distance(self.features(x), self.features(y))

    def __repr__(self) -> str:
        return f"MetricAdapter({self.name!r}, lower_is_better={self.lower_is_better}, kind={self.kind!r})"


_STATIC = {
    "lpips-vgg": MetricSpec("lpips-vgg", "baseline", input_range="-1,1", min_size=16, broadcasts=True,
                            description="our exact LPIPS-VGG v0.1 (Zhang et al. 2018)"),
    "lpips-pkg": MetricSpec("lpips-pkg", "peer", input_range="-1,1", cost=2.0, min_size=16,
                            package=peers.PEER_PACKAGES["lpips-pkg"][1],
                            description="the official lpips package (VGG, v0.1)"),
    "dists": MetricSpec("dists", "peer", cost=2.0, package=peers.PEER_PACKAGES["dists"][1],
                        description="DISTS (Ding et al. 2020)"),
    "stlpips-vgg": MetricSpec("stlpips-vgg", "peer", input_range="-1,1", cost=2.0,
                              package=peers.PEER_PACKAGES["stlpips-vgg"][1],
                              description="shift-tolerant LPIPS-VGG (Ghildyal & Liu 2022)"),
    "ssim": MetricSpec("ssim", "peer", cost=0.0, min_size=11, package="piq", description="1 - SSIM (piq)"),
    "ms-ssim": MetricSpec("ms-ssim", "peer", cost=0.0, min_size=161, package="piq",
                          description="1 - MS-SSIM (piq)"),
    "psnr": MetricSpec("psnr", "peer", lower_is_better=False, cost=0.0, min_size=1, package="piq",
                       description="PSNR in dB (piq); higher is better"),
    "mse": MetricSpec("mse", "pixel", cost=0.0, min_size=1, description="mean squared error"),
    "l1": MetricSpec("l1", "pixel", cost=0.0, min_size=1, description="mean absolute error"),
}


def _variant_name(name: str) -> Optional[str]:
    v = name.split(":", 1)[1] if name.startswith("invariant:") else name
    if v in RENAMED:
        v = canonical_variant_name(v)
    return v if v in list_variants() else None


def get_spec(name: str) -> MetricSpec:
    """The :class:`MetricSpec` of ``name`` (a ValueError listing the names if unknown)."""
    if name in _STATIC:
        return _STATIC[name]
    variant = _variant_name(name)
    if variant is not None:
        notes = variant_notes(get_variant(variant).name)
        return MetricSpec(name, "ours", input_range="-1,1", cost=notes.get("relative_cost", 1.0), broadcasts=True,
                          description=notes.get("description", ""))
    hint = (" ('lpips-vgg' is the LPIPS-VGG baseline of this package, 'lpips-pkg' the lpips package itself)"
            if name.lower() == "lpips" else "")
    raise ValueError(f"unknown metric {name!r}{hint}; available: {', '.join(list_metrics(installed_only=False))}")


def list_metrics(installed_only: bool = True) -> List[str]:
    """Metric names; with ``installed_only``, peers whose package is missing are left out."""
    import importlib.util

    names = ["lpips-vgg"] + list_variants()
    for name, spec in _STATIC.items():
        if name in names:
            continue
        if spec.kind == "peer" and installed_only:
            if importlib.util.find_spec(peers.PEER_PACKAGES[name][0]) is None:
                continue
        names.append(name)
    return names


def _build_module(name: Optional[str] = None, weights=None, device: Union[str, torch.device] = "cpu",
                  **kwargs) -> torch.nn.Module:
    """A new nn.Module of one of *our* metrics, in eval mode on ``device``: ``InvariantLPIPS(name)`` for a
    variant (the default variant when ``name`` is None), ``LPIPS()`` for ``"lpips-vgg"``; ``weights`` is a
    linear-weights file (or dict) replacing the shipped ones; ``kwargs`` go to the class. Private: the
    package's builder by name (:func:`build_metric`, :func:`~invariant_lpips.distance`, the torchmetrics
    wrappers); users construct the classes."""
    name = DEFAULT_VARIANT if name is None else canonical_variant_name(name)
    spec = get_spec(name)
    if spec.kind == "baseline":
        return LPIPS(weights=weights, **{"net": "vgg", **kwargs}).eval().to(device)
    if spec.kind == "ours":
        return InvariantLPIPS(variant=_variant_name(name), weights=weights, **kwargs).eval().to(device)
    raise ValueError(f"{name!r} is a {spec.kind} metric, not an InvariantLPIPS variant or the LPIPS baseline")


def build_metric(name: Optional[str] = None, device: Union[str, torch.device] = "cpu",
                 weights=None) -> MetricAdapter:
    """A new metric ``name`` (any of :func:`list_metrics`; default: the default variant) on ``device``, as a
    :class:`MetricAdapter`: ``metric(x, y) -> (N,)`` on images in [0, 1]. ``weights``: a linear-weights file
    (or dict) for our metrics instead of the shipped ones. Each call builds a new one, yours to cast or move.

    >>> import torch, invariant_lpips
    >>> mse = invariant_lpips.build_metric("mse")
    >>> mse(torch.zeros(2, 3, 8, 8), torch.full((1, 3, 8, 8), 0.5))
    tensor([0.2500, 0.2500])
    """
    name = DEFAULT_VARIANT if name is None else canonical_variant_name(name)  # an old name warns once, here
    device = torch.device(device)
    spec = get_spec(name)
    if spec.kind in ("ours", "baseline"):
        m = _build_module(name, weights=weights, device=device)
        return MetricAdapter.for_module(spec, m)
    if weights is not None:
        raise ValueError(f"--weights applies to our metrics only, not to {name!r}")
    if name == "lpips-pkg":
        built = peers.build_lpips_pkg(device)
    elif name == "dists":
        built = peers.build_dists(device)
    elif name == "stlpips-vgg":
        built = peers.build_stlpips(device)
    elif name in ("ssim", "ms-ssim", "psnr"):
        built = peers.build_piq(name, device)
    elif name in ("mse", "l1"):
        built = peers.build_pixel(name)
    else:  # pragma: no cover - every static spec has a builder
        raise ValueError(f"no builder for {name!r}")
    return MetricAdapter(spec, *built)
