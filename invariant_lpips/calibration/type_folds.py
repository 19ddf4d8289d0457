"""Calibration and evaluation against type-level human scores (the KADID dev proxy).

``kadid_dev_type_level.csv`` gives, for 13 of KADID-10k's 25 distortion types, the mean human DMOS of
each (type, level) cell over KADID's 81 references. Applying the same distortions to other references
(``invariant-lpips make-dataset``) gives a *generated set*
(:func:`invariant_lpips.data.generated.read_generated_set`); a metric's mean distance per cell is then
correlated with the human means (:func:`invariant_lpips.data.type_level.evaluate_type_level`).

To calibrate, every generated pair takes its cell's human mean as target. Cross-validation holds out
whole references (k-fold by reference: guards against fitting image content) or whole distortion types
(k-fold by type, and leave-one-type-out: the honest estimate for types never seen).
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from ..data.datasets import kfold_by_reference
from ..data.generated import GeneratedPair
from ..data.type_level import evaluate_type_level
from .fit import FitConfig, fit_weights, predict

KEEP = ("srcc", "krcc", "plcc", "mean_per_type_srcc")


def evaluate_distances(pairs: Sequence[GeneratedPair], distances: Sequence[float], table) -> dict:
    """Type-level correlations of per-pair distances (positive = agreement with the human means)."""
    return evaluate_type_level(table, [(p.ref_id, p.dist_type, p.level, float(d)) for p, d in zip(pairs, distances)])


def human_targets(pairs: Sequence[GeneratedPair], table: Dict[Tuple[int, int], float]) -> torch.Tensor:
    """Impairment target per pair: minus the cell's mean DMOS (DMOS: higher = better).

    ``table``: ``{(type, level): mean DMOS}`` from :func:`invariant_lpips.data.type_level.read_type_level_table`.
    """
    cell = {(int(t), int(lvl)): float(v) for (t, lvl), v in table.items()}
    missing = sorted({(p.dist_type, p.level) for p in pairs} - set(cell))
    if missing:
        raise ValueError(f"the type-level table has no human score for cells {missing[:6]}; filter the pairs "
                         "to the table's types")
    return torch.tensor([-cell[(p.dist_type, p.level)] for p in pairs], dtype=torch.float64)


def _fit(pairs, phi, target, mask, init, config):
    refs = [p.ref_id for p in pairs]
    return fit_weights(phi[mask], target[mask], [r for r, m in zip(refs, mask) if m], init, config).weights.double()


def kfold_type_level(pairs, phi, table, init, config: FitConfig, k: int = 4, seed: int = 0,
                     by: str = "reference") -> dict:
    """k-fold cross-validation of the calibration on a generated set.

    ``by="reference"``: the held-out fold's *references* were never trained on. ``by="type"``: the
    held-out fold's *distortion types* were never trained on. Besides the per-fold correlations, the
    held-out predictions of all folds are pooled (every pair predicted by a model that never saw its
    fold) and evaluated over all cells: ``pooled_fitted`` / ``pooled_initial``.
    """
    if by not in ("reference", "type"):
        raise ValueError(f"by must be 'reference' or 'type', got {by!r}")
    target = human_targets(pairs, table)
    keys = [p.ref_id for p in pairs] if by == "reference" else [f"type{p.dist_type:02d}" for p in pairs]
    folds = kfold_by_reference(sorted(set(keys)), k, seed)
    rows = []
    pooled = np.zeros(len(pairs))
    init_d = predict(phi.double(), init.double(), config.formulation).numpy()
    for fold, (train_keys, test_keys) in enumerate(folds):
        tr = torch.tensor([key in set(train_keys) for key in keys])
        te = ~tr
        w = _fit(pairs, phi, target, tr, init, config)
        d_fit = predict(phi[te].double(), w, config.formulation).numpy()
        # scale-free pooling: each fold's distances are standardised on its training pairs
        d_tr = predict(phi[tr].double(), w, config.formulation).numpy()
        pooled[te.numpy()] = (d_fit - d_tr.mean()) / (d_tr.std() + 1e-12)
        test_pairs = [p for p, m in zip(pairs, te) if m]
        ev_fit = evaluate_distances(test_pairs, d_fit, table)
        ev_init = evaluate_distances(test_pairs, init_d[te.numpy()], table)
        rows.append({"fold": fold, "held_out": list(test_keys), "fitted": {s: ev_fit[s] for s in KEEP},
                     "initial": {s: ev_init[s] for s in KEEP}})
    summary = {}
    for which in ("fitted", "initial"):
        for stat in KEEP:
            vals = [r[which][stat] for r in rows if np.isfinite(r[which][stat])]
            summary[f"{which}_{stat}"] = float(np.mean(vals)) if vals else float("nan")
    ev_pooled = evaluate_distances(pairs, pooled, table)
    ev_all_init = evaluate_distances(pairs, init_d, table)
    summary.update({f"pooled_fitted_{s}": ev_pooled[s] for s in KEEP})
    summary.update({f"pooled_initial_{s}": ev_all_init[s] for s in KEEP})
    return {"folds": rows, "mean": summary}


def leave_one_type_out(pairs, phi, table, init, config: FitConfig) -> List[dict]:
    """For each distortion type ``t``: fit without ``t``, then evaluate on *all* cells (``srcc_all``: can
    the model place the unseen type among the others?) and on the other types' cells (``srcc_rest``)."""
    target = human_targets(pairs, table)
    out = []
    for t in sorted({p.dist_type for p in pairs}):
        tr = torch.tensor([p.dist_type != t for p in pairs])
        w = _fit(pairs, phi, target, tr, init, config)
        d = predict(phi.double(), w, config.formulation).numpy()
        ev_all = evaluate_distances(pairs, d, table)
        rest = [i for i, m in enumerate(tr.tolist()) if m]
        ev_rest = evaluate_distances([pairs[i] for i in rest], d[rest], table)
        out.append({"type": t, "srcc_all": ev_all["srcc"], "srcc_rest": ev_rest["srcc"], "weights": w.tolist()})
    return out


def leave_one_type_out_fixed(pairs, distances: Sequence[float], table) -> List[dict]:
    """The same figures for a metric that is not refitted (a peer or shipped weights)."""
    d = np.asarray(distances, dtype=float)
    ev_all = evaluate_distances(pairs, d, table)
    out = []
    for t in sorted({p.dist_type for p in pairs}):
        rest = [i for i, p in enumerate(pairs) if p.dist_type != t]
        ev_rest = evaluate_distances([pairs[i] for i in rest], d[rest], table)
        out.append({"type": t, "srcc_all": ev_all["srcc"], "srcc_rest": ev_rest["srcc"]})
    return out
