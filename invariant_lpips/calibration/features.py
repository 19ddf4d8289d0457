"""Cached pooled trunk features: the trunk is frozen, so each image is passed through it once.

For a GAP variant, an image's pooled statistics are tiny (1472 floats per statistic for the five
pool taps), and every distance the package computes is a function of them:

* ``raw``  -- ``GAP(f_l)``              (the paper's formulation)
* ``unit`` -- ``GAP(f_l / ||f_l||)``    (the LPIPS-style formulation)

Both are stored, so one trunk pass serves both formulations and any linear weights. The cache is
keyed by the image's content hash (sha256 of the file bytes, or of the tensor for in-memory images),
the trunk configuration (pooling, filter size, padding, taps) and the trunk-weight hash, so changing
the trunk weights or the pooling invalidates it automatically.

Layout: ``<cache_root>/<config key>/<sha[:2]>/<sha>.safetensors`` holding ``raw.<tap>`` and
``unit.<tap>`` float32 vectors; ``<config key>/config.json`` describes the key.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import torch

from ..metric.variants import Variant, get_variant
from ..pooling.statistics import global_average, unit_normalize
from ..trunk.vgg16 import VGG16Trunk, lpips_scale

PooledFeatures = Dict[str, Dict[str, torch.Tensor]]  # {"raw": {tap: (C,)}, "unit": {tap: (C,)}}


def default_cache_root() -> Path:
    from ..weights.vgg16 import cache_dir

    return cache_dir() / "features"


def file_sha256(path: Union[str, Path]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tensor_sha256(x: torch.Tensor) -> str:
    return hashlib.sha256(x.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()).hexdigest()


def trunk_config(variant: Variant, trunk_sha256: str, size: Optional[Sequence[int]] = None) -> dict:
    return {
        "pooling": list(variant.expanded_pooling()),
        "filter_size": variant.filter_size,
        "padding_mode": variant.padding_mode,
        "taps": list(variant.taps),
        "trunk_sha256": trunk_sha256,
        "resize": list(size) if size else None,
        "version": 2,
    }


def config_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


class FeatureCache:
    """Pooled-feature extractor with an on-disk cache.

    Args:
        variant: variant (or name) whose trunk configuration is used (the formulation does not
            matter: both statistics are stored).
        root: cache folder (default ``<package cache>/features``); ``None`` with ``enabled=False``
            keeps everything in memory only.
        device: where the trunk runs. ``dtype``: autocast dtype on CUDA (``None`` = float32).
        trunk: an existing trunk (weights must be the ones whose hash is passed as ``trunk_sha256``).
        size: optional (width, height) every image is resized to before the trunk.
    """

    def __init__(self, variant: Union[str, Variant], root: Union[str, Path, None] = None,
                 device: Union[str, torch.device] = "cpu", trunk: Optional[VGG16Trunk] = None,
                 trunk_sha256: Optional[str] = None, enabled: bool = True, dtype=None,
                 size: Optional[Sequence[int]] = None, channels_last: bool = True):
        self.variant = variant if isinstance(variant, Variant) else get_variant(variant)
        self.device = torch.device(device)
        if trunk is None:
            trunk = VGG16Trunk(weights="imagenet", pooling=self.variant.pooling,
                               filter_size=self.variant.filter_size, padding_mode=self.variant.padding_mode,
                               taps=self.variant.taps)
            info = trunk.weights_info
            trunk_sha256 = trunk_sha256 or (info.sha256 if info is not None else None)
        if trunk_sha256 is None:
            from ..weights.vgg16 import features_sha256

            trunk_sha256 = features_sha256(trunk.features.state_dict())
        self.trunk = trunk.to(self.device)
        if channels_last:
            self.trunk = self.trunk.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.dtype = dtype
        self.size = tuple(size) if size else None
        self.config = trunk_config(self.variant, trunk_sha256, self.size)
        self.key = config_key(self.config)
        self.enabled = enabled
        self.root = Path(root) if root is not None else default_cache_root()
        self.folder = self.root / self.key
        if self.enabled:
            self.folder.mkdir(parents=True, exist_ok=True)
            cfg = self.folder / "config.json"
            if not cfg.exists():
                cfg.write_text(json.dumps(self.config, indent=1))
        self._memory: Dict[str, PooledFeatures] = {}
        self.hits = 0
        self.misses = 0

    # ------------------------------------------------------------------ core
    @torch.no_grad()
    def compute(self, x: torch.Tensor) -> List[PooledFeatures]:
        """Pooled features of a batch (N, 3, H, W) in [0, 1] (no cache)."""
        x = x.to(self.device, non_blocking=True)
        if self.size is not None and tuple(x.shape[-2:]) != (self.size[1], self.size[0]):
            x = _resize(x, self.size)
        x = lpips_scale(2 * x - 1)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.dtype is not None and self.device.type == "cuda":
            with torch.autocast("cuda", dtype=self.dtype):
                feats = self.trunk(x)
        else:
            feats = self.trunk(x)
        raw, unit = {}, {}
        for tap in self.variant.taps:
            p = self.trunk.phase_multiplier[tap]
            raw[tap] = global_average(feats[tap], p).cpu()
            unit[tap] = global_average(unit_normalize(feats[tap]), p).cpu()
        return [{"raw": {t: raw[t][i] for t in raw}, "unit": {t: unit[t][i] for t in unit}}
                for i in range(x.shape[0])]

    def _path(self, sha: str) -> Path:
        return self.folder / sha[:2] / f"{sha}.safetensors"

    def _load(self, sha: str) -> Optional[PooledFeatures]:
        if sha in self._memory:
            return self._memory[sha]
        if not self.enabled:
            return None
        path = self._path(sha)
        if not path.is_file():
            return None
        from safetensors.torch import load_file

        try:
            flat = load_file(str(path))
        except Exception:  # noqa: BLE001 - a corrupt cache entry is recomputed
            return None
        out: PooledFeatures = {"raw": {}, "unit": {}}
        for k, v in flat.items():
            stat, tap = k.split(".", 1)
            out[stat][tap] = v
        self._memory[sha] = out
        return out

    def _store(self, sha: str, feats: PooledFeatures) -> None:
        self._memory[sha] = feats
        if not self.enabled:
            return
        from safetensors.torch import save_file

        path = self._path(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        flat = {f"{stat}.{tap}": v.contiguous() for stat, d in feats.items() for tap, v in d.items()}
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        save_file(flat, str(tmp))
        os.replace(tmp, path)

    # ------------------------------------------------------------------ public
    def features_for_files(self, paths: Sequence[Union[str, Path]], batch_size: int = 8,
                           progress: bool = False, num_workers: int = 0) -> Dict[str, PooledFeatures]:
        """Pooled features for image files (keyed by the path string); cached by content hash."""
        paths = [str(p) for p in paths]
        shas = {}
        for p in paths:
            if not Path(p).is_file():
                raise FileNotFoundError(f"image not found: {p}")
            shas[p] = file_sha256(p)
        todo = [p for p in dict.fromkeys(paths) if self._load(shas[p]) is None]
        self.hits += len(set(paths)) - len(todo)
        self.misses += len(todo)
        bar = None
        if progress and todo:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc=f"trunk features ({self.key})", unit="img")
        loader = image_loader(todo, batch_size=batch_size, num_workers=num_workers, size=self.size,
                              pin_memory=self.device.type == "cuda")
        for chunk, images in loader:
            # images of different sizes cannot be stacked: run each size group as a batch
            groups: Dict[tuple, List[int]] = {}
            for i, img in enumerate(images):
                groups.setdefault(tuple(img.shape[-2:]), []).append(i)
            for idx in groups.values():
                batch = torch.cat([images[i] for i in idx])
                for i, f in zip(idx, self.compute(batch)):
                    self._store(shas[chunk[i]], f)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return {p: self._load(shas[p]) for p in paths}

    def features_for_tensor(self, x: torch.Tensor) -> List[PooledFeatures]:
        """Pooled features for an in-memory batch, cached by tensor content hash."""
        out = []
        for i in range(x.shape[0]):
            sha = "t" + tensor_sha256(x[i])[1:]
            f = self._load(sha)
            if f is None:
                f = self.compute(x[i:i + 1])[0]
                self._store(sha, f)
            out.append(f)
        return out


class _ImageFiles(torch.utils.data.Dataset):
    def __init__(self, paths: Sequence[str], size=None):
        self.paths, self.size = list(paths), size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from ..data.io import load_image

        img = load_image(self.paths[i])
        if self.size is not None:
            img = _resize(img, self.size)
        return self.paths[i], img


def _collate(items):
    return [p for p, _ in items], [img for _, img in items]


def image_loader(paths: Sequence[str], batch_size: int = 8, num_workers: int = 0, size=None,
                 pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A DataLoader yielding (paths, list of (1,3,H,W) tensors); decoding runs in worker processes."""
    return torch.utils.data.DataLoader(_ImageFiles(paths, size), batch_size=batch_size, shuffle=False,
                                       num_workers=num_workers, collate_fn=_collate, pin_memory=pin_memory,
                                       persistent_workers=False)


def _resize(img: torch.Tensor, size) -> torch.Tensor:
    w, h = size
    return torch.nn.functional.interpolate(img, size=(h, w), mode="bicubic", antialias=True,
                                           align_corners=False).clamp(0, 1)


def stack_pair_features(f0: Sequence[PooledFeatures], f1: Sequence[PooledFeatures], statistic: str,
                        taps: Sequence[str]) -> torch.Tensor:
    """Per-pair squared differences ``(g0 - g1)^2`` concatenated over taps: (P, sum C_l).

    Every GAP distance of the package is a function of this vector: the LPIPS-style one is
    ``phi @ w`` and the paper's is ``sqrt(phi @ w^2 / C)``.
    """
    rows = []
    for a, b in zip(f0, f1):
        rows.append(torch.cat([(a[statistic][t] - b[statistic][t]) ** 2 for t in taps]))
    return torch.stack(rows)
