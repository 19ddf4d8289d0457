"""The pooled statistics of the feature layer: invariance, growth with local damage, the colour tap,
and calibration of a low-dimensional parametrisation (random trunk; fast)."""
from __future__ import annotations

import math

import pytest
import torch

from invariant_lpips.calibration.fit import FitConfig, fit_weights, predict
from invariant_lpips.features.colour import srgb_to_lab
from invariant_lpips.features.formulations import get_formulation
from invariant_lpips.features.pooled import MAP_STATISTICS, STATISTICS, pooled_statistics
from invariant_lpips.features.variants import Variant
from invariant_lpips.trunk.vgg16 import POOL_TAPS, VGG16Trunk

from helpers import smooth_images


def distance(s0, s1, keys, w, formulation, scales=None):
    """A formulation's distance on per-term channel weights ``w`` (term -> (C,))."""
    f = get_formulation(formulation)
    return f.combine(f.term_differences(s0, s1, keys, w), scales)


def term_differences(s0, s1, keys, w, formulation):
    return get_formulation(formulation).term_differences(s0, s1, keys, w)


@pytest.fixture(scope="module")
def circular_trunk():
    torch.manual_seed(0)
    return VGG16Trunk(weights=None, pooling="blurmax", padding_mode="circular")


@pytest.fixture(scope="module")
def trunk():
    torch.manual_seed(0)
    return VGG16Trunk(weights=None, pooling="blurmax")


def _stats(trunk, x01, circular=False):
    with torch.no_grad():
        return pooled_statistics(trunk, 2 * x01 - 1, POOL_TAPS, ("raw", "unit"), STATISTICS, STATISTICS, circular)


