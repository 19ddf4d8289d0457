#!/usr/bin/env python
"""Does a metric see *where* things are? Arrangement, displacement curves and use as a loss.

    python studies/structure_evidence.py arrangement --refs ../shared/data/kodak24 \\
        --metrics default,paper,lpips-vgg,dists,stlpips-vgg --out studies/results/structure_evidence
    python studies/structure_evidence.py displacement --refs ../shared/data/kodak24 --raid ../shared/data/raid \\
        --metrics default,paper,lpips-vgg,dists,stlpips-vgg --out studies/results/structure_evidence
    python studies/structure_evidence.py loss --refs ../shared/data/kodak24 \\
        --metrics default,paper,lpips-vgg,dists,stlpips-vgg --out studies/results/structure_evidence

``default`` stands for the package's default variant. Every metric is built through the registry
(:func:`invariant_lpips.metric.registry.build_metric`: inputs in [0, 1], output (N,)). A name
``design:<design>`` (e.g. ``design:tex12+lab|s1.c32.centred|norm0.5``) is a candidate of the selection
study (:mod:`designs` (studies/designs.py)), built as an ``InvariantLPIPS`` with the design's term
scales, normalised on every pair of ``--store`` (images only, no human score), so that candidates can be
measured exactly as the shipped default is (``studies/structure_frontier.py`` collects them).

* **arrangement**: centre crops (``--crop`` px) of every reference; per crop, the distance of a mirror
  image, block shuffles (16, 32, 64 px blocks, a fixed permutation with no block in place), another photo
  (the next reference), JPEG q30 and faint Gaussian noise (sigma 0.03). Reported as ratios to the noise
  and to the JPEG of the same crop: median and minimum over crops, and how many crops have a ratio >= 2
  (noise) or > 1 (JPEG).
* **displacement**: d(crop, same crop moved by k px inside the photo) for k = 1..48 (content shift, no
  border), and rotations of 1..18 degrees about the crop centre (bilinear, on the whole photo, then
  cropped). The mean curves are set beside RAID's human MLDS curves for translation (5(L-1) px) and
  rotation (2(L-1) degrees): Pearson's r of metric and human curves over RAID's levels, and the costs as
  ratios to faint noise.
* **loss**: Adam on the pixels of y to minimise d(reference, y), from damaged starts (blur + noise, JPEG q10,
  a 3-px shifted copy) and from uniform noise, with the same budget for every metric. Reported: PSNR and
  SSIM gains at full resolution; PSNR of low-passed images (Gaussian sigma 2 px on both); and the Pearson
  correlation of the low-passed, mean-subtracted luminance with the reference's.
* **speed**: the KADID-shaped CPU workload of ``benchmarks/speed.py`` in one process: a 512x384
  reference and 16 distorted images; the registry's metrics and candidates are called as
  ``metric(reference, batch)`` (ours compute the reference once), ``lpips-pkg`` on the 16 expanded pairs
  as a dataset of pairs is scored; median of ``--repeats`` after a warm-up, pairs/s and the ratio to
  ``lpips-pkg`` measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from probes import (block_shuffle, centre_crop, gaussian_blur, jpeg, loss_starts, lowpass_corr, psnr,
                                               rotate, ssim)
from invariant_lpips.benchmarks.environment import environment
from invariant_lpips.data.io import list_images, load_image
from invariant_lpips.features.variants import DEFAULT_VARIANT
from invariant_lpips.metric.registry import build_metric


class _Design(torch.nn.Module):
    """A candidate design as a metric on [0, 1] images with an (N,) output, like the registry's."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x, y):
        return self.module(x, y, normalize=True).reshape(-1)


