"""RAID evaluation command: score metrics on RAID's stimuli (incrementally) and write the tables.

``python -m invariant_lpips.benchmarks.raid_report --stimuli DIR --human DIR --metrics a,b --out DIR``
(``benchmarks/raid_table.py`` runs it with the README's settings). ``--stimuli`` is a real RAID image
folder or the reconstruction written by ``invariant-lpips make-dataset raid-kodak``; ``--human`` holds
``responses.csv`` and ``answers.csv``. Writes ``OUT/scores/<metric>.csv`` (cached distances: a rerun
scores only the metrics and curves that are missing), ``OUT/summary.json``, ``OUT/summary.md``,
``OUT/manifest.json`` and ``OUT/raid_curves.png`` (matplotlib, optional).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..data.raid import RAID_KIND_ORDER, RaidCurvePoint, read_raid_curves, read_raid_trials, raid_images_dir
from ..metric.registry import get_spec
from .environment import environment, machine_line
from .persistence import atomic_write_json, atomic_write_text
from .raid import plot_curve_panels
from .raid_eval import (LEVEL_INDEX, MLDS_CEILING, Pair, needed_pairs, raid_figures, score_metric,
                        stimuli_fingerprint)

__all__ = ["run_raid_evaluation", "raid_tables_markdown", "readme_table", "plot_mean_curves", "dataset_label", "main"]

RECONSTRUCTED_LABEL = "RAID reconstructed from Kodak24"
PAPER_SRCC = 0.95  # the paper's reported RAID Spearman correlation (pooled)


def dataset_label(images_dir: Union[str, Path]) -> str:
    """``RAID reconstructed from Kodak24`` when the folder holds our ``params.json``, else ``RAID``."""
    p = Path(images_dir) / "params.json"
    try:
        return RECONSTRUCTED_LABEL if "recipe_version" in json.loads(p.read_text()) else "RAID"
    except (OSError, ValueError):
        return "RAID"


def _f(v: Any, nd: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def raid_tables_markdown(fig: Mapping[str, Any], label: str, machine: str = "") -> List[str]:
    """The curve-level table and the two trial-level tables (all trials; no level-1 image)."""
    rows = fig["rows"]
    kinds = list(RAID_KIND_ORDER)
    L = [f"## {label}: metrics against RAID's human data", ""]
    if machine:
        L += [f"Machine: {machine}.", ""]
    L += [f"Curve level: SRCC of d(level 1, level L) against the MLDS Response, pooled over the "
          f"{next(iter(rows.values()))['curve']['n_pooled']} distorted rows, per distortion, and the mean of the "
          "per-curve SRCCs (10 levels each). Baselines: the level index, MSE, and the MLDS curves themselves "
          f"(SRCC 1 by construction). The paper reports {PAPER_SRCC:.2f} (pooled).", "",
          "| metric | pooled SRCC | " + " | ".join(kinds) + " | mean per-curve SRCC |",
          "| --- | ---: |" + " ---: |" * (len(kinds) + 1)]
    for name, r in rows.items():
        c = r["curve"]
        tag = " (baseline)" if r.get("baseline") and name not in (LEVEL_INDEX, MLDS_CEILING) else ""
        L.append(f"| {name}{tag} | {_f(c['pooled'])} | " + " | ".join(_f(c['per_distortion'].get(k)) for k in kinds)
                 + f" | {_f(c['per_curve_mean'])} |")
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


def _mean_curves(curves: Sequence[RaidCurvePoint], value) -> Dict[str, np.ndarray]:
    """{kind: mean over images of the per-curve min-max normalised values at levels 1..10}."""
    by: Dict[tuple, Dict[int, float]] = {}
    for c in curves:
        by.setdefault((c.image, c.kind), {})[c.level] = value(c)
    acc: Dict[str, List[np.ndarray]] = {}
    for (_i, k), d in by.items():
        arr = np.array([d[lv] for lv in sorted(d)], dtype=np.float64)
        span = arr.max() - arr.min()
        acc.setdefault(k, []).append((arr - arr.min()) / span if span > 0 else np.zeros_like(arr))
    return {k: np.mean(np.stack(v), 0) for k, v in acc.items()}


def plot_mean_curves(curves: Sequence[RaidCurvePoint], distances: Mapping[str, Mapping[Pair, float]],
                     path: Union[str, Path], lower_is_better: Optional[Mapping[str, bool]] = None,
                     title: str = "") -> Path:
    """One panel per distortion: the human MLDS curve (Curve_Value) and each metric's d(level 1, level L),
    both normalised to [0, 1] per (image, distortion) curve and averaged over the images."""
    lib = dict(lower_is_better or {})

    def panels(mc: Dict[str, np.ndarray]) -> Dict[str, tuple]:
        return {k: (list(range(1, len(v) + 1)), v.tolist()) for k, v in mc.items()}

    human = panels(_mean_curves(curves, lambda c: c.curve_value))
    shown = {}
    for name, vals in distances.items():
        s = 1.0 if lib.get(name, True) else -1.0
        shown[name] = panels(_mean_curves(curves, lambda c, v=vals, s=s: 0.0 if c.level == 1
                                          else s * v[(c.image, c.kind, 1, c.level)]))
    return plot_curve_panels(human, shown, path, "d(level 1, level L), normalised per curve", title)


def _ranges(values: Sequence[int]) -> str:
    """[1, 2, 3, 5] -> '1-3, 5'."""
    out: List[str] = []
    for v in values:
        if out and int(out[-1].split("-")[-1]) == v - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{v}"
        else:
            out.append(str(v))
    return ", ".join(out)


def _complete_images(vals: Mapping[Pair, float], pairs: Sequence[Pair]) -> set:
    """Images all of whose needed pairs are scored."""
    imgs = {p[0] for p in pairs}
    return {i for i in imgs if all(p in vals for p in pairs if p[0] == i)}


def run_raid_evaluation(images_dir: Union[str, Path], responses: Union[str, Path], answers: Union[str, Path],
                        metrics: Sequence[str], out_dir: Union[str, Path], device: str = "cpu",
                        cache_root: Union[str, Path, None] = None, resume: bool = True, report: bool = True,
                        plot: bool = True, progress: bool = True, chunk: int = 4, score: bool = True,
                        interleave: bool = False, images: Optional[Sequence[int]] = None) -> Dict[str, Any]:
    """Score ``metrics`` (missing pairs only) and, with ``report``, write the summary, tables and plot.

    ``images``: evaluate (score, tabulate, plot) only these RAID images (1..24), e.g. ``range(1, 13)``
    where scoring every image with every peer is too slow; the tables say which images they cover.

    ``score=False`` reports from the cached scores only. ``interleave`` scores image by image across
    the metrics (so that an interrupted run leaves every metric on the same images). Metrics whose
    scores are incomplete are left out of the main tables; all metrics are then also reported on the
    images that every one of them has complete (``subset``). Returns the summary dict."""
    from .raid_eval import read_pair_scores

    images_dir = raid_images_dir(images_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves = read_raid_curves(responses)
    trials = read_raid_trials(answers)
    pairs = needed_pairs(curves, trials)
    fp = stimuli_fingerprint(images_dir, pairs)  # of every stimulus: a subset reuses the same score cache
    n_images = n_all = len({c.image for c in curves})
    if images is not None:
        keep = {int(i) for i in images}
        unknown = sorted(keep - {c.image for c in curves})
        if unknown:
            raise ValueError(f"images {unknown} are not in {responses} (it has 1..{n_images})")
        curves = [c for c in curves if c.image in keep]
        trials = [t for t in trials if t.image in keep]
        pairs = needed_pairs(curves, trials)
        n_images = len(keep)
    dev = torch.device(device)
    if score:
        from ..metric.registry import build_metric

        groups = ([[p for p in pairs if p[0] == i] for i in sorted({p[0] for p in pairs})] if interleave
                  else [pairs])
        adapters = {n: build_metric(n, dev) for n in metrics}
        first = True
        for g in groups:
            for name in metrics:
                score_metric(adapters[name], images_dir, g, out / "scores", device=dev, cache_root=cache_root,
                             chunk=chunk, resume=resume or not first, progress=progress, fingerprint=fp)
            first = False
    distances: Dict[str, Dict[Pair, float]] = {}
    for name in metrics:
        path = out / "scores" / (name.replace(":", "_").replace("/", "_") + ".csv")
        distances[name] = read_pair_scores(path)
    complete = {n for n, v in distances.items() if all(p in v for p in pairs)}
    lib = {n: get_spec(n).lower_is_better for n in metrics}
    label = dataset_label(images_dir)
    if images is not None:
        label += f", images {_ranges(sorted(keep))} ({len(keep)} of {n_all})"
    fig = raid_figures(curves, trials, {n: distances[n] for n in metrics if n in complete}, lower_is_better=lib)
    env = environment(dev)
    machine = machine_line(env)
    summary = {"dataset": label, "images_dir": str(images_dir), "stimuli_sha256": fp, "n_pairs": len(pairs),
               "metrics": list(metrics), "complete": [n for n in metrics if n in complete],
               "incomplete": {n: sorted(_complete_images(distances[n], pairs)) for n in metrics if n not in complete},
               "machine": machine, "paper_srcc": PAPER_SRCC, **fig}
    md = raid_tables_markdown(fig, label, machine)
    if summary["incomplete"]:
        done = {n: _complete_images(distances[n], pairs) for n in metrics}
        started = [n for n in metrics if done[n]]  # metrics with no complete image are left out here
        common = set.intersection(*[done[n] for n in started]) if started else set()
        md += ["Not fully scored yet (images complete): " + "; ".join(
            f"{n}: {len(v)}/{n_images}" for n, v in summary["incomplete"].items()), ""]
        if common:
            sub_c = [c for c in curves if c.image in common]
            sub_t = [t for t in trials if t.image in common]
            sub = raid_figures(sub_c, sub_t, {n: distances[n] for n in started}, lower_is_better=lib)
            summary["subset"] = {"images": sorted(common), **sub}
            md += raid_tables_markdown(sub, f"{label}, only the images every metric has scored "
                                       f"({len(common)} of {n_images}: {', '.join(map(str, sorted(common)))})", "")
    if not report:
        return summary
    params = Path(images_dir) / "params.json"
    manifest = {"dataset": label, "stimuli_sha256": fp,
                "params_json_sha256": hashlib.sha256(params.read_bytes()).hexdigest() if params.is_file() else None,
                "responses_sha256": hashlib.sha256(Path(responses).read_bytes()).hexdigest(),
                "answers_sha256": hashlib.sha256(Path(answers).read_bytes()).hexdigest(),
                "machine": machine, **env,
                "metrics": {n: json.loads((out / "scores" / (n.replace(":", "_") + ".json")).read_text())
                            for n in metrics if (out / "scores" / (n.replace(":", "_") + ".json")).is_file()}}
    atomic_write_json(out / "manifest.json", manifest)
    if plot:
        try:
            shown = {n: distances[n] for n in metrics if n in complete}
            summary["plot"] = str(plot_mean_curves(curves, shown, out / "raid_curves.png", lib,
                                                   title=f"{label}: mean curves vs human MLDS"))
        except ImportError as exc:
            summary["plot_error"] = f"no plot: {exc}"
    summary["markdown"] = md
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", "\n".join(md) + "\n")
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m invariant_lpips.benchmarks.raid_report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stimuli", required=True, help="RAID image folder ({rot|trans|scale|gn}_img_XX_level_YY.png)")
    p.add_argument("--human", default=None, help="folder with responses.csv and answers.csv")
    p.add_argument("--responses", default=None, help="responses.csv (default HUMAN/responses.csv)")
    p.add_argument("--answers", default=None, help="answers.csv (default HUMAN/answers.csv)")
    p.add_argument("--metrics", required=True, help="comma-separated registry names")
    p.add_argument("--out", required=True, help="output folder (scores/ inside is the cache)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache", default=None, help="feature cache folder of our variants (default: the package's)")
    p.add_argument("--no-resume", action="store_true", help="discard these metrics' cached scores")
    p.add_argument("--score-only", action="store_true", help="score, write no report")
    p.add_argument("--report-only", action="store_true", help="report the cached scores, score nothing")
    p.add_argument("--interleave", action="store_true", help="score image by image across the metrics")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.human is None and (a.responses is None or a.answers is None):
        p.error("give --human DIR or both --responses and --answers")
    responses = a.responses or str(Path(a.human) / "responses.csv")
    answers = a.answers or str(Path(a.human) / "answers.csv")
    metrics = [m.strip() for m in a.metrics.split(",") if m.strip()]
    s = run_raid_evaluation(a.stimuli, responses, answers, metrics, a.out, device=a.device, cache_root=a.cache,
                            resume=not a.no_resume, report=not a.score_only, plot=not a.no_plot,
                            progress=not a.no_progress, score=not a.report_only, interleave=a.interleave)
    if not a.score_only:
        print("\n".join(s["markdown"]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
