"""RAID reconstructed from Kodak24: the README table, in one command.

    python benchmarks/raid_table.py --kodak ../shared/data/kodak24 --human ../shared/data/raid \
        --metrics texture-blur,paper,lpips-vgg,dists,stlpips-vgg,mse

1. rebuilds RAID's 960 stimuli from the Kodak photographs into ``--stimuli`` (default
   ``data/raid_kodak``; skipped when its ``params.json`` is already there), as
   ``invariant-lpips make-dataset raid-kodak --refs KODAK --out STIMULI`` does;
2. scores every named metric on the level pairs the curves and the 40,320 trials need, caching the
   distances in ``OUT/scores/<metric>.csv`` (a rerun with one more metric scores only that one);
3. writes ``OUT/summary.md`` (curve- and trial-level tables with the level-index, MSE and MLDS
   baselines), ``OUT/summary.json``, ``OUT/manifest.json`` and ``OUT/raid_curves.png``.

``--stimuli`` may also be a real RAID image folder (then ``--kodak`` is not needed). Nothing is fitted
to RAID. Heavy on CPU (about 900 images through each metric's network): ``OMP_NUM_THREADS`` and
``--threads`` set the threads.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_METRICS = "texture-blur,paper,lpips-vgg,dists,stlpips-vgg,mse"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default=None, help="folder of kodim01..24.png (to build the stimuli)")
    ap.add_argument("--human", required=True, help="folder with RAID's responses.csv and answers.csv")
    ap.add_argument("--stimuli", default=str(ROOT / "data" / "raid_kodak"), help="stimulus folder")
    ap.add_argument("--metrics", default=DEFAULT_METRICS, help=f"registry names (default {DEFAULT_METRICS})")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "raid"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0, help="noise seed of the reconstruction (default 0)")
    ap.add_argument("--score-only", action="store_true", help="score and cache, no report (parallel runs)")
    ap.add_argument("--report-only", action="store_true", help="tables from the cached scores, score nothing")
    ap.add_argument("--interleave", action="store_true",
                    help="score image by image across the metrics (an interrupted run leaves them on the same images)")
    ap.add_argument("--readme", action="store_true", help="print the compact README table too")
    ap.add_argument("--images", default=None,
                    help="only these RAID images, e.g. 1-12 or 1,3,5 (default all 24): scoring every peer on "
                         "all 24 takes hours on a CPU")
    ap.add_argument("--no-resume", action="store_true", help="rescore these metrics")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from invariant_lpips.benchmarks.raid_report import run_raid_evaluation
    from invariant_lpips.distortions.raid_kodak import write_raid_kodak

    stimuli = Path(args.stimuli)
    if not (stimuli / "params.json").is_file() and not any(stimuli.glob("*_img_*_level_*.png")):
        if not args.kodak:
            ap.error(f"{stimuli} holds no stimuli: pass --kodak DIR to build them")
        write_raid_kodak(args.kodak, stimuli, seed=args.seed)
    human = Path(args.human)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    images = None
    if args.images:
        images = sorted({i for part in args.images.split(",") for i in
                         (range(int(part.split("-")[0]), int(part.split("-")[1]) + 1) if "-" in part else [int(part)])})
    s = run_raid_evaluation(stimuli, human / "responses.csv", human / "answers.csv", metrics, args.out,
                            device=args.device, resume=not args.no_resume, report=not args.score_only,
                            score=not args.report_only, interleave=args.interleave, images=images)
    if not args.score_only:
        print("\n".join(s["markdown"]))
        if args.readme:
            from invariant_lpips.benchmarks.raid import readme_table

            print("\n".join(readme_table(s)))
            if s.get("subset"):
                print(f"\nimages {s['subset']['images']}:")
                print("\n".join(readme_table(s["subset"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
