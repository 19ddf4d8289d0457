"""Tests of the translation-robustness study and of the shift operators and tensor distortions it
takes from the distortion library (tiny tensors, no VGG weights)."""
from __future__ import annotations

import argparse
import csv
import json
import math

import numpy as np
import pytest
import torch

from invariant_lpips.distortions.shifts import (
    circular_shift,
    crop_shift_pair,
    mirror_mosaic_shift,
    subpixel_shift,
)
from invariant_lpips.distortions.tensor import default_distortions
from invariant_lpips.robustness import cli as rcli
from invariant_lpips.robustness import images as rimages
from invariant_lpips.robustness.measures import (
    Triplet,
    evaluate_metric,
    make_distortion_triplets,
    rank_flip_rate,
    shift_sweep,
    shift_to_distortion_ratio,
)
from invariant_lpips.robustness.periodicity import periodicity


def mse(x, y):
    return ((x - y) ** 2).flatten(1).mean(1)


def l1_4d(x, y):  # returns (N, 1, 1, 1) like lpips
    return (x - y).abs().mean(dim=(1, 2, 3), keepdim=True)


def rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g)


# ----------------------------------------------------------------------------- shifts


@pytest.mark.parametrize("dx,dy", [(0, 0), (1, 0), (0, 2), (-3, 1), (5, -4), (9, 7)])
def test_circular_shift_equals_numpy_roll(dx, dy):
    x = rand(2, 3, 6, 7)
    out = circular_shift(x, dx, dy)
    ref = np.roll(x.numpy(), shift=(dy, dx), axis=(-2, -1))
    np.testing.assert_array_equal(out.numpy(), ref)


def test_crop_shift_pair_indices():
    x = torch.arange(2 * 3 * 5 * 10, dtype=torch.float32).reshape(2, 3, 5, 10)
    m = 4
    for k in range(m + 1):
        ref, sh = crop_shift_pair(x, k, m, "x")
        assert ref.shape == sh.shape == (2, 3, 5, 10 - m)
        assert torch.equal(ref, x[..., :, 0 : 10 - m])
        assert torch.equal(sh, x[..., :, k : 10 - m + k])
        ref, sh = crop_shift_pair(x, k % 2, 2, "y")
        assert torch.equal(ref, x[..., 0:3, :])
        assert torch.equal(sh, x[..., k % 2 : 3 + k % 2, :])
    with pytest.raises(ValueError):
        crop_shift_pair(x, m + 1, m)
    with pytest.raises(ValueError):
        crop_shift_pair(x, -1, m)
    with pytest.raises(ValueError):
        crop_shift_pair(x, 0, 10)  # nothing left


@pytest.mark.parametrize("dx,dy,size", [(0, 0, None), (3, -2, None), (-5, 4, None), (2, 1, (4, 3)), (-7, 6, 3), (6, 5, None)])
def test_mirror_mosaic_equals_numpy_symmetric_pad(dx, dy, size):
    x = rand(1, 2, 5, 6)
    h, w = 5, 6
    out = mirror_mosaic_shift(x, dx, dy, size=size)
    pad = np.pad(x.numpy(), ((0, 0), (0, 0), (h, h), (w, w)), mode="symmetric")
    oh, ow = (h, w) if size is None else ((size, size) if isinstance(size, int) else size)
    top = h + (h - oh) // 2 + dy
    left = w + (w - ow) // 2 + dx
    np.testing.assert_array_equal(out.numpy(), pad[..., top : top + oh, left : left + ow])


def test_mirror_mosaic_identity_and_bounds():
    x = rand(1, 3, 4, 5)
    assert torch.equal(mirror_mosaic_shift(x, 0, 0), x)
    mirror_mosaic_shift(x, 5, 4)  # last valid window
    with pytest.raises(ValueError):
        mirror_mosaic_shift(x, 6, 0)
    with pytest.raises(ValueError):
        mirror_mosaic_shift(x, 0, -5)


def _bandlimited(h=16, w=20):
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    img = (
        0.5
        + 0.2 * torch.cos(2 * math.pi * (2 * xx / w + 1 * yy / h) + 0.3)
        + 0.1 * torch.sin(2 * math.pi * (3 * xx / w - 2 * yy / h))
        + 0.05 * torch.cos(2 * math.pi * 5 * yy / h + 1.0)
    )
    return img.float().reshape(1, 1, h, w).repeat(1, 3, 1, 1)


