"""Persistence and resume: the one resumable per-pair score file, the state file and atomic writes.

The score file (:class:`AppendCSV` to write, :func:`read_scores` to read) is the one store of per-pair
scores of the package: the benchmark runner (``scores_<metric>.csv``, columns :data:`CSV_FIELDS`), RAID
(``scores/<metric>.csv``, columns ``image,kind,level_a,level_b,distance``) and
``benchmarks/peer_scores.py`` (``dist_img,ref_img,distance``) all write through it: rows appended,
flushed and fsynced per group, a torn last line (an interrupted write) cut before appending and dropped
when reading, duplicates of a key dropped, so a rerun scores only what is missing.

Scores are appended per reference group to ``scores_<metric>.csv`` (per rank to
``parts/scores_<metric>.rank<k>.csv`` under torchrun), flushed and fsynced; the state file
(``state.json``, or ``state.rank<k>.json``) is replaced atomically after every group. A run started
again reads those files (:func:`read_scores` drops a torn last line and duplicates), refuses stored
scores of another configuration (:meth:`ScoreStore.check_fingerprints`) and computes only what is
missing. At the end rank 0 merges everything into ``scores_<metric>.csv`` in dataset order
(:meth:`ScoreStore.merge`).
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["CSV_FIELDS", "STATE_VERSION", "metric_file_stem", "read_scores", "ScoreStore", "AppendCSV",
           "atomic_write_text", "atomic_write_json", "jsonable", "read_json", "now"]

#: columns of ``scores_<metric>.csv``
CSV_FIELDS = ("metric", "ref_id", "dist_path", "dist_type", "level", "human_score", "distance")
STATE_VERSION = 1

Row = Dict[str, str]


# =============================================================================== small helpers


def metric_file_stem(name: str) -> str:
    """File-name-safe form of a metric name (``invariant:paper`` -> ``invariant_paper``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def jsonable(obj: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, tuples -> lists, Paths -> str (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_text(path: Union[str, Path], text: str) -> None:
    """Write ``text`` to a temporary file, fsync it and rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Union[str, Path], obj: Any) -> None:
    atomic_write_text(path, json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n")


def read_json(path: Union[str, Path]) -> Optional[dict]:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


# =============================================================================== scores files


def read_scores(path: Union[str, Path], fields: Sequence[str] = CSV_FIELDS,
                key: Sequence[str] = ("metric", "dist_path")) -> Tuple[List[Row], bool]:
    """Read a score file written by :class:`AppendCSV` (header ``fields``), tolerating a torn tail.

    Returns ``(rows, clean)``: rows as dicts (first occurrence of each ``key``), ``clean`` False when a
    torn or malformed line, a non-finite ``distance`` or a duplicate was dropped (the caller may rewrite
    the file). A missing file gives ``([], True)``; a file with a foreign header raises ``ValueError``.
    """
    fields = tuple(fields)
    path = Path(path)
    if not path.is_file():
        return [], True
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    clean = lines[-1] == ""  # an append-only file torn mid-write lacks its final newline
    lines = [ln.rstrip("\r") for ln in lines[:-1]]
    if not lines:
        return [], clean and text == ""
    header = next(csv.reader([lines[0]]))
    if tuple(header) != fields:
        raise ValueError(f"{path}: unexpected header {header} (expected {list(fields)}); this is not a "
                         "score file of this kind: move it away or use another output folder")
    rows: List[Row] = []
    seen = set()
    for line in lines[1:]:
        try:
            vals = next(csv.reader([line]))
        except (csv.Error, StopIteration):
            clean = False
            continue
        if len(vals) != len(fields):
            clean = False
            continue
        row = dict(zip(fields, vals))
        try:
            if not math.isfinite(float(row["distance"])):
                raise ValueError
        except ValueError:
            clean = False
            continue
        k = tuple(row[c] for c in key)
        if k in seen:
            clean = False
            continue
        seen.add(k)
        rows.append(row)
    return rows, clean


def rows_to_csv_text(rows: Iterable[Row]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for r in rows:
        w.writerow([r[k] for k in CSV_FIELDS])
    return buf.getvalue()


def drop_torn_tail(path: Path) -> None:
    """Cut a last line left unfinished by an interrupted write (it would merge with the next row)."""
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        f.truncate(data.rfind(b"\n") + 1)


class AppendCSV:
    """Append-only score file (header ``fields``): rows (dicts, or sequences in ``fields`` order) are
    written, flushed and fsynced per :meth:`append`; a torn last line is cut on opening."""

    def __init__(self, path: Path, fields: Sequence[str] = CSV_FIELDS):
        self.path = path = Path(path)
        self.fields = tuple(fields)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            drop_torn_tail(path)
        new = not path.is_file() or path.stat().st_size == 0
        self.fh = open(path, "a", encoding="utf-8", newline="")
        self.writer = csv.writer(self.fh, lineterminator="\n")
        if new:
            self.writer.writerow(self.fields)
            self._sync()

    def _sync(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def append(self, rows: Sequence[Union[Row, Sequence[Any]]]) -> None:
        for r in rows:
            self.writer.writerow([r[k] for k in self.fields] if isinstance(r, Mapping) else list(r))
        self._sync()

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()

    def __enter__(self) -> "AppendCSV":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# =============================================================================== the output folder


class ScoreStore:
    """The scores and state files of one run in ``out_dir`` (this process's rank of ``world``)."""

    def __init__(self, out_dir: Path, names: Sequence[str], rank: int = 0, world: int = 1):
        self.out_dir = Path(out_dir)
        self.parts_dir = self.out_dir / "parts"
        self.names = list(names)
        self.rank, self.world = rank, world
        self.stems = {n: metric_file_stem(n) for n in self.names}
        if len(set(self.stems.values())) != len(self.stems):
            raise ValueError(f"metric names map to the same file name: {self.stems}")
        self.state_path = self.out_dir / ("state.json" if world <= 1 else f"state.rank{rank}.json")
        self.state: Dict[str, Any] = {}

    # ------------------------------------------------------------------ paths
    def main_path(self, name: str) -> Path:
        return self.out_dir / f"scores_{self.stems[name]}.csv"

    def part_paths(self, name: str) -> List[Path]:
        return sorted(self.parts_dir.glob(f"scores_{self.stems[name]}.rank*.csv"))

    def own_path(self, name: str) -> Path:
        """Where this process appends its rows."""
        if self.world <= 1:
            return self.main_path(name)
        return self.parts_dir / f"scores_{self.stems[name]}.rank{self.rank}.csv"

    # ------------------------------------------------------------------ start over / resume
    def start_over(self) -> None:
        """``resume=False``: delete these metrics' scores and forget them in every state file (rank 0)."""
        for n in self.names:
            for p in [self.main_path(n), *self.part_paths(n)]:
                if p.exists():
                    p.unlink()
        for sp in self.out_dir.glob("state*.json"):
            st = read_json(sp)
            if st and isinstance(st.get("metrics"), dict):
                for n in self.names:
                    st["metrics"].pop(n, None)
                atomic_write_json(sp, st)

    def check_fingerprints(self, fingerprints: Mapping[str, dict]) -> None:
        """Stored fingerprints must match: a resumed run must not mix configurations."""
        for sp in sorted(self.out_dir.glob("state*.json")):
            st = read_json(sp) or {}
            for n in self.names:
                old = (st.get("metrics") or {}).get(n, {}).get("fingerprint")
                current = jsonable(fingerprints[n])
                if old is not None and old != current:
                    diff = {k: (old.get(k), current.get(k)) for k in sorted(set(old) | set(current))
                            if old.get(k) != current.get(k)}
                    raise ValueError(f"{self.out_dir} holds scores of metric {n!r} computed with another "
                                     f"configuration (stored vs now: {diff}); use --no-resume (resume=False) "
                                     "or another output folder")

    def load_done(self) -> Dict[str, set]:
        """metric -> the ``dist_path`` keys already scored (torn files are rewritten by their owner)."""
        done: Dict[str, set] = {}
        for n in self.names:
            main = self.main_path(n)
            rows, clean = read_scores(main)
            if not clean and self.rank == 0:
                atomic_write_text(main, rows_to_csv_text(rows))
            keys_done = {r["dist_path"] for r in rows if r["metric"] == n}
            for part in self.part_paths(n):
                prow, pclean = read_scores(part)
                if not pclean and self.world > 1 and part == self.own_path(n):
                    atomic_write_text(part, rows_to_csv_text(prow))
                keys_done |= {r["dist_path"] for r in prow if r["metric"] == n}
            done[n] = keys_done
        return done

    # ------------------------------------------------------------------ state file
    def open_state(self, dataset_info: dict, fingerprints: Mapping[str, dict], done: Mapping[str, set]) -> None:
        state = read_json(self.state_path) or {}
        state.setdefault("version", STATE_VERSION)
        state["dataset"] = dataset_info
        state["world_size"] = self.world
        state["rank"] = self.rank
        state.setdefault("metrics", {})
        for n in self.names:
            ms = state["metrics"].setdefault(n, {})
            ms["fingerprint"] = fingerprints[n]
            ms.setdefault("done_refs", [])
            ms["rows_on_disk"] = len(done[n])
        self.state = state
        self.save_state()

    def group_done(self, ref_id: str, finished: Iterable[str], done: Mapping[str, set]) -> None:
        """Record a finished reference group (``finished``: the metrics that scored it) atomically."""
        finished = set(finished)
        for n in self.names:
            done_refs = self.state["metrics"][n]["done_refs"]
            if n in finished and ref_id not in done_refs:
                done_refs.append(ref_id)
            self.state["metrics"][n]["rows_on_disk"] = len(done[n])
        self.save_state()

    def save_state(self) -> None:
        self.state["updated"] = now()
        atomic_write_json(self.state_path, self.state)

    # ------------------------------------------------------------------ writing
    def writers(self) -> Dict[str, AppendCSV]:
        return {n: AppendCSV(self.own_path(n)) for n in self.names}

    def merge(self, keys: Sequence[str], new_rows: Sequence[Mapping[str, List[Row]]]) -> Dict[str, Dict[str, Row]]:
        """Rank 0: merge the main file, the part files and the rows gathered from every rank into
        ``scores_<metric>.csv`` in dataset order (rows not in ``keys`` last); delete the parts.
        Returns metric -> {dist_path: row}."""
        key_index = set(keys)
        final: Dict[str, Dict[str, Row]] = {}
        for n in self.names:
            merged: Dict[str, Row] = {}
            part_files = self.part_paths(n)
            sources = [read_scores(self.main_path(n))[0]]
            sources += [read_scores(p)[0] for p in part_files]
            sources += [part.get(n, []) for part in new_rows]
            for rows in sources:
                for r in rows:
                    if r["metric"] == n:
                        merged.setdefault(r["dist_path"], r)
            ordered = [merged[k] for k in keys if k in merged] + [r for k, r in merged.items() if k not in key_index]
            atomic_write_text(self.main_path(n), rows_to_csv_text(ordered))
            for p in part_files:
                p.unlink()
            final[n] = merged
        if self.parts_dir.is_dir() and not any(self.parts_dir.iterdir()):
            self.parts_dir.rmdir()
        return final
