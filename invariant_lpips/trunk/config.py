"""``TrunkConfig``: the one owner of a trunk's configuration.

A frozen, hashable description of a :class:`~invariant_lpips.trunk.vgg16.VGG16Trunk`: which weights,
which down-sampler per stage, the blur filter size, the convolutions' padding and the taps. It builds
the trunk (:meth:`TrunkConfig.build`, the only place outside ``trunk/vgg16.py`` that constructs one),
serialises itself into the feature cache's key (:meth:`TrunkConfig.to_dict`) and says whether an
existing trunk can serve it (:meth:`TrunkConfig.check`).

>>> cfg = TrunkConfig(pooling="blurmax", taps=("pool2", "pool1"))
>>> cfg.pooling, cfg.taps
(('blurmax', 'blurmax', 'blurmax', 'blurmax', 'blurmax'), ('pool1', 'pool2'))
>>> cfg.to_dict()
{'pooling': ['blurmax', 'blurmax', 'blurmax', 'blurmax', 'blurmax'], 'filter_size': 3, 'padding_mode': 'zeros', 'taps': ['pool1', 'pool2']}
>>> trunk = cfg.build(weights=None)           # random weights: tests only
>>> cfg.check(trunk) is trunk, sorted(trunk(torch.zeros(1, 3, 32, 32)))
(True, ['pool1', 'pool2'])
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple, Union

import torch  # noqa: F401 - used by the doctest

from ..pooling.downsample import expand_pooling_spec
from .vgg16 import POOL_TAPS, TAP_LAYER_INDEX, VGG16Trunk

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")


@dataclass(frozen=True)
class TrunkConfig:
    """What a trunk is: weights, pooling per stage, filter size, padding, taps.

    Args:
        weights: ``"imagenet"`` (resolved by :func:`invariant_lpips.weights.resolve_vgg16_state_dict`), a path,
            or ``None`` (random: tests). Not part of :meth:`to_dict`: the cache keys on the weights' hash.
        pooling: one down-sampler name for all five stages, or five names (stored expanded, five names).
        filter_size: binomial filter size of the anti-aliasing pools.
        padding_mode: padding of the 3x3 convolutions (``circular`` for exact-invariance checks).
        taps: trunk taps (stored in layer order).
    """

    pooling: Union[str, Tuple[str, ...]] = "max"
    filter_size: int = 3
    padding_mode: str = "zeros"
    taps: Tuple[str, ...] = POOL_TAPS
    weights: Optional[str] = "imagenet"

    def __post_init__(self):
        unknown = [t for t in self.taps if t not in TAP_LAYER_INDEX]
        if unknown or not self.taps:
            raise ValueError(f"unknown trunk taps {unknown or list(self.taps)}: choose from {list(TAP_LAYER_INDEX)}")
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {self.padding_mode!r}")
        object.__setattr__(self, "pooling", tuple(expand_pooling_spec(self.pooling)))
        object.__setattr__(self, "taps", tuple(sorted(dict.fromkeys(self.taps), key=TAP_LAYER_INDEX.get)))
        if self.weights is not None and not isinstance(self.weights, str):
            object.__setattr__(self, "weights", str(self.weights))

    def with_(self, **changes) -> "TrunkConfig":
        return replace(self, **changes)

    @property
    def circular(self) -> bool:
        """The convolutions pad circularly (the statistics then pad circularly too)."""
        return self.padding_mode == "circular"

    def build(self, weights: Union[str, dict, None] = "default", **options) -> VGG16Trunk:
        """The trunk; ``weights`` overrides :attr:`weights` (a state dict, a path, ``"imagenet"`` or None);
        ``options``: :class:`VGG16Trunk`'s execution options (``backend``, ``channels_last``, ``pool_padding``)."""
        return VGG16Trunk(weights=self.weights if weights == "default" else weights, pooling=self.pooling,
                          filter_size=self.filter_size, padding_mode=self.padding_mode, taps=self.taps, **options)

    def to_dict(self) -> dict:
        """The configuration as JSON values (the feature cache's key adds the weights' hash)."""
        return {"pooling": list(self.pooling), "filter_size": self.filter_size, "padding_mode": self.padding_mode,
                "taps": list(self.taps)}

    def serves(self, trunk: VGG16Trunk) -> bool:
        """Whether ``trunk`` computes this configuration's taps: same pooling, a superset of the taps."""
        return tuple(trunk.pooling) == self.pooling and set(self.taps) <= set(trunk.taps)

    def check(self, trunk: VGG16Trunk, what: str = "this configuration") -> VGG16Trunk:
        """``trunk`` if it :meth:`serves` this configuration, else a ValueError naming both."""
        if not self.serves(trunk):
            raise ValueError(f"the given trunk (pooling {trunk.pooling}, taps {trunk.taps}) does not match "
                             f"{what} (pooling {list(self.pooling)}, taps {self.taps})")
        return trunk
