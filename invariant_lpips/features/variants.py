"""The variant registry: name -> trunk pooling, taps, statistics, formulation, weights file, invariance claim."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..pooling.downsample import expand_pooling_spec
from ..trunk.vgg16 import POOL_TAPS
from .pooled import COLOUR_TAP, LOCAL_BLOCK_PX, STATISTICS, TAP_STRIDE

FORMULATIONS = ("paper", "lpips", "stats", "stats-sq", "texture")
#: formulations with one scale per term (the per-channel weights stay fixed)
SCALED_FORMULATIONS = ("stats", "stats-sq", "texture")


@dataclass(frozen=True)
class Variant:
    """One named configuration of :class:`~invariant_lpips.InvariantLPIPS`.

    Attributes:
        name: registry key.
        formulation: ``"paper"`` (raw GAP, sqrt-mean of weighted squared differences),
            ``"lpips"`` (unit-normalised GAP, weighted sum of squared differences) or ``"stats"``
            (unit-normalised statistics, weighted sum of per-term norms), ``"stats-sq"`` (the same
            terms as squares) or ``"texture"`` (DISTS-style similarity of raw pooled statistics plus
            squared CIELab differences); see :mod:`invariant_lpips.features.distance`.
        taps: trunk taps used.
        statistics: pooled statistics per tap (:data:`~invariant_lpips.features.pooled.STATISTICS`).
        colour_statistics: statistics of the CIELab colour tap (empty = no colour tap).
        pooling: down-sampler per stage (one name for all five, or five names).
        filter_size: binomial filter size for the anti-aliasing pools.
        padding_mode: padding of the 3x3 convolutions.
        weights_file: shipped linear weights (None = unit weights).
        invariance: which shifts it is exactly / approximately invariant to (measured figures in README).
        description: one line for tables.
        relative_cost: trunk FLOPs relative to the plain VGG-16 (analytic, for a 512x384 input).
    """

    name: str
    formulation: str
    taps: Tuple[str, ...] = POOL_TAPS
    statistics: Tuple[str, ...] = ("mean",)
    colour_statistics: Tuple[str, ...] = ()
    pooling: Union[str, Tuple[str, ...]] = "max"
    filter_size: int = 3
    padding_mode: str = "zeros"
    weights_file: Optional[str] = None
    invariance: str = ""
    description: str = ""
    relative_cost: float = 1.0

    def expanded_pooling(self) -> List[str]:
        return list(expand_pooling_spec(self.pooling))

    @property
    def space(self) -> str:
        """``raw`` features for the paper's and the texture formulations, LPIPS' unit-normalised ones otherwise."""
        return "raw" if self.formulation in ("paper", "texture") else "unit"

    def terms(self) -> List[str]:
        """The statistics keys the distance uses, in a fixed order (trunk taps, then the colour tap).

        ``local`` is left out at taps whose cells already span 32 px (pool5), where it equals ``std``.
        """
        out = [f"{self.space}.{stat}.{tap}" for stat in self.statistics for tap in self.taps
               if not (stat == "local" and TAP_STRIDE[tap] >= LOCAL_BLOCK_PX)]
        return out + [f"{COLOUR_TAP}.{stat}.{COLOUR_TAP}" for stat in self.colour_statistics]

    def with_(self, **changes) -> "Variant":
        return replace(self, **changes)


_REGISTRY: Dict[str, Variant] = {}
#: the default variant, chosen by measurement (README, "Variants"): on the 512x384 KADID dev proxy it
#: scores 0.914 type-level SRCC (DISTS 0.892, LPIPS-VGG 0.841) with 0.37% rank flips at 1 px and a
#: shift/noise ratio of 0.006 (lpips-gap-blur, the previous default: 0.841, 0.43%, 0.010)
DEFAULT_VARIANT = "texture-blur"


def register_variant(variant: Variant, overwrite: bool = False) -> Variant:
    """Add a variant to the registry (``overwrite=True`` to replace one)."""
    if variant.formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {variant.formulation!r}")
    bad = [s for s in tuple(variant.statistics) + tuple(variant.colour_statistics) if s not in STATISTICS]
    if bad:
        raise ValueError(f"unknown statistics {bad}; choose from {STATISTICS}")
    if variant.formulation not in SCALED_FORMULATIONS and (tuple(variant.statistics) != ("mean",)
                                                           or variant.colour_statistics):
        raise ValueError(f"formulation {variant.formulation!r} uses the GAP mean only; use formulation 'stats' "
                         "for other statistics or the colour tap")
    if variant.name in _REGISTRY and not overwrite:
        raise ValueError(f"variant {variant.name!r} is already registered (pass overwrite=True)")
    expand_pooling_spec(variant.pooling)
    _REGISTRY[variant.name] = variant
    return variant


def get_variant(name: str) -> Variant:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; available: {', '.join(list_variants())}") from None


def list_variants() -> List[str]:
    """Names of the registered :class:`~invariant_lpips.InvariantLPIPS` variants."""
    return list(_REGISTRY)


def variant_table() -> List[dict]:
    """One dict per variant (name, formulation, pooling, taps, weights, invariance, description)."""
    return [
        {"name": v.name, "formulation": v.formulation, "pooling": "/".join(v.expanded_pooling()),
         "statistics": ",".join(v.statistics) + (f" + lab {','.join(v.colour_statistics)}" if v.colour_statistics else ""),
         "taps": ",".join(v.taps), "weights": v.weights_file or "ones", "invariance": v.invariance,
         "description": v.description, "relative_cost": v.relative_cost}
        for v in _REGISTRY.values()
    ]


# ---------------------------------------------------------------------------------------------
# built-in variants
# ---------------------------------------------------------------------------------------------
register_variant(Variant(
    name="paper",
    formulation="paper",
    pooling="max",
    weights_file="paper_ones.safetensors",
    description="the paper's metric: GAP of the 5 max-pool outputs, sqrt-mean weighted distance",
    invariance="circular shifts by multiples of 32 px exactly (with circular padding); other shifts "
               "approximately, with a periodic ripple of period 32 px (aliasing)",
))
register_variant(Variant(
    name="paper-blur",
    formulation="paper",
    pooling="blurmax",
    filter_size=3,
    weights_file="paper_ones.safetensors",
    description="the paper's formulation with anti-aliased pools (max at stride 1, binomial-3 blur, subsample)",
    invariance="circular shifts by multiples of 32 px exactly (with circular padding); other shifts "
               "approximately, ripple strongly reduced by the low-pass before each subsampling",
))
register_variant(Variant(
    name="lpips-gap",
    formulation="lpips",
    pooling="max",
    weights_file="lpips_gap_max.safetensors",
    description="LPIPS-style: unit-normalised features, GAP of the 5 max-pool outputs",
    invariance="circular shifts by multiples of 32 px exactly (with circular padding); other shifts "
               "approximately (periodic ripple)",
))
_BLUR_INVARIANCE = ("circular shifts by multiples of 32 px exactly (with circular padding); other shifts "
                    "approximately: the low-pass before each subsampling removes most of the periodic ripple")


def _lpips_gap(name: str, pooling: str, description: str, invariance: str = _BLUR_INVARIANCE,
               filter_size: int = 3) -> Variant:
    """An LPIPS-style GAP variant on the shared LPIPS-v0.1-derived weights."""
    return register_variant(Variant(name=name, formulation="lpips", pooling=pooling, filter_size=filter_size,
                                    weights_file="lpips_gap_max.safetensors", description=description,
                                    invariance=invariance))


_lpips_gap("lpips-gap-blur", "blurmax",
           "LPIPS-style GAP with anti-aliased pools (max at stride 1, binomial-3 blur, subsample)")
_lpips_gap("lpips-gap-blur5", "blurmax",
           "LPIPS-style GAP with anti-aliased pools (binomial-5 blur: stronger low-pass)", filter_size=5)
_lpips_gap("lpips-gap-l2", "l2", "LPIPS-style GAP with DISTS' L2/Hanning pooling instead of max pooling",
           _BLUR_INVARIANCE.replace("the low-pass before each subsampling", "the Hanning window"))
_lpips_gap("lpips-gap-aps", "aps",
           "LPIPS-style GAP with adaptive polyphase sampling (blur-3, keep the max-norm phase)",
           "every integer circular shift exactly (with circular padding: the pooled vector is "
           "identical); crop shifts approximately")


def _lpips_gap_stats(name: str, formulation: str, description: str) -> Variant:
    """A pooled-statistics variant: mean and spread per pool tap plus the CIELab colour tap, on the
    anti-aliased trunk, with LPIPS' per-channel weights and unit term scales."""
    return register_variant(Variant(name=name, formulation=formulation, statistics=("mean", "std"),
                                    colour_statistics=("mean", "std"), pooling="blurmax", filter_size=3,
                                    weights_file="lpips_gap_stats.safetensors", description=description,
                                    invariance=_BLUR_INVARIANCE))


register_variant(Variant(
    name="texture-blur", formulation="texture", taps=("pool1", "pool2"), statistics=("mean", "std"),
    colour_statistics=("mean", "std"), pooling="blurmax", filter_size=3, weights_file="texture_blur.safetensors",
    invariance=_BLUR_INVARIANCE, relative_cost=0.31,
    description="anti-aliased trunk to pool2; DISTS-style similarity of the channel means and spreads at "
                "pool1-2, plus squared CIELab mean and spread differences; 6 term scales"))

_lpips_gap_stats("lpips-gap-stats", "stats",
                 "anti-aliased GAP plus spatial spread per tap and a CIELab colour tap; a sum of per-term norms")
_lpips_gap_stats("lpips-gap-stats-sq", "stats-sq",
                 "lpips-gap-stats' terms summed as squares (as LPIPS does) instead of norms")
