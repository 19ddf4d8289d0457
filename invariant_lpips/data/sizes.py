"""The one size convention of the package.

* **Command line and file names: ``WIDTHxHEIGHT``** (``512x384``), as image tools and KADID write it.
  :func:`parse_size` reads it and returns ``(width, height)``.
* **Python API: torch order ``(height, width)``**, as ``torch.nn.functional.interpolate`` and
  :func:`invariant_lpips.load_image` take it. :func:`hw` converts a parsed ``(width, height)``.

An ``int`` N means N x N everywhere.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

SizeLike = Union[int, Sequence[int], None]


def parse_size(text: Union[str, int, None]) -> Optional[Tuple[int, int]]:
    """``"512x384"`` -> ``(512, 384)`` = (width, height); ``"192"`` -> ``(192, 192)``; ``"none"`` -> None.

    Raises:
        ValueError: the text is not ``N`` or ``WIDTHxHEIGHT`` with positive integers.
    """
    if text is None:
        return None
    if isinstance(text, int):
        w = h = text
    else:
        t = str(text).strip().lower()
        if t in ("", "none", "original", "keep"):
            return None
        try:
            if "x" in t:
                w, h = (int(v) for v in t.split("x"))
            else:
                w = h = int(t)
        except ValueError:
            raise ValueError(f"invalid size {text!r}: use WIDTHxHEIGHT (e.g. 512x384), N for NxN, "
                             "or 'none' to keep each image's size") from None
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive, got {text!r}")
    return int(w), int(h)


def hw(size_wh: Optional[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
    """(width, height) from :func:`parse_size` -> torch order (height, width)."""
    return None if size_wh is None else (int(size_wh[1]), int(size_wh[0]))


def as_hw(size: SizeLike) -> Optional[Tuple[int, int]]:
    """An API size (None, N, or (H, W)) as (H, W); a clear error for anything else."""
    if size is None:
        return None
    if isinstance(size, bool):
        raise TypeError("size must be None, an int or an (H, W) pair, got a bool")
    if isinstance(size, int):
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        return size, size
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise TypeError(f"size must be None, an int N (N x N) or an (H, W) pair in torch order, got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return h, w
