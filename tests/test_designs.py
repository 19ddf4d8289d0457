"""Designs of the selection study as modules (studies/designs.py) and the study's image operators
(studies/probes.py). Random trunk: no weights, no ../shared."""

import numpy as np
import pytest
import torch

from invariant_lpips import InvariantLPIPS
from probes import block_shuffle, centre_crop, loss_starts, lowpass_corr, psnr
from designs import (design_by_name, design_metric, design_pool, design_scales,
                                                 design_variant, design_weights, term_of)
from invariant_lpips.features.variants import get_variant

SHIPPED = "tex12+lab|s1.c64.centred|norm0.5"


def test_pool_names_are_unique_and_parse_back():
    pool = design_pool()
    names = [d["name"] for d in pool]
    assert len(names) == len(set(names)) == 1626
    assert design_by_name(SHIPPED)["lambda"] == 0.5
    with pytest.raises(ValueError, match="unknown design 'tex9"):
        design_by_name("tex9+lab|none|norm1")


def test_study_columns_map_to_package_terms():
    assert term_of("tex.mean.pool1") == "raw.mean.pool1"
    assert term_of("tex.std.lab") == "lab.std.lab"
    assert term_of("st.centred.c64.pool1") == "raw.coarse64.pool1"
    assert term_of("st.centred.c16.pool3") == "raw.coarse16.pool3"


def test_the_shipped_design_is_the_default_variant():
    v, d = get_variant("structure-blur"), design_variant(design_by_name(SHIPPED))
    assert d.terms() == v.terms()
    assert d.trunk == v.trunk


def test_design_variants_read_what_the_design_names():
    v = design_variant(design_by_name("tex12+lab|s345.c16.centred|norm0.5"))
    assert v.trunk.taps == ("pool1", "pool2", "pool3", "pool4", "pool5")
    terms = v.terms()
    # pool5's cells are at least its stride (32 px); no means or spreads past the texture taps
    assert {"raw.coarse16.pool3", "raw.coarse16.pool4", "raw.coarse32.pool5"} <= set(terms)
    assert "raw.mean.pool3" not in terms and "raw.coarse16.pool1" not in terms
    assert design_variant(design_by_name("tex12+lab|none|norm1")).trunk.taps == ("pool1", "pool2")
    with pytest.raises(ValueError, match="centred"):
        design_variant(design_by_name("tex12+lab|s1.c64.uncentred|norm0.5"))


def test_design_metric_equals_the_registered_variant_with_its_scales():
    ref = InvariantLPIPS("structure-blur", trunk_weights=None, verbose=False)
    design = design_by_name(SHIPPED)
    scales = {t: float(ref.variant.weights()[0][f"scale.{t}"]) for t in ref.variant.terms()}
    names = design["texture"] + design["structure"]
    inverse = {term_of(c): c for c in names}
    n = len(design["texture"])
    coef = [scales[term_of(c)] / n for c in names]
    assert design_scales(design, names, coef) == pytest.approx(scales)
    assert set(inverse) == set(scales)
    m = design_metric(design, names, coef, trunk=ref.net, trunk_weights=None)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 96, 128, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        torch.testing.assert_close(m(x, y, normalize=True), ref(x, y, normalize=True))


def test_design_weights_refuse_scales_for_other_terms():
    v = get_variant("structure-blur")
    with pytest.raises(ValueError, match="the scales name terms"):
        design_weights(v, {"raw.mean.pool1": 1.0})


def test_block_shuffle_moves_every_block_and_keeps_the_pixels():
    x = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 1, 64, 64).expand(1, 3, 64, 64).contiguous()
    y = block_shuffle(x, 16, seed=3)
    assert torch.equal(torch.sort(y.flatten()).values, torch.sort(x.flatten()).values)
    blocks = lambda t: t[0, 0].reshape(4, 16, 4, 16).permute(0, 2, 1, 3).reshape(16, -1)  # noqa: E731
    bx, by = blocks(x), blocks(y)
    assert not any(torch.equal(bx[i], by[i]) for i in range(16))
    assert torch.equal(block_shuffle(x, 16, seed=3), y)


def test_probe_figures():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 64, 64, generator=g)
    assert lowpass_corr(x, x) == pytest.approx(1.0, abs=1e-6)
    assert psnr(x, (x + 0.1).clamp(max=2)) == pytest.approx(20.0, abs=1e-4)
    assert psnr(x, x) == pytest.approx(120.0)  # the MSE floor 1e-12
    assert centre_crop(torch.zeros(1, 3, 10, 12), 4, 1, -2).shape == (1, 3, 4, 4)
    s = loss_starts(x, torch.Generator().manual_seed(1))
    assert set(s) == {"blur+noise", "jpeg10", "shift3px", "pure-noise"}
    assert all(v.shape == x.shape and float(v.min()) >= 0 and float(v.max()) <= 1 for v in s.values())
    assert torch.equal(s["shift3px"], torch.roll(x, (3, 3), (2, 3)))
    assert np.isfinite(lowpass_corr(s["pure-noise"], x))


def test_peer_scores_are_read_in_order_and_gaps_named(tmp_path):
    from invariant_lpips.data.generated import read_peer_scores

    path = tmp_path / "dists_512x384.csv"
    path.write_text("dist_img,distance\nI01_01_01.png,0.5\nI01_01_02.png,0.25\n")
    assert read_peer_scores(path, ["I01_01_02.png", "I01_01_01.png"]) == [0.25, 0.5]
    with pytest.raises(ValueError, match="1 pairs not scored yet .e.g. I02_01_01.png"):
        read_peer_scores(path, ["I01_01_01.png", "I02_01_01.png"])
    with pytest.raises(FileNotFoundError, match="missing.csv not found"):
        read_peer_scores(tmp_path / "missing.csv", [])
    bad = tmp_path / "bad.csv"
    bad.write_text("image,score\nI01_01_01.png,1\n")
    with pytest.raises(ValueError, match="expected columns dist_img, distance"):
        read_peer_scores(bad, ["I01_01_01.png"])
