"""VGG-16 classifiers of the paper's "online architecture" study (frozen trunk + trained head).

The four heads of Alabau-Bosque et al. (2026), all on top of the frozen ImageNet VGG-16
convolutional trunk (:class:`invariant_lpips.trunk.VGG16Trunk`, 14,714,688 parameters):

==============  =================================================  ==========================
head            Dense layer input                                  trainable (256x256, K=160)
==============  =================================================  ==========================
``baseline``    Flatten(block5_pool) (512 x 8 x 8 = 32,768)        5,243,040
``finalgap``    GAP(block5_pool) (512)                             82,080
``multigap``    concat GAP(block1..5_pool) (64+128+256+512+512     235,680
                = 1,472)
``gap_flatten`` concat of the 5 GAPs and Flatten(block5_pool)       5,478,560
                (1,472 + 32,768 = 34,240)
==============  =================================================  ==========================

Each head is one ``Dense(K)`` layer (weights + bias); softmax is folded into the cross-entropy
loss, so :meth:`ClassifierHead.forward` returns logits.

Two ways to run a head:

* end to end: ``VGG16Classifier(x)`` (trunk -> :meth:`ClassifierHead.head_features` -> Dense);
* from cached trunk outputs: ``head.head_features(trunk(x))`` gives the ``(N, D)`` vector the
  Dense layer consumes; since the trunk is frozen these vectors can be computed once and the
  Dense layer trained on them (:mod:`invariant_lpips.classifier.train`).

Flatten order is PyTorch's ``(C, h, w)``; Keras' ``Flatten`` uses ``(h, w, C)``. This is a
permutation of the Dense layer's input and does not change the parameter count or what a
trained head can represent.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ..features.pooled import global_average
from ..trunk import POOL_TAPS, TAP_CHANNELS, TrunkConfig, VGG16Trunk, lpips_scale

__all__ = [
    "HEADS",
    "GAP_CHANNELS",
    "PAPER_TRAINABLE_PARAMETERS",
    "TRUNK_PARAMETERS",
    "DEFAULT_L2",
    "DenseHead",
    "ClassifierHead",
    "VGG16Classifier",
    "build_classifier",
    "count_parameters",
    "pool5_size",
    "parameter_table",
    "normalize_rgb",
]

#: the four heads, in the paper's order
HEADS = ("baseline", "finalgap", "multigap", "gap_flatten")
#: channels of the concatenated GAP of the five pool outputs
GAP_CHANNELS = sum(TAP_CHANNELS[t] for t in POOL_TAPS)  # 1472
#: the authors' trainable-parameter counts at 256x256 input and K = 160 classes
PAPER_TRAINABLE_PARAMETERS = {"baseline": 5_243_040, "finalgap": 82_080, "multigap": 235_680,
                              "gap_flatten": 5_478_560}
#: parameters of the frozen VGG-16 convolutional trunk
TRUNK_PARAMETERS = 14_714_688
#: the authors' L2 (Keras ``kernel_regularizer=l2(1e-4)``) on the Dense kernel, per head
DEFAULT_L2 = {"baseline": 1e-4, "finalgap": 0.0, "multigap": 1e-4, "gap_flatten": 0.0}

_HEAD_ALIASES = {"flatten": "baseline", "gap": "finalgap", "final_gap": "finalgap", "multi_gap": "multigap",
                 "gap+flatten": "gap_flatten", "gapflatten": "gap_flatten"}


def canonical_head(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    key = _HEAD_ALIASES.get(key, key)
    if key not in HEADS:
        raise ValueError(f"unknown classifier head {name!r}: choose from {', '.join(HEADS)}")
    return key


def pool5_size(input_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """Spatial size of ``block5_pool`` for a ``(H, W)`` input: five floor-halvings (MaxPool2d(2, 2))."""
    if isinstance(input_size, int):
        h = w = input_size
    else:
        h, w = (int(s) for s in input_size)
    for _ in range(5):
        h, w = h // 2, w // 2
    if h < 1 or w < 1:
        raise ValueError(f"input size {input_size} leaves no pixel at block5_pool (need >= 32)")
    return h, w


def normalize_rgb(x: Tensor) -> Tensor:
    """RGB in [0, 1] -> the trunk's ImageNet-normalised input (``lpips_scale(2x - 1)``)."""
    return lpips_scale(2 * x - 1)


