"""The one on-disk cache of pooled statistics (the trunk is frozen: each image goes through it once).

An image's pooled statistics are small (a few thousand floats), and every distance the package
computes from a GAP variant is a function of them, so calibration, the dev proxy and a second
benchmark run never repeat a trunk pass. One entry holds *every* statistic of
:mod:`invariant_lpips.features.pooled` (``raw`` and ``unit`` spaces; ``mean``, ``std``, ``local``; the
colour tap), so a new statistic or new weights reuse the cached pass.

Key: the image's content (sha256 of the file bytes, or of the float32 tensor), the trunk configuration
(pooling, filter size, padding, taps), the trunk-weight hash, the resize and the autocast dtype (CUDA);
a change of any of them is a different folder. Layout: ``<root>/<config key>/<sha[:2]>/<sha>.safetensors`` holding
``"<space>.<stat>.<tap>"`` float32 vectors; ``<config key>/config.json`` describes the key.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
from safetensors.torch import load_file, save_file

from ..data.io import file_sha256, load_image, resize
from ..data.sizes import as_hw
from ..trunk.config import TrunkConfig
from ..trunk.vgg16 import POOL_TAPS, VGG16Trunk
from ..weights.vgg16 import cache_dir, features_sha256
from .pooled import COLOUR_TAP, STATISTICS, Stats, pooled_statistics, term_tap
from .variants import Variant, get_variant

#: bump when the stored statistics change (old entries are then a different folder)
CACHE_VERSION = 4


def default_cache_root() -> Path:
    return cache_dir() / "features"


def tensor_sha256(x: torch.Tensor) -> str:
    return hashlib.sha256(x.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()).hexdigest()


def cache_config(trunk: TrunkConfig, trunk_sha256: str, size_hw=None, dtype=None) -> dict:
    """What the cached statistics depend on: the trunk's configuration, its weights' hash, the resize,
    the statistics and ``dtype`` (the autocast dtype of the trunk pass, None = fp32)."""
    config = {**trunk.to_dict(), "trunk_sha256": trunk_sha256, "resize_hw": list(size_hw) if size_hw else None,
              "statistics": list(STATISTICS), "version": CACHE_VERSION}
    if dtype is not None:
        config["autocast"] = str(dtype).replace("torch.", "")
    return config


def config_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def stack(items: Sequence[Stats], keys: Optional[Sequence[str]] = None) -> Stats:
    """A list of per-image statistics ``{key: (C,)}`` -> one batch ``{key: (N, C)}``."""
    keys = list(keys) if keys is not None else list(items[0])
    return {k: torch.stack([it[k] for it in items]) for k in keys}


class FeatureCache:
    """Pooled statistics of images, computed once per trunk configuration and kept on disk.

    Args:
        variant: variant (or name) whose *trunk* configuration is used (its formulation, statistics and
            weights do not matter: every statistic is stored).
        root: cache folder (default ``<package cache>/features``).
        enabled: False keeps entries in memory only.
        device: where the trunk runs; ``dtype``: autocast dtype on CUDA, or bfloat16 on CPU (None = float32).
        trunk: an existing trunk with this configuration (shared with a metric).
        size: optional ``(H, W)`` every image is resized to before the trunk.
    """

    def __init__(self, variant: Union[str, Variant], root: Union[str, Path, None] = None,
                 device: Union[str, torch.device] = "cpu", trunk: Optional[VGG16Trunk] = None,
                 enabled: bool = True, dtype=None, size=None):
        self.variant = get_variant(variant)
        self.device = torch.device(device)
        config = self.variant.trunk
        self.taps = config.taps
        if trunk is not None:  # any weights: the key holds their hash; the rest of the configuration must match
            trunk = config.with_(weights=trunk.config.weights).check(trunk, f"variant {self.variant.name!r}")
        else:
            trunk = config.build("imagenet")
        info = trunk.weights_info
        state = trunk.features.state_dict()
        if info is not None:
            trunk_sha = info.sha256
        elif len(state) == 26:
            trunk_sha = features_sha256(state)
        else:  # a trunk stopped before pool5 (its own taps only): hash the tensors it has
            trunk_sha = "partial:" + hashlib.sha256("".join(k + tensor_sha256(t) for k, t in state.items()).encode()
                                                    ).hexdigest()
        self.trunk = trunk.to(self.device)
        self.dtype = dtype
        self.size = as_hw(size)
        # autocast applies on CUDA, and on CPU for bfloat16 (fast only with AMX; measured in README);
        # elsewhere the pass is float32 whatever ``dtype`` says
        amp = dtype if (dtype is not None and (self.device.type == "cuda" or dtype == torch.bfloat16)) else None
        self._amp = amp
        self.config = cache_config(config, trunk_sha, self.size, amp)
        self.key = config_key(self.config)
        self.enabled = enabled
        self.root = Path(root) if root is not None else default_cache_root()
        self.folder = self.root / self.key
        # a variant that reads only some pool taps (texture-blur: pool1-2) runs its own, shorter trunk, but
        # first reads the entries of the same trunk run to pool5 when they exist (same values on its taps)
        self.superset_folders: List[Path] = []
        if set(self.taps) < set(POOL_TAPS):
            full = cache_config(config.with_(taps=POOL_TAPS), trunk_sha, self.size, amp)
            self.superset_folders.append(self.root / config_key(full))
        if self.enabled:
            self.folder.mkdir(parents=True, exist_ok=True)
            cfg = self.folder / "config.json"
            if not cfg.exists():
                cfg.write_text(json.dumps(self.config, indent=1))
        self._memory: Dict[str, Stats] = {}
        self.hits = 0
        self.misses = 0

    # ------------------------------------------------------------------ computing
    @torch.no_grad()
    def compute(self, x: torch.Tensor) -> List[Stats]:
        """All statistics of a batch (N, 3, H, W) in [0, 1], without the cache: N dicts of (C,)."""
        x = x.to(self.device, non_blocking=True)
        if self.size is not None:
            x = resize(x, self.size)
        circular = self.variant.trunk.circular
        with torch.autocast(self.device.type, dtype=self._amp or torch.bfloat16, enabled=self._amp is not None):
            stats = pooled_statistics(self.trunk, 2 * x - 1, self.taps, ("raw", "unit"), STATISTICS,
                                      STATISTICS, circular)
        stats = {k: v.float().cpu() for k, v in stats.items()}
        return [{k: v[i].clone() for k, v in stats.items()} for i in range(x.shape[0])]

    # ------------------------------------------------------------------ storage
    def _path(self, sha: str, folder: Optional[Path] = None) -> Path:
        return (folder or self.folder) / sha[:2] / f"{sha}.safetensors"

    def _load(self, sha: str) -> Optional[Stats]:
        if sha in self._memory:
            return self._memory[sha]
        if not self.enabled:
            return None
        for folder in [self.folder] + self.superset_folders:
            path = self._path(sha, folder)
            if not path.is_file():
                continue
            try:
                out = load_file(str(path))
            except Exception:  # noqa: BLE001 - a corrupt cache entry is recomputed
                continue
            if folder != self.folder:  # keep this variant's taps (and the colour tap) only
                out = {k: t for k, t in out.items() if term_tap(k) in self.taps + (COLOUR_TAP,)}
            self._memory[sha] = out
            return out
        return None

    def _store(self, sha: str, stats: Stats) -> None:
        self._memory[sha] = stats
        if not self.enabled:
            return
        path = self._path(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        save_file({k: v.contiguous() for k, v in stats.items()}, str(tmp))
        os.replace(tmp, path)

    # ------------------------------------------------------------------ public
    def clear_memory(self) -> None:
        """Forget the in-memory copies (entries stay on disk): keeps long runs' memory flat."""
        self._memory.clear()

    def features_for_files(self, paths: Sequence[Union[str, Path]], batch_size: int = 8,
                           progress: bool = False) -> Dict[str, Stats]:
        """Statistics of image files, keyed by the path string; each file is hashed, and computed only
        if its content is not cached. Images of the same size are batched through the trunk."""
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
            from ..progress import progress_bar

            bar = progress_bar(total=len(todo), desc=f"trunk features ({self.key})", unit="img")
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            images = [load_image(p, size=self.size) for p in chunk]
            groups: Dict[tuple, List[int]] = {}
            for i, img in enumerate(images):
                groups.setdefault(tuple(img.shape[-2:]), []).append(i)
            for idx in groups.values():
                for i, f in zip(idx, self.compute(torch.cat([images[i] for i in idx]))):
                    self._store(shas[chunk[i]], f)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return {p: self._load(shas[p]) for p in paths}

    def features_for_tensor(self, x: torch.Tensor) -> List[Stats]:
        """Statistics of an in-memory batch (N, 3, H, W) in [0, 1], cached by tensor content."""
        out = []
        for i in range(x.shape[0]):
            sha = "t" + tensor_sha256(x[i])[1:]
            f = self._load(sha)
            if f is None:
                f = self.compute(x[i:i + 1])[0]
                self._store(sha, f)
                self.misses += 1
            else:
                self.hits += 1
            out.append(f)
        return out
