"""Registration (the pair step of registered variants): displacement estimate, exact compensation,
the registered terms' formula, gradients where the estimate is ill-posed. Random trunk: no weights."""
import math

import pytest
import torch
import torch.nn.functional as F

from helpers import fourier_shift

from invariant_lpips.features.formulations import get_formulation
from invariant_lpips.features.registration import estimate_shift, overlap, shift_groups, whole_pixels
from invariant_lpips.features.variants import Variant, get_variant
from invariant_lpips.metric.invariant import InvariantLPIPS


def smooth_image(seed, h=96, w=128):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h, w, generator=g)
    k = torch.ones(3, 1, 5, 5) / 25
    x = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="circular"), k, groups=3)
    return (x - x.min()) / (x.max() - x.min())


def registered_variant(**changes):
    base = get_variant("structure-blur")
    v = Variant("registered-test", "texture-structure-registered",
                base.trunk.with_(taps=("relu1_2", "pool1", "relu2_2", "pool2")), ("mean", "std", "coarse64"),
                ("mean", "std"), statistic_taps=(("mean", ("pool1", "pool2")), ("std", ("pool1", "pool2")),
                                                 ("coarse64", ("pool1",))),
                registered=("unit.reg.relu1_2", "unit.reg.relu2_2", "lab.reg.lab", "lab4.reg.lab"))
    return v.with_(**changes) if changes else v


@pytest.mark.parametrize("dy,dx", [(0.3, -1.7), (2.5, 0.25), (-3.14, 4.9), (7.2, -6.6), (0.0, 0.0)])
def test_subpixel_shift_estimated_within_a_tenth_of_a_pixel(dy, dx):
    x = smooth_image(0)
    d = estimate_shift(x, fourier_shift(x, dy, dx))
    assert d.shape == (1, 2)
    assert abs(float(d[0, 0]) - dy) <= 0.1 and abs(float(d[0, 1]) - dx) <= 0.1


def test_crop_shift_of_a_photo_like_image_is_found_in_whole_pixels():
    big = smooth_image(1, 160, 160)
    a = big[..., 20:148, 20:148]
    for dy, dx in [(3, -2), (0, 1), (-5, 5)]:
        b = big[..., 20 - dy:148 - dy, 20 - dx:148 - dx]
        assert whole_pixels(estimate_shift(a, b)) == [(dy, dx)]


def test_shift_beyond_the_range_and_unrelated_images_are_not_undone():
    x = smooth_image(2)
    assert whole_pixels(estimate_shift(x, torch.roll(x, (3, 3), (2, 3)), max_shift=0)) == [(0, 0)]
    noise = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(5))
    d = estimate_shift(x, noise)
    assert d.abs().max() <= 8


def test_estimate_needs_equal_sizes():
    with pytest.raises(ValueError, match="same size"):
        estimate_shift(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 40))


def test_overlap_is_exact_and_groups_put_zero_first():
    x = torch.rand(2, 3, 20, 24)
    y = torch.roll(x, (2, -3), (2, 3))
    a, b = overlap(x, y, (2, -3))
    assert a.shape == b.shape == (2, 3, 18, 21)
    assert torch.equal(a[..., :, 3:], b[..., :, 3:]) or torch.allclose(a, b)
    assert [d for d, _ in shift_groups([(1, 0), (0, 0), (1, 0)])] == [(0, 0), (1, 0)]
    with pytest.raises(ValueError, match="no overlap"):
        overlap(x, y, (20, 0))


def test_registered_formula_zero_at_equal_maps_and_positive_otherwise():
    f = get_formulation("texture-structure-registered")
    a, b = torch.rand(2, 8, 5, 6), torch.rand(2, 8, 5, 6)
    w = torch.ones(8)
    assert torch.equal(f.term_difference("unit.reg.relu1_2", a, a, w), torch.zeros(2))
    assert bool((f.term_difference("unit.reg.relu1_2", a, b, w) > 0).all())
    lab = torch.rand(1, 3, 4, 4)  # CIELab / 100, as features.colour.srgb_to_lab gives it
    assert f.term_difference("lab.reg.lab", lab, lab + 0.1, torch.ones(3)).item() == pytest.approx(0.01, rel=1e-4)
    with pytest.raises(ValueError, match="space must be"):
        f.term_difference("raw.reg.pool1", a, b, w)


