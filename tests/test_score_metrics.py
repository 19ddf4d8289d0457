"""``invariant-lpips score --variant``: every registry metric whose package is installed is accepted, a
missing one names the extra, and errors about an input name its file (not in0/in1)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from invariant_lpips.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


def _png(path: Path, value: int, size=(40, 48)) -> Path:
    from PIL import Image

    arr = np.full((size[0], size[1], 3), value, np.uint8)
    arr[::4, ::3] = 255 - value
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def pair(tmp_path):
    return _png(tmp_path / "ref.png", 10), _png(tmp_path / "dist.png", 60)


@pytest.fixture
def no_build(monkeypatch):
    """Fails the test if score builds a metric (the errors below must come first)."""
    from invariant_lpips.metric import cli as mcli

    def build(*a, **k):
        raise AssertionError("the metric was built")

    monkeypatch.setattr(mcli, "_metric_on", build)


@pytest.mark.parametrize("name", ["mse", "l1", "psnr", "ssim"])
def test_score_accepts_installed_registry_metrics(pair, capsys, name):
    from invariant_lpips.metric import peers
    from invariant_lpips.metric.registry import get_spec

    spec = get_spec(name)
    if spec.kind == "peer":
        pytest.importorskip(peers.PEER_PACKAGES[name][0])
    a, b = pair
    assert main(["score", str(a), str(b), "--variant", name, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["variant"] == name and np.isfinite(doc["distance"])
    assert doc["lower_is_better"] == spec.lower_is_better
    if name == "mse":
        from invariant_lpips.data.io import load_image

        assert doc["distance"] == pytest.approx(float(((load_image(a) - load_image(b)) ** 2).mean()), rel=1e-6)


def test_unknown_metric_lists_what_works(pair, capsys, monkeypatch):
    from invariant_lpips.metric import peers

    monkeypatch.setitem(peers.PEER_PACKAGES, "dists", ("no_such_module_for_this_test", "DISTS_pytorch==0.1"))
    a, b = pair
    assert main(["score", str(a), str(b), "--variant", "nope"]) == 1
    err = capsys.readouterr().err
    installed = err.split("installed:", 1)[1].split(";", 1)[0]
    assert "mse" in installed and "lpips-vgg" in installed and "dists" not in installed
    assert "invariant-lpips[peers]" in err and "also: dists" in err


def test_missing_peer_names_the_extra(pair, capsys, monkeypatch, no_build):
    from invariant_lpips.metric import peers

    monkeypatch.setitem(peers.PEER_PACKAGES, "dists", ("no_such_module_for_this_test", "DISTS_pytorch==0.1"))
    a, b = pair
    assert main(["score", str(a), str(b), "--variant", "dists"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'invariant-lpips[peers]'" in err and "DISTS_pytorch==0.1" in err
    assert "peer metric" not in err


def test_weights_only_for_our_metrics(pair, capsys, no_build):
    a, b = pair
    assert main(["score", str(a), str(b), "--variant", "mse", "--weights", "w.safetensors"]) == 1
    assert "--weights applies to" in capsys.readouterr().err


def test_small_image_error_names_the_file(tmp_path, capsys, no_build):
    a = _png(tmp_path / "big.png", 10)
    small = _png(tmp_path / "tiny_20px.png", 60, size=(20, 20))
    assert main(["score", str(a), str(small)]) == 1
    err = capsys.readouterr().err
    assert str(small) in err and "20x20" in err and "in1" not in err and "in0" not in err


def test_size_mismatch_names_both_files(tmp_path, capsys):
    a = _png(tmp_path / "a.png", 10, size=(40, 48))
    b = _png(tmp_path / "b.png", 60, size=(40, 56))
    assert main(["score", str(a), str(b), "--variant", "mse"]) == 1
    err = capsys.readouterr().err
    assert str(a) in err and str(b) in err and "48x40" in err and "56x40" in err and "in0" not in err


def test_folder_mode_error_names_the_file(tmp_path, capsys, monkeypatch):
    ra, da = tmp_path / "ref", tmp_path / "dist"
    ra.mkdir()
    da.mkdir()
    _png(ra / "x.png", 10, size=(20, 20))
    _png(da / "x.png", 60, size=(20, 20))
    assert main(["score", str(ra), str(da), "--variant", "l1"]) == 0  # a pixel metric takes 20 px ...
    capsys.readouterr()
    monkeypatch.setattr("invariant_lpips.metric.cli._metric_on", lambda *a, **k: (lambda x, y: x.mean()))
    assert main(["score", str(ra), str(da)]) == 1  # ... the default variant does not
    err = capsys.readouterr().err
    assert str(ra / "x.png") in err and "20x20" in err and "in0" not in err


def test_metric_errors_are_renamed_to_the_files(pair, capsys, monkeypatch):
    """Whatever the metric itself raises about in0/in1 names the files."""
    def build(*a, **k):
        def metric(x, y):
            raise ValueError("in0 and in1 disagree")
        return metric

    monkeypatch.setattr("invariant_lpips.metric.cli._metric_on", build)
    a, b = pair
    assert main(["score", str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert f"{a} and {b} disagree" in err


def test_variants_lists_the_other_metrics(capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    assert "other metrics --variant accepts" in out
    for name in ("mse", "l1", "lpips-pkg", "ssim"):
        assert f"  {name} " in out


@pytest.mark.slow
def test_score_lpips_pkg_equals_lpips_vgg(vgg_state, capsys):
    """The lpips package (peer) and our LPIPS-VGG give the same number on the README's pair."""
    pytest.importorskip("lpips")
    ref, dist = EXAMPLES / "coffee.png", EXAMPLES / "coffee_shifted_2px.png"
    values = {}
    for name in ("lpips-pkg", "lpips-vgg"):
        assert main(["score", str(ref), str(dist), "--variant", name, "--json"]) == 0
        values[name] = json.loads(capsys.readouterr().out)["distance"]
    assert values["lpips-pkg"] == pytest.approx(values["lpips-vgg"], abs=1e-5)
    assert values["lpips-vgg"] == pytest.approx(0.079046, abs=2e-6)  # README's figure
