"""Benchmark runner: score image-quality datasets with several metrics, reliably, and correlate with humans.

::

    from invariant_lpips.benchmarks.runner import run_benchmark
    summary = run_benchmark("kadid10k", ["lpips-vgg", "lpips-gap", "paper"], "results/kadid",
                            root="data/kadid10k", device="cuda", dtype="bf16")

or ``invariant-lpips bench --dataset kadid10k --root data/kadid10k --metrics lpips-vgg,lpips-gap
--out results/kadid`` (see :mod:`invariant_lpips.benchmarks.cli`).

Work layout
    Pairs are grouped by reference image: a reference (KADID: 81 refs x 125 distorted, RAID: 24 x 40)
    is decoded once, its features are computed once per metric (for InvariantLPIPS variants the pooled
    vectors, every pair's distance then comes from ``distance_from_pooled``), and its distorted images
    go through the metrics in batches. One DataLoader decodes images for every metric in worker
    processes (pinned memory on CUDA) while the previous batch is scored; inputs are channels_last;
    everything runs under ``torch.inference_mode()``; ``dtype='bf16' | 'fp16'`` autocasts on CUDA
    (ignored with a warning on CPU); ``compile=True`` compiles our metrics' VGG trunks.

Scale-out
    Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) every rank scores every
    ``world_size``-th reference (gloo on CPU, nccl on CUDA with ``cuda:LOCAL_RANK``); the new rows are
    gathered on rank 0 with ``all_gather_object`` and rank 0 alone writes the final CSVs and the
    summary (other ranks return ``None``).

Reliability
    Scores are appended per reference group to ``scores_<metric>.csv`` (per rank to
    ``parts/scores_<metric>.rank<k>.csv`` under torchrun), flushed and fsynced, and a state file
    (``state.json``, or ``state.rank<k>.json``) is replaced atomically after every group. A run killed
    at any point and started again reads those files, drops a torn last line, de-duplicates by
    ``(metric, dist_path)`` and computes only the pairs that are missing (finished reference groups
    are not even decoded again). A resumed run whose metric configuration (dataset file list, dtype,
    weights) differs from the stored one stops with an error instead of mixing scores.
    Missing or corrupt images raise an error naming their paths; with ``skip_missing=True`` the
    affected pairs are left out, counted and listed in the summary.

Outputs in ``out_dir``
    ``scores_<metric>.csv`` (metric, ref_id, dist_path, dist_type, level, human_score, distance; in
    dataset order), ``summary.json``, ``summary.md``, ``manifest.json`` (package/peer/torch versions,
    device, dtype, weight hashes, dataset file-list hash), and for RAID ``raid_curves.png``.
"""
from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .adapters import MetricAdapter, get_metric

__all__ = [
    "run_benchmark",
    "compute_statistics",
    "read_scores",
    "write_summary_markdown",
    "CSV_FIELDS",
    "metric_file_stem",
]

#: columns of ``scores_<metric>.csv``
CSV_FIELDS = ("metric", "ref_id", "dist_path", "dist_type", "level", "human_score", "distance")
STATE_VERSION = 1

_DTYPES = {
    None: None, "none": None, "fp32": None, "float32": None,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
}
_PEER_DISTRIBUTIONS = ("lpips", "DISTS_pytorch", "stlpips-pytorch", "piq")
_PEER_WEIGHT_FILES = {
    "lpips-pkg": ("lpips", "weights/v0.1/vgg.pth"),
    "stlpips-vgg": ("stlpips_pytorch", "weights/vST0.0/vgg_shift_tolerant.pth"),
    "dists": ("DISTS_pytorch", "weights.pt"),
}
_VGG_PEERS = ("lpips-pkg", "dists", "stlpips-vgg")


# =============================================================================== small helpers


