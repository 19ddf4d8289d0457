"""Errors and warnings a new user meets: advice that fits the range, shapes and devices with a fix, and
warnings reported at the user's own line (not inside this package or PyTorch). Random trunk, no weights."""
from __future__ import annotations

import warnings

import pytest
import torch

import invariant_lpips
from invariant_lpips import LPIPS, InvariantLPIPS, NormalizeWarning


@pytest.fixture(scope="module")
def metrics():
    return {"InvariantLPIPS": InvariantLPIPS("paper", pnet_rand=True), "LPIPS": LPIPS(net="vgg", pnet_rand=True)}


def _rand(*shape, lo=0.0, hi=1.0, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * (hi - lo) + lo


# ----------------------------------------------------------------------------- range advice
@pytest.mark.parametrize("name", ["InvariantLPIPS", "LPIPS"])
@pytest.mark.parametrize("x, normalize, match, not_match", [
    (_rand(1, 3, 48, 48, hi=255), True, r"\[0, 255\]: divide by 255", "normalize=False"),
    (_rand(1, 3, 48, 48, hi=255), False, r"\[0, 255\]: divide by 255 and pass normalize=True", None),
    (_rand(1, 3, 48, 48, hi=255).round(), True, r"\[0, 255\]: divide by 255", None),
    (_rand(1, 3, 48, 48, hi=4).round(), False, r"\[0, 255\]", None),  # a dark 8-bit image: whole numbers
    (_rand(1, 3, 48, 48, hi=60000), True, r"16-bit \[0, 65535\]: divide by 65535", None),
    (_rand(1, 3, 48, 48, lo=-1), True, r"\[-1, 1\]: pass normalize=False", "255"),
    (_rand(1, 3, 48, 48, lo=-3, hi=3), True, r"none of the ranges.*standardised", r"look like \[0, 255\]"),
    (_rand(1, 3, 48, 48, lo=-3, hi=3), False, r"none of the ranges.*standardised", r"look like \[0, 255\]"),
    (_rand(1, 3, 48, 48, hi=2), True, r"none of the ranges", r"look like \[0, 255\]"),
    (_rand(1, 3, 48, 48, hi=2), False, r"none of the ranges.*normalize=True", r"look like \[0, 255\]"),
])
def test_range_advice_fits_the_range(metrics, name, x, normalize, match, not_match):
    ok = _rand(1, 3, 48, 48, seed=1) if normalize else _rand(1, 3, 48, 48, lo=-1, seed=1)
    with pytest.raises(ValueError, match=match) as info:
        metrics[name](x, ok, normalize=normalize)
    if not_match:
        import re

        assert not re.search(not_match, str(info.value).split(";", 1)[1]), str(info.value)


# ----------------------------------------------------------------------------- shapes and devices
@pytest.mark.parametrize("name", ["InvariantLPIPS", "LPIPS"])
@pytest.mark.parametrize("bad, match", [
    (torch.rand(2, 4, 3, 48, 48), r"5 dims.*x\.flatten\(0, 1\) -> \(8, 3, 48, 48\)"),
    (torch.rand(48, 64), r"2 dims.*x\[None, None\] -> \(1, 1, 48, 64\)"),
    (torch.rand(48, 64, 3), r"\(H, W, C\).*permute\(2, 0, 1\)\.unsqueeze\(0\) -> \(1, 3, 48, 64\)"),
    (torch.rand(3, 48, 64), r"unsqueeze\(0\) -> \(1, 3, 48, 64\)"),
    (torch.empty(1, 3, 48, 48, device="meta"), r"'meta' device.*no values.*load"),
    (torch.rand(1, 3, 12, 12), r"12x12.*at least"),
])
def test_shape_and_device_errors_say_how_to_fix(metrics, name, bad, match):
    ok = torch.rand(1, 3, 48, 48)
    with pytest.raises(ValueError, match=match):
        metrics[name](bad, ok, normalize=True)
    with pytest.raises(ValueError, match=match.replace("in0", "in1")):
        metrics[name](ok, bad, normalize=True)


def test_five_d_fix_works(metrics):
    video = torch.rand(2, 4, 3, 48, 48)
    d = metrics["InvariantLPIPS"](video.flatten(0, 1), torch.rand(1, 3, 48, 48), normalize=True).view(2, 4)
    assert d.shape == (2, 4)


def test_metric_built_on_meta_is_explained():
    m = LPIPS(net="vgg", pnet_rand=True).to("meta")  # weights without values, as under torch.device('meta')
    with pytest.raises(ValueError, match="'meta' device.*build it outside"):
        m(torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48), normalize=True)


