"""A CPU-sized demonstration of the classification study on real data: scikit-learn's digits.

Protocol (a small-scale analogue of the paper's frozen-VGG / ImageNet experiments and of its MNIST
"digit on a larger canvas" protocol):

1. Data: the 1,797 8x8 handwritten digits bundled with scikit-learn (values 0..16 -> [0, 1]),
   upscaled bilinearly to ``digit_size`` (default 16x16) and pasted at the centre of a
   ``canvas x canvas`` (default 48x48) zero image. Stratified split (seed 666): 60 % train,
   15 % validation, 25 % test.
2. Pretraining (the analogue of VGG-16's ImageNet training): a small conv trunk
   (3x [conv3x3 + ReLU + MaxPool2d(2)], channels 16-32-64, zero padding) is trained with a
   ``pretrain_head`` (default ``gap_flatten``) on training digits at random positions
   (``|dx|, |dy| <= pretrain_max_shift``, default ``max_shift``; as ImageNet objects appear
   anywhere), then **frozen**; the pretraining head is discarded.
3. The paper's four heads are trained on the frozen trunk from cached features of the *centred*
   training digits only, with the authors' recipe (Adam 1e-3, batch 32, early stopping on
   validation accuracy with patience 25, L2 1e-4 on the Dense kernel of ``baseline`` and
   ``multigap``): ``baseline`` = Flatten(last pool), ``finalgap`` = GAP(last pool),
   ``multigap`` = concatenated GAP of the three pool outputs, ``gap_flatten`` = both.
4. Test: the test digits are pasted at the centre moved by ``(dx, dy)`` (``dx`` > 0 moves the
   digit right, ``dy`` > 0 down; the rest of the canvas stays zero), for a horizontal sweep
   ``dx in [-max_shift, max_shift]`` (step 1, ``dy = 0``) and a 2-D grid (step ``grid_step``).
   Per shift: mean cross-entropy ``L`` and accuracy; ``RL(s) = (L(s) - L(0)) / L(0)``, averaged
   over the non-zero shifts.

The trunk is shared by the four heads, so each shifted test set passes through it once. Everything
is seeded (666); the run takes one to two minutes on two (shared) CPU cores with one torch thread.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..features.pooled import global_average
from ..progress import progress_bar
from .models import DEFAULT_L2, HEADS, DenseHead, canonical_head
from .train import TrainConfig, _fit, _tensor_batches, train_head_on_features
from .translation import (SweepResult, TranslationResult, _write_rows, plot_sweeps, plot_translation_heatmaps,
                          shift_values)

__all__ = [
    "DigitsConfig",
    "load_digits_data",
    "upscale_digits",
    "place_on_canvas",
    "SmallConvTrunk",
    "DigitsHead",
    "run_digits_demo",
]


@dataclass
class DigitsConfig:
    digit_size: int = 16
    canvas: int = 48
    channels: Tuple[int, ...] = (16, 32, 64)
    max_shift: int = 16
    grid_step: int = 4
    pretrain_max_shift: Optional[int] = None  # random shifts while pretraining the trunk; None = max_shift
    pretrain_head: str = "gap_flatten"  # head used while pretraining the trunk (then discarded)
    pretrain_epochs: int = 40
    pretrain_patience: int = 8
    head_epochs: int = 200
    head_patience: int = 25
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 666
    test_fraction: float = 0.25
    val_fraction: float = 0.15
    heads: Tuple[str, ...] = HEADS


# ============================================================================ data


def load_digits_data() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: ``(images (1797, 8, 8) float32 in [0, 1], labels (1797,) int64)``."""
    try:  # optional dependency (the classifier extra)
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise RuntimeError("the digits demo needs scikit-learn: pip install 'invariant-lpips[classifier]'") from exc
    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def upscale_digits(images: Union[np.ndarray, Tensor], size: int) -> Tensor:
    """(N, 8, 8) -> (N, 1, size, size), bilinear, clamped to [0, 1]."""
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.dim() == 3:
        x = x[:, None]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def place_on_canvas(digits: Tensor, canvas: int, dx: int = 0, dy: int = 0) -> Tensor:
    """Paste (N, C, s, s) digits into zero (N, C, canvas, canvas) images at the centre moved by
    ``(dx, dy)`` (the digit's top-left corner is ``((canvas - s)//2 + dy, (canvas - s)//2 + dx)``;
    positive ``dx`` moves it right). The digit must stay inside the canvas."""
    n, c, h, w = digits.shape
    top, left = (canvas - h) // 2 + int(dy), (canvas - w) // 2 + int(dx)
    if top < 0 or left < 0 or top + h > canvas or left + w > canvas:
        raise ValueError(f"shift (dx={dx}, dy={dy}) moves the {h}x{w} digit out of the {canvas}x{canvas} canvas")
    out = digits.new_zeros(n, c, canvas, canvas)
    out[:, :, top:top + h, left:left + w] = digits
    return out


