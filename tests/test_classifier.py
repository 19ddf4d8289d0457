"""Classification study (issue 7): heads, parameter counts, mirror-mosaic crop, relative loss,
feature-cached training, translation test, invariance of GAP heads, digits demo helpers.

All fast: random trunks (``weights=None``), small synthetic images, no network.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from invariant_lpips.classifier import (
    HEADS,
    PAPER_TRAINABLE_PARAMETERS,
    TRUNK_PARAMETERS,
    average_relative_loss,
    build_classifier,
    count_parameters,
    load_classifier,
    mirror_crop,
    relative_loss,
    train_heads,
    translation_test,
)
from invariant_lpips.classifier.models import ClassifierHead, pool5_size
from invariant_lpips.classifier.train import (
    ImageListDataset,
    TrainConfig,
    extract_features,
    features_for_head,
    load_samples,
)
from invariant_lpips.classifier.translation import TranslationResult, mirror_rotate, mirror_scale, shift_values
from invariant_lpips.trunk import VGG16Trunk


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny ops on a shared 2-core machine: one thread avoids OpenMP contention
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def kaiming_trunk(padding_mode: str = "zeros", seed: int = 0) -> VGG16Trunk:
    """A random trunk whose activations keep their scale through the 13 convs (fan-in Kaiming)."""
    torch.manual_seed(seed)
    trunk = VGG16Trunk(weights=None, padding_mode=padding_mode)
    with torch.no_grad():
        for m in trunk.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                m.bias.zero_()
    return trunk


def save_png(path, arr01: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray((np.clip(arr01, 0, 1) * 255).round().astype(np.uint8)).save(path)


# ============================================================================ parameter counts


def test_parameter_counts_match_the_paper():
    trunk = VGG16Trunk(weights=None)
    assert pool5_size(256) == (8, 8)
    for head in HEADS:
        model = build_classifier(head, 160, trunk=trunk, input_size=256)
        assert count_parameters(model) == (PAPER_TRAINABLE_PARAMETERS[head], TRUNK_PARAMETERS), head
    assert PAPER_TRAINABLE_PARAMETERS == {"baseline": 5_243_040, "finalgap": 82_080, "multigap": 235_680,
                                          "gap_flatten": 5_478_560}
    # the analytic block5_pool size agrees with the trunk
    with torch.no_grad():
        out = trunk(torch.zeros(1, 3, 64, 64))
    assert tuple(out["pool5"].shape[-2:]) == pool5_size(64)
    assert sum(out[t].shape[1] for t in out) == 1472


def test_head_features_layout_and_size_check():
    trunk = kaiming_trunk()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        taps = trunk(x)
    h = ClassifierHead("gap_flatten", 3, input_size=64)
    f = h.head_features(taps)
    assert f.shape == (2, 1472 + 512 * 2 * 2)
    assert torch.allclose(f[:, 1472 - 512:1472], taps["pool5"].mean((-2, -1)))
    assert torch.allclose(f[:, 1472:], taps["pool5"].flatten(1))
    with pytest.raises(ValueError, match="built for 256x256"):
        ClassifierHead("baseline", 3, input_size=256).head_features(taps)
    with pytest.raises(ValueError, match="unknown classifier head"):
        ClassifierHead("nope", 3)


# ============================================================================ translation protocol


@pytest.mark.parametrize("dx,dy,size", [(0, 0, None), (3, -2, None), (-5, 4, None), (4, 1, 6), (-7, -9, (5, 4))])
def test_mirror_crop_equals_numpy_symmetric_pad(dx, dy, size):
    a = np.arange(2 * 9 * 11, dtype=np.float64).reshape(2, 9, 11)
    H, W = a.shape[-2:]
    h, w = (H, W) if size is None else ((size, size) if isinstance(size, int) else size)
    padded = np.pad(a, ((0, 0), (H, H), (W, W)), mode="symmetric")
    top, left = H + (H - h) // 2 + dy, W + (W - w) // 2 + dx
    want = padded[:, top:top + h, left:left + w]
    got = mirror_crop(torch.from_numpy(a), dx, dy, size=size).numpy()
    np.testing.assert_array_equal(got, want)


def test_authors_window_at_256():
    # 256x256 image, window moved by (dx, dy) = (50, -50): the corner of the mosaic crop
    x = torch.rand(1, 1, 256, 256, dtype=torch.float64)
    padded = np.pad(x[0, 0].numpy(), 256, mode="symmetric")
    got = mirror_crop(x, 50, -50)[0, 0].numpy()
    np.testing.assert_array_equal(got, padded[256 - 50:512 - 50, 256 + 50:512 + 50])


def test_relative_loss_known_numbers():
    np.testing.assert_allclose(relative_loss([3.0, 1.0, 2.0], 2.0), [0.5, -0.5, 0.0])
    assert average_relative_loss({0: 2.0, 1: 3.0, -1: 1.5}) == pytest.approx((0.5 - 0.25) / 2)
    assert average_relative_loss({(0, 0): 0.5, (0, 1): 1.0, (1, 0): 0.5, (1, 1): 0.25}, zero=(0, 0)) == \
        pytest.approx((1.0 + 0.0 - 0.5) / 3)
    res = TranslationResult(dxs=[-1, 0, 1], dys=[0, 1], loss=np.array([[3.0, 2.0, 1.0], [4.0, 2.0, 2.0]]),
                            accuracy=np.array([[0.5, 1.0, 0.5], [0.0, 1.0, 1.0]]), n_images=2)
    assert res.loss_at_zero == 2.0 and res.accuracy_at_zero == 1.0
    np.testing.assert_allclose(res.relative_loss, [[0.5, 0.0, -0.5], [1.0, 0.0, 0.0]])
    assert res.mean_relative_loss == pytest.approx((0.5 - 0.5 + 1.0 + 0.0 + 0.0) / 5)
    assert res.mean_accuracy_shifted == pytest.approx(3.0 / 5)
    with pytest.raises(ValueError):
        relative_loss([1.0], 0.0)
    assert shift_values(50, 10) == [-50, -40, -30, -20, -10, 0, 10, 20, 30, 40, 50]
    assert shift_values(5, 2) == [-4, -2, 0, 2, 4]


def test_rotation_and_scaling_operators():
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(mirror_rotate(x, 0), x)
    assert torch.equal(mirror_scale(x, 1.0), x)
    r90 = mirror_rotate(x, 90)
    assert r90.shape == x.shape
    best = min(float((r90 - torch.rot90(x, k, dims=(-2, -1))).abs().max()) for k in (1, -1))
    assert best < 1e-4
    assert mirror_scale(x, 0.5).shape == x.shape
    with pytest.raises(ValueError):
        mirror_scale(x, 0.3)


# ============================================================================ invariance


def test_circular_trunk_gap_heads_invariant_flatten_not():
    trunk = kaiming_trunk("circular", seed=1)
    torch.manual_seed(2)
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 24, 24), size=(96, 96), mode="bilinear",
                                        align_corners=False)
    xs = torch.roll(x, shifts=(32, 32), dims=(-2, -1))  # a multiple of the trunk's total stride
    for head in HEADS:
        model = build_classifier(head, 5, trunk=trunk, input_size=96)
        with torch.no_grad():
            a, b = model(x, normalize=True), model(xs, normalize=True)
            fa, fb = model.head_features(x, True), model.head_features(xs, True)
        scale = float(a.abs().max())
        if head in ("finalgap", "multigap"):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * scale)
            torch.testing.assert_close(fb, fa, rtol=1e-4, atol=1e-6 * float(fa.abs().max()))
        else:
            assert float((fa - fb).abs().max()) > 1e-2 * float(fa.abs().max()), head
            assert float((a - b).abs().max()) > 1e-3 * scale, head
            if head == "gap_flatten":  # its GAP part is invariant, its Flatten part is not
                torch.testing.assert_close(fb[:, :1472], fa[:, :1472], rtol=1e-4,
                                           atol=1e-6 * float(fa.abs().max()))


# ============================================================================ data + training


def _synthetic_folder(root, n_per_class=10, size=64, seed=0):
    """Two clearly different classes: warm horizontal stripes vs cool checkerboards (+ noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for cls in ("stripes", "checks"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            period = rng.integers(6, 12)
            phase = rng.integers(0, period)
            if cls == "stripes":
                pat = ((yy + phase) // (period // 2) % 2).astype(float)
                colour = np.array([0.9, 0.5, 0.1])
            else:
                pat = (((yy + phase) // (period // 2) + (xx + phase) // (period // 2)) % 2).astype(float)
                colour = np.array([0.1, 0.4, 0.9])
            img = 0.15 + 0.7 * pat[..., None] * colour + 0.08 * rng.standard_normal((size, size, 3))
            save_png(root / cls / f"{i:02d}.png", img)
    return root


def test_training_gap_heads_on_cached_features(tmp_path):
    data = _synthetic_folder(tmp_path / "train", n_per_class=12)
    test = _synthetic_folder(tmp_path / "test", n_per_class=5, seed=1)
    trunk = kaiming_trunk()
    cfg = TrainConfig(epochs=60, patience=15, size=64, val_fraction=0.25)
    out = tmp_path / "out"
    results = train_heads(data, heads=("finalgap", "multigap"), out=out, config=cfg, trunk=trunk, progress=False)
    for head, res in results.items():
        assert res.best_val_accuracy >= 0.99, (head, res.history[-1])
        ckpt = out / head / "head.safetensors"
        assert ckpt.is_file() and (out / head / "history.json").is_file()
        assert res.parameters["trainable"] == 1472 * 2 + 2 if head == "multigap" else 512 * 2 + 2
        # the checkpoint reloads to the same classifier; it generalises to unseen images
        model = load_classifier(ckpt, trunk=trunk)
        assert model.classes == ["checks", "stripes"] and model.meta["head"] == head
        samples, _ = load_samples(test, classes=model.classes)
        ds = ImageListDataset(samples, 64)
        x = torch.stack([ds[i][0] for i in range(len(ds))])
        y = torch.tensor([s[1] for s in samples])
        with torch.no_grad():
            logits = model(x, normalize=True)
            torch.testing.assert_close(logits, res.model(x, normalize=True))
        assert float((logits.argmax(1) == y).float().mean()) >= 0.9
    summary = json.loads((out / "multigap" / "history.json").read_text())
    assert summary["head"] == "multigap" and summary["feature_cache"]
    assert len(list((out / "cache").glob("features-*.pt"))) == 2  # train + val split


def test_flatten_heads_cached_and_streamed_agree(tmp_path):
    data = _synthetic_folder(tmp_path / "d", n_per_class=4, size=32)
    trunk = kaiming_trunk()
    cfg = TrainConfig(epochs=2, patience=5, size=32, val_fraction=0.25)
    cached = train_heads(data, heads=("baseline", "gap_flatten"), config=cfg, trunk=trunk, cache_dir=None,
                         progress=False)
    streamed = train_heads(data, heads=("baseline",), config=cfg, trunk=trunk, stream=True, progress=False)
    assert cached["baseline"].parameters["trainable"] == 512 * 2 + 2
    assert cached["gap_flatten"].parameters["trainable"] == (1472 + 512) * 2 + 2
    # same seed, same batches, same features: the two paths train the same head
    for k in ("loss", "val_loss", "val_accuracy"):
        assert streamed["baseline"].history[-1][k] == pytest.approx(cached["baseline"].history[-1][k], rel=1e-4)


def test_feature_cache_keyed_by_content(tmp_path):
    root = _synthetic_folder(tmp_path / "d", n_per_class=2, size=32)
    samples, classes = load_samples(root)
    trunk = kaiming_trunk()
    cache = tmp_path / "cache"
    a = extract_features(trunk, samples, size=32, cache_dir=cache, progress=False)
    assert not a.from_cache and a.cache_path.is_file() and a.gap.shape == (4, 1472) and a.flatten is None
    blob = torch.load(a.cache_path, weights_only=True)
    assert set(blob) == {"gap", "labels"}
    b = extract_features(trunk, samples, size=32, cache_dir=cache, progress=False)
    assert b.from_cache and torch.equal(a.gap, b.gap)
    c = extract_features(trunk, samples, size=32, flatten=True, cache_dir=cache, progress=False)
    assert not c.from_cache and c.flatten.shape == (4, 512)  # needs Flatten: recomputed, same key
    torch.testing.assert_close(features_for_head(c, "finalgap"), a.gap[:, -512:])
    save_png(samples[0][0], np.zeros((32, 32, 3)))  # content changes -> new key
    d = extract_features(trunk, samples, size=32, cache_dir=cache, progress=False)
    assert not d.from_cache and d.cache_path != a.cache_path


def test_missing_and_corrupt_images_are_named(tmp_path):
    good = tmp_path / "good.png"
    save_png(good, np.full((40, 40, 3), 0.5))
    missing = tmp_path / "nope" / "missing.png"
    csv_file = tmp_path / "set.csv"
    csv_file.write_text(f"path,label\n{good},a\n{missing},b\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_samples(csv_file)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"definitely not a png")
    csv_file.write_text(f"good.png,a\ncorrupt.png,b\n")  # relative paths, no header
    samples, classes = load_samples(csv_file)
    assert classes == ["a", "b"] and samples[0] == (good, 0)
    ds = ImageListDataset(samples, 32)
    assert ds[0][0].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="corrupt.png"):
        ds[1]
    with pytest.raises(FileNotFoundError, match="missing.png"):
        extract_features(VGG16Trunk(weights=None), [(missing, 0)], size=32, cache_dir=tmp_path / "c",
                         progress=False)
    with pytest.raises(FileNotFoundError, match="no_such_dataset"):
        load_samples(tmp_path / "no_such_dataset")


def test_translation_test_grid_and_reference(tmp_path):
    trunk = kaiming_trunk()
    model = build_classifier("multigap", 3, trunk=trunk, input_size=32)
    x = torch.rand(4, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 0])
    res = translation_test(model, (x, y), max_shift=8, step=8, size=32, batch_size=3, progress=False)
    assert res.dxs == [-8, 0, 8] and res.loss.shape == (3, 3) and res.n_images == 4
    with torch.no_grad():
        ref = torch.nn.functional.cross_entropy(model(x, normalize=True), y)
        shifted = torch.nn.functional.cross_entropy(model(mirror_crop(x, 8, -8), normalize=True), y)
    assert res.loss_at_zero == pytest.approx(float(ref), rel=1e-5)
    assert res.loss[0, 2] == pytest.approx(float(shifted), rel=1e-5)  # row dy=-8, column dx=8
    res.write_csv(tmp_path / "grid.csv")
    assert len((tmp_path / "grid.csv").read_text().strip().splitlines()) == 1 + 9
    pytest.importorskip("matplotlib")
    from invariant_lpips.classifier.translation import plot_translation_heatmaps

    assert plot_translation_heatmaps(res, tmp_path / "h.png").stat().st_size > 0


# ============================================================================ digits + CLI


def test_digits_canvas_and_heads():
    from invariant_lpips.classifier.digits import DigitsHead, SmallConvTrunk, place_on_canvas

    d = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
    c = place_on_canvas(d, 12, dx=3, dy=-2)
    top, left = (12 - 4) // 2 - 2, (12 - 4) // 2 + 3
    assert torch.equal(c[0, 0, top:top + 4, left:left + 4], d[0, 0]) and float(c.sum()) == float(d.sum())
    with pytest.raises(ValueError):
        place_on_canvas(d, 12, dx=5)
    trunk = SmallConvTrunk((16, 32, 64))
    counts = {h: sum(p.numel() for p in DigitsHead(h, (16, 32, 64), (6, 6), 10).parameters()) for h in HEADS}
    assert counts == {"baseline": 2304 * 10 + 10, "finalgap": 650, "multigap": 112 * 10 + 10,
                      "gap_flatten": (112 + 2304) * 10 + 10}
    pools = trunk(torch.rand(2, 1, 48, 48))
    assert [tuple(p.shape[1:]) for p in pools] == [(16, 24, 24), (32, 12, 12), (64, 6, 6)]


def test_digits_demo_smoke(tmp_path):
    pytest.importorskip("sklearn")
    from invariant_lpips.classifier.digits import DigitsConfig, run_digits_demo

    cfg = DigitsConfig(digit_size=8, canvas=32, channels=(4, 8, 8), max_shift=4, grid_step=4, pretrain_epochs=1,
                       head_epochs=2, head_patience=1, heads=("baseline", "finalgap"))
    res = run_digits_demo(tmp_path, cfg, progress=False, verbose=False, plot=False)
    assert set(res["heads"]) == {"baseline", "finalgap"}
    assert res["split"] == {"train": 1077, "val": 270, "test": 450}
    assert len(res["heads"]["finalgap"]["dx_sweep"]["accuracy"]) == 9
    for f in ("results.json", "shift_curve.csv", "shift_grid.csv", "summary.csv"):
        assert (tmp_path / f).is_file()


def test_cli_registration(capsys):
    from invariant_lpips.cli import build_parser, main

    args = build_parser().parse_args(["classifier", "train", "--data", "d", "--head", "multigap", "--out", "o"])
    assert callable(args.func) and args.lr == 1e-3 and args.batch_size == 32 and args.patience == 25
    assert args.seed == 666 and args.size == 256
    args = build_parser().parse_args(["classifier", "translation-test", "--checkpoint", "c", "--data", "d",
                                      "--out", "o"])
    assert args.max_shift == 50 and callable(args.func)
    assert callable(build_parser().parse_args(["classifier", "digits-demo", "--out", "o"]).func)
    assert main(["classifier", "params"]) == 0
    out = capsys.readouterr().out
    assert "5,243,040" in out and "82,080" in out and "235,680" in out and "5,478,560" in out


def test_cli_train_then_translation_test(tmp_path, capsys):
    from invariant_lpips.cli import main

    data = _synthetic_folder(tmp_path / "d", n_per_class=3, size=32)
    out = tmp_path / "run"
    assert main(["classifier", "train", "--data", str(data), "--head", "finalgap,multigap", "--out", str(out),
                 "--weights", "random", "--size", "32", "--epochs", "2", "--val-fraction", "0.34", "--quiet"]) == 0
    assert (out / "multigap" / "head.safetensors").is_file() and (out / "train_summary.json").is_file()
    res = tmp_path / "tt"
    assert main(["classifier", "translation-test", "--checkpoint", str(out / "finalgap" / "head.safetensors"),
                 "--data", str(data), "--out", str(res), "--weights", "random", "--max-shift", "4", "--step", "4",
                 "--rotations=-10,0,10", "--scales=0.9,1,1.1", "--no-plot", "--quiet"]) == 0
    report = json.loads((res / "translation.json").read_text())
    assert report["translation"]["dxs"] == [-4, 0, 4] and report["translation"]["n_images"] == 6
    assert report["rotation"]["values"] == [-10.0, 0.0, 10.0] and "mean_relative_loss" in report["scaling"]
    assert (res / "translation_grid.csv").is_file() and (res / "rotation.csv").is_file()
    assert "mean relative loss" in capsys.readouterr().out
    # a random-trunk checkpoint is not silently paired with ImageNet weights
    assert main(["classifier", "translation-test", "--checkpoint", str(out / "finalgap" / "head.safetensors"),
                 "--data", str(data), "--out", str(res)]) == 1


def test_features_are_the_spines_gap_and_the_key_follows_the_weights(tmp_path):
    """The classifier pools with features.pooled.global_average (no GAP of its own) and keys its cache
    on the trunk's weights."""
    from invariant_lpips.classifier.train import trunk_fingerprint
    from invariant_lpips.features.pooled import global_average
    from invariant_lpips.trunk import POOL_TAPS, lpips_scale

    root = _synthetic_folder(tmp_path / "d", n_per_class=1, size=32)
    samples, _ = load_samples(root)
    trunk = kaiming_trunk()
    fs = extract_features(trunk, samples, size=32, progress=False)
    x = torch.stack([ImageListDataset(samples, 32)[i][0] for i in range(len(samples))])
    with torch.no_grad():
        out = trunk(lpips_scale(2 * x - 1))
    assert torch.equal(fs.gap, torch.cat([global_average(out[t]) for t in POOL_TAPS], dim=1))
    other = kaiming_trunk(seed=1)
    assert trunk_fingerprint(trunk) != trunk_fingerprint(other)