# ----------------------------------------------------------------------------- warnings at the user's line
def _normalize_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [w for w in caught if issubclass(w.category, NormalizeWarning)]


@pytest.mark.parametrize("name", ["InvariantLPIPS", "LPIPS"])
@pytest.mark.parametrize("how", ["call", "forward"])
def test_normalize_warning_points_at_the_callers_line(metrics, name, how):
    m = metrics[name]
    x, y = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    call = m if how == "call" else m.forward
    hits = _normalize_warnings(lambda: call(x, y))  # the user's line is this one
    assert len(hits) == 1
    assert hits[0].filename == __file__, f"reported at {hits[0].filename}:{hits[0].lineno}"
    assert "normalize=True" in str(hits[0].message)


def test_normalize_warning_once_per_call_site_with_the_default_filter(metrics):
    """Python's default filter shows a warning once per (file, line): true now that the line is the user's."""
    m = metrics["LPIPS"]
    x, y = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for _ in range(3):
            m(x, y)  # one call site
        m(x, y)  # another
    assert len([w for w in caught if issubclass(w.category, NormalizeWarning)]) == 2


def test_normalize_warning_through_torchmetrics_points_at_the_user(metrics):
    tm = pytest.importorskip("invariant_lpips.torchmetrics")
    pytest.importorskip("torchmetrics")
    metric = tm.LPIPSMetric(pnet_rand=True)
    x, y = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    hits = _normalize_warnings(lambda: metric.update(x, y))
    assert hits and hits[0].filename == __file__, hits[0].filename if hits else None


def test_no_warning_for_proper_inputs(metrics):
    x, y = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    assert not _normalize_warnings(lambda: metrics["LPIPS"](x, y, normalize=True))
    assert not _normalize_warnings(lambda: metrics["LPIPS"](x * 2 - 1, y * 2 - 1))


@pytest.mark.slow
def test_normalize_warning_through_distance_points_at_the_user(vgg_state):
    x, y = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    hits = _normalize_warnings(lambda: invariant_lpips.distance(x, y))
    assert hits and hits[0].filename == __file__


def test_input_and_constructor_warnings_go_through_warn_at_caller():
    """No fixed stacklevel in the input checks and the lpips-compatibility layer: a fixed one points into
    PyTorch for ``metric(x, y)`` and into this package when the metric is reached another way."""
    from pathlib import Path

    root = Path(invariant_lpips.__file__).parent
    files = ["metric/validation.py", "metric/compat.py", "metric/lpips_baseline.py", "metric/lpips_helpers.py",
             "metric/cli.py", "metric/functional.py", "lpips_compat.py"]
    offenders = [f"{f}:{i}" for f in files for i, line in enumerate((root / f).read_text().splitlines(), 1)
                 if "stacklevel=" in line and "stacklevel=caller_stacklevel()" not in line]
    assert not offenders, offenders


# ----------------------------------------------------------------------------- the tolerance band (issue 26)
def _bicubic_overshoot():
    """A bicubic-upsampled [0, 1] image: values a little outside [0, 1], as lpips users feed them."""
    x = _rand(1, 3, 12, 12, seed=3)
    return torch.nn.functional.interpolate(x, size=(48, 48), mode="bicubic", align_corners=False)


