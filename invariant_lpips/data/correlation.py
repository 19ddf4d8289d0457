"""Correlation statistics for metric-vs-human evaluations (numpy / scipy only).

Conventions
-----------
* ``srcc`` / ``krcc`` / ``plcc`` are plain (signed) correlations, identical to
  ``scipy.stats.spearmanr`` / ``kendalltau`` (tau-b) / ``pearsonr``.
* :func:`correlations`, :func:`per_group_correlations` and
  :func:`bootstrap_ci` report *agreement*: the caller states whether the
  metric is lower-is-better (a distance such as LPIPS) and whether the human
  score is higher-is-better (MOS) or lower-is-better (DMOS in CSIQ, RAID's
  response); the metric is oriented so that a positive value always means
  the metric agrees with humans.  ``agreement_sign`` gives that orientation.
* PLCC is reported after fitting the VQEG logistic (5 parameters by
  default) from the oriented metric to the human score; it carries the sign
  of the fitted mapping's direction, so a metric that ranks backwards still
  shows up negative.
* Inputs: 1-D, equal length, finite, at least 3 points, else ``ValueError``.
  Constant inputs give ``nan`` correlations (no exception).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Dict, Hashable, Optional, Sequence, Tuple

import numpy as np
from scipy import optimize, stats
from scipy.special import expit

__all__ = [
    "srcc",
    "srcc_or_nan",
    "krcc",
    "plcc",
    "logistic4",
    "logistic5",
    "LogisticFit",
    "logistic_fit",
    "agreement_sign",
    "correlations",
    "per_group_correlations",
    "bootstrap_ci",
    "two_afc_score",
]

STATISTICS = ("SRCC", "KRCC", "PLCC", "PLCC_raw")


# --------------------------------------------------------------------------- validation


def _check_pair(pred: Any, target: Any, min_points: int = 3) -> Tuple[np.ndarray, np.ndarray]:
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"pred and target must be 1-D, got shapes {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"pred and target lengths differ: {x.shape[0]} vs {y.shape[0]}")
    for name, a in (("pred", x), ("target", y)):
        bad = ~np.isfinite(a)
        if bad.any():
            kind = "NaN" if np.isnan(a).any() else "infinite"
            raise ValueError(
                f"{name} contains {int(bad.sum())} {kind} value(s) (first at index {int(np.flatnonzero(bad)[0])})"
            )
    if x.shape[0] < min_points:
        raise ValueError(f"need at least {min_points} points, got {x.shape[0]}")
    return x, y


def _is_constant(a: np.ndarray) -> bool:
    return bool(a.size == 0 or np.all(a == a[0]))


# --------------------------------------------------------------------------- basic correlations


def srcc(pred: Any, target: Any) -> float:
    """Spearman rank correlation (== ``scipy.stats.spearmanr``); nan for constant input."""
    x, y = _check_pair(pred, target)
    if _is_constant(x) or _is_constant(y):
        return float("nan")
    return float(stats.spearmanr(x, y)[0])


def srcc_or_nan(pred: Any, target: Any) -> float:
    """:func:`srcc`, or nan where there are fewer than 3 points (a curve, a level or a type too small to rank)
    instead of an error: what the RAID figures average over."""
    if np.asarray(pred).size < 3:
        return float("nan")
    return srcc(pred, target)


def krcc(pred: Any, target: Any) -> float:
    """Kendall tau-b (== ``scipy.stats.kendalltau``); nan for constant input."""
    x, y = _check_pair(pred, target)
    if _is_constant(x) or _is_constant(y):
        return float("nan")
    return float(stats.kendalltau(x, y)[0])


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if _is_constant(x) or _is_constant(y):
        return float("nan")
    xc, yc = x - x.mean(), y - y.mean()
    den = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    if den == 0:
        return float("nan")
    return float(np.clip(np.dot(xc, yc) / den, -1.0, 1.0))


def plcc(pred: Any, target: Any, fit: Optional[int] = None) -> float:
    """Pearson linear correlation.

    ``fit=None``: on the raw values (== ``scipy.stats.pearsonr``).
    ``fit=4`` or ``5``: between ``logistic_fit(pred, target, fit)(pred)`` and
    ``target`` (non-negative whenever the fit captures any trend).
    """
    x, y = _check_pair(pred, target)
    if fit is None:
        return _pearson(x, y)
    f = logistic_fit(x, y, params=fit)
    return _pearson(f(x), y)


# --------------------------------------------------------------------------- logistic fits


def logistic5(x: Any, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """VQEG 5-parameter logistic: b1*(0.5 - 1/(1+exp(b2*(x-b3)))) + b4*x + b5."""
    x = np.asarray(x, dtype=np.float64)
    return b1 * (0.5 - expit(-b2 * (x - b3))) + b4 * x + b5


def logistic4(x: Any, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """4-parameter logistic: (b1-b2)/(1+exp(-(x-b3)/|b4|)) + b2."""
    x = np.asarray(x, dtype=np.float64)
    return (b1 - b2) * expit((x - b3) / np.abs(b4)) + b2


@dataclass(frozen=True)
class LogisticFit:
    """Result of :func:`logistic_fit`; call it to map metric values to the human scale.

    ``kind`` is ``"logistic5"``, ``"logistic4"`` or ``"linear"`` (fallback);
    ``converged`` is False whenever the fallback was used; ``params`` are in
    the original units of x and y (for ``linear``: slope, intercept).
    """

    kind: str
    params: Tuple[float, ...]
    converged: bool
    sse: float
    message: str = ""

    def __call__(self, x: Any) -> np.ndarray:
        if self.kind == "logistic5":
            return logistic5(x, *self.params)
        if self.kind == "logistic4":
            return logistic4(x, *self.params)
        slope, intercept = self.params
        return slope * np.asarray(x, dtype=np.float64) + intercept


def _linear(x: np.ndarray, y: np.ndarray, message: str) -> LogisticFit:
    if _is_constant(x):
        slope, intercept = 0.0, float(y.mean())
    else:
        slope, intercept = (float(v) for v in np.polyfit(x, y, 1))
    sse = float(np.sum((slope * x + intercept - y) ** 2))
    return LogisticFit("linear", (slope, intercept), False, sse, message)


def _z5(z: np.ndarray, a1: float, a2: float, a3: float, a4: float, a5: float) -> np.ndarray:
    return a1 * (0.5 - expit(-a2 * (z - a3))) + a4 * z + a5


def _z4(z: np.ndarray, a1: float, a2: float, a3: float, a4: float) -> np.ndarray:
    return (a1 - a2) * expit((z - a3) / np.abs(a4)) + a2


# Search box for the nonlinear parameters, in standardised units of x: slope
# 0.1..100 per sd (gentler is a straight line, steeper a step), centre within
# 2 sd of the data.  Bounding makes the least-squares problem well posed: on
# curved or noisy data the unbounded optimum can lie at infinity (slope -> 0
# with amplitude -> infinity), where an unbounded fit crawls to maxfev.
_SLOPE_RANGE = (0.1, 100.0)
_CENTRE_PAD = 2.0
_GRID = 24
_GRID_POINTS = 2000


def _vp_grid(z: np.ndarray, w: np.ndarray, params: int) -> Tuple[float, np.ndarray]:
    """Variable-projection grid search: for each (slope, centre) on a grid the
    linear parameters are solved exactly; returns (sse, full parameter vector)."""
    slopes = np.geomspace(*_SLOPE_RANGE, _GRID)
    centres = np.linspace(z.min() - _CENTRE_PAD, z.max() + _CENTRE_PAD, _GRID)
    n = float(z.size)
    ww = float(np.dot(w, w))
    best: Tuple[float, np.ndarray] = (np.inf, np.zeros(params))
    for a in slopes:
        t = a * (z[None, :] - centres[:, None])  # (K, n)
        if params == 5:
            u = expit(t) - 0.5
            su, suu, suz, suw = u.sum(1), (u * u).sum(1), u @ z, u @ w
            K = centres.size
            G = np.empty((K, 3, 3))
            G[:, 0, 0], G[:, 0, 1], G[:, 0, 2] = suu, suz, su
            G[:, 1, 0], G[:, 1, 1], G[:, 1, 2] = suz, float(z @ z), float(z.sum())
            G[:, 2, 0], G[:, 2, 1], G[:, 2, 2] = su, float(z.sum()), n
            r = np.stack([suw, np.full(K, float(z @ w)), np.full(K, float(w.sum()))], axis=1)
        else:
            v = expit(t)
            sv, svv, svw = v.sum(1), (v * v).sum(1), v @ w
            K = centres.size
            G = np.empty((K, 2, 2))
            G[:, 0, 0], G[:, 0, 1], G[:, 1, 0], G[:, 1, 1] = svv, sv, sv, n
            r = np.stack([svw, np.full(K, float(w.sum()))], axis=1)
        beta = np.einsum("kij,kj->ki", np.linalg.pinv(G), r)
        sse = ww - 2 * np.einsum("ki,ki->k", beta, r) + np.einsum("ki,kij,kj->k", beta, G, beta)
        k = int(np.nanargmin(sse))
        if sse[k] < best[0]:
            if params == 5:
                c1, c4, c5 = beta[k]
                best = (float(sse[k]), np.array([c1, a, centres[k], c4, c5]))
            else:
                c1, c0 = beta[k]
                best = (float(sse[k]), np.array([c1 + c0, c0, centres[k], 1.0 / a]))
    return best


def logistic_fit(x: Any, y: Any, params: int = 5, maxfev: int = 300) -> LogisticFit:
    """Fit the VQEG 5-parameter (default) or the 4-parameter logistic from x to y.

    Works on standardised x and y, by variable projection: for given slope
    and centre the other parameters (amplitudes, offset, linear term) are a
    linear least-squares problem, solved exactly.  The initial guess is the
    best point of a grid over slope and centre (robust to the direction of
    the relation and to scaling); it is polished with
    ``scipy.optimize.curve_fit(max_nfev=maxfev)`` on those two parameters,
    inside a box (slope 0.1..100 per sd of x, centre within 2 sd of the
    data) that keeps the problem well posed -- unbounded, the optimum on
    curved noisy data can lie at infinity.  Parameters are converted back to
    original units; the 5-parameter solution has ``b2 > 0``.

    Fallbacks: if ``curve_fit`` fails the grid solution is returned with
    ``converged=False`` and a ``message``; for constant input or too few
    points (fewer than params + 1) a least-squares line is returned
    (``kind="linear"``, ``converged=False``).
    """
    if params not in (4, 5):
        raise ValueError(f"params must be 4 or 5, got {params!r}")
    xa, ya = _check_pair(x, y)
    if _is_constant(xa) or _is_constant(ya):
        return _linear(xa, ya, "constant input: logistic fit undefined, linear fallback")
    if xa.size < params + 1:
        return _linear(xa, ya, f"{xa.size} points are too few for a {params}-parameter fit; linear fallback")

    mu, s = float(xa.mean()), float(xa.std())
    my, sy = float(ya.mean()), float(ya.std())
    z, w = (xa - mu) / s, (ya - my) / sy
    func = _z5 if params == 5 else _z4

    # the grid only seeds the polish: on large inputs search it on an evenly
    # spaced (in rank of x) subsample of at most _GRID_POINTS points
    if z.size > _GRID_POINTS:
        sub = np.argsort(z, kind="stable")[np.linspace(0, z.size - 1, _GRID_POINTS).round().astype(np.intp)]
        _, a = _vp_grid(z[sub], w[sub], params)
        grid_sse = float(np.sum((func(z, *a) - w) ** 2))
    else:
        grid_sse, a = _vp_grid(z, w, params)
    if not (np.isfinite(grid_sse) and np.all(np.isfinite(a))):
        return _linear(xa, ya, "logistic grid search produced non-finite values; linear fallback")

    # Polish the two nonlinear parameters with curve_fit on the projected model
    # (linear parameters solved exactly inside): 2-D, bounded, converges fast
    # even where the full 5-D problem has a flat valley.
    def basis(slope: float, centre: float) -> np.ndarray:
        if params == 5:
            return np.stack([expit(slope * (z - centre)) - 0.5, z, np.ones_like(z)], axis=1)
        return np.stack([expit(slope * (z - centre)), np.ones_like(z)], axis=1)

    def projected(_z: np.ndarray, slope: float, centre: float) -> np.ndarray:
        B = basis(slope, centre)
        coef = np.linalg.lstsq(B, w, rcond=None)[0]
        return B @ coef

    def full(slope: float, centre: float) -> np.ndarray:
        coef = np.linalg.lstsq(basis(slope, centre), w, rcond=None)[0]
        if params == 5:
            return np.array([coef[0], slope, centre, coef[1], coef[2]])
        return np.array([coef[0] + coef[1], coef[1], centre, 1.0 / slope])

    slope0 = a[1] if params == 5 else 1.0 / a[3]
    lo = [_SLOPE_RANGE[0], z.min() - _CENTRE_PAD]
    hi = [_SLOPE_RANGE[1], z.max() + _CENTRE_PAD]
    converged, message = True, ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            popt, _ = optimize.curve_fit(projected, z, w, p0=[slope0, a[2]], bounds=(lo, hi), max_nfev=maxfev)
        cand = full(*popt)
        polished = float(np.sum((func(z, *cand) - w) ** 2))
        if not (np.all(np.isfinite(cand)) and np.isfinite(polished)):
            converged, message = False, "curve_fit produced non-finite values; grid-search solution used"
        elif polished <= grid_sse:
            a = cand
        elif polished > grid_sse * (1 + 1e-9) + 1e-12 * z.size:  # (numerical ties keep the start)
            converged, message = False, "curve_fit ended worse than its start; grid-search solution used"
    except (RuntimeError, ValueError, TypeError, np.linalg.LinAlgError, optimize.OptimizeWarning) as exc:
        converged, message = False, f"curve_fit failed ({exc}); grid-search solution used"

    if params == 5:
        a1, a2, a3, a4, a5 = (float(v) for v in a)
        if a2 < 0:  # b1*(0.5 - expit(-b2 t)) is invariant under (b1, b2) -> (-b1, -b2)
            a1, a2 = -a1, -a2
        p = (sy * a1, a2 / s, mu + s * a3, sy * a4 / s, my + sy * a5 - sy * a4 * mu / s)
        kind = "logistic5"
    else:
        a1, a2, a3, a4 = (float(v) for v in a)
        p = (my + sy * a1, my + sy * a2, mu + s * a3, s * abs(a4))
        kind = "logistic4"
    out = LogisticFit(kind, tuple(float(v) for v in p), converged, 0.0, message)
    sse = float(np.sum((out(xa) - ya) ** 2))
    if not np.isfinite(sse):
        return _linear(xa, ya, "logistic fit produced non-finite predictions; linear fallback")
    return LogisticFit(kind, out.params, converged, sse, message)


# --------------------------------------------------------------------------- agreement-oriented summaries


def agreement_sign(metric_lower_is_better: bool, human_higher_is_better: bool) -> int:
    """+1 or -1: multiply the metric by this so that positive correlation = agreement.

    A distance (lower = better) against MOS (higher = better) gives -1; a
    distance against DMOS (lower = better) gives +1.
    """
    return -1 if bool(metric_lower_is_better) == bool(human_higher_is_better) else 1


def _fitted_plcc(xq: np.ndarray, y: np.ndarray, fit: LogisticFit) -> float:
    """PLCC between the fitted prediction and y, signed by the mapping's direction."""
    yhat = fit(xq)
    r = _pearson(yhat, y)
    direction = _pearson(yhat, xq)
    if np.isnan(r):
        return r
    return r if (np.isnan(direction) or direction >= 0) else -r


