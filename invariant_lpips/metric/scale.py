"""A known scale: the default's distances mapped onto LPIPS-VGG's range (``InvariantLPIPS(scale="lpips")``).

A variant's raw distance ``d >= 0`` has its own units (a JPEG q15 scores about 3.6, a different photo
about 15). ``scale="lpips"`` returns instead

    ``v = a * (1 - exp(-(d / s) ** p))``,   ``a, s, p > 0``,

a bounded (``0 <= v < a``), strictly increasing map with ``v(0) = 0``: ranks, and so every rank
correlation, are unchanged; only the numbers move (in floating point, distances many times ``s``, far
beyond a different photo's, saturate at ``a`` and tie). ``a, s, p`` are fitted per variant by least squares
so that ``v`` is close to LPIPS-VGG's value on the same pairs: generated distortions of Kodak crops,
images only, no human scores (``benchmarks/fit_scale.py --variant NAME``). They live in
``weights/shipped/scale.json`` under the variant's name, with the fit's data, command and residuals.

What carries over and what does not: an LPIPS threshold or loss weight lands in the right region
(a 1-px shift, faint noise and a different photo fall where LPIPS puts them on average), but the
two metrics still disagree pair by pair (the fitted map is monotone, LPIPS' own order is not ours).
The map saturates for very different images, so as a training loss the raw distance (the default)
keeps larger gradients for far-apart pairs.

Shapes: any tensor of distances -> the same shape and dtype.

>>> m = ScaleMap(a=0.8, s=4.0, p=0.9)
>>> d = torch.tensor([0.0, 1.0, 4.0, 100.0])
>>> v = m(d)
>>> bool((v[1:] > v[:-1]).all()), float(v[0]), bool(v[-1] < 0.8)
(True, 0.0, True)
>>> bool(torch.allclose(m.inverse(v[:3]), d[:3], atol=1e-5))
True
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional

import torch

#: the file of fitted maps (package data): ``{"variants": {name: {"a":, "s":, "p":, ...}}}``
SCALE_FILE = Path(__file__).resolve().parents[1] / "weights" / "shipped" / "scale.json"
#: the scales a metric can be asked for (``None``: the variant's raw distance)
SCALES = ("lpips",)


@dataclass(frozen=True)
class ScaleMap:
    """``v = a * (1 - exp(-(d / s) ** p))`` (see the module docstring); bounded by ``a``, increasing."""

    a: float
    s: float
    p: float

    def __post_init__(self):
        if not (self.a > 0 and self.s > 0 and self.p > 0):
            raise ValueError(f"a scale map needs a, s, p > 0, got a={self.a}, s={self.s}, p={self.p}")

    def __call__(self, d: torch.Tensor) -> torch.Tensor:
        """(...) distances >= 0 -> (...) values in [0, a)."""
        x = (d.clamp_min(0) / self.s) ** self.p
        return self.a * -torch.expm1(-x)

    def inverse(self, v: torch.Tensor) -> torch.Tensor:
        """The raw distance of a scaled value in [0, a): ``d = s * (-log(1 - v / a)) ** (1 / p)``."""
        return self.s * (-torch.log1p(-(v / self.a).clamp(0, 1 - 1e-12))) ** (1.0 / self.p)

    def to_dict(self) -> dict:
        return asdict(self)


def read_scale_file(path: Optional[Path] = None) -> Dict[str, dict]:
    """Every fitted map: variant name -> its entry (parameters, data, command, fit figures)."""
    path = Path(path or SCALE_FILE)
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("variants", {})


def load_scale(variant: str, scale: str = "lpips", path: Optional[Path] = None) -> ScaleMap:
    """The fitted map of ``variant`` (a ValueError says how to fit one when there is none)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be None (raw distances) or one of {SCALES}, got {scale!r}")
    entries = read_scale_file(path)
    if variant not in entries:
        have = ", ".join(sorted(entries)) or "none"
        raise ValueError(f"variant {variant!r} has no fitted LPIPS scale (fitted: {have}); fit one with "
                         f"'python benchmarks/fit_scale.py --variant {variant} --write', or leave scale=None")
    e = entries[variant]
    return ScaleMap(float(e["a"]), float(e["s"]), float(e["p"]))


def _scale_output(module, args, output):
    """Forward hook: the total distance (not the per-term list of ``retPerLayer``) through the map."""
    fn = module.scale_map
    if isinstance(output, tuple):
        return (fn(output[0]),) + tuple(output[1:])
    return fn(output)


def attach_scale(metric: torch.nn.Module, scale: Optional[str], variant: str) -> Optional[ScaleMap]:
    """Give ``metric`` the output scale ``scale`` (None: raw distances, nothing attached); returns the map.

    The map runs as a forward hook after ``forward``: ``metric(x, y)`` returns ``v(d)``, and with
    ``retPerLayer=True`` the total is mapped while the per-term contributions stay raw (they add up to
    ``d``, the raw distance: ``metric.scale_map.inverse(total)``)."""
    metric.scale_map = None
    if scale is None:
        return None
    metric.scale_map = load_scale(variant, scale)
    metric._scale_hook = metric.register_forward_hook(_scale_output)
    return metric.scale_map