def test_low_passed_lab_term_compares_block_means_weighted_by_their_pixels():
    f = get_formulation("texture-structure-registered")
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 6, 5, generator=g), torch.rand(2, 3, 6, 5, generator=g)
    w = torch.tensor([1.0, 2.0, 0.5])
    want = torch.zeros(2)
    for y0 in (0, 4):  # 4 x 4 blocks of a 6 x 5 map: partial blocks at the far edges, counted by their pixels
        for x0 in (0, 4):
            da = (a[..., y0:y0 + 4, x0:x0 + 4] - b[..., y0:y0 + 4, x0:x0 + 4]).mean(dim=(-2, -1))  # (2, 3)
            n = a[0, 0, y0:y0 + 4, x0:x0 + 4].numel()
            want += n * (w * da * da).sum(-1)
    want /= 30 * w.sum()
    assert torch.allclose(f.term_difference("lab4.reg.lab", a, b, w), want, rtol=1e-5)
    # a uniform change costs as in pixels; independent pixel noise about 1 / s^2 of it
    assert f.term_difference("lab4.reg.lab", a, a + 0.1, w).mean().item() == pytest.approx(0.01, rel=1e-4)
    big = torch.rand(4, 3, 64, 64, generator=g)
    noisy = big + 0.05 * torch.randn(big.shape, generator=g)
    ratio = f.term_difference("lab4.reg.lab", big, noisy, w) / f.term_difference("lab.reg.lab", big, noisy, w)
    assert bool(((ratio > 1 / 16 / 1.5) & (ratio < 1 / 16 * 1.5)).all()), ratio
    with pytest.raises(ValueError, match="space must be"):
        f.term_difference("lab3.reg.lab", a, b, w)


def test_pooling_exponent_weighs_a_few_large_changes_more_than_a_thin_spread():
    from invariant_lpips.features.formulations import RegisteredFormulation

    f1, f2 = get_formulation("texture-structure-registered"), RegisteredFormulation(exponent=2.0)
    a = torch.zeros(1, 3, 8, 8)
    sparse, spread = a.clone(), a + 0.125          # the same sum of squared differences: 4 px by 0.5, 64 px by 0.125
    sparse[..., :2, :2] = 0.5
    w = torch.ones(3)
    for key in ("lab.reg.lab", "lab4.reg.lab"):
        m2 = f2.pair_value(f2.term_difference(key, a, sparse, w))
        e = ((sparse - a) ** 2).mean(1)[0] if key == "lab.reg.lab" else None
        if e is not None:
            assert m2.item() == pytest.approx(float((e ** 2).mean().sqrt()), rel=1e-5)
    assert f1.term_difference("lab.reg.lab", a, sparse, w).item() == pytest.approx(
        f1.term_difference("lab.reg.lab", a, spread, w).item(), rel=1e-5)
    ratio = lambda f: float(f.pair_value(f.term_difference("lab.reg.lab", a, sparse, w))
                            / f.pair_value(f.term_difference("lab.reg.lab", a, spread, w)))
    assert ratio(f1) == pytest.approx(1.0, rel=1e-5) and ratio(f2) == pytest.approx(4.0, rel=1e-4)
    assert "q=2" in repr(f2) and f1.pair_value(torch.tensor([0.5])).item() == 0.5
    for bad in (0.5, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="pooling exponent"):
            RegisteredFormulation(exponent=bad)


def test_per_term_exponent_pools_only_the_named_term():
    from invariant_lpips.features.formulations import RegisteredFormulation

    plain, both, lab_only = (RegisteredFormulation(), RegisteredFormulation(exponent=2.0),
                             RegisteredFormulation(exponents={"lab.reg.lab": 2.0}))
    a = torch.zeros(1, 3, 8, 8)
    b = a.clone()
    b[..., :2, :2] = 0.5
    w = torch.ones(3)
    value = lambda f, key: float(f.pair_value(f.term_difference(key, a, b, w), key))
    assert value(lab_only, "lab.reg.lab") == pytest.approx(value(both, "lab.reg.lab"), rel=1e-6)
    assert value(lab_only, "unit.reg.relu1_2") == pytest.approx(value(plain, "unit.reg.relu1_2"), rel=1e-6)
    assert value(lab_only, "lab.reg.lab") != pytest.approx(value(plain, "lab.reg.lab"), rel=1e-3)
    assert "lab.reg.lab:q=2" in repr(lab_only) and " q=" not in repr(lab_only)
    with pytest.raises(ValueError, match="not a registered term"):
        RegisteredFormulation(exponents={"raw.mean.pool1": 2.0})
    with pytest.raises(ValueError, match="pooling exponent"):
        RegisteredFormulation(exponents={"lab.reg.lab": 0.5})


