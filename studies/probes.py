"""Image operators shared by the study scripts in ``studies/`` (arrangement probes, displacement,
loss recovery): crops, JPEG, block shuffles, blur, rotation, and the image-quality figures of the loss
benchmark. Inputs are (N, 3, H, W) float tensors in [0, 1].

* :func:`block_shuffle` (the package's, :mod:`invariant_lpips.distortions.tensor`): the ``block``-px blocks
  in a fixed random permutation with no block in place;
* :func:`lowpass_corr`: Pearson's r of the Gaussian low-passed (sigma 2 px), mean-subtracted luminance of
  two images, i.e. whether the coarse layout agrees, whatever the fine detail;
* :func:`loss_starts`: the damaged starts of the loss benchmark (blur sigma 1.5 + noise 0.04, JPEG q10, a
  3-px circular shift, uniform noise).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from invariant_lpips.distortions.tensor import block_shuffle, jpeg_compress  # noqa: F401 (re-exported)


def centre_crop(x, size, dy=0, dx=0):
    h, w = x.shape[-2:]
    y0, x0 = (h - size) // 2 + dy, (w - size) // 2 + dx
    return x[..., y0:y0 + size, x0:x0 + size]


def jpeg(x, quality):
    """PIL JPEG of the first image (the package's :func:`~invariant_lpips.distortions.tensor.jpeg_compress`)."""
    return jpeg_compress(x, quality)


def gaussian_blur(x, sigma):
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def rotate(x, degrees):
    theta = math.radians(degrees)
    mat = torch.tensor([[math.cos(theta), -math.sin(theta), 0.0], [math.sin(theta), math.cos(theta), 0.0]],
                       dtype=x.dtype)[None]
    h, w = x.shape[-2:]
    mat[0, 0, 1] *= h / w
    mat[0, 1, 0] *= w / h
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def psnr(a, b):
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def luminance(x):
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def lowpass_corr(a, b, sigma=2.0):
    la, lb = luminance(gaussian_blur(a, sigma)), luminance(gaussian_blur(b, sigma))
    la, lb = la - la.mean(), lb - lb.mean()
    return float((la * lb).sum() / (la.norm() * lb.norm() + 1e-12))


def ssim(a, b):
    try:
        import piq
    except ImportError:
        return float("nan")
    return float(piq.ssim(a.clamp(0, 1), b.clamp(0, 1), data_range=1.0))


def loss_starts(x, g):
    blur_noise = (gaussian_blur(x, 1.5) + 0.04 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    shifted = torch.roll(x, shifts=(3, 3), dims=(2, 3))
    return {"blur+noise": blur_noise, "jpeg10": jpeg(x, 10), "shift3px": shifted,
            "pure-noise": torch.rand(x.shape, generator=g)}
