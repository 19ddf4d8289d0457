"""Markdown table of a robustness run (``invariant-lpips robustness ... --out DIR``).

    python benchmarks/robustness_table.py DIR/robustness.json [MORE/robustness.json ...] [--ripple DIR2/robustness.json]

Columns: shift-to-distortion ratios (1-px crop shift vs Gaussian noise sigma 0.02 and vs Gaussian
blur sigma 0.5; medians over images), rank-flip rates at 1/2/3 px, and, from a sweep with the
circular or mirror protocol, the dominant period and ripple of d(x, T_k x).
"""
from __future__ import annotations

import argparse
import json
import sys


def _load(path):
    with open(path) as fh:
        data = json.load(fh)
    results = data.get("results", data)
    return {r["metric"]: r for r in (results.values() if isinstance(results, dict) else results)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="+", help="robustness.json of one or more runs (their metrics are listed in order)")
    ap.add_argument("--ripple", default=None, help="robustness.json of a separate periodicity run (default: the main one)")
    ap.add_argument("--protocol", default="crop", help="sweep protocol used for the period/ripple columns")
    args = ap.parse_args(argv)
    main_res = {}
    for path in args.json:
        main_res.update(_load(path))
    ripple = _load(args.ripple) if args.ripple else main_res
    flip_shifts = []
    for r in main_res.values():
        for k in (r.get("rank_flip") or {}).get("shifts", []):
            if k not in flip_shifts:
                flip_shifts.append(k)
    fmt = lambda v, p="{:.3f}": "n/a" if v is None else p.format(v)  # noqa: E731
    head = "| metric | shift/noise | shift/blur | " + " | ".join(f"flips {k} px" for k in flip_shifts) + \
        " | period (px) | ripple |"
    rows = [head, "|---|" + "---:|" * (4 + len(flip_shifts))]
    for name, r in main_res.items():
        sdr = r.get("shift_to_distortion", {})
        noise = sdr.get("noise", {}).get("ratio")
        blur = sdr.get("blur", {}).get("ratio")
        rf = r.get("rank_flip") or {}
        rate = dict(zip(rf.get("shifts", []), rf.get("rate", [])))
        per = (ripple.get(name) or {}).get("sweeps", {}).get(args.protocol, {}).get("periodicity", {})
        flips = " | ".join(fmt(rate.get(k) * 100 if rate.get(k) is not None else None, "{:.2f}%")
                           for k in flip_shifts)
        rows.append(f"| {name} | {fmt(noise)} | {fmt(blur)} | {flips} | {fmt(per.get('period'), '{:.1f}')} | "
                    f"{fmt(per.get('ripple_detrended'))} |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
