"""Training the paper's classifier heads on a frozen VGG-16 trunk.

Datasets are described either by an ImageFolder-style directory (one sub-folder per class,
images anywhere below it) or by a CSV file with ``path,label`` rows (header optional; relative
paths are relative to the CSV's folder). Images are *resized* (not cropped) to ``size x size``
(default 256, bilinear with antialiasing), converted to the trunk's input with
``lpips_scale(2x - 1)``.

Authors' recipe (the defaults here): Adam, lr 1e-3, batch 32, early stopping on validation
accuracy with patience 25, L2 1e-4 on the Dense kernel for ``baseline`` and ``multigap`` (none
for ``finalgap`` / ``gap_flatten``), seed 666. Training stops after ``patience`` epochs without a
strict improvement of validation accuracy (as Keras' ``EarlyStopping``); the weights restored
(and checkpointed) are those of the best validation accuracy, ties broken by the lower
validation loss (our choice: on small validation sets accuracy saturates early, and the first
epoch to reach it is usually under-trained).

Because the trunk is frozen and there is no augmentation, every image's trunk features are
deterministic: they are extracted **once** (GAP of the five pool taps, 1,472 floats per image, from
:func:`invariant_lpips.features.pooled.global_average`, plus Flatten(block5_pool) only when a Flatten
head needs it) and the Dense layer is trained on them, in seconds for the GAP heads. The features
are cached as one ``.pt`` file of tensors per dataset (written with :func:`torch.save`, read back
with ``torch.load(weights_only=True)``) whose name is a hash of the image files' *contents*
(:func:`invariant_lpips.data.io.file_sha256`), their labels, the resize and the trunk's weights
(:func:`invariant_lpips.weights.vgg16.features_sha256`), so a changed file or trunk never reuses a
stale cache. ``stream=True`` skips the cache and runs the trunk on every batch of every epoch (for
Flatten heads on data too large to hold its features).

Why not :class:`invariant_lpips.features.cache.FeatureCache`: the Flatten heads need the un-pooled
block5_pool map (512 x 8 x 8 per image at 256 px), which that cache (pooled statistics only) cannot
hold, and GAP and Flatten come from one trunk pass; the authors' protocol resizes with bilinear
antialiasing, while the FeatureCache resizes files bicubically; and an ImageNet-sized training set
(1.28 M images) wants one dataset-sized blob of the 1,472 GAP floats, not one file per image holding
every statistic of both feature spaces (six times as many floats) kept in memory.

Checkpoints: ``<out>/<head>/head.safetensors`` (Dense weights + a JSON metadata entry describing
head, classes, input size and trunk), rewritten whenever validation accuracy improves, plus
``history.json``. Load with :func:`load_classifier`.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..data.io import IMAGE_EXTENSIONS, file_sha256, load_image
from ..features.pooled import global_average
from ..progress import progress_bar
from ..trunk import POOL_TAPS, TrunkConfig, VGG16Trunk
from ..trunk.config import STATE_DICT_WEIGHTS
from ..weights.vgg16 import features_sha256
from .models import (
    ClassifierHead,
    VGG16Classifier,
    canonical_head,
    normalize_rgb,
    pool5_size,
)

__all__ = [
    "TrainConfig",
    "TrainResult",
    "ImageListDataset",
    "FeatureSet",
    "load_samples",
    "split_samples",
    "trunk_fingerprint",
    "extract_features",
    "features_for_head",
    "train_head_on_features",
    "train_heads",
    "train_classifier",
    "save_head",
    "load_classifier",
    "evaluate_head",
]

CACHE_FORMAT = 1
METADATA_KEY = "invariant_lpips_classifier"
Sample = Tuple[Path, int]


# ============================================================================ datasets


def _sort_labels(labels: Iterable[str]) -> List[str]:
    labels = list(set(labels))
    if labels and all(l.lstrip("-").isdigit() for l in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def load_samples(data: Union[str, Path], classes: Optional[Sequence[str]] = None,
                 check_files: bool = True) -> Tuple[List[Sample], List[str]]:
    """Read a dataset description: ImageFolder directory or ``path,label`` CSV.

    Args:
        data: a directory (sub-folder name = class; images found recursively below each) or a
            ``.csv`` file (columns ``path,label``; a first row ``path,label`` is a header).
        classes: fix the class list (and so the label indices), e.g. those of a checkpoint;
            labels not in it raise ``ValueError``. Default: sorted labels found (numerically when
            all labels are integers).
        check_files: raise ``FileNotFoundError`` naming the first missing files.

    Returns:
        ``(samples, classes)`` with ``samples = [(path, class_index), ...]``.
    """
    data = Path(data)
    pairs: List[Tuple[Path, str]] = []
    if data.is_dir():
        class_dirs = sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs:
            raise FileNotFoundError(f"no class sub-folders in {data} "
                                    f"(expected ImageFolder layout: {data}/<class>/<image>)")
        for d in class_dirs:
            files = sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            pairs += [(p, d.name) for p in files]
        if not pairs:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) below {data}")
    elif data.is_file():
        with open(data, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
            rows = rows[1:]
        for i, r in enumerate(rows):
            if len(r) < 2:
                raise ValueError(f"{data}: row {i + 1} needs 'path,label', got {r}")
            p = Path(r[0].strip())
            pairs.append((p if p.is_absolute() else data.parent / p, r[1].strip()))
        if not pairs:
            raise ValueError(f"no rows in {data}")
    else:
        raise FileNotFoundError(f"dataset not found: {data} (give an ImageFolder directory or a path,label CSV)")
    if check_files:
        missing = [str(p) for p, _ in pairs if not p.is_file()]
        if missing:
            more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
            raise FileNotFoundError(f"image file(s) not found: {', '.join(missing[:3])}{more}")
    if classes is None:
        classes = _sort_labels(l for _, l in pairs)
    classes = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({l for _, l in pairs if l not in index})
    if unknown:
        raise ValueError(f"labels {unknown[:5]} of {data} are not among the classes {classes[:10]}...")
    return [(p, index[l]) for p, l in pairs], list(classes)


def split_samples(samples: Sequence[Sample], val_fraction: float = 0.1, seed: int = 666
                  ) -> Tuple[List[Sample], List[Sample]]:
    """Stratified random split: about ``val_fraction`` of every class (at least one) to validation."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    by_class: Dict[int, List[int]] = {}
    for i, (_, y) in enumerate(samples):
        by_class.setdefault(y, []).append(i)
    val_idx = []
    for y, idx in sorted(by_class.items()):
        if len(idx) < 2:
            continue
        k = min(len(idx) - 1, max(1, int(round(val_fraction * len(idx)))))
        val_idx += list(rng.choice(idx, size=k, replace=False))
    val_set = set(int(i) for i in val_idx)
    return ([s for i, s in enumerate(samples) if i not in val_set],
            [s for i, s in enumerate(samples) if i in val_set])


