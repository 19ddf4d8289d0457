"""Filters and helpers re-implemented after MATLAB's Image Processing Toolbox.

``fspecial_*`` follow MATLAB's ``fspecial`` formulas; ``imfilter_replicate`` is
``imfilter(a, h, 'replicate')`` (correlation, border replication); the resize is
``imresize(..., 'nearest')``; ``curves`` is the KADID tone curve (MATLAB
``spline`` through the control points, i.e. a not-a-knot cubic spline, which is
a single parabola for three points); ``multithresh`` is an exact multi-level
Otsu; ``nl_means`` is a classical non-local-means denoiser used in place of
DnCNN (see the denoise type's notes).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import ndimage
from scipy.interpolate import CubicSpline

_EPS = float(np.finfo(np.float64).eps)


# ----------------------------------------------------------------- kernels
def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    m = (size - 1) / 2.0
    y, x = np.ogrid[-m : m + 1, -m : m + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < _EPS * h.max()] = 0.0
    return h / h.sum()


def gaussian_size(sigma: float) -> int:
    """``imgaussfilt``'s default kernel size, ``2*ceil(2*sigma)+1``."""
    return 2 * int(math.ceil(2.0 * sigma)) + 1


def fspecial_disk(rad: float) -> np.ndarray:
    """MATLAB ``fspecial('disk', rad)``: pixel-area-weighted disc, normalised."""
    crad = int(math.ceil(rad - 0.5))
    x, y = np.meshgrid(np.arange(-crad, crad + 1), np.arange(-crad, crad + 1))
    ax, ay = np.abs(x).astype(float), np.abs(y).astype(float)
    maxxy = np.maximum(ax, ay)
    minxy = np.minimum(ax, ay)
    r2 = rad * rad

    def _sqrt(v):
        return np.sqrt(np.maximum(v, 0.0))

    m1 = np.where(r2 < (maxxy + 0.5) ** 2 + (minxy - 0.5) ** 2, minxy - 0.5, _sqrt(r2 - (maxxy + 0.5) ** 2))
    m2 = np.where(r2 > (maxxy - 0.5) ** 2 + (minxy + 0.5) ** 2, minxy + 0.5, _sqrt(r2 - (maxxy - 0.5) ** 2))
    a1 = np.arcsin(np.clip(m1 / rad, -1, 1))
    a2 = np.arcsin(np.clip(m2 / rad, -1, 1))
    area = r2 * (0.5 * (a2 - a1) + 0.25 * (np.sin(2 * a2) - np.sin(2 * a1))) - (maxxy - 0.5) * (m2 - m1) + (m1 - minxy + 0.5)
    edge = ((r2 < (maxxy + 0.5) ** 2 + (minxy + 0.5) ** 2) & (r2 > (maxxy - 0.5) ** 2 + (minxy - 0.5) ** 2)) | (
        (minxy == 0) & (maxxy - 0.5 < rad) & (maxxy + 0.5 >= rad)
    )
    sgrid = np.where(edge, area, 0.0)
    sgrid = sgrid + ((maxxy + 0.5) ** 2 + (minxy + 0.5) ** 2 < r2)
    c = crad
    sgrid[c, c] = min(math.pi * r2, math.pi / 2)
    if crad > 0 and rad > crad - 0.5 and r2 < (crad - 0.5) ** 2 + 0.25:
        m1s = math.sqrt(r2 - (crad - 0.5) ** 2)
        m1n = m1s / rad
        sg0 = 2 * (r2 * (0.5 * math.asin(m1n) + 0.25 * math.sin(2 * math.asin(m1n))) - m1s * (crad - 0.5))
        sgrid[2 * c, c] = sg0
        sgrid[c, 2 * c] = sg0
        sgrid[c, 0] = sg0
        sgrid[0, c] = sg0
        sgrid[2 * c - 1, c] -= sg0
        sgrid[c, 2 * c - 1] -= sg0
        sgrid[c, 1] -= sg0
        sgrid[1, c] -= sg0
    sgrid[c, c] = min(sgrid[c, c], 1.0)
    return sgrid / sgrid.sum()


