"""Records and the dataset base class shared by every dataset reader, plus the table-reading helpers.

Policy: nothing is dropped silently. A missing or unreadable annotation file raises an error that names
the path and the expected format; a malformed row raises ``ValueError`` with the file and line number.
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

# How many missing / unreadable paths an error message lists before "... and N more".
_MAX_LISTED = 10


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PairRecord:
    """A (reference, distorted) image pair with its human score.

    ``score`` is ``None`` only where the annotation file leaves it empty (the
    layout our own generator writes before human scores exist).  ``level`` is
    the distortion level parsed from the file name (``None`` when the format
    has none).  ``extra`` holds format-specific columns (variance, std, ...).
    """

    ref_path: Path
    dist_path: Path
    score: Optional[float]
    ref_id: str
    dist_type: str
    level: Optional[int]
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TripletRecord:
    """A BAPPS 2AFC triplet.

    ``judge`` is the fraction of human observers who judged ``p1`` closer to
    ``ref`` than ``p0`` (as stored in BAPPS' ``judge/*.npy``).  ``ref_id`` is
    ``"{split}/{subset}/{stem}"`` -- every triplet has its own reference patch.
    ``dist_type`` is the BAPPS subset (``traditional``, ``cnn``, ...).
    """

    ref_path: Path
    p0_path: Path
    p1_path: Path
    judge: float
    ref_id: str
    dist_type: str
    split: str
    extra: Dict[str, Any] = field(default_factory=dict)


Record = Union[PairRecord, TripletRecord]


def _record_paths(rec: Record) -> Tuple[Path, ...]:
    if isinstance(rec, TripletRecord):
        return (rec.ref_path, rec.p0_path, rec.p1_path)
    return (rec.ref_path, rec.dist_path)


# --------------------------------------------------------------------------- helpers


class _DirIndex:
    """Case-insensitive file-name lookup, one directory listing per folder."""

    def __init__(self) -> None:
        self._cache: Dict[Path, Tuple[set, Dict[str, str]]] = {}

    def _listing(self, folder: Path) -> Tuple[set, Dict[str, str]]:
        folder = Path(folder)
        if folder not in self._cache:
            try:
                names = sorted(os.listdir(folder))
            except (FileNotFoundError, NotADirectoryError):
                names = []
            lower: Dict[str, str] = {}
            for name in names:
                lower.setdefault(name.lower(), name)
            self._cache[folder] = (set(names), lower)
        return self._cache[folder]

    def find(self, folder: Path, name: str) -> Optional[Path]:
        """The actual path of ``name`` in ``folder`` (exact case first, then ignoring case), or None."""
        exact, lower = self._listing(folder)
        if name in exact:
            return Path(folder) / name
        actual = lower.get(name.lower())
        return Path(folder) / actual if actual is not None else None

    def resolve(self, folder: Path, name: str) -> Path:
        """Like :meth:`find`, but falls back to ``folder / name`` (validate() reports it)."""
        found = self.find(folder, name)
        return found if found is not None else Path(folder) / name


def _require_file(path: Path, dataset: str, expected: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{dataset}: annotation file not found: {path}. Expected {expected}")
    if not path.is_file():
        raise ValueError(f"{dataset}: {path} is not a regular file. Expected {expected}")


def _read_text(path: Path, dataset: str, expected: str) -> str:
    _require_file(path, dataset, expected)
    try:
        with open(path, "r", encoding="utf-8-sig", newline="") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{dataset}: cannot decode {path} as UTF-8 text ({exc}). Expected {expected}") from exc
    except OSError as exc:
        raise OSError(f"{dataset}: cannot read {path} ({exc}). Expected {expected}") from exc


def _sniff_delimiter(header_line: str) -> Optional[str]:
    for delim in (",", "\t", ";"):
        if delim in header_line:
            return delim
    return None  # whitespace separated


def _read_table(
    path: Path,
    dataset: str,
    required: Sequence[str],
    expected: str,
    optional: Sequence[str] = (),
) -> Tuple[List[str], List[Tuple[int, Dict[str, str]]]]:
    """Parse a delimited text table with a header.

    Returns (header, rows) where each row is (line_number, {column: value}).
    Column names are matched case-insensitively and stripped; values are
    stripped.  Wrong field counts raise ``ValueError`` with the line number.
    Blank lines are skipped.
    """
    text = _read_text(path, dataset, expected)
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise ValueError(f"{dataset}: {path} is empty. Expected {expected}")
    delim = _sniff_delimiter(lines[first])

    def split(line: str) -> List[str]:
        if delim is None:
            return line.split()
        return next(csv.reader([line], delimiter=delim))

    header = [h.strip() for h in split(lines[first])]
    lower = [h.lower() for h in header]
    missing = [c for c in required if c.lower() not in lower]
    if missing:
        raise ValueError(
            f"{dataset}: {path} line {first + 1}: missing column(s) {missing}; found header {header}. "
            f"Expected {expected}"
        )
    wanted = {c.lower() for c in list(required) + list(optional)}
    rows: List[Tuple[int, Dict[str, str]]] = []
    for idx in range(first + 1, len(lines)):
        line = lines[idx]
        if not line.strip():
            continue
        try:
            values = split(line)
        except csv.Error as exc:
            raise ValueError(f"{dataset}: {path} line {idx + 1}: cannot parse row ({exc}): {line!r}") from exc
        if len(values) != len(header):
            raise ValueError(
                f"{dataset}: {path} line {idx + 1}: expected {len(header)} fields ({', '.join(header)}), "
                f"got {len(values)}: {line!r}"
            )
        rows.append((idx + 1, {k: v.strip() for k, v in zip(lower, values) if k in wanted}))
    return header, rows


def _parse_float(value: str, *, path: Path, line: int, column: str, dataset: str, allow_empty: bool = False) -> Optional[float]:
    if value == "" and allow_empty:
        return None
    try:
        out = float(value)
    except ValueError:
        raise ValueError(
            f"{dataset}: {path} line {line}: column {column!r} must be a number, got {value!r}"
        ) from None
    if not np.isfinite(out):
        raise ValueError(f"{dataset}: {path} line {line}: column {column!r} is not finite: {value!r}")
    return out


def _check_duplicates(keys: Iterable[Tuple[str, int]], path: Path, dataset: str, what: str) -> None:
    seen: Dict[str, int] = {}
    for key, line in keys:
        if key in seen:
            raise ValueError(f"{dataset}: {path} line {line}: duplicate {what} {key!r} (first on line {seen[key]})")
        seen[key] = line


def _listed(paths: Sequence[Any]) -> str:
    shown = "\n  ".join(str(p) for p in paths[:_MAX_LISTED])
    more = f"\n  ... and {len(paths) - _MAX_LISTED} more" if len(paths) > _MAX_LISTED else ""
    return f"\n  {shown}{more}"


# --------------------------------------------------------------------------- base class


class IQADataset:
    """Common interface of all readers.

    Attributes:
        name: dataset name (``"kadid10k"``, ...).
        root: the folder the dataset was read from.
        records: list of :class:`PairRecord` or :class:`TripletRecord`.
        higher_is_better: whether a higher human score means better quality
            (for BAPPS: whether a higher ``judge`` means ``p1`` was preferred,
            i.e. ``True``).
        annotation_files: the annotation files read (part of ``file_list_hash``).
    """

    name: str = ""
    higher_is_better: bool = True
    record_type: type = PairRecord

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)
        self.records: List[Record] = []
        self.annotation_files: List[Path] = []

    # -- container protocol
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __getitem__(self, idx: int) -> Record:
        return self.records[idx]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, root={str(self.root)!r}, "
            f"records={len(self.records)}, references={len(self.references())})"
        )

    # -- queries
    def references(self) -> List[str]:
        """Sorted unique reference ids."""
        return sorted({r.ref_id for r in self.records})

    def scores(self) -> np.ndarray:
        """Human scores as a float array (``judge`` for BAPPS).

        Raises ``ValueError`` if any record has no score (nothing is replaced
        or dropped silently).
        """
        if self.record_type is TripletRecord:
            return np.array([r.judge for r in self.records], dtype=np.float64)
        missing = [i for i, r in enumerate(self.records) if r.score is None]
        if missing:
            raise ValueError(
                f"{self.name}: {len(missing)} of {len(self.records)} records have no human score "
                f"(first at record index {missing[0]}: {self.records[missing[0]].dist_path})"
            )
        return np.array([r.score for r in self.records], dtype=np.float64)

    def paths(self) -> List[Path]:
        """Every distinct per-record file (images, and BAPPS judge files), in record order."""
        seen: Dict[Path, None] = {}
        for rec in self.records:
            for p in _record_paths(rec):
                seen.setdefault(p, None)
        for p in self._extra_files():
            seen.setdefault(p, None)
        return list(seen)

    def _extra_files(self) -> List[Path]:
        """Per-record data files other than images (BAPPS judge files)."""
        return []

    # -- derived datasets
    def subset(self, ref_ids: Iterable[str]) -> "IQADataset":
        """A copy holding only the records whose ``ref_id`` is in ``ref_ids``.

        Unknown reference ids raise ``ValueError``.
        """
        wanted = set(ref_ids)
        unknown = sorted(wanted - set(self.references()))
        if unknown:
            raise ValueError(f"{self.name}: unknown reference id(s): {unknown[:_MAX_LISTED]}"
                             + (f" ... ({len(unknown)} in all)" if len(unknown) > _MAX_LISTED else ""))
        out = copy.copy(self)
        out.records = [r for r in self.records if r.ref_id in wanted]
        out.annotation_files = list(self.annotation_files)
        return out

    # -- integrity
    def validate(self, check_readable: bool = False) -> None:
        """Check that every referenced file exists (and, optionally, can be decoded).

        Raises ``FileNotFoundError`` listing the first missing paths and their
        count; with ``check_readable=True`` also opens each image with Pillow
        (``verify()``) and each ``.npy`` with numpy, raising ``OSError`` that
        lists unreadable files.
        """
        all_paths = self.paths() + [p for p in self.annotation_files]
        missing = [p for p in all_paths if not p.is_file()]
        if missing:
            err = FileNotFoundError(
                f"{self.name}: {len(missing)} of {len(all_paths)} referenced files are missing "
                f"(root {self.root}):{_listed(missing)}"
            )
            err.missing = missing  # type: ignore[attr-defined]
            raise err
        if check_readable:
            bad: List[str] = []
            for p in self.paths():
                problem = _unreadable(p)
                if problem:
                    bad.append(f"{p} ({problem})")
            if bad:
                err2 = OSError(f"{self.name}: {len(bad)} of {len(all_paths)} files cannot be read:{_listed(bad)}")
                err2.unreadable = bad  # type: ignore[attr-defined]
                raise err2

    def file_list_hash(self, existing_only: bool = False) -> str:
        """sha256 over the sorted relative paths and sizes of every file used.

        Covers images, annotation files and judge files.  Paths are relative to
        ``root`` in POSIX form (absolute where a file lies outside ``root``).
        Raises ``FileNotFoundError`` (via :meth:`validate`) if any is missing,
        unless ``existing_only`` (then the hash covers the files present).
        """
        if not existing_only:
            self.validate(check_readable=False)
        root = self.root.resolve()
        entries = []
        for p in set(self.paths()) | set(self.annotation_files):
            if existing_only and not p.is_file():
                continue
            rp = p.resolve()
            try:
                rel = rp.relative_to(root).as_posix()
            except ValueError:
                rel = rp.as_posix()
            entries.append((rel, rp.stat().st_size))
        h = hashlib.sha256()
        for rel, size in sorted(entries):
            h.update(f"{rel}\t{size}\n".encode("utf-8"))
        return h.hexdigest()


def _unreadable(path: Path) -> Optional[str]:
    try:
        if path.suffix.lower() == ".npy":
            np.load(path, allow_pickle=False)
            return None
        from PIL import Image

        with Image.open(path) as im:
            im.verify()
        return None
    except Exception as exc:  # noqa: BLE001 - report any decoder failure
        return f"{type(exc).__name__}: {exc}"



# --------------------------------------------------------------------------- splits


def kfold_by_reference(ref_ids: Iterable[str], k: int, seed: int = 0) -> List[Tuple[List[str], List[str]]]:
    """Deterministic k-fold split over reference ids.

    Duplicates in ``ref_ids`` are collapsed (pass ``[r.ref_id for r in ds]``
    or ``ds.references()``); the unique ids are sorted, shuffled with
    ``numpy.random.default_rng(seed)`` and dealt into ``k`` folds whose sizes
    differ by at most one.  Returns ``[(train_refs, test_refs), ...]`` (each
    sorted); every reference is tested exactly once and never appears in the
    train and test lists of the same fold.  The result does not depend on the
    order of ``ref_ids``.
    """
    unique = sorted(set(ref_ids))
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    if k > len(unique):
        raise ValueError(f"k={k} folds need at least {k} distinct references, got {len(unique)}")
    perm = np.random.default_rng(seed).permutation(len(unique))
    folds = np.array_split(perm, k)
    out = []
    for fold in folds:
        test = sorted(unique[i] for i in fold)
        test_set = set(test)
        train = [r for r in unique if r not in test_set]
        out.append((train, test))
    return out

