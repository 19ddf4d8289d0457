"""InvariantLPIPS and LPIPS: properties, interface, input validation (random trunk: fast)."""
from __future__ import annotations

import pytest
import torch

import invariant_lpips as il
from invariant_lpips import LPIPS, InvariantLPIPS, list_variants
from invariant_lpips.features.variants import get_variant
from invariant_lpips.weights.linear import variant_notes

from helpers import smooth_images

VARIANTS = list_variants()


@pytest.fixture(scope="module")
def metrics():
    torch.manual_seed(0)
    out = {v: InvariantLPIPS(v, trunk_weights=None) for v in VARIANTS}
    out["lpips-vgg"] = LPIPS(trunk_weights=None)
    return out


@pytest.mark.parametrize("name", VARIANTS + ["lpips-vgg"])
def test_identity_symmetry_nonnegativity(metrics, images, name):
    m = metrics[name]
    x, y = images[:2], images[2:]
    with torch.no_grad():
        assert torch.allclose(m(x, x, normalize=True), torch.zeros(2, 1, 1, 1), atol=1e-7)
        dxy = m(x, y, normalize=True)
        dyx = m(y, x, normalize=True)
    assert dxy.shape == (2, 1, 1, 1)
    assert (dxy > 0).all()
    assert torch.allclose(dxy, dyx, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", VARIANTS + ["lpips-vgg"])
def test_gradients_finite_and_optimisation_reduces_distance(metrics, images, name):
    m = metrics[name]
    target = images[:1]
    x = images[1:2].clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    first = None
    for _ in range(5):
        d = m(x, target, normalize=True).sum()
        first = float(d.detach()) if first is None else first
        opt.zero_grad()
        d.backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    with torch.no_grad():
        assert float(m(x, target, normalize=True)) < first
    # the gradient at d(x, x) = 0 is finite too (no sqrt/normalisation singularity)
    z = target.clone().requires_grad_(True)
    m(z, target, normalize=True).sum().backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", VARIANTS + ["lpips-vgg"])
def test_batch_invariance(metrics, name):
    m = metrics[name]
    x = smooth_images(5, 64, 64, seed=1)
    y = smooth_images(5, 64, 64, seed=2)
    with torch.no_grad():
        full = m(x, y, normalize=True).flatten()
        single = torch.cat([m(x[i:i + 1], y[i:i + 1], normalize=True).flatten() for i in range(5)])
        swapped = m(torch.cat([x[3:], x[:3]]), torch.cat([y[3:], y[:3]]), normalize=True).flatten()
    assert torch.allclose(full, single, atol=1e-5)
    assert torch.allclose(full, torch.cat([swapped[2:], swapped[:2]]), atol=1e-5)


@pytest.mark.parametrize("name", VARIANTS + ["lpips-vgg"])
def test_reference_broadcast(metrics, name):
    m = metrics[name]
    ref = smooth_images(1, 64, 64, seed=3)
    dist = smooth_images(4, 64, 64, seed=4)
    with torch.no_grad():
        a = m(ref, dist, normalize=True)
        b = m(ref.expand(4, -1, -1, -1), dist, normalize=True)
        c = m(dist, ref, normalize=True)
    assert a.shape == (4, 1, 1, 1)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c, atol=1e-6)


def test_reference_features_computed_once(metrics):
    m = metrics["paper"]
    seen = []
    handle = m.net.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    try:
        with torch.no_grad():
            m(smooth_images(1, 64, 64), smooth_images(6, 64, 64, seed=5), normalize=True)
    finally:
        handle.remove()
    assert sorted(seen) == [1, 6]


@pytest.mark.parametrize("name", VARIANTS)
def test_different_sizes_allowed_for_invariant(metrics, name):
    """Pooled statistics compare images of different sizes; a registered variant (the default) compares
    positions after registration, so it refuses them with the reason, as lpips does."""
    m = metrics[name]
    x = smooth_images(1, 64, 96)
    y = smooth_images(2, 80, 72, seed=7)
    if m.variant.registered:
        with pytest.raises(ValueError, match="same size"):
            m(x, y, normalize=True)
        return
    with torch.no_grad():
        d = m(x, y, normalize=True)
    assert d.shape == (2, 1, 1, 1) and torch.isfinite(d).all()


