#!/usr/bin/env python
"""Per-pair term columns of the registered family on the 512x384 KADID dev proxy (the selection's input).

    invariant-lpips make-dataset --refs ../shared/data/kodak24 --out data/kodak_dev \\
        --types 1,3,4,6,8,9,11,13,16,18,20,22,24 --size 512x384
    python studies/registered_terms.py --dataset data/kodak_dev --out data/registered_terms.npz
    python studies/registered_terms.py --probe ../shared/data/kodak24 --out data/registered_probe.npz
    python studies/registered_terms.py --dataset data/kodak_dev --local 1,2,4 --out data/registered_local.npz
    python studies/registered_terms.py --probe ../shared/data/kodak24 --local 1,2,4 --out data/registered_local_probe.npz

``--local``: the columns of ``r1+lab`` (relu1_2 and CIELab registered) under local matching at each radius
(``<term>@j<R>``), rows keyed by pair (or probe row), for ``registered_select.py --local-terms``.
``--lab-blocks``: the columns of the low-passed CIELab terms ``lab<s>.reg.lab`` (block means of s x s px),
keyed the same way, for ``registered_select.py --lab-terms``:

    python studies/registered_terms.py --dataset data/kodak_dev --lab-blocks 2,4,8 --out data/registered_labblocks.npz
    python studies/registered_terms.py --probe ../shared/data/kodak24 --lab-blocks 2,4,8 --out data/registered_labblocks_probe.npz

``--exponents``: the columns of ``r1+lab`` with the registered terms pooled over positions as
``(mean_p e_p^q)^(1/q)`` (``<term>@q<q>``), for ``registered_select.py --exponent-terms``.

``--subpixel``: every metric registers with ``subpixel=True`` (the fractional part of the displacement undone
too, see ``features/registration.py``); the same columns under the same names, for a selection of the family
with sub-pixel compensation (docs/subpixel-registration-2026-12-06.md):

    python studies/registered_terms.py --subpixel --dataset data/kodak_dev --out data/registered_terms_sp.npz

``--similarity``: the same with rotation and zoom registered too (docs/similarity-registration-2026-12-08.md).

One module (:func:`wide_variant`: every texture, coarse-structure and registered term of the anti-aliased
trunk to pool2, unit scales) scores every pair with ``retPerLayer=True``; its per-term values are the
columns. A design of ``studies/registered_select.py`` is a weighting of these columns, so every design
is evaluated without another trunk pass. The reference's statistics are computed once per reference
(broadcast). Resumable: pairs already in ``--out`` are skipped.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from registered_designs import TEXTURE

from invariant_lpips.data.generated import read_generated_set
from invariant_lpips.data.io import load_image
from invariant_lpips.features.variants import Variant, get_variant
from invariant_lpips.metric.invariant import InvariantLPIPS

DEV_TYPES = (1, 3, 4, 6, 8, 9, 11, 13, 16, 18, 20, 22, 24)
#: the registered terms computed under local matching (the set r1+lab)
REGISTERED_LOCAL = ("unit.reg.relu1_2", "lab.reg.lab")
REGISTERED = ("unit.reg.relu1_2", "unit.reg.pool1", "unit.reg.relu2_2", "unit.reg.pool2", "lab.reg.lab")


#: set by ``--subpixel``: every metric of this script registers to sub-pixel precision
SUBPIXEL = False
#: set by ``--similarity``: every metric of this script also registers rotation and zoom (``similarity=True``)
SIMILARITY = False


def wide_variant() -> Variant:
    """Every candidate term of the registered family (unit scales)."""
    base = get_variant("structure-blur")
    return _Variant("registered-wide", "texture-structure-registered",
                   base.trunk.with_(taps=("relu1_2", "pool1", "relu2_2", "pool2")),
                   ("mean", "std", "coarse16", "coarse32", "coarse64"), ("mean", "std"),
                   statistic_taps=(("mean", ("pool1", "pool2")), ("std", ("pool1", "pool2")),
                                   ("coarse16", ("pool1", "pool2")), ("coarse32", ("pool1", "pool2")),
                                   ("coarse64", ("pool1", "pool2"))),
                   registered=REGISTERED)


def _Variant(*args, **kwargs) -> Variant:
    return Variant(*args, subpixel=SUBPIXEL, similarity=SIMILARITY, **kwargs)


def _check_resume(z, out):
    """A file being resumed holds columns of the same registration precision (files from before the flag:
    whole pixels)."""
    for flag, now in (("subpixel", SUBPIXEL), ("similarity", SIMILARITY)):
        had = bool(z[flag]) if flag in z.files else False
        if had != now:
            raise SystemExit(f"{out} holds columns computed with {flag}={had}; this run has {flag}={now}: "
                             "write to another --out")


#: the pooled statistics the texture terms compare, saved per pair (S0: first image, S1: second) so that a
#: texture formulation with another energy floor is evaluated without another trunk pass
TEXTURE_STATS = tuple(TEXTURE)


def statistic_channels():
    from invariant_lpips.features.pooled import CHANNELS, term_tap
    return [CHANNELS[term_tap(k)] for k in TEXTURE_STATS]


def texture_statistics(f, n):
    """The texture statistics of a features() dict as one (n, sum C) float64 array (a side of 1 repeats)."""
    return torch.cat([f[k].double().expand(n, -1) for k in TEXTURE_STATS], dim=1).numpy()


PROBE_KINDS = ("shift1", "shift2", "shift4", "shift8", "noise0.02", "noise0.03", "jpeg30", "mirror", "shuffle32",
               "shuffle64", "other-photo")


def pair_variant(name, registered=REGISTERED_LOCAL):
    """The default's formulation with only ``registered`` terms, on its trunk up to relu1_2 (all the
    registered terms read, with the CIELab image): one trunk pass shared by the columns' metrics."""
    base = get_variant("registered-lab-blur")
    return _Variant(name, base.formulation, base.trunk.with_(taps=("relu1_2",)), ("mean",), (), registered=registered)


