#!/usr/bin/env python
"""Does a metric see *where* things are? Arrangement, displacement curves and use as a loss.

    python benchmarks/structure_evidence.py arrangement --refs ../shared/data/kodak24 \\
        --metrics default,paper,lpips-vgg,dists,stlpips-vgg --out benchmarks/results/structure_evidence
    python benchmarks/structure_evidence.py displacement --refs ../shared/data/kodak24 --raid ../shared/data/raid \\
        --metrics default,paper,lpips-vgg,dists,stlpips-vgg --out benchmarks/results/structure_evidence
    python benchmarks/structure_evidence.py loss --refs ../shared/data/kodak24 \\
        --metrics default,paper,lpips-vgg,dists,stlpips-vgg --out benchmarks/results/structure_evidence

``default`` stands for the package's default variant. Every metric is built through the registry
(:func:`invariant_lpips.metric.registry.build_metric`: inputs in [0, 1], output (N,)).

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
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from invariant_lpips.data.io import list_images, load_image
from invariant_lpips.features.variants import DEFAULT_VARIANT
from invariant_lpips.metric.registry import build_metric


def metric_names(arg):
    return [DEFAULT_VARIANT if m == "default" else m for m in arg.split(",") if m]


def label(name):
    return f"{name} (default)" if name == DEFAULT_VARIANT else name


def centre_crop(x, size, dy=0, dx=0):
    h, w = x.shape[-2:]
    y0, x0 = (h - size) // 2 + dy, (w - size) // 2 + dx
    return x[..., y0:y0 + size, x0:x0 + size]


def jpeg(x, quality):
    arr = (x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    out = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(out).permute(2, 0, 1)[None]


def block_shuffle(x, block, seed=0):
    n, c, h, w = x.shape
    gh, gw = h // block, w // block
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(gh * gw, generator=g)
        if not bool((perm == torch.arange(gh * gw)).any()):
            break
    blocks = x[..., :gh * block, :gw * block].reshape(n, c, gh, block, gw, block).permute(0, 2, 4, 1, 3, 5)
    blocks = blocks.reshape(n, gh * gw, c, block, block)[:, perm]
    out = blocks.reshape(n, gh, gw, c, block, block).permute(0, 3, 1, 4, 2, 5).reshape(n, c, gh * block, gw * block)
    return out


def gaussian_blur(x, sigma):
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def rotate(x, degrees):
    theta = math.radians(degrees)
    mat = torch.tensor([[math.cos(theta), -math.sin(theta), 0.0], [math.sin(theta), math.cos(theta), 0.0]],
                       dtype=x.dtype)[None]
    h, w = x.shape[-2:]
    mat[0, 0, 1] *= h / w
    mat[0, 1, 0] *= w / h
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def psnr(a, b):
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def luminance(x):
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def lowpass_corr(a, b, sigma=2.0):
    la, lb = luminance(gaussian_blur(a, sigma)), luminance(gaussian_blur(b, sigma))
    la, lb = la - la.mean(), lb - lb.mean()
    return float((la * lb).sum() / (la.norm() * lb.norm() + 1e-12))


def ssim(a, b):
    try:
        import piq
    except ImportError:
        return float("nan")
    return float(piq.ssim(a.clamp(0, 1), b.clamp(0, 1), data_range=1.0))


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
        m = build_metric(name)
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
        m = build_metric(name)
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
    pick = (1, 2, 4, 8, 16, 32, 48)
    return write(args, "displacement", out)


def starts(x, g):
    blur_noise = (gaussian_blur(x, 1.5) + 0.04 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    shifted = torch.roll(x, shifts=(3, 3), dims=(2, 3))
    return {"blur+noise": blur_noise, "jpeg10": jpeg(x, 10), "shift3px": shifted,
            "pure-noise": torch.rand(x.shape, generator=g)}


def loss(args):
    refs, names = load_refs(args.refs, args.limit or 3)
    crops = [centre_crop(r, args.crop) for r in refs]
    out = {"crop": args.crop, "steps": args.steps, "lr": args.lr, "images": names}
    out["metrics"] = previous(args, "loss", out)
    for name in metric_names(args.metrics):
        m = build_metric(name)
        for p in m.parameters():
            p.requires_grad_(False)
        t0 = time.time()
        res = {}
        for i, x in enumerate(crops):
            g = torch.Generator().manual_seed(i)
            for kind, y0 in starts(x, g).items():
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


def write(args, what, out):
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    # another run with the same settings may have finished meanwhile: keep its metrics too
    measured = dict(previous(args, what, {k: v for k, v in out.items() if k != "metrics"}))
    measured.update(out["metrics"])
    out["metrics"] = measured
    lines = globals()[f"render_{what}"](out)
    import platform

    out["machine"] = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                      "torch": torch.__version__}
    (folder / f"{what}.json").write_text(json.dumps(out, indent=1))
    (folder / f"{what}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("arrangement", "displacement", "loss"))
    ap.add_argument("--refs", required=True, help="folder of reference photographs (Kodak24)")
    ap.add_argument("--raid", default=None, help="RAID folder with responses.csv (displacement: human curves)")
    ap.add_argument("--metrics", default="default,paper,lpips-vgg,dists,stlpips-vgg")
    ap.add_argument("--out", required=True)
    ap.add_argument("--crop", type=int, default=0, help="crop size (default 256; loss 128)")
    ap.add_argument("--limit", type=int, default=0, help="use the first N references (0 = all; loss: 3)")
    ap.add_argument("--steps", type=int, default=200, help="loss: optimiser steps")
    ap.add_argument("--lr", type=float, default=0.01, help="loss: Adam learning rate")
    ap.add_argument("--fresh", action="store_true", help="forget metrics measured before with the same settings")
    args = ap.parse_args(argv)
    args.crop = args.crop or (128 if args.what == "loss" else 256)
    return {"arrangement": arrangement, "displacement": displacement, "loss": loss}[args.what](args)



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
