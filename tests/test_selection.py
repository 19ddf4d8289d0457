"""Nested leave-one-type-out selection of a design (studies/selection.py), on synthetic data."""
import numpy as np
import pytest

from helpers import fourier_shift, smooth_images
from selection import Cells, criterion, design_distances, nested_selection

TYPES = (1, 2, 3, 4, 5)
LEVELS = (1, 2, 3, 4)


def _synthetic(seed=0, refs=3):
    rng = np.random.default_rng(seed)
    # human mean score per cell (higher = better): falls with level, types differ in severity
    table = {(t, l): 5.0 - l * (0.5 + 0.15 * t) for t in TYPES for l in LEVELS}
    rows = [(t, l) for t in TYPES for l in LEVELS for _ in range(refs)]
    types = np.array([r[0] for r in rows])
    levels = np.array([r[1] for r in rows])
    impairment = np.array([-table[r] for r in rows]) + 5.0
    good = impairment + rng.normal(0, 0.3, len(rows))
    # "lucky": exact on type 3, noise elsewhere -> its advantage exists only when type 3 is scored
    lucky = np.where(types == 3, impairment * 10.0, rng.uniform(0, 3, len(rows)))
    X = np.stack([good.clip(0.01), lucky.clip(0.01), rng.uniform(0, 1, len(rows))], 1)
    return Cells(X, ["good", "lucky", "noise"], types, levels, table), table


def _design(name, cols, weighting="norm"):
    return {"name": name, "texture": cols, "structure": [], "weighting": weighting, "lambda": 1.0}


def test_lucky_design_is_not_chosen_when_its_type_is_held_out():
    cells, _ = _synthetic()
    pool = [_design("good", ["good"]), _design("lucky", ["lucky"]), _design("noise", ["noise"])]
    res = nested_selection(cells, pool, verbose=False)
    fold3 = next(f for f in res["folds"] if f["held_out_type"] == 3)
    assert fold3["chosen"] == "good"
    assert all(f["chosen"] == "good" for f in res["folds"])
    assert res["nested_srcc"] > 0.9


def test_fit_designs_are_scored_by_an_inner_leave_one_type_out():
    cells, _ = _synthetic(seed=1)
    pool = [_design("good", ["good"]), _design("fit-all", ["good", "lucky", "noise"], "fit")]
    train = [t for t in TYPES if t != 3]
    # in-sample on the training types the fit can only help, but its criterion is out-of-type
    assert criterion(cells, pool[1], train) <= 1.0
    res = nested_selection(cells, pool, verbose=False)
    assert len(res["folds"]) == len(TYPES)
    d = design_distances(cells, pool[1], train)
    assert d.shape == (len(cells.X),) and np.all(np.isfinite(d))


def test_peers_go_through_the_same_map():
    cells, table = _synthetic(seed=2)
    exact = cells.X[:, 0]
    res = nested_selection(cells, [_design("good", ["good"])], peers={"same": exact}, verbose=False)
    assert res["peers"]["same"]["nested_srcc"] == pytest.approx(res["nested_srcc"])


def test_missing_cells_are_named():
    cells, table = _synthetic()
    table.pop((1, 1))
    with pytest.raises(ValueError, match=r"\(1, 1\)"):
        Cells(cells.X, cells.names, cells.type, cells.level, table)


def test_isotonic_fit_is_monotone_and_exact_on_monotone_data():
    from selection import isotonic_fit

    x = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    ux, fy = isotonic_fit(x, np.array([3.0, 1.0, 2.0, 4.0, 5.0]))
    assert ux.tolist() == [1.0, 2.0, 3.0, 5.0]
    assert fy.tolist() == [1.0, 3.0, 3.0, 5.0]  # the tie at x=2 averages to 3; no violation left
    ux, fy = isotonic_fit(np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0]))
    assert fy.tolist() == pytest.approx([2.0, 2.0, 2.0])


