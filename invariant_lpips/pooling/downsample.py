"""Down-sampling layers that replace VGG-16's ``MaxPool2d(2, 2)`` between blocks.

Every layer maps (N, C, H, W) -> (N', C, ceil-ish(H/2), ceil-ish(W/2)); all keep the frozen
ImageNet convolutions untouched. They differ in how much aliasing the stride-2 subsampling leaves
(the paper's "residual periodic aliasing"):

========================  ===========================================================================
``max``                   ``MaxPool2d(2, 2)``: torchvision's VGG-16 (the paper's trunk). Aliased.
``blurmax``               max at stride 1, binomial low-pass, subsample (Zhang 2019, antialiased-cnns).
``l2``                    L2 pooling with a Hanning window, stride 2 (DISTS, Ding et al. 2020).
``aps``                   max at stride 1, optional low-pass, then keep the polyphase component with
                          the largest L2 norm (adaptive polyphase sampling, Chaman & Dokmanic 2021):
                          a circular shift of the input circularly shifts the output exactly.
``polyphase``             max at stride 1, optional low-pass, then keep *all four* polyphase
                          components, stacked on the batch axis (N' = 4N). Later layers then see
                          every phase; a statistic averaged over the phase groups equals the
                          statistic of a dense (stride-1, dilated) evaluation of the later blocks.
========================  ===========================================================================

``padding`` selects how borders are filled for the stride-1 max and the blur: ``"reflect"``
(default, no artificial edges) or ``"circular"`` (used to test exact invariance to circular shifts).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

BINOMIAL = {
    1: [1.0],
    2: [1.0, 1.0],
    3: [1.0, 2.0, 1.0],
    4: [1.0, 3.0, 3.0, 1.0],
    5: [1.0, 4.0, 6.0, 4.0, 1.0],
}


def binomial_kernel(size: int) -> torch.Tensor:
    """Normalised 2-D binomial kernel of the given size (outer product of binomial coefficients)."""
    if size not in BINOMIAL:
        raise ValueError(f"binomial filter size must be one of {sorted(BINOMIAL)}, got {size}")
    a = torch.tensor(BINOMIAL[size], dtype=torch.float32)
    k = a[:, None] * a[None, :]
    return k / k.sum()


def hanning_kernel(size: int = 5) -> torch.Tensor:
    """DISTS' L2-pooling window: ``hanning(size)[1:-1]`` outer product, normalised."""
    import numpy as np

    a = torch.tensor(np.hanning(size)[1:-1], dtype=torch.float32)
    k = a[:, None] * a[None, :]
    return k / k.sum()


def _pad_mode(padding: str) -> str:
    if padding not in ("reflect", "circular", "replicate", "zeros"):
        raise ValueError(f"padding must be 'reflect', 'circular', 'replicate' or 'zeros', got {padding!r}")
    return "constant" if padding == "zeros" else padding


def _pad_for(kernel: int, padding: str, x: torch.Tensor) -> torch.Tensor:
    """Pad so that a stride-1 ``kernel``-tap filter keeps the size ('same' padding, extra on the end)."""
    total = kernel - 1
    lo, hi = total // 2, total - total // 2
    if total == 0:
        return x
    mode = _pad_mode(padding)
    if mode == "reflect" and (x.shape[-1] <= hi or x.shape[-2] <= hi):
        mode = "replicate"
    return F.pad(x, (lo, hi, lo, hi), mode=mode)


class _DepthwiseFilter(nn.Module):
    """Depthwise 2-D filtering with a fixed kernel, any channel count (kernel broadcast at call)."""

    def __init__(self, kernel: torch.Tensor, stride: int, padding: str):
        super().__init__()
        self.register_buffer("kernel", kernel[None, None], persistent=False)
        self.stride = stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        k = self.kernel.to(dtype=x.dtype).expand(c, 1, -1, -1)
        x = _pad_for(self.kernel.shape[-1], self.padding, x)
        return F.conv2d(x, k, stride=self.stride, groups=c)


def dense_max(x: torch.Tensor, padding: str) -> torch.Tensor:
    """2x2 max at stride 1, same size (padding one row/column at the end)."""
    if padding == "circular":
        x = F.pad(x, (0, 1, 0, 1), mode="circular")
    else:
        x = F.pad(x, (0, 1, 0, 1), mode="replicate")
    return F.max_pool2d(x, kernel_size=2, stride=1)


