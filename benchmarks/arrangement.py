"""Shift and arrangement probes on photographs: small shifts against faint noise, a mirror and a 64-px block
shuffle against noise and JPEG q30, for several metrics in one run (definitions in
:mod:`invariant_lpips.robustness.arrangement`; no human data, nothing fitted).

    python benchmarks/arrangement.py --refs ../shared/data/kodak24            # README's table
    python benchmarks/arrangement.py --refs DIR --metrics registered-lab-blur,dists --size 192

Writes ``OUT/arrangement.json`` (per-photo distances, the summary, the machine) and ``OUT/arrangement.md``
(default OUT: ``benchmarks/results/arrangement``). A rerun with other metrics adds them when the settings
(photos, size) are the same.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invariant_lpips.benchmarks.environment import environment, machine_line, rows_machine_line, tag_rows  # noqa: E402
from invariant_lpips.data.io import list_images, load_image  # noqa: E402
from invariant_lpips.metric.registry import build_metric  # noqa: E402
from invariant_lpips.robustness.arrangement import SUMMARY_KEYS, probe_distances, probe_summary  # noqa: E402

DEFAULT_METRICS = "registered-lab-lq3-subpixel-blur,registered-lab-lq4-blur,registered-lab-blur,lpips-vgg,stlpips-vgg,dists,mse"


def markdown(results: dict, settings: dict, machine: str) -> str:
    lines = [f"Shift and arrangement probes: {settings['photos']} photos, {settings['size']}-px crops "
             "(invariant_lpips.robustness.arrangement). Shifts: median over photos of d(shift) / d(noise 0.02); "
             "mirror and shuffle: minimum over photos of d / d(noise 0.03) and d / d(JPEG q30).", "",
             "| metric | " + " | ".join(SUMMARY_KEYS) + " |", "|---|" + "---:|" * len(SUMMARY_KEYS)]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{r['summary'][k]:.3f}" for k in SUMMARY_KEYS) + " |")
    lines += ["", f"Machine: {machine}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refs", required=True, help="folder of photographs (Kodak24)")
    ap.add_argument("--metrics", default=DEFAULT_METRICS, help=f"registry names (default {DEFAULT_METRICS})")
    ap.add_argument("--size", type=int, default=256, help="crop size (default 256)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N photos")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "arrangement"))
    args = ap.parse_args(argv)
    files = list_images(args.refs)[: args.limit or None]
    photos = [load_image(f) for f in files]
    settings = {"photos": len(files), "size": args.size, "files": [f.name for f in files]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "arrangement.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    # each row keeps the machine that measured it (earlier rows: the file's)
    results = tag_rows(old["metrics"], machine_line(old["environment"])) if old.get("settings") == settings else {}
    env = environment("cpu")
    for name in [m.strip() for m in args.metrics.split(",") if m.strip()]:
        t0 = time.time()
        metric = build_metric(name)
        rows = probe_distances(metric, photos, args.size)
        results[name] = {"summary": probe_summary(rows), "rows": rows, "seconds": time.time() - t0,
                         "machine": machine_line(env)}
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[name]["summary"].items())
              + f" ({results[name]['seconds']:.0f} s)", flush=True)
        path.write_text(json.dumps({"settings": settings, "environment": env, "metrics": results}, indent=1))
    md = markdown(results, settings, rows_machine_line(results, machine_line(env)))
    (out / "arrangement.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    raise SystemExit(main())
