"""CUDA checks (pytest marker ``cuda``): skipped where ``torch.cuda.is_available()`` is False.

Run them alone with ``python -m pytest -m cuda``; ``benchmarks/gpu_check.sh`` does so on a lent GPU.
Fast ones use a random trunk; those marked ``slow`` too use the real weights through the resolver.
"""
from __future__ import annotations

import pytest
import torch

from helpers import smooth_images
from invariant_lpips import InvariantLPIPS, LPIPS

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (torch.cuda.is_available() is False)"),
]


@pytest.fixture(autouse=True)
def _exact_fp32():
    """Compare float32 with float32: no TF32 in cuDNN/cuBLAS while these tests run."""
    conv, mm = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, mm


def _pair(n=3, size=96):
    x = smooth_images(n, size, size, seed=1)
    return x, (x + 0.08 * torch.randn_like(x)).clamp(0, 1)


@pytest.mark.parametrize("cls", [InvariantLPIPS, LPIPS])
def test_cuda_equals_cpu_float32(cls):
    torch.manual_seed(0)
    m = cls(trunk_weights=None)
    x, y = _pair()
    with torch.no_grad():
        cpu = m(x, y, normalize=True).flatten()
        gpu = m.cuda()(x.cuda(), y.cuda(), normalize=True).flatten().cpu()
    assert torch.allclose(gpu, cpu, rtol=1e-4, atol=1e-7), (gpu, cpu)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_is_finite_and_close(dtype):
    torch.manual_seed(0)
    m = InvariantLPIPS(trunk_weights=None).cuda()
    x, y = (t.cuda() for t in _pair())
    with torch.no_grad():
        ref = m(x, y, normalize=True).flatten()
        with torch.autocast("cuda", dtype=dtype):
            low = m(x, y, normalize=True).flatten()
    assert torch.isfinite(low).all()
    assert torch.allclose(low.float(), ref, rtol=5e-2, atol=1e-5), (low, ref)


def test_gradients_on_cuda_as_a_training_loss():
    torch.manual_seed(0)
    m = InvariantLPIPS(trunk_weights=None).cuda()
    x, y = (t.cuda() for t in _pair(2, 64))
    x = x.requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = m(x, y, normalize=True).mean()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_reference_broadcast_on_cuda():
    torch.manual_seed(0)
    m = InvariantLPIPS(trunk_weights=None).cuda()
    x, y = (t.cuda() for t in _pair(4, 64))
    with torch.no_grad():
        b = m(x[:1], y, normalize=True).flatten()
        e = m(x[:1].expand_as(y), y, normalize=True).flatten()
    assert torch.allclose(b, e, rtol=1e-5, atol=1e-7)


def test_feature_cache_on_cuda_matches_cpu(tmp_path):
    from PIL import Image

    from invariant_lpips.features.cache import FeatureCache
    from invariant_lpips.features.variants import get_variant
    from invariant_lpips.trunk.vgg16 import VGG16Trunk

    x = smooth_images(2, 64, 64, seed=3)
    paths = []
    for i, img in enumerate(x):
        p = tmp_path / f"i{i}.png"
        Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(p)
        paths.append(p)
    v = get_variant("gap-lin-blur")
    torch.manual_seed(0)
    state = v.trunk.build(None).features.state_dict()
    out = {}
    for dev in ("cpu", "cuda"):
        trunk = v.trunk.build({k: t.clone() for k, t in state.items()})
        cache = FeatureCache(v, root=tmp_path / f"cache_{dev}", device=torch.device(dev), trunk=trunk.to(dev))
        out[dev] = cache.features_for_files(paths)
    for path, stats in out["cpu"].items():
        for key, cpu in stats.items():
            assert torch.allclose(out["cuda"][path][key].cpu(), cpu, rtol=1e-4, atol=1e-6), (path, key)


def test_torchmetrics_metric_on_cuda():
    pytest.importorskip("torchmetrics")
    from invariant_lpips.torchmetrics import InvariantLPIPSMetric

    torch.manual_seed(0)
    metric = InvariantLPIPSMetric(trunk_weights=None, normalize=True).cuda()
    x, y = (t.cuda() for t in _pair(2, 64))
    metric.update(x, y)
    v = metric.compute()
    assert v.device.type == "cuda" and torch.isfinite(v)