def local_metrics(radii):
    """One metric per local radius: the default's terms with local matching (the trunk pass is shared)."""
    v = pair_variant("local")
    return {r: InvariantLPIPS(variant=v.with_(name=f"local{r}", local_radius=r), weights="ones") for r in radii}


def registered_columns(metrics, fx, fy, column_name):
    """(n, columns) values of the registered terms of each metric (a setting -> metric dict: local radius,
    pooling exponent, ...), and their column names ``column_name(term, setting)``."""
    cols, names = [], []
    for setting, m in metrics.items():
        _, per = m.distance(fx, fy, retPerLayer=True)
        for k, t in zip(m.terms, per):
            if k in m.variant.registered:
                cols.append(t.view(-1, 1))
                names.append(column_name(k, setting))
    return torch.cat(cols, dim=1).double().numpy(), names


def lab_block_metric(blocks):
    """One metric whose terms are the low-passed CIELab registered terms ``lab<s>.reg.lab`` (unit scales)."""
    return InvariantLPIPS(variant=pair_variant("lab-blocks", tuple(f"lab{b}.reg.lab" for b in blocks)), weights="ones")


def probe_images(refs_dir, size):
    """(reference crop, its probe images) per Kodak image, in :data:`PROBE_KINDS` order."""
    from probes import block_shuffle, centre_crop, jpeg

    from invariant_lpips.data.io import list_images

    refs = [load_image(p) for p in list_images(refs_dir)]
    g = torch.Generator().manual_seed(0)
    crops = [centre_crop(r, size, 0, -4) for r in refs]
    for i, (r, x) in enumerate(zip(refs, crops)):
        ys = [centre_crop(r, size, 0, -4 + 1), centre_crop(r, size, 0, -4 + 2), centre_crop(r, size, 0, 0),
              centre_crop(r, size, 0, 4), (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1),
              (x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1), jpeg(x, 30), x.flip(-1),
              block_shuffle(x, 32, i), block_shuffle(x, 64, i), crops[(i + 1) % len(crops)]]
        yield x, torch.cat(ys)


def exponent_metrics(exponents):
    """One metric per pooling exponent q: the default's registered terms pooled as (mean_p e_p^q)^(1/q)."""
    from invariant_lpips.features.formulations import RegisteredFormulation

    v = pair_variant("pooled")
    return {q: InvariantLPIPS(variant=v.with_(name=f"q{q:g}", formulation=RegisteredFormulation(0.0, q)),
                              weights="ones") for q in exponents}


