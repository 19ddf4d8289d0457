"""The LPIPS scale (metric/scale.py): a bounded, increasing map of a variant's distance; ranks unchanged.
Random trunk and a fitted map written to a temporary file: no weights, no ../shared."""
from __future__ import annotations

import json

import pytest
import torch

from invariant_lpips import DEFAULT_VARIANT, InvariantLPIPS
from invariant_lpips.metric import scale as sc


@pytest.fixture
def scale_file(tmp_path, monkeypatch):
    path = tmp_path / "scale.json"
    path.write_text(json.dumps({"variants": {"structure-blur": {"a": 0.9, "s": 6.0, "p": 0.8},
                                             "registered-blur": {"a": 0.8, "s": 5.0, "p": 0.75},
                                             "registered-lab-blur": {"a": 0.7, "s": 60.0, "p": 0.85},
                                             "registered-lab-lq4-blur": {"a": 0.75, "s": 65.0, "p": 0.8},
                                             DEFAULT_VARIANT: {"a": 0.75, "s": 65.0, "p": 0.8}}}))
    monkeypatch.setattr(sc, "SCALE_FILE", path)
    return path


def test_map_is_bounded_increasing_and_invertible():
    m = sc.ScaleMap(a=0.85, s=3.0, p=0.7)
    d = torch.cat([torch.zeros(1), torch.logspace(-4, 2, 200, dtype=torch.float64)])
    v = m(d)
    assert float(v[0]) == 0.0 and bool((v[1:] > v[:-1]).all()) and bool((v < 0.85).all())
    far = m(torch.logspace(2, 4, 50))  # float32, far beyond any distance seen: saturates, never decreases
    assert bool((far[1:] >= far[:-1]).all()) and bool((far <= 0.85).all())
    assert torch.allclose(m.inverse(v[:150]), d[:150], rtol=1e-4, atol=1e-8)
    with pytest.raises(ValueError, match="a, s, p > 0"):
        sc.ScaleMap(a=1.0, s=0.0, p=1.0)


def test_ranks_are_unchanged():
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(0)
    d = torch.rand(500, generator=g, dtype=torch.float64) * 40
    v = sc.ScaleMap(a=0.8, s=5.0, p=0.6)(d)
    assert spearmanr(d.numpy(), v.numpy())[0] == 1.0
    assert torch.equal(torch.argsort(d), torch.argsort(v))


def test_metric_option_maps_only_the_total(scale_file):
    torch.manual_seed(0)
    raw = InvariantLPIPS(trunk_weights=None)
    scaled = InvariantLPIPS(trunk_weights=None, trunk=raw.net, scale="lpips")
    x, y = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        d = raw(x, y, normalize=True)
        v = scaled(x, y, normalize=True)
        total, terms = scaled(x, y, retPerLayer=True, normalize=True)
    assert v.shape == d.shape and torch.allclose(v, scaled.scale_map(d))
    assert torch.equal(torch.argsort(d.flatten()), torch.argsort(v.flatten()))
    assert torch.allclose(total, v) and torch.allclose(sum(terms), d, rtol=1e-5)  # terms stay raw
    assert float(scaled(x, x, normalize=True).abs().max()) == 0.0


def test_unknown_scale_and_unfitted_variant_are_explained(scale_file):
    with pytest.raises(ValueError, match="scale must be None"):
        InvariantLPIPS(trunk_weights=None, scale="dists")
    with pytest.raises(ValueError, match=r"no fitted LPIPS scale.*fit_scale.py --variant paper"):
        InvariantLPIPS("paper", trunk_weights=None, scale="lpips")


def test_shipped_scale_file_is_valid():
    """Every shipped map has positive parameters, a <= 1, and names its data and command."""
    for name, e in sc.read_scale_file().items():
        m = sc.ScaleMap(e["a"], e["s"], e["p"])
        assert m.a <= 1.0 and "no human scores" in e["data"] and "fit_scale.py" in e["command"], name
