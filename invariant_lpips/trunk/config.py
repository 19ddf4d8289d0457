"""``TrunkConfig``: the one owner of a trunk's configuration.

A frozen, hashable description of a :class:`~invariant_lpips.trunk.vgg16.VGG16Trunk`: which weights,
which down-sampler per stage, the blur filter size, the convolutions' padding and the taps. It builds
the trunk (:meth:`TrunkConfig.build`, the only place outside ``trunk/vgg16.py`` that constructs one),
serialises itself into the feature cache's key (:meth:`TrunkConfig.to_dict`) and says whether an
existing trunk can serve it (:meth:`TrunkConfig.check`). Every trunk carries the configuration it was built
with (``trunk.config``), and sharing compares all of it: pooling, filter size, padding, weights, and the taps
as a superset.

>>> cfg = TrunkConfig(pooling="blurmax", taps=("pool2", "pool1"))
>>> cfg.pooling, cfg.taps
(('blurmax', 'blurmax', 'blurmax', 'blurmax', 'blurmax'), ('pool1', 'pool2'))
>>> cfg.to_dict()
{'pooling': ['blurmax', 'blurmax', 'blurmax', 'blurmax', 'blurmax'], 'filter_size': 3, 'padding_mode': 'zeros', 'taps': ['pool1', 'pool2']}
>>> trunk = cfg.build(weights=None)           # random weights: tests only
>>> cfg.with_(weights=None).check(trunk) is trunk, sorted(trunk(torch.zeros(1, 3, 32, 32)))
(True, ['pool1', 'pool2'])
>>> cfg.with_(weights=None, filter_size=5).check(trunk)       # doctest: +ELLIPSIS
Traceback (most recent call last):
ValueError: the given trunk (TrunkConfig(...filter_size=3...)) does not serve this configuration ...: filter_size differs (3, wanted 5); ...
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, List, Optional, Tuple, Union

import torch  # noqa: F401 - used by the doctest

from ..pooling.downsample import expand_pooling_spec
from .vgg16 import POOL_TAPS, TAP_LAYER_INDEX, VGG16Trunk

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")

#: the :attr:`TrunkConfig.weights` of a trunk whose weights were given as a state dict
STATE_DICT_WEIGHTS = "state-dict"


def weights_label(weights: Any) -> Optional[str]:
    """What :attr:`TrunkConfig.weights` records for a trunk's ``weights`` argument: ``"imagenet"``, the path
    as a string, ``None`` (random) or :data:`STATE_DICT_WEIGHTS` for a state dict."""
    if weights is None:
        return None
    if isinstance(weights, dict):
        return STATE_DICT_WEIGHTS
    return str(weights)


@dataclass(frozen=True)
class TrunkConfig:
    """What a trunk is: weights, pooling per stage, filter size, padding, taps.

    Args:
        weights: ``"imagenet"`` (resolved by :func:`invariant_lpips.weights.resolve_vgg16_state_dict`), a path,
            ``None`` (random: tests) or :data:`STATE_DICT_WEIGHTS` (a trunk built from a state dict). Not part of
            :meth:`to_dict`: the cache keys on the weights' hash.
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
            object.__setattr__(self, "weights", weights_label(self.weights))

    def with_(self, **changes) -> "TrunkConfig":
        return replace(self, **changes)

    @property
    def circular(self) -> bool:
        """The convolutions pad circularly (the statistics then pad circularly too)."""
        return self.padding_mode == "circular"

    def build(self, weights: Union[str, dict, None] = "default", **options) -> VGG16Trunk:
        """The trunk; ``weights`` overrides :attr:`weights` (a state dict, a path, ``"imagenet"`` or None);
        ``options``: :class:`VGG16Trunk`'s execution options (``backend``, ``channels_last``)."""
        return VGG16Trunk(weights=self.weights if weights == "default" else weights, pooling=self.pooling,
                          filter_size=self.filter_size, padding_mode=self.padding_mode, taps=self.taps, **options)

    def to_dict(self) -> dict:
        """The configuration as JSON values (the feature cache's key adds the weights' hash)."""
        return {"pooling": list(self.pooling), "filter_size": self.filter_size, "padding_mode": self.padding_mode,
                "taps": list(self.taps)}

    def differences(self, trunk: VGG16Trunk) -> List[str]:
        """Why ``trunk`` cannot serve this configuration, one line per field (empty: it can). Compares the
        trunk's own :attr:`VGG16Trunk.config`: pooling, filter size, padding and weights must be equal, and the
        trunk's taps must include these taps."""
        have = trunk.config
        out = [f"{field} differs ({getattr(have, field)!r}, wanted {getattr(self, field)!r})"
               for field in ("pooling", "filter_size", "padding_mode", "weights")
               if getattr(have, field) != getattr(self, field)]
        missing = [t for t in self.taps if t not in have.taps]
        if missing:
            out.append(f"taps {missing} missing (the trunk has {list(have.taps)})")
        return out

    def serves(self, trunk: VGG16Trunk) -> bool:
        """Whether ``trunk`` computes this configuration's taps: the same pooling, filter size, padding and
        weights, and a superset of the taps."""
        return not self.differences(trunk)

    def check(self, trunk: VGG16Trunk, what: str = "this configuration") -> VGG16Trunk:
        """``trunk`` if it :meth:`serves` this configuration, else a ValueError naming both configurations."""
        differences = self.differences(trunk)
        if differences:
            raise ValueError(
                f"the given trunk ({trunk.config}) does not serve {what} ({self}): {'; '.join(differences)}; "
                "pass no trunk (one is built), or build the trunk from that configuration (TrunkConfig.build)")
        return trunk