def correlations(
    pred: Any,
    target: Any,
    *,
    human_higher_is_better: bool,
    metric_lower_is_better: bool = True,
    logistic_params: int = 5,
) -> Dict[str, Any]:
    """SRCC, KRCC and PLCC (after the logistic fit), oriented so that positive = agreement.

    Returns a dict with ``SRCC``, ``KRCC``, ``PLCC`` (after fit), ``PLCC_raw``
    (no fit), ``n`` and ``logistic_converged`` (False if the fit fell back to a
    line) and ``sign`` (the orientation applied to ``pred``).
    """
    x, y = _check_pair(pred, target)
    sign = agreement_sign(metric_lower_is_better, human_higher_is_better)
    xq = sign * x
    fit = logistic_fit(xq, y, params=logistic_params)
    return {
        "SRCC": srcc(xq, y),
        "KRCC": krcc(xq, y),
        "PLCC": _fitted_plcc(xq, y, fit),
        "PLCC_raw": _pearson(xq, y),
        "n": int(x.size),
        "logistic_converged": bool(fit.converged),
        "sign": sign,
    }


def per_group_correlations(
    pred: Any,
    target: Any,
    group_labels: Sequence[Hashable],
    *,
    human_higher_is_better: bool,
    metric_lower_is_better: bool = True,
    logistic_params: int = 5,
    min_points: int = 3,
) -> Dict[Hashable, Dict[str, Any]]:
    """:func:`correlations` within each group (e.g. per distortion type).

    Returns ``{label: {...}}`` in sorted label order.  Groups with fewer than
    ``min_points`` (>= 3) points are kept, with nan statistics and their ``n``.
    """
    x, y = _check_pair(pred, target)
    labels = np.asarray(list(group_labels), dtype=object)
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"group_labels length {labels.shape[0]} differs from pred length {x.shape[0]}")
    min_points = max(3, int(min_points))
    out: Dict[Hashable, Dict[str, Any]] = {}
    try:
        keys = sorted(set(labels.tolist()))
    except TypeError:
        keys = list(dict.fromkeys(labels.tolist()))
    for key in keys:
        mask = np.array([lab == key for lab in labels.tolist()], dtype=bool)
        n = int(mask.sum())
        if n < min_points:
            out[key] = {"SRCC": float("nan"), "KRCC": float("nan"), "PLCC": float("nan"),
                        "PLCC_raw": float("nan"), "n": n, "logistic_converged": False,
                        "sign": agreement_sign(metric_lower_is_better, human_higher_is_better)}
            continue
        out[key] = correlations(
            x[mask], y[mask],
            human_higher_is_better=human_higher_is_better,
            metric_lower_is_better=metric_lower_is_better,
            logistic_params=logistic_params,
        )
    return out


