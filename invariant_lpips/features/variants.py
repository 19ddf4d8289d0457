"""The variant registry: a name -> what it configures (trunk, statistics, formulation, weights).

A :class:`Variant` holds a :class:`~invariant_lpips.trunk.config.TrunkConfig` (weights, pooling, filter
size, padding, taps), the pooled statistics it reads, a
:class:`~invariant_lpips.features.formulations.Formulation` and its shipped weights file. Prose (what a
variant is, what it is invariant to) and benchmark figures (relative cost) live in the weights manifest
(:func:`~invariant_lpips.weights.linear.variant_notes`) and the README, not here.

>>> v = get_variant("texture-blur")
>>> v.formulation, v.trunk.taps, v.terms()[:2], v.channels()
(<formulation 'texture'>, ('pool1', 'pool2'), ['raw.mean.pool1', 'raw.mean.pool2'], {'pool1': 64, 'pool2': 128, 'lab': 3})
>>> v.with_(name="texture-circular", padding_mode="circular").trunk.padding_mode
'circular'
"""
from __future__ import annotations

import warnings

from dataclasses import dataclass, fields, replace
from typing import Dict, List, Optional, Tuple, Union

import torch

from ..trunk.config import TrunkConfig
from ..trunk.vgg16 import POOL_TAPS
from ..weights.linear import WeightsArg, resolve_linear_weights, variant_notes
from .formulations import LAB_BLOCKS, Formulation, RegisteredFormulation, get_formulation, lab_block
from .pooled import CHANNELS, COLOUR_TAP, TAP_STRIDE, term_parts

_TRUNK_FIELDS = {f.name for f in fields(TrunkConfig)}


