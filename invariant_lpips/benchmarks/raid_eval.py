"""RAID against its human data: the MLDS curves *and* the 40,320 raw trials, for any registry metric.

Works on a real RAID image folder or on the reconstruction of
:mod:`invariant_lpips.distortions.raid_kodak` (``invariant-lpips make-dataset raid-kodak``).

**Scoring** (:func:`score_metric`): a metric's distance between two stimuli of the same (image,
distortion) curve, for every level pair the analysis needs: ``(1, L)`` for the curves and the pairs
shown in the trials (41 pairs per curve in RAID, 96 curves). Distances are cached per metric in
``scores/<metric>.csv`` (appended and fsynced after each curve; a rerun scores only what is missing,
so adding one metric scores only that one). Every metric is scored through the one protocol
(:mod:`invariant_lpips.metric.protocol`): each stimulus of a curve goes through ``features`` once, then
``distance`` pairs them. Our variants whose features are pooled statistics read them through the one
:class:`~invariant_lpips.features.cache.FeatureCache` instead.

**Figures** (:func:`raid_figures`), every table with three baselines: the *level index* (``|la - lb|``;
``L`` on the curves), MSE (a metric, scored like the others) and the *MLDS ceiling* (the fitted curves'
own ``|psi_a - psi_b|``; in sample: the curves were fitted to these trials, and on the curves it is the
Response itself, SRCC 1):

* curve level: SRCC of d(level 1, level L) against ``Response`` pooled over the distorted rows (864),
  per distortion (216 each), and the mean of the per-curve SRCCs (10 levels each, 96 curves);
* trial level: % of trials in which the metric orders the two pairs as the observer did (a tie counts
  1/2), per distortion and overall, on all trials and on the trials with no level-1 image.
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..data.io import load_image
from ..data.raid import RAID_KIND_ORDER, RaidCurvePoint, RaidTrial, raid_stimulus
from ..data.correlation import srcc_or_nan
from ..features.cache import FeatureCache, default_cache_root, stack
from ..metric.protocol import cat, take
from ..metric.registry import MetricAdapter, build_metric
from ..progress import progress_bar
from .persistence import AppendCSV, read_scores

__all__ = ["Pair", "needed_pairs", "score_metric", "read_pair_scores", "stimuli_fingerprint",
           "raid_figures", "trial_agreement", "curve_figures", "LEVEL_INDEX", "MLDS_CEILING"]

Pair = Tuple[int, str, int, int]  # (image, kind, level_a, level_b), level_a < level_b
LEVEL_INDEX = "level index"
MLDS_CEILING = "MLDS ceiling (in-sample)"
_CSV_COLS = ["image", "kind", "level_a", "level_b", "distance"]


def _pair(image: int, kind: str, a: int, b: int) -> Pair:
    return (int(image), kind, min(int(a), int(b)), max(int(a), int(b)))


def needed_pairs(curves: Sequence[RaidCurvePoint], trials: Sequence[RaidTrial]) -> List[Pair]:
    """Every level pair the figures need: (1, L) of each curve row with L >= 2 and both pairs of every
    trial; sorted by (image, distortion in RAID's order, levels)."""
    out = {_pair(c.image, c.kind, 1, c.level) for c in curves if c.level >= 2}
    for t in trials:
        out.add(_pair(t.image, t.kind, t.l11, t.l12))
        out.add(_pair(t.image, t.kind, t.l21, t.l22))
    order = {k: i for i, k in enumerate(RAID_KIND_ORDER)}
    return sorted(out, key=lambda p: (p[0], order.get(p[1], 99), p[1], p[2], p[3]))


def _by_curve(pairs: Iterable[Pair]) -> "OrderedDict[Tuple[int, str], List[Pair]]":
    out: "OrderedDict[Tuple[int, str], List[Pair]]" = OrderedDict()
    for p in pairs:
        out.setdefault((p[0], p[1]), []).append(p)
    return out


# =============================================================================== scoring


def stimuli_fingerprint(images_dir: Union[str, Path], pairs: Sequence[Pair]) -> str:
    """sha256 over the names and contents of the stimuli the pairs use."""
    files = sorted({raid_stimulus(images_dir, k, i, lv).name for i, k, a, b in pairs for lv in (a, b)})
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode())
        h.update(hashlib.sha256((Path(images_dir) / name).read_bytes()).digest())
    return h.hexdigest()


def _scores_path(scores_dir: Path, name: str) -> Path:
    return scores_dir / (name.replace(":", "_").replace("/", "_") + ".csv")


def read_pair_scores(path: Union[str, Path]) -> Dict[Pair, float]:
    """A scores CSV -> {pair: distance}; a torn last line is ignored (the one score file:
    :func:`~invariant_lpips.benchmarks.persistence.read_scores`)."""
    rows, _clean = read_scores(path, _CSV_COLS, ("image", "kind", "level_a", "level_b"))
    return {_pair(int(r["image"]), r["kind"], int(r["level_a"]), int(r["level_b"])): float(r["distance"])
            for r in rows}


