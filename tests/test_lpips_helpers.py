"""lpips' module-level helpers: same signatures and results as lpips 0.1.4's, under both namespaces.

``import invariant_lpips as lpips`` has the helpers and keeps the package's own ``load_image`` (a tensor);
``import invariant_lpips.lpips_compat as lpips`` has lpips' ``load_image`` (an (H, W, 3) uint8 array).
No network, no VGG weights.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

import invariant_lpips
import invariant_lpips.lpips_compat as compat

lpips_pkg = pytest.importorskip("lpips")

HELPERS = ["im2tensor", "tensor2im", "normalize_tensor", "spatial_average", "upsample", "l2", "psnr", "dssim"]
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "coffee.png"


def _image(seed: int, h: int = 24, w: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", HELPERS)
@pytest.mark.parametrize("namespace", [invariant_lpips, compat], ids=["invariant_lpips", "lpips_compat"])
def test_helper_signatures_match_lpips(namespace, name):
    ours = inspect.signature(getattr(namespace, name))
    theirs = inspect.signature(getattr(lpips_pkg, name))
    assert list(ours.parameters) == list(theirs.parameters)
    for p in theirs.parameters.values():
        assert ours.parameters[p.name].default == p.default, (name, p.name)


def test_load_image_signature_and_namespaces():
    assert list(inspect.signature(compat.load_image).parameters) == list(
        inspect.signature(lpips_pkg.load_image).parameters)
    # the package's own load_image is not shadowed: a (1, 3, H, W) tensor in [0, 1]
    assert invariant_lpips.load_image is not compat.load_image
    t = invariant_lpips.load_image(EXAMPLE)
    assert isinstance(t, torch.Tensor) and t.shape[:2] == (1, 3) and float(t.max()) <= 1
    assert set(compat.__all__) >= set(HELPERS) | {"LPIPS", "InvariantLPIPS", "load_image"}


def test_im2tensor_and_tensor2im_equal_lpips():
    img = _image(0)
    ours, theirs = invariant_lpips.im2tensor(img), lpips_pkg.im2tensor(img)
    assert ours.dtype == theirs.dtype == torch.float32 and ours.shape == theirs.shape == (1, 3, 24, 40)
    assert torch.equal(ours, theirs)
    for kwargs in ({}, {"cent": 0.0, "factor": 255.0}):
        assert torch.equal(invariant_lpips.im2tensor(img, **kwargs), lpips_pkg.im2tensor(img, **kwargs))
    t = torch.rand(2, 3, 24, 40) * 2 - 1
    for kwargs in ({}, {"imtype": np.float32}, {"cent": 0.0, "factor": 255.0}):
        a, b = invariant_lpips.tensor2im(t, **kwargs), lpips_pkg.tensor2im(t, **kwargs)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(invariant_lpips.tensor2im(lpips_pkg.im2tensor(img)), lpips_pkg.tensor2im(lpips_pkg.im2tensor(img)))


def test_im2tensor_accepts_the_packages_load_image_tensor():
    """``lpips.im2tensor(lpips.load_image(p))`` after ``import invariant_lpips as lpips`` gives lpips' tensor."""
    from PIL import Image

    reference = lpips_pkg.im2tensor(np.asarray(Image.open(EXAMPLE).convert("RGB")))
    via_ours = invariant_lpips.im2tensor(invariant_lpips.load_image(EXAMPLE))
    via_compat = compat.im2tensor(compat.load_image(EXAMPLE))
    assert torch.equal(via_compat, reference)
    assert torch.equal(via_ours, reference)  # 8-bit values: exactly lpips' tensor
    resized = invariant_lpips.load_image(EXAMPLE, size=(50, 70))  # not on the 8-bit grid: scaled as is
    assert torch.allclose(invariant_lpips.im2tensor(resized), resized * 2 - 1, atol=1e-6)


def test_compat_load_image_is_lpips_hwc_uint8(tmp_path):
    from PIL import Image

    arr = compat.load_image(str(EXAMPLE))
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    assert np.array_equal(arr, np.asarray(Image.open(EXAMPLE).convert("RGB")))
    grey = tmp_path / "grey.png"
    Image.fromarray(_image(1)[..., 0]).save(grey)
    g = compat.load_image(str(grey))
    assert g.shape == (24, 40, 3) and np.array_equal(g[..., 0], g[..., 2])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        compat.load_image(str(tmp_path / "missing.png"))


def test_tensor_helpers_equal_lpips():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 16, 5, 7, generator=g)
    assert torch.equal(invariant_lpips.normalize_tensor(feat), lpips_pkg.normalize_tensor(feat))
    assert torch.equal(invariant_lpips.normalize_tensor(feat, eps=0.5), lpips_pkg.normalize_tensor(feat, eps=0.5))
    assert torch.equal(invariant_lpips.normalize_tensor(feat.double()), lpips_pkg.normalize_tensor(feat.double()))
    from lpips.lpips import spatial_average as lp_avg, upsample as lp_up

    for keepdim in (True, False):
        assert torch.equal(invariant_lpips.spatial_average(feat, keepdim=keepdim), lp_avg(feat, keepdim=keepdim))
    assert torch.equal(invariant_lpips.upsample(feat), lp_up(feat))
    assert torch.equal(invariant_lpips.upsample(feat, out_HW=(11, 13)), lp_up(feat, out_HW=(11, 13)))
    assert torch.equal(invariant_lpips.upsample(feat, out_HW=torch.Size([20, 28])), lp_up(feat, out_HW=(20, 28)))


def test_array_metrics_equal_lpips():
    a, b = _image(2), _image(3)
    assert invariant_lpips.l2(a, b) == pytest.approx(lpips_pkg.l2(a, b), rel=1e-12)
    assert invariant_lpips.l2(a, b, range=1.0) == pytest.approx(lpips_pkg.l2(a, b, range=1.0), rel=1e-12)
    assert invariant_lpips.psnr(a, b) == pytest.approx(lpips_pkg.psnr(a, b), rel=1e-12)
    assert invariant_lpips.psnr(a, b, peak=1.0) == pytest.approx(lpips_pkg.psnr(a, b, peak=1.0), rel=1e-12)
    assert invariant_lpips.psnr(a, a) == float("inf")


def test_dssim_is_half_one_minus_ssim():
    skm = pytest.importorskip("skimage.metrics")
    a, b = _image(4, 32, 32), _image(5, 32, 32)
    ssim = skm.structural_similarity(a.astype(float), b.astype(float), data_range=255.0, channel_axis=-1)
    assert invariant_lpips.dssim(a, b) == pytest.approx((1 - ssim) / 2)
    assert invariant_lpips.dssim(a, a) == pytest.approx(0.0, abs=1e-12)


def test_helpers_explain_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(H, W, C\).*grey"):
        invariant_lpips.im2tensor(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        invariant_lpips.tensor2im(torch.zeros(3, 8, 8))
