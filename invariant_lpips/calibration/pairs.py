"""From cached pooled statistics to the design matrix a calibration fits.

Every distance of the package is linear (or, for the paper, a square root of something linear) in the
parameters calibration learns, given a per-pair matrix ``X`` built from the two images' statistics.
The variant's formulation (:mod:`invariant_lpips.features.formulations`, where the table of ``X`` per
formulation is) builds ``X``, chooses the parameters (per-channel weights, or one scale per term) and
predicts the distance from them, so a fitted distance is the metric's distance. This module only
gathers statistics and weights for it.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch

from ..features.cache import stack
from ..features.formulations import Formulation
from ..features.pooled import Stats
from ..features.variants import Variant


def variant_tensors(variant: Variant, init: str = "shipped") -> Dict[str, torch.Tensor]:
    """The starting weights: the variant's shipped file (``shipped``), ``ones``, or a weights file."""
    return variant.weights(None if init == "shipped" else init)[0]


def initial_parameters(variant: Variant, tensors: Dict[str, torch.Tensor]) -> torch.Tensor:
    """The parameter vector calibration starts from: per-channel weights, or per-term scales."""
    return variant.formulation.initial_parameters(variant.terms(), tensors)


def parameters_to_weights(variant: Variant, params: torch.Tensor, tensors: Dict[str, torch.Tensor]
                          ) -> Dict[str, torch.Tensor]:
    """The fitted vector back into a weights-file dict (tap -> (C,), and ``scale.<term>`` for scales)."""
    return variant.formulation.parameters_to_weights(variant.terms(), params, tensors)


def design_matrix(f0: Sequence[Stats], f1: Sequence[Stats], variant: Variant,
                  tensors: Dict[str, torch.Tensor]) -> torch.Tensor:
    """``X`` for pairs (f0[i], f1[i]) of per-image statistics: (P, D) or (P, K) float64."""
    terms = variant.terms()
    return variant.formulation.design_matrix(stack(f0, terms), stack(f1, terms), terms, tensors)


def fit_formulation(variant: Variant) -> Formulation:
    """What :func:`invariant_lpips.calibration.fit.predict` combines ``X`` and the parameters with."""
    return variant.formulation


def pair_design(features: Dict[str, Stats], pairs: Sequence[Tuple[str, str]], variant: Variant,
                tensors: Dict[str, torch.Tensor]) -> torch.Tensor:
    """``X`` for (ref path, distorted path) pairs, from a path -> statistics dict (a FeatureCache's output)."""
    return design_matrix([features[str(a)] for a, _ in pairs], [features[str(b)] for _, b in pairs], variant, tensors)
