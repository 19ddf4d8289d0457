"""The structure study's scripts (studies/structure_select.py, structure_frontier.py, structure_evidence.py)
on a synthetic store and a tiny workload: no ../shared, no trunk weights."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from invariant_lpips import InvariantLPIPS
from designs import design_by_name, design_scales
from selection import Cells, design_coefficients

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = "tex12+lab|s1.c64.centred|norm0.5"


def run(script, *args, cwd=None):
    res = subprocess.run([sys.executable, str(ROOT / "studies" / script), *map(str, args)], capture_output=True,
                         text=True, timeout=300, cwd=cwd or ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def synthetic_store(folder: Path) -> Path:
    """terms.npz with the shipped design's columns for 2 references x 13 types x 5 levels, and a table."""
    design = design_by_name(SHIPPED)
    names = design["texture"] + design["structure"]
    types = (1, 3, 4, 6, 8, 9, 11, 13, 16, 18, 20, 22, 24)
    rows = [(r, t, lv) for r in (1, 2) for t in types for lv in range(1, 6)]
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(1.0, 0.3, (len(rows), len(names)))) * np.arange(1, len(names) + 1)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "terms.npz", names=np.array(names), X=X, type=np.array([r[1] for r in rows]),
             level=np.array([r[2] for r in rows]), ref=np.array([f"I{r[0]:02d}" for r in rows]),
             dist=np.array([f"I{r[0]:02d}_{r[1]:02d}_{r[2]:02d}.png" for r in rows]))
    table = folder / "table.csv"
    table.write_text("type_id,type_name,level,mean_dmos,sd_dmos,n_refs\n" + "".join(
        f"{t},t{t},{lv},{5 - 0.5 * lv + 0.01 * t},0.1,81\n" for t in types for lv in range(1, 6)))
    return table


def test_frontier_lists_its_candidates():
    names = run("structure_frontier.py", "--list").strip().split(",")
    assert f"design:{SHIPPED}" in names
    assert all(design_by_name(n[len("design:"):]) for n in names)


def test_ship_writes_the_designs_scales_for_the_default_variant(tmp_path):
    table = synthetic_store(tmp_path / "store")
    out = tmp_path / "w.safetensors"
    run("structure_select.py", "--store", tmp_path / "store", "--table", table, "--ship", SHIPPED, "--weights-out", out)
    z = np.load(tmp_path / "store" / "terms.npz")
    from invariant_lpips.data.type_level import read_type_level_table

    cells = Cells(z["X"], z["names"], z["type"], z["level"], read_type_level_table(table))
    design = design_by_name(SHIPPED)
    expected = design_scales(design, *design_coefficients(cells, design, cells.types))
    m = InvariantLPIPS("structure-blur", weights=str(out), trunk_weights=None, verbose=False)
    got = {t: float(m.variant.weights(str(out))[0][f"scale.{t}"]) for t in m.variant.terms()}
    assert got == pytest.approx(expected, rel=1e-6)
    with pytest.raises(AssertionError, match="fitted designs go through"):
        run("structure_select.py", "--store", tmp_path / "store", "--table", table, "--ship",
            "tex12+lab|s1.c64.centred|fit", "--weights-out", tmp_path / "x.safetensors")


def test_speed_writes_pairs_per_second_relative_to_the_baseline(tmp_path):
    run("structure_evidence.py", "speed", "--metrics", "mse,l1", "--repeats", "1", "--out", tmp_path)
    out = json.loads((tmp_path / "speed.json").read_text())
    assert set(out["metrics"]) == {"mse", "l1"}
    assert all(e["pairs_per_s"] > 0 and len(e["times_s"]) == 1 for e in out["metrics"].values())
    assert "| mse |" in (tmp_path / "speed.md").read_text()


def test_evidence_refuses_a_design_without_a_store(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "studies" / "structure_evidence.py"), "speed", "--metrics",
                          f"design:{SHIPPED}", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "needs --store" in res.stderr
    res = subprocess.run([sys.executable, str(ROOT / "studies" / "structure_evidence.py"), "loss", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "loss needs --refs" in res.stderr


def test_the_design_metric_of_the_evidence_script_takes_images_in_0_1(tmp_path, monkeypatch):
    """``design:<name>`` metrics are built from the store's normalisation and called like registry metrics."""
    synthetic_store(tmp_path / "store")
    sys.path.insert(0, str(ROOT / "studies"))
    try:
        import structure_evidence as ev  # the script under test, imported by the test only
    finally:
        sys.path.pop(0)
    import designs  # studies/designs.py: the studies folder is on the tests' path (pyproject)

    real = designs.design_metric
    monkeypatch.setattr(designs, "design_metric", lambda *a, **k: real(*a, trunk_weights=None, **k))
    args = type("A", (), {"store": str(tmp_path / "store")})()
    m = ev.metric_for(f"design:{SHIPPED}", args)
    x = torch.rand(2, 3, 64, 64)
    d = m(x, (x + 0.1).clamp(0, 1))
    assert d.shape == (2,) and bool((d > 0).all())
    assert torch.allclose(m(x, x), torch.zeros(2), atol=1e-6)
