"""Translation-robustness measurement toolkit (shift operators, measures, reports).

``report`` (matplotlib, imported lazily) and ``cli`` are not imported here.
"""
from .measures import (
    PROTOCOLS,
    PeriodicityResult,
    RankFlipResult,
    ShiftToDistortionResult,
    Triplet,
    default_distortions,
    evaluate_metric,
    make_distortion_triplets,
    periodicity,
    rank_flip_rate,
    shift_sweep,
    shift_to_distortion_ratio,
)
from .shifts import circular_shift, crop_shift_pair, mirror_mosaic_shift, subpixel_shift

__all__ = [
    "PROTOCOLS",
    "PeriodicityResult",
    "RankFlipResult",
    "ShiftToDistortionResult",
    "Triplet",
    "circular_shift",
    "crop_shift_pair",
    "default_distortions",
    "evaluate_metric",
    "make_distortion_triplets",
    "mirror_mosaic_shift",
    "periodicity",
    "rank_flip_rate",
    "shift_sweep",
    "shift_to_distortion_ratio",
    "subpixel_shift",
]
