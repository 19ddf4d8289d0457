"""The trunk's inference fast paths equal the eager reference (issue 12).

``backend="auto"`` (the default) runs each conv + ReLU as one oneDNN call and ``blurmax`` pooling
through :func:`fused_blurmax` when no gradient is wanted; ``backend="eager"`` runs the plain
layers. Every path that exists must give the eager float32 values within 1e-5.
"""
from __future__ import annotations

import pytest
import torch

from invariant_lpips import InvariantLPIPS, list_variants
from invariant_lpips.pooling.downsample import BlurMaxPool, fused_blurmax
from invariant_lpips.trunk import vgg16 as trunk_mod
from invariant_lpips.trunk.vgg16 import BACKENDS, POOL_TAPS, RELU_TAPS, VGG16Trunk

TOL = 1e-5


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.mark.parametrize("filter_size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shape", [(2, 5, 17, 23), (1, 3, 16, 16), (1, 2, 2, 5), (1, 4, 3, 3), (2, 6, 70, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_blurmax_equals_reference(filter_size, shape, channels_last):
    torch.manual_seed(0)
    x = torch.randn(*shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    pool = BlurMaxPool(filter_size, "reflect")
    pool.fused = False
    ref = pool(x)
    out = fused_blurmax(x, pool.blur.kernel)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 1e-6


def test_blurmax_takes_fused_path_only_without_gradient(monkeypatch):
    from invariant_lpips.pooling import downsample

    calls = []
    real = downsample.fused_blurmax
    monkeypatch.setattr(downsample, "fused_blurmax", lambda *a: calls.append(1) or real(*a))
    pool = BlurMaxPool(3, "reflect")
    x = torch.rand(1, 2, 8, 8)
    with torch.no_grad():
        pool(x)
    assert len(calls) == 1
    xg = x.clone().requires_grad_()
    pool(xg).sum().backward()  # the differentiable path
    assert len(calls) == 1 and xg.grad is not None and torch.isfinite(xg.grad).all()
    pool.fused = False
    with torch.no_grad():
        pool(x)
    assert len(calls) == 1


@pytest.mark.parametrize("pooling", ["blurmax", "max", "l2", "aps", "polyphase"])
@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_trunk_auto_equals_eager(pooling, padding_mode):
    torch.manual_seed(0)
    trunk = VGG16Trunk(weights=None, pooling=pooling, padding_mode=padding_mode, taps=POOL_TAPS + RELU_TAPS)
    x = torch.randn(2, 3, 64, 96)
    trunk.backend = "eager"
    with torch.no_grad():
        ref = trunk(x)
    trunk.backend = "auto"
    with torch.inference_mode():
        out = trunk(x)
    assert set(out) == set(ref)
    for tap in ref:
        assert out[tap].shape == ref[tap].shape
        assert _rel(out[tap], ref[tap]) <= TOL, tap


def test_fused_conv_relu_is_used_and_falls_back(monkeypatch):
    trunk = VGG16Trunk(weights=None, pooling="blurmax", taps=("pool2",))
    x = torch.randn(1, 3, 32, 32)
    if not trunk_mod._HAS_CONV_POINTWISE:
        pytest.skip("this PyTorch build has no oneDNN pointwise convolution")
    with torch.no_grad():
        ref = trunk(x)["pool2"]

    def broken(*a, **k):
        raise RuntimeError("op gone")

    class _Ops:
        _convolution_pointwise = staticmethod(broken)

    monkeypatch.setattr(trunk_mod.torch.ops, "mkldnn", _Ops())
    with torch.no_grad():
        out = trunk(x)["pool2"]  # falls back to conv + relu, same values
    assert trunk_mod._HAS_CONV_POINTWISE is False
    assert _rel(out, ref) <= TOL
    monkeypatch.setattr(trunk_mod, "_HAS_CONV_POINTWISE", True)


def test_gradients_use_the_eager_path_and_match():
    torch.manual_seed(0)
    m = InvariantLPIPS(trunk_weights=None)
    x = torch.rand(2, 3, 64, 64)
    y = torch.rand(2, 3, 64, 64)
    xa = x.clone().requires_grad_()
    m(xa, y, normalize=True).sum().backward()
    m.net.backend = "eager"
    xe = x.clone().requires_grad_()
    m(xe, y, normalize=True).sum().backward()
    assert torch.equal(xa.grad, xe.grad)


@pytest.mark.parametrize("variant", list_variants())
def test_every_variant_auto_equals_eager(variant):
    torch.manual_seed(0)
    x = torch.rand(3, 3, 64, 64)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    m = InvariantLPIPS(variant, trunk_weights=None, backend="eager")
    with torch.no_grad():
        ref = m(x, y, normalize=True)
    m.net.backend = "auto"
    with torch.inference_mode():
        out = m(x, y, normalize=True)
    assert _rel(out, ref) <= TOL


def test_backend_argument_is_checked():
    with pytest.raises(ValueError, match="backend must be one of"):
        InvariantLPIPS(trunk_weights=None, backend="turbo")
    assert BACKENDS == ("auto", "eager")
    assert InvariantLPIPS(trunk_weights=None).net.backend == "auto"


@pytest.mark.slow
def test_real_weights_auto_equals_eager_on_photos(vgg_state, photos):
    """The shipped default with the real trunk on real photographs: fast path == eager within 1e-5."""
    m = InvariantLPIPS(trunk_weights=vgg_state, backend="eager")
    x, y = photos, photos.roll(1, 0)
    with torch.no_grad():
        ref = m(x, y, normalize=True)
    m.net.backend = "auto"
    with torch.inference_mode():
        out = m(x, y, normalize=True)
    assert _rel(out, ref) <= TOL
