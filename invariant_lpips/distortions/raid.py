"""RAID-style affine distortions and additive Gaussian noise.

RAID (Daudén-Oliver et al., "RAID-Database: Human Responses to Affine Image
Distortions") distorts images by rotation, translation, scaling and Gaussian
noise. For the geometric ones the image is padded by mirroring (symmetric
padding: ``d c b a | a b c d | d c b a``, MATLAB ``padarray(..., 'symmetric')``
/ numpy ``mode='symmetric'``), transformed about the centre of the image, and
cropped back to its original size, so no black corners appear. Levels are given
by the caller (degrees, pixels, scale factor, noise sigma).

All functions take an ``(H, W, 3)`` uint8 numpy array or a PIL image and return
the same form. Integer translations are exact index shifts (no interpolation);
everything else is resampled with scipy's spline interpolation (``order=1``
bilinear by default, ``order=3`` cubic) and rounded back to uint8.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from scipy import ndimage

from ._image import as_uint8_rgb, to_uint8

__all__ = ["rotate", "translate", "scale", "gaussian_noise", "symmetric_pad"]


def _check_finite(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _check_order(order: int) -> int:
    if order not in (0, 1, 3):
        raise ValueError(f"order must be 0 (nearest), 1 (bilinear) or 3 (cubic), got {order!r}")
    return order


def symmetric_pad(array: np.ndarray, pad_y: int, pad_x: int) -> np.ndarray:
    """Mirror-pad the first two axes by ``pad_y`` rows and ``pad_x`` columns on each side
    (edge sample repeated, as MATLAB ``padarray(..., 'symmetric')``)."""
    widths = [(int(pad_y), int(pad_y)), (int(pad_x), int(pad_x))] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="symmetric")


def _affine_about_center(x: np.ndarray, matrix: np.ndarray, shift: np.ndarray, pad: int, order: int) -> np.ndarray:
    """Resample ``x`` (H, W, C float) with output->input map ``p_in = M (p_out - c) + c - shift``
    on a mirror-padded copy, then crop back to (H, W)."""
    H, W = x.shape[:2]
    P = symmetric_pad(x, pad, pad)
    c = np.array([(H - 1) / 2.0 + pad, (W - 1) / 2.0 + pad])
    offset = c - matrix @ c - shift
    out = np.empty_like(P)
    for ch in range(x.shape[2]):
        out[..., ch] = ndimage.affine_transform(
            P[..., ch], matrix, offset=offset, order=order, mode="nearest", prefilter=order > 1
        )
    return out[pad : pad + H, pad : pad + W]


def rotate(image: Any, degrees: float, *, order: int = 1) -> Any:
    """Rotate counter-clockwise by ``degrees`` about the image centre; corners are filled
    from the mirror-padded surround, output size equals input size."""
    deg = _check_finite(degrees, "degrees")
    order = _check_order(order)
    u8, restore = as_uint8_rgb(image)
    if deg == 0.0:
        return restore(u8.copy())
    H, W = u8.shape[:2]
    t = math.radians(deg)
    # output (row, col) -> input: rotate by -t in (row, col) with rows pointing down
    m = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    pad = int(math.ceil(0.5 * (math.hypot(H, W) - min(H, W)))) + 2
    y = _affine_about_center(u8.astype(np.float64), m, np.zeros(2), pad, order)
    return restore(to_uint8(y / 255.0))


def translate(image: Any, dx: float, dy: float = 0.0, *, order: int = 1) -> Any:
    """Shift content right by ``dx`` and down by ``dy`` pixels; uncovered borders are filled by
    mirroring. Integer shifts are exact index shifts; fractional ones are interpolated."""
    dx = _check_finite(dx, "dx")
    dy = _check_finite(dy, "dy")
    order = _check_order(order)
    u8, restore = as_uint8_rgb(image)
    H, W = u8.shape[:2]
    if dx == int(dx) and dy == int(dy):
        ix, iy = int(dx), int(dy)
        pad_x, pad_y = abs(ix), abs(iy)
        P = symmetric_pad(u8, pad_y, pad_x)
        out = P[pad_y - iy : pad_y - iy + H, pad_x - ix : pad_x - ix + W]
        return restore(np.ascontiguousarray(out))
    pad = int(math.ceil(max(abs(dx), abs(dy)))) + 2
    y = _affine_about_center(u8.astype(np.float64), np.eye(2), np.array([dy, dx]), pad, order)
    return restore(to_uint8(y / 255.0))


def scale(image: Any, factor: float, *, order: int = 1) -> Any:
    """Zoom about the image centre by ``factor`` (>1 enlarges, <1 shrinks with a mirrored
    surround), keeping the input size."""
    f = _check_finite(factor, "factor")
    if f <= 0:
        raise ValueError(f"factor must be > 0 (1 = unchanged, 1.09 = 9% larger), got {factor!r}")
    order = _check_order(order)
    u8, restore = as_uint8_rgb(image)
    if f == 1.0:
        return restore(u8.copy())
    H, W = u8.shape[:2]
    pad = int(math.ceil(max(0.0, (1.0 / f - 1.0)) * max(H, W) / 2.0)) + 2
    y = _affine_about_center(u8.astype(np.float64), np.eye(2) / f, np.zeros(2), pad, order)
    return restore(to_uint8(y / 255.0))


def gaussian_noise(image: Any, sigma: float, seed: Optional[int] = 0) -> Any:
    """Add white Gaussian noise of standard deviation ``sigma`` on the [0, 1] scale, clipped
    to [0, 1]. Deterministic for a given ``seed`` (``numpy.random.default_rng(seed)``)."""
    s = _check_finite(sigma, "sigma")
    if s < 0:
        raise ValueError(f"sigma must be >= 0 (standard deviation on the [0, 1] scale), got {sigma!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    u8, restore = as_uint8_rgb(image)
    if s == 0.0:
        return restore(u8.copy())
    rng = np.random.default_rng(seed)
    y = u8.astype(np.float64) / 255.0 + rng.standard_normal(u8.shape) * s
    return restore(to_uint8(y))
