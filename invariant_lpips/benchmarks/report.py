"""Statistics output: correlations with human scores, the summary dict and its markdown report.

Distances are oriented so that a positive correlation means agreement with humans (a metric where
lower is better, a human score where higher is better, or either flipped). :func:`compute_statistics`
gives SRCC, KRCC and PLCC (after the 5-parameter logistic) with bootstrap CIs over reference images
and a per-distortion-type breakdown, all from :mod:`invariant_lpips.data.correlation`;
:func:`summarize` assembles ``summary.json``; :func:`write_summary_markdown` renders ``summary.md``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..data import correlation as S
from ..distortions import DISTORTION_TYPES
from .raid import raid_markdown

__all__ = ["compute_statistics", "summarize", "write_summary_markdown"]


def compute_statistics(
    distances: Sequence[float],
    human: Sequence[float],
    ref_ids: Sequence[str],
    dist_types: Optional[Sequence[str]] = None,
    *,
    metric_lower_is_better: bool = True,
    human_higher_is_better: bool = True,
    bootstrap: int = 1000,
    seed: int = 0,
) -> Dict[str, Any]:
    """SRCC / KRCC / PLCC (after the 5-parameter logistic) oriented so that positive = agreement.

    Uses :mod:`invariant_lpips.data.correlation`: ``correlations`` for the point estimates,
    ``bootstrap_ci`` (resampling reference images, ``bootstrap`` resamples; 0 = none) for 95% CIs
    and ``per_group_correlations`` for the per-distortion-type breakdown.
    """
    x = np.asarray(distances, dtype=np.float64)
    y = np.asarray(human, dtype=np.float64)
    kw = dict(human_higher_is_better=human_higher_is_better, metric_lower_is_better=metric_lower_is_better)
    out: Dict[str, Any] = {"n": int(x.size), "n_references": len(set(ref_ids))}
    if x.size < 3:
        out.update({"SRCC": float("nan"), "KRCC": float("nan"), "PLCC": float("nan"), "PLCC_raw": float("nan"),
                    "ci": None, "per_type": {}, "note": f"only {x.size} scored pairs: statistics undefined"})
        return out
    out.update(S.correlations(x, y, **kw))
    out["ci"] = None
    if bootstrap and len(set(ref_ids)) >= 2:
        ci = S.bootstrap_ci(x, y, groups=list(ref_ids), n_boot=int(bootstrap), seed=seed, **kw)
        out["ci"] = {k: [float(v[0]), float(v[1])] for k, v in ci.items()}
        out["ci_level"] = 0.95
        out["ci_resampling"] = f"{int(bootstrap)} bootstrap resamples of reference images"
    elif bootstrap:
        out["ci_note"] = "fewer than 2 references: no bootstrap CI"
    if dist_types is not None:
        per = S.per_group_correlations(x, y, list(dist_types), **kw)
        out["per_type"] = {str(k): {s: v.get(s) for s in ("SRCC", "KRCC", "PLCC", "n")} for k, v in per.items()}
    return out


def _type_names(dataset_name: str) -> Dict[str, str]:
    if dataset_name != "kadid10k":
        return {}
    return {f"{k:02d}": v.name for k, v in DISTORTION_TYPES.items()}


def _fmt(v: Optional[float], digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def _fmt_ci(stat: Dict[str, Any], key: str) -> str:
    value = _fmt(stat.get(key))
    ci = (stat.get("ci") or {}).get(key)
    if ci and all(c is not None and math.isfinite(c) for c in ci):
        return f"{value} [{ci[0]:.3f}, {ci[1]:.3f}]"
    return value


def write_summary_markdown(summary: Dict[str, Any]) -> str:
    """The markdown report of a summary dict (as written to ``summary.md``)."""
    ds = summary["dataset"]
    lines = [f"# Benchmark: {ds['name']}", ""]
    lines.append(f"- root: `{ds['root']}`; {ds['n_records']} pairs, {ds['n_references']} references; "
                 f"file-list sha256 `{(ds.get('file_list_hash') or 'n/a')[:16]}...`")
    run = summary.get("run", {})
    if run:
        lines.append(f"- device {run.get('device')}, dtype {run.get('dtype')}, world size {run.get('world_size')}, "
                     f"{run.get('pairs_computed')} pairs computed in {run.get('wall_s', 0):.1f} s this run")
    sk = summary.get("skipped", {})
    if sk.get("n_pairs"):
        lines.append(f"- **skipped**: {sk['n_pairs']} pairs ({sk['n_images']} missing or unreadable images, "
                     "listed in summary.json)")
    lines.append("")
    metrics = summary["metrics"]
    if not ds.get("human_scores"):
        lines += ["**No human scores** in this dataset (empty score column): distances were written to the "
                  "`scores_<metric>.csv` files; no correlations.", ""]
        lines += ["| metric | pairs scored | mean distance |", "| --- | ---: | ---: |"]
        for name, m in metrics.items():
            lines.append(f"| {name} | {m.get('n_rows', 0)} | {_fmt(m.get('mean_distance'), 4)} |")
        lines.append("")
    else:
        ci_txt = "95% CI: bootstrap over reference images" if any(m.get("ci") for m in metrics.values()) else "no CI"
        lines += [f"Positive = agreement with humans (distances are sign-flipped where needed); PLCC after the "
                  f"5-parameter logistic fit; {ci_txt}.", ""]
        lines += ["| metric | n | SRCC | KRCC | PLCC |", "| --- | ---: | --- | --- | --- |"]
        for name, m in metrics.items():
            lines.append(f"| {name} | {m.get('n', 0)} | {_fmt_ci(m, 'SRCC')} | {_fmt_ci(m, 'KRCC')} | "
                         f"{_fmt_ci(m, 'PLCC')} |")
        lines.append("")
        types = sorted({t for m in metrics.values() for t in (m.get("per_type") or {})})
        names = _type_names(ds["name"])
        if types:
            for stat in ("SRCC", "PLCC"):
                lines += [f"## {stat} per distortion type", ""]
                lines.append("| type | n | " + " | ".join(metrics) + " |")
                lines.append("| --- | ---: |" + " ---: |" * len(metrics))
                for t in types:
                    n = next((m["per_type"][t]["n"] for m in metrics.values() if t in (m.get("per_type") or {})), 0)
                    label = f"{t} {names[t]}" if t in names else t
                    cells = [_fmt((m.get("per_type") or {}).get(t, {}).get(stat)) for m in metrics.values()]
                    lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
                lines.append("")
    if summary.get("raid"):
        lines += raid_markdown(summary["raid"])
    return "\n".join(lines).rstrip() + "\n"


def summarize(dataset, records: Sequence[Any], keys: Sequence[str], adapters: Sequence[Any],
              final_rows: Dict[str, Dict[str, Dict[str, str]]], file_hash: Optional[str], bootstrap: int,
              seed: int) -> Dict[str, Any]:
    """The summary of a run: the dataset, and per metric its rows and (with human scores) statistics."""
    has_scores = any(r.score is not None for r in records)
    n_unscored = sum(r.score is None for r in records)
    summary: Dict[str, Any] = {
        "dataset": {"name": dataset.name, "root": str(dataset.root), "n_records": len(records),
                    "n_references": len({r.ref_id for r in records}),
                    "human_higher_is_better": bool(dataset.higher_is_better),
                    "file_list_hash": file_hash, "human_scores": has_scores},
        "metrics": {},
    }
    if not has_scores:
        summary["note"] = "no human scores: the dataset's score column is empty; distances only"
    elif n_unscored:
        summary["note"] = f"{n_unscored} pairs have no human score and are left out of the statistics"
    for a in adapters:
        rows = final_rows[a.name]
        idx = [i for i, k in enumerate(keys) if k in rows]
        d = np.array([float(rows[keys[i]]["distance"]) for i in idx], dtype=np.float64)
        entry: Dict[str, Any] = {"kind": a.kind, "lower_is_better": bool(a.lower_is_better), "n_rows": len(idx),
                                 "n_missing_rows": len(records) - len(idx),
                                 "mean_distance": float(d.mean()) if d.size else None}
        if has_scores:
            sel = [k for k, i in enumerate(idx) if records[i].score is not None]
            st = compute_statistics(
                d[sel], [records[idx[k]].score for k in sel], [records[idx[k]].ref_id for k in sel],
                [records[idx[k]].dist_type for k in sel], metric_lower_is_better=a.lower_is_better,
                human_higher_is_better=dataset.higher_is_better, bootstrap=bootstrap, seed=seed)
            entry.update(st)
        summary["metrics"][a.name] = entry
    return summary
