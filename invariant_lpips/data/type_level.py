"""Type-level evaluation: does a metric order KADID's (type, level) cells like humans do?

Input: a table of human mean scores per (type, level) — e.g. a CSV with columns
``type_id, level, mean_dmos`` (KADID DMOS: higher = better quality) — and
per-image metric distances keyed by ``(ref, type, level)``. The distances are
averaged per (type, level) and correlated with the human means:

* overall SRCC, KRCC, PLCC over all matched cells,
* per type SRCC (and KRCC) over that type's levels.

Sign convention: correlations are reported so that POSITIVE = AGREEMENT. With
human scores where higher is better (DMOS/MOS) the metric's ``-distance`` is
correlated with the human score; pass ``human_higher_is_better=False`` for
scores where higher is worse (e.g. a difference/impairment scale).
"""
from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from .records import _parse_float, _read_table, _read_text, _sniff_delimiter
from .correlation import krcc, plcc, srcc

Key = Tuple[int, int]
PathLike = Union[str, "os.PathLike[str]"]  # noqa: F821

class TypeLevelRow(NamedTuple):
    type: int
    level: int
    mean: float
    sd: Optional[float]


_TL_TYPE = ("type_id", "type", "dist_type", "distortion_type")
_TL_LEVEL = ("level", "dist_level", "lev")
_TL_MEAN = ("mean_dmos", "mean_mos", "mean_score", "mean", "dmos", "mos")
_TL_SD = ("sd_dmos", "sd_mos", "std_dmos", "std_mos", "sd", "std")


def read_type_level_rows(path: PathLike) -> List[TypeLevelRow]:
    """Read a per-(distortion type, level) summary CSV.

    Expects a header with a type column (``type_id`` or ``type``), ``level``,
    a mean column (``mean_dmos``, ``mean_mos``, ``mean``, ...) and optionally
    an sd column (``sd_dmos``, ``sd``, ``std``, ...; empty -> None).  Other
    columns (``type_name``, ``n_refs``) are ignored.  Returns
    ``TypeLevelRow(type, level, mean, sd)`` tuples in file order.
    """
    p = Path(path)
    what = "type-level table"
    expected = "a CSV with columns type_id (or type), level, mean_dmos (or mean_mos/mean) and optional sd_dmos (or sd/std)"
    text = _read_text(p, what, expected)
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise ValueError(f"{what}: {p} is empty. Expected {expected}")
    delim = _sniff_delimiter(lines[first]) or ","
    header = [h.strip().lower() for h in next(csv.reader([lines[first]], delimiter=delim))]

    def pick(cands: Sequence[str], required: bool) -> Optional[str]:
        for c in cands:
            if c in header:
                return c
        if required:
            raise ValueError(f"{what}: {p} line {first + 1}: no column among {list(cands)}; found header {header}. Expected {expected}")
        return None

    c_type, c_level, c_mean = pick(_TL_TYPE, True), pick(_TL_LEVEL, True), pick(_TL_MEAN, True)
    c_sd = pick(_TL_SD, False)
    req = [c for c in (c_type, c_level, c_mean) if c]
    _, rows = _read_table(p, what, req, expected, optional=[c_sd] if c_sd else [])
    out: List[TypeLevelRow] = []
    seen: Dict[Tuple[int, int], int] = {}
    for line, row in rows:
        def as_int(col: str) -> int:
            v = row[col]
            try:
                f = float(v)
                if f != int(f):
                    raise ValueError
                return int(f)
            except ValueError:
                raise ValueError(f"{what}: {p} line {line}: column {col!r} must be an integer, got {v!r}") from None

        t, lv = as_int(c_type), as_int(c_level)  # type: ignore[arg-type]
        mean = _parse_float(row[c_mean], path=p, line=line, column=c_mean, dataset=what)  # type: ignore[index,arg-type]
        sd = (
            _parse_float(row[c_sd], path=p, line=line, column=c_sd, dataset=what, allow_empty=True)
            if c_sd
            else None
        )
        if (t, lv) in seen:
            raise ValueError(f"{what}: {p} line {line}: duplicate (type {t}, level {lv}) (first on line {seen[(t, lv)]})")
        seen[(t, lv)] = line
        out.append(TypeLevelRow(t, lv, float(mean), sd))  # type: ignore[arg-type]
    return out


def read_type_level_table(path: PathLike) -> Dict[Key, float]:
    """Read a (type, level) -> mean human score table from CSV (the dict view of :func:`read_type_level_rows`)."""
    return {(int(r.type), int(r.level)): float(r.mean) for r in read_type_level_rows(path)}