@pytest.mark.parametrize("shift", [(32, 0), (0, 32), (64, 96)])
def test_every_statistic_exactly_invariant_to_circular_shifts_of_32(circular_trunk, shift):
    x = smooth_images(2, 128, 160, seed=1)
    s0 = _stats(circular_trunk, x, circular=True)
    s1 = _stats(circular_trunk, torch.roll(x, shifts=shift, dims=(2, 3)), circular=True)
    assert {k.split(".")[1] for k in s0} == set(STATISTICS)
    for key in s0:
        stat = key.split(".")[1]
        if stat in MAP_STATISTICS:
            # a coarse map keeps where things are: it moves with the image, exactly, by shift / cell cells
            cell = int(stat[len("coarse"):])
            if shift[0] % cell or shift[1] % cell:
                continue
            expected = torch.roll(s0[key], shifts=(shift[0] // cell, shift[1] // cell), dims=(2, 3))
            assert torch.allclose(expected, s1[key], atol=1e-5, rtol=1e-4), key
        else:
            assert torch.allclose(s0[key], s1[key], atol=1e-5, rtol=1e-4), key


def test_statistics_move_under_a_one_pixel_shift_less_than_under_noise(trunk):
    """Sanity of the shift robustness (not exact): a 1-px crop shift moves each statistic less than
    noise does (mean, std) or than a local patch does (the soft-local spread, which noise barely moves)."""
    x = smooth_images(1, 192, 208, seed=2)
    s0 = _stats(trunk, x[..., 1:-15])
    s1 = _stats(trunk, x[..., 2:-14])
    torch.manual_seed(0)
    noisy = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    s2 = _stats(trunk, noisy[..., 1:-15])
    patched = x.clone()
    patched[:, 0, 40:64, 40:64] = (patched[:, 0, 40:64, 40:64] + 0.4).clamp(0, 1)
    s3 = _stats(trunk, patched[..., 1:-15])
    for key in s0:
        shift = float((s0[key] - s1[key]).norm())
        other = s3 if (".local." in key or ".coarse" in key) else s2
        assert shift < float((s0[key] - other[key]).norm()), key


def _patch_images(fraction: float, size: int = 128):
    """A smooth image and the same image with a bright saturated square covering ``fraction`` of it."""
    x = smooth_images(1, size, size, seed=5) * 0.5 + 0.25
    y = x.clone()
    side = max(1, int(round(math.sqrt(fraction) * size)))
    y[:, 0, 40:40 + side, 40:40 + side] = 1.0
    y[:, 1, 40:40 + side, 40:40 + side] = 0.0
    return x, y, side * side / (size * size)


@pytest.mark.parametrize("stat", [s for s in STATISTICS if s not in MAP_STATISTICS])
def test_local_damage_grows_at_least_linearly_in_area(trunk, stat):
    """GAP compares pooled means: a patch of area ``a`` moves them by ~a, so a *squared* difference shrinks
    like a^2 (LPIPS, comparing before pooling, like a). The ``mean-spread`` formulation sums norms, so each
    statistic's term grows at least linearly: d(a)/a must not vanish as a -> 0."""
    small = _patch_images(1 / 256)
    large = _patch_images(1 / 16)
    rates, rates_sq = [], []
    for x, y, a in (small, large):
        s0, s1 = _stats(trunk, x), _stats(trunk, y)
        keys = [f"unit.{stat}.{t}" for t in POOL_TAPS] + [f"lab.{stat}.lab"]
        w = {k: torch.ones(s0[k].shape[-1]) for k in keys}
        d_norm, _ = distance(s0, s1, keys, w, "mean-spread", torch.ones(len(keys)))
        d_sq, _ = distance(s0, s1, keys, w, "weighted")
        rates.append(float(d_norm) / a)
        rates_sq.append(float(d_sq) / a)
    # linear (or faster) growth: the per-area rate at the small patch is at least that of the large one
    assert rates[0] >= 0.5 * rates[1], (stat, rates)
    # and the squared sum, for contrast, loses most of its per-area sensitivity for the small patch
    if stat == "mean":
        assert rates_sq[0] < 0.5 * rates_sq[1], rates_sq


def test_colour_tap_zero_identical_positive_for_hue_rotation_finite_half():
    x = smooth_images(2, 64, 64, seed=7)
    lab = srgb_to_lab(x)
    assert lab.shape == x.shape and lab.dtype == torch.float32
    # a hue rotation: cycle the RGB channels (same luminance structure, different chroma)
    y = x[:, [1, 2, 0]]
    from invariant_lpips.features.pooled import map_statistics

    vector_stats = [s for s in STATISTICS if s not in MAP_STATISTICS]
    sx = map_statistics(srgb_to_lab(x), "lab", "lab", vector_stats)
    sy = map_statistics(srgb_to_lab(y), "lab", "lab", vector_stats)
    sx2 = map_statistics(srgb_to_lab(x.clone()), "lab", "lab", vector_stats)
    keys = list(sx)
    w = {k: torch.ones(3) for k in keys}
    same, _ = distance(sx, sx2, keys, w, "mean-spread", torch.ones(len(keys)))
    rotated, _ = distance(sx, sy, keys, w, "mean-spread", torch.ones(len(keys)))
    assert torch.all(same == 0)
    assert torch.all(rotated > 1e-3)
    for dtype in (torch.float16, torch.bfloat16):
        lab_h = srgb_to_lab(x.to(dtype))
        assert torch.isfinite(lab_h).all() and lab_h.dtype == torch.float32
        xr = x.to(dtype).requires_grad_(True)
        srgb_to_lab(xr).sum().backward()
        assert torch.isfinite(xr.grad).all()


def test_colour_tap_known_values():
    """White is L*=100, a*=b*=0; pure sRGB red is about (53.2, 80.1, 67.2) (CIE reference values)."""
    white = torch.ones(1, 3, 1, 1)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert torch.allclose(srgb_to_lab(white).flatten() * 100, torch.tensor([100.0, 0.0, 0.0]), atol=0.05)
    assert torch.allclose(srgb_to_lab(red).flatten() * 100, torch.tensor([53.24, 80.09, 67.20]), atol=0.1)


def test_stats_distance_finite_gradient_at_identity(trunk):
    x = smooth_images(1, 64, 64).requires_grad_(True)
    vector_stats = [s for s in STATISTICS if s not in MAP_STATISTICS]
    s0 = pooled_statistics(trunk, 2 * x - 1, POOL_TAPS, ("unit",), vector_stats, vector_stats)
    s1 = {k: v.detach() for k, v in s0.items()}
    keys = list(s0)
    d, _ = distance(s0, s1, keys, {k: torch.ones(v.shape[-1]) for k, v in s0.items()}, "mean-spread", torch.ones(len(keys)))
    assert float(d.detach()) == 0.0
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_combine_formulations():
    D = torch.tensor([[4.0, 9.0]])
    assert torch.allclose(get_formulation("weighted").combine(D)[0], torch.tensor([13.0]))
    assert torch.allclose(get_formulation("paper").combine(D, n_channels=13)[0], torch.tensor([1.0]))
    d, per = get_formulation("mean-spread").combine(D, torch.tensor([1.0, 2.0]))
    assert torch.allclose(d, torch.tensor([8.0]), atol=1e-5) and torch.allclose(per.sum(-1), d)
    with pytest.raises(ValueError, match="term_scales"):
        get_formulation("mean-spread").combine(D)
    with pytest.raises(ValueError, match="formulation"):
        get_formulation("nope")


def test_calibration_recovers_known_low_dimensional_weights():
    """Synthetic per-term norms with a known non-negative scale vector: the fit recovers its direction."""
    g = torch.Generator().manual_seed(0)
    P, K = 600, 12
    phi = torch.rand(P, K, generator=g, dtype=torch.float64) ** 2
    true = torch.tensor([0.0, 2.0, 0.5, 0.0, 1.0, 3.0, 0.2, 0.0, 0.7, 1.5, 0.0, 0.4], dtype=torch.float64)
    target = phi @ true + 0.01 * torch.randn(P, generator=g, dtype=torch.float64)
    groups = [f"ref{i % 20}" for i in range(P)]
    res = fit_weights(phi, target, groups, torch.ones(K, dtype=torch.float64),
                      FitConfig(loss="pearson", formulation="mean-spread", max_steps=3000, lr=0.05, weight_decay=0.0,
                                patience=400))
    w = res.weights.double()
    cos = float(w @ true / (w.norm() * true.norm()))
    assert cos > 0.99, (cos, w)
    assert (w >= 0).all()
    d = predict(phi, w, "mean-spread")
    assert float(torch.corrcoef(torch.stack([d, target]))[0, 1]) > 0.99


def test_stats_variant_requires_stats_formulation():
    from invariant_lpips.features.variants import register_variant

    with pytest.raises(ValueError, match="formulation 'mean-spread'"):
        register_variant(Variant(name="bad-x", formulation="weighted", statistics=("mean", "std")))
    with pytest.raises(ValueError, match="unknown statistics"):
        register_variant(Variant(name="bad-y", formulation="mean-spread", statistics=("kurtosis",)))
    with pytest.raises(ValueError, match="formulation must be one of"):
        Variant(name="bad-z", formulation="nope")


# ----------------------------------------------------------------------------- the texture formulation


def test_texture_terms_are_bounded_symmetric_and_zero_at_identity(trunk):
    x = smooth_images(2, 64, 64, seed=11)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    s0, s1 = _stats(trunk, x), _stats(trunk, y)
    keys = [f"raw.{st}.{t}" for st in ("mean", "std") for t in POOL_TAPS]
    w = {k: torch.rand(s0[k].shape[-1]) + 0.1 for k in keys}
    T = term_differences(s0, s1, keys, w, "texture")
    assert T.shape == (2, len(keys))
    assert (T >= 0).all() and (T <= 1).all()
    assert torch.allclose(T, term_differences(s1, s0, keys, w, "texture"))
    assert torch.equal(term_differences(s0, s0, keys, w, "texture"), torch.zeros_like(T))
    # the colour tap's terms stay squared differences
    lab = ["lab.mean.lab"]
    wl = {"lab.mean.lab": torch.ones(3)}
    assert torch.allclose(term_differences(s0, s1, lab, wl, "texture"), term_differences(s0, s1, lab, wl, "weighted"))


def test_texture_energy_floor_forgives_weak_channels_only():
    """kappa = 0 is DISTS' term; with a floor, a weak channel's large relative change costs little and a
    strong channel's change about as before; the term stays in [0, 1], symmetric, scale-free, 0 at identity,
    with a finite gradient at identity."""
    from invariant_lpips.features.formulations import TextureFormulation

    plain, floored = TextureFormulation(), TextureFormulation(0.3)
    w = torch.ones(4)
    a = torch.tensor([[1.0, 1.0, 1.0, 0.01]], dtype=torch.float64)
    weak = a.clone()
    weak[0, 3] = 0.002  # the weakest channel loses 80% (the finest channels under a slight blur)
    strong = a.clone()
    strong[0, 0] = 0.8  # a strong channel loses 20%
    key = "raw.std.pool1"
    assert float(plain.term_difference(key, a, a, w)) == 0.0 == float(floored.term_difference(key, a, a, w))
    assert float(plain.term_difference(key, a, weak, w)) > 0.1
    assert float(floored.term_difference(key, a, weak, w)) < 0.01 * float(plain.term_difference(key, a, weak, w))
    ratio = float(floored.term_difference(key, a, strong, w)) / float(plain.term_difference(key, a, strong, w))
    assert 0.5 < ratio <= 1.0
    for f in (plain, floored):
        t = f.term_difference(key, a, strong, w)
        assert 0 <= float(t) <= 1
        assert torch.allclose(t, f.term_difference(key, strong, a, w))
        assert torch.allclose(t, f.term_difference(key, 7 * a, 7 * strong, w))
    x = a.clone().requires_grad_(True)
    floored.term_difference(key, x, a, w).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert "kappa=0.3" in repr(floored)
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="energy floor kappa"):
            TextureFormulation(bad)


def test_texture_terms_grow_with_the_damaged_area(trunk):
    """The texture terms compare pooled statistics through a similarity ratio, so, like DISTS' and
    LPIPS' squared differences, they are quadratic in a small pooled difference: they grow monotonically
    with the damaged area ``a`` but, unlike the ``mean-spread`` norms, not linearly (measured in README)."""
    keys = [f"raw.{st}.{t}" for st in ("mean", "std") for t in POOL_TAPS]
    values = []
    for a in (1 / 256, 1 / 64, 1 / 16):
        x, y, _ = _patch_images(a)
        s0, s1 = _stats(trunk, x), _stats(trunk, y)
        w = {k: torch.ones(s0[k].shape[-1]) for k in keys}
        values.append(float(distance(s0, s1, keys, w, "texture", torch.ones(len(keys)))[0]))
    assert values[0] < values[1] < values[2], values


def test_texture_variant_gradient_at_identity_and_shipped_scales():
    from invariant_lpips import InvariantLPIPS
    from invariant_lpips.weights.linear import shipped_manifest

    m = InvariantLPIPS("texture-blur", trunk_weights=None)
    entry = shipped_manifest()["texture_blur.safetensors"]
    assert [round(float(s), 4) for s in m.scales] == [round(entry["scales"][t], 4) for t in m.terms]
    assert all(float(w.min()) == float(w.max()) == 1.0 for w in m.lins.values())
    x = smooth_images(1, 64, 64).requires_grad_(True)
    d = m(x, x.detach(), normalize=True)
    assert float(d.detach()) == 0.0
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
