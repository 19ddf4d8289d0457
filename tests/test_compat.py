"""lpips' constructor arguments and a typical lpips training loop work with only the import changed.

Fast tests build the metrics with a random trunk (``pnet_rand=True`` or ``trunk_weights=None``);
the ones marked ``slow`` use the real VGG-16 weights through the package's resolver.
"""
from __future__ import annotations

import textwrap
import types

import pytest
import torch

import invariant_lpips
from invariant_lpips import LPIPS, InvariantLPIPS

CLASSES = [InvariantLPIPS, LPIPS]

# argument sets from lpips' README and its lpips_loss.py / compute_dists*.py scripts (net='vgg');
# pnet_rand=True keeps these unit tests free of the real trunk weights
LPIPS_ARG_SETS = [
    {},
    {"net": "vgg"},
    {"net": "vgg", "version": "0.1"},
    {"net": "vgg", "lpips": False},
    {"net": "vgg", "pretrained": True},
    {"net": "vgg", "pretrained": False},
    {"net": "vgg", "verbose": False},
    {"net": "vgg", "eval_mode": True},
    {"net": "vgg", "use_dropout": True},
    {"net": "vgg", "pnet_tune": False},
    {"pretrained": True, "net": "vgg", "version": "0.1", "lpips": True, "spatial": False, "pnet_rand": True,
     "pnet_tune": False, "use_dropout": True, "model_path": None, "eval_mode": True, "verbose": True},
]


def _build(cls, **kwargs):
    kwargs.setdefault("pnet_rand", True)
    return cls(**kwargs)


@pytest.fixture(scope="module")
def pair():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kwargs", LPIPS_ARG_SETS, ids=lambda k: ",".join(f"{a}={v}" for a, v in k.items()) or "defaults")
def test_lpips_constructor_arguments(cls, kwargs, pair):
    m = _build(cls, **kwargs)
    assert not m.training, "lpips.LPIPS starts in eval mode; so must we"
    assert all(not p.requires_grad for p in m.parameters()), "the metric's own parameters stay frozen"
    d = m(*pair)
    assert d.shape == (2, 1, 1, 1) and torch.isfinite(d).all() and (d >= 0).all()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_lpips_false_and_pretrained_false_mean_unit_weights(cls):
    def learned(m):  # per-channel weights, and the per-term scales of the scaled formulations
        tensors = list(m.lins.values()) + ([m.scales] if hasattr(m, "scales") else [])
        return [t for t in tensors if not torch.equal(t, torch.ones_like(t))]

    for kwargs in ({"lpips": False}, {"pretrained": False}):
        m = _build(cls, **kwargs)
        assert not learned(m), kwargs
    assert learned(_build(cls)), "shipped weights by default"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_pnet_rand_gives_a_random_trunk_without_fetching(cls, monkeypatch):
    from invariant_lpips.weights import vgg16

    def no_fetch(*a, **k):  # pnet_rand must never resolve the ImageNet weights
        raise AssertionError("pnet_rand=True resolved the trunk weights")

    monkeypatch.setattr(vgg16, "resolve_vgg16_state_dict", no_fetch)
    m = cls(net="vgg", pnet_rand=True)
    assert m.net.weights_info is None


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_eval_mode_false_starts_in_training_mode_but_trunk_is_frozen(cls, pair):
    m = _build(cls, eval_mode=False)
    assert m.training and not m.net.training
    with torch.no_grad():
        d_train = m(*pair)
        d_eval = m.eval()(*pair)
    assert torch.equal(d_train, d_eval)


def test_lpips_spatial_map():
    m = _build(LPIPS, net="vgg", spatial=True)
    x, y = torch.rand(2, 3, 32, 48) * 2 - 1, torch.rand(2, 3, 32, 48) * 2 - 1
    d = m(x, y)
    assert d.shape == (2, 1, 32, 48)
    flat = _build(LPIPS, net="vgg")
    flat.load_state_dict(m.state_dict())
    # the map's mean is close to (not equal to: bilinear upsampling) the spatial-mean distance
    assert torch.allclose(d.mean(dim=(2, 3)).flatten(), flat(x, y).flatten(), rtol=0.2)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("net", ["alex", "squeeze"])
def test_other_nets_refused_naming_vgg(cls, net):
    with pytest.raises(ValueError, match="net='vgg'"):
        _build(cls, net=net)