class DenseHead(nn.Module):
    """A ``Dense`` layer ``self.fc`` with the authors' L2 ``self.l2`` on its kernel: the part every head
    shares (:class:`ClassifierHead` here, the digits demo's heads)."""

    fc: nn.Linear
    l2: float

    def forward_features(self, features: Tensor) -> Tensor:
        """Logits from a ``(N, D)`` feature vector (the cached-feature path)."""
        return self.fc(features)

    def l2_penalty(self) -> Tensor:
        """``l2 * sum(W**2)`` over the Dense kernel (not the bias), as Keras' ``l2`` regulariser."""
        if self.l2 <= 0:
            return self.fc.weight.new_zeros(())
        return self.l2 * self.fc.weight.pow(2).sum()


class ClassifierHead(DenseHead):
    """One of the paper's heads: feature vector from the pool taps -> ``Dense(num_classes)``.

    Args:
        head: ``baseline``, ``finalgap``, ``multigap`` or ``gap_flatten``.
        num_classes: K.
        input_size: image side (or ``(H, W)``) the head is built for; only the Flatten heads
            depend on it (block5_pool is ``input_size // 32`` pixels per side).
        l2: L2 coefficient on the Dense kernel (added to the loss by :meth:`l2_penalty`);
            ``None`` = the authors' value for this head (:data:`DEFAULT_L2`).
    """

    def __init__(self, head: str, num_classes: int, input_size: Union[int, Sequence[int]] = 256,
                 l2: Optional[float] = None):
        super().__init__()
        self.head = canonical_head(head)
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = int(num_classes)
        self.input_size = (input_size, input_size) if isinstance(input_size, int) else tuple(int(s) for s in input_size)
        self.pool5_hw = pool5_size(self.input_size)
        self.flatten_features = 512 * self.pool5_hw[0] * self.pool5_hw[1]
        self.uses_gap = self.head in ("finalgap", "multigap", "gap_flatten")
        self.uses_flatten = self.head in ("baseline", "gap_flatten")
        self.taps = POOL_TAPS if self.head in ("multigap", "gap_flatten") else ("pool5",)
        self.in_features = {"baseline": self.flatten_features, "finalgap": TAP_CHANNELS["pool5"],
                            "multigap": GAP_CHANNELS,
                            "gap_flatten": GAP_CHANNELS + self.flatten_features}[self.head]
        self.l2 = DEFAULT_L2[self.head] if l2 is None else float(l2)
        self.fc = nn.Linear(self.in_features, self.num_classes)

    # ------------------------------------------------------------------ features
    def head_features(self, trunk_outputs: Dict[str, Tensor],
                      phase_multiplier: Optional[Dict[str, int]] = None) -> Tensor:
        """The ``(N, D)`` input of the Dense layer from the trunk's tap dict.

        ``finalgap``: GAP(pool5); ``multigap``: GAP(pool1..pool5) concatenated (1472);
        ``baseline``: Flatten(pool5); ``gap_flatten``: [GAP(pool1..5), Flatten(pool5)].
        """
        missing = [t for t in self.taps if t not in trunk_outputs]
        if missing:
            raise ValueError(f"head {self.head!r} needs trunk taps {list(self.taps)}, missing {missing}")
        pm = phase_multiplier or {}
        parts = []
        if self.head in ("multigap", "gap_flatten"):
            parts += [global_average(trunk_outputs[t], pm.get(t, 1)) for t in POOL_TAPS]
        elif self.head == "finalgap":
            parts.append(global_average(trunk_outputs["pool5"], pm.get("pool5", 1)))
        if self.uses_flatten:
            p5 = trunk_outputs["pool5"]
            if pm.get("pool5", 1) != 1:
                raise ValueError("Flatten heads need a trunk without polyphase pooling")
            if tuple(p5.shape[-2:]) != self.pool5_hw:
                raise ValueError(
                    f"head {self.head!r} was built for {self.input_size[0]}x{self.input_size[1]} inputs "
                    f"(block5_pool {self.pool5_hw}), got block5_pool {tuple(p5.shape[-2:])}; resize the images "
                    f"or rebuild the head with input_size matching")
            parts.append(p5.flatten(1))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(self, trunk_outputs: Dict[str, Tensor]) -> Tensor:
        return self.fc(self.head_features(trunk_outputs))

    def config(self) -> dict:
        return {"head": self.head, "num_classes": self.num_classes, "input_size": list(self.input_size),
                "l2": self.l2, "in_features": self.in_features}

    def extra_repr(self) -> str:
        return f"head={self.head!r}, in_features={self.in_features}, num_classes={self.num_classes}"