# --------------------------------------------------------------------------- bootstrap


def _weighted_pearson_from_sums(N, Sx, Sy, Sxx, Syy, Sxy) -> np.ndarray:
    cov = N * Sxy - Sx * Sy
    vx = N * Sxx - Sx * Sx
    vy = N * Syy - Sy * Sy
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(vx * vy)
    r[(vx <= 0) | (vy <= 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _group_sums(a: np.ndarray, b: np.ndarray, codes: np.ndarray, G: int) -> np.ndarray:
    """Per-group [n, Sa, Sb, Saa, Sbb, Sab] as a (G, 6) array."""
    cols = [np.ones_like(a), a, b, a * a, b * b, a * b]
    return np.stack([np.bincount(codes, weights=c, minlength=G) for c in cols], axis=1)


class _RankBlocks:
    """Tie blocks of a vector, for average ranks of a weighted (expanded) sample."""

    def __init__(self, v: np.ndarray) -> None:
        order = np.argsort(v, kind="stable")
        vs = v[order]
        new = np.r_[True, vs[1:] != vs[:-1]]
        self.order = order
        self.starts = np.flatnonzero(new)
        block_sorted = np.cumsum(new) - 1
        self.block = np.empty(v.size, dtype=np.intp)
        self.block[order] = block_sorted

    def ranks(self, W: np.ndarray) -> np.ndarray:
        """(B, n) average ranks (1-based) of the items in samples with item weights W."""
        Wb = np.add.reduceat(W[:, self.order], self.starts, axis=1)
        cum = np.cumsum(Wb, axis=1)
        rank_block = cum - (Wb - 1.0) / 2.0
        return rank_block[:, self.block]


def _weighted_spearman(rx_blocks: _RankBlocks, ry_blocks: _RankBlocks, W: np.ndarray) -> np.ndarray:
    """Spearman correlation of the samples in which item i appears W[b, i] times."""
    rx, ry = rx_blocks.ranks(W), ry_blocks.ranks(W)
    N = W.sum(axis=1)
    Sx, Sy = (W * rx).sum(1), (W * ry).sum(1)
    return _weighted_pearson_from_sums(N, Sx, Sy, (W * rx * rx).sum(1), (W * ry * ry).sum(1), (W * rx * ry).sum(1))


def _kendall_group_matrices(x: np.ndarray, y: np.ndarray, codes: np.ndarray, G: int, chunk: int = 256):
    """Group-aggregated Kendall pair matrices.

    S[g, h] = sum_{i in g, j in h} sign(x_i - x_j) * sign(y_i - y_j),
    Tx[g, h] = #{i in g, j in h : x_i == x_j} (i == j included), Ty likewise.
    For a resample drawing group g c_g times, tau-b of the expanded sample is
    c'Sc / sqrt((N^2 - c'Tx c) (N^2 - c'Ty c)) with N = sum_g c_g n_g.
    """
    order = np.argsort(codes, kind="stable")
    xs, ys, cs = x[order], y[order], codes[order]
    # dense integer ranks: exact sign comparisons, small dtypes
    rx = np.unique(xs, return_inverse=True)[1].astype(np.int32)
    ry = np.unique(ys, return_inverse=True)[1].astype(np.int32)
    gstarts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    present = cs[gstarts]
    S = np.zeros((G, G), dtype=np.int64)
    Tx = np.zeros((G, G), dtype=np.int64)
    Ty = np.zeros((G, G), dtype=np.int64)
    n = xs.size
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        sx = np.sign(rx[a:b, None] - rx[None, :]).astype(np.int8)
        sy = np.sign(ry[a:b, None] - ry[None, :]).astype(np.int8)
        rows = cs[a:b]
        for mat, val in ((S, sx * sy), (Tx, sx == 0), (Ty, sy == 0)):
            part = np.add.reduceat(val, gstarts, axis=1, dtype=np.int64)  # (rows, groups present)
            acc = np.zeros((b - a, G), dtype=np.int64)
            acc[:, present] = part
            np.add.at(mat, rows, acc)
    return S, Tx, Ty


def bootstrap_ci(
    pred: Any,
    target: Any,
    groups: Optional[Sequence[Hashable]] = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    *,
    human_higher_is_better: bool,
    metric_lower_is_better: bool = True,
    logistic_params: int = 5,
    statistics: Sequence[str] = ("SRCC", "KRCC", "PLCC"),
    refit: bool = False,
    return_samples: bool = False,
) -> Dict[str, Any]:
    """Percentile bootstrap confidence intervals, resampling *groups* with replacement.

    ``groups`` holds one label per item (normally the reference image id): a
    resample draws as many groups as there are, with replacement, and takes
    every item of each drawn group (as often as the group was drawn).
    ``groups=None`` resamples items.  Statistics are oriented like
    :func:`correlations` (positive = agreement).

    Vectorised: SRCC uses average ranks of the weighted sample, KRCC uses
    group-aggregated pair matrices (exact tau-b of every resample; quadratic
    in the item count once, then O(groups^2) per resample), PLCC/PLCC_raw use
    per-group sums.  PLCC uses the logistic fitted once on all data
    (``refit=True`` refits it in every resample: exact but slow).

    Returns ``{stat: (low, high)}`` for the requested statistics (``SRCC``,
    ``KRCC``, ``PLCC``, ``PLCC_raw``); with ``return_samples=True`` also
    ``{"samples": {stat: array(n_boot)}}``.  Resamples where a statistic is
    undefined (constant data) are ignored for that statistic.
    """
    x, y = _check_pair(pred, target)
    unknown = [s for s in statistics if s not in STATISTICS]
    if unknown:
        raise ValueError(f"unknown statistic(s) {unknown}; choose from {STATISTICS}")
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    n_boot = int(n_boot)
    xq = agreement_sign(metric_lower_is_better, human_higher_is_better) * x
    if groups is None:
        codes = np.arange(x.size)
    else:
        labels = list(groups)
        if len(labels) != x.size:
            raise ValueError(f"groups length {len(labels)} differs from pred length {x.size}")
        codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)[1].reshape(-1)
    G = int(codes.max()) + 1
    if G < 2:
        raise ValueError("need at least 2 groups to bootstrap over groups")

    rng = np.random.default_rng(seed)
    draws = rng.integers(0, G, size=(n_boot, G))
    C = np.bincount((draws + (np.arange(n_boot) * G)[:, None]).ravel(), minlength=n_boot * G)
    C = C.reshape(n_boot, G).astype(np.float64)

    samples: Dict[str, np.ndarray] = {}
    if "SRCC" in statistics:
        bx, by = _RankBlocks(xq), _RankBlocks(y)
        out = np.empty(n_boot)
        step = max(1, int(2_000_000 // max(1, x.size)))
        for a in range(0, n_boot, step):
            W = C[a:a + step][:, codes]
            out[a:a + step] = _weighted_spearman(bx, by, W)
        samples["SRCC"] = out
    if "KRCC" in statistics:
        if G <= 3000:
            S, Tx, Ty = _kendall_group_matrices(xq, y, codes, G)
            ng = np.bincount(codes, minlength=G).astype(np.float64)
            N = C @ ng
            def quad(M: np.ndarray) -> np.ndarray:
                return ((C @ M.astype(np.float64)) * C).sum(axis=1)

            num = quad(S)
            dx = N * N - quad(Tx)
            dy = N * N - quad(Ty)
            with np.errstate(invalid="ignore", divide="ignore"):
                tau = num / np.sqrt(dx * dy)
            tau[(dx <= 0) | (dy <= 0)] = np.nan
            samples["KRCC"] = np.clip(tau, -1.0, 1.0)
        else:  # too many groups for G x G matrices: explicit resamples
            out = np.empty(n_boot)
            for bi in range(n_boot):
                reps = C[bi, codes].astype(np.intp)
                xs, ys = np.repeat(xq, reps), np.repeat(y, reps)
                out[bi] = float("nan") if _is_constant(xs) or _is_constant(ys) else stats.kendalltau(xs, ys)[0]
            samples["KRCC"] = out
    if "PLCC_raw" in statistics:
        T = C @ _group_sums(xq, y, codes, G)
        samples["PLCC_raw"] = _weighted_pearson_from_sums(*T.T)
    if "PLCC" in statistics:
        if not refit:
            fit = logistic_fit(xq, y, params=logistic_params)
            yhat = fit(xq)
            T = C @ _group_sums(yhat, y, codes, G)
            r = _weighted_pearson_from_sums(*T.T)
            direction = _pearson(yhat, xq)
            samples["PLCC"] = -r if (not np.isnan(direction) and direction < 0) else r
        else:
            out = np.empty(n_boot)
            for bi in range(n_boot):
                reps = C[bi, codes].astype(np.intp)
                xs, ys = np.repeat(xq, reps), np.repeat(y, reps)
                if _is_constant(xs) or _is_constant(ys):
                    out[bi] = float("nan")
                    continue
                out[bi] = _fitted_plcc(xs, ys, logistic_fit(xs, ys, params=logistic_params))
            samples["PLCC"] = out

    result: Dict[str, Any] = {}
    for name in statistics:
        vals = samples[name]
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            result[name] = (float("nan"), float("nan"))
        else:
            lo, hi = np.quantile(vals, [alpha / 2.0, 1.0 - alpha / 2.0])
            result[name] = (float(lo), float(hi))
    if return_samples:
        result["samples"] = {k: samples[k] for k in statistics}
    return result


# --------------------------------------------------------------------------- 2AFC


def two_afc_score(d0: Any, d1: Any, judge: Any, per_item: bool = False):
    """BAPPS 2AFC agreement of a distance with human judgements.

    ``judge`` = fraction of humans preferring p1.  Per triplet the score is
    ``judge`` if d1 < d0, ``1 - judge`` if d0 < d1 and 0.5 on a tie; returns
    the mean (or the per-triplet array with ``per_item=True``).
    """
    a = np.asarray(d0, dtype=np.float64).reshape(-1)
    b = np.asarray(d1, dtype=np.float64).reshape(-1)
    j = np.asarray(judge, dtype=np.float64).reshape(-1)
    if not (a.size == b.size == j.size):
        raise ValueError(f"d0, d1 and judge lengths differ: {a.size}, {b.size}, {j.size}")
    if a.size == 0:
        raise ValueError("need at least 1 triplet")
    for name, v in (("d0", a), ("d1", b), ("judge", j)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} contains NaN or infinite values")
    if np.any((j < 0) | (j > 1)):
        raise ValueError("judge values must lie in [0, 1]")
    scores = np.where(a < b, 1.0 - j, np.where(b < a, j, 0.5))
    return scores if per_item else float(scores.mean())
