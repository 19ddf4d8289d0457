"""Shift and arrangement probes: does a metric forgive small shifts and still see where things are?

For each photograph, a ``size``-px crop ``x`` (centred, 4 px left of centre so that shifted crops stay
inside the photo) is compared with (``PROBES``):

* ``shift1``, ``shift2``, ``shift8``: the same photo cropped 1, 2 and 8 px to the right (real content
  enters, nothing wraps);
* ``noise0.02``, ``noise0.03``: Gaussian noise of std 0.02 and 0.03 ([0, 1] scale; seed = image index);
* ``jpeg30``: PIL JPEG at quality 30;
* ``mirror``: ``x`` flipped left-right;
* ``shuffle64``: ``x``'s 64-px blocks in a random permutation with no block in place (seed = image index).

The mirror and the shuffle keep every local statistic and change only the arrangement: a metric blind to
position scores them near 0. Summary figures (:func:`probe_summary`), each a ratio of distances of the
same crop, so that the metric's own scale cancels:

* ``shiftK/noise`` = median over crops of ``d(x, shiftK) / d(x, noise0.02)`` (small: the shift is forgiven);
* ``mirror/noise``, ``shuffle64/noise`` = minimum over crops of ``d / d(x, noise0.03)`` and
  ``mirror/jpeg30``, ``shuffle64/jpeg30`` = minimum of ``d / d(x, jpeg30)`` (above 1 on every crop: the
  arrangement change costs more than the faint distortion everywhere).

Metrics come from :func:`~invariant_lpips.metric.registry.build_metric` (images in [0, 1], (N,) out); a
similarity (PSNR, SSIM) is refused, since the ratios need distances. ``benchmarks/arrangement.py`` runs it.
"""
from __future__ import annotations

import statistics
from typing import Dict, List, Mapping, Sequence

import torch
from torch import Tensor

from ..distortions.tensor import block_shuffle, gaussian_noise, jpeg_compress

__all__ = ["PROBES", "probe_images", "probe_distances", "probe_summary", "SUMMARY_KEYS"]

PROBES = ("shift1", "shift2", "shift8", "noise0.02", "noise0.03", "jpeg30", "mirror", "shuffle64")
SUMMARY_KEYS = ("shift1/noise", "shift2/noise", "shift8/noise", "mirror/noise", "shuffle64/noise",
                "mirror/jpeg30", "shuffle64/jpeg30")
_LEFT = 4  # the crop sits this many px left of centre, so that a shift of up to 2 * _LEFT stays inside


def _crop(photo: Tensor, size: int, dx: int) -> Tensor:
    h, w = photo.shape[-2:]
    y0, x0 = (h - size) // 2, (w - size) // 2 - _LEFT + dx
    if y0 < 0 or x0 < 0 or x0 + size > w:
        raise ValueError(f"a photo of {w}x{h} is too small for {size}-px probe crops shifted by up to "
                         f"{2 * _LEFT} px; pass a smaller size")
    return photo[..., y0:y0 + size, x0:x0 + size]


def probe_images(photo: Tensor, index: int, size: int = 256) -> Dict[str, Tensor]:
    """The crop ``x`` of ``photo`` ((1, 3, H, W) in [0, 1]) under ``"x"`` and its probe images (``PROBES``),
    each (1, 3, size, size)."""
    if photo.dim() != 4 or photo.shape[0] != 1:
        raise ValueError(f"probe_images takes one photo of shape (1, 3, H, W), got {tuple(photo.shape)}")
    x = _crop(photo, size, 0)
    return {"x": x, "shift1": _crop(photo, size, 1), "shift2": _crop(photo, size, 2),
            "shift8": _crop(photo, size, 2 * _LEFT),
            "noise0.02": gaussian_noise(0.02, seed=index)(x), "noise0.03": gaussian_noise(0.03, seed=index)(x),
            "jpeg30": jpeg_compress(x, 30).to(x), "mirror": x.flip(-1), "shuffle64": block_shuffle(x, 64, index)}


def probe_distances(metric, photos: Sequence[Tensor], size: int = 256) -> List[Dict[str, float]]:
    """``d(x, probe)`` for every photo (one dict per photo, keys ``PROBES``); ``metric(x, y) -> (N,)`` on
    images in [0, 1] (:class:`~invariant_lpips.metric.registry.MetricAdapter`), the crop broadcast."""
    if getattr(metric, "lower_is_better", True) is False:
        raise ValueError(f"{getattr(metric, 'name', metric)!r} is a similarity; the probes' ratios need a distance")
    out = []
    for i, photo in enumerate(photos):
        ims = probe_images(photo, i, size)
        ys = torch.cat([ims[k] for k in PROBES])
        with torch.no_grad():
            d = metric(ims["x"], ys).detach().double().reshape(-1).cpu().tolist()
        if len(d) != len(PROBES):
            raise ValueError(f"the metric returned {len(d)} distances for {len(PROBES)} probe images")
        out.append(dict(zip(PROBES, d)))
    return out


def probe_summary(rows: Sequence[Mapping[str, float]]) -> Dict[str, float]:
    """The ratios of the module docstring from :func:`probe_distances`' rows."""
    def ratios(num: str, den: str) -> List[float]:
        return [r[num] / r[den] if r[den] > 0 else float("inf") for r in rows]

    if not rows:
        raise ValueError("probe_summary needs at least one photo's distances")
    out = {f"shift{k}/noise": statistics.median(ratios(f"shift{k}", "noise0.02")) for k in (1, 2, 8)}
    for num in ("mirror", "shuffle64"):
        out[f"{num}/noise"] = min(ratios(num, "noise0.03"))
        out[f"{num}/jpeg30"] = min(ratios(num, "jpeg30"))
    return {k: out[k] for k in SUMMARY_KEYS}
