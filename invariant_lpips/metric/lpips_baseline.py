"""``LPIPS``: spatial LPIPS-VGG v0.1 (Zhang et al., 2018), reproduced exactly.

The comparison baseline of every benchmark. Same computation as ``lpips.LPIPS(net='vgg',
version='0.1')``: ScalingLayer, VGG-16 taps relu1_2..relu5_3, channel unit-normalisation
``f / (||f|| + 1e-10)``, squared difference, 1x1 non-negative linear layers, spatial mean (or a
bilinearly upsampled map with ``spatial=True``), sum over the five layers:

    d(x, y) = sum_l mean_{h,w} sum_c w_lc (u_lchw(x) - u_lchw(y))^2

Shapes: in0, in1 (N, 3, H, W) in [-1, 1] ([0, 1] with ``normalize=True``), equal sizes, N may
be 1 on one side (broadcast, computed once). Output (N, 1, 1, 1), or (N, 1, H, W) with ``spatial``.
"""
from __future__ import annotations

from typing import Dict, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..features.pooled import unit_normalize
from ..trunk.config import TrunkConfig, weights_label
from ..trunk.vgg16 import RELU_TAPS, TAP_CHANNELS, VGG16Trunk, lpips_scale
from ..weights.linear import resolve_linear_weights
from .compat import lpips_constructor_args
from .validation import check_image_batch, check_module_device, check_pair

LPIPS_MIN_SIZE = 16


