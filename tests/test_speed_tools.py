"""benchmarks/speed.py and benchmarks/gpu_check.py: their plumbing, not their timings."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from invariant_lpips.trunk.vgg16 import POOL_TAPS, RELU_TAPS, VGG16Trunk

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_trunk_flops_counts_the_convolutions():
    t = VGG16Trunk(weights=None, pooling="max", taps=RELU_TAPS)
    plan = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
            (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    sizes = [1, 1, 4, 4, 16, 16, 16, 64, 64, 64, 256, 256, 256]  # area divisor per stage
    expected = sum(2 * 384 * 512 // s * ci * co * 9 for (ci, co), s in zip(plan, sizes))
    assert t.flops(384, 512) == expected
    assert abs(expected / 1e9 - 120.27) < 0.01
    blur = VGG16Trunk(weights=None, pooling="blurmax", taps=POOL_TAPS)
    assert 0 < blur.flops(384, 512) - expected < 0.01 * expected  # + the 4 depthwise blurs before pool5's


def test_speed_plan_and_table():
    speed = _load("speed")
    args = speed.argparse.Namespace(no_peers=False, peer_modes="pairs,bcast,bcast-cl", kadid_n=None, quick=False,
                                    batch_size=None, repeats=None, options=True)
    cfgs = speed.plan(args, ["gap-lin-blur"], ["cpu"], ["kadid", "single"], ["fp32"], "gap-lin-blur")
    metrics = [(c["workload"], c["metric"], c["backend"], c["batch_size"], c["threads"]) for c in cfgs]
    assert ("kadid", "lpips-pkg[bcast,cl]", None, 16, None) in metrics
    assert ("single", "lpips-pkg", None, 16, None) in metrics
    assert not any(m[1].startswith("lpips-pkg[") for m in metrics if m[0] == "single")
    assert {m[2] for m in metrics if m[2]} == {"eager", "compile", "jit", "auto"}
    assert ("kadid", "gap-lin-blur", "auto", 16, 1) in metrics
    trunk_rows = speed.plan(args, ["gap-lin-blur"], ["cpu"], ["trunk"], ["fp32"], "gap-lin-blur")
    assert {c["metric"] for c in trunk_rows if c["workload"] == "trunk"} == {"gap-lin-blur", "lpips-vgg"}
    rows = [dict(c, pairs_per_s=2.0 if c["metric"] == "gap-lin-blur" else 1.0, ms_per_pair=1.0, torch_threads=2,
                 gflops_per_s=300.0, peak_rss_mib=1.0, rss_after_build_mib=1.0, peak_cuda_mib=None,
                 trunk_backend="auto") for c in cfgs[:4]]
    table = speed.markdown(rows, {"torch": "t", "device": {"cpu": "X", "cores": 2, "torch_threads": 2}},
                           {"cpu fp32": 400.0})
    assert "Measured peak" in table and "| 75% |" in table and "| 2.00 |" in table


@pytest.mark.slow
def test_speed_script_runs_one_quick_configuration(tmp_path):
    out = tmp_path / "speed.json"
    cmd = [sys.executable, str(BENCH / "speed.py"), "--quick", "--kadid-n", "1", "--workloads", "kadid,trunk",
           "--variants", "gap-lin-blur", "--no-peers", "--no-options", "--json", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["peaks_gflops"]["cpu fp32"] > 0
    assert all("error" not in r for r in data["results"]), data["results"]
    assert all(r["gflops_per_s"] > 0 for r in data["results"])


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu(tmp_path):
    """Every step up to the GPU itself: set generation, the runner in both precisions, the JSON."""
    cmd = [sys.executable, str(BENCH / "gpu_check.py"), "--device", "cpu", "--out", str(tmp_path / "out"),
           "--work", str(tmp_path / "work"), "--refs", "2", "--types", "1,16", "--levels", "1,5",
           "--batch-size", "4", "--skip", "tests,speed", "--big-size", "96x128"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["steps"]["kadid_set"]["pairs"] == 8
    runner = report["steps"]["runner"]
    assert runner["fp32"]["pairs"] == 8 and 0 <= runner["fp32"]["srcc_vs_pseudo_score"] <= 1
    assert "delta_srcc_vs_pseudo_score" in runner["bf16_vs_fp32"]
    big = report["steps"]["big_image"]
    assert big["size"] == [96, 128] and big["half_relative_difference"] < 0.05, big


def test_gpu_check_refuses_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    p = subprocess.run([sys.executable, str(BENCH / "gpu_check.py"), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "is False" in json.loads((tmp_path / "gpu_check.json").read_text())["error"]


def test_gpu_check_shell_script_says_how_to_prepare(tmp_path):
    import shutil

    repo = tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    shutil.copy(BENCH / "gpu_check.sh", repo / "benchmarks")
    p = subprocess.run(["bash", str(repo / "benchmarks" / "gpu_check.sh"), str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--prepare" in p.stderr
