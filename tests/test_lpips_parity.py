"""Golden-value tests: our LPIPS baseline against the official ``lpips`` package (real weights)."""
from __future__ import annotations

import pytest
import torch

from invariant_lpips import LPIPS, InvariantLPIPS
from invariant_lpips.trunk import VGG16Trunk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def official(vgg_state):
    lpips = pytest.importorskip("lpips")
    # pnet_rand=True: build without torchvision's download; load the same ImageNet weights
    ref = lpips.LPIPS(net="vgg", version="0.1", pnet_rand=True, verbose=False)
    for sl in (ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5):
        for name, mod in sl.named_children():
            if isinstance(mod, torch.nn.Conv2d):
                mod.weight.data.copy_(vgg_state[f"{name}.weight"])
                mod.bias.data.copy_(vgg_state[f"{name}.bias"])
    return ref.eval()


@pytest.fixture(scope="module")
def ours(vgg_state):
    return LPIPS(trunk_weights=vgg_state).eval()


def test_parity_non_spatial(official, ours, photos):
    x, y = photos, photos.flip(0)
    noisy = (photos + 0.05 * torch.randn(photos.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    with torch.no_grad():
        for a, b in ((x, y), (x, noisy)):
            d_ref = official(a, b, normalize=True)
            d_ours = ours(a, b, normalize=True)
            assert torch.allclose(d_ours, d_ref, atol=1e-5), (d_ours.flatten(), d_ref.flatten())
            d_ref_pm = official(a * 2 - 1, b * 2 - 1)
            assert torch.allclose(ours(a * 2 - 1, b * 2 - 1), d_ref_pm, atol=1e-5)


def test_parity_spatial_and_per_layer(official, vgg_state, photos):
    lpips = pytest.importorskip("lpips")
    ref_sp = lpips.LPIPS(net="vgg", version="0.1", pnet_rand=True, spatial=True, verbose=False)
    ref_sp.net.load_state_dict(official.net.state_dict())
    ours_sp = LPIPS(spatial=True, trunk_weights=vgg_state)
    a, b = photos[:2], photos[1:]
    with torch.no_grad():
        v_ref, layers_ref = ref_sp(a, b, retPerLayer=True, normalize=True)
        v_ours, layers_ours = ours_sp(a, b, retPerLayer=True, normalize=True)
    assert v_ours.shape == v_ref.shape == (2, 1, 96, 96)
    assert torch.allclose(v_ours, v_ref, atol=1e-5)
    for lo, lr in zip(layers_ours, layers_ref):
        assert torch.allclose(lo, lr, atol=1e-5)


def test_trunk_taps_equal_torchvision(vgg_state, photos):
    import torchvision

    tv = torchvision.models.vgg16(weights=None).features.eval()
    tv.load_state_dict(vgg_state)
    trunk = VGG16Trunk(weights=vgg_state, taps=("relu3_3", "pool5"))
    x = photos[:1] * 2 - 1
    with torch.no_grad():
        ours = trunk(x)
        ref = tv(x)
        ref_mid = tv[:16](x)
    # channels-last convolutions sum in another order: compare relative to activations of O(10)
    assert torch.allclose(ours["pool5"], ref, rtol=1e-4, atol=1e-4)
    assert torch.allclose(ours["relu3_3"], ref_mid, rtol=1e-4, atol=1e-4)


def test_real_weights_sanity(vgg_state, photos):
    """Real weights: distances grow with noise level for every variant."""
    from invariant_lpips import list_variants

    g = torch.Generator().manual_seed(1)
    noise = torch.randn(photos.shape, generator=g)
    for name in list_variants():
        m = InvariantLPIPS(name, trunk_weights=vgg_state)
        with torch.no_grad():
            d = [float(m(photos, (photos + s * noise).clamp(0, 1), normalize=True).mean()) for s in (0.02, 0.1)]
        assert 0 < d[0] < d[1], name
