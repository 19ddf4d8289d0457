"""RAID's human data, read without the images: the MLDS curves and the raw trials.

* ``responses.csv``: one row per stimulus, ``Reference, Distorted, Curve_Value, Sigmas, Response,
  Estimated_MOS`` (``Distorted`` = ``{rot|trans|scale|gn}_img_XX_level_YY.png``, level 01 = undistorted;
  ``Response`` = ``Curve_Value / Sigmas``, d' units, higher = more difference seen);
* ``answers.csv``: one row per trial: ``gender, age_group, transformation, image_id_01,
  distortion_level_11, distortion_level_12, distortion_level_21, distortion_level_22,
  reaction_time_ms, answer``; the observer saw the pairs (level_11, level_12) and (level_21, level_22)
  of one image and distortion and answered which looked more different (1 = the first pair, 2 = the second).

:func:`read_raid_curves` and :func:`read_raid_trials` return plain records; :func:`raid_stimulus` resolves
a stimulus file in a RAID image folder (the real one or the reconstruction of
:mod:`invariant_lpips.distortions.raid_kodak`).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple, Union

__all__ = ["RaidCurvePoint", "RaidTrial", "read_raid_curves", "read_raid_trials", "raid_stimulus",
           "raid_images_dir", "TRANSFORMATION_KINDS", "RAID_KIND_ORDER"]

PathLike = Union[str, Path]
RAID_KIND_ORDER = ("rot", "trans", "scale", "gn")
#: answers.csv ``transformation`` -> the file-name prefix
TRANSFORMATION_KINDS = {"rotation": "rot", "translation": "trans", "scale": "scale", "scaling": "scale",
                        "gaussian_noise": "gn", "noise": "gn", "rot": "rot", "trans": "trans", "gn": "gn"}
_DIST = re.compile(r"^(rot|trans|scale|gn)_img_(\d+)_level_(\d+)\.\w+$", re.IGNORECASE)
_CURVE_COLS = ("Reference", "Distorted", "Curve_Value", "Sigmas", "Response")
_TRIAL_COLS = ("transformation", "image_id_01", "distortion_level_11", "distortion_level_12",
               "distortion_level_21", "distortion_level_22", "answer")


@dataclass(frozen=True)
class RaidCurvePoint:
    """One row of responses.csv."""

    image: int
    kind: str
    level: int
    response: float
    curve_value: float
    sigma: float
    file: str


@dataclass(frozen=True)
class RaidTrial:
    """One row of answers.csv: pair 1 = (l11, l12), pair 2 = (l21, l22); ``answer`` 1 or 2 = the pair
    that looked more different."""

    kind: str
    image: int
    l11: int
    l12: int
    l21: int
    l22: int
    answer: int

    @property
    def has_level_1(self) -> bool:
        return 1 in (self.l11, self.l12, self.l21, self.l22)


def _rows(path: Path, needed: Tuple[str, ...]) -> List[Tuple[int, Dict[str, str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"RAID: {path} not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in needed if c not in fields]
        if missing:
            raise ValueError(f"RAID: {path} lacks column(s) {', '.join(missing)} (has {', '.join(fields)})")
        return [(n + 2, {k.strip(): (v or "").strip() for k, v in row.items() if k is not None})
                for n, row in enumerate(reader)]


def _num(row: Dict[str, str], col: str, path: Path, line: int, cast=float):
    try:
        return cast(row[col])
    except (TypeError, ValueError):
        raise ValueError(f"RAID: {path} line {line}: column {col} = {row.get(col)!r} is not a number") from None


def read_raid_curves(path: PathLike) -> List[RaidCurvePoint]:
    """responses.csv -> one :class:`RaidCurvePoint` per row (file order)."""
    path = Path(path)
    out: List[RaidCurvePoint] = []
    seen = set()
    for line, row in _rows(path, _CURVE_COLS):
        m = _DIST.match(row["Distorted"])
        if not m:
            raise ValueError(f"RAID: {path} line {line}: Distorted {row['Distorted']!r} does not match "
                             "{rot|trans|scale|gn}_img_XX_level_YY.png")
        kind, image, level = m.group(1).lower(), int(m.group(2)), int(m.group(3))
        if (image, kind, level) in seen:
            raise ValueError(f"RAID: {path} line {line}: duplicate stimulus {row['Distorted']}")
        seen.add((image, kind, level))
        out.append(RaidCurvePoint(image, kind, level, _num(row, "Response", path, line),
                                  _num(row, "Curve_Value", path, line), _num(row, "Sigmas", path, line),
                                  row["Distorted"]))
    return out


def read_raid_trials(path: PathLike) -> List[RaidTrial]:
    """answers.csv -> one :class:`RaidTrial` per row (file order)."""
    path = Path(path)
    out: List[RaidTrial] = []
    for line, row in _rows(path, _TRIAL_COLS):
        t = row["transformation"].lower()
        if t not in TRANSFORMATION_KINDS:
            raise ValueError(f"RAID: {path} line {line}: unknown transformation {row['transformation']!r} "
                             f"(expected one of {', '.join(sorted(TRANSFORMATION_KINDS))})")
        lv = [_num(row, c, path, line, int) for c in _TRIAL_COLS[2:6]]
        ans = _num(row, "answer", path, line, int)
        if ans not in (1, 2):
            raise ValueError(f"RAID: {path} line {line}: answer must be 1 or 2, got {ans}")
        if lv[0] == lv[1] or lv[2] == lv[3]:
            raise ValueError(f"RAID: {path} line {line}: a pair shows the same level twice")
        out.append(RaidTrial(TRANSFORMATION_KINDS[t], _num(row, "image_id_01", path, line, int), *lv, ans))
    return out


def raid_images_dir(root: PathLike) -> Path:
    """``root/images`` if it holds RAID stimuli, else ``root``."""
    root = Path(root)
    sub = root / "images"
    if sub.is_dir() and any(sub.glob("*_img_*_level_*.png")):
        return sub
    return root


def raid_stimulus(images_dir: PathLike, kind: str, image: int, level: int) -> Path:
    """The stimulus file ``{kind}_img_XX_level_YY.png`` in ``images_dir`` (error if missing)."""
    p = Path(images_dir) / f"{kind}_img_{int(image):02d}_level_{int(level):02d}.png"
    if not p.is_file():
        raise FileNotFoundError(f"RAID stimulus {p} not found (build one with "
                                "`invariant-lpips make-dataset raid-kodak --refs KODAK_DIR --out DIR`)")
    return p
