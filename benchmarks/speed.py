#!/usr/bin/env python
"""Speed, peak memory and share of the machine's peak of InvariantLPIPS, LPIPS and the ``lpips`` package.

Two workloads, measured in one run on the same machine:

* ``kadid``  -- a KADID-shaped reference group: one 512x384 reference and N distorted images (noisy
  copies of it, sigma 0.01-0.1: aligned with it, as KADID's are; a registered metric finds them undisplaced)
  (default 16 on CPU, 125 on CUDA), scored in batches as ``metric(ref, batch)`` (default batch:
  the whole group on CPU, 32 on CUDA). Our metrics compute the broadcast reference once per call.
  The ``lpips`` package is measured twice: ``lpips-pkg`` as it is used on a dataset of pairs
  (the reference expanded, so its trunk runs on the reference copy of every pair: the usual
  drop-in cost); ``lpips-pkg[bcast]`` called with the batch-of-1 reference, which it also
  accepts; and ``lpips-pkg[bcast,cl]``, that plus channels-last inputs (its best case). Inputs are
  contiguous NCHW tensors, as a DataLoader yields them, unless ``cl``.
* ``single`` -- single 1080x800 pairs (an image and a noisy copy), ``metric(x, y)`` with N = 1.
* ``trunk`` -- the trunk alone (conv stack and pooling, no statistics or distance) on the KADID
  group's 1 + N images in one batch, for our metrics: its "pairs/s" are images/s, and its GFLOP/s
  the trunk's own share of the peak.

The machine's ceiling: a large matrix product (4096^3, best of 5, same threads) measures the fp32
peak (and bf16 where it differs). Each row reports the trunk's FLOPs it ran
(:meth:`VGG16Trunk.flops`: 120 GFLOP per 512x384 image), the GFLOP/s achieved and that share of
the measured peak, beside pairs/s -- how far from the limit each metric is.

Options measured on the default variant (``--options``, on by default on CPU): the trunk backend
(``eager`` plain layers; ``auto`` fused oneDNN conv+ReLU and fused blur-max, the default;
``compile``: ``torch.compile`` inductor with freezing, compile time reported apart; ``jit``:
``torch.jit.trace`` + ``freeze`` + ``optimize_for_inference``), the batch size and the thread count.

Every configuration runs in a fresh subprocess so that peak memory (``ru_maxrss`` on CPU, the
whole process; ``torch.cuda.max_memory_allocated`` on CUDA) does not mix between configurations.
Timings: median over ``--repeats`` timed runs after a warm-up, under ``torch.inference_mode()``;
CUDA timings are synchronised. The lpips package gets its VGG weights from our resolver.

Examples::

    python benchmarks/speed.py --json benchmarks/results/speed/cpu.json     # CPU, ~15 minutes on 2 cores
    python benchmarks/speed.py --quick --no-options                           # a few minutes
    python benchmarks/speed.py --devices cuda --dtype fp32,bf16,fp16 --json speed_cuda.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

WORKLOADS = ("kadid", "single", "trunk")
KADID_SIZE = (384, 512)    # H, W
SINGLE_SIZE = (800, 1080)  # H, W


# ----------------------------------------------------------------------------- machine


def machine_info() -> Dict[str, Any]:
    """The environment record (:func:`invariant_lpips.benchmarks.environment.environment`) of this machine, on
    the GPU when there is one, plus the lpips package's version."""
    import torch

    from invariant_lpips.benchmarks.environment import environment

    return environment("cuda" if torch.cuda.is_available() else "cpu", packages=("lpips",))


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


def _trunk_of(adapter):
    """The VGG16Trunk inside an adapter's module (ours: ``.net``), or None for peers."""
    from invariant_lpips.trunk.vgg16 import VGG16Trunk

    net = getattr(adapter.module, "net", None)
    return net if isinstance(net, VGG16Trunk) else None


