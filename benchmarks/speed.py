#!/usr/bin/env python
"""Speed and peak memory of InvariantLPIPS variants, our LPIPS baseline and the ``lpips`` package.

Two workloads, measured in one run on the same machine:

* ``kadid``  -- a KADID-shaped reference group: one 512x384 reference and N distorted images
  (default 16 on CPU, 125 on CUDA), scored in batches as ``metric(ref, batch)``. Our metrics compute
  the broadcast reference once per call; the ``lpips`` package (through the adapter) expands it, so
  it runs the trunk on the reference copy of every pair -- its real cost when used as a drop-in.
* ``single`` -- single 1080x800 pairs, ``metric(x, y)`` with N = 1.

Every (device, workload, metric) configuration runs in a fresh subprocess so that peak memory
(``ru_maxrss`` on CPU -- the whole process, torch included, hence also the resident size after the
model was built; ``torch.cuda.max_memory_allocated`` on CUDA) does not mix between configurations.
Timings: median over ``--repeats`` timed runs after a warm-up, under ``torch.inference_mode()``;
CUDA timings are synchronised. The lpips package gets its VGG weights from our resolver.

Examples::

    python benchmarks/speed.py --quick                    # CPU (+ CUDA when available), a few minutes
    python benchmarks/speed.py --devices cuda --dtype bf16 --json speed_h100.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

WORKLOADS = ("kadid", "single")
KADID_SIZE = (384, 512)    # H, W
SINGLE_SIZE = (800, 1080)  # H, W


# ----------------------------------------------------------------------------- machine


def machine_info() -> Dict[str, Any]:
    import torch

    from invariant_lpips.benchmarks.runner import cpu_model

    cpu = cpu_model()
    info: Dict[str, Any] = {
        "cpu": cpu, "logical_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
    }
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["ram_gib"] = round(psutil.virtual_memory().total / 2 ** 30, 1)
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    try:
        from importlib.metadata import version

        info["lpips"] = version("lpips")
        info["invariant_lpips"] = version("invariant-lpips")
    except Exception:  # noqa: BLE001
        pass
    return info


# ----------------------------------------------------------------------------- one configuration


def _rss_bytes() -> int:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:  # pragma: no cover
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # kB on Linux


def worker(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Measure one configuration in this (fresh) process."""
    import contextlib

    import torch

    from invariant_lpips.metric.registry import build_metric

    dev = torch.device(cfg["device"])
    cuda = dev.type == "cuda"
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg["dtype"]]
    t0 = time.perf_counter()
    adapter = build_metric(cfg["metric"], dev)
    if adapter.module is not None:
        adapter.module.eval().to(memory_format=torch.channels_last)
    build_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(0)

    def images(n, hw):
        x = torch.rand(n, 3, hw[0] // 8, hw[1] // 8, generator=g)  # smooth, natural-ish content
        x = torch.nn.functional.interpolate(x, size=hw, mode="bilinear", align_corners=False)
        return x.to(dev).contiguous(memory_format=torch.channels_last)

    if cfg["workload"] == "kadid":
        ref, dist = images(1, KADID_SIZE), images(cfg["n_distorted"], KADID_SIZE)
        chunks = list(dist.split(cfg["batch_size"]))
        pairs = dist.shape[0]

        def step():
            return [adapter(ref, c) for c in chunks]
    else:
        x, y = images(1, SINGLE_SIZE), images(1, SINGLE_SIZE)
        pairs = 1

        def step():
            return [adapter(x, y)]

    autocast = (torch.autocast("cuda", dtype=amp) if (cuda and amp is not None) else contextlib.nullcontext())
    rss_model = _rss_bytes()
    with torch.inference_mode(), autocast:
        if cuda:
            torch.backends.cudnn.benchmark = True
            for _ in range(cfg["warmup"]):
                step()
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        else:  # a small warm-up (first-call overheads) instead of a full, slow workload
            small = images(2, (64, 64))
            adapter(small[:1], small[1:])
        times: List[float] = []
        for _ in range(cfg["repeats"]):
            t = time.perf_counter()
            out = step()
            if cuda:
                torch.cuda.synchronize(dev)
            times.append(time.perf_counter() - t)
    d = torch.cat([o.float().reshape(-1).cpu() for o in out])
    med = statistics.median(times)
    res = dict(cfg)
    res.update({
        "pairs": pairs, "times_s": times, "median_s": med, "pairs_per_s": pairs / med, "ms_per_pair": 1e3 * med / pairs,
        "build_s": build_s, "rss_after_build_mib": rss_model / 2 ** 20, "peak_rss_mib": _peak_rss_bytes() / 2 ** 20,
        "peak_cuda_mib": torch.cuda.max_memory_allocated(dev) / 2 ** 20 if cuda else None,
        "torch_threads": torch.get_num_threads(), "distance_check": float(d.mean()),
    })
    return res


def run_config(cfg: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(cfg)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(cfg, error=f"timed out after {timeout:.0f} s")
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    return dict(cfg, error=" | ".join(tail) or f"exit code {p.returncode}")


# ----------------------------------------------------------------------------- report


def markdown(results: List[Dict[str, Any]], info: Dict[str, Any]) -> str:
    lines = [f"Machine: {info.get('cpu')} ({info.get('logical_cores')} logical cores, torch threads "
             f"{info.get('torch_threads')}), torch {info.get('torch')}"
             + (f", GPU {info['gpu']} (CUDA {info.get('cuda')})" if info.get("gpu") else ", no GPU"), ""]
    lines += ["| device | dtype | workload | metric | pairs/s | ms/pair | peak RSS MiB (after build) | peak CUDA MiB |",
              "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in results:
        wl = (f"kadid: 1 ref + {r['n_distorted']} x 512x384, batch {r['batch_size']}" if r["workload"] == "kadid"
              else "single 1080x800 pair")
        if "error" in r:
            lines.append(f"| {r['device']} | {r['dtype']} | {wl} | {r['metric']} | error: {r['error'][:80]} | | | |")
            continue
        cudamem = f"{r['peak_cuda_mib']:.0f}" if r.get("peak_cuda_mib") is not None else "-"
        lines.append(f"| {r['device']} | {r['dtype']} | {wl} | {r['metric']} | {r['pairs_per_s']:.3g} | "
                     f"{r['ms_per_pair']:.4g} | {r['peak_rss_mib']:.0f} ({r['rss_after_build_mib']:.0f}) | {cudamem} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats and a smaller CPU KADID group (8 distorted): a few minutes on CPU")
    ap.add_argument("--variants", default=None,
                    help="comma-separated InvariantLPIPS variants, or 'all' (default: the default variant, "
                         "paper and lpips-gap)")
    ap.add_argument("--no-peers", action="store_true", help="leave out the lpips package")
    ap.add_argument("--devices", default=None, help="cpu,cuda (default: cpu, plus cuda when available)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="kadid,single")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="CUDA autocast dtype")
    ap.add_argument("--kadid-n", type=int, default=None, help="distorted images per group (CPU 16, CUDA 125)")
    ap.add_argument("--batch-size", type=int, default=None, help="distorted images per call (CPU 8, CUDA 32)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed repeats (default CPU: kadid 1, single 2; CUDA 10; --quick: CPU 1, CUDA 5)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per configuration")
    ap.add_argument("--json", default="speed.json", help="where to write the results (JSON)")
    args = ap.parse_args(argv)

    if args.worker:
        res = worker(json.loads(args.worker))
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    import torch

    from invariant_lpips import list_variants

    from invariant_lpips import DEFAULT_VARIANT

    if args.variants is None:
        variants = list(dict.fromkeys(v for v in (DEFAULT_VARIANT, "paper", "lpips-gap") if v in list_variants()))
    elif args.variants.strip() == "all":
        variants = list_variants()
    else:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in list_variants()]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; available: {', '.join(list_variants())}")
    metrics = variants + ["lpips-vgg"] + ([] if args.no_peers else ["lpips-pkg"])
    devices = (args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    if "cuda" in devices and not torch.cuda.is_available():
        ap.error("--devices cuda: torch.cuda.is_available() is False")
    workloads = [w for w in args.workloads.split(",") if w]
    info = machine_info()
    print(f"machine: {json.dumps(info)}", flush=True)
    results: List[Dict[str, Any]] = []
    t_all = time.perf_counter()
    for dev in devices:
        cuda = dev.startswith("cuda")
        for wl in workloads:
            if wl not in WORKLOADS:
                ap.error(f"unknown workload {wl!r}")
            for m in metrics:
                cfg = {
                    "device": dev, "workload": wl, "metric": m, "dtype": args.dtype if cuda else "fp32",
                    "n_distorted": args.kadid_n or (125 if cuda else (8 if args.quick else 16)),
                    "batch_size": args.batch_size or (32 if cuda else 8),
                    "repeats": args.repeats or ((5 if args.quick else 10) if cuda
                                                else (1 if args.quick or wl == "kadid" else 2)),
                    "warmup": 2 if cuda else 0,
                }
                t = time.perf_counter()
                r = run_config(cfg, args.timeout)
                r["wall_s"] = time.perf_counter() - t
                results.append(r)
                msg = r.get("error") or f"{r['pairs_per_s']:.3g} pairs/s, peak RSS {r['peak_rss_mib']:.0f} MiB"
                print(f"[{dev} {wl} {m}] {msg} ({r['wall_s']:.0f} s)", flush=True)
    table = markdown(results, info)
    print()
    print(table)
    with open(args.json, "w") as fh:
        json.dump({"machine": info, "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
                   "total_s": time.perf_counter() - t_all, "results": results, "table": table}, fh, indent=1)
    print(f"wrote {args.json} ({time.perf_counter() - t_all:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
