"""lpips' module-level helpers, with lpips 0.1.4's signatures and semantics (our own code).

=====================================  ===========================================================================
``im2tensor(image, imtype, cent, factor)``  (H, W, C) array in [0, 255] -> (1, C, H, W) float32 tensor
                                       ``image / factor - cent`` ([-1, 1] with the defaults). Also accepts the
                                       (1, 3, H, W) [0, 1] tensor of :func:`invariant_lpips.load_image` (it is
                                       scaled by 255 first, and an 8-bit image's values rounded back to whole
                                       numbers), so ``im2tensor(load_image(p))`` gives lpips' result exactly,
                                       whichever ``load_image`` is used.
``tensor2im(image_tensor, imtype, cent, factor)``  the first image of a (N, C, H, W) tensor in [-1, 1] ->
                                       (H, W, C) array ``(x + cent) * factor`` cast to ``imtype`` (truncating, as
                                       lpips does).
``normalize_tensor(in_feat, eps)``     ``f / (sqrt(sum_c f^2) + eps)`` over axis 1, in the input's dtype.
``spatial_average(in_tens, keepdim)``  mean over axes 2 and 3.
``upsample(in_tens, out_HW)``          bilinear resize to ``out_HW`` (``align_corners=False``).
``l2(p0, p1, range)``                  ``0.5 * mean((p0 / range - p1 / range)^2)`` on arrays.
``psnr(p0, p1, peak)``                 ``10 log10(peak^2 / mean((p0 - p1)^2))`` on arrays.
``dssim(p0, p1, range)``               ``(1 - SSIM) / 2`` of two (H, W, C) arrays (needs scikit-image; lpips
                                       0.1.4 calls ``skimage.measure.compare_ssim``, removed in scikit-image 0.18,
                                       so we call ``skimage.metrics.structural_similarity``).
``load_image_uint8(path)``             lpips' ``load_image``: an (H, W, 3) uint8 RGB array. Exported as
                                       ``load_image`` only by :mod:`invariant_lpips.lpips_compat`; the package's
                                       own ``invariant_lpips.load_image`` returns a (1, 3, H, W) tensor in [0, 1].
=====================================  ===========================================================================
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..features.pooled import channel_normalize

__all__ = ["im2tensor", "tensor2im", "normalize_tensor", "spatial_average", "upsample", "l2", "psnr", "dssim",
           "load_image_uint8"]


def _hwc_array(image, name: str) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        if image.ndim == 4 and image.shape[0] == 1 and image.is_floating_point():
            # invariant_lpips.load_image's (1, C, H, W) tensor in [0, 1] -> lpips' (H, W, C) in [0, 255]; an
            # 8-bit file's values are snapped back onto whole numbers, so the result equals lpips' exactly
            arr = image[0].detach().cpu().double().numpy().transpose(1, 2, 0) * 255.0
            whole = np.rint(arr)
            return whole if np.abs(arr - whole).max(initial=0.0) < 1e-3 else arr
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        raise ValueError(f"{name} expects an (H, W, C) image array, got shape {arr.shape} (a grey image?): "
                         "use np.repeat(a[..., None], 3, axis=2) for RGB")
    if arr.ndim != 3:
        raise ValueError(f"{name} expects an (H, W, C) image array (as lpips.load_image returns) or the "
                         f"(1, 3, H, W) tensor of invariant_lpips.load_image, got shape {arr.shape}")
    return arr


def im2tensor(image, imtype=np.uint8, cent: float = 1.0, factor: float = 255.0 / 2.0) -> torch.Tensor:
    """lpips' ``im2tensor``: (H, W, C) image in [0, 255] -> (1, C, H, W) float32 tensor ``image / factor - cent``.

    With the defaults the tensor is in [-1, 1], what the metrics take with ``normalize=False``. ``imtype`` is
    accepted and unused, as in lpips. The (1, 3, H, W) [0, 1] tensor of :func:`invariant_lpips.load_image` is
    accepted too (scaled by 255 first).
    """
    arr = _hwc_array(image, "im2tensor")
    out = arr / factor - cent
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)[None])).to(torch.float32)


def tensor2im(image_tensor: torch.Tensor, imtype=np.uint8, cent: float = 1.0,
              factor: float = 255.0 / 2.0) -> np.ndarray:
    """lpips' ``tensor2im``: the first image of (N, C, H, W) -> (H, W, C) array ``(x + cent) * factor``,
    cast to ``imtype`` (a plain cast: values are truncated, not rounded or clipped, as in lpips)."""
    if not isinstance(image_tensor, torch.Tensor) or image_tensor.ndim != 4:
        raise ValueError("tensor2im expects an (N, C, H, W) tensor (it converts the first image), got "
                         f"{getattr(image_tensor, 'shape', type(image_tensor).__name__)}")
    arr = image_tensor[0].detach().cpu().float().numpy().transpose(1, 2, 0)
    return ((arr + cent) * factor).astype(imtype)


def normalize_tensor(in_feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """lpips' ``normalize_tensor``: each position's channel vector divided by its L2 norm (+ ``eps``), axis 1."""
    return channel_normalize(in_feat, eps)


def spatial_average(in_tens: torch.Tensor, keepdim: bool = True) -> torch.Tensor:
    """lpips' ``spatial_average``: mean over the spatial axes 2 and 3."""
    return in_tens.mean(dim=(2, 3), keepdim=keepdim)


