"""RAID evaluation command: score metrics on RAID's stimuli (incrementally), analyse, write the tables.

``python -m invariant_lpips.benchmarks.raid_report --stimuli DIR --human DIR --metrics a,b --out DIR``
(``benchmarks/raid_table.py`` runs it with the README's settings). ``--stimuli`` is a real RAID image
folder or the reconstruction written by ``invariant-lpips make-dataset raid-kodak``; ``--human`` holds
``responses.csv`` and ``answers.csv``. Writes ``OUT/scores/<metric>.csv`` (cached distances: a rerun
scores only the metrics and curves that are missing), ``OUT/summary.json``, ``OUT/summary.md``,
``OUT/manifest.json`` and ``OUT/raid_curves.png`` (matplotlib, optional).

**Scoring** (:func:`score_metric`): a metric's distance between two stimuli of the same (image,
distortion) curve, for every level pair the analysis needs (:func:`~.raid.needed_pairs`: ``(1, L)`` for
the curves and the pairs shown in the trials, 43 pairs per curve in RAID, 96 curves). Distances are
cached per metric in ``scores/<metric>.csv`` (appended and fsynced after each curve; a rerun scores only
what is missing, so adding one metric scores only that one). Every metric is scored through the one
protocol (:mod:`invariant_lpips.metric.protocol`): each stimulus of a curve goes through ``features``
once, then ``distance`` pairs them. Our variants whose features are pooled statistics read them through
the one :class:`~invariant_lpips.features.cache.FeatureCache` instead.

**Figures and tables**: the one RAID analysis, :mod:`.raid` (:func:`~.raid.raid_figures`,
:func:`~.raid.raid_markdown`, :func:`~.raid.raid_plot`), which the runner's RAID mode uses too.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from ..data.io import load_image
from ..data.raid import RAID_KIND_ORDER, read_raid_curves, read_raid_trials, raid_images_dir, raid_stimulus
from ..features.cache import FeatureCache, default_cache_root, stack
from ..metric.protocol import cat, take
from ..metric.registry import MetricAdapter, build_metric, get_spec
from ..progress import progress_bar
from .environment import environment, machine_line, rows_machine_line
from .persistence import AppendCSV, atomic_write_json, atomic_write_text, read_scores
from .raid import PAPER_SRCC, Pair, needed_pairs, pair, raid_figures, raid_markdown, raid_plot

__all__ = ["score_metric", "read_pair_scores", "stimuli_fingerprint", "run_raid_evaluation", "dataset_label",
           "main"]

_CSV_COLS = ["image", "kind", "level_a", "level_b", "distance"]

RECONSTRUCTED_LABEL = "RAID reconstructed from Kodak24"


def dataset_label(images_dir: Union[str, Path]) -> str:
    """``RAID reconstructed from Kodak24`` when the folder holds our ``params.json``, else ``RAID``."""
    p = Path(images_dir) / "params.json"
    try:
        return RECONSTRUCTED_LABEL if "recipe_version" in json.loads(p.read_text()) else "RAID"
    except (OSError, ValueError):
        return "RAID"


# =============================================================================== scoring


def stimuli_fingerprint(images_dir: Union[str, Path], pairs: Sequence[Pair]) -> str:
    """sha256 over the names and contents of the stimuli the pairs use."""
    files = sorted({raid_stimulus(images_dir, k, i, lv).name for i, k, a, b in pairs for lv in (a, b)})
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode())
        h.update(hashlib.sha256((Path(images_dir) / name).read_bytes()).digest())
    return h.hexdigest()


def _by_curve(pairs: Iterable[Pair]) -> "OrderedDict[Tuple[int, str], List[Pair]]":
    out: "OrderedDict[Tuple[int, str], List[Pair]]" = OrderedDict()
    for p in pairs:
        out.setdefault((p[0], p[1]), []).append(p)
    return out


def _scores_path(scores_dir: Path, name: str) -> Path:
    return scores_dir / (name.replace(":", "_").replace("/", "_") + ".csv")


def read_pair_scores(path: Union[str, Path]) -> Dict[Pair, float]:
    """A scores CSV -> {pair: distance}; a torn last line is ignored (the one score file:
    :func:`~invariant_lpips.benchmarks.persistence.read_scores`)."""
    rows, _clean = read_scores(path, _CSV_COLS, ("image", "kind", "level_a", "level_b"))
    return {pair(int(r["image"]), r["kind"], int(r["level_a"]), int(r["level_b"])): float(r["distance"])
            for r in rows}


def _append(path: Path, rows: List[Tuple[Pair, float]]) -> None:
    with AppendCSV(path, _CSV_COLS) as out:
        out.append([[i, k, a, b, repr(float(d))] for (i, k, a, b), d in rows])


def scoring_machines(scores_dir: Path, metrics: Sequence[str], here: str) -> str:
    """The report's machine line: ``here`` when every metric's scores were computed on it, else ``here`` for
    the report and, per machine, the metrics its scores came from (``not recorded`` for score files written
    before machines were recorded)."""
    rows = {}
    for name in metrics:
        meta_path = _scores_path(scores_dir, name).with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        rows[name] = {"machine": " + ".join(meta.get("machines") or ["not recorded"])}
    return rows_machine_line(rows, here, what="scores")


def _meta_ok(meta_path: Path, fingerprint: str, name: str) -> None:
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
    # the machines that scored these rows (a resumed run adds its own): the report names them per metric
    old_meta = json.loads(meta_path.read_text()) if done and meta_path.is_file() else {}
    old_machines = old_meta.get("machines", ["not recorded"]) if done else []
    meta.update({k: old_meta[k] for k in ("memo", "machines_note") if k in old_meta})
    meta["machines"] = list(dict.fromkeys(old_machines + [machine_line(environment(str(device)))]))
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


# =============================================================================== the command


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
        path = _scores_path(out / "scores", name)
        _meta_ok(path.with_suffix(".json"), fp, name)  # report-only: cached scores of these stimuli only
        distances[name] = read_pair_scores(path)
    complete = {n for n, v in distances.items() if all(p in v for p in pairs)}
    lib = {n: get_spec(n).lower_is_better for n in metrics}
    label = dataset_label(images_dir)
    if images is not None:
        label += f", images {_ranges(sorted(keep))} ({len(keep)} of {n_all})"
    fig = raid_figures(curves, trials, {n: distances[n] for n in metrics if n in complete}, lower_is_better=lib)
    env = environment(dev)
    machine = scoring_machines(out / "scores", metrics, machine_line(env))
    summary = {"dataset": label, "images_dir": str(images_dir), "stimuli_sha256": fp, "n_pairs": len(pairs),
               "metrics": list(metrics), "complete": [n for n in metrics if n in complete],
               "incomplete": {n: sorted(_complete_images(distances[n], pairs)) for n in metrics if n not in complete},
               "machine": machine, "paper_srcc": PAPER_SRCC, **fig}
    md = raid_markdown(fig, label, machine)
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
            md += raid_markdown(sub, f"{label}, only the images every metric has scored "
                                f"({len(common)} of {n_images}: {', '.join(map(str, sorted(common)))})")
    if not report:
        return summary
    params = Path(images_dir) / "params.json"
    manifest = {"dataset": label, "stimuli_sha256": fp,
                "params_json_sha256": hashlib.sha256(params.read_bytes()).hexdigest() if params.is_file() else None,
                "responses_sha256": hashlib.sha256(Path(responses).read_bytes()).hexdigest(),
                "answers_sha256": hashlib.sha256(Path(answers).read_bytes()).hexdigest(),
                "machine": machine, **env,
                "metrics": {n: json.loads(_scores_path(out / "scores", n).with_suffix(".json").read_text())
                            for n in metrics if _scores_path(out / "scores", n).with_suffix(".json").is_file()}}
    atomic_write_json(out / "manifest.json", manifest)
    if plot:
        summary.update(raid_plot(curves, {n: distances[n] for n in metrics if n in complete}, out / "raid_curves.png",
                                 lib, title=f"{label}: mean curves vs human MLDS"))
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
