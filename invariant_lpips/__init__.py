"""invariant-lpips: a translation-robust drop-in for ``lpips.LPIPS``.

Implements Alabau-Bosque et al. (2026), "Parameter-Efficient Architectural Modifications for
Translation-Invariant CNNs" (arXiv 2604.27870): Global Average Pooling of a frozen VGG-16 with
learned per-channel weights, plus anti-aliased pooling that removes the residual periodic aliasing.

>>> import torch, invariant_lpips
>>> metric = invariant_lpips.InvariantLPIPS(trunk_weights=None)   # random trunk here; the real one by default
>>> img0 = torch.rand(1, 3, 64, 64)
>>> metric(img0, img0.flip(-1), normalize=True).shape             # [0, 1] images -> (N, 1, 1, 1)
torch.Size([1, 1, 1, 1])
>>> invariant_lpips.build_metric("mse")(img0, img0.flip(-1)).shape  # the one accessor: [0, 1] -> (N,)
torch.Size([1])

The lpips-style classes (``InvariantLPIPS``, ``LPIPS``) and ``distance()`` keep lpips' convention ([-1, 1],
or [0, 1] with ``normalize=True``); ``build_metric(name)``, the one accessor, builds any metric of
``list_metrics()`` by name, with [0, 1] inputs and (N,) output.

The public names are imported lazily (PEP 562, :mod:`invariant_lpips._lazy`), so ``import invariant_lpips`` and the command line's
``--help`` / ``--version`` do not import torch; the first use of a name imports its module.
The torchmetrics wrappers live in :mod:`invariant_lpips.torchmetrics` (optional extra).
"""
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "InvariantLPIPS": ".metric.invariant",
    "LPIPS": ".metric.lpips_baseline",
    "NormalizeWarning": ".metric.validation",
    "DefaultNetWarning": ".metric.compat",
    # lpips' module-level helpers (lpips' signatures); lpips' load_image is invariant_lpips.lpips_compat.load_image
    "im2tensor": ".metric.lpips_helpers",
    "tensor2im": ".metric.lpips_helpers",
    "normalize_tensor": ".metric.lpips_helpers",
    "spatial_average": ".metric.lpips_helpers",
    "upsample": ".metric.lpips_helpers",
    "l2": ".metric.lpips_helpers",
    "psnr": ".metric.lpips_helpers",
    "dssim": ".metric.lpips_helpers",
    "distance": ".metric.functional",
    "distance_files": ".metric.functional",
    "build_metric": ".metric.registry",
    "list_metrics": ".metric.registry",
    "load_image": ".data.io",
    "DEFAULT_VARIANT": ".features.variants",
    "Variant": ".features.variants",
    "get_variant": ".features.variants",
    "list_variants": ".features.variants",
    "register_variant": ".features.variants",
    "variant_table": ".features.variants",
    "VGG16Trunk": ".trunk.vgg16",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

from ._lazy import lazy_exports  # noqa: E402 - after __version__, which needs nothing

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from .data.io import load_image
    from .features.variants import (DEFAULT_VARIANT, Variant, get_variant, list_variants, register_variant,
                                    variant_table)
    from .metric.functional import distance, distance_files
    from .metric.invariant import InvariantLPIPS
    from .metric.compat import DefaultNetWarning
    from .metric.lpips_baseline import LPIPS
    from .metric.lpips_helpers import (dssim, im2tensor, l2, normalize_tensor, psnr, spatial_average, tensor2im,
                                       upsample)
    from .metric.registry import build_metric, list_metrics
    from .metric.validation import NormalizeWarning
    from .trunk.vgg16 import VGG16Trunk
