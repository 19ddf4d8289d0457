"""``invariant-lpips classifier``: the paper's classification study ("online architecture").

Sub-commands::

    invariant-lpips classifier params [--num-classes 160] [--size 256]
    invariant-lpips classifier train --data DIR|CSV [--val-data DIR|CSV] --head multigap[,finalgap,...] --out DIR
    invariant-lpips classifier translation-test --checkpoint OUT/multigap/head.safetensors --data DIR|CSV --out DIR
    invariant-lpips classifier digits-demo --out DIR

Start-up rule of the command line: registering imports no torch; each command imports the study
when it runs.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["register"]


def _floats(text: str):
    return [float(t) for t in str(text).split(",") if t.strip()]


def _cmd_params(args) -> int:
    from .models import HEADS, PAPER_TRAINABLE_PARAMETERS, parameter_table  # deferred: start-up time (torch)

    table = parameter_table(args.num_classes, args.size)
    print(f"{'head':>12}  {'trainable':>10}  {'frozen trunk':>12}  {'total':>10}"
          + ("  paper (256px, K=160)" if (args.num_classes, args.size) == (160, 256) else ""))
    for h in HEADS:
        r = table[h]
        paper = f"  {PAPER_TRAINABLE_PARAMETERS[h]:>10,}" if (args.num_classes, args.size) == (160, 256) else ""
        print(f"{h:>12}  {r['trainable']:>10,}  {r['frozen']:>12,}  {r['total']:>10,}{paper}")
    return 0


def _cmd_train(args) -> int:
    # deferred: start-up time (torch, the trunk)
    import torch

    from .models import HEADS
    from .train import TrainConfig, train_heads

    if args.threads:
        torch.set_num_threads(args.threads)
    heads = [h for h in args.head.split(",") if h.strip()]
    if heads == ["all"]:
        heads = list(HEADS)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                      seed=args.seed, l2=args.l2, size=args.size, val_fraction=args.val_fraction)
    weights = None if args.weights == "random" else args.weights
    cache = False if args.no_cache else (Path(args.cache_dir) if args.cache_dir else True)
    results = train_heads(args.data, heads=heads, out=args.out, val_data=args.val_data, config=cfg,
                          weights=weights, padding_mode=args.padding_mode, pooling=args.pooling,
                          cache_dir=cache, stream=args.stream, device=args.device, num_workers=args.workers,
                          progress=not args.quiet,
                          flatten_dtype=torch.float16 if args.flatten_fp16 else torch.float32)
    summary = {h: r.summary() for h, r in results.items()}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with open(Path(args.out) / "train_summary.json", "w") as fh:
        json.dump(summary, fh, indent=2)
    for h, r in results.items():
        print(f"{h:>12}: best val accuracy {r.best_val_accuracy:.4f} (epoch {r.best_epoch}/{r.epochs_run}), "
              f"trainable {r.parameters['trainable']:,}, checkpoint {r.checkpoint}")
    return 0


def _cmd_translation(args) -> int:
    # deferred: start-up time (torch, torchvision, the trunk)
    import torch

    from .train import load_classifier
    from .translation import (plot_sweeps, plot_translation_heatmaps, rotation_test, scaling_test,
                              translation_test, _write_rows)

    if args.threads:
        torch.set_num_threads(args.threads)
    weights = "from-checkpoint" if args.weights is None else (None if args.weights == "random" else args.weights)
    model = load_classifier(args.checkpoint, weights=weights, device=args.device)
    size = model.head.input_size[0]
    name = model.head.head
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(size=size, batch_size=args.batch_size, device=args.device, progress=not args.quiet,
                  limit=args.limit, name=name)
    res = translation_test(model, args.data, max_shift=args.max_shift, step=args.step, **common)
    report = {"checkpoint": str(args.checkpoint), "translation": res.to_dict()}
    res.write_csv(out / "translation_grid.csv")
    if not args.no_plot:
        plot_translation_heatmaps(res, out / "translation_heatmaps.png", title=f"{name}: mirror-mosaic shifts")
    sweeps = {}
    if args.rotations:
        sweeps["rotation"] = rotation_test(model, args.data, angles=_floats(args.rotations), **common)
    if args.scales:
        sweeps["scaling"] = scaling_test(model, args.data, scales=_floats(args.scales), **common)
    for key, s in sweeps.items():
        report[key] = s.to_dict()
        _write_rows(out / f"{key}.csv", s.rows())
        if not args.no_plot:
            plot_sweeps([s], out / f"{key}.png", title=f"{name}: {key}")
    with open(out / "translation.json", "w") as fh:
        json.dump(report, fh, indent=2)
    print(f"{name}: accuracy at (0,0) {res.accuracy_at_zero:.4f}, mean over shifted {res.mean_accuracy_shifted:.4f}, "
          f"mean relative loss {res.mean_relative_loss:.4f} ({res.loss.size} shifts, {res.n_images} images)")
    for key, s in sweeps.items():
        sm = s.summary()
        print(f"{name} {key}: accuracy at identity {sm['accuracy_at_identity']:.4f}, "
              f"mean relative loss {sm['mean_relative_loss']:.4f}")
    print(f"results in {out}")
    return 0


def _cmd_digits(args) -> int:
    from .digits import DigitsConfig, run_digits_demo  # deferred: start-up time (torch)

    cfg = DigitsConfig(seed=args.seed, max_shift=args.max_shift, grid_step=args.grid_step)
    if args.quick:
        # a short pretraining and a coarse grid; the heads keep the authors' recipe (early stopping with
        # patience 25): they train on cached features, which is cheap, and with a patience of 5 the GAP
        # head stopped while still at chance accuracy
        cfg.pretrain_epochs, cfg.grid_step = 5, max(args.grid_step, 8)
    run_digits_demo(args.out, cfg, progress=not args.quiet, num_threads=args.threads)
    print(f"results in {args.out}")
    return 0


def register(subparsers) -> None:
    """Add ``classifier`` and its sub-commands to the main CLI's subparsers."""
    p = subparsers.add_parser("classifier", help="the paper's classification study: VGG-16 heads, translation test",
                              description="Classification study of Alabau-Bosque et al. (2026): frozen VGG-16 trunk "
                                          "with Flatten / GAP heads, trained and tested for translation robustness.")
    sub = p.add_subparsers(dest="classifier_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    q = sub.add_parser("params", help="parameter counts of the four heads")
    q.add_argument("--num-classes", type=int, default=160, metavar="K",
                   help="number of classes K (default 160, the authors' count)")
    q.add_argument("--size", type=int, default=256, metavar="PX", help="square input side in pixels (default 256)")
    q.set_defaults(func=_cmd_params)

    t = sub.add_parser("train", help="train heads on a frozen VGG-16 (ImageFolder dir or path,label CSV)")
    t.add_argument("--data", required=True, help="training set: ImageFolder directory or path,label CSV")
    t.add_argument("--val-data", help="validation set (default: a stratified --val-fraction split of --data)")
    t.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of every class held out for validation when --val-data is not given (default 0.1)")
    t.add_argument("--head", default="multigap",
                   help="baseline, finalgap, multigap, gap_flatten, a comma list, or 'all' (features shared)")
    t.add_argument("--out", required=True, help="output folder (<out>/<head>/head.safetensors, history.json)")
    t.add_argument("--epochs", type=int, default=200, help="maximum epochs (early stopping usually ends sooner)")
    t.add_argument("--batch-size", type=int, default=32, help="images per training step (default 32)")
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    t.add_argument("--patience", type=int, default=25,
                   help="early stopping: epochs without a validation-accuracy gain (default 25)")
    t.add_argument("--l2", type=float, default=None, help="L2 on the Dense kernel (default: 1e-4 for baseline and "
                                                          "multigap, 0 otherwise)")
    t.add_argument("--seed", type=int, default=666, help="seed of the split, the head's init and the batches (default 666)")
    t.add_argument("--size", type=int, default=256, help="images are resized (not cropped) to size x size")
    t.add_argument("--weights", default="imagenet", help="trunk weights: imagenet, a file, or 'random' (tests)")
    t.add_argument("--padding-mode", default="zeros", choices=["zeros", "circular", "reflect", "replicate"],
                   help="padding of the trunk's 3x3 convolutions (default zeros)")
    t.add_argument("--pooling", default="max", help="trunk down-sampling (max, blurmax, l2, aps, polyphase)")
    t.add_argument("--cache-dir", help="feature cache folder (default <out>/cache)")
    t.add_argument("--no-cache", action="store_true", help="keep features in memory only")
    t.add_argument("--stream", action="store_true", help="run the trunk on every batch of every epoch (no feature "
                                                         "extraction; for Flatten heads on very large data)")
    t.add_argument("--flatten-fp16", action="store_true", help="store Flatten(block5_pool) features as float16")
    t.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    t.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_cmd_train)

    r = sub.add_parser("translation-test", help="the authors' mirror-mosaic translation test of a trained head")
    r.add_argument("--checkpoint", required=True, help="head.safetensors written by 'classifier train'")
    r.add_argument("--data", required=True, help="test set: ImageFolder directory or path,label CSV")
    r.add_argument("--out", required=True,
                   help="output folder (translation.json, translation_grid.csv, heat maps, sweep CSVs and plots)")
    r.add_argument("--max-shift", type=int, default=50, help="largest |dx|, |dy| in pixels (default 50)")
    r.add_argument("--step", type=int, default=10, help="grid step in pixels (1 = the full 101x101 protocol)")
    r.add_argument("--rotations", default="",
                   help="comma list of angles in degrees; write --rotations=-30,-15,0,15,30 (with =)")
    r.add_argument("--scales", default="", help="comma list of zoom factors, e.g. 0.8,0.9,1,1.1,1.25")
    r.add_argument("--limit", type=int, default=None, help="use a seeded random subset of this many test images")
    r.add_argument("--batch-size", type=int, default=32, help="test images per batch (default 32)")
    r.add_argument("--weights", default=None, help="override the trunk weights recorded in the checkpoint")
    r.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    r.add_argument("--no-plot", action="store_true", help="skip the PNG heat maps and sweep plots")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=_cmd_translation)

    d = sub.add_parser("digits-demo", help="CPU demo on scikit-learn's digits: Flatten vs GAP heads under shifts")
    d.add_argument("--out", required=True,
                   help="output folder (results.json, shift_curve.csv, shift_grid.csv, summary.csv, plots)")
    d.add_argument("--max-shift", type=int, default=16, help="largest |dx|, |dy| of the test shifts in pixels (default 16)")
    d.add_argument("--grid-step", type=int, default=4, help="step of the (dx, dy) test grid in pixels (default 4)")
    d.add_argument("--seed", type=int, default=666, help="seed of the split, the trunk and the heads (default 666)")
    d.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy 2-core machine)")
    d.add_argument("--quick", action="store_true", help="a 5-epoch pretraining and a coarse grid (smoke test); the "
                                                        "heads are trained as in the full run")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=_cmd_digits)
