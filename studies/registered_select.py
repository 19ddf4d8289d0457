#!/usr/bin/env python
"""Nested leave-one-type-out selection in the *registered* family (compensate, then compare fine features).

    python studies/registered_select.py --terms data/registered_terms.npz --probe data/registered_probe.npz \\
        --table ../shared/data/kadid_dev_type_level.csv --peers-dir studies/results/dev_proxy_512/peers \\
        --out studies/results/registered_select [--ship invariant_lpips/weights/shipped/registered_blur.safetensors]
        [--local-terms F --local-probe F] [--lab-terms F --lab-probe F] [--exponent-terms F --exponent-probe F]

Input: the per-pair term columns of ``studies/registered_terms.py`` (texture, coarse-structure and
registered terms of one anti-aliased trunk pass to pool2) on the 512x384 KADID dev proxy, and the same
columns on synthetic probes (crop shifts, noise, JPEG, mirror, shuffles). A design is

    d = mean_{k in texture} T_k / m_k + lambda * mean_{j in structure} S_j / m_j + mu * mean_{r in registered} M_r / m_r

with ``m`` the columns' means over the training pairs (images only, no human score). The pool: the
texture base of the shipped default (pool1-2 means and spreads + CIELab), coarse structure (none, pool1
at 32 or 64 px, pool1-2 at 64 px) x lambda, registered sets x mu (``mu = 0``: the old family).

Admissible in a fold: the design meets the synthetic targets (a 1-px crop shift at most 2% of faint noise,
median over crops; a mirror and a 64-px shuffle at least 2x faint noise and more than JPEG q30 on every
crop) and the loss constraint: ``mu >= --min-mu`` and a registered set among ``--registered-sets`` (measured
by ``studies/loss_frontier.py``: the training run's sharpness within 15% of the truth's; no human score).
The shipped default, ``registered-lab-blur``: ``--min-mu 2 --registered-sets r1+lab``. With ``--loss-runs``
the loss test itself is the constraint (``loss_test``: the mean over seeds of the training run's aligned PSNR
at most 0.1 dB below the shipped default's, sharpness within 15%; ``--loss-reference none --loss-min-psnr P``:
no comparison with the default, the mean above ``P``, every design tested alike); ``--designs`` fixes the pool.
Among them the nested protocol (``selection.nested_selection``) chooses by SRCC over the training cells.
Nothing here reads RAID.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from registered_designs import (column_settings, design_pool, exponents_in, lab_blocks, local_radii, registered_exponents,
                                registered_sets, with_columns)
from selection import Cells, Probe, cell_srcc, design_coefficients, nested_selection, with_floor_columns

from invariant_lpips.data.generated import read_peer_scores
from invariant_lpips.data.type_level import read_type_level_table

#: KADID's blur types among the dev types (Gaussian, motion)
BLUR_TYPES = (1, 3)


def blur_levels(cells, d):
    """Per blur type, the design's cell means of levels 1-5 relative to level 3 and the humans' impairment
    (5 - mean DMOS) relative to level 3: how much of a visible blur (level 3) the slight ones (1, 2) cost."""
    cm = cells.cell_means(d)
    out = {}
    for t in BLUR_TYPES:
        rows = {lv: i for i, (tt, lv) in enumerate(cells.cells) if tt == t}
        if 3 not in rows:
            continue
        out[str(t)] = {"metric_over_level3": [round(float(cm[rows[lv]] / cm[rows[3]]), 4) for lv in sorted(rows)],
                       "human_over_level3": [round(float((5 - cells.human[rows[lv]]) / (5 - cells.human[rows[3]])), 4)
                                             for lv in sorted(rows)]}
    return out


def loss_test(runs: list, names: list, reference: Optional[str], max_drop: float = 0.1,
              sharpness_tolerance: float = 0.15, min_psnr: float = -np.inf) -> dict:
    """The loss test as a constraint: ``runs`` are the parsed ``train*.json`` of ``studies/loss_frontier.py``
    (one per training seed). For each name: the mean aligned PSNR and sharpness over the runs, and ``ok`` when
    the design was measured in every run, its mean aligned PSNR is above ``min_psnr`` (e.g. the best peer's)
    and at most ``max_drop`` dB below ``reference``'s, and its mean sharpness is within
    ``sharpness_tolerance`` of the truth's (1). A reference (the shipped default) passes by definition; with
    ``reference=None`` there is no comparison with a design and every design, the default included, is
    tested alike. Raises if the reference is missing from a run."""
    def means(name):
        got = [r["designs"][name]["mean"] for r in runs if name in r.get("designs", {})]
        if len(got) < len(runs):
            return None
        return (float(np.mean([g["aligned_psnr"] for g in got])), float(np.mean([g["sharpness"] for g in got])))

    ref = means(reference) if reference is not None else (-np.inf, 1.0)
    if ref is None:
        raise SystemExit(f"--loss-reference {reference!r} is not measured in every --loss-runs file")
    out = {}
    for name in names:
        m = means(name)
        if m is None:
            out[name] = {"measured_in_every_run": False, "ok": False}
            continue
        ok = name == reference or (m[0] > min_psnr and m[0] >= ref[0] - max_drop
                                   and abs(m[1] - 1.0) <= sharpness_tolerance)
        out[name] = {"measured_in_every_run": True, "aligned_psnr": m[0], "sharpness": m[1], "ok": bool(ok)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terms", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--peers-dir", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--min-mu", type=float, default=0.0, help="admissible designs have mu >= this (loss constraint)")
    ap.add_argument("--registered-sets", type=lambda s: [t for t in s.split(",") if t], default=[],
                    help=f"admissible designs have one of these registered sets (of {list(registered_sets((2,), (4,)))}; the loss "
                         "constraint, measured by studies/loss_frontier.py), e.g. r1+lab; default: any")
    ap.add_argument("--max-mu", type=float, default=float("inf"),
                    help="the pool holds designs with mu <= this only (0: the old family, no registered term)")
    ap.add_argument("--floors", default="0",
                    help="comma-separated texture energy floors kappa (blur tolerance, TextureFormulation); "
                         "0 = DISTS' texture term. Needs the per-pair statistics of registered_terms.py")
    ap.add_argument("--local-terms", default="",
                    help="local-matching columns of the pairs (registered_terms.py --local): adds the sets "
                         "r1+lab.j<R> to the pool; needs --local-probe")
    ap.add_argument("--local-probe", default="", help="the same columns of the probes")
    ap.add_argument("--lab-terms", default="",
                    help="low-passed CIELab columns of the pairs (registered_terms.py --lab-blocks): adds the sets "
                         "r1+lab<s> to the pool; needs --lab-probe")
    ap.add_argument("--lab-probe", default="", help="the same columns of the probes")
    ap.add_argument("--exponent-terms", default="",
                    help="pooled columns of the pairs (registered_terms.py --exponents): adds the sets r1+lab.q<q> "
                         "to the pool; needs --exponent-probe")
    ap.add_argument("--exponent-probe", default="", help="the same columns of the probes")
    ap.add_argument("--per-term-exponents", action="store_true",
                    help="with --exponent-terms: also the sets pooling one registered term only (r1.q<q>+lab: "
                         "relu1_2; r1+lab.lq<q>: CIELab)")
    ap.add_argument("--ship", default="", help="write the design chosen on all types as this weights file")
    ap.add_argument("--variant", default="registered-blur", help="the variant --ship writes the weights of")
    ap.add_argument("--designs", default="",
                    help="comma-separated design names: the pool holds these only (a family fixed beforehand)")
    ap.add_argument("--loss-runs", default="",
                    help="comma-separated train*.json of studies/loss_frontier.py (one per seed): a design is "
                         "admissible only if measured in each and it passes the loss test against --loss-reference")
    ap.add_argument("--loss-reference", default="tex12+lab|s1.c32|λ0.5|r1+lab|μ2",
                    help="the design whose mean aligned PSNR the loss test compares with (the shipped default); "
                         "'none': no comparison with a design, every design tested alike")
    ap.add_argument("--loss-max-drop", type=float, default=0.1,
                    help="dB the mean aligned PSNR may fall below the reference's")
    ap.add_argument("--loss-min-psnr", type=float, default=-np.inf,
                    help="the mean aligned PSNR must be above this (e.g. the best peer's over the same seeds)")
    ap.add_argument("--show", default="", help="comma-separated design names to report in the frontier table")
    args = ap.parse_args(argv)

    z = np.load(args.terms)
    floors = [float(k) for k in args.floors.split(",")]
    X, names = z["X"], [str(n) for n in z["names"]]
    if any(floors):
        X, names = with_floor_columns(X, names, z, floors)
    if any(bool(t) != bool(p) for t, p in [(args.local_terms, args.local_probe), (args.lab_terms, args.lab_probe),
                                           (args.exponent_terms, args.exponent_probe)]):
        raise SystemExit("--local-terms and --local-probe go together, and so do --lab-terms and --lab-probe, "
                         "and --exponent-terms and --exponent-probe")
    local, blocks = local_radii(args.local_terms), lab_blocks(args.lab_terms)
    exponents = exponents_in(args.exponent_terms)
    for extra in (args.local_terms, args.lab_terms, args.exponent_terms):
        if extra:
            X, names = with_columns(X, names, z["dist"], extra)
    table = read_type_level_table(args.table)
    cells = Cells(X, names, z["type"], z["level"], table)
    refs = sorted(set(str(r) for r in z["ref"]))
    probe = Probe(args.probe, floors)
    for extra in (args.local_probe, args.lab_probe, args.exponent_probe):
        if extra:
            probe.X, probe.names = with_columns(probe.X, probe.names, range(len(probe.X)), extra)
    sets = registered_sets(local, blocks, exponents, args.per_term_exponents)
    pool = [d for d in design_pool(floors, local, blocks, exponents, args.per_term_exponents) if d["mu"] <= args.max_mu]
    if args.designs:
        wanted = [n for n in args.designs.split(",") if n]
        missing = [n for n in wanted if n not in {d["name"] for d in pool}]
        if missing:
            raise SystemExit(f"--designs: not in the pool {missing}; names look like {pool[0]['name']!r}")
        pool = [d for d in pool if d["name"] in wanted]
    measured = {}
    if args.loss_runs:
        runs = [json.loads(Path(f).read_text()) for f in args.loss_runs.split(",") if f]
        measured = loss_test(runs, [d["name"] for d in pool], None if args.loss_reference == "none" else args.loss_reference,
                             max_drop=args.loss_max_drop, min_psnr=args.loss_min_psnr)
    print(f"{len(pool)} designs, {len(z['X'])} pairs, {len(refs)} references, {len(cells.types)} types", flush=True)

    unknown = [r for r in args.registered_sets if r not in sets]
    if unknown:
        raise SystemExit(f"--registered-sets: unknown {unknown}; choose among {list(sets)}")
    allowed = [sets[r] for r in args.registered_sets]

    def loss_ok(design):
        if measured and not measured[design["name"]]["ok"]:
            return False
        return design["mu"] >= args.min_mu and (not args.registered_sets or design["registered"] in allowed)

    def admissible(design, train):
        if not loss_ok(design):
            return False
        nm, coef = design_coefficients(cells, design, train)
        return Probe.admissible(probe.figures(nm, coef))

    peers = {}
    if args.peers_dir:
        dists = [Path(str(p)).name for p in z["dist"]]
        for f in sorted(Path(args.peers_dir).glob("*.csv")):
            peers[f.stem.split("_")[0]] = np.array(read_peer_scores(f, dists), dtype=np.float64)
    res = nested_selection(cells, pool, peers, verbose=True, admissible=admissible)
    every = [design_coefficients(cells, d, cells.types) for d in pool]
    figs = [probe.figures(nm, c) for nm, c in every]
    ok = [Probe.admissible(f) and loss_ok(d) for f, d in zip(figs, pool)]
    crit = [cell_srcc(cells, cells.columns(nm) @ c, cells.types) if k else -np.inf for (nm, c), k in zip(every, ok)]
    best = int(np.argmax(crit))
    chosen = pool[best]
    rows = {}
    show = [chosen["name"]] + [s for s in args.show.split(",") if s] + ([d["name"] for d in pool] if args.designs else [])
    for d, (nm, c), f in zip(pool, every, figs):
        if d["name"] in show:
            rows[d["name"]] = {"srcc_all_cells": cell_srcc(cells, cells.columns(nm) @ c, cells.types), **f,
                               "meets_probe_targets": Probe.admissible(f), "mu": d["mu"], "lambda": d["lambda"],
                               "floor": d["floor"], "blur_levels": blur_levels(cells, cells.columns(nm) @ c)}
    out = {"designs_compared": len(pool), "floors": floors, "local_radii": list(local), "lab_blocks": list(blocks), "exponents": list(exponents), "pairs": int(len(z["X"])), "references": len(refs),
           "min_mu": args.min_mu, "registered_sets": args.registered_sets,
           "loss_runs": args.loss_runs.split(",") if args.loss_runs else [], "loss_test": measured,
           "nested_srcc": res["nested_srcc"], "nested_krcc": res["nested_krcc"], "nested_plcc": res["nested_plcc"],
           "folds": res["folds"], "peers": res["peers"], "admissible_on_all_types": int(sum(ok)),
           "chosen_on_all_types": chosen, "coefficients": dict(zip(every[best][0], map(float, every[best][1]))),
           "frontier": rows}
    o = Path(args.out)
    o.mkdir(parents=True, exist_ok=True)
    (o / "registered_select.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("nested_srcc", "admissible_on_all_types", "peers")}, indent=1))
    print("chosen on all types:", chosen["name"], json.dumps(rows[chosen["name"]], indent=1))
    if args.ship:
        ship(chosen, out["coefficients"], args.ship, "python " + " ".join(sys.argv), args.variant)
    return 0


def ship(design, coefficients, path, command, variant="registered-blur"):
    """The chosen design's scales as the weights file of ``variant`` (texture terms scaled so that each has
    mean 1 over the pairs: ``a_k = n_texture * coef_k``, texture-blur's convention), with its entry in the
    shipped manifest (sha256, scales, the command). The variant must already have the design's terms and
    texture energy floor (features/variants.py)."""
    import torch

    from invariant_lpips.features.variants import get_variant
    from invariant_lpips.weights.linear import save_linear_weights

    v = get_variant(variant)
    coefficients = {k.split("@")[0]: c for k, c in coefficients.items()}
    nt = len(design["texture"])
    missing = [t for t in v.terms() if t not in coefficients]
    if missing or len(coefficients) != len(v.terms()):
        raise SystemExit(f"design {design['name']} has terms {sorted(coefficients)}, variant {variant} has "
                         f"{v.terms()}: change the variant in features/variants.py first")
    if getattr(v.formulation, "floor", 0.0) != design.get("floor", 0.0):
        raise SystemExit(f"design {design['name']} has texture energy floor {design.get('floor', 0.0)}, variant "
                         f"{variant} {getattr(v.formulation, 'floor', 0.0)}: change the variant first")
    local, _ = column_settings(design["registered"])
    local = local or {0}
    wanted = registered_exponents(design["registered"])
    exponent_for = getattr(v.formulation, "exponent_for", lambda key: 1.0)
    has = {k: exponent_for(k) for k in wanted}
    if has != wanted or local != {v.local_radius}:
        raise SystemExit(f"design {design['name']} pools its registered terms with exponents {wanted} and local "
                         f"radius {sorted(local)}, variant {variant} with {has} and {v.local_radius}: change the "
                         f"variant first")
    tensors = {t: torch.ones(c) for t, c in v.channels().items()}
    scales = {t: nt * coefficients[t] for t in v.terms()}
    for term, a in scales.items():
        tensors["scale." + term] = torch.tensor([a], dtype=torch.float32)
    entry = save_linear_weights(path, tensors, variant=v.name,
                                data="none learned: unit channel weights; each term scaled by its mean over the dev "
                                     "pairs of the registered study (KADID-style distortions of Kodak24, 512x384); the "
                                     "group weights lambda, mu chosen by nested leave-one-type-out selection",
                                loss="none (an unsupervised normalisation)",
                                notes=f"design {design['name']}, chosen by studies/registered_select.py")
    side = Path(str(path) + ".json")
    manifest_path = Path(path).parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry.update({"parameters": "one scale per term", "scales": {k: round(float(a), 6) for k, a in scales.items()},
                  "command": command})
    manifest["files"] = [e for e in manifest["files"] if e["file"] != Path(path).name] + [entry]
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    side.unlink(missing_ok=True)
    print("wrote", path, "and its manifest entry")


if __name__ == "__main__":
    sys.exit(main())