class VGG16Classifier(nn.Module):
    """Frozen :class:`VGG16Trunk` + trainable :class:`ClassifierHead`.

    ``forward(x)`` takes an ImageNet-normalised ``(N, 3, H, W)`` tensor (like the trunk) or, with
    ``normalize=True``, RGB in [0, 1]; it returns logits ``(N, K)``.
    """

    def __init__(self, trunk: VGG16Trunk, head: ClassifierHead, classes: Optional[Sequence[str]] = None):
        super().__init__()
        missing = [t for t in head.taps if t not in trunk.taps]
        if missing:
            raise ValueError(f"trunk does not return taps {missing} needed by head {head.head!r}")
        self.trunk = trunk
        self.head = head
        self.classes = list(classes) if classes is not None else [str(i) for i in range(head.num_classes)]
        if len(self.classes) != head.num_classes:
            raise ValueError(f"{len(self.classes)} class names for a head with {head.num_classes} outputs")

    def head_features(self, x: Tensor, normalize: bool = False) -> Tensor:
        if normalize:
            x = normalize_rgb(x)
        return self.head.head_features(self.trunk(x), self.trunk.phase_multiplier)

    def forward(self, x: Tensor, normalize: bool = False) -> Tensor:
        return self.head.forward_features(self.head_features(x, normalize=normalize))


def build_classifier(head: str, num_classes: int, weights: Union[str, dict, None] = "imagenet",
                     input_size: Union[int, Sequence[int]] = 256, padding_mode: str = "zeros",
                     pooling: Union[str, Sequence[str]] = "max", trunk: Optional[VGG16Trunk] = None,
                     l2: Optional[float] = None, classes: Optional[Sequence[str]] = None) -> VGG16Classifier:
    """A :class:`VGG16Classifier` with a fresh head (a given ``trunk`` is shared, not copied).

    ``weights=None`` gives a random trunk (tests); otherwise see :class:`VGG16Trunk`.
    """
    h = ClassifierHead(head, num_classes, input_size=input_size, l2=l2)
    if trunk is None:
        trunk = TrunkConfig(pooling=pooling, padding_mode=padding_mode, taps=POOL_TAPS).build(weights)
    return VGG16Classifier(trunk, h, classes=classes)


def count_parameters(model: nn.Module) -> Tuple[int, int]:
    """``(trainable, frozen)`` parameter counts (``requires_grad`` True / False)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return trainable, frozen


def parameter_table(num_classes: int = 160, input_size: int = 256) -> Dict[str, Dict[str, int]]:
    """Trainable / frozen / total parameters of each head, computed from the modules (no weights needed)."""
    out = {}
    for name in HEADS:
        trainable = sum(p.numel() for p in ClassifierHead(name, num_classes, input_size).parameters())
        out[name] = {"trainable": trainable, "frozen": TRUNK_PARAMETERS, "total": trainable + TRUNK_PARAMETERS}
    return out
