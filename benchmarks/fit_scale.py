"""Fit a variant's LPIPS scale: ``v = a * (1 - exp(-(d / s) ** p))`` onto LPIPS-VGG's values, images only.

For a named variant, scores generated distortion pairs of Kodak crops (KADID's 25 distortion types at two
levels, plus five reference cases: a 1-px shift, faint noise, JPEG q30, a blur, another photo) with the
variant (raw distance ``d``) and with LPIPS-VGG (``invariant_lpips.LPIPS(net='vgg')``, lpips' own weights),
then fits ``a, s, p > 0`` by least squares of ``v(d)`` against LPIPS, with ``a <= 1`` (bounded, as LPIPS' values are in practice). No human scores are used. The map is
increasing, so the variant's ranks are unchanged (checked: Spearman(d, v(d)) = 1).

Writes ``benchmarks/results/scale/<variant>.json`` and ``.md`` (the fit, its residuals, the reference
values averaged over the images, the machine); with ``--write`` also stores ``a, s, p`` under the variant
in ``invariant_lpips/weights/shipped/scale.json``, which ``InvariantLPIPS(variant, scale="lpips")`` reads.

    python benchmarks/fit_scale.py --variant structure-blur --write          # 440 pairs, ~4 min on 2 idle CPU cores

Options: ``--images`` (a folder of reference images, default ../shared/data/kodak24), ``--n-images``
(default 8), ``--size`` (square centre crop, default 192), ``--levels`` (KADID levels, default 2 4).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invariant_lpips.benchmarks.environment import environment, machine_line  # noqa: E402
from invariant_lpips import LPIPS, InvariantLPIPS  # noqa: E402
from invariant_lpips.distortions import distort  # noqa: E402
from invariant_lpips.metric.scale import SCALE_FILE, ScaleMap  # noqa: E402
from invariant_lpips.progress import progress_bar  # noqa: E402

#: the five reference cases README quotes (name -> what it is)
REFERENCES = {
    "shift 1 px": "the same crop taken 1 px to the right",
    "faint noise": "Gaussian noise, sigma 2/255",
    "JPEG q30": "PIL JPEG, quality 30",
    "blur": "Gaussian blur, radius 1.5 px",
    "another photo": "the next Kodak image's crop",
}


def machine() -> str:
    """The machine line of the one environment record (invariant_lpips.benchmarks.environment)."""
    return machine_line(environment("cpu"))


def centre_crop(img: np.ndarray, size: int, dx: int = 0) -> np.ndarray:
    h, w = img.shape[:2]
    y0, x0 = (h - size) // 2, (w - size) // 2 + dx
    return img[y0:y0 + size, x0:x0 + size]


def reference_cases(img: np.ndarray, other: np.ndarray, size: int, rng: np.random.Generator) -> dict:
    """The five reference distortions of one image's crop: name -> (H, W, 3) uint8."""
    ref = centre_crop(img, size)
    noisy = np.clip(ref.astype(np.float64) + rng.normal(0, 2.0, ref.shape), 0, 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(ref).save(buf, format="JPEG", quality=30)
    jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    blur = np.asarray(Image.fromarray(ref).filter(ImageFilter.GaussianBlur(1.5)))
    return {"shift 1 px": centre_crop(img, size, dx=1), "faint noise": noisy, "JPEG q30": jpeg, "blur": blur,
            "another photo": centre_crop(other, size)}


def to_tensor(arrays) -> torch.Tensor:
    """(H, W, 3) uint8 arrays -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def fit(d: np.ndarray, target: np.ndarray) -> ScaleMap:
    """Least squares of ``a (1 - exp(-(d / s)^p))`` against ``target`` over log-parameters (all > 0)."""
    from scipy.optimize import least_squares

    def model(theta, x):
        a, s, p = np.exp(theta)
        return a * -np.expm1(-(np.maximum(x, 0) / s) ** p)

    # a in [0.25, 1]: the map stays bounded by 1, as LPIPS-VGG's values are in practice; p in [0.1, 5]
    lo, hi = np.log([0.25, 1e-9, 0.1]), np.log([1.0, 1e9, 5.0])
    theta0 = np.clip(np.log([0.9, max(np.median(d), 1e-6), 1.0]), lo + 1e-9, hi - 1e-9)
    res = least_squares(lambda t: model(t, d) - target, theta0, bounds=(lo, hi), method="trf")
    a, s, p = np.exp(res.x)
    return ScaleMap(float(a), float(s), float(p))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", required=True, help="a registered variant (invariant-lpips variants)")
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "kodak24"))
    ap.add_argument("--n-images", type=int, default=8)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--levels", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale"))
    ap.add_argument("--write", action="store_true", help=f"store the fit in {SCALE_FILE.relative_to(ROOT)}")
    args = ap.parse_args(argv)

    paths = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(paths) < 2:
        ap.error(f"--images {args.images}: needs at least 2 images, found {len(paths)}")
    paths = paths[:max(2, args.n_images)]
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    t0 = time.perf_counter()
    metric = InvariantLPIPS(variant=args.variant)
    lpips_vgg = LPIPS(net="vgg")
    rng = np.random.default_rng(0)
    rows = []  # (image, case, raw d, lpips)
    with torch.no_grad(), progress_bar(total=len(images), desc=f"scoring {args.variant} and LPIPS-VGG",
                                       unit="image") as bar:
        for i, img in enumerate(images):
            ref = centre_crop(img, args.size)
            cases = reference_cases(img, images[(i + 1) % len(images)], args.size, rng)
            for t in range(1, 26):
                for lv in args.levels:
                    try:
                        cases[f"kadid {t:02d}.{lv}"] = distort(ref, t, lv, seed=i)
                    except Exception:  # noqa: BLE001 - e.g. JPEG 2000 without its codec: skip the type
                        continue
            names = list(cases)
            x, ys = to_tensor([ref]), to_tensor([cases[n] for n in names])
            d = metric(x, ys, normalize=True).flatten().double().numpy()
            lp = lpips_vgg(x.expand_as(ys), ys, normalize=True).flatten().double().numpy()
            rows += [(paths[i].stem, n, float(a), float(b)) for n, a, b in zip(names, d, lp)]
            bar.update(1)
    seconds = time.perf_counter() - t0
    d = np.array([r[2] for r in rows])
    lp = np.array([r[3] for r in rows])
    m = fit(d, lp)
    v = m(torch.from_numpy(d)).numpy()
    from scipy.stats import pearsonr, spearmanr

    ref_table = {}
    for case in REFERENCES:
        sel = [k for k, r in enumerate(rows) if r[1] == case]
        ref_table[case] = {"raw": float(d[sel].mean()), "scaled": float(v[sel].mean()),
                           "lpips_vgg": float(lp[sel].mean())}
    entry = {
        "a": round(m.a, 6), "s": round(m.s, 6), "p": round(m.p, 6),
        "map": "v = a * (1 - exp(-(d / s) ** p))",
        "data": (f"{len(images)} Kodak images ({paths[0].stem}..{paths[-1].stem}), {args.size}x{args.size} centre "
                 f"crops; KADID types 1-25 at levels {args.levels} and the five reference cases: {len(rows)} "
                 "pairs; images only, no human scores"),
        "target": "LPIPS-VGG v0.1 (invariant_lpips.LPIPS(net='vgg'), lpips' weights)",
        "fit": {"pairs": len(rows), "rmse": float(np.sqrt(np.mean((v - lp) ** 2))),
                "pearson_scaled_vs_lpips": float(pearsonr(v, lp)[0]),
                "spearman_raw_vs_lpips": float(spearmanr(d, lp)[0]),
                "spearman_raw_vs_scaled": float(spearmanr(d, v)[0])},
        "date": date.today().isoformat(),
        "command": "python benchmarks/fit_scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"variant": args.variant, "machine": machine(), "seconds": round(seconds, 1), "scale": entry,
              "reference_values": ref_table, "pairs": [dict(zip(("image", "case", "raw", "lpips_vgg"), r))
                                                       for r in rows]}
    (out / f"{args.variant}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# LPIPS scale of `{args.variant}`", "",
             f"`{entry['map']}` with a = {m.a:.4f}, s = {m.s:.4f}, p = {m.p:.4f}.", "",
             f"Data: {entry['data']}. Target: {entry['target']}.", "",
             f"Fit: RMSE {entry['fit']['rmse']:.4f} against LPIPS-VGG; Pearson(scaled, LPIPS) "
             f"{entry['fit']['pearson_scaled_vs_lpips']:.3f}; Spearman(raw, LPIPS) "
             f"{entry['fit']['spearman_raw_vs_lpips']:.3f}; Spearman(raw, scaled) "
             f"{entry['fit']['spearman_raw_vs_scaled']:.3f} (ranks unchanged).", "",
             f"Machine: {result['machine']}; {seconds:.0f} s for {len(rows)} pairs (both metrics).", "",
             f"Reference values (mean over the {len(images)} crops):", "",
             "| case | what | raw | scale='lpips' | LPIPS-VGG |", "|---|---|---:|---:|---:|"]
    for case, what in REFERENCES.items():
        r = ref_table[case]
        lines.append(f"| {case} | {what} | {r['raw']:.3f} | {r['scaled']:.3f} | {r['lpips_vgg']:.3f} |")
    lines += ["", f"Command: `{entry['command']}`", ""]
    (out / f"{args.variant}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if args.write:
        store = json.loads(SCALE_FILE.read_text()) if SCALE_FILE.is_file() else {
            "about": "Fitted output maps of InvariantLPIPS(scale='lpips') (invariant_lpips/metric/scale.py), "
                     "one per variant; written by benchmarks/fit_scale.py --write.", "variants": {}}
        store["variants"][args.variant] = entry
        SCALE_FILE.write_text(json.dumps(store, indent=1) + "\n")
        print(f"stored under {args.variant!r} in {SCALE_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