def resize_image(t: Tensor, size: int) -> Tensor:
    """(1|N, 3, H, W) in [0, 1] -> (., 3, size, size), bilinear with antialiasing (aspect not kept)."""
    if tuple(t.shape[-2:]) == (size, size):
        return t
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


class ImageListDataset(torch.utils.data.Dataset):
    """``(path, label)`` samples -> ``((3, size, size) float tensor in [0, 1], label)``.

    A missing or unreadable file raises ``FileNotFoundError`` / ``ValueError`` naming it.
    """

    def __init__(self, samples: Sequence[Sample], size: int = 256):
        self.samples = list(samples)
        self.size = int(size)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Tuple[Tensor, int]:
        path, label = self.samples[i]
        return resize_image(load_image(path), self.size)[0], int(label)


# ============================================================================ features


def trunk_fingerprint(trunk: VGG16Trunk) -> str:
    """sha256 over the trunk's configuration (:meth:`TrunkConfig.to_dict`: pooling, filter size, padding, taps)
    and its conv weights (:func:`invariant_lpips.weights.vgg16.features_sha256`)."""
    config = {**trunk.config.to_dict(), "weights": features_sha256(trunk.features.state_dict())}
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


@dataclass
class FeatureSet:
    """Trunk features of a dataset: ``gap`` (N, 1472) = GAP(pool1..pool5) concatenated,
    ``flatten`` (N, 512*h*w) = Flatten(pool5) or ``None``, ``labels`` (N,) int64."""

    gap: Tensor
    labels: Tensor
    flatten: Optional[Tensor] = None
    cache_path: Optional[Path] = None
    from_cache: bool = False

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def features_for_head(features: FeatureSet, head: Union[str, ClassifierHead]) -> Tensor:
    """The Dense-layer input of ``head`` from extracted features (same layout as ``head_features``)."""
    name = head.head if isinstance(head, ClassifierHead) else canonical_head(head)
    if name in ("baseline", "gap_flatten") and features.flatten is None:
        raise ValueError(f"head {name!r} needs Flatten(block5_pool) features; extract with flatten=True")
    if name == "finalgap":
        return features.gap[:, -512:]
    if name == "multigap":
        return features.gap
    if name == "baseline":
        return features.flatten
    return torch.cat([features.gap, features.flatten], dim=1)


