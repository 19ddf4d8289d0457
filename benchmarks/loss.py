#!/usr/bin/env python
"""The metric as a training loss, peers in the same run: aligned descent, misaligned descent, a training run.

    python benchmarks/loss.py aligned    --refs ../shared/data/kodak24 --out benchmarks/results/loss
    python benchmarks/loss.py misaligned --refs ../shared/data/kodak24 --out benchmarks/results/loss
    python benchmarks/loss.py train      --refs ../shared/data/kodak24 --out benchmarks/results/loss
    python benchmarks/loss.py report     --out benchmarks/results/loss          # the README tables

``--metrics`` takes registry names (``invariant-lpips variants``; peers ``lpips-vgg``, ``stlpips-vgg``,
``dists``; ``mse``). Each experiment (figures in :mod:`invariant_lpips.benchmarks.loss`):

* **aligned**: Adam (lr 0.02) on the pixels from a damaged copy of each crop (blur + noise, JPEG q10, a
  3-px shift) towards the crop; PSNR traced at checkpoints, so the budget is seen to be enough for
  LPIPS-VGG; PSNR, SSIM and low-pass PSNR gains at the end.
* **misaligned**: the mean loss over four copies of the crop displaced by (-2, 1), (1, -3), (3, 2),
  (-1, -1) px (crops of the photo at those offsets), from blur + noise of the undisplaced crop; aligned
  PSNR and sharpness of the result. ``--subpixel``: the same at half resolution (views averaged over 2x2
  blocks), where those offsets are displacements of (-1, 0.5), (0.5, -1.5), (1.5, 1), (-0.5, -0.5) px:
  sub-pixel misregistration (``<out>/misaligned_subpixel.json``; aligned PSNR over half-pixel shifts).
* **train**: a small residual CNN denoises (sigma 0.1) crops (``--crop``) of references 1-20, trained against
  targets misregistered by up to 3 px, once per loss with the same batches; aligned PSNR and sharpness
  of its outputs on 16 held-out 96-px crops of references 21-24; ``--seeds 3,4,5`` trains once per seed
  (initial weights and batches) and reports the mean.

Results: ``<out>/<experiment>.json`` (per metric; reruns add metrics) and ``<out>/loss.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from invariant_lpips.benchmarks.environment import environment, machine_line, rows_machine_line, tag_rows
from invariant_lpips.benchmarks.loss import (MISALIGNED_SHIFTS, aligned_psnr_half, as_loss, crop, damaged_starts,
                                              descend, descend_misaligned, evaluate_restorer, figures,
                                              half_pixel_view, mean_dict, train_restorer)
from invariant_lpips.data.io import list_images, load_image
from invariant_lpips.distortions.tensor import gaussian_blur
from invariant_lpips.metric.registry import build_metric

DEFAULT_METRICS = "registered-lab-lq3-subpixel-blur,registered-lab-lq4-blur,registered-lab-blur,lpips-vgg,stlpips-vgg,dists,mse"


def load_refs(folder, limit=0):
    paths = list_images(folder)
    return [load_image(p) for p in (paths[:limit] if limit else paths)], [Path(p).name for p in paths]


def centre(img, size):
    h, w = img.shape[-2:]
    return (h - size) // 2, (w - size) // 2


def previous(path):
    return json.loads(path.read_text()) if path.exists() else {}


def save(args, what, settings, results):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{what}.json"
    old = previous(path)
    if old.get("settings") != settings:
        old = {}
    env = environment("cpu")  # each row keeps the machine that measured it (earlier rows: the file's)
    rows = tag_rows(old.get("metrics", {}), machine_line(old["environment"])) if old else {}
    merged = {"settings": settings, "environment": env, "metrics": {**rows, **tag_rows(results, machine_line(env))}}
    path.write_text(json.dumps(merged, indent=1))
    print(f"wrote {path} ({', '.join(results)})", flush=True)


def aligned(args):
    refs, _ = load_refs(args.refs, args.limit or 3)
    crops = [crop(r, *centre(r, args.crop), args.crop) for r in refs]
    checkpoints = [c for c in (25, 50, 100, 200, 300, 400, 600) if c < args.steps]
    starts = args.starts.split(",")
    settings = {"crop": args.crop, "images": len(crops), "steps": args.steps, "lr": args.lr,
                "checkpoints": checkpoints + [args.steps], "starts": starts}
    results = {}
    for name in args.metrics.split(","):
        loss, t0, rows = as_loss(build_metric(name)), time.time(), {}
        for i, x in enumerate(crops):
            for kind, y0 in damaged_starts(x, seed=i).items():
                if kind not in starts:
                    continue
                y, trace = descend(loss, x, y0, args.steps, args.lr, checkpoints)
                start, end = figures(y0, x), figures(y, x)
                rows.setdefault(kind, []).append({**{f"{k}_start": v for k, v in start.items()},
                                                  **{f"{k}_end": v for k, v in end.items()},
                                                  **{f"psnr_at_{c}": p for c, p in trace.items()}})
        results[name] = {"mean": {k: mean_dict(v) for k, v in rows.items()}, "seconds": time.time() - t0}
        save(args, "aligned", settings, {name: results[name]})
        print(f"aligned {name}: {time.time() - t0:.0f} s; blur+noise PSNR gain "
              f"{results[name]['mean']['blur+noise']['psnr_end'] - results[name]['mean']['blur+noise']['psnr_start']:+.2f} dB",
              flush=True)


def misaligned(args):
    refs, _ = load_refs(args.refs, args.limit or 3)
    size, results = args.crop, {}
    what = "misaligned_subpixel" if args.subpixel else "misaligned"
    scale = 0.5 if args.subpixel else 1.0
    settings = {"crop": size, "images": len(refs), "steps": args.steps, "lr": args.lr,
                "shifts": [[dy * scale, dx * scale] for dy, dx in MISALIGNED_SHIFTS]}
    if args.subpixel:  # whole-pixel settings keep their earlier form, so that reruns add to the same file
        settings["views"] = "half resolution (2x2 means), half-pixel shifts"
    else:
        settings["shifts"] = [list(s) for s in MISALIGNED_SHIFTS]
    for name in args.metrics.split(","):
        loss, t0, rows = as_loss(build_metric(name)), time.time(), []
        for i, r in enumerate(refs):
            if args.subpixel:  # views at half resolution: the same shifts are half-pixel displacements there
                y0c, x0c = centre(r, 2 * size)
                truth = half_pixel_view(r, y0c, x0c, size)
                targets = [half_pixel_view(r, y0c, x0c, size, dy, dx) for dy, dx in MISALIGNED_SHIFTS]
            else:
                y0c, x0c = centre(r, size)
                truth = crop(r, y0c, x0c, size)
                targets = [crop(r, y0c + dy, x0c + dx, size) for dy, dx in MISALIGNED_SHIFTS]
            g = torch.Generator().manual_seed(i)
            start = (gaussian_blur(1.5)(truth) + 0.04 * torch.randn(truth.shape, generator=g)).clamp(0, 1)
            y = descend_misaligned(loss, targets, start, args.steps, args.lr)
            f0, f1 = figures(start, truth), figures(y, truth)
            if args.subpixel:
                f0["aligned_psnr"] = aligned_psnr_half(start, r, y0c, x0c)
                f1["aligned_psnr"] = aligned_psnr_half(y, r, y0c, x0c)
            rows.append({**{f"{k}_start": v for k, v in f0.items()}, **{f"{k}_end": v for k, v in f1.items()}})
        results[name] = {"mean": mean_dict(rows), "seconds": time.time() - t0}
        save(args, what, settings, {name: results[name]})
        m = results[name]["mean"]
        print(f"{what} {name}: {time.time() - t0:.0f} s; aligned PSNR {m['aligned_psnr_end']:.2f} dB, "
              f"sharpness {m['sharpness_end']:.2f}", flush=True)


def train(args):
    refs, _ = load_refs(args.refs)
    tr, te = refs[:20], refs[20:]
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = {"train_refs": len(tr), "test_refs": len(te), "steps": args.steps, "crop": args.crop,
                "batch": args.batch, "max_shift": 3, "noise": 0.1, "lr": 2e-3}
    if seeds != [0]:
        settings["seeds"] = seeds  # one seed 0 keeps the settings (and the file) of the runs before --seeds
    results = {}
    for name in args.metrics.split(","):
        t0, loss, per_seed = time.time(), as_loss(build_metric(name)), {}
        for seed in seeds:
            net = train_restorer(loss, tr, args.steps, size=args.crop, batch=args.batch, seed=seed)
            per_seed[str(seed)] = evaluate_restorer(net, te)
            m = per_seed[str(seed)]
            print(f"train {name} seed {seed}: aligned PSNR {m['aligned_psnr']:.2f} dB "
                  f"(input {m['input_psnr']:.2f}), sharpness {m['sharpness']:.2f}", flush=True)
        results[name] = {"mean": mean_dict(list(per_seed.values())), "seconds": time.time() - t0}
        if len(seeds) > 1:
            results[name]["per_seed"] = per_seed
        save(args, "train", settings, {name: results[name]})
        m = results[name]["mean"]
        print(f"train {name}: {time.time() - t0:.0f} s; mean over seeds {seeds}: aligned PSNR "
              f"{m['aligned_psnr']:.2f} dB, sharpness {m['sharpness']:.2f}", flush=True)


def report(args):
    out = Path(args.out)
    lines = []
    a, m, t = previous(out / "aligned.json"), previous(out / "misaligned.json"), previous(out / "train.json")
    sp = previous(out / "misaligned_subpixel.json")
    names = list(dict.fromkeys(list(a.get("metrics", {})) + list(m.get("metrics", {})) + list(t.get("metrics", {}))
                               + list(sp.get("metrics", {}))))
    if a:
        s = a["settings"]
        lines += [f"Aligned targets: {s['images']} crops of {s['crop']} px, Adam lr {s['lr']}, {s['steps']} steps "
                  "(PSNR gain at the checkpoints for blur + noise; end gains of PSNR / SSIM / low-pass PSNR).", "",
                  "| loss | " + " | ".join(f"{c} steps" for c in s["checkpoints"])
                  + " | blur+noise PSNR / SSIM / low-pass | JPEG q10 PSNR | 3-px shift PSNR |",
                  "|---|" + "---:|" * (len(s["checkpoints"]) + 3)]
        for n in names:
            if n not in a["metrics"]:
                continue
            r = a["metrics"][n]["mean"]
            b = r["blur+noise"]
            trace = " | ".join(f"{b[f'psnr_at_{c}'] - b['psnr_start']:+.2f}" for c in s["checkpoints"])
            gain = lambda k: f"{r[k]['psnr_end'] - r[k]['psnr_start']:+.2f}" if k in r else ""  # noqa: E731
            lines.append(f"| {n} | {trace} | {b['psnr_end'] - b['psnr_start']:+.2f} / {b['ssim_end'] - b['ssim_start']:+.3f} / "
                         f"{b['lowpass_psnr_end'] - b['lowpass_psnr_start']:+.2f} | {gain('jpeg10')} | {gain('shift3px')} |")
        lines.append("")
    if m or t:
        lines += ["Misaligned targets (descent: four copies displaced by 1-3 px; training: a small CNN denoiser "
                  "trained against targets misregistered by up to 3 px): aligned PSNR (dB) and sharpness "
                  "(1 = the truth's).", "",
                  "| loss | descent: aligned PSNR | descent: sharpness | training: aligned PSNR | training: sharpness |",
                  "|---|---:|---:|---:|---:|"]
        for n in names:
            dm = m.get("metrics", {}).get(n, {}).get("mean")
            tm = t.get("metrics", {}).get(n, {}).get("mean")
            cells = [f"{dm['aligned_psnr_end']:.2f}" if dm else "", f"{dm['sharpness_end']:.2f}" if dm else "",
                     f"{tm['aligned_psnr']:.2f}" if tm else "", f"{tm['sharpness']:.2f}" if tm else ""]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        if m:
            s0 = next(iter(m["metrics"].values()))["mean"]
            lines.append(f"\nDescent start: aligned PSNR {s0['aligned_psnr_start']:.2f} dB, sharpness "
                         f"{s0['sharpness_start']:.2f}.")
        if t:
            s0 = next(iter(t["metrics"].values()))["mean"]
            seeds = t["settings"].get("seeds", [0])
            lines.append(f"Training: noisy input {s0['input_psnr']:.2f} dB; {t['settings']['steps']} steps; "
                         + (f"mean over seeds {', '.join(map(str, seeds))}." if len(seeds) > 1 else f"seed {seeds[0]}."))
    if sp:
        s = sp["settings"]
        s0 = next(iter(sp["metrics"].values()))["mean"]
        lines += ["", f"Sub-pixel misregistration (descent, {s['images']} crops of {s['crop']} px at half resolution, "
                  f"{s['steps']} steps; targets displaced by {', '.join(f'({a_:g}, {b_:g})' for a_, b_ in s['shifts'])} px; "
                  f"start {s0['aligned_psnr_start']:.2f} dB): aligned PSNR over half-pixel shifts and sharpness.", "",
                  "| loss | aligned PSNR | sharpness |", "|---|---:|---:|"]
        for n in names:
            dm = sp["metrics"].get(n, {}).get("mean")
            if dm:
                lines.append(f"| {n} | {dm['aligned_psnr_end']:.2f} | {dm['sharpness_end']:.2f} |")
    rows = {f"{n} ({what})": r for what, f in (("aligned", a), ("misaligned", m), ("training", t), ("half-pixel", sp))
            if f for n, r in tag_rows(f.get("metrics", {}), machine_line(f.get("environment", {}))).items()}
    lines.append(f"\nMachine: {rows_machine_line(rows, machine_line(environment('cpu')))}.")
    (out / "loss.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("aligned", "misaligned", "train", "report"))
    ap.add_argument("--refs", help="folder of reference photographs (Kodak24)")
    ap.add_argument("--out", default="benchmarks/results/loss")
    ap.add_argument("--metrics", default=DEFAULT_METRICS)
    ap.add_argument("--crop", type=int, default=96, help="crop size (train: training crops)")
    ap.add_argument("--limit", type=int, default=0, help="aligned/misaligned: the first N references (default 3)")
    ap.add_argument("--steps", type=int, default=0, help="default: aligned 200, misaligned 150, train 200")
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--subpixel", action="store_true",
                    help="misaligned: half-resolution views, so the targets are displaced by half pixels")
    ap.add_argument("--starts", default="blur+noise,jpeg10,shift3px", help="aligned: the damaged starts")
    ap.add_argument("--batch", type=int, default=8, help="train: crops per step")
    ap.add_argument("--seeds", default="0", help="train: training seeds, comma-separated (figures: the mean over "
                    "them, each seed's under per_seed); the held-out crops are the same for every seed")
    args = ap.parse_args(argv)
    args.steps = args.steps or {"aligned": 200, "misaligned": 150, "train": 200}.get(args.what, 0)
    if args.what != "report" and not args.refs:
        ap.error("--refs is required")
    return {"aligned": aligned, "misaligned": misaligned, "train": train, "report": report}[args.what](args) or 0


if __name__ == "__main__":
    sys.exit(main())
