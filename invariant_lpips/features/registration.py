"""Registration: estimate the global displacement of two images, then compare them where they overlap.

Shift tolerance by *matching*, not by *discarding*: the pooled and coarse statistics forgive a shift by
throwing fine position away; a registered term keeps every position, so a loss built on it has a
gradient at every pixel, and forgives a shift because it first undoes it.

Estimation (:func:`estimate_shift`, no gradient: the displacement is detached from the graph):

    L_i      = luminance of image i (0.299 R + 0.587 G + 0.114 B), mean removed, a central crop of at most
               ``window`` px a side (the same crop of both), times a Tukey (raised-cosine edge) window
    R(f)     = F[L_1](f) conj(F[L_0](f)) / (|F[L_1](f) F[L_0](f)| + eps) * exp(-|f|^2 / (2 f_0^2))
    c(d)     = Re sum_f R(f) exp(2 pi i f . d)                        (weighted phase correlation)
    d*       = argmax_{|d_y|, |d_x| <= max_shift} c(d)  on the integer grid, then refined on a grid of
               1 / ``upsample`` px within +-1 px of it by evaluating c at those points (an upsampled DFT,
               Guizar-Sicairos et al. 2008)

``x1(p) ~ x0(p - d*)``: ``x1`` is ``x0`` moved by ``d* = (d_y, d_x)`` (down, right). The Gaussian weight
(``f_0`` = 0.25 cycles / px) keeps noise at high frequencies out of the peak; it is symmetric, so the
peak of a pure shift stays at the shift. A displacement is accepted only where the correlation at
``d*`` beats the one at zero by ``margin`` (relative): unrelated or heavily damaged pairs, whose peak
is noise, are compared unshifted.

Compensation (:func:`overlap`): the displacement rounded to whole pixels, then both images cropped to
the region they share (``H - |d_y|`` x ``W - |d_x|``). This is exact: nothing is resampled, so no
blur enters either side. The residual (at most half a pixel) is left to the anti-aliased features.

Sub-pixel compensation (optional: a variant's ``subpixel``): the residual ``f = d* - round(d*)`` (at most half a
pixel per axis) is undone too, half on each side, after the whole-pixel crop:

    c_0'(q) = c_0(q - f / 2),   c_1'(q) = c_1(q + f / 2)        (:func:`fractional_shift`, Lanczos-3, differentiable)

then both are cropped by 3 px a side (where the kernel read replicated edges). Both images go through the same
interpolation (the kernels of +-f/2 have the same magnitude response), so neither side is blurrier than the other.
Only pairs with ``|f| >= SUBPIXEL_MIN`` (0.1 px) in some axis are resampled; the rest are compared exactly as without it.

Local matching (optional: a variant's ``local_radius`` r > 0; :func:`estimate_local`, no gradient): after
the global step, each ``cell`` x ``cell`` px cell (default 16) of one image is matched within +-r px in the
other, on their low-passed luminance (5-tap binomial):

    e_d(p)   = L_0(p) - L_1(p + d)                                  (L_1 read with replicated edges)
    E_d(k)   = sum_{p in cell k} (e_d(p) - mean_{cell k} e_d)^2      (a change of brightness is not a shift)
    d_k      = argmin_{|d_y|, |d_x| <= r} E_d(k), kept only if E_{d_k}(k) < (1 - local_margin) E_0(k)
               (else 0; ties go to the smaller |d|)

and a registered term compares ``a`` with ``b`` read at ``p + d_{k(p)}`` (:func:`warp_cells`, a gather:
differentiable in the maps, the field detached). The cells are anchored on either image in turn and the
two comparisons averaged, so the term stays symmetric: ``M = (m(a, b o F) + m(a o G, b)) / 2``.

Similarity registration (optional: a variant's ``similarity``; :mod:`~invariant_lpips.features.similarity`, no gradient): before
the translation step, a rotation of up to 20 degrees and a zoom of up to 12% about the centre are estimated per pair
and undone half on each side (:mod:`~invariant_lpips.features.similarity`: bicubic, both sides, then both cropped where either
read outside the image); pairs found neither turned nor zoomed (the usual case) are compared exactly as without it.

What is forgiven: a global translation of up to ``max_shift`` px (default 8), exactly for whole pixels
(with ``subpixel``, also its fractional part, up to the interpolation's error);
with local matching, also local jitter (each 16-px cell moved by its own displacement of up to r px,
e.g. the local displacements of a slight rotation, zoom or warp; exact inside each cell, not across its
edges); with similarity registration, also a rotation or zoom about the centre (up to the interpolation's blur).
Not forgiven: larger rotation or scaling (their displacements exceed r); a mirror or a block
shuffle, which no small displacement explains; noise (no displacement lowers it by the margin).

Shapes: images (N, 3, H, W) (both sides the same size; N broadcasting, one side may be 1); shifts
(N, 2) float (sub-pixel estimates).
"""
from __future__ import annotations