def test_floor_columns_come_from_the_packages_texture_formula():
    """with_floor_columns recomputes the plain texture columns from the saved statistics (and refuses
    statistics that do not reproduce them), and appends one column per term and floor, named term@k<kappa>."""
    import torch

    from selection import floor_name, with_floor_columns

    from invariant_lpips.features.formulations import TextureFormulation

    rng = np.random.default_rng(0)
    S0, S1 = rng.uniform(0.01, 1, (5, 7)), rng.uniform(0.01, 1, (5, 7))
    z = {"S0": S0, "S1": S1, "stat_names": np.array(["raw.std.pool1", "lab.mean.lab"]),
         "stat_channels": np.array([4, 3])}
    plain = TextureFormulation().term_difference("raw.std.pool1", torch.from_numpy(S0[:, :4]),
                                                 torch.from_numpy(S1[:, :4]), torch.ones(4, dtype=torch.float64))
    lab = ((S0[:, 4:] - S1[:, 4:]) ** 2).sum(1)  # the colour tap: squared differences
    X = np.stack([plain.numpy(), lab], 1)
    X2, names = with_floor_columns(X, ["raw.std.pool1", "lab.mean.lab"], z, [0.0, 0.5])
    assert names == ["raw.std.pool1", "lab.mean.lab", floor_name("raw.std.pool1", 0.5)] == \
        ["raw.std.pool1", "lab.mean.lab", "raw.std.pool1@k0.5"]
    floored = TextureFormulation(0.5).term_difference("raw.std.pool1", torch.from_numpy(S0[:, :4]),
                                                      torch.from_numpy(S1[:, :4]), torch.ones(4, dtype=torch.float64))
    assert np.allclose(X2[:, 2], floored.numpy()) and (X2[:, 2] <= X2[:, 0] + 1e-12).all()
    with pytest.raises(ValueError, match="do not reproduce"):
        with_floor_columns(X * 2, ["raw.std.pool1", "lab.mean.lab"], z, [0.5])


def test_a_frontier_design_is_the_shipped_variants_formula():
    """studies/loss_frontier.py (via registered_designs.design_metric) trains with a design as a metric: for the default's design it has the
    default's terms, in order, with scales n_texture * coef (the shipped convention)."""
    from registered_designs import design_metric, design_pool

    from invariant_lpips import InvariantLPIPS

    design = next(d for d in design_pool() if d["name"] == "tex12+lab|s1.c32|λ0.5|r1+lab|μ2")
    names = design["texture"] + design["structure"] + design["registered"]
    coef = np.linspace(1.0, 2.0, len(names))
    m = design_metric(design, names, coef, trunk_weights=None)
    assert m.terms == InvariantLPIPS("registered-lab-blur", trunk_weights=None).terms
    expect = dict(zip(names, len(design["texture"]) * coef))
    assert np.allclose(m.scales.detach().numpy(), [expect[t] for t in m.terms])


def test_low_passed_lab_designs_join_the_pool_and_become_metrics(tmp_path):
    """The sets r1+lab<s> (registered_terms.py --lab-blocks) enter the pool, their columns are matched to the
    pairs by file name (the folder a file was written from may differ), and a design becomes a metric
    comparing CIELab block means."""
    from registered_designs import design_metric, design_pool, lab_blocks, registered_sets, with_columns

    path = tmp_path / "blocks.npz"
    np.savez(path, X=np.array([[1.0, 2.0], [3.0, 4.0]]), names=np.array(["lab2.reg.lab", "lab4.reg.lab"]),
             keys=np.array(["data/kodak_dev/images/I02_01_01.png", "data/kodak_dev/images/I01_01_01.png"]))
    assert lab_blocks(str(path)) == (2, 4) and lab_blocks("") == ()
    assert registered_sets((), (4,))["r1+lab4"] == ["unit.reg.relu1_2", "lab4.reg.lab"]
    X, names = with_columns(np.zeros((2, 1)), ["a"], ["../data/kodak_dev/images/I01_01_01.png",
                                                             "../data/kodak_dev/images/I02_01_01.png"], str(path))
    assert names == ["a", "lab2.reg.lab", "lab4.reg.lab"] and X[:, 1].tolist() == [3.0, 1.0]
    with pytest.raises(SystemExit, match="no columns"):
        with_columns(np.zeros((1, 1)), ["a"], ["I09_01_01.png"], str(path))
    design = next(d for d in design_pool(blocks=(4,)) if d["name"] == "tex12+lab|s1.c32|λ0.5|r1+lab4|μ2")
    names = design["texture"] + design["structure"] + design["registered"]
    m = design_metric(design, names, np.ones(len(names)), trunk_weights=None)
    assert m.variant.registered == ("unit.reg.relu1_2", "lab4.reg.lab")
    assert m.variant.trunk.taps == ("relu1_2", "pool1", "pool2")


