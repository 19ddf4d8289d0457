#!/usr/bin/env python
"""The structure-term study on the 512x384 KADID dev proxy: extract once, then compute term columns.

    # 1. one trunk pass per image (anti-aliased VGG-16 to pool5): pooled statistics and coarse maps
    python studies/structure_study.py extract --dataset data/kodak_dev --store data/structure_study
    # 2. per-pair term values (texture terms at every pool tap, structure terms per tap / cell / comparison)
    python studies/structure_study.py terms --dataset data/kodak_dev --store data/structure_study

The store keeps, per image, the raw channel means and spreads of the five pool taps and of CIELab, and
the coarse maps (:mod:`invariant_lpips.features.structure`) of pool1-4 at 16-px cells and of pool5 at
32-px cells in float16; coarser cells (32, 64 px) are further pyramid steps of those, so every design
of :mod:`studies/structure_select.py` is evaluated without another trunk pass. Only the 13 dev types
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
from invariant_lpips.features.formulations import get_formulation
from invariant_lpips.features.pooled import TAP_STRIDE, map_statistics
from invariant_lpips.features.structure import COMPARISONS, compare_maps, coarse_map, pyramid_down
from invariant_lpips.trunk.config import TrunkConfig
from invariant_lpips.trunk.vgg16 import POOL_TAPS, TAP_CHANNELS, lpips_scale

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
    trunk = TrunkConfig(pooling="blurmax", filter_size=3, taps=POOL_TAPS).build()
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
    """(image paths, arrays, done mask) of an extraction (possibly still running)."""
    store = Path(store)
    paths = json.loads((store / "images.json").read_text())
    done = np.load(store / "done.npy")
    arrays = {p.stem: np.load(p, mmap_mode="r") for p in store.glob("*.npy") if p.stem != "done"}
    return paths, arrays, done


def texture_term(key, a, b):
    """A texture term of the package's formulation (unit channel weights): the one formula, not a copy."""
    return get_formulation("texture-structure").term_difference(key, a, b, torch.ones(a.shape[-1]))


def pair_columns(stats0, maps0, stats1, maps1):
    """Every term column for pairs: ``stats*`` ``{"<stat>_<tap>": (N, C)}``, ``maps*`` ``{tap: (N, C, h, w)}``
    at :data:`BASE_CELL` (N broadcasts). Returns ``{column: (N,) array}``."""
    cols = {}
    for tap in POOL_TAPS + ("lab",):
        for stat in ("mean", "std"):
            a, b = stats0[f"{stat}_{tap}"], stats1[f"{stat}_{tap}"]
            key = f"lab.{stat}.lab" if tap == "lab" else f"raw.{stat}.{tap}"
            cols[f"tex.{stat}.{tap}"] = texture_term(key, a.float(), b.float()).numpy()
    for tap in POOL_TAPS:
        m0, m1 = maps0[tap].float(), maps1[tap].float()
        for cell in CELLS:
            if cell < BASE_CELL[tap]:
                continue
            if cell > BASE_CELL[tap]:
                m0, m1 = pyramid_down(m0), pyramid_down(m1)
            for cmp in COMPARISONS:
                cols[f"st.{cmp}.c{cell}.{tap}"] = compare_maps(m0, m1, cmp).numpy()
    return cols


def features(trunk, x):
    """(stats, maps) of a batch (N, 3, H, W) in [0, 1], as the extraction stores them (float32)."""
    with torch.no_grad():
        feats = trunk(lpips_scale(2 * x - 1))
        stats, maps = {}, {}
        for tap in POOL_TAPS:
            st = map_statistics(feats[tap], tap, "raw", ("mean", "std"))
            stats.update({f"{stat}_{tap}": st[f"raw.{stat}.{tap}"] for stat in ("mean", "std")})
            maps[tap] = coarse_map(feats[tap], TAP_STRIDE[tap], BASE_CELL[tap])
        st = map_statistics(srgb_to_lab(x), "lab", "lab", ("mean", "std"))
        stats.update({f"{stat}_lab": st[f"lab.{stat}.lab"] for stat in ("mean", "std")})
    return stats, maps