def _append(path: Path, rows: List[Tuple[Pair, float]]) -> None:
    with AppendCSV(path, _CSV_COLS) as out:
        out.append([[i, k, a, b, repr(float(d))] for (i, k, a, b), d in rows])


def _meta_ok(meta_path: Path, fingerprint: str, name: str) -> None:
    import json

    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("stimuli_sha256") != fingerprint:
            raise RuntimeError(f"{meta_path}: the scores of {name!r} were computed on other stimuli "
                               f"({meta.get('stimuli_sha256', '?')[:12]} != {fingerprint[:12]}); "
                               "use resume=False (--no-resume) or another output folder")


def score_metric(metric: Union[str, MetricAdapter], images_dir: Union[str, Path], pairs: Sequence[Pair],
                 scores_dir: Union[str, Path], device: Union[str, torch.device] = "cpu",
                 cache_root: Union[str, Path, None] = None, chunk: int = 4, resume: bool = True,
                 progress: bool = True, fingerprint: Optional[str] = None) -> Dict[Pair, float]:
    """Distances of ``metric`` on ``pairs`` of stimuli in ``images_dir``, cached in ``scores_dir``.

    Returns ``{pair: distance}`` (the metric's own orientation). Scores already in
    ``scores_dir/<metric>.csv`` are reused when its ``.json`` says they came from the same stimuli.
    """
    import json

    device = torch.device(device)
    scores_dir = Path(scores_dir)
    scores_dir.mkdir(parents=True, exist_ok=True)
    adapter = build_metric(metric, device) if isinstance(metric, str) else metric
    name = adapter.name
    path = _scores_path(scores_dir, name)
    meta_path = path.with_suffix(".json")
    fingerprint = fingerprint or stimuli_fingerprint(images_dir, pairs)
    if not resume:
        for p in (path, meta_path):
            if p.is_file():
                p.unlink()
    _meta_ok(meta_path, fingerprint, name)
    done = read_pair_scores(path)
    todo = _by_curve(p for p in pairs if p not in done)
    meta = {"metric": name, "kind": adapter.kind, "lower_is_better": adapter.lower_is_better,
            "stimuli_sha256": fingerprint, "images_dir": str(images_dir)}
    if not todo:
        return {p: done[p] for p in pairs}
    meta_path.write_text(json.dumps(meta, indent=1))
    adapter.eval()
    cache = None
    if adapter.statistics_cached:
        cache = FeatureCache(adapter.module.variant, root=Path(cache_root) if cache_root else default_cache_root(),
                             device=device, trunk=adapter.trunk)
        terms = list(adapter.module.terms)
    passes = 0
    bar = progress_bar(total=sum(len(v) for v in todo.values()), desc=f"raid {name}", disable=not progress)
    try:
        with torch.inference_mode():
            for (image, kind), cps in todo.items():
                levels = sorted({lv for p in cps for lv in p[2:]})
                files = {lv: str(raid_stimulus(images_dir, kind, image, lv)) for lv in levels}
                if cache is not None:
                    stats = cache.features_for_files([files[lv] for lv in levels], batch_size=2)
                    feats = {lv: {k: v.to(device) for k, v in stack([stats[files[lv]]], terms).items()}
                             for lv in levels}
                    cache.clear_memory()
                else:  # each stimulus through the metric's features once
                    feats = {}
                    for s in range(0, len(levels), chunk):
                        part = levels[s:s + chunk]
                        x = torch.cat([load_image(files[lv]) for lv in part]).to(device)
                        f = adapter.features(x.contiguous(memory_format=torch.channels_last))
                        feats.update((lv, take(f, [j])) for j, lv in enumerate(part))
                        passes += len(part)
                vals = []
                for s in range(0, len(cps), chunk):
                    part = cps[s:s + chunk]
                    d = adapter.distance(cat([feats[p[2]] for p in part]), cat([feats[p[3]] for p in part]))
                    vals += d.detach().float().reshape(-1).cpu().numpy().tolist()
                if len(vals) != len(cps) or not all(math.isfinite(v) for v in vals):
                    raise ValueError(f"metric {name!r} gave {len(vals)} values (finite: "
                                     f"{all(math.isfinite(v) for v in vals)}) for {len(cps)} pairs of "
                                     f"image {image} {kind}")
                _append(path, list(zip(cps, vals)))
                done.update(zip(cps, vals))
                bar.update(len(cps))
    finally:
        bar.close()
    meta["feature_passes"] = passes
    meta_path.write_text(json.dumps(meta, indent=1))
    return {p: done[p] for p in pairs}


# =============================================================================== figures


