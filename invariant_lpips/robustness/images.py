"""The robustness study's input: a folder of images as one batch, centre-cropped to one size.

Files are listed and decoded by the package's one loader (:mod:`invariant_lpips.data.io`); the
centre crop (optionally after an antialiased bilinear rescale that just covers the crop) is
this study's own protocol.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.io import list_images, load_image

__all__ = ["center_crop", "load_images"]


def center_crop(img: Tensor, size: Tuple[int, int], path: Any = None, resize: bool = False) -> Tensor:
    """Centre crop of (height, width) ``size``. With ``resize``, the image is
    first rescaled (antialiased bilinear) so that it just covers ``size``;
    without, an image smaller than ``size`` is an error naming ``path``."""
    h, w = int(img.shape[-2]), int(img.shape[-1])
    th, tw = size
    if resize:
        scale = max(th / h, tw / w)
        nh, nw = max(th, int(round(h * scale))), max(tw, int(round(w * scale)))
        if (nh, nw) != (h, w):
            img = F.interpolate(
                img.unsqueeze(0), size=(nh, nw), mode="bilinear", align_corners=False, antialias=True
            ).squeeze(0).clamp(0, 1)
            h, w = nh, nw
    if h < th or w < tw:
        raise ValueError(f"image {path} is {w}x{h}, smaller than the crop {tw}x{th} (use --resize)")
    top = (h - th) // 2
    left = (w - tw) // 2
    return img[:, top : top + th, left : left + tw]


def load_images(
    folder: Union[str, Path], size: Optional[Tuple[int, int]], max_images: Optional[int] = None, resize: bool = False
) -> Tuple[List[Path], Tensor]:
    """The images of ``folder`` (sorted by name, the first ``max_images``) as one (N, 3, H, W) batch in
    [0, 1], each centre-cropped to ``size`` = (height, width) (see :func:`center_crop`)."""
    files = list_images(folder)
    if max_images is not None:
        files = files[: int(max_images)]
    imgs = []
    for p in files:
        img = load_image(p)[0]
        if size is not None:
            img = center_crop(img, size, path=p, resize=resize)
        imgs.append(img)
    shapes = {tuple(i.shape) for i in imgs}
    if len(shapes) > 1:
        raise ValueError(f"images in {folder} have different sizes {sorted(shapes)}; give --size")
    return files, torch.stack(imgs).contiguous()