# ============================================================================ models


class SmallConvTrunk(nn.Module):
    """``[conv3x3 (zero padding) + ReLU + MaxPool2d(2)] x len(channels)``; returns the pool outputs."""

    def __init__(self, channels: Sequence[int] = (16, 32, 64), in_channels: int = 1):
        super().__init__()
        blocks, cin = [], in_channels
        for c in channels:
            blocks.append(nn.Sequential(nn.Conv2d(cin, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)))
            cin = c
        self.blocks = nn.ModuleList(blocks)
        self.channels = tuple(channels)

    def forward(self, x: Tensor) -> List[Tensor]:
        outs = []
        for b in self.blocks:
            x = b(x)
            outs.append(x)
        return outs


class DigitsHead(DenseHead):
    """The paper's heads on :class:`SmallConvTrunk` pool outputs (same interface as
    :class:`invariant_lpips.classifier.models.ClassifierHead`)."""

    def __init__(self, head: str, channels: Sequence[int], last_hw: Tuple[int, int], num_classes: int = 10,
                 l2: Optional[float] = None):
        super().__init__()
        self.head = canonical_head(head)
        self.channels = tuple(channels)
        self.flatten_features = self.channels[-1] * last_hw[0] * last_hw[1]
        gap_all = sum(self.channels)
        self.in_features = {"baseline": self.flatten_features, "finalgap": self.channels[-1], "multigap": gap_all,
                            "gap_flatten": gap_all + self.flatten_features}[self.head]
        self.l2 = DEFAULT_L2[self.head] if l2 is None else float(l2)
        self.num_classes = num_classes
        self.fc = nn.Linear(self.in_features, num_classes)

    def head_features(self, pools: Sequence[Tensor]) -> Tensor:
        gaps = [global_average(p) for p in pools]
        if self.head == "finalgap":
            return gaps[-1]
        if self.head == "multigap":
            return torch.cat(gaps, 1)
        if self.head == "baseline":
            return pools[-1].flatten(1)
        return torch.cat(gaps + [pools[-1].flatten(1)], 1)

    def forward(self, pools: Sequence[Tensor]) -> Tensor:
        return self.fc(self.head_features(pools))


def _features(trunk: SmallConvTrunk, x: Tensor, batch: int = 512) -> Tuple[Tensor, Tensor]:
    """(GAP of every pool concatenated, Flatten(last pool)) for a tensor of images."""
    gaps, flats = [], []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            pools = trunk(x[s:s + batch])
            gaps.append(torch.cat([global_average(p) for p in pools], 1))
            flats.append(pools[-1].flatten(1))
    return torch.cat(gaps), torch.cat(flats)


def _head_input(head: DigitsHead, gap: Tensor, flat: Tensor) -> Tensor:
    if head.head == "finalgap":
        return gap[:, -head.channels[-1]:]
    if head.head == "multigap":
        return gap
    if head.head == "baseline":
        return flat
    return torch.cat([gap, flat], 1)


