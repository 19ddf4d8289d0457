"""Write a KADID-10k-style dataset from a folder of reference images.

Layout (as KADID-10k)::

    out_dir/images/I01.png                 reference 1 (cropped/resized)
    out_dir/images/I01_01_01.png           reference 1, type 1, level 1
    ...
    out_dir/dmos.csv                       dist_img,ref_img,dmos,var  (dmos/var empty: no human scores)
    out_dir/refs.csv                       ref_img,source_file        (I01.png -> original file name)

References are the image files of ``refs_dir`` (the package's one loader and lister,
:mod:`invariant_lpips.data.io`: png, jpg, bmp, tif, webp, ...) sorted by file name and numbered
from 1.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ..data.io import list_images, load_image_array
from ..data.sizes import as_hw
from ..progress import progress_bar
from .kadid import DISTORTION_TYPES, N_LEVELS, distort

DEFAULT_SIZE = (512, 384)

PathLike = Union[str, "os.PathLike[str]"]


def load_uint8(path: PathLike) -> np.ndarray:
    """An image file as an (H, W, 3) uint8 RGB array (the distortions' input), read by
    :func:`invariant_lpips.data.io.load_image_array`; errors name the path."""
    return np.round(load_image_array(path) * 255.0).astype(np.uint8)


def fit_crop(image: np.ndarray, size: Optional[Tuple[int, int]]) -> np.ndarray:
    """Scale ``image`` so that it covers ``size`` = (width, height) (the side that is short
    relative to the target fits exactly), then centre-crop to ``size``. ``None`` returns the
    image unchanged. Uses Pillow's Lanczos filter."""
    if size is None:
        return image
    tw, th = int(size[0]), int(size[1])
    h, w = image.shape[:2]
    s = max(tw / w, th / h)
    nw, nh = max(tw, int(round(w * s))), max(th, int(round(h * s)))
    im = Image.fromarray(image)
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.Resampling.LANCZOS)
    left = (nw - tw) // 2
    top = (nh - th) // 2
    return np.asarray(im.crop((left, top, left + tw, top + th)), dtype=np.uint8).copy()


def _check_types_levels(types: Optional[Iterable[int]], levels: Iterable[int]) -> Tuple[List[int], List[int]]:
    if types is None:
        t_list = sorted(DISTORTION_TYPES)
    else:
        t_list = [int(t) for t in types]
        bad = [t for t in t_list if t not in DISTORTION_TYPES]
        if bad:
            raise ValueError(f"unknown distortion type(s) {bad}; valid ids are 1..25")
        if not t_list:
            raise ValueError("types is empty; pass None for all 25 types")
    l_list = [int(l) for l in levels]
    bad = [l for l in l_list if not 1 <= l <= N_LEVELS]
    if bad:
        raise ValueError(f"invalid level(s) {bad}; valid levels are 1..{N_LEVELS}")
    if not l_list:
        raise ValueError(f"levels is empty; pass e.g. (1, 2, 3, 4, 5)")
    return list(dict.fromkeys(t_list)), list(dict.fromkeys(l_list))


def _check_size(size: Optional[Sequence[int]]) -> Optional[Tuple[int, int]]:
    """``(width, height)`` (or an int N for NxN) validated by :func:`~invariant_lpips.data.sizes.as_hw`
    (which keeps the pair's order), at least 2x2; None keeps each image's size."""
    wh = as_hw(size)
    if wh is not None and min(wh) < 2:
        raise ValueError(f"size must be at least 2x2, got {wh[0]}x{wh[1]}")
    return wh


def ref_name(ref: int) -> str:
    """``I01.png`` for reference 1."""
    return f"I{ref:02d}.png"


def dist_name(ref: int, dist_type: int, level: int) -> str:
    """``I01_03_02.png`` for reference 1, type 3, level 2."""
    return f"I{ref:02d}_{dist_type:02d}_{level:02d}.png"


def parse_dist_name(name: str) -> Tuple[int, int, int]:
    """``"I01_03_02.png"`` -> ``(1, 3, 2)``; raises ValueError naming the bad name."""
    stem = Path(name).name
    if stem.lower().endswith(".png"):
        stem = stem[:-4]
    parts = stem.split("_")
    if len(parts) != 3 or not parts[0].startswith(("I", "i")):
        raise ValueError(f"not a KADID-style distorted image name (I<ref>_<type>_<level>.png): {name!r}")
    try:
        return int(parts[0][1:]), int(parts[1]), int(parts[2])
    except ValueError:
        raise ValueError(f"not a KADID-style distorted image name (I<ref>_<type>_<level>.png): {name!r}") from None


def write_kadid_style_dataset(
    refs_dir: PathLike,
    out_dir: PathLike,
    types: Optional[Iterable[int]] = None,
    levels: Iterable[int] = (1, 2, 3, 4, 5),
    size: Optional[Sequence[int]] = DEFAULT_SIZE,
    seed: int = 0,
    progress: bool = True,
) -> Dict[str, object]:
    """Distort every reference of ``refs_dir`` with KADID types × levels into ``out_dir``.

    Parameters
    ----------
    refs_dir:
        Folder of reference images (png/jpg/bmp/tif/webp...), taken in sorted file-name order.
    out_dir:
        Output folder (created). Existing files with the same names are overwritten.
    types:
        KADID type ids (default: all 25).
    levels:
        Levels 1..5 (default: all).
    size:
        ``(width, height)`` of the references after scale-to-cover and centre crop
        (default KADID's 512x384), or ``None`` to keep each image's size.
    seed:
        Base seed; reference ``r`` uses the seed derived from ``(seed, r)`` so each reference
        gets its own random draws and the whole dataset is reproducible.
    progress:
        Show a progress bar (:func:`invariant_lpips.progress.progress_bar`).

    Returns
    -------
    dict with ``out_dir``, ``images_dir``, ``dmos_csv``, ``refs_csv``, ``n_refs``, ``n_distorted``.
    """
    t_list, l_list = _check_types_levels(types, levels)
    size_t = _check_size(size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    refs = list_images(refs_dir)
    out = Path(out_dir)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    total = len(refs) * len(t_list) * len(l_list)
    bar = progress_bar(total=total, desc="make-dataset", unit="img", disable=not progress)

    dmos_rows: List[Tuple[str, str]] = []
    ref_rows: List[Tuple[str, str]] = []
    try:
        for r, path in enumerate(refs, start=1):
            ref = fit_crop(load_uint8(path), size_t)
            Image.fromarray(ref).save(images_dir / ref_name(r))
            ref_rows.append((ref_name(r), path.name))
            ref_seed = int(np.random.SeedSequence([int(seed), r]).generate_state(1)[0])
            for t in t_list:
                for lvl in l_list:
                    y = distort(ref, t, lvl, seed=ref_seed)
                    Image.fromarray(y).save(images_dir / dist_name(r, t, lvl))
                    dmos_rows.append((dist_name(r, t, lvl), ref_name(r)))
                    bar.update(1)
    finally:
        bar.close()

    dmos_csv = out / "dmos.csv"
    with open(dmos_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dist_img", "ref_img", "dmos", "var"])
        for dist, ref in dmos_rows:
            w.writerow([dist, ref, "", ""])
    refs_csv = out / "refs.csv"
    with open(refs_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ref_img", "source_file"])
        w.writerows(ref_rows)
    return {
        "out_dir": out,
        "images_dir": images_dir,
        "dmos_csv": dmos_csv,
        "refs_csv": refs_csv,
        "n_refs": len(refs),
        "n_distorted": len(dmos_rows),
    }