def _apply_backend(trunk, backend: str, example):
    """Switch ``trunk`` to a measured execution path; returns the seconds the switch took."""
    import torch

    t0 = time.perf_counter()
    if backend in ("auto", "eager"):
        trunk.backend = backend
    elif backend == "compile":
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        trunk.backend = "eager"
        trunk.forward = torch.compile(trunk.forward, dynamic=False)
        trunk(example)  # compile for the measured shape
    elif backend == "jit":
        trunk.backend = "eager"
        traced = torch.jit.trace(trunk, example, strict=False, check_trace=False)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        trunk.forward = frozen
        frozen(example)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    return time.perf_counter() - t0


def worker(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Measure one configuration in this (fresh) process."""
    import contextlib

    import torch

    from invariant_lpips.metric.registry import build_metric
    from invariant_lpips.trunk.vgg16 import RELU_TAPS, VGG16Trunk, lpips_scale

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    dev = torch.device(cfg["device"])
    cuda = dev.type == "cuda"
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg["dtype"]]
    t0 = time.perf_counter()
    metric = cfg["metric"].split("[")[0]
    flags = set(cfg["metric"].partition("[")[2].rstrip("]").split(",")) - {""}
    adapter = build_metric(metric, dev)
    if adapter.module is not None and _trunk_of(adapter) is not None:
        adapter.module.eval().to(memory_format=torch.channels_last)
    build_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(0)

    def images(n, hw):
        x = torch.rand(n, 3, hw[0] // 8, hw[1] // 8, generator=g)  # smooth, natural-ish content
        x = torch.nn.functional.interpolate(x, size=hw, mode="bilinear", align_corners=False)
        # inputs as a DataLoader yields them (contiguous NCHW); our metrics go channels-last inside.
        # [cl]: hand the peer channels-last inputs too (its convolutions then follow that format)
        return x.to(dev).contiguous(memory_format=torch.channels_last if "cl" in flags else torch.contiguous_format)

    def distorted(x, n):  # KADID's distorted images are aligned with their reference: noisy copies of it
        sigma = torch.linspace(0.01, 0.1, n).view(n, 1, 1, 1)
        noise = torch.randn(n, *x.shape[1:], generator=g).to(dev)
        return (x + sigma.to(dev) * noise).clamp(0, 1).contiguous(memory_format=torch.channels_last if "cl" in flags else torch.contiguous_format)

    # lpips-pkg[bcast]: call the package with the batch-of-1 reference (it broadcasts itself)
    call = adapter.fn if "bcast" in flags else adapter
    expands = not (adapter.broadcasts or "bcast" in flags)
    if cfg["workload"] == "kadid":
        hw = KADID_SIZE
        ref = images(1, hw)
        dist = distorted(ref, cfg["n_distorted"])
        chunks = list(dist.split(cfg["batch_size"]))
        pairs = dist.shape[0]
        # trunk passes per step: the reference once per call, or once per pair when expanded
        trunk_images = sum((2 * c.shape[0]) if expands else (1 + c.shape[0]) for c in chunks)

        def step():
            return [call(ref, c) for c in chunks]
    elif cfg["workload"] == "trunk":  # the conv stack and its pooling alone, on a KADID group's images
        hw = KADID_SIZE
        net = _trunk_of(adapter)
        x = lpips_scale(images(1 + cfg["n_distorted"], hw) * 2 - 1)
        pairs = trunk_images = x.shape[0]  # "pairs" here: images through the trunk

        def step():
            return [torch.stack([t.float().mean() for t in net(x).values()])]
    else:
        hw = SINGLE_SIZE
        x = images(1, hw)
        y = distorted(x, 1)
        pairs, trunk_images = 1, 2

        def step():
            return [call(x, y)]

    trunk = _trunk_of(adapter)
    flops_trunk = trunk if trunk is not None else VGG16Trunk(weights=None, pooling="max", taps=RELU_TAPS)
    flops_per_image = flops_trunk.flops(*hw) if metric.startswith(("lpips", "paper")) or trunk is not None else None
    autocast = (torch.autocast(dev.type, dtype=amp) if amp is not None else contextlib.nullcontext())
    rss_model = _rss_bytes()
    backend_s = None
    with torch.inference_mode(), autocast:
        if trunk is not None and cfg.get("backend"):
            example = lpips_scale(images(1 + cfg["batch_size"], hw) * 2 - 1) if cfg["backend"] in ("compile", "jit") \
                else None
            backend_s = _apply_backend(trunk, cfg["backend"], example)
            if cfg["backend"] in ("compile", "jit"):  # compile/trace for every shape of the step, untimed
                t = time.perf_counter()
                step()
                backend_s += time.perf_counter() - t
        if cuda:
            torch.backends.cudnn.benchmark = True
            for _ in range(cfg["warmup"]):
                step()
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        else:  # a small warm-up (first-call overheads) instead of a full, slow workload
            small = images(2, (64, 64))
            call(small[:1], small[1:])
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
    gflops = (flops_per_image * trunk_images / med / 1e9) if flops_per_image else None
    res.update({
        "pairs": pairs, "times_s": times, "median_s": med, "pairs_per_s": pairs / med, "ms_per_pair": 1e3 * med / pairs,
        "trunk_images_per_step": trunk_images, "trunk_gflop_per_image": (flops_per_image or 0) / 1e9 or None,
        "gflops_per_s": gflops, "build_s": build_s, "backend_setup_s": backend_s,
        "rss_after_build_mib": rss_model / 2 ** 20, "peak_rss_mib": _peak_rss_bytes() / 2 ** 20,
        "peak_cuda_mib": torch.cuda.max_memory_allocated(dev) / 2 ** 20 if cuda else None,
        "torch_threads": torch.get_num_threads(), "distance_check": float(d.mean()),
        "trunk_backend": (cfg.get("backend") or trunk.backend) if trunk is not None else None,
    })
    return res


def peak_worker(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The machine's dense matmul peak (GFLOP/s) for one dtype: best of 5 products of 4096^3."""
    import torch

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    dev = torch.device(cfg["device"])
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg["dtype"]]
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 peak, not TF32's
    n = cfg.get("n", 4096)
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    best = float("inf")
    for _ in range(6):
        t = time.perf_counter()
        a @ b
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        best = min(best, time.perf_counter() - t)
    return dict(cfg, gflops_per_s=2 * n ** 3 / best / 1e9, best_s=best, torch_threads=torch.get_num_threads())


