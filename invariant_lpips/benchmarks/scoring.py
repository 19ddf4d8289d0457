"""Scoring: metrics from the registry, image decoding, and the two ways a pair is scored, both through the
one protocol (:mod:`invariant_lpips.metric.protocol`: ``features`` / ``distance``).

* :class:`PooledScorer` -- our variants whose features are pooled statistics only
  (``adapter.statistics_cached``: no registered terms). Their distance is a function of per-image
  statistics, read through the one
  :class:`~invariant_lpips.features.cache.FeatureCache` (sharing the metric's trunk; metrics with the
  same trunk configuration share one cache). A second run over the same images does no trunk pass:
  it hashes the files and reads the cached statistics; no image is decoded.
* :class:`ImageScorer` -- every other metric: decoded images (one DataLoader for all such metrics,
  decoding in worker processes while the previous batch is scored, pinned memory on CUDA,
  channels_last); the reference's features are computed once per group and paired with each batch of
  distorted images, under CUDA autocast with ``dtype``.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..data.io import load_image
from ..features.cache import FeatureCache, default_cache_root, stack
from ..metric.registry import MetricAdapter, build_metric
from ..metric.protocol import take
from .plan import BenchmarkConfig, Group, Skips

__all__ = ["prepare_metrics", "ImageScorer", "PooledScorer", "make_scorers", "ImageJobs", "collate",
           "load_error", "score_image_batch", "score_group_pooled", "release_memory"]

Row = Dict[str, str]
#: what a failed read raises (missing file, a directory, not a readable image); other OSErrors propagate
READ_ERRORS = (FileNotFoundError, IsADirectoryError, ValueError)


# =============================================================================== metrics


def module_of(adapter: MetricAdapter) -> Optional[torch.nn.Module]:
    """The adapter's module holding parameters, or None (pixel metrics hold an Identity)."""
    m = adapter.module
    return None if m is None or isinstance(m, torch.nn.Identity) else m


def prepare_metrics(metrics: Sequence[Union[str, MetricAdapter]], device: torch.device,
                    compile_trunk: bool) -> List[MetricAdapter]:
    """Metric names (built with :func:`~invariant_lpips.metric.registry.build_metric`) or ready
    adapters -> adapters on ``device``, eval, channels_last; our trunks compiled with ``compile_trunk``."""
    adapters: List[MetricAdapter] = []
    for m in metrics:
        a = build_metric(m, device) if isinstance(m, str) else m
        if not isinstance(a, MetricAdapter):
            raise TypeError(f"metrics must be names or MetricAdapter objects, got {type(a).__name__}")
        adapters.append(_prepare(a, device, compile_trunk))
    names = [a.name for a in adapters]
    if not names:
        raise ValueError("no metrics given")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"metric names must be unique, got duplicates {dup}")
    return adapters


def _prepare(adapter: MetricAdapter, device: torch.device, compile_trunk: bool) -> MetricAdapter:
    adapter = adapter.to(device)
    module = module_of(adapter)
    if module is not None:
        module.eval()
        module.to(memory_format=torch.channels_last)
    net = adapter.trunk
    if compile_trunk and net is not None:
        net.backend = "eager"  # inductor fuses the plain layers itself
        if hasattr(torch.nn.Module, "compile"):  # torch >= 2.2
            net.compile()  # in place: keeps the trunk's attributes (taps, phase_multiplier)
        else:  # pragma: no cover
            module.net = torch.compile(net)
    return adapter


# =============================================================================== image decoding