def test_pooled_designs_become_metrics_with_their_exponent(tmp_path):
    """The sets r1+lab.q<q> (registered_terms.py --exponents) enter the pool, and a design becomes a metric
    whose registered terms are pooled with that exponent."""
    from registered_designs import design_metric, design_pool, exponents_in

    path = tmp_path / "q.npz"
    np.savez(path, X=np.zeros((1, 2)), names=np.array(["unit.reg.relu1_2@q2", "lab.reg.lab@q2"]), keys=np.array(["0"]))
    assert exponents_in(str(path)) == (2.0,)
    design = next(d for d in design_pool(exponents=(2.0,)) if d["name"] == "tex12+lab|s1.c32|λ0.5|r1+lab.q2|μ2")
    assert design["registered"] == ["unit.reg.relu1_2@q2", "lab.reg.lab@q2"]
    names = design["texture"] + design["structure"] + design["registered"]
    m = design_metric(design, names, np.ones(len(names)), trunk_weights=None)
    assert m.variant.formulation.exponent == 2.0 and m.variant.registered == ("unit.reg.relu1_2", "lab.reg.lab")


def test_per_term_pooled_designs_pool_only_their_own_term():
    """With per_term, the pool gains r1.q<q>+lab (relu1_2 pooled) and r1+lab.lq<q> (CIELab pooled); without it
    the pool is unchanged. A per-term design becomes a metric whose pooled term alone has exponent q, and its
    distance is that of the formulation with the same per-term exponent."""
    import torch
    from registered_designs import design_metric, design_pool

    plain = {d["name"] for d in design_pool(exponents=(2.0,))}
    both = {d["name"]: d for d in design_pool(exponents=(2.0,), per_term=True)}
    added = set(both) - plain
    assert added and all("r1.q2+lab" in n or "r1+lab.lq2" in n for n in added) and plain <= set(both)
    design = both["tex12+lab|s1.c32|λ0.5|r1+lab.lq2|μ2"]
    assert design["registered"] == ["unit.reg.relu1_2", "lab.reg.lab@q2"]
    names = design["texture"] + design["structure"] + design["registered"]
    m = design_metric(design, names, np.ones(len(names)), trunk_weights=None)
    f = m.variant.formulation
    assert f.exponent == 1.0 and f.exponents == {"lab.reg.lab": 2.0}
    assert f.exponent_for("lab.reg.lab") == 2.0 and f.exponent_for("unit.reg.relu1_2") == 1.0
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 48, 48, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        terms = m(x, y, normalize=True, retPerLayer=True)[1]
    assert all(bool(torch.isfinite(torch.as_tensor(t)).all()) for t in terms)


@pytest.mark.parametrize("variant, design_name, exponents, per_term, subpixel", [
    ("registered-lab-q4-blur", "tex12+lab|s1.c64|λ1|r1+lab.q4|μ2", (4.0,), False, False),
    ("registered-lab-rq3-blur", "tex12+lab|s1.c32|λ0.5|r1.q3+lab|μ2", (3.0,), True, False),
    ("registered-lab-lq4-blur", "tex12+lab|s1.c32|λ0.5|r1+lab.lq4|μ2", (4.0,), True, False),
    ("registered-lab-lq3-subpixel-blur", "tex12+lab|s1.c32|λ0.5|r1+lab.lq3|μ2", (3.0,), True, True)])
def test_the_pooled_variants_are_their_designs_formula(variant, design_name, exponents, per_term, subpixel):
    """registered-lab-q4-blur, -rq3-blur, -lq4-blur and -lq3-subpixel-blur, as shipped, compute the designs the
    selection chose (the study's columns weighted by their coefficients): same terms, scales, pooling exponents
    (per term for rq3, lq4 and lq3) and registration precision, so the same distances (the pair below is
    displaced by a fraction of a pixel, so sub-pixel compensation is exercised)."""
    import json

    import torch
    from registered_designs import design_metric, design_pool

    from invariant_lpips import InvariantLPIPS
    from invariant_lpips.weights.linear import SHIPPED_DIR

    entry = next(e for e in json.loads((SHIPPED_DIR / "manifest.json").read_text())["files"]
                 if e["variant"] == variant)
    design = next(d for d in design_pool(exponents=exponents, per_term=per_term) if d["name"] == design_name)
    names = design["texture"] + design["structure"] + design["registered"]
    coef = [entry["scales"][n.split("@")[0]] / len(design["texture"]) for n in names]
    torch.manual_seed(0)
    m = design_metric(design, names, coef, trunk_weights=None, subpixel=subpixel)
    torch.manual_seed(0)
    shipped = InvariantLPIPS(variant, trunk_weights=None)
    assert shipped.variant.subpixel == subpixel
    g = torch.Generator().manual_seed(3)
    x = smooth_images(1, 64, 80, seed=3)
    y = torch.cat([torch.rand(1, 3, 64, 80, generator=g), fourier_shift(x, 0.5, -1.3).clamp(0, 1)])
    with torch.no_grad():
        torch.testing.assert_close(m(x, y, normalize=True), shipped(x, y, normalize=True), rtol=1e-5, atol=1e-6)
        if subpixel:  # the displaced pair does go through the sub-pixel step (its value differs without it)
            torch.manual_seed(0)
            plain = InvariantLPIPS(shipped.variant.with_(name="whole-pixel", subpixel=False), trunk_weights=None)
            assert float(plain(x, y[1:], normalize=True)) > 1.5 * float(shipped(x, y[1:], normalize=True))


