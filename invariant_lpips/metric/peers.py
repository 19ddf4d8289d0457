"""Builders for the peer metrics (optional packages), with VGG-16 weights from our resolver.

Peers are for comparisons only: none is needed at run time. Asking for one whose package is missing
raises an ImportError naming the pip requirement. Every builder returns ``fn(x, y) -> (N,)`` on
inputs in [0, 1] and the module holding the peer's parameters.
"""
from __future__ import annotations

import contextlib
import importlib
from typing import Callable, Tuple

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


Built = Tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], torch.nn.Module]


def build_lpips_pkg(device) -> Built:
    lpips = require("lpips-pkg")
    with torchvision_vgg16_from_resolver():
        m = lpips.LPIPS(net="vgg", version="0.1", verbose=False).to(device).eval()
    return (lambda x, y: m(x, y, normalize=True)), m


def build_dists(device) -> Built:
    dists = require("dists")
    with torchvision_vgg16_from_resolver():
        m = dists.DISTS().to(device).eval()
    return (lambda x, y: m(x, y, batch_average=False)), m


def build_stlpips(device) -> Built:
    require("stlpips-vgg")
    from stlpips_pytorch import stlpips as st_module  # optional peer: imported only when asked for

    with torchvision_vgg16_from_resolver():
        m = st_module.LPIPS(net="vgg", variant="shift_tolerant", verbose=False).to(device).eval()
    return (lambda x, y: m(x, y, normalize=True)), m


def build_piq(name: str, device) -> Built:
    piq = require(name)
    if name == "ssim":
        fn = lambda x, y: 1 - piq.ssim(x.clamp(0, 1), y.clamp(0, 1), data_range=1.0, reduction="none")  # noqa: E731
    elif name == "ms-ssim":
        fn = lambda x, y: 1 - piq.multi_scale_ssim(x.clamp(0, 1), y.clamp(0, 1), data_range=1.0,  # noqa: E731
                                                   reduction="none")
    else:
        fn = lambda x, y: piq.psnr(x.clamp(0, 1), y.clamp(0, 1), data_range=1.0, reduction="none")  # noqa: E731
    return fn, torch.nn.Identity()
