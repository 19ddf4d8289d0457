"""One adapter interface for every metric the benchmarks and the robustness study compare.

An adapter is a callable ``adapter(x, y) -> (N,)`` taking float tensors (N, 3, H, W) in **[0, 1]**
(either side may have N = 1; it is broadcast), with attributes ``name``, ``lower_is_better``
(True for distances) and ``kind`` (``"ours"``, ``"peer"``, ``"classic"``). Peers are optional:
asking for one that is not installed raises an ImportError that says which pip package to install.

Names:
    ``lpips-vgg``             our exact LPIPS-VGG v0.1 baseline
    ``<variant>`` / ``invariant:<variant>``   an :class:`~invariant_lpips.InvariantLPIPS` variant
    ``lpips-pkg``             the official ``lpips`` package (VGG, v0.1), trunk weights from our resolver
    ``dists``                 ``DISTS_pytorch`` (Ding et al. 2020), VGG weights from our resolver
    ``stlpips-vgg``           ``stlpips-pytorch`` shift-tolerant LPIPS-VGG (Ghildyal & Liu 2022)
    ``ssim``, ``ms-ssim``     ``piq`` (reported as 1 - SSIM so that lower = more similar)
    ``psnr``                  ``piq`` PSNR (higher is better; ``lower_is_better = False``)
    ``mse``, ``l1``           pixel distances (no dependency)
"""
from __future__ import annotations

import contextlib
from typing import Callable, Dict, List, Optional, Union

import torch

PEER_PACKAGES = {
    "lpips-pkg": "lpips==0.1.4",
    "dists": "DISTS_pytorch==0.1",
    "stlpips-vgg": "stlpips-pytorch==0.0.2",
    "ssim": "piq",
    "ms-ssim": "piq",
    "psnr": "piq",
}


class MetricAdapter(torch.nn.Module):
    """Wraps a metric with the common convention (inputs in [0, 1], output (N,))."""

    def __init__(self, name: str, fn: Callable, lower_is_better: bool = True, kind: str = "ours",
                 module: Optional[torch.nn.Module] = None, min_size: int = 32, broadcasts: bool = False):
        super().__init__()
        self.name = name
        self.fn = fn
        self.lower_is_better = lower_is_better
        self.kind = kind
        self.module = module
        self.min_size = min_size
        self.broadcasts = broadcasts  # the metric computes a batch-of-1 side once itself

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != y.shape[0] and not self.broadcasts:
            n = max(x.shape[0], y.shape[0])
            x = x.expand(n, -1, -1, -1) if x.shape[0] == 1 else x
            y = y.expand(n, -1, -1, -1) if y.shape[0] == 1 else y
        return self.fn(x, y).reshape(-1)

    def __repr__(self) -> str:
        return f"MetricAdapter({self.name!r}, lower_is_better={self.lower_is_better}, kind={self.kind!r})"


@contextlib.contextmanager
def torchvision_vgg16_from_resolver():
    """Within the block, ``torchvision.models.vgg16(pretrained=True | weights=...)`` builds the
    network without downloading and loads the ImageNet ``features`` from our resolver (peers such
    as DISTS and lpips call it; only ``features`` are real, the classifier stays random)."""
    import torchvision.models as tvm
    import torchvision.models.vgg as tv_vgg

    from ..weights.vgg16 import resolve_vgg16_state_dict

    original = tvm.vgg16

    def patched(*args, pretrained=None, weights=None, **kwargs):
        model = original(weights=None, **kwargs)
        if pretrained or weights is not None:
            state, _ = resolve_vgg16_state_dict()
            model.features.load_state_dict(state)
        return model

    tvm.vgg16 = patched
    tv_vgg.vgg16 = patched
    try:
        yield
    finally:
        tvm.vgg16 = original
        tv_vgg.vgg16 = original


def _require(pkg_module: str, name: str):
    import importlib

    try:
        return importlib.import_module(pkg_module)
    except ImportError:
        raise ImportError(f"metric {name!r} needs the optional package {PEER_PACKAGES[name]!r}: "
                          f"pip install '{PEER_PACKAGES[name]}' (or pip install 'invariant-lpips[peers]')") from None