def fspecial_motion(length: float, theta: float) -> np.ndarray:
    """MATLAB ``fspecial('motion', len, theta)``: anti-aliased line of ``len`` pixels at ``theta`` degrees."""
    length = max(1.0, float(length))
    half = (length - 1.0) / 2.0
    phi = (theta % 180.0) / 180.0 * math.pi
    cosphi, sinphi = math.cos(phi), math.sin(phi)
    xsign = 1 if cosphi > 0 else (-1 if cosphi < 0 else 0)
    linewdt = 1.0
    sx = math.trunc(half * cosphi + linewdt * xsign - length * _EPS)
    sy = math.trunc(half * sinphi + linewdt - length * _EPS)
    xs = np.arange(0, sx + xsign, xsign) if xsign != 0 else np.array([0])
    ys = np.arange(0, sy + 1)
    x, y = np.meshgrid(xs.astype(float), ys.astype(float))
    dist2line = y * cosphi - x * sinphi
    rad = np.sqrt(x ** 2 + y ** 2)
    last = (rad >= half) & (np.abs(dist2line) <= linewdt)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x2last = half - np.abs((x[last] + dist2line[last] * sinphi) / cosphi)
        dist2line[last] = np.sqrt(dist2line[last] ** 2 + x2last ** 2)
    dist2line = linewdt + _EPS - np.abs(dist2line)
    dist2line[~(dist2line >= 0)] = 0.0
    h0 = np.rot90(dist2line, 2)
    m, n = h0.shape
    h = np.zeros((2 * m - 1, 2 * n - 1))
    h[:m, :n] = h0
    h[m - 1 :, n - 1 :] = dist2line
    h = h / (h.sum() + _EPS * length * length)
    if cosphi > 0:
        h = np.flipud(h)
    return h


