"""Down-sampling policies between VGG blocks and spatial statistics of tapped maps."""
from .downsample import (
    APSPool,
    BlurMaxPool,
    L2Pool,
    MaxPool,
    PolyphasePool,
    binomial_kernel,
    hanning_kernel,
    make_downsampler,
)

__all__ = ["MaxPool", "BlurMaxPool", "L2Pool", "APSPool", "PolyphasePool", "make_downsampler",
           "binomial_kernel", "hanning_kernel"]
