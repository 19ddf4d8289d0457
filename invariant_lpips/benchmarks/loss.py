"""A perceptual distance as a training loss: the three experiments of ``benchmarks/loss.py``.

Every loss is a callable ``loss(target, y) -> (N,)`` on [0, 1] images (a registry metric,
:func:`invariant_lpips.metric.registry.build_metric`, or any module under that convention).

* :func:`descend` (*aligned targets*): Adam on the pixels of ``y`` to minimise ``loss(truth, y)`` from a
  damaged start; the image-quality figures of the result against the truth.
* :func:`descend_misaligned` (*misaligned targets*): the same on the mean loss over several copies of the
  truth, each displaced by a different few pixels (crops of a larger image at other offsets). A
  position-exact loss learns the blurred average of the positions; a shift-tolerant loss should give a
  sharp image at one of them.
* :func:`train_restorer` (*a small training run*): a small CNN trained to denoise crops whose targets are
  misregistered by a few pixels, once per loss; judged on held-out crops against the truth registered
  to the input.

Figures (images (N, 3, H, W) in [0, 1]):

``psnr``           ``10 log10(1 / mean (y - t)^2)``
``aligned_psnr``   ``max_{|s| <= r} psnr(y, t shifted by s)`` over whole-pixel shifts, on the interior
                   (``r`` px off every border): the PSNR of the result wherever it sits
                   (``aligned_psnr_half``: over half-pixel shifts, for targets made by ``half_pixel_view``)
``sharpness``      ``mean |grad L(y)| / mean |grad L(t)|`` (finite differences of the luminance ``L``):
                   1 = as sharp as the truth, < 1 blurred, > 1 over-sharpened or noisy
``lowpass_psnr``   ``psnr`` of both images after a Gaussian blur of sigma 2 px (the coarse content)
``ssim``           SSIM (Gaussian window 11, sigma 1.5, on the luminance; Wang et al. 2004)
"""
from __future__ import annotations