def terms(args):
    torch.set_num_threads(args.threads or torch.get_num_threads())
    pairs, _ = image_list(args.dataset)
    paths, arrays, done = load_store(args.store)
    index = {p: i for i, p in enumerate(paths)}
    # only references whose every pair is extracted (the extraction runs reference by reference)
    complete = {r for r in {p.ref_id for p in pairs}
                if all(done[index[str(q.ref_path)]] and done[index[str(q.dist_path)]] for q in pairs if q.ref_id == r)}
    if not complete:
        raise SystemExit(f"{args.store}: no reference is fully extracted yet; run 'extract' first")
    pairs = [p for p in pairs if p.ref_id in complete]
    print(f"terms over {len(complete)} references ({len(pairs)} pairs)", flush=True)
    ri = np.array([index[str(p.ref_path)] for p in pairs])
    di = np.array([index[str(p.dist_path)] for p in pairs])
    cols = {}
    t0 = time.time()
    for r in sorted(set(ri.tolist())):
        sel = np.nonzero(ri == r)[0]
        sel = sel[np.argsort(di[sel])]
        rows = [[r], di[sel]]
        stats = [{k: torch.from_numpy(np.array(arrays[k][rr])) for k in arrays if not k.startswith("map_")}
                 for rr in rows]
        maps = [{tap: torch.from_numpy(arrays[f"map_{tap}"][rr].astype(np.float32)) for tap in POOL_TAPS}
                for rr in rows]
        for k, v in pair_columns(stats[0], maps[0], stats[1], maps[1]).items():
            cols.setdefault(k, np.zeros(len(pairs)))[sel] = v
    print(f"terms: {time.time() - t0:.0f} s", flush=True)
    save_terms(Path(args.store) / "terms.npz", cols, dist=[p.dist_path.name for p in pairs],
               ref=[p.ref_id for p in pairs], type=[p.dist_type for p in pairs], level=[p.level for p in pairs])
    return 0


def save_terms(path, cols, **meta):
    np.savez(path, names=np.array(list(cols)), X=np.stack(list(cols.values()), 1),
             **{k: np.array(v) for k, v in meta.items()})
    print(f"wrote {path}: {len(next(iter(cols.values())))} rows x {len(cols)} terms")


PROBE_KINDS = ("shift1", "shift2", "shift4", "shift8", "noise0.02", "noise0.03", "jpeg30", "mirror", "shuffle32",
               "shuffle64", "other-photo")


def probe(args):
    """Term columns of synthetic, human-free probes on Kodak crops (shifts, noise, JPEG, rearrangements):
    the non-KADID targets of every design are computed from them without another trunk pass per design."""
    from probes import block_shuffle, centre_crop, jpeg  # the evidence tables' operators

    from invariant_lpips.data.io import list_images

    torch.set_num_threads(args.threads or torch.get_num_threads())
    trunk = TrunkConfig(pooling="blurmax", filter_size=3, taps=POOL_TAPS).build()
    refs = [load_image(p) for p in list_images(args.refs)]
    size, g = args.crop, torch.Generator().manual_seed(0)
    crops = [centre_crop(r, size, 0, -4) for r in refs]
    cols, meta = {}, {"image": [], "kind": []}
    for i, (r, x) in enumerate(zip(refs, crops)):
        variants = [centre_crop(r, size, 0, -4 + 1), centre_crop(r, size, 0, -4 + 2), centre_crop(r, size, 0, 0),
                    centre_crop(r, size, 0, 4),
                    (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1),
                    (x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1), jpeg(x, 30), x.flip(-1),
                    block_shuffle(x, 32, i), block_shuffle(x, 64, i), crops[(i + 1) % len(crops)]]
        s0, m0 = features(trunk, x)
        s1, m1 = features(trunk, torch.cat(variants))
        for k, v in pair_columns(s0, m0, s1, m1).items():
            cols.setdefault(k, []).extend(v.tolist())
        meta["image"] += [i] * len(variants)
        meta["kind"] += list(PROBE_KINDS)
        print(f"probe {i + 1}/{len(refs)}", flush=True)
    save_terms(Path(args.store) / "probe.npz", {k: np.array(v) for k, v in cols.items()}, **meta)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("extract", "terms", "probe"))
    ap.add_argument("--dataset", help="generated KADID-layout folder at 512x384 (extract, terms)")
    ap.add_argument("--refs", help="probe: folder of reference photographs (Kodak24)")
    ap.add_argument("--crop", type=int, default=256, help="probe: crop size")
    ap.add_argument("--store", required=True, help="folder for the extracted statistics and maps")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    return {"extract": extract, "terms": terms, "probe": probe}[args.step](args)


if __name__ == "__main__":
    sys.exit(main())
