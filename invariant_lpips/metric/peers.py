"""Builders for the peer metrics (optional packages), with VGG-16 weights from our resolver.

Peers are for comparisons only: none is needed at run time. Asking for one whose package is missing
raises an ImportError naming the pip requirement. Every builder returns the metric under the one
protocol (:mod:`invariant_lpips.metric.protocol`), inputs in [0, 1]: ``(features, distance, module)``,
``features(x) -> F`` per image and ``distance(F0, F1) -> (N,)`` (equal batch sizes), whose composition is
the peer's own forward (tested to 1e-6), and the module holding the peer's parameters. A peer's features
are its network's per-image outputs, so a study that pairs the same image many times (RAID) runs the
network once per image without touching the peer's code.
"""
from __future__ import annotations

import contextlib
import importlib
from typing import Any, Callable, Tuple

import torch

from ..weights.vgg16 import resolve_vgg16_state_dict

#: registry name -> (importable module, pip requirement)
PEER_PACKAGES = {
    "lpips-pkg": ("lpips", "lpips==0.1.4"),
    "dists": ("DISTS_pytorch", "DISTS_pytorch==0.1"),
    "stlpips-vgg": ("stlpips_pytorch", "stlpips-pytorch==0.0.2 ipython torchsummary"),
    "ssim": ("piq", "piq"),
    "ms-ssim": ("piq", "piq"),
    "psnr": ("piq", "piq"),
}


def require(name: str):
    """Import the package of peer ``name``, or an ImportError saying what to pip install."""
    module, requirement = PEER_PACKAGES[name]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"metric {name!r} needs the optional package(s) {requirement!r}: "
                          f"pip install {requirement} (or pip install 'invariant-lpips[peers]')") from None


@contextlib.contextmanager
def torchvision_vgg16_from_resolver():
    """Within the block, ``torchvision.models.vgg16(pretrained=True | weights=...)`` builds the network
    without downloading and loads the ImageNet ``features`` from our resolver (lpips, DISTS and
    ST-LPIPS call it; only ``features`` are real, the classifier head stays random)."""
    import torchvision.models as tvm
    import torchvision.models.vgg as tv_vgg

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


Features = Callable[[torch.Tensor], Any]
Distance = Callable[[Any, Any], torch.Tensor]
Built = Tuple[Features, Distance, torch.nn.Module]


def _lpips_style(m: torch.nn.Module, normalize_tensor: Callable) -> Tuple[Features, Distance]:
    """lpips' and ST-LPIPS' forward (v0.1, ``lpips=True``, not spatial) split at the unit-normalised maps:
    ``F`` = their list of ``normalize_tensor(net(scaling_layer(2 x - 1)))``."""

    def features(x: torch.Tensor):
        x = 2 * x - 1
        x = m.scaling_layer(x) if m.version == "0.1" else x
        outs = m.net.forward(x)
        return [normalize_tensor(outs[kk]) for kk in range(m.L)]

    def distance(f0, f1) -> torch.Tensor:
        val = 0
        for kk in range(m.L):
            val = val + m.lins[kk]((f0[kk] - f1[kk]) ** 2).mean([2, 3], keepdim=True)
        return val.reshape(-1)

    return features, distance


def build_lpips_pkg(device) -> Built:
    lpips = require("lpips-pkg")
    with torchvision_vgg16_from_resolver():
        m = lpips.LPIPS(net="vgg", version="0.1", verbose=False).to(device).eval()
    return (*_lpips_style(m, lpips.normalize_tensor), m)


def build_dists(device) -> Built:
    dists = require("dists")
    with torchvision_vgg16_from_resolver():
        m = dists.DISTS().to(device).eval()

    def features(x: torch.Tensor):
        with torch.no_grad():  # as DISTS' forward (require_grad=False)
            return m.forward_once(x)

    def distance(f0, f1) -> torch.Tensor:  # DISTS.forward after its forward_once, verbatim
        dist1 = dist2 = 0
        c1 = c2 = 1e-6
        w_sum = m.alpha.sum() + m.beta.sum()
        alpha = torch.split(m.alpha / w_sum, m.chns, dim=1)
        beta = torch.split(m.beta / w_sum, m.chns, dim=1)
        for k in range(len(m.chns)):
            x_mean = f0[k].mean([2, 3], keepdim=True)
            y_mean = f1[k].mean([2, 3], keepdim=True)
            S1 = (2 * x_mean * y_mean + c1) / (x_mean ** 2 + y_mean ** 2 + c1)
            dist1 = dist1 + (alpha[k] * S1).sum(1, keepdim=True)
            x_var = ((f0[k] - x_mean) ** 2).mean([2, 3], keepdim=True)
            y_var = ((f1[k] - y_mean) ** 2).mean([2, 3], keepdim=True)
            xy_cov = (f0[k] * f1[k]).mean([2, 3], keepdim=True) - x_mean * y_mean
            S2 = (2 * xy_cov + c2) / (x_var + y_var + c2)
            dist2 = dist2 + (beta[k] * S2).sum(1, keepdim=True)
        return (1 - (dist1 + dist2)).reshape(-1)

    return features, distance, m


def build_stlpips(device) -> Built:
    require("stlpips-vgg")
    from stlpips_pytorch import stlpips as st_module  # optional peer: imported only when asked for
    from stlpips_pytorch import utils as st_utils

    with torchvision_vgg16_from_resolver():
        m = st_module.LPIPS(net="vgg", variant="shift_tolerant", verbose=False).to(device).eval()
    return (*_lpips_style(m, st_utils.normalize_tensor), m)


def _image(x: torch.Tensor) -> torch.Tensor:
    """The features of a full-reference pixel metric: the image itself, clamped to [0, 1]."""
    return x.clamp(0, 1)


def build_piq(name: str, device) -> Built:
    piq = require(name)
    if name == "ssim":
        dist = lambda x, y: 1 - piq.ssim(x, y, data_range=1.0, reduction="none")  # noqa: E731
    elif name == "ms-ssim":
        dist = lambda x, y: 1 - piq.multi_scale_ssim(x, y, data_range=1.0, reduction="none")  # noqa: E731
    else:
        dist = lambda x, y: piq.psnr(x, y, data_range=1.0, reduction="none")  # noqa: E731
    return _image, dist, torch.nn.Identity()


def build_pixel(name: str) -> Built:
    """``mse`` or ``l1``: features are the image, the distance a mean over pixels."""
    if name == "mse":
        dist = lambda x, y: ((x - y) ** 2).mean(dim=(1, 2, 3))  # noqa: E731
    else:
        dist = lambda x, y: (x - y).abs().mean(dim=(1, 2, 3))  # noqa: E731
    return (lambda x: x), dist, torch.nn.Identity()
