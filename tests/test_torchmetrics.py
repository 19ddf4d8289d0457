"""``invariant_lpips.torchmetrics``: Metric wrappers with torchmetrics' LPIPS conventions and DDP-safe states.

Our ``LPIPSMetric`` is compared call-for-call with torchmetrics' own
``LearnedPerceptualImagePatchSimilarity(net_type="vgg")``. torchmetrics takes its VGG-16 trunk from
torchvision's download, which is not available offline, so the fast test gives both metrics the same
seeded random trunk (torchmetrics' trunk builder is patched to return it); torchmetrics' shipped LPIPS
v0.1 linear layers are used as they are. The slow test does the same with the real ImageNet trunk.
"""
from __future__ import annotations

import importlib
import sys

import pytest
import torch

pytest.importorskip("torchmetrics")
torchvision = pytest.importorskip("torchvision")

from invariant_lpips.torchmetrics import InvariantLPIPSMetric, LPIPSMetric  # noqa: E402

REDUCTIONS = ["mean", "sum", "none"]


@pytest.fixture(scope="module")
def random_vgg_state():
    torch.manual_seed(0)
    return {k: v.clone() for k, v in torchvision.models.vgg16(weights=None).features.state_dict().items()}


@pytest.fixture(scope="module")
def batches():
    """Three updates of different batch sizes, images in [0, 1]."""
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(n, 3, 32, 40, generator=g), torch.rand(n, 3, 32, 40, generator=g)) for n in (2, 3, 1)]


def _tm_lpips_vgg(monkeypatch, state, **kwargs):
    """torchmetrics' LPIPS-VGG, built offline with the given trunk weights."""
    from torchmetrics.functional.image import lpips as tm_lpips
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    def features(net, pretrained=False):
        assert net == "vgg16"
        f = torchvision.models.vgg16(weights=None).features
        f.load_state_dict(state)
        return f

    monkeypatch.setattr(tm_lpips, "_get_tv_model_features", features)
    return LearnedPerceptualImagePatchSimilarity(net_type="vgg", **kwargs)


# ------------------------------------------------------------------------------- basics
def test_import_without_torchmetrics_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchmetrics", None)  # "not installed"
    monkeypatch.delitem(sys.modules, "invariant_lpips.torchmetrics")
    with pytest.raises(ImportError, match=r"invariant-lpips\[torchmetrics\]"):
        importlib.import_module("invariant_lpips.torchmetrics")
    monkeypatch.undo()
    assert importlib.import_module("invariant_lpips.torchmetrics").InvariantLPIPSMetric is InvariantLPIPSMetric


@pytest.mark.parametrize("cls", [InvariantLPIPSMetric, LPIPSMetric])
def test_class_attributes_and_states(cls):
    from torchmetrics import Metric

    assert issubclass(cls, Metric)
    assert cls.higher_is_better is False and cls.is_differentiable is True and cls.full_state_update is False
    m = cls(trunk_weights=None)
    assert m._reductions.keys() == {"sum_scores", "total"}
    assert {k: m._reductions[k].__name__ for k in m._reductions} == {"sum_scores": "dim_zero_sum",
                                                                       "total": "dim_zero_sum"}
    m = cls(trunk_weights=None, reduction="none")
    assert list(m._reductions) == ["scores"] and m._reductions["scores"].__name__ == "dim_zero_cat"
    assert m._defaults["scores"] == []