def test_variant_refuses_registered_terms_it_cannot_compute():
    with pytest.raises(ValueError, match="registered term"):
        registered_variant(registered=("unit.reg.pool3",))
    with pytest.raises(ValueError, match="lab<s>.reg.lab"):
        registered_variant(registered=("lab3.reg.lab",))
    with pytest.raises(ValueError, match="need a formulation"):
        Variant("x", "texture-structure", get_variant("structure-blur").trunk, ("mean",),
                registered=("lab.reg.lab",))


def registered_metric(exponent):
    from invariant_lpips.features.formulations import RegisteredFormulation

    torch.manual_seed(0)
    return InvariantLPIPS(variant=registered_variant(formulation=RegisteredFormulation(exponent=exponent)),
                          trunk_weights=None, weights="ones", padding_mode="circular")


@pytest.fixture(scope="module", params=[1.0, 2.0], ids=["mean", "q2"])
def metric(request):
    """The registered terms pooled as a mean, and with the Minkowski exponent 2."""
    return registered_metric(request.param)


@pytest.fixture(scope="module")
def mean_metric():
    """The registered terms pooled as a mean (as local_metric's)."""
    return registered_metric(1.0)


def test_circular_shift_costs_nothing_in_the_registered_terms(metric):
    x = smooth_image(3)
    y = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    shifted = torch.roll(x, (3, -2), (2, 3))
    n = len(metric.variant.registered)
    _, per_shift = metric(x, shifted, normalize=True, retPerLayer=True)
    assert whole_pixels(metric.last_shifts) == [(3, -2)]
    _, per_noise = metric(x, y, normalize=True, retPerLayer=True)
    reg_shift = sum(float(t) for t in per_shift[-n:])
    reg_noise = sum(float(t) for t in per_noise[-n:])
    assert reg_noise > 0
    assert reg_shift <= 1e-4 * reg_noise


def test_mirror_costs_more_than_a_small_shift(metric):
    x = smooth_image(4)
    d_shift = float(metric(x, torch.roll(x, (1, 1), (2, 3)), normalize=True))
    d_mirror = float(metric(x, x.flip(-1), normalize=True))
    assert d_mirror > 3 * d_shift


def test_batches_broadcast_and_mixed_shifts_match_one_by_one(metric):
    x = smooth_image(5)
    ys = torch.cat([torch.roll(x, (0, 0), (2, 3)), torch.roll(x, (2, 1), (2, 3)),
                    (x * 0.8 + 0.1), torch.roll(x * 0.9, (-1, 3), (2, 3))])
    batched = metric(x, ys, normalize=True).view(-1)
    single = torch.cat([metric(x, y[None], normalize=True).view(-1) for y in ys])
    assert torch.allclose(batched, single, atol=1e-6, rtol=1e-5)


def test_gradients_finite_for_identical_flat_and_shifted_images(metric):
    x = smooth_image(6)
    for a, b in [(x, x), (torch.full_like(x, 0.5), torch.full_like(x, 0.5)), (x, torch.roll(x, (2, 2), (2, 3))),
                 (torch.zeros_like(x), torch.zeros_like(x))]:
        y = a.clone().requires_grad_(True)
        metric(b, y, normalize=True).sum().backward()
        assert torch.isfinite(y.grad).all()


def test_registered_variant_needs_equal_sizes(metric):
    with pytest.raises(ValueError, match="same size"):
        metric(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 72), normalize=True)


def test_distance_from_pooled_alone_is_refused_with_the_reason(metric):
    x = torch.rand(1, 3, 64, 64)
    g = metric.pooled_features(x, normalize=True)
    with pytest.raises(ValueError, match="need both images"):
        metric.distance_from_pooled(g, g)


@pytest.mark.parametrize("variant,changes", [("registered-blur", {}), ("registered-lab-blur", {}),
                                             ("registered-lab-blur", {"local_radius": 2}),
                                             ("registered-lab-blur", {"registered": ("unit.reg.relu1_2", "lab8.reg.lab")}),
                                             ("registered-lab-blur", {"formulation": "q3", "local_radius": 2})])