def column_maker(radii, blocks, exponents=()):
    """``(a metric whose features() the columns read, columns(fx, fy) -> (values, names))``: the local
    matching columns at ``radii``, the low-passed CIELab columns at ``blocks``, or the registered terms
    under the pooling ``exponents``."""
    from registered_designs import exponent_name, local_name

    if exponents:
        metrics, name = exponent_metrics(exponents), exponent_name
    elif blocks:
        metrics, name = {0: lab_block_metric(blocks)}, lambda key, _: key
    else:
        metrics, name = local_metrics(radii), local_name
    return next(iter(metrics.values())), lambda fx, fy: registered_columns(metrics, fx, fy, name)


def local_probe(radii, refs_dir, out, size=256, blocks=(), exponents=()):
    first, columns = column_maker(radii, blocks, exponents)
    X = []
    for i, (x, ys) in enumerate(probe_images(refs_dir, size)):
        with torch.no_grad():
            fx, fy = first.features(x, normalize=True), first.features(ys, normalize=True)
            vals, names = columns(fx, fy)
        X.append(vals)
        print(f"local probe {i + 1}", flush=True)
    X = np.concatenate(X)
    np.savez(out, X=X, names=np.array(names), keys=np.array([str(i) for i in range(len(X))]),
             subpixel=np.array(SUBPIXEL), similarity=np.array(SIMILARITY))
    return 0


def local_dataset(radii, dataset, out, batch, blocks=(), exponents=()):
    first, columns = column_maker(radii, blocks, exponents)
    pairs = read_generated_set(dataset, types=DEV_TYPES)
    by_ref = {}
    for p in pairs:
        by_ref.setdefault(str(p.ref_path), []).append(p)
    done, names, t0 = {}, None, time.time()
    if Path(out).exists():
        z = np.load(out)
        _check_resume(z, out)
        done, names = {str(k): v for k, v in zip(z["keys"], z["X"])}, [str(n) for n in z["names"]]
    for r, ref in enumerate(sorted(by_ref)):
        todo = [p for p in by_ref[ref] if str(p.dist_path) not in done]
        if not todo:
            continue
        x = load_image(ref)
        with torch.no_grad():
            fx = first.features(x, normalize=True)
            for s in range(0, len(todo), batch):
                chunk = todo[s:s + batch]
                fy = first.features(torch.cat([load_image(p.dist_path) for p in chunk]), normalize=True)
                vals, names = columns(fx, fy)
                done.update({str(p.dist_path): v for p, v in zip(chunk, vals)})
        keys = sorted(done)
        np.savez(out, X=np.stack([done[k] for k in keys]), names=np.array(names), keys=np.array(keys),
                 subpixel=np.array(SUBPIXEL), similarity=np.array(SIMILARITY))
        print(f"ref {r + 1}/{len(by_ref)}: {len(done)} pairs, {time.time() - t0:.0f} s", flush=True)
    return 0