def test_invariant_lpips_spatial_refused_with_alternative():
    with pytest.raises(ValueError, match=r"spatial=True.*LPIPS\(spatial=True\)"):
        _build(InvariantLPIPS, spatial=True)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kwargs, match", [
    ({"pnet_tune": True}, "frozen"),
    ({"version": "0.0"}, "0.1"),
    ({"model_path": "weights/v0.1/vgg.pth"}, "safetensors"),
])
def test_unsupported_values_explained(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _build(cls, **kwargs)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_unknown_keyword_is_a_type_error(cls):
    with pytest.raises(TypeError, match="lpips-compatible"):
        _build(cls, nett="vgg")


# ----------------------------------------------------------------------------- training snippet
# lpips' lpips_loss.py, reduced to tensors (lpips.im2tensor / load_image replaced by random images in
# [-1, 1]); only the first line differs from what an lpips user runs.
LPIPS_TRAINING_SNIPPET = """
import torch
{import_line}

torch.manual_seed(0)
loss_fn = lpips.LPIPS(net='vgg'{extra})
ref = torch.rand(1, 3, {size}, {size}) * 2 - 1
pred = (torch.rand(1, 3, {size}, {size}) * 2 - 1).requires_grad_(True)
optimizer = torch.optim.Adam([pred, ], lr=1e-2, betas=(0.9, 0.999))
losses = []
for i in range({steps}):
    dist = loss_fn.forward(pred, ref)
    optimizer.zero_grad()
    dist.backward()
    optimizer.step()
    pred.data = torch.clamp(pred.data, -1, 1)
    losses.append(dist.item())
"""


def _run_snippet(lpips_module, extra: str, steps: int, size: int = 64) -> dict:
    code = textwrap.dedent(LPIPS_TRAINING_SNIPPET).format(import_line="# import lpips -> (the module below)",
                                                          extra=extra, steps=steps, size=size)
    namespace = {"lpips": lpips_module}
    exec(compile(code, "<lpips snippet>", "exec"), namespace)
    return namespace


def _as_lpips(cls) -> types.ModuleType:
    """What ``import invariant_lpips as lpips`` (LPIPS) or ``... InvariantLPIPS as LPIPS`` gives."""
    if cls is LPIPS:
        return invariant_lpips
    mod = types.ModuleType("lpips_alias")
    mod.LPIPS = cls
    return mod


def test_snippet_source_changes_only_the_import():
    code = LPIPS_TRAINING_SNIPPET.format(import_line="import lpips", extra="", steps=1000, size=64)
    assert "import lpips\n" in code and "lpips.LPIPS(net='vgg')" in code and "invariant" not in code


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_lpips_training_snippet_random_trunk(cls):
    ns = _run_snippet(_as_lpips(cls), extra=", pnet_rand=True", steps=5, size=32)
    losses, pred = ns["losses"], ns["pred"]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0], "the perceptual loss must go down while optimising the image"
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert float(pred.detach().min()) >= -1 and float(pred.detach().max()) <= 1


@pytest.mark.slow
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_lpips_training_snippet_real_weights(cls, vgg_state):
    ns = _run_snippet(_as_lpips(cls), extra="", steps=20)
    losses = ns["losses"]
    assert losses[-1] < losses[0]
    assert ns["loss_fn"].net.weights_info is not None  # the real ImageNet trunk was resolved


@pytest.mark.slow
def test_lpips_readme_forward_snippet_real_weights(vgg_state):
    """lpips' README: ``loss_fn_vgg = lpips.LPIPS(net='vgg'); d = loss_fn_vgg(img0, img1)``."""
    lpips = invariant_lpips
    loss_fn_vgg = lpips.LPIPS(net='vgg')
    img0 = torch.zeros(1, 3, 64, 64)  # image should be RGB, IMPORTANT: normalized to [-1,1]
    img1 = torch.zeros(1, 3, 64, 64)
    d = loss_fn_vgg(img0, img1)
    assert d.shape == (1, 1, 1, 1) and float(d) == 0.0
    d = invariant_lpips.InvariantLPIPS(net='vgg')(img0, img1 + 0.5)
    assert float(d) > 0


