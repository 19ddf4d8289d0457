"""Tests of invariant_lpips.distortions (KADID-10k types, RAID distortions, dataset writer) and of the
type-level evaluation of its datasets (:mod:`invariant_lpips.data.type_level`). Synthetic images only;
no network, no /work/shared."""
from __future__ import annotations

import csv
from pathlib import Path
import math

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from invariant_lpips.data.type_level import evaluate_type_level, mean_distance_per_cell, read_type_level_table
from invariant_lpips.distortions import (
    DISTORTION_TYPES,
    LEVEL_PARAMS,
    distort,
    gaussian_noise,
    jpeg2000_available,
    level_parameter,
    parse_dist_name,
    rotate,
    scale,
    translate,
    write_kadid_style_dataset,
)
from invariant_lpips.distortions import _filters as flt
from invariant_lpips.distortions import _color as col

ALL_TYPES = list(range(1, 26))
RANDOM_TYPES = (3, 5, 11, 12, 13, 14, 15, 19, 20, 23)  # draw random numbers
IDENTITY_LEVELS = ((1, 1), (3, 1), (8, 1), (18, 3))
NON_MONOTONE = (18, 25)


def make_image(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """Smooth random colour field spanning 0..255 with small saturated regions (like a photo)."""
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.standard_normal((h, w, 3)), (5, 5, 0))
    f = f + 0.5 * ndimage.gaussian_filter(rng.standard_normal((h, w, 1)), (3, 3, 0))
    f = f + 0.1 * ndimage.gaussian_filter(rng.standard_normal((h, w, 3)), (0.7, 0.7, 0))
    f = (f - f.mean()) / f.std()
    f = np.clip(0.5 + 0.25 * f, 0.0, 1.0)
    return np.floor(f * 255 + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def img() -> np.ndarray:
    return make_image()


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def _skip_if_no_jp2(t: int) -> None:
    if t == 9 and not jpeg2000_available():
        pytest.skip("Pillow without OpenJPEG: JPEG2000 (type 9) unavailable")


# ----------------------------------------------------------------- table
def test_table_complete():
    assert sorted(DISTORTION_TYPES) == ALL_TYPES
    assert sorted(LEVEL_PARAMS) == ALL_TYPES
    names = [v.name for v in DISTORTION_TYPES.values()]
    assert len(set(names)) == 25
    for t, row in DISTORTION_TYPES.items():
        assert len(LEVEL_PARAMS[t]) == 5
        assert row.description and row.notes
        assert row.monotone == (t not in NON_MONOTONE)
    assert level_parameter(1, 5) == 5 and level_parameter(10, 1) == 43 and level_parameter(25, 5) == -0.6


# ----------------------------------------------------------------- basic contract
@pytest.mark.parametrize("t", ALL_TYPES)
def test_shape_dtype_and_levels(img, t):
    _skip_if_no_jp2(t)
    for lvl in range(1, 6):
        y = distort(img, t, lvl, seed=0)
        assert isinstance(y, np.ndarray)
        assert y.shape == img.shape and y.dtype == np.uint8  # uint8 => range 0..255


def test_pil_in_pil_out(img):
    y = distort(Image.fromarray(img), 11, 3, seed=0)
    assert isinstance(y, Image.Image) and y.mode == "RGB" and y.size == (img.shape[1], img.shape[0])
    np.testing.assert_array_equal(np.asarray(y), distort(img, 11, 3, seed=0))


@pytest.mark.parametrize("t,lvl", IDENTITY_LEVELS)
def test_identity_levels(img, t, lvl):
    np.testing.assert_array_equal(distort(img, t, lvl, seed=0), img)
    np.testing.assert_array_equal(distort(img, t, lvl, seed=7), img)


def test_minmax_normalize_option(img):
    """KADID's generator stretches input and output to [0, 1] (mapmm); for a low-contrast input
    that changes the identity levels, minmax_normalize=False keeps the input range."""
    low = (img // 2 + 40).astype(np.uint8)  # range 40..167
    stretched = distort(low, 1, 1)
    assert stretched.min() == 0 and stretched.max() == 255
    for t, lvl in IDENTITY_LEVELS:
        np.testing.assert_array_equal(distort(low, t, lvl, minmax_normalize=False), low)


def test_severity_grows_deterministic_types(img):
    """MSE to the reference grows with the level (one image) for deterministic monotone types."""
    for t in ALL_TYPES:
        if t in NON_MONOTONE or t in RANDOM_TYPES or t == 21:
            continue
        if t == 9 and not jpeg2000_available():
            continue
        m = [mse(distort(img, t, lvl), img) for lvl in range(1, 6)]
        assert all(np.diff(m) > 0), (t, DISTORTION_TYPES[t].name, m)


def test_severity_grows_random_types(img):
    """For random types the expected MSE (mean over 3 seeds) grows with the level."""
    for t in RANDOM_TYPES:
        m = np.mean([[mse(distort(img, t, lvl, seed=s), img) for lvl in range(1, 6)] for s in range(3)], axis=0)
        assert all(np.diff(m) > 0), (t, DISTORTION_TYPES[t].name, m.tolist())


def test_pixelate_blockiness_grows(img):
    """Pixelate: nearest-neighbour round trips do not give a monotone MSE at levels 1-4, but the
    number of distinct rows/columns (effective resolution) falls strictly with the level."""
    distinct = []
    for lvl in range(1, 6):
        y = distort(img, 21, lvl).astype(np.int32)
        rows = 1 + np.count_nonzero(np.any(y[1:] != y[:-1], axis=(1, 2)))
        cols = 1 + np.count_nonzero(np.any(y[:, 1:] != y[:, :-1], axis=(0, 2)))
        distinct.append(rows + cols)
    assert all(np.diff(distinct) < 0), distinct
    assert mse(distort(img, 21, 5), img) > mse(distort(img, 21, 1), img)


def test_non_monotone_types_documented(img):
    m18 = [mse(distort(img, 18, lvl), img) for lvl in range(1, 6)]
    assert m18[2] == 0 and m18[0] > m18[1] > 0 and m18[4] > m18[3] > 0
    m25 = [mse(distort(img, 25, lvl), img) for lvl in range(1, 6)]
    assert m25[0] > m25[1] > m25[2] and m25[4] > m25[3]
    for t in NON_MONOTONE:
        assert "NOT monotone" in DISTORTION_TYPES[t].notes


# ----------------------------------------------------------------- determinism
@pytest.mark.parametrize("t", ALL_TYPES)
def test_deterministic_under_seed(img, t):
    _skip_if_no_jp2(t)
    np.testing.assert_array_equal(distort(img, t, 4, seed=3), distort(img, t, 4, seed=3))


@pytest.mark.parametrize("t", RANDOM_TYPES)
def test_seeds_differ_for_random_types(img, t):
    outs = [distort(img, t, 4, seed=s) for s in (0, 1, 2)]
    # motion angle / shift direction can coincide for two seeds; three seeds cannot all agree by chance
    assert not (np.array_equal(outs[0], outs[1]) and np.array_equal(outs[1], outs[2]))


def test_deterministic_types_ignore_seed(img):
    for t in (1, 2, 4, 8, 16, 21, 24):
        np.testing.assert_array_equal(distort(img, t, 3, seed=0), distort(img, t, 3, seed=99))


# ----------------------------------------------------------------- errors
def test_errors_bad_type_level_image(img):
    with pytest.raises(ValueError, match=r"unknown KADID distortion type 26.*1\.\.25"):
        distort(img, 26, 1)
    with pytest.raises(ValueError, match=r"level 6 is out of range.*1\.\.5"):
        distort(img, 1, 6)
    with pytest.raises(ValueError, match=r"level 0"):
        distort(img, 1, 0)
    with pytest.raises(TypeError, match="dist_type must be an int"):
        distort(img, "blur", 1)
    with pytest.raises(ValueError, match=r"dtype uint8.*np\.clip"):
        distort(img.astype(np.float32) / 255, 1, 1)
    with pytest.raises(ValueError, match=r"shape \(H, W, 3\).*\(3, 96, 128\)"):
        distort(np.ascontiguousarray(img.transpose(2, 0, 1)), 1, 1)
    with pytest.raises(ValueError, match=r"shape \(H, W, 3\)"):
        distort(img[..., 0], 1, 1)
    with pytest.raises(TypeError, match="numpy array or a PIL image"):
        distort(img.tolist(), 1, 1)
    with pytest.raises(ValueError, match="seed"):
        distort(img, 11, 1, seed=-1)
    with pytest.raises(ValueError, match="at least 49x49"):
        distort(img[:40, :40], 20, 1)


# ----------------------------------------------------------------- helpers vs MATLAB facts
def test_matlab_kernels():
    # fspecial('disk', 1) (MATLAB): corners 0.0251, edges 0.1453, centre 0.3183
    d = flt.fspecial_disk(1)
    np.testing.assert_allclose(d, [[0.0251, 0.1453, 0.0251], [0.1453, 0.3183, 0.1453], [0.0251, 0.1453, 0.0251]], atol=1e-4)
    for r in (2, 4, 8):
        k = flt.fspecial_disk(r)
        assert k.shape == (2 * r + 1,) * 2 and abs(k.sum() - 1) < 1e-12 and np.allclose(k, k.T)
    # fspecial('motion', 5, 0): horizontal line of 5 equal taps
    np.testing.assert_allclose(flt.fspecial_motion(5, 0), np.full((1, 5), 0.2), atol=1e-12)
    m = flt.fspecial_motion(7, 37)
    assert abs(m.sum() - 1) < 1e-9 and np.allclose(m, m[::-1, ::-1])
    np.testing.assert_allclose(flt.fspecial_motion(1, 120).sum(), 1.0, atol=1e-12)
    # sigma 0.1 Gaussian is the identity kernel (MATLAB zeroes taps < eps * max)
    g = flt.fspecial_gaussian(3, 0.1)
    assert g[1, 1] == 1.0 and g.sum() == 1.0


def test_color_roundtrips():
    rng = np.random.default_rng(0)
    x = rng.random((8, 8, 3))
    np.testing.assert_allclose(col.lab2rgb(col.rgb2lab(x)), x, atol=1e-10)
    np.testing.assert_allclose(col.hsv2rgb(col.rgb2hsv(x)), x, atol=1e-12)
    np.testing.assert_allclose(col.ycbcr2rgb(col.rgb2ycbcr(x)), x, atol=1e-12)
    # MATLAB rgb2lab([1 0 0]) = [53.24 80.09 67.20] (D65)
    np.testing.assert_allclose(col.rgb2lab(np.array([[[1.0, 0, 0]]]))[0, 0], [53.24, 80.09, 67.20], atol=0.05)


def test_multithresh_two_classes():
    x = np.concatenate([np.full(100, 0.2), np.full(100, 0.8)])
    th = flt.multithresh(x, 1)
    assert 0.2 <= th[0] < 0.8


# ----------------------------------------------------------------- RAID
def test_translate_zero_is_identity(img):
    np.testing.assert_array_equal(translate(img, 0, 0), img)
    np.testing.assert_array_equal(rotate(img, 0), img)
    np.testing.assert_array_equal(scale(img, 1.0), img)
    np.testing.assert_array_equal(gaussian_noise(img, 0.0), img)


def test_translate_mirror_padding_exact():
    a = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    y = translate(a, 2, 0)  # content moves right by 2; left border mirrored (edge repeated)
    np.testing.assert_array_equal(y[:, 2:], a[:, :3])
    np.testing.assert_array_equal(y[:, 0], a[:, 1])
    np.testing.assert_array_equal(y[:, 1], a[:, 0])
    y = translate(a, -1, 3)  # left by 1, down by 3
    np.testing.assert_array_equal(y[3:, :4], a[:1, 1:])
    np.testing.assert_array_equal(y[3:, 4], a[:1, 4])  # right column: mirrored edge
    np.testing.assert_array_equal(y[:3, :4], a[[2, 1, 0]][:, 1:])  # top rows: mirrored
    # a fractional shift by a whole number of pixels through the interpolating path agrees
    b = make_image(32, 40)
    np.testing.assert_array_equal(translate(b, 3.0, -2.0), translate(b, 3, -2))


def test_raid_geometry(img):
    r = rotate(img, 90)
    h, w = img.shape[:2]
    # square centre crop rotated by 90 deg CCW equals np.rot90 of the crop (interior)
    s = 64
    top, left = (h - s) // 2, (w - s) // 2
    sq = np.ascontiguousarray(img[top : top + s, left : left + s])
    np.testing.assert_array_equal(rotate(sq, 90)[2:-2, 2:-2], np.rot90(sq)[2:-2, 2:-2])
    assert r.shape == img.shape and r.dtype == np.uint8
    z = scale(img, 1.09)
    assert z.shape == img.shape and mse(z, img) > 0
    zo = scale(img, 0.91)  # shrink: mirrored surround, no black border
    assert zo.shape == img.shape and zo[0].mean() > 5
    n1 = gaussian_noise(img, 0.05, seed=1)
    np.testing.assert_array_equal(n1, gaussian_noise(img, 0.05, seed=1))
    assert not np.array_equal(n1, gaussian_noise(img, 0.05, seed=2))
    assert 100 < mse(n1, img) < 200  # ~ (0.05*255)^2 = 163 minus clipping
    assert mse(rotate(img, 2), img) < mse(rotate(img, 8), img)
    pil = translate(Image.fromarray(img), 3, 1)
    assert isinstance(pil, Image.Image)
    with pytest.raises(ValueError, match="factor must be > 0"):
        scale(img, 0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        gaussian_noise(img, -0.1)


# ----------------------------------------------------------------- dataset writer
def _write_refs(folder, n=2, size=(80, 60)):
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"ref_{chr(ord('b') - i)}.png" if i < 2 else f"ref_{i}.png"  # sorted order differs from creation
        Image.fromarray(make_image(size[1], size[0], seed=i)).save(folder / name)
        names.append(name)
    (folder / "readme.txt").write_text("not an image")
    return sorted(names)


def test_dataset_writer_layout(tmp_path):
    refs = tmp_path / "refs"
    names = _write_refs(refs, n=2, size=(90, 70))
    Image.fromarray(make_image(100, 60, seed=5)).save(refs / "tall.jpg")  # portrait input
    names = sorted(names + ["tall.jpg"])
    out = tmp_path / "out"
    info = write_kadid_style_dataset(refs, out, types=[1, 11], levels=(1, 5), size=(64, 48), seed=3, progress=False)
    assert info["n_refs"] == 3 and info["n_distorted"] == 3 * 2 * 2
    files = sorted(p.name for p in (out / "images").iterdir())
    expected = sorted(
        [f"I{r:02d}.png" for r in (1, 2, 3)]
        + [f"I{r:02d}_{t:02d}_{l:02d}.png" for r in (1, 2, 3) for t in (1, 11) for l in (1, 5)]
    )
    assert files == expected
    for f in files:
        with Image.open(out / "images" / f) as im:
            assert im.size == (64, 48) and im.mode == "RGB"
    with open(out / "dmos.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["dist_img", "ref_img", "dmos", "var"]
    assert len(rows) == 1 + 12
    assert ["I02_11_05.png", "I02.png", "", ""] in rows
    assert all(parse_dist_name(r[0])[0] == int(r[1][1:3]) for r in rows[1:])
    with open(out / "refs.csv", newline="") as fh:
        refrows = list(csv.reader(fh))
    assert refrows[0] == ["ref_img", "source_file"]
    assert [r[1] for r in refrows[1:]] == names
    # identity level written as a copy of the reference
    a = np.asarray(Image.open(out / "images" / "I01.png"))
    b = np.asarray(Image.open(out / "images" / "I01_01_01.png"))
    np.testing.assert_array_equal(a, b)
    # reproducible
    out2 = tmp_path / "out2"
    write_kadid_style_dataset(refs, out2, types=[11], levels=(5,), size=(64, 48), seed=3, progress=False)
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "images" / "I01_11_05.png")), np.asarray(Image.open(out2 / "images" / "I01_11_05.png"))
    )


def test_dataset_writer_keep_size(tmp_path):
    refs = tmp_path / "refs"
    _write_refs(refs, n=1, size=(70, 50))
    write_kadid_style_dataset(refs, tmp_path / "o", types=[17], levels=[2], size=None, progress=False)
    with Image.open(tmp_path / "o" / "images" / "I01_17_02.png") as im:
        assert im.size == (70, 50)


def test_dataset_writer_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="nope"):
        write_kadid_style_dataset(missing, tmp_path / "o", progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no images .* in .*empty"):
        write_kadid_style_dataset(empty, tmp_path / "o", progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"broken\.png"):
        write_kadid_style_dataset(bad, tmp_path / "o", types=[1], levels=[1], progress=False)
    refs = tmp_path / "refs"
    _write_refs(refs, n=1)
    with pytest.raises(ValueError, match="unknown distortion type"):
        write_kadid_style_dataset(refs, tmp_path / "o", types=[0], progress=False)
    with pytest.raises(ValueError, match="invalid level"):
        write_kadid_style_dataset(refs, tmp_path / "o", levels=[6], progress=False)


def test_cli_make_dataset(tmp_path, capsys):
    import argparse

    from invariant_lpips.distortions import cli

    refs = tmp_path / "refs"
    _write_refs(refs, n=1)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    args = parser.parse_args(
        ["make-dataset", "--refs", str(refs), "--out", str(tmp_path / "o"), "--types", "1,17-18",
         "--levels", "2", "--size", "40x32", "--seed", "1", "--no-progress"]
    )
    assert args.types == [1, 17, 18] and args.levels == [2] and args.size == (40, 32)
    assert args.func(args) == 0
    assert (tmp_path / "o" / "images" / "I01_18_02.png").exists()
    assert "wrote 1 references" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["make-dataset", "--refs", "a", "--out", "b", "--types", "0,30"])
    with pytest.raises(SystemExit):
        parser.parse_args(["make-dataset", "--refs", "a", "--out", "b", "--size", "big"])
    assert parser.parse_args(["make-dataset", "--refs", "a", "--out", "b", "--size", "40"]).size == (40, 40)
    assert parser.parse_args(["make-dataset", "--refs", "a", "--out", "b", "--size", "none"]).size is None
    with pytest.raises(SystemExit):
        parser.parse_args(["make-dataset", "--refs", "a", "--out", "b", "--size", "1x8"])


