"""``invariant-lpips calibrate``: learn a variant's linear weights from human judgements."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..data.sizes import hw, parse_size


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="learn per-channel weights of a variant from human judgements",
        description="Extracts (and caches) pooled trunk features once, then fits non-negative per-channel "
                    "weights. Datasets: kadid10k, tid2008, tid2013, csiq, raid (MOS/DMOS; losses pearson|rank), "
                    "bapps (loss 2afc), or 'type-level' (a generated KADID-layout set from 'invariant-lpips "
                    "make-dataset' plus --table, a CSV of human means per (type, level)).")
    p.add_argument("--dataset", required=True,
                   help="kadid10k | tid2008 | tid2013 | csiq | raid | bapps | type-level")
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--variant", default=None,
                   help="the InvariantLPIPS variant to calibrate (default: structure-blur, the default's counterpart "
                        "without registered terms, which cannot be fitted from cached statistics)")
    p.add_argument("--loss", default="pearson", choices=["pearson", "rank", "2afc"],
                   help="fit objective: pearson or rank (MOS/DMOS datasets), 2afc (bapps) (default pearson)")
    p.add_argument("--out", required=True, help="weights file to write (.safetensors; a .json manifest is written beside it)")
    p.add_argument("--table", default=None, help="type-level table (for --dataset type-level)")
    p.add_argument("--init", default="shipped", help="'shipped' (the variant's weights), 'ones', or a weights file")
    p.add_argument("--folds", type=int, default=0, help="also report k-fold-by-reference figures")
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of references held out for the report")
    p.add_argument("--weight-decay", type=float, default=1e-3,
                   help="pull of the weights towards --init (default 1e-3)")
    p.add_argument("--steps", type=int, default=2000, help="maximum optimiser steps (default 2000)")
    p.add_argument("--lr", type=float, default=0.02, help="learning rate (default 0.02)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of training references held out for early stopping; 0 = run all --steps (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the reference split and the fit (default 0)")
    p.add_argument("--size", default=None, help="resize images to WxH before the trunk (e.g. 256x192)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... for the feature extraction (default cpu)")
    p.add_argument("--cache", default=None, help="feature cache folder (default: the package cache)")
    p.set_defaults(func=run)


#: the variant calibrated when --variant is not given (the default variant's registered terms need both
#: images, so it cannot be fitted from cached statistics; this is its statistics-only counterpart)
CALIBRATION_DEFAULT = "structure-blur"


def run(args) -> int:
    if args.variant is None:  # the default's registered terms cannot be fitted from cached statistics
        args.variant = CALIBRATION_DEFAULT
    from ..weights.linear import save_linear_weights
    from .fit import FitConfig
    from .train import calibrate

    if args.dataset == "type-level" and not args.table:
        raise ValueError("--dataset type-level needs --table (CSV of human means per type and level)")
    config = FitConfig(loss=args.loss, lr=args.lr, max_steps=args.steps, weight_decay=args.weight_decay,
                       val_fraction=args.val_fraction,
                       seed=args.seed)
    if args.dataset == "type-level":
        dataset = generated_set_as_dataset(args.root, args.table)
        data_desc = f"type-level: {args.root} + {args.table}"
    else:
        from ..data.datasets import load_dataset

        dataset = load_dataset(args.dataset, args.root)
        data_desc = f"{args.dataset}: {args.root}"
    result = calibrate(dataset, args.variant, args.loss, init=args.init, folds=args.folds,
                       test_fraction=args.test_fraction, config=config, cache_root=args.cache,
                       device=args.device, seed=args.seed, size=hw(parse_size(args.size)))
    report = result["report"]
    entry = save_linear_weights(args.out, result["weights"], variant=args.variant, data=data_desc, loss=args.loss,
                                notes="invariant-lpips calibrate", extra={"report": _jsonable(report)})
    print(json.dumps({k: report[k] for k in report if k in ("holdout", "kfold", "train")}, indent=1,
                     default=_jsonable))
    print(f"wrote {args.out} (sha256 {entry['sha256'][:16]}...); use InvariantLPIPS(variant={args.variant!r}, "
          f"weights={args.out!r})", file=sys.stderr)
    return 0


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if k != "folds"}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) or isinstance(obj, int) or obj is None or isinstance(obj, str):
        return obj
    try:
        return float(obj)
    except (TypeError, ValueError):
        return str(obj)


class _GeneratedDataset:
    """A generated KADID-layout set whose pairs take their cell's human mean as score."""

    higher_is_better = True

    def __init__(self, records):
        self.records = records


def generated_set_as_dataset(root, table_path):
    from ..data.datasets import PairRecord
    from ..data.generated import read_generated_set
    from ..data.type_level import read_type_level_table

    table = read_type_level_table(table_path)
    pairs = read_generated_set(root, types=sorted({t for t, _ in table}))
    recs = []
    for p in pairs:
        if (p.dist_type, p.level) not in table:
            continue
        recs.append(PairRecord(ref_path=p.ref_path, dist_path=p.dist_path, score=float(table[(p.dist_type, p.level)]),
                               ref_id=p.ref_id, dist_type=f"{p.dist_type:02d}", level=p.level, extra={}))
    if not recs:
        raise ValueError(f"no generated pair of {root} has a cell in {table_path}")
    return _GeneratedDataset(recs)
