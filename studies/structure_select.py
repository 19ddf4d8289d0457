#!/usr/bin/env python
"""Nested leave-one-type-out selection of the default's design, on the 512x384 KADID dev proxy.

    python studies/structure_select.py --store data/structure_study \\
        --table ../shared/data/kadid_dev_type_level.csv \\
        --peers-dir studies/results/dev_proxy_512/peers --out studies/results/structure_select

Input: the per-pair term columns of ``studies/structure_study.py terms`` (texture terms per pool tap,
structure terms per tap / cell / comparison). A *design* is a texture base, a structure set and a
weighting; the pool is every combination (its size is printed and stored). A design's distance of a pair is

    d = mean_{k in texture} T_k / m_k  +  lambda * mean_{k in structure} S_k / m_k      (``norm``)

with ``m_k`` the mean of term ``k`` over the *training* pairs (images only, no human score), or
``d = sum_k a_k T_k`` with non-negative ``a_k`` fitted to the training cells' human means (``fit``:
non-negative least squares on centred cell means, which maximises Pearson's r over a >= 0).

The nested protocol, for every dev type ``t``:

1. on the other 12 types only, score every design: ``norm`` designs by their SRCC over the 60 training
   cells; ``fit`` designs by an inner leave-one-type-out (fit on 11 types, SRCC over the 60 cells,
   averaged over the 12 inner folds), so that fitting is not rewarded for memorising;
2. choose the best design, refit / renormalise it on the 12 types;
3. map its cell distances to the human scale by a monotone (isotonic) fit on the 60 training cells, and
   predict the 5 cells of type ``t`` by interpolation.

The 65 held-out predictions are pooled and correlated with the human means: the *nested SRCC*. Peers go
through step 3 with the same maps, so the comparison is like for like. The design that the same
procedure picks on all 13 types is reported as the one to ship.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from selection import (PROBE_TARGETS, Cells, Probe, cell_srcc, criterion, design_coefficients, design_distances,
                                                   nested_selection)
from designs import design_by_name, design_pool, design_scales, design_weights
from invariant_lpips.data.generated import read_peer_scores
from invariant_lpips.data.type_level import read_type_level_table

#: designs shown in the frontier table beside the chosen one and the best unconstrained one
FRONTIER = ["tex12+lab|none|norm1", "tex12+lab|s1.c64.centred|norm0.5", "tex12+lab|s1.c64.centred|norm0.25", "tex12+lab|s1.c64.centred|norm1",
            "tex12+lab|s12.c64.centred|norm0.5", "tex12+lab|s12.c64.centred|norm1", "tex12+lab|s345.c16.centred|norm0.5",
            "tex12345+lab|none|fit", "tex12+lab|s1.c32.centred|norm0.5"]


TARGETS = PROBE_TARGETS


def ship(cells, design, args):
    """The chosen ``norm`` design's scales as a weights file: ``a_k = n_texture * coef_k`` (texture-blur's
    convention: each texture term scaled to a mean of 1 over the pairs)."""
    from invariant_lpips.features.variants import get_variant
    from invariant_lpips.weights.linear import save_linear_weights

    if design["weighting"] != "norm":
        raise SystemExit("--ship writes norm designs (no human score); fitted designs go through 'invariant-lpips calibrate'")
    names, coef = design_coefficients(cells, design, cells.types)
    v = get_variant(args.variant)
    scale = design_scales(design, names, coef)
    try:
        weights = design_weights(v, scale)
    except ValueError as e:
        raise SystemExit(f"design {design['name']}: {e}") from None
    n_refs = len(set(cells_refs)) if (cells_refs := getattr(cells, "refs", None)) is not None else "?"
    entry = save_linear_weights(
        args.weights_out, weights, variant=v.name,
        data=f"none learned: unit channel weights; each texture term scaled to a mean of 1 over the {len(cells.X)} "
             f"dev pairs of the structure study ({n_refs} references x 13 types x 5 levels, 512x384); the structure "
             f"term weighs {design['lambda']:g} x the mean texture term; images only, no human scores",
        loss="none (an unsupervised normalisation)",
        notes=f"design {design['name']}, chosen by nested leave-one-type-out selection (studies/structure_select.py)",
        extra={"parameters": "one scale per term", "scales": {t: round(scale[t], 6) for t in v.terms()},
               "command": "python studies/structure_select.py --store data/structure_study --table "
                          "../shared/data/kadid_dev_type_level.csv --ship '" + design["name"] + "' --weights-out "
                          + str(args.weights_out)})
    print(json.dumps(entry, indent=1))
    return 0


def read_peer(path, names):
    return np.array(read_peer_scores(path, names))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="folder with terms.npz (studies/structure_study.py)")
    ap.add_argument("--table", required=True, help="kadid_dev_type_level.csv")
    ap.add_argument("--peers-dir", default=None)
    ap.add_argument("--peers", default="lpips-vgg,dists")
    ap.add_argument("--out", default="studies/results/structure_select")
    ap.add_argument("--weighting", default="norm,fit,fit+norm", help="weightings in the pool")
    ap.add_argument("--ship", default=None, metavar="DESIGN",
                    help="write DESIGN's term scales (normalised on every pair of the store) to --weights-out and stop")
    ap.add_argument("--weights-out", default=None, help="with --ship: the safetensors file to write")
    ap.add_argument("--variant", default="structure-blur", help="with --ship: the variant whose terms they are")
    ap.add_argument("--no-constraints", action="store_true",
                    help="choose among every design, not only those meeting the probe targets (probe.npz)")
    args = ap.parse_args(argv)
    table = read_type_level_table(args.table)
    z = np.load(Path(args.store) / "terms.npz")
    cells = Cells(z["X"], z["names"], z["type"], z["level"], table)
    cells.refs = [str(r) for r in z["ref"]]
    dist_names = [str(d) for d in z["dist"]]
    pool = [d for d in design_pool() if d["weighting"] in args.weighting.split(",")]
    if args.ship:
        return ship(cells, design_by_name(args.ship), args)
    peers = {}
    for name in [p for p in args.peers.split(",") if p and args.peers_dir]:
        peers[name] = read_peer(Path(args.peers_dir) / f"{name}_512x384.csv", dist_names)
    print(f"{len(pool)} designs in the pool; {len(cells.X)} pairs, {len(cells.cells)} cells", flush=True)
    # in-sample: every design scored on all 13 types with the same criterion
    all_types = cells.types
    insample = {d["name"]: criterion(cells, d, all_types) for d in pool}
    plain = {d["name"]: cell_srcc(cells, design_distances(cells, d, all_types), all_types) for d in pool}
    probe_path = Path(args.store) / "probe.npz"
    probe = Probe(probe_path) if probe_path.is_file() else None
    constrained = probe is not None and not args.no_constraints

    def admissible(design, train):
        return probe.admissible(probe.figures(*design_coefficients(cells, design, train)))

    res = nested_selection(cells, pool, peers, admissible=admissible if constrained else None)
    res["constrained"] = constrained
    if probe is not None:
        res["probe_figures"] = {d["name"]: probe.figures(*design_coefficients(cells, d, all_types)) for d in pool}
    if constrained:
        ok_all = {d["name"]: probe.admissible(res["probe_figures"][d["name"]]) for d in pool}
        insample = {k: (v if ok_all[k] else -np.inf) for k, v in insample.items()}
        res["admissible_on_all_types"] = int(sum(ok_all.values()))
    chosen_all = max(insample, key=insample.get)
    res.update({"pool_size": len(pool), "chosen_on_all_types": chosen_all,
                "chosen_on_all_types_plain_srcc": plain[chosen_all],
                "best_in_sample": max(plain, key=plain.get), "best_in_sample_srcc": max(plain.values()),
                "choices": Counter(f["chosen"] for f in res["folds"]),
                "plain_srcc": plain, "criterion_all_types": insample})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "structure_select.json").write_text(json.dumps(res, indent=1, default=float))
    lines = [f"Pool: {len(pool)} designs. Nested leave-one-type-out SRCC (65 held-out cell predictions): "
             f"**{res['nested_srcc']:.4f}** (KRCC {res['nested_krcc']:.4f}, PLCC {res['nested_plcc']:.4f}).", ""]
    for k, v in res["peers"].items():
        lines.append(f"- {k}: same protocol {v['nested_srcc']:.4f}; plain SRCC {v['plain_srcc']:.4f}")
    lines += ["", f"Chosen on all 13 types: `{chosen_all}` (plain SRCC {plain[chosen_all]:.4f}); best in-sample "
              f"plain SRCC: `{res['best_in_sample']}` {res['best_in_sample_srcc']:.4f}.", "",
              "| held-out type | chosen design | criterion | SRCC over all 65 cells |", "|---:|---|---:|---:|"]
    for f in res["folds"]:
        lines.append(f"| {f['held_out_type']} | `{f['chosen']}` | {f['criterion']:.4f} | {f['srcc_all_cells']:.4f} |")
    if "probe_figures" in res:
        lines += ["", "The frontier: candidates against the probe targets (median 1-px shift / noise 0.02 <= 0.02; "
                  "mirror and 64-px shuffle >= 2x noise 0.03 and > JPEG q30 on every crop) and in-sample SRCC:", "",
                  "| design | SRCC (all types) | 1 px / noise | 2 px / noise | 4 px / noise | mirror / noise (min) | "
                  "mirror / JPEG (min) | shuffle64 / noise (min) | meets probe targets |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        best_unconstrained = max(plain, key=plain.get)
        for name in [n for n in dict.fromkeys(FRONTIER + [chosen_all, best_unconstrained]) if n in plain]:
            f = res["probe_figures"][name]
            ok = probe.admissible(f)
            lines.append(f"| `{name}` | {plain[name]:.4f} | {f['shift1_over_noise0.02']:.4f} | {f['shift2_over_noise0.02']:.4f} | "
                         f"{f['shift4_over_noise0.02']:.3f} | {f['mirror_over_noise0.03_min']:.2f} | "
                         f"{f['mirror_over_jpeg30_min']:.2f} | {f['shuffle64_over_noise0.03_min']:.2f} | {'yes' if ok else 'no'} |")
    (out / "structure_select.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
