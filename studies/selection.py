"""Nested leave-one-type-out selection of a metric's *design* from per-pair term columns.

Choosing a design (which terms, how they are weighted) after looking at every distortion type is a fit
too, and overfits those types. The nested protocol here gives the honest figure. A *design* is a dict
``{"name", "texture": [term names], "structure": [term names], "weighting": "norm" | "fit", "lambda"}``;
its per-pair distance is

    d = mean_{k in texture} X_k / m_k  +  lambda * mean_{k in structure} X_k / m_k      (``norm``)
        [ + mu * mean_{r in registered} X_r / m_r ]      (registered terms, ``norm`` designs only)

with ``m_k`` the mean of column ``k`` over the *training* pairs (images only, no human score), or
``d = sum_k a_k X_k / m_k`` with ``a >= 0`` fitted to the training cells' human means (``fit``:
non-negative least squares on centred cell means, which maximises Pearson's r over the cone a >= 0), or
the texture terms fitted so and the structure terms added with a fixed share ``lambda`` of the fitted
texture distance's mean (``fit+norm``).

:func:`nested_selection`, for every type ``t``:

1. on the other types only, score every design (``norm``: SRCC over the training cells; ``fit``: an inner
   leave-one-type-out, fit without ``u``, SRCC over the training cells, averaged over ``u``);
2. choose the best, renormalise / refit it on the training types;
3. map its cell distances to the human scale with a monotone (isotonic) fit on the training cells, and
   predict the held-out type's cells by interpolation.

The pooled held-out predictions, correlated with the human means, are the *nested SRCC*; peers (fixed
metrics) go through step 3 with their own maps. Shapes: ``X`` (P, K) per-pair columns; ``types``,
``levels`` (P,); ``table`` ``{(type, level): mean human score, higher = better}``.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, List, Sequence

import numpy as np
from scipy.optimize import nnls

from invariant_lpips.data.correlation import krcc, plcc, srcc


class Cells:
    """Per-pair term columns ``X`` (P, K) named ``names``, and their (type, level) cells."""

    def __init__(self, X, names: Sequence[str], types, levels, table):
        self.names = [str(n) for n in names]
        self.col = {n: i for i, n in enumerate(self.names)}
        self.X = np.asarray(X, dtype=np.float64)
        self.type = np.asarray(types).astype(int)
        self.level = np.asarray(levels).astype(int)
        missing = sorted(set(zip(self.type.tolist(), self.level.tolist())) - set(table))
        if missing:
            raise ValueError(f"the human table has no score for cells {missing[:6]}")
        self.cells = sorted(set(zip(self.type.tolist(), self.level.tolist())))
        self.cell_index = np.array([self.cells.index((t, l)) for t, l in zip(self.type, self.level)])
        self.human = np.array([table[c] for c in self.cells])  # mean DMOS: higher = better
        self.cell_type = np.array([c[0] for c in self.cells])
        self.types = sorted(set(self.type.tolist()))
        counts = np.bincount(self.cell_index, minlength=len(self.cells))
        self._avg = np.zeros((len(self.cells), len(self.X)))
        self._avg[self.cell_index, np.arange(len(self.X))] = 1.0
        self._avg /= counts[:, None]

    def cell_means(self, per_pair):
        return self._avg @ per_pair

    def columns(self, names):
        return self.X[:, [self.col[n] for n in names]]


def design_coefficients(cells: Cells, design, train_types, fit_types=None):
    """(term names, coefficients): the design's distance is ``X[:, names] @ coef``, its normalisation taken
    on ``train_types``' pairs and its fit (``fit`` designs) on ``fit_types``' cells (default ``train_types``)."""
    registered = list(design.get("registered", ()))
    names = design["texture"] + design["structure"] + registered
    X = cells.columns(names)
    m = X[np.isin(cells.type, list(train_types))].mean(0)
    m[m <= 0] = 1.0
    if design["weighting"] == "norm":
        nt, ns, nr = len(design["texture"]), len(design["structure"]), len(registered)
        share = np.array([1.0 / nt] * nt + [design.get("lambda", 1.0) / max(ns, 1)] * ns
                         + [design.get("mu", 1.0) / max(nr, 1)] * nr)
        return names, share / m
    if registered:
        raise ValueError("registered terms are weighed by norm designs only")
    fit_types = train_types if fit_types is None else fit_types
    nt, ns = len(design["texture"]), len(design["structure"])
    fitted = names[:nt] if design["weighting"] == "fit+norm" else names
    k = len(fitted)
    C = cells.cell_means(X[:, :k] / m[:k])
    rows = np.isin(cells.cell_type, list(fit_types))
    A = C[rows] - C[rows].mean(0)
    y = -(cells.human[rows] - cells.human[rows].mean())  # impairment
    a, _ = nnls(A, y)
    if not np.any(a > 0):
        a = np.ones(k)
    coef = a / m[:k]
    if design["weighting"] == "fit+norm":
        # the structure terms get a fixed share lambda of the fitted texture distance's mean over the
        # training pairs: d = d_tex + lambda * mean(d_tex) * mean_j S_j / m_j
        train = np.isin(cells.type, list(train_types))
        scale = float((X[train][:, :nt] @ coef).mean())
        coef = np.concatenate([coef, np.full(ns, design.get("lambda", 1.0) * scale / max(ns, 1)) / m[nt:]])
    return names, coef


def design_distances(cells: Cells, design, train_types, fit_types=None):
    """Per-pair distances of a design (see :func:`design_coefficients`)."""
    names, coef = design_coefficients(cells, design, train_types, fit_types)
    return cells.columns(names) @ coef


def cell_srcc(cells: Cells, d, types):
    cm = cells.cell_means(d)
    rows = np.isin(cells.cell_type, list(types))
    return srcc(-cm[rows], cells.human[rows])


def criterion(cells: Cells, design, train_types):
    """How a design is judged on the training types: ``norm`` designs (no human score) by their SRCC over the
    training cells; designs with a fit by an inner leave-one-type-out (fit without ``u``, SRCC over the
    training cells, mean over ``u``)."""
    if design["weighting"] == "norm":
        return cell_srcc(cells, design_distances(cells, design, train_types), train_types)
    vals = [cell_srcc(cells, design_distances(cells, design, train_types, [t for t in train_types if t != u]),
                      train_types) for u in train_types]
    return float(np.mean(vals))


def isotonic_fit(x, y):  # noqa: C901 - the classic algorithm, kept in one piece
    """Pool-adjacent-violators: the non-decreasing least-squares fit of ``y`` on ``x``.

    Returns (sorted unique x, fitted y at them); ties in ``x`` are averaged first."""
    order = np.argsort(x, kind="stable")
    xs, ys = np.asarray(x, float)[order], np.asarray(y, float)[order]
    ux, inv = np.unique(xs, return_inverse=True)
    uy = np.bincount(inv, weights=ys) / np.bincount(inv)
    w = np.bincount(inv).astype(float)
    vals, wts, sizes = [], [], []
    for v, wt in zip(uy, w):
        vals.append(v), wts.append(wt), sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            v2, w2, s2 = vals.pop(), wts.pop(), sizes.pop()
            vals[-1] = (vals[-1] * wts[-1] + v2 * w2) / (wts[-1] + w2)
            wts[-1] += w2
            sizes[-1] += s2
    fitted = np.repeat(vals, sizes)
    return ux, fitted


def mapped_heldout(cells: Cells, cm, held):
    """Monotone map of cell distances to the human scale, fitted on the training cells (isotonic: larger
    distance, lower score), evaluated at the held-out type's cells by linear interpolation.

    A monotone map fitted without the held-out type puts its cells on the human scale, so held-out cells of
    different folds (chosen designs with different distance scales) can be pooled."""
    tr = cells.cell_type != held
    ux, fy = isotonic_fit(cm[tr], -cells.human[tr])
    d = cm[cells.cell_type == held]
    # flat steps of the fit (and values beyond its ends) are ordered by the distance itself
    span = float(np.ptp(cm)) or 1.0
    return -np.interp(d, ux, fy) - 1e-6 * d / span


def nested_selection(cells: Cells, pool: List[dict], peers: Dict[str, np.ndarray] = None, verbose=True,
                     admissible=None) -> dict:
    """The nested protocol (module docstring). ``peers``: name -> per-pair distances of fixed metrics.
    ``admissible(design, train_types) -> bool``: a constraint that uses no human score of the held-out type
    (e.g. targets on synthetic probes); designs failing it are not chosen in that fold."""
    peers = peers or {}
    pred = np.zeros(len(cells.cells))
    peer_pred = {k: np.zeros(len(cells.cells)) for k in peers}
    folds = []
    for t in cells.types:
        train = [u for u in cells.types if u != t]
        ok = [admissible is None or admissible(d, train) for d in pool]
        fallback = not any(ok)
        if fallback:  # reported: the fold chose among every design
            ok = [True] * len(pool)
        scores = [criterion(cells, d, train) if k else -np.inf for d, k in zip(pool, ok)]
        best = int(np.nanargmax(scores))
        d = design_distances(cells, pool[best], train)
        cm = cells.cell_means(d)
        pred[cells.cell_type == t] = mapped_heldout(cells, cm, t)
        for k, pd in peers.items():
            peer_pred[k][cells.cell_type == t] = mapped_heldout(cells, cells.cell_means(pd), t)
        folds.append({"held_out_type": t, "chosen": pool[best]["name"], "criterion": scores[best],
                      "admissible": 0 if fallback else int(sum(ok)),
                      "srcc_all_cells": srcc(-cm, cells.human),
                      "top5": [pool[i]["name"] for i in np.argsort(scores)[::-1][:5]]})
        if verbose:
            print(f"type {t:2d}: chose {pool[best]['name']} (criterion {scores[best]:.4f}); "
                  f"its SRCC over all cells {folds[-1]['srcc_all_cells']:.4f}", flush=True)
    out = {"nested_srcc": srcc(pred, cells.human), "nested_krcc": krcc(pred, cells.human),
           "nested_plcc": plcc(pred, cells.human), "folds": folds,
           "peers": {k: {"nested_srcc": srcc(v, cells.human), "plain_srcc": srcc(-cells.cell_means(peers[k]),
                                                                                  cells.human)}
                     for k, v in peer_pred.items()}}
    return out


#: targets on the synthetic probes (no human score involved): a 1-px crop shift costs at most 2% of faint
#: noise (sigma 0.02; median over crops); a mirror and a 64-px block shuffle cost at least 2x faint noise
#: (sigma 0.03) and more than JPEG q30, on every crop
PROBE_TARGETS = {"shift_over_noise": 0.02, "arrangement_over_noise": 2.0}


class Probe:
    """Per-pair term columns of the synthetic probes (``kind``: shift1/2/4[/8], noise0.02/0.03, jpeg30, mirror,
    shuffle32/64, other-photo; one row per crop and kind) and a design's figures on them."""

    def __init__(self, path, floors=()):
        z = np.load(path)
        self.names = [str(n) for n in z["names"]]
        self.X = z["X"].astype(np.float64)
        if any(floors):
            self.X, self.names = with_floor_columns(self.X, self.names, z, floors)
        self.kind = np.array([str(k) for k in z["kind"]])
        self.image = z["image"].astype(int)

    def distances(self, names, coef):
        d = self.X[:, [self.names.index(n) for n in names]] @ coef
        return {k: d[self.kind == k] for k in sorted(set(self.kind))}

    def figures(self, names, coef):
        d = self.distances(names, coef)
        out = {f"shift{s}_over_noise0.02": float(np.median(d[f"shift{s}"] / d["noise0.02"]))
               for s in (1, 2, 4, 8) if f"shift{s}" in d}
        for k in ("mirror", "shuffle64", "shuffle32"):
            out[f"{k}_over_noise0.03_min"] = float(np.min(d[k] / d["noise0.03"]))
            out[f"{k}_over_jpeg30_min"] = float(np.min(d[k] / d["jpeg30"]))
        return out

    @staticmethod
    def admissible(fig, targets=PROBE_TARGETS):
        return (fig["shift1_over_noise0.02"] <= targets["shift_over_noise"]
                and all(fig[f"{k}_over_noise0.03_min"] >= targets["arrangement_over_noise"]
                        and fig[f"{k}_over_jpeg30_min"] > 1 for k in ("mirror", "shuffle64")))


