"""Pooled statistics of the trunk's taps: the only place features are pooled.

Notation: a tapped map ``f`` is (N, C, h, w) (polyphase pooling stacks ``P`` phase groups on the batch
axis: (N * P, C, h, w); every statistic then pools over the phases too). ``u = f / (||f||_2 + eps)`` is
LPIPS' per-position unit normalisation over channels. Every statistic is a function of the whole map
(no position-by-position comparison), so a circular shift of the input by a multiple of the trunk's
stride (32 px) leaves every statistic unchanged when the trunk and the statistics pad circularly.

Statistics, each (N, C) float32:

``mean``   GAP: ``m_c = mean_{y,x} f_c``                               (the paper's statistic)
``std``    spatial spread: ``s_c = sqrt(mean_{y,x} (f_c - m_c)^2 + eps)``     (DISTS' texture term)
``local``  soft-local spread: ``l_c = std_{Y,X} R_32(f_c)``: ``R_32`` is a Gaussian pyramid (binomial-5
           low-pass, then subsample by 2, repeated) down to one cell per 32 input pixels, i.e. local
           means in overlapping Gaussian-like windows (about 36 px wide at half height) on a 32-px grid;
           ``l`` is the spread of these local means, so damage to one region moves it even when the
           global mean barely moves. The low-pass before each subsampling keeps it robust to 1-px
           shifts; it needs images of at least 64 px a side to be non-zero.

Keys of a statistics dict (*terms*): ``"<space>.<stat>.<tap>"`` with ``space`` ``raw`` (f) or ``unit`` (u),
and the colour tap ``"lab.<stat>.lab"`` (see :mod:`invariant_lpips.features.colour`); :func:`term_key` writes
one and :func:`term_tap` / :func:`term_parts` read one (nowhere else parses a key).

A statistic is one function in :data:`STATISTIC_FUNCTIONS` (``(feat, tap, phases, circular) -> (N, ...)``).
The built-in ones return (N, C) vectors; a statistic may return a coarse map (N, C, h, w) as well: the
cache stores any shape, and the formulation that reads it compares it (see ``docs/architecture.md``).

>>> term_key("unit", "mean", "pool3"), term_tap("unit.mean.pool3"), term_parts("lab.std.lab")
('unit.mean.pool3', 'pool3', ('lab', 'std', 'lab'))
>>> CHANNELS["pool3"], CHANNELS["lab"]
(256, 3)
>>> applies("local", "pool5"), applies("local", "pool4")
(False, True)
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..trunk.vgg16 import TAP_CHANNELS, lpips_scale
from .colour import srgb_to_lab
from .structure import coarse_map, pyramid_down

#: epsilon of LPIPS' channel normalisation (parity); computed in float32 so it cannot underflow
LPIPS_EPS = 1e-10
#: floor inside the square roots of the spread statistics (finite gradients at zero spread)
SPREAD_EPS = 1e-12
#: input pixels per cell of the ``local`` statistic's pyramid level
LOCAL_BLOCK_PX = 32
#: input stride of each tap
TAP_STRIDE = {"relu1_2": 1, "pool1": 2, "relu2_2": 2, "pool2": 4, "relu3_3": 4, "pool3": 8,
              "relu4_3": 8, "pool4": 16, "relu5_3": 16, "pool5": 32, "lab": 1}
COLOUR_TAP = "lab"
#: channels of every tap a term can read (the trunk's taps and the CIELab colour tap)
CHANNELS = {**TAP_CHANNELS, COLOUR_TAP: 3}

Stats = Dict[str, torch.Tensor]


def term_key(space: str, stat: str, tap: str) -> str:
    """The key of one term: ``"<space>.<stat>.<tap>"``."""
    return f"{space}.{stat}.{tap}"


def term_parts(key: str) -> Tuple[str, str, str]:
    """``"<space>.<stat>.<tap>"`` -> (space, stat, tap)."""
    space, stat, tap = key.split(".")
    return space, stat, tap


def term_tap(key: str) -> str:
    """The tap a term reads (its channel weights are that tap's)."""
    return term_parts(key)[2]


def applies(stat: str, tap: str) -> bool:
    """Whether ``stat`` is a term at ``tap``: ``local`` is left out where a cell already spans 32 px
    (pool5), since it then equals ``std``; a coarse map needs cells at least as large as the tap's stride."""
    if stat.startswith("coarse"):
        return TAP_STRIDE[tap] <= int(stat[len("coarse"):])
    return not (stat == "local" and TAP_STRIDE[tap] >= LOCAL_BLOCK_PX)


def work(t: torch.Tensor) -> torch.Tensor:
    """``t`` in the statistics' working precision: float32, or float64 for a float64 input (``.double()``)."""
    return t if t.dtype == torch.float64 else t.float()


def channel_normalize(feat: torch.Tensor, eps: float = LPIPS_EPS) -> torch.Tensor:
    """LPIPS' ``normalize_tensor``, the one home of the formula: ``f / (sqrt(sum_c f^2) + eps)`` over axis 1,
    in the input's dtype. (N, C, h, w) -> same."""
    norm = torch.sqrt(torch.sum(feat * feat, dim=1, keepdim=True))
    return feat / (norm + eps)


def unit_normalize(feat: torch.Tensor, eps: float = LPIPS_EPS) -> torch.Tensor:
    """:func:`channel_normalize` in float32 (float64 stays; half precision would underflow ``eps``)."""
    return channel_normalize(work(feat), eps)


def _phase_view(feat: torch.Tensor, phases: int) -> torch.Tensor:
    """(N * P, C, h, w) -> (P, N, C, h, w)."""
    n = feat.shape[0] // phases
    return feat.reshape(phases, n, *feat.shape[1:])


def global_average(feat: torch.Tensor, phases: int = 1) -> torch.Tensor:
    """GAP over space and phases: (N * P, C, h, w) -> (N, C) float32."""
    return _phase_view(work(feat), phases).mean(dim=(0, 3, 4))


def spatial_std(feat: torch.Tensor, phases: int = 1) -> torch.Tensor:
    """Spatial spread over space and phases: (N * P, C, h, w) -> (N, C) float32 (``std`` above)."""
    f = _phase_view(work(feat), phases)
    m = f.mean(dim=(0, 3, 4), keepdim=True)
    var = ((f - m) ** 2).mean(dim=(0, 3, 4))
    return torch.sqrt(var + SPREAD_EPS)


def local_spread(feat: torch.Tensor, stride: int, phases: int = 1, circular: bool = False) -> torch.Tensor:
    """Soft-local spread (``local`` above): (N * P, C, h, w) -> (N, C) float32.

    Args:
        stride: the tap's input stride (pixels per cell); ``log2(32 / stride)`` pyramid steps follow.
        circular: pad circularly (exact invariance checks) instead of replicating the edge.
    """
    f = _phase_view(work(feat), phases).mean(dim=0)
    block = max(1, LOCAL_BLOCK_PX // stride)
    while block > 1:
        f = pyramid_down(f, circular)
        block //= 2
    m = f.mean(dim=(2, 3), keepdim=True)
    return torch.sqrt(((f - m) ** 2).mean(dim=(2, 3)) + SPREAD_EPS)


#: cell sizes (input px) of the coarse-map statistics ``coarse<g>`` (see :mod:`~invariant_lpips.features.structure`)
COARSE_CELLS = (16, 32, 64)


def coarse_name(cell_px: int) -> str:
    return f"coarse{cell_px}"


#: statistic name -> ``fn(feat (N * P, C, h, w), tap, phases, circular) -> (N, C) or (N, C, h', w')`` float32
STATISTIC_FUNCTIONS: Dict[str, Callable[[torch.Tensor, str, int, bool], torch.Tensor]] = {
    "mean": lambda feat, tap, phases, circular: global_average(feat, phases),
    "std": lambda feat, tap, phases, circular: spatial_std(feat, phases),
    "local": lambda feat, tap, phases, circular: local_spread(feat, TAP_STRIDE[tap], phases, circular),
    **{coarse_name(g): (lambda feat, tap, phases, circular, g=g: coarse_map(feat, TAP_STRIDE[tap], g, phases, circular))
       for g in COARSE_CELLS},
}
#: map-valued statistics: (N, C, h', w') coarse maps, kept in the ``raw`` space only (they are compared
#: position by position after centring, so LPIPS' unit normalisation adds nothing but cache size)
MAP_STATISTICS = tuple(coarse_name(g) for g in COARSE_CELLS)
#: every statistic (the feature cache stores them all)
STATISTICS = tuple(STATISTIC_FUNCTIONS)


def check_statistics(statistics: Iterable[str]) -> None:
    bad = [s for s in statistics if s not in STATISTIC_FUNCTIONS]
    if bad:
        raise ValueError(f"unknown statistics {bad}; choose from {STATISTICS}")


def map_statistics(feat: torch.Tensor, tap: str, space: str, statistics: Iterable[str], phases: int = 1,
                   circular: bool = False) -> Stats:
    """The requested statistics of one map, keyed ``"<space>.<stat>.<tap>"``."""
    statistics = list(statistics)
    check_statistics(statistics)
    return {term_key(space, stat, tap): STATISTIC_FUNCTIONS[stat](feat, tap, phases, circular) for stat in statistics
            if not (stat in MAP_STATISTICS and (space == "unit" or not applies(stat, tap)))}


def pooled_statistics(trunk, x: torch.Tensor, taps: Sequence[str], spaces: Sequence[str] = ("unit",),
                      statistics: Sequence[str] = ("mean",), colour_statistics: Sequence[str] = (),
                      circular: bool = False, maps: Optional[Dict[str, torch.Tensor]] = None,
                      map_taps: Sequence[str] = ()) -> Stats:
    """Image batch -> pooled statistics (the spine's one feature path).

    Args:
        trunk: a :class:`~invariant_lpips.trunk.vgg16.VGG16Trunk` (frozen).
        x: (N, 3, H, W) in [-1, 1].
        taps: trunk taps to pool; ``spaces``: ``raw`` and/or ``unit``; ``statistics``: from :data:`STATISTICS`.
        colour_statistics: statistics of the CIELab colour tap (empty: no colour tap, no cost).
        circular: circular padding in the ``local`` blur (set when the trunk pads circularly).
        maps, map_taps: if ``maps`` is a dict, the raw maps of ``map_taps`` (trunk taps, and ``"lab"`` for
            the CIELab image) of this same pass are put in it (the registered terms' pair step reads them).

    Returns:
        dict ``"<space>.<stat>.<tap>"`` -> (N, C) float32.
    """
    from .tiling import pooled_statistics_tiled, should_tile  # deferred: tiling imports this module

    if should_tile(trunk, x, circular, wants_maps=maps is not None and bool(map_taps)):
        # a large image without gradients: the same statistics from row strips (bounded memory)
        return pooled_statistics_tiled(trunk, x, taps, spaces, statistics, colour_statistics, circular)
    out: Stats = {}
    feats = trunk(lpips_scale(x))
    lab = None
    if maps is not None:
        for tap in map_taps:
            if tap == COLOUR_TAP:
                lab = maps[tap] = srgb_to_lab((work(x) + 1) / 2)
            else:
                maps[tap] = feats[tap]
    for tap in taps:
        p = trunk.phase_multiplier[tap]
        f = feats[tap]
        for space in spaces:
            g = unit_normalize(f) if space == "unit" else f
            out.update(map_statistics(g, tap, space, statistics, p, circular))
    if colour_statistics:
        lab = srgb_to_lab((work(x) + 1) / 2) if lab is None else lab
        out.update(map_statistics(lab, COLOUR_TAP, COLOUR_TAP, colour_statistics, 1, circular))
    return out