# ----------------------------------------------------------------- type-level evaluation
def _table():
    # two types; human DMOS falls with level (higher = better)
    return {(t, l): 5.0 - 0.5 * l - 0.1 * t for t in (1, 2) for l in range(1, 6)}


def test_type_level_perfect_agreement():
    table = _table()
    dist = {}
    for (t, l), h in table.items():
        for ref in (1, 2, 3):
            dist[(ref, t, l)] = (5.0 - h) * 2 + 0.01 * (ref - 2)  # linear in -h, ref noise averages out
    res = evaluate_type_level(table, dist)
    assert res["n_cells"] == 10
    assert res["srcc"] == pytest.approx(1.0) and res["krcc"] == pytest.approx(1.0)
    assert res["plcc"] == pytest.approx(1.0)
    assert res["per_type"][1]["srcc"] == pytest.approx(1.0) and res["per_type"][2]["n_levels"] == 5
    assert res["mean_per_type_srcc"] == pytest.approx(1.0)
    cell = [c for c in res["cells"] if c["type"] == 2 and c["level"] == 3][0]
    assert cell["n_images"] == 3 and cell["mean_distance"] == pytest.approx((5.0 - table[(2, 3)]) * 2)
    # reversed metric -> -1; human scale where higher = worse -> sign flips
    inv = {k: -v for k, v in dist.items()}
    assert evaluate_type_level(table, inv)["srcc"] == pytest.approx(-1.0)
    assert evaluate_type_level(table, dist, human_higher_is_better=False)["srcc"] == pytest.approx(-1.0)


