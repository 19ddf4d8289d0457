"""Distortion library: KADID-10k's 25 distortions, RAID-style affine distortions,
and a KADID-style dataset writer. (Type-level evaluation is a statistic: :mod:`invariant_lpips.data.type_level`.)

Image convention everywhere: an ``(H, W, 3)`` uint8 numpy array or a PIL image
in, the same form out.

Example::

    from invariant_lpips.distortions import distort, DISTORTION_TYPES
    y = distort(img, dist_type=1, level=3, seed=0)     # Gaussian blur, sigma = 1
"""
from .dataset import parse_dist_name, write_kadid_style_dataset
from .kadid import (
    DISTORTION_TYPES,
    LEVEL_PARAMS,
    N_LEVELS,
    DistortionType,
    distort,
    jpeg2000_available,
    level_parameter,
)
from .raid import gaussian_noise, rotate, scale, translate

__all__ = [
    "distort",
    "DISTORTION_TYPES",
    "DistortionType",
    "LEVEL_PARAMS",
    "N_LEVELS",
    "level_parameter",
    "jpeg2000_available",
    "rotate",
    "translate",
    "scale",
    "gaussian_noise",
    "write_kadid_style_dataset",
    "parse_dist_name",
]
