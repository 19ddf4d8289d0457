"""InvariantLPIPS as a training loss: recover an image from a noisy start by gradient descent.

    python examples/loss_optimisation.py

The metric is differentiable end to end (the VGG-16 trunk is frozen; gradients flow to the input).
Because it is built on global averages it does not force pixel alignment, so in practice it is
combined with a pixel loss, as here.
"""
from pathlib import Path

import torch

import invariant_lpips as il

torch.manual_seed(0)
target = il.load_image(Path(__file__).resolve().parent / "images" / "coffee.png", size=(192, 128))
x = (target + 0.3 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)

loss_fn = il.InvariantLPIPS()
opt = torch.optim.Adam([x], lr=0.02)
for step in range(31):
    perceptual = loss_fn(x, target, normalize=True).mean()
    pixel = torch.nn.functional.l1_loss(x, target)
    loss = perceptual + pixel
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        x.clamp_(0, 1)
    if step % 10 == 0:
        print(f"step {step:3d}  perceptual {perceptual.item():.4f}  L1 {pixel.item():.4f}")
