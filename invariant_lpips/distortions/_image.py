"""Image conventions shared by the distortion functions.

Public functions take an ``(H, W, 3)`` ``uint8`` numpy array or a PIL image and
return the same form. Internally everything runs on ``float64`` arrays in
``[0, 1]`` (MATLAB's ``im2double`` convention, which the KADID-10k generator
uses), and results are quantised back with MATLAB's ``im2uint8`` rounding
(round half away from zero).
"""
from __future__ import annotations

from typing import Any, Callable, Tuple

import numpy as np
from PIL import Image


def _is_pil(image: Any) -> bool:
    return isinstance(image, Image.Image)


def as_uint8_rgb(image: Any, *, what: str = "image") -> Tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Validate ``image`` and return ``(array, restore)``.

    ``array`` is an ``(H, W, 3)`` uint8 array; ``restore(out_uint8)`` turns a
    result back into the caller's form (numpy array or PIL image).
    """
    if _is_pil(image):
        if image.mode != "RGB":
            if image.mode in ("L", "RGBA", "P", "LA", "CMYK", "YCbCr", "I;16", "I", "F"):
                image = image.convert("RGB")
            else:
                raise ValueError(
                    f"{what}: PIL image mode {image.mode!r} is not supported; "
                    f"convert it first with image.convert('RGB')"
                )
        arr = np.asarray(image, dtype=np.uint8).copy()
        return arr, lambda out: Image.fromarray(np.ascontiguousarray(out))
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{what}: expected an (H, W, 3) uint8 numpy array or a PIL image, got {type(image).__name__}"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"{what}: expected shape (H, W, 3) (RGB, channels last), got {tuple(image.shape)}; "
            f"for a grayscale (H, W) array use np.repeat(img[..., None], 3, axis=2), "
            f"for (3, H, W) use img.transpose(1, 2, 0)"
        )
    if image.dtype != np.uint8:
        raise ValueError(
            f"{what}: expected dtype uint8 (values 0..255), got {image.dtype}; "
            f"for a float image in [0, 1] use np.clip(np.round(img * 255), 0, 255).astype(np.uint8)"
        )
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"{what}: image is too small ({image.shape[0]}x{image.shape[1]}); need at least 2x2 pixels")
    return np.ascontiguousarray(image), lambda out: out


def to_float(u8: np.ndarray) -> np.ndarray:
    """uint8 -> float64 in [0, 1] (MATLAB ``im2double``)."""
    return u8.astype(np.float64) / 255.0


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8 with MATLAB ``im2uint8`` rounding (half away from zero), clipped."""
    y = np.floor(np.clip(x, 0.0, 1.0) * 255.0 + 0.5)
    return y.astype(np.uint8)


def mapmm(x: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Min-max map ``x`` onto ``[lo, hi]`` (the KADID generator's ``mapmm``); constant input is returned unchanged."""
    mn = float(np.min(x))
    mx = float(np.max(x))
    if mn < mx:
        return (x - mn) / (mx - mn) * (hi - lo) + lo
    return x
