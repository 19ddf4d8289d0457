"""Per-pair distances of reference metrics (peers, baselines) on a generated KADID-layout set, cached on disk.

Metrics that are not GAP variants cannot be rebuilt from cached pooled statistics, so their per-pair
distances are cached instead, one CSV per metric and size; reruns skip the pairs already scored.

    python benchmarks/peer_scores.py --dataset data/kodak_dev --metrics lpips-vgg,dists --size 512x384 \
        --out studies/results/dev_proxy_512/peers

Rows: ``dist_img,ref_img,distance`` (distance in the metric's own orientation, lower = more similar
for every metric listed here), in the package's one resumable score file
(:mod:`invariant_lpips.benchmarks.persistence`: appended and fsynced per batch, a torn tail cut).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from invariant_lpips.data.io import load_image
from invariant_lpips.data.sizes import parse_size
from invariant_lpips.data.generated import read_generated_set
from invariant_lpips.benchmarks.persistence import AppendCSV, read_scores
from invariant_lpips.metric.registry import build_metric

FIELDS = ("dist_img", "ref_img", "distance")


def score(name: str, dataset: str, size, out: Path, device: str = "cpu", batch: int = 8) -> Path:
    pairs = read_generated_set(dataset)
    tag = f"{size[0]}x{size[1]}" if size else "native"
    path = out / f"{name}_{tag}.csv"
    rows, _clean = read_scores(path, FIELDS, ("dist_img",))
    done = {r["dist_img"] for r in rows}
    todo = [p for p in pairs if p.dist_path.name not in done]
    if not todo:
        return path
    metric = build_metric(name, device)
    by_ref = {}
    for p in todo:
        by_ref.setdefault(p.ref_path, []).append(p)
    t0, n = time.time(), 0
    with AppendCSV(path, FIELDS) as store:
        for ref_path, group in by_ref.items():
            ref = load_image(ref_path, size=size, device=device)
            for j in range(0, len(group), batch):
                chunk = group[j:j + batch]
                dist = torch.cat([load_image(p.dist_path, size=size, device=device) for p in chunk])
                with torch.inference_mode():
                    d = metric(ref, dist).double().cpu().numpy()
                store.append([[p.dist_path.name, p.ref_path.name, f"{v:.8g}"] for p, v in zip(chunk, d)])
                n += len(chunk)
            print(f"{name}: {n}/{len(todo)} pairs, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="KADID-layout folder (images/ + dmos.csv)")
    ap.add_argument("--metrics", default="lpips-vgg,dists", help="comma-separated registry names")
    ap.add_argument("--size", default="512x384", help="WIDTHxHEIGHT every image is resized to, or 'none'")
    ap.add_argument("--out", required=True, help="folder for the per-metric CSV files")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in [m for m in args.metrics.split(",") if m]:
        print(score(name, args.dataset, parse_size(args.size), out, args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
