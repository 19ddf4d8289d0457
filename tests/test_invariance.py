"""Exact-invariance claims of the pooling code (random trunk, circular padding)."""
from __future__ import annotations

import pytest
import torch

from invariant_lpips import InvariantLPIPS
from invariant_lpips.features.variants import Variant, get_variant, list_variants
from invariant_lpips.weights.linear import variant_notes

from helpers import smooth_images


def _circular(name_or_variant):
    v = name_or_variant if isinstance(name_or_variant, Variant) else get_variant(name_or_variant)
    torch.manual_seed(0)
    return InvariantLPIPS(v, trunk_weights=None, padding_mode="circular")


@pytest.mark.parametrize("name", list_variants())
@pytest.mark.parametrize("shift", [(32, 0), (0, 32), (64, 32)])
def test_gap_invariant_to_circular_shifts_of_32(name, shift):
    """With circular padding every variant's pooled vector is invariant to shifts by 32 px."""
    m = _circular(name)
    x = smooth_images(2, 96, 128)
    with torch.no_grad():
        g0 = m.pooled_features(x, normalize=True)
        g1 = m.pooled_features(torch.roll(x, shifts=shift, dims=(2, 3)), normalize=True)
    for tap in g0:
        if g0[tap].ndim == 4:  # a coarse map (structure term) moves with the image: checked below
            continue
        assert torch.allclose(g0[tap], g1[tap], atol=1e-5, rtol=1e-4), tap


@pytest.mark.parametrize("name", [n for n in list_variants() if any(".coarse" in t for t in get_variant(n).terms())])
@pytest.mark.parametrize("shift", [(64, 0), (0, 64), (128, 64)])
def test_coarse_maps_move_exactly_with_circular_shifts_of_a_cell(name, shift):
    """Structure terms keep where things are: with circular padding, a shift by whole cells rolls the coarse
    maps exactly, so the distance between two images is unchanged when both are shifted, and every pooled
    (N, C) statistic is unchanged."""
    m = _circular(name)
    x = smooth_images(2, 128, 192)
    xs = torch.roll(x, shifts=shift, dims=(2, 3))
    with torch.no_grad():
        g0, g1 = m.pooled_features(x, normalize=True), m.pooled_features(xs, normalize=True)
        for key in g0:
            if g0[key].ndim == 4:
                cell = int(key.split(".")[1][len("coarse"):])
                expected = torch.roll(g0[key], shifts=(shift[0] // cell, shift[1] // cell), dims=(2, 3))
                assert torch.allclose(expected, g1[key], atol=1e-5, rtol=1e-4), key
            else:
                assert torch.allclose(g0[key], g1[key], atol=1e-5, rtol=1e-4), key
        d0 = m(x[:1], x[1:], normalize=True)
        d1 = m(xs[:1], xs[1:], normalize=True)
    assert torch.allclose(d0, d1, atol=1e-6, rtol=1e-4)


def test_plain_max_pool_not_invariant_to_one_pixel():
    m = _circular("paper")
    x = smooth_images(1, 64, 64)
    with torch.no_grad():
        d = m(x, torch.roll(x, 1, dims=3), normalize=True)
    assert float(d) > 1e-4


def test_zero_padding_not_exact():
    torch.manual_seed(0)
    m = InvariantLPIPS("paper", trunk_weights=None)  # zeros padding
    x = smooth_images(1, 96, 96)
    with torch.no_grad():
        d = m(x, torch.roll(x, 32, dims=3), normalize=True)
    assert float(d) > 1e-5


@pytest.mark.parametrize("name", [n for n in list_variants() if "every integer" in variant_notes(n).get("invariance", "")])
@pytest.mark.parametrize("shift", [(1, 0), (0, 3), (5, 7)])
def test_variants_claiming_integer_invariance_are_exact(name, shift):
    m = _circular(name)
    x = smooth_images(2, 64, 64, seed=3)
    with torch.no_grad():
        g0 = m.pooled_features(x, normalize=True)
        g1 = m.pooled_features(torch.roll(x, shifts=shift, dims=(2, 3)), normalize=True)
    for tap in g0:
        assert torch.allclose(g0[tap], g1[tap], atol=1e-5, rtol=1e-4), tap