# ============================================================================ the demo


def _random_placement(digits: Tensor, canvas: int, max_shift: int, gen: torch.Generator) -> Tensor:
    """Each digit pasted at the centre moved by its own uniform random ``(dx, dy)`` in ``[-max_shift, max_shift]``."""
    if max_shift <= 0:
        return place_on_canvas(digits, canvas)
    shifts = torch.randint(-max_shift, max_shift + 1, (digits.shape[0], 2), generator=gen)
    return torch.cat([place_on_canvas(digits[i:i + 1], canvas, int(dx), int(dy)) for i, (dx, dy) in enumerate(shifts)])


def _augmented_batches(digits: Tensor, labels: Tensor, canvas: int, max_shift: int, batch_size: int, seed: int,
                       epoch: int):
    gen = torch.Generator().manual_seed(seed * 7919 + epoch)
    order = torch.randperm(digits.shape[0], generator=gen)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        yield _random_placement(digits[idx], canvas, max_shift, gen), labels[idx]


def _split(labels: np.ndarray, cfg: DigitsConfig) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split  # optional dependency (the classifier extra)

    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=cfg.test_fraction, stratify=labels, random_state=cfg.seed)
    val_share = cfg.val_fraction / (1 - cfg.test_fraction)
    train, val = train_test_split(rest, test_size=val_share, stratify=labels[rest], random_state=cfg.seed)
    return np.sort(train), np.sort(val), np.sort(test)


class _PretrainModel(nn.Module):
    def __init__(self, trunk: SmallConvTrunk, head: DigitsHead):
        super().__init__()
        self.trunk, self.head_module = trunk, head
        self.head = "pretrain"
        self.l2 = head.l2

    def forward_features(self, x: Tensor) -> Tensor:
        return self.head_module(self.trunk(x))

    def l2_penalty(self) -> Tensor:
        return self.head_module.l2_penalty()


