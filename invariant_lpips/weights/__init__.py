"""Weight provenance: the VGG-16 trunk resolver and the learned linear weights.

Exports are lazy (:mod:`invariant_lpips._lazy`): ``invariant_lpips.weights.cli`` (``weights``) registers
without torch.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "LinearWeightsError": ".linear", "load_linear_weights": ".linear", "load_shipped": ".linear",
    "save_linear_weights": ".linear", "shipped_manifest": ".linear",
    "UnsafePickleError": ".restricted_pickle", "load_numpy_pickle": ".restricted_pickle",
    "VGG16_FEATURES_SHA256": ".vgg16", "WeightsIntegrityError": ".vgg16", "WeightsNotFoundError": ".vgg16",
    "cache_dir": ".vgg16", "resolve_vgg16_state_dict": ".vgg16",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