@pytest.mark.parametrize("dx,dy", [(1, 0), (0, 3), (-2, 5), (7, -1)])
def test_fourier_integer_shift_equals_roll(dx, dy):
    x = rand(2, 3, 16, 15)
    out = subpixel_shift(x, dx, dy, method="fourier")
    torch.testing.assert_close(out, torch.roll(x, (dy, dx), (-2, -1)), atol=1e-5, rtol=0)
    assert out.dtype == x.dtype


def test_fourier_half_shift_twice_equals_one():
    x = _bandlimited()
    half = subpixel_shift(subpixel_shift(x, 0.5, 0.5), 0.5, 0.5)
    one = subpixel_shift(x, 1, 1)
    torch.testing.assert_close(half, one, atol=1e-5, rtol=0)
    torch.testing.assert_close(one, torch.roll(x, (1, 1), (-2, -1)), atol=1e-5, rtol=0)
    # and it really interpolates: the half shift is not the image itself
    assert (subpixel_shift(x, 0.5, 0) - x).abs().max() > 1e-2


def test_bilinear_shift():
    x = rand(1, 3, 6, 8)
    # integer shift: translation with the edge column repeated
    out = subpixel_shift(x, 2, 0, method="bilinear")
    expect = torch.cat([x[..., :1].expand(-1, -1, -1, 2), x[..., :-2]], dim=-1)
    torch.testing.assert_close(out, expect, atol=1e-6, rtol=0)
    out = subpixel_shift(x, 0, -1, method="bilinear")
    expect = torch.cat([x[..., 1:, :], x[..., -1:, :]], dim=-2)
    torch.testing.assert_close(out, expect, atol=1e-6, rtol=0)
    # half shift: mean of the two neighbours in the interior
    half = subpixel_shift(x, 0.5, 0, method="bilinear")
    torch.testing.assert_close(half[..., 1:], 0.5 * (x[..., 1:] + x[..., :-1]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        subpixel_shift(x, 1, 0, method="cubic")


# ----------------------------------------------------------------------------- periodicity


@pytest.mark.parametrize("period", [8, 6, 4, 12.5])
def test_periodicity_recovers_planted_period(period):
    k = np.arange(0, 33)
    amp, base = 0.05, 0.2
    d = base + 0.01 * k + amp * np.sin(2 * np.pi * k / period + 0.4)
    d[0] = 0.0  # d(x, x)
    res = periodicity(d, k)
    assert abs(res.period - period) < 0.05 * period
    assert math.isclose(res.frequency, 1 / res.period)
    assert res.n_periods == 32 // int(round(res.period))
    if period == 8:
        # integer number of cycles over k = 1..32: amplitude and detrended ripple are exact-ish
        assert abs(res.amplitude - amp) < 0.01
        p = 8
        blocks = d[1:33].reshape(4, p)
        expect = np.ptp(blocks, axis=1).mean() / blocks.mean()
        assert math.isclose(res.ripple, expect, rel_tol=1e-9)
        assert 0 < res.ripple_detrended < res.ripple
    js = res.to_dict()
    json.dumps(js, allow_nan=False)


def test_periodicity_2d_and_flat():
    k = np.arange(33)
    rng = np.random.default_rng(0)
    rows = 0.3 + 0.005 * k + 0.04 * np.cos(2 * np.pi * k / 8) + 0.005 * rng.standard_normal((5, 33))
    rows[:, 0] = 0
    assert abs(periodicity(rows, k).period - 8) < 0.4
    flat = periodicity(np.r_[0.0, np.full(32, 0.25)], k)
    assert math.isnan(flat.period) and flat.ripple == 0.0
    with pytest.raises(ValueError):
        periodicity([0, 1, 2, 4, 5, 6], [0, 1, 2, 4, 5, 6])  # irregular spacing
    # a two-sided sweep -16..16 with d(0) = 0 in the middle
    ks = np.arange(-16, 17)
    d = 0.3 + 0.05 * np.cos(2 * np.pi * ks / 8)
    d[16] = 0
    assert abs(periodicity(d, ks).period - 8) < 0.2


def test_shift_sweep_finds_period_of_periodic_image():
    # content periodic with period 8 along x: the circular MSE sweep is 1 - cos(2 pi k / 8) (scaled)
    w = 32
    xx = torch.arange(w, dtype=torch.float32)
    img = (0.5 + 0.25 * torch.sin(2 * math.pi * xx / 8)).reshape(1, 1, 1, w).expand(2, 3, 12, w).contiguous()
    sw = shift_sweep(mse, img, range(0, 33), protocol="circular")
    assert sw.shape == (2, 33)
    expect = 0.25**2 * (1 - np.cos(2 * np.pi * np.arange(33) / 8))
    np.testing.assert_allclose(sw[0], expect, atol=1e-6)
    assert abs(periodicity(sw, range(33), detrend="mean").period - 8) < 0.2


def test_shift_sweep_protocols_and_batching():
    imgs = rand(3, 3, 10, 12)
    a = shift_sweep(mse, imgs, range(0, 5), protocol="crop", batch_size=1)
    b = shift_sweep(l1_4d, [im for im in imgs], range(0, 5), protocol="crop", batch_size=7)
    assert a.shape == b.shape == (3, 5)
    assert np.all(a[:, 0] == 0) and np.all(b[:, 0] == 0)
    # crop sweep by hand
    ref = imgs[1:2, :, :, 0:8]
    np.testing.assert_allclose(a[1, 3], mse(ref, imgs[1:2, :, :, 3:11]).item(), rtol=1e-6)
    c = shift_sweep(mse, imgs, range(0, 5), protocol="crop", batch_size=4)
    np.testing.assert_allclose(a, c, rtol=1e-6)
    # rows constant along y: vertical sweeps vanish for every whole-pixel protocol
    flat_y = imgs[:, :, :1, :].expand(-1, -1, 10, -1).contiguous()
    for proto in ("crop", "circular"):
        assert np.all(shift_sweep(mse, flat_y, range(4), axis="y", protocol=proto) == 0)
    m = shift_sweep(mse, imgs, [-2, 0, 3], protocol="mirror")
    assert m.shape == (3, 3) and np.all(m[:, 1] == 0) and np.all(m[:, [0, 2]] > 0)
    f = shift_sweep(mse, imgs, [0, 0.5, 1], protocol="fourier")
    assert f.shape == (3, 3) and np.all(f[:, 0] == 0)
    with pytest.raises(ValueError):
        shift_sweep(mse, imgs, range(0, 5), protocol="crop", margin=3)
    with pytest.raises(ValueError):
        shift_sweep(lambda x, y: mse(x, y)[:1], imgs, range(3))  # wrong number of distances


# ----------------------------------------------------------------------------- rank flips


def test_rank_flip_known_answer():
    h, w = 4, 16
    zeros = torch.zeros(3, h, w)
    const = lambda v: torch.full((3, h, w), v)  # noqa: E731
    ramp = (0.04 * torch.arange(w, dtype=torch.float32)).reshape(1, 1, w).expand(3, h, w).contiguous()

    def l1(x, y):
        return (x - y).abs().flatten(1).mean(1)

    # crop width 16 - 3 = 13; mean of the ramp crop shifted by k = 0.04 (k + 6) = 0.24, 0.28, 0.32, 0.36
    triplets = [
        (zeros, const(0.3), ramp),  # p1 preferred at k=0,1; p0 at k=2,3 -> flips at 2, 3
        (zeros, ramp, const(0.3)),  # the same, mirrored
        (zeros, const(0.1), const(0.2)),  # never flips
        (zeros, const(0.2), const(0.2)),  # exact tie: never a flip, counted as tie
    ]
    res = rank_flip_rate(l1, triplets, shifts=(1, 2, 3), margin=3, batch_size=3)
    assert res.n_triplets == 4
    assert res.flips == [0, 2, 2]
    assert res.rate == [0.0, 0.5, 0.5]
    assert res.baseline_ties == 1
    assert res.ties == [1, 1, 1]
    assert res.flipped.shape == (4, 3)
    assert res.flipped[:2, 1:].all() and not res.flipped[2:].any()
    json.dumps(res.to_dict(), allow_nan=False)


def test_rank_flip_fake_metric_with_planted_flips():
    # fake metric whose preference reverses at odd shifts for one triplet only:
    # d(ref, p) = mean of p over the crop's first column (the shift changes which column it is)
    w = 10
    col = torch.arange(w, dtype=torch.float32)
    zig = ((col % 2) * 0.5 + 0.25).reshape(1, 1, w).expand(3, 2, w)  # 0.25, 0.75, 0.25, ...
    half = torch.full((3, 2, w), 0.5)
    ref = torch.zeros(3, 2, w)

    def first_column(x, y):
        return y[..., 0].flatten(1).mean(1)

    res = rank_flip_rate(first_column, [Triplet(ref, zig, half, "zig", "half", 0), (ref, half, half * 0.9)],
                         shifts=(1, 2, 3, 4), margin=4)
    assert res.flips == [1, 0, 1, 0]
    assert res.labels == []  # mixed labelled/unlabelled triplets: no labels


def test_default_distortion_triplets():
    dists = default_distortions()
    assert len(dists) == 17
    kinds = {n.split(":")[0] for n, _ in dists}
    assert kinds == {"noise", "blur", "tone", "colour"}
    img = rand(1, 3, 16, 16, seed=3) * 0.6 + 0.2
    for name, fn in dists:
        y = fn(img)
        assert y.shape == img.shape and y.min() >= 0 and y.max() <= 1, name
        assert not torch.equal(y, img), name
        assert torch.equal(fn(img), y), name  # deterministic
    triplets = make_distortion_triplets(torch.cat([img, img.flip(-1)]), dists)
    assert len(triplets) == 2 * 136
    assert triplets[0].name0 == dists[0][0] and triplets[0].name1 == dists[1][0]
    assert triplets[-1].image_index == 1
    # images constant along x: horizontal shifts change no crop except the noise pattern
    flat = img[..., :1].expand(-1, -1, -1, 16).contiguous()
    res = rank_flip_rate(mse, flat, shifts=(1,), distortions=[d for d in dists if not d[0].startswith("noise")])
    assert res.n_triplets == 78 and res.flips == [0]
    res = rank_flip_rate(mse, img, shifts=(1, 2))
    assert res.n_triplets == 136 and 0 <= res.rate[1] <= 1
    assert set(res.to_dict()["rate_by_pair_kind"]) >= {"blur|noise", "colour|tone"}


# ----------------------------------------------------------------------------- shift / distortion


def test_shift_to_distortion_ratio():
    const = torch.full((2, 3, 12, 12), 0.4)
    r = shift_to_distortion_ratio(mse, const, "noise")
    assert r.ratio == 0.0 and r.median_shift == 0.0
    assert r.median_distortion == pytest.approx(0.02**2, rel=0.3)
    rb = shift_to_distortion_ratio(mse, const, "blur")
    assert math.isnan(rb.ratio)  # 0 / 0: blur leaves a constant image unchanged
    imgs = rand(3, 3, 12, 12)
    r = shift_to_distortion_ratio(mse, imgs, "noise", shift=1)
    assert r.ratio > 1  # a 1-px shift of white noise is a huge change for MSE
    assert r.d_shift.shape == (3,)
    with pytest.raises(ValueError):
        shift_to_distortion_ratio(mse, imgs, "jpeg")


def test_evaluate_metric_json():
    imgs = rand(2, 3, 16, 16)
    stages = []
    res = evaluate_metric(mse, imgs, shifts=range(0, 9), protocols=("crop", "mirror"), flip_shifts=(1,),
                          name="mse", callback=stages.append)
    assert stages == ["sweep:crop", "sweep:mirror", "rank_flip", "sdr:noise", "sdr:blur"]
    text = json.dumps(res, allow_nan=False)
    back = json.loads(text)
    assert back["metric"] == "mse" and back["n_images"] == 2
    assert len(back["sweeps"]["crop"]["mean"]) == 9
    assert back["rank_flip"]["n_triplets"] == 272
    assert set(back["shift_to_distortion"]) == {"noise", "blur"}


# ----------------------------------------------------------------------------- CLI


def _parser():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    rcli.register(sub)
    return parser


def _write_images(folder, n=2, size=(36, 40)):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
        base = 127 + 80 * np.sin(2 * np.pi * (xx / 7.0 + i * yy / 11.0))[..., None]
        arr = np.clip(base + rng.normal(0, 20, (*size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"im{i}.{'png' if i % 2 == 0 else 'jpg'}")


def test_parse_helpers():
    assert rcli.parse_shifts("0..4") == [0, 1, 2, 3, 4]
    assert rcli.parse_shifts("0..2:0.5") == [0, 0.5, 1, 1.5, 2]
    assert rcli.parse_shifts("0..2,8,16") == [0, 1, 2, 8, 16]
    with pytest.raises(ValueError):
        rcli.parse_shifts("a..b")


def test_cli_end_to_end(tmp_path, monkeypatch, capsys):
    _write_images(tmp_path / "imgs")
    out = tmp_path / "out"
    calls = []
    real = rcli.resolve_metric

    def fake_resolve(name, device):
        calls.append((name, device))
        return real(name, device)

    monkeypatch.setattr(rcli, "resolve_metric", fake_resolve)
    args = _parser().parse_args(
        ["robustness", "--images", str(tmp_path / "imgs"), "--metrics", "mse,l1", "--out", str(out),
         "--size", "24", "--shifts", "0..8", "--flip-shifts", "1,2", "--device", "cpu", "--quiet"]
    )
    assert args.func(args) == 0
    # each metric is built once up front (fail fast), then again for its evaluation
    assert calls == [("mse", "cpu"), ("l1", "cpu"), ("mse", "cpu"), ("l1", "cpu")]
    # a summary on stdout, one row per metric, even with --quiet
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:3] == ["metric", "flip", "rate"] and "ripple crop" in printed[0]
    assert [line.split()[0] for line in printed[1:3]] == ["mse", "l1"]
    data = json.loads((out / "robustness.json").read_text())
    assert [r["metric"] for r in data["results"]] == ["mse", "l1"]
    assert data["config"]["files"] == ["im0.png", "im1.jpg"]
    r0 = data["results"][0]
    assert r0["n_images"] == 2 and r0["image_sizes"] == [[24, 24]]
    assert r0["rank_flip"]["n_triplets"] == 272
    with open(out / "sweeps.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 2 * 9  # metrics x protocols x shifts
    assert {r["protocol"] for r in rows} == {"crop", "mirror"}
    assert (out / "rank_flips.csv").exists() and (out / "summary.csv").exists()
    from invariant_lpips.robustness.report import matplotlib_available

    if matplotlib_available():
        for name in ("sweep_crop.png", "sweep_mirror.png", "rank_flips.png"):
            assert (out / name).stat().st_size > 1000


def test_cli_injected_metric_and_errors(tmp_path, monkeypatch):
    _write_images(tmp_path / "imgs", n=1)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not an image")

    class Fake:
        name = "fake"
        lower_is_better = True

        def __call__(self, x, y):
            return (x - y).abs().mean(dim=(1, 2, 3))

    monkeypatch.setattr(rcli, "resolve_metric", lambda name, device: Fake())
    args = _parser().parse_args(
        ["robustness", "--images", str(tmp_path / "imgs"), "--metrics", "whatever", "--out", str(tmp_path / "o"),
         "--size", "16", "--shifts", "0..4", "--flip-shifts", "none", "--no-plots", "--quiet"]
    )
    with pytest.raises(ValueError, match="broken.png"):
        args.func(args)
    args.max_images = 1  # sorted: broken.png comes first -> still broken
    with pytest.raises(ValueError, match="broken.png"):
        args.func(args)
    (tmp_path / "imgs" / "broken.png").unlink()
    assert args.func(args) == 0
    data = json.loads((tmp_path / "o" / "robustness.json").read_text())
    assert data["results"][0]["metric"] == "fake" and data["results"][0]["rank_flip"] is None
    args.images = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="missing"):
        args.func(args)
    args.images = str(tmp_path / "imgs")
    args.size = "64"
    with pytest.raises(ValueError, match="im0.png"):
        args.func(args)


def test_cli_size_is_width_by_height(tmp_path):
    _write_images(tmp_path / "imgs", n=1)
    args = _parser().parse_args(
        ["robustness", "--images", str(tmp_path / "imgs"), "--metrics", "mse", "--out", str(tmp_path / "o"),
         "--size", "24x16", "--shifts", "0..4", "--protocols", "crop", "--flip-shifts", "none", "--no-plots",
         "--quiet", "--device", "cpu"]
    )
    assert args.func(args) == 0
    data = json.loads((tmp_path / "o" / "robustness.json").read_text())
    assert data["config"]["size"] == [16, 24]  # (height, width)
    assert data["results"][0]["image_sizes"] == [[16, 16 + 8]]


def test_resolve_metric_builtins():
    m = rcli.resolve_metric("MSE", "cpu")
    x, y = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert torch.allclose(m(x, y), torch.full((2,), 0.25))
    assert m.name == "mse" and m.lower_is_better
    assert torch.allclose(rcli.resolve_metric("l1", "cpu")(x, y), torch.full((2,), 0.5))


def test_load_images_and_center_crop(tmp_path):
    _write_images(tmp_path, n=1, size=(9, 11))
    files, batch = rimages.load_images(tmp_path, None)
    img = batch[0]
    assert [f.name for f in files] == ["im0.png"]
    assert img.shape == (3, 9, 11) and img.dtype == torch.float32 and 0 <= img.min() and img.max() <= 1
    crop = rimages.center_crop(img, (4, 6))
    assert torch.equal(crop, img[:, 2:6, 2:8])
    assert rimages.center_crop(img, (16, 16), resize=True).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="im0.png"):
        rimages.center_crop(img, (16, 16), path=files[0])
    # --size WIDTHxHEIGHT crops (height, width)
    _, cropped = rimages.load_images(tmp_path, (4, 6))
    assert cropped.shape == (1, 3, 4, 6)


def test_rank_flip_dedupe_matches_plain_evaluation():
    """Rank flips compute each distinct (reference, candidate) pair once; the result is unchanged."""
    from invariant_lpips.robustness import measures as M

    calls = []

    def counting_mse(x, y):
        calls.append(y.shape[0])
        return ((x - y) ** 2).mean(dim=(1, 2, 3))

    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(1, 3, 24, 40, generator=g)
    dists = [(f"n{i}", (lambda s: (lambda im: (im + s).clamp(0, 1)))(0.05 * i)) for i in range(1, 5)]
    res = M.rank_flip_rate(counting_mse, imgs, shifts=(1, 2), distortions=dists, batch_size=4)
    assert res.n_triplets == 6
    assert sum(calls) == 4 * 3  # 4 candidates x (unshifted + 2 shifts), not 6 triplets x 3 x 2
    plain = np.array([[[float(counting_mse(t[0][..., :38], t[j][..., k:38 + k])) for j in (1, 2)]
                       for k in (0, 1, 2)] for t in M.make_distortion_triplets(imgs, dists)])
    np.testing.assert_allclose(res.distances, plain, rtol=1e-6)


def test_registry_adapters_get_the_reference_once():
    """A metric whose registry spec says it broadcasts receives a shared reference as a batch of 1."""
    from types import SimpleNamespace

    from invariant_lpips.robustness import measures as M

    seen = []

    class Adapter:  # the registry's MetricAdapter keeps ``broadcasts`` on its spec
        spec = SimpleNamespace(broadcasts=True)

        def __call__(self, x, y):
            seen.append((x.shape[0], y.shape[0]))
            return ((x - y) ** 2).mean(dim=(1, 2, 3))

    imgs = rand(2, 3, 16, 24)
    d = shift_sweep(Adapter(), imgs, range(0, 5), protocol="circular", batch_size=5)  # one image per batch
    assert all(nx == 1 for nx, _ in seen) and sum(ny for _, ny in seen) == 2 * 5
    np.testing.assert_allclose(d, shift_sweep(mse, imgs, range(0, 5), protocol="circular"), rtol=1e-6)
    assert M._broadcasts(mse) is False


def test_cli_dtype_autocasts_the_metrics(tmp_path, monkeypatch):
    """--dtype bf16 runs each metric under torch.autocast (recorded in the config)."""
    import torch

    _write_images(tmp_path / "imgs")
    seen = []

    def probe(name, device):
        def metric(x, y):
            seen.append(torch.is_autocast_enabled("cpu"))
            return (x - y).pow(2).flatten(1).mean(1)
        return metric

    monkeypatch.setattr(rcli, "resolve_metric", probe)
    out = tmp_path / "out"
    args = _parser().parse_args(
        ["robustness", "--images", str(tmp_path / "imgs"), "--metrics", "m", "--out", str(out), "--size", "24",
         "--shifts", "0..2", "--protocols", "crop", "--flip-shifts", "1", "--device", "cpu", "--quiet",
         "--no-plots", "--dtype", "bf16"])
    assert args.func(args) == 0
    assert seen and all(seen)
    assert json.loads((out / "robustness.json").read_text())["config"]["dtype"] == "bf16"
