"""A pickle reader that can only rebuild numpy arrays.

``pickle.load`` executes whatever callable a file names (``os.system`` included),
so an untrusted checkpoint must never reach it. :func:`load_numpy_pickle` allows
exactly the globals needed to rebuild ``numpy.ndarray`` objects inside plain
dicts/lists/tuples; any other global makes it raise :class:`UnsafePickleError`
before anything is called.
"""
from __future__ import annotations

import io
import pickle
from typing import Any, BinaryIO, Union

import numpy as np

# (module, name) pairs a numpy-array pickle needs, for numpy 1.x and 2.x names.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the numpy-array allow-list."""


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` allows only numpy array reconstruction."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name!s} from a weight pickle: only numpy "
                "array reconstruction is allowed (the file may be corrupt or malicious)"
            )
        if name == "_reconstruct":
            core = getattr(np, "_core", None) or np.core
            return core.multiarray._reconstruct
        return getattr(np, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a pickle with persistent ids (not a plain numpy pickle)")


def load_numpy_pickle(source: Union[str, bytes, BinaryIO]) -> Any:
    """Load a pickle that may contain only containers and numpy arrays.

    Args:
        source: a path, the raw bytes, or a binary file object.

    Raises:
        UnsafePickleError: the pickle refers to anything but numpy arrays/dtypes.
    """
    if isinstance(source, (bytes, bytearray)):
        return NumpyOnlyUnpickler(io.BytesIO(source)).load()
    if isinstance(source, str):
        with open(source, "rb") as fh:
            return NumpyOnlyUnpickler(fh).load()
    return NumpyOnlyUnpickler(source).load()