@pytest.mark.parametrize("name", ["InvariantLPIPS", "LPIPS"])
@pytest.mark.parametrize("make, normalize", [
    (lambda: _rand(1, 3, 48, 48) * 1.001, True),                       # [0, 1] * 1.001
    (_bicubic_overshoot, True),                                         # [-0.12, 1.16]
    (lambda: _rand(1, 3, 48, 48, lo=-1.05, hi=1.05), False),           # a generator's output
    (lambda: _rand(1, 3, 48, 48, lo=-0.249, hi=1.249), True),          # just inside the band
    (lambda: _rand(1, 3, 48, 48, lo=-1.49, hi=1.49), False),
])
def test_values_inside_the_band_are_scored_as_given(metrics, name, make, normalize):
    x = make()
    lo, hi = (0.0, 1.0) if normalize else (-1.0, 1.0)
    assert float(x.min()) < lo or float(x.max()) > hi  # really outside the expected range
    y = _rand(1, 3, 48, 48, seed=1) if normalize else _rand(1, 3, 48, 48, lo=-1, seed=1)
    d = metrics[name](x, y, normalize=normalize)
    assert torch.isfinite(d).all()
    # scored as given, not clamped
    clamped = metrics[name](x.clamp(lo, hi), y, normalize=normalize)
    assert not torch.equal(d, clamped)


@pytest.mark.parametrize("name", ["InvariantLPIPS", "LPIPS"])
@pytest.mark.parametrize("x, normalize, match", [
    (_rand(1, 3, 48, 48, lo=0, hi=1.3), True, r"x\.clamp\(0, 1\)"),
    (_rand(1, 3, 48, 48, lo=-0.3, hi=1.0), True, r"x\.clamp\(0, 1\)"),
    (_rand(1, 3, 48, 48, lo=-1.6, hi=1.6), False, r"x\.clamp\(-1, 1\)"),
    (_rand(1, 3, 48, 48, hi=255), True, r"\[0, 255\]: divide by 255"),
    (_rand(1, 3, 48, 48, lo=-2.1, hi=2.6), True, r"standardised.*x \* std \+ mean"),   # ImageNet-standardised
])
def test_values_outside_the_band_are_refused_with_a_fix(metrics, name, x, normalize, match):
    y = _rand(1, 3, 48, 48, seed=1) if normalize else _rand(1, 3, 48, 48, lo=-1, seed=1)
    with pytest.raises(ValueError, match=match) as info:
        metrics[name](x, y, normalize=normalize)
    msg = str(info.value)
    assert "check_inputs=False" in msg and "scored as given" in msg
    assert "x.min()" not in msg  # no min-max rescaling advice: it changes the image


def test_check_inputs_false_scores_anything_finite():
    m = InvariantLPIPS("paper", pnet_rand=True, check_inputs=False)
    d = m(_rand(1, 3, 48, 48, hi=3), _rand(1, 3, 48, 48, seed=1), normalize=True)
    assert torch.isfinite(d).all()


# ----------------------------------------------------------------------------- dtypes (issue 26)
@pytest.mark.parametrize("name", ["InvariantLPIPS", "LPIPS"])
@pytest.mark.parametrize("bad, match", [
    (torch.rand(1, 3, 48, 48, dtype=torch.complex64), r"complex dtype torch\.complex64.*x\.real"),
    (torch.rand(1, 3, 48, 48) > 0.5, r"dtype torch\.bool \(a mask, not an image\).*x\.float\(\)"),
    (torch.randint(0, 255, (1, 3, 48, 48), dtype=torch.uint8), r"integer dtype torch\.uint8.*x\.float\(\) / 255"),
])
def test_dtype_messages_are_true(metrics, name, bad, match):
    with pytest.raises(TypeError, match=match):
        metrics[name](bad, torch.rand(1, 3, 48, 48), normalize=True)


@pytest.mark.parametrize("make", [lambda: InvariantLPIPS(pnet_rand=True), lambda: InvariantLPIPS("paper", pnet_rand=True),
                                  lambda: LPIPS(net="vgg", pnet_rand=True)])
def test_double_gives_float64_distances(make):
    import copy

    m32 = make()
    m = copy.deepcopy(m32).double()
    x, y = _rand(2, 3, 64, 64).double(), _rand(2, 3, 64, 64, seed=1).double()
    d = m(x, y, normalize=True)
    assert d.dtype == torch.float64
    d32 = m32(x.float(), y.float(), normalize=True)
    assert torch.allclose(d.float(), d32, rtol=1e-3, atol=1e-6)


def test_min_size_reason_is_true(metrics):
    with pytest.raises(ValueError, match=r"at least 32x32.*pool5.*stop earlier") as info:
        metrics["InvariantLPIPS"](torch.rand(1, 3, 20, 48), torch.rand(1, 3, 48, 48), normalize=True)
    assert "up to five times" not in str(info.value)
