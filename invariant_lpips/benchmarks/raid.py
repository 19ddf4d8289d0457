"""The one RAID analysis: how well a metric follows RAID's human data (MLDS curves and raw trials).

RAID holds, for 24 images and 4 distortions (``rot``, ``trans``, ``scale``, ``gn``), 10 levels each
(level 1 = undistorted) with the human MLDS ``Response`` (d' units, higher = more difference seen),
the MLDS ``Curve_Value``, and 40,320 raw trials (which of two pairs of one curve looked more different).
Both RAID entry points compute their figures here, with :func:`raid_figures`:

* ``invariant-lpips bench --dataset raid`` (the runner's RAID mode: a distance per (reference, level L)
  record, turned into curve points by :func:`curves_from_records`; no trials, so no trial figures);
* ``benchmarks/raid_table.py`` / :mod:`.raid_report` (distances between any two levels of a curve,
  scored on the stimuli: curve *and* trial figures).

Every table has the baselines: the *level index* (``|la - lb|``; ``L`` on the curves), MSE (a metric,
scored like the others, flagged ``baseline``) and the *MLDS ceiling* (the fitted curves' own
``|psi_a - psi_b|``; in sample: the curves were fitted to these trials, and on the curves it is the
Response itself, SRCC 1). A pooled SRCC is easy to inflate: the level index alone reaches 0.865 on RAID,
because within every distortion the response grows with the level. So the figures are:

* curve level (:func:`curve_figures`, value = d(level 1, level L), oriented: higher = more different):
  ``pooled`` SRCC against Response over the distorted rows (levels >= 2), ``per_distortion`` (levels >= 2)
  and its mean ``per_distortion_mean``, ``per_curve_mean`` (the mean of each (image, distortion) curve's
  SRCC over its 10 levels; ``per_curve_mean_per_distortion``), and ``cross_distortion``: the SRCC *within
  each level* across the distortions and images (``cross_distortion_per_level``), averaged over levels
  2..10 -- the level index is constant there (n/a), so only a metric that puts rotations, shifts,
  scalings and noise on the human scale does well;
* trial level (:func:`trial_agreement`, only with trials): % of trials in which the metric orders the
  two pairs as the observer did (a tie counts 1/2), per distortion and overall, on all trials and on
  the trials with no level-1 image.

Every SRCC is :func:`~invariant_lpips.data.correlation.srcc_or_nan`. :func:`raid_markdown` writes the
tables, :func:`readme_table` the compact README table, :func:`raid_plot` the mean curves beside the
human MLDS curves (``raid_curves.png``; matplotlib imported lazily).
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..data.correlation import srcc_or_nan
from ..data.raid import RAID_KIND_ORDER, RaidCurvePoint, RaidTrial

__all__ = ["Pair", "pair", "needed_pairs", "curve_figures", "trial_agreement", "raid_figures",
           "curves_from_records", "raid_markdown", "readme_table", "plot_raid_curves", "raid_plot",
           "LEVEL_INDEX", "MLDS_CEILING", "PAPER_SRCC"]

Pair = Tuple[int, str, int, int]  # (image, kind, level_a, level_b), level_a < level_b
LEVEL_INDEX = "level index"
MLDS_CEILING = "MLDS ceiling (in-sample)"
PAPER_SRCC = 0.95  # the paper's reported RAID Spearman correlation (pooled, on the real RAID images)
MIN_LEVEL = 2  # level 1 is the undistorted image


def pair(image: int, kind: str, a: int, b: int) -> Pair:
    """The key of the distance between levels ``a`` and ``b`` of one curve (levels in order)."""
    return (int(image), kind, min(int(a), int(b)), max(int(a), int(b)))


def needed_pairs(curves: Sequence[RaidCurvePoint], trials: Sequence[RaidTrial] = ()) -> List[Pair]:
    """Every level pair the figures need: (1, L) of each curve row with L >= 2 and both pairs of every
    trial; sorted by (image, distortion in RAID's order, levels)."""
    out = {pair(c.image, c.kind, 1, c.level) for c in curves if c.level >= MIN_LEVEL}
    for t in trials:
        out.add(pair(t.image, t.kind, t.l11, t.l12))
        out.add(pair(t.image, t.kind, t.l21, t.l22))
    order = {k: i for i, k in enumerate(RAID_KIND_ORDER)}
    return sorted(out, key=lambda p: (p[0], order.get(p[1], 99), p[1], p[2], p[3]))


def _kinds(items: Iterable[Any]) -> List[str]:
    present = {x.kind for x in items}
    return [k for k in RAID_KIND_ORDER if k in present] + sorted(present - set(RAID_KIND_ORDER))


def _nanmean(values: Iterable[float]) -> float:
    a = [v for v in values if math.isfinite(v)]
    return float(np.mean(a)) if a else float("nan")


def _identity_below(values: Sequence[float]) -> List[float]:
    """-inf (a similarity's value of an image against itself, negated) -> below every finite value, so
    that ranks stay right and the SRCC helper sees finite numbers."""
    finite = [v for v in values if math.isfinite(v)]
    low = (min(finite) if finite else 0.0) - 1.0
    return [v if math.isfinite(v) else low for v in values]


def _oriented(values: Mapping[Pair, float], distance: bool) -> Callable[[Pair], float]:
    """A metric's pair values, higher = more different (a similarity is negated)."""
    sign = 1.0 if distance else -1.0
    return lambda p: sign * float(values[p])


def _from_level_1(fn: Callable[[Pair], float], distance: bool) -> Callable[[RaidCurvePoint], float]:
    """A curve point's value: ``fn`` of (level 1, level L); level 1 against itself is 0 for a distance and
    -inf (below every level) for a negated similarity."""
    itself = 0.0 if distance else -math.inf
    return lambda c: itself if c.level == 1 else fn(pair(c.image, c.kind, 1, c.level))


# =============================================================================== figures


def curve_figures(curves: Sequence[RaidCurvePoint], value: Callable[[RaidCurvePoint], float]) -> Dict[str, Any]:
    """Curve-level SRCCs of ``value(point)`` (d(level 1, level L), oriented: higher = more different; -inf
    ranks below everything) against Response (the keys: the module's docstring). Curves or levels where
    either side is constant are left out of the means (curves counted in ``n_curves_constant``)."""
    pts = list(curves)
    v = _identity_below([float(value(c)) for c in pts])
    idx = range(len(pts))
    hi = [i for i in idx if pts[i].level >= MIN_LEVEL]

    def srcc(sel: Sequence[int]) -> float:
        return srcc_or_nan([v[i] for i in sel], [pts[i].response for i in sel])

    kinds = _kinds(pts)
    out: Dict[str, Any] = {"n_pooled": len(hi), "pooled": srcc(hi)}
    out["per_distortion"] = {k: srcc([i for i in hi if pts[i].kind == k]) for k in kinds}
    out["per_distortion_mean"] = _nanmean(out["per_distortion"].values())
    by: Dict[Tuple[int, str], List[int]] = {}
    for i in idx:
        by.setdefault((pts[i].image, pts[i].kind), []).append(i)
    per: Dict[str, List[float]] = {k: [] for k in kinds}
    skipped = 0
    for (_image, k), sel in by.items():
        s = srcc(sel)
        if math.isfinite(s):
            per[k].append(s)
        else:
            skipped += 1
    out["per_curve_mean"] = _nanmean(s for vals in per.values() for s in vals)
    out["per_curve_mean_per_distortion"] = {k: _nanmean(vals) for k, vals in per.items()}
    out["n_curves"] = sum(len(vals) for vals in per.values())
    out["n_curves_constant"] = skipped
    out["cross_distortion_per_level"] = {lv: srcc([i for i in hi if pts[i].level == lv])
                                         for lv in sorted({pts[i].level for i in hi})}
    out["cross_distortion"] = _nanmean(out["cross_distortion_per_level"].values())
    return out


def trial_agreement(trials: Sequence[RaidTrial], dist: Callable[[Pair], float]) -> Dict[str, Any]:
    """% of trials where ``dist`` (higher = more different) orders the two pairs as the observer did;
    a tie counts 1/2. Overall and per distortion, on all trials and on those with no level-1 image."""

    def block(ts: List[RaidTrial]) -> Dict[str, Any]:
        if not ts:
            return {"agreement": float("nan"), "n": 0, "ties": 0}
        score, ties = 0.0, 0
        for t in ts:
            d1 = dist(pair(t.image, t.kind, t.l11, t.l12))
            d2 = dist(pair(t.image, t.kind, t.l21, t.l22))
            if d1 == d2:
                score += 0.5
                ties += 1
            elif (d1 > d2) == (t.answer == 1):
                score += 1.0
        return {"agreement": 100.0 * score / len(ts), "n": len(ts), "ties": ties}

    ts = list(trials)
    kinds = _kinds(ts)
    out: Dict[str, Any] = {}
    for label, sel in (("all", ts), ("no_level_1", [t for t in ts if not t.has_level_1])):
        out[label] = {"overall": block(sel), "per_distortion": {k: block([t for t in sel if t.kind == k])
                                                                for k in kinds}}
    return out


def raid_figures(curves: Sequence[RaidCurvePoint], trials: Optional[Sequence[RaidTrial]],
                 distances: Mapping[str, Mapping[Pair, float]],
                 lower_is_better: Optional[Mapping[str, bool]] = None) -> Dict[str, Any]:
    """Curve figures and, given ``trials`` (None: no trial figures), trial figures for each metric
    (``{name: {pair: distance}}``, every :func:`needed_pairs` pair) and the baselines (level index, MLDS
    ceiling). A similarity (``lower_is_better[name]`` False) is negated first; level 1 against itself is
    0 for a distance and ranks below every level for a similarity.

    Returns ``{"rows": {name: {"baseline", "curve"[, "trial"]}}, "n_curve_rows"[, "n_trials",
    "n_trials_no_level_1"]}``."""
    lib = dict(lower_is_better or {})
    psi = {(c.image, c.kind, c.level): c.curve_value for c in curves}
    need = needed_pairs(curves, trials or ())

    def level_index(p: Pair) -> float:
        return float(p[3] - p[2])

    def ceiling(p: Pair) -> float:
        return abs(psi[(p[0], p[1], p[3])] - psi[(p[0], p[1], p[2])])

    def row(fn: Callable[[Pair], float], curve_value: Callable[[RaidCurvePoint], float], baseline: bool):
        r: Dict[str, Any] = {"baseline": baseline, "curve": curve_figures(curves, curve_value)}
        if trials is not None:
            r["trial"] = trial_agreement(trials, fn)
        return r

    rows: Dict[str, Any] = OrderedDict()
    rows[LEVEL_INDEX] = row(level_index, _from_level_1(level_index, True), True)
    rows[MLDS_CEILING] = row(ceiling, lambda c: c.response, True)
    for name, vals in distances.items():
        missing = [p for p in need if p not in vals]
        if missing:
            raise ValueError(f"metric {name!r} lacks {len(missing)} pair distances, e.g. {missing[0]}")
        fn = _oriented(vals, lib.get(name, True))
        rows[name] = row(fn, _from_level_1(fn, lib.get(name, True)), name == "mse")
    out: Dict[str, Any] = {"rows": rows, "n_curve_rows": len(curves)}
    if trials is not None:
        out["n_trials"] = len(trials)
        out["n_trials_no_level_1"] = sum(1 for t in trials if not t.has_level_1)
    return out


def curves_from_records(records: Sequence[Any], distances: Mapping[str, Mapping[int, float]]
                        ) -> Tuple[List[RaidCurvePoint], Dict[str, Dict[Pair, float]]]:
    """The runner's RAID records (:class:`~invariant_lpips.data.datasets.PairRecord`: ``score`` =
    Response, ``level``, ``dist_type``, ``ref_id`` ``img_XX``, ``extra`` curve value and sigma) and
    ``{metric: {record index: d(reference, record)}}`` as curve points and ``{metric: {(image, kind, 1, L):
    distance}}`` (the reference is the level-1 stimulus). A distorted record that some metric lacks (a
    skipped image) is left out; so is a curve left with no distorted record."""
    recs = [(i, r) for i, r in enumerate(records) if r.score is not None and r.level is not None]
    ids = sorted({r.ref_id for _, r in recs})
    digits = [re.search(r"(\d+)$", ref) for ref in ids]  # img_XX -> XX, RAID's image number
    numbered = {ref: int(m.group(1)) for ref, m in zip(ids, digits) if m}
    if len(set(numbered.values())) < len(ids):  # other names: numbered in order
        numbered = {ref: n + 1 for n, ref in enumerate(ids)}
    keep = [(i, r) for i, r in recs if r.level < MIN_LEVEL or all(i in d for d in distances.values())]
    distorted = {(r.ref_id, r.dist_type) for _, r in keep if r.level >= MIN_LEVEL}
    curves = [RaidCurvePoint(numbered[r.ref_id], r.dist_type, int(r.level), float(r.score),
                             float(r.extra.get("curve_value", r.score)), float(r.extra.get("sigma", 1.0)),
                             Path(str(r.dist_path)).name)
              for _, r in keep if (r.ref_id, r.dist_type) in distorted]
    index = {(numbered[r.ref_id], r.dist_type, int(r.level)): i for i, r in keep}
    out = {name: {pair(c.image, c.kind, 1, c.level): float(d[index[(c.image, c.kind, c.level)]])
                  for c in curves if c.level >= MIN_LEVEL} for name, d in distances.items()}
    return curves, out


# =============================================================================== tables


def _f(v: Any, nd: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def raid_markdown(fig: Mapping[str, Any], label: str = "RAID", machine: str = "") -> List[str]:
    """The curve-level table and, when ``fig`` has trial figures, the two trial-level tables (all trials;
    no level-1 image). ``fig``: :func:`raid_figures`' result (or its JSON form)."""
    rows = fig["rows"]
    kinds = list(RAID_KIND_ORDER)
    li = rows[LEVEL_INDEX]["curve"]
    L = [f"## {label}: metrics against RAID's human data", ""]
    if machine:
        L += [f"Machine: {machine}.", ""]
    L += [f"Curve level: SRCC of d(level 1, level L) against the MLDS Response, pooled over the "
          f"{li['n_pooled']} distorted rows, per distortion (and their mean), the mean of the per-curve SRCCs "
          "(10 levels each), and cross-distortion: the mean over levels 2..10 of the SRCC within a level, across "
          "distortions and images (the level index is constant there). Baselines: the level index, MSE, and the "
          f"MLDS curves themselves (SRCC 1 by construction). The level index alone reaches a pooled "
          f"{_f(li['pooled'])}; the paper reports {PAPER_SRCC:.2f} (pooled, real RAID images).", "",
          "| metric | pooled SRCC | " + " | ".join(kinds)
          + " | mean per-dist. | mean per-curve SRCC | cross-distortion |",
          "| --- | ---: |" + " ---: |" * (len(kinds) + 3)]
    for name, r in rows.items():
        c = r["curve"]
        tag = " (baseline)" if r.get("baseline") and name not in (LEVEL_INDEX, MLDS_CEILING) else ""
        L.append(f"| {name}{tag} | {_f(c['pooled'])} | " + " | ".join(_f(c['per_distortion'].get(k)) for k in kinds)
                 + f" | {_f(c['per_distortion_mean'])} | {_f(c['per_curve_mean'])} | {_f(c['cross_distortion'])} |")
    if fig.get("plot"):
        L += ["", f"Curves: `{Path(fig['plot']).name}`"]
    if "n_trials" not in fig:
        return L + ["", "No trial-level figures: they need RAID's raw trials (`benchmarks/raid_table.py`).", ""]
    for key, title in (("all", f"all {fig['n_trials']:,} trials"),
                       ("no_level_1", f"the {fig['n_trials_no_level_1']:,} trials with no level-1 image")):
        L += ["", f"Trial level, {title}: % of trials in which the metric orders the two pairs as the observer "
              "did (a tie counts 1/2; ties in brackets when any). The MLDS ceiling is in-sample: the curves were "
              "fitted to these trials.", "",
              "| metric | overall | " + " | ".join(kinds) + " |", "| --- | ---: |" + " ---: |" * len(kinds)]
        for name, r in rows.items():
            t = r["trial"][key]
            ov = t["overall"]
            ties = f" ({ov['ties']:,} ties)" if ov["ties"] else ""
            L.append(f"| {name} | {_f(ov['agreement'], 1)}{ties} | "
                     + " | ".join(_f(t['per_distortion'][k]['agreement'], 1) for k in kinds if k in t['per_distortion'])
                     + " |")
    L.append("")
    return L


def readme_table(fig: Mapping[str, Any]) -> List[str]:
    """One compact table: pooled and per-curve SRCC, trial agreement (all; no level 1; per distortion)."""
    kinds = list(RAID_KIND_ORDER)
    L = ["| metric | pooled SRCC | mean per-curve SRCC | trials agreeing | trials, no level 1 | "
         + " / ".join(kinds) + " (trials) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in fig["rows"].items():
        c, t = r["curve"], r["trial"]
        per = " / ".join(_f(t["all"]["per_distortion"][k]["agreement"], 1) for k in kinds
                         if k in t["all"]["per_distortion"])
        L.append(f"| {name} | {_f(c['pooled'])} | {_f(c['per_curve_mean'])} | "
                 f"{_f(t['all']['overall']['agreement'], 1)}% | {_f(t['no_level_1']['overall']['agreement'], 1)}% | "
                 f"{per} |")
    return L


# =============================================================================== the plot


def _mean_curves(curves: Sequence[RaidCurvePoint], value: Callable[[RaidCurvePoint], float]
                 ) -> Dict[str, Tuple[List[int], List[float]]]:
    """{kind: (levels, mean over images of the per-curve min-max normalised values)}; -inf (a similarity's
    level 1) is the curve's low end."""
    by: Dict[tuple, Dict[int, float]] = {}
    for c in curves:
        by.setdefault((c.image, c.kind), {})[c.level] = float(value(c))
    acc: Dict[str, Dict[int, List[float]]] = {}
    for (_image, k), d in by.items():
        levels = sorted(d)
        finite = [d[lv] for lv in levels if math.isfinite(d[lv])]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
        for lv in levels:
            x = d[lv] if math.isfinite(d[lv]) else lo
            acc.setdefault(k, {}).setdefault(lv, []).append((x - lo) / (hi - lo) if hi > lo else 0.0)
    return {k: (sorted(d), [float(np.mean(d[lv])) for lv in sorted(d)]) for k, d in acc.items()}


def plot_raid_curves(curves: Sequence[RaidCurvePoint], distances: Mapping[str, Mapping[Pair, float]],
                     path: Union[str, Path], lower_is_better: Optional[Mapping[str, bool]] = None,
                     title: str = "") -> Path:
    """One panel per distortion: the human MLDS curve (Curve_Value, black) and each metric's d(level 1,
    level L), both normalised to [0, 1] per (image, distortion) curve and averaged over the images.
    Returns the written path (ImportError without matplotlib)."""
    import matplotlib  # optional dependency: only the plot needs it

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # optional dependency (after choosing the Agg backend)

    lib = dict(lower_is_better or {})
    human = _mean_curves(curves, lambda c: c.curve_value)
    shown = {name: _mean_curves(curves, _from_level_1(_oriented(vals, lib.get(name, True)), lib.get(name, True)))
             for name, vals in distances.items()}
    kinds = [k for k in RAID_KIND_ORDER if k in human] + sorted(k for k in human if k not in RAID_KIND_ORDER)
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(3.9 * max(1, len(kinds)), 3.6), squeeze=False)
    for ax, k in zip(axes[0], kinds):
        for n, mc in shown.items():
            if k in mc:
                ax.plot(mc[k][0], mc[k][1], marker=".", linewidth=1.2, label=n)
        ax.plot(human[k][0], human[k][1], color="black", linewidth=2.5, marker="o", label="human (MLDS)")
        ax.set_title(k)
        ax.set_xlabel("level")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("d(level 1, level L), normalised per curve")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def raid_plot(curves: Sequence[RaidCurvePoint], distances: Mapping[str, Mapping[Pair, float]],
              path: Union[str, Path], lower_is_better: Optional[Mapping[str, bool]] = None,
              title: str = "") -> Dict[str, str]:
    """:func:`plot_raid_curves` as summary entries: ``{"plot": path}``, or ``{"plot_error": why}`` when
    matplotlib (optional) is missing."""
    try:
        return {"plot": str(plot_raid_curves(curves, distances, path, lower_is_better, title))}
    except ImportError as exc:
        return {"plot_error": f"no plot: {exc}"}
