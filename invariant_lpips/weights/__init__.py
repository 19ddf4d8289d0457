"""Weight provenance: the VGG-16 trunk resolver and the learned linear weights."""
from .linear import (
    LinearWeightsError,
    load_linear_weights,
    load_shipped,
    save_linear_weights,
    shipped_manifest,
)
from .restricted_pickle import UnsafePickleError, load_numpy_pickle
from .vgg16 import (
    VGG16_FEATURES_SHA256,
    WeightsIntegrityError,
    WeightsNotFoundError,
    cache_dir,
    resolve_vgg16_state_dict,
)

__all__ = [
    "resolve_vgg16_state_dict", "cache_dir", "VGG16_FEATURES_SHA256", "WeightsNotFoundError",
    "WeightsIntegrityError", "load_numpy_pickle", "UnsafePickleError", "LinearWeightsError",
    "load_linear_weights", "save_linear_weights", "load_shipped", "shipped_manifest",
]
