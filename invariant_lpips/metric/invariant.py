"""``InvariantLPIPS``: a translation-robust, lpips-compatible perceptual distance.

Data path: image -> LPIPS scaling -> frozen VGG-16 trunk (pooling policy of the variant) -> taps
-> Global Average Pooling -> learned non-negative per-channel weights -> distance.

Two formulations (``variant.formulation``):

``paper`` (Alabau-Bosque et al., 2026)
    ``g = concat_l GAP(f_l)`` over the taps (1472 channels for the five pool taps), no unit
    normalisation, and ``d(x, y) = sqrt( mean_c ( w_c (g_c(x) - g_c(y)) )^2 )``.

``lpips`` (LPIPS-style)
    per tap ``l``: unit-normalise each position's channel vector, ``u = f / (||f||_2 + eps)``,
    then ``g_l = GAP(u)`` and ``d(x, y) = sum_l sum_c w_lc (g_lc(x) - g_lc(y))^2``.

Shapes: ``in0`` (N0, 3, H0, W0), ``in1`` (N1, 3, H1, W1) with N0 == N1 or one of them 1
(broadcast; the single image's trunk features are computed once). Because GAP removes space, the
two sides may have *different* sizes (each at least 32x32). Output (N, 1, 1, 1) as ``lpips`` returns.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ..pooling.statistics import global_average, unit_normalize
from ..trunk.vgg16 import MIN_INPUT_SIZE, TAP_CHANNELS, VGG16Trunk, lpips_scale
from .validation import check_module_device, check_pair
from .variants import DEFAULT_VARIANT, Variant, get_variant


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not NaN/Inf) gradient at 0, so d(x, x) = 0 is differentiable."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


class InvariantLPIPS(nn.Module):
    """Translation-robust LPIPS built on GAP of a frozen VGG-16 (drop-in for ``lpips.LPIPS``).

    Args:
        variant: a registered variant name (see :func:`invariant_lpips.list_variants`) or a
            :class:`~invariant_lpips.metric.variants.Variant`.
        weights: linear weights to use instead of the variant's shipped file: a path to a
            safetensors file written by ``invariant-lpips calibrate`` (its manifest hash is
            checked), a dict tap -> (C,) tensor, or ``"ones"`` (unit weights).
        trunk_weights: VGG-16 ImageNet weights (``"imagenet"`` resolves them, see
            :func:`invariant_lpips.weights.resolve_vgg16_state_dict`; a path; or ``None`` for a
            random trunk, useful only in tests).
        trunk: an already built :class:`VGG16Trunk` to share between metrics (must match the variant).
        padding_mode: override the convolutions' padding (``"circular"`` for exact-invariance checks).
        check_inputs: validate shapes/values on each call (set False in tight training loops).

    Class attributes follow torchmetrics: ``higher_is_better = False``, ``is_differentiable = True``.

    Example:
        >>> metric = InvariantLPIPS()                      # doctest: +SKIP
        >>> d = metric(x, y, normalize=True)               # x, y in [0, 1], (N,3,H,W) -> (N,1,1,1)
    """

    higher_is_better = False
    is_differentiable = True
    full_state_update = False

    def __init__(
        self,
        variant: Union[str, Variant] = DEFAULT_VARIANT,
        weights: Union[str, Dict[str, torch.Tensor], None] = None,
        trunk_weights: Union[str, dict, None] = "imagenet",
        trunk: Optional[VGG16Trunk] = None,
        padding_mode: Optional[str] = None,
        check_inputs: bool = True,
    ):
        super().__init__()
        self.variant = variant if isinstance(variant, Variant) else get_variant(variant)
        v = self.variant
        if trunk is None:
            trunk = VGG16Trunk(
                weights=trunk_weights, pooling=v.pooling, filter_size=v.filter_size,
                padding_mode=padding_mode or v.padding_mode, taps=v.taps,
            )
        elif tuple(trunk.pooling) != tuple(v.expanded_pooling()) or not set(v.taps) <= set(trunk.taps):
            raise ValueError(f"the given trunk (pooling {trunk.pooling}, taps {trunk.taps}) does not match "
                             f"variant {v.name!r} (pooling {v.expanded_pooling()}, taps {v.taps})")
        self.net = trunk
        self.check_inputs = check_inputs
        self.weights_entry: dict = {}
        tensors = self._resolve_linear(weights)
        self.lins = nn.ParameterDict({
            tap: nn.Parameter(tensors[tap].float().reshape(-1).clone(), requires_grad=False) for tap in v.taps
        })

    # ------------------------------------------------------------------ weights
    def _resolve_linear(self, weights) -> Dict[str, torch.Tensor]:
        from ..weights.linear import load_linear_weights, load_shipped

        v = self.variant
        if weights is None:
            if v.weights_file is None:
                tensors = {t: torch.ones(TAP_CHANNELS[t]) for t in v.taps}
                self.weights_entry = {"file": None, "notes": "unit weights"}
            else:
                tensors, self.weights_entry = load_shipped(v.weights_file)
        elif isinstance(weights, str) and weights == "ones":
            tensors = {t: torch.ones(TAP_CHANNELS[t]) for t in v.taps}
            self.weights_entry = {"file": None, "notes": "unit weights"}
        elif isinstance(weights, dict):
            tensors = {k: torch.as_tensor(t) for k, t in weights.items()}
            self.weights_entry = {"file": None, "notes": "weights passed as a dict"}
        else:
            tensors, self.weights_entry = load_linear_weights(weights)
            file_variant = self.weights_entry.get("variant")
            if file_variant and file_variant != v.name:
                import warnings

                warnings.warn(f"weights file {weights} was calibrated for variant {file_variant!r}, "
                              f"used here with {v.name!r}", stacklevel=3)
        for tap in v.taps:
            if tap not in tensors:
                raise ValueError(f"linear weights lack tap {tap!r} (have {sorted(tensors)}); variant "
                                 f"{v.name!r} needs {list(v.taps)}")
            if tensors[tap].numel() != TAP_CHANNELS[tap]:
                raise ValueError(f"linear weights for {tap!r} have {tensors[tap].numel()} values, "
                                 f"expected {TAP_CHANNELS[tap]}")
            if (tensors[tap] < 0).any():
                raise ValueError(f"linear weights for {tap!r} contain negative values; they must be >= 0")
        return tensors

    def train(self, mode: bool = True) -> "InvariantLPIPS":
        """Sets the module's flag only; the frozen trunk stays in eval mode (outputs never change)."""
        super().train(mode)
        self.net.train(False)
        return self

    # ------------------------------------------------------------------ features
    def pooled_features(self, x: torch.Tensor, normalize: bool = False) -> Dict[str, torch.Tensor]:
        """Per-tap pooled vectors g_l, (N, C_l) float32, for inputs in [-1, 1] (or [0,1] with normalize)."""
        if normalize:
            x = 2 * x - 1
        feats = self.net(lpips_scale(x))
        out = {}
        for tap in self.variant.taps:
            f = feats[tap]
            if self.variant.formulation == "lpips":
                f = unit_normalize(f)
            out[tap] = global_average(f, self.net.phase_multiplier[tap])
        return out

    def distance_from_pooled(
        self, g0: Dict[str, torch.Tensor], g1: Dict[str, torch.Tensor], retPerLayer: bool = False
    ):
        """Distance between pooled vectors (see the module docstring). Returns (N,) [+ per tap list]."""
        terms = []
        for tap in self.variant.taps:
            w = self.lins[tap].float()
            diff = g0[tap] - g1[tap]
            if self.variant.formulation == "lpips":
                terms.append((w * diff * diff).sum(dim=1))
            else:
                terms.append(((w * diff) ** 2).sum(dim=1))
        total = torch.stack(terms, 0).sum(0)
        if self.variant.formulation == "paper":
            n_channels = sum(TAP_CHANNELS[t] for t in self.variant.taps)
            terms = [t / n_channels for t in terms]
            total = _safe_sqrt(total / n_channels)
        return (total, terms) if retPerLayer else total

    # ------------------------------------------------------------------ forward
    def forward(self, in0: torch.Tensor, in1: torch.Tensor, retPerLayer: bool = False,
                normalize: bool = False):
        """Distance between ``in0`` and ``in1``.

        Args:
            in0, in1: (N, 3, H, W) images in [-1, 1], or [0, 1] with ``normalize=True``; grey
                (N, 1, H, W) is repeated to RGB; N may be 1 on one side (broadcast); sizes may differ.
            retPerLayer: also return the per-tap contributions (list of (N, 1, 1, 1)).
            normalize: inputs are in [0, 1].

        Returns:
            (N, 1, 1, 1) distances (and the per-tap list when ``retPerLayer``).
        """
        in0, in1 = check_pair(in0, in1, normalize=normalize, min_size=MIN_INPUT_SIZE, same_size=False,
                              check_values=self.check_inputs)
        check_module_device(self, in0)
        # the two sides go through the trunk one after the other: the peak memory is that of one
        # batch (half of lpips', which keeps both sides' feature maps), and a broadcast side of
        # one image is computed once
        g0 = self.pooled_features(in0, normalize)
        g1 = self.pooled_features(in1, normalize)
        n = max(in0.shape[0], in1.shape[0])
        g0 = {k: v.expand(n, -1) for k, v in g0.items()}
        g1 = {k: v.expand(n, -1) for k, v in g1.items()}
        out = self.distance_from_pooled(g0, g1, retPerLayer)
        if retPerLayer:
            total, terms = out
            return total.view(n, 1, 1, 1), [t.view(n, 1, 1, 1) for t in terms]
        return out.view(n, 1, 1, 1)

    def extra_repr(self) -> str:
        return f"variant={self.variant.name!r}, formulation={self.variant.formulation!r}"
