"""Calibration and evaluation against type-level human scores (the KADID dev proxy).

``kadid_dev_type_level.csv`` gives, for 13 of KADID-10k's 25 distortion types, the mean human DMOS of
each (type, level) cell over KADID's 81 references. Applying the same distortions to other
references (:func:`invariant_lpips.distortions.write_kadid_style_dataset`) gives a *generated set*;
a metric's mean distance per cell is then correlated with the human means (see
:func:`invariant_lpips.distortions.type_level.evaluate_type_level`).

To calibrate, every generated pair takes its cell's human mean as target; k-fold *by reference*
keeps the references of the evaluation fold out of training.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..distortions.type_level import evaluate_type_level
from .features import FeatureCache, stack_pair_features
from .fit import FitConfig, fit_weights, predict


@dataclass
class GeneratedPair:
    ref_id: str
    dist_type: int
    level: int
    ref_path: Path
    dist_path: Path


def read_generated_set(root, refs: Optional[Sequence[str]] = None,
                       types: Optional[Sequence[int]] = None) -> List[GeneratedPair]:
    """Pairs of a KADID-layout folder (``dmos.csv`` + ``images/``), human scores not needed."""
    root = Path(root)
    table = root / "dmos.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: expected a KADID-layout folder (images/ + dmos.csv), "
                                "e.g. from 'invariant-lpips make-dataset'")
    out = []
    with open(table, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"dist_img", "ref_img"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{table}: missing columns {sorted(missing)} (have {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            name = Path(row["dist_img"]).stem
            parts = name.split("_")
            if len(parts) != 3:
                raise ValueError(f"{table}:{line}: dist_img {row['dist_img']!r} is not I<ref>_<type>_<level>")
            ref_id, t, lvl = parts[0], int(parts[1]), int(parts[2])
            if refs is not None and ref_id not in refs:
                continue
            if types is not None and t not in types:
                continue
            out.append(GeneratedPair(ref_id, t, lvl, root / "images" / row["ref_img"], root / "images" / row["dist_img"]))
    if not out:
        raise ValueError(f"{table}: no pairs left after filtering (refs={refs}, types={types})")
    return out


def pair_features(cache: FeatureCache, pairs: Sequence[GeneratedPair], statistic: str,
                  batch_size: int = 8, progress: bool = False, num_workers: int = 0) -> torch.Tensor:
    """(P, D) squared pooled differences for each pair (trunk features cached per image)."""
    paths = sorted({str(p.ref_path) for p in pairs} | {str(p.dist_path) for p in pairs})
    feats = cache.features_for_files(paths, batch_size=batch_size, progress=progress, num_workers=num_workers)
    f0 = [feats[str(p.ref_path)] for p in pairs]
    f1 = [feats[str(p.dist_path)] for p in pairs]
    return stack_pair_features(f0, f1, statistic, cache.variant.taps)


def evaluate_distances(pairs: Sequence[GeneratedPair], distances: Sequence[float], table) -> dict:
    return evaluate_type_level(table, [(p.ref_id, p.dist_type, p.level, float(d)) for p, d in zip(pairs, distances)])


def human_targets(pairs: Sequence[GeneratedPair], table: Dict[Tuple[int, int], float]) -> torch.Tensor:
    """Impairment target per pair: minus the cell's mean DMOS (DMOS: higher = better).

    ``table``: ``{(type, level): mean DMOS}`` from :func:`invariant_lpips.distortions.type_level.read_type_level_table`.
    """
    cell = {(int(t), int(lvl)): float(v) for (t, lvl), v in table.items()}
    missing = sorted({(p.dist_type, p.level) for p in pairs} - set(cell))
    if missing:
        raise ValueError(f"the type-level table has no human score for cells {missing[:6]}; filter the pairs "
                         "to the table's types")
    return torch.tensor([-cell[(p.dist_type, p.level)] for p in pairs], dtype=torch.float64)


def kfold_type_level(pairs, phi, table, init, config: FitConfig, k: int = 4, seed: int = 0,
                     by: str = "reference") -> dict:
    """k-fold cross-validation of the calibration on a generated set.

    ``by="reference"``: the held-out fold's *references* were never trained on (guards against
    fitting image content). ``by="type"``: the held-out fold's *distortion types* were never trained
    on (guards against fitting the types of the table, the honest estimate for unseen types).
    Returns per-fold and mean type-level correlations for the initial and the fitted weights.
    """
    from ..data.datasets import kfold_by_reference

    if by not in ("reference", "type"):
        raise ValueError(f"by must be 'reference' or 'type', got {by!r}")
    target = human_targets(pairs, table)
    refs = [p.ref_id for p in pairs]
    keys = refs if by == "reference" else [f"type{p.dist_type:02d}" for p in pairs]
    folds = kfold_by_reference(sorted(set(keys)), k, seed)
    rows = []
    for fold, (train_keys, test_keys) in enumerate(folds):
        tr = torch.tensor([key in set(train_keys) for key in keys])
        te = ~tr
        res = fit_weights(phi[tr], target[tr], [r for r, m in zip(refs, tr) if m], init, config)
        test_pairs = [p for p, m in zip(pairs, te) if m]
        d_fit = predict(phi[te].double(), res.weights.double(), config.formulation).numpy()
        d_init = predict(phi[te].double(), init.double(), config.formulation).numpy()
        ev_fit = evaluate_distances(test_pairs, d_fit, table)
        ev_init = evaluate_distances(test_pairs, d_init, table)
        keep = ("srcc", "krcc", "plcc", "mean_per_type_srcc")
        rows.append({"fold": fold, "held_out": list(test_keys), "fitted": {s: ev_fit[s] for s in keep},
                     "initial": {s: ev_init[s] for s in keep}, "best_step": res.best_step})
    summary = {}
    for which in ("fitted", "initial"):
        for stat in ("srcc", "krcc", "plcc", "mean_per_type_srcc"):
            vals = [r[which][stat] for r in rows]
            summary[f"{which}_{stat}"] = float(np.mean(vals))
    return {"folds": rows, "mean": summary}
