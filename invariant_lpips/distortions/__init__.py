"""Distortion library: KADID-10k's 25 distortions, RAID-style affine distortions, exact shift
operators, light tensor distortions, and a KADID-style dataset writer. (Type-level evaluation is a
statistic: :mod:`invariant_lpips.data.type_level`.)

* :mod:`.kadid`, :mod:`.raid`: an ``(H, W, 3)`` uint8 numpy array or a PIL image in, the same form
  out (MATLAB conventions);
* :mod:`.shifts`: exact translations of torch tensors ``(..., H, W)`` (circular, crop pairs, the
  mirror mosaic, sub-pixel), used by the robustness and the classifier studies;
* :mod:`.tensor`: light noise / blur / tone / colour distortions of torch tensors in [0, 1] (the
  robustness study's rank-flip candidates);
* :mod:`.dataset`: write a KADID-10k-style dataset from reference images.

Example::

    from invariant_lpips.distortions import distort, DISTORTION_TYPES
    y = distort(img, dist_type=1, level=3, seed=0)     # Gaussian blur, sigma = 1

Names are imported lazily (PEP 562): ``import invariant_lpips.distortions.shifts`` does not load
scipy, and registering the command line imports neither scipy nor torch.
"""
from typing import TYPE_CHECKING

from .._lazy import lazy_exports

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "parse_dist_name": ".dataset",
    "write_kadid_style_dataset": ".dataset",
    "DISTORTION_TYPES": ".kadid",
    "LEVEL_PARAMS": ".kadid",
    "N_LEVELS": ".kadid",
    "DistortionType": ".kadid",
    "distort": ".kadid",
    "jpeg2000_available": ".kadid",
    "level_parameter": ".kadid",
    "gaussian_noise": ".raid",
    "rotate": ".raid",
    "scale": ".raid",
    "translate": ".raid",
    "circular_shift": ".shifts",
    "crop_shift_pair": ".shifts",
    "mirror_mosaic_shift": ".shifts",
    "subpixel_shift": ".shifts",
    "default_distortions": ".tensor",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - static analysers see the real names
    from .dataset import parse_dist_name, write_kadid_style_dataset
    from .kadid import (DISTORTION_TYPES, LEVEL_PARAMS, N_LEVELS, DistortionType, distort, jpeg2000_available,
                        level_parameter)
    from .raid import gaussian_noise, rotate, scale, translate
    from .shifts import circular_shift, crop_shift_pair, mirror_mosaic_shift, subpixel_shift
    from .tensor import default_distortions