def test_type_level_known_values():
    # one type, 5 levels; metric swaps levels 4 and 5 -> SRCC = 1 - 6*2/(5*24) = 0.9, KRCC = 0.8
    table = {(7, l): float(6 - l) for l in range(1, 6)}
    dist = [(1, 7, l, d) for l, d in zip(range(1, 6), [1.0, 2.0, 3.0, 5.0, 4.0])]
    res = evaluate_type_level(table, dist)
    assert res["srcc"] == pytest.approx(0.9)
    assert res["krcc"] == pytest.approx(0.8)
    assert res["per_type"][7]["srcc"] == pytest.approx(0.9)
    x, y = -np.array([1.0, 2, 3, 5, 4]), np.array([5.0, 4, 3, 2, 1])
    assert res["plcc"] == pytest.approx(float(np.corrcoef(x, y)[0, 1]))
    # ((ref, type, level), d) pairs work too; unmatched cells are reported
    pairs = [((1, 7, l), d) for (_, _, l, d) in dist] + [((1, 8, 1), 0.5)]
    res2 = evaluate_type_level(table, pairs)
    assert res2["srcc"] == pytest.approx(0.9) and res2["unmatched_distance_cells"] == [(8, 1)]
    assert mean_distance_per_cell([(1, 7, 1, 1.0), (2, 7, 1, 3.0)]) == {(7, 1): (2.0, 2)}