def test_lpips_refuses_different_sizes(metrics):
    with pytest.raises(ValueError, match="equal sizes"):
        metrics["lpips-vgg"](smooth_images(1, 64, 64), smooth_images(1, 64, 80), normalize=True)


def test_grey_images_repeat_channel(metrics):
    m = metrics["paper"]
    g = smooth_images(2, 64, 64)[:, :1]
    with torch.no_grad():
        assert torch.allclose(m(g, g.flip(-1), normalize=True),
                              m(g.repeat(1, 3, 1, 1), g.flip(-1).repeat(1, 3, 1, 1), normalize=True))


def test_train_mode_does_not_change_outputs(metrics, images):
    m = metrics[VARIANTS[0]]
    with torch.no_grad():
        a = m(images[:2], images[2:], normalize=True)
        m.train()
        assert not m.net.training
        b = m(images[:2], images[2:], normalize=True)
        m.eval()
    assert torch.equal(a, b)
    assert not any(p.requires_grad for p in m.parameters())


def test_ret_per_layer_sums_to_total(metrics, images):
    for name in ("lpips-vgg", "gap-lin"):
        m = metrics[name]
        with torch.no_grad():
            total, layers = m(images[:2], images[2:], retPerLayer=True, normalize=True)
        assert len(layers) == 5
        assert torch.allclose(sum(layers), total, rtol=1e-5)


def test_lpips_spatial_map(images):
    m = LPIPS(spatial=True, trunk_weights=None)
    with torch.no_grad():
        d = m(images[:2], images[2:], normalize=True)
    assert d.shape == (2, 1, 64, 64)


def test_half_precision_no_nan(metrics, images):
    """LPIPS' eps=1e-10 underflows in fp16: our normalisation runs in float32."""
    for name in ("lpips-vgg", "gap-lin"):
        m = metrics[name]
        x = torch.zeros(1, 3, 64, 64)  # all-zero features: the eps case
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            d = m(x, images[:1], normalize=True)
        assert torch.isfinite(d).all()
        m16 = m  # float16 weights path: cast a copy
        assert torch.isfinite(m16(x, x, normalize=True)).all()