def test_the_loss_test_is_a_mean_over_seeds_against_the_default():
    """registered_select.loss_test: a design passes when measured in every run, its mean aligned PSNR is at
    most 0.1 dB below the reference's and its mean sharpness within 15% of the truth's; the reference passes."""
    from registered_select import loss_test

    def run(**designs):
        return {"designs": {k: {"mean": {"aligned_psnr": p, "sharpness": s}} for k, (p, s) in designs.items()}}

    runs = [run(ref=(29.0, 1.2), a=(28.95, 1.10), b=(29.5, 1.30), c=(28.0, 1.0)),
            run(ref=(28.8, 1.2), a=(28.75, 1.10), b=(29.5, 1.25), c=(30.0, 1.0), d=(40.0, 1.0))]
    got = loss_test(runs, ["ref", "a", "b", "c", "d"], "ref")
    assert got["ref"]["ok"] and abs(got["ref"]["aligned_psnr"] - 28.9) < 1e-9
    assert got["a"]["ok"]                                                      # 0.05 dB below, sharpness 1.10
    assert not got["b"]["ok"] and abs(got["b"]["sharpness"] - 1.275) < 1e-9   # over-sharpens
    assert got["c"]["ok"]                                                      # mean 29.0 over the seeds
    assert not got["d"]["ok"] and not got["d"]["measured_in_every_run"]        # one seed only
    assert not loss_test(runs, ["a"], "ref", max_drop=0.01)["a"]["ok"]
    with pytest.raises(SystemExit, match="not measured"):
        loss_test(runs, ["a"], "d")


def test_the_loss_test_without_a_reference_tests_every_design_alike():
    """reference=None: no comparison with the default; a design (the default too) passes when its mean aligned
    PSNR is above min_psnr (the best peer's) and its mean sharpness within 15% of the truth's."""
    from registered_select import loss_test

    def run(**designs):
        return {"designs": {k: {"mean": {"aligned_psnr": p, "sharpness": s}} for k, (p, s) in designs.items()}}

    runs = [run(ref=(29.0, 1.2), a=(27.0, 0.9), b=(26.0, 1.0)), run(ref=(28.8, 1.2), a=(27.2, 0.82), b=(26.6, 1.0))]
    got = loss_test(runs, ["ref", "a", "b"], None, min_psnr=26.5)
    assert not got["ref"]["ok"]                  # sharpness 1.2: the default is not exempt
    assert got["a"]["ok"]                        # 27.1 dB, sharpness 0.86: inside the 15% on the blurred side
    assert not got["b"]["ok"]                    # 26.3 dB: not above the best peer
    assert not loss_test(runs, ["a"], None, min_psnr=27.1)["a"]["ok"]


def test_term_columns_of_another_registration_precision_are_not_resumed_into(tmp_path, monkeypatch):
    """registered_terms.py: a file written with subpixel=True is not extended by a whole-pixel run (nor the
    reverse); files from before the flag count as whole-pixel."""
    import registered_terms as rt

    for had, run, ok in [(True, False, False), (False, True, False), (True, True, True), (None, False, True)]:
        path = tmp_path / "t.npz"
        np.savez(path, X=np.zeros((1, 1)), **({} if had is None else {"subpixel": np.array(had)}))
        monkeypatch.setattr(rt, "SUBPIXEL", run)
        if ok:
            rt._check_resume(np.load(path), path)
        else:
            with pytest.raises(SystemExit, match="subpixel"):
                rt._check_resume(np.load(path), path)