# ----------------------------------------------------------------- filtering
def imfilter_replicate(img: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``imfilter(img, h, 'replicate')`` per channel (correlation, odd kernels)."""
    if img.ndim == 2:
        return ndimage.correlate(img, h, mode="nearest")
    return np.stack([ndimage.correlate(img[..., c], h, mode="nearest") for c in range(img.shape[2])], axis=-1)


def gaussian_filter_replicate(img: np.ndarray, sigma: float) -> np.ndarray:
    """``imgaussfilt(img, sigma)``: kernel ``2*ceil(2*sigma)+1``, replicate borders (separable)."""
    size = gaussian_size(sigma)
    m = (size - 1) / 2.0
    x = np.arange(-m, m + 1)
    k = np.exp(-(x * x) / (2.0 * sigma * sigma))
    k /= k.sum()
    axes = (0, 1)
    out = img
    for ax in axes:
        out = ndimage.correlate1d(out, k, axis=ax, mode="nearest")
    return out


def resize_nearest_matlab(img: np.ndarray, out_h: int, out_w: int, scale_h: float, scale_w: float) -> np.ndarray:
    """``imresize(img, ..., 'nearest')`` index mapping: source = floor((dst + 0.5) / scale)."""
    h, w = img.shape[:2]
    ri = np.minimum(np.floor((np.arange(out_h) + 0.5) / scale_h).astype(int), h - 1)
    ci = np.minimum(np.floor((np.arange(out_w) + 0.5) / scale_w).astype(int), w - 1)
    return img[ri][:, ci]


# ----------------------------------------------------------------- tone curves
def curves(x: np.ndarray, knots_x: Sequence[float], knots_y: Sequence[float]) -> np.ndarray:
    """MATLAB ``spline`` through ``(0,0), (knots), (1,1)`` evaluated at ``x``, clipped to [0, 1]."""
    kx = np.concatenate([[0.0], np.asarray(knots_x, float), [1.0]])
    ky = np.concatenate([[0.0], np.asarray(knots_y, float), [1.0]])
    cs = CubicSpline(kx, ky, bc_type="not-a-knot")
    return np.clip(cs(x), 0.0, 1.0)


# ----------------------------------------------------------------- Otsu
def multithresh(values: np.ndarray, n_thresh: int, n_bins: int = 256) -> np.ndarray:
    """Exact multi-level Otsu thresholds of ``values`` in [0, 1] on an ``n_bins`` histogram.

    Returns ``n_thresh`` increasing thresholds in value units, each the value of
    the last histogram bin of the lower class (as MATLAB's ``graythresh`` /
    ``multithresh`` report them); a value ``v`` falls into class ``k`` = number
    of thresholds ``< v`` (MATLAB ``imquantize``).
    Maximises the between-class variance by dynamic programming (global
    optimum), where MATLAB's ``multithresh`` uses a numerical search for more
    than two thresholds.
    """
    idx = np.clip(np.floor(values.ravel() * (n_bins - 1) + 0.5).astype(int), 0, n_bins - 1)
    hist = np.bincount(idx, minlength=n_bins).astype(np.float64)
    p = hist / hist.sum()
    P = np.concatenate([[0.0], np.cumsum(p)])
    M = np.concatenate([[0.0], np.cumsum(p * np.arange(n_bins))])
    # cost[i, j]: bins i..j-1 as one class, S^2 / W (0 for empty classes)
    W = P[None, :] - P[:, None]
    S = M[None, :] - M[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = np.where(W > 1e-15, S * S / np.where(W > 1e-15, W, 1.0), 0.0)
    valid = np.arange(n_bins + 1)[None, :] > np.arange(n_bins + 1)[:, None]
    cost = np.where(valid, cost, -np.inf)
    k_classes = n_thresh + 1
    dp = cost[0].copy()  # one class covering bins 0..j-1
    back = []
    for _ in range(1, k_classes):
        cand = dp[:, None] + cost  # previous split at i, new class i..j-1
        arg = np.argmax(cand, axis=0)
        dp = cand[arg, np.arange(n_bins + 1)]
        back.append(arg)
    # backtrack from j = n_bins
    bounds = []
    j = n_bins
    for arg in reversed(back):
        i = int(arg[j])
        bounds.append(i)
        j = i
    bounds = sorted(bounds)  # first bin of each upper class
    return (np.asarray(bounds, dtype=np.float64) - 1.0) / (n_bins - 1)


# ----------------------------------------------------------------- denoiser
def nl_means(img: np.ndarray, sigma: float) -> np.ndarray:
    """Colour non-local means (Buades, Coll, Morel; IPOL 2011 parameter table).

    ``img`` is (H, W, 3) float in [0, 1] with white noise of std ``sigma``.
    Patch weights ``exp(-max(d2 - 2 sigma^2, 0) / h^2)`` with ``d2`` the mean
    squared patch difference over the three channels. The search window is
    capped at 15x15 to keep dataset generation fast.
    """
    s255 = sigma * 255.0
    if s255 <= 25:
        pr, hk = 1, 0.55
    elif s255 <= 55:
        pr, hk = 2, 0.40
    else:
        pr, hk = 3, 0.35
    sr = 7
    h2 = (hk * sigma) ** 2
    two_s2 = 2.0 * sigma * sigma
    H, W, C = img.shape
    pad = sr + pr
    x = img.astype(np.float32)
    P = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    center = P[sr : sr + H + 2 * pr, sr : sr + W + 2 * pr]  # image plus patch margin
    acc = np.zeros_like(x)
    wsum = np.zeros((H, W), np.float32)
    wmax = np.zeros((H, W), np.float32)
    size = 2 * pr + 1
    for dy in range(-sr, sr + 1):
        for dx in range(-sr, sr + 1):
            if dy == 0 and dx == 0:
                continue
            other = P[sr + dy : sr + dy + H + 2 * pr, sr + dx : sr + dx + W + 2 * pr]
            d = center - other
            d2 = np.einsum("ijk,ijk->ij", d, d) / C
            d2 = ndimage.uniform_filter(d2, size=size, mode="constant")[pr : pr + H, pr : pr + W]
            w = np.exp(-np.maximum(d2 - two_s2, 0.0) / h2).astype(np.float32)
            acc += w[..., None] * other[pr : pr + H, pr : pr + W]
            wsum += w
            np.maximum(wmax, w, out=wmax)
    wmax = np.where(wmax > 0, wmax, 1.0).astype(np.float32)
    acc += wmax[..., None] * x
    wsum += wmax
    return (acc / wsum[..., None]).astype(np.float64)