def test_arguments_checked_and_split():
    with pytest.raises(ValueError, match="net_type='vgg'"):
        InvariantLPIPSMetric(net_type="alex", trunk_weights=None)
    with pytest.raises(ValueError, match="net_type='vgg'"):
        LPIPSMetric(net_type="squeeze", trunk_weights=None)
    with pytest.raises(ValueError, match="reduction"):
        LPIPSMetric(reduction="max", trunk_weights=None)
    with pytest.raises(ValueError, match="normalize"):
        LPIPSMetric(normalize="yes", trunk_weights=None)
    with pytest.raises(ValueError, match="LPIPSMetric"):
        InvariantLPIPSMetric(variant="lpips-vgg", trunk_weights=None)
    with pytest.raises(ValueError, match="spatial"):
        LPIPSMetric(spatial=True, trunk_weights=None)
    with pytest.raises(TypeError, match="nett"):  # unknown keywords reach the module, which names them
        InvariantLPIPSMetric(nett="vgg", trunk_weights=None)
    m = InvariantLPIPSMetric(variant="paper", trunk_weights=None, dist_sync_on_step=True, compute_on_cpu=True,
                             padding_mode="circular", pnet_rand=True)
    assert m.dist_sync_on_step and m.compute_on_cpu  # torchmetrics options went to Metric
    assert m.net.variant.name == "paper" and m.net.variant.trunk.padding_mode == "circular"  # the rest to the module
    assert m.variant == "paper" and LPIPSMetric(pnet_rand=True).variant == "lpips-vgg"


