"""The plan of a benchmark run: its configuration, the pairs still to score and how they are batched.

Pairs are grouped by reference image (KADID: 81 references x 125 distorted, RAID: 24 x 40). Under
torchrun this rank takes every ``world``-th reference. A group lists, per metric, the pairs missing
from the output folder; pairs whose files are missing are left out here when ``skip_missing`` is set
(:class:`Skips` counts and lists them). :func:`image_batches` lays out the decoding work of the
metrics that read pixels: the reference, then its distorted images in batches.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch

__all__ = ["BenchmarkConfig", "parse_dtype", "dtype_name", "Group", "Skips", "ImageBatch", "record_keys",
           "file_list_hash", "plan_groups", "image_batches"]

_DTYPES = {
    None: None, "none": None, "fp32": None, "float32": None,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
}


def parse_dtype(dtype) -> Optional[torch.dtype]:
    """``None | 'fp32' | 'bf16' | 'fp16'`` (or a torch dtype) -> the autocast dtype (None = float32)."""
    if isinstance(dtype, torch.dtype):
        return None if dtype == torch.float32 else dtype
    key = dtype.lower() if isinstance(dtype, str) else dtype
    if key not in _DTYPES:
        raise ValueError(f"dtype must be one of None, 'bf16', 'fp16' (or 'fp32'), got {dtype!r}")
    return _DTYPES[key]


def dtype_name(dt: Optional[torch.dtype]) -> str:
    return {None: "float32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dt]


@dataclass
class BenchmarkConfig:
    """How one benchmark run executes (everything but the dataset and the metrics).

    Attributes mirror :func:`~invariant_lpips.benchmarks.runner.run_benchmark`'s arguments, already
    validated: ``amp_dtype`` is the CUDA autocast dtype (None = float32), ``cache_root`` the feature
    cache folder (None = the package cache), ``feature_cache`` False keeps pooled statistics in
    memory only, ``started`` the ``time.perf_counter()`` of the start.
    """

    out_dir: Path
    device: torch.device = torch.device("cpu")
    batch_size: int = 16
    num_workers: int = 2
    amp_dtype: Optional[torch.dtype] = None
    compile_trunk: bool = False
    skip_missing: bool = False
    resume: bool = True
    progress: bool = True
    bootstrap: int = 1000
    seed: int = 0
    plots: bool = True
    cache_root: Optional[Path] = None
    feature_cache: bool = True
    started: float = field(default_factory=time.perf_counter)

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.amp_dtype)


@dataclass
class Group:
    """The work of one reference image."""

    ref_id: str
    ref_path: Path
    items: List[int]                      # record indices still missing for some metric (union)
    todo: Dict[str, set]                  # metric -> record indices still missing
    failed: Optional[str] = None          # reference unreadable (skip_missing)
    pending: Dict[str, List[Dict[str, str]]] = field(default_factory=dict)   # metric -> new rows
    n_batches: int = 0                    # decoding batches in the image loader (reference included)


class Skips:
    """Missing or unreadable images left out with ``skip_missing`` (each path listed once)."""

    def __init__(self) -> None:
        self.images: List[Dict[str, Any]] = []   # {"path", "reason", "pairs", "role"}
        self.pairs: set = set()                 # record indices left out
        self._paths: set = set()

    def add(self, path: Union[str, Path], reason: str, role: str, records: Iterable[int]) -> None:
        records = list(records)
        self.pairs.update(records)
        if str(path) in self._paths:
            return
        self._paths.add(str(path))
        self.images.append({"path": str(path), "reason": reason, "pairs": len(records), "role": role})


def record_keys(records: Sequence[Any], root: Path) -> List[str]:
    """The ``dist_path`` column: each distorted image's path relative to the dataset root (POSIX)."""
    root = Path(root).resolve()

    def key_of(p: Path) -> str:
        try:
            return Path(p).resolve().relative_to(root).as_posix()
        except ValueError:
            return Path(p).resolve().as_posix()

    return [key_of(r.dist_path) for r in records]


def file_list_hash(dataset, skip_missing: bool) -> Tuple[Optional[str], Optional[str]]:
    """(the dataset's file-list hash, a note when only the present files could be hashed)."""
    try:
        return dataset.file_list_hash(), None
    except FileNotFoundError as exc:
        if not skip_missing:
            raise
        h = dataset.file_list_hash(existing_only=True)
        return h, f"computed over the files present only ({str(exc).splitlines()[0]})"


def plan_groups(records: Sequence[Any], keys: Sequence[str], names: Sequence[str], done: Dict[str, set],
                rank: int, world: int, skip_missing: bool, skips: Skips) -> Tuple[List[Group], int]:
    """This rank's reference groups with work left, and the number of references in the dataset."""
    by_ref: Dict[str, List[int]] = {}
    for i, r in enumerate(records):
        by_ref.setdefault(r.ref_id, []).append(i)
    refs = sorted(by_ref)
    groups: List[Group] = []
    for ref in refs[rank::world]:
        idxs = by_ref[ref]
        todo = {n: {i for i in idxs if keys[i] not in done[n]} for n in names}
        union = sorted(set().union(*todo.values()))
        if not union:
            continue
        ref_path = records[idxs[0]].ref_path
        if skip_missing:
            if not Path(ref_path).is_file():
                skips.add(ref_path, "missing", "reference", union)
                continue
            keep = []
            for i in union:
                if Path(records[i].dist_path).is_file():
                    keep.append(i)
                else:
                    skips.add(records[i].dist_path, "missing", "distorted", [i])
            todo = {n: t & set(keep) for n, t in todo.items()}
            union = keep
            if not union:
                continue
        groups.append(Group(ref, Path(ref_path), union, todo))
    return groups, len(refs)


@dataclass
class ImageBatch:
    group: int             # index into the groups
    kind: str              # "ref" | "dist"
    jobs: List[int]        # indices into the image paths


def image_batches(groups: Sequence[Group], records: Sequence[Any], names: Sequence[str],
                  batch_size: int) -> Tuple[List[Path], List[Optional[int]], List[ImageBatch]]:
    """Decoding work for the metrics ``names`` (those that read pixels): per group with work for them,
    the reference, then its distorted images in batches of ``batch_size``. Sets ``Group.n_batches``.

    Returns ``(paths, job_record, batches)``: ``job_record[j]`` is the record index of image job ``j``
    (None for a reference)."""
    paths: List[Path] = []
    job_record: List[Optional[int]] = []
    batches: List[ImageBatch] = []
    for gi, g in enumerate(groups):
        items = sorted(set().union(*(g.todo[n] for n in names))) if names else []
        g.n_batches = 0
        if not items:
            continue
        paths.append(Path(g.ref_path))
        job_record.append(None)
        batches.append(ImageBatch(gi, "ref", [len(paths) - 1]))
        for k in range(0, len(items), batch_size):
            ids = []
            for i in items[k:k + batch_size]:
                paths.append(Path(records[i].dist_path))
                job_record.append(i)
                ids.append(len(paths) - 1)
            batches.append(ImageBatch(gi, "dist", ids))
        g.n_batches = 1 + (len(items) + batch_size - 1) // batch_size
    return paths, job_record, batches