@torch.no_grad()
def _shift_eval(trunk: SmallConvTrunk, heads: Dict[str, DigitsHead], digits: Tensor, labels: Tensor, canvas: int,
                shifts: Sequence[Tuple[int, int]], progress: bool, desc: str
                ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Loss and accuracy of every head at every (dx, dy) (trunk run once per shift, shared)."""
    out = {k: (np.zeros(len(shifts)), np.zeros(len(shifts))) for k in heads}
    for i, (dx, dy) in enumerate(progress_bar(shifts, desc=desc, unit="shift", disable=not progress)):
        gap, flat = _features(trunk, place_on_canvas(digits, canvas, dx, dy))
        for name, h in heads.items():
            logits = h.forward_features(_head_input(h, gap, flat))
            out[name][0][i] = float(F.cross_entropy(logits, labels))
            out[name][1][i] = float((logits.argmax(1) == labels).float().mean())
    return out


def run_digits_demo(out: Union[str, Path, None] = None, config: Optional[DigitsConfig] = None, progress: bool = True,
                    plot: bool = True, verbose: bool = True, num_threads: Optional[int] = None) -> dict:
    """Run the digits study; write ``results.json``, ``shift_curve.csv``, ``shift_grid.csv``,
    ``digits_shift_curves.png`` and ``digits_heatmaps.png`` into ``out`` (if given).

    Returns the results dictionary (also what ``results.json`` holds).
    """
    cfg = config or DigitsConfig()
    if num_threads:
        torch.set_num_threads(int(num_threads))
    t_start = time.time()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    images, labels = load_digits_data()
    tr, va, te = _split(labels, cfg)
    digits = upscale_digits(images, cfg.digit_size)
    y = torch.from_numpy(labels)
    x_centred = place_on_canvas(digits, cfg.canvas)
    last = cfg.canvas
    for _ in cfg.channels:
        last //= 2
    last_hw = (last, last)

    # -- 1. pretraining of the trunk with a Flatten head (the "ImageNet" analogue) ----------------
    trunk = SmallConvTrunk(cfg.channels)
    pre = _PretrainModel(trunk, DigitsHead(cfg.pretrain_head, cfg.channels, last_hw, 10, l2=0.0))
    pcfg = TrainConfig(epochs=cfg.pretrain_epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                       patience=cfg.pretrain_patience, seed=cfg.seed)
    t0 = time.time()
    pmax = cfg.max_shift if cfg.pretrain_max_shift is None else int(cfg.pretrain_max_shift)
    x_val_pre = _random_placement(digits[va], cfg.canvas, pmax, torch.Generator().manual_seed(cfg.seed))
    pre_hist, pre_best_epoch, pre_best = _fit(
        pre, lambda ep: _augmented_batches(digits[tr], y[tr], cfg.canvas, pmax, cfg.batch_size, cfg.seed, ep),
        lambda: _tensor_batches(x_val_pre, y[va], 512, False, cfg.seed, 0, "cpu"), pcfg, progress,
        desc="pretrain trunk")
    pretrain_s = time.time() - t0
    trunk.eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    trunk_params = sum(p.numel() for p in trunk.parameters())

    # -- 2. the four heads on the frozen trunk, from cached features --------------------------------
    gap_tr, flat_tr = _features(trunk, x_centred[tr])
    gap_va, flat_va = _features(trunk, x_centred[va])
    hcfg = TrainConfig(epochs=cfg.head_epochs, batch_size=cfg.batch_size, lr=cfg.lr, patience=cfg.head_patience,
                       seed=cfg.seed)
    heads: Dict[str, DigitsHead] = {}
    head_info: Dict[str, dict] = {}
    for name in cfg.heads:
        name = canonical_head(name)
        torch.manual_seed(cfg.seed)
        h = DigitsHead(name, cfg.channels, last_hw, 10)
        t0 = time.time()
        hist, best_epoch, best = train_head_on_features(h, _head_input(h, gap_tr, flat_tr), y[tr],
                                                        _head_input(h, gap_va, flat_va), y[va], hcfg,
                                                        progress=progress)
        heads[name] = h.eval()
        head_info[name] = {"trainable_parameters": sum(p.numel() for p in h.parameters()),
                           "in_features": h.in_features, "l2": h.l2, "best_val_accuracy": best,
                           "best_epoch": best_epoch, "epochs_run": len(hist),
                           "train_seconds": round(time.time() - t0, 2)}

    # -- 3. shifted test -------------------------------------------------------------------------------
    t0 = time.time()
    d_te, y_te = digits[te], y[te]
    line = shift_values(cfg.max_shift, 1)
    curve = _shift_eval(trunk, heads, d_te, y_te, cfg.canvas, [(dx, 0) for dx in line], progress, "dx sweep")
    grid_vals = shift_values(cfg.max_shift, cfg.grid_step)
    grid_shifts = [(dx, dy) for dy in grid_vals for dx in grid_vals]
    grid = _shift_eval(trunk, heads, d_te, y_te, cfg.canvas, grid_shifts, progress, "dx,dy grid")
    eval_s = time.time() - t0

    sweeps = [SweepResult("dx", [float(v) for v in line], curve[n][0], curve[n][1], len(te), identity=0.0, name=n)
              for n in heads]
    grids = [TranslationResult(grid_vals, grid_vals, grid[n][0].reshape(len(grid_vals), -1),
                               grid[n][1].reshape(len(grid_vals), -1), len(te), protocol="zero-canvas placement",
                               name=n) for n in heads]
    results = {
        "description": "sklearn digits; small conv trunk pretrained on randomly placed digits, then frozen; "
                       "four heads trained on centred digits; tested with the digit moved on a zero canvas",
        "config": {**asdict(cfg), "channels": list(cfg.channels), "heads": list(cfg.heads)},
        "split": {"train": len(tr), "val": len(va), "test": len(te)},
        "trunk": {"parameters": trunk_params, "pretrain_head": cfg.pretrain_head, "pretrain_max_shift": pmax,
                  "pretrain_best_val_accuracy": pre_best,
                  "pretrain_epochs_run": len(pre_hist), "pretrain_seconds": round(pretrain_s, 2)},
        "relative_loss_definition": "RL(s) = (L(s) - L(0)) / L(0); mean over the non-zero shifts",
        "heads": {},
        "seconds": {"evaluation": round(eval_s, 2)},
    }
    for s, g in zip(sweeps, grids):
        results["heads"][s.name] = {
            **head_info[s.name],
            "test_accuracy_centred": float(s.accuracy[s._zero]),
            "test_loss_centred": float(s.loss[s._zero]),
            "dx_sweep": {"mean_accuracy_shifted": s.summary()["mean_accuracy_transformed"],
                         "min_accuracy": float(s.accuracy.min()), "mean_relative_loss": s.mean_relative_loss,
                         "accuracy": s.accuracy.tolist(), "loss": s.loss.tolist(),
                         "relative_loss": s.relative_loss.tolist()},
            "grid": {"mean_accuracy_shifted": g.mean_accuracy_shifted, "min_accuracy": g.min_accuracy,
                     "mean_relative_loss": g.mean_relative_loss},
        }
    results["dx_values"] = line
    results["grid_values"] = grid_vals
    results["seconds"]["total"] = round(time.time() - t_start, 2)

    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        _write_rows(out / "shift_curve.csv", [r for s in sweeps for r in s.rows()])
        _write_rows(out / "shift_grid.csv", [r for g in grids for r in g.rows()])
        with open(out / "summary.csv", "w") as fh:
            fh.write(format_table(results, csv=True))
        if plot:
            plot_sweeps(sweeps, out / "digits_shift_curves.png", log_relative_loss=True,
                        title=f"digits {cfg.digit_size}px on {cfg.canvas}x{cfg.canvas}: horizontal shift (dy = 0)")
            plot_translation_heatmaps(grids, out / "digits_heatmaps.png",
                                      title=f"digits: (dx, dy) grid, step {cfg.grid_step}")
            results["plots"] = ["digits_shift_curves.png", "digits_heatmaps.png"]
        with open(out / "results.json", "w") as fh:
            json.dump(results, fh, indent=2)
    if verbose:
        print(format_table(results))
    return results


def format_table(results: dict, csv: bool = False) -> str:
    """A small text (or CSV) table of the digits results."""
    cols = ["head", "trainable", "acc@0", "acc dx (mean)", "acc dx (min)", "RL dx (mean)", "acc grid (mean)",
            "RL grid (mean)"]
    rows = []
    for name, r in results["heads"].items():
        rows.append([name, str(r["trainable_parameters"]), f"{r['test_accuracy_centred']:.4f}",
                     f"{r['dx_sweep']['mean_accuracy_shifted']:.4f}", f"{r['dx_sweep']['min_accuracy']:.4f}",
                     f"{r['dx_sweep']['mean_relative_loss']:.3f}", f"{r['grid']['mean_accuracy_shifted']:.4f}",
                     f"{r['grid']['mean_relative_loss']:.3f}"])
    if csv:
        return "\n".join(",".join(x) for x in [cols] + rows) + "\n"
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    lines = [fmt.format(*cols), fmt.format(*["-" * w for w in widths])] + [fmt.format(*r) for r in rows]
    lines += ["", "acc@0: test accuracy on centred digits; acc dx: accuracy over the horizontal shifts (mean, worst); "
                  "acc grid: over the (dx, dy) grid;",
              "RL: relative loss (L(shift) - L(0)) / L(0), the growth of the test cross-entropy under the shift, "
              "mean over the non-zero shifts (0 = shift-proof; 1 = the loss doubles)."]
    return "\n".join(lines)