def _trunk_pool_features(trunk: VGG16Trunk, x: Tensor, flatten: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """GAP(pool1..pool5) concatenated (N, 1472) and, with ``flatten``, Flatten(pool5), from one trunk pass."""
    out = trunk(normalize_rgb(x))
    pm = trunk.phase_multiplier
    gaps = [global_average(out[t], pm.get(t, 1)) for t in POOL_TAPS]
    flat = None
    if flatten:
        if pm.get("pool5", 1) != 1:
            raise ValueError("Flatten heads need a trunk without polyphase pooling")
        flat = out["pool5"].flatten(1)
    return torch.cat(gaps, dim=1), flat


def _cache_key(samples: Sequence[Sample], size: int, trunk: VGG16Trunk, progress: bool) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": CACHE_FORMAT, "size": int(size), "trunk": trunk_fingerprint(trunk),
                         "taps": list(POOL_TAPS)}).encode())
    for path, label in progress_bar(samples, desc="hashing images", unit="img", disable=not progress, leave=False):
        h.update(f"{file_sha256(path)}:{int(label)};".encode())
    return h.hexdigest()


def _load_cache(path: Path, n: int, flatten: bool) -> Optional[Dict[str, Tensor]]:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unreadable / truncated cache: recompute
        return None
    if not isinstance(blob, dict) or "gap" not in blob or "labels" not in blob:
        return None
    if int(blob["labels"].shape[0]) != n or (flatten and blob.get("flatten") is None):
        return None
    return blob


