"""Similarity registration (a variant's ``similarity``): a rotation and zoom about the centre, estimated per pair
and undone half on each side before the translation step of :mod:`~invariant_lpips.features.registration`.

Estimation (:func:`estimate_similarity`, no gradient): a Fourier-Mellin start (a rotation turns the magnitude
spectrum, a zoom shrinks it, a translation leaves it alone: on a log-polar grid both are displacements, found by
phase correlation), then a search scored by how well one translation explains the pair once ``x0`` is turned and
zoomed by the candidate. Compensation (:func:`similarity_compensate`): each side turned and zoomed half way
towards the other (bicubic, the same on both sides), both cropped where either read outside the image.

Conventions: ``x1`` ~ ``x0`` turned counter-clockwise (on screen, rows pointing down) by ``t`` degrees and zoomed
by ``s`` about the centre (:func:`similarity_warp`); estimates are ``(t, log s)``.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch

from .registration import (MAX_SHIFT, WINDOW, _central, _centred_luminance, _dft_surface, _luminance,
                           _phase_surface, _tukey)


#: similarity registration: the largest rotation (degrees, either sign) looked for
MAX_ANGLE = 20.0
#: similarity registration: the largest zoom looked for (a factor; its inverse too)
MAX_ZOOM = 1.12
#: a rotation below this (degrees) and a zoom below this (relative) are left alone: the pair is compared as without
ANGLE_MIN = 0.25
ZOOM_MIN = 0.0025
#: central crop (px a side) on which rotation and zoom are estimated
SIMILARITY_WINDOW = 256
#: log-polar grid of the magnitude spectrum: angle bins over 180 degrees, log-radius bins
SIMILARITY_BINS = (180, 256)
#: the log-polar correlation at the estimate must beat the one at (0 degrees, zoom 1) by this fraction of its height
SIMILARITY_MARGIN = 0.05
#: ... and reach this height (the translation's normalised phase correlation: 1 for a perfect match; a mirror or
#: an unrelated pair stays near 0.02)
SIMILARITY_MIN_PEAK = 0.1
#: the coarse (log-polar) step's peak must reach this height (true rotations about 0.1-0.2, a mirror 0.006)
FM_MIN_PEAK = 0.03
#: sub-bin resolution of the log-polar peak (1 / SIMILARITY_UPSAMPLE bin)
SIMILARITY_UPSAMPLE = 10
#: interpolation of the compensating warp (both sides, half each)
SIMILARITY_MODE = "bicubic"


def _radial_hann(h: int, w: int, device) -> torch.Tensor:
    """A rotationally symmetric Hann window on an (h, w) grid (radius min(h, w) / 2): it adds no preferred angle."""
    y = torch.arange(h, device=device, dtype=torch.float32) - (h - 1) / 2
    x = torch.arange(w, device=device, dtype=torch.float32) - (w - 1) / 2
    r = torch.sqrt(y[:, None] ** 2 + x[None] ** 2) / (min(h, w) / 2)
    return torch.where(r < 1, 0.5 * (1 + torch.cos(math.pi * r)), torch.zeros_like(r))


def _log_polar_spectrum(l: torch.Tensor, bins: Tuple[int, int]) -> Tuple[torch.Tensor, float]:
    """(N, h, w) luminance -> (N, A, R) log magnitude spectrum on a log-polar grid (angles [0, 180) degrees,
    radii 4 .. min(h, w) / 2 - 2 frequency bins, log spaced), and the log-radius step."""
    n, h, w = l.shape
    spec = torch.fft.fftshift(torch.fft.fft2(l), dim=(-2, -1)).abs()
    spec = torch.log1p(spec / spec.flatten(1).mean(dim=1)[:, None, None].clamp_min(1e-12))
    na, nr = bins
    r_max = min(h, w) / 2 - 2
    step = math.log(r_max / 4.0) / (nr - 1)
    rad = 4.0 * torch.exp(step * torch.arange(nr, device=l.device, dtype=torch.float32))
    ang = torch.arange(na, device=l.device, dtype=torch.float32) * (math.pi / na)
    fy = rad[None] * torch.sin(ang)[:, None]           # (A, R) frequency offsets from the centre bin
    fx = rad[None] * torch.cos(ang)[:, None]
    cy, cx = h // 2, w // 2                             # fftshift puts frequency 0 here
    gy = (2 * (cy + fy) + 1) / h - 1
    gx = (2 * (cx + fx) + 1) / w - 1
    grid = torch.stack([gx, gy], dim=-1)[None].expand(n, na, nr, 2)
    lp = torch.nn.functional.grid_sample(spec[:, None], grid, mode="bilinear", align_corners=False)[:, 0]
    return lp, step


def _parabolic(c_m: torch.Tensor, c_0: torch.Tensor, c_p: torch.Tensor) -> torch.Tensor:
    """The vertex offset (in bins, within +-0.5) of a parabola through three samples at -1, 0, 1."""
    den = c_m - 2 * c_0 + c_p
    off = torch.where(den < 0, 0.5 * (c_m - c_p) / den.where(den < 0, torch.ones_like(den)), torch.zeros_like(den))
    return off.clamp(-0.5, 0.5)


@torch.no_grad()
def _fourier_mellin(x0: torch.Tensor, x1: torch.Tensor, max_angle: float = MAX_ANGLE,
                        max_zoom: float = MAX_ZOOM, window: int = SIMILARITY_WINDOW,
                        margin: float = SIMILARITY_MARGIN, bins: Tuple[int, int] = SIMILARITY_BINS) -> torch.Tensor:
    """The rotation and zoom about the centre that take ``x0`` to ``x1``, per pair (Fourier-Mellin; no gradient).

    A translation changes only the phase of the spectrum; a rotation by ``t`` turns its magnitude by ``t``
    and a zoom by ``s`` shrinks it by ``1 / s``. On a log-polar grid (angle, log radius) both are
    displacements, found by phase correlation:

        P_i(a, rho) = log(1 + |F[w L_i]| / mean)  at angle a, radius exp(rho)   (w: a radial Hann window)
        (a*, rho*)  = argmax of the phase correlation of P_1 - mean with P_0 - mean, |a| <= max_angle,
                      |rho| <= log(max_zoom), refined by a parabola per axis
        t = -a*  (degrees, counter-clockwise on screen),  s = exp(-rho*)

    so that ``x1`` ~ ``x0`` turned counter-clockwise by ``t`` and zoomed by ``s`` about the centre
    (:func:`similarity_warp`). Accepted only where the correlation at the peak beats the one at (0, 0) by
    ``margin`` of its height and the estimate is not negligible (``|t| >= ANGLE_MIN`` or
    ``|s - 1| >= ZOOM_MIN``); otherwise (0, 0): unrelated, heavily damaged, mirrored or aligned pairs are
    compared without it. The magnitude spectrum has period 180 degrees, so ``max_angle`` must stay below 90.

    Args:
        x0, x1: (N, C, H, W) images of the same size (C = 3: RGB, or 1), any range; N may be 1 on one side.

    Returns:
        (N, 2) float32 ``(t, log s)``: degrees counter-clockwise and the log of the zoom, detached.
    """
    if x0.shape[-2:] != x1.shape[-2:]:
        raise ValueError(f"registration needs two images of the same size, got {tuple(x0.shape[-2:])} and "
                         f"{tuple(x1.shape[-2:])}: resize or crop one of them first")
    if not 0 < max_angle < 90 or max_zoom < 1:
        raise ValueError(f"similarity registration needs 0 < max_angle < 90 and max_zoom >= 1, got {max_angle}, "
                         f"{max_zoom}")
    n = max(x0.shape[0], x1.shape[0])
    size = min(window, *x0.shape[-2:])
    if size < 32:
        return torch.zeros(n, 2, device=x0.device)
    lum = [_centred_luminance(x, size, n) for x in (x0, x1)]
    win = _radial_hann(size, size, x0.device)
    lps = []
    for l in lum:
        lp, step = _log_polar_spectrum(l * win, bins)
        lp = lp - lp.mean(dim=-2, keepdim=True)          # each ring minus its mean: the radial profile carries no angle
        lps.append(lp * torch.hann_window(bins[1], periodic=False, device=x0.device)[None, None])
    cross = torch.fft.fft2(lps[1]) * torch.fft.fft2(lps[0]).conj()
    R = cross / (cross.abs() + 1e-6 * cross.abs().amax(dim=(-2, -1), keepdim=True) + 1e-30)
    surface = torch.fft.ifft2(R).real                                            # (N, A, R): lags (angle, rho)
    na, nr = bins
    ra = min(int(math.ceil(max_angle / (180.0 / na))), na // 2 - 1)
    rr = min(int(math.ceil(math.log(max_zoom) / step)), nr // 2 - 1)
    oa = torch.arange(-ra, ra + 1, device=x0.device)
    orr = torch.arange(-rr, rr + 1, device=x0.device)
    local = surface[:, oa % na][:, :, orr % nr]                                  # (N, 2ra+1, 2rr+1)
    flat = local.flatten(1).argmax(dim=1)
    ga = oa[flat // local.shape[-1]].double()
    gr = orr[flat % local.shape[-1]].double()
    steps = torch.arange(-SIMILARITY_UPSAMPLE, SIMILARITY_UPSAMPLE + 1, device=x0.device,
                         dtype=torch.float64) / SIMILARITY_UPSAMPLE
    fine = _dft_surface(R, ga[:, None] + steps, gr[:, None] + steps) / (na * nr)   # refined within +-1 bin
    best = fine.flatten(1).argmax(dim=1)
    ga = ga + steps[best // len(steps)]
    gr = gr + steps[best % len(steps)]
    peak, zero = fine.flatten(1).amax(dim=1), surface[:, 0, 0].double()
    #: (only the coarse step's own gate: a mirror's log-polar peak stays near 0.006)
    angle = (-ga * (180.0 / na)).float()
    log_zoom = (-gr * step).float()
    keep = ((peak - zero) > margin * peak.abs().clamp_min(1e-12)) & (peak >= FM_MIN_PEAK) & (
        (angle.abs() >= ANGLE_MIN) | ((log_zoom.exp() - 1).abs() >= ZOOM_MIN))
    est = torch.stack([angle, log_zoom], dim=1).float()
    return torch.where(keep[:, None], est, torch.zeros_like(est))


def _shift_peak(l0: torch.Tensor, l1: torch.Tensor, max_shift: int) -> torch.Tensor:
    """(M, h, w) x 2 windowed luminance -> (M,) height of the weighted phase correlation's peak within +-max_shift px
    (how well one translation explains the pair: 1 for a circular shift, near 0 for unrelated images)."""
    h, w = l0.shape[-2:]
    _, surface, weight = _phase_surface(l0, l1)
    r = min(max_shift, h // 2 - 1, w // 2 - 1)
    o = torch.arange(-r, r + 1, device=l0.device)
    return surface[:, o % h][:, :, o % w].flatten(1).amax(dim=1) * (h * w) / weight.sum()


@torch.no_grad()
def estimate_similarity(x0: torch.Tensor, x1: torch.Tensor, max_angle: float = MAX_ANGLE,
                        max_zoom: float = MAX_ZOOM, max_shift: int = MAX_SHIFT) -> torch.Tensor:
    """The rotation and zoom about the centre that take ``x0`` to ``x1``, per pair (no gradient).

    Every candidate ``(t, s)`` is scored by how well one translation then explains the pair:
    ``p(t, s)`` = the height of the weighted phase correlation's peak within ``max_shift`` px
    (:func:`_shift_peak`; 1 for a perfect match) between ``x1`` and ``x0`` turned counter-clockwise by ``t``
    degrees and zoomed by ``s`` about the centre, on the luminance of the central ``WINDOW`` px. A search
    from a start ``(t0, s0)`` tries ``t0 + {-1, -0.75, .., 1}`` degrees, then ``s0 * exp({-2.5, -2, .., 2.5} %)``
    (each best refined by a parabola; repeated from there, at most 4 times, while a best lies on its grid's
    edge), then finer grids (+-0.25 degrees, +-0.25 %, +-0.25 degrees). It starts at (0, 1), and also at the coarse estimate of :func:`_fourier_mellin` (rotations and zooms as displacements of the
    log-polar magnitude spectrum, which a translation does not change) when that lies beyond the first
    search's grids and already beats (0, 1); the better of the two is kept. A result is accepted only if the
    coarse passes end inside their grids, ``p`` beats ``p(0, 1)`` by ``SIMILARITY_MARGIN`` (relative), reaches ``SIMILARITY_MIN_PEAK`` (a mirror stays
    near 0.02), and it is not negligible (``|t| >= ANGLE_MIN`` or ``|s - 1| >= ZOOM_MIN``); otherwise (0, 0):
    unrelated, heavily damaged, mirrored and aligned pairs are compared as without it. Accurate to about
    0.1 degree and 0.2% of zoom on photographs (tests); ``|t| <= max_angle < 90``, ``1 / max_zoom <= s <= max_zoom``.

    So ``x1`` ~ ``x0`` turned by ``t`` and zoomed by ``s`` (and then translated; :func:`similarity_warp`).

    Args:
        x0, x1: (N, C, H, W) images of the same size (C = 3: RGB, or 1), any range; N may be 1 on one side.

    Returns:
        (N, 2) float32 ``(t, log s)``: degrees counter-clockwise and the log of the zoom, detached.
    """
    coarse = _fourier_mellin(x0, x1, max_angle=max_angle, max_zoom=max_zoom, margin=0.0)
    n = coarse.shape[0]
    size = min(WINDOW, *x0.shape[-2:])
    if size < 32:
        return torch.zeros(n, 2, device=x0.device)
    dev = x0.device
    da = torch.linspace(-1.0, 1.0, 9, device=dev, dtype=torch.float64)
    dz = torch.linspace(-0.025, 0.025, 11, device=dev, dtype=torch.float64)
    da2 = torch.tensor([-0.25, -0.125, 0.0, 0.125, 0.25], device=dev, dtype=torch.float64)
    dz2 = torch.tensor([-0.0025, -0.00125, 0.0, 0.00125, 0.0025], device=dev, dtype=torch.float64)
    win = _tukey(size, 0.25, dev, torch.float32)[:, None] * _tukey(size, 0.25, dev, torch.float32)[None]
    lum = [_luminance(x.detach().float()) if x.shape[1] == 3 else x.detach().float()[:, 0] for x in (x0, x1)]
    l1 = _central(lum[1], size)
    l1 = (l1 - l1.mean(dim=(-2, -1), keepdim=True)) * win
    out = torch.zeros(n, 2, device=dev)

    def score(i, ang, lz):  # p of x0 turned and zoomed by each candidate (ang, lz: (K,) float64)
        reach = size / math.sqrt(2) * (math.radians(float(ang.abs().max())) + float(lz.abs().max().exp()) - 1)
        src = _central(lum[0][i if lum[0].shape[0] > 1 else 0], size + 2 * int(math.ceil(reach)) + 8)
        src = src[None, None].expand(len(ang), 1, -1, -1)
        l0 = _central(similarity_warp(src, ang, lz, mode="bilinear")[:, 0], size)
        l0 = (l0 - l0.mean(dim=(-2, -1), keepdim=True)) * win
        return _shift_peak(l0, l1[i if l1.shape[0] > 1 else 0][None].expand_as(l0), max_shift).double()

    def line(p, k, step):  # the parabola's vertex around an interior optimum k, else None
        if not 0 < k < len(p) - 1:
            return None
        return _parabolic(p[k - 1], p[k], p[k + 1]) * step

    def search(i, t, z):  # (t, z, p) of the best candidate from (t, z) by coordinate ascent, or None
        for _ in range(4):  # coarse passes; an optimum on a grid's edge moves the grid there
            p = score(i, t + da, z.expand(len(da)))
            k = int(p.argmax())
            fa = line(p, k, da[1] - da[0])
            t = t + da[k] + (fa if fa is not None else 0.0)
            p = score(i, t.expand(len(dz)), z + dz)
            k = int(p.argmax())
            fz = line(p, k, dz[1] - dz[0])
            z = z + dz[k] + (fz if fz is not None else 0.0)
            if t.abs() > max_angle + 1 or z.abs() > math.log(max_zoom) + 0.025:
                return None
            if fa is not None and fz is not None:
                break
        else:
            return None
        if t.abs() < ANGLE_MIN / 2 and (z.exp() - 1).abs() < ZOOM_MIN / 2:
            return None                                          # nothing there: the fine passes cannot make it count
        for grid, angle in ((da2, True), (dz2, False), (da2, True)):  # fine passes
            p = score(i, t + grid, z.expand(len(grid))) if angle else score(i, t.expand(len(grid)), z + grid)
            k = int(p.argmax())
            f = line(p, k, grid[1] - grid[0])
            step = grid[k] + (f if f is not None else 0.0)
            t, z = (t + step, z) if angle else (t, z + step)
        if t.abs() > max_angle or z.abs() > math.log(max_zoom):
            return None
        return t, z, score(i, t[None], z[None])[0]

    for i in range(n):
        base = score(i, torch.zeros(1, device=dev, dtype=torch.float64), torch.zeros(1, device=dev, dtype=torch.float64))[0]
        zero = torch.zeros((), device=dev, dtype=torch.float64)
        starts = [(zero, zero)]
        t0, z0 = coarse[i, 0].double(), coarse[i, 1].double()
        if (t0.abs() > 1.0 or z0.abs() > 0.025) and score(i, t0[None], z0[None])[0] > base * (1 + SIMILARITY_MARGIN):
            starts.append((t0, z0))
        found = [f for f in (search(i, t, z) for t, z in starts) if f is not None]
        if not found:
            continue
        t, z, best = max(found, key=lambda f: float(f[2]))
        if (best > base * (1 + SIMILARITY_MARGIN) and best >= SIMILARITY_MIN_PEAK
                and (t.abs() >= ANGLE_MIN or (z.exp() - 1).abs() >= ZOOM_MIN)):
            out[i] = torch.stack([t, z]).float()
    return out


def similarity_warp(x: torch.Tensor, angle: torch.Tensor, log_zoom: torch.Tensor,
                    mode: str = SIMILARITY_MODE) -> torch.Tensor:
    """``x`` turned counter-clockwise by ``angle`` degrees and zoomed by ``exp(log_zoom)`` about its centre,
    per image (the convention of :func:`estimate_similarity`; edges replicated). Differentiable in ``x``.

        out(c + q) = x(c + R(-angle) q / s)        (q an offset from the centre c; rows point down)

    x: (N, C, H, W); angle, log_zoom: (N,)."""
    n, _, h, w = x.shape
    t = torch.deg2rad(angle.double()).to(x.device)
    s = torch.exp(log_zoom.double()).to(x.device)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    dy = (torch.arange(h, device=x.device, dtype=torch.float64) - cy)[None, :, None]
    dx = (torch.arange(w, device=x.device, dtype=torch.float64) - cx)[None, None, :]
    ct, st, s = torch.cos(t)[:, None, None], torch.sin(t)[:, None, None], s[:, None, None]
    sy = (ct * dy + st * dx) / s + cy
    sx = (-st * dy + ct * dx) / s + cx
    grid = torch.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], dim=-1).to(x.dtype)
    return torch.nn.functional.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)


def similarity_margin(h: int, w: int, angle: float, log_zoom: float) -> int:
    """Pixels to crop a side after warping by half of (``angle``, ``log_zoom``) each way, so that every kept
    pixel was read from inside both images (with the bicubic kernel's 2 px)."""
    radius = math.hypot(h, w) / 2
    half = math.radians(abs(angle)) / 2
    move = radius * (2 * math.sin(half / 2) + abs(math.exp(abs(log_zoom) / 2) - 1)) * math.exp(abs(log_zoom) / 2)
    return int(math.ceil(move)) + 2


def similarity_compensate(x0: torch.Tensor, x1: torch.Tensor, est: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """One pair (1, C, H, W) x 2 with ``x1`` ~ ``x0`` turned and zoomed by ``est`` = (angle, log zoom): each
    side moved by half of it towards the other (:func:`similarity_warp`; the same interpolation on both
    sides, so neither is blurrier), then both cropped by :func:`similarity_margin`."""
    if x0.shape[0] != 1 or x1.shape[0] != 1:
        raise ValueError(f"similarity_compensate takes one pair, got batches {x0.shape[0]} and {x1.shape[0]}")
    a, z = est.detach().double().cpu().reshape(2).tolist()
    h, w = x0.shape[-2:]
    m = similarity_margin(h, w, a, z)
    if h <= 2 * m + 16 or w <= 2 * m + 16:
        raise ValueError(f"a rotation of {a:.1f} degrees and zoom {math.exp(z):.3f} leave no overlap of {h}x{w} px worth comparing")
    one = torch.ones(1, dtype=torch.float64)
    c0 = similarity_warp(x0, one * (a / 2), one * (z / 2))
    c1 = similarity_warp(x1, one * (-a / 2), one * (-z / 2))
    return c0[..., m:h - m, m:w - m], c1[..., m:h - m, m:w - m]
