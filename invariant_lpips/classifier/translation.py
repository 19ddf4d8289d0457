"""The authors' translation test (and rotation / scaling sweeps) for trained classifiers.

Translation protocol (Alabau-Bosque et al. 2026): every test image is resized to 256x256,
mirror-padded by its own size on each side (``numpy.pad(..., mode='symmetric')``: a 3x3 mosaic of
mirrored copies) and a 256x256 window is cropped at the centre moved by ``(dx, dy)`` for
``dx, dy`` in ``[-50, 50]``. The window moves by ``(dx, dy)``, so the content appears to move by
``(-dx, -dy)`` (the convention of
:func:`invariant_lpips.distortions.shifts.mirror_mosaic_shift`, which implements the crop). For
each shift the mean cross-entropy ``L(dx, dy)`` and the accuracy over the test set are recorded.

Relative loss (defined here explicitly)::

    RL(s) = (L(s) - L(0)) / L(0)

with ``L(0)`` the loss of the unshifted images; the summary number is the mean of ``RL`` over all
*non-zero* shifts of the grid (:func:`average_relative_loss`). The paper's abstract reports this
average going from 0.09 (baseline) to 0.05 (GAP heads); its exact averaging set is not stated,
so compare numbers computed with the same grid.

Rotation and scaling sweeps use the same mirror mosaic: the 3x3 mosaic is rotated / scaled about
its centre (:func:`torchvision.transforms.functional.rotate` / ``affine``, bilinear) and the
central window is cropped, so no zero corners appear. ``RL`` is taken relative to the identity
(angle 0 / scale 1).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..distortions.shifts import mirror_mosaic_shift
from ..progress import progress_bar
from .models import VGG16Classifier
from .train import ImageListDataset, load_samples

__all__ = [
    "mirror_crop",
    "mirror_rotate",
    "mirror_scale",
    "shift_values",
    "relative_loss",
    "average_relative_loss",
    "TranslationResult",
    "SweepResult",
    "evaluate_transforms",
    "translation_test",
    "rotation_test",
    "scaling_test",
    "plot_translation_heatmaps",
    "plot_sweeps",
]


# ============================================================================ operators


def mirror_crop(x: Tensor, dx: int = 0, dy: int = 0, size: Union[int, Tuple[int, int], None] = None) -> Tensor:
    """Window of ``size`` (default: the image size) at the centre + ``(dx, dy)`` of the 3x3
    symmetric mirror mosaic of ``x`` (..., H, W); equals
    ``np.pad(x, ((H, H), (W, W)), 'symmetric')[H + (H-h)//2 + dy : ..., W + (W-w)//2 + dx : ...]``."""
    return mirror_mosaic_shift(x, dx, dy, size=size)


def _mosaic(x: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    return mirror_mosaic_shift(x, 0, 0, size=(3 * h, 3 * w))


def _centre(x: Tensor, h: int, w: int) -> Tensor:
    H, W = x.shape[-2:]
    t, l = (H - h) // 2, (W - w) // 2
    return x[..., t:t + h, l:l + w]


def mirror_rotate(x: Tensor, angle: float) -> Tensor:
    """Rotate ``x`` (N, C, H, W) by ``angle`` degrees (counter-clockwise) about its centre inside
    its mirror mosaic (bilinear), cropped back to ``H x W``."""
    if float(angle) == 0.0:
        return x.clone()
    h, w = x.shape[-2:]
    return _centre(TF.rotate(_mosaic(x), float(angle), interpolation=InterpolationMode.BILINEAR), h, w)


def mirror_scale(x: Tensor, scale: float) -> Tensor:
    """Zoom ``x`` (N, C, H, W) by ``scale`` about its centre inside its mirror mosaic (bilinear;
    ``scale < 1`` shows mirrored surroundings), cropped back to ``H x W``. Needs ``scale > 1/3``."""
    scale = float(scale)
    if scale <= 1.0 / 3.0:
        raise ValueError(f"scale must be > 1/3 (the mosaic is 3x the image), got {scale}")
    if scale == 1.0:
        return x.clone()
    h, w = x.shape[-2:]
    out = TF.affine(_mosaic(x), angle=0.0, translate=[0, 0], scale=scale, shear=[0.0, 0.0],
                    interpolation=InterpolationMode.BILINEAR)
    return _centre(out, h, w)


def shift_values(max_shift: int = 50, step: int = 1) -> List[int]:
    """Symmetric integer shifts ``-max_shift..max_shift`` with ``step``, always containing 0
    (``max_shift`` itself is included when it is a multiple of ``step``)."""
    max_shift, step = int(max_shift), int(step)
    if max_shift < 0 or step < 1:
        raise ValueError(f"need max_shift >= 0 and step >= 1, got {max_shift}, {step}")
    pos = list(range(step, max_shift + 1, step))
    return [-p for p in reversed(pos)] + [0] + pos


# ============================================================================ relative loss


def relative_loss(loss, reference: float):
    """``RL = (L - L_ref) / L_ref`` (elementwise for arrays)."""
    reference = float(reference)
    if not reference > 0:
        raise ValueError(f"reference loss must be > 0, got {reference}")
    return (np.asarray(loss, dtype=np.float64) - reference) / reference


def average_relative_loss(losses: Dict, zero=0) -> float:
    """Mean of ``RL(s)`` over the non-zero shifts ``s`` of a ``{shift: loss}`` mapping
    (``zero`` is the key of the unshifted loss, e.g. ``0`` or ``(0, 0)``)."""
    if zero not in losses:
        raise ValueError(f"the losses have no unshifted entry {zero!r}")
    others = [v for k, v in losses.items() if k != zero]
    if not others:
        raise ValueError("no non-zero shift to average over")
    return float(np.mean(relative_loss(others, losses[zero])))


# ============================================================================ results


@dataclass
class TranslationResult:
    """Loss / accuracy on a ``(dy, dx)`` grid: ``loss[i, j]`` is at ``dy = dys[i]``, ``dx = dxs[j]``."""

    dxs: List[int]
    dys: List[int]
    loss: np.ndarray
    accuracy: np.ndarray
    n_images: int
    protocol: str = "mirror-mosaic crop"
    name: str = ""

    def _zero(self) -> Tuple[int, int]:
        if 0 not in self.dxs or 0 not in self.dys:
            raise ValueError("the shift grid does not contain (0, 0)")
        return self.dys.index(0), self.dxs.index(0)

    @property
    def loss_at_zero(self) -> float:
        return float(self.loss[self._zero()])

    @property
    def accuracy_at_zero(self) -> float:
        return float(self.accuracy[self._zero()])

    @property
    def relative_loss(self) -> np.ndarray:
        """``RL(dx, dy) = (L(dx, dy) - L(0, 0)) / L(0, 0)`` on the grid."""
        return relative_loss(self.loss, self.loss_at_zero)

    def _nonzero_mask(self) -> np.ndarray:
        mask = np.ones_like(self.loss, dtype=bool)
        mask[self._zero()] = False
        return mask

    @property
    def mean_relative_loss(self) -> float:
        """Mean RL over the non-zero shifts of the grid."""
        return float(self.relative_loss[self._nonzero_mask()].mean())

    @property
    def mean_accuracy_shifted(self) -> float:
        return float(self.accuracy[self._nonzero_mask()].mean())

    @property
    def min_accuracy(self) -> float:
        return float(self.accuracy.min())

    def summary(self) -> dict:
        return {"name": self.name, "protocol": self.protocol, "n_images": self.n_images,
                "n_shifts": int(self.loss.size), "shift_range": [min(self.dxs), max(self.dxs)],
                "loss_at_zero": self.loss_at_zero, "accuracy_at_zero": self.accuracy_at_zero,
                "mean_accuracy_shifted": self.mean_accuracy_shifted, "min_accuracy": self.min_accuracy,
                "mean_relative_loss": self.mean_relative_loss,
                "max_relative_loss": float(self.relative_loss.max())}

    def to_dict(self) -> dict:
        return {**self.summary(), "dxs": list(self.dxs), "dys": list(self.dys),
                "loss": self.loss.tolist(), "accuracy": self.accuracy.tolist(),
                "relative_loss": self.relative_loss.tolist()}

    def rows(self) -> List[dict]:
        rl = self.relative_loss
        return [{"name": self.name, "dx": dx, "dy": dy, "loss": float(self.loss[i, j]),
                 "accuracy": float(self.accuracy[i, j]), "relative_loss": float(rl[i, j])}
                for i, dy in enumerate(self.dys) for j, dx in enumerate(self.dxs)]

    def write_csv(self, path: Union[str, Path]) -> Path:
        return _write_rows(path, self.rows())


@dataclass
class SweepResult:
    """Loss / accuracy along one transformation parameter (shift along one axis, angle, scale)."""

    parameter: str
    values: List[float]
    loss: np.ndarray
    accuracy: np.ndarray
    n_images: int
    identity: float = 0.0
    name: str = ""

    @property
    def _zero(self) -> int:
        if self.identity not in self.values:
            raise ValueError(f"the sweep does not contain the identity {self.parameter}={self.identity}")
        return list(self.values).index(self.identity)

    @property
    def relative_loss(self) -> np.ndarray:
        return relative_loss(self.loss, float(self.loss[self._zero]))

    @property
    def mean_relative_loss(self) -> float:
        rl = np.delete(self.relative_loss, self._zero)
        return float(rl.mean()) if rl.size else 0.0

    def summary(self) -> dict:
        acc_others = np.delete(self.accuracy, self._zero)
        return {"name": self.name, "parameter": self.parameter, "n_images": self.n_images,
                "values": list(self.values), "loss_at_identity": float(self.loss[self._zero]),
                "accuracy_at_identity": float(self.accuracy[self._zero]),
                "mean_accuracy_transformed": float(acc_others.mean()) if acc_others.size else float("nan"),
                "mean_relative_loss": self.mean_relative_loss}

    def to_dict(self) -> dict:
        return {**self.summary(), "loss": self.loss.tolist(), "accuracy": self.accuracy.tolist(),
                "relative_loss": self.relative_loss.tolist()}

    def rows(self) -> List[dict]:
        rl = self.relative_loss
        return [{"name": self.name, self.parameter: v, "loss": float(self.loss[i]),
                 "accuracy": float(self.accuracy[i]), "relative_loss": float(rl[i])}
                for i, v in enumerate(self.values)]


def _write_rows(path, rows: List[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        if rows:
            w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)
    return path


# ============================================================================ evaluation


def _as_logit_fn(model) -> Callable[[Tensor], Tensor]:
    """A callable ``x in [0, 1] -> logits``: VGG16Classifier gets ``normalize=True``."""
    if isinstance(model, VGG16Classifier):
        return lambda x: model(x, normalize=True)
    return model


def _as_batches(data, batch_size: int, size: Optional[int], classes, limit: Optional[int]
                ) -> Tuple[Iterable[Tuple[Tensor, Tensor]], int]:
    """Accept a dataset path, a torch Dataset of (image, label) or an (images, labels) tensor pair."""
    if isinstance(data, (str, Path)):
        samples, _ = load_samples(data, classes=classes)
        if limit:
            rng = np.random.default_rng(666)
            idx = sorted(rng.choice(len(samples), size=min(limit, len(samples)), replace=False))
            samples = [samples[i] for i in idx]
        data = ImageListDataset(samples, size or 256)
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Tensor):
        x, y = data
        if limit:
            x, y = x[:limit], y[:limit]
        n = int(x.shape[0])
        return [(x[s:s + batch_size], y[s:s + batch_size]) for s in range(0, n, batch_size)], n
    if isinstance(data, torch.utils.data.Dataset):
        if limit and len(data) > limit:
            data = torch.utils.data.Subset(data, list(range(limit)))
        return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False), len(data)
    raise TypeError(f"unsupported test data {type(data).__name__}: give a path, a Dataset or (images, labels)")


@torch.no_grad()
def evaluate_transforms(model, data, transforms: Sequence[Callable[[Tensor], Tensor]], batch_size: int = 32,
                        device: Union[str, torch.device] = "cpu", progress: bool = True, size: Optional[int] = None,
                        classes=None, limit: Optional[int] = None, desc: str = "transforms"
                        ) -> Tuple[np.ndarray, np.ndarray, int]:
    """Mean cross-entropy and accuracy of ``model`` on ``t(x)`` for every transform ``t``.

    Images are loaded once per batch and every transform applied to it (batches outer, transforms
    inner). ``model`` maps RGB in [0, 1] to logits (a :class:`VGG16Classifier` is wrapped).
    Returns ``(loss[T], accuracy[T], n_images)``.
    """
    fn = _as_logit_fn(model)
    if hasattr(model, "eval"):
        model.eval()
    batches, n = _as_batches(data, batch_size, size, classes, limit)
    loss_sum = np.zeros(len(transforms))
    correct = np.zeros(len(transforms))
    seen = 0
    bar = progress_bar(total=n * len(transforms), desc=desc, unit="img", disable=not progress)
    for x, y in batches:
        x, y = x.to(device), torch.as_tensor(y).to(device)
        for k, t in enumerate(transforms):
            logits = fn(t(x))
            loss_sum[k] += float(F.cross_entropy(logits, y, reduction="sum"))
            correct[k] += int((logits.argmax(1) == y).sum())
        seen += int(y.numel())
        bar.update(int(y.numel()) * len(transforms))
    bar.close()
    if seen == 0:
        raise ValueError("no test images")
    return loss_sum / seen, correct / seen, seen


def translation_test(model, data, max_shift: int = 50, step: int = 10, dxs: Optional[Sequence[int]] = None,
                     dys: Optional[Sequence[int]] = None, size: int = 256, batch_size: int = 32,
                     device: Union[str, torch.device] = "cpu", progress: bool = True, limit: Optional[int] = None,
                     name: str = "") -> TranslationResult:
    """The authors' translation test on a ``(dx, dy)`` grid (default ``-50..50`` step 10; step 1 is
    the full protocol). ``data``: dataset path (labels mapped through ``model.classes``), a
    Dataset of ``(image in [0,1], label)`` or an ``(images, labels)`` pair, images already
    ``size x size``."""
    dxs = list(dxs) if dxs is not None else shift_values(max_shift, step)
    dys = list(dys) if dys is not None else shift_values(max_shift, step)
    grid = [(dx, dy) for dy in dys for dx in dxs]
    transforms = [lambda x, dx=dx, dy=dy: mirror_crop(x, dx, dy) for dx, dy in grid]
    loss, acc, n = evaluate_transforms(model, data, transforms, batch_size, device, progress, size,
                                       getattr(model, "classes", None), limit, desc="translation test")
    return TranslationResult(dxs=dxs, dys=dys, loss=loss.reshape(len(dys), len(dxs)),
                             accuracy=acc.reshape(len(dys), len(dxs)), n_images=n, name=name)


def _sweep_test(model, data, parameter: str, values: Sequence[float], transform, identity: float, size: int,
                batch_size: int, device, progress: bool, limit: Optional[int], name: str) -> SweepResult:
    """One-parameter sweep: ``transform(x, value)`` for each value, evaluated on ``data``."""
    values = [float(v) for v in values]
    loss, acc, n = evaluate_transforms(model, data, [lambda x, v=v: transform(x, v) for v in values],
                                       batch_size, device, progress, size, getattr(model, "classes", None),
                                       limit, desc=f"{parameter} test")
    return SweepResult(parameter, values, loss, acc, n, identity=identity, name=name)


def rotation_test(model, data, angles: Sequence[float] = (-30, -20, -10, -5, 0, 5, 10, 20, 30), size: int = 256,
                  batch_size: int = 32, device="cpu", progress: bool = True, limit: Optional[int] = None,
                  name: str = "") -> SweepResult:
    """Rotation sweep (degrees) inside the mirror mosaic."""
    return _sweep_test(model, data, "angle", angles, mirror_rotate, 0.0, size, batch_size, device, progress,
                       limit, name)


def scaling_test(model, data, scales: Sequence[float] = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5), size: int = 256,
                 batch_size: int = 32, device="cpu", progress: bool = True, limit: Optional[int] = None,
                 name: str = "") -> SweepResult:
    """Scaling sweep (zoom factor) inside the mirror mosaic."""
    return _sweep_test(model, data, "scale", scales, mirror_scale, 1.0, size, batch_size, device, progress,
                       limit, name)