@torch.no_grad()
def extract_features(trunk: VGG16Trunk, samples: Sequence[Sample], size: int = 256, flatten: bool = False,
                     cache_dir: Union[str, Path, None] = None, batch_size: int = 32,
                     device: Union[str, torch.device] = "cpu", num_workers: int = 0, progress: bool = True,
                     flatten_dtype: torch.dtype = torch.float32) -> FeatureSet:
    """Run the frozen trunk once over ``samples`` and return their pooled features.

    With ``cache_dir`` the result is stored as ``<cache_dir>/features-<key>.pt`` (tensors only) where
    ``key`` hashes the file contents, labels, ``size`` and the trunk weights, and reused next time.
    ``flatten_dtype=torch.float16`` halves the memory of Flatten(block5_pool) features.

    This per-dataset blob, not :class:`~invariant_lpips.features.cache.FeatureCache`, because it holds
    the un-pooled Flatten(block5_pool) map of the same pass, the images are resized bilinearly (the
    authors' protocol) and ImageNet-sized sets need 1,472 floats per image, not every statistic in
    one file each (see the module docstring). Hashing and decoding are the core's
    (:func:`~invariant_lpips.data.io.file_sha256`, :func:`~invariant_lpips.data.io.load_image`).
    """
    samples = list(samples)
    if not samples:
        raise ValueError("no samples to extract features from")
    labels = torch.tensor([int(y) for _, y in samples], dtype=torch.int64)
    cache_path = None
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        key = _cache_key(samples, size, trunk, progress)
        cache_path = cache_dir / f"features-{key[:24]}.pt"
        if cache_path.is_file():
            blob = _load_cache(cache_path, len(samples), flatten)
            if blob is not None:
                return FeatureSet(gap=blob["gap"], labels=labels,
                                  flatten=blob.get("flatten") if flatten else None,
                                  cache_path=cache_path, from_cache=True)
    trunk = trunk.to(device)
    loader = torch.utils.data.DataLoader(ImageListDataset(samples, size), batch_size=batch_size,
                                         shuffle=False, num_workers=num_workers)
    gaps, flats = [], []
    for x, _ in progress_bar(loader, desc="trunk features", unit="batch", disable=not progress):
        g, f = _trunk_pool_features(trunk, x.to(device), flatten)
        gaps.append(g.float().cpu())
        if f is not None:
            flats.append(f.to(flatten_dtype).cpu())
    fs = FeatureSet(gap=torch.cat(gaps), labels=labels, flatten=torch.cat(flats) if flatten else None,
                    cache_path=cache_path)
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        blob = {"gap": fs.gap, "labels": labels}
        if fs.flatten is not None:
            blob["flatten"] = fs.flatten
        tmp = cache_path.with_suffix(".tmp")
        torch.save(blob, tmp)
        tmp.replace(cache_path)
    return fs


# ============================================================================ training


@dataclass
class TrainConfig:
    """The authors' recipe (defaults) plus the knobs of this implementation."""

    epochs: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = 25
    seed: int = 666
    l2: Optional[float] = None  # None: per-head default (1e-4 baseline/multigap, 0 otherwise)
    size: int = 256
    val_fraction: float = 0.1  # used only when no validation set is given


@dataclass
class TrainResult:
    head: str
    model: VGG16Classifier
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int
    history: List[dict]
    parameters: Dict[str, int]
    checkpoint: Optional[Path] = None
    seconds: float = 0.0

    def summary(self) -> dict:
        return {"head": self.head, "best_val_accuracy": self.best_val_accuracy, "best_epoch": self.best_epoch,
                "epochs_run": self.epochs_run, "parameters": self.parameters,
                "checkpoint": str(self.checkpoint) if self.checkpoint else None, "seconds": round(self.seconds, 2)}


BatchFn = Callable[[int], Iterable[Tuple[Tensor, Tensor]]]


@torch.no_grad()
def evaluate_head(head: ClassifierHead, batches: Iterable[Tuple[Tensor, Tensor]]) -> Tuple[float, float]:
    """Mean cross-entropy and accuracy of ``head`` over ``(features, labels)`` batches."""
    head.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for feats, y in batches:
        logits = head.forward_features(feats.float())
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        n += int(y.numel())
    if n == 0:
        raise ValueError("empty validation set")
    return loss_sum / n, correct / n


