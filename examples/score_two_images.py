"""Score bundled example images with InvariantLPIPS and the LPIPS baseline.

    python examples/score_two_images.py

A 2-pixel shift is (nearly) invisible to a person; a strong JPEG is not. A translation-robust
metric should call the shifted copy much closer than the JPEG.
"""
from pathlib import Path

import torch

import invariant_lpips as il

HERE = Path(__file__).resolve().parent / "images"

ref = il.load_image(HERE / "coffee.png")                  # (1, 3, 256, 384) in [0, 1]
shifted = il.load_image(HERE / "coffee_shifted_2px.png")
jpeg = il.load_image(HERE / "coffee_jpeg_q15.png")

metrics = {"InvariantLPIPS (default)": il.InvariantLPIPS(), "LPIPS-VGG (baseline)": il.LPIPS(net="vgg")}
with torch.inference_mode():
    for name, metric in metrics.items():
        d_shift = metric(ref, shifted, normalize=True).item()
        d_jpeg = metric(ref, jpeg, normalize=True).item()
        print(f"{name:26s} shift 2px: {d_shift:.4f}   JPEG q15: {d_jpeg:.4f}   ratio {d_shift / d_jpeg:.3f}")