def probe(metric, refs_dir, out, size=256):
    """Term columns of synthetic, human-free probes on Kodak crops (crop shifts of 1-8 px, noise, JPEG q30,
    a mirror, block shuffles, another photo): the non-KADID targets of every design, without another pass."""
    X, image, kind, S0, S1 = [], [], [], [], []
    for i, (x, ys) in enumerate(probe_images(refs_dir, size)):
        with torch.no_grad():
            fx, fy = metric.features(x, normalize=True), metric.features(ys, normalize=True)
            _, per = metric.distance(fx, fy, retPerLayer=True)
        X.append(torch.cat([t.view(-1, 1) for t in per], dim=1).double().numpy())
        S0.append(texture_statistics(fx, len(ys)))
        S1.append(texture_statistics(fy, len(ys)))
        image += [i] * len(ys)
        kind += list(PROBE_KINDS)
        print(f"probe {i + 1}", flush=True)
    np.savez(out, X=np.concatenate(X), names=np.array(metric.terms), image=np.array(image), kind=np.array(kind),
             S0=np.concatenate(S0), S1=np.concatenate(S1), stat_names=np.array(TEXTURE_STATS),
             stat_channels=np.array(statistic_channels()), subpixel=np.array(SUBPIXEL), similarity=np.array(SIMILARITY))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", help="generated KADID-layout folder at 512x384")
    ap.add_argument("--probe", metavar="REFS", help="write the probe columns of crops of these references instead")
    ap.add_argument("--crop", type=int, default=256, help="probe crop size")
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--limit-refs", type=int, default=0)
    ap.add_argument("--local", default="", help="comma-separated local matching radii: write only the local columns")
    ap.add_argument("--lab-blocks", default="",
                    help="comma-separated block sizes (of 2, 4, 8): write only the low-passed CIELab columns")
    ap.add_argument("--exponents", default="",
                    help="comma-separated pooling exponents q > 1: write only the columns of r1+lab pooled as "
                         "(mean_p e_p^q)^(1/q)")
    ap.add_argument("--subpixel", action="store_true",
                    help="register to sub-pixel precision (the variants' subpixel=True); same column names")
    ap.add_argument("--similarity", action="store_true",
                    help="also register rotation and zoom (the variants' similarity=True); same column names")
    args = ap.parse_args(argv)
    global SUBPIXEL, SIMILARITY
    SUBPIXEL, SIMILARITY = args.subpixel, args.similarity
    torch.set_num_threads(torch.get_num_threads())
    if args.local or args.lab_blocks or args.exponents:
        radii = [int(r) for r in args.local.split(",") if r]
        blocks = [int(b) for b in args.lab_blocks.split(",") if b]
        exponents = [float(q) for q in args.exponents.split(",") if q]
        if sum(map(bool, (radii, blocks, exponents))) > 1:
            raise SystemExit("--local, --lab-blocks and --exponents write different files: give one of them")
        if args.probe:
            return local_probe(radii, args.probe, args.out, args.crop, blocks, exponents)
        return local_dataset(radii, args.dataset, args.out, args.batch, blocks, exponents)
    metric = InvariantLPIPS(variant=wide_variant(), weights="ones")
    if args.probe:
        return probe(metric, args.probe, args.out, args.crop)
    pairs = read_generated_set(args.dataset, types=DEV_TYPES)
    names = metric.terms
    out = Path(args.out)
    done, stats = {}, {}
    if out.exists():
        z = np.load(out, allow_pickle=False)
        _check_resume(z, out)
        done = {str(k): v for k, v in zip(z["dist"], z["X"])}
        stats = {str(k): (a, b) for k, a, b in zip(z["dist"], z["S0"], z["S1"])}
    by_ref = {}
    for p in pairs:
        by_ref.setdefault(str(p.ref_path), []).append(p)
    refs = sorted(by_ref)[: args.limit_refs or None]
    t0 = time.time()
    for r, ref in enumerate(refs):
        todo = [p for p in by_ref[ref] if str(p.dist_path) not in done]
        if not todo:
            continue
        x = load_image(ref)
        for s in range(0, len(todo), args.batch):
            chunk = todo[s:s + args.batch]
            y = torch.cat([load_image(p.dist_path) for p in chunk])
            with torch.no_grad():
                fx = fx if s else metric.features(x, normalize=True)
                fy = metric.features(y, normalize=True)
                _, per = metric.distance(fx, fy, retPerLayer=True)
            vals = torch.cat([t.view(-1, 1) for t in per], dim=1).double().numpy()
            s0, s1 = texture_statistics(fx, len(chunk)), texture_statistics(fy, len(chunk))
            for i, (p, v) in enumerate(zip(chunk, vals)):
                done[str(p.dist_path)] = v
                stats[str(p.dist_path)] = (s0[i], s1[i])
        print(f"ref {r + 1}/{len(refs)}: {len(done)} pairs, {time.time() - t0:.0f} s", flush=True)
        info = {str(p.dist_path): p for p in pairs}
        keys = sorted(done)
        np.savez(out, dist=np.array(keys), X=np.stack([done[k] for k in keys]), names=np.array(names),
                 S0=np.stack([stats[k][0] for k in keys]), S1=np.stack([stats[k][1] for k in keys]),
                 stat_names=np.array(TEXTURE_STATS), stat_channels=np.array(statistic_channels()),
                 type=np.array([info[k].dist_type for k in keys]), level=np.array([info[k].level for k in keys]),
                 ref=np.array([str(info[k].ref_path) for k in keys]), subpixel=np.array(SUBPIXEL), similarity=np.array(SIMILARITY))
    return 0


if __name__ == "__main__":
    sys.exit(main())
