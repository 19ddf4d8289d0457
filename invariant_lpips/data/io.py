"""The package's one image loader and one folder lister, plus the one file hash.

Pillow decoding with RGB conversion, 16-bit PNGs, EXIF orientation and errors that name the path.
Sizes follow :mod:`invariant_lpips.data.sizes`: ``(H, W)`` torch order in the API.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch

from .sizes import SizeLike, as_hw

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def load_image_array(path: Union[str, Path]) -> np.ndarray:
    """Read an image file as an (H, W, 3) float32 array in [0, 1].

    Handles palette/grey/alpha images (converted to RGB; alpha dropped), 16-bit PNG/TIFF
    (scaled by 65535) and EXIF orientation (applied, as viewers show the image).

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        ValueError: the file is not a readable image (the message names it).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not an image file (for folders use list_images "
                                "or the CLI's folder mode)")
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                arr = np.asarray(img, dtype=np.float64)
                scale = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
                arr = np.clip(arr / scale, 0, 1).astype(np.float32)
                return np.repeat(arr[..., None], 3, axis=2)
            if mode == "F":
                arr = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
                return np.repeat(arr[..., None], 3, axis=2)
            if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
                img = img.convert("RGBA").convert("RGB")
            elif mode != "RGB":
                img = img.convert("RGB")
            return np.asarray(img, dtype=np.float32) / 255.0
    except UnidentifiedImageError:
        raise ValueError(f"not a readable image file (unknown or corrupt format): {path}") from None
    except OSError as exc:
        raise ValueError(f"could not read image {path}: {exc}") from None




def load_image(
    path: Union[str, Path],
    size: SizeLike = None,
    range: str = "0,1",  # noqa: A002 - mirrors lpips.im2tensor's options
    device: Union[str, torch.device, None] = None,
) -> torch.Tensor:
    """Load an image file as a (1, 3, H, W) float32 tensor.

    Args:
        path: image file (PNG incl. 16-bit, JPEG, BMP, TIFF, WebP, ...).
        size: resize to this size (bicubic, antialiased): ``None`` keeps the file's size, an int N
            gives N x N, a pair is ``(H, W)`` in torch order (the CLI's ``WIDTHxHEIGHT`` strings are
            converted by :func:`invariant_lpips.data.sizes.hw`).
        range: ``"0,1"`` (use ``normalize=True`` with the metrics) or ``"-1,1"``.
        device: where to put the tensor.
    """
    arr = load_image_array(path)
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
    target = as_hw(size)
    if target is not None:
        t = resize(t, target)
    if range == "-1,1":
        t = t * 2 - 1
    elif range != "0,1":
        raise ValueError(f"range must be '0,1' or '-1,1', got {range!r}")
    return t.to(device) if device is not None else t


def resize(t: torch.Tensor, size_hw) -> torch.Tensor:
    """Bicubic, antialiased resize of (N, C, H, W) in [0, 1] to ``size_hw = (H, W)``, clamped to [0, 1]."""
    h, w = as_hw(size_hw)
    if tuple(t.shape[-2:]) == (h, w):
        return t
    return torch.nn.functional.interpolate(t, size=(h, w), mode="bicubic", align_corners=False,
                                           antialias=True).clamp(0, 1)


def list_images(folder: Union[str, Path], recursive: bool = False) -> List[Path]:
    """Sorted image files (by extension, :data:`IMAGE_EXTENSIONS`) in a folder.

    Raises:
        FileNotFoundError: the folder does not exist, or holds no image (the message names it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    it = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(p for p in it if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return files


def file_sha256(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
