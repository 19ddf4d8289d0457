"""The one resumable per-pair score file (invariant_lpips.benchmarks.persistence): the runner's, RAID's
and benchmarks/peer_scores.py's files are written by AppendCSV and read by read_scores; an interrupted
write (a torn last line) is cut on reopening and a resumed file reads back every finished row once."""
from __future__ import annotations

import pytest

from invariant_lpips.benchmarks import raid_report
from invariant_lpips.benchmarks.persistence import CSV_FIELDS, AppendCSV, read_scores

RAID = ("image", "kind", "level_a", "level_b", "distance")


def test_resume_after_a_torn_write(tmp_path):
    path = tmp_path / "scores" / "m.csv"
    with AppendCSV(path, RAID) as out:
        out.append([[1, "blur", 1, 2, "0.5"], {"image": 1, "kind": "blur", "level_a": 1, "level_b": 3,
                                                "distance": "0.75"}])
    with open(path, "a") as fh:  # a crash mid-row
        fh.write("1,blur,2,3,0.2")
    rows, clean = read_scores(path, RAID, RAID[:4])
    assert not clean and len(rows) == 2
    with AppendCSV(path, RAID) as out:  # resuming: the torn line is cut, not merged with the next row
        out.append([[1, "blur", 2, 3, "0.25"], [1, "blur", 1, 2, "9"]])  # a duplicate key: the first wins
    rows, clean = read_scores(path, RAID, RAID[:4])
    assert [r["distance"] for r in rows] == ["0.5", "0.75", "0.25"] and not clean
    assert raid_report.read_pair_scores(path) == {(1, "blur", 1, 2): 0.5, (1, "blur", 1, 3): 0.75,
                                                  (1, "blur", 2, 3): 0.25}
    assert path.read_text().count("\n") == 5 and path.read_text().startswith(",".join(RAID) + "\n")


def test_a_foreign_file_is_refused_and_the_runner_default_is_kept(tmp_path):
    path = tmp_path / "scores_x.csv"
    with AppendCSV(path) as out:
        out.append([dict(zip(CSV_FIELDS, ["x", "r1", "d1.png", "blur", "1", "", "0.1"]))])
    rows, clean = read_scores(path)
    assert clean and rows[0]["dist_path"] == "d1.png"
    with pytest.raises(ValueError, match="unexpected header"):
        read_scores(path, RAID)