def metric_for(name, args):
    """The registry's metric ``name``, or the candidate ``design:<design>`` (needs ``--store``)."""
    if not name.startswith("design:"):
        return build_metric(name)
    from designs import design_by_name, design_metric
    from selection import Cells, design_coefficients

    if not args.store:
        raise SystemExit(f"{name}: a candidate design needs --store (the structure study's folder with terms.npz)")
    z = np.load(Path(args.store) / "terms.npz")
    cells = Cells(z["X"], z["names"], z["type"], z["level"], {c: 0.0 for c in zip(z["type"], z["level"])})
    design = design_by_name(name[len("design:"):])
    names, coef = design_coefficients(cells, design, cells.types)  # normalisation only: no human score
    return _Design(design_metric(design, names, coef)).eval()


def metric_names(arg):
    return [DEFAULT_VARIANT if m == "default" else m for m in arg.split(",") if m]


def label(name):
    name = name.replace("|", "\\|")  # design names hold '|': escaped for markdown tables
    return f"{name} (default)" if name == DEFAULT_VARIANT else name


def load_refs(folder, limit=0):
    paths = list_images(folder)
    paths = paths[:limit] if limit else paths
    return [load_image(p) for p in paths], [Path(p).name for p in paths]


def previous(args, what, config):
    """Metrics already measured with the same settings (a run adds to them; ``--fresh`` starts over)."""
    path = Path(args.out) / f"{what}.json"
    if args.fresh or not path.is_file():
        return {}
    old = json.loads(path.read_text())
    same = all(old.get(k) == v for k, v in config.items())
    return old.get("metrics", {}) if same else {}


def _distances(metric, ref, others):
    with torch.no_grad():
        return metric(ref, torch.cat(others)).tolist()


def arrangement(args):
    refs, names = load_refs(args.refs, args.limit)
    crops = [centre_crop(r, args.crop) for r in refs]
    g = torch.Generator().manual_seed(0)
    kinds = ["noise0.03", "jpeg30", "mirror", "shuffle16", "shuffle32", "shuffle64", "other-photo"]
    dist = {}
    for i, x in enumerate(crops):
        dist[i] = [(x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1), jpeg(x, 30), x.flip(-1),
                   block_shuffle(x, 16, i), block_shuffle(x, 32, i), block_shuffle(x, 64, i),
                   crops[(i + 1) % len(crops)]]
    out = {"crop": args.crop, "images": names, "kinds": kinds}
    out["metrics"] = previous(args, "arrangement", out)
    for name in metric_names(args.metrics):
        m = metric_for(name, args)
        t0 = time.time()
        rows = [_distances(m, x, dist[i]) for i, x in enumerate(crops)]
        d = np.array(rows)
        entry = {"distances": d.tolist(), "seconds": time.time() - t0}
        for j, k in enumerate(kinds[2:], start=2):
            rn, rj = d[:, j] / d[:, 0], d[:, j] / d[:, 1]
            entry[k] = {"noise_ratio_median": float(np.median(rn)), "noise_ratio_min": float(rn.min()),
                        "jpeg_ratio_median": float(np.median(rj)), "jpeg_ratio_min": float(rj.min()),
                        "crops_noise_ge2": int((rn >= 2).sum()), "crops_above_jpeg": int((rj > 1).sum())}
        entry["jpeg30"] = {"noise_ratio_median": float(np.median(d[:, 1] / d[:, 0]))}
        out["metrics"][name] = entry
        print(f"arrangement {name}: {time.time() - t0:.0f} s", flush=True)
    return write(args, "arrangement", out)


SHIFTS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 16, 20, 24, 25, 30, 32, 35, 40, 45, 48)
ROTATIONS = (1, 2, 4, 6, 8, 10, 12, 14, 16, 18)