def _iter_distances(distances: Any) -> Iterable[Tuple[Any, int, int, float]]:
    if isinstance(distances, Mapping):
        for key, d in distances.items():
            if not (isinstance(key, tuple) and len(key) == 3):
                raise ValueError(f"distance keys must be (ref, type, level) tuples, got {key!r}")
            yield key[0], key[1], key[2], d
    else:
        for item in distances:
            if not (isinstance(item, (tuple, list)) and len(item) in (2, 4)):
                raise ValueError(
                    f"distances must be a mapping {{(ref, type, level): distance}} or an iterable of "
                    f"(ref, type, level, distance) / ((ref, type, level), distance); got item {item!r}"
                )
            if len(item) == 4:
                yield item[0], item[1], item[2], item[3]
            else:
                key, d = item
                if not (isinstance(key, tuple) and len(key) == 3):
                    raise ValueError(f"distance keys must be (ref, type, level) tuples, got {key!r}")
                yield key[0], key[1], key[2], d


def mean_distance_per_cell(distances: Any) -> Dict[Key, Tuple[float, int]]:
    """Average per-image distances per (type, level): ``{(type, level): (mean, n_images)}``."""
    sums: Dict[Key, float] = defaultdict(float)
    counts: Dict[Key, int] = defaultdict(int)
    for ref, t, lvl, d in _iter_distances(distances):
        v = float(d)
        if not math.isfinite(v):
            raise ValueError(f"distance for (ref={ref!r}, type={t}, level={lvl}) is not finite: {d!r}")
        key = (int(t), int(lvl))
        sums[key] += v
        counts[key] += 1
    return {k: (sums[k] / counts[k], counts[k]) for k in sorted(sums)}


def _corr(x: Sequence[float], y: Sequence[float]) -> Dict[str, float]:
    """SRCC, KRCC, PLCC from :mod:`invariant_lpips.data.correlation` (NaN below 3 points)."""
    if len(x) < 3:
        nan = float("nan")
        return {"srcc": nan, "krcc": nan, "plcc": nan}
    return {"srcc": srcc(x, y), "krcc": krcc(x, y), "plcc": plcc(x, y)}


def evaluate_type_level(
    table: Union[Mapping[Key, float], PathLike],
    distances: Any,
    *,
    human_higher_is_better: bool = True,
    min_levels_per_type: int = 3,
) -> Dict[str, Any]:
    """Correlate mean metric distance per (type, level) with the human mean scores.

    Parameters
    ----------
    table:
        ``{(type, level): human mean score}`` (see :func:`read_type_level_table`) or a CSV path.
    distances:
        Per-image distances: ``{(ref, type, level): d}``, or an iterable of
        ``(ref, type, level, d)`` or ``((ref, type, level), d)``. Larger ``d`` = more different.
    human_higher_is_better:
        True for DMOS/MOS (KADID): ``-d`` is correlated with the score. False: ``d`` is.
    min_levels_per_type:
        Per-type correlations need at least this many matched levels (else NaN).

    Returns
    -------
    dict with
      ``n_cells``, ``srcc``, ``krcc``, ``plcc`` (overall, positive = agreement),
      ``per_type``: ``{type: {"srcc", "krcc", "n_levels"}}``,
      ``mean_per_type_srcc``: mean of the finite per-type SRCCs (NaN if none),
      ``cells``: list of ``{"type", "level", "mean_distance", "n_images", "human"}``,
      ``unmatched_table_cells`` / ``unmatched_distance_cells``: (type, level) keys present on one side only.
    """
    if not isinstance(table, Mapping):
        table = read_type_level_table(table)
    cells = mean_distance_per_cell(distances)
    keys = sorted(set(table) & set(cells))
    if not keys:
        raise ValueError(
            "no (type, level) cell is present in both the human table and the distances; "
            f"table has {sorted(table)[:5]}..., distances have {sorted(cells)[:5]}..."
        )
    sign = -1.0 if human_higher_is_better else 1.0
    metric = [sign * cells[k][0] for k in keys]
    human = [float(table[k]) for k in keys]
    overall = _corr(metric, human)

    per_type: Dict[int, Dict[str, float]] = {}
    for t in sorted({k[0] for k in keys}):
        tk = [k for k in keys if k[0] == t]
        if len(tk) >= max(2, int(min_levels_per_type)):
            c = _corr([sign * cells[k][0] for k in tk], [float(table[k]) for k in tk])
        else:
            c = {"srcc": float("nan"), "krcc": float("nan")}
        per_type[t] = {"srcc": c["srcc"], "krcc": c["krcc"], "n_levels": len(tk)}
    finite = [v["srcc"] for v in per_type.values() if math.isfinite(v["srcc"])]
    return {
        "n_cells": len(keys),
        "srcc": overall["srcc"],
        "krcc": overall["krcc"],
        "plcc": overall["plcc"],
        "per_type": per_type,
        "mean_per_type_srcc": float(np.mean(finite)) if finite else float("nan"),
        "cells": [
            {
                "type": k[0],
                "level": k[1],
                "mean_distance": cells[k][0],
                "n_images": cells[k][1],
                "human": float(table[k]),
            }
            for k in keys
        ],
        "unmatched_table_cells": sorted(set(table) - set(cells)),
        "unmatched_distance_cells": sorted(set(cells) - set(table)),
    }
