"""lpips' documented usage, run against this package with only the import line changed (VGG network).

The script below is written from lpips' documented API (its README's Python example, and what its
``lpips_2imgs.py`` and ``lpips_loss.py`` scripts do): the constructor, ``forward`` with and without
``normalize``, ``retPerLayer``, ``spatial=True``, the module-level helpers and use as a loss. It runs three
times: with the ``lpips`` package itself, with ``import invariant_lpips as lpips`` and with
``import invariant_lpips.lpips_compat as lpips``, and every number must agree (the same network).
Slow: the real VGG-16 weights, through the package's resolver.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"

LPIPS_USAGE = '''
import torch
import lpips

# README, "Python lib": build the metric, compare two images in [-1, 1]
loss_fn_vgg = lpips.LPIPS(net='vgg')           # closer to "traditional" perceptual loss, when used for optimization
img0 = torch.zeros(1, 3, 64, 64)               # image should be RGB, IMPORTANT: normalized to [-1,1]
img1 = torch.zeros(1, 3, 64, 64)
d_zeros = loss_fn_vgg(img0, img1)

# lpips_2imgs.py: two image files
img0 = lpips.im2tensor(lpips.load_image(PATH0))  # RGB image from [-1,1]
img1 = lpips.im2tensor(lpips.load_image(PATH1))
dist01 = loss_fn_vgg.forward(img0, img1)
printed = 'Distance: %.3f' % dist01

# inputs in [0, 1]: normalize=True
dist01_normalized = loss_fn_vgg(lpips.im2tensor(lpips.load_image(PATH0), cent=0., factor=255.),
                                lpips.im2tensor(lpips.load_image(PATH1), cent=0., factor=255.), normalize=True)

# per-layer distances
dist_total, dist_layers = loss_fn_vgg.forward(img0, img1, retPerLayer=True)

# spatial=True: a distance map
loss_fn_spatial = lpips.LPIPS(net='vgg', spatial=True)
dist_map = loss_fn_spatial.forward(img0, img1)

# the module-level helpers
back_to_image = lpips.tensor2im(img1)
l2_01 = lpips.l2(lpips.tensor2im(img0), lpips.tensor2im(img1))
psnr_01 = lpips.psnr(lpips.tensor2im(img0), lpips.tensor2im(img1))
unit_features = lpips.normalize_tensor(torch.randn(2, 8, 5, 5, generator=torch.Generator().manual_seed(0)))
map_average = lpips.spatial_average(dist_map, keepdim=True)
upsampled = lpips.upsample(dist_layers[-1], out_HW=img0.shape[2:])

# lpips_loss.py: optimise an image towards a reference
ref = lpips.im2tensor(lpips.load_image(PATH0))
pred = torch.autograd.Variable(lpips.im2tensor(lpips.load_image(PATH1)), requires_grad=True)
optimizer = torch.optim.Adam([pred, ], lr=1e-3, betas=(0.9, 0.999))
losses = []
for i in range(3):
    dist = loss_fn_vgg.forward(pred, ref, normalize=False)
    optimizer.zero_grad()
    dist.backward()
    optimizer.step()
    pred.data = torch.clamp(pred.data, -1, 1)
    losses.append(dist.item())
pred_img = lpips.tensor2im(pred.data)
'''

IMPORTS = {"ours": "import invariant_lpips as lpips", "compat": "import invariant_lpips.lpips_compat as lpips"}
RESULTS = ["d_zeros", "dist01", "printed", "dist01_normalized", "dist_total", "dist_layers", "dist_map",
           "back_to_image", "l2_01", "psnr_01", "unit_features", "map_average", "upsampled", "losses", "pred_img"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """A 64x96 crop of the bundled coffee image and of its JPEG copy (small: fast on a CPU)."""
    from PIL import Image

    out = tmp_path_factory.mktemp("usage")
    paths = []
    for name in ("coffee.png", "coffee_jpeg_q15.png"):
        p = out / name
        Image.open(EXAMPLES / name).convert("RGB").crop((100, 80, 196, 144)).save(p)
        paths.append(str(p))
    return paths


def _run(script: str, paths) -> dict:
    ns = {"PATH0": paths[0], "PATH1": paths[1]}
    torch.manual_seed(0)
    exec(compile(script, "<lpips usage>", "exec"), ns)
    return {k: ns[k] for k in RESULTS}


@pytest.fixture(scope="module")
def reference(paths, vgg_state):
    """The script with the lpips package (VGG-16 from our resolver; lpips' load_image needs OpenCV, which is
    not a dependency here, so a Pillow reader stands in for it when OpenCV is missing)."""
    import importlib.util

    lpips = pytest.importorskip("lpips")
    from invariant_lpips.metric.peers import torchvision_vgg16_from_resolver

    mp = pytest.MonkeyPatch()
    if importlib.util.find_spec("cv2") is None:
        from PIL import Image

        mp.setattr(lpips, "load_image", lambda path: np.asarray(Image.open(path).convert("RGB")))
    try:
        with torchvision_vgg16_from_resolver():
            return _run(LPIPS_USAGE, paths)
    finally:
        mp.undo()


def test_only_the_import_line_changes():
    for line in IMPORTS.values():
        changed = LPIPS_USAGE.replace("\nimport lpips\n", f"\n{line}\n")
        diff = [(a, b) for a, b in zip(LPIPS_USAGE.splitlines(), changed.splitlines()) if a != b]
        assert diff == [("import lpips", line)]
    assert "invariant" not in LPIPS_USAGE and "net='vgg'" in LPIPS_USAGE


def _close(a, b, name):
    if isinstance(a, torch.Tensor):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        assert torch.allclose(a.detach(), b.detach(), atol=1e-5, rtol=1e-4), (name, a.flatten()[:4], b.flatten()[:4])
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        assert np.abs(a.astype(float) - b.astype(float)).max() <= 1, name  # uint8 truncation of equal floats
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), name
        for x, y in zip(a, b):
            _close(x, y, name)
    elif isinstance(a, str):
        assert a == b, name
    else:
        assert float(a) == pytest.approx(float(b), rel=1e-4, abs=1e-6), name


@pytest.mark.parametrize("which", sorted(IMPORTS))
def test_lpips_documented_usage_gives_lpips_numbers(which, paths, reference):
    ours = _run(LPIPS_USAGE.replace("\nimport lpips\n", f"\n{IMPORTS[which]}\n"), paths)
    for name in RESULTS:
        _close(ours[name], reference[name], name)
    assert float(ours["d_zeros"]) == 0.0 and float(ours["dist01"]) > 0
    assert ours["dist_map"].shape == (1, 1, 64, 96)
    assert ours["losses"][-1] < ours["losses"][0], "the loss goes down"
