#!/usr/bin/env python
"""One-shot GPU check (issue 12): everything a lent CUDA machine should tell us, in one JSON.

Run through ``benchmarks/gpu_check.sh`` (which installs the carried wheels first); steps, in order
of importance, each bounded by what is left of ``--budget`` seconds, and the JSON rewritten after
every step so that a cut-off run still reports what it measured:

1. ``tests``: the CUDA test subset, ``pytest -m cuda`` (tests/test_cuda.py).
2. ``kadid_set``: a synthetic KADID-sized set -- ``--refs`` (81) procedurally generated 512x384
   references x the package's 25 KADID distortions x 5 levels = 10,125 pairs, written as PNG in
   parallel. Its ``dmos`` column is a *pseudo* score (6 - level), not human data.
3. ``runner``: the real benchmark runner (``run_benchmark``: reference grouping, DataLoader
   workers, pinned memory, CUDA autocast) on all pairs with the default variant, in float32 and
   in bf16: wall time, pairs/s, peak CUDA memory, SRCC against the pseudo score, and the bf16 vs
   float32 deltas (SRCC delta, and the SRCC between the two distance vectors).
4. ``speed``: ``benchmarks/speed.py --devices cuda --dtype fp32,bf16,fp16`` (default variant,
   LPIPS baseline and the ``lpips`` package; the matmul peak of each dtype).
5. ``big_image``: a generated 4000x6000 pair scored by the default variant in row strips
   (invariant_lpips/features/tiling.py) in float32 and with ``.half()``: time, peak CUDA memory, and
   the half-precision distance against float32 (issue 26). The CUDA tests of step 1 include
   ``.half()`` / ``.double()`` models and strips equal to the whole image.

Usage (on the GPU machine, from the repository root; see gpu_check.sh)::

    python benchmarks/gpu_check.py --out OUT_DIR [--budget 470] [--refs 81]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# ----------------------------------------------------------------------------- synthetic references


def synthetic_reference(seed: int, size=(384, 512)):
    """A natural-ish 512x384 RGB image (uint8, H x W x 3): a 1/f colour field, shapes with edges,
    a texture band and a smooth gradient -- content at every scale, deterministic in ``seed``."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    h, w = size
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(h, w)) ** 1.1
    chans = []
    for _ in range(3):
        spec = amp * np.exp(2j * np.pi * rng.random(amp.shape))
        f = np.fft.irfft2(spec, s=(h, w))
        chans.append((f - f.mean()) / (f.std() + 1e-8))
    mix = rng.normal(size=(3, 3)) * 0.35 + np.eye(3)
    field = np.tensordot(mix, np.stack(chans), axes=1)
    img = np.clip(0.5 + 0.12 * field.transpose(1, 2, 0), 0, 1)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = img * 0.8 + 0.2 * (rng.random(3) * (yy[..., None] * rng.random() + xx[..., None] * rng.random()))
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        x1, y1 = x0 + int(rng.integers(20, 200)), y0 + int(rng.integers(20, 160))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    pil = pil.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.2))))
    arr = np.asarray(pil).astype(np.float32)
    band = slice(int(h * 0.6), int(h * 0.75))
    arr[band] += 18 * np.sin(np.arange(w) * rng.uniform(0.3, 1.2))[None, :, None]
    return np.clip(arr, 0, 255).astype(np.uint8)


def _write_reference_group(args) -> int:
    """Worker: reference ``r`` and its 25 x 5 distorted images (PNG). Returns images written."""
    import numpy as np
    from PIL import Image

    from invariant_lpips.distortions.dataset import dist_name, ref_name
    from invariant_lpips.distortions.kadid import distort

    r, images_dir, types, levels = args
    ref = synthetic_reference(1000 + r)
    Image.fromarray(ref).save(Path(images_dir) / ref_name(r), compress_level=1)
    seed = int(np.random.SeedSequence([0, r]).generate_state(1)[0])
    for t in types:
        for lvl in levels:
            Image.fromarray(distort(ref, t, lvl, seed=seed)).save(Path(images_dir) / dist_name(r, t, lvl),
                                                                  compress_level=1)
    return 1 + len(types) * len(levels)


