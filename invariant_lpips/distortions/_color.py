"""Colour-space conversions with MATLAB's conventions (float64, RGB in [0, 1]).

* ``rgb2lab`` / ``lab2rgb``: sRGB companding, D65 white point ``[0.9504, 1, 1.0888]``
  (MATLAB ``whitepoint('d65')``), as MATLAB's ``rgb2lab`` defaults. ``lab2rgb``
  does not clip; callers clip where the KADID code truncates.
* ``rgb2hsv`` / ``hsv2rgb``: hexcone model, hue in [0, 1) (MATLAB convention);
  ``hsv2rgb`` is linear in S, so negative saturation (KADID colour saturation 1,
  level 5) gives the complementary-tinted image MATLAB produces.
* ``rgb2ycbcr`` / ``ycbcr2rgb``: ITU-R BT.601 studio swing, MATLAB double convention.
* ``rgb2gray``: MATLAB's luma weights.
"""
from __future__ import annotations

import numpy as np

_WHITE_D65 = np.array([0.9504, 1.0, 1.0888])
_RGB2XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ2RGB = np.linalg.inv(_RGB2XYZ)
_EPS_LAB = (6.0 / 29.0) ** 3
_K_LAB = 1.0 / (3.0 * (6.0 / 29.0) ** 2)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((np.abs(c) + 0.055) / 1.055) ** 2.4 * np.sign(c))


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.abs(c) ** (1.0 / 2.4) * np.sign(c) - 0.055)


def rgb2lab(rgb: np.ndarray) -> np.ndarray:
    lin = srgb_to_linear(rgb)
    xyz = lin @ _RGB2XYZ.T
    t = xyz / _WHITE_D65
    f = np.where(t > _EPS_LAB, np.cbrt(t), t * _K_LAB + 4.0 / 29.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def lab2rgb(lab: np.ndarray) -> np.ndarray:
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    t = np.where(f > 6.0 / 29.0, f ** 3, (f - 4.0 / 29.0) / _K_LAB)
    xyz = t * _WHITE_D65
    lin = xyz @ _XYZ2RGB.T
    return linear_to_srgb(lin)


def rgb2hsv(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    mn = rgb.min(axis=-1)
    delta = v - mn
    s = np.where(v > 0, delta / np.where(v > 0, v, 1.0), 0.0)
    safe = np.where(delta > 0, delta, 1.0)
    h = np.where(
        v == r,
        (g - b) / safe,
        np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe),
    )
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], axis=-1)


def hsv2rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    h6 = (h % 1.0) * 6.0
    i = np.floor(h6).astype(int) % 6
    f = h6 - np.floor(h6)
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    conds = [i == k for k in range(6)]
    r = np.select(conds, [v, q, p, p, t, v])
    g = np.select(conds, [t, v, v, q, p, p])
    b = np.select(conds, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


_YCC_M = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
) / 255.0
_YCC_OFF = np.array([16.0, 128.0, 128.0]) / 255.0
_YCC_MINV = np.linalg.inv(_YCC_M)


def rgb2ycbcr(rgb: np.ndarray) -> np.ndarray:
    return rgb @ _YCC_M.T + _YCC_OFF


def ycbcr2rgb(ycc: np.ndarray) -> np.ndarray:
    return (ycc - _YCC_OFF) @ _YCC_MINV.T


def rgb2gray(rgb: np.ndarray) -> np.ndarray:
    return 0.298936021293775 * rgb[..., 0] + 0.587043074451121 * rgb[..., 1] + 0.114020904255103 * rgb[..., 2]
