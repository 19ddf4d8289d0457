"""Metrics: InvariantLPIPS, the exact LPIPS-VGG baseline, the variant registry, the functional form."""
from .invariant import InvariantLPIPS
from .lpips_baseline import LPIPS
from ..features.variants import DEFAULT_VARIANT, Variant, get_variant, list_variants, register_variant, variant_table

__all__ = ["InvariantLPIPS", "LPIPS", "Variant", "get_variant", "list_variants", "register_variant",
           "variant_table", "DEFAULT_VARIANT"]