import math
from typing import Dict, Iterator, List, Tuple

import torch

#: largest displacement (px, per axis) that registration looks for and undoes
MAX_SHIFT = 8
#: the estimate's resolution is 1 / UPSAMPLE px
UPSAMPLE = 20
#: central crop (px a side) on which the displacement is estimated (cost independent of image size)
WINDOW = 256
#: a non-zero displacement must beat the correlation at zero by this fraction of the peak's height
MARGIN = 0.1
#: Gaussian frequency weight of the phase correlation (cycles / px)
F0 = 0.25
#: sub-pixel compensation: a residual below this (px, both axes) is left alone
SUBPIXEL_MIN = 0.1
#: sub-pixel compensation: the Lanczos kernel's half-width (px); also the margin cropped after it
SUBPIXEL_TAPS = 3
#: local matching: the cell (px a side) that gets its own displacement
LOCAL_CELL = 16
#: local matching: a cell's displacement must lower its cost at zero by this fraction, else it stays 0
LOCAL_MARGIN = 0.05


def _luminance(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def _tukey(n: int, alpha: float, device, dtype) -> torch.Tensor:
    """A Tukey window of ``n`` points: flat in the middle, raised-cosine edges of ``alpha * n / 2`` points."""
    t = torch.arange(n, device=device, dtype=dtype)
    edge = max(1.0, alpha * (n - 1) / 2)
    w = torch.ones(n, device=device, dtype=dtype)
    lo = t < edge
    hi = t > (n - 1) - edge
    w[lo] = 0.5 * (1 - torch.cos(math.pi * t[lo] / edge))
    w[hi] = 0.5 * (1 - torch.cos(math.pi * ((n - 1) - t[hi]) / edge))
    return w


def _central(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    sh, sw = min(h, size), min(w, size)
    y0, x0 = (h - sh) // 2, (w - sw) // 2
    return x[..., y0:y0 + sh, x0:x0 + sw]


def _centred_luminance(x: torch.Tensor, size: int, n: int) -> torch.Tensor:
    """(N, 3 or 1, H, W) -> (n, h, w): the detached luminance of the central crop of at most ``size`` px a side,
    its mean removed, broadcast to ``n`` images."""
    x = x.detach().float()
    l = _central(_luminance(x) if x.shape[1] == 3 else x[:, 0], size)
    return (l - l.mean(dim=(-2, -1), keepdim=True)).expand(n, *l.shape[-2:])


def _dft_surface(R: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """``c(y, x) = Re sum_f R(f) exp(2 pi i (f_y y + f_x x))`` on the grid ``ys`` x ``xs`` (per batch item).

    R (N, H, W) complex; ys (N, A), xs (N, B) float -> (N, A, B)."""
    h, w = R.shape[-2:]
    fy = torch.fft.fftfreq(h, device=R.device, dtype=torch.float64)
    fx = torch.fft.fftfreq(w, device=R.device, dtype=torch.float64)
    ey = torch.exp(2j * math.pi * ys[..., None].double() * fy)           # (N, A, H)
    ex = torch.exp(2j * math.pi * xs[..., None].double() * fx)           # (N, B, W)
    return (ey @ R.to(torch.complex128) @ ex.transpose(-1, -2)).real      # (N, A, B)


def _phase_surface(l0: torch.Tensor, l1: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, h, w) x 2 windowed luminance -> ``R`` (the weighted, normalised cross-power spectrum of the module
    docstring), ``c`` at every integer displacement (``ifft2(R)``, (N, h, w)), and the Gaussian weight (h, w)."""
    h, w = l0.shape[-2:]
    cross = torch.fft.fft2(l1) * torch.fft.fft2(l0).conj()
    fy = torch.fft.fftfreq(h, device=l0.device)[:, None]
    fx = torch.fft.fftfreq(w, device=l0.device)[None]
    weight = torch.exp(-(fy ** 2 + fx ** 2) / (2 * F0 ** 2))
    mag = cross.abs()
    R = cross / (mag + 1e-6 * mag.amax(dim=(-2, -1), keepdim=True) + 1e-30) * weight
    return R, torch.fft.ifft2(R).real, weight


@torch.no_grad()
def estimate_shift(x0: torch.Tensor, x1: torch.Tensor, max_shift: int = MAX_SHIFT, upsample: int = UPSAMPLE,
                   window: int = WINDOW, margin: float = MARGIN) -> torch.Tensor:
    """The displacement ``d`` with ``x1(p) ~ x0(p - d)`` (module docstring), per pair.

    Args:
        x0, x1: (N, C, H, W) images of the same size (C = 3: RGB, or 1), any range; N may be 1 on one side.
        max_shift: the largest displacement looked for, px per axis (0: always zero).
        upsample: sub-pixel resolution of the estimate (1 / upsample px; 1: whole pixels).
        window: central crop (px a side) the estimate is made on.
        margin: a displacement is accepted only if its correlation beats zero's by this fraction of the
            peak's height; else (0, 0).

    Returns:
        (N, 2) float32 ``(d_y, d_x)``, detached.
    """
    if x0.shape[-2:] != x1.shape[-2:]:
        raise ValueError(f"registration needs two images of the same size, got {tuple(x0.shape[-2:])} and "
                         f"{tuple(x1.shape[-2:])}: resize or crop one of them first")
    n = max(x0.shape[0], x1.shape[0])
    if max_shift <= 0:
        return torch.zeros(n, 2, device=x0.device)
    lum = [_centred_luminance(x, window, n) for x in (x0, x1)]
    h, w = lum[0].shape[-2:]
    win = _tukey(h, 0.25, x0.device, torch.float32)[:, None] * _tukey(w, 0.25, x0.device, torch.float32)[None]
    R, surface, _ = _phase_surface(lum[0] * win, lum[1] * win)             # surface: c at integer d
    ry, rx = min(max_shift, h // 2 - 1), min(max_shift, w // 2 - 1)
    oy = torch.arange(-ry, ry + 1, device=x0.device) % h
    ox = torch.arange(-rx, rx + 1, device=x0.device) % w
    local = surface[:, oy][:, :, ox]                                         # (N, 2ry+1, 2rx+1)
    flat = local.flatten(1).argmax(dim=1)
    iy = (flat // local.shape[-1]).double() - ry
    ix = (flat % local.shape[-1]).double() - rx
    if upsample > 1:
        steps = torch.arange(-upsample, upsample + 1, device=x0.device, dtype=torch.float64) / upsample
        fine = _dft_surface(R, iy[:, None] + steps, ix[:, None] + steps)     # (N, A, A), in units of h*w
        best = fine.flatten(1).argmax(dim=1)
        iy = iy + steps[best // len(steps)]
        ix = ix + steps[best % len(steps)]
        peak = fine.flatten(1).amax(dim=1) / (h * w)
    else:
        peak = local.flatten(1).amax(dim=1).double()
    zero = surface[:, 0, 0].double()
    keep = (peak - zero) > margin * peak.abs().clamp_min(1e-12)
    d = torch.stack([iy, ix], dim=1).float()
    return torch.where(keep[:, None], d, torch.zeros_like(d))


def _lowpass_luminance(x: torch.Tensor) -> torch.Tensor:
    """(N, 3 or 1, H, W) -> (N, 1, H, W): luminance through a separable 5-tap binomial (replicated edges)."""
    l = (_luminance(x) if x.shape[1] == 3 else x[:, 0])[:, None].float()
    l = torch.nn.functional.pad(l, (2, 2, 2, 2), mode="replicate")
    for _ in range(2):  # [1 4 6 4 1] / 16 = ([1 2 1] / 4) twice, per axis, as shifted sums
        l = (l[..., :-2] + 2 * l[..., 1:-1] + l[..., 2:]) / 4
        l = (l[..., :-2, :] + 2 * l[..., 1:-1, :] + l[..., 2:, :]) / 4
    return l


def _cell_sums(e: torch.Tensor, cell: int) -> torch.Tensor:
    """(N, H, W) -> (N, ceil(H / cell), ceil(W / cell)): sums over cells (partial cells at the far edges)."""
    return torch.nn.functional.avg_pool2d(e[:, None], cell, cell, ceil_mode=True, divisor_override=1)[:, 0]


def local_offsets(radius: int) -> List[Tuple[int, int]]:
    """Every displacement with ``|d_y|, |d_x| <= radius``, the smallest first (so ties go to them)."""
    r = range(-radius, radius + 1)
    return sorted(((dy, dx) for dy in r for dx in r), key=lambda d: (d[0] ** 2 + d[1] ** 2, d))


@torch.no_grad()
def estimate_local(x0: torch.Tensor, x1: torch.Tensor, radius: int, cell: int = LOCAL_CELL,
                   margin: float = LOCAL_MARGIN) -> torch.Tensor:
    """Per cell of ``x0``'s grid, the whole-pixel displacement ``d`` (``|d_y|, |d_x| <= radius``) with
    ``x1(p + d) ~ x0(p)`` inside the cell (module docstring: local matching).

    Args:
        x0, x1: (N, C, H, W) images of the same size (C = 3 or 1), any range; N may be 1 on one side.
        radius: the largest local displacement, px per axis (0: all zero).
        cell: the cell size (px a side).
        margin: a displacement is kept only if it lowers the cell's cost at zero by this fraction.

    Returns:
        (N, 2, ceil(H / cell), ceil(W / cell)) int64 ``(d_y, d_x)`` per cell, detached.
    """
    if x0.shape[-2:] != x1.shape[-2:]:
        raise ValueError(f"local matching needs two images of the same size, got {tuple(x0.shape[-2:])} and "
                         f"{tuple(x1.shape[-2:])}")
    return _field(_lowpass_luminance(x0.detach()), _lowpass_luminance(x1.detach()), radius, cell, margin)


@torch.no_grad()
def local_fields(x0: torch.Tensor, x1: torch.Tensor, radius: int, cell: int = LOCAL_CELL,
                 margin: float = LOCAL_MARGIN) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(estimate_local(x0, x1), estimate_local(x1, x0))``: the fields anchored on each image (the
    low-passed luminance computed once per image)."""
    l0, l1 = _lowpass_luminance(x0.detach()), _lowpass_luminance(x1.detach())
    return _field(l0, l1, radius, cell, margin), _field(l1, l0, radius, cell, margin)


def _field(l0: torch.Tensor, l1: torch.Tensor, radius: int, cell: int, margin: float) -> torch.Tensor:
    """The field of :func:`estimate_local` from low-passed luminances (N, 1, H, W), N broadcasting (radius 0:
    the zero offset alone, never kept: all zero)."""
    radius = max(0, radius)
    n = max(l0.shape[0], l1.shape[0])
    h, w = l0.shape[-2:]
    field = torch.zeros(n, 2, -(-h // cell), -(-w // cell), dtype=torch.int64, device=l0.device)
    l0 = l0[:, 0].expand(n, h, w)
    l1 = torch.nn.functional.pad(l1, (radius,) * 4, mode="replicate")[:, 0]
    offsets = local_offsets(radius)
    count = _cell_sums(torch.ones_like(l0[:1]), cell)                         # positions per cell
    costs = []
    for dy, dx in offsets:  # the difference's spread within each cell: a brightness change explains nothing
        e = torch.sub(l0, l1[:, radius + dy:radius + dy + h, radius + dx:radius + dx + w])
        costs.append(_cell_sums(e * e, cell) - _cell_sums(e, cell) ** 2 / count)
    costs = torch.stack(costs, dim=1).clamp_min(0)                             # (N, D, nh, nw), zero first
    best = costs.argmin(dim=1)                                                 # the first minimum: smallest |d|
    keep = costs.gather(1, best[:, None])[:, 0] < (1 - margin) * costs[:, 0]
    table = torch.tensor(offsets, dtype=torch.int64, device=l0.device)       # (D, 2)
    d = table[best].permute(0, 3, 1, 2)                                        # (N, 2, nh, nw)
    return torch.where(keep[:, None], d, field)


def warp_cells(m: torch.Tensor, field: torch.Tensor, cell: int, stride: int = 1, row0: int = 0,
               src_row0: int = 0, rows: int = None) -> torch.Tensor:
    """``out(p) = m(p + d_{k(p)})``: a map read at its cells' displacements (edges replicated).

    Args:
        m: (N or 1, C, h_s, w) map at ``stride`` px per position, holding image rows from ``src_row0``.
        field: (N, 2, nh, nw) per-cell displacements in image px (:func:`estimate_local`).
        cell: the field's cell size in image px.
        stride: the map's stride (cells are divided by it, a multiple; displacements too, rounded half to
            even).
        row0, rows: the output covers map rows ``[row0, row0 + rows)`` of the whole map (default: all of
            ``m``'s rows from ``src_row0``); ``m`` may hold extra rows around them (strips).

    Returns:
        (N, C, rows, w), differentiable in ``m`` (a gather).
    """
    n = field.shape[0]
    hs, w = m.shape[-2:]
    rows = hs if rows is None else rows
    cs = cell // stride
    y = torch.arange(row0, row0 + rows, device=m.device)
    x = torch.arange(w, device=m.device)
    f = torch.round(field / stride).to(torch.int64) if stride > 1 else field
    dy = f[:, 0][:, y // cs][:, :, x // cs]                                   # (N, rows, w)
    dx = f[:, 1][:, y // cs][:, :, x // cs]
    sy = (y[:, None] + dy - src_row0).clamp(0, hs - 1)
    sx = (x[None, :] + dx).clamp(0, w - 1)
    idx = (sy * w + sx).flatten(1)                                             # (N, rows * w)
    src = m.expand(n, *m.shape[1:]).flatten(2)
    return src.gather(2, idx[:, None].expand(n, m.shape[1], idx.shape[1])).view(n, m.shape[1], rows, w)


def _lanczos_weights(t: torch.Tensor, a: int) -> torch.Tensor:
    """(N,) shifts -> (N, 2a + 1) weights of the samples at offsets -a..a for the value at ``q - t``."""
    k = torch.arange(-a, a + 1, device=t.device, dtype=torch.float64)
    u = k[None] + t.double()[:, None]
    w = torch.sinc(u) * torch.sinc(u / a) * (u.abs() < a)
    return (w / w.sum(dim=1, keepdim=True)).to(torch.float32)


def fractional_shift(x: torch.Tensor, t: torch.Tensor, taps: int = SUBPIXEL_TAPS) -> torch.Tensor:
    """``x`` moved by ``t`` px: ``out(q) = x(q - t)``, per image, by a separable Lanczos kernel of half-width
    ``taps`` (weights normalised to sum 1; edges replicated, so the outer ``taps`` px are approximate).

    x: (N, C, H, W); t: (N, 2) ``(t_y, t_x)``, at most a pixel per axis for the kernel to be accurate.
    Differentiable in ``x``; ``t = 0`` gives ``x`` to rounding (the weights are then a unit impulse)."""
    n, c, h, w = x.shape
    a = taps
    out = x.reshape(1, n * c, h, w)                       # one group per (image, channel): per-image kernels
    for t_axis, pad, shape in ((t[:, 1], (a, a, 0, 0), (1, -1)), (t[:, 0], (0, 0, a, a), (-1, 1))):
        kernel = _lanczos_weights(t_axis.to(x.device), a).to(x.dtype).repeat_interleave(c, dim=0)   # (N C, 2a + 1)
        padded = torch.nn.functional.pad(out, pad, mode="replicate")
        out = torch.nn.functional.conv2d(padded, kernel.reshape(n * c, 1, *shape), groups=n * c)
    return out.reshape(n, c, h, w)


def subpixel_compensate(c0: torch.Tensor, c1: torch.Tensor, f: torch.Tensor, taps: int = SUBPIXEL_TAPS
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Two whole-pixel-aligned crops with residual displacement ``f`` (N, 2) (``c1(q) ~ c0(q - f)``), each
    moved by half of it towards the other (:func:`fractional_shift`) and cropped by ``taps`` px a side."""
    n = max(c0.shape[0], c1.shape[0])
    c0, c1 = c0.expand(n, *c0.shape[1:]), c1.expand(n, *c1.shape[1:])
    h, w = c0.shape[-2:]
    if h <= 2 * taps or w <= 2 * taps:
        raise ValueError(f"sub-pixel compensation needs an overlap larger than {2 * taps} px a side, got {h}x{w}")
    c0, c1 = fractional_shift(c0, f / 2, taps), fractional_shift(c1, -f / 2, taps)
    return c0[..., taps:h - taps, taps:w - taps], c1[..., taps:h - taps, taps:w - taps]


def whole_pixels(shift: torch.Tensor) -> List[Tuple[int, int]]:
    """(N, 2) float shifts -> their nearest whole-pixel displacements, a list of (d_y, d_x)."""
    r = torch.round(shift.detach().cpu()).to(torch.int64)
    return [(int(a), int(b)) for a, b in r.tolist()]


def overlap(x0: torch.Tensor, x1: torch.Tensor, d: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Both images cropped to the region they share when ``x1(p) = x0(p - d)``: exact, no resampling.

    (N, C, H, W) x 2 -> (N, C, H - |d_y|, W - |d_x|) x 2; differentiable (a crop)."""
    dy, dx = d
    h, w = x0.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        raise ValueError(f"displacement {d} leaves no overlap of two {h}x{w} images")
    ys0, ys1 = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs0, xs1 = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    return x0[..., ys0, xs0], x1[..., ys1, xs1]


def shift_groups(shifts: List) -> Iterator[Tuple[Tuple, List[int]]]:
    """(key, indices of the pairs that have it), the undisplaced key (``(0, 0)`` or ``((0, 0), False)``: pairs that
    reuse the metric's maps) first. Keys: whole-pixel displacements ``(d_y, d_x)``, or ``((d_y, d_x), resampled)``."""
    groups: Dict[Tuple, List[int]] = {}
    for i, d in enumerate(shifts):
        groups.setdefault(d, []).append(i)
    for d in sorted(groups, key=lambda d: (d not in ((0, 0), ((0, 0), False)), d)):
        yield d, groups[d]


def pair_differences(formulation, trunk, x0: torch.Tensor, x1: torch.Tensor, keys, channel_weights,
                     maps0: Dict[str, torch.Tensor], maps1: Dict[str, torch.Tensor], max_shift: int = MAX_SHIFT,
                     features=None, local_radius: int = 0, local_cell: int = LOCAL_CELL, subpixel: bool = False,
                     similarity: bool = False) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    """The pair step: ``D_r`` (N,) of every registered term ``r`` in ``keys``, and the estimated shifts.

    Args:
        formulation: compares the registered maps (its ``term_difference``: the one formula).
        trunk: the metric's trunk, run again on the overlap crops of pairs that are displaced.
        x0, x1: (N, 3, H, W) in [-1, 1] (one side may hold 1 image).
        keys: the registered terms (``"<space>.reg.<tap>"``).
        channel_weights: term -> (C,) weights.
        maps0, maps1: the full-image maps (tap -> (N, C, h, w), and ``"lab"``) of the first trunk pass,
            reused for the pairs found undisplaced (no second pass for them); empty for big images
            scored without gradients (:func:`strip_plan`): then every pair's overlap is compared in row
            strips with a halo, which gives the whole image's value (a mean over positions is a sum of the
            strips' sums) at a bounded peak memory.
        features: ``features(x) -> maps`` for a crop (the metric's own feature function).
        local_radius, local_cell: local matching after the global step (module docstring; 0: none).
        subpixel: also undo the fractional part of the displacement (module docstring).
        similarity: first undo a rotation and zoom about the centre (:mod:`~invariant_lpips.features.similarity`);
            a pair found turned or zoomed is warped half way each side, cropped, and
            then registered and compared like any other pair (one more trunk pass of both crops).

    What is cached and what is not: the per-image statistics go through the feature cache as before; the
    displacement and the registered maps depend on both images, so they are computed per pair and never
    cached. Pairs found undisplaced (the usual case when scoring distortions, or in a loss against an
    aligned target) reuse the maps of the metric's one trunk pass; a displaced pair costs one more trunk
    pass of its overlap.
    """
    n = max(x0.shape[0], x1.shape[0])
    kw = dict(max_shift=max_shift, features=features, local_radius=local_radius, local_cell=local_cell,
              subpixel=subpixel)
    if similarity:
        from .similarity import estimate_similarity

        geo = estimate_similarity(x0, x1, max_shift=max_shift)
        turned = [i for i in range(n) if bool((geo[i] != 0).any())]
        if turned:
            return _similarity_pairs(formulation, trunk, x0, x1, keys, channel_weights, maps0, maps1, geo, turned, kw)
    shifts = estimate_shift(x0, x1, max_shift=max_shift)
    have_maps = bool(maps0) and bool(maps1)
    plan = None if have_maps else strip_plan(trunk, x0, x1)
    d_whole = whole_pixels(shifts)
    frac = shifts.double().cpu() - torch.tensor(d_whole, dtype=torch.float64).reshape(-1, 2)
    moved = [subpixel and bool((frac[i].abs() >= SUBPIXEL_MIN).any()) for i in range(n)]

    def pick(t, idx):  # a side of one image broadcasts; all pairs: the tensor itself (no copy)
        return t if t.shape[0] == 1 or idx == list(range(t.shape[0])) else t[idx]

    cols: Dict[str, List[Tuple[List[int], torch.Tensor]]] = {k: [] for k in keys}
    for (d, sub), idx in shift_groups(list(zip(d_whole, moved))):
        c0, c1 = overlap(pick(x0, idx), pick(x1, idx), d)
        if sub:
            c0, c1 = subpixel_compensate(c0, c1, frac[idx].to(device=c0.device, dtype=torch.float32))
        fields = None
        if local_radius > 0:  # anchored on each image in turn (the term stays symmetric)
            fields = local_fields(c0, c1, local_radius, local_cell)
        if plan is not None:  # a big image without gradients: the overlap in row strips
            for k, v in _strip_differences(formulation, keys, channel_weights, c0, c1, features, *plan,
                                           fields=fields, cell=local_cell).items():
                cols[k].append((idx, v))
            continue
        if d == (0, 0) and not sub and have_maps:
            m0 = {t: pick(v, idx) for t, v in maps0.items()}
            m1 = {t: pick(v, idx) for t, v in maps1.items()}
        else:
            m0, m1 = features(c0), features(c1)
        for k in keys:
            tap = k.split(".")[-1]
            cols[k].append((idx, _compare(formulation, k, m0[tap], m1[tap], channel_weights[k], fields, local_cell,
                                          _stride(tap))))
    out = {}
    for k, parts in cols.items():
        dev = parts[0][1].device
        col = torch.zeros(n, device=dev, dtype=parts[0][1].dtype)
        for idx, v in parts:
            col = col.index_put((torch.tensor(idx, device=dev),), v.expand(len(idx)) if v.numel() == 1 else v)
        out[k] = formulation.pair_value(col, k)  # the pooled means of every strip and anchoring, then the root
    return out, shifts


def _similarity_pairs(formulation, trunk, x0, x1, keys, channel_weights, maps0, maps1, geo, turned, kw):
    """:func:`pair_differences` when some pairs (``turned``) are rotated or zoomed: the others as usual, each
    turned pair compensated (:func:`~invariant_lpips.features.similarity.similarity_compensate`) and then
    registered and compared on its crops."""
    from .similarity import similarity_compensate

    n = max(x0.shape[0], x1.shape[0])

    def pick(t, idx):
        return t if t.shape[0] == 1 else t[idx]

    parts = []
    rest = [i for i in range(n) if i not in turned]
    if rest:
        m0 = {t: pick(v, rest) for t, v in maps0.items()}
        m1 = {t: pick(v, rest) for t, v in maps1.items()}
        parts.append((rest, pair_differences(formulation, trunk, pick(x0, rest), pick(x1, rest), keys, channel_weights,
                                             m0, m1, **kw)))
    for i in turned:
        c0, c1 = similarity_compensate(pick(x0, [i]), pick(x1, [i]), geo[i])
        parts.append(([i], pair_differences(formulation, trunk, c0, c1, keys, channel_weights, {}, {}, **kw)))
    out: Dict[str, torch.Tensor] = {}
    shifts = torch.zeros(n, 2, device=geo.device)
    for idx, (vals, sh) in parts:
        for k, v in vals.items():
            col = out.setdefault(k, torch.zeros(n, device=v.device, dtype=v.dtype))
            out[k] = col.index_put((torch.tensor(idx, device=v.device),), v.expand(len(idx)) if v.numel() == 1 else v)
        shifts[idx] = sh.to(shifts.device)
    return out, shifts


def _stride(tap: str) -> int:
    from .pooled import TAP_STRIDE
    return TAP_STRIDE.get(tap, 1)  # the CIELab image: 1


def _compare(formulation, key, a, b, w, fields, cell: int, stride: int, rows=None) -> torch.Tensor:
    """One registered term of maps ``a``, ``b`` (N, C, h, w); with local ``fields`` (F, G) the symmetric
    mean ``(m(a, b o F) + m(a o G, b)) / 2``. ``rows``: for strips, ``(row0, src_row0, n, a_full, b_full)``
    (the output rows, where the full strip maps start, how many rows, and the strip maps to warp)."""
    w = w.to(a.device).float()
    if fields is None:
        return formulation.term_difference(key, a.float(), b.float(), w)
    F, G = fields
    row0, src0, n, a_full, b_full = rows if rows is not None else (0, 0, a.shape[-2], a, b)
    bw = warp_cells(b_full, F, cell, stride, row0=row0, src_row0=src0, rows=n)
    aw = warp_cells(a_full, G, cell, stride, row0=row0, src_row0=src0, rows=n)
    return 0.5 * (formulation.term_difference(key, a.float(), bw.float(), w)
                  + formulation.term_difference(key, aw.float(), b.float(), w))


def strip_plan(trunk, x0: torch.Tensor, x1: torch.Tensor):
    """``(rows, halo)`` when a pair should be compared in row strips (no gradient wanted, a trunk whose
    down-samplers are local, and more pixels than the tiling policy's limit: see
    :mod:`~invariant_lpips.features.tiling`), else ``None``."""
    from .tiling import ALIGN, POLICY, halo_px, strip_rows, tileable

    big = max(x0.shape[-2] * x0.shape[-1], x1.shape[-2] * x1.shape[-1]) > POLICY.tile_above_px
    grad = torch.is_grad_enabled() and (x0.requires_grad or x1.requires_grad)
    if not big or grad or not tileable(trunk, trunk.config.padding_mode == "circular"):
        return None
    # both images' strips are alive at once in the pair step: half the rows of a one-image strip
    rows = strip_rows(trunk, x0 if x0.shape[0] >= x1.shape[0] else x1, POLICY)
    return max(ALIGN, rows // 2 // ALIGN * ALIGN), halo_px(trunk)


def _strip_differences(formulation, keys, channel_weights, c0, c1, features, rows: int, halo: int,
                       fields=None, cell: int = LOCAL_CELL) -> Dict[str, torch.Tensor]:
    """The registered terms of two aligned images computed strip by strip: input rows ``[a, a + rows)`` go
    through the trunk with ``halo`` rows of context each side (``a`` and ``halo`` multiples of the deepest
    stride, so every tap's rows are the whole image's); each term's per-position mean over a strip is
    weighted by its positions and the strips' sums are divided by the total."""
    from .tiling import ALIGN

    h = c0.shape[-2]
    if fields is not None:  # local matching reads up to r rows beyond a strip: that many more exact rows
        reach = int(max(f.abs().max() for f in fields)) if fields[0].numel() else 0
        halo += -(-reach // ALIGN) * ALIGN
    sums: Dict[str, torch.Tensor] = {}
    counts: Dict[str, int] = {}
    for a in range(0, h, rows):
        b = min(h, a + rows)
        a0, b0 = max(0, a - halo), min(h, b + halo)
        m0, m1 = features(c0[..., a0:b0, :]), features(c1[..., a0:b0, :])
        for k in keys:
            tap = k.split(".")[-1]
            s = _stride(tap)
            r0 = (a - a0) // s
            r1 = r0 + (-(-b // s) - a // s)
            f0, f1 = m0[tap][..., r0:r1, :], m1[tap][..., r0:r1, :]
            npos = f0.shape[-2] * f0.shape[-1]
            v = _compare(formulation, k, f0, f1, channel_weights[k], fields, cell, s,
                         rows=None if fields is None else (a // s, a0 // s, r1 - r0, m0[tap], m1[tap]))
            sums[k] = sums.get(k, 0) + v.double() * npos
            counts[k] = counts.get(k, 0) + npos
    return {k: (sums[k] / counts[k]).float() for k in keys}
