"""Exact shift operators on image tensors (the distortion library's translations).

Used by the robustness study (sweeps, rank flips) and the classifier study (the authors'
mirror-mosaic translation test); both import them from here.

All operators act on the last two dimensions of a tensor ``(..., H, W)``; the
usual input is a batch ``(N, C, H, W)``. ``dx`` is the horizontal (column,
``W``) displacement, ``dy`` the vertical (row, ``H``) one. Nothing here changes
the dtype or the device of the input.

Sign conventions (they differ on purpose, each follows its protocol):

* :func:`circular_shift` and :func:`subpixel_shift` move the *content*:
  ``out[..., i, j] = x[..., i - dy, j - dx]`` (the :func:`numpy.roll` /
  :func:`torch.roll` convention; a positive ``dx`` moves the picture right).
* :func:`crop_shift_pair` and :func:`mirror_mosaic_shift` move a *window*
  over the (extended) image: ``out[..., i, j] = x_ext[..., top + i, left + j]``
  with the window's offset increased by ``(dy, dx)``, so the content appears
  to move by ``(-dy, -dx)``.

For the distance measures the direction is immaterial; it matters only when
comparing outputs of different operators pixel by pixel.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..data.sizes import SizeLike, as_hw

__all__ = [
    "circular_shift",
    "crop_shift_pair",
    "mirror_mosaic_shift",
    "subpixel_shift",
]


def _check_spatial(x: Tensor, name: str = "x") -> Tuple[int, int]:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{name} must have at least 2 dimensions (..., H, W), got shape {tuple(x.shape)}")
    return int(x.shape[-2]), int(x.shape[-1])


def _as_int(value, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if not f.is_integer():
        raise ValueError(f"{name} must be an integer number of pixels, got {value!r}")
    return int(f)


def circular_shift(x: Tensor, dx: int = 0, dy: int = 0) -> Tensor:
    """Shift ``x`` circularly (wrap-around) by whole pixels.

    ``out[..., i, j] = x[..., (i - dy) mod H, (j - dx) mod W]`` -- identical to
    ``torch.roll(x, shifts=(dy, dx), dims=(-2, -1))`` and to :func:`numpy.roll`.
    """
    _check_spatial(x)
    dx = _as_int(dx, "dx")
    dy = _as_int(dy, "dy")
    if dx == 0 and dy == 0:
        return x.clone()
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def _axis_dim(axis: str) -> int:
    if axis in ("x", "w", "W", "horizontal"):
        return -1
    if axis in ("y", "h", "H", "vertical"):
        return -2
    raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")


def crop_shift_pair(x: Tensor, k: int, margin: int, axis: str = "x") -> Tuple[Tensor, Tensor]:
    """The ST-LPIPS crop-shift protocol: two equal-size crops ``k`` pixels apart.

    Along ``axis='x'`` (columns; ``'y'`` does the same with rows)::

        ref     = x[..., :, 0 : W - margin]
        shifted = x[..., :, k : W - margin + k]

    so ``shifted[..., j] == x[..., j + k]``: the window moves right by ``k`` and
    the content appears to move left by ``k``. The reference crop does not
    depend on ``k``, so a sweep over ``k`` in ``[0, margin]`` compares every
    shifted crop against the same reference. Both crops are views of ``x``
    (no copy); both have size ``W - margin`` along ``axis``.

    Requires ``0 <= k <= margin < size along axis``.
    """
    h, w = _check_spatial(x)
    k = _as_int(k, "k")
    margin = _as_int(margin, "margin")
    dim = _axis_dim(axis)
    n = w if dim == -1 else h
    if margin < 0 or margin >= n:
        raise ValueError(f"margin must satisfy 0 <= margin < {n} (image size along {axis!r}), got {margin}")
    if k < 0 or k > margin:
        raise ValueError(f"shift k must satisfy 0 <= k <= margin={margin}, got {k}")
    length = n - margin
    ref = x.narrow(dim, 0, length)
    shifted = x.narrow(dim, k, length)
    return ref, shifted


def _symmetric_index(start: int, length: int, n: int, device) -> Tensor:
    """Indices into a length-``n`` axis of the window ``[start, start+length)``
    of its symmetric 3-tile extension (``numpy.pad(mode='symmetric')`` with pad
    width ``n``: flipped copy, original, flipped copy)."""
    c = torch.arange(start, start + length, device=device) - n  # coordinate in the original frame
    idx = torch.where(c < 0, -c - 1, c)
    idx = torch.where(idx >= n, 2 * n - 1 - idx, idx)
    return idx


def mirror_mosaic_shift(x: Tensor, dx: int = 0, dy: int = 0, size: Optional[SizeLike] = None) -> Tensor:
    """The authors' protocol: shift inside a 3x3 mosaic of mirrored copies.

    The image (``H x W``) is padded symmetrically by its own size on every side
    -- exactly ``numpy.pad(x, ((H, H), (W, W)), mode='symmetric')``, i.e. the
    edge pixel is repeated (``... c b a | a b c ... x y z | z y x ...``) -- which
    gives a ``3H x 3W`` mosaic whose centre tile is ``x`` and whose other tiles
    are its mirror images. A window of ``size`` (default ``(H, W)``; an int
    means a square) is cropped with its top-left corner at::

        top  = H + (H - h) // 2 + dy
        left = W + (W - w) // 2 + dx

    (the centred window moved by ``(dy, dx)``). ``mirror_mosaic_shift(x, 0, 0)``
    returns ``x``. The window must stay inside the mosaic:
    ``0 <= top <= 3H - h`` and ``0 <= left <= 3W - w``.

    Implemented by index gathering, so the mosaic is never materialised.
    """
    h, w = _check_spatial(x)
    dx = _as_int(dx, "dx")
    dy = _as_int(dy, "dy")
    oh, ow = as_hw(size) or (h, w)
    top = h + (h - oh) // 2 + dy
    left = w + (w - ow) // 2 + dx
    if top < 0 or top + oh > 3 * h or left < 0 or left + ow > 3 * w:
        raise ValueError(
            f"window of size {(oh, ow)} shifted by (dx={dx}, dy={dy}) leaves the 3x3 mirror mosaic "
            f"of a {h}x{w} image (top={top}, left={left})"
        )
    rows = _symmetric_index(top, oh, h, x.device)
    cols = _symmetric_index(left, ow, w, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _fourier_shift(x: Tensor, dx: float, dy: float) -> Tensor:
    h, w = x.shape[-2], x.shape[-1]
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    real_dtype = work.dtype
    fy = torch.fft.fftfreq(h, device=x.device, dtype=real_dtype).reshape(h, 1)
    fx = torch.fft.fftfreq(w, device=x.device, dtype=real_dtype).reshape(1, w)
    phase = -2.0 * math.pi * (fy * float(dy) + fx * float(dx))
    ramp = torch.polar(torch.ones_like(phase), phase)
    out = torch.fft.ifft2(torch.fft.fft2(work) * ramp).real
    return out.to(x.dtype)


def _linear_shift_1d(x: Tensor, d: float, dim: int) -> Tensor:
    n = x.shape[dim]
    pos = torch.arange(n, device=x.device, dtype=torch.float64) - float(d)
    i0 = torch.floor(pos)
    frac = (pos - i0).to(x.dtype if x.is_floating_point() else torch.float32)
    i0 = i0.long()
    a = x.index_select(dim, i0.clamp(0, n - 1))
    b = x.index_select(dim, (i0 + 1).clamp(0, n - 1))
    shape = [1] * x.dim()
    shape[dim] = n
    frac = frac.reshape(shape)
    return a * (1 - frac) + b * frac


def subpixel_shift(x: Tensor, dx: float = 0.0, dy: float = 0.0, method: str = "fourier") -> Tensor:
    """Shift the content by a possibly fractional number of pixels.

    Convention as :func:`circular_shift`: ``out(i, j) = x(i - dy, j - dx)``.

    ``method='fourier'``
        Multiplies the 2-D DFT by the phase ramp ``exp(-2 pi i (fx dx + fy dy))``
        (``fx``, ``fy`` from :func:`torch.fft.fftfreq`) and keeps the real part.
        This is the exact shift of the periodic band-limited interpolant of
        ``x``: integer shifts equal :func:`torch.roll` up to float error, and
        shifting twice by ``s`` equals shifting once by ``2 s`` for signals
        without energy at the Nyquist frequency (for even sizes, taking the real
        part scales a Nyquist component by ``cos(pi d)``). Borders wrap around.
        Computed in float32 (float64 for float64 inputs).
    ``method='bilinear'``
        Separable linear interpolation, sample positions clamped to the image
        (border replicate). Integer shifts are exact translations with the edge
        row/column repeated; the result is low-pass for fractional shifts.
    """
    _check_spatial(x)
    dx = float(dx)
    dy = float(dy)
    if method == "fourier":
        if dx == 0 and dy == 0:
            return x.clone()
        return _fourier_shift(x, dx, dy)
    if method == "bilinear":
        out = x
        if dx != 0:
            out = _linear_shift_1d(out, dx, x.dim() - 1)
        if dy != 0:
            out = _linear_shift_1d(out, dy, x.dim() - 2)
        return out.clone() if out is x else out
    raise ValueError(f"method must be 'fourier' or 'bilinear', got {method!r}")
