"""Designs of the ``texture-structure`` metric: their names, the selection pool, and a design as a module.

A *design* (``studies/selection.py``) is a set of term columns and a weighting. Its
name reads ``<texture>+lab|<structure>|<weighting>``:

* ``<texture>``: ``tex12`` (channel means and spreads of pool1-2), ``tex123`` (pool1-3) or ``tex12345``
  (pool1-5), always with the CIELab colour tap's mean and spread (``+lab``);
* ``<structure>``: ``none``, or ``s<taps>.c<g>.<comparison>``: coarse maps of the taps ``s1`` (pool1),
  ``s12`` (pool1-2), ``s345`` (pool3-5) ... at ``g``-px cells (16, 32 or 64; pool5 at least 32), compared
  ``centred`` or ``uncentred`` (:func:`~invariant_lpips.features.structure.compare_maps`);
* ``<weighting>``: ``norm<lambda>`` (each term scaled by its mean over the pairs, the structure terms
  weigh ``lambda`` x the mean texture term: no human score), ``fit`` or ``fit+norm<lambda>`` (fitted to
  human cell means).

Study columns are named ``tex.<stat>.<tap>`` and ``st.<comparison>.c<g>.<tap>``; :func:`term_of` maps them
to the package's term keys. :func:`design_variant` and :func:`design_metric` build a centred design as a
:class:`~invariant_lpips.features.variants.Variant` and an :class:`~invariant_lpips.InvariantLPIPS` with
the design's term scales, so a candidate can be run on images (as a loss, for speed, on probes) exactly as
the shipped default is. ``structure-blur`` is the design ``tex12+lab|s1.c64.centred|norm0.5``.
"""
from __future__ import annotations

import itertools
from typing import Dict, List, Optional, Sequence

import torch

from invariant_lpips.features.pooled import COARSE_CELLS, coarse_name
from invariant_lpips.features.variants import Variant
from invariant_lpips.trunk.config import TrunkConfig

TAPS = ("pool1", "pool2", "pool3", "pool4", "pool5")
TEXTURE_BASES = {
    "tex12": [f"tex.{s}.{t}" for s in ("mean", "std") for t in ("pool1", "pool2")],
    "tex123": [f"tex.{s}.{t}" for s in ("mean", "std") for t in ("pool1", "pool2", "pool3")],
    "tex12345": [f"tex.{s}.{t}" for s in ("mean", "std") for t in TAPS],
}
LAB = ["tex.mean.lab", "tex.std.lab"]
STRUCTURE_TAPS = {"s1": ("pool1",), "s2": ("pool2",), "s12": ("pool1", "pool2"), "s123": ("pool1", "pool2", "pool3"),
                  "s345": ("pool3", "pool4", "pool5"), "s12345": TAPS}
CELLS = (16, 32, 64)
COMPARISONS = ("centred", "uncentred")
LAMBDAS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: the anti-aliased trunk every design runs on (blur-then-max pooling, 3-tap filter)
DESIGN_TRUNK = TrunkConfig(pooling="blurmax", filter_size=3)


def structure_terms(taps: Sequence[str], cell: int, cmp: str) -> List[str]:
    """Study columns of a structure set (pool5's cells are at least 32 px: its stride)."""
    return [f"st.{cmp}.c{max(cell, 32) if t == 'pool5' else cell}.{t}" for t in taps]


def design_pool() -> List[dict]:
    """Every design of the selection study: texture base x structure set x weighting."""
    pool = []
    for tb in TEXTURE_BASES:
        tex = TEXTURE_BASES[tb] + LAB
        structures = [("none", [])] + [(f"{sn}.c{cell}.{cmp}", structure_terms(taps, cell, cmp))
                                       for (sn, taps), cell, cmp in itertools.product(STRUCTURE_TAPS.items(), CELLS,
                                                                                       COMPARISONS)]
        for sname, st in structures:
            for lam in LAMBDAS if st else (1.0,):
                pool.append({"name": f"{tb}+lab|{sname}|norm{lam:g}", "texture": tex, "structure": st,
                             "weighting": "norm", "lambda": lam})
            pool.append({"name": f"{tb}+lab|{sname}|fit", "texture": tex, "structure": st, "weighting": "fit"})
            for lam in LAMBDAS if st else ():
                pool.append({"name": f"{tb}+lab|{sname}|fit+norm{lam:g}", "texture": tex, "structure": st,
                             "weighting": "fit+norm", "lambda": lam})
    return pool


