"""InvariantLPIPS as a loss, alone: restore a damaged image against targets a few pixels out of register.

    python examples/loss_optimisation.py          # about a minute on 2 CPU cores

Four copies of the same photo crop, each displaced by a different 1-3 px (as a burst, video frames or a
re-photographed scene are), are the targets; the image starts as a blurred, noisy copy. Adam on its pixels
minimises the mean loss over the four targets, once with the default InvariantLPIPS and once with pixel
MSE. MSE learns the blurred average of the four positions; the default undoes each target's displacement
before comparing (registration), so it keeps the detail and puts the image at one of the positions.

Printed: the aligned PSNR (the best PSNR over small shifts of the truth: the image judged wherever it sits)
and the sharpness (mean gradient magnitude over the truth's: 1 = as sharp, < 1 blurred).
"""
from pathlib import Path

import torch

import invariant_lpips as il
from invariant_lpips.benchmarks.loss import MISALIGNED_SHIFTS, aligned_psnr, crop, sharpness
from invariant_lpips.distortions.tensor import gaussian_blur

SIZE, STEPS = 64, 100

photo = il.load_image(Path(__file__).resolve().parent / "images" / "coffee.png")   # (1, 3, H, W) in [0, 1]
y0, x0 = (photo.shape[-2] - SIZE) // 2, (photo.shape[-1] - SIZE) // 2
truth = crop(photo, y0, x0, SIZE)
targets = torch.cat([crop(photo, y0 + dy, x0 + dx, SIZE) for dy, dx in MISALIGNED_SHIFTS])  # (down, right) px
torch.manual_seed(0)
start = (gaussian_blur(1.5)(truth) + 0.04 * torch.randn_like(truth)).clamp(0, 1)

metric = il.InvariantLPIPS()          # the default; frozen trunk, gradients flow to the input
losses = {
    "InvariantLPIPS": lambda y: metric(y, targets, normalize=True).mean(),   # y (1 image) broadcasts to the 4
    "pixel MSE": lambda y: ((y - targets) ** 2).mean(),
}
print(f"start      aligned PSNR {aligned_psnr(start, truth):5.2f} dB  sharpness {sharpness(start, truth):.2f}")
for name, loss in losses.items():
    y = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=0.02)
    for step in range(STEPS):
        value = loss(y)
        opt.zero_grad()
        value.backward()
        opt.step()
        with torch.no_grad():
            y.clamp_(0, 1)
    y = y.detach()
    print(f"{name:14s} aligned PSNR {aligned_psnr(y, truth):5.2f} dB  sharpness {sharpness(y, truth):.2f}"
          f"  (loss {value.item():.4g} after {STEPS} steps)")
