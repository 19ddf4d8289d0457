"""End-to-end calibration of an InvariantLPIPS variant on a human-judgement dataset.

``calibrate(dataset, variant, loss, ...)`` extracts (and caches) pooled trunk features of every image
once, builds per-pair feature vectors, fits non-negative per-channel weights
(:func:`~invariant_lpips.calibration.fit.fit_weights`) and reports SRCC/KRCC/PLCC on a held-out
split of references, and optionally k-fold by reference. The result is saved as a safetensors file
with a manifest, usable as ``InvariantLPIPS(variant=V, weights=FILE)``.

Supported inputs: MOS/DMOS datasets (KADID-10k, TID2008/2013, CSIQ, RAID) from
:func:`invariant_lpips.data.datasets.load_dataset`, BAPPS 2AFC (loss ``2afc``), and generated sets
paired with a type-level table (the KADID dev proxy, see :mod:`.type_folds`).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..data.datasets import TripletRecord, kfold_by_reference
from ..data.correlation import correlations, two_afc_score
from ..features.cache import FeatureCache
from ..features.variants import Variant, get_variant
from .fit import FitConfig, fit_weights, predict
from .pairs import design_matrix, fit_formulation, initial_parameters, parameters_to_weights, variant_tensors


def dataset_pair_features(dataset, cache: FeatureCache, variant: Variant, tensors, progress: bool = True,
                          batch_size: int = 8):
    """For a pair dataset: (phi, impairment target (P,), groups). For BAPPS 2AFC: (phi0, phi1, judge, groups)."""
    recs = list(dataset.records)
    if recs and isinstance(recs[0], TripletRecord):
        paths = sorted({str(p) for r in recs for p in (r.ref_path, r.p0_path, r.p1_path)})
        feats = cache.features_for_files(paths, batch_size=batch_size, progress=progress)
        ref = [feats[str(r.ref_path)] for r in recs]
        phi0 = design_matrix(ref, [feats[str(r.p0_path)] for r in recs], variant, tensors)
        phi1 = design_matrix(ref, [feats[str(r.p1_path)] for r in recs], variant, tensors)
        judge = torch.tensor([r.judge for r in recs], dtype=torch.float64)
        return phi0, phi1, judge, [r.ref_id for r in recs]
    missing = [r.dist_path for r in recs if r.score is None]
    if missing:
        raise ValueError(f"{len(missing)} pairs have no human score (e.g. {missing[0]}); calibration needs "
                         "scores (a generated set needs --table, the type-level human means)")
    paths = sorted({str(p) for r in recs for p in (r.ref_path, r.dist_path)})
    feats = cache.features_for_files(paths, batch_size=batch_size, progress=progress)
    phi = design_matrix([feats[str(r.ref_path)] for r in recs], [feats[str(r.dist_path)] for r in recs],
                        variant, tensors)
    sign = -1.0 if dataset.higher_is_better else 1.0
    target = torch.tensor([sign * r.score for r in recs], dtype=torch.float64)
    return phi, target, [r.ref_id for r in recs]


def _correlations(d: np.ndarray, target: np.ndarray) -> Dict[str, float]:
    # target is an impairment (higher = worse), d a distance: agreement is positive correlation
    c = correlations(d, target, human_higher_is_better=False, metric_lower_is_better=True)
    return {"SRCC": c["SRCC"], "KRCC": c["KRCC"], "PLCC": c["PLCC"]}


def calibrate(
    dataset,
    variant: Union[str, Variant],
    loss: str = "pearson",
    *,
    init: str = "shipped",
    test_fraction: float = 0.2,
    folds: int = 0,
    config: Optional[FitConfig] = None,
    cache_root=None,
    device: str = "cpu",
    progress: bool = True,
    seed: int = 0,
    trunk=None,
    size: Optional[Sequence[int]] = None,
) -> dict:
    """Fit weights on ``dataset``; returns ``{"weights": {tap: (C,), ...}, "report": {...}}``.

    The report holds SRCC/KRCC/PLCC (or 2AFC agreement) on a held-out ``test_fraction`` of the
    references, for the initial and the fitted weights, and k-fold-by-reference means when ``folds``.
    The returned weights are refitted on all references. ``size`` = (width, height) resizes every
    image before the trunk (faster calibration on a CPU; the weights are then used at any size).
    ``mean-spread`` variants fit one scale per term (a few dozen parameters); the others per-channel weights.
    """
    v = variant if isinstance(variant, Variant) else get_variant(variant)
    if v.registered:
        raise ValueError(f"variant {v.name!r} has registered terms {list(v.registered)}, which compare both images "
                         "after registration and so cannot be fitted from cached per-image statistics; calibrate a "
                         "variant without them (e.g. 'structure-blur', 'texture-blur' or 'gap-lin-blur')")
    config = config or FitConfig(loss=loss, seed=seed)
    config.loss, config.formulation = loss, fit_formulation(v)
    cache = FeatureCache(v, root=cache_root, device=device, trunk=trunk, size=size)
    tensors = variant_tensors(v, init)
    w0 = initial_parameters(v, tensors)
    data = dataset_pair_features(dataset, cache, v, tensors, progress=progress)
    two_afc = loss == "2afc"
    if two_afc and len(data) != 4:
        raise ValueError("loss '2afc' needs a 2AFC dataset (BAPPS layout)")
    if not two_afc and len(data) == 4:
        raise ValueError("a 2AFC dataset needs --loss 2afc")
    if two_afc:
        phi0, phi1, target, groups = data
    else:
        phi0, target, groups = data
        phi1 = None

    def evaluate(w, mask):
        d0 = predict(phi0[mask].double(), w.double(), config.formulation).numpy()
        if two_afc:
            d1 = predict(phi1[mask].double(), w.double(), config.formulation).numpy()
            return {"2AFC": float(two_afc_score(d0, d1, target[mask].numpy()))}
        return _correlations(d0, target[mask].numpy())

    def fit(mask):
        return fit_weights(phi0[mask], target[mask], [g for g, m in zip(groups, mask) if m], w0, config,
                           phi1=phi1[mask] if two_afc else None, progress=progress)

    refs = sorted(set(groups))
    report: Dict[str, object] = {"variant": v.name, "loss": loss, "n_pairs": len(groups), "n_refs": len(refs),
                                 "config": asdict(config), "init": init}
    rng = np.random.default_rng(seed)
    n_test = int(round(test_fraction * len(refs)))
    if n_test and len(refs) - n_test >= 2:
        test_refs = set(rng.permutation(refs)[:n_test].tolist())
        te = torch.tensor([g in test_refs for g in groups])
        res = fit(~te)
        report["holdout"] = {"test_refs": sorted(test_refs), "initial": evaluate(w0, te),
                             "fitted": evaluate(res.weights, te)}
    if folds:
        rows = []
        for train_refs, test_refs in kfold_by_reference(refs, folds, seed):
            te = torch.tensor([g in set(test_refs) for g in groups])
            res = fit(~te)
            rows.append({"initial": evaluate(w0, te), "fitted": evaluate(res.weights, te)})
        report["kfold"] = {
            which: {k: float(np.mean([r[which][k] for r in rows])) for k in rows[0][which]}
            for which in ("initial", "fitted")
        }
        report["kfold"]["folds"] = rows
    everything = torch.ones(len(groups), dtype=torch.bool)
    final = fit(everything)
    report["train"] = {"initial": evaluate(w0, everything), "fitted": evaluate(final.weights, everything),
                       "best_step": final.best_step}
    return {"weights": parameters_to_weights(v, final.weights, tensors), "report": report}
