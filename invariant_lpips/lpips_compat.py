"""The ``lpips`` namespace with lpips' semantics for every name: ``import invariant_lpips.lpips_compat as lpips``.

Two ways to replace ``import lpips``:

* ``import invariant_lpips as lpips``: ``LPIPS`` and lpips' helpers (``im2tensor``, ``tensor2im``,
  ``normalize_tensor``, ``spatial_average``, ``upsample``, ``l2``, ``psnr``, ``dssim``) are there, but
  ``load_image`` is this package's own: a (1, 3, H, W) float tensor in [0, 1]. ``im2tensor`` accepts that
  tensor, so lpips' documented ``lpips.im2tensor(lpips.load_image(path))`` still gives lpips' [-1, 1] tensor.
* ``import invariant_lpips.lpips_compat as lpips`` (this module): the same names, and ``load_image`` is
  lpips' (an (H, W, 3) uint8 RGB array), for code that works on that array (crops, ``l2``/``psnr`` on
  images, ...).

``LPIPS`` is the exact LPIPS-VGG v0.1 (``net='vgg'``; lpips' 'alex' and 'squeeze' are refused), and
``InvariantLPIPS`` the translation-robust metric.
"""
from __future__ import annotations

from .metric.compat import DefaultNetWarning
from .metric.invariant import InvariantLPIPS
from .metric.lpips_baseline import LPIPS
from .metric.lpips_helpers import (dssim, im2tensor, l2, normalize_tensor, psnr, spatial_average, tensor2im,
                                   upsample)
from .metric.lpips_helpers import load_image_uint8 as load_image
from .metric.validation import NormalizeWarning

__all__ = ["LPIPS", "InvariantLPIPS", "load_image", "im2tensor", "tensor2im", "normalize_tensor",
           "spatial_average", "upsample", "l2", "psnr", "dssim", "NormalizeWarning", "DefaultNetWarning"]