# ============================================================================ plots


def _plt():
    import matplotlib  # optional dependency (the plots extra): only the plot functions need it

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save_figure(plt, fig, path: Union[str, Path], title: str = "") -> Path:
    """Title, tight layout, write ``path`` (folders created), close the figure."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_translation_heatmaps(results: Union[TranslationResult, Sequence[TranslationResult]],
                              path: Union[str, Path], title: str = "") -> Path:
    """Accuracy and relative-loss heat maps over ``(dx, dy)``, one row per result
    (matplotlib imported lazily)."""
    plt = _plt()
    results = [results] if isinstance(results, TranslationResult) else list(results)
    fig, axes = plt.subplots(len(results), 2, figsize=(9, 3.6 * len(results)), squeeze=False)
    for row, r in zip(axes, results):
        ext = [min(r.dxs) - 0.5, max(r.dxs) + 0.5, max(r.dys) + 0.5, min(r.dys) - 0.5]
        if len(r.dxs) > 1:
            sx = (max(r.dxs) - min(r.dxs)) / (len(r.dxs) - 1) / 2
            sy = (max(r.dys) - min(r.dys)) / max(len(r.dys) - 1, 1) / 2
            ext = [min(r.dxs) - sx, max(r.dxs) + sx, max(r.dys) + sy, min(r.dys) - sy]
        im = row[0].imshow(r.accuracy, extent=ext, vmin=0, vmax=1, cmap="viridis", aspect="equal")
        row[0].set_title(f"{r.name} accuracy (centre {r.accuracy_at_zero:.3f})", fontsize=9)
        fig.colorbar(im, ax=row[0], fraction=0.046)
        rl = r.relative_loss  # own colour scale per row: RL spans orders of magnitude between heads
        im = row[1].imshow(rl, extent=ext, vmin=min(float(rl.min()), 0.0), vmax=max(float(rl.max()), 1e-6),
                           cmap="magma", aspect="equal")
        row[1].set_title(f"{r.name} relative loss (mean {r.mean_relative_loss:.3g})", fontsize=9)
        fig.colorbar(im, ax=row[1], fraction=0.046)
        for ax in row:
            ax.set_xlabel("dx (px)")
            ax.set_ylabel("dy (px)")
    return _save_figure(plt, fig, path, title)


def plot_sweeps(sweeps: Sequence[SweepResult], path: Union[str, Path], title: str = "",
                log_relative_loss: bool = False) -> Path:
    """Accuracy and relative-loss curves of 1-D sweeps (one line per result)."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for s in sweeps:
        a1.plot(s.values, s.accuracy, marker=".", label=s.name)
        a2.plot(s.values, s.relative_loss, marker=".", label=f"{s.name} (mean {s.mean_relative_loss:.3g})")
    param = sweeps[0].parameter if sweeps else ""
    a1.set_xlabel(param)
    a1.set_ylabel("accuracy")
    a1.set_ylim(0, 1.02)
    a2.set_xlabel(param)
    a2.set_ylabel("relative loss (L - L0) / L0")
    if log_relative_loss:
        a2.set_yscale("symlog", linthresh=0.1)
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save_figure(plt, fig, path, title)
