"""``InvariantLPIPS``: a translation-robust, lpips-compatible perceptual distance.

A thin ``nn.Module`` over the feature layer (:mod:`invariant_lpips.features`): image -> LPIPS scaling ->
frozen VGG-16 trunk (pooling policy of the variant) -> taps -> pooled statistics
(:mod:`~invariant_lpips.features.pooled`) -> the variant's formulation
(:mod:`~invariant_lpips.features.formulations`: every formula is there).

Shapes: ``in0`` (N0, 3, H0, W0), ``in1`` (N1, 3, H1, W1) with N0 == N1 or one of them 1 (broadcast; the
single image's trunk features are computed once). Pooled statistics remove space, so a variant without
registered terms accepts *different* sizes (each at least 32x32); a registered variant (the default)
compares positions after registration and needs equal sizes. Output (N, 1, 1, 1) as ``lpips`` returns.
"""
from __future__ import annotations

import contextlib

from typing import Dict, Optional, Union

import torch
import torch.nn as nn

from ..features.pooled import Stats, pooled_statistics
from ..features.registration import pair_differences, strip_plan
from ..features.variants import DEFAULT_VARIANT, Variant, get_variant
from ..trunk.config import weights_label
from ..trunk.vgg16 import MIN_INPUT_SIZE, VGG16Trunk
from .compat import lpips_constructor_args
from .scale import attach_scale
from .validation import check_image_batch, check_module_device, check_pair

#: keys of the pair step's inputs in a registered variant's features (not statistics, not cached)
PAIR_IMAGE = "pair.image"
PAIR_MAP = "pair.map."


def _pair_maps(f: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k[len(PAIR_MAP):]: v for k, v in f.items() if k.startswith(PAIR_MAP)}


