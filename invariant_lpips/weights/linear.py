"""The learned per-channel linear weights: safetensors files with a manifest.

A weights file holds one float32 vector per tap (key = tap name, e.g. ``pool3`` -> (256,)), and for
variants with per-term scales one ``scale.<term>`` scalar per term.
Every file is described by a manifest entry ``{file, variant, data, loss, date, sha256, notes}``:
shipped files by ``invariant_lpips/weights/shipped/manifest.json`` (which also holds each variant's
description, invariance claim and relative cost: :func:`variant_notes`), user files (from
``invariant-lpips calibrate``) by a sidecar ``<file>.json``. Loading checks the sha256 of the file
against its manifest and refuses a mismatch; safetensors cannot execute code.

:func:`resolve_linear_weights` is the one place a module's or calibration's weights argument
(shipped / ``"ones"`` / dict / file) becomes tensors.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

import torch

MANIFEST_NAME = "manifest.json"
#: the shipped files: package data of ``invariant_lpips.weights.shipped``, next to this module
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"


class LinearWeightsError(RuntimeError):
    """A linear-weights file is missing, corrupt, or does not match its manifest."""


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shipped_dir() -> Path:
    """Folder of the shipped weights (``invariant_lpips/weights/shipped``)."""
    if not (SHIPPED_DIR / MANIFEST_NAME).is_file():
        raise LinearWeightsError(f"cannot find the shipped weights: {SHIPPED_DIR} has no {MANIFEST_NAME} "
                                 "(broken install? reinstall invariant-lpips)")
    return SHIPPED_DIR


def _manifest_data() -> dict:
    path = shipped_dir() / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LinearWeightsError(f"the package's weights manifest is missing: {path} (broken install? "
                                 "reinstall invariant-lpips)") from None
    except json.JSONDecodeError as exc:
        raise LinearWeightsError(f"the weights manifest {path} is not valid JSON: {exc}") from None


def shipped_manifest() -> Dict[str, dict]:
    """Shipped file name -> its manifest entry."""
    return {entry["file"]: entry for entry in _manifest_data()["files"]}


def variant_notes(name: str) -> dict:
    """What the manifest says about a variant: ``description``, ``invariance`` (prose) and
    ``relative_cost`` (trunk FLOPs relative to the plain VGG-16 at 512x384); empty for a user variant."""
    return dict(_manifest_data().get("variants", {}).get(name, {}))


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


#: what a weights argument may be: None (the default file, or ones), ``"ones"``, a dict, or a file path
WeightsArg = Union[None, str, Path, Mapping[str, torch.Tensor]]


def resolve_linear_weights(weights: WeightsArg, channels: Mapping[str, int], default_file: Optional[str],
                           *, variant: Optional[str] = None, fill_with_ones: Tuple[str, ...] = (),
                           old_names: Tuple[str, ...] = ()) -> Tuple[Dict[str, torch.Tensor], dict]:
    """The one weight resolver: a weights argument -> (tensors, manifest entry).

    Args:
        weights: ``None`` (the shipped ``default_file``, or unit weights when there is none), ``"ones"``,
            a dict (tap -> (C,) tensor, ``scale.<term>`` scalars), or a path to a safetensors file (its
            manifest hash is checked; a file calibrated for another variant warns).
        channels: tap -> channel count of every per-channel vector the caller needs.
        default_file: the shipped file name (None: unit weights).
        variant: the caller's variant name (for the mismatch warning and messages).
        fill_with_ones: taps that get unit weights when the source lacks them (e.g. the colour tap).
        old_names: earlier names of the variant (a file calibrated under one of them does not warn).

    Returns:
        ``{key: float32 tensor}`` (per-tap vectors flattened to (C,), other keys as stored), and the entry.
        Raises ValueError for a missing tap, a wrong channel count or a negative weight.
    """
    ones = {t: torch.ones(c) for t, c in channels.items()}
    if (weights is None and default_file is None) or (isinstance(weights, str) and weights == "ones"):
        tensors, entry = ones, {"file": None, "notes": "unit weights"}
    elif weights is None:
        tensors, entry = load_shipped(default_file)
    elif isinstance(weights, Mapping):
        tensors, entry = dict(weights), {"file": None, "notes": "weights passed as a dict"}
    else:
        tensors, entry = load_linear_weights(weights)
        file_variant = entry.get("variant")
        if variant and file_variant and file_variant != variant and file_variant not in old_names:
            warnings.warn(f"weights file {weights} was calibrated for variant {file_variant!r}, "
                          f"used here with {variant!r}", stacklevel=4)
    tensors = {k: torch.as_tensor(t).float() for k, t in tensors.items()}
    tensors.update({t: ones[t] for t in fill_with_ones if t in channels and t not in tensors})
    for tap, c in channels.items():
        if tap not in tensors:
            raise ValueError(f"linear weights lack tap {tap!r} (have {sorted(tensors)}); "
                             f"{('variant ' + repr(variant)) if variant else 'the metric'} needs {list(channels)}")
        tensors[tap] = tensors[tap].reshape(-1)
        if tensors[tap].numel() != c:
            raise ValueError(f"linear weights for {tap!r} have {tensors[tap].numel()} values, expected {c}")
    for key, t in tensors.items():
        if (t < 0).any():
            raise ValueError(f"linear weights {key!r} contain negative values; they must be >= 0")
    return tensors, entry
