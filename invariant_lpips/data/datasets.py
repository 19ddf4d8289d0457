"""Readers for human-judgement image-quality datasets behind one interface.

Every reader parses the dataset's own annotation file into a list of records
that hold *paths* (pixels are never loaded here) plus the human score:

* :class:`PairRecord` -- one (reference, distorted) pair with a MOS / DMOS /
  response score (KADID-10k, TID2008, TID2013, CSIQ, RAID).
* :class:`TripletRecord` -- one BAPPS 2AFC triplet (ref, p0, p1) with the
  fraction of humans who judged ``p1`` closer to ``ref``.

All datasets share: ``name``, ``root``, ``records``, ``higher_is_better``,
``references()``, ``file_list_hash()``, ``subset(ref_ids)`` and
``validate(check_readable=False)``.  Use :func:`load_dataset` to build one by
name.

Policy: nothing is dropped silently.  A missing or unreadable annotation file
raises an error that names the path and the expected format; a malformed row
raises ``ValueError`` with the file and line number; missing image files are
reported, all of them counted, by ``validate()`` (which ``load_dataset`` runs
by default).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

from .records import (_MAX_LISTED, IQADataset, PairRecord, Record, TripletRecord, _check_duplicates,  # noqa: F401
                      _DirIndex, _listed, _parse_float, _read_table, _read_text, _require_file, _sniff_delimiter,
                      kfold_by_reference)

__all__ = [
    "PairRecord",
    "TripletRecord",
    "IQADataset",
    "KADID10k",
    "TID2008",
    "TID2013",
    "CSIQ",
    "BAPPS2AFC",
    "RAID",
    "DATASET_NAMES",
    "load_dataset",
    "kfold_by_reference",
]

# --------------------------------------------------------------------------- KADID-10k

_KADID_NAME = re.compile(r"^I(\d+)_(\d+)_(\d+)\.(\w+)$", re.IGNORECASE)
_KADID_EXPECTED = (
    "a CSV with header dist_img,ref_img,dmos,var where dist_img = I{ref:02d}_{type:02d}_{level:02d}.png, "
    "ref_img = I{ref:02d}.png, dmos a number (1..5, higher = better) or empty, var a number or empty"
)


class KADID10k(IQADataset):
    """KADID-10k: ``root/dmos.csv`` + ``root/images/``.

    Also reads the layout our generator writes (same files, but ``dmos`` /
    ``var`` may be empty -> ``score=None``).  ``dist_type`` is the two-digit
    type number (``"01"``..``"25"``); ``extra`` has ``type_id`` and ``var``.
    Higher DMOS = better quality.
    """

    name = "kadid10k"
    higher_is_better = True

    def __init__(self, root: PathLike, csv_name: str = "dmos.csv", images_dir: PathLike = "images") -> None:
        super().__init__(root)
        csv_path = self.root / csv_name
        img_dir = Path(images_dir) if Path(images_dir).is_absolute() else self.root / images_dir
        self.images_dir = img_dir
        _, rows = _read_table(csv_path, self.name, ["dist_img", "ref_img", "dmos", "var"], _KADID_EXPECTED)
        self.annotation_files = [csv_path]
        index = _DirIndex()
        keys = []
        for line, row in rows:
            dist, ref = row["dist_img"], row["ref_img"]
            m = _KADID_NAME.match(dist)
            if not m:
                raise ValueError(
                    f"{self.name}: {csv_path} line {line}: dist_img {dist!r} does not match "
                    f"I{{ref:02d}}_{{type:02d}}_{{level:02d}}.png"
                )
            ref_num, type_id, level = int(m.group(1)), int(m.group(2)), int(m.group(3))
            ref_stem = Path(ref).stem
            if not re.fullmatch(r"I\d+", ref_stem, re.IGNORECASE) or int(ref_stem[1:]) != ref_num:
                raise ValueError(
                    f"{self.name}: {csv_path} line {line}: ref_img {ref!r} does not match the reference "
                    f"I{ref_num:02d} encoded in dist_img {dist!r}"
                )
            dmos = _parse_float(row["dmos"], path=csv_path, line=line, column="dmos", dataset=self.name, allow_empty=True)
            var = _parse_float(row["var"], path=csv_path, line=line, column="var", dataset=self.name, allow_empty=True)
            keys.append((dist.lower(), line))
            self.records.append(
                PairRecord(
                    ref_path=index.resolve(img_dir, ref),
                    dist_path=index.resolve(img_dir, dist),
                    score=dmos,
                    ref_id=f"I{ref_num:02d}",
                    dist_type=f"{type_id:02d}",
                    level=level,
                    extra={"type_id": type_id, "var": var},
                )
            )
        _check_duplicates(keys, csv_path, self.name, "dist_img")


# --------------------------------------------------------------------------- TID2008 / TID2013

_TID_NAME = re.compile(r"^i(\d+)_(\d+)_(\d+)\.(\w+)$", re.IGNORECASE)


class _TID(IQADataset):
    """TID2008 / TID2013: ``mos_with_names.txt`` + ``reference_images/`` + ``distorted_images/``.

    File names are resolved case-insensitively (the releases mix ``I01.BMP``,
    ``i25.bmp``, ``i01_01_1.bmp``, ``I01_01_1.BMP``).  ``ref_id`` is ``"I01"``..;
    ``dist_type`` the two-digit type number; ``level`` the level digit.  If
    ``mos_std.txt`` is present it must have one value per row and lands in
    ``extra["std"]``.  Higher MOS = better quality.
    """

    higher_is_better = True
    _expected = (
        "a text file with one 'MOS filename' pair per line, e.g. '5.51429 i01_01_1.bmp' "
        "(filename = i{ref:02d}_{type:02d}_{level}.bmp)"
    )

    def __init__(
        self,
        root: PathLike,
        mos_file: str = "mos_with_names.txt",
        std_file: Optional[str] = "mos_std.txt",
        reference_dir: str = "reference_images",
        distorted_dir: str = "distorted_images",
    ) -> None:
        super().__init__(root)
        mos_path = self.root / mos_file
        text = _read_text(mos_path, self.name, self._expected)
        self.annotation_files = [mos_path]
        entries: List[Tuple[int, float, str]] = []
        for idx, raw in enumerate(text.splitlines()):
            line = idx + 1
            if not raw.strip():
                continue
            parts = raw.split()
            if len(parts) != 2:
                raise ValueError(
                    f"{self.name}: {mos_path} line {line}: expected 2 fields 'MOS filename', got {len(parts)}: {raw!r}"
                )
            mos = _parse_float(parts[0], path=mos_path, line=line, column="MOS", dataset=self.name)
            entries.append((line, mos, parts[1]))  # type: ignore[arg-type]

        stds: Optional[List[float]] = None
        if std_file:
            std_path = self.root / std_file
            if std_path.is_file():
                std_text = _read_text(std_path, self.name, "one standard deviation per line, same order as the MOS file")
                std_lines = [(i + 1, s.strip()) for i, s in enumerate(std_text.splitlines()) if s.strip()]
                if len(std_lines) != len(entries):
                    raise ValueError(
                        f"{self.name}: {std_path} has {len(std_lines)} values but {mos_path} has {len(entries)} rows; "
                        "they must correspond line by line"
                    )
                stds = [
                    _parse_float(v, path=std_path, line=ln, column="std", dataset=self.name)  # type: ignore[misc]
                    for ln, v in std_lines
                ]
                self.annotation_files.append(std_path)

        ref_dir, dist_dir = self.root / reference_dir, self.root / distorted_dir
        index = _DirIndex()
        keys = []
        for k, (line, mos, fname) in enumerate(entries):
            m = _TID_NAME.match(fname)
            if not m:
                raise ValueError(
                    f"{self.name}: {mos_path} line {line}: file name {fname!r} does not match "
                    "i{ref:02d}_{type:02d}_{level}.bmp"
                )
            ref_num, type_id, level = int(m.group(1)), int(m.group(2)), int(m.group(3))
            ref_name = f"I{ref_num:02d}.{m.group(4)}"
            keys.append((fname.lower(), line))
            extra: Dict[str, Any] = {"type_id": type_id}
            if stds is not None:
                extra["std"] = stds[k]
            self.records.append(
                PairRecord(
                    ref_path=index.resolve(ref_dir, ref_name),
                    dist_path=index.resolve(dist_dir, fname),
                    score=mos,
                    ref_id=f"I{ref_num:02d}",
                    dist_type=f"{type_id:02d}",
                    level=level,
                    extra=extra,
                )
            )
        _check_duplicates(keys, mos_path, self.name, "file name")


class TID2008(_TID):
    __doc__ = _TID.__doc__
    name = "tid2008"


class TID2013(_TID):
    __doc__ = _TID.__doc__
    name = "tid2013"


# --------------------------------------------------------------------------- CSIQ

# canonical type -> (folder under dst_imgs/, abbreviation in the file name)
_CSIQ_TYPES: Dict[str, Tuple[str, str]] = {
    "awgn": ("awgn", "AWGN"),
    "jpeg": ("jpeg", "JPEG"),
    "jpeg2000": ("jpeg2000", "jpeg2000"),
    "fnoise": ("fnoise", "fnoise"),
    "blur": ("blur", "BLUR"),
    "contrast": ("contrast", "contrast"),
}
# spellings seen in csiq.DMOS.xlsx ("noise", "jpeg 2000", "f noise") and in file names
_CSIQ_ALIASES = {
    "noise": "awgn", "awgn": "awgn", "whitenoise": "awgn", "wn": "awgn",
    "jpeg": "jpeg", "jpg": "jpeg",
    "jpeg2000": "jpeg2000", "jp2k": "jpeg2000", "jpeg2k": "jpeg2000",
    "fnoise": "fnoise", "pinknoise": "fnoise", "1/fnoise": "fnoise",
    "blur": "blur", "gblur": "blur",
    "contrast": "contrast",
}
_CSIQ_META_CANDIDATES = ("meta_info_CSIQDataset.csv", "csiq_dmos.csv", "csiq.DMOS.csv", "csiq_label.txt")
_CSIQ_EXPECTED = (
    "one of: (a) pyiqa's meta_info_CSIQDataset.csv with columns ref_name,dist_name,dmos "
    "(dist_name = {image}.{TYPE}.{level}.png); (b) a CSV export of the 'all_by_image' sheet of csiq.DMOS.xlsx "
    "with columns image,dst_type,dst_lev,dmos (optional dst_idx,dmos_std); (c) csiq_label.txt with "
    "'dist_name dmos' per line"
)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _csiq_type(raw: str) -> Optional[str]:
    key = re.sub(r"[\s_\-]", "", raw.strip().lower())
    return _CSIQ_ALIASES.get(key)


class CSIQ(IQADataset):
    """CSIQ: ``src_imgs/{image}.png`` + ``dst_imgs/{type}/{image}.{TYPE}.{level}.png``.

    The annotation file is searched in ``root`` (or given as ``meta_file``),
    in the forms used by public code: pyiqa / IQA-PyTorch's
    ``meta_info_CSIQDataset.csv`` (``ref_name,dist_name,dmos``), a CSV export
    of csiq.DMOS.xlsx (``image,dst_idx,dst_type,dst_lev,dmos_std,dmos``), or
    pyiqa's ``csiq_label.txt``.  Distorted images are found either in the
    original per-type folders (``dst_imgs/awgn``, ``dst_imgs/jpeg2000``, ...)
    or flat in ``dst_imgs/`` (pyiqa's archive); names are matched
    case-insensitively.  ``dist_type`` is one of awgn, jpeg, jpeg2000, fnoise,
    blur, contrast.  DMOS: lower = better.
    """

    name = "csiq"
    higher_is_better = False

    def __init__(
        self,
        root: PathLike,
        meta_file: Optional[PathLike] = None,
        reference_dir: str = "src_imgs",
        distorted_dir: str = "dst_imgs",
    ) -> None:
        super().__init__(root)
        if meta_file is not None:
            meta = Path(meta_file) if Path(meta_file).is_absolute() else self.root / meta_file
        else:
            found = [self.root / c for c in _CSIQ_META_CANDIDATES if (self.root / c).is_file()]
            if not found:
                xlsx = self.root / "csiq.DMOS.xlsx"
                hint = (
                    f" Found {xlsx}, which is not read directly: export its 'all_by_image' sheet as "
                    f"{self.root / 'csiq_dmos.csv'}." if xlsx.exists() else ""
                )
                raise FileNotFoundError(
                    f"{self.name}: no annotation file in {self.root} (looked for "
                    f"{', '.join(_CSIQ_META_CANDIDATES)}). Expected {_CSIQ_EXPECTED}.{hint}"
                )
            meta = found[0]
        self.annotation_files = [meta]
        self._src = self.root / reference_dir
        self._dst = self.root / distorted_dir
        self._index = _DirIndex()

        text = _read_text(meta, self.name, _CSIQ_EXPECTED)
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        delim = _sniff_delimiter(first)
        cols = [c.strip().lower() for c in (first.split() if delim is None else next(csv.reader([first], delimiter=delim)))]
        if delim is None and len(cols) == 2 and _is_number(cols[1]):
            rows = self._rows_label_txt(text, meta)  # csiq_label.txt: 'dist_name dmos', no header
        else:
            if "dist_name" in cols:
                rows = self._rows_dist_name(meta)
            elif "image" in cols:
                rows = self._rows_by_image(meta)
            else:
                raise ValueError(f"{self.name}: {meta} line 1: unrecognised header {cols}. Expected {_CSIQ_EXPECTED}")

        keys = []
        for line, image, ctype, level, dmos, extra in rows:
            folder, abbrev = _CSIQ_TYPES[ctype]
            dist_name = f"{image}.{abbrev}.{level}.png"
            keys.append((dist_name.lower(), line))
            self.records.append(
                PairRecord(
                    ref_path=self._index.resolve(self._src, f"{image}.png"),
                    dist_path=self._find_dist(folder, dist_name),
                    score=dmos,
                    ref_id=image,
                    dist_type=ctype,
                    level=level,
                    extra=extra,
                )
            )
        _check_duplicates(keys, meta, self.name, "distorted image")

    def _find_dist(self, folder: str, name: str) -> Path:
        sub = self._index.find(self._dst, folder)
        if sub is not None:
            hit = self._index.find(sub, name)
            if hit is not None:
                return hit
        hit = self._index.find(self._dst, name)  # pyiqa's flat dst_imgs/
        if hit is not None:
            return hit
        return (sub if sub is not None else self._dst / folder) / name

    def _parse_dist_name(self, dist: str, meta: Path, line: int) -> Tuple[str, str, int]:
        parts = dist.split(".")
        if len(parts) != 4:
            raise ValueError(
                f"{self.name}: {meta} line {line}: dist_name {dist!r} does not match {{image}}.{{TYPE}}.{{level}}.png"
            )
        image, abbrev, level_s, _ = parts
        ctype = _csiq_type(abbrev)
        if ctype is None or not level_s.isdigit():
            raise ValueError(
                f"{self.name}: {meta} line {line}: cannot parse distortion type/level from {dist!r} "
                f"(types: {', '.join(v[1] for v in _CSIQ_TYPES.values())})"
            )
        return image, ctype, int(level_s)

    def _rows_dist_name(self, meta: Path):
        _, rows = _read_table(meta, self.name, ["ref_name", "dist_name", "dmos"], _CSIQ_EXPECTED, optional=["std", "dmos_std"])
        out = []
        for line, row in rows:
            image, ctype, level = self._parse_dist_name(row["dist_name"], meta, line)
            if Path(row["ref_name"]).stem != image:
                raise ValueError(
                    f"{self.name}: {meta} line {line}: ref_name {row['ref_name']!r} does not match the image "
                    f"{image!r} in dist_name {row['dist_name']!r}"
                )
            dmos = _parse_float(row["dmos"], path=meta, line=line, column="dmos", dataset=self.name)
            extra: Dict[str, Any] = {}
            for c in ("dmos_std", "std"):
                if row.get(c, "") != "":
                    extra["dmos_std"] = _parse_float(row[c], path=meta, line=line, column=c, dataset=self.name)
            out.append((line, image, ctype, level, dmos, extra))
        return out

    def _rows_by_image(self, meta: Path):
        _, rows = _read_table(
            meta, self.name, ["image", "dst_type", "dst_lev", "dmos"], _CSIQ_EXPECTED, optional=["dst_idx", "dmos_std"]
        )
        out = []
        for line, row in rows:
            ctype = _csiq_type(row["dst_type"])
            if ctype is None:
                raise ValueError(
                    f"{self.name}: {meta} line {line}: unknown dst_type {row['dst_type']!r} "
                    "(expected noise/awgn, jpeg, jpeg 2000, f noise, blur, contrast)"
                )
            if not row["dst_lev"].isdigit():
                raise ValueError(f"{self.name}: {meta} line {line}: dst_lev must be an integer, got {row['dst_lev']!r}")
            image = Path(row["image"]).stem if row["image"].lower().endswith(".png") else row["image"]
            dmos = _parse_float(row["dmos"], path=meta, line=line, column="dmos", dataset=self.name)
            extra: Dict[str, Any] = {}
            if row.get("dmos_std", "") != "":
                extra["dmos_std"] = _parse_float(row["dmos_std"], path=meta, line=line, column="dmos_std", dataset=self.name)
            if row.get("dst_idx", "") != "":
                extra["dst_idx"] = row["dst_idx"]
            out.append((line, image, ctype, int(row["dst_lev"]), dmos, extra))
        return out

    def _rows_label_txt(self, text: str, meta: Path):
        out = []
        for idx, raw in enumerate(text.splitlines()):
            line = idx + 1
            if not raw.strip():
                continue
            parts = raw.split()
            if len(parts) != 2:
                raise ValueError(
                    f"{self.name}: {meta} line {line}: expected 2 fields 'dist_name dmos', got {len(parts)}: {raw!r}"
                )
            image, ctype, level = self._parse_dist_name(parts[0], meta, line)
            dmos = _parse_float(parts[1], path=meta, line=line, column="dmos", dataset=self.name)
            out.append((line, image, ctype, level, dmos, {}))
        return out


# --------------------------------------------------------------------------- BAPPS 2AFC

_BAPPS_PARTS = ("ref", "p0", "p1", "judge")
_BAPPS_SPLITS = ("train", "val")


class BAPPS2AFC(IQADataset):
    """BAPPS 2AFC: ``{split}/{subset}/{ref,p0,p1,judge}/NNNNNN.{png,npy}``.

    ``root`` may point at a subset folder (``.../2afc/val/traditional``), a
    split folder (``.../2afc/val``), the ``2afc`` folder, or a folder that
    contains ``2afc/``.  ``split`` picks the split when root is above it
    (default ``"val"``); ``subsets`` restricts the subsets (default: all
    found, sorted).  ``judge`` files (one float each) are read here.
    ``higher_is_better`` is True in the sense that a higher judge means ``p1``
    was preferred (judged closer to ``ref``).
    """

    name = "bapps"
    higher_is_better = True
    record_type = TripletRecord

    def __init__(self, root: PathLike, split: str = "val", subsets: Optional[Sequence[str]] = None) -> None:
        super().__init__(root)
        root_p = self.root
        if not root_p.is_dir():
            raise FileNotFoundError(f"{self.name}: root folder not found: {root_p}. Expected a BAPPS 2afc tree")
        folders = self._subset_folders(root_p, split)
        if subsets is not None:
            subsets = [subsets] if isinstance(subsets, str) else list(subsets)
            names = {sub for _, sub, _ in folders}
            unknown = [s for s in subsets if s not in names]
            if unknown:
                raise ValueError(f"{self.name}: subset(s) {unknown} not found under {root_p}; available: {sorted(names)}")
            order = {s: i for i, s in enumerate(subsets)}
            folders = sorted((t for t in folders if t[1] in order), key=lambda t: order[t[1]])
        missing_judge: List[Path] = []
        bad_judge: List[str] = []
        for sp, sub, folder in folders:
            stems: Dict[str, Dict[str, Path]] = {}
            for part in _BAPPS_PARTS:
                pdir = folder / part
                if not pdir.is_dir():
                    raise FileNotFoundError(
                        f"{self.name}: missing folder {pdir}. Expected {folder}/{{ref,p0,p1,judge}}/"
                    )
                for fname in sorted(os.listdir(pdir)):
                    stem, ext = os.path.splitext(fname)
                    if part == "judge" and ext.lower() != ".npy":
                        continue
                    if part != "judge" and ext.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
                        continue
                    stems.setdefault(stem, {})[part] = pdir / fname
            for stem in sorted(stems):
                parts = stems[stem]
                paths = {p: parts.get(p, folder / p / (stem + (".npy" if p == "judge" else ".png"))) for p in _BAPPS_PARTS}
                jp = paths["judge"]
                if "judge" not in parts:
                    missing_judge.append(jp)
                    continue
                try:
                    arr = np.load(jp, allow_pickle=False)
                    if arr.size != 1:
                        raise ValueError(f"holds {arr.size} values, expected 1")
                    judge = float(np.asarray(arr, dtype=np.float64).reshape(-1)[0])
                    if not (0.0 <= judge <= 1.0):
                        raise ValueError(f"value {judge} outside [0, 1]")
                except Exception as exc:  # noqa: BLE001
                    bad_judge.append(f"{jp} ({exc})")
                    continue
                self.records.append(
                    TripletRecord(
                        ref_path=paths["ref"],
                        p0_path=paths["p0"],
                        p1_path=paths["p1"],
                        judge=judge,
                        ref_id=f"{sp}/{sub}/{stem}",
                        dist_type=sub,
                        split=sp,
                        extra={"judge_path": jp},
                    )
                )
        if missing_judge:
            raise FileNotFoundError(
                f"{self.name}: {len(missing_judge)} triplets have no judge file:{_listed(missing_judge)}"
            )
        if bad_judge:
            raise ValueError(
                f"{self.name}: {len(bad_judge)} judge files are unreadable (expected a .npy with one float in [0, 1]):"
                f"{_listed(bad_judge)}"
            )

    def _extra_files(self) -> List[Path]:
        return [r.extra["judge_path"] for r in self.records]

    @staticmethod
    def _is_subset(folder: Path) -> bool:
        return all((folder / p).is_dir() for p in _BAPPS_PARTS)

    def _subset_folders(self, root: Path, split: str) -> List[Tuple[str, str, Path]]:
        def subsets_in(split_dir: Path, split_name: str) -> List[Tuple[str, str, Path]]:
            return [
                (split_name, d.name, d)
                for d in sorted(split_dir.iterdir())
                if d.is_dir() and self._is_subset(d)
            ]

        if self._is_subset(root):
            return [(root.parent.name, root.name, root)]
        found = subsets_in(root, root.name)
        if found:
            return found
        base = root / "2afc" if (root / "2afc").is_dir() else root
        if (base / split).is_dir():
            found = subsets_in(base / split, split)
            if found:
                return found
        raise FileNotFoundError(
            f"{self.name}: no BAPPS 2AFC subset found under {root} (split {split!r}). Expected "
            "root to be a subset folder with ref/ p0/ p1/ judge/ subfolders, a split folder holding such subsets, "
            "or a 2afc folder (or its parent) holding split folders"
        )


# --------------------------------------------------------------------------- RAID

_RAID_DIST = re.compile(r"^(rot|trans|scale|gn)_(img_\d+)_level_(\d+)\.(\w+)$", re.IGNORECASE)
_RAID_EXPECTED = (
    "a CSV with header Reference,Distorted,Curve_Value,Sigmas,Response,Estimated_MOS where "
    "Reference = img_XX.png and Distorted = {rot|trans|scale|gn}_img_XX_level_YY.png (YY 01..10)"
)


class RAID(IQADataset):
    """RAID (affine-transformation MLDS responses): ``responses.csv`` + images.

    ``score`` is ``Response`` (MLDS curve value / sigma, d' units): higher =
    MORE distortion seen, so ``higher_is_better`` is False.  Level 01 is the
    undistorted image.  ``extra`` holds ``curve_value``, ``sigma`` and
    ``estimated_mos``.  Images are looked up in ``images_dir`` if given
    (relative to root or absolute), else in ``root/images/`` if that holds
    the first reference, else in ``root``.
    """

    name = "raid"
    higher_is_better = False

    def __init__(self, root: PathLike, csv_name: str = "responses.csv", images_dir: Optional[PathLike] = None) -> None:
        super().__init__(root)
        csv_path = self.root / csv_name
        cols = ["Reference", "Distorted", "Curve_Value", "Sigmas", "Response", "Estimated_MOS"]
        _, rows = _read_table(csv_path, self.name, cols, _RAID_EXPECTED)
        self.annotation_files = [csv_path]
        index = _DirIndex()
        if images_dir is not None:
            img_dir = Path(images_dir) if Path(images_dir).is_absolute() else self.root / images_dir
        else:
            candidates = [self.root / "images", self.root]
            img_dir = next(
                (c for c in candidates if rows and index.find(c, rows[0][1]["reference"]) is not None),
                candidates[0] if candidates[0].is_dir() else candidates[1],
            )
        self.images_dir = img_dir
        keys = []
        for line, row in rows:
            ref, dist = row["reference"], row["distorted"]
            m = _RAID_DIST.match(dist)
            if not m:
                raise ValueError(
                    f"{self.name}: {csv_path} line {line}: Distorted {dist!r} does not match "
                    "{rot|trans|scale|gn}_img_XX_level_YY.png"
                )
            dtype, ref_id, level = m.group(1).lower(), m.group(2), int(m.group(3))
            if Path(ref).stem.lower() != ref_id.lower():
                raise ValueError(
                    f"{self.name}: {csv_path} line {line}: Reference {ref!r} does not match {ref_id!r} in Distorted {dist!r}"
                )
            num = {
                c: _parse_float(row[c.lower()], path=csv_path, line=line, column=c, dataset=self.name)
                for c in cols[2:]
            }
            keys.append((dist.lower(), line))
            self.records.append(
                PairRecord(
                    ref_path=index.resolve(img_dir, ref),
                    dist_path=index.resolve(img_dir, dist),
                    score=num["Response"],
                    ref_id=Path(ref).stem,
                    dist_type=dtype,
                    level=level,
                    extra={
                        "curve_value": num["Curve_Value"],
                        "sigma": num["Sigmas"],
                        "estimated_mos": num["Estimated_MOS"],
                    },
                )
            )
        _check_duplicates(keys, csv_path, self.name, "Distorted image")


# --------------------------------------------------------------------------- factory

_REGISTRY = {
    "kadid10k": KADID10k,
    "tid2008": TID2008,
    "tid2013": TID2013,
    "csiq": CSIQ,
    "bapps": BAPPS2AFC,
    "raid": RAID,
}
DATASET_NAMES: Tuple[str, ...] = tuple(_REGISTRY)


def load_dataset(name: str, root: PathLike, validate: bool = True, **kw: Any) -> IQADataset:
    """Build a dataset reader by name.

    ``name`` is one of ``kadid10k, tid2008, tid2013, csiq, bapps, raid``
    (case, ``-`` and ``_`` ignored: ``"KADID-10k"`` works).  Extra keyword
    arguments go to the reader.  With ``validate=True`` (default) every
    referenced file must exist (:meth:`IQADataset.validate`).
    """
    key = re.sub(r"[-_\s]", "", str(name).lower())
    if key not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    ds = _REGISTRY[key](root, **kw)
    if validate:
        ds.validate()
    return ds