def curve_figures(curves: Sequence[RaidCurvePoint], value: Callable[[RaidCurvePoint], float]) -> Dict[str, Any]:
    """Curve-level SRCCs of ``value(point)`` (d(level 1, level L), oriented: higher = more different)
    against Response: ``pooled`` (levels >= 2), ``per_distortion``, ``per_curve_mean`` (+ per distortion,
    over each curve's levels; curves where either side is constant are left out and counted)."""
    pts = list(curves)
    hi = [c for c in pts if c.level >= 2]
    out: Dict[str, Any] = {"n_pooled": len(hi), "pooled": srcc_or_nan([value(c) for c in hi], [c.response for c in hi])}
    kinds = [k for k in RAID_KIND_ORDER if any(c.kind == k for c in pts)]
    out["per_distortion"] = {k: srcc_or_nan([value(c) for c in hi if c.kind == k], [c.response for c in hi if c.kind == k])
                             for k in kinds}
    by: Dict[Tuple[int, str], List[RaidCurvePoint]] = {}
    for c in pts:
        by.setdefault((c.image, c.kind), []).append(c)
    per: Dict[str, List[float]] = {k: [] for k in kinds}
    skipped = 0
    for (_i, k), cs in by.items():
        s = srcc_or_nan([value(c) for c in cs], [c.response for c in cs])
        if math.isfinite(s):
            per[k].append(s)
        else:
            skipped += 1
    allc = [s for v in per.values() for s in v]
    out["per_curve_mean"] = float(np.mean(allc)) if allc else float("nan")
    out["per_curve_mean_per_distortion"] = {k: (float(np.mean(v)) if v else float("nan")) for k, v in per.items()}
    out["n_curves"] = len(allc)
    out["n_curves_constant"] = skipped
    return out


def trial_agreement(trials: Sequence[RaidTrial], dist: Callable[[Pair], float]) -> Dict[str, Any]:
    """% of trials where ``dist`` (higher = more different) orders the two pairs as the observer did;
    a tie counts 1/2. Overall and per distortion, on all trials and on those with no level-1 image."""

    def block(ts: List[RaidTrial]) -> Dict[str, Any]:
        if not ts:
            return {"agreement": float("nan"), "n": 0, "ties": 0}
        score, ties = 0.0, 0
        for t in ts:
            d1 = dist(_pair(t.image, t.kind, t.l11, t.l12))
            d2 = dist(_pair(t.image, t.kind, t.l21, t.l22))
            if d1 == d2:
                score += 0.5
                ties += 1
            elif (d1 > d2) == (t.answer == 1):
                score += 1.0
        return {"agreement": 100.0 * score / len(ts), "n": len(ts), "ties": ties}

    ts = list(trials)
    kinds = [k for k in RAID_KIND_ORDER if any(t.kind == k for t in ts)]
    out: Dict[str, Any] = {}
    for label, sel in (("all", ts), ("no_level_1", [t for t in ts if not t.has_level_1])):
        out[label] = {"overall": block(sel), "per_distortion": {k: block([t for t in sel if t.kind == k])
                                                                for k in kinds}}
    return out


def raid_figures(curves: Sequence[RaidCurvePoint], trials: Sequence[RaidTrial],
                 distances: Mapping[str, Mapping[Pair, float]],
                 lower_is_better: Optional[Mapping[str, bool]] = None) -> Dict[str, Any]:
    """Curve- and trial-level figures for each metric (``{name: {pair: distance}}``) and the baselines
    (level index, MLDS ceiling). A similarity (``lower_is_better[name]`` False) is negated first."""
    lib = dict(lower_is_better or {})
    psi = {(c.image, c.kind, c.level): c.curve_value for c in curves}

    def level_index(p: Pair) -> float:
        return float(p[3] - p[2])

    def ceiling(p: Pair) -> float:
        return abs(psi[(p[0], p[1], p[3])] - psi[(p[0], p[1], p[2])])

    def d1L(fn: Callable[[Pair], float]) -> Callable[[RaidCurvePoint], float]:
        return lambda c: 0.0 if c.level == 1 else fn(_pair(c.image, c.kind, 1, c.level))

    rows: Dict[str, Any] = OrderedDict()
    rows[LEVEL_INDEX] = {"baseline": True, "curve": curve_figures(curves, d1L(level_index)),
                         "trial": trial_agreement(trials, level_index)}
    rows[MLDS_CEILING] = {"baseline": True, "curve": curve_figures(curves, lambda c: c.response),
                          "trial": trial_agreement(trials, ceiling)}
    for name, vals in distances.items():
        sign = 1.0 if lib.get(name, True) else -1.0
        missing = [p for p in needed_pairs(curves, trials) if p not in vals]
        if missing:
            raise ValueError(f"metric {name!r} lacks {len(missing)} pair distances, e.g. {missing[0]}")

        def fn(p: Pair, vals=vals, sign=sign) -> float:
            return sign * float(vals[p])

        rows[name] = {"baseline": name == "mse", "curve": curve_figures(curves, d1L(fn)),
                      "trial": trial_agreement(trials, fn)}
    return {"rows": rows, "n_trials": len(trials), "n_curve_rows": len(curves),
            "n_trials_no_level_1": sum(1 for t in trials if not t.has_level_1)}