def test_runner_on_cuda_with_autocast_and_pinned_memory(tmp_path):
    """The real runner on a tiny generated KADID-layout set: bf16 autocast, pinned memory, grouping."""
    import csv

    from PIL import Image

    from invariant_lpips.benchmarks.runner import run_benchmark
    from invariant_lpips.data.datasets import KADID10k
    from invariant_lpips.metric.registry import MetricAdapter, get_spec

    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    refs = smooth_images(2, 64, 64, seed=5)
    rows = []
    for r, ref in enumerate(refs, start=1):
        Image.fromarray((ref.permute(1, 2, 0).numpy() * 255).astype("uint8")).save(root / "images" / f"I{r:02d}.png")
        for lvl in range(1, 4):
            d = (ref + 0.05 * lvl * torch.randn_like(ref)).clamp(0, 1)
            name = f"I{r:02d}_01_{lvl:02d}.png"
            Image.fromarray((d.permute(1, 2, 0).numpy() * 255).astype("uint8")).save(root / "images" / name)
            rows.append((name, f"I{r:02d}.png", 5 - lvl, 0.1))
    with open(root / "dmos.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dist_img", "ref_img", "dmos", "var"])
        w.writerows(rows)
    torch.manual_seed(0)
    m = InvariantLPIPS(trunk_weights=None)
    adapter = MetricAdapter.for_module(get_spec("gap-lin-blur"), m)
    summary = run_benchmark(KADID10k(root), [adapter], tmp_path / "out", device="cuda", batch_size=3,
                            num_workers=0, dtype="bf16", bootstrap=0, progress=False, feature_cache=False)
    assert summary is not None
    assert (tmp_path / "out" / "summary.json").is_file()


@pytest.mark.slow
def test_real_weights_bf16_close_to_fp32_on_cuda(vgg_state, photos):
    m = InvariantLPIPS(trunk_weights=vgg_state).cuda()
    x, y = photos.cuda(), photos.roll(1, 0).cuda()
    with torch.no_grad():
        ref = m(x, y, normalize=True).flatten()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = m(x, y, normalize=True).flatten()
    assert torch.allclose(low.float(), ref, rtol=2e-2), (low, ref)


# ----------------------------------------------------------------------------- issue 26: dtypes, strips, scale
@pytest.mark.parametrize("cls", [InvariantLPIPS, LPIPS])
def test_half_model_on_cuda_is_finite_and_close(cls):
    """``metric.half()`` with float16 images, as lpips users do: finite, close to float32 (InvariantLPIPS
    computes its statistics and distance in float32 and returns float32; LPIPS returns float16 as lpips does)."""
    import copy

    torch.manual_seed(0)
    m = cls(trunk_weights=None).cuda()
    h = copy.deepcopy(m).half()
    x, y = (t.cuda() for t in _pair())
    with torch.no_grad():
        ref = m(x, y, normalize=True).flatten()
        low = h(x.half(), y.half(), normalize=True).flatten()
    assert torch.isfinite(low).all()
    assert torch.allclose(low.float(), ref, rtol=5e-2, atol=1e-4), (low, ref)


@pytest.mark.parametrize("cls", [InvariantLPIPS, LPIPS])
def test_double_model_on_cuda_gives_float64(cls):
    torch.manual_seed(0)
    m = cls(trunk_weights=None).cuda().double()
    x, y = (t.cuda().double() for t in _pair())
    with torch.no_grad():
        assert m(x, y, normalize=True).dtype == torch.float64


def test_strips_on_cuda_equal_the_whole_image():
    from invariant_lpips.features.tiling import tiling

    torch.manual_seed(0)
    m = InvariantLPIPS(trunk_weights=None).cuda()
    x = smooth_images(2, 512, 320, seed=3).cuda()
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    with torch.no_grad():
        whole = m(x, y, normalize=True)
        with tiling(tile_above_px=0, strip_rows=96):
            tiled = m(x, y, normalize=True)
    assert torch.allclose(tiled, whole, rtol=1e-5, atol=1e-6), (tiled, whole)


def test_half_model_in_strips_on_cuda():
    """float16 trunk in strips: the statistics accumulate in float64 and come back in float32."""
    import copy

    from invariant_lpips.features.tiling import tiling

    torch.manual_seed(0)
    m = InvariantLPIPS(trunk_weights=None).cuda()
    h = copy.deepcopy(m).half()
    x = smooth_images(1, 512, 320, seed=4).cuda()
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    with torch.no_grad():
        ref = m(x, y, normalize=True)
        with tiling(tile_above_px=0, strip_rows=128):
            low = h(x.half(), y.half(), normalize=True)
    assert torch.isfinite(low).all() and torch.allclose(low.float(), ref, rtol=5e-2, atol=1e-4)
