"""The manifest of a benchmark run and the fingerprint of each metric's configuration.

``manifest.json`` records what produced the scores: package, peer and library versions, platform,
device, dtype, the run's options, the dataset's file-list hash and, per metric, its trunk hash (and
whether that is the ImageNet trunk), linear-weights entry, peer weight files and versions. The
*fingerprint* (dataset file list, dtype, weight hashes) is stored in the state file: a resumed run
whose fingerprint differs is refused instead of mixing scores.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Tuple


from .. import __version__
from ..data.io import file_sha256
from ..metric.registry import MetricAdapter
from ..weights.vgg16 import VGG16_FEATURES_SHA256, features_sha256, resolve_vgg16_state_dict
from .environment import cpu_model, device_info, dist_version, environment
from .plan import BenchmarkConfig
from .scoring import module_of

__all__ = ["cpu_model", "device_info", "metric_info", "build_manifest", "manifest_dataset", "describe_caches",
           "dist_version"]

#: peer -> (importable module, its weight file inside the package)
PEER_WEIGHT_FILES = {
    "lpips-pkg": ("lpips", "weights/v0.1/vgg.pth"),
    "stlpips-vgg": ("stlpips_pytorch", "weights/vST0.0/vgg_shift_tolerant.pth"),
    "dists": ("DISTS_pytorch", "weights.pt"),
}
#: peer -> the distribution whose version is recorded
PEER_VERSION_OF = {"lpips-pkg": "lpips", "dists": "DISTS_pytorch", "stlpips-vgg": "stlpips-pytorch"}
#: peers whose VGG-16 trunk comes from our resolver
VGG_PEERS = ("lpips-pkg", "dists", "stlpips-vgg")


def trunk_hash(adapter: MetricAdapter) -> Tuple[Optional[str], str]:
    """(sha256 of the VGG-16 trunk tensors, where it came from)."""
    module = module_of(adapter)
    net = getattr(module, "net", None)
    if adapter.kind in ("ours", "baseline") and net is not None:
        info = getattr(net, "weights_info", None)
        if info is not None and getattr(info, "sha256", None):
            return info.sha256, f"resolver ({info.source})"
        try:
            return features_sha256(net.features.state_dict()), "computed from the loaded tensors (not ImageNet)"
        except Exception:  # noqa: BLE001 - a partial trunk (fewer taps) has no full-trunk hash
            return None, "unavailable"
    if adapter.name in VGG_PEERS:
        try:
            _, info = resolve_vgg16_state_dict()
            return info.sha256, f"resolver ({info.source}), loaded into torchvision.vgg16"
        except Exception:  # noqa: BLE001
            return None, "unavailable"
    return None, "no trunk"


def peer_weights(name: str) -> Optional[Dict[str, Optional[str]]]:
    """The weight file a peer package ships (and its sha256), or None for metrics without one."""
    if name not in PEER_WEIGHT_FILES:
        return None
    module, rel = PEER_WEIGHT_FILES[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        return {"file": f"{module}/{rel}", "sha256": None}
    return {"file": f"{module}/{rel}", "sha256": file_sha256(path)}


def metric_info(adapter: MetricAdapter, dtype_name: str, dataset_hash: Optional[str],
                dataset_name: str) -> Dict[str, Any]:
    """The manifest entry of one metric, with its ``fingerprint``."""
    trunk_sha, trunk_src = trunk_hash(adapter)
    module = module_of(adapter)
    entry = getattr(module, "weights_entry", None)
    peer = peer_weights(adapter.name)
    info = {
        "kind": adapter.kind,
        "lower_is_better": bool(adapter.lower_is_better),
        "module": type(module).__name__ if module is not None else None,
        "variant": getattr(getattr(module, "variant", None), "name", None),
        "trunk_sha256": trunk_sha,
        "trunk_source": trunk_src,
        "trunk_is_imagenet": (trunk_sha == VGG16_FEATURES_SHA256) if trunk_sha else None,
        "weights_entry": entry,
        "peer_weights": peer,
        "peer_version": dist_version(PEER_VERSION_OF[adapter.name]) if adapter.name in PEER_VERSION_OF else None,
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


def build_manifest(cfg: BenchmarkConfig, dataset_info: Dict[str, Any], world: int,
                   infos: Dict[str, Dict[str, Any]], feature_caches: Dict[str, Any], started: str) -> Dict[str, Any]:
    """The manifest written (status ``running``) before scoring starts."""
    return {
        "created": started,
        "status": "running",
        "argv": list(sys.argv),
        "package": {"invariant_lpips": __version__},
        **environment(cfg.device),  # python, platform, versions, peers, device
        "dtype": cfg.dtype_name,
        "compile": cfg.compile_trunk,
        "batch_size": cfg.batch_size,
        "num_workers": cfg.num_workers,
        "world_size": world,
        "skip_missing": cfg.skip_missing,
        "bootstrap": cfg.bootstrap,
        "trunk_sha256_expected": VGG16_FEATURES_SHA256,
        "feature_cache": feature_caches,
        "dataset": dataset_info,
        "metrics": infos,
    }


def manifest_dataset(dataset, n_records: int, n_references: int, file_hash: Optional[str],
                     hash_note: Optional[str]) -> Dict[str, Any]:
    return {"name": dataset.name, "root": str(dataset.root), "n_records": n_records,
            "n_references": n_references, "higher_is_better": bool(dataset.higher_is_better),
            "file_list_hash": file_hash, "file_list_hash_note": hash_note}


def describe_caches(caches: Dict[str, Any], enabled: bool) -> Dict[str, Any]:
    """Manifest entry of the feature caches (pooled statistics of our GAP variants)."""
    return {"enabled": enabled,
            "folders": {key: str(c.folder) for key, c in caches.items()} if enabled else {}}

