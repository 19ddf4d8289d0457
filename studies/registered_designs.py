"""Designs of the *registered* family (``studies/registered_select.py``): the pool, names, a design as a metric.

A design weighs the per-pair term columns of ``studies/registered_terms.py``::

    d = mean_{k in texture} T_k / m_k + lambda * mean_{j in structure} S_j / m_j + mu * mean_{r in registered} M_r / m_r

Its name reads ``tex12+lab[κ<kappa>]|<structure>[|λ<lambda>][|<registered set>|μ<mu>]``: the texture base
(pool1-2 means and spreads + CIELab; ``κ``: the texture energy floor, :class:`TextureFormulation`), the
coarse structure (``s1.c32``: pool1 at 32-px cells, ...), the registered set (``r1``: relu1_2, ``lab``: the
CIELab image, ``lab4``: its means over 4 x 4 px blocks, ...; ``.j2``: with local matching within +-2 px,
``@j2`` on its columns; ``.q2``: pooled over positions with exponent 2, ``@q2`` on its columns). ``registered-blur`` is ``tex12+lab|s1.c32|λ0.25|r1|μ0.5``; ``registered-lab-blur`` is
``tex12+lab|s1.c32|λ0.5|r1+lab|μ2``.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

from selection import floor_name

from invariant_lpips.features.formulations import RegisteredFormulation
from invariant_lpips.features.variants import Variant, get_variant
from invariant_lpips.metric.invariant import InvariantLPIPS

TEXTURE = ["raw.mean.pool1", "raw.mean.pool2", "raw.std.pool1", "raw.std.pool2", "lab.mean.lab", "lab.std.lab"]
STRUCTURE = {"none": [], "s1.c64": ["raw.coarse64.pool1"], "s1.c32": ["raw.coarse32.pool1"],
             "s12.c64": ["raw.coarse64.pool1", "raw.coarse64.pool2"]}
REGISTERED = {"none": [], "r1": ["unit.reg.relu1_2"], "r12": ["unit.reg.relu1_2", "unit.reg.relu2_2"],
              "p12": ["unit.reg.pool1", "unit.reg.pool2"], "lab": ["lab.reg.lab"],
              "r12+lab": ["unit.reg.relu1_2", "unit.reg.relu2_2", "lab.reg.lab"],
              "r1+lab": ["unit.reg.relu1_2", "lab.reg.lab"]}
#: local matching radii (px) whose registered columns ``registered_terms.py --local`` computes; a set
#: ``r1+lab.j<R>`` is ``r1+lab`` with each 16-px cell matched within +-R px after the global step
LOCAL_RADII = (1, 2, 4)
LAMBDAS = (0.25, 0.5, 1.0)
MUS = (0.25, 0.5, 1.0, 2.0, 4.0)


def design_name(s, lam, r, mu, kappa=0.0):
    return (f"tex12+lab" + (f"κ{kappa:g}" if kappa else "") + f"|{s}" + (f"|λ{lam:g}" if s != "none" else "")
            + (f"|{r}|μ{mu:g}" if r != "none" else ""))


def exponent_name(key: str, exponent: float) -> str:
    """The column name of registered term ``key`` pooled with exponent q (plain at 1)."""
    return key if exponent == 1 else f"{key}@q{exponent:g}"


def local_name(key: str, radius: int) -> str:
    """The column name of registered term ``key`` under local matching of ``radius`` px (plain at 0)."""
    return key if not radius else f"{key}@j{radius}"


def registered_sets(local=(), blocks=(), exponents=(), per_term=False):
    """The registered sets of the pool: :data:`REGISTERED`, plus ``r1+lab.j<R>`` for each radius in ``local``,
    ``r1+lab<s>`` (the CIELab term on s x s px block means) for each block size in ``blocks`` and
    ``r1+lab.q<q>`` (both pooled over positions with exponent q) for each q in ``exponents``; with
    ``per_term``, also ``r1.q<q>+lab`` (only relu1_2 pooled) and ``r1+lab.lq<q>`` (only CIELab pooled)."""
    sets = dict(REGISTERED)
    for q in exponents:
        sets[f"r1+lab.q{q:g}"] = [exponent_name(k, q) for k in REGISTERED["r1+lab"]]
        if per_term:
            sets[f"r1.q{q:g}+lab"] = [exponent_name("unit.reg.relu1_2", q), "lab.reg.lab"]
            sets[f"r1+lab.lq{q:g}"] = ["unit.reg.relu1_2", exponent_name("lab.reg.lab", q)]
    for r in local:
        sets[f"r1+lab.j{r}"] = [local_name(k, r) for k in REGISTERED["r1+lab"]]
    for b in blocks:
        sets[f"r1+lab{b}"] = ["unit.reg.relu1_2", f"lab{b}.reg.lab"]
    return sets


def design_pool(floors=(0.0,), local=(), blocks=(), exponents=(), per_term=False):
    """Every design: texture base (under each energy floor kappa of ``floors``) x coarse structure x lambda x
    registered set (with local matching at the radii ``local``; low-passed CIELab at ``blocks``; pooling
    exponents ``exponents``, also per term with ``per_term``) x mu."""
    pool = []
    sets = registered_sets(local, blocks, exponents, per_term)
    for kappa in floors:
        for s, r in itertools.product(STRUCTURE, sets):
            for lam in (LAMBDAS if s != "none" else (0.0,)):
                for mu in (MUS if r != "none" else (0.0,)):
                    pool.append({"name": design_name(s, lam, r, mu, kappa),
                                 "texture": [floor_name(k, kappa) if not k.startswith("lab.") else k for k in TEXTURE],
                                 "structure": list(STRUCTURE[s]), "registered": list(sets[r]),
                                 "weighting": "norm", "lambda": lam, "mu": mu, "floor": kappa})
    return pool


def column_settings(names):
    """The local radii (``@j<R>``) and pooling exponents (``@q<q>``) that column names carry, as two sets."""
    return ({int(n.split("@j")[1]) for n in names if "@j" in n}, {float(n.split("@q")[1]) for n in names if "@q" in n})


def registered_exponents(names):
    """``{term: q}`` for every registered column of ``names`` (q 1 when the column carries no ``@q``)."""
    return {n.split("@")[0]: (float(n.split("@q")[1]) if "@q" in n else 1.0) for n in names if ".reg." in n}


def term_exponents(names):
    """``(q, {term: q})``: the pooling exponent shared by every registered column of ``names`` (1 when none is
    pooled), or ``(1, {term: q})`` for the pooled terms when they differ from the others."""
    reg = registered_exponents(names)
    qs = set(reg.values())
    if len(qs) <= 1:
        return (qs.pop() if qs else 1.0), {}
    return 1.0, {k: q for k, q in reg.items() if q != 1.0}


def design_metric(design, names, coef, trunk_weights="default", subpixel=False) -> InvariantLPIPS:
    """An InvariantLPIPS computing the design's distance ``X[:, names] @ coef`` (times the number of texture
    terms, the shipped convention) on the default's anti-aliased trunk; ``trunk_weights=None``: a random
    trunk (tests); ``subpixel``: registering to sub-pixel precision (columns of ``registered_terms.py
    --subpixel``)."""
    base = get_variant("registered-blur")
    plain = [n.split("@")[0] for n in names]
    radii, qs = column_settings(names)
    q, per_term = term_exponents(names)
    if len(radii) > 1 or len(qs) > 1:
        raise SystemExit(f"design {design['name']}: registered terms of several local radii {sorted(radii)} or "
                         f"pooling exponents {sorted(qs)}")
    registered = tuple(n for n in plain if ".reg." in n)
    structure = sorted({n.split(".")[1] for n in plain if ".coarse" in n})
    taps = {"mean": set(), "std": set()}
    for n in plain:
        space, stat, tap = n.split(".")
        if space == "raw" and stat in taps:
            taps[stat].add(tap)
        elif stat.startswith("coarse"):
            taps.setdefault(stat, set()).add(tap)
    reg_taps = [n.split(".")[2] for n in registered if n.split(".")[2] != "lab"]
    trunk_taps = tuple(t for t in ("relu1_2", "pool1", "relu2_2", "pool2")
                       if t in reg_taps or any(t in s for s in taps.values()))
    v = Variant("frontier", RegisteredFormulation(design.get("floor", 0.0), q, per_term),
                base.trunk.with_(taps=trunk_taps),
                ("mean", "std") + tuple(structure), ("mean", "std"),
                statistic_taps=tuple((st, tuple(sorted(t))) for st, t in taps.items() if t), registered=registered,
                local_radius=radii.pop() if radii else 0, subpixel=subpixel)
    metric = InvariantLPIPS(variant=v, weights="ones", **({} if trunk_weights == "default" else {"trunk_weights": trunk_weights}))
    scale = dict(zip(plain, len(design["texture"]) * np.asarray(coef)))
    missing = [t for t in metric.terms if t not in scale]
    if missing:
        raise SystemExit(f"design {design['name']}: the metric's terms {missing} have no scale")
    metric.scales.data = torch.tensor([scale[t] for t in metric.terms], dtype=torch.float32)
    return metric


def with_columns(X, names, keys, path):
    """``(X, names)`` with the extra columns of ``registered_terms.py --local / --lab-blocks / --exponents``
    (file ``path``) appended, rows matched by ``keys`` (the pairs' distorted-image file names, or probe rows)."""
    from pathlib import PurePath

    z = np.load(path)
    name = lambda k: PurePath(str(k)).name  # a distorted image's file name is unique (the folder may differ)
    index = {name(k): i for i, k in enumerate(z["keys"])}
    missing = [str(k) for k in keys if name(k) not in index]
    if missing:
        raise SystemExit(f"{path}: no columns for {len(missing)} rows (e.g. {missing[0]}); rerun "
                         "registered_terms.py (--local, --lab-blocks or --exponents) on the same pairs")
    rows = [index[name(k)] for k in keys]
    return np.column_stack([np.asarray(X, dtype=np.float64), z["X"][rows]]), list(names) + [str(n) for n in z["names"]]


def exponents_in(path):
    """The pooling exponents a file of ``registered_terms.py --exponents`` holds (none without a file)."""
    if not path:
        return ()
    return tuple(sorted({float(str(n).split("@q")[1]) for n in np.load(path)["names"]}))


def lab_blocks(path):
    """The block sizes of the low-passed CIELab columns a file of ``registered_terms.py --lab-blocks`` holds."""
    if not path:
        return ()
    return tuple(sorted(int(str(n).split(".")[0][3:]) for n in np.load(path)["names"]))


def local_radii(path):
    """The radii a local-columns file holds (none without a file)."""
    if not path:
        return ()
    return tuple(sorted({int(str(n).split("@j")[1]) for n in np.load(path)["names"]}))
