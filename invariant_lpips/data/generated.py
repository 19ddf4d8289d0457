"""Reader for a *generated* KADID-layout set (``images/`` + ``dmos.csv``), human scores not needed.

``invariant-lpips make-dataset`` writes such a folder: distorted files are named
``I<ref>_<type:02d>_<level:02d>.png`` as in KADID-10k. The dev proxy and calibration pair each
distorted image with its reference and its (type, level) cell.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence


@dataclass(frozen=True)
class GeneratedPair:
    ref_id: str
    dist_type: int
    level: int
    ref_path: Path
    dist_path: Path


def read_generated_set(root, refs: Optional[Sequence[str]] = None,
                       types: Optional[Sequence[int]] = None) -> List[GeneratedPair]:
    """Pairs of a KADID-layout folder, optionally filtered to some references and types.

    Raises:
        FileNotFoundError: ``root/dmos.csv`` is missing (the message names it).
        ValueError: a column is missing, a file name is not ``I<ref>_<type>_<level>``, or nothing is left.
    """
    root = Path(root)
    table = root / "dmos.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: expected a KADID-layout folder (images/ + dmos.csv), "
                                "e.g. from 'invariant-lpips make-dataset'")
    out = []
    with open(table, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"dist_img", "ref_img"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{table}: missing columns {sorted(missing)} (have {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            name = Path(row["dist_img"]).stem
            parts = name.split("_")
            if len(parts) != 3:
                raise ValueError(f"{table}:{line}: dist_img {row['dist_img']!r} is not I<ref>_<type>_<level>")
            try:
                ref_id, t, lvl = parts[0], int(parts[1]), int(parts[2])
            except ValueError:
                raise ValueError(f"{table}:{line}: dist_img {row['dist_img']!r} is not I<ref>_<type>_<level>") from None
            if refs is not None and ref_id not in refs:
                continue
            if types is not None and t not in types:
                continue
            out.append(GeneratedPair(ref_id, t, lvl, root / "images" / row["ref_img"], root / "images" / row["dist_img"]))
    if not out:
        raise ValueError(f"{table}: no pairs left after filtering (refs={refs}, types={types})")
    return out


def read_peer_scores(path, names: Sequence[str]) -> List[float]:
    """A peer's per-pair distances (``benchmarks/peer_scores.py``'s CSV: columns ``dist_img``, ``distance``)
    in the order of ``names`` (distorted file names).

    Raises:
        FileNotFoundError: ``path`` is missing (the message names it).
        ValueError: a column is missing, or some of ``names`` are not scored yet.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: score the peer with benchmarks/peer_scores.py first")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"dist_img", "distance"} <= set(reader.fieldnames or []):
            raise ValueError(f"{path}: expected columns dist_img, distance; found {reader.fieldnames}")
        d = {r["dist_img"]: float(r["distance"]) for r in reader}
    missing = [n for n in names if n not in d]
    if missing:
        raise ValueError(f"{path}: {len(missing)} pairs not scored yet (e.g. {missing[0]}); rerun "
                         "benchmarks/peer_scores.py, which resumes")
    return [d[n] for n in names]
