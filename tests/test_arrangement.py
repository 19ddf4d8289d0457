"""Shift and arrangement probes (invariant_lpips.robustness.arrangement) and their operators."""
import pytest
import torch

from invariant_lpips.distortions.tensor import block_shuffle, jpeg_compress
from invariant_lpips.metric.registry import build_metric
from invariant_lpips.robustness.arrangement import PROBES, SUMMARY_KEYS, probe_distances, probe_images, probe_summary


def _photo(h=300, w=320, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 16, w // 16, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def test_block_shuffle_moves_every_block_and_keeps_the_pixels():
    x = torch.arange(4 * 4, dtype=torch.float32).view(1, 1, 4, 4).repeat(1, 3, 16, 16)  # 64x64, 16-px blocks
    x = x + torch.arange(64.0).view(1, 1, 64, 1) * 100 + torch.arange(64.0).view(1, 1, 1, 64) * 10000
    y = block_shuffle(x, 16, seed=3)
    assert y.shape == x.shape
    assert torch.equal(x.flatten().sort().values, y.flatten().sort().values)
    blocks = lambda t: t[0, 0].unfold(0, 16, 16).unfold(1, 16, 16).reshape(16, -1)  # noqa: E731
    bx, by = blocks(x), blocks(y)
    assert not any(torch.equal(bx[i], by[i]) for i in range(16))
    assert torch.equal(block_shuffle(x, 16, seed=3), y)
    with pytest.raises(ValueError, match="at least two"):
        block_shuffle(x, 64)


def test_jpeg_compress_is_a_close_image_of_the_same_shape():
    x = _photo(64, 64)
    y = jpeg_compress(x, 30)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert 0 < float((x - y).abs().mean()) < 0.05


def test_probe_images_are_what_the_docstring_says():
    photo = _photo()
    ims = probe_images(photo, 0, size=128)
    assert set(ims) == {"x", *PROBES} and all(t.shape == (1, 3, 128, 128) for t in ims.values())
    x = ims["x"]
    assert torch.equal(ims["shift1"][..., :-1], x[..., 1:])  # the photo cropped 1 px to the right
    assert torch.equal(ims["shift8"][..., :-8], x[..., 8:])
    assert torch.equal(ims["mirror"], x.flip(-1))
    assert float((ims["noise0.03"] - x).std()) > float((ims["noise0.02"] - x).std()) > 0
    with pytest.raises(ValueError, match="too small"):
        probe_images(photo, 0, size=316)


def test_summary_ratios_from_known_distances():
    rows = [dict(zip(PROBES, [1.0, 2.0, 8.0, 10.0, 20.0, 5.0, 40.0, 60.0])),
            dict(zip(PROBES, [3.0, 6.0, 9.0, 10.0, 10.0, 20.0, 30.0, 15.0]))]
    s = probe_summary(rows)
    assert list(s) == list(SUMMARY_KEYS)
    assert s["shift1/noise"] == pytest.approx((0.1 + 0.3) / 2)  # median of two
    assert s["mirror/noise"] == pytest.approx(min(40 / 20, 30 / 10))
    assert s["shuffle64/jpeg30"] == pytest.approx(min(60 / 5, 15 / 20))


def test_pixel_mse_does_not_forgive_shifts_and_similarities_are_refused():
    photos = [_photo(seed=i) for i in range(2)]
    mse = build_metric("mse")
    rows = probe_distances(mse, photos, size=128)
    assert len(rows) == 2 and set(rows[0]) == set(PROBES)
    # MSE: a shift of smooth content is cheap but grows with the shift; the mirror is expensive
    assert all(r["shift1"] < r["shift2"] < r["shift8"] for r in rows)
    assert all(r["mirror"] > r["noise0.03"] for r in rows)

    class Similarity:  # as the registry's PSNR/SSIM adapters say of themselves (piq is not a test dependency)
        name, lower_is_better = "a-similarity", False

        def __call__(self, x, y):
            return -((x - y) ** 2).mean(dim=(1, 2, 3))

    with pytest.raises(ValueError, match="similarity"):
        probe_distances(Similarity(), photos, size=128)