def _ours(name: str, device) -> MetricAdapter:
    from ..metric.invariant import InvariantLPIPS
    from ..metric.lpips_baseline import LPIPS

    if name == "lpips-vgg":
        m = LPIPS().to(device).eval()
        return MetricAdapter(name, lambda x, y: m(x, y, normalize=True), True, "ours", m, min_size=16,
                             broadcasts=True)
    variant = name.split(":", 1)[1] if name.startswith("invariant:") else name
    m = InvariantLPIPS(variant).to(device).eval()
    return MetricAdapter(name, lambda x, y: m(x, y, normalize=True), True, "ours", m, min_size=32,
                         broadcasts=True)


def get_metric(name: str, device: Union[str, torch.device] = "cpu") -> MetricAdapter:
    """Build the adapter for ``name`` (see the module docstring) on ``device``."""
    from ..features.variants import list_variants

    device = torch.device(device)
    if name == "lpips-vgg" or name.startswith("invariant:") or name in list_variants():
        return _ours(name, device)
    if name == "lpips-pkg":
        lpips = _require("lpips", name)
        with torchvision_vgg16_from_resolver():
            m = lpips.LPIPS(net="vgg", version="0.1", verbose=False).to(device).eval()
        return MetricAdapter(name, lambda x, y: m(x, y, normalize=True), True, "peer", m, min_size=16)
    if name == "dists":
        dists = _require("DISTS_pytorch", name)
        with torchvision_vgg16_from_resolver():
            m = dists.DISTS().to(device).eval()
        return MetricAdapter(name, lambda x, y: m(x, y, batch_average=False), True, "peer", m, min_size=32)
    if name == "stlpips-vgg":
        _require("stlpips_pytorch", name)
        from stlpips_pytorch import stlpips as st_module
        with torchvision_vgg16_from_resolver():
            m = st_module.LPIPS(net="vgg", variant="shift_tolerant", verbose=False).to(device).eval()
        return MetricAdapter(name, lambda x, y: m(x, y, normalize=True), True, "peer", m, min_size=32)
    if name in ("ssim", "ms-ssim", "psnr"):
        piq = _require("piq", name)
        if name == "ssim":
            return MetricAdapter(name, lambda x, y: 1 - piq.ssim(x.clamp(0, 1), y.clamp(0, 1), data_range=1.0,
                                                                 reduction="none"), True, "classic")
        if name == "ms-ssim":
            return MetricAdapter(name, lambda x, y: 1 - piq.multi_scale_ssim(x.clamp(0, 1), y.clamp(0, 1),
                                                                             data_range=1.0, reduction="none"),
                                 True, "classic", min_size=161)
        return MetricAdapter(name, lambda x, y: piq.psnr(x.clamp(0, 1), y.clamp(0, 1), data_range=1.0,
                                                         reduction="none"), False, "classic")
    if name == "mse":
        return MetricAdapter(name, lambda x, y: ((x - y) ** 2).mean(dim=(1, 2, 3)), True, "classic", min_size=1)
    if name == "l1":
        return MetricAdapter(name, lambda x, y: (x - y).abs().mean(dim=(1, 2, 3)), True, "classic", min_size=1)
    raise ValueError(f"unknown metric {name!r}; available: {', '.join(available_metrics(installed_only=False))}")


def available_metrics(installed_only: bool = True) -> List[str]:
    """Metric names; with ``installed_only`` the peers whose packages import are listed."""
    import importlib.util

    from ..features.variants import list_variants

    names = ["lpips-vgg"] + list_variants() + ["mse", "l1"]
    modules = {"lpips-pkg": "lpips", "dists": "DISTS_pytorch", "stlpips-vgg": "stlpips_pytorch",
               "ssim": "piq", "ms-ssim": "piq", "psnr": "piq"}
    for n, mod in modules.items():
        if not installed_only or importlib.util.find_spec(mod) is not None:
            names.append(n)
    return names
