"""RAID stimuli rebuilt from Kodak-sized photographs (generated here; no shared data is read)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from invariant_lpips.distortions import raid_kodak as rk

BG = np.array([121.0, 109.0, 90.0])
# the gain profile a(r) of the fitted window, written out again from the recipe
RAMP = [0.4585, 0.3489, 0.3026, 0.2698, 0.2439, 0.2240, 0.2062, 0.1907, 0.1779, 0.1650,
        0.1541, 0.1441, 0.1347, 0.1250, 0.1179, 0.1106, 0.1036, 0.0973, 0.0908, 0.0642]


def kodak_like(h=512, w=768, seed=0) -> np.ndarray:
    """A smooth random colour image of Kodak's size (landscape by default)."""
    rng = np.random.default_rng(seed)
    base = ndimage.zoom(rng.uniform(0, 255, (h // 32, w // 32, 3)), (32, 32, 1), order=1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).round().astype(np.uint8)


def coded(h=512, w=768) -> np.ndarray:
    """Each pixel says where it is: R = row % 256, G = col % 256, B = 16 * (row // 256) + col // 256."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([y % 256, x % 256, 16 * (y // 256) + x // 256], -1).astype(np.uint8)


def expected_window(content: np.ndarray) -> np.ndarray:
    """out = bg + Z + a(r) ((K - bg) - Z), Z = blur15(d(r) (K - bg)), rebuilt pixel by pixel from the recipe."""
    n = 454
    out = np.empty((n, n, 3))
    y, x = np.mgrid[0:n, 0:n]
    r = np.sqrt((y - 226.5) ** 2 + (x - 226.5) ** 2)
    d = 1.0 / (1.0 + np.exp(r - 191.5))
    a = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            rr = r[i, j]
            k = int(np.floor(rr))
            if rr < 171.5 or k < 172:
                a[i, j] = 0.7848
            elif k <= 191:
                a[i, j] = RAMP[k - 172]
    for ch in range(3):
        z = ndimage.gaussian_filter(d * content[..., ch], 15.0, mode="constant", cval=0.0)
        out[..., ch] = BG[ch] + z + a * (content[..., ch] - z)
    return np.floor(np.clip(out, 0, 255) + 0.5).astype(np.uint8)


def test_recipe_constants():
    assert rk.CROP_OFFSETS[1] == (91, 133) and rk.CROP_OFFSETS[2] == (-5, 112) and rk.CROP_OFFSETS[24] == (81, 94)
    assert rk.CROP_OFFSETS[9] == (257, 29) and len(rk.CROP_OFFSETS) == 24
    assert [rk.level_parameter("rot", lv) for lv in (1, 2, 10)] == [0.0, 2.0, 18.0]
    assert [rk.level_parameter("trans", lv) for lv in (1, 2, 10)] == [0.0, 5.0, 45.0]
    assert [rk.level_parameter("scale", lv) for lv in (1, 2, 10)] == pytest.approx([1.0, 1.01, 1.09])
    assert [rk.level_parameter("gn", lv) for lv in range(1, 11)] == [0, 65.0, 129.7, 194.3, 258.9, 313.1, 365.7,
                                                                       417.0, 467.2, 516.5]
    assert rk.stimulus_name("rot", 1, 2) == "rot_img_01_level_02.png" and rk.reference_name(7) == "img_07.png"
    with pytest.raises(ValueError):
        rk.level_parameter("shear", 2)
    with pytest.raises(ValueError):
        rk.level_parameter("rot", 11)


def test_window_profile_matches_the_fitted_table():
    r, d, a = rk.window_profiles()
    assert r.shape == (454, 454) and rk.RAID_WINDOW.centre == 226.5
    assert np.all(a[r < 171.5] == 0.7848)
    for k, v in enumerate(RAMP):
        ring = (np.floor(r) == 172 + k) & (r >= 171.5)
        assert ring.any() and np.all(a[ring] == v)
    assert np.all(a[r >= 192] == 0)
    assert d[227, 227] == pytest.approx(1.0) and np.all(np.abs(d[np.abs(r - 191.5) < 1e-9] - 0.5) < 1e-12)
    assert d[0, 0] < 1e-50


def test_window_on_a_generated_image_equals_the_recipe():
    kodak = kodak_like()
    content = rk.content_in_window(kodak, (91, 133))
    got = rk.apply_window(content)
    assert got.dtype == np.uint8 and got.shape == (454, 454, 3)
    np.testing.assert_array_equal(got, expected_window(content))
    # far outside the disc only the background is left; a background-coloured photo gives a flat field
    assert np.all(got[:5, :5] == BG.astype(np.uint8))
    flat = np.broadcast_to(BG.astype(np.uint8), (512, 768, 3)).copy()
    assert np.all(rk.make_stimulus(flat, 1, "rot", 1)[0] == BG.astype(np.uint8))


def test_crop_offsets_and_background_outside_the_photo():
    kodak = coded()
    c = rk.content_in_window(kodak, (91, 133)) + BG
    for y, x in [(0, 0), (226, 226), (420, 100), (17, 400)]:
        ky, kx = y + 91, x + 133
        assert tuple(c[y, x].astype(int)) == (ky % 256, kx % 256, 16 * (ky // 256) + kx // 256)
    assert np.all(c[421:] == BG)  # rows 91 + 421 = 512.. fall below the 512-row photo: background
    # negative row offset (image 02): the first 5 rows are outside the photo -> background (0 in K - bg)
    c2 = rk.content_in_window(kodak, (-5, 112))
    assert np.all(c2[:5] == 0) and np.all(c2[5] + BG == kodak[0, 112:112 + 454])
    # portrait photographs keep their stored orientation (512 wide)
    portrait = coded(768, 512)
    c9 = rk.content_in_window(portrait, rk.CROP_OFFSETS[9]) + BG
    np.testing.assert_array_equal(c9, portrait[257:257 + 454, 29:29 + 454])


def test_translation_moves_content_right_by_whole_pixels_with_new_photo_content():
    kodak = kodak_like(seed=1)
    c1 = rk.content_in_window(kodak, (91, 133), "trans", 0.0)
    for level in (2, 10):
        s = int(rk.level_parameter("trans", level))
        cl = rk.content_in_window(kodak, (91, 133), "trans", float(s))
        np.testing.assert_array_equal(cl[:, s:], c1[:, :-s])
        np.testing.assert_array_equal(cl[:421, :s] + BG, kodak[91:512, 133 - s:133])  # from the photo


def test_rotation_is_counter_clockwise_about_the_window_centre():
    kodak = kodak_like(seed=2)
    c1 = rk.content_in_window(kodak, (20, 150))
    c90 = rk.content_in_window(kodak, (20, 150), "rot", 90.0)
    np.testing.assert_allclose(c90, np.rot90(c1), atol=1e-6)  # np.rot90 turns an image counter-clockwise
    c18 = rk.content_in_window(kodak, (20, 150), "rot", 18.0)
    assert not np.allclose(c18, c1) and np.abs(c18).max() > 0


def test_scale_zooms_about_the_window_centre_bilinearly():
    lin = np.zeros((512, 768, 3), dtype=np.uint8)
    lin[..., 1] = np.tile(np.arange(256, dtype=np.uint8), 3)[None, :768]
    off = (10, 200)  # G = x % 256 is linear for x in 200..255: bilinear sampling there is exact
    got = rk.content_in_window(lin, off, "scale", 2.0)[..., 1] + BG[1]
    cols = np.arange(454)
    src = 226.5 + (cols - 226.5) / 2.0 + off[1]
    ok = (src >= 200) & (src <= 254)
    np.testing.assert_allclose(got[100, ok], src[ok], atol=1e-9)
    assert rk.level_parameter("scale", 10) == pytest.approx(1.09)


def test_gaussian_noise_levels_and_seeds():
    grey = np.full((512, 768, 3), 128, dtype=np.uint8)
    a, pa = rk.make_stimulus(grey, 3, "gn", 10, seed=0)
    b, _ = rk.make_stimulus(grey, 3, "gn", 10, seed=0)
    c, _ = rk.make_stimulus(grey, 3, "gn", 10, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert pa["noise_variance"] == 516.5 and pa["noise_seed_entropy"] == [0, 3, 10]
    noisy = rk.noisy_kodak(grey, 516.5, [0, 3, 10])
    assert noisy.astype(float).var() == pytest.approx(516.5, rel=0.02)
    assert noisy.dtype == np.uint8
    np.testing.assert_array_equal(rk.make_stimulus(grey, 3, "gn", 1)[0], rk.make_stimulus(grey, 3, "rot", 1)[0])
    dark = rk.noisy_kodak(np.zeros((64, 64, 3), np.uint8), 516.5, [0, 1, 2])
    assert dark.min() == 0 and dark.mean() > 5  # clipped at 0, not wrapped


def test_writer_layout_params_and_reproducibility(tmp_path):
    refs = tmp_path / "kodak"
    refs.mkdir()
    Image.fromarray(kodak_like(seed=3)).save(refs / "kodim01.png")
    Image.fromarray(kodak_like(768, 512, seed=4)).save(refs / "kodim09.png")
    info = rk.write_raid_kodak(refs, tmp_path / "o1", images=[1, 9], levels=[1, 2, 10], progress=False)
    assert info["n_files"] == 2 * (4 * 3 + 1)
    names = sorted(p.name for p in (tmp_path / "o1").glob("*.png"))
    assert "rot_img_01_level_01.png" in names and "gn_img_09_level_10.png" in names and "img_09.png" in names
    params = json.loads((tmp_path / "o1" / "params.json").read_text())
    assert params["seed"] == 0 and params["window"]["blur_sigma"] == 15.0
    f = params["files"]["trans_img_09_level_10.png"]
    assert f["shift_right_px"] == 45.0 and f["offset"] == [257, 29] and f["kodak_file"] == "kodim09.png"
    assert params["files"]["rot_img_01_level_10.png"]["degrees_ccw"] == 18.0
    assert params["files"]["gn_img_01_level_02.png"]["noise_variance"] == 65.0

    def px(name, d="o1"):
        return np.asarray(Image.open(tmp_path / d / name))

    for kind in rk.RAID_KINDS:  # level 1 is the same undistorted stimulus for all four
        np.testing.assert_array_equal(px(f"{kind}_img_01_level_01.png"), px("img_01.png"))
    rk.write_raid_kodak(refs, tmp_path / "o2", images=[1, 9], levels=[1, 2, 10], progress=False)
    for name in names:
        np.testing.assert_array_equal(px(name), px(name, "o2"))
    with pytest.raises(FileNotFoundError):
        rk.write_raid_kodak(refs, tmp_path / "o3", images=[2], progress=False)


def test_make_dataset_cli_keeps_kadid_and_adds_raid_kodak(tmp_path):
    from invariant_lpips.cli import build_parser

    parser = build_parser()
    a = parser.parse_args(["make-dataset", "--refs", "a", "--out", "b", "--types", "1,3", "--size", "40"])
    assert a.kind == "kadid" and a.types == [1, 3] and a.size == (40, 40)
    b = parser.parse_args(["make-dataset", "raid-kodak", "--refs", "a", "--out", "b"])
    assert b.kind == "raid-kodak"
    with pytest.raises(SystemExit):
        b2 = parser.parse_args(["make-dataset", "raid-kodak", "--refs", "a", "--out", "b", "--types", "1"])
        b2.func(b2)