def _fit(head: ClassifierHead, train_batches: BatchFn, val_batches: Callable[[], Iterable], cfg: TrainConfig,
         progress: bool, on_improve: Optional[Callable[[int, float], None]] = None, desc: str = ""
         ) -> Tuple[List[dict], int, float]:
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    best_acc, best_loss, best_epoch, wait = -math.inf, math.inf, 0, 0
    best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
    history: List[dict] = []
    bar = progress_bar(range(1, cfg.epochs + 1), desc=desc or f"train {head.head}", unit="epoch", disable=not progress)
    for epoch in bar:
        head.train()
        loss_sum, correct, n = 0.0, 0, 0
        for feats, y in train_batches(epoch):
            logits = head.forward_features(feats.float())
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            (loss + head.l2_penalty()).backward()
            opt.step()
            loss_sum += float(loss.detach()) * int(y.numel())
            correct += int((logits.detach().argmax(1) == y).sum())
            n += int(y.numel())
        val_loss, val_acc = evaluate_head(head, val_batches())
        history.append({"epoch": epoch, "loss": loss_sum / max(n, 1), "accuracy": correct / max(n, 1),
                        "val_loss": val_loss, "val_accuracy": val_acc})
        improved = val_acc > best_acc
        if improved or (val_acc == best_acc and val_loss < best_loss):
            # restore target: best accuracy, ties broken by the lower validation loss
            best_acc, best_loss, best_epoch = val_acc, val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
            if on_improve is not None:
                on_improve(epoch, val_acc)
        # patience counts epochs without a strict accuracy improvement (Keras EarlyStopping)
        wait = 0 if improved else wait + 1
        bar.set_postfix(loss=f"{loss_sum / max(n, 1):.3f}", val_acc=f"{val_acc:.3f}", best=f"{best_acc:.3f}")
        if wait >= cfg.patience:
            break
    head.load_state_dict(best_state)
    head.eval()
    return history, best_epoch, best_acc


def _tensor_batches(x: Tensor, y: Tensor, batch_size: int, shuffle: bool, seed: int, epoch: int, device
                    ) -> Iterator[Tuple[Tensor, Tensor]]:
    n = int(y.shape[0])
    if shuffle:
        g = torch.Generator().manual_seed(seed * 100003 + epoch)
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    for s in range(0, n, batch_size):
        idx = order[s:s + batch_size]
        yield x[idx].to(device), y[idx].to(device)


def train_head_on_features(head: ClassifierHead, train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor,
                           config: Optional[TrainConfig] = None, device: Union[str, torch.device] = "cpu",
                           progress: bool = True, on_improve: Optional[Callable[[int, float], None]] = None
                           ) -> Tuple[List[dict], int, float]:
    """Train the Dense layer of ``head`` on precomputed ``(N, D)`` features; returns
    ``(history, best_epoch, best_val_accuracy)`` with the best weights restored."""
    cfg = config or TrainConfig()
    if train_x.shape[1] != head.in_features:
        raise ValueError(f"features have {train_x.shape[1]} columns, head {head.head!r} expects {head.in_features}")
    head.to(device)
    return _fit(head,
                lambda ep: _tensor_batches(train_x, train_y, cfg.batch_size, True, cfg.seed, ep, device),
                lambda: _tensor_batches(val_x, val_y, 1024, False, cfg.seed, 0, device),
                cfg, progress, on_improve)


def _set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))


#: how a checkpoint records trunk weights that no file names (TrunkConfig.weights None / a state dict)
_WEIGHTS_SPEC = {None: "random", STATE_DICT_WEIGHTS: "state_dict"}


def _trunk_meta(trunk: VGG16Trunk) -> dict:
    """The checkpoint's record of the trunk: its :class:`TrunkConfig` (``to_dict``), weights and their hash."""
    config = trunk.config
    return {**config.to_dict(), "weights": _WEIGHTS_SPEC.get(config.weights, config.weights),
            "weights_sha256": getattr(trunk.weights_info, "sha256", None)}


def _checkpoint_trunk_config(tmeta: dict) -> TrunkConfig:
    """The :class:`TrunkConfig` a checkpoint's trunk record describes (older records lack filter size and taps)."""
    pooling = tmeta.get("pooling", "max")
    return TrunkConfig(pooling=pooling if isinstance(pooling, str) else tuple(pooling),
                       filter_size=int(tmeta.get("filter_size", 3)), padding_mode=tmeta.get("padding_mode", "zeros"),
                       taps=tuple(tmeta.get("taps", POOL_TAPS)))


