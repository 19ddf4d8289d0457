"""Big images in row strips (features/tiling.py): the same statistics and distances as the whole image,
a warning with a memory estimate where strips cannot apply. Random trunk, no weights, no timing."""
from __future__ import annotations

import warnings

import pytest
import torch

from invariant_lpips import InvariantLPIPS
from invariant_lpips.features import tiling as tl
from invariant_lpips.features.pooled import pooled_statistics
from invariant_lpips.features.variants import get_variant
from invariant_lpips.trunk.config import TrunkConfig


def _image(h, w, seed):
    """A generated photo-like image in [-1, 1]: smooth blobs, edges and noise."""
    g = torch.Generator().manual_seed(seed)
    low = torch.nn.functional.interpolate(torch.rand(1, 3, h // 32 + 1, w // 32 + 1, generator=g), size=(h, w),
                                          mode="bicubic", align_corners=False)
    yy = torch.arange(h).view(-1, 1).float()
    edges = ((yy // 37 + torch.arange(w).view(1, -1) // 53) % 2).expand(1, 3, h, w)
    x = 0.6 * low + 0.25 * edges + 0.15 * torch.rand(1, 3, h, w, generator=g)
    return (2 * x - 1).clamp(-1, 1)


@pytest.fixture(scope="module")
def metric():
    torch.manual_seed(0)
    return InvariantLPIPS(trunk_weights=None)  # the default variant, random trunk


def test_strips_give_the_whole_image_distance(metric):
    """A generated 736x352 pair (odd-sized strips, a last partial strip): within 1e-5."""
    x, y = _image(736, 352, 1), _image(736, 352, 2)
    with torch.no_grad():
        whole = metric(x, y)
        with tl.tiling(tile_above_px=0, strip_rows=96):
            tiled = metric(x, y)
    assert torch.allclose(tiled, whole, rtol=1e-5, atol=1e-6), (tiled, whole)


@pytest.mark.parametrize("variant, h, w", [("structure-blur", 709, 300), ("texture-blur", 640, 200),
                                           ("gap-lin-ms", 600, 256)])
def test_strips_give_the_whole_image_statistics(variant, h, w):
    """Every statistic (means, spreads, coarse maps, CIELab) of a trunk that stops at pool2 or pool5."""
    v = get_variant(variant)
    torch.manual_seed(0)
    trunk = v.trunk.build(None)
    x = _image(h, w, 3)
    stats = v.statistics + (("local",) if "local" not in v.statistics and "coarse64" not in v.statistics else ())
    args = (trunk, x, v.taps, ("raw", "unit"), stats, v.colour_statistics)
    with torch.no_grad():
        with tl.tiling(tile_above_px=10 ** 9):
            whole = pooled_statistics(*args)
        tiled = tl.pooled_statistics_tiled(*args, policy=tl.TilingPolicy(tile_above_px=0, strip_rows=64))
    assert set(tiled) == set(whole)
    for k in whole:
        assert tiled[k].shape == whole[k].shape, k
        assert torch.allclose(tiled[k], whole[k], rtol=1e-5, atol=1e-6), (k, (tiled[k] - whole[k]).abs().max())


def test_pyramid_stream_equals_the_whole_pyramid():
    from invariant_lpips.features.structure import pyramid_down

    f = torch.randn(2, 5, 203, 17)
    whole = f
    for _ in range(4):
        whole = pyramid_down(whole)
    stream = tl.PyramidStream(4)
    for a in range(0, 203, 21):
        stream.push(f[..., a:a + 21, :], final=a + 21 >= 203)
    assert torch.allclose(stream.result(), whole, atol=1e-6)


def test_moments_merge_exactly():
    f = torch.randn(2, 4, 50, 9) * 3 + 1
    ms = tl.MomentStream(torch.float32)
    for a in range(0, 50, 7):
        ms.push(f[..., a:a + 7, :])
    assert torch.allclose(ms.mean(), f.mean(dim=(2, 3)), atol=1e-6)
    assert torch.allclose(ms.std(), f.std(dim=(2, 3), unbiased=False), atol=1e-5)


def test_large_image_with_gradients_warns_with_an_estimate(metric):
    x = _image(256, 256, 4).requires_grad_(True)
    with tl.tiling(tile_above_px=0, warn_above_bytes=10 ** 6), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metric(x, _image(256, 256, 5))
    hits = [w for w in caught if issubclass(w.category, tl.LargeImageWarning)]
    assert hits and "GiB" in str(hits[0].message) and "torch.no_grad()" in str(hits[0].message)
    assert hits[0].filename == __file__


def test_what_can_be_tiled():
    assert tl.tileable(TrunkConfig(pooling="blurmax", taps=("pool1", "pool2")).build(None))
    assert not tl.tileable(TrunkConfig(pooling="aps").build(None))
    assert not tl.tileable(TrunkConfig(pooling="blurmax", padding_mode="circular").build(None))
    assert tl.halo_px(TrunkConfig(pooling="blurmax", taps=("pool1", "pool2")).build(None)) % tl.ALIGN == 0
    with pytest.raises(ValueError, match="multiple of 32"):
        tl.strip_rows(None, torch.zeros(1, 3, 8, 8), tl.TilingPolicy(strip_rows=50))