@dataclass(frozen=True)
class Variant:
    """One named configuration of :class:`~invariant_lpips.InvariantLPIPS`.

    Attributes:
        name: registry key.
        formulation: a :class:`~invariant_lpips.features.formulations.Formulation` (or its registered name).
        trunk: the trunk's configuration (pooling, filter size, padding, taps, weights).
        statistics: pooled statistics per trunk tap (:data:`~invariant_lpips.features.pooled.STATISTICS`).
        colour_statistics: statistics of the CIELab colour tap (empty = no colour tap).
        weights_file: shipped linear weights (None = unit weights).
        statistic_taps: optional ``((statistic, (tap, ...)), ...)``: read that statistic at those taps
            only (e.g. pooled means and spreads early, coarse maps deep); other statistics at every tap.
        registered: registered (pair) terms ``"<space>.reg.<tap>"`` (``unit`` at a trunk tap, ``lab.reg.lab``
            for the CIELab image, ``lab<s>.reg.lab`` for its means over s x s px blocks), compared position by
            position after registration (:mod:`~invariant_lpips.features.registration`); their taps must be
            among the trunk's.
        max_shift: the largest displacement (px per axis) registration undoes.
        local_radius: local matching after the global step: each ``local_cell`` px cell may move by up to
            this many px per axis (0: none; :mod:`~invariant_lpips.features.registration`).
        local_cell: the cell size of local matching (px; a multiple of the registered taps' strides).
        subpixel: registration also undoes the fractional part of the displacement (half on each side,
            Lanczos-3; :mod:`~invariant_lpips.features.registration`).
        similarity: registration first undoes a rotation (up to 20 degrees) and zoom (up to 12%) about the
            centre, estimated per pair, half on each side (:func:`~invariant_lpips.features.similarity.estimate_similarity`).
    """

    name: str
    formulation: Union[str, Formulation]
    trunk: TrunkConfig = TrunkConfig()
    statistics: Tuple[str, ...] = ("mean",)
    colour_statistics: Tuple[str, ...] = ()
    weights_file: Optional[str] = None
    statistic_taps: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
    registered: Tuple[str, ...] = ()
    max_shift: int = 8
    local_radius: int = 0
    local_cell: int = 16
    subpixel: bool = False
    similarity: bool = False

    def __post_init__(self):
        object.__setattr__(self, "formulation", get_formulation(self.formulation))
        object.__setattr__(self, "statistics", tuple(self.statistics))
        object.__setattr__(self, "colour_statistics", tuple(self.colour_statistics))
        self.formulation.check(self.statistics, self.colour_statistics)
        object.__setattr__(self, "statistic_taps", tuple((st, tuple(taps)) for st, taps in self.statistic_taps))
        for st, taps in self.statistic_taps:
            if st not in self.statistics or not set(taps) <= set(self.trunk.taps):
                raise ValueError(f"statistic_taps: {st!r} at {list(taps)} needs {st!r} in statistics "
                                 f"{list(self.statistics)} and taps among the trunk's {list(self.trunk.taps)}")
        object.__setattr__(self, "registered", tuple(self.registered))
        for key in self.registered:
            space, stat, tap = term_parts(key)
            valid = stat == "reg" and ((space == "unit" and tap in self.trunk.taps)
                                       or (tap == COLOUR_TAP and lab_block(space) > 0))
            if not valid:
                raise ValueError(f"registered term {key!r}: write 'unit.reg.<trunk tap>' (a tap among "
                                 f"{list(self.trunk.taps)}), 'lab.reg.lab' or 'lab<s>.reg.lab' (CIELab block "
                                 f"means, s in {list(LAB_BLOCKS)})")
        if self.local_radius < 0 or self.local_cell < 1 or any(
                self.local_cell % TAP_STRIDE[term_parts(k)[2]] for k in self.registered):
            raise ValueError(f"local matching: local_radius must be >= 0 (got {self.local_radius}) and local_cell "
                             f"a positive multiple of the registered taps' strides (got {self.local_cell})")
        if self.registered and not self.formulation.pair_terms:
            raise ValueError(f"registered terms {list(self.registered)} need a formulation that compares them "
                             "('texture-structure-registered')")

    @property
    def taps(self) -> Tuple[str, ...]:
        """The trunk taps the statistics are read at (the trunk's)."""
        return self.trunk.taps

    def terms(self) -> List[str]:
        """The statistics keys the distance uses, in a fixed order (see the formulation)."""
        only = dict(self.statistic_taps)
        stat = [k for k in self.formulation.terms(self.trunk.taps, self.statistics, self.colour_statistics)
                if term_parts(k)[1] not in only or term_parts(k)[0] == COLOUR_TAP or term_parts(k)[2] in only[term_parts(k)[1]]]
        return stat + list(self.registered)

    def statistic_taps_used(self) -> Tuple[str, ...]:
        """The trunk taps that per-image statistics are read at (registered-only taps excluded)."""
        used = {term_parts(k)[2] for k in self.terms() if k not in self.registered}
        return tuple(t for t in self.trunk.taps if t in used)

    def map_taps(self) -> Tuple[str, ...]:
        """The maps the registered terms compare (trunk taps, and ``"lab"``)."""
        return tuple(dict.fromkeys(term_parts(k)[2] for k in self.registered))

    def channels(self) -> Dict[str, int]:
        """tap -> channels of every per-channel weight vector (the trunk taps, then the colour tap)."""
        taps = list(self.trunk.taps) + ([COLOUR_TAP] if self.colour_statistics or COLOUR_TAP in self.map_taps() else [])
        return {t: CHANNELS[t] for t in taps}

    def weights(self, weights: WeightsArg = None) -> Tuple[Dict[str, torch.Tensor], dict]:
        """The linear weights (tensors, manifest entry): ``None`` the shipped file (or ones), ``"ones"``,
        a dict or a file (:func:`~invariant_lpips.weights.linear.resolve_linear_weights`)."""
        return resolve_linear_weights(weights, self.channels(), self.weights_file, variant=self.name,
                                      fill_with_ones=(COLOUR_TAP,) + tuple(t for t in self.trunk.taps if t not in POOL_TAPS),
                                      old_names=tuple(old for old, new in RENAMED.items() if new == self.name))

    def with_(self, **changes) -> "Variant":
        """A copy with ``changes``; trunk fields (``pooling``, ``padding_mode``, ...) go to the trunk."""
        trunk = {k: changes.pop(k) for k in list(changes) if k in _TRUNK_FIELDS}
        if trunk:
            changes["trunk"] = self.trunk.with_(**trunk)
        return replace(self, **changes)


_REGISTRY: Dict[str, Variant] = {}
#: the default variant: the design that nested leave-one-type-out selection on the 512x384 KADID dev proxy
#: picks in the registered family among those meeting the arrangement and shift targets on synthetic probes
#: and the loss targets over six training seeds (studies/registered_select.py, studies/loss_frontier.py;
#: docs/loss-targets-as-the-test-2026-12-06.md), registering to sub-pixel precision
#: (docs/subpixel-registration-2026-12-06.md)
DEFAULT_VARIANT = "registered-lab-lq3-subpixel-blur"


def register_variant(variant: Variant, overwrite: bool = False) -> Variant:
    """Add a variant to the registry (``overwrite=True`` to replace one)."""
    if variant.name in _REGISTRY and not overwrite:
        raise ValueError(f"variant {variant.name!r} is already registered (pass overwrite=True)")
    _REGISTRY[variant.name] = variant
    return variant


