"""Light distortions of torch image tensors: noise, blur, tone and colour casts, JPEG and block shuffles.

Each factory returns a callable mapping an image ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1] to one
of the same shape in [0, 1], on the image's device and dtype. They are the robustness study's
rank-flip candidates (:func:`default_distortions`) and its just-visible reference distortions
(:func:`gaussian_noise`, :func:`gaussian_blur`). The KADID-10k and RAID distortions of this package
(:mod:`.kadid`, :mod:`.raid`) work on uint8 arrays with MATLAB's conventions instead; these are
different operations (float tensors, torch RNG, ``ceil(3 sigma)`` kernels), kept as they are so
that published numbers do not move.
"""
from __future__ import annotations

import io
import math
from typing import Callable, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

__all__ = [
    "Distortion",
    "gaussian_noise",
    "gaussian_blur",
    "brightness",
    "contrast",
    "channel_cast",
    "saturation",
    "default_distortions",
    "jpeg_compress",
    "block_shuffle",
]

#: a named distortion, ``(name, fn)``
Distortion = Tuple[str, Callable[[Tensor], Tensor]]


def _apply_4d(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    def wrapped(img: Tensor) -> Tensor:
        if img.dim() == 3:
            return fn(img.unsqueeze(0)).squeeze(0)
        return fn(img)

    return wrapped


def gaussian_noise(sigma: float, seed: int = 0) -> Callable[[Tensor], Tensor]:
    """Additive Gaussian noise of std ``sigma`` (on the [0, 1] scale), clamped.

    The noise is drawn on the CPU from ``torch.Generator().manual_seed(seed)``
    for the image's shape, so it is reproducible on every device (and the same
    pattern, scaled, for every ``sigma`` with the same seed).
    """

    def fn(img: Tensor) -> Tensor:
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(tuple(img.shape), generator=g, dtype=torch.float32)
        return (img + sigma * noise.to(device=img.device, dtype=img.dtype)).clamp(0, 1)

    return fn


def _gaussian_kernel(sigma: float, dtype, device) -> Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def gaussian_blur(sigma: float) -> Callable[[Tensor], Tensor]:
    """Separable Gaussian blur of std ``sigma`` pixels (radius ``ceil(3 sigma)``,
    border replicate); acts on ``(N, C, H, W)`` or ``(C, H, W)``."""

    @_apply_4d
    def fn(img: Tensor) -> Tensor:
        if sigma <= 0:
            return img.clone()
        k = _gaussian_kernel(sigma, img.dtype, img.device)
        r = (k.numel() - 1) // 2
        c = img.shape[1]
        out = F.pad(img, (r, r, 0, 0), mode="replicate")
        out = F.conv2d(out, k.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        out = F.pad(out, (0, 0, r, r), mode="replicate")
        out = F.conv2d(out, k.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
        return out.clamp(0, 1)

    return fn


_LUMA = (0.299, 0.587, 0.114)


def _luma(img: Tensor) -> Tensor:
    w = torch.tensor(_LUMA, dtype=img.dtype, device=img.device).reshape(1, 3, 1, 1)
    return (img * w).sum(dim=1, keepdim=True)


def brightness(delta: float) -> Callable[[Tensor], Tensor]:
    """``x + delta`` on every channel, clamped."""
    return _apply_4d(lambda img: (img + delta).clamp(0, 1))


def contrast(factor: float) -> Callable[[Tensor], Tensor]:
    """``(x - m) * factor + m`` with ``m`` the image's mean luma (BT.601 weights), clamped."""

    def fn(img: Tensor) -> Tensor:
        m = _luma(img).mean(dim=(1, 2, 3), keepdim=True)
        return ((img - m) * factor + m).clamp(0, 1)

    return _apply_4d(fn)


def channel_cast(channel: int, delta: float) -> Callable[[Tensor], Tensor]:
    """``+delta`` on one channel (0 red, 1 green, 2 blue), clamped."""

    def fn(img: Tensor) -> Tensor:
        offset = torch.zeros(1, img.shape[1], 1, 1, dtype=img.dtype, device=img.device)
        offset[0, channel] = delta
        return (img + offset).clamp(0, 1)

    return _apply_4d(fn)


def saturation(factor: float) -> Callable[[Tensor], Tensor]:
    """``(x - g) * factor + g`` with ``g`` the per-pixel luma (BT.601 weights), clamped."""

    def fn(img: Tensor) -> Tensor:
        g = _luma(img)
        return ((img - g) * factor + g).clamp(0, 1)

    return _apply_4d(fn)


def default_distortions(seed: int = 0) -> List[Distortion]:
    """The 17 light distortions of 4 kinds used for rank flips (``C(17, 2) = 136``
    pairs per image). Names are ``'<kind>:<setting>'``:

    * ``noise``: additive Gaussian noise, sigma 0.01, 0.02, 0.03, 0.05 (fixed seed);
    * ``blur``: Gaussian blur, sigma 0.5, 1, 1.5, 2 px;
    * ``tone``: brightness +0.05 / -0.05, contrast x1.2 / x0.8 (about the mean luma);
    * ``colour``: +0.04 on the red, green or blue channel; saturation x0.7 / x1.3.

    Each callable maps an image ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1] to
    one of the same shape in [0, 1].
    """
    d: List[Distortion] = []
    for s in (0.01, 0.02, 0.03, 0.05):
        d.append((f"noise:{s:g}", _apply_4d(gaussian_noise(s, seed))))
    for s in (0.5, 1.0, 1.5, 2.0):
        d.append((f"blur:{s:g}", gaussian_blur(s)))
    d.append(("tone:brightness+0.05", brightness(0.05)))
    d.append(("tone:brightness-0.05", brightness(-0.05)))
    d.append(("tone:contrast1.2", contrast(1.2)))
    d.append(("tone:contrast0.8", contrast(0.8)))
    d.append(("colour:red+0.04", channel_cast(0, 0.04)))
    d.append(("colour:green+0.04", channel_cast(1, 0.04)))
    d.append(("colour:blue+0.04", channel_cast(2, 0.04)))
    d.append(("colour:saturation0.7", saturation(0.7)))
    d.append(("colour:saturation1.3", saturation(1.3)))
    return d


def jpeg_compress(x: Tensor, quality: int) -> Tensor:
    """The first image of ``x`` ((N, 3, H, W) in [0, 1]) through PIL's JPEG at ``quality``: (1, 3, H, W)
    float32 on the CPU (rounded to uint8 first, as a saved image is)."""
    arr = (x[0].detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    out = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(out).permute(2, 0, 1)[None]


def block_shuffle(x: Tensor, block: int, seed: int = 0) -> Tensor:
    """``x`` ((N, C, H, W)) cut into ``block``-px blocks, put back in a random permutation (from
    ``torch.Generator().manual_seed(seed)``) that leaves no block in place; rows and columns beyond a
    whole number of blocks are dropped, so the output is (N, C, block * (H // block), block * (W // block)).
    Same statistics, another arrangement: what a metric blind to position cannot tell apart."""
    n, c, h, w = x.shape
    gh, gw = h // block, w // block
    if gh * gw < 2:
        raise ValueError(f"block_shuffle needs at least two {block}-px blocks, got an image of {h}x{w}")
    g = torch.Generator().manual_seed(int(seed))
    while True:
        perm = torch.randperm(gh * gw, generator=g)
        if not bool((perm == torch.arange(gh * gw)).any()):
            break
    blocks = x[..., :gh * block, :gw * block].reshape(n, c, gh, block, gw, block).permute(0, 2, 4, 1, 3, 5)
    blocks = blocks.reshape(n, gh * gw, c, block, block)[:, perm.to(x.device)]
    return blocks.reshape(n, gh, gw, c, block, block).permute(0, 3, 1, 4, 2, 5).reshape(n, c, gh * block, gw * block)
