#!/usr/bin/env python
"""The frontier of the structure-aware default: candidate designs against all five targets of the issue.

    # the candidates' loss and speed, with the peers in the same run (structure_evidence.py)
    python studies/structure_evidence.py loss --refs ../shared/data/kodak24 --limit 3 --steps 60 \\
        --starts blur+noise,pure-noise --store data/structure_study --out studies/results/structure_frontier \\
        --metrics "$(python studies/structure_frontier.py --list),paper,lpips-vgg,dists,stlpips-vgg"
    python studies/structure_evidence.py speed --store data/structure_study --out studies/results/structure_frontier \\
        --metrics "$(python studies/structure_frontier.py --list),lpips-pkg"
    # the table
    python studies/structure_frontier.py --store data/structure_study --table ../shared/data/kadid_dev_type_level.csv \\
        --peers-dir studies/results/dev_proxy_512/peers --select studies/results/structure_select/structure_select.json \\
        --evidence studies/results/structure_frontier --out studies/results/structure_frontier

Per candidate (a design of :mod:`designs` (studies/designs.py), weighted ``norm``: no human score):

* **accuracy**: the held-out SRCC of the *fixed* design on the 512x384 dev proxy: for each dev type, a
  monotone map fitted on the other 12 types' cells places the held-out type's cells, and the 65 pooled
  predictions are correlated with the human means (the nested protocol of
  :func:`selection.nested_selection` (studies/selection.py) with a pool of one). DISTS goes through
  the same maps; the target is DISTS + 0.02.
* **arrangement** and **invariance** on the human-free Kodak probes (``structure_study.py probe``, 256-px
  crops): the smallest ratio over the 24 crops of a mirror and of a 64-px block shuffle to faint noise
  (sigma 0.03; target >= 2) and to JPEG q30 (target > 1); the median ratio of a 1-px shift to noise of
  sigma 0.02 (target <= 0.02), and of 2- and 4-px shifts.
* **loss**: from ``structure_evidence.py loss``: the PSNR gain from a blurred, noisy start (target: at least
  ST-LPIPS' gain in the same run) and, from pure noise, the correlation of the low-passed luminance with
  the reference's at the end (reported; a texture-only metric stays near 0).
* **speed**: from ``structure_evidence.py speed``: pairs/s on the KADID-shaped workload over the lpips
  package's, in the same run (target >= 3).

The same three cheap figures (accuracy, arrangement, 1-px shift) are also computed for every design of the
selection pool, to say how many designs meet each target and whether any meets all three.

``--list`` prints the candidates as ``design:<name>`` metric names, comma-separated.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from designs import design_by_name, design_pool
from selection import Cells, cell_srcc, design_distances, nested_selection
from invariant_lpips.data.generated import read_peer_scores
from invariant_lpips.data.type_level import read_type_level_table

#: the candidates: texture only, the shipped default and its neighbours in weight, cell size and taps
CANDIDATES = [
    "tex12+lab|none|norm1",
    "tex12+lab|s1.c64.centred|norm0.25",
    "tex12+lab|s1.c64.centred|norm0.5",
    "tex12+lab|s1.c64.centred|norm1",
    "tex123+lab|s1.c64.centred|norm0.75",
    "tex12+lab|s12.c64.centred|norm1",
    "tex12+lab|s1.c32.centred|norm0.5",
    "tex12+lab|s1.c16.centred|norm0.25",
    "tex12+lab|s1.c16.centred|norm1",
    "tex12+lab|s12.c16.centred|norm3",
]
SHIPPED = "tex12+lab|s1.c64.centred|norm0.5"
TARGETS = {"accuracy_margin": 0.02, "shift1": 0.02, "arrangement": 2.0, "speed": 3.0}


def read_peer(path, names):
    return np.array(read_peer_scores(path, names))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="print the candidates as metric names and stop")
    ap.add_argument("--store", help="structure study folder (terms.npz)")
    ap.add_argument("--table", help="kadid_dev_type_level.csv")
    ap.add_argument("--peers-dir", help="dev-proxy peer scores (dists_512x384.csv)")
    ap.add_argument("--select", help="structure_select.json (its probe figures)")
    ap.add_argument("--evidence", help="folder with structure_evidence.py's loss.json and speed.json")
    ap.add_argument("--out", default="studies/results/structure_frontier")
    args = ap.parse_args(argv)
    if args.list:
        print(",".join(f"design:{c}" for c in CANDIDATES))
        return 0
    for k in ("store", "table", "peers_dir", "select", "evidence"):
        if not getattr(args, k):
            raise SystemExit(f"--{k.replace('_', '-')} is required (or pass --list)")
    table = read_type_level_table(args.table)
    z = np.load(Path(args.store) / "terms.npz")
    cells = Cells(z["X"], z["names"], z["type"], z["level"], table)
    dists = read_peer(Path(args.peers_dir) / "dists_512x384.csv", [str(d) for d in z["dist"]])
    probes = json.loads(Path(args.select).read_text())["probe_figures"]
    ev = Path(args.evidence)
    loss = json.loads((ev / "loss.json").read_text())
    speed = json.loads((ev / "speed.json").read_text())
    base_speed = speed["metrics"]["lpips-pkg"]["pairs_per_s"]
    st_gain = loss["metrics"]["stlpips-vgg"]["mean"]["blur+noise"]
    st_gain = st_gain["psnr_end"] - st_gain["psnr_start"]
    # the held-out SRCC of every design of the pool, held fixed (each computed once), and DISTS' by the same maps
    heldout = {d["name"]: nested_selection(cells, [d], verbose=False)["nested_srcc"] for d in design_pool()}
    peer_srcc = nested_selection(cells, [design_by_name(CANDIDATES[0])], {"dists": dists},
                                 verbose=False)["peers"]["dists"]["nested_srcc"]

    def cheap_targets(name):
        """accuracy, arrangement and the 1-px shift: the targets that need no image pass."""
        p = probes[name]
        return {"accuracy": heldout[name] >= peer_srcc + TARGETS["accuracy_margin"],
                "arrangement": min(p["mirror_over_noise0.03_min"], p["shuffle64_over_noise0.03_min"]) >= TARGETS["arrangement"]
                and min(p["mirror_over_jpeg30_min"], p["shuffle64_over_jpeg30_min"]) > 1,
                "invariance": p["shift1_over_noise0.02"] <= TARGETS["shift1"]}

    rows = []
    for name in CANDIDATES:
        d = design_by_name(name)
        p = probes[name]
        key = f"design:{name}"
        lm = loss["metrics"].get(key, {}).get("mean", {})
        bn, pn = lm.get("blur+noise"), lm.get("pure-noise")
        sp = speed["metrics"].get(key)
        row = {"design": name, "heldout_srcc": heldout[name],
               "plain_srcc": cell_srcc(cells, design_distances(cells, d, cells.types), cells.types),
               "mirror_noise_min": p["mirror_over_noise0.03_min"], "shuffle64_noise_min": p["shuffle64_over_noise0.03_min"],
               "mirror_jpeg_min": p["mirror_over_jpeg30_min"], "shuffle64_jpeg_min": p["shuffle64_over_jpeg30_min"],
               "shift1": p["shift1_over_noise0.02"], "shift2": p["shift2_over_noise0.02"], "shift4": p["shift4_over_noise0.02"],
               "loss_gain_blur_noise": None if bn is None else bn["psnr_end"] - bn["psnr_start"],
               "loss_lp_corr_pure_noise": None if pn is None else pn["lp_corr_end"],
               "speed_x_lpips": None if sp is None else sp["pairs_per_s"] / base_speed}
        row["targets_met"] = {**cheap_targets(name),
                              "loss": row["loss_gain_blur_noise"] is not None and row["loss_gain_blur_noise"] >= st_gain,
                              "speed": row["speed_x_lpips"] is not None and row["speed_x_lpips"] >= TARGETS["speed"]}
        rows.append(row)
    # the whole pool on the three targets that need no image pass
    pool_rows = [{"design": n, "heldout_srcc": v, **cheap_targets(n)} for n, v in heldout.items()]
    count = {k: sum(r[k] for r in pool_rows) for k in ("accuracy", "arrangement", "invariance")}
    count["arrangement+invariance"] = sum(r["arrangement"] and r["invariance"] for r in pool_rows)
    count["all three"] = sum(r["arrangement"] and r["invariance"] and r["accuracy"] for r in pool_rows)
    best_any = max(pool_rows, key=lambda r: r["heldout_srcc"])
    adm = [r for r in pool_rows if r["arrangement"] and r["invariance"]]
    best_adm = max(adm, key=lambda r: r["heldout_srcc"]) if adm else None
    peers_loss = {k: {"gain_blur_noise": v["mean"]["blur+noise"]["psnr_end"] - v["mean"]["blur+noise"]["psnr_start"],
                      "lp_corr_pure_noise": v["mean"]["pure-noise"]["lp_corr_end"]}
                  for k, v in loss["metrics"].items() if not k.startswith("design:") and "pure-noise" in v["mean"]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"pool": {"size": len(pool_rows), "meeting": count, "best_heldout": best_any,
                    "best_heldout_arrangement_invariance": best_adm, "designs": pool_rows},
           "candidates": rows, "dists_heldout_srcc": peer_srcc, "stlpips_gain_blur_noise": st_gain,
           "peers_loss": peers_loss, "loss_settings": {k: loss[k] for k in ("crop", "steps", "lr", "images")},
           "speed_settings": {k: speed[k] for k in ("workload", "threads", "repeats")}, "targets": TARGETS}
    (out / "frontier.json").write_text(json.dumps(res, indent=1))

    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    lines = [
        f"Candidates against the five targets. Accuracy: held-out SRCC of the fixed design on the 512x384 dev proxy "
        f"({len(cells.X)} pairs, 65 cells; DISTS {peer_srcc:.4f} by the same protocol, target {peer_srcc + 0.02:.4f}). "
        "Arrangement and invariance: Kodak probes, 256-px crops (min over crops of mirror and 64-px shuffle over noise "
        "0.03, target >= 2, and over JPEG q30, target > 1; median 1-px shift over noise 0.02, target <= 0.02). "
        f"Loss: {len(loss['images'])} Kodak crops of {loss['crop']} px, Adam lr {loss['lr']}, {loss['steps']} steps; PSNR gain "
        f"from blur + noise (target: ST-LPIPS' {st_gain:+.2f} dB in the same run) and, from pure noise, the low-pass "
        f"luminance correlation at the end. Speed: {speed['workload']}, pairs/s over the lpips package's in the same "
        "run (target >= 3). A check mark per target met.", "",
        "| design | held-out SRCC | mirror / noise | shuffle64 / noise | min / JPEG | 1 px / noise | 2 px | 4 px | "
        "loss: blur+noise dB | loss: noise -> layout r | speed x lpips | targets met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        met = r["targets_met"]
        name = r["design"].replace("|", "\\|") + (" (shipped)" if r["design"] == SHIPPED else "")
        ok = ", ".join(k for k, v in met.items() if v) or "none"
        lines.append(
            f"| `{name}` | {r['heldout_srcc']:.4f} | {r['mirror_noise_min']:.2f} | {r['shuffle64_noise_min']:.2f} | "
            f"{min(r['mirror_jpeg_min'], r['shuffle64_jpeg_min']):.2f} | {r['shift1']:.4f} | {r['shift2']:.3f} | "
            f"{r['shift4']:.3f} | {f(r['loss_gain_blur_noise'], '+.2f')} | {f(r['loss_lp_corr_pure_noise'], '.3f')} | "
            f"{f(r['speed_x_lpips'], '.2f')} | {sum(met.values())}/5: {ok} |")
    lines += ["", f"The whole pool ({len(pool_rows):,} designs) on the three targets that need no image pass: "
              f"{count['accuracy']} meet accuracy (best `{best_any['design']}`, {best_any['heldout_srcc']:.4f}), "
              f"{count['arrangement']} arrangement, {count['invariance']} the 1-px shift, "
              f"{count['arrangement+invariance']} both arrangement and shift"
              + (f" (best held-out SRCC among them `{best_adm['design']}`, {best_adm['heldout_srcc']:.4f})" if best_adm else "")
              + f", and {count['all three']} all three."]
    lines += ["", "Peers in the same loss run (PSNR gain from blur + noise; low-pass r from pure noise):", "",
              "| metric | blur+noise dB | noise -> layout r |", "|---|---:|---:|"]
    for k, v in peers_loss.items():
        lines.append(f"| {k} | {v['gain_blur_noise']:+.2f} | {v['lp_corr_pure_noise']:.3f} |")
    (out / "frontier.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
