"""Image loading with Pillow: RGB conversion, 16-bit PNGs, EXIF orientation, clear errors."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import torch

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
    size: Optional[Tuple[int, int]] = None,
    range: str = "0,1",  # noqa: A002 - mirrors lpips.im2tensor's options
    device: Union[str, torch.device, None] = None,
) -> torch.Tensor:
    """Load an image file as a (1, 3, H, W) float32 tensor.

    Args:
        path: image file (PNG incl. 16-bit, JPEG, BMP, TIFF, WebP, ...).
        size: optional (width, height) to resize to (bicubic, antialiased).
        range: ``"0,1"`` (use ``normalize=True`` with the metrics) or ``"-1,1"``.
        device: where to put the tensor.
    """
    arr = load_image_array(path)
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]
    if size is not None:
        w, h = size
        t = torch.nn.functional.interpolate(t, size=(h, w), mode="bicubic", align_corners=False,
                                            antialias=True).clamp(0, 1)
    if range == "-1,1":
        t = t * 2 - 1
    elif range != "0,1":
        raise ValueError(f"range must be '0,1' or '-1,1', got {range!r}")
    return t.to(device) if device is not None else t


def list_images(folder: Union[str, Path]) -> list:
    """Sorted image files in a folder (by extension); error naming the folder if none/missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return files
