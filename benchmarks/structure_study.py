#!/usr/bin/env python
"""The structure-term study on the 512x384 KADID dev proxy: extract once, then compute term columns.

    # 1. one trunk pass per image (anti-aliased VGG-16 to pool5): pooled statistics and coarse maps
    python benchmarks/structure_study.py extract --dataset data/kodak_dev --store data/structure_study
    # 2. per-pair term values (texture terms at every pool tap, structure terms per tap / cell / comparison)
    python benchmarks/structure_study.py terms --dataset data/kodak_dev --store data/structure_study

The store keeps, per image, the raw channel means and spreads of the five pool taps and of CIELab, and
the coarse maps (:mod:`invariant_lpips.features.structure`) of pool1-4 at 16-px cells and of pool5 at
32-px cells in float16; coarser cells (32, 64 px) are further pyramid steps of those, so every design
of :mod:`benchmarks.structure_select` is evaluated without another trunk pass. Only the 13 dev types
are read.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from invariant_lpips.data.generated import read_generated_set
from invariant_lpips.data.io import load_image
from invariant_lpips.features.colour import srgb_to_lab
from invariant_lpips.features.pooled import TAP_STRIDE, map_statistics
from invariant_lpips.features.structure import COMPARISONS, compare_maps, coarse_map, pyramid_down
from invariant_lpips.trunk.vgg16 import POOL_TAPS, TAP_CHANNELS, VGG16Trunk, lpips_scale

DEV_TYPES = (1, 3, 4, 6, 8, 9, 11, 13, 16, 18, 20, 22, 24)
BASE_CELL = {"pool1": 16, "pool2": 16, "pool3": 16, "pool4": 16, "pool5": 32}
CELLS = (16, 32, 64)
SIZE_HW = (384, 512)


def _grid(cell):
    return (SIZE_HW[0] + cell - 1) // cell, (SIZE_HW[1] + cell - 1) // cell


def image_list(dataset):
    pairs = read_generated_set(dataset, types=DEV_TYPES)
    return pairs, sorted({str(p.ref_path) for p in pairs} | {str(p.dist_path) for p in pairs})


def extract(args):
    torch.set_num_threads(args.threads or torch.get_num_threads())
    pairs, paths = image_list(args.dataset)
    store = Path(args.store)
    store.mkdir(parents=True, exist_ok=True)
    (store / "images.json").write_text(json.dumps(paths))
    n = len(paths)
    mode = lambda p: "r+" if p.exists() else "w+"  # noqa: E731
    arrays = {}
    for tap in POOL_TAPS:
        c, (h, w) = TAP_CHANNELS[tap], _grid(BASE_CELL[tap])
        p = store / f"map_{tap}.npy"
        arrays[f"map_{tap}"] = np.lib.format.open_memmap(p, mode=mode(p), dtype=np.float16, shape=(n, c, h, w))
        for stat in ("mean", "std"):
            p = store / f"{stat}_{tap}.npy"
            arrays[f"{stat}_{tap}"] = np.lib.format.open_memmap(p, mode=mode(p), dtype=np.float32, shape=(n, c))
    for stat in ("mean", "std"):
        p = store / f"{stat}_lab.npy"
        arrays[f"{stat}_lab"] = np.lib.format.open_memmap(p, mode=mode(p), dtype=np.float32, shape=(n, 3))
    done_path = store / "done.npy"
    done = np.load(done_path) if done_path.exists() else np.zeros(n, bool)
    trunk = VGG16Trunk(weights="imagenet", pooling="blurmax", filter_size=3, taps=POOL_TAPS)
    todo = [i for i in range(n) if not done[i]]
    t0 = time.time()
    for start in range(0, len(todo), args.batch):
        idx = todo[start:start + args.batch]
        x = torch.cat([load_image(paths[i]) for i in idx])
        if tuple(x.shape[-2:]) != SIZE_HW:
            raise ValueError(f"{paths[idx[0]]}: expected {SIZE_HW[1]}x{SIZE_HW[0]} images")
        with torch.no_grad():
            feats = trunk(lpips_scale(2 * x - 1))
            for tap in POOL_TAPS:
                st = map_statistics(feats[tap], tap, "raw", ("mean", "std"))
                for stat in ("mean", "std"):
                    arrays[f"{stat}_{tap}"][idx] = st[f"raw.{stat}.{tap}"].numpy()
                m = coarse_map(feats[tap], TAP_STRIDE[tap], BASE_CELL[tap])
                arrays[f"map_{tap}"][idx] = m.numpy().astype(np.float16)
            st = map_statistics(srgb_to_lab(x), "lab", "lab", ("mean", "std"))
            for stat in ("mean", "std"):
                arrays[f"{stat}_lab"][idx] = st[f"lab.{stat}.lab"].numpy()
        done[idx] = True
        if (start // args.batch) % 10 == 0 or start + args.batch >= len(todo):
            for a in arrays.values():
                a.flush()
            np.save(done_path, done)
            el = time.time() - t0
            print(f"extract {start + len(idx)}/{len(todo)} images, {el:.0f} s "
                  f"({el / (start + len(idx)):.2f} s/img)", flush=True)
    return 0


def load_store(store):
    store = Path(store)
    paths = json.loads((store / "images.json").read_text())
    done = np.load(store / "done.npy")
    if not done.all():
        raise SystemExit(f"{store}: {int((~done).sum())} images not extracted yet; run 'extract' first")
    arrays = {p.stem: np.load(p, mmap_mode="r") for p in store.glob("*.npy") if p.stem != "done"}
    return paths, arrays


def texture_term(a, b, c0=1e-6):
    """DISTS-style dissimilarity of pooled statistics, mean over channels (the ``texture`` formulation)."""
    d = a - b
    return (d * d / (a * a + b * b + c0)).mean(-1)


def terms(args):
    torch.set_num_threads(args.threads or torch.get_num_threads())
    pairs, _ = image_list(args.dataset)
    paths, arrays = load_store(args.store)
    index = {p: i for i, p in enumerate(paths)}
    ri = np.array([index[str(p.ref_path)] for p in pairs])
    di = np.array([index[str(p.dist_path)] for p in pairs])
    cols = {}
    for tap in POOL_TAPS + ("lab",):
        for stat in ("mean", "std"):
            a = torch.from_numpy(np.asarray(arrays[f"{stat}_{tap}"]))
            if tap == "lab":
                a = a / 100.0
                cols[f"tex.{stat}.lab"] = ((a[ri] - a[di]) ** 2).sum(-1).numpy()
            else:
                cols[f"tex.{stat}.{tap}"] = texture_term(a[ri], a[di]).numpy()
    refs = sorted(set(ri.tolist()))
    for tap in POOL_TAPS:
        t0 = time.time()
        full = np.asarray(arrays[f"map_{tap}"])
        for cell in CELLS:
            if cell < BASE_CELL[tap]:
                continue
            vals = {cmp: np.zeros(len(pairs)) for cmp in COMPARISONS}
            for r in refs:
                sel = np.nonzero(ri == r)[0]
                m_ref = torch.from_numpy(full[[r]].astype(np.float32))
                m_dist = torch.from_numpy(full[di[sel]].astype(np.float32))
                for _ in range(int(np.log2(cell // BASE_CELL[tap]))):
                    m_ref, m_dist = pyramid_down(m_ref), pyramid_down(m_dist)
                for cmp in COMPARISONS:
                    vals[cmp][sel] = compare_maps(m_ref, m_dist, cmp).numpy()
            for cmp in COMPARISONS:
                cols[f"st.{cmp}.c{cell}.{tap}"] = vals[cmp]
        del full
        print(f"terms {tap}: {time.time() - t0:.0f} s", flush=True)
    out = Path(args.store) / "terms.npz"
    np.savez(out, names=np.array(list(cols)), X=np.stack(list(cols.values()), 1),
             dist=np.array([p.dist_path.name for p in pairs]), ref=np.array([p.ref_id for p in pairs]),
             type=np.array([p.dist_type for p in pairs]), level=np.array([p.level for p in pairs]))
    print(f"wrote {out}: {len(pairs)} pairs x {len(cols)} terms")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("extract", "terms"))
    ap.add_argument("--dataset", required=True, help="generated KADID-layout folder at 512x384")
    ap.add_argument("--store", required=True, help="folder for the extracted statistics and maps")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    return extract(args) if args.step == "extract" else terms(args)


if __name__ == "__main__":
    sys.exit(main())