class LPIPS(nn.Module):
    """Exact LPIPS-VGG v0.1 with the ``lpips`` package's interface.

    The constructor takes ``lpips.LPIPS``' arguments in lpips' order (``LPIPS(True, 'vgg')`` works as there);
    the arguments of this package are keyword-only. ``LPIPS()`` without ``net`` uses VGG-16 and warns once
    (:class:`~invariant_lpips.metric.compat.DefaultNetWarning`): lpips' default is AlexNet.

    Args:
        pretrained, net, version, lpips: as in lpips (``net='vgg'`` only; see :mod:`invariant_lpips.metric.compat`).
        spatial: return a per-pixel distance map (N, 1, H, W) instead of (N, 1, 1, 1).
        weights: linear weights (path to a safetensors file, a dict ``relu1_2..relu5_3 -> (C,)``)
            instead of the shipped LPIPS v0.1 VGG weights (BSD-2, Zhang et al.).
        trunk_weights: VGG-16 ImageNet weights, as for :class:`~invariant_lpips.InvariantLPIPS`.
        trunk: share an existing :class:`VGG16Trunk`: max pooling, filter size 3, zero padding, the weights
            ``trunk_weights`` names, and taps that include relu1_2..relu5_3 (else a ValueError names both).
        pnet_rand, pnet_tune, use_dropout, model_path, eval_mode, verbose: ``lpips.LPIPS``' other
            constructor arguments (see :mod:`invariant_lpips.metric.compat`).

    Starts in eval mode, as ``lpips.LPIPS`` does. Dtypes: the output has the module's dtype. After
    ``.double()`` everything runs in float64; after ``.half()`` the trunk runs in float16 and the channel
    normalisation and sums in float32 (LPIPS' eps underflows in float16), then the result is cast to float16.
    """

    higher_is_better = False
    is_differentiable = True
    full_state_update = False

    def __init__(
        self,
        pretrained: bool = True,
        net: Optional[str] = None,
        version: str = "0.1",
        lpips: bool = True,
        spatial: bool = False,
        pnet_rand: bool = False,
        pnet_tune: bool = False,
        use_dropout: bool = True,
        model_path: Optional[str] = None,
        eval_mode: bool = True,
        verbose: bool = True,
        *,
        weights: Union[str, Dict[str, torch.Tensor], None] = None,
        trunk_weights: Union[str, dict, None] = "imagenet",
        trunk: Optional[VGG16Trunk] = None,
        check_inputs: bool = True,
        **unknown,
    ):
        super().__init__()
        compat = lpips_constructor_args(type(self).__name__, {
            "pretrained": pretrained, "net": net, "version": version, "lpips": lpips, "spatial": spatial,
            "pnet_rand": pnet_rand, "pnet_tune": pnet_tune, "use_dropout": use_dropout, "model_path": model_path,
            "eval_mode": eval_mode, "verbose": verbose, **unknown}, spatial_supported=True)
        if compat["trunk_random"]:
            trunk_weights = None
        self.spatial = spatial
        self.check_inputs = check_inputs
        config = TrunkConfig(pooling="max", taps=RELU_TAPS, weights=weights_label(trunk_weights))
        trunk = config.check(trunk, "the LPIPS baseline") if trunk is not None else config.build(trunk_weights)
        self.net = trunk
        tensors, self.weights_entry = resolve_linear_weights(  # lpips=False / pretrained=False: unit weights
            "ones" if weights is None and not compat["lpips"] else weights,
            {t: TAP_CHANNELS[t] for t in RELU_TAPS}, "lpips_vgg_v0.1.safetensors")
        self.lins = nn.ParameterDict({tap: nn.Parameter(tensors[tap].clone(), requires_grad=False) for tap in RELU_TAPS})
        self.train(not compat["eval_mode"])

    def train(self, mode: bool = True) -> "LPIPS":
        super().train(mode)
        self.net.train(False)
        return self

    # ------------------------------------------------------------------ the protocol
    def features(self, x: torch.Tensor, normalize: bool = False) -> Dict[str, torch.Tensor]:
        """``F`` of a batch (N, 3, H, W) in [-1, 1] ([0, 1] with ``normalize``): the unit-normalised VGG
        features ``{relu1_2..relu5_3: (N, C, h, w)}`` (float32, or float64 after ``.double()``), the
        protocol's first half (:mod:`invariant_lpips.metric.protocol`). Per image: cacheable."""
        x = check_image_batch(x, "x", normalize=normalize, min_size=LPIPS_MIN_SIZE, check_values=self.check_inputs)
        check_module_device(self, x)
        x = self._cast(x)
        return self._features(2 * x - 1 if normalize else x)

    def _features(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return self._normalized(self.net(lpips_scale(x)))

    @staticmethod
    def _normalized(f: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        out = {}
        for tap in RELU_TAPS:
            # float32, or float64 for a float64 trunk (.double()): never less than float32 (eps underflow)
            out[tap] = unit_normalize(f[tap])
        return out

    def distance(self, f0: Dict[str, torch.Tensor], f1: Dict[str, torch.Tensor]) -> torch.Tensor:
        """(N,) LPIPS between two :meth:`features` (equal map sizes; N each, or 1 on either side), in the
        module's dtype: ``distance(features(x), features(y))`` equals ``forward(x, y).flatten()``."""
        maps = self._layer_maps(f0, f1)
        val = maps[0].mean(dim=(2, 3))
        for m in maps[1:]:
            val = val + m.mean(dim=(2, 3))
        return self._out_dtype(val).reshape(-1)

    def _out_dtype(self, t: torch.Tensor) -> torch.Tensor:
        dtype = self.net.features[0].weight.dtype
        return t.to(dtype) if not torch.is_autocast_enabled() and t.dtype != dtype else t

    def _cast(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self.net.features[0].weight.dtype
        return x if torch.is_autocast_enabled() else x.to(dtype)

    def _layer_maps(self, f0: Dict[str, torch.Tensor], f1: Dict[str, torch.Tensor]):
        maps = []
        for tap in RELU_TAPS:
            u0, u1 = f0[tap], f1[tap]
            w = self.lins[tap].to(u0.dtype).view(1, -1, 1, 1)
            maps.append(((u0 - u1) ** 2 * w).sum(dim=1, keepdim=True))
        return maps

    def layer_maps(self, in0: torch.Tensor, in1: torch.Tensor, normalize: bool = False):
        """Per-layer weighted squared-difference maps, list of (N, 1, h_l, w_l) float32."""
        if normalize:
            in0, in1 = 2 * in0 - 1, 2 * in1 - 1
        if in0.shape == in1.shape:  # one trunk pass for both sides
            f = self._features(torch.cat([in0, in1], 0))
            n = in0.shape[0]
            f0 = {k: v[:n] for k, v in f.items()}
            f1 = {k: v[n:] for k, v in f.items()}
        else:
            f0, f1 = self._features(in0), self._features(in1)
        return self._layer_maps(f0, f1)

    def forward(self, in0: torch.Tensor, in1: torch.Tensor, retPerLayer: bool = False,
                normalize: bool = False):
        """LPIPS distance; see the module docstring for shapes and ranges."""
        in0, in1 = check_pair(in0, in1, normalize=normalize, min_size=LPIPS_MIN_SIZE, same_size=True,
                              check_values=self.check_inputs)
        check_module_device(self, in0)
        maps = self.layer_maps(self._cast(in0), self._cast(in1), normalize)
        size = in0.shape[-2:]
        if self.spatial:
            res = [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps]
        else:
            res = [m.mean(dim=(2, 3), keepdim=True) for m in maps]
        val = res[0]
        for r in res[1:]:
            val = val + r
        val, res = self._out_dtype(val), [self._out_dtype(r) for r in res]  # the module's dtype (.half(): float16)
        return (val, res) if retPerLayer else val
