"""Benchmark runner: score image-quality datasets with several metrics, reliably, and correlate with humans.

::

    from invariant_lpips.benchmarks.runner import run_benchmark
    summary = run_benchmark("kadid10k", ["lpips-vgg", "gap-lin", "paper"], "results/kadid",
                            root="data/kadid10k", device="cuda", dtype="bf16")

or ``invariant-lpips bench --dataset kadid10k --root data/kadid10k --metrics lpips-vgg,gap-lin
--out results/kadid`` (see :mod:`invariant_lpips.benchmarks.cli`).

The run, section by section (one module each):

:mod:`~invariant_lpips.benchmarks.plan`
    the configuration (:class:`~invariant_lpips.benchmarks.plan.BenchmarkConfig`) and the work:
    pairs grouped by reference image, only those missing from the output folder, this rank's share.
:mod:`~invariant_lpips.benchmarks.scoring`
    metrics from the registry (:func:`~invariant_lpips.metric.registry.build_metric`). Our GAP
    variants read pooled statistics through the one
    :class:`~invariant_lpips.features.cache.FeatureCache` (a second run over the same images does no
    trunk pass); every other metric gets decoded images (one DataLoader, worker processes, pinned
    memory on CUDA, channels_last) with the reference broadcast against batches of distorted
    images. Everything runs under ``torch.inference_mode()``; ``dtype='bf16' | 'fp16'`` autocasts on
    CUDA (ignored with a warning on CPU); ``compile=True`` compiles our metrics' VGG trunks.
:mod:`~invariant_lpips.benchmarks.persistence`
    scores appended and fsynced per reference group, an atomically replaced state file, resume
    (torn lines and duplicates dropped, finished groups not even decoded again, a changed metric
    configuration refused), the final merge in dataset order.
:mod:`~invariant_lpips.benchmarks.manifest`
    versions, device, dtype, weight hashes, the dataset's file-list hash, metric fingerprints.
:mod:`~invariant_lpips.benchmarks.report`
    SRCC / KRCC / PLCC with bootstrap CIs, ``summary.json`` and ``summary.md`` (and, for RAID, the one
    RAID analysis, :mod:`~invariant_lpips.benchmarks.raid`: curve-level figures; the trial-level ones
    need RAID's raw trials, ``benchmarks/raid_table.py``).
:mod:`~invariant_lpips.benchmarks.distributed`
    under ``torchrun`` (``WORLD_SIZE`` > 1) every rank scores every ``world_size``-th reference;
    rank 0 gathers the new rows and alone writes the final CSVs and the summary.

Missing or corrupt images raise an error naming their paths; with ``skip_missing=True`` the
affected pairs are left out, counted and listed in the summary.

Outputs in ``out_dir``
    ``scores_<metric>.csv`` (metric, ref_id, dist_path, dist_type, level, human_score, distance; in
    dataset order), ``summary.json``, ``summary.md``, ``manifest.json``, and for RAID ``raid_curves.png``.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from ..data.datasets import IQADataset, TripletRecord, load_dataset
from ..metric.registry import MetricAdapter
from ..progress import progress_bar
from .distributed import Dist, init_distributed
from .manifest import build_manifest, cpu_model, describe_caches, manifest_dataset, metric_info
from .persistence import (CSV_FIELDS, ScoreStore, atomic_write_json, atomic_write_text, jsonable,
                          metric_file_stem, now, read_scores)
from .plan import (BenchmarkConfig, Group, Skips, dtype_name, file_list_hash, image_batches, parse_dtype,
                   plan_groups, record_keys)
from .raid import curves_from_records, raid_figures, raid_plot
from .report import compute_statistics, summarize, write_summary_markdown
from .scoring import (ImageJobs, collate, load_error, make_scorers, prepare_metrics, release_memory,
                      score_group_pooled, score_image_batch, to_device)

__all__ = [
    "run_benchmark",
    "BenchmarkConfig",
    "compute_statistics",
    "read_scores",
    "write_summary_markdown",
    "CSV_FIELDS",
    "metric_file_stem",
    "cpu_model",
]


def run_benchmark(
    dataset,
    metrics: Sequence[Union[str, MetricAdapter]],
    out_dir: Union[str, Path],
    device: Union[str, torch.device] = "cpu",
    batch_size: int = 16,
    num_workers: int = 2,
    dtype: Union[None, str, torch.dtype] = None,
    compile: bool = False,  # noqa: A002 - mirrors the CLI flag
    skip_missing: bool = False,
    resume: bool = True,
    progress: bool = True,
    bootstrap: int = 1000,
    *,
    root: Union[str, Path, None] = None,
    seed: int = 0,
    plots: bool = True,
    cache_root: Union[str, Path, None] = None,
    feature_cache: bool = True,
) -> Optional[Dict[str, Any]]:
    """Score ``dataset`` with ``metrics`` and write scores, statistics and a manifest to ``out_dir``.

    Args:
        dataset: an :class:`~invariant_lpips.data.datasets.IQADataset` (pair dataset), or its name
            (``kadid10k``, ``tid2008``, ``tid2013``, ``csiq``, ``raid``) with ``root``.
        metrics: metric names of the registry (:func:`~invariant_lpips.metric.registry.list_metrics`),
            or ready :class:`~invariant_lpips.metric.registry.MetricAdapter` objects.
        out_dir: output folder (created).
        device: ``cpu`` / ``cuda`` / ``cuda:N`` (under torchrun ``cuda`` becomes ``cuda:LOCAL_RANK``).
        batch_size: distorted images per metric call (and per trunk batch of the feature cache).
        num_workers: DataLoader worker processes decoding images (0 = in the main process).
        dtype: ``None`` (float32), ``'bf16'`` or ``'fp16'``: autocast on CUDA; ignored on CPU.
        compile: ``torch.compile`` the VGG trunks of our metrics.
        skip_missing: leave out pairs with missing/corrupt images (counted and listed in the
            summary) instead of raising an error that names them.
        resume: continue from the scores already in ``out_dir`` (False: start over for these metrics;
            cached pooled statistics are still used).
        progress: progress bar (rank 0).
        bootstrap: bootstrap resamples for the 95% CIs (0: no CIs).
        root: dataset folder when ``dataset`` is a name.
        seed: bootstrap seed.
        plots: write the RAID curve plot (needs matplotlib).
        cache_root: folder of the feature cache of our GAP variants (default: the package cache,
            ``<cache>/features``).
        feature_cache: False keeps pooled statistics in memory only (nothing read from or written
            to ``cache_root``).

    Returns:
        The summary dict (also written to ``summary.json``) on rank 0; ``None`` on other ranks.
    """
    started = time.perf_counter()
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    amp_dtype = parse_dtype(dtype)
    if amp_dtype is not None and device.type != "cuda":
        warnings.warn(f"dtype {dtype_name(amp_dtype)} is applied by CUDA autocast only; running float32 on "
                      f"{device.type}", stacklevel=2)
        amp_dtype = None

    if isinstance(dataset, (str, os.PathLike)) and not isinstance(dataset, IQADataset):
        if root is None:
            raise ValueError("run_benchmark: pass root= with a dataset name (or pass a dataset object)")
        dataset = load_dataset(str(dataset), root, validate=not skip_missing)
    elif not skip_missing:
        dataset.validate()  # missing files -> FileNotFoundError naming them
    if getattr(dataset, "record_type", None) is TripletRecord:
        raise ValueError(f"run_benchmark scores (reference, distorted) pair datasets; {dataset.name} holds 2AFC "
                         "triplets (use invariant_lpips.data.correlation.two_afc_score on d(ref, p0), d(ref, p1))")
    records = list(dataset.records)
    if not records:
        raise ValueError(f"{dataset.name}: the dataset has no records")

    dist, device = init_distributed(device)
    cfg = BenchmarkConfig(
        out_dir=Path(out_dir), device=device, batch_size=int(batch_size), num_workers=int(num_workers),
        amp_dtype=amp_dtype, compile_trunk=bool(compile), skip_missing=bool(skip_missing), resume=bool(resume),
        progress=bool(progress), bootstrap=int(bootstrap), seed=int(seed), plots=bool(plots),
        cache_root=Path(cache_root) if cache_root is not None else None, feature_cache=bool(feature_cache),
        started=started)
    try:
        return _run(dataset, records, metrics, cfg, dist)
    finally:
        dist.close()


def _run(dataset, records: List[Any], metrics: Sequence[Union[str, MetricAdapter]], cfg: BenchmarkConfig,
         dist: Dist) -> Optional[Dict[str, Any]]:
    out_dir = cfg.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ metrics and the data's identity
    adapters = prepare_metrics(metrics, cfg.device, cfg.compile_trunk)
    names = [a.name for a in adapters]
    store = ScoreStore(out_dir, names, dist.rank, dist.world)
    keys = record_keys(records, dataset.root)
    file_hash, hash_note = file_list_hash(dataset, cfg.skip_missing)
    infos = {a.name: metric_info(a, cfg.dtype_name, file_hash, dataset.name) for a in adapters}
    fingerprints = {n: infos[n]["fingerprint"] for n in names}

    # ------------------------------------------------------------------ start over / resume
    if not cfg.resume and dist.rank == 0:
        store.start_over()
    dist.barrier()
    store.check_fingerprints(fingerprints)
    done = store.load_done()
    dist.barrier()

    # ------------------------------------------------------------------ plan
    skips = Skips()
    groups, n_refs = plan_groups(records, keys, names, done, dist.rank, dist.world, cfg.skip_missing, skips)
    image_scorers, pooled_scorers, caches = make_scorers(adapters, cfg)
    paths, job_record, batches = image_batches(groups, records, list(image_scorers), cfg.batch_size)

    # ------------------------------------------------------------------ manifest + state
    dataset_info = manifest_dataset(dataset, len(records), n_refs, file_hash, hash_note)
    manifest = build_manifest(cfg, dataset_info, dist.world, infos, describe_caches(caches, cfg.feature_cache),
                              now())
    manifest_path = out_dir / "manifest.json"
    if dist.rank == 0:
        atomic_write_json(manifest_path, manifest)
    store.open_state(dataset_info, fingerprints, done)

    # ------------------------------------------------------------------ score
    new_rows, pairs_computed = _score(groups, records, keys, paths, job_record, batches, image_scorers,
                                      pooled_scorers, caches, store, done, skips, cfg,
                                      show=cfg.progress and dist.rank == 0,
                                      desc=f"{dataset.name} x {len(names)} metric(s)")

    # ------------------------------------------------------------------ gather on rank 0, merge
    cache_counts = {k: {"hits": c.hits, "misses": c.misses} for k, c in caches.items()}
    gathered = dist.gather({"rows": new_rows, "skipped": skips.images, "skipped_pairs": sorted(skips.pairs),
                            "pairs_computed": pairs_computed, "feature_cache": cache_counts})
    if dist.rank != 0:
        return None
    final_rows = store.merge(keys, [part["rows"] for part in gathered])

    # ------------------------------------------------------------------ statistics
    wall = time.perf_counter() - cfg.started
    pairs_computed = sum(part["pairs_computed"] for part in gathered)
    summary = summarize(dataset, records, keys, adapters, final_rows, file_hash, cfg.bootstrap, cfg.seed)
    all_skipped = [s for part in gathered for s in part["skipped"]]
    summary["skipped"] = {
        "n_images": len(all_skipped),
        "n_pairs": len(set().union(*[set(part["skipped_pairs"]) for part in gathered])),
        "images": all_skipped,
    }
    summary["run"] = {"device": str(cfg.device), "dtype": cfg.dtype_name, "world_size": dist.world,
                      "pairs_computed": pairs_computed, "wall_s": wall,
                      "pairs_per_s": pairs_computed / wall if wall > 0 and pairs_computed else None,
                      "feature_cache": {k: {c: sum(part["feature_cache"][k][c] for part in gathered)
                                            for c in ("hits", "misses")} for k in cache_counts},
                      "finished": now()}
    if dataset.name == "raid":
        dists = {n: {i: float(final_rows[n][k]["distance"]) for i, k in enumerate(keys) if k in final_rows[n]}
                 for n in names}
        lib = {a.name: a.lower_is_better for a in adapters}
        curves, pair_dists = curves_from_records(records, dists)
        summary["raid"] = raid_figures(curves, None, pair_dists, lower_is_better=lib)
        if cfg.plots and pair_dists:
            summary["raid"].update(raid_plot(curves, pair_dists, out_dir / "raid_curves.png", lib))
    atomic_write_json(out_dir / "summary.json", summary)
    atomic_write_text(out_dir / "summary.md", write_summary_markdown(jsonable(summary)))
    manifest["status"] = "complete"
    manifest["finished"] = now()
    manifest["wall_s"] = wall
    atomic_write_json(manifest_path, manifest)
    return jsonable(summary)


def _score(groups: List[Group], records, keys, paths, job_record, batches, image_scorers, pooled_scorers, caches,
           store: ScoreStore, done: Dict[str, set], skips: Skips, cfg: BenchmarkConfig, show: bool, desc: str):
    """Score every group; rows are appended (and the state saved) group by group.
    Returns (metric -> new rows, number of (metric, pair) scores computed)."""
    names = store.names
    new_rows: Dict[str, List[Dict[str, str]]] = {n: [] for n in names}
    pairs_computed = 0
    writers = store.writers()
    bar = progress_bar(total=sum(len(g.items) for g in groups), unit="pair", desc=desc, disable=not show)
    loader = iter(())
    if batches:
        loader = iter(torch.utils.data.DataLoader(
            ImageJobs(paths), batch_sampler=[b.jobs for b in batches], num_workers=cfg.num_workers,
            collate_fn=collate, pin_memory=cfg.device.type == "cuda"))
    try:
        with torch.inference_mode():
            for g in groups:
                g.pending = {n: [] for n in names}
                advanced = 0
                # metrics that read pixels: the reference, then batches of distorted images
                for b in range(g.n_batches):
                    batch = next(loader)
                    if b == 0:
                        _set_reference(g, batch, image_scorers, cfg, skips)
                    elif g.failed is None:
                        pairs_computed += score_image_batch(g, batch, records, keys, job_record, paths,
                                                            image_scorers, cfg.device, cfg.skip_missing, skips)
                        bar.update(len(batch["idx"]))
                        advanced += len(batch["idx"])
                # our GAP variants: pooled statistics through the feature cache
                if pooled_scorers:
                    pairs_computed += score_group_pooled(g, records, keys, pooled_scorers, cfg.batch_size,
                                                         cfg.skip_missing, skips)
                    release_memory(caches)
                for s in image_scorers.values():
                    s.set_reference(None)
                for n in names:
                    if g.pending.get(n):
                        writers[n].append(g.pending[n])
                        new_rows[n].extend(g.pending[n])
                        done[n].update(r["dist_path"] for r in g.pending[n])
                store.group_done(g.ref_id, [n for n in names if g.todo[n]] if g.failed is None else [], done)
                g.pending = {}
                if len(g.items) > advanced:
                    bar.update(len(g.items) - advanced)
    finally:
        bar.close()
        for w in writers.values():
            w.close()
    return new_rows, pairs_computed


def _set_reference(g: Group, batch, image_scorers, cfg: BenchmarkConfig, skips: Skips) -> None:
    """The decoded reference of a group goes to every image scorer (or the group fails)."""
    err = batch["errors"][0]
    ref_t = None
    if err is not None:
        if not cfg.skip_missing:
            raise load_error(str(g.ref_path), err)
        g.failed = f"{err[0]}: {err[1]}"
        skips.add(g.ref_path, g.failed, "reference", g.items)
    else:
        img = batch["images"]
        img = img if isinstance(img, torch.Tensor) else img[0]
        ref_t = to_device(img, cfg.device)
    for s in image_scorers.values():
        s.set_reference(ref_t)
