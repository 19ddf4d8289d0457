"""The one progress bar: tqdm on stderr when stderr is a terminal; otherwise sparse plain lines.

Redirected logs get one line per ~10% (and the last), never ``\\r`` updates.
``INVARIANT_LPIPS_PROGRESS=0`` silences it, ``=1`` forces the bar.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, Optional


class _SparseLines:
    def __init__(self, iterable: Optional[Iterable] = None, total: Optional[int] = None, desc: str = "",
                 unit: str = "it", **_):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit, self.n, self._next = desc, unit, 0, 0

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.total and (self.n >= self._next or self.n >= self.total):
            print(f"{self.desc}: {self.n}/{self.total} {self.unit}", file=sys.stderr, flush=True)
            self._next = self.n + max(1, self.total // 10)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def set_postfix(self, *a, **k) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent(_SparseLines):
    def update(self, k: int = 1) -> None:
        self.n += k


def progress_bar(iterable: Optional[Iterable] = None, *, total: Optional[int] = None, desc: str = "",
                 unit: str = "it", disable: bool = False, **kwargs):
    """A tqdm-like progress object (``update``, iteration, ``close``, context manager)."""
    mode = os.environ.get("INVARIANT_LPIPS_PROGRESS", "")
    if disable or mode == "0":
        return _Silent(iterable, total=total, desc=desc, unit=unit)
    if mode == "1" or sys.stderr.isatty():
        from tqdm import tqdm  # deferred: tqdm is only needed when a terminal shows the bar

        return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, **kwargs)
    return _SparseLines(iterable, total=total, desc=desc, unit=unit)