class ImageJobs(torch.utils.data.Dataset):
    """Decodes image files in DataLoader workers; failures are returned, not raised."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = [str(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return i, load_image(self.paths[i]), None
        except Exception as exc:  # noqa: BLE001 - reported (or raised) by the main process
            return i, None, (type(exc).__name__, str(exc))


def collate(items):
    idx = [i for i, _, _ in items]
    imgs = [t for _, t, _ in items]
    errs = [e for _, _, e in items]
    if all(t is not None for t in imgs) and len({tuple(t.shape) for t in imgs}) == 1:
        return {"idx": idx, "images": torch.cat(imgs, 0), "errors": errs}
    return {"idx": idx, "images": imgs, "errors": errs}


def load_error(path: str, err: Tuple[str, str]) -> Exception:
    """The exception to raise for a failed read reported as ``(type name, message)``."""
    kind, msg = err
    text = msg if path in msg else f"cannot read image {path}: {kind}: {msg}"
    return FileNotFoundError(text) if kind == "FileNotFoundError" else ValueError(text)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last)


# =============================================================================== scorers


def _as_numpy(d: torch.Tensor, name: str, n: int) -> np.ndarray:
    d = d.detach().float().reshape(-1).cpu().numpy().astype(np.float64)
    if d.shape[0] != n:
        raise RuntimeError(f"metric {name!r} returned {d.shape[0]} values for a batch of {n}")
    return d


def _row(name: str, rec, key: str, value: float) -> Row:
    return {"metric": name, "ref_id": rec.ref_id, "dist_path": key, "dist_type": rec.dist_type,
            "level": "" if rec.level is None else str(rec.level),
            "human_score": "" if rec.score is None else repr(float(rec.score)),
            "distance": repr(float(value))}


def _check_finite(name: str, d: np.ndarray, recs: Sequence[Any]) -> None:
    bad = np.flatnonzero(~np.isfinite(d))
    if bad.size:
        rec = recs[int(bad[0])]
        raise ValueError(f"metric {name!r} returned a non-finite distance for {rec.dist_path} "
                         f"(reference {rec.ref_path}); with fp16 try dtype='bf16' or float32")


class ImageScorer:
    """Runs one metric on (reference, batch of distorted images) with the run's device and precision:
    the reference's features once (:meth:`set_reference`), each batch's features, then ``distance``."""

    def __init__(self, adapter: MetricAdapter, device: torch.device, amp_dtype: Optional[torch.dtype]):
        self.adapter = adapter
        self.name = adapter.name
        self.device = device
        self.amp_dtype = amp_dtype
        self.ref: Any = None

    def _autocast(self):
        if self.amp_dtype is not None and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def set_reference(self, ref: Optional[torch.Tensor]) -> None:
        """The reference image (1, 3, H, W) in [0, 1] (its features are kept), or None."""
        if ref is None:
            self.ref = None
            return
        with self._autocast():
            self.ref = self.adapter.features(ref)

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        n = batch.shape[0]
        ref = self.ref if self.adapter.broadcasts else take(self.ref, [0] * n)
        with self._autocast():
            d = self.adapter.distance(ref, self.adapter.features(batch))
        return _as_numpy(d, self.name, n)


class PooledScorer:
    """One of our variants whose features are pooled statistics, scored from statistics read through a
    :class:`FeatureCache` (the cache's entries hold every statistic: the metric's terms are stacked)."""

    def __init__(self, adapter: MetricAdapter, cache: FeatureCache):
        self.adapter = adapter
        self.name = adapter.name
        self.terms = list(adapter.module.terms)
        self.cache = cache
        self.device = next(iter(adapter.module.parameters())).device

    def __call__(self, ref: Dict[str, torch.Tensor], dists: Sequence[Dict[str, torch.Tensor]]) -> np.ndarray:
        n = len(dists)
        g1 = {k: v.to(self.device) for k, v in stack(dists, self.terms).items()}
        g0 = {k: ref[k].to(self.device).unsqueeze(0) for k in self.terms}  # a batch of one: the formulation broadcasts
        return _as_numpy(self.adapter.distance(g0, g1), self.name, n)


def make_scorers(adapters: Sequence[MetricAdapter], cfg: BenchmarkConfig
                 ) -> Tuple[Dict[str, ImageScorer], Dict[str, PooledScorer], Dict[str, FeatureCache]]:
    """(image scorers, pooled scorers, feature caches by configuration key)."""
    image: Dict[str, ImageScorer] = {}
    pooled: Dict[str, PooledScorer] = {}
    caches: Dict[str, FeatureCache] = {}
    root = Path(cfg.cache_root) if cfg.cache_root is not None else default_cache_root()
    for a in adapters:
        if not a.statistics_cached:
            image[a.name] = ImageScorer(a, cfg.device, cfg.amp_dtype)
            continue
        cache = FeatureCache(a.module.variant, root=root, device=cfg.device, trunk=a.trunk, enabled=cfg.feature_cache,
                             dtype=cfg.amp_dtype)
        cache = caches.setdefault(cache.key, cache)  # same trunk configuration: one cache, one trunk pass
        pooled[a.name] = PooledScorer(a, cache)
    return image, pooled, caches


# =============================================================================== scoring a group


def score_image_batch(g: Group, batch: Dict[str, Any], records: Sequence[Any], keys: Sequence[str],
                      job_record: Sequence[Optional[int]], paths: Sequence[Path],
                      scorers: Dict[str, ImageScorer], device: torch.device, skip_missing: bool,
                      skips: Skips) -> int:
    """Score one decoded batch of distorted images with every image metric that still needs them;
    rows go to ``g.pending``. Returns the number of (metric, pair) scores computed."""
    ok_pos: List[int] = []
    for pos, (jid, err) in enumerate(zip(batch["idx"], batch["errors"])):
        if err is None:
            ok_pos.append(pos)
            continue
        path = str(paths[jid])
        if not skip_missing:
            raise load_error(path, err)
        skips.add(path, f"{err[0]}: {err[1]}", "distorted", [job_record[jid]])
    imgs = batch["images"]
    # split by image size (a stacked tensor is one size already)
    by_shape: Dict[tuple, List[int]] = {}
    for pos in ok_pos:
        shape = tuple(imgs.shape[1:]) if isinstance(imgs, torch.Tensor) else tuple(imgs[pos].shape[1:])
        by_shape.setdefault(shape, []).append(pos)
    computed = 0
    for positions in by_shape.values():
        if isinstance(imgs, torch.Tensor):
            sub = imgs if len(positions) == imgs.shape[0] else imgs[positions]
        else:
            sub = torch.cat([imgs[p] for p in positions], 0)
        sub = to_device(sub, device)
        rec_ids = [job_record[batch["idx"][p]] for p in positions]
        for name, scorer in scorers.items():
            want = [k for k, i in enumerate(rec_ids) if i in g.todo[name]]
            if not want:
                continue
            x = sub if len(want) == len(rec_ids) else sub[want]
            d = scorer(x)
            _check_finite(name, d, [records[rec_ids[k]] for k in want])
            for k, v in zip(want, d):
                i = rec_ids[k]
                g.pending[name].append(_row(name, records[i], keys[i], v))
            computed += len(want)
    return computed


def _statistics(cache: FeatureCache, paths: List[str], batch_size: int, skip_missing: bool
                ) -> Tuple[Dict[str, Dict[str, torch.Tensor]], Dict[str, str]]:
    """Pooled statistics of image files (path -> stats) and, with ``skip_missing``, the unreadable
    ones (path -> reason); without it a failed read raises an error naming the path."""
    try:
        return cache.features_for_files(paths, batch_size=batch_size), {}
    except READ_ERRORS:
        if not skip_missing:
            raise
    # one file at a time to tell the unreadable ones apart (the readable ones are cached by now)
    stats: Dict[str, Dict[str, torch.Tensor]] = {}
    failed: Dict[str, str] = {}
    for p in dict.fromkeys(paths):
        try:
            stats.update(cache.features_for_files([p], batch_size=1))
        except READ_ERRORS as exc:
            failed[p] = f"{type(exc).__name__}: {exc}"
    return stats, failed


def score_group_pooled(g: Group, records: Sequence[Any], keys: Sequence[str], scorers: Dict[str, PooledScorer],
                       batch_size: int, skip_missing: bool, skips: Skips) -> int:
    """Score the group's pairs with every pooled metric (statistics through the feature cache);
    rows go to ``g.pending``. Returns the number of (metric, pair) scores computed."""
    if g.failed is not None:
        return 0
    by_cache: Dict[int, List[PooledScorer]] = {}
    for s in scorers.values():
        by_cache.setdefault(id(s.cache), []).append(s)
    computed = 0
    ref = str(g.ref_path)
    for group_scorers in by_cache.values():
        cache = group_scorers[0].cache
        want = sorted(set().union(*(g.todo[s.name] for s in group_scorers)) - skips.pairs)
        if not want:
            continue
        stats, failed = _statistics(cache, [ref] + [str(records[i].dist_path) for i in want], batch_size,
                                    skip_missing)
        if ref in failed:
            g.failed = failed[ref]
            skips.add(ref, failed[ref], "reference", g.items)
            g.pending = {n: [] for n in g.pending}
            return 0
        for i in want:
            p = str(records[i].dist_path)
            if p in failed:
                skips.add(p, failed[p], "distorted", [i])
        for s in group_scorers:
            ids = [i for i in want if i in g.todo[s.name] and i not in skips.pairs]
            if not ids:
                continue
            d = s(stats[ref], [stats[str(records[i].dist_path)] for i in ids])
            _check_finite(s.name, d, [records[i] for i in ids])
            g.pending[s.name].extend(_row(s.name, records[i], keys[i], v) for i, v in zip(ids, d))
            computed += len(ids)
    return computed


def release_memory(caches: Dict[str, FeatureCache]) -> None:
    """Drop the statistics a cache keeps in memory: a finished group's images are not read again
    (keeps a 10k-image run's memory flat; the entries stay on disk)."""
    for cache in caches.values():
        cache.clear_memory()
