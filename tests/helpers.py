"""Test helpers: synthetic and real images."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch


def fourier_shift(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """x moved by (dy, dx) px (down, right), circularly and band-limited (exact for sub-pixel shifts)."""
    h, w = x.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(w, dtype=torch.float64)[None]
    ph = torch.exp(-2j * math.pi * (fy * dy + fx * dx))
    return torch.fft.ifft2(torch.fft.fft2(x.double()) * ph).real.float()


def smooth_images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Natural-ish test images in [0, 1]: smoothed random fields plus edges, (n, 3, h, w)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h // 4 + 1, w // 4 + 1, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    x = 0.6 * x + 0.4 * (torch.sin(12 * xx + 7 * yy) > 0).float()
    return x.clamp(0, 1)


def photo_images(size: int = 96) -> torch.Tensor:
    """Real photographs bundled with scikit-image (astronaut, coffee, chelsea), centre-cropped."""
    data = pytest.importorskip("skimage.data")
    out = []
    for name in ("astronaut", "coffee", "chelsea"):
        arr = getattr(data, name)()
        h, w = arr.shape[:2]
        s = min(h, w)
        arr = arr[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float() / 255
        out.append(torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", antialias=True,
                                                   align_corners=False))
    return torch.cat(out).clamp(0, 1)