def test_registered_terms_in_row_strips_equal_the_whole_image(variant, changes):
    """Big images without gradients: the statistics and the registered terms (relu1_2, and CIELab for the
    default; with local matching, which reads rows beyond a strip; CIELab block means, whose last block of
    rows is partial) in strips with a halo give the whole image's values (here strips forced on a small
    image)."""
    from invariant_lpips.features.formulations import RegisteredFormulation

    if changes.get("formulation") == "q3":  # Minkowski pooling: the strips' pooled means, then the root
        changes = {**changes, "formulation": RegisteredFormulation(exponent=3.0)}
    torch.manual_seed(0)
    m = InvariantLPIPS(variant=get_variant(variant).with_(**changes), trunk_weights=None)
    x = smooth_image(7, 200, 96)
    ys = torch.cat([torch.roll(x, (2, -1), (2, 3)), (x * 0.7 + 0.1), cell_jitter(x, 8, 2, seed=4)[0]])
    assert_strips_equal_whole(m, x, ys)


def assert_strips_equal_whole(m, x, ys):
    """Every term of ``m(x, ys)`` in row strips (forced on, 64 rows) equals the whole image's."""
    from invariant_lpips.features.tiling import tiling

    with torch.no_grad():
        _, whole = m(x, ys, normalize=True, retPerLayer=True)
        with tiling(tile_above_px=0, strip_rows=64):
            _, strips = m(x, ys, normalize=True, retPerLayer=True)
    for a, b in zip(whole, strips):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a.flatten(), b.flatten())


# --- local matching (a variant's local_radius > 0) -----------------------------------------------------------

