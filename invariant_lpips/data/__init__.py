"""Data: the one image loader and folder lister, sizes, dataset readers, correlation statistics.

Exports are lazy (:mod:`invariant_lpips._lazy`): ``invariant_lpips.data.sizes`` needs no torch.
"""
from .._lazy import lazy_exports

_EXPORTS = {"load_image": ".io", "load_image_array": ".io", "list_images": ".io", "IMAGE_EXTENSIONS": ".io",
            "file_sha256": ".io", "parse_size": ".sizes"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
