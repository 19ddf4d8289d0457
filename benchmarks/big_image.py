"""Peak memory and time of scoring one large pair (default 4000x6000) with the default variant on CPU.

The pair is generated (a smooth random image, upsampled, plus fine noise; the second is the first shifted
by 3 px with faint noise), so no data is needed. The metric scores it under ``torch.no_grad()``; above
``tile_above_px`` pixels the trunk and the statistics run in row strips (invariant_lpips/features/tiling.py),
with a progress bar over the strips. Peak memory is the process' maximum resident set size (``ru_maxrss``),
which includes Python, torch and the two input images (0.3 GB each at 4000x6000 float32).

    python benchmarks/big_image.py                      # 4000x6000, writes benchmarks/results/big_image/
    python benchmarks/big_image.py --size 1000x1500 --check   # also the whole-image score, compared

``--check`` also scores the pair in one piece (tiling off) and reports the relative difference; at
4000x6000 that needs about 15 GB, so use it on smaller sizes.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invariant_lpips.benchmarks.environment import environment, machine_line  # noqa: E402
from invariant_lpips import InvariantLPIPS  # noqa: E402
from invariant_lpips.features import tiling as tl  # noqa: E402


def machine() -> str:
    """The machine line of the one environment record (invariant_lpips.benchmarks.environment)."""
    return machine_line(environment("cpu"))


def _load() -> str:
    """The 1-minute load average (the machine may be shared: a busy one makes the time longer)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def make_pair(h: int, w: int, seed: int = 0):
    """(1, 3, h, w) x2 in [0, 1]: a smooth random image with fine noise, and a 3-px shift of it."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, h // 64 + 2, w // 64 + 2, generator=g)
    x = torch.nn.functional.interpolate(low, size=(h + 3, w), mode="bilinear", align_corners=False)
    x.add_(torch.rand(x.shape, generator=g).mul_(0.1)).clamp_(0, 1)
    y = x[..., 3:, :].clone()
    x = x[..., :h, :].contiguous()
    y.add_(torch.randn(y.shape, generator=g).mul_(0.01)).clamp_(0, 1)
    return x, y


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="4000x6000", help="HEIGHTxWIDTH (default 4000x6000)")
    ap.add_argument("--variant", default=None, help="default: the package's default variant")
    ap.add_argument("--check", action="store_true", help="also score in one piece and compare (needs memory)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "big_image"))
    args = ap.parse_args(argv)
    h, w = (int(v) for v in args.size.lower().split("x"))
    metric = InvariantLPIPS(variant=args.variant) if args.variant else InvariantLPIPS()
    x, y = make_pair(h, w)
    base = peak_rss_gib()
    t0 = time.perf_counter()
    with torch.no_grad(), tl.tiling(progress=True):
        d = float(metric(x, y, normalize=True))
    seconds = time.perf_counter() - t0
    peak = peak_rss_gib()
    result = {"size": [h, w], "variant": metric.variant.name, "distance": d, "seconds": round(seconds, 1),
              "peak_rss_gib": round(peak, 2), "rss_before_scoring_gib": round(base, 2),
              "tiled": h * w > tl.POLICY.tile_above_px,
              "strip_rows": tl.strip_rows(metric.net, x, tl.POLICY), "halo_px": tl.halo_px(metric.net),
              "machine": machine()}
    if args.check:
        t1 = time.perf_counter()
        with torch.no_grad(), tl.tiling(tile_above_px=float("inf")):
            whole = float(metric(x, y, normalize=True))
        result.update(whole_distance=whole, whole_seconds=round(time.perf_counter() - t1, 1),
                      relative_difference=abs(d - whole) / max(abs(whole), 1e-12),
                      peak_rss_gib_after_whole=round(peak_rss_gib(), 2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"big_image_{h}x{w}"
    (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Scoring a {h}x{w} pair ({result['variant']}, CPU, no gradients)", "",
             f"- distance {d:.4f}; {seconds:.0f} s; peak RSS {peak:.2f} GiB (process, inputs included; "
             f"{base:.2f} GiB before scoring)",
             f"- strips of {result['strip_rows']} rows with a {result['halo_px']}-px halo"
             + ("" if result["tiled"] else " (not used: the image is below the tiling limit)"),
             f"- machine: {result['machine']}"]
    if args.check:
        lines.append(f"- in one piece: {result['whole_distance']:.6f} ({result['whole_seconds']:.0f} s), relative "
                     f"difference {result['relative_difference']:.2e}")
    command = " ".join(["python benchmarks/big_image.py", *(argv if argv is not None else sys.argv[1:])])
    lines += ["", f"Command: `{command}`; load average while it ran: {_load()}", ""]
    (out / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
