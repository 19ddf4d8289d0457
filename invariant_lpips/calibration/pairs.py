"""From cached pooled statistics to the design matrix a calibration fits.

Every distance of the package is linear (or, for the paper, a square root of something linear) in the
parameters calibration learns, given a per-pair matrix ``X`` built from the two images' statistics:

==========  ==========================================  ============================  ===================
formulation  X (per pair)                                parameters                    distance
==========  ==========================================  ============================  ===================
lpips       ``(s(x) - s(y))^2`` per channel, (D,)        per-channel ``w`` (D,)        ``X @ w``
paper       ``(s(x) - s(y))^2`` per channel, (D,)        per-channel ``w`` (D,)        ``sqrt(X @ w^2 / D)``
stats       ``sqrt(D_k + e^2) - e`` per term, (K,)       per-term scale ``a`` (K,)     ``X @ a``
stats-sq    ``D_k`` per term, (K,)                        per-term scale ``a`` (K,)     ``X @ a``
texture     ``T_k`` per term, (K,)                        per-term scale ``a`` (K,)     ``X @ a``
==========  ==========================================  ============================  ===================

``D_k`` uses the variant's fixed per-channel weights (:func:`invariant_lpips.features.distance.term_differences`),
so a ``stats`` variant is calibrated in a few dozen parameters, not thousands: per-channel weights fitted
to a handful of cell means learn the distortion types they see.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch

from ..features.cache import stack
from ..features.distance import NORM_EPS, term_differences
from ..features.pooled import COLOUR_TAP, Stats
from ..features.variants import SCALED_FORMULATIONS, Variant
from ..trunk.vgg16 import TAP_CHANNELS
from ..weights.linear import load_linear_weights, load_shipped

CHANNELS = {**TAP_CHANNELS, COLOUR_TAP: 3}


def _tap(term: str) -> str:
    return term.rsplit(".", 1)[1]


def variant_tensors(variant: Variant, init: str = "shipped") -> Dict[str, torch.Tensor]:
    """The starting weights: the variant's shipped file (``shipped``), ``ones``, or a weights file."""
    needed = list(variant.taps) + ([COLOUR_TAP] if variant.colour_statistics else [])
    ones = {t: torch.ones(CHANNELS[t]) for t in needed}
    if init == "ones" or (init == "shipped" and variant.weights_file is None):
        return ones
    tensors = load_shipped(variant.weights_file)[0] if init == "shipped" else load_linear_weights(init)[0]
    return {**ones, **{k: v.reshape(-1).float() for k, v in tensors.items()}}


def channel_weights(variant: Variant, tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Per-term channel weights ``w_k`` of the distance (the paper squares its per-channel weights)."""
    out = {}
    for term in variant.terms():
        w = tensors[_tap(term)].float()
        out[term] = w * w if variant.formulation == "paper" else w
    return out


def initial_parameters(variant: Variant, tensors: Dict[str, torch.Tensor]) -> torch.Tensor:
    """The parameter vector calibration starts from: per-channel weights, or per-term scales (``stats``)."""
    if variant.formulation in SCALED_FORMULATIONS:
        return torch.tensor([float(tensors.get(f"scale.{t}", torch.ones(1)).reshape(-1)[0])
                             for t in variant.terms()], dtype=torch.float64)
    return torch.cat([tensors[_tap(t)].reshape(-1) for t in variant.terms()]).double()


def parameters_to_weights(variant: Variant, params: torch.Tensor, tensors: Dict[str, torch.Tensor]
                          ) -> Dict[str, torch.Tensor]:
    """The fitted vector back into a weights-file dict (tap -> (C,), and ``scale.<term>`` for ``stats``)."""
    params = params.detach().float()
    if variant.formulation in SCALED_FORMULATIONS:
        out = {k: v for k, v in tensors.items() if not k.startswith("scale.")}
        out.update({f"scale.{t}": params[i:i + 1].clone() for i, t in enumerate(variant.terms())})
        return out
    out, i = {}, 0
    for term in variant.terms():
        c = CHANNELS[_tap(term)]
        out[_tap(term)] = params[i:i + c].clone()
        i += c
    if i != params.numel():
        raise ValueError(f"{params.numel()} parameters for variant {variant.name!r}, which needs {i}")
    return out


def design_matrix(f0: Sequence[Stats], f1: Sequence[Stats], variant: Variant,
                  tensors: Dict[str, torch.Tensor]) -> torch.Tensor:
    """``X`` for pairs (f0[i], f1[i]) of per-image statistics: (P, D) or, for ``stats``, (P, K) float64."""
    terms = variant.terms()
    s0, s1 = stack(f0, terms), stack(f1, terms)
    if variant.formulation in SCALED_FORMULATIONS:
        D = term_differences(s0, s1, terms, channel_weights(variant, tensors), variant.formulation).double()
        return torch.sqrt(D + NORM_EPS ** 2) - NORM_EPS if variant.formulation == "stats" else D
    return torch.cat([(s0[t].double() - s1[t].double()) ** 2 for t in terms], dim=1)


def fit_formulation(variant: Variant) -> str:
    """How :func:`invariant_lpips.calibration.fit.predict` combines ``X`` and the parameters."""
    return "paper" if variant.formulation == "paper" else "linear"


def pair_design(features: Dict[str, Stats], pairs: Sequence[Tuple[str, str]], variant: Variant,
                tensors: Dict[str, torch.Tensor]) -> torch.Tensor:
    """``X`` for (ref path, distorted path) pairs, from a path -> statistics dict (a FeatureCache's output)."""
    return design_matrix([features[str(a)] for a, _ in pairs], [features[str(b)] for _, b in pairs], variant, tensors)