def floor_name(key: str, kappa: float) -> str:
    """The column name of texture term ``key`` under energy floor ``kappa`` (the plain name at 0)."""
    return key if not kappa else f"{key}@k{kappa:g}"


def with_floor_columns(X, names, z, floors):
    """``(X, names)`` with the texture columns of every energy floor ``kappa`` in ``floors`` appended, named
    :func:`floor_name`: computed by the package's texture formulation
    (:class:`~invariant_lpips.features.formulations.TextureFormulation`, the one home of the formula) from
    the per-pair statistics ``z["S0"]``, ``z["S1"]`` that ``registered_terms.py`` saves. At ``kappa = 0`` the
    recomputed columns must equal the trunk run's (checked): the statistics are the ones it compared."""
    import torch

    from invariant_lpips.features.formulations import TextureFormulation

    names = [str(n) for n in names]
    stat_names = [str(n) for n in z["stat_names"]]
    bounds = np.cumsum([0] + [int(c) for c in z["stat_channels"]])
    S0, S1 = torch.from_numpy(np.asarray(z["S0"], dtype=np.float64)), torch.from_numpy(np.asarray(z["S1"], dtype=np.float64))
    cols, new = [], []
    for kappa in [0.0] + [float(k) for k in floors if k]:
        f = TextureFormulation(kappa)
        for i, key in enumerate(stat_names):
            if key.startswith("lab.") and kappa:  # the colour tap is compared by squared differences
                continue
            a, b = S0[:, bounds[i]:bounds[i + 1]], S1[:, bounds[i]:bounds[i + 1]]
            col = f.term_difference(key, a, b, torch.ones(a.shape[1], dtype=torch.float64)).numpy()
            if not kappa:
                ref = np.asarray(X)[:, names.index(key)]
                if not np.allclose(col, ref, rtol=1e-4, atol=1e-7):
                    raise ValueError(f"{key}: the saved statistics do not reproduce the trunk run's column "
                                     f"(max difference {np.abs(col - ref).max():.3g})")
                continue
            cols.append(col)
            new.append(floor_name(key, kappa))
    return (np.column_stack([np.asarray(X, dtype=np.float64)] + cols) if cols else np.asarray(X)), names + new
