"""Designs of the *registered* family (``studies/registered_select.py``): the pool, names, a design as a metric.

A design weighs the per-pair term columns of ``studies/registered_terms.py``::

    d = mean_{k in texture} T_k / m_k + lambda * mean_{j in structure} S_j / m_j + mu * mean_{r in registered} M_r / m_r

Its name reads ``tex12+lab[κ<kappa>]|<structure>[|λ<lambda>][|<registered set>|μ<mu>]``: the texture base
(pool1-2 means and spreads + CIELab; ``κ``: the texture energy floor, :class:`TextureFormulation`), the
coarse structure (``s1.c32``: pool1 at 32-px cells, ...), the registered set (``r1``: relu1_2, ``lab``: the
CIELab image, ...). ``registered-blur`` is ``tex12+lab|s1.c32|λ0.25|r1|μ0.5``; ``registered-lab-blur`` is
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
LAMBDAS = (0.25, 0.5, 1.0)
MUS = (0.25, 0.5, 1.0, 2.0, 4.0)


def design_name(s, lam, r, mu, kappa=0.0):
    return (f"tex12+lab" + (f"κ{kappa:g}" if kappa else "") + f"|{s}" + (f"|λ{lam:g}" if s != "none" else "")
            + (f"|{r}|μ{mu:g}" if r != "none" else ""))


def design_pool(floors=(0.0,)):
    """Every design: texture base (under each energy floor kappa of ``floors``) x coarse structure x lambda x
    registered set x mu."""
    pool = []
    for kappa in floors:
        for s, r in itertools.product(STRUCTURE, REGISTERED):
            for lam in (LAMBDAS if s != "none" else (0.0,)):
                for mu in (MUS if r != "none" else (0.0,)):
                    pool.append({"name": design_name(s, lam, r, mu, kappa),
                                 "texture": [floor_name(k, kappa) if not k.startswith("lab.") else k for k in TEXTURE],
                                 "structure": list(STRUCTURE[s]), "registered": list(REGISTERED[r]),
                                 "weighting": "norm", "lambda": lam, "mu": mu, "floor": kappa})
    return pool


def design_metric(design, names, coef, trunk_weights="default") -> InvariantLPIPS:
    """An InvariantLPIPS computing the design's distance ``X[:, names] @ coef`` (times the number of texture
    terms, the shipped convention) on the default's anti-aliased trunk; ``trunk_weights=None``: a random
    trunk (tests)."""
    base = get_variant("registered-blur")
    plain = [n.split("@")[0] for n in names]
    registered = tuple(n for n in plain if ".reg." in n)
    structure = sorted({n.split(".")[1] for n in plain if ".coarse" in n})
    taps = {"mean": set(), "std": set()}
    for n in plain:
        space, stat, tap = n.split(".")
        if space == "raw" and stat in taps:
            taps[stat].add(tap)
        elif stat.startswith("coarse"):
            taps.setdefault(stat, set()).add(tap)
    reg_taps = [n.split(".")[2] for n in registered if not n.startswith("lab.")]
    trunk_taps = tuple(t for t in ("relu1_2", "pool1", "relu2_2", "pool2")
                       if t in reg_taps or any(t in s for s in taps.values()))
    v = Variant("frontier", RegisteredFormulation(design.get("floor", 0.0)), base.trunk.with_(taps=trunk_taps),
                ("mean", "std") + tuple(structure), ("mean", "std"),
                statistic_taps=tuple((st, tuple(sorted(t))) for st, t in taps.items() if t), registered=registered)
    metric = InvariantLPIPS(variant=v, weights="ones", **({} if trunk_weights == "default" else {"trunk_weights": trunk_weights}))
    scale = dict(zip(plain, len(design["texture"]) * np.asarray(coef)))
    missing = [t for t in metric.terms if t not in scale]
    if missing:
        raise SystemExit(f"design {design['name']}: the metric's terms {missing} have no scale")
    metric.scales.data = torch.tensor([scale[t] for t in metric.terms], dtype=torch.float32)
    return metric