def make_kadid_sized_set(root: Path, n_refs: int, workers: int, deadline: float,
                         types=tuple(range(1, 26)), levels=(1, 2, 3, 4, 5)) -> Dict[str, Any]:
    from multiprocessing import get_context

    from invariant_lpips.distortions.dataset import dist_name, ref_name

    types, levels = list(types), list(levels)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    done = 0
    with get_context("spawn").Pool(workers) as pool:
        for n in pool.imap_unordered(_write_reference_group, [(r, str(images), types, levels)
                                                              for r in range(1, n_refs + 1)]):
            done += n
            if time.time() > deadline:
                pool.terminate()
                raise TimeoutError(f"set generation passed the budget after {done} images")
    with open(root / "dmos.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dist_img", "ref_img", "dmos", "var"])
        for r in range(1, n_refs + 1):
            for t in types:
                for lvl in levels:
                    w.writerow([dist_name(r, t, lvl), ref_name(r), 6 - lvl, 0.0])  # pseudo score
    return {"refs": n_refs, "pairs": n_refs * len(types) * len(levels), "seconds": time.perf_counter() - t0,
            "workers": workers, "note": "synthetic references; dmos = 6 - level (pseudo, not human)"}


# ----------------------------------------------------------------------------- steps


def run_tests(remaining: float) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda", "tests/test_cuda.py"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(10.0, remaining))
    tail = (p.stdout + p.stderr).strip().splitlines()
    return {"command": " ".join(cmd[1:]), "returncode": p.returncode, "seconds": time.perf_counter() - t0,
            "summary": tail[-1] if tail else "", "tail": tail[-25:]}


def run_runner(root: Path, out: Path, workers: int, batch_size: int, device: str = "cuda") -> Dict[str, Any]:
    import numpy as np
    import torch
    from scipy.stats import spearmanr

    from invariant_lpips import DEFAULT_VARIANT
    from invariant_lpips.benchmarks.runner import run_benchmark
    from invariant_lpips.data.datasets import KADID10k

    res: Dict[str, Any] = {"metric": DEFAULT_VARIANT, "batch_size": batch_size, "workers": workers}
    scores = {}
    for dtype in ("fp32", "bf16"):
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        summary = run_benchmark(KADID10k(root), [DEFAULT_VARIANT], out / f"runner_{dtype}", device=device,
                                batch_size=batch_size, num_workers=workers, dtype=None if dtype == "fp32" else dtype,
                                bootstrap=0, progress=False, plots=False, feature_cache=False, resume=False)
        wall = time.perf_counter() - t0
        with open(out / f"runner_{dtype}" / f"scores_{DEFAULT_VARIANT}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))  # metric, ref_id, dist_path, dist_type, level, human_score, distance
        d = {r["dist_path"]: float(r["distance"]) for r in rows}
        pseudo = {r["dist_path"]: float(r["human_score"]) for r in rows}
        scores[dtype] = d
        names = sorted(d)
        srcc = abs(float(spearmanr([d[n] for n in names], [pseudo[n] for n in names])[0]))
        res[dtype] = {"wall_s": wall, "pairs": len(d), "pairs_per_s": len(d) / wall,
                      "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else None,
                      "srcc_vs_pseudo_score": srcc, "summary_keys": sorted(summary or {})[:12]}
    common = sorted(set(scores["fp32"]) & set(scores["bf16"]))
    a = np.array([scores["fp32"][n] for n in common])
    b = np.array([scores["bf16"][n] for n in common])
    res["bf16_vs_fp32"] = {
        "pairs": len(common),
        "delta_srcc_vs_pseudo_score": res["bf16"]["srcc_vs_pseudo_score"] - res["fp32"]["srcc_vs_pseudo_score"],
        "srcc_between_precisions": float(spearmanr(a, b)[0]),
        "max_rel_diff": float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-12))),
        "median_rel_diff": float(np.median(np.abs(a - b) / np.maximum(np.abs(a), 1e-12))),
    }
    return res


def run_speed(out: Path, remaining: float, device: str = "cuda") -> Dict[str, Any]:
    from invariant_lpips import DEFAULT_VARIANT

    js = out / "speed_cuda.json"
    cmd = [sys.executable, str(HERE / "speed.py"), "--devices", device, "--dtype", "fp32,bf16,fp16",
           "--variants", DEFAULT_VARIANT, "--peer-modes", "pairs", "--repeats", "5", "--json", str(js),
           "--timeout", str(int(max(30, remaining / 6)))]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(10.0, remaining))
    res: Dict[str, Any] = {"command": " ".join(cmd[1:]), "returncode": p.returncode,
                           "seconds": time.perf_counter() - t0, "tail": (p.stdout + p.stderr).strip().splitlines()[-30:]}
    if js.is_file():
        data = json.loads(js.read_text())
        res["peaks_gflops"] = data.get("peaks_gflops")
        res["table"] = data.get("table")
        res["rows"] = [{k: r.get(k) for k in ("dtype", "workload", "metric", "pairs_per_s", "ms_per_pair",
                                              "gflops_per_s", "peak_cuda_mib", "error")} for r in data["results"]]
    return res