def cell_jitter(x, cell, radius, seed):
    """``x`` with each ``cell`` px cell read ``d_k`` px away (|d| <= radius; circular), and the field used."""
    g = torch.Generator().manual_seed(seed)
    h, w = x.shape[-2:]
    field = torch.randint(-radius, radius + 1, (1, 2, h // cell, w // cell), generator=g)
    out = torch.empty_like(x)
    for i in range(h // cell):
        for j in range(w // cell):
            dy, dx = (int(v) for v in field[0, :, i, j])
            src = torch.roll(x, (-dy, -dx), (2, 3))
            out[..., i * cell:(i + 1) * cell, j * cell:(j + 1) * cell] = \
                src[..., i * cell:(i + 1) * cell, j * cell:(j + 1) * cell]
    return out, field


def test_local_field_recovers_per_cell_jitter_and_stays_zero_for_noise_and_flat_images():
    from invariant_lpips.features.registration import estimate_local

    x = smooth_image(11, 96, 128)
    y, field = cell_jitter(x, 16, 2, seed=0)
    est = estimate_local(y, x, radius=2, cell=16)  # anchored on y's cells: x(p + d) ~ y(p) = x(p + d_k)
    assert est.shape == (1, 2, 6, 8) and est.dtype == torch.int64
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # edge cells read across the wrap
    assert (est[inner] == field[inner]).float().mean() >= 0.9
    flat = torch.full_like(x, 0.5)
    assert estimate_local(flat, flat, 2).abs().sum() == 0
    assert estimate_local(x, x, 2).abs().sum() == 0
    assert estimate_local(x, y, 0).abs().sum() == 0


def test_warp_cells_reads_each_cell_at_its_displacement_with_replicated_edges():
    from invariant_lpips.features.registration import warp_cells

    m = torch.arange(2 * 8 * 8, dtype=torch.float32).view(1, 2, 8, 8)
    field = torch.zeros(1, 2, 2, 2, dtype=torch.int64)
    field[0, :, 0, 1] = torch.tensor([1, -1])   # top-right cell: one down, one left
    field[0, :, 1, 0] = torch.tensor([2, 0])    # bottom-left cell: two down (past the edge: replicated)
    out = warp_cells(m, field, cell=4)
    assert torch.equal(out[..., :4, :4], m[..., :4, :4])
    assert torch.equal(out[..., :4, 4:], m[..., 1:5, 3:7])
    assert torch.equal(out[..., 4:, :4], m[..., [6, 7, 7, 7], :4])
    # a stride-2 map (cells of 4 positions; displacements halved, rounded half to even: 1 px -> 0, 2 -> 1)
    half = warp_cells(m, field, cell=8, stride=2)
    assert torch.equal(half[..., :4, 4:], m[..., :4, 4:]) and torch.equal(half[..., 4:, :4], m[..., [5, 6, 7, 7], :4])
    # rows of a strip read from a map holding more rows
    part = warp_cells(m[..., 2:, :], field, cell=4, row0=4, src_row0=2, rows=4)
    assert torch.equal(part, out[..., 4:, :])


@pytest.fixture(scope="module")
def local_metric():
    torch.manual_seed(0)
    return InvariantLPIPS(variant=registered_variant(local_radius=2), trunk_weights=None, weights="ones",
                          padding_mode="circular")


def test_local_matching_forgives_cell_jitter_not_noise_mirror_or_shuffle(mean_metric, local_metric):
    metric = mean_metric
    x = smooth_image(12, 96, 128)
    y, _ = cell_jitter(x, 16, 2, seed=1)
    n = len(local_metric.variant.registered)
    reg = lambda m, a, b: sum(float(t) for t in m(a, b, normalize=True, retPerLayer=True)[1][-n:])
    noisy = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert reg(local_metric, x, y) < 0.35 * reg(metric, x, y)           # jitter: mostly forgiven
    assert reg(local_metric, x, noisy) > 0.9 * reg(metric, x, noisy)    # noise: not
    assert reg(local_metric, x, x.flip(-1)) > 0.8 * reg(metric, x, x.flip(-1))
    assert reg(local_metric, x, torch.roll(x, (3, -2), (2, 3))) <= 1e-4 * reg(local_metric, x, noisy)
    assert float(local_metric(x, x, normalize=True)) <= 1e-7


def test_local_matching_is_symmetric_broadcasts_and_has_finite_gradients(local_metric):
    x = smooth_image(13, 64, 96)
    y, _ = cell_jitter(x, 16, 2, seed=3)
    ys = torch.cat([y, x * 0.8 + 0.1, torch.roll(y, (1, 2), (2, 3))])
    with torch.no_grad():
        d_xy = local_metric(x, ys, normalize=True).view(-1)
        d_yx = torch.cat([local_metric(v[None], x, normalize=True).view(-1) for v in ys])
        single = torch.cat([local_metric(x, v[None], normalize=True).view(-1) for v in ys])
    assert torch.allclose(d_xy, d_yx, rtol=1e-5, atol=1e-7)
    assert torch.allclose(d_xy, single, rtol=1e-5, atol=1e-7)
    for a, b in [(x, x), (torch.full_like(x, 0.5), torch.full_like(x, 0.5)), (x, y)]:
        z = a.clone().requires_grad_(True)
        local_metric(b, z, normalize=True).sum().backward()
        assert torch.isfinite(z.grad).all()


def test_variant_refuses_a_bad_local_setting():
    with pytest.raises(ValueError, match="local_radius"):
        registered_variant(local_radius=-1)
    with pytest.raises(ValueError, match="local_cell"):
        registered_variant(local_radius=2, local_cell=3)  # relu2_2 and pool2 have strides 2 and 4


def test_local_field_does_not_explain_a_brightness_change_by_a_displacement():
    from invariant_lpips.features.registration import estimate_local

    x = smooth_image(15, 96, 128)
    for y in (x * 0.8 + 0.15, (x + 0.1).clamp(0, 1) * 0.9):
        assert estimate_local(x, y, 2).abs().sum() == 0


# --- sub-pixel compensation (a variant's subpixel=True) ------------------------------------------------------

def band_limited(dy=0.0, dx=0.0, h=64, w=80):
    """A sum of sinusoids below 0.15 cycles/px (3 channels), moved by (dy, dx) px: what an interpolator can
    shift accurately (the moved copy is evaluated, not resampled)."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64) - dy, torch.arange(w, dtype=torch.float64) - dx,
                            indexing="ij")
    img = torch.stack([torch.sin(2 * math.pi * (0.11 * xx + 0.03 * yy + c)) * torch.cos(2 * math.pi * 0.07 * yy)
                       + 0.5 * torch.sin(2 * math.pi * (0.05 * xx - 0.13 * yy) + c) for c in (0.0, 0.3, 0.6)])
    return (0.5 + 0.25 * img).float()[None]


def test_fractional_shift_moves_a_band_limited_image_and_zero_is_the_identity():
    from invariant_lpips.features.registration import fractional_shift

    x = band_limited()
    for t in [(0.4, -0.3), (-0.5, 0.5), (0.25, 0.0)]:
        moved = fractional_shift(x, torch.tensor([t]))
        err = (moved - band_limited(*t))[..., 4:-4, 4:-4].abs().max()
        assert float(err) < 0.01, (t, float(err))
    assert torch.allclose(fractional_shift(x, torch.zeros(1, 2)), x, atol=1e-6)
    y = x.clone().requires_grad_(True)
    fractional_shift(y, torch.tensor([[0.3, -0.2]])).sum().backward()
    assert torch.isfinite(y.grad).all() and float(y.grad.abs().sum()) > 0


@pytest.fixture(scope="module")
def subpixel_metrics():
    def build(sub):
        torch.manual_seed(0)
        return InvariantLPIPS(variant=registered_variant(subpixel=sub), trunk_weights=None, weights="ones",
                              padding_mode="circular")
    return build(False), build(True)


def test_subpixel_compensation_forgives_the_fraction_and_leaves_whole_pixel_pairs_alone(subpixel_metrics):
    plain, sub = subpixel_metrics
    n = len(plain.variant.registered)
    x = smooth_image(3)
    noisy = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    with torch.no_grad():
        def registered(m, y):
            return sum(float(t) for t in m(x, y, normalize=True, retPerLayer=True)[1][-n:])
        for dy, dx in [(0.5, -1.5), (2.3, 0.0)]:      # measured: 10x and 6x less with compensation
            y = fourier_shift(x, dy, dx)
            assert registered(sub, y) < 0.25 * registered(plain, y)
            assert registered(sub, y) < 0.25 * registered(sub, noisy)
        for y in (x, torch.roll(x, (3, -2), (2, 3)), noisy):   # no fraction: exactly as without compensation
            assert float(sub(x, y, normalize=True)) == float(plain(x, y, normalize=True))
        assert float(sub(x, x.flip(-1), normalize=True)) > 3 * float(sub(x, fourier_shift(x, 0.5, -1.5), normalize=True))


def test_subpixel_compensation_batches_like_one_by_one_and_has_finite_gradients(subpixel_metrics):
    _, sub = subpixel_metrics
    x = smooth_image(5)
    ys = torch.cat([x, fourier_shift(x, 0.5, 0.0), torch.roll(x, (2, 1), (2, 3)), fourier_shift(x, -1.4, 2.6),
                    x * 0.8 + 0.1])
    batched = sub(x, ys, normalize=True).view(-1)
    single = torch.cat([sub(x, y[None], normalize=True).view(-1) for y in ys])
    assert torch.allclose(batched, single, atol=1e-6, rtol=1e-5)
    for a, b in [(x, x), (torch.full_like(x, 0.5), torch.full_like(x, 0.5)), (x, fourier_shift(x, 0.5, -0.5))]:
        y = a.clone().requires_grad_(True)
        sub(b, y, normalize=True).sum().backward()
        assert torch.isfinite(y.grad).all()


def test_subpixel_compensation_in_row_strips_equals_the_whole_image():
    torch.manual_seed(0)
    m = InvariantLPIPS(variant=get_variant("registered-lab-blur").with_(subpixel=True), trunk_weights=None)
    x = smooth_image(7, 200, 96)
    ys = torch.cat([fourier_shift(x, 1.5, -0.5), fourier_shift(x, 0.4, 0.0), x * 0.7 + 0.1])
    assert_strips_equal_whole(m, x, ys)


# --- similarity registration (a variant's similarity=True) ----------------------------------------------------

def textured(h=224, w=224, seed=11):
    """A photo-like generated image: smoothed noise at two scales plus oriented edges (no ../shared)."""
    from helpers import smooth_images

    a = smooth_images(1, h, w, seed=seed)
    return (0.7 * a + 0.3 * smooth_image(seed, h, w)).clamp(0, 1)


def turned(x, angle, zoom=1.0):
    from invariant_lpips.features.similarity import similarity_warp

    return similarity_warp(x, torch.tensor([float(angle)]), torch.tensor([math.log(zoom)]), mode="bilinear")


@pytest.mark.parametrize("angle,zoom", [(2.0, 1.0), (-4.0, 1.0), (12.0, 1.0), (0.0, 1.01), (0.0, 0.97),
                                        (3.0, 1.05), (-1.0, 0.99)])
def test_similarity_estimated_within_a_tenth_of_a_degree_and_a_fifth_of_a_percent(angle, zoom):
    from invariant_lpips.features.similarity import estimate_similarity

    x = textured()
    est = estimate_similarity(x, turned(x, angle, zoom))
    assert est.shape == (1, 2)
    assert abs(float(est[0, 0]) - angle) <= 0.1, est
    assert abs(math.exp(float(est[0, 1])) - zoom) <= 0.002, est


def test_similarity_is_not_found_where_there_is_none():
    from invariant_lpips.features.similarity import estimate_similarity

    x = textured()
    g = torch.Generator().manual_seed(3)
    others = [x, torch.roll(x, (4, -3), (2, 3)), (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1),
              x.flip(-1), x.flip(-2), x * 0.7 + 0.2, torch.rand(x.shape, generator=g), torch.full_like(x, 0.5)]
    est = estimate_similarity(x, torch.cat(others))
    assert torch.equal(est, torch.zeros(len(others), 2)), est


def test_similarity_warp_identity_and_quarter_turn():
    from invariant_lpips.features.similarity import similarity_warp

    x = textured(64, 64)
    zero = torch.zeros(1)
    assert torch.allclose(similarity_warp(x, zero, zero), x, atol=1e-5)
    q = similarity_warp(x, torch.tensor([90.0]), zero)
    assert torch.allclose(q[..., 2:-2, 2:-2], torch.rot90(x, 1, (2, 3))[..., 2:-2, 2:-2], atol=1e-4)
    with pytest.raises(ValueError, match="0 < max_angle < 90"):
        from invariant_lpips.features.similarity import estimate_similarity
        estimate_similarity(x, x, max_angle=120)


@pytest.fixture(scope="module")
def similarity_metrics():
    def build(sim):
        torch.manual_seed(0)
        return InvariantLPIPS(variant=registered_variant(subpixel=True, similarity=sim), trunk_weights=None,
                              weights="ones", padding_mode="circular")
    return build(False), build(True)


def test_similarity_compensation_forgives_rotation_and_zoom_and_leaves_other_pairs_alone(similarity_metrics):
    plain, sim = similarity_metrics
    n = len(plain.variant.registered)
    x = textured()
    g = torch.Generator().manual_seed(1)
    noisy = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        def registered(m, y):
            return sum(float(t) for t in m(x, y, normalize=True, retPerLayer=True)[1][-n:])
        for angle, zoom in [(3.0, 1.0), (-8.0, 1.0), (0.0, 1.04)]:
            y = turned(x, angle, zoom)
            assert registered(sim, y) < 0.5 * registered(plain, y), (angle, zoom)
            assert registered(sim, y) < registered(sim, noisy), (angle, zoom)
        for y in (x, torch.roll(x, (3, -2), (2, 3)), fourier_shift(x, 0.5, -1.5), noisy, x * 0.8 + 0.1):
            assert float(sim(x, y, normalize=True)) == float(plain(x, y, normalize=True))
        assert float(sim(x, x.flip(-1), normalize=True)) > 2 * float(sim(x, turned(x, 3.0), normalize=True))


def test_similarity_compensation_batches_like_one_by_one_and_has_finite_gradients(similarity_metrics):
    _, sim = similarity_metrics
    x = textured()
    ys = torch.cat([x, turned(x, 3.0), torch.roll(x, (2, 1), (2, 3)), turned(x, -5.0, 1.03), x * 0.8 + 0.1])
    with torch.no_grad():
        batched = sim(x, ys, normalize=True).view(-1)
        single = torch.cat([sim(x, y[None], normalize=True).view(-1) for y in ys])
    assert torch.allclose(batched, single, atol=1e-6, rtol=1e-5)
    for a, b in [(x, x), (torch.full_like(x, 0.5), torch.full_like(x, 0.5)), (x, turned(x, 4.0))]:
        y = b.clone().requires_grad_(True)
        sim(a, y, normalize=True).sum().backward()
        assert torch.isfinite(y.grad).all()
    y = turned(x, 4.0).requires_grad_(True)
    sim(x, y, normalize=True).sum().backward()
    assert float(y.grad.abs().sum()) > 0


def test_similarity_variant_is_the_default_plus_similarity():
    from invariant_lpips.features.variants import DEFAULT_VARIANT

    v = get_variant("registered-lab-lq3-similarity-blur")
    assert v.similarity and v.with_(similarity=False, name=DEFAULT_VARIANT) == get_variant(DEFAULT_VARIANT) or \
        v.with_(similarity=True, name=v.name) == get_variant(DEFAULT_VARIANT).with_(similarity=True, name=v.name)