def raid_curves(folder):
    import csv

    agg = {}
    with open(Path(folder) / "responses.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            kind = r["Distorted"].split("_")[0]
            if kind not in ("trans", "rot"):
                continue
            level = int(Path(r["Distorted"]).stem.split("_")[-1])
            agg.setdefault((kind, level), []).append(float(r["Response"]))
    return {k: float(np.mean(v)) for k, v in agg.items()}


def displacement(args):
    refs, names = load_refs(args.refs, args.limit)
    size = args.crop
    margin = max(SHIFTS)
    g = torch.Generator().manual_seed(0)
    out = {"crop": size, "shifts": list(SHIFTS), "rotations": list(ROTATIONS), "images": names}
    out["metrics"] = previous(args, "displacement", out)
    human = raid_curves(args.raid) if args.raid else {}
    if human:
        out["human"] = {"trans": [human[("trans", L)] for L in range(2, 11)],
                        "rot": [human[("rot", L)] for L in range(2, 11)]}
    for name in metric_names(args.metrics):
        m = metric_for(name, args)
        t0 = time.time()
        sh, rot, noise = [], [], []
        for r in refs:
            base = centre_crop(r, size, 0, -margin // 2)
            moved = [centre_crop(r, size, 0, -margin // 2 + k) for k in SHIFTS]
            sh.append(_distances(m, base, moved))
            x = centre_crop(r, size)
            noise.append(_distances(m, x, [(x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1)])[0])
            rot.append(_distances(m, x, [centre_crop(rotate(r, a), size) for a in ROTATIONS]))
        sh, rot, noise = np.array(sh), np.array(rot), np.array(noise)
        entry = {"shift_mean": sh.mean(0).tolist(), "rotation_mean": rot.mean(0).tolist(),
                 "shift_over_noise_median": np.median(sh / noise[:, None], 0).tolist(),
                 "rotation_over_noise_median": np.median(rot / noise[:, None], 0).tolist(),
                 "shift_monotone_fraction": float(np.mean(np.diff(sh, axis=1) >= 0)),
                 "seconds": time.time() - t0}
        if human:
            tr = [entry["shift_mean"][SHIFTS.index(5 * (L - 1))] for L in range(2, 11)]
            ro = [entry["rotation_mean"][ROTATIONS.index(2 * (L - 1))] for L in range(2, 11)]
            entry["pearson_vs_human_trans"] = float(np.corrcoef(tr, out["human"]["trans"])[0, 1])
            entry["pearson_vs_human_rot"] = float(np.corrcoef(ro, out["human"]["rot"])[0, 1])
            # the human ratio d(45 px)/d(5 px) is about 8.6; a curve that saturates early has a small one
            entry["ratio_45_to_5px"] = tr[-1] / max(tr[0], 1e-12)
            entry["ratio_18_to_2deg"] = ro[-1] / max(ro[0], 1e-12)
        out["metrics"][name] = entry
        print(f"displacement {name}: {time.time() - t0:.0f} s", flush=True)
    return write(args, "displacement", out)


def loss(args):
    refs, names = load_refs(args.refs, args.limit or 3)
    crops = [centre_crop(r, args.crop) for r in refs]
    out = {"crop": args.crop, "steps": args.steps, "lr": args.lr, "images": names}
    kinds = args.starts.split(",")
    if kinds != ["blur+noise", "jpeg10", "shift3px", "pure-noise"]:
        out["starts"] = kinds
    out["metrics"] = previous(args, "loss", out)
    for name in metric_names(args.metrics):
        m = metric_for(name, args)
        for p in m.parameters():
            p.requires_grad_(False)
        t0 = time.time()
        res = {}
        for i, x in enumerate(crops):
            g = torch.Generator().manual_seed(i)
            for kind, y0 in loss_starts(x, g).items():
                if kind not in kinds:
                    continue
                y = y0.clone().requires_grad_(True)
                opt = torch.optim.Adam([y], lr=args.lr)
                for _ in range(args.steps):
                    opt.zero_grad()
                    d = m(x, y).sum()
                    d.backward()
                    opt.step()
                    with torch.no_grad():
                        y.clamp_(0, 1)
                y = y.detach()
                lx = gaussian_blur(x, 2.0)
                r = {"psnr_start": psnr(y0, x), "psnr_end": psnr(y, x), "ssim_start": ssim(y0, x),
                     "ssim_end": ssim(y, x), "lp_psnr_start": psnr(gaussian_blur(y0, 2.0), lx),
                     "lp_psnr_end": psnr(gaussian_blur(y, 2.0), lx), "lp_corr_start": lowpass_corr(y0, x),
                     "lp_corr_end": lowpass_corr(y, x)}
                res.setdefault(kind, []).append(r)
        summary = {k: {f: float(np.mean([r[f] for r in v])) for f in v[0]} for k, v in res.items()}
        out["metrics"][name] = {"per_image": res, "mean": summary, "seconds": time.time() - t0}
        print(f"loss {name}: {time.time() - t0:.0f} s", flush=True)
    return write(args, "loss", out)


def speed(args):
    torch.manual_seed(0)
    ref = torch.rand(1, 3, 384, 512)
    batch = (ref + 0.05 * torch.randn(16, 3, 384, 512)).clamp(0, 1)
    out = {"workload": "kadid: 1 reference + 16 distorted, 512x384", "repeats": args.repeats,
           "threads": torch.get_num_threads()}
    out["metrics"] = previous(args, "speed", out)
    names = metric_names(args.metrics)
    for name in names:
        m = metric_for(name, args)
        a = ref.expand_as(batch).contiguous() if name == "lpips-pkg" else ref
        times = []
        with torch.inference_mode():
            for r in range(args.repeats + 1):
                t0 = time.perf_counter()
                m(a, batch)
                if r:
                    times.append(time.perf_counter() - t0)
        med = float(np.median(times))
        out["metrics"][name] = {"times_s": times, "median_s": med, "pairs_per_s": len(batch) / med}
        print(f"speed {name}: {len(batch) / med:.2f} pairs/s", flush=True)
    return write(args, "speed", out)


def write(args, what, out):
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    # another run with the same settings may have finished meanwhile: keep its metrics too
    measured = dict(previous(args, what, {k: v for k, v in out.items() if k != "metrics"}))
    measured.update(out["metrics"])
    out["metrics"] = measured
    lines = globals()[f"render_{what}"](out)
    out["machine"] = environment("cpu")
    (folder / f"{what}.json").write_text(json.dumps(out, indent=1))
    (folder / f"{what}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("arrangement", "displacement", "loss", "speed"))
    ap.add_argument("--refs", default=None, help="folder of reference photographs (Kodak24; all but speed)")
    ap.add_argument("--raid", default=None, help="RAID folder with responses.csv (displacement: human curves)")
    ap.add_argument("--metrics", default="default,paper,lpips-vgg,dists,stlpips-vgg")
    ap.add_argument("--out", required=True)
    ap.add_argument("--crop", type=int, default=0, help="crop size (default 256; loss 128)")
    ap.add_argument("--limit", type=int, default=0, help="use the first N references (0 = all; loss: 3)")
    ap.add_argument("--steps", type=int, default=200, help="loss: optimiser steps")
    ap.add_argument("--lr", type=float, default=0.01, help="loss: Adam learning rate")
    ap.add_argument("--starts", default="blur+noise,jpeg10,shift3px,pure-noise", help="loss: the starts")
    ap.add_argument("--repeats", type=int, default=3, help="speed: timed runs per metric")
    ap.add_argument("--store", default=None, help="structure study folder (terms.npz): for design:<name> metrics")
    ap.add_argument("--fresh", action="store_true", help="forget metrics measured before with the same settings")
    args = ap.parse_args(argv)
    if args.what != "speed" and not args.refs:
        ap.error(f"{args.what} needs --refs (a folder of reference photographs, e.g. Kodak24)")
    args.crop = args.crop or (128 if args.what == "loss" else 256)
    return {"arrangement": arrangement, "displacement": displacement, "loss": loss, "speed": speed}[args.what](args)



def render_arrangement(out):
    n, crop, kinds = len(out["images"]), out["crop"], out["kinds"]
    lines = [f"{n} Kodak centre crops of {crop}x{crop}; ratio of each distance to faint noise "
             f"(sigma 0.03) / to JPEG q30 of the same crop, median (min); crops with ratio >= 2 to noise and > 1 "
             f"to JPEG, of {n}.", "",
             "| metric | JPEG q30 / noise | " + " | ".join(kinds[2:]) + " |", "|---|---:|" + "---:|" * (len(kinds) - 2)]
    for name, e in out["metrics"].items():
        cells = [f"{e[k]['noise_ratio_median']:.2f} ({e[k]['noise_ratio_min']:.2f}) / {e[k]['jpeg_ratio_median']:.2f} "
                 f"({e[k]['jpeg_ratio_min']:.2f}); {e[k]['crops_noise_ge2']}, {e[k]['crops_above_jpeg']}"
                 for k in kinds[2:]]
        lines.append(f"| {label(name)} | {e['jpeg30']['noise_ratio_median']:.2f} | " + " | ".join(cells) + " |")
    return lines


def render_displacement(out):
    size, human = out["crop"], out.get("human")
    pick = (1, 2, 4, 8, 16, 32, 48)
    lines = [f"{len(out['images'])} Kodak crops of {size}x{size}; median ratio of d(x, x moved by k px) to faint noise "
             "(sigma 0.03); Pearson r of the mean curve with RAID's human curve over its 9 levels "
             "(translation 5-45 px, rotation 2-18 deg); the ratio of the cost at 45 px to that at 5 px "
             f"(people: {out['human']['trans'][-1] / out['human']['trans'][0]:.1f})." if human else "", "",
             "| metric | " + " | ".join(f"{k} px" for k in pick) + " | 18 deg | r trans | r rot | 45px / 5px |",
             "|---|" + "---:|" * (len(pick) + 4)]
    for name, e in out["metrics"].items():
        cells = [f"{e['shift_over_noise_median'][SHIFTS.index(k)]:.3f}" for k in pick]
        lines.append(f"| {label(name)} | " + " | ".join(cells) + f" | {e['rotation_over_noise_median'][-1]:.3f} | "
                     f"{e.get('pearson_vs_human_trans', float('nan')):.3f} | {e.get('pearson_vs_human_rot', float('nan')):.3f} | "
                     f"{e.get('ratio_45_to_5px', float('nan')):.1f} |")
    return lines


def render_speed(out):
    base = out["metrics"].get("lpips-pkg", {}).get("pairs_per_s")
    lines = [f"Speed, {out['workload']}, {out['threads']} threads, median of {out['repeats']} runs after a warm-up, "
             "all in one process.", "", "| metric | pairs/s | x lpips-pkg |", "|---|---:|---:|"]
    for name, e in out["metrics"].items():
        lines.append(f"| {label(name)} | {e['pairs_per_s']:.2f} | {e['pairs_per_s'] / base:.2f} |" if base else
                     f"| {label(name)} | {e['pairs_per_s']:.2f} | |")
    return lines


def render_loss(out):
    lines = [f"{len(out['images'])} Kodak crops of {out['crop']}x{out['crop']}; Adam (lr {out['lr']}) on the pixels for {out['steps']} "
             "steps, clamped to [0, 1]; mean over crops. Gains = end - start.", "",
             "| metric | start | PSNR gain (dB) | SSIM gain | low-pass PSNR gain (dB) | low-pass luminance r: start -> end |",
             "|---|---|---:|---:|---:|---|"]
    for name, e in out["metrics"].items():
        for kind, s in e["mean"].items():
            lines.append(f"| {label(name)} | {kind} | {s['psnr_end'] - s['psnr_start']:+.2f} | "
                         f"{s['ssim_end'] - s['ssim_start']:+.3f} | {s['lp_psnr_end'] - s['lp_psnr_start']:+.2f} | "
                         f"{s['lp_corr_start']:.3f} -> {s['lp_corr_end']:.3f} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
