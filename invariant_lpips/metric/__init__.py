"""Metrics: InvariantLPIPS, the exact LPIPS-VGG baseline, the variant registry, the functional form.

Exports are lazy (:mod:`invariant_lpips._lazy`): ``invariant_lpips.metric.cli`` (``score``, ``variants``)
registers without torch.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "InvariantLPIPS": ".invariant",
    "LPIPS": ".lpips_baseline",
    "DEFAULT_VARIANT": "invariant_lpips.features.variants",
    "Variant": "invariant_lpips.features.variants",
    "get_variant": "invariant_lpips.features.variants",
    "list_variants": "invariant_lpips.features.variants",
    "register_variant": "invariant_lpips.features.variants",
    "variant_table": "invariant_lpips.features.variants",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