def design_by_name(name: str) -> dict:
    """The pool's design called ``name`` (ValueError listing a few names when unknown)."""
    for d in design_pool():
        if d["name"] == name:
            return d
    raise ValueError(f"unknown design {name!r}; names look like 'tex12+lab|s1.c64.centred|norm0.5' "
                     "(see studies/designs.py)")


def term_of(column: str) -> str:
    """Study column -> package term key: ``tex.mean.pool1`` -> ``raw.mean.pool1``, ``tex.std.lab`` ->
    ``lab.std.lab``, ``st.centred.c64.pool1`` -> ``raw.coarse64.pool1``."""
    parts = column.split(".")
    if parts[0] == "tex":
        return f"lab.{parts[1]}.lab" if parts[2] == "lab" else f"raw.{parts[1]}.{parts[2]}"
    return f"raw.{coarse_name(int(parts[2][1:]))}.{parts[3]}"


def design_variant(design: dict, name: Optional[str] = None) -> Variant:
    """The design as a ``texture-structure`` variant (not registered): its trunk runs to the deepest tap the
    design reads; means and spreads are read at the texture taps, each coarse map at its structure taps.

    Raises ValueError for ``uncentred`` structure terms (the package compares maps centred) and for cells
    the package has no statistic for."""
    tex_taps = sorted({c.split(".")[2] for c in design["texture"] if not c.endswith(".lab")}, key=TAPS.index)
    coarse: Dict[str, List[str]] = {}
    for col in design["structure"]:
        _, cmp, cell, tap = col.split(".")
        if cmp != "centred":
            raise ValueError(f"design {design['name']!r}: the package compares coarse maps centred; "
                             f"{col!r} is {cmp}")
        g = int(cell[1:])
        if g not in COARSE_CELLS:
            raise ValueError(f"design {design['name']!r}: no coarse statistic for {g}-px cells "
                             f"(available: {COARSE_CELLS})")
        coarse.setdefault(coarse_name(g), []).append(tap)
    taps = sorted(set(tex_taps) | {t for ts in coarse.values() for t in ts}, key=TAPS.index)
    taps = TAPS[:TAPS.index(taps[-1]) + 1]  # the trunk runs through every tap up to the deepest one
    only = [("mean", tuple(tex_taps)), ("std", tuple(tex_taps))] + [(k, tuple(v)) for k, v in coarse.items()]
    return Variant(name or f"design:{design['name']}", "texture-structure", DESIGN_TRUNK.with_(taps=tuple(taps)),
                   ("mean", "std") + tuple(coarse), ("mean", "std"), statistic_taps=tuple(only))


def design_scales(design: dict, names: Sequence[str], coef: Sequence[float]) -> Dict[str, float]:
    """Term key -> scale of the module, from a design's (columns, coefficients)
    (:func:`selection.design_coefficients` (studies/selection.py)). The module sums its terms, the
    design averages the texture ones, so the scales are ``n_texture x coef`` (texture-blur's convention:
    each texture term has a mean of 1 over the pairs); distances differ from the design's by that factor."""
    n = len(design["texture"])
    return {term_of(c): float(a) * n for c, a in zip(names, coef)}


def design_weights(variant: Variant, scales: Dict[str, float]) -> Dict[str, torch.Tensor]:
    """A weights dict for ``variant``: unit channel weights and one scale per term."""
    from invariant_lpips.calibration.pairs import parameters_to_weights, variant_tensors

    terms = variant.terms()
    if set(scales) != set(terms):
        raise ValueError(f"the scales name terms {sorted(scales)}; variant {variant.name!r} has {sorted(terms)}")
    params = torch.tensor([scales[t] for t in terms], dtype=torch.float64)
    return parameters_to_weights(variant, params, variant_tensors(variant, "ones"))


def design_metric(design: dict, names: Sequence[str], coef: Sequence[float], **kwargs):
    """The design as an :class:`~invariant_lpips.InvariantLPIPS` (``kwargs`` go to its constructor, e.g.
    ``trunk_weights=None`` for a random trunk in tests)."""
    from invariant_lpips.metric.invariant import InvariantLPIPS

    v = design_variant(design)
    return InvariantLPIPS(variant=v, weights=design_weights(v, design_scales(design, names, coef)),
                          verbose=False, **kwargs)