def save_head(path: Union[str, Path], model: VGG16Classifier, extra: Optional[dict] = None,
              trunk_meta: Optional[dict] = None) -> Path:
    """Write the Dense layer as safetensors with a JSON metadata entry (head, classes, trunk, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": 1, **model.head.config(), "classes": model.classes,
            "trunk": trunk_meta or _trunk_meta(model.trunk), **(extra or {})}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.head.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    tmp.replace(path)
    return path


def read_head_metadata(path: Union[str, Path]) -> dict:
    """The JSON metadata of a ``head.safetensors`` checkpoint (head, classes, trunk, ...)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classifier checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:
        raise ValueError(f"not a safetensors classifier checkpoint: {path} ({exc})") from None
    if METADATA_KEY not in meta:
        raise ValueError(f"{path} has no '{METADATA_KEY}' metadata: not written by invariant_lpips.classifier")
    return json.loads(meta[METADATA_KEY])


def load_classifier(path: Union[str, Path], weights: Union[str, dict, None] = "from-checkpoint",
                    trunk: Optional[VGG16Trunk] = None, device: Union[str, torch.device] = "cpu"
                    ) -> VGG16Classifier:
    """Rebuild a :class:`VGG16Classifier` from a ``head.safetensors`` checkpoint.

    ``weights='from-checkpoint'`` uses the trunk weights recorded in the checkpoint (``imagenet``
    or a path; ``random`` checkpoints need an explicit ``trunk`` or ``weights``).
    """
    meta = read_head_metadata(path)
    tmeta = meta.get("trunk", {})
    config = _checkpoint_trunk_config(tmeta)
    if trunk is None:
        if weights == "from-checkpoint":
            weights = tmeta.get("weights", "imagenet")
            if weights in ("random", "state_dict"):
                raise ValueError(f"{path} was trained on a {weights} trunk; pass trunk= or weights= explicitly")
        trunk = config.build(weights)
    else:  # any weights (the caller chose them); pooling, filter size, padding and taps as trained
        config.with_(weights=trunk.config.weights).check(trunk, f"the trunk {path} was trained on")
    head = ClassifierHead(meta["head"], meta["num_classes"], input_size=tuple(meta["input_size"]), l2=meta.get("l2"))
    head.load_state_dict(load_file(str(path)))
    model = VGG16Classifier(trunk, head, classes=meta.get("classes"))
    model.meta = meta
    return model.to(device).eval()


