"""The frozen VGG-16 trunk shared by every feature of the package.

One module serves the metric, the LPIPS baseline, calibration, benchmarks, the robustness study
and the classifier study: image -> trunk (with a pooling policy) -> taps.

Layout: torchvision's ``vgg16().features`` (13 3x3 convs + ReLU, 5 stride-2 max-pools; same
indices, so torchvision state dicts load as they are). The pools can be replaced by the
anti-aliasing layers of :mod:`invariant_lpips.pooling` and the convolutions' padding can be
switched to ``circular`` (for exact-invariance checks) or ``reflect``.

Taps (channels): ``relu1_2`` (64), ``pool1`` (64), ``relu2_2`` (128), ``pool2`` (128),
``relu3_3`` (256), ``pool3`` (256), ``relu4_3`` (512), ``pool4`` (512), ``relu5_3`` (512),
``pool5`` (512). The five pool taps give the paper's 1472 channels.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ..pooling.downsample import expand_pooling_spec, make_downsampler

#: tap name -> index of the torchvision ``features`` layer whose output it is
TAP_LAYER_INDEX = {
    "relu1_2": 3, "pool1": 4,
    "relu2_2": 8, "pool2": 9,
    "relu3_3": 15, "pool3": 16,
    "relu4_3": 22, "pool4": 23,
    "relu5_3": 29, "pool5": 30,
}
TAP_CHANNELS = {
    "relu1_2": 64, "pool1": 64, "relu2_2": 128, "pool2": 128, "relu3_3": 256, "pool3": 256,
    "relu4_3": 512, "pool4": 512, "relu5_3": 512, "pool5": 512,
}
POOL_TAPS = ("pool1", "pool2", "pool3", "pool4", "pool5")
RELU_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
POOL_LAYER_INDICES = (4, 9, 16, 23, 30)
_CONV_PLAN = [64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P"]

#: LPIPS' ScalingLayer constants: maps [-1, 1] inputs to ImageNet-normalised ones.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)

#: trunk execution paths (see :class:`VGG16Trunk`)
BACKENDS = ("auto", "eager")

#: the smallest input side that still leaves >= 1 pixel at pool5
MIN_INPUT_SIZE = 32


class VGG16Trunk(nn.Module):
    """Frozen VGG-16 ``features`` with configurable pooling, returning the requested taps.

    Args:
        weights: ``"imagenet"`` (resolved by :func:`invariant_lpips.weights.resolve_vgg16_state_dict`),
            a path to a weight file, a state dict, or ``None`` for a random initialisation (tests).
        pooling: one down-sampler name for all five stages (``max``, ``blurmax``, ``l2``, ``aps``,
            ``polyphase``) or a list of five names, one per stage.
        filter_size: binomial filter size for ``blurmax`` / ``aps`` / ``polyphase``.
        padding_mode: padding of the 3x3 convolutions: ``zeros`` (torchvision), ``circular`` or ``reflect``.
        taps: the tap names to return; the trunk stops after the deepest one.
        channels_last: run the convolutions in channels-last memory format (faster; same values
            up to float rounding).
        backend: ``"auto"`` (default): when no gradient is wanted on a CPU float32 input, each
            conv + ReLU runs as one oneDNN call and ``blurmax`` pooling takes its fused path
            (:func:`~invariant_lpips.pooling.downsample.fused_blurmax`), equal to the eager
            path within float rounding; otherwise the plain layers. ``"eager"``: always the
            plain ``nn`` layers (the reference the fast paths are tested against).

    Shapes:
        input (N, 3, H, W), ImageNet-normalised (see :func:`lpips_scale`); output a dict
        tap -> (N * P, C, h, w) where ``P = self.phase_multiplier[tap]`` (1 unless ``polyphase``
        pooling stacked phases on the batch axis, phase-major).

    The trunk is frozen: parameters have ``requires_grad=False`` and the module stays in eval mode
    whatever ``.train()`` is called with (VGG-16 has no dropout/batch-norm in ``features``, so this
    only guards future changes), while gradients still flow to the input.
    """

    def __init__(
        self,
        weights: Union[str, dict, None] = "imagenet",
        pooling: Union[str, Sequence[str]] = "max",
        filter_size: int = 3,
        padding_mode: str = "zeros",
        taps: Iterable[str] = POOL_TAPS,
        channels_last: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        taps = list(taps)
        unknown = [t for t in taps if t not in TAP_LAYER_INDEX]
        if unknown or not taps:
            raise ValueError(f"unknown trunk taps {unknown or taps}: choose from {list(TAP_LAYER_INDEX)}")
        if padding_mode not in ("zeros", "circular", "reflect", "replicate"):
            raise ValueError(f"padding_mode must be zeros, circular, reflect or replicate, got {padding_mode!r}")
        self.taps: Tuple[str, ...] = tuple(sorted(taps, key=TAP_LAYER_INDEX.get))
        self.pooling = tuple(expand_pooling_spec(pooling))
        self.padding_mode = padding_mode
        # the anti-aliasing pools pad as the convolutions do (circular), else by reflection
        pool_padding = "circular" if padding_mode == "circular" else "reflect"
        layers: List[nn.Module] = []
        cin, stage = 3, 0
        for item in _CONV_PLAN:
            if item == "P":
                layers.append(make_downsampler(self.pooling[stage], filter_size, pool_padding))
                stage += 1
            else:
                layers += [nn.Conv2d(cin, item, 3, padding=1, padding_mode=padding_mode), nn.ReLU(inplace=False)]
                cin = item
        self.last_index = max(TAP_LAYER_INDEX[t] for t in self.taps)
        self.features = nn.Sequential(*layers[: self.last_index + 1])
        self.phase_multiplier: Dict[str, int] = {}
        mult = 1
        for idx in range(self.last_index + 1):
            if idx in POOL_LAYER_INDICES and self.pooling[POOL_LAYER_INDICES.index(idx)] == "polyphase":
                mult *= 4
            for tap, tidx in TAP_LAYER_INDEX.items():
                if tidx == idx:
                    self.phase_multiplier[tap] = mult
        self.weights_info = None
        if weights is not None:
            self.load_weights(weights)
        from .config import TrunkConfig, weights_label  # config.py imports this module

        #: what this trunk is (weights, pooling, filter size, padding, taps): what sharing checks
        self.config = TrunkConfig(pooling=self.pooling, filter_size=filter_size, padding_mode=padding_mode,
                                  taps=self.taps, weights=weights_label(weights))
        for p in self.parameters():
            p.requires_grad_(False)
        self.channels_last = channels_last
        self.backend = backend
        if channels_last:  # ~25% faster convolutions on CPU (oneDNN) and tensor cores on CUDA
            self.features.to(memory_format=torch.channels_last)
        super().train(False)

    # -- weights ---------------------------------------------------------------------------
    def load_weights(self, weights: Union[str, dict]) -> None:
        from ..weights.vgg16 import resolve_vgg16_state_dict

        if isinstance(weights, dict):
            state, info = weights, None
        elif weights == "imagenet":
            state, info = resolve_vgg16_state_dict()
        else:
            state, info = resolve_vgg16_state_dict(path=str(weights))
        own = self.features.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise ValueError(f"VGG-16 state dict lacks {missing[:4]}... (expected torchvision 'features' keys)")
        self.features.load_state_dict({k: state[k] for k in own}, strict=True)
        if getattr(self, "channels_last", False):
            self.features.to(memory_format=torch.channels_last)
        self.weights_info = info

    # -- cost ------------------------------------------------------------------------------------
    def flops(self, height: int, width: int) -> int:
        """Floating-point operations of one forward pass on an (height, width) image.

        Counts the 3x3 convolutions (``2 * H * W * C_in * C_out * 9`` each, a multiply-add being
        two operations) and the depthwise pooling filters; ReLU, max and padding are not counted.
        At 512x384 the 13 convolutions of VGG-16 are about 122 GFLOP (61 G multiply-adds).
        """
        h, w, total = height, width, 0
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                total += 2 * h * w * layer.in_channels * layer.out_channels * 9
            elif not isinstance(layer, nn.ReLU):
                blur = getattr(getattr(layer, "blur", None), "kernel", None)
                if blur is not None:
                    ch = self._channels_before(layer)
                    total += 2 * (h // 2) * (w // 2) * ch * blur.numel()
                h, w = (h + 1) // 2, (w + 1) // 2
        return total

    def _channels_before(self, pool: nn.Module) -> int:
        channels = 3
        for layer in self.features:
            if layer is pool:
                return channels
            if isinstance(layer, nn.Conv2d):
                channels = layer.out_channels
        return channels

    # -- backend -------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {value!r}")
        self._backend = value
        for m in self.features:
            if hasattr(m, "fused"):
                m.fused = value != "eager"

    @contextlib.contextmanager
    def eager(self):
        """Run the plain layers inside the block (the metric uses it for both sides of a pair when one
        side needs gradients, so that d(x, x) is exactly 0 whichever side requires grad)."""
        previous = self.backend
        self.backend = "eager"
        try:
            yield self
        finally:
            self.backend = previous

    # -- mode pinning ------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "VGG16Trunk":  # noqa: D401 - pinned to eval
        """Ignored: the trunk is frozen and always in eval mode."""
        return super().train(False)

    # -- forward -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        out: Dict[str, torch.Tensor] = {}
        wanted = {TAP_LAYER_INDEX[t]: t for t in self.taps}
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        fuse = self._fused_conv_relu_ok(x)
        layers = list(self.features)
        idx = 0
        while idx < len(layers):
            layer = layers[idx]
            if (fuse and isinstance(layer, nn.Conv2d) and idx + 1 < len(layers)
                    and isinstance(layers[idx + 1], nn.ReLU) and idx not in wanted):
                x = _conv_relu(x, layer)  # conv + ReLU in one oneDNN call (a ReLU post-op)
                idx += 1
            else:
                x = layer(x)
            if idx in wanted:
                out[wanted[idx]] = x
            idx += 1
        return out

    def _fused_conv_relu_ok(self, x: torch.Tensor) -> bool:
        """Whether the inference fast path applies: ``backend`` allows it, CPU float32 without
        autocast, zero padding, no gradient wanted, and this PyTorch build has the oneDNN op."""
        if self.backend == "eager" or not _HAS_CONV_POINTWISE:
            return False
        return (x.device.type == "cpu" and x.dtype == torch.float32 and self.padding_mode == "zeros"
                and not torch.is_autocast_enabled("cpu")
                and not (torch.is_grad_enabled() and x.requires_grad))


def _has_conv_pointwise() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


_HAS_CONV_POINTWISE = _has_conv_pointwise()


def _conv_relu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``relu(conv(x))`` through oneDNN's fused convolution with a ReLU post-op (inference only).

    The same oneDNN convolution PyTorch runs for ``conv(x)`` on CPU, with the ReLU applied in the
    kernel's epilogue instead of a second pass over the output; values are equal to the eager
    pair (tested). ``torch.ops.mkldnn._convolution_pointwise`` is the op PyTorch's own inductor
    emits for this fusion; if it ever fails, the eager pair is used from then on.
    """
    global _HAS_CONV_POINTWISE
    try:
        return torch.ops.mkldnn._convolution_pointwise(
            x, conv.weight, conv.bias, list(conv.padding), list(conv.stride), list(conv.dilation),
            conv.groups, "relu", [None], "")
    except (RuntimeError, NotImplementedError, TypeError):  # pragma: no cover - op changed upstream
        _HAS_CONV_POINTWISE = False
        return torch.relu(conv(x))


def lpips_scale(x: torch.Tensor) -> torch.Tensor:
    """LPIPS' ScalingLayer: ``(x - shift) / scale`` for inputs in [-1, 1] (x: (N,3,H,W))."""
    shift = torch.tensor(LPIPS_SHIFT, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    scale = torch.tensor(LPIPS_SCALE, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - shift) / scale