def run_config(cfg: Dict[str, Any], timeout: float, flag: str = "--worker") -> Dict[str, Any]:
    """Run one configuration (``--worker``) or one peak measurement (``--peak-worker``) in a fresh process."""
    cmd = [sys.executable, os.path.abspath(__file__), flag, json.dumps(cfg)]
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


def _workload_label(r: Dict[str, Any]) -> str:
    if r["workload"] == "kadid":
        return f"1 ref + {r['n_distorted']} x 512x384, batch {r['batch_size']}"
    if r["workload"] == "trunk":
        return f"trunk only: {1 + r['n_distorted']} x 512x384 (images/s)"
    return "single 1080x800 pair"


def markdown(results: List[Dict[str, Any]], info: Dict[str, Any], peaks: Dict[str, float]) -> str:
    d = info.get("device", {})  # an environment record
    lines = [f"Machine: {d.get('cpu')} ({d.get('cores')} logical cores, torch threads "
             f"{d.get('torch_threads')}), torch {info.get('torch')}"
             + (f", GPU {d['gpu']} (CUDA {d.get('cuda')})" if d.get("gpu") else ", no GPU"), ""]
    if peaks:
        lines.append("Measured peak (4096^3 matmul): "
                     + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()) + "")
        lines.append("")
    lines += ["| device | dtype | workload | metric | backend | threads | pairs/s | ms/pair | x lpips-pkg "
              "| trunk GFLOP/s | % of peak | peak RSS MiB (after build) | peak CUDA MiB |",
              "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    base = {(r["device"], r["dtype"], r["workload"]): r["pairs_per_s"] for r in results
            if r.get("metric") == "lpips-pkg" and "error" not in r}
    for r in results:
        wl = _workload_label(r)
        if "error" in r:
            lines.append(f"| {r['device']} | {r['dtype']} | {wl} | {r['metric']} | {r.get('backend') or ''} | "
                         f"{r.get('threads') or ''} | error: {r['error'][:80]} | | | | | | |")
            continue
        cudamem = f"{r['peak_cuda_mib']:.0f}" if r.get("peak_cuda_mib") is not None else "-"
        b = base.get((r["device"], r["dtype"], r["workload"]))
        ratio = f"{r['pairs_per_s'] / b:.2f}" if b else "-"
        peak = peaks.get(f"{r['device']} {'fp32' if r['dtype'] == 'fp32' else r['dtype']}")
        gf = r.get("gflops_per_s")
        share = f"{100 * gf / peak:.0f}%" if gf and peak else "-"
        lines.append(f"| {r['device']} | {r['dtype']} | {wl} | {r['metric']} | {r.get('trunk_backend') or '-'} | "
                     f"{r['torch_threads']} | {r['pairs_per_s']:.3g} | {r['ms_per_pair']:.4g} | {ratio} | "
                     f"{f'{gf:.0f}' if gf else '-'} | {share} | {r['peak_rss_mib']:.0f} ({r['rss_after_build_mib']:.0f}) "
                     f"| {cudamem} |")
    return "\n".join(lines) + "\n"