def _image_batches(trunk: VGG16Trunk, head_name: str, samples, cfg: TrainConfig, shuffle: bool, epoch: int,
                   device, num_workers: int, flatten: bool) -> Iterator[Tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
    loader = torch.utils.data.DataLoader(ImageListDataset(samples, cfg.size), batch_size=cfg.batch_size,
                                         shuffle=shuffle, generator=g, num_workers=num_workers)
    for x, y in loader:
        with torch.no_grad():
            gap, flat = _trunk_pool_features(trunk, x.to(device), flatten)
        fs = FeatureSet(gap=gap, labels=y, flatten=flat)
        yield features_for_head(fs, head_name), y.to(device)


def train_heads(data: Union[str, Path], heads: Sequence[str] = ("multigap",), out: Union[str, Path, None] = None,
                val_data: Union[str, Path, None] = None, config: Optional[TrainConfig] = None,
                weights: Union[str, dict, None] = "imagenet", trunk: Optional[VGG16Trunk] = None,
                padding_mode: str = "zeros", pooling: Union[str, Sequence[str]] = "max",
                cache_dir: Union[str, Path, None, bool] = True, stream: bool = False,
                device: Union[str, torch.device] = "cpu", num_workers: int = 0, progress: bool = True,
                flatten_dtype: torch.dtype = torch.float32) -> Dict[str, TrainResult]:
    """Train one or more heads on the same frozen trunk (features extracted once for all).

    Args:
        data: training set (ImageFolder dir or ``path,label`` CSV).
        heads: head names (``baseline``, ``finalgap``, ``multigap``, ``gap_flatten``).
        out: output folder; each head writes ``<out>/<head>/head.safetensors`` and ``history.json``.
        val_data: validation set; default: a stratified ``config.val_fraction`` split of ``data``.
        cache_dir: feature-cache folder; ``True`` = ``<out>/cache`` (no cache without ``out``),
            ``None``/``False`` = keep features in memory only.
        stream: run the trunk on every batch of every epoch instead of extracting features once.

    Returns:
        ``{head: TrainResult}``.
    """
    cfg = config or TrainConfig()
    heads = [canonical_head(h) for h in heads]
    if not heads:
        raise ValueError("no heads to train")
    samples, classes = load_samples(data)
    if val_data is not None:
        val_samples, _ = load_samples(val_data, classes=classes)
        train_samples = samples
    else:
        train_samples, val_samples = split_samples(samples, cfg.val_fraction, cfg.seed)
    if not val_samples:
        raise ValueError("the validation split is empty: give --val-data or more images per class")
    if trunk is None:
        trunk = TrunkConfig(pooling=pooling, padding_mode=padding_mode, taps=POOL_TAPS).build(weights)
    trunk = trunk.to(device)
    pool5_size(cfg.size)
    out = Path(out) if out is not None else None
    if cache_dir is True:
        cache_dir = (out / "cache") if out is not None else None
    elif cache_dir is False:
        cache_dir = None
    need_flatten = any(h in ("baseline", "gap_flatten") for h in heads)
    tmeta = _trunk_meta(trunk)

    train_fs = val_fs = None
    if not stream:
        train_fs = extract_features(trunk, train_samples, cfg.size, need_flatten, cache_dir, cfg.batch_size,
                                    device, num_workers, progress, flatten_dtype)
        val_fs = extract_features(trunk, val_samples, cfg.size, need_flatten, cache_dir, cfg.batch_size,
                                  device, num_workers, progress, flatten_dtype)

    results: Dict[str, TrainResult] = {}
    for name in heads:
        t0 = time.time()
        _set_seed(cfg.seed)
        model = VGG16Classifier(trunk, ClassifierHead(name, len(classes), cfg.size, l2=cfg.l2), classes=classes)
        head = model.head.to(device)
        trainable = sum(p.numel() for p in head.parameters())
        params = {"trainable": trainable, "frozen": sum(p.numel() for p in trunk.parameters())}
        ckpt = (out / name / "head.safetensors") if out is not None else None
        extra = {"n_train": len(train_samples), "n_val": len(val_samples), "config": asdict(cfg)}

        def on_improve(epoch, acc, _model=model, _ckpt=ckpt, _extra=extra):
            if _ckpt is not None:
                save_head(_ckpt, _model, {**_extra, "epoch": epoch, "val_accuracy": acc}, tmeta)

        if stream:
            history, best_epoch, best_acc = _fit(
                head,
                lambda ep: _image_batches(trunk, name, train_samples, cfg, True, ep, device, num_workers, need_flatten),
                lambda: _image_batches(trunk, name, val_samples, cfg, False, 0, device, num_workers, need_flatten),
                cfg, progress, on_improve)
        else:
            history, best_epoch, best_acc = train_head_on_features(
                head, features_for_head(train_fs, name), train_fs.labels,
                features_for_head(val_fs, name), val_fs.labels, cfg, device, progress, on_improve)
        res = TrainResult(head=name, model=model, best_val_accuracy=best_acc, best_epoch=best_epoch,
                          epochs_run=len(history), history=history, parameters=params, checkpoint=ckpt,
                          seconds=time.time() - t0)
        if out is not None:
            (out / name).mkdir(parents=True, exist_ok=True)
            save_head(ckpt, model, {**extra, "epoch": best_epoch, "val_accuracy": best_acc}, tmeta)
            with open(out / name / "history.json", "w") as fh:
                json.dump({**res.summary(), "classes": classes, "history": history,
                           "feature_cache": str(train_fs.cache_path) if train_fs and train_fs.cache_path else None},
                          fh, indent=2)
        results[name] = res
    return results


def train_classifier(data: Union[str, Path], head: str = "multigap", **kwargs) -> TrainResult:
    """Train one head; see :func:`train_heads` for the arguments."""
    return train_heads(data, heads=(head,), **kwargs)[canonical_head(head)]
