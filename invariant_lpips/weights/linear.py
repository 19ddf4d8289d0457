"""The learned per-channel linear weights: safetensors files with a manifest.

A weights file holds one float32 vector per tap (key = tap name, e.g. ``pool3`` -> (256,)).
Every file is described by a manifest entry ``{file, variant, data, loss, date, sha256, notes}``:
shipped files by ``weights/manifest.json`` inside the package, user files (from
``invariant-lpips calibrate``) by a sidecar ``<file>.json``. Loading checks the sha256 of the file
against its manifest and refuses a mismatch; safetensors cannot execute code.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from importlib import resources
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch

SHIPPED_PACKAGE = "invariant_lpips.weights.shipped"
MANIFEST_NAME = "manifest.json"


class LinearWeightsError(RuntimeError):
    """A linear-weights file is missing, corrupt, or does not match its manifest."""


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shipped_dir() -> Path:
    """Folder of the shipped weights: inside the installed package, or ``weights/`` of a source tree."""
    try:
        return Path(str(resources.files(SHIPPED_PACKAGE)))
    except ModuleNotFoundError:  # running from a source checkout that is not installed
        source_tree = Path(__file__).resolve().parents[2] / "weights"
        if (source_tree / MANIFEST_NAME).is_file():
            return source_tree
        raise LinearWeightsError(
            f"cannot find the shipped weights (package {SHIPPED_PACKAGE} is missing and {source_tree} has no "
            "manifest); install the package with 'pip install .'"
        ) from None


def shipped_manifest() -> Dict[str, dict]:
    path = shipped_dir() / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LinearWeightsError(f"the package's weights manifest is missing: {path} (broken install? "
                                 "reinstall invariant-lpips)") from None
    except json.JSONDecodeError as exc:
        raise LinearWeightsError(f"the weights manifest {path} is not valid JSON: {exc}") from None
    return {entry["file"]: entry for entry in data["files"]}


def save_linear_weights(
    path: Union[str, Path],
    weights: Dict[str, torch.Tensor],
    *,
    variant: str,
    data: str,
    loss: str,
    notes: str = "",
    extra: Optional[dict] = None,
) -> dict:
    """Write ``weights`` (tap -> (C,) tensor) as safetensors plus a ``<path>.json`` manifest.

    Returns the manifest entry.
    """
    from safetensors.torch import save as st_save

    path = Path(path)
    tensors = {k: v.detach().to("cpu", torch.float32).reshape(-1).contiguous() for k, v in weights.items()}
    blob = st_save(tensors, metadata={"variant": variant})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)
    entry = {
        "file": path.name,
        "variant": variant,
        "data": data,
        "loss": loss,
        "date": _dt.date.today().isoformat(),
        "sha256": _sha256_bytes(blob),
        "taps": {k: int(v.numel()) for k, v in tensors.items()},
        "notes": notes,
    }
    if extra:
        entry.update(extra)
    sidecar = path.with_name(path.name + ".json")
    sidecar.write_text(json.dumps(entry, indent=2) + "\n")
    return entry


def load_linear_weights(
    path: Union[str, Path],
    *,
    expected_sha256: Optional[str] = None,
    require_manifest: bool = False,
) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read a weights file, checking its sha256 against ``expected_sha256`` or its sidecar manifest.

    Raises:
        LinearWeightsError: missing file, unreadable file, or hash mismatch.
    """
    from safetensors.torch import load as st_load

    path = Path(path)
    if not path.is_file():
        raise LinearWeightsError(f"linear weights file not found: {path}")
    blob = path.read_bytes()
    digest = _sha256_bytes(blob)
    entry: dict = {"file": path.name, "sha256": digest}
    sidecar = path.with_name(path.name + ".json")
    if expected_sha256 is None and sidecar.is_file():
        try:
            entry = json.loads(sidecar.read_text())
        except json.JSONDecodeError as exc:
            raise LinearWeightsError(f"manifest {sidecar} is not valid JSON: {exc}") from None
        expected_sha256 = entry.get("sha256")
    elif expected_sha256 is None and require_manifest:
        raise LinearWeightsError(f"{path} has no manifest {sidecar}")
    if expected_sha256 is not None and digest != expected_sha256:
        raise LinearWeightsError(
            f"{path}: sha256 {digest} does not match its manifest ({expected_sha256}); the file was "
            "modified or corrupted. Re-create it (invariant-lpips calibrate) or restore the original."
        )
    try:
        tensors = st_load(blob)
    except Exception as exc:  # noqa: BLE001
        raise LinearWeightsError(f"{path} is not a valid safetensors file: {exc}") from exc
    return tensors, entry


def load_shipped(file_name: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Load a shipped weights file, verified against the package manifest."""
    manifest = shipped_manifest()
    if file_name not in manifest:
        raise LinearWeightsError(f"no shipped weights named {file_name!r}; available: {sorted(manifest)}")
    entry = manifest[file_name]
    tensors, _ = load_linear_weights(shipped_dir() / file_name, expected_sha256=entry["sha256"])
    return tensors, entry
