"""Write robustness results (from :func:`~.measures.evaluate_metric`) as JSON, CSV and PNG.

``results`` everywhere is a list of the dicts returned by ``evaluate_metric``,
one per metric. Plots use matplotlib's object API with the Agg canvas (no
pyplot, no global backend change); matplotlib is imported only when a plot is
drawn and a missing install raises :class:`ImportError` naming
``pip install matplotlib``.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

__all__ = [
    "jsonable",
    "write_json",
    "write_csv",
    "plot_sweeps",
    "plot_rank_flips",
    "write_report",
    "matplotlib_available",
]

PathLike = Union[str, os.PathLike]


def jsonable(obj: Any) -> Any:
    """Recursively convert numpy types to Python ones and NaN/inf to ``None`` (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def write_json(data: Any, path: PathLike) -> Path:
    """Strict JSON (NaN/inf written as ``null``), indented, parent folders created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(jsonable(data), fh, indent=2, allow_nan=False)
        fh.write("\n")
    return path


def _fmt(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return v


def _write_rows(path: Path, header: Sequence[str], rows: List[Sequence[Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([_fmt(v) for v in r])
    return path


def write_csv(results: Sequence[Dict[str, Any]], out_dir: PathLike) -> Dict[str, Path]:
    """Write three CSV files into ``out_dir`` and return their paths:

    * ``sweeps.csv``: metric, axis, protocol, shift, mean, std, median (over images);
    * ``rank_flips.csv``: metric, axis, shift, rate, flips, ties, n_triplets;
    * ``summary.csv``: one row per metric and protocol: period, ripple,
      ripple_detrended, relative_amplitude, mean rank-flip rate, and the
      shift-to-distortion ratios (noise, blur) with their medians.

    Missing values (NaN, no period, a stage not run) are empty cells.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sweep_rows, flip_rows, summary_rows = [], [], []
    for r in results:
        name = r.get("metric")
        axis = r.get("axis")
        rf = r.get("rank_flip") or {}
        sdr = r.get("shift_to_distortion") or {}
        mean_flip = None
        if rf.get("rate"):
            vals = [v for v in rf["rate"] if v is not None]
            mean_flip = float(np.mean(vals)) if vals else None
        for k, rate, flips, ties in zip(rf.get("shifts", []), rf.get("rate", []), rf.get("flips", []), rf.get("ties", [])):
            flip_rows.append([name, axis, k, rate, flips, ties, rf.get("n_triplets")])
        sweeps = r.get("sweeps") or {}
        protocols = list(sweeps) or [None]
        for protocol in protocols:
            per = {}
            if protocol is not None:
                sw = sweeps[protocol]
                for k, m, s, md in zip(sw["shifts"], sw["mean"], sw["std"], sw["median"]):
                    sweep_rows.append([name, axis, protocol, k, m, s, md])
                per = sw.get("periodicity") or {}
            summary_rows.append(
                [
                    name,
                    axis,
                    protocol,
                    per.get("period"),
                    per.get("ripple"),
                    per.get("ripple_detrended"),
                    per.get("relative_amplitude"),
                    mean_flip,
                    (sdr.get("noise") or {}).get("ratio"),
                    (sdr.get("noise") or {}).get("median_shift"),
                    (sdr.get("noise") or {}).get("median_distortion"),
                    (sdr.get("blur") or {}).get("ratio"),
                    (sdr.get("blur") or {}).get("median_distortion"),
                ]
            )
    paths = {
        "sweeps": _write_rows(out / "sweeps.csv", ["metric", "axis", "protocol", "shift", "mean", "std", "median"], sweep_rows),
        "rank_flips": _write_rows(
            out / "rank_flips.csv", ["metric", "axis", "shift", "rate", "flips", "ties", "n_triplets"], flip_rows
        ),
        "summary": _write_rows(
            out / "summary.csv",
            [
                "metric",
                "axis",
                "protocol",
                "period",
                "ripple",
                "ripple_detrended",
                "relative_amplitude",
                "mean_flip_rate",
                "sdr_noise",
                "median_d_shift",
                "median_d_noise",
                "sdr_blur",
                "median_d_blur",
            ],
            summary_rows,
        ),
    }
    return paths


def summary_table(results: Sequence[Dict[str, Any]]) -> str:
    """A plain-text table of the headline figures, one row per metric: the mean rank-flip rate over the
    flip shifts, the shift-to-distortion ratios (median d of a shift / median d of noise, of blur; lower
    is more robust) and each protocol's ripple (the periodic part of the shift sweep). ``-`` where a stage
    was not run."""
    protocols: List[str] = []
    for r in results:
        protocols += [p for p in (r.get("sweeps") or {}) if p not in protocols]
    header = ["metric", "flip rate", "shift/noise", "shift/blur"] + [f"ripple {p}" for p in protocols]
    rows = []
    for r in results:
        rf = r.get("rank_flip") or {}
        rates = [v for v in rf.get("rate") or [] if v is not None]
        sdr = r.get("shift_to_distortion") or {}
        sweeps = r.get("sweeps") or {}
        cells = [str(r.get("metric")), float(np.mean(rates)) if rates else None,
                 (sdr.get("noise") or {}).get("ratio"), (sdr.get("blur") or {}).get("ratio")]
        cells += [((sweeps.get(p) or {}).get("periodicity") or {}).get("ripple") for p in protocols]
        rows.append(["-" if c is None or (isinstance(c, float) and not np.isfinite(c)) else
                     (f"{c:.4g}" if isinstance(c, (float, np.floating)) else str(c)) for c in cells])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header)] + [line(row) for row in rows])


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401 - optional dependency (the plots extra)
    except ImportError:
        return False
    return True