# ------------------------------------------------------------------ input validation
@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(3, 64, 64), r"\(N, 3, H, W\).*unsqueeze"),
        (torch.rand(1, 4, 64, 64), "3 \\(RGB\\) or 1"),
        (torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8), "integer dtype"),
        (torch.full((1, 3, 64, 64), float("nan")), "NaN or Inf"),
        (torch.rand(1, 3, 64, 64) * 255, r"\[0, 255\]: divide by 255"),
        (torch.rand(1, 3, 16, 64), "at least 32x32"),
        ([[1.0]], "torch.Tensor"),
    ],
)
def test_bad_inputs_have_clear_errors(metrics, bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        metrics["paper"](bad, torch.rand(1, 3, 64, 64), normalize=True)


def test_range_error_points_at_normalize(metrics):
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with pytest.raises(ValueError, match="pass normalize=False"):
        metrics["paper"](x, x, normalize=True)
    with pytest.raises(ValueError, match="255"):  # [0, 255] is far outside the tolerance band
        LPIPS(trunk_weights=None)(torch.rand(1, 3, 64, 64) * 255, torch.rand(1, 3, 64, 64), normalize=False)


def test_batch_mismatch_and_device_errors(metrics):
    with pytest.raises(ValueError, match="batch sizes differ"):
        metrics["paper"](torch.rand(2, 3, 64, 64), torch.rand(3, 3, 64, 64), normalize=True)
    meta = torch.rand(1, 3, 64, 64, device="meta")
    with pytest.raises((ValueError, TypeError, RuntimeError, NotImplementedError)):
        metrics["paper"](torch.rand(1, 3, 64, 64), meta, normalize=True)


def test_unknown_variant_lists_choices():
    with pytest.raises(ValueError, match="available"):
        InvariantLPIPS("nope", trunk_weights=None)


def test_variant_registry_and_docstrings():
    assert "paper" in VARIANTS and il.DEFAULT_VARIANT in VARIANTS
    for name in VARIANTS:
        notes = variant_notes(get_variant(name).name)  # prose and figures live in the weights manifest
        assert notes["invariance"] and notes["description"] and notes["relative_cost"] > 0


def test_weights_argument(tmp_path, images):
    from invariant_lpips.weights.linear import save_linear_weights

    w = {t: torch.rand(c) for t, c in zip(("pool1", "pool2", "pool3", "pool4", "pool5"),
                                          (64, 128, 256, 512, 512))}
    path = tmp_path / "mine.safetensors"
    save_linear_weights(path, w, variant="paper", data="test", loss="none")
    m = InvariantLPIPS("paper", weights=str(path), trunk_weights=None)
    assert torch.equal(m.lins["pool3"], w["pool3"])
    with pytest.raises(ValueError, match="negative"):
        InvariantLPIPS("paper", weights={k: -v for k, v in w.items()}, trunk_weights=None)
    with pytest.raises(ValueError, match="lack tap"):
        InvariantLPIPS("paper", weights={"pool1": w["pool1"]}, trunk_weights=None)


def test_the_package_exports_one_accessor():
    """One public way to get a metric by name, with one input convention: ``build_metric`` ([0, 1] in, (N,)
    out, any registry metric). The lpips-style classes stay; the module builder is private, get_metric gone."""
    import re

    import invariant_lpips.metric as metric_pkg
    from invariant_lpips.metric import registry

    accessor = re.compile(r"^(get|build|make|create|load|new)_(metric|module|model)s?$")
    assert [n for n in il.__all__ if accessor.match(n)] == ["build_metric"]
    assert [n for n in metric_pkg.__all__ if accessor.match(n)] == []
    assert {"InvariantLPIPS", "LPIPS"} <= set(il.__all__)
    assert il.build_metric is registry.build_metric
    for gone in ("get_metric", "build_module"):
        assert not hasattr(il, gone) and not hasattr(registry, gone)


def test_build_metric_builds_the_default_and_distance_keeps_its_own(monkeypatch):
    """``build_metric()`` is the default variant (``InvariantLPIPS()`` under the [0, 1] convention), new each
    call; casting it (or any module got elsewhere) does not change what ``il.distance`` computes (random
    trunks: fast)."""
    from invariant_lpips.metric import functional, registry

    real = registry._build_module

    def random_trunk(name=None, weights=None, device="cpu", **kwargs):
        return real(name, weights, device, trunk_weights=None, **kwargs)

    monkeypatch.setattr(registry, "_build_module", random_trunk)
    monkeypatch.setattr(functional, "_build_module", random_trunk)
    functional._private_module.cache_clear()
    try:
        m = il.build_metric()
        assert type(m.module) is InvariantLPIPS and m.module.variant.name == il.DEFAULT_VARIANT
        assert m.name == il.DEFAULT_VARIANT and il.build_metric() is not m
        x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
        before = il.distance(x, y, normalize=True)
        with torch.no_grad():
            torch.testing.assert_close(m(x, y), m.module(x, y, normalize=True).flatten())
            assert m(x, y).shape == (2,)
        m.half()
        il.build_metric().double()
        after = il.distance(x, y, normalize=True)
        assert after.dtype == torch.float32 and torch.equal(before, after)
        assert il.distance(x, y, normalize=True, reduction="sum") == before.sum()
    finally:
        functional._private_module.cache_clear()


def test_renamed_variants_still_build_with_a_warning():
    """'lpips' names the LPIPS baseline only: the GAP family is gap-lin*, the old names still resolve."""
    from invariant_lpips.features.variants import RENAMED, get_variant, list_variants
    from invariant_lpips.metric.registry import get_spec

    for old, new in RENAMED.items():
        assert old not in list_variants() and new in list_variants()
        with pytest.warns(FutureWarning, match=f"now called '{new}'"):
            assert get_variant(old) is get_variant(new)
    with pytest.raises(ValueError, match="'lpips-vgg' is the LPIPS-VGG baseline"):
        get_spec("lpips")
    assert {get_variant(n).formulation.name for n in list_variants()} >= {"weighted", "mean-spread", "mean-spread-sq"}
