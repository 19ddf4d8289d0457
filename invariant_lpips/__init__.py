"""invariant-lpips: a translation-robust drop-in for ``lpips.LPIPS``.

Implements Alabau-Bosque et al. (2026), "Parameter-Efficient Architectural Modifications for
Translation-Invariant CNNs" (arXiv 2604.27870): Global Average Pooling of a frozen VGG-16 with
learned per-channel weights, plus anti-aliased pooling that removes the residual periodic aliasing.

>>> import invariant_lpips
>>> metric = invariant_lpips.InvariantLPIPS()            # doctest: +SKIP
>>> d = metric(img0, img1, normalize=True)               # doctest: +SKIP
"""
__version__ = "0.1.0"

from .data.io import load_image
from .metric.functional import distance, distance_files, get_metric
from .metric.invariant import InvariantLPIPS
from .metric.lpips_baseline import LPIPS
from .features.variants import DEFAULT_VARIANT, Variant, get_variant, list_variants, register_variant, variant_table
from .trunk.vgg16 import VGG16Trunk

__all__ = [
    "InvariantLPIPS", "LPIPS", "VGG16Trunk", "distance", "distance_files", "get_metric", "load_image",
    "list_variants", "get_variant", "register_variant", "variant_table", "Variant", "DEFAULT_VARIANT",
    "__version__",
]