class InvariantLPIPS(nn.Module):
    """Translation-robust LPIPS built on pooled statistics of a frozen VGG-16 (drop-in for ``lpips.LPIPS``).

    Args:
        variant (keyword, or the first positional argument): a registered variant name (see
            :func:`invariant_lpips.list_variants`) or a :class:`~invariant_lpips.features.variants.Variant`.
        weights: linear weights instead of the variant's shipped file: a path to a safetensors file
            written by ``invariant-lpips calibrate`` (its manifest hash is checked), a dict
            (tap -> (C,) tensor, and for ``mean-spread`` variants ``scale.<term>`` scalars), or ``"ones"``.
        trunk_weights: VGG-16 ImageNet weights (``"imagenet"`` resolves them, see
            :func:`invariant_lpips.weights.resolve_vgg16_state_dict`; a path; or ``None`` for a
            random trunk, useful only in tests).
        trunk: an already built :class:`VGG16Trunk` to share between metrics. Its configuration (``trunk.config``)
            must be the variant's with ``trunk_weights``: same pooling, filter size, padding and weights, and
            the variant's taps among its own; otherwise a ValueError names both configurations.
        padding_mode: override the convolutions' padding (``"circular"`` for exact-invariance checks).
        check_inputs: validate shapes/values on each call (set False in tight training loops).
        backend: the trunk's execution path, ``"auto"`` (default: fused oneDNN conv + ReLU and a
            fused blur-max when no gradient is wanted on CPU float32; equal to ``"eager"`` within
            float rounding) or ``"eager"`` (plain layers). ``None`` keeps a given ``trunk``'s setting.
        scale: ``None`` (default): the variant's raw distance; ``"lpips"``: the same distance through a fitted,
            bounded, increasing map onto LPIPS-VGG's range (ranks unchanged; see :mod:`invariant_lpips.metric.scale`).
        pretrained, net, version, lpips, spatial, pnet_rand, pnet_tune, use_dropout, model_path, eval_mode,
            verbose: ``lpips.LPIPS``' constructor arguments, in lpips' positional order, accepted so that only
            the import changes (see :func:`invariant_lpips.metric.compat.lpips_constructor_args`). A variant
            name (or :class:`Variant`) as the first positional argument is the variant:
            ``InvariantLPIPS('paper')`` is ``InvariantLPIPS(variant='paper')``. The other arguments are
            keyword-only.

    Class attributes follow torchmetrics: ``higher_is_better = False``, ``is_differentiable = True``.
    The module starts in eval mode, as ``lpips.LPIPS`` does.

    Example (a random trunk, so that it runs anywhere; leave out ``trunk_weights=None`` for the real metric):
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> metric = InvariantLPIPS(trunk_weights=None)     # the default variant
        >>> metric.variant.name, metric.formulation.name, metric.terms[-1]
        ('registered-lab-lq3-subpixel-blur', 'texture-structure-registered', 'lab.reg.lab')
        >>> x, y = torch.rand(2, 3, 64, 64), torch.rand(1, 3, 64, 64)
        >>> d = metric(x, y, normalize=True)                # [0, 1] inputs; y broadcasts
        >>> d.shape, bool((d > 0).all()), float(metric(x, x, normalize=True).abs().max())
        (torch.Size([2, 1, 1, 1]), True, 0.0)
    """

    higher_is_better = False
    is_differentiable = True
    full_state_update = False

    def __init__(
        self,
        pretrained: Union[bool, str, Variant] = True,
        net: str = "vgg",
        version: str = "0.1",
        lpips: bool = True,
        spatial: bool = False,
        pnet_rand: bool = False,
        pnet_tune: bool = False,
        use_dropout: bool = True,
        model_path: Optional[str] = None,
        eval_mode: bool = True,
        verbose: bool = True,
        *,
        variant: Union[str, Variant, None] = None,
        weights: Union[str, Dict[str, torch.Tensor], None] = None,
        trunk_weights: Union[str, dict, None] = "imagenet",
        trunk: Optional[VGG16Trunk] = None,
        padding_mode: Optional[str] = None,
        check_inputs: bool = True,
        backend: Optional[str] = None,
        scale: Optional[str] = None,
        **unknown,
    ):
        super().__init__()
        # positional arguments in lpips' order; a name (or Variant) first is the variant: InvariantLPIPS('paper')
        if isinstance(pretrained, (str, Variant)):
            if variant is not None:
                raise TypeError(f"InvariantLPIPS({pretrained!r}, variant={variant!r}): two variants given")
            variant, pretrained = pretrained, True
        variant = DEFAULT_VARIANT if variant is None else variant
        compat = lpips_constructor_args(type(self).__name__, {
            "pretrained": pretrained, "net": net, "version": version, "lpips": lpips, "spatial": spatial,
            "pnet_rand": pnet_rand, "pnet_tune": pnet_tune, "use_dropout": use_dropout, "model_path": model_path,
            "eval_mode": eval_mode, "verbose": verbose, **unknown}, spatial_supported=False)
        if not compat["lpips"] and weights is None:
            weights = "ones"
        if compat["trunk_random"]:
            trunk_weights = None
        self.variant = v = get_variant(variant)
        if padding_mode is not None and padding_mode != v.trunk.padding_mode:
            self.variant = v = v.with_(padding_mode=padding_mode)
        self.formulation = v.formulation
        if trunk is not None:  # a shared trunk must be the one this variant and trunk_weights would build
            trunk = v.trunk.with_(weights=weights_label(trunk_weights)).check(
                trunk, f"variant {v.name!r} with trunk_weights={weights_label(trunk_weights)!r}")
        else:
            trunk = v.trunk.build(trunk_weights)
        if backend is not None:
            trunk.backend = backend
        self.net = trunk
        self.check_inputs = check_inputs
        self.terms = v.terms()
        tensors, self.weights_entry = v.weights(weights)
        self.lins = nn.ParameterDict({
            tap: nn.Parameter(tensors[tap].clone(), requires_grad=False) for tap in v.channels()
        })
        self.scales = nn.Parameter(torch.tensor(self.formulation.term_scales(self.terms, tensors)), requires_grad=False)
        self.train(not compat["eval_mode"])
        attach_scale(self, scale, v.name)  # scale='lpips': outputs on LPIPS-VGG's range (metric/scale.py)

    def channel_weights(self) -> Dict[str, torch.Tensor]:
        """Per-term channel weights ``w_k`` of the distance (the formulation's view of ``lins``)."""
        return self.formulation.channel_weights(self.terms, self.lins)

    def train(self, mode: bool = True) -> "InvariantLPIPS":
        """Sets the module's flag only; the frozen trunk stays in eval mode (outputs never change)."""
        super().train(mode)
        self.net.train(False)
        return self

    # ------------------------------------------------------------------ features
    def pooled_features(self, x: torch.Tensor, normalize: bool = False, maps: Optional[Dict[str, torch.Tensor]] = None
                        ) -> Stats:
        """The variant's per-image statistics, ``{term: (N, C) float32}``, for inputs in [-1, 1] (or [0, 1] with
        normalize). ``maps``: a dict that receives the maps the registered terms compare (same trunk pass)."""
        if normalize:
            x = 2 * x - 1
        v = self.variant
        stats = pooled_statistics(self.net, x, v.statistic_taps_used(), (self.formulation.space,), v.statistics,
                                  v.colour_statistics, circular=v.trunk.circular, maps=maps, map_taps=v.map_taps())
        return {k: stats[k] for k in self.terms if k not in v.registered}

    def _maps(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The registered terms' maps of images in [-1, 1] (the pair step's second pass, on overlap crops)."""
        maps: Dict[str, torch.Tensor] = {}
        pooled_statistics(self.net, x, (), (self.formulation.space,), (), (), maps=maps, map_taps=self.variant.map_taps())
        return maps

    def pair_differences(self, in0: torch.Tensor, in1: torch.Tensor, maps0: Dict[str, torch.Tensor],
                         maps1: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The pair step of a variant with registered terms: ``{term: (N,)}`` (empty for other variants).
        Inputs in [-1, 1]; ``maps0``/``maps1`` from :meth:`pooled_features` (see
        :func:`~invariant_lpips.features.registration.pair_differences`: what is cached and what is not)."""
        v = self.variant
        if not v.registered:
            return {}
        pair, self.last_shifts = pair_differences(
            self.formulation, self.net, in0, in1, v.registered, self.formulation.channel_weights(v.registered, self.lins),
            maps0, maps1, max_shift=v.max_shift, features=self._maps,
            local_radius=v.local_radius, local_cell=v.local_cell, subpixel=v.subpixel,
            similarity=v.similarity)
        return pair

    def distance_from_pooled(self, g0: Stats, g1: Stats, retPerLayer: bool = False,
                             pair: Optional[Dict[str, torch.Tensor]] = None):
        """Distance between pooled statistics, (N, C) per term, N broadcasting between the two sides
        (the variant's formulation); ``pair``: the registered terms' values (:meth:`pair_differences`),
        required when the variant has any. Returns (N,) [+ per-term list]."""
        missing = [k for k in self.variant.registered if pair is None or k not in pair]
        if missing:
            raise ValueError(f"variant {self.variant.name!r} has registered terms {missing}, which need both images: "
                             "call the module on the images (forward), or distance() on features(), not "
                             "distance_from_pooled alone")
        total, per = self.formulation.distance(g0, g1, self.terms, self.lins, self.scales, pair)
        return (total, list(per.unbind(-1))) if retPerLayer else total

    # ------------------------------------------------------------------ the protocol
    @property
    def statistics_cached(self) -> bool:
        """Whether :meth:`features` is nothing but per-image pooled statistics (no registered terms), which
        :class:`~invariant_lpips.features.cache.FeatureCache` holds (a superset of keys): scorers then read
        the cache and call :meth:`distance` on its entries."""
        return not self.variant.registered

    def features(self, x: torch.Tensor, normalize: bool = False) -> Dict[str, torch.Tensor]:
        """``F`` of a batch (N, 3, H, W) in [-1, 1] ([0, 1] with ``normalize``): the protocol's first half
        (:mod:`invariant_lpips.metric.protocol`).

        ``F`` is a dict: the variant's pooled statistics ``{term: (N, C) or a coarse map}`` (per image,
        cacheable), and for a variant with registered terms also what the pair step needs, which is not
        cacheable as statistics: ``"pair.image"``, the image in [-1, 1], and ``"pair.map.<tap>"``, the maps of
        ``variant.map_taps()`` from the same trunk pass."""
        x = check_image_batch(x, "x", normalize=normalize, min_size=MIN_INPUT_SIZE, check_values=self.check_inputs)
        check_module_device(self, x)
        x = self._cast(x)
        return self._features(2 * x - 1 if normalize else x)

    def _features(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if not self.variant.registered:
            return self.pooled_features(x)
        if strip_plan(self.net, x, x) is not None:  # big, no gradient: statistics and pair step in strips
            f = dict(self.pooled_features(x))
            f[PAIR_IMAGE] = x
            return f
        maps: Dict[str, torch.Tensor] = {}
        f = dict(self.pooled_features(x, maps=maps))
        f[PAIR_IMAGE] = x
        f.update({PAIR_MAP + k: v for k, v in maps.items()})
        return f

    def distance(self, f0: Dict[str, torch.Tensor], f1: Dict[str, torch.Tensor], retPerLayer: bool = False):
        """(N,) distances between two :meth:`features` (N each, or 1 on either side: it broadcasts); the
        protocol's second half. ``distance(features(x), features(y))`` equals ``forward(x, y).flatten()``;
        ``retPerLayer`` also returns the per-term contributions (list of (N,)).

        For a variant with registered terms this runs the pair step (:meth:`pair_differences`: the
        displacement of each pair, and for a displaced pair one trunk pass of the overlap), which depends on
        both images and is never cached; the rest is a function of the per-image statistics."""
        return self._distance(f0, f1, retPerLayer)

    def _distance(self, f0, f1, per_term: bool):
        pair = None
        if self.variant.registered:
            missing = [k for k in (PAIR_IMAGE,) if k not in f0 or k not in f1]
            if missing:
                raise ValueError(f"variant {self.variant.name!r} has registered terms, which need both images: "
                                 "pass features() of this metric (they carry 'pair.image' and the maps), not "
                                 "cached statistics")
            x0, x1 = f0[PAIR_IMAGE], f1[PAIR_IMAGE]
            self._check_registered_sizes(x0, x1)
            grad = torch.is_grad_enabled() and (x0.requires_grad or x1.requires_grad)
            with (self.net.eager() if grad and self.net.backend != "eager" else contextlib.nullcontext()):
                pair = self.pair_differences(x0, x1, _pair_maps(f0), _pair_maps(f1))
        return self.distance_from_pooled(f0, f1, per_term, pair)

    def _check_registered_sizes(self, in0: torch.Tensor, in1: torch.Tensor) -> None:
        if self.variant.registered and in0.shape[-2:] != in1.shape[-2:]:
            raise ValueError(f"variant {self.variant.name!r} registers the two images, so they must have the same "
                             f"size; got {tuple(in0.shape[-2:])} and {tuple(in1.shape[-2:])}: resize or crop one")

    # ------------------------------------------------------------------ forward
    def forward(self, in0: torch.Tensor, in1: torch.Tensor, retPerLayer: bool = False,
                normalize: bool = False):
        """Distance between ``in0`` and ``in1``: ``distance(features(in0), features(in1))``.

        Args:
            in0, in1: (N, 3, H, W) images in [-1, 1], or [0, 1] with ``normalize=True``; grey
                (N, 1, H, W) is repeated to RGB; N may be 1 on one side (broadcast); sizes may differ.
                A float dtype other than the metric's is cast to the metric's dtype.
            retPerLayer: also return the per-term contributions (list of (N, 1, 1, 1)).
            normalize: inputs are in [0, 1].

        Returns:
            (N, 1, 1, 1) distances (and the per-term list when ``retPerLayer``).
        """
        in0, in1 = check_pair(in0, in1, normalize=normalize, min_size=MIN_INPUT_SIZE, same_size=False,
                              check_values=self.check_inputs)
        check_module_device(self, in0)
        in0, in1 = self._cast(in0), self._cast(in1)
        # the two sides go through the trunk one after the other: the peak memory is that of one
        # batch, and a broadcast side of one image is computed once
        grad = torch.is_grad_enabled() and (in0.requires_grad or in1.requires_grad)
        if normalize:
            in0, in1 = 2 * in0 - 1, 2 * in1 - 1
        self._check_registered_sizes(in0, in1)
        with (self.net.eager() if grad and self.net.backend != "eager" else contextlib.nullcontext()):
            out = self._distance(self._features(in0), self._features(in1), retPerLayer)
        if retPerLayer:
            total, terms = out
            return total.view(-1, 1, 1, 1), [t.view(-1, 1, 1, 1) for t in terms]
        return out.view(-1, 1, 1, 1)

    def _cast(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs follow the trunk's dtype (under autocast, autocast decides), so a half-precision
        image into a float32 metric, or the reverse, just works."""
        dtype = self.net.features[0].weight.dtype
        return x if x.dtype == dtype or torch.is_autocast_enabled() else x.to(dtype)

    def extra_repr(self) -> str:
        return f"variant={self.variant.name!r}, formulation={self.formulation.name!r}"
