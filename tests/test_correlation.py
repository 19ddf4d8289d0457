import time

import numpy as np
import pytest
from scipy import stats as sst

from invariant_lpips.data import correlation as S


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = rng.uniform(1, 5, 300)
    x = np.round(-y + rng.normal(0, 0.8, y.size), 1)  # a distance vs MOS, with ties
    return x, y


# ----------------------------------------------------------------- basic correlations


def test_srcc_krcc_equal_scipy_exactly(data):
    x, y = data
    assert S.srcc(x, y) == float(sst.spearmanr(x, y)[0])
    assert S.krcc(x, y) == float(sst.kendalltau(x, y)[0])
    assert S.plcc(x, y) == pytest.approx(float(sst.pearsonr(x, y)[0]), abs=1e-12)


def test_lists_accepted_and_constant_gives_nan():
    assert S.srcc([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert np.isnan(S.srcc([1, 1, 1], [1, 2, 3]))
    assert np.isnan(S.krcc([1, 2, 3], [2, 2, 2]))
    assert np.isnan(S.plcc([1, 1, 1], [1, 2, 3]))


@pytest.mark.parametrize("func", [S.srcc, S.krcc, S.plcc])
def test_input_validation(func):
    with pytest.raises(ValueError, match="lengths differ"):
        func([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        func([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="infinite"):
        func([1, 2, 3], [1, np.inf, 3])
    with pytest.raises(ValueError, match="at least 3"):
        func([1, 2], [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        func(np.ones((2, 3)), np.ones((2, 3)))


# ----------------------------------------------------------------- logistic fits


def test_logistic5_recovers_planted_parameters():
    x = np.linspace(0.0, 1.0, 200)
    planted = (3.0, 8.0, 0.45, 0.5, 1.0)
    y = S.logistic5(x, *planted)
    fit = S.logistic_fit(x, y, params=5)
    assert fit.kind == "logistic5" and fit.converged
    np.testing.assert_allclose(fit.params, planted, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(fit(x), y, atol=1e-6)


def test_logistic5_canonical_sign_and_decreasing_data():
    x = np.linspace(-2.0, 5.0, 150)
    planted = (-2.0, 1.5, 1.0, 0.0, 4.0)  # decreasing
    y = S.logistic5(x, *planted)
    fit = S.logistic_fit(x, y, params=5)
    assert fit.converged and fit.params[1] > 0
    np.testing.assert_allclose(fit.params, planted, rtol=1e-3, atol=1e-4)


def test_logistic4_recovers_planted_parameters():
    x = np.linspace(0.0, 1.0, 200)
    planted = (5.0, 1.0, 0.4, 0.1)
    y = S.logistic4(x, *planted)
    fit = S.logistic_fit(x, y, params=4)
    assert fit.kind == "logistic4" and fit.converged
    np.testing.assert_allclose(fit.params, planted, rtol=1e-3, atol=1e-4)


def test_logistic_fit_fallbacks():
    fit = S.logistic_fit([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    assert fit.kind == "linear" and not fit.converged and "constant" in fit.message
    fit = S.logistic_fit([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 5.0], params=5)
    assert fit.kind == "linear" and not fit.converged and "too few" in fit.message
    np.testing.assert_allclose(fit([1.0, 4.0]), np.polyval(np.polyfit([1, 2, 3, 4], [1, 3, 2, 5], 1), [1.0, 4.0]))
    with pytest.raises(ValueError, match="4 or 5"):
        S.logistic_fit([1, 2, 3], [1, 2, 3], params=3)


def test_logistic_fit_on_exactly_linear_data():
    x = np.linspace(0.0, 1.0, 100)
    y = 3.0 * x + 1.0
    for params in (4, 5):
        fit = S.logistic_fit(x, y, params=params)
        assert fit.converged and fit.kind == f"logistic{params}"
        np.testing.assert_allclose(fit(x), y, atol=0.01)


def test_logistic_fit_never_worse_than_line(data):
    x, y = data
    fit = S.logistic_fit(x, y, params=5)
    line_sse = np.sum((np.polyval(np.polyfit(x, y, 1), x) - y) ** 2)
    assert fit.sse <= line_sse * (1 + 1e-9)


# ----------------------------------------------------------------- orientation


def test_agreement_sign():
    assert S.agreement_sign(metric_lower_is_better=True, human_higher_is_better=True) == -1
    assert S.agreement_sign(metric_lower_is_better=True, human_higher_is_better=False) == 1
    assert S.agreement_sign(metric_lower_is_better=False, human_higher_is_better=True) == 1


def test_correlations_positive_means_agreement(data):
    x, y = data  # x is a distance, y a MOS -> raw correlation negative
    c = S.correlations(x, y, human_higher_is_better=True, metric_lower_is_better=True)
    assert c["SRCC"] == pytest.approx(-S.srcc(x, y))
    assert c["KRCC"] == pytest.approx(-S.krcc(x, y))
    assert c["PLCC_raw"] == pytest.approx(-S.plcc(x, y))
    assert c["SRCC"] > 0.5 and c["PLCC"] > 0.5 and c["n"] == x.size and c["logistic_converged"]
    assert c["PLCC"] >= c["PLCC_raw"] - 1e-9
    # the same judgements expressed as DMOS (lower = better) give the same numbers
    d = S.correlations(x, -y, human_higher_is_better=False, metric_lower_is_better=True)
    for k in ("SRCC", "KRCC", "PLCC_raw"):
        assert d[k] == pytest.approx(c[k])
    assert d["PLCC"] == pytest.approx(c["PLCC"], abs=1e-6)
    # a metric that ranks backwards is reported negative, PLCC included
    bad = S.correlations(-x, y, human_higher_is_better=True, metric_lower_is_better=True)
    assert bad["SRCC"] < -0.5 and bad["PLCC"] < -0.5


def test_per_group_correlations(data):
    x, y = data
    labels = np.array(["a", "b", "c"])[np.arange(x.size) % 3].tolist()
    labels[0] = "tiny"
    labels[1] = "tiny"
    out = S.per_group_correlations(x, y, labels, human_higher_is_better=True)
    assert list(out) == ["a", "b", "c", "tiny"]
    m = np.array([lab == "b" for lab in labels])
    assert out["b"]["SRCC"] == pytest.approx(-S.srcc(x[m], y[m]))
    assert out["b"]["n"] == int(m.sum())
    assert out["tiny"]["n"] == 2 and np.isnan(out["tiny"]["SRCC"])
    with pytest.raises(ValueError, match="length"):
        S.per_group_correlations(x, y, labels[:-1], human_higher_is_better=True)


# ----------------------------------------------------------------- bootstrap


def _grouped(n_groups=30, per=12, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"ref{i:02d}" for i in range(n_groups)], per)
    offset = np.repeat(rng.normal(0, 0.5, n_groups), per)
    y = rng.uniform(1, 5, groups.size) + offset
    x = np.round(-y + rng.normal(0, 0.7, y.size), 1)
    return x, y, groups


def test_bootstrap_contains_point_estimate_and_is_deterministic():
    x, y, g = _grouped()
    kw = dict(human_higher_is_better=True, n_boot=300, statistics=("SRCC", "KRCC", "PLCC", "PLCC_raw"))
    a = S.bootstrap_ci(x, y, g, seed=3, **kw)
    b = S.bootstrap_ci(x, y, g, seed=3, **kw)
    c = S.bootstrap_ci(x, y, g, seed=4, **kw)
    assert a == b
    assert a != c
    point = S.correlations(x, y, human_higher_is_better=True)
    for k in ("SRCC", "KRCC", "PLCC", "PLCC_raw"):
        lo, hi = a[k]
        assert lo < point[k] < hi, k
    # wider interval at a lower confidence level? no: narrower
    n = S.bootstrap_ci(x, y, g, seed=3, alpha=0.5, **kw)
    assert n["SRCC"][1] - n["SRCC"][0] < a["SRCC"][1] - a["SRCC"][0]


def test_bootstrap_resamples_are_exact():
    """Each vectorised resample statistic equals scipy on the explicitly expanded sample."""
    x, y, g = _grouped(n_groups=12, per=7, seed=5)
    codes = np.unique(g, return_inverse=True)[1]
    G = codes.max() + 1
    rng = np.random.default_rng(11)
    C = np.stack([np.bincount(rng.integers(0, G, G), minlength=G) for _ in range(5)]).astype(float)
    W = C[:, codes]
    sp = S._weighted_spearman(S._RankBlocks(x), S._RankBlocks(y), W)
    Sm, Tx, Ty = S._kendall_group_matrices(x, y, codes, G, chunk=17)
    for b in range(C.shape[0]):
        reps = W[b].astype(int)
        xs, ys = np.repeat(x, reps), np.repeat(y, reps)
        assert sp[b] == pytest.approx(sst.spearmanr(xs, ys)[0], abs=1e-12)
        c = C[b]
        N = c @ np.bincount(codes, minlength=G)
        tau = (c @ Sm @ c) / np.sqrt((N * N - c @ Tx @ c) * (N * N - c @ Ty @ c))
        assert tau == pytest.approx(sst.kendalltau(xs, ys)[0], abs=1e-12)


def test_bootstrap_samples_match_explicit_resampling():
    x, y, g = _grouped(n_groups=10, per=5, seed=2)
    res = S.bootstrap_ci(x, y, g, n_boot=20, seed=9, human_higher_is_better=True,
                         statistics=("SRCC", "KRCC", "PLCC_raw"), return_samples=True)
    labels, codes = np.unique(g, return_inverse=True)
    G = labels.size
    draws = np.random.default_rng(9).integers(0, G, size=(20, G))
    for b in range(20):
        reps = np.bincount(draws[b], minlength=G)[codes]
        xs, ys = -np.repeat(x, reps), np.repeat(y, reps)
        assert res["samples"]["SRCC"][b] == pytest.approx(sst.spearmanr(xs, ys)[0], abs=1e-12)
        assert res["samples"]["KRCC"][b] == pytest.approx(sst.kendalltau(xs, ys)[0], abs=1e-12)
        assert res["samples"]["PLCC_raw"][b] == pytest.approx(sst.pearsonr(xs, ys)[0], abs=1e-10)


def test_bootstrap_refit_and_item_resampling_and_validation():
    x, y, g = _grouped(n_groups=8, per=6)
    r = S.bootstrap_ci(x, y, None, n_boot=30, human_higher_is_better=True, statistics=("PLCC",), refit=True)
    lo, hi = r["PLCC"]
    assert -1 <= lo <= hi <= 1
    with pytest.raises(ValueError, match="length"):
        S.bootstrap_ci(x, y, g[:-1], human_higher_is_better=True)
    with pytest.raises(ValueError, match="unknown statistic"):
        S.bootstrap_ci(x, y, g, statistics=("RMSE",), human_higher_is_better=True)
    with pytest.raises(ValueError, match="2 groups"):
        S.bootstrap_ci(x, y, ["same"] * x.size, human_higher_is_better=True)


def test_bootstrap_at_kadid_scale():
    """10,125 pairs in 81 groups, 1000 resamples: runs (speed is measured by benchmarks, not here)."""
    rng = np.random.default_rng(1)
    groups = np.repeat([f"I{i:02d}" for i in range(81)], 125)  # 10,125 pairs
    y = rng.uniform(1, 5, groups.size)
    x = -y + rng.normal(0, 1, y.size)
    res = S.bootstrap_ci(x, y, groups, n_boot=1000, human_higher_is_better=True)
    assert set(res) == {"SRCC", "KRCC", "PLCC"}
    point = S.srcc(-x, y)
    assert res["SRCC"][0] <= point <= res["SRCC"][1]


# ----------------------------------------------------------------- 2AFC


def test_two_afc_score():
    d0 = [0.1, 0.5, 0.3]
    d1 = [0.2, 0.4, 0.3]
    judge = [0.25, 0.75, 1.0]
    np.testing.assert_allclose(S.two_afc_score(d0, d1, judge, per_item=True), [0.75, 0.75, 0.5])
    assert S.two_afc_score(d0, d1, judge) == pytest.approx(2.0 / 3.0)
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        S.two_afc_score([0.1], [0.2], [1.5])
    with pytest.raises(ValueError, match="lengths differ"):
        S.two_afc_score([0.1, 0.2], [0.2], [0.5])
