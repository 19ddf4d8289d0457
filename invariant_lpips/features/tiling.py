"""Big images in row strips: the same pooled statistics with a bounded peak memory.

The trunk's peak memory grows with the image area (a 4000x6000 image makes 64-channel full-resolution
maps of 6 GB each). Every statistic of :mod:`~invariant_lpips.features.pooled` is either a sum over
positions or a local pyramid, so it can be accumulated over horizontal strips of the image:

* **Trunk in strips with a halo.** Input rows ``[a, b)`` are run through the trunk with ``T`` extra
  rows on each side (``[a - T, b + T)``, clipped to the image). ``a`` and ``T`` are multiples of
  :data:`ALIGN` (32, the deepest stride), so every tap's subsampling grid is the whole image's. A tap at
  stride ``s`` then gives rows ``[a / s, b / s)`` exactly as the whole image does, as long as ``T``
  covers the receptive radius of the tap (:func:`halo_px`: ``r = sum_conv s_l + sum_pool (k + 1) s_l``
  over the layers up to the deepest tap, plus one stride), since the zero padding of the convolutions
  and the reflect padding of the pools only touch rows within ``r`` of the strip's artificial edges.
  At the image's real edges the strip's edges are the image's, so the padding is the same.
* **Sums.** ``mean`` and ``std`` (per channel over positions) are merged strip by strip with Chan's
  parallel update in float64: for a strip with ``n_b`` positions, mean ``m_b`` and squared deviations
  ``M2_b``: ``d = m_b - m``, ``m += d n_b / (n + n_b)``, ``M2 += M2_b + d^2 n n_b / (n + n_b)``,
  ``n += n_b``; then ``std = sqrt(M2 / n + eps)``. The ``unit`` space normalises each position, so
  it is applied to the strip's rows. CIELab statistics are per pixel: the strip's own rows, no halo.
* **Pyramids** (``coarse<g>`` maps, ``local``): ``R_g`` is ``k = log2(g / s)`` steps of
  :func:`~invariant_lpips.features.structure.pyramid_down`; output row ``j`` depends on tap rows
  ``[2^k j - (2^(k+1) - 2), 2^k j + (2^(k+1) - 2)]`` only. A :class:`PyramidStream` keeps a window of
  exact tap rows starting at a multiple of ``2^k``, runs the pyramid on it and keeps the output rows
  whose whole support lies in the window (or reaches the image's real edge), then drops the rows no
  later output needs. The assembled map equals the whole image's; ``local`` is the spread of it.

Only inference is tiled (no gradient wanted: autograd would keep every strip's activations anyway),
and only trunks whose down-samplers are local (``max``, ``blurmax``, ``l2``; not ``aps``, which picks
one phase per image, nor ``polyphase``), with non-circular padding. Otherwise, above the size limit,
:func:`check_memory` warns with an estimate of the memory needed (:func:`estimate_bytes`).

When it applies: :data:`POLICY` (``tile_above_px`` pixels per image, default 2048 x 2048), changed for
a block with :func:`tiling`::

    >>> import torch
    >>> from invariant_lpips import InvariantLPIPS
    >>> m = InvariantLPIPS(trunk_weights=None)
    >>> x, y = torch.rand(1, 3, 256, 96), torch.rand(1, 3, 256, 96)
    >>> with torch.no_grad():
    ...     whole = m(x, y, normalize=True)
    ...     with tiling(tile_above_px=0, strip_rows=64):          # force strips of 64 rows
    ...         tiled = m(x, y, normalize=True)
    >>> bool(torch.allclose(whole, tiled, rtol=1e-5, atol=1e-6))
    True

Shapes: ``x`` (N, 3, H, W) in [-1, 1]; the result is :func:`~invariant_lpips.features.pooled.pooled_statistics`'
dict, ``"<space>.<stat>.<tap>"`` -> (N, C) or (N, C, h', w') coarse maps, float32 (float64 stays).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace
from typing import Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn as nn

from ..trunk.vgg16 import TAP_LAYER_INDEX, lpips_scale
from .colour import srgb_to_lab
from .pooled import (COLOUR_TAP, LOCAL_BLOCK_PX, MAP_STATISTICS, SPREAD_EPS, TAP_STRIDE, Stats, applies,
                     check_statistics, term_key, unit_normalize, work)
from .structure import pyramid_down

#: strip starts and halos are multiples of this (the stride of pool5, the deepest tap)
ALIGN = 32
#: down-samplers whose output rows depend on nearby input rows only
LOCAL_POOLINGS = ("max", "blurmax", "l2")


@dataclass(frozen=True)
class TilingPolicy:
    """When and how :func:`~invariant_lpips.features.pooled.pooled_statistics` works in strips.

    Attributes:
        tile_above_px: images with more pixels (H * W) than this are scored in strips (0: always).
        strip_rows: input rows per strip, a multiple of :data:`ALIGN` (None: from ``strip_bytes``).
        strip_bytes: the memory one 64-channel full-resolution map of a strip (halo included) may take
            when ``strip_rows`` is None; the trunk's peak is about four such maps.
        warn_above_bytes: :func:`check_memory` warns when scoring an image that cannot be tiled would
            need more than this.
        progress: show a progress bar over the strips (the command line turns it on).
    """

    tile_above_px: int = 2048 * 2048
    strip_rows: Optional[int] = None
    strip_bytes: int = 384 * 2 ** 20
    warn_above_bytes: int = 4 * 2 ** 30
    progress: bool = False


#: the policy in force (see :func:`tiling`)
POLICY = TilingPolicy()


@contextlib.contextmanager
def tiling(**changes) -> Iterator[TilingPolicy]:
    """Change :data:`POLICY` inside a ``with`` block, e.g. ``with tiling(progress=True): ...`` or
    ``tiling(tile_above_px=float("inf"))`` to never tile."""
    global POLICY
    previous = POLICY
    POLICY = replace(POLICY, **changes)
    try:
        yield POLICY
    finally:
        POLICY = previous


class LargeImageWarning(UserWarning):
    """Scoring an image this large in one piece needs a lot of memory (the message gives an estimate)."""


# ------------------------------------------------------------------------------------------ geometry
def _layers(trunk) -> List[nn.Module]:
    return list(trunk.features)


def halo_px(trunk) -> int:
    """Rows of context each side of a strip so that every tap's rows are exact: the receptive radius
    ``r = sum_conv s + sum_pool (k + 1) s`` (``s`` the layer's input stride, ``k`` the pool's filter size),
    plus one stride of the deepest tap, rounded up to :data:`ALIGN`."""
    r, s = 0, 1
    for layer in _layers(trunk):
        if isinstance(layer, nn.Conv2d):
            r += (layer.kernel_size[0] // 2) * s
        elif not isinstance(layer, nn.ReLU):
            blur = getattr(getattr(layer, "blur", None), "kernel", None)
            filt = getattr(getattr(layer, "filter", None), "kernel", None)
            k = max(2, blur.shape[-1] if blur is not None else 0, filt.shape[-1] if filt is not None else 0)
            r += (k + 1) * s
            s *= 2
    return int(math.ceil((r + s) / ALIGN) * ALIGN)


def tileable(trunk, circular: bool = False) -> bool:
    """Whether strips give the whole image's statistics: local down-samplers, no phase stacking, no
    circular padding (which wraps the image's bottom onto its top)."""
    if circular or getattr(trunk, "padding_mode", "zeros") == "circular":
        return False
    deepest = max(TAP_LAYER_INDEX[t] for t in trunk.taps)
    used = [p for p, idx in zip(trunk.pooling, (4, 9, 16, 23, 30)) if idx <= deepest]
    return all(p in LOCAL_POOLINGS for p in used) and all(m == 1 for m in trunk.phase_multiplier.values())


def strip_rows(trunk, x: torch.Tensor, policy: TilingPolicy) -> int:
    """Input rows per strip: ``policy.strip_rows``, or as many as keep one 64-channel full-resolution
    map of the strip (halo included) within ``policy.strip_bytes``; a multiple of :data:`ALIGN`."""
    if policy.strip_rows is not None:
        if policy.strip_rows <= 0 or policy.strip_rows % ALIGN:
            raise ValueError(f"strip_rows must be a positive multiple of {ALIGN}, got {policy.strip_rows}")
        return policy.strip_rows
    row_bytes = x.shape[0] * 64 * x.shape[-1] * x.element_size()
    rows = policy.strip_bytes // max(1, row_bytes) - 2 * halo_px(trunk)
    return max(ALIGN, rows // ALIGN * ALIGN)


def estimate_bytes(trunk, n: int, h: int, w: int, itemsize: int = 4, grad: bool = False) -> int:
    """Memory for one side of a pair in one piece: with ``grad``, every layer's output up to the deepest
    tap (what autograd keeps); without, the two largest consecutive maps plus the input. (N, 3, H, W) ->
    bytes (an estimate, not a measurement)."""
    sizes, c, hh, ww = [], 3, h, w
    for layer in _layers(trunk):
        if isinstance(layer, nn.Conv2d):
            c = layer.out_channels
        elif not isinstance(layer, nn.ReLU):
            hh, ww = (hh + 1) // 2, (ww + 1) // 2
        sizes.append(n * c * hh * ww * itemsize)
    base = n * 3 * h * w * itemsize
    if grad:
        return base + sum(sizes)
    pairs = [a + b for a, b in zip(sizes, sizes[1:])] or sizes
    return base + max(pairs)


def check_memory(trunk, x: torch.Tensor, grad: bool, policy: Optional[TilingPolicy] = None) -> None:
    """Warn (:class:`LargeImageWarning`, at the user's line) when an image too large to tile would need
    more than ``policy.warn_above_bytes`` in one piece; the message gives the estimate and the way out."""
    policy = policy or POLICY
    n, _, h, w = x.shape
    need = estimate_bytes(trunk, n, h, w, x.element_size(), grad)
    if need <= policy.warn_above_bytes:
        return
    why = ("gradients are wanted (strips would keep every activation for backward anyway)" if grad else
           "this trunk cannot be scored in strips (a global down-sampler, phase stacking or circular padding)")
    from ..metric.validation import warn_at_caller  # deferred: metric imports features

    warn_at_caller(f"scoring a {n}x{h}x{w} batch in one piece needs about {need / 2 ** 30:.1f} GiB of memory for "
                   f"each side, since {why}. Scoring without gradients (torch.no_grad()) on a variant with local "
                   "pooling (the default) works in strips of bounded memory; otherwise downscale or crop the "
                   "images, or use a batch of one.", LargeImageWarning)


def should_tile(trunk, x: torch.Tensor, circular: bool, wants_maps: bool,
                policy: Optional[TilingPolicy] = None) -> bool:
    """Whether :func:`pooled_statistics_tiled` should serve this call (and warn when a large image cannot)."""
    policy = policy or POLICY
    if x.shape[-2] * x.shape[-1] <= policy.tile_above_px:
        return False
    grad = torch.is_grad_enabled() and x.requires_grad
    if grad or wants_maps or not tileable(trunk, circular):
        check_memory(trunk, x, grad, policy)
        return False
    return True


# ------------------------------------------------------------------------------------------ streams
class MomentStream:
    """Per-channel mean and spread over positions, merged strip by strip (Chan's update, float64).

    ``push`` (N, C, r, w) rows; ``mean()`` / ``std()`` -> (N, C) in ``dtype``."""

    def __init__(self, dtype: torch.dtype):
        self.dtype, self.n, self.m, self.m2 = dtype, 0, None, None

    def push(self, f: torch.Tensor) -> None:
        nb = f.shape[-2] * f.shape[-1]
        if nb == 0:
            return
        f = f.double()
        mb = f.mean(dim=(2, 3))
        m2b = ((f - mb[..., None, None]) ** 2).sum(dim=(2, 3))
        if self.m is None:
            self.n, self.m, self.m2 = nb, mb, m2b
            return
        d = mb - self.m
        tot = self.n + nb
        self.m = self.m + d * (nb / tot)
        self.m2 = self.m2 + m2b + d * d * (self.n * nb / tot)
        self.n = tot

    def mean(self) -> torch.Tensor:
        return self.m.to(self.dtype)

    def std(self) -> torch.Tensor:
        return torch.sqrt(self.m2 / self.n + SPREAD_EPS).to(self.dtype)


class PyramidStream:
    """``R`` = ``steps`` pyramid steps of a map fed row by row (see the module docstring), assembled.

    ``push(rows, final)`` with (N, C, r, w) exact rows of the map in order; after the final push,
    ``result()`` is (N, C, ceil(h / 2^steps), ceil(w / 2^steps)), equal to the whole map's pyramid."""

    def __init__(self, steps: int, circular: bool = False):
        self.steps, self.factor, self.circular = steps, 2 ** steps, circular
        self.halo = 2 * self.factor          # >= 2^(steps+1) - 2 rows of support each side
        self.buf: List[torch.Tensor] = []
        self.b0, self.b1, self.next_row = 0, 0, 0
        self.out: List[torch.Tensor] = []

    def push(self, rows: torch.Tensor, final: bool = False) -> None:
        if rows.shape[-2]:
            self.buf.append(rows)
            self.b1 += rows.shape[-2]
        f = self.factor
        if final:
            end = -(-self.b1 // f)
        else:
            end = max(self.next_row, (self.b1 - 1 - self.halo) // f + 1)
        if end <= self.next_row:
            return
        window = torch.cat(self.buf, dim=-2) if len(self.buf) > 1 else self.buf[0]
        for _ in range(self.steps):
            window = pyramid_down(window, self.circular)
        first = self.b0 // f
        self.out.append(window[..., self.next_row - first:end - first, :])
        self.next_row = end
        # keep the rows later outputs need: from next_row * f - halo, rounded down to a multiple of f
        keep = max(0, (self.next_row * f - self.halo) // f * f)
        if final:
            self.buf = []
        elif keep > self.b0:
            whole = torch.cat(self.buf, dim=-2) if len(self.buf) > 1 else self.buf[0]
            self.buf = [whole[..., keep - self.b0:, :]]
            self.b0 = keep

    def result(self) -> torch.Tensor:
        return torch.cat(self.out, dim=-2)


def _pyramid_steps(stat: str, tap: str) -> int:
    if stat == "local":
        block = max(1, LOCAL_BLOCK_PX // TAP_STRIDE[tap])
    else:
        block = int(stat[len("coarse"):]) // TAP_STRIDE[tap]
    return int(round(math.log2(block)))


# ------------------------------------------------------------------------------------------ the path
def _push(moments, pyramids, space: str, tap: str, statistics, g: torch.Tensor, final: bool) -> None:
    """Feed one strip's rows ``g`` of (space, tap) to its moment stream and to its statistics' pyramids."""
    ms = moments.get(f"{space}.{tap}")
    if ms is not None:
        ms.push(g)
    for stat in statistics:
        ps = pyramids.get(term_key(space, stat, tap))
        if ps is not None:
            ps.push(g, final)


def pooled_statistics_tiled(trunk, x: torch.Tensor, taps: Sequence[str], spaces: Sequence[str] = ("unit",),
                            statistics: Sequence[str] = ("mean",), colour_statistics: Sequence[str] = (),
                            circular: bool = False, policy: Optional[TilingPolicy] = None) -> Stats:
    """:func:`~invariant_lpips.features.pooled.pooled_statistics` in row strips (see the module docstring).

    Args: as ``pooled_statistics``; ``x`` (N, 3, H, W) in [-1, 1]; the trunk must be :func:`tileable`.
    Returns: the same dict, equal to the whole image's within float rounding.
    """
    from ..progress import progress_bar

    policy = policy or POLICY
    statistics, colour_statistics = list(statistics), list(colour_statistics)
    check_statistics(statistics)
    check_statistics(colour_statistics)
    h = x.shape[-2]
    rows, halo = strip_rows(trunk, x, policy), halo_px(trunk)
    dtype = work(x[..., :1, :1]).dtype
    moments: Dict[str, MomentStream] = {}
    pyramids: Dict[str, PyramidStream] = {}
    wanted = []  # (key, tap, space, stat) in pooled_statistics' order
    for tap in taps:
        for space in spaces:
            for stat in statistics:
                if stat in MAP_STATISTICS and (space == "unit" or not applies(stat, tap)):
                    continue
                wanted.append((term_key(space, stat, tap), tap, space, stat))
    for stat in colour_statistics:
        if not (stat in MAP_STATISTICS and not applies(stat, COLOUR_TAP)):
            wanted.append((term_key(COLOUR_TAP, stat, COLOUR_TAP), COLOUR_TAP, COLOUR_TAP, stat))
    for key, tap, space, stat in wanted:
        if stat in ("mean", "std"):
            moments.setdefault(f"{space}.{tap}", MomentStream(dtype))
        else:
            pyramids[key] = PyramidStream(_pyramid_steps(stat, tap), circular)
    starts = list(range(0, h, rows))
    with progress_bar(total=len(starts), desc=f"strips of {rows} rows", unit="strip",
                      disable=not policy.progress) as bar:
        for a in starts:
            b = min(a + rows, h)
            lo, hi = max(0, a - halo), min(h, b + halo)
            feats = trunk(lpips_scale(x[..., lo:hi, :]))
            final = b == h
            for tap in taps:
                s = TAP_STRIDE[tap]
                f = feats[tap]
                first = (a - lo) // s
                last = f.shape[-2] if final else (b - lo) // s
                f = f[..., first:last, :]
                for space in spaces:
                    _push(moments, pyramids, space, tap, statistics, unit_normalize(f) if space == "unit" else work(f),
                          final)
            del feats
            if colour_statistics:
                lab = srgb_to_lab((work(x[..., a:b, :]) + 1) / 2)
                _push(moments, pyramids, COLOUR_TAP, COLOUR_TAP, colour_statistics, lab, final)
            bar.update(1)
    out: Stats = {}
    for key, tap, space, stat in wanted:
        if stat == "mean":
            out[key] = moments[f"{space}.{tap}"].mean()
        elif stat == "std":
            out[key] = moments[f"{space}.{tap}"].std()
        elif stat == "local":
            r = pyramids[key].result()
            m = r.mean(dim=(2, 3), keepdim=True)
            out[key] = torch.sqrt(((r - m) ** 2).mean(dim=(2, 3)) + SPREAD_EPS)
        else:
            out[key] = pyramids[key].result()
    return out