def metric_file_stem(name: str) -> str:
    """File-name-safe form of a metric name (``invariant:paper`` -> ``invariant_paper``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _jsonable(obj: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, tuples -> lists, Paths -> str (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _atomic_write_json(path: Path, obj: Any) -> None:
    _atomic_write_text(path, json.dumps(_jsonable(obj), indent=1, allow_nan=False) + "\n")


def _version(dist: str) -> Optional[str]:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _parse_dtype(dtype) -> Optional[torch.dtype]:
    if isinstance(dtype, torch.dtype):
        return None if dtype == torch.float32 else dtype
    key = dtype.lower() if isinstance(dtype, str) else dtype
    if key not in _DTYPES:
        raise ValueError(f"dtype must be one of None, 'bf16', 'fp16' (or 'fp32'), got {dtype!r}")
    return _DTYPES[key]


def _dtype_name(dt: Optional[torch.dtype]) -> str:
    return {None: "float32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dt]


# =============================================================================== scores files


def read_scores(path: Union[str, Path]) -> Tuple[List[Dict[str, str]], bool]:
    """Read a ``scores_<metric>.csv`` written by the runner, tolerating a torn tail.

    Returns ``(rows, clean)``: rows as dicts (first occurrence of each ``(metric, dist_path)``),
    ``clean`` False when a torn or malformed line or a duplicate was dropped (the caller rewrites
    the file). A missing file gives ``([], True)``; a file with a foreign header raises ``ValueError``.
    """
    path = Path(path)
    if not path.is_file():
        return [], True
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    clean = lines[-1] == ""  # an append-only file torn mid-write lacks its final newline
    lines = lines[:-1]
    if not lines:
        return [], clean and text == ""
    header = next(csv.reader([lines[0]]))
    if tuple(header) != CSV_FIELDS:
        raise ValueError(f"{path}: unexpected header {header} (expected {list(CSV_FIELDS)}); this is not a "
                         "scores file of this runner: move it away or use another output folder")
    rows: List[Dict[str, str]] = []
    seen = set()
    for line in lines[1:]:
        try:
            vals = next(csv.reader([line]))
        except (csv.Error, StopIteration):
            clean = False
            continue
        if len(vals) != len(CSV_FIELDS):
            clean = False
            continue
        row = dict(zip(CSV_FIELDS, vals))
        try:
            if not math.isfinite(float(row["distance"])):
                raise ValueError
        except ValueError:
            clean = False
            continue
        key = (row["metric"], row["dist_path"])
        if key in seen:
            clean = False
            continue
        seen.add(key)
        rows.append(row)
    return rows, clean


def _rows_to_csv_text(rows: Iterable[Dict[str, str]]) -> str:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for r in rows:
        w.writerow([r[k] for k in CSV_FIELDS])
    return buf.getvalue()


class _AppendCSV:
    """Append-only CSV: rows are written, flushed and fsynced per reference group."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.is_file() or path.stat().st_size == 0
        self.fh = open(path, "a", encoding="utf-8", newline="")
        self.writer = csv.writer(self.fh, lineterminator="\n")
        if new:
            self.writer.writerow(CSV_FIELDS)
            self._sync()

    def _sync(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def append(self, rows: Sequence[Dict[str, str]]) -> None:
        for r in rows:
            self.writer.writerow([r[k] for k in CSV_FIELDS])
        self._sync()

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()


# =============================================================================== statistics


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

    Uses :mod:`invariant_lpips.data.stats`: ``correlations`` for the point estimates,
    ``bootstrap_ci`` (resampling reference images, ``bootstrap`` resamples; 0 = none) for 95% CIs
    and ``per_group_correlations`` for the per-distortion-type breakdown.
    """
    from ..data import stats as S

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
    try:
        from ..distortions import DISTORTION_TYPES

        return {f"{k:02d}": v.name for k, v in DISTORTION_TYPES.items()}
    except Exception:  # noqa: BLE001 - names are cosmetic
        return {}


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
        from .raid import raid_markdown

        lines += raid_markdown(summary["raid"])
    return "\n".join(lines).rstrip() + "\n"


# =============================================================================== distributed


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    initialized_here: bool = False

    @property
    def active(self) -> bool:
        return self.world > 1

    def gather(self, obj: Any) -> List[Any]:
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out: List[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        self.gather(None)

    def close(self) -> None:
        if self.initialized_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def _init_distributed(device: torch.device) -> Tuple[_Dist, torch.device]:
    """Join the process group torchrun describes (env://); a no-op for a single process."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return _Dist(), device
    if not dist.is_available():
        return _Dist(), device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda" and device.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = torch.device("cuda", local % max(1, torch.cuda.device_count()))
    if dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        return _Dist(dist.get_rank(), dist.get_world_size(), False), device
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), device
    if device.type == "cuda":
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return _Dist(dist.get_rank(), dist.get_world_size(), True), device


# =============================================================================== image loading


class _ImageJobs(torch.utils.data.Dataset):
    """Decodes image files in DataLoader workers; failures are returned, not raised."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = [str(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from ..data.io import load_image

        try:
            return i, load_image(self.paths[i]), None
        except Exception as exc:  # noqa: BLE001 - reported (or raised) by the main process
            return i, None, (type(exc).__name__, str(exc))


def _collate(items):
    idx = [i for i, _, _ in items]
    imgs = [t for _, t, _ in items]
    errs = [e for _, _, e in items]
    if all(t is not None for t in imgs) and len({tuple(t.shape) for t in imgs}) == 1:
        return {"idx": idx, "images": torch.cat(imgs, 0), "errors": errs}
    return {"idx": idx, "images": imgs, "errors": errs}


def _load_error(path: str, err: Tuple[str, str]) -> Exception:
    kind, msg = err
    text = msg if path in msg else f"cannot read image {path}: {kind}: {msg}"
    return FileNotFoundError(text) if kind == "FileNotFoundError" else ValueError(text)


# =============================================================================== metric execution


class _Scorer:
    """Runs one metric on (reference, batch of distorted) with the run's device/precision settings."""

    def __init__(self, adapter: MetricAdapter, device: torch.device, amp_dtype: Optional[torch.dtype]):
        from ..metric.invariant import InvariantLPIPS

        self.adapter = adapter
        self.name = adapter.name
        self.device = device
        self.amp_dtype = amp_dtype
        self.module = adapter.module
        self.pooled = isinstance(self.module, InvariantLPIPS)
        self.ref: Optional[torch.Tensor] = None
        self._ref_feats: Optional[Dict[str, torch.Tensor]] = None
        self.calls = 0

    def _autocast(self):
        if self.amp_dtype is not None and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def set_reference(self, ref: Optional[torch.Tensor]) -> None:
        self.ref = ref
        self._ref_feats = None

    def _pooled(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        with self._autocast():
            g = self.module.pooled_features(x, normalize=True)
        return {k: v.float() for k, v in g.items()}

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        self.calls += 1
        n = batch.shape[0]
        if self.pooled:
            if self._ref_feats is None:  # once per reference group
                self._ref_feats = self._pooled(self.ref)
            g1 = self._pooled(batch)
            g0 = {k: v.expand(n, -1) for k, v in self._ref_feats.items()}
            d = self.module.distance_from_pooled(g0, g1)
        else:
            with self._autocast():
                d = self.adapter(self.ref, batch)
        d = d.detach().float().reshape(-1).cpu().numpy().astype(np.float64)
        if d.shape[0] != n:
            raise RuntimeError(f"metric {self.name!r} returned {d.shape[0]} values for a batch of {n}")
        return d


def _prepare_adapter(adapter: MetricAdapter, device: torch.device, compile_trunk: bool) -> MetricAdapter:
    adapter = adapter.to(device)
    if adapter.module is not None:
        adapter.module.eval()
        adapter.module.to(memory_format=torch.channels_last)
        net = getattr(adapter.module, "net", None)
        if compile_trunk and adapter.kind == "ours" and isinstance(net, torch.nn.Module):
            if hasattr(net, "compile"):
                net.compile()  # in place: keeps the trunk's attributes (taps, phase_multiplier)
            else:  # pragma: no cover - torch < 2.2
                adapter.module.net = torch.compile(net)
    return adapter


def _trunk_hash(adapter: MetricAdapter) -> Tuple[Optional[str], str]:
    """(sha256 of the VGG-16 trunk tensors, where it came from)."""
    net = getattr(adapter.module, "net", None) if adapter.module is not None else None
    if adapter.kind == "ours" and net is not None:
        info = getattr(net, "weights_info", None)
        if info is not None and getattr(info, "sha256", None):
            return info.sha256, f"resolver ({info.source})"
        try:
            from ..weights.vgg16 import features_sha256

            return features_sha256(net.features.state_dict()), "computed from the loaded tensors (not ImageNet)"
        except Exception:  # noqa: BLE001 - a partial trunk (fewer taps) has no full-trunk hash
            return None, "unavailable"
    if adapter.name in _VGG_PEERS:
        try:
            from ..weights.vgg16 import resolve_vgg16_state_dict

            _, info = resolve_vgg16_state_dict()
            return info.sha256, f"resolver ({info.source}), loaded into torchvision.vgg16"
        except Exception:  # noqa: BLE001
            return None, "unavailable"
    return None, "no trunk"


def _peer_weights(name: str) -> Optional[Dict[str, str]]:
    if name not in _PEER_WEIGHT_FILES:
        return None
    import importlib.util

    module, rel = _PEER_WEIGHT_FILES[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        return {"file": f"{module}/{rel}", "sha256": None}
    return {"file": f"{module}/{rel}", "sha256": _sha256_file(path)}


def _metric_info(adapter: MetricAdapter, dtype_name: str, dataset_hash: Optional[str],
                 dataset_name: str) -> Dict[str, Any]:
    trunk_sha, trunk_src = _trunk_hash(adapter)
    from ..weights.vgg16 import VGG16_FEATURES_SHA256

    entry = getattr(adapter.module, "weights_entry", None) if adapter.module is not None else None
    peer = _peer_weights(adapter.name)
    info = {
        "kind": adapter.kind,
        "lower_is_better": bool(adapter.lower_is_better),
        "module": type(adapter.module).__name__ if adapter.module is not None else None,
        "variant": getattr(getattr(adapter.module, "variant", None), "name", None),
        "trunk_sha256": trunk_sha,
        "trunk_source": trunk_src,
        "trunk_is_imagenet": (trunk_sha == VGG16_FEATURES_SHA256) if trunk_sha else None,
        "weights_entry": entry,
        "peer_weights": peer,
        "peer_version": {"lpips-pkg": _version("lpips"), "dists": _version("DISTS_pytorch"),
                         "stlpips-vgg": _version("stlpips-pytorch")}.get(adapter.name)
        if adapter.kind == "peer" else None,
    }
    info["fingerprint"] = {
        "metric": adapter.name,
        "dataset": dataset_name,
        "file_list_hash": dataset_hash,
        "dtype": dtype_name,
        "trunk_sha256": trunk_sha,
        "linear_weights_sha256": (entry or {}).get("sha256") if isinstance(entry, dict) else None,
        "peer_weights_sha256": (peer or {}).get("sha256"),
    }
    return info


# =============================================================================== the run


@dataclass
class _Group:
    ref_id: str
    ref_path: Path
    items: List[int]                      # record indices to load (union over metrics)
    todo: Dict[str, set]                  # metric -> record indices still missing
    failed: Optional[str] = None          # reference unreadable (skip_missing)
    pending: Dict[str, List[Dict[str, str]]] = field(default_factory=dict)


def _file_list_hash(dataset, skip_missing: bool) -> Tuple[Optional[str], Optional[str]]:
    try:
        return dataset.file_list_hash(), None
    except FileNotFoundError as exc:
        if not skip_missing:
            raise
        h = dataset.file_list_hash(existing_only=True)
        return h, f"computed over the files present only ({str(exc).splitlines()[0]})"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where available)."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def _device_info(device: torch.device) -> Dict[str, Any]:
    info: Dict[str, Any] = {"type": device.type, "name": str(device)}
    if device.type == "cuda" and torch.cuda.is_available():
        idx = device.index if device.index is not None else torch.cuda.current_device()
        info.update({"gpu": torch.cuda.get_device_name(idx), "cuda": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version()})
    else:
        info.update({"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()})
    return info


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
) -> Optional[Dict[str, Any]]:
    """Score ``dataset`` with ``metrics`` and write scores, statistics and a manifest to ``out_dir``.

    Args:
        dataset: an :class:`~invariant_lpips.data.datasets.IQADataset` (pair dataset), or its name
            (``kadid10k``, ``tid2008``, ``tid2013``, ``csiq``, ``raid``) with ``root``.
        metrics: metric names for :func:`~invariant_lpips.benchmarks.adapters.get_metric`, or
            ready :class:`~invariant_lpips.benchmarks.adapters.MetricAdapter` objects.
        out_dir: output folder (created).
        device: ``cpu`` / ``cuda`` / ``cuda:N`` (under torchrun ``cuda`` becomes ``cuda:LOCAL_RANK``).
        batch_size: distorted images per metric call.
        num_workers: DataLoader worker processes decoding images (0 = in the main process).
        dtype: ``None`` (float32), ``'bf16'`` or ``'fp16'``: autocast on CUDA; ignored on CPU.
        compile: ``torch.compile`` the VGG trunks of our metrics.
        skip_missing: leave out pairs with missing/corrupt images (counted and listed in the
            summary) instead of raising an error that names them.
        resume: continue from the scores already in ``out_dir`` (False: start over for these metrics).
        progress: tqdm progress bar (rank 0).
        bootstrap: bootstrap resamples for the 95% CIs (0: no CIs).
        root: dataset folder when ``dataset`` is a name.
        seed: bootstrap seed.
        plots: write the RAID curve plot (needs matplotlib).

    Returns:
        The summary dict (also written to ``summary.json``) on rank 0; ``None`` on other ranks.
    """
    from ..data.datasets import IQADataset, TripletRecord, load_dataset

    t_start = time.perf_counter()
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    amp_dtype = _parse_dtype(dtype)
    if amp_dtype is not None and device.type != "cuda":
        warnings.warn(f"dtype {_dtype_name(amp_dtype)} is applied by CUDA autocast only; running float32 on "
                      f"{device.type}", stacklevel=2)
        amp_dtype = None
    dtype_name = _dtype_name(amp_dtype)

    # ------------------------------------------------------------------ dataset
    if isinstance(dataset, (str, os.PathLike)) and not isinstance(dataset, IQADataset):
        if root is None:
            raise ValueError("run_benchmark: pass root= with a dataset name (or pass a dataset object)")
        dataset = load_dataset(str(dataset), root, validate=not skip_missing)
    elif not skip_missing:
        dataset.validate()  # missing files -> FileNotFoundError naming them
    if getattr(dataset, "record_type", None) is TripletRecord:
        raise ValueError(f"run_benchmark scores (reference, distorted) pair datasets; {dataset.name} holds 2AFC "
                         "triplets (use invariant_lpips.data.stats.two_afc_score on d(ref, p0), d(ref, p1))")
    records = list(dataset.records)
    if not records:
        raise ValueError(f"{dataset.name}: the dataset has no records")

    dist, device = _init_distributed(device)
    try:
        return _run(dataset, records, metrics, Path(out_dir), device, int(batch_size), int(num_workers),
                    amp_dtype, dtype_name, bool(compile), bool(skip_missing), bool(resume), bool(progress),
                    int(bootstrap), seed, plots, dist, t_start)
    finally:
        dist.close()


def _run(dataset, records, metrics, out_dir: Path, device, batch_size, num_workers, amp_dtype, dtype_name,
         compile_trunk, skip_missing, resume, progress, bootstrap, seed, plots, dist: _Dist, t_start):
    out_dir.mkdir(parents=True, exist_ok=True)
    parts_dir = out_dir / "parts"

    # ------------------------------------------------------------------ metrics
    adapters: List[MetricAdapter] = []
    for m in metrics:
        a = get_metric(m, device) if isinstance(m, str) else m
        if not isinstance(a, MetricAdapter):
            raise TypeError(f"metrics must be names or MetricAdapter objects, got {type(a).__name__}")
        adapters.append(_prepare_adapter(a, device, compile_trunk))
    names = [a.name for a in adapters]
    if not names:
        raise ValueError("no metrics given")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"metric names must be unique, got duplicates {dup}")
    stems = {n: metric_file_stem(n) for n in names}
    if len(set(stems.values())) != len(stems):
        raise ValueError(f"metric names map to the same file name: {stems}")

    # ------------------------------------------------------------------ identity of the data
    root = dataset.root

    def key_of(p: Path) -> str:
        try:
            return Path(p).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return Path(p).resolve().as_posix()

    keys = [key_of(r.dist_path) for r in records]
    key_index = {k: i for i, k in enumerate(keys)}
    file_hash, hash_note = _file_list_hash(dataset, skip_missing)
    infos = {a.name: _metric_info(a, dtype_name, file_hash, dataset.name) for a in adapters}

    # ------------------------------------------------------------------ start over / resume
    state_path = out_dir / ("state.json" if not dist.active else f"state.rank{dist.rank}.json")
    if not resume and dist.rank == 0:
        for n in names:
            for p in [out_dir / f"scores_{stems[n]}.csv", *parts_dir.glob(f"scores_{stems[n]}.rank*.csv")]:
                if p.exists():
                    p.unlink()
        for sp in out_dir.glob("state*.json"):
            st = _read_json(sp)
            if st and isinstance(st.get("metrics"), dict):
                for n in names:
                    st["metrics"].pop(n, None)
                _atomic_write_json(sp, st)
    dist.barrier()
    # stored fingerprints must match (a resumed run must not mix configurations)
    for sp in sorted(out_dir.glob("state*.json")):
        st = _read_json(sp) or {}
        for n in names:
            old = (st.get("metrics") or {}).get(n, {}).get("fingerprint")
            now = _jsonable(infos[n]["fingerprint"])
            if old is not None and old != now:
                diff = {k: (old.get(k), now.get(k)) for k in sorted(set(old) | set(now)) if old.get(k) != now.get(k)}
                raise ValueError(f"{out_dir} holds scores of metric {n!r} computed with another configuration "
                                 f"(stored vs now: {diff}); use --no-resume (resume=False) or another output folder")

    done: Dict[str, set] = {}
    for n in names:
        main = out_dir / f"scores_{stems[n]}.csv"
        rows, clean = read_scores(main)
        if not clean and dist.rank == 0:
            _atomic_write_text(main, _rows_to_csv_text(rows))
        keys_done = {r["dist_path"] for r in rows if r["metric"] == n}
        for part in sorted(parts_dir.glob(f"scores_{stems[n]}.rank*.csv")):
            prow, pclean = read_scores(part)
            if not pclean and dist.active and part.name == f"scores_{stems[n]}.rank{dist.rank}.csv":
                _atomic_write_text(part, _rows_to_csv_text(prow))
            keys_done |= {r["dist_path"] for r in prow if r["metric"] == n}
        done[n] = keys_done
    dist.barrier()

    # ------------------------------------------------------------------ shard and plan
    by_ref: Dict[str, List[int]] = {}
    for i, r in enumerate(records):
        by_ref.setdefault(r.ref_id, []).append(i)
    refs = sorted(by_ref)
    my_refs = refs[dist.rank::dist.world]
    skipped: List[Dict[str, Any]] = []     # {"path", "reason", "pairs"}
    skipped_pairs: set = set()
    groups: List[_Group] = []
    for ref in my_refs:
        idxs = by_ref[ref]
        todo = {n: {i for i in idxs if keys[i] not in done[n]} for n in names}
        union = sorted(set().union(*todo.values()))
        if not union:
            continue
        ref_path = records[idxs[0]].ref_path
        if skip_missing:
            if not Path(ref_path).is_file():
                skipped.append({"path": str(ref_path), "reason": "missing", "pairs": len(union), "role": "reference"})
                skipped_pairs.update(union)
                continue
            keep = []
            for i in union:
                if Path(records[i].dist_path).is_file():
                    keep.append(i)
                else:
                    skipped.append({"path": str(records[i].dist_path), "reason": "missing", "pairs": 1,
                                    "role": "distorted"})
                    skipped_pairs.add(i)
            todo = {n: t & set(keep) for n, t in todo.items()}
            union = keep
            if not union:
                continue
        groups.append(_Group(ref, ref_path, union, todo))

    paths: List[Path] = []
    batches: List[Tuple[int, str, List[int], bool]] = []  # (group, "ref"|"dist", job ids, last of group)
    job_record: List[Optional[int]] = []
    for gi, g in enumerate(groups):
        paths.append(Path(g.ref_path))
        job_record.append(None)
        batches.append((gi, "ref", [len(paths) - 1], False))
        chunks = [g.items[k:k + batch_size] for k in range(0, len(g.items), batch_size)]
        for ci, chunk in enumerate(chunks):
            ids = []
            for i in chunk:
                paths.append(Path(records[i].dist_path))
                job_record.append(i)
                ids.append(len(paths) - 1)
            batches.append((gi, "dist", ids, ci == len(chunks) - 1))

    # ------------------------------------------------------------------ manifest + state
    manifest_path = out_dir / "manifest.json"
    started = _now()
    manifest = {
        "created": started,
        "status": "running",
        "argv": list(sys.argv),
        "package": {"invariant_lpips": _package_version()},
        "peers": {d: _version(d) for d in _PEER_DISTRIBUTIONS},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        "device": _device_info(device),
        "dtype": dtype_name,
        "compile": compile_trunk,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "world_size": dist.world,
        "skip_missing": skip_missing,
        "bootstrap": bootstrap,
        "trunk_sha256_expected": _expected_trunk_sha(),
        "dataset": {"name": dataset.name, "root": str(dataset.root), "n_records": len(records),
                    "n_references": len(refs), "higher_is_better": bool(dataset.higher_is_better),
                    "file_list_hash": file_hash, "file_list_hash_note": hash_note},
        "metrics": infos,
    }
    if dist.rank == 0:
        _atomic_write_json(manifest_path, manifest)
    state = _read_json(state_path) or {}
    state.setdefault("version", STATE_VERSION)
    state["dataset"] = manifest["dataset"]
    state["world_size"] = dist.world
    state["rank"] = dist.rank
    state.setdefault("metrics", {})
    for n in names:
        ms = state["metrics"].setdefault(n, {})
        ms["fingerprint"] = infos[n]["fingerprint"]
        ms.setdefault("done_refs", [])
        ms["rows_on_disk"] = len(done[n])
    state["updated"] = _now()
    _atomic_write_json(state_path, state)

    # ------------------------------------------------------------------ score
    writers: Dict[str, _AppendCSV] = {}
    for n in names:
        target = (out_dir / f"scores_{stems[n]}.csv" if not dist.active
                  else parts_dir / f"scores_{stems[n]}.rank{dist.rank}.csv")
        writers[n] = _AppendCSV(target)
    scorers = {a.name: _Scorer(a, device, amp_dtype) for a in adapters}
    new_rows: Dict[str, List[Dict[str, str]]] = {n: [] for n in names}
    n_pairs_total = sum(len(g.items) for g in groups)
    pairs_computed = 0
    bar = None
    if progress and dist.rank == 0 and n_pairs_total:
        from tqdm import tqdm

        bar = tqdm(total=n_pairs_total, unit="pair", desc=f"{dataset.name} x {len(names)} metric(s)")
    pin = device.type == "cuda"
    try:
        if batches:
            loader = torch.utils.data.DataLoader(
                _ImageJobs(paths), batch_sampler=[b[2] for b in batches], num_workers=num_workers,
                collate_fn=_collate, pin_memory=pin)
            with torch.inference_mode():
                for (gi, kind, _ids, last), batch in zip(batches, loader):
                    g = groups[gi]
                    if kind == "ref":
                        err = batch["errors"][0]
                        ref_t = None
                        if err is not None:
                            if not skip_missing:
                                raise _load_error(str(g.ref_path), err)
                            g.failed = f"{err[0]}: {err[1]}"
                            skipped.append({"path": str(g.ref_path), "reason": g.failed, "pairs": len(g.items),
                                            "role": "reference"})
                            skipped_pairs.update(g.items)
                        else:
                            img = batch["images"]
                            img = img if isinstance(img, torch.Tensor) else img[0]
                            ref_t = _to_device(img, device)
                        for s in scorers.values():
                            s.set_reference(ref_t)
                        g.pending = {n: [] for n in names}
                        continue
                    if g.failed is None:
                        pairs_computed += _score_batch(g, batch, records, keys, job_record, scorers, device,
                                                       skip_missing, skipped, skipped_pairs, paths)
                    if bar is not None:
                        bar.update(len(batch["idx"]))
                    if last:
                        for n in names:
                            if g.pending.get(n):
                                writers[n].append(g.pending[n])
                                new_rows[n].extend(g.pending[n])
                                done[n].update(r["dist_path"] for r in g.pending[n])
                        for n in names:
                            done_refs = state["metrics"][n]["done_refs"]
                            if g.todo[n] and g.failed is None and g.ref_id not in done_refs:
                                done_refs.append(g.ref_id)
                            state["metrics"][n]["rows_on_disk"] = len(done[n])
                        state["updated"] = _now()
                        _atomic_write_json(state_path, state)
                        g.pending = {}
                        for s in scorers.values():
                            s.set_reference(None)
    finally:
        if bar is not None:
            bar.close()
        for w in writers.values():
            w.close()

    # ------------------------------------------------------------------ gather on rank 0
    gathered = dist.gather({"rows": new_rows, "skipped": skipped, "skipped_pairs": sorted(skipped_pairs),
                            "pairs_computed": pairs_computed})
    if dist.rank != 0:
        return None
    all_skipped = [s for part in gathered for s in part["skipped"]]
    all_skipped_pairs = set().union(*[set(part["skipped_pairs"]) for part in gathered])
    pairs_computed = sum(part["pairs_computed"] for part in gathered)
    final_rows: Dict[str, Dict[str, Dict[str, str]]] = {}
    for n in names:
        main = out_dir / f"scores_{stems[n]}.csv"
        merged: Dict[str, Dict[str, str]] = {}
        sources = [read_scores(main)[0]]
        part_files = sorted(parts_dir.glob(f"scores_{stems[n]}.rank*.csv"))
        sources += [read_scores(p)[0] for p in part_files]
        sources += [part["rows"].get(n, []) for part in gathered]
        for rows in sources:
            for r in rows:
                if r["metric"] == n:
                    merged.setdefault(r["dist_path"], r)
        ordered = [merged[k] for k in keys if k in merged] + [r for k, r in merged.items() if k not in key_index]
        _atomic_write_text(main, _rows_to_csv_text(ordered))
        for p in part_files:
            p.unlink()
        final_rows[n] = merged
    if parts_dir.is_dir() and not any(parts_dir.iterdir()):
        parts_dir.rmdir()

    # ------------------------------------------------------------------ statistics
    wall = time.perf_counter() - t_start
    summary = _summarize(dataset, records, keys, adapters, final_rows, file_hash, bootstrap, seed)
    summary["skipped"] = {
        "n_images": len(all_skipped),
        "n_pairs": len(all_skipped_pairs),
        "images": all_skipped,
    }
    summary["run"] = {"device": str(device), "dtype": dtype_name, "world_size": dist.world,
                      "pairs_computed": pairs_computed, "wall_s": wall,
                      "pairs_per_s": pairs_computed / wall if wall > 0 and pairs_computed else None,
                      "finished": _now()}
    if dataset.name == "raid":
        from .raid import raid_analysis

        dists = {n: {i: float(final_rows[n][k]["distance"]) for i, k in enumerate(keys) if k in final_rows[n]}
                 for n in names}
        summary["raid"] = raid_analysis(records, dists, out_dir=out_dir if plots else None,
                                        lower_is_better={a.name: a.lower_is_better for a in adapters})
    _atomic_write_json(out_dir / "summary.json", summary)
    _atomic_write_text(out_dir / "summary.md", write_summary_markdown(_jsonable(summary)))
    manifest["status"] = "complete"
    manifest["finished"] = _now()
    manifest["wall_s"] = wall
    _atomic_write_json(manifest_path, manifest)
    return _jsonable(summary)


def _score_batch(g: _Group, batch, records, keys, job_record, scorers, device, skip_missing, skipped,
                 skipped_pairs, paths) -> int:
    """Score one batch of distorted images for every metric that still needs them; rows go to g.pending."""
    ok_pos: List[int] = []
    for pos, (jid, err) in enumerate(zip(batch["idx"], batch["errors"])):
        if err is None:
            ok_pos.append(pos)
            continue
        path = str(paths[jid])
        if not skip_missing:
            raise _load_error(path, err)
        skipped.append({"path": path, "reason": f"{err[0]}: {err[1]}", "pairs": 1, "role": "distorted"})
        skipped_pairs.add(job_record[jid])
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
        sub = _to_device(sub, device)
        rec_ids = [job_record[batch["idx"][p]] for p in positions]
        for name, scorer in scorers.items():
            want = [k for k, i in enumerate(rec_ids) if i in g.todo[name]]
            if not want:
                continue
            x = sub if len(want) == len(rec_ids) else sub[want]
            d = scorer(x)
            bad = np.flatnonzero(~np.isfinite(d))
            if bad.size:
                rec = records[rec_ids[want[int(bad[0])]]]
                raise ValueError(f"metric {name!r} returned a non-finite distance for {rec.dist_path} "
                                 f"(reference {rec.ref_path}); with fp16 try dtype='bf16' or float32")
            for k, v in zip(want, d):
                i = rec_ids[k]
                rec = records[i]
                g.pending[name].append({
                    "metric": name, "ref_id": rec.ref_id, "dist_path": keys[i], "dist_type": rec.dist_type,
                    "level": "" if rec.level is None else str(rec.level),
                    "human_score": "" if rec.score is None else repr(float(rec.score)),
                    "distance": repr(float(v)),
                })
            computed += len(want)
    return computed


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last)


def _read_json(path: Path) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _package_version() -> str:
    from .. import __version__

    return __version__


def _expected_trunk_sha() -> str:
    from ..weights.vgg16 import VGG16_FEATURES_SHA256

    return VGG16_FEATURES_SHA256


def _summarize(dataset, records, keys, adapters, final_rows, file_hash, bootstrap, seed) -> Dict[str, Any]:
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