#: names before 0.1.0's rename, so that "lpips" names the LPIPS baseline only: the ``lpips-gap*`` family (GAP
#: taps with LPIPS v0.1's linear weights) is ``gap-lin*``, its mean-and-spread members ``gap-lin-ms*``. The
#: old names still build the same variant, with a FutureWarning naming the new one.
RENAMED = {"lpips-gap": "gap-lin", "lpips-gap-blur": "gap-lin-blur", "lpips-gap-blur5": "gap-lin-blur5",
           "lpips-gap-l2": "gap-lin-l2", "lpips-gap-aps": "gap-lin-aps", "lpips-gap-stats": "gap-lin-ms",
           "lpips-gap-stats-sq": "gap-lin-ms-sq"}


def canonical_variant_name(name: str) -> str:
    """``name``, or the current name of a renamed variant (with a FutureWarning)."""
    if name in RENAMED:
        warnings.warn(f"variant {name!r} is now called {RENAMED[name]!r} (\"lpips\" names the LPIPS baseline "
                      f"only); the old name will be removed in a later release", FutureWarning, stacklevel=3)
        return RENAMED[name]
    return name


def get_variant(name: Union[str, Variant]) -> Variant:
    """A registered variant by name (a :class:`Variant` is returned as it is; a renamed variant's old name
    gives the variant with a FutureWarning, see :data:`RENAMED`)."""
    if isinstance(name, Variant):
        return name
    try:
        return _REGISTRY[canonical_variant_name(name)]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; available: {', '.join(list_variants())}") from None


def list_variants() -> List[str]:
    """Names of the registered :class:`~invariant_lpips.InvariantLPIPS` variants."""
    return list(_REGISTRY)


def variant_table() -> List[dict]:
    """One dict per variant (name, formulation, pooling, statistics, taps, weights, and the manifest's
    invariance, description and relative cost)."""
    rows = []
    for v in _REGISTRY.values():
        notes = variant_notes(v.name)
        q = getattr(v.formulation, "exponent", 1.0)
        pooled = ", ".join(([f"q={q:g}"] if q != 1.0 else [])
                           + [f"{k} q={e:g}" for k, e in sorted(getattr(v.formulation, "exponents", {}).items())]
                           + (["subpixel"] if v.subpixel else []) + (["similarity"] if v.similarity else []))
        rows.append({"name": v.name, "formulation": v.formulation.name + (f" ({pooled})" if pooled else ""),
                     "pooling": "/".join(v.trunk.pooling),
                     "statistics": ",".join(v.statistics) + (f" + lab {','.join(v.colour_statistics)}"
                                                             if v.colour_statistics else ""),
                     "taps": ",".join(v.trunk.taps), "weights": v.weights_file or "ones",
                     "invariance": notes.get("invariance", ""), "description": notes.get("description", ""),
                     "relative_cost": notes.get("relative_cost", 1.0)})
    return rows


# ---------------------------------------------------------------------------------------------
# built-in variants
# ---------------------------------------------------------------------------------------------
_MAX, _BLUR = TrunkConfig(pooling="max"), TrunkConfig(pooling="blurmax", filter_size=3)
register_variant(Variant("paper", "paper", _MAX, weights_file="paper_ones.safetensors"))
register_variant(Variant("paper-blur", "paper", _BLUR, weights_file="paper_ones.safetensors"))
for _name, _trunk in [("gap-lin", _MAX), ("gap-lin-blur", _BLUR),
                      ("gap-lin-blur5", TrunkConfig(pooling="blurmax", filter_size=5)),
                      ("gap-lin-l2", TrunkConfig(pooling="l2")), ("gap-lin-aps", TrunkConfig(pooling="aps"))]:
    # LPIPS-style GAP variants on the shared LPIPS-v0.1-derived weights
    register_variant(Variant(_name, "weighted", _trunk, weights_file="lpips_gap_max.safetensors"))
register_variant(Variant("texture-blur", "texture", _BLUR.with_(taps=("pool1", "pool2")), ("mean", "std"),
                         ("mean", "std"), weights_file="texture_blur.safetensors"))
# texture-blur's terms plus the arrangement of pool1 (coarse maps at 64-px cells, compared after centring);
# chosen by nested leave-one-type-out selection among the designs of studies/structure_select.py
register_variant(Variant("structure-blur", "texture-structure", _BLUR.with_(taps=("pool1", "pool2")),
                         ("mean", "std", "coarse64"), ("mean", "std"), weights_file="structure_blur.safetensors",
                         statistic_taps=(("coarse64", ("pool1",)),)))