def upsample(in_tens: torch.Tensor, out_HW: Sequence[int] = (64, 64)) -> torch.Tensor:  # noqa: N803 - lpips' name
    """lpips' ``upsample``: bilinear resize of (N, C, h, w) to ``out_HW`` (``align_corners=False``)."""
    return F.interpolate(in_tens, size=tuple(int(s) for s in out_HW), mode="bilinear", align_corners=False)


def _float_array(p) -> np.ndarray:
    if isinstance(p, torch.Tensor):
        p = p.detach().cpu().numpy()
    return np.asarray(p, dtype=np.float64)


def l2(p0, p1, range: float = 255.0) -> float:  # noqa: A002 - lpips' argument name
    """lpips' ``l2``: ``0.5 * mean((p0 / range - p1 / range)^2)`` of two arrays (e.g. uint8 images)."""
    a, b = _float_array(p0), _float_array(p1)
    return 0.5 * np.mean((a / range - b / range) ** 2)


def psnr(p0, p1, peak: float = 255.0) -> float:
    """lpips' ``psnr``: ``10 log10(peak^2 / mean((p0 - p1)^2))`` in dB (infinite for equal arrays)."""
    a, b = _float_array(p0), _float_array(p1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(peak ** 2 / np.mean((a - b) ** 2))


def dssim(p0, p1, range: float = 255.0) -> float:  # noqa: A002 - lpips' argument name
    """lpips' ``dssim``: ``(1 - SSIM(p0, p1)) / 2`` of two (H, W, C) arrays with ``data_range=range``.

    Needs scikit-image (``pip install scikit-image``).
    """
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise ImportError("dssim needs scikit-image: pip install scikit-image") from None
    a, b = _float_array(p0), _float_array(p1)
    return (1 - structural_similarity(a, b, data_range=range, channel_axis=-1)) / 2.0


def load_image_uint8(path: Union[str, Path]) -> np.ndarray:
    """lpips' ``load_image``: an image file as an (H, W, 3) uint8 RGB array.

    Decoded by the package's one loader (Pillow: grey/palette/alpha to RGB, EXIF orientation applied,
    16-bit files reduced to 8 bits), so lpips' OpenCV dependency is not needed.
    """
    from ..data.io import load_image_array

    arr = load_image_array(path)  # (H, W, 3) float32 in [0, 1]
    return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
