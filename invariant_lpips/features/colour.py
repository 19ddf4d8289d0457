"""The colour ("stage 0") tap: CIELab, which separates lightness from two opponent chroma axes.

VGG features barely move under a global colour cast; the mean and spread of ``a*`` and ``b*`` do.
``srgb_to_lab`` is differentiable and runs in float32 whatever the input dtype (finite under fp16/bf16).
"""
from __future__ import annotations

import torch

#: linear sRGB -> CIE XYZ (D65), IEC 61966-2-1
_RGB2XYZ = ((0.4124564, 0.3575761, 0.1804375),
            (0.2126729, 0.7151522, 0.0721750),
            (0.0193339, 0.1191920, 0.9503041))
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_DELTA = 6.0 / 29.0


def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB in [0, 1] (clamped) -> (N, 3, H, W) float32 (float64 stays) ``(L*/100, a*/100, b*/100)``.

    ``L* = 116 f(Y) - 16``, ``a* = 500 (f(X) - f(Y))``, ``b* = 200 (f(Y) - f(Z))`` with
    ``f(t) = t^(1/3)`` above ``(6/29)^3`` and the linear segment below (finite gradient at 0).
    """
    c = (rgb if rgb.dtype == torch.float64 else rgb.float()).clamp(0, 1)
    lin = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = torch.tensor(_RGB2XYZ, device=c.device, dtype=c.dtype)
    xyz = torch.einsum("ij,njhw->nihw", m, lin)
    xyz = xyz / torch.tensor(_WHITE_D65, device=c.device, dtype=c.dtype).view(1, 3, 1, 1)
    f = torch.where(xyz > _DELTA ** 3, xyz.clamp_min(_DELTA ** 3) ** (1.0 / 3.0),
                    xyz / (3 * _DELTA ** 2) + 4.0 / 29.0)
    L = 116 * f[:, 1] - 16
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return torch.stack([L, a, b], dim=1) / 100.0
