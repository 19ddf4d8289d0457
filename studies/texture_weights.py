#!/usr/bin/env python
"""Write ``invariant_lpips/weights/shipped/texture_blur.safetensors``: the ``texture-blur`` variant's term scales (no human data).

The ``texture`` formulation adds terms of different natural sizes (DISTS-style dissimilarities in
[0, 1] of the channel means and spreads at pool1 and pool2, squared CIELab differences). Each term's scale is set to ``1 / mean(T_k)``
over the pairs of a generated KADID-layout set, so that every term contributes on average equally:
an unsupervised normalisation (only images, no human scores), like the unit scales of
``gap-lin-ms``. Channel weights are uniform. ``studies/dev_proxy.py`` then evaluates the
shipped file, and its ``texture`` designs check whether scales *fitted* to human scores would do
better when the evaluated type is held out (they did not; see README, "Accuracy").

Example (the shipped file; pooled statistics come from the feature cache)::

    python studies/texture_weights.py --dataset data/kodak_dev --out invariant_lpips/weights/shipped/texture_blur.safetensors
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from invariant_lpips.calibration.pairs import design_matrix, parameters_to_weights, variant_tensors
from invariant_lpips.data.generated import read_generated_set
from invariant_lpips.data.sizes import hw, parse_size
from invariant_lpips.features.cache import FeatureCache
from invariant_lpips.features.variants import get_variant
from invariant_lpips.weights.linear import save_linear_weights

VARIANT = "texture-blur"


def term_scales(dataset: str, size=None, cache=None, device: str = "cpu", types=None, variant: str = VARIANT,
                structure_share: float = 0.5):
    """(scales (K,), terms, number of pairs): ``1 / mean(T_k)`` over the set's pairs, unit channel weights.

    Structure terms (coarse maps) get ``structure_share * n_texture / n_structure / mean(S_j)``: together they
    weigh ``structure_share`` times the mean texture term (the ``norm`` weighting of
    ``studies/structure_select.py``, scaled by the number of texture terms as texture-blur's scales are)."""
    v = get_variant(variant)
    pairs = read_generated_set(dataset, types=types)
    paths = sorted({str(p.ref_path) for p in pairs} | {str(p.dist_path) for p in pairs})
    feats = FeatureCache(v, root=cache, device=device, size=size).features_for_files(paths, progress=True)
    tensors = variant_tensors(v, "ones")
    X = design_matrix([feats[str(p.ref_path)] for p in pairs], [feats[str(p.dist_path)] for p in pairs], v, tensors)
    scales = 1.0 / X.mean(0)
    structure = torch.tensor([".coarse" in t for t in v.terms()])
    if structure.any():
        n_tex, n_st = int((~structure).sum()), int(structure.sum())
        scales[structure] *= structure_share * n_tex / n_st
    return scales, v.terms(), len(pairs), tensors


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="generated KADID-layout folder (invariant-lpips make-dataset)")
    ap.add_argument("--out", required=True, help="weights file to write (a .json manifest entry is written beside)")
    ap.add_argument("--types", default="1,3,4,6,8,9,11,13,16,18,20,22,24",
                    help="distortion types whose pairs set the scales (default: the 13 dev types)")
    ap.add_argument("--size", default="none", help="resize WIDTHxHEIGHT before the trunk (default: as generated)")
    ap.add_argument("--cache", default=None, help="feature cache folder (default: the package cache)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--variant", default=VARIANT, help="variant whose terms are scaled (texture-blur, structure-blur)")
    ap.add_argument("--structure-share", type=float, default=0.5,
                    help="weight of the structure terms together, relative to the mean texture term")
    args = ap.parse_args(argv)
    types = [int(t) for t in args.types.split(",") if t]
    size = parse_size(args.size)
    scales, terms, n, tensors = term_scales(args.dataset, hw(size) if size else None, args.cache, args.device, types,
                                            args.variant, args.structure_share)
    params = scales.float()
    weights = parameters_to_weights(get_variant(args.variant), params, tensors)
    share = (f"; the structure terms together weigh {args.structure_share:g} x the mean texture term"
             if any(".coarse" in t for t in terms) else "")
    entry = save_linear_weights(
        args.out, weights, variant=args.variant,
        data=f"none learned: unit channel weights; each term scale is 1 / mean(T_k) over the {n} pairs{share} "
             f"of {Path(args.dataset).name} (types {args.types}), images only, no human scores",
        loss="none (an unsupervised normalisation)",
        notes="scale.<term> = 1 / mean over the set's pairs of that term's dissimilarity",
        extra={"parameters": "one scale per term",
               "command": "python studies/texture_weights.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "scales": dict(zip(terms, [round(float(s), 6) for s in scales]))})
    print(json.dumps(entry, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