import io
import math
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ..distortions.tensor import gaussian_blur

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------- figures
def psnr(y: torch.Tensor, t: torch.Tensor) -> float:
    mse = float(((y - t) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def _luma(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def aligned_psnr(y: torch.Tensor, t: torch.Tensor, radius: int = 4) -> float:
    """The best PSNR of ``y`` against ``t`` moved by any whole-pixel shift within ``radius`` (interior only)."""
    h, w = y.shape[-2:]
    r = radius
    core = y[..., r:h - r, r:w - r]
    return max(psnr(core, t[..., r + dy:h - r + dy, r + dx:w - r + dx])
               for dy in range(-r, r + 1) for dx in range(-r, r + 1))


def half_pixel_view(img: torch.Tensor, y0: int, x0: int, size: int, dy: int = 0, dx: int = 0) -> torch.Tensor:
    """A ``size``-px view of ``img`` at half resolution, displaced by (``dy`` / 2, ``dx`` / 2) px: the
    ``2 size``-px crop of ``img`` at (``y0 + dy``, ``x0 + dx``), averaged over 2x2 blocks. Odd ``dy``, ``dx``
    give half-pixel displacements, and every view has the same 2x2 average, so no offset is blurrier than
    another (sub-pixel misregistration without resampling)."""
    return F.avg_pool2d(crop(img, y0 + dy, x0 + dx, 2 * size), 2)


def aligned_psnr_half(y: torch.Tensor, img: torch.Tensor, y0: int, x0: int, radius: int = 4) -> float:
    """:func:`aligned_psnr` over half-pixel displacements: the best PSNR of ``y`` (``size`` px) against
    ``half_pixel_view(img, y0, x0, size, dy, dx)`` for ``|dy|, |dx| <= 2 radius`` (displacements up to
    ``radius`` px in steps of 1/2), on the interior (``radius`` px off every border). ``img`` needs
    ``2 radius`` px of margin around the view."""
    size, r = y.shape[-1], radius
    h, w = y.shape[-2:]
    core = y[..., r:h - r, r:w - r]
    return max(psnr(core, half_pixel_view(img, y0, x0, size, dy, dx)[..., r:h - r, r:w - r])
               for dy in range(-2 * r, 2 * r + 1) for dx in range(-2 * r, 2 * r + 1))


def sharpness(y: torch.Tensor, t: torch.Tensor) -> float:
    def grad(x):
        l = _luma(x)
        return float((l[..., 1:, :-1] - l[..., :-1, :-1]).abs().mean() + (l[..., :-1, 1:] - l[..., :-1, :-1]).abs().mean())
    return grad(y) / max(grad(t), 1e-12)


def lowpass_psnr(y: torch.Tensor, t: torch.Tensor, sigma: float = 2.0) -> float:
    blur = gaussian_blur(sigma)
    return psnr(blur(y), blur(t))


def ssim(y: torch.Tensor, t: torch.Tensor) -> float:
    """Mean SSIM of the luminance (Gaussian window 11, sigma 1.5, valid positions, K1 0.01, K2 0.03)."""
    k = torch.exp(-0.5 * (torch.arange(11, dtype=torch.float64) - 5) ** 2 / 1.5 ** 2)
    k = (k / k.sum()).float()
    win = (k[:, None] * k[None]).view(1, 1, 11, 11)
    a, b = _luma(y.float()), _luma(t.float())
    mu_a, mu_b = F.conv2d(a, win), F.conv2d(b, win)
    saa = F.conv2d(a * a, win) - mu_a ** 2
    sbb = F.conv2d(b * b, win) - mu_b ** 2
    sab = F.conv2d(a * b, win) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return float(s.mean())


def figures(y: torch.Tensor, t: torch.Tensor, radius: int = 4) -> Dict[str, float]:
    return {"psnr": psnr(y, t), "aligned_psnr": aligned_psnr(y, t, radius), "ssim": ssim(y, t),
            "lowpass_psnr": lowpass_psnr(y, t), "sharpness": sharpness(y, t)}


# ---------------------------------------------------------------------------------------------- starts
def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG (Pillow, 4:2:0) of each image of a (N, 3, H, W) batch in [0, 1]."""
    out = []
    for img in x:
        arr = (img.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        dec = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255
        out.append(torch.from_numpy(dec).permute(2, 0, 1))
    return torch.stack(out).to(x.device)


def damaged_starts(x: torch.Tensor, seed: int = 0) -> Dict[str, torch.Tensor]:
    """The aligned experiment's starts: blur (sigma 1.5) + noise (0.04), JPEG q10, and a copy shifted by
    3 px (a crop of the same image would need a larger image: here a circular shift)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=g).to(x.device)
    return {"blur+noise": (gaussian_blur(1.5)(x) + 0.04 * noise).clamp(0, 1), "jpeg10": jpeg(x, 10),
            "shift3px": torch.roll(x, shifts=(3, 3), dims=(2, 3))}


def crop(img: torch.Tensor, y0: int, x0: int, size: int) -> torch.Tensor:
    return img[..., y0:y0 + size, x0:x0 + size]


#: displacements (dy, dx) of the misaligned experiment's copies of the truth
MISALIGNED_SHIFTS = ((-2, 1), (1, -3), (3, 2), (-1, -1))


# ---------------------------------------------------------------------------------------------- descent
def _adam_descent(objective: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, steps: int, lr: float
                  ) -> torch.Tensor:
    y = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        objective(y).sum().backward()
        opt.step()
        with torch.no_grad():
            y.clamp_(0, 1)
    return y.detach()


def descend(loss: Loss, truth: torch.Tensor, start: torch.Tensor, steps: int, lr: float = 0.01,
            checkpoints: Sequence[int] = ()) -> Tuple[torch.Tensor, Dict[int, float]]:
    """Adam on the pixels of ``start`` to minimise ``loss(truth, y)``; the PSNR at ``checkpoints``."""
    y, trace, done = start, {}, 0
    for c in sorted(set(list(checkpoints) + [steps])):
        y = _adam_descent(lambda z: loss(truth, z), y, c - done, lr)
        done = c
        trace[c] = psnr(y, truth)
    return y, trace


def descend_misaligned(loss: Loss, targets: Sequence[torch.Tensor], start: torch.Tensor, steps: int,
                       lr: float = 0.01) -> torch.Tensor:
    """Adam on the pixels of ``start`` to minimise the mean of ``loss(target_k, y)`` over the targets."""
    return _adam_descent(lambda z: torch.stack([loss(t, z).sum() for t in targets]).mean(), start, steps, lr)


# ---------------------------------------------------------------------------------------------- training
class Restorer(nn.Module):
    """A small residual CNN: ``y = x + f(x)``, f four 3x3 convolutions of ``width`` channels (ReLU)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, x):
        return (x + self.body(x)).clamp(0, 1)


def misregistered_batch(images: Sequence[torch.Tensor], size: int, batch: int, max_shift: int, sigma: float,
                        g: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noisy input, misregistered target, truth registered to the input): crops of ``size`` px of random
    images; the target is the clean crop displaced by a random whole-pixel shift in [-max_shift, max_shift]."""
    xs, ts, truths = [], [], []
    m = max_shift
    for _ in range(batch):
        img = images[int(torch.randint(len(images), (1,), generator=g))]
        h, w = img.shape[-2:]
        y0 = int(torch.randint(m, h - size - m, (1,), generator=g))
        x0 = int(torch.randint(m, w - size - m, (1,), generator=g))
        dy, dx = (int(v) for v in torch.randint(-m, m + 1, (2,), generator=g))
        truth = crop(img, y0, x0, size)
        truths.append(truth)
        ts.append(crop(img, y0 + dy, x0 + dx, size))
        xs.append((truth + sigma * torch.randn(truth.shape, generator=g)).clamp(0, 1))
    return torch.cat(xs), torch.cat(ts), torch.cat(truths)


def train_restorer(loss: Loss, images: Sequence[torch.Tensor], steps: int, size: int = 64, batch: int = 8,
                   max_shift: int = 3, sigma: float = 0.1, lr: float = 2e-3, seed: int = 0) -> Restorer:
    """Train :class:`Restorer` to denoise (noise ``sigma``) against targets misregistered by up to
    ``max_shift`` px, with ``loss(target, output)``. Same seed: same batches and initial weights for every loss."""
    torch.manual_seed(seed)
    net = Restorer()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, t, _ = misregistered_batch(images, size, batch, max_shift, sigma, g)
        opt.zero_grad()
        loss(t, net(x)).mean().backward()
        opt.step()
    return net.eval()


def evaluate_restorer(net: Restorer, images: Sequence[torch.Tensor], size: int = 96, n: int = 16,
                      sigma: float = 0.1, seed: int = 1) -> Dict[str, float]:
    """Mean figures of the network's outputs on ``n`` held-out noisy crops against their clean truth."""
    g = torch.Generator().manual_seed(seed)
    rows: List[Dict[str, float]] = []
    with torch.no_grad():
        for _ in range(n):
            x, _, truth = misregistered_batch(images, size, 1, 4, sigma, g)
            rows.append({**figures(net(x), truth), "input_psnr": psnr(x, truth)})
    return mean_dict(rows)


def as_loss(metric: nn.Module) -> Loss:
    """A registry metric (``build_metric``: [0, 1] in, (N,) out) as a loss with frozen parameters."""
    for p in metric.parameters():
        p.requires_grad_(False)
    return metric


def mean_dict(rows: Sequence[Dict[str, float]]) -> Dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
