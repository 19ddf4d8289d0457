"""Markdown table of a robustness run (``invariant-lpips robustness ... --out DIR``).

    python benchmarks/robustness_table.py DIR/robustness.json [--ripple DIR2/robustness.json]

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
    ap.add_argument("json")
    ap.add_argument("--ripple", default=None, help="robustness.json of a periodicity run (circular sweep)")
    ap.add_argument("--protocol", default="circular", help="sweep protocol used for the ripple columns")
    args = ap.parse_args(argv)
    main_res = _load(args.json)
    ripple = _load(args.ripple) if args.ripple else {}
    head = ("| metric | shift/noise | shift/blur | flips 1 px | flips 2 px | flips 3 px | period (px) | ripple |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [head]
    for name, r in main_res.items():
        sdr = r.get("shift_to_distortion", {})
        noise = sdr.get("noise", {}).get("ratio")
        blur = sdr.get("blur", {}).get("ratio")
        rf = r.get("rank_flip") or {}
        rates = rf.get("rate", [None, None, None])
        per = (ripple.get(name) or {}).get("sweeps", {}).get(args.protocol, {}).get("periodicity", {})
        fmt = lambda v, p="{:.3f}": "n/a" if v is None else p.format(v)  # noqa: E731
        rows.append(f"| {name} | {fmt(noise)} | {fmt(blur)} | " + " | ".join(fmt(x * 100 if x is not None else None, "{:.2f}%") for x in rates)
                    + f" | {fmt(per.get('period'), '{:.1f}')} | {fmt(per.get('ripple_detrended'))} |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
