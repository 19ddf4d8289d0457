"""Structure terms: coarse maps compared where things are (features/structure.py, the texture-structure
formulation and the default variant): arrangement, displacement, use as a loss."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from invariant_lpips import InvariantLPIPS
from invariant_lpips.features.formulations import get_formulation
from invariant_lpips.features.structure import coarse_map, compare_maps
from invariant_lpips.features.variants import DEFAULT_VARIANT, Variant, get_variant
from invariant_lpips.trunk.config import TrunkConfig

from helpers import photo_images, smooth_images


def _block_shuffle(x, block, seed=0):
    n, c, h, w = x.shape
    gh, gw = h // block, w // block
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(gh * gw, generator=g)
    while bool((perm == torch.arange(gh * gw)).any()):
        perm = torch.randperm(gh * gw, generator=g)
    b = x[..., :gh * block, :gw * block].reshape(n, c, gh, block, gw, block).permute(0, 2, 4, 1, 3, 5)
    b = b.reshape(n, gh * gw, c, block, block)[:, perm].reshape(n, gh, gw, c, block, block)
    return b.permute(0, 3, 1, 4, 2, 5).reshape(n, c, gh * block, gw * block)


# ---------------------------------------------------------------------------------------- the comparison
def test_compare_maps_zero_symmetric_bounded_and_broadcasting():
    torch.manual_seed(0)
    a, b = torch.rand(1, 8, 4, 5), torch.rand(3, 8, 4, 5)
    for cmp in ("centred", "uncentred"):
        assert torch.all(compare_maps(a, a, cmp) == 0)
        d = compare_maps(a, b, cmp)
        assert d.shape == (3,) and torch.all(d > 0) and torch.all(d <= 2)
        assert torch.allclose(d, compare_maps(b, a, cmp))
    # centred: blind to a per-channel offset (the pooled means carry it), not to a mirror
    assert float(compare_maps(a, a + 3.0, "centred")) < 1e-6
    assert float(compare_maps(a, a.flip(-1), "centred")) > 0.1
    # zero-weight channels do not count
    w = torch.zeros(8)
    w[0] = 1
    c = a.clone()
    c[:, 1:] = torch.rand(1, 7, 4, 5)
    assert float(compare_maps(a, c, "centred", w)) < 1e-6
    # different grids are compared on the smaller one
    assert compare_maps(torch.rand(2, 8, 6, 8), torch.rand(2, 8, 4, 5)).shape == (2,)
    with pytest.raises(ValueError, match="comparison"):
        compare_maps(a, a, "nope")


def test_coarse_map_needs_a_power_of_two_cell():
    with pytest.raises(ValueError, match="power of two"):
        coarse_map(torch.rand(1, 2, 8, 8), 4, 24)
    assert coarse_map(torch.rand(1, 2, 32, 48), 4, 32).shape == (1, 2, 4, 6)


def test_structure_cost_grows_with_displacement_random_trunk():
    """Crop shifts of a smooth image: the structure term of the coarse maps is non-decreasing in k."""
    torch.manual_seed(0)
    trunk = TrunkConfig(pooling="blurmax", taps=("pool3",)).build(weights=None)
    x = smooth_images(1, 160, 224, seed=4)
    costs = []
    with torch.no_grad():
        base = coarse_map(trunk(2 * x[..., :160, :160] - 1)["pool3"], 8, 32)
        for k in (0, 1, 2, 4, 8, 16, 32, 48):
            m = coarse_map(trunk(2 * x[..., :160, k:k + 160] - 1)["pool3"], 8, 32)
            costs.append(float(compare_maps(base, m)))
    assert costs[0] == 0
    assert all(b >= a for a, b in zip(costs, costs[1:])), costs
    assert costs[1] < 0.1 * costs[-1], costs


def test_other_formulations_refuse_maps_and_statistic_taps_are_checked():
    with pytest.raises(ValueError, match="texture-structure"):
        Variant("bad", "texture", TrunkConfig(pooling="blurmax"), ("mean", "coarse64"))
    with pytest.raises(ValueError, match="statistic_taps"):
        Variant("bad", "texture-structure", TrunkConfig(pooling="blurmax", taps=("pool1",)), ("mean", "coarse64"),
                statistic_taps=(("coarse64", ("pool5",)),))


def test_texture_structure_module_random_trunk_zero_gradient_broadcast():
    v = Variant("ts", "texture-structure", TrunkConfig(pooling="blurmax", taps=("pool1", "pool2", "pool3")),
                ("mean", "std", "coarse64"), ("mean", "std"),
                statistic_taps=(("coarse64", ("pool2", "pool3")),))
    torch.manual_seed(0)
    m = InvariantLPIPS(v, weights="ones", trunk_weights=None)
    x = smooth_images(1, 96, 128, seed=1)
    y = smooth_images(3, 96, 128, seed=2)
    with torch.no_grad():
        assert float(m(x, x, normalize=True)) == 0.0
        d = m(x, y, normalize=True)
    assert d.shape == (3, 1, 1, 1) and torch.all(d > 0)
    z = x.clone().requires_grad_(True)
    m(x, z, normalize=True).sum().backward()
    assert torch.isfinite(z.grad).all()
    _, per = m(x, y, normalize=True, retPerLayer=True)
    assert len(per) == len(v.terms())
    assert "raw.coarse64.pool3" in v.terms() and "raw.coarse64.pool1" not in v.terms()


def test_default_formulation_reads_maps():
    v = get_variant(DEFAULT_VARIANT)
    assert get_formulation(v.formulation).reads_maps
    assert any(".coarse" in t for t in v.terms())


# ---------------------------------------------------------------------------------------- the default, real weights
@pytest.fixture(scope="module")
def default_metric():
    return InvariantLPIPS()


@pytest.mark.slow
def test_default_sees_arrangement(default_metric):
    """Mirror and block shuffles cost more than a 2-px shift and more than faint noise, on every photo."""
    photos = photo_images(160)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for i in range(photos.shape[0]):
            x = photos[i:i + 1, :, :, :128]
            shifted = photos[i:i + 1, :, :, 2:130]
            noisy = (x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1)
            d = default_metric(x, torch.cat([shifted, noisy, x.flip(-1), _block_shuffle(x, 32, i)]),
                               normalize=True).flatten()
            assert float(d[2]) > max(float(d[0]), float(d[1])), d
            assert float(d[3]) > max(float(d[0]), float(d[1])), d


@pytest.mark.slow
def test_default_displacement_is_graded(default_metric):
    """d(x, x moved by k px) is non-decreasing in k on a smooth image, near zero at 1 px next to 32 px."""
    x = smooth_images(1, 128, 224, seed=3)
    with torch.no_grad():
        d = default_metric(x[..., :128, :128], torch.cat([x[..., :128, k:k + 128] for k in (0, 1, 2, 4, 8, 16, 32, 64)]),
                           normalize=True).flatten().tolist()
    assert d[0] == 0
    assert all(b >= a * 0.98 for a, b in zip(d, d[1:])), d
    assert d[1] < 0.2 * d[6], d


def _psnr(a, b):
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


def _lowpass_luma_corr(a, b):
    k = torch.exp(-torch.arange(-6, 7.0) ** 2 / 8)
    k = (k / k.sum()).view(1, 1, 1, -1)

    def lp(x):
        y = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
        y = F.conv2d(F.pad(y, (6, 6, 0, 0), mode="reflect"), k)
        y = F.conv2d(F.pad(y, (0, 0, 6, 6), mode="reflect"), k.transpose(-1, -2))
        return (y - y.mean()).flatten()

    la, lb = lp(a), lp(b)
    return float((la @ lb) / (la.norm() * lb.norm()))


def _descend(metric, x, y0, steps, lr):
    y = y0.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        metric(x, y, normalize=True).sum().backward()
        opt.step()
        with torch.no_grad():
            y.clamp_(0, 1)
    return y.detach()


@pytest.mark.slow
def test_default_as_a_loss(default_metric):
    """Descending the default restores a noisy copy (PSNR rises) and brings back the coarse layout from
    pure noise (the low-passed luminance correlates with the reference's)."""
    x = photo_images(128)[:1]
    g = torch.Generator().manual_seed(0)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    y = _descend(default_metric, x, noisy, steps=40, lr=0.01)
    assert _psnr(y, x) > _psnr(noisy, x) + 0.5
    start = torch.rand(x.shape, generator=g)
    y = _descend(default_metric, x, start, steps=60, lr=0.03)
    assert _lowpass_luma_corr(start, x) < 0.2
    assert _lowpass_luma_corr(y, x) > _lowpass_luma_corr(start, x) + 0.2