def test_public_names_resolve_lazily():
    """``import invariant_lpips`` imports no torch; every exported name resolves on first use."""
    import subprocess
    import sys

    code = ("import sys, invariant_lpips as il\n"
            "assert 'torch' not in sys.modules, 'import invariant_lpips imported torch'\n"
            "missing = [n for n in il.__all__ if getattr(il, n, None) is None]\n"
            "assert not missing, missing\n"
            "assert set(il.__all__) <= set(dir(il))\n"
            "from invariant_lpips import InvariantLPIPS, LPIPS, NormalizeWarning, distance\n"
            "assert issubclass(NormalizeWarning, UserWarning)\n"
            "try:\n"
            "    il.no_such_name\n"
            "except AttributeError as e:\n"
            "    assert 'no_such_name' in str(e)\n"
            "else:\n"
            "    raise SystemExit('no AttributeError')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr


# ----------------------------------------------------------------------------- positional arguments, lpips' order
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_positional_parameters_follow_lpips_signature(cls):
    import inspect

    lpips = pytest.importorskip("lpips")
    theirs = [p for p in inspect.signature(lpips.LPIPS.__init__).parameters.values() if p.name != "self"]
    ours = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    positional = [p for p in ours if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert [p.name for p in positional] == [p.name for p in theirs]
    for mine, ref in zip(positional, theirs):
        if mine.name != "net" and not (cls is InvariantLPIPS and mine.name == "pretrained"):
            assert mine.default == ref.default, mine.name
    # everything of ours comes after lpips' arguments and is keyword-only
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in ours[len(positional):])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_positional_arguments_map_like_lpips(cls, pair):
    m = cls(True, 'vgg', '0.1', True, False, True)  # pretrained, net, version, lpips, spatial, pnet_rand
    assert m.net.weights_info is None  # pnet_rand=True arrived as the 6th positional argument
    assert m(*pair).shape == (2, 1, 1, 1)
    unit = cls(True, 'vgg', '0.1', False, False, True)  # lpips=False: unit weights
    assert all(torch.equal(t, torch.ones_like(t)) for t in unit.lins.values())
    with pytest.raises(ValueError, match="net='vgg'"):
        cls(True, 'alex')
    with pytest.raises(ValueError, match="frozen"):
        cls(True, 'vgg', '0.1', True, False, True, True)  # pnet_tune=True
    m = cls(True, 'vgg', '0.1', True, False, True, False, True, None, False)  # eval_mode=False
    assert m.training


def test_lpips_spatial_positional():
    m = LPIPS(True, 'vgg', '0.1', True, True, True)  # spatial=True
    assert m(torch.zeros(1, 3, 32, 40), torch.zeros(1, 3, 32, 40)).shape == (1, 1, 32, 40)


def test_invariant_lpips_first_positional_may_be_a_variant():
    m = InvariantLPIPS("paper", pnet_rand=True)
    assert m.variant.name == "paper"
    assert InvariantLPIPS(variant="paper", pnet_rand=True).variant.name == "paper"
    with pytest.raises(TypeError, match="two variants"):
        InvariantLPIPS("paper", variant="paper", pnet_rand=True)


def test_lpips_string_first_argument_is_explained():
    with pytest.raises(TypeError, match=r"pretrained.*net='vgg'"):
        LPIPS('vgg', pnet_rand=True)


def test_net_vgg16_alias_accepted():
    assert _build(LPIPS, net="vgg16") is not None


# ----------------------------------------------------------------------------- lpips' default net
def test_lpips_without_net_warns_once_at_the_callers_line(monkeypatch):
    import warnings

    from invariant_lpips.metric import compat

    monkeypatch.setattr(compat, "_default_net_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LPIPS(pnet_rand=True)
        LPIPS(pnet_rand=True)
    hits = [w for w in caught if issubclass(w.category, invariant_lpips.DefaultNetWarning)]
    assert len(hits) == 1, "one warning per process"
    assert hits[0].filename == __file__, hits[0].filename
    assert "alex" in str(hits[0].message) and "net='vgg'" in str(hits[0].message)

    monkeypatch.setattr(compat, "_default_net_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LPIPS(pnet_rand=True, net="vgg")
        LPIPS(True, "vgg", pnet_rand=True)
        InvariantLPIPS(pnet_rand=True)  # InvariantLPIPS has no lpips default to differ from
        from invariant_lpips.metric.registry import _build_module

        _build_module("lpips-vgg", pnet_rand=True)  # the registry (score --variant lpips-vgg) says net='vgg'
    assert not [w for w in caught if issubclass(w.category, invariant_lpips.DefaultNetWarning)]


# ----------------------------------------------------------------------------- dtypes
def test_lpips_double_and_half_return_the_module_dtype(pair):
    m = _build(LPIPS, net="vgg")
    x, y = pair
    d32 = m(x, y)
    m64 = _build(LPIPS, net="vgg")
    m64.load_state_dict(m.state_dict())
    m64 = m64.double()
    d64 = m64(x, y)
    assert d64.dtype == torch.float64 and torch.allclose(d64.float(), d32, rtol=1e-4)
    assert m64(x.double(), y.double()).dtype == torch.float64
    assert _build(LPIPS, net="vgg", spatial=True).double()(x, y).dtype == torch.float64
    m16 = _build(LPIPS, net="vgg")
    m16.load_state_dict(m.state_dict())
    d16 = m16.half()(x, y)
    assert d16.dtype == torch.float16 and torch.isfinite(d16).all()
    total, layers = m16(x, y, retPerLayer=True)
    assert total.dtype == torch.float16 and all(t.dtype == torch.float16 for t in layers)


def test_invariant_lpips_double_and_half_as_documented(pair):
    """The trunk runs in the module's dtype; .double() gives float64 statistics and distances (as lpips does);
    .half() runs the trunk in float16 and the statistics and the distance in float32 (eps and sums)."""
    m = _build(InvariantLPIPS, net="vgg")
    x, y = pair
    d32 = m(x, y)
    m.double()
    assert m.net.features[0].weight.dtype == torch.float64
    d64 = m(x, y)
    assert d64.dtype == torch.float64 and torch.allclose(d64.float(), d32, rtol=1e-3)
    m.half()
    d16 = m(x, y)
    assert d16.dtype == torch.float32 and torch.isfinite(d16).all()