for _name, _formulation in [("gap-lin-ms", "mean-spread"), ("gap-lin-ms-sq", "mean-spread-sq")]:
    # mean and spread per pool tap plus the CIELab colour tap, with LPIPS' per-channel weights
    register_variant(Variant(_name, _formulation, _BLUR, ("mean", "std"), ("mean", "std"),
                             weights_file="lpips_gap_stats.safetensors"))
# compensate, then compare: structure-blur's texture and coarse-structure terms plus registered terms (fine
# VGG maps and CIELab compared position by position after the global displacement is undone, see
# features/registration.py); chosen by nested leave-one-type-out selection (studies/registered_select.py)
_REGISTERED_TRUNK = _BLUR.with_(taps=("relu1_2", "pool1", "pool2"))
register_variant(Variant("registered-blur", "texture-structure-registered", _REGISTERED_TRUNK,
                         ("mean", "std", "coarse32"), ("mean", "std"), weights_file="registered_blur.safetensors",
                         statistic_taps=(("mean", ("pool1", "pool2")), ("std", ("pool1", "pool2")),
                                         ("coarse32", ("pool1",))),
                         registered=("unit.reg.relu1_2",)))
# registered-blur plus the CIELab image compared pixel by pixel after registration (DISTS' stage 0, aligned):
# the design chosen by nested leave-one-type-out selection among those that meet the loss target (a
# training run's output within 15% of the truth's sharpness: studies/loss_frontier.py)
register_variant(get_variant("registered-blur").with_(name="registered-lab-blur",
                                                      weights_file="registered_lab_blur.safetensors",
                                                      registered=("unit.reg.relu1_2", "lab.reg.lab")))
# registered-lab-blur's terms with the registered terms pooled over positions as (mean_p e_p^4)^(1/4) (a few
# large changes weigh more than a thin spread) and the pool1 arrangement at 64-px cells: the design chosen by
# nested leave-one-type-out selection once pooled designs entered the pool (docs/pooling-exponent-2026-12-05.md)
register_variant(get_variant("registered-lab-blur").with_(
    name="registered-lab-q4-blur", formulation=RegisteredFormulation(exponent=4.0),
    statistics=("mean", "std", "coarse64"), weights_file="registered_lab_q4_blur.safetensors",
    statistic_taps=(("mean", ("pool1", "pool2")), ("std", ("pool1", "pool2")), ("coarse64", ("pool1",)))))
# registered-lab-blur with only the registered relu1_2 differences pooled over positions as
# (mean_p e_p^3)^(1/3) (CIELab keeps the plain mean): the design chosen by nested leave-one-type-out selection
# among the per-term pooled designs that pass the loss test (docs/per-term-pooling-2026-12-06.md)
register_variant(get_variant("registered-lab-blur").with_(
    name="registered-lab-rq3-blur", formulation=RegisteredFormulation(exponents={"unit.reg.relu1_2": 3.0}),
    weights_file="registered_lab_rq3_blur.safetensors"))
# registered-lab-blur with only the registered CIELab differences pooled over positions as (mean_p e_p^4)^(1/4)
# (relu1_2 keeps the plain mean): the design chosen by nested leave-one-type-out selection when the loss test is
# the loss targets (a trained denoiser above the peers and within 15% of the truth's sharpness, six seeds;
# docs/loss-targets-as-the-test-2026-12-06.md)
register_variant(get_variant("registered-lab-blur").with_(
    name="registered-lab-lq4-blur", formulation=RegisteredFormulation(exponents={"lab.reg.lab": 4.0}),
    weights_file="registered_lab_lq4_blur.safetensors"))
# registered-lab-blur registering to sub-pixel precision (the fractional part of the global displacement is
# undone too, half on each side, Lanczos-3, so that two samplings of a scene half a pixel apart are compared
# where they correspond) with the registered CIELab differences pooled over positions as (mean_p e_p^3)^(1/3):
# the design the nested leave-one-type-out selection of the loss-targets family chooses once the terms are
# computed with sub-pixel registration (docs/subpixel-registration-2026-12-06.md)
register_variant(get_variant("registered-lab-blur").with_(
    name="registered-lab-lq3-subpixel-blur", formulation=RegisteredFormulation(exponents={"lab.reg.lab": 3.0}),
    subpixel=True, weights_file="registered_lab_lq3_subpixel_blur.safetensors"))
# the default registering rotation and zoom about the centre too (up to 20 degrees and 12%, estimated per pair
# and undone half on each side before the translation step), with the default's weights: a rotated or zoomed
# copy is compared where its content corresponds, so its cost grows with the change instead of jumping at the
# first step registration cannot undo (docs/similarity-registration-2026-12-08.md)
register_variant(get_variant("registered-lab-lq3-subpixel-blur").with_(
    name="registered-lab-lq3-similarity-blur", similarity=True))
