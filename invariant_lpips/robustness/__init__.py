"""Translation-robustness study: measures (sweeps, rank flips, shift-to-distortion ratio:
:mod:`.measures`; period and ripple of a sweep: :mod:`.periodicity`), reports (:mod:`.report`), the
input images (:mod:`.images`) and the ``invariant-lpips robustness`` command (:mod:`.cli`).

The shift operators and the distortions it applies live in the distortion library
(:mod:`invariant_lpips.distortions.shifts`, :mod:`invariant_lpips.distortions.tensor`); the metrics
come from the metric registry (:func:`invariant_lpips.metric.registry.build_metric`).

Names are imported lazily (PEP 562) so that registering the command line does not import torch;
``report`` (matplotlib, imported when a plot is drawn) and ``cli`` are not re-exported.
"""
from typing import TYPE_CHECKING

from .._lazy import lazy_exports

#: public name -> module (relative to this package, or to the package root) that defines it
_EXPORTS = {
    "PROTOCOLS": ".measures",
    "PeriodicityResult": ".periodicity",
    "RankFlipResult": ".measures",
    "ShiftToDistortionResult": ".measures",
    "Triplet": ".measures",
    "evaluate_metric": ".measures",
    "make_distortion_triplets": ".measures",
    "periodicity": ".periodicity",
    "rank_flip_rate": ".measures",
    "shift_sweep": ".measures",
    "shift_to_distortion_ratio": ".measures",
    "default_distortions": "..distortions.tensor",
    "circular_shift": "..distortions.shifts",
    "crop_shift_pair": "..distortions.shifts",
    "mirror_mosaic_shift": "..distortions.shifts",
    "subpixel_shift": "..distortions.shifts",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - static analysers see the real names
    from ..distortions.shifts import circular_shift, crop_shift_pair, mirror_mosaic_shift, subpixel_shift
    from ..distortions.tensor import default_distortions
    from .measures import (PROTOCOLS, RankFlipResult, ShiftToDistortionResult, Triplet, evaluate_metric,
                           make_distortion_triplets, rank_flip_rate, shift_sweep, shift_to_distortion_ratio)
    from .periodicity import PeriodicityResult, periodicity