def plan(args, variants: List[str], devices: List[str], workloads: List[str], dtypes: List[str],
         default_variant: str) -> List[Dict[str, Any]]:
    """The configurations of one run: main rows per (device, dtype, workload), then the option rows."""
    configs: List[Dict[str, Any]] = []
    modes = {"pairs": "lpips-pkg", "bcast": "lpips-pkg[bcast]", "bcast-cl": "lpips-pkg[bcast,cl]"}
    peers = [] if args.no_peers else [modes[m] for m in args.peer_modes.split(",") if m]
    for dev in devices:
        cuda = dev.startswith("cuda")
        group = args.kadid_n or (125 if cuda else (8 if args.quick else 16))
        base = {"device": dev, "warmup": 2 if cuda else 0, "threads": None, "backend": None}
        for dtype in (dtypes if cuda else ["fp32"]):
            for wl in workloads:
                ours = variants + ["lpips-vgg"]
                for m in ours + ([] if wl == "trunk" else [p for p in peers if wl == "kadid" or p == "lpips-pkg"]):
                    configs.append(dict(base, workload=wl, metric=m, dtype=dtype, n_distorted=group,
                                        batch_size=args.batch_size or (32 if cuda else group),
                                        repeats=args.repeats or ((5 if args.quick else 10) if cuda
                                                                 else (1 if args.quick else (3 if wl == "kadid" else 2)))))
        if cuda or not args.options:
            continue
        opt = dict(base, workload="kadid", metric=default_variant, dtype="fp32", n_distorted=group,
                   repeats=args.repeats or (1 if args.quick else 3))
        for backend in ("eager", "compile", "jit"):
            configs.append(dict(opt, backend=backend, batch_size=group))
        for bs in sorted({4, 8} - {group}):
            configs.append(dict(opt, backend="auto", batch_size=bs))
        configs.append(dict(opt, backend="auto", batch_size=group, threads=1))
    return configs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--peak-worker", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats and a smaller CPU KADID group (8 distorted): a few minutes on CPU")
    ap.add_argument("--variants", default=None,
                    help="comma-separated InvariantLPIPS variants, or 'all' (default: the default variant, "
                         "paper and gap-lin)")
    ap.add_argument("--no-peers", action="store_true", help="leave out the lpips package")
    ap.add_argument("--peer-modes", default="pairs,bcast,bcast-cl",
                    help="how the lpips package is called: pairs (reference expanded), bcast (batch-of-1 "
                         "reference), bcast-cl (that plus channels-last inputs); comma-separated")
    ap.add_argument("--options", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure the default variant's trunk backends (eager, compile, jit), batch "
                         "sizes and one thread (CPU only; default on)")
    ap.add_argument("--devices", default=None, help="cpu,cuda (default: cpu, plus cuda when available)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="kadid,single,trunk")
    ap.add_argument("--dtype", default="fp32", help="CUDA autocast dtype(s), comma-separated: fp32,bf16,fp16")
    ap.add_argument("--kadid-n", type=int, default=None, help="distorted images per group (CPU 16, CUDA 125)")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="distorted images per call (CPU: the whole group; CUDA 32)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed repeats (default CPU: kadid 3, single 2; CUDA 10; --quick: CPU 1, CUDA 5)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per configuration")
    ap.add_argument("--json", default="speed.json", help="where to write the results (JSON)")
    args = ap.parse_args(argv)

    if args.worker:
        res = worker(json.loads(args.worker))
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    if args.peak_worker:
        print("RESULT " + json.dumps(peak_worker(json.loads(args.peak_worker))), flush=True)
        return 0

    import torch

    from invariant_lpips import DEFAULT_VARIANT, list_variants

    if args.variants is None:
        variants = list(dict.fromkeys(v for v in (DEFAULT_VARIANT, "paper", "gap-lin") if v in list_variants()))
    elif args.variants.strip() == "all":
        variants = list_variants()
    else:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in list_variants()]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; available: {', '.join(list_variants())}")
    devices = (args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    if "cuda" in devices and not torch.cuda.is_available():
        ap.error("--devices cuda: torch.cuda.is_available() is False")
    bad_modes = [m for m in args.peer_modes.split(",") if m and m not in ("pairs", "bcast", "bcast-cl")]
    if bad_modes:
        ap.error(f"--peer-modes: unknown {bad_modes}; use pairs, bcast, bcast-cl")
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    bad = [d for d in dtypes if d not in ("fp32", "bf16", "fp16")]
    if bad:
        ap.error(f"--dtype: unknown {bad}; use fp32, bf16, fp16")
    workloads = [w for w in args.workloads.split(",") if w]
    for wl in workloads:
        if wl not in WORKLOADS:
            ap.error(f"unknown workload {wl!r}")
    info = machine_info()
    print(f"machine: {json.dumps(info)}", flush=True)
    t_all = time.perf_counter()
    peaks: Dict[str, float] = {}
    for dev in devices:
        # the CPU bf16 peak only when bf16 is asked for: without AMX/AVX512-BF16 (e.g. AMD EPYC) a 4096^3 bf16
        # product is emulated and takes minutes
        for dtype in sorted(set(dtypes) | {"fp32"}):
            r = run_config({"device": dev, "dtype": dtype}, args.timeout, flag="--peak-worker")
            if "error" not in r:
                peaks[f"{dev} {dtype}"] = r["gflops_per_s"]
                print(f"[peak {dev} {dtype}] {r['gflops_per_s']:.0f} GFLOP/s", flush=True)
    results: List[Dict[str, Any]] = []
    for cfg in plan(args, variants, devices, workloads, dtypes, DEFAULT_VARIANT):
        t = time.perf_counter()
        r = run_config(cfg, args.timeout)
        r["wall_s"] = time.perf_counter() - t
        results.append(r)
        msg = r.get("error") or (f"{r['pairs_per_s']:.3g} pairs/s"
                                 + (f", {r['gflops_per_s']:.0f} GFLOP/s" if r.get("gflops_per_s") else "")
                                 + f", peak RSS {r['peak_rss_mib']:.0f} MiB")
        label = f"{cfg['device']} {cfg['dtype']} {cfg['workload']} {cfg['metric']} b{cfg['batch_size']}" \
                + (f" {cfg['backend']}" if cfg.get("backend") else "") + (f" t{cfg['threads']}" if cfg.get("threads") else "")
        print(f"[{label}] {msg} ({r['wall_s']:.0f} s)", flush=True)
    table = markdown(results, info, peaks)
    print()
    print(table)
    out_dir = os.path.dirname(os.path.abspath(args.json))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"machine": info, "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
                   "total_s": time.perf_counter() - t_all, "peaks_gflops": peaks, "results": results,
                   "table": table}, fh, indent=1)
    print(f"wrote {args.json} ({time.perf_counter() - t_all:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