def _new_figure(width: float, height: float):
    try:  # optional dependency (the plots extra)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install matplotlib") from exc
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "x"


def plot_sweeps(results: Sequence[Dict[str, Any]], path: PathLike, protocol: str = "crop") -> Optional[Path]:
    """One panel per metric: mean sweep ``d(x, T_k x)`` over images (± 1 std band)
    for ``protocol``, with dotted lines at multiples of the dominant period and
    the period / ripple in the panel title. Returns ``None`` when no result has
    that protocol."""
    rows = [r for r in results if protocol in (r.get("sweeps") or {})]
    if not rows:
        return None
    n = len(rows)
    ncols = min(n, 3)
    nrows = int(math.ceil(n / ncols))
    fig = _new_figure(4.2 * ncols, 3.0 * nrows)
    for i, r in enumerate(rows):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        sw = r["sweeps"][protocol]
        k = np.asarray(sw["shifts"], dtype=float)
        m = np.asarray([np.nan if v is None else v for v in sw["mean"]], dtype=float)
        s = np.asarray([np.nan if v is None else v for v in sw["std"]], dtype=float)
        ax.plot(k, m, marker="o", markersize=2.5, linewidth=1.2, color="C0")
        ax.fill_between(k, m - s, m + s, color="C0", alpha=0.15, linewidth=0)
        per = sw.get("periodicity") or {}
        period = per.get("period")
        title = str(r.get("metric"))
        if period:
            for j in range(1, int(k.max() // period) + 1):
                ax.axvline(j * period, color="C3", linestyle=":", linewidth=0.8)
            ripple = per.get("ripple")
            title += f"\nperiod {period:.3g} px" + (f", ripple {ripple:.2%}" if ripple is not None else "")
        else:
            title += "\nno period"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"shift k (px, axis {r.get('axis', 'x')})", fontsize=8)
        ax.set_ylabel("d(x, T_k x)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"shift sweep, {protocol} protocol (mean over images)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def plot_rank_flips(results: Sequence[Dict[str, Any]], path: PathLike) -> Optional[Path]:
    """Grouped bars: rank-flip rate (%) per shift, one bar per metric. Returns
    ``None`` when no result has rank flips."""
    rows = [r for r in results if r.get("rank_flip")]
    if not rows:
        return None
    shifts = sorted({k for r in rows for k in r["rank_flip"]["shifts"]})
    fig = _new_figure(max(4.5, 1.2 * len(shifts) * max(1, len(rows)) * 0.5 + 2), 3.4)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(rows)
    x = np.arange(len(shifts), dtype=float)
    for i, r in enumerate(rows):
        rf = r["rank_flip"]
        rate = dict(zip(rf["shifts"], rf["rate"]))
        h = [100.0 * (rate.get(k) or 0.0) for k in shifts]
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, h, width=width, label=str(r.get("metric")), color=f"C{i % 10}")
    ax.set_xticks(x)
    ax.set_xticklabels([str(k) for k in shifts])
    ax.set_xlabel("shift k (px)")
    ax.set_ylabel("rank-flip rate (%)")
    ax.set_title("preference flips under a k-pixel shift (crop protocol)", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def write_report(
    results: Sequence[Dict[str, Any]],
    out_dir: PathLike,
    *,
    config: Optional[Dict[str, Any]] = None,
    plots: bool = True,
) -> Dict[str, Path]:
    """Write ``robustness.json`` (``{"config": config, "results": results}``),
    the CSV files of :func:`write_csv` and, when ``plots``, ``sweep_<protocol>.png``
    for every protocol present and ``rank_flips.png``. Returns the written paths
    by key. ``plots=True`` without matplotlib raises :class:`ImportError`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: Dict[str, Path] = {"json": write_json({"config": config or {}, "results": list(results)}, out / "robustness.json")}
    paths.update(write_csv(results, out))
    if plots:
        protocols: List[str] = []
        for r in results:
            for p in r.get("sweeps") or {}:
                if p not in protocols:
                    protocols.append(p)
        for p in protocols:
            written = plot_sweeps(results, out / f"sweep_{_safe(p)}.png", protocol=p)
            if written is not None:
                paths[f"sweep_{p}"] = written
        written = plot_rank_flips(results, out / "rank_flips.png")
        if written is not None:
            paths["rank_flips_png"] = written
    return paths