def test_type_level_table_reader(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("type_id,type_name,level,mean_dmos,sd_dmos\n1,gaussian_blur,1,4.6,0.1\n1,gaussian_blur,2,4.3,0.2\n"
                 "1,gaussian_blur,3,3.9,0.2\n")
    assert read_type_level_table(p) == {(1, 1): 4.6, (1, 2): 4.3, (1, 3): 3.9}
    res = evaluate_type_level(p, {(1, 1, 1): 0.1, (1, 1, 2): 0.2, (1, 1, 3): 0.4})
    assert res["srcc"] == pytest.approx(1.0) and res["n_cells"] == 3
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_type_level_table(tmp_path / "missing.csv")
    q = tmp_path / "q.csv"
    q.write_text("type,level,dmos\n1,1,4.0\n")
    assert read_type_level_table(q) == {(1, 1): 4.0}  # column names are detected
    q.write_text("type_id,level,votes\n1,1,4.0\n")
    with pytest.raises(ValueError, match=r"q\.csv.*no column among"):
        read_type_level_table(q)
    r = tmp_path / "r.csv"
    r.write_text("type_id,level,mean_dmos\n1,x,4.0\n")
    with pytest.raises(ValueError, match=r"r\.csv line 2"):
        read_type_level_table(r)
    with pytest.raises(ValueError, match="no \\(type, level\\) cell"):
        evaluate_type_level({(1, 1): 4.0}, {(1, 2, 1): 0.3})
    res = evaluate_type_level({(1, 1): 4.0, (2, 1): 3.0}, {(1, 1, 1): 0.1, (1, 2, 1): 0.3})
    assert math.isnan(res["per_type"][1]["srcc"]) and math.isnan(res["mean_per_type_srcc"])


def test_written_dataset_is_read_by_the_benchmark_runner(tmp_path):
    """make-dataset's layout goes straight into the KADID reader and the benchmark runner."""
    from invariant_lpips.benchmarks.runner import run_benchmark
    from invariant_lpips.data.datasets import load_dataset

    refs = tmp_path / "refs"
    _write_refs(refs, n=2, size=(90, 70))
    out = tmp_path / "gen"
    write_kadid_style_dataset(refs, out, types=[1, 11], levels=(1, 3, 5), size=(64, 48), seed=0, progress=False)
    ds = load_dataset("kadid10k", out)
    assert len(ds) == 2 * 2 * 3 and ds.references() == ["I01", "I02"]
    assert all(r.score is None for r in ds.records)
    summary = run_benchmark(ds, ["mse"], tmp_path / "bench", progress=False, bootstrap=0, num_workers=0,
                            plots=False)
    with open(tmp_path / "bench" / "scores_mse.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12
    by_name = {Path(r["dist_path"]).name: float(r["distance"]) for r in rows}
    assert by_name["I01_01_01.png"] == 0.0  # KADID's identity level
    assert by_name["I01_11_05.png"] > by_name["I01_11_03.png"] > 0
    assert summary is not None