# ------------------------------------------------------------------------------- semantics
@pytest.mark.parametrize("cls", [InvariantLPIPSMetric, LPIPSMetric])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reductions_over_all_updates_match_the_module(cls, reduction, batches):
    m = cls(trunk_weights=None, reduction=reduction, normalize=True)
    for x, y in batches:
        m.update(x, y)
    with torch.no_grad():
        every = torch.cat([m.net(x, y, normalize=True).flatten() for x, y in batches])
    assert every.numel() == 6
    expect = {"mean": every.mean(), "sum": every.sum(), "none": every}[reduction]
    torch.testing.assert_close(m.compute(), expect, rtol=1e-5, atol=1e-7)
    m.reset()  # a single image after reset: mean, sum and the one score all equal its distance
    m.update(*batches[2])
    torch.testing.assert_close(m.compute().reshape(-1), every[-1:], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls", [InvariantLPIPSMetric, LPIPSMetric])
def test_normalize_flag_means_zero_one_inputs(cls, batches):
    a = cls(trunk_weights=None, normalize=True)
    b = cls(trunk_weights=None, normalize=False)
    b.load_state_dict(a.state_dict())
    for x, y in batches:
        a.update(x, y)
        b.update(2 * x - 1, 2 * y - 1)
    torch.testing.assert_close(a.compute(), b.compute(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="normalize"):  # [0, 1]-only check: values outside are refused
        a.update(2 * batches[0][0] - 1, batches[0][1])


@pytest.mark.parametrize("cls", [InvariantLPIPSMetric, LPIPSMetric])
def test_forward_returns_the_batch_value_differentiably_and_accumulates(cls, batches):
    m = cls(trunk_weights=None, normalize=True)
    (x0, y0), (x1, y1) = batches[0], batches[1]
    x0 = x0.clone().requires_grad_(True)
    v0 = m(x0, y0)
    v0.backward()
    assert x0.grad is not None and x0.grad.abs().sum() > 0
    v1 = m(x1, y1)
    with torch.no_grad():
        d0, d1 = m.net(x0, y0, normalize=True).flatten(), m.net(x1, y1, normalize=True).flatten()
    torch.testing.assert_close(v0.detach(), d0.mean())
    torch.testing.assert_close(v1.detach(), d1.mean())
    torch.testing.assert_close(m.compute().detach(), torch.cat([d0, d1]).mean())


def test_broadcast_single_reference(batches):
    m = LPIPSMetric(trunk_weights=None, reduction="none", normalize=True)
    x, y = batches[1]
    m.update(x[:1], y)
    assert m.compute().shape == (3,)


# ------------------------------------------------------------------------------- vs torchmetrics
def _compare_with_torchmetrics(monkeypatch, state, batches, rtol):
    theirs = _tm_lpips_vgg(monkeypatch, state)
    for reduction, normalize in [("mean", True), ("sum", True), ("none", True), ("mean", False)]:
        ours = LPIPSMetric(trunk_weights=state, reduction=reduction, normalize=normalize)
        theirs.reset()
        theirs.reduction, theirs.normalize = reduction, normalize  # as its constructor sets them
        for x, y in batches:
            if not normalize:
                x, y = 2 * x - 1, 2 * y - 1
            ours.update(x, y)
            theirs.update(x, y)
        a, b = ours.compute(), theirs.compute()
        assert a.shape == b.shape, (reduction, normalize, a.shape, b.shape)
        torch.testing.assert_close(a, b, rtol=rtol, atol=1e-6, msg=f"reduction={reduction} normalize={normalize}")
        # forward: batch value, like torchmetrics
        x, y = batches[0]
        if not normalize:
            x, y = 2 * x - 1, 2 * y - 1
        torch.testing.assert_close(ours(x, y), theirs(x, y), rtol=rtol, atol=1e-6)


def test_lpips_metric_equals_torchmetrics_lpips_vgg_same_trunk(monkeypatch, random_vgg_state, batches):
    """Same trunk, torchmetrics' own vgg.pth linear layers vs our shipped LPIPS v0.1 weights."""
    _compare_with_torchmetrics(monkeypatch, random_vgg_state, batches, rtol=1e-4)


@pytest.mark.slow
def test_lpips_metric_equals_torchmetrics_lpips_vgg_real_weights(monkeypatch, vgg_state, batches):
    _compare_with_torchmetrics(monkeypatch, vgg_state, batches, rtol=1e-4)


# ------------------------------------------------------------------------------- distributed
def _two_ranks(cls, reduction, batches, **rank0_kwargs):
    rank0 = cls(trunk_weights=None, reduction=reduction, normalize=True, **rank0_kwargs)
    rank1 = cls(trunk_weights=None, reduction=reduction, normalize=True)
    rank1.load_state_dict(rank0.state_dict())
    single = cls(trunk_weights=None, reduction=reduction, normalize=True)
    single.load_state_dict(rank0.state_dict())
    rank0.update(*batches[0])
    rank1.update(*batches[1])
    rank1.update(*batches[2])
    for b in batches:
        single.update(*b)
    return rank0, rank1, single


@pytest.mark.parametrize("cls", [InvariantLPIPSMetric, LPIPSMetric])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_merge_state_equals_one_process(cls, reduction, batches):
    rank0, rank1, single = _two_ranks(cls, reduction, batches)
    rank0.merge_state(rank1)
    merged, expect = rank0.compute(), single.compute()
    if reduction == "none":  # merge_state puts the incoming scores first; the set of scores is what counts
        merged, expect = merged.sort().values, expect.sort().values
    torch.testing.assert_close(merged, expect, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ddp_sync_gathers_every_state(reduction, batches):
    """``compute()`` as under DDP: torchmetrics syncs the states through an all-gather (here a fake one,
    passed as the Metric options ``dist_sync_fn`` / ``distributed_available_fn``, which handing over the
    other rank's states), reduces them with each state's ``dist_reduce_fx`` and restores them afterwards."""
    other, calls = {}, []

    def all_gather(tensor, group=None):
        name = list(other)[len(calls)]
        calls.append(name)
        return [tensor, other[name]]

    rank0, rank1, single = _two_ranks(LPIPSMetric, reduction, batches, dist_sync_fn=all_gather,
                                      distributed_available_fn=lambda: True)
    other.update({k: (torch.cat(v) if isinstance(v, list) else v) for k, v in rank1.metric_state.items()})
    synced = rank0.compute()
    assert calls == list(rank0._reductions), "every state is gathered"
    torch.testing.assert_close(synced, single.compute(), rtol=1e-5, atol=1e-7)
    # after compute, rank 0 holds its own states again (unsynced)
    local = LPIPSMetric(trunk_weights=None, reduction=reduction, normalize=True)
    local.load_state_dict(rank0.state_dict())
    local.update(*batches[0])
    for k, v in rank0.metric_state.items():
        torch.testing.assert_close(torch.cat(v) if isinstance(v, list) else v,
                                   torch.cat(local.metric_state[k]) if isinstance(v, list) else local.metric_state[k])