class MaxPool(nn.Module):
    """torchvision's ``MaxPool2d(kernel_size=2, stride=2)``."""

    name = "max"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, kernel_size=2, stride=2)


class BlurMaxPool(nn.Module):
    """Max at stride 1, then a ``filter_size`` binomial low-pass at stride 2 (anti-aliased max pool)."""

    name = "blurmax"

    def __init__(self, filter_size: int = 3, padding: str = "reflect", fused: bool = True):
        super().__init__()
        self.padding = padding
        #: take :func:`fused_blurmax` when no gradient is needed (the trunk's ``backend`` sets it)
        self.fused = fused
        self.blur = _DepthwiseFilter(binomial_kernel(filter_size), stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "circular":  # exact circular equivariance needs the wrapped border
            return self.blur(dense_max(x, self.padding))
        if self.fused and self.padding == "reflect" and not (torch.is_grad_enabled() and x.requires_grad):
            return fused_blurmax(x, self.blur.kernel)
        # (H-1, W-1) stride-1 max, then the padded blur at stride 2: same output size as MaxPool2d
        # for even sizes, and no full-size copy for the border
        return self.blur(F.max_pool2d(x, kernel_size=2, stride=1))


#: rows per strip in :func:`fused_blurmax` (a 64-channel, 512-wide strip of 32 rows is 4 MiB)
_STRIP_ROWS = 32


def fused_blurmax(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Inference path of :class:`BlurMaxPool` (reflect padding): the same values in fewer memory passes.

    ``F.max_pool2d(x, 2, stride=1)`` -> ``F.pad(reflect)`` -> depthwise blur at stride 2 reads and
    writes the full-resolution map three times; at 512x384 those passes, not the arithmetic, are
    what the pooling costs. Here the 2x2 max is taken separably (two ``torch.maximum`` of views),
    the second one writes straight into the interior of the padded buffer (strip by strip, so the
    intermediate stays in cache), and only the
    ``lo``/``hi`` border rows and columns are filled by reflection before the strided blur.

    The maxima are exact and the blur is the same convolution, so the output equals the
    reference path up to float rounding (tested within 1e-6). No autograd: the caller uses it
    only when no gradient is needed.

    Args:
        x: (N, C, H, W), H, W >= 2.
        kernel: the (1, 1, k, k) blur kernel.
    Returns:
        (N, C, H', W') exactly as ``BlurMaxPool.forward`` on the reference path.
    """
    k = kernel.shape[-1]
    lo, hi = (k - 1) // 2, (k - 1) - (k - 1) // 2
    n, c, h, w = x.shape
    h1, w1 = h - 1, w - 1
    if h1 <= hi or w1 <= hi:  # too small to reflect: the reference path switches to replicate
        m = F.max_pool2d(x, kernel_size=2, stride=1)
        return F.conv2d(_pad_for(k, "reflect", m), kernel.to(x.dtype).expand(c, 1, -1, -1), stride=2, groups=c)
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    buf = torch.empty((n, c, h1 + lo + hi, w1 + lo + hi), dtype=x.dtype, device=x.device, memory_format=fmt)
    # strips of rows, one image at a time: the (rows, W-1) horizontal max stays in cache for the
    # vertical max (2.3x faster than whole maps at 512x384 on a 2-core Xeon)
    if x.device.type != "cpu":  # one pass over the whole batch (strips would mean many small launches)
        mh = torch.maximum(x[..., :, :-1], x[..., :, 1:])
        torch.maximum(mh[..., :-1, :], mh[..., 1:, :], out=buf[..., lo:lo + h1, lo:lo + w1])
        del mh
    for i in range(n if x.device.type == "cpu" else 0):
        for r0 in range(0, h1, _STRIP_ROWS):
            r1 = min(r0 + _STRIP_ROWS, h1)
            xs = x[i:i + 1, :, r0:r1 + 1]
            mh = torch.maximum(xs[..., :, :-1], xs[..., :, 1:])  # (1, C, rows + 1, W-1)
            torch.maximum(mh[..., :-1, :], mh[..., 1:, :], out=buf[i:i + 1, :, lo + r0:lo + r1, lo:lo + w1])
    for i in range(1, lo + 1):  # reflect: m[-i] = m[i], m[h1-1+i] = m[h1-1-i]
        buf[..., lo - i, lo:lo + w1] = buf[..., lo + i, lo:lo + w1]
    for i in range(1, hi + 1):
        buf[..., lo + h1 - 1 + i, lo:lo + w1] = buf[..., lo + h1 - 1 - i, lo:lo + w1]
    for i in range(1, lo + 1):
        buf[..., :, lo - i] = buf[..., :, lo + i]
    for i in range(1, hi + 1):
        buf[..., :, lo + w1 - 1 + i] = buf[..., :, lo + w1 - 1 - i]
    weight = kernel.to(x.dtype).expand(c, 1, -1, -1)
    if channels_last:
        weight = weight.contiguous(memory_format=torch.channels_last)
    return F.conv2d(buf, weight, stride=2, groups=c)


class L2Pool(nn.Module):
    """DISTS' L2 pooling: ``sqrt(hanning * x**2 + eps)`` at stride 2."""

    name = "l2"

    def __init__(self, filter_size: int = 5, padding: str = "zeros", eps: float = 1e-12):
        super().__init__()
        self.eps = eps
        k = hanning_kernel(filter_size)
        self.filter = _DepthwiseFilter(k, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.filter(x.float() ** 2 if x.dtype == torch.float16 else x ** 2)
        return (out + self.eps).sqrt().to(x.dtype)


def polyphase_components(x: torch.Tensor) -> torch.Tensor:
    """(N,C,H,W) -> (4,N,C,ceil(H/2),ceil(W/2)): the four stride-2 phases (odd sizes padded by edge)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    return torch.stack([x[..., i::2, j::2] for i in (0, 1) for j in (0, 1)])


class APSPool(nn.Module):
    """Max at stride 1, optional binomial low-pass, then adaptive polyphase sampling.

    Keeps, per image, the stride-2 phase with the largest L2 norm (ties: the first phase in
    (0,0), (0,1), (1,0), (1,1) order). With circular padding everywhere, a circular shift of the
    input by any integer amount circularly shifts the output, so a global average taken after
    it is exactly invariant to circular shifts (Chaman & Dokmanic, CVPR 2021).
    """

    name = "aps"

    def __init__(self, filter_size: int = 3, padding: str = "reflect"):
        super().__init__()
        self.padding = padding
        self.blur = (_DepthwiseFilter(binomial_kernel(filter_size), stride=1, padding=padding)
                     if filter_size > 1 else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = polyphase_components(self.blur(dense_max(x, self.padding)))  # (4,N,C,h,w)
        norms = phases.float().pow(2).flatten(2).sum(-1)  # (4,N)
        idx = norms.argmax(0)  # (N,)
        return phases[idx, torch.arange(x.shape[0], device=x.device)]


class PolyphasePool(nn.Module):
    """Max at stride 1, optional binomial low-pass, then *all four* phases stacked on the batch axis.

    Output shape (4N, C, ceil(H/2), ceil(W/2)), phase-major: rows ``p*N:(p+1)*N`` hold phase ``p``.
    Averaging any later statistic over the four groups evaluates the remaining blocks densely.
    """

    name = "polyphase"
    batch_multiplier = 4

    def __init__(self, filter_size: int = 1, padding: str = "reflect"):
        super().__init__()
        self.padding = padding
        self.blur = (_DepthwiseFilter(binomial_kernel(filter_size), stride=1, padding=padding)
                     if filter_size > 1 else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = polyphase_components(self.blur(dense_max(x, self.padding)))
        return phases.reshape(-1, *phases.shape[2:])


def make_downsampler(kind: str, filter_size: int = 3, padding: str = "reflect") -> nn.Module:
    """Build a down-sampling layer by name (see the module docstring)."""
    if kind == "max":
        return MaxPool()
    if kind == "blurmax":
        return BlurMaxPool(filter_size, padding)
    if kind == "l2":
        return L2Pool(5, "zeros" if padding == "reflect" else padding)
    if kind == "aps":
        return APSPool(filter_size, padding)
    if kind == "polyphase":
        return PolyphasePool(filter_size, padding)
    raise ValueError(f"unknown pooling {kind!r}: choose one of max, blurmax, l2, aps, polyphase")


def expand_pooling_spec(spec, n: int = 5) -> Sequence[str]:
    """``"max"`` -> 5x ``"max"``; a sequence is returned as is (length checked)."""
    if isinstance(spec, str):
        return [spec] * n
    spec = list(spec)
    if len(spec) != n:
        raise ValueError(f"a per-stage pooling list needs {n} entries, got {len(spec)}: {spec}")
    return spec
