"""RAID analysis: how well a metric follows the human MLDS curves of affine distortions.

RAID holds, for 24 reference images and 4 distortions (``rot``, ``trans``, ``scale``, ``gn``), 10
levels each (level 01 = undistorted) with the human MLDS ``Response`` (d' units, higher = more
distortion seen) and the MLDS ``Curve_Value``. A pooled SRCC against ``Response`` is easy to inflate:
a "metric" that only knows the level index already gets 0.865 on RAID (the **level-index oracle**,
computed here from the data and printed beside the metrics), because within every distortion the
human response grows with the level. The informative figures are therefore

* ``per_distortion``: SRCC within each distortion over levels >= 2 (24 refs x 9 levels);
* ``per_curve``: SRCC over the 10 levels of each (reference, distortion) curve, averaged;
* ``cross_distortion``: SRCC *within each level* across the four distortions and the references,
  averaged over levels 2..10 -- the level index is constant there, so the oracle scores nothing
  and only a metric that puts rotations, shifts, scalings and noise on the human scale does well.

:func:`raid_analysis` returns all of them (for the metrics and the oracle) and, given ``out_dir``,
plots each metric's mean curve (normalised to [0, 1] per curve, like MLDS) beside the human MLDS
curves, one panel per distortion (``raid_curves.png``; matplotlib imported lazily).

This is the runner's RAID mode (reference vs distorted image). Scoring against RAID's 40,320 raw
trials, which needs distances between any two levels of a curve, is :mod:`.raid_eval` /
:mod:`.raid_report` (``benchmarks/raid_table.py``; docs/raid.md).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..data.correlation import srcc_or_nan

__all__ = ["RAID_DISTORTIONS", "level_index_oracle", "raid_analysis", "raid_markdown", "plot_raid_curves",
           "ORACLE_NAME"]

RAID_DISTORTIONS = ("rot", "trans", "scale", "gn")
ORACLE_NAME = "level-index oracle"
MIN_LEVEL = 2  # level 01 is the undistorted image


def _nanmean(v: Sequence[float]) -> float:
    a = np.asarray([x for x in v if x is not None and math.isfinite(x)], dtype=np.float64)
    return float(a.mean()) if a.size else float("nan")


def _nanmedian(v: Sequence[float]) -> float:
    a = np.asarray([x for x in v if x is not None and math.isfinite(x)], dtype=np.float64)
    return float(np.median(a)) if a.size else float("nan")


def _figures(recs: List[Any], values: Mapping[int, float], sign: float) -> Dict[str, Any]:
    """All RAID figures for one 'metric' given as {record index: value}, oriented by ``sign``."""
    idx = [i for i in values if recs[i].score is not None and recs[i].level is not None]
    lvl = {i: recs[i].level for i in idx}
    v = {i: sign * float(values[i]) for i in idx}
    resp = {i: float(recs[i].score) for i in idx}
    hi = [i for i in idx if lvl[i] >= MIN_LEVEL]
    out: Dict[str, Any] = {"n_pooled": len(hi), "pooled_srcc": srcc_or_nan([v[i] for i in hi], [resp[i] for i in hi])}
    types = sorted({recs[i].dist_type for i in idx}, key=lambda t: (RAID_DISTORTIONS.index(t)
                                                                     if t in RAID_DISTORTIONS else 99, t))
    out["per_distortion"] = {}
    for t in types:
        sel = [i for i in hi if recs[i].dist_type == t]
        out["per_distortion"][t] = srcc_or_nan([v[i] for i in sel], [resp[i] for i in sel])
    out["per_distortion_mean"] = _nanmean(list(out["per_distortion"].values()))
    curves: Dict[tuple, List[int]] = {}
    for i in idx:
        curves.setdefault((recs[i].ref_id, recs[i].dist_type), []).append(i)
    per_curve: Dict[str, List[float]] = {t: [] for t in types}
    for (_ref, t), sel in curves.items():
        x, y = [v[i] for i in sel], [resp[i] for i in sel]
        if len(sel) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            per_curve[t].append(srcc_or_nan(x, y))
    out["per_curve"] = {t: {"mean": _nanmean(s), "median": _nanmedian(s), "n_curves": len(s)}
                        for t, s in per_curve.items()}
    all_curves = [s for vals in per_curve.values() for s in vals]
    out["per_curve_mean"] = _nanmean(all_curves)
    per_level: Dict[int, float] = {}
    for lv in sorted({lvl[i] for i in hi}):
        sel = [i for i in hi if lvl[i] == lv]
        x, y = [v[i] for i in sel], [resp[i] for i in sel]
        per_level[lv] = srcc_or_nan(x, y) if len(sel) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0 else float("nan")
    out["cross_distortion_per_level"] = per_level
    out["cross_distortion"] = _nanmean(list(per_level.values()))
    return out


def level_index_oracle(records: Sequence[Any]) -> Dict[str, Any]:
    """The RAID figures of a 'metric' equal to the level index (the floor any metric must beat)."""
    recs = list(records)
    return _figures(recs, {i: float(r.level) for i, r in enumerate(recs) if r.level is not None}, 1.0)


def raid_analysis(
    records: Sequence[Any],
    distances: Mapping[str, Mapping[int, float]],
    out_dir: Union[str, Path, None] = None,
    lower_is_better: Optional[Mapping[str, bool]] = None,
) -> Dict[str, Any]:
    """RAID figures for each metric and for the level-index oracle.

    Args:
        records: the RAID dataset's :class:`~invariant_lpips.data.datasets.PairRecord` list
            (``score`` = Response, ``level`` 1..10, ``dist_type`` rot/trans/scale/gn,
            ``extra['curve_value']`` the MLDS curve value).
        distances: ``{metric: {record index: value}}``.
        out_dir: where to write ``raid_curves.png`` (None: no plot).
        lower_is_better: per metric (default True: a distance). Response grows with the distortion,
            so a distance is used as is and a similarity (PSNR) is negated: positive = agreement.

    Returns:
        ``{"oracle": {...}, "metrics": {name: {...}}, "note": ..., "plot": path or None}`` where each
        entry has ``pooled_srcc`` (levels >= 2), ``per_distortion``, ``per_distortion_mean``,
        ``per_curve`` (mean/median SRCC over each distortion's curves), ``per_curve_mean``,
        ``cross_distortion`` (mean within-level SRCC, levels 2..10) and ``cross_distortion_per_level``.
    """
    recs = list(records)
    lib = dict(lower_is_better or {})
    oracle = level_index_oracle(recs)
    result: Dict[str, Any] = {
        "oracle_name": ORACLE_NAME,
        "oracle": oracle,
        "metrics": {},
        "note": (f"a metric that only knows the level index gets a pooled SRCC of {oracle['pooled_srcc']:.3f} "
                 "against Response on these data (levels >= 2); compare the per-distortion, per-curve and "
                 "cross-distortion (within-level) figures, where the level index does not help"),
        "plot": None,
    }
    for name, vals in distances.items():
        sign = 1.0 if lib.get(name, True) else -1.0
        result["metrics"][name] = _figures(recs, vals, sign)
    if out_dir is not None and distances:
        try:
            path = plot_raid_curves(recs, distances, Path(out_dir) / "raid_curves.png", lower_is_better=lib)
            result["plot"] = str(path)
        except ImportError as exc:  # matplotlib is optional
            result["plot_error"] = f"no plot: {exc}"
    return result


def _normalised_mean_curves(recs: List[Any], values: Mapping[int, float], sign: float):
    """{dist_type: (levels, mean over references of the per-curve [0, 1]-normalised values)}."""
    curves: Dict[tuple, Dict[int, float]] = {}
    for i, val in values.items():
        r = recs[i]
        if r.level is None:
            continue
        curves.setdefault((r.ref_id, r.dist_type), {})[r.level] = sign * float(val)
    acc: Dict[str, Dict[int, List[float]]] = {}
    for (_ref, t), c in curves.items():
        lv = sorted(c)
        arr = np.array([c[k] for k in lv], dtype=np.float64)
        span = arr.max() - arr.min()
        arr = (arr - arr.min()) / span if span > 0 else np.zeros_like(arr)
        for k, a in zip(lv, arr):
            acc.setdefault(t, {}).setdefault(k, []).append(float(a))
    return {t: (sorted(d), [float(np.mean(d[k])) for k in sorted(d)]) for t, d in acc.items()}


def plot_curve_panels(human: Mapping[str, Tuple[Sequence[float], Sequence[float]]],
                      metrics: Mapping[str, Mapping[str, Tuple[Sequence[float], Sequence[float]]]],
                      path: Union[str, Path], ylabel: str, title: str = "") -> Path:
    """Draw one panel per distortion (RAID's order first): the human curve in black and each metric's curve,
    as ``{kind: (levels, values)}``. The one RAID plot of the package (the runner's RAID mode and
    :mod:`.raid_report` both call it). Returns the written path."""
    import matplotlib  # optional dependency: only the plot needs it

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # optional dependency (after choosing the Agg backend)

    kinds = [t for t in RAID_DISTORTIONS if t in human] + sorted(t for t in human if t not in RAID_DISTORTIONS)
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(3.9 * max(1, len(kinds)), 3.6), squeeze=False)
    for ax, t in zip(axes[0], kinds):
        for n, mc in metrics.items():
            if t in mc:
                ax.plot(mc[t][0], mc[t][1], marker=".", linewidth=1.2, label=n)
        ax.plot(human[t][0], human[t][1], color="black", linewidth=2.5, marker="o", label="human (MLDS)")
        ax.set_title(t)
        ax.set_xlabel("level")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_raid_curves(
    records: Sequence[Any],
    distances: Mapping[str, Mapping[int, float]],
    path: Union[str, Path],
    lower_is_better: Optional[Mapping[str, bool]] = None,
) -> Path:
    """One panel per distortion: human MLDS curve and each metric's curve, normalised to [0, 1] per
    (reference, distortion) curve and averaged over references. Returns the written path."""
    recs = list(records)
    lib = dict(lower_is_better or {})
    human_vals = {i: (r.extra.get("curve_value") if r.extra.get("curve_value") is not None else r.score)
                  for i, r in enumerate(recs) if r.score is not None or r.extra.get("curve_value") is not None}
    human = _normalised_mean_curves(recs, human_vals, 1.0)
    metric_curves = {n: _normalised_mean_curves(recs, v, 1.0 if lib.get(n, True) else -1.0)
                     for n, v in distances.items()}
    return plot_curve_panels(human, metric_curves, path, "normalised curve (mean over refs)")


def _f(v: Optional[float]) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3f}"


def raid_markdown(raid: Mapping[str, Any]) -> List[str]:
    """Markdown lines for the RAID section of ``summary.md``."""
    rows = [(raid.get("oracle_name", ORACLE_NAME), raid["oracle"])] + list(raid["metrics"].items())
    types = list(raid["oracle"].get("per_distortion", {}))
    lines = ["## RAID: affine distortions vs human MLDS responses", "",
             f"Note: {raid.get('note', '')}.", "",
             "Pooled SRCC over levels >= 2; per-distortion SRCC over levels >= 2; per-curve = mean SRCC over "
             "each (reference, distortion) curve's levels; cross-distortion = mean over levels 2..10 of the SRCC "
             "within a level (the level index is constant there).", ""]
    head = "| metric | pooled SRCC | " + " | ".join(types) + " | mean per-dist. | per-curve | cross-distortion |"
    lines += [head, "| --- |" + " ---: |" * (len(types) + 4)]
    for name, fig in rows:
        pd = fig.get("per_distortion", {})
        lines.append(f"| {name} | {_f(fig.get('pooled_srcc'))} | " + " | ".join(_f(pd.get(t)) for t in types)
                     + f" | {_f(fig.get('per_distortion_mean'))} | {_f(fig.get('per_curve_mean'))} | "
                     f"{_f(fig.get('cross_distortion'))} |")
    lines.append("")
    if raid.get("plot"):
        lines += [f"Curves: `{Path(raid['plot']).name}`", ""]
    return lines
