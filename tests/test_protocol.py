"""The one metric protocol (invariant_lpips.metric.protocol): for every metric of the registry,
``distance(features(x), features(y))`` equals the metric's own forward within 1e-6, a registered variant
on a displaced pair included. Our metrics use a random trunk; the peers build the real VGG-16 (slow)."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from invariant_lpips import InvariantLPIPS, LPIPS
from invariant_lpips.features.variants import list_variants
from invariant_lpips.metric import peers
from invariant_lpips.metric.protocol import batch_size, cat, take
from invariant_lpips.weights.linear import LinearWeightsError
from invariant_lpips.metric.registry import MetricAdapter, _build_module, build_metric, get_spec, list_metrics

TOL = dict(rtol=0, atol=1e-6)


def _pair(n=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    y = (x + 0.15 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return x, y


def _ours(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    try:
        return _build_module(name, trunk_weights=None)
    except LinearWeightsError:  # a variant whose weights file is not shipped yet
        torch.manual_seed(0)
        return _build_module(name, trunk_weights=None, weights="ones")


OURS = ["lpips-vgg"] + list_variants()


@pytest.mark.parametrize("name", OURS)
def test_our_modules_forward_is_distance_of_features(name):
    m = _ours(name)
    x, y = _pair()
    a = MetricAdapter.for_module(get_spec(name), m)  # the registry's adapter: [0, 1] in, (N,) out
    with torch.no_grad():
        want = m(x, y, normalize=True).flatten()
        fx, fy = m.features(x, normalize=True), a.features(y)
        got = m.distance(fx, fy)
        assert got.shape == (2,) and batch_size(fx) == 2
        torch.testing.assert_close(got, want, **TOL)
        torch.testing.assert_close(a.distance(fx, fy), a(x, y), **TOL)
        # lpips' convention ([-1, 1] without normalize) gives the same features
        torch.testing.assert_close(m.distance(m.features(2 * x[:1] - 1), fy), m.distance(take(fx, [0]), fy), **TOL)
        # features are per image: a batch of one broadcasts, and selecting / concatenating rows commutes
        torch.testing.assert_close(m.distance(take(fx, [0]), fy), m(x[:1], y, normalize=True).flatten(), **TOL)
        swapped = m.distance(cat([take(fx, [1]), take(fx, [0])]), cat([take(fy, [1]), take(fy, [0])]))
        torch.testing.assert_close(swapped, want.flip(0), **TOL)


def test_statistics_cached_says_whether_features_are_statistics_only():
    assert MetricAdapter.for_module(get_spec("structure-blur"), _ours("structure-blur")).statistics_cached
    reg = _ours("registered-blur")
    assert not reg.statistics_cached and not MetricAdapter.for_module(get_spec("registered-blur"), reg).statistics_cached
    assert not MetricAdapter.for_module(get_spec("lpips-vgg"), _ours("lpips-vgg")).statistics_cached
    assert not build_metric("mse").statistics_cached and build_metric("mse").trunk is None


@pytest.mark.parametrize("variant", ["registered-blur", "registered-lab-blur", "registered-lab-q4-blur",
                                     "registered-lab-rq3-blur", "registered-lab-lq4-blur",
                                     "registered-lab-lq3-subpixel-blur"])
def test_registered_variant_on_a_displaced_pair(variant):
    """The pair step runs in distance(): a pair displaced by (3, -5) px is registered (a second trunk pass
    on the overlap) and gives the forward's value, also term by term (retPerLayer); cached statistics alone
    are refused with the reason."""
    m = _ours(variant)
    assert m.variant.registered
    g = torch.Generator().manual_seed(1)
    base = torch.rand(2, 3, 96, 96, generator=g)
    x = base[..., 8:88, 8:88]
    y = (base[..., 11:91, 3:83] + 0.02 * torch.randn(2, 3, 80, 80, generator=g)).clamp(0, 1)
    with torch.no_grad():
        want = m(x, y, normalize=True).flatten()
        shifts_forward = m.last_shifts.clone()
        fx, fy = m.features(x, normalize=True), m.features(y, normalize=True)
        assert "pair.image" in fx and any(k.startswith("pair.map.") for k in fx)
        got = m.distance(fx, fy)
        torch.testing.assert_close(got, want, **TOL)
        total, per_term = m.distance(fx, fy, retPerLayer=True)
        _, per_forward = m(x, y, normalize=True, retPerLayer=True)
        torch.testing.assert_close(total, want, **TOL)
        assert len(per_term) == len(m.terms) and all(t.shape == (2,) for t in per_term)
        for a, b in zip(per_term, per_forward):
            torch.testing.assert_close(a, b.flatten(), **TOL)
        torch.testing.assert_close(m.last_shifts, shifts_forward)
        assert (m.last_shifts.round().abs().sum(1) > 0).all()  # displaced: the overlap branch ran
        stats_only = {k: v for k, v in fx.items() if not k.startswith("pair.")}
        with pytest.raises(ValueError, match="registered terms"):
            m.distance(stats_only, stats_only)


def _installed(name: str) -> bool:
    return importlib.util.find_spec(peers.PEER_PACKAGES[name][0]) is not None


#: each peer's own forward on [0, 1] inputs, (N,)
def _own(name, module, x, y):
    if name in ("lpips-pkg", "stlpips-vgg"):
        return module(x, y, normalize=True).reshape(-1)
    if name == "dists":
        return module(x, y, batch_average=False).reshape(-1)
    import piq  # only the light peers are piq's; lpips-pkg runs where piq is absent (CI installs .[test])

    if name == "ssim":
        return 1 - piq.ssim(x, y, data_range=1.0, reduction="none")
    if name == "ms-ssim":
        return 1 - piq.multi_scale_ssim(x, y, data_range=1.0, reduction="none")
    return piq.psnr(x, y, data_range=1.0, reduction="none")


PIXEL = {"mse": lambda x, y: ((x - y) ** 2).mean(dim=(1, 2, 3)), "l1": lambda x, y: (x - y).abs().mean(dim=(1, 2, 3))}
LIGHT_PEERS = ["ssim", "ms-ssim", "psnr"]
VGG_PEERS = ["lpips-pkg", "dists", "stlpips-vgg"]


def test_every_registry_metric_is_covered():
    assert set(list_metrics(installed_only=False)) == set(OURS) | set(PIXEL) | set(LIGHT_PEERS) | set(VGG_PEERS)


@pytest.mark.parametrize("name", list(PIXEL))
def test_pixel_metrics(name):
    a = build_metric(name)
    x, y = _pair()
    torch.testing.assert_close(a.distance(a.features(x), a.features(y)), PIXEL[name](x, y), **TOL)
    torch.testing.assert_close(a(x[:1], y), PIXEL[name](x[:1].expand(2, -1, -1, -1), y), **TOL)


def _check_peer(name, size):
    if not _installed(name):
        pytest.skip(f"{peers.PEER_PACKAGES[name][1]} not installed")
    a = build_metric(name)
    x, y = _pair(size=size)
    with torch.no_grad():
        want = _own(name, a.module, x, y)
        torch.testing.assert_close(a.distance(a.features(x), a.features(y)), want, **TOL)
        torch.testing.assert_close(a(x, y), want, **TOL)


@pytest.mark.parametrize("name", LIGHT_PEERS)
def test_light_peers(name):
    _check_peer(name, 176)  # MS-SSIM needs 161 px


@pytest.mark.slow
@pytest.mark.parametrize("name", VGG_PEERS)
def test_vgg_peers(name):
    _check_peer(name, 64)


def test_modules_are_our_classes():
    assert isinstance(_ours("lpips-vgg"), LPIPS) and isinstance(_ours("structure-blur"), InvariantLPIPS)