def run_big_image(device: str = "cuda", size=(4000, 6000)) -> Dict[str, Any]:
    """A large pair in strips on ``device``, float32 then ``.half()``: seconds, peak memory, distances."""
    import copy

    import torch

    from invariant_lpips import InvariantLPIPS

    h, w = size
    g = torch.Generator().manual_seed(0)
    # detail every 16 px, so that the 3-px shift is well estimated (on a smoother image the estimate sat near
    # 2.5 px and rounded either way from run to run); the noise drawn from the same seeded generator
    low = torch.rand(1, 3, h // 16 + 2, w // 16 + 2, generator=g)
    x = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    y = (x.roll(3, dims=-1) + 0.01 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    x, y = x.to(device), y.to(device)
    m = InvariantLPIPS().to(device)
    res: Dict[str, Any] = {"size": [h, w], "variant": m.variant.name}
    for name, metric, cast in (("fp32", m, lambda t: t), ("half", copy.deepcopy(m).half(), lambda t: t.half())):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        with torch.no_grad():
            d = float(metric(cast(x), cast(y), normalize=True))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        res[name] = {"distance": d, "seconds": time.perf_counter() - t0,
                     "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2 ** 20 if device.startswith("cuda") else None}
    res["half_relative_difference"] = abs(res["half"]["distance"] - res["fp32"]["distance"]) / max(
        abs(res["fp32"]["distance"]), 1e-12)
    return res


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (gpu_check.json and the step outputs)")
    ap.add_argument("--budget", type=float, default=470, help="seconds for all steps (default 470)")
    ap.add_argument("--refs", type=int, default=81, help="synthetic references (81 x 125 = 10,125 pairs)")
    ap.add_argument("--work", default="/tmp/gpu_check", help="scratch folder for the generated set")
    ap.add_argument("--batch-size", type=int, default=125, help="distorted images per metric call in the runner")
    ap.add_argument("--types", default="1-25", help="KADID distortion types of the generated set (default all 25)")
    ap.add_argument("--levels", default="1-5", help="levels of the generated set (default 1-5)")
    ap.add_argument("--device", default="cuda",
                    help="cuda (default); cpu only to dry-run the steps on a machine without a GPU")
    ap.add_argument("--big-size", default="4000x6000", help="HEIGHTxWIDTH of the big_image step (default 4000x6000)")
    ap.add_argument("--skip", default="", help="comma-separated steps to leave out: tests,runner,speed,big_image")
    args = ap.parse_args(argv)

    t_start = time.time()
    deadline = t_start + args.budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    import torch

    from invariant_lpips.benchmarks.environment import environment

    report: Dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "budget_s": args.budget,
                              "cuda_available": torch.cuda.is_available(),
                              "environment": environment("cuda" if torch.cuda.is_available() else "cpu"), "steps": {}}
    path = out / "gpu_check.json"

    def save():
        report["elapsed_s"] = time.time() - t_start
        path.write_text(json.dumps(report, indent=1))

    def step(name, fn, *a):
        left = deadline - time.time()
        if name in skip:
            report["steps"][name] = {"skipped": "--skip"}
        elif left < 20:
            report["steps"][name] = {"skipped": f"budget: {left:.0f} s left"}
        else:
            t0 = time.time()
            try:
                report["steps"][name] = fn(*a)
            except Exception as e:  # noqa: BLE001 - report and go on to the next step
                report["steps"][name] = {"error": f"{type(e).__name__}: {e}"}
            print(f"[gpu_check] {name}: {time.time() - t0:.0f} s", flush=True)
        save()

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        report["error"] = "torch.cuda.is_available() is False: nothing to check"
        save()
        print(json.dumps(report, indent=1))
        return 2
    save()
    step("tests", lambda: run_tests(min(150, deadline - time.time())))
    work = Path(args.work)
    workers = max(1, (os.cpu_count() or 2) - 2)
    if "runner" not in skip:
        from invariant_lpips.distortions.cli import _levels, _types  # the make-dataset CLI's own parsers

        types, levels = _types(args.types), _levels(args.levels)
        step("kadid_set", lambda: make_kadid_sized_set(work / "set", args.refs, max(1, (os.cpu_count() or 2)),
                                                       deadline - 60, types, levels))
        if "error" not in report["steps"].get("kadid_set", {"error": 1}):
            step("runner", run_runner, work / "set", out, workers, args.batch_size, args.device)
    step("speed", lambda: run_speed(out, deadline - time.time(), args.device))
    step("big_image", run_big_image, args.device, tuple(int(v) for v in args.big_size.lower().split("x")))
    save()
    print(json.dumps({k: v for k, v in report.items() if k != "steps"}, indent=1))
    for name, s in report["steps"].items():
        brief = {k: v for k, v in s.items() if k not in ("tail", "rows", "table")}
        print(f"{name}: {json.dumps(brief)[:1500]}")
    if report["steps"].get("speed", {}).get("table"):
        print(report["steps"]["speed"]["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
