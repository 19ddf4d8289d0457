"""The frozen VGG-16 trunk (one implementation shared by every feature) and its configuration."""
from .config import TrunkConfig
from .vgg16 import (
    LPIPS_SCALE,
    LPIPS_SHIFT,
    MIN_INPUT_SIZE,
    POOL_TAPS,
    RELU_TAPS,
    TAP_CHANNELS,
    TAP_LAYER_INDEX,
    VGG16Trunk,
    lpips_scale,
)

__all__ = ["TrunkConfig", "VGG16Trunk", "lpips_scale", "POOL_TAPS", "RELU_TAPS", "TAP_CHANNELS", "TAP_LAYER_INDEX",
           "LPIPS_SHIFT", "LPIPS_SCALE", "MIN_INPUT_SIZE"]
