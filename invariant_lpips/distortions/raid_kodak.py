"""RAID stimuli reconstructed from the 24 Kodak photographs.

RAID (Daudén-Oliver et al., "RAID-Database: Human Responses to Affine Image Distortions") shows each
Kodak photograph at native scale through a fixed soft circular window on a grey background, 454x454
px, and distorts the *content behind the window* (rotation, translation, scaling, Gaussian noise;
10 levels, level 1 = undistorted). These stimuli differ from :mod:`.raid`'s whole-image distortions
(mirror padding, no window). What is known of the recipe (fitted to two real RAID images, stated by
the authors, or guessed) is listed in ``docs/raid.md``; every constant below is one of those facts.

Pipeline of one stimulus (all in float64, Kodak values in 8-bit units)::

    K  = Kodak image (gn: + i.i.d. Gaussian noise, clipped to [0, 255], rounded)     -- before windowing
    C  = K - bg, sampled into the 454x454 window frame: RAID pixel (y, x) shows Kodak pixel
         (y + oy, x + ox) moved by the distortion (bilinear for rot/scale, integer for trans);
         zero (= background) outside the Kodak image
    Z  = gaussian_blur_sigma15(d(r) * C)   (zero padding)
    out = round(bg + Z + a(r) * (C - Z)),  clipped to uint8

with ``d(r)`` a logistic disc of radius 191.5 px and ``a(r)`` the fitted gain profile
(:func:`window_profiles`). ``r`` is the distance from the window centre (226.5, 226.5).

Public functions: :func:`level_parameter`, :func:`window_profiles`, :func:`apply_window`,
:func:`content_in_window`, :func:`noisy_kodak`, :func:`make_stimulus`, :func:`stimulus_name`,
:func:`write_raid_kodak` (the 960 stimuli + ``params.json``).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["RAID_KINDS", "RAID_LEVELS", "CROP_OFFSETS", "GN_VARIANCES", "RaidWindow", "RAID_WINDOW",
           "level_parameter", "window_profiles", "apply_window", "content_in_window", "noisy_kodak",
           "make_stimulus", "stimulus_name", "reference_name", "kodak_file", "noise_seed", "write_raid_kodak",
           "RECIPE_VERSION"]

RECIPE_VERSION = 1
RAID_KINDS: Tuple[str, ...] = ("rot", "trans", "scale", "gn")
RAID_LEVELS: Tuple[int, ...] = tuple(range(1, 11))

#: crop offset (row, col) of each RAID image in its Kodak photograph: RAID pixel (y, x) shows Kodak
#: pixel (y + row, x + col) [fitted: image 1 exact, the others to 142-px thumbnails, <= 1 px]
CROP_OFFSETS: Dict[int, Tuple[int, int]] = {
    1: (91, 133), 2: (-5, 112), 3: (9, 102), 4: (171, 29), 5: (-14, 133), 6: (8, 95), 7: (58, 182),
    8: (-31, 100), 9: (257, 29), 10: (302, 29), 11: (20, 281), 12: (5, 160), 13: (6, 148), 14: (58, 176),
    15: (21, 265), 16: (-27, 150), 17: (39, 29), 18: (115, 29), 19: (220, 29), 20: (26, 86), 21: (25, 57),
    22: (-2, 88), 23: (12, 95), 24: (81, 94),
}

#: gn: noise variance (8-bit units) per level 1..10 [levels 2, 3, 5, 10 = TID2013 AGN levels 2-5; rest guessed]
GN_VARIANCES: Tuple[float, ...] = (0.0, 65.0, 129.7, 194.3, 258.9, 313.1, 365.7, 417.0, 467.2, 516.5)

_RAMP = (0.4585, 0.3489, 0.3026, 0.2698, 0.2439, 0.2240, 0.2062, 0.1907, 0.1779, 0.1650,
         0.1541, 0.1441, 0.1347, 0.1250, 0.1179, 0.1106, 0.1036, 0.0973, 0.0908, 0.0642)


@dataclass(frozen=True)
class RaidWindow:
    """The fitted soft circular window (defaults = RAID's)."""

    size: int = 454
    background: Tuple[int, int, int] = (121, 109, 90)
    disc_radius: float = 191.5      # d(r) = 1 / (1 + exp((r - disc_radius) / disc_softness))
    disc_softness: float = 1.0
    blur_sigma: float = 15.0         # Z = Gaussian blur (sigma in px, truncated at 4 sigma, zero padding)
    inner_gain: float = 0.7848       # a(r) for r < inner_radius (and up to the first ramp ring)
    inner_radius: float = 171.5
    ramp_start: int = 172            # a(r) = ramp[floor(r) - ramp_start] for floor(r) in ramp_start..; 0 beyond
    ramp: Tuple[float, ...] = field(default=_RAMP)

    @property
    def centre(self) -> float:
        return (self.size - 1) / 2.0


RAID_WINDOW = RaidWindow()


def kodak_file(image_id: int) -> str:
    return f"kodim{int(image_id):02d}.png"


def stimulus_name(kind: str, image_id: int, level: int) -> str:
    """RAID's file name, e.g. ``rot_img_01_level_02.png``."""
    return f"{kind}_img_{int(image_id):02d}_level_{int(level):02d}.png"


def reference_name(image_id: int) -> str:
    return f"img_{int(image_id):02d}.png"


def _check_kind_level(kind: str, level: int) -> None:
    if kind not in RAID_KINDS:
        raise ValueError(f"kind must be one of {RAID_KINDS}, got {kind!r}")
    if isinstance(level, bool) or int(level) != level or not 1 <= int(level) <= 10:
        raise ValueError(f"level must be an int in 1..10, got {level!r}")


def level_parameter(kind: str, level: int) -> float:
    """The distortion parameter at ``level``: rot degrees (counter-clockwise), trans px (content moves
    right), scale zoom factor (> 1 = zoom in), gn noise variance (8-bit units)."""
    _check_kind_level(kind, level)
    k = int(level) - 1
    if kind == "rot":
        return 2.0 * k
    if kind == "trans":
        return 5.0 * k
    if kind == "scale":
        return 1.0 + 0.01 * k
    return GN_VARIANCES[k]


def noise_seed(seed: int, image_id: int, level: int) -> List[int]:
    """The entropy of the gn noise of (image, level): ``numpy.random.SeedSequence([seed, image_id, level])``."""
    return [int(seed), int(image_id), int(level)]


def window_profiles(window: RaidWindow = RAID_WINDOW) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(r, d, a)``: distance from the centre, the disc ``d(r)`` and the gain ``a(r)``, each (size, size).

    ``a = inner_gain`` for ``floor(r) < ramp_start`` (this covers ``r < inner_radius``; the half-pixel
    ring ``inner_radius <= r < ramp_start`` is not specified by the fit and keeps the inner gain),
    ``ramp[floor(r) - ramp_start]`` on the ramp rings, 0 beyond."""
    n, c = window.size, window.centre
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    r = np.hypot(yy - c, xx - c)
    d = 1.0 / (1.0 + np.exp((r - window.disc_radius) / window.disc_softness))
    ring = np.floor(r).astype(np.int64) - window.ramp_start
    ramp = np.asarray(window.ramp, dtype=np.float64)
    a = np.zeros_like(r)
    a[ring < 0] = window.inner_gain
    on = (ring >= 0) & (ring < ramp.size)
    a[on] = ramp[ring[on]]
    a[r < window.inner_radius] = window.inner_gain
    return r, d, a


_PROFILE_CACHE: Dict[RaidWindow, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _profiles(window: RaidWindow):
    if window not in _PROFILE_CACHE:
        _PROFILE_CACHE[window] = window_profiles(window)
    return _PROFILE_CACHE[window]


def apply_window(content: np.ndarray, window: RaidWindow = RAID_WINDOW) -> np.ndarray:
    """``content`` = K - bg in the window frame, (size, size, 3) float (8-bit units, 0 = background)
    -> the uint8 stimulus ``round(bg + Z + a(r) (content - Z))``, ``Z = blur(d(r) content)``."""
    from scipy import ndimage  # deferred: start-up time

    c = np.asarray(content, dtype=np.float64)
    if c.shape != (window.size, window.size, 3):
        raise ValueError(f"content must be ({window.size}, {window.size}, 3), got {c.shape}")
    _r, d, a = _profiles(window)
    z = np.empty_like(c)
    for ch in range(3):
        z[..., ch] = ndimage.gaussian_filter(d * c[..., ch], sigma=window.blur_sigma, mode="constant", cval=0.0,
                                             truncate=4.0)
    bg = np.asarray(window.background, dtype=np.float64)
    out = bg + z + a[..., None] * (c - z)
    return np.floor(np.clip(out, 0.0, 255.0) + 0.5).astype(np.uint8)


def content_in_window(kodak: np.ndarray, offset: Tuple[int, int], kind: str = "rot", parameter: float = 0.0,
                      window: RaidWindow = RAID_WINDOW) -> np.ndarray:
    """K - bg seen through the window frame after moving the content, (size, size, 3) float64.

    ``offset`` = (row, col) of RAID pixel (0, 0) in the Kodak image. ``trans``: content moved right by
    ``parameter`` px (an integer: exact copy of Kodak pixels); ``rot``: rotated counter-clockwise by
    ``parameter`` degrees about the window centre; ``scale``: zoomed by ``parameter`` about the window
    centre (both bilinear). ``gn`` and identity parameters are the plain crop. Outside the Kodak image: 0.
    """
    from scipy import ndimage  # deferred: start-up time

    k = np.asarray(kodak)
    if k.ndim != 3 or k.shape[2] != 3:
        raise ValueError(f"kodak image must be (H, W, 3), got {k.shape}")
    kc = k.astype(np.float64) - np.asarray(window.background, dtype=np.float64)
    oy, ox = int(offset[0]), int(offset[1])
    n, c = window.size, window.centre
    identity = (kind == "gn" or (kind == "rot" and parameter == 0.0) or (kind == "scale" and parameter == 1.0)
                or (kind == "trans" and parameter == 0.0))
    if identity or kind == "trans":
        shift = 0 if identity else parameter
        if shift != int(shift):
            raise ValueError(f"trans needs an integer shift, got {parameter!r}")
        return _integer_crop(kc, oy, ox - int(shift), n)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    dy, dx = yy - c, xx - c
    if kind == "rot":
        t = math.radians(float(parameter))
        # output offset -> input offset; rows point down, so this turns the content counter-clockwise
        sy = math.cos(t) * dy + math.sin(t) * dx
        sx = -math.sin(t) * dy + math.cos(t) * dx
    elif kind == "scale":
        if parameter <= 0:
            raise ValueError(f"scale factor must be > 0, got {parameter!r}")
        sy, sx = dy / float(parameter), dx / float(parameter)
    else:
        raise ValueError(f"kind must be one of {RAID_KINDS}, got {kind!r}")
    coords = np.stack([sy + c + oy, sx + c + ox])
    out = np.empty((n, n, 3), dtype=np.float64)
    for ch in range(3):
        out[..., ch] = ndimage.map_coordinates(kc[..., ch], coords, order=1, mode="constant", cval=0.0,
                                               prefilter=False)
    return out


def _integer_crop(kc: np.ndarray, oy: int, ox: int, n: int) -> np.ndarray:
    """``out[y, x] = kc[y + oy, x + ox]`` where inside, else 0."""
    H, W = kc.shape[:2]
    out = np.zeros((n, n, 3), dtype=np.float64)
    y0, y1 = max(0, -oy), min(n, H - oy)
    x0, x1 = max(0, -ox), min(n, W - ox)
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = kc[y0 + oy:y1 + oy, x0 + ox:x1 + ox]
    return out


def noisy_kodak(kodak: np.ndarray, variance: float, entropy: Sequence[int]) -> np.ndarray:
    """Kodak image + i.i.d. Gaussian noise of ``variance`` (8-bit units) per RGB value, clipped to
    [0, 255] and rounded to uint8 (the noise field is drawn over the whole Kodak image from
    ``numpy.random.default_rng(SeedSequence(entropy))``)."""
    k = np.asarray(kodak)
    if variance == 0:
        return k.copy()
    rng = np.random.default_rng(np.random.SeedSequence(list(entropy)))
    y = k.astype(np.float64) + rng.standard_normal(k.shape) * math.sqrt(float(variance))
    return np.floor(np.clip(y, 0.0, 255.0) + 0.5).astype(np.uint8)


def make_stimulus(kodak: np.ndarray, image_id: int, kind: str, level: int, seed: int = 0,
                  offset: Optional[Tuple[int, int]] = None, window: RaidWindow = RAID_WINDOW
                  ) -> Tuple[np.ndarray, Dict[str, Any]]:
    """One RAID stimulus from its Kodak photograph (``(H, W, 3)`` uint8, stored orientation).

    Returns ``(uint8 (size, size, 3) image, parameters)``; ``offset`` defaults to :data:`CROP_OFFSETS`.
    """
    _check_kind_level(kind, level)
    if offset is None:
        offset = CROP_OFFSETS[int(image_id)]
    k = np.asarray(kodak)
    if k.dtype != np.uint8 or k.ndim != 3 or k.shape[2] != 3:
        raise ValueError(f"kodak image must be an (H, W, 3) uint8 array, got {k.dtype} {k.shape}")
    p = level_parameter(kind, level)
    params: Dict[str, Any] = {"image": int(image_id), "kind": kind, "level": int(level),
                              "offset": [int(offset[0]), int(offset[1])]}
    if kind == "gn":
        entropy = noise_seed(seed, image_id, level)
        k = noisy_kodak(k, p, entropy)
        params.update(noise_variance=p, noise_sigma=math.sqrt(p), noise_seed_entropy=entropy,
                      noise="iid Gaussian per RGB value on the Kodak image, clipped to [0, 255], rounded")
        content = content_in_window(k, offset, "gn", 0.0, window)
    else:
        content = content_in_window(k, offset, kind, p, window)
        key = {"rot": "degrees_ccw", "trans": "shift_right_px", "scale": "zoom"}[kind]
        params[key] = p
        params["interpolation"] = "integer" if kind == "trans" or level == 1 else "bilinear"
    return apply_window(content, window), params


def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image  # deferred: start-up time

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image  # deferred: start-up time

    tmp = path.with_name(path.name + ".tmp.png")
    Image.fromarray(array).save(tmp, format="PNG")
    tmp.replace(path)


def write_raid_kodak(refs: Union[str, Path], out: Union[str, Path], seed: int = 0,
                     images: Optional[Iterable[int]] = None, kinds: Sequence[str] = RAID_KINDS,
                     levels: Sequence[int] = RAID_LEVELS, offsets: Optional[Mapping[int, Tuple[int, int]]] = None,
                     window: RaidWindow = RAID_WINDOW, progress: bool = True) -> Dict[str, Any]:
    """Write RAID's stimuli from the Kodak photographs in ``refs`` (``kodimNN.png``) to ``out``.

    Files: ``{rot|trans|scale|gn}_img_XX_level_YY.png`` (24 x 4 x 10 = 960 by default), the undistorted
    stimulus again as ``img_XX.png`` (RAID's ``Reference`` column), and ``params.json`` (the recipe, the
    window constants, and per file its parameters and sha256). Deterministic for a given ``seed``.
    """
    import hashlib

    from ..progress import progress_bar  # deferred: start-up time

    refs, out = Path(refs), Path(out)
    offs = dict(CROP_OFFSETS if offsets is None else offsets)
    ids = sorted(offs) if images is None else [int(i) for i in images]
    missing = [kodak_file(i) for i in ids if not (refs / kodak_file(i)).is_file()]
    if missing:
        raise FileNotFoundError(f"{refs}: missing Kodak image(s) {', '.join(missing)}")
    for kind in kinds:
        for lv in levels:
            _check_kind_level(kind, lv)
    out.mkdir(parents=True, exist_ok=True)
    files: Dict[str, Any] = {}
    total = len(ids) * (len(kinds) * len(levels) + 1)
    bar = progress_bar(total=total, desc="raid-kodak", disable=not progress)
    for i in ids:
        kodak = _load_rgb(refs / kodak_file(i))
        jobs = [(kind, lv, stimulus_name(kind, i, lv)) for kind in kinds for lv in levels]
        jobs.append((RAID_KINDS[0], 1, reference_name(i)))
        for kind, lv, name in jobs:
            img, params = make_stimulus(kodak, i, kind, lv, seed=seed, offset=offs[i], window=window)
            _save_png(img, out / name)
            params["kodak_file"] = kodak_file(i)
            params["sha256"] = hashlib.sha256(img.tobytes()).hexdigest()
            files[name] = params
            bar.update(1)
    bar.close()
    info = {
        "recipe_version": RECIPE_VERSION,
        "seed": int(seed),
        "window": {**asdict(window), "centre": window.centre},
        "levels": {k: [level_parameter(k, lv) for lv in RAID_LEVELS] for k in RAID_KINDS},
        "notes": ("RAID pixel (y, x) shows Kodak pixel (y + offset_row, x + offset_col) after the distortion "
                  "moved the content; the window is fixed. sha256 is over the raw uint8 pixels (H, W, 3). "
                  "img_XX.png = the undistorted stimulus."),
        "files": files,
    }
    path = out / "params.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=1, sort_keys=True))
    tmp.replace(path)
    return {"out": str(out), "n_files": len(files), "params": str(path), "images": ids}
