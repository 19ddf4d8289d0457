"""Formulations: how a distance is computed from pooled statistics. The one home of every formula.

A :class:`Formulation` is one object that knows

* what it reads: the feature space (``raw`` f, or LPIPS' unit-normalised ``unit``), which statistics it
  accepts, and the *terms* (statistics keys, :func:`~invariant_lpips.features.pooled.term_key`) of a
  trunk's taps (:meth:`Formulation.terms`);
* its weight layout: per-channel weights per tap (``lins``) and one scale per term (``scale.<term>``);
  what calibration learns (per-channel weights or one scale per term), the starting parameters and how they go back
  into a weights file;
* the per-term distance ``D_k`` (:meth:`Formulation.term_difference`) and how terms combine
  (:meth:`Formulation.combine`);
* calibration's design matrix and prediction (:meth:`Formulation.design_matrix`, :meth:`Formulation.predict`),
  built from the same two methods, so a fitted distance is the metric's distance.

The metric (:class:`~invariant_lpips.InvariantLPIPS`), the cache-based scorers and calibration all call
it; nothing else writes a formula or compares a formulation's name.

A *term* ``k`` is one (space, statistic, tap) key, e.g. ``unit.mean.pool3``, with non-negative per-channel
weights ``w_k`` (C_k,). Its weighted squared difference is ``D_k(x, y) = sum_c w_kc (s_kc(x) - s_kc(y))^2``.
The built-in formulations:

``weighted`` (LPIPS-style GAP) ``d = sum_k D_k``                      terms ``unit.mean.<tap>``
``paper`` (Alabau-Bosque)    ``d = sqrt( sum_k D_k / C )``,  w_k = (per-channel weight)^2,  C = sum_k C_k;
                             terms ``raw.mean.<tap>``
``mean-spread``              ``d = sum_k a_k (sqrt(D_k + e^2) - e)``  with scalars ``a_k >= 0``, e = 1e-6
``mean-spread-sq``           ``d = sum_k a_k D_k``  (the same terms, summed as squares, as LPIPS does)
``texture``                  ``d = sum_k a_k T_k`` on *raw* statistics, where for a trunk tap
                             ``T_k = sum_c w_kc (1 - (2 s_x s_y + c0) / (s_x^2 + s_y^2 + c0)) / sum_c w_kc``
                             ``= sum_c w_kc (s_x - s_y)^2 / (s_x^2 + s_y^2 + c0) / sum_c w_kc``
                             (DISTS' texture similarity of pooled means and spreads, c0 = 1e-6; an energy
                             floor ``kappa`` adds kappa x the tap's mean channel energy to the denominator,
                             see :class:`TextureFormulation`) and for the CIELab tap ``T_k = D_k``
                             (squared differences, Lab / 100)

``mean-spread`` sums *norms*, not squared norms: a local distortion covering a fraction ``a`` of the image
moves a pooled statistic by about ``a``, so ``D_k`` shrinks like ``a^2`` but its norm like ``a`` (as LPIPS,
which compares before pooling). The ``e`` keeps the gradient finite at d(x, x) = 0.

Calibration fits a model linear in its parameters given a per-pair design row ``X``:

==========  ==========================================  ============================  ===================
formulation  X (per pair)                                parameters                    distance
==========  ==========================================  ============================  ===================
weighted    ``(s(x) - s(y))^2`` per channel, (D,)        per-channel ``w`` (D,)        ``X @ w``
paper       ``(s(x) - s(y))^2`` per channel, (D,)        per-channel ``w`` (D,)        ``sqrt(X @ w^2 / D)``
mean-spr.  ``sqrt(D_k + e^2) - e`` per term, (K,)       per-term scale ``a`` (K,)     ``X @ a``
mean-sp.sq ``D_k`` per term, (K,)                        per-term scale ``a`` (K,)     ``X @ a``
texture     ``T_k`` per term, (K,)                        per-term scale ``a`` (K,)     ``X @ a``
==========  ==========================================  ============================  ===================

Shapes: statistics dicts of (N, C_k) tensors (N broadcasts between the two sides: one side may hold 1);
:meth:`Formulation.distance` returns (N,) and the per-term (N, K) contributions.

>>> D = torch.tensor([[4.0, 9.0]])                       # D_k of one pair, two terms
>>> get_formulation("weighted").combine(D)[0]
tensor([13.])
>>> get_formulation("paper").combine(D, n_channels=13)[0]
tensor([1.])
>>> get_formulation("mean-spread-sq").combine(D, torch.tensor([1.0, 2.0]))
(tensor([22.]), tensor([[ 4., 18.]]))
>>> get_formulation("paper").terms(("pool1", "pool2"), ("mean",), ())
['raw.mean.pool1', 'raw.mean.pool2']
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from .pooled import (CHANNELS, COLOUR_TAP, MAP_STATISTICS, Stats, applies, check_statistics, term_key, term_parts,
                     term_tap)
from .structure import compare_maps

#: the ``e`` of the ``mean-spread`` formulation
NORM_EPS = 1e-6
#: the ``c0`` of the ``texture`` formulation (DISTS' constant)
TEXTURE_C = 1e-6
#: floor of the squared channel norm in a registered term's unit normalisation (finite gradients at f = 0)
REGISTERED_EPS = 1e-10
#: elements per block of rows in a registered comparison (batch x channels x rows x width; keeps it in cache)
REGISTERED_BLOCK = 1 << 19
#: the key of a term's scale in a weights file
SCALE_PREFIX = "scale."

Weights = Mapping[str, torch.Tensor]


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not NaN/Inf) gradient at 0, so d(x, x) = 0 is differentiable."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


class Formulation:
    """Base class: weighted squared differences per term, one scale per term, summed.

    Subclasses override what differs: :attr:`space`, :attr:`mean_only`,
    :meth:`term_difference` (e.g. a map-valued statistic), :meth:`transform` (per-term values before
    the scales), :meth:`combine`, :meth:`effective_weights`.
    """

    #: registry key
    name: str = ""
    #: feature space of the trunk terms: ``raw`` (f) or ``unit`` (LPIPS' unit-normalised u)
    space: str = "unit"
    #: reads the GAP mean of the trunk taps only (no other statistic, no colour tap)
    mean_only: bool = False
    #: compares map-valued statistics (coarse maps, :data:`~invariant_lpips.features.pooled.MAP_STATISTICS`)
    reads_maps: bool = False
    #: compares registered (pair) terms, computed from both images at once (see :class:`RegisteredFormulation`)
    pair_terms: bool = False

    def __repr__(self) -> str:
        return f"<formulation {self.name!r}>"

    # ------------------------------------------------------------------ what it reads
    def check(self, statistics: Sequence[str], colour_statistics: Sequence[str]) -> None:
        """Raise a ValueError for statistics this formulation cannot read."""
        check_statistics(tuple(statistics) + tuple(colour_statistics))
        maps = [s for s in tuple(statistics) + tuple(colour_statistics) if s in MAP_STATISTICS]
        if maps and not self.reads_maps:
            raise ValueError(f"formulation {self.name!r} compares (N, C) statistics, not the coarse maps {maps}; "
                             "use formulation 'texture-structure'")
        if maps and self.space != "raw":
            raise ValueError(f"coarse maps {maps} are kept in the raw space only; formulation {self.name!r} reads "
                             f"the {self.space!r} space")
        if self.mean_only and (tuple(statistics) != ("mean",) or tuple(colour_statistics)):
            raise ValueError(f"formulation {self.name!r} uses the GAP mean only; use formulation 'mean-spread' "
                             "for other statistics or the colour tap")

    def terms(self, taps: Sequence[str], statistics: Sequence[str], colour_statistics: Sequence[str] = ()
              ) -> List[str]:
        """The statistics keys the distance uses, in a fixed order (statistic-major over the trunk taps,
        then the colour tap)."""
        out = [term_key(self.space, stat, tap) for stat in statistics for tap in taps if applies(stat, tap)]
        return out + [term_key(COLOUR_TAP, stat, COLOUR_TAP) for stat in colour_statistics]

    # ------------------------------------------------------------------ weight layout
    def effective_weights(self, w: torch.Tensor) -> torch.Tensor:
        """A tap's stored per-channel weights -> the ``w_k`` of ``D_k`` (the paper squares them)."""
        return w

    def channel_weights(self, terms: Sequence[str], lins: Weights) -> Dict[str, torch.Tensor]:
        """Per-term channel weights ``w_k`` from per-tap weights ``lins`` (tap -> (C,))."""
        return {t: self.effective_weights(lins[term_tap(t)].float()) for t in terms}

    def term_scales(self, terms: Sequence[str], tensors: Weights) -> List[float]:
        """The ``a_k`` of a weights dict (``scale.<term>``; 1 where absent)."""
        return [float(tensors.get(SCALE_PREFIX + t, torch.ones(1)).reshape(-1)[0]) for t in terms]

    # ------------------------------------------------------------------ the distance
    def term_difference(self, key: str, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``D_k`` of one term: statistics (N, C) float32, weights (C,) -> (N,)."""
        diff = a - b
        return (w * diff * diff).sum(dim=-1)

    def term_differences(self, s0: Stats, s1: Stats, terms: Sequence[str], channel_weights: Weights,
                         pair: Optional[Mapping[str, torch.Tensor]] = None) -> torch.Tensor:
        """``D_k`` for every term: (N, K) float32 (N broadcasts between the two sides). ``pair``: the ``D_k``
        (N,) of pair terms, computed by the pair step (:mod:`~invariant_lpips.features.registration`)
        through this formulation's :meth:`term_difference` on the registered maps."""
        cols = []
        for k in terms:
            if pair is not None and k in pair:
                cols.append(pair[k].float())
                continue
            a, b = s0[k], s1[k]  # float32, or float64 from a .double() metric
            work = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
            a, b = a.to(work), b.to(work)
            cols.append(self.term_difference(k, a, b, channel_weights[k].to(a.device, work)))
        n = max(c.shape[0] for c in cols)
        return torch.stack([c.expand(n) for c in cols], dim=-1)

    def transform(self, D: torch.Tensor) -> torch.Tensor:
        """Per-term values before the scales (identity: squared differences)."""
        return D

    def _weigh(self, values: torch.Tensor, scales: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        if scales is None:
            raise ValueError(f"the {self.name!r} formulation needs term_scales (one a_k >= 0 per term)")
        per = scales.to(values.device, values.dtype) * values
        return per.sum(-1), per

    def combine(self, D: torch.Tensor, term_scales: Optional[torch.Tensor] = None, n_channels: int = 1
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-term ``D`` (..., K) -> (distance (...), per-term contributions (..., K))."""
        return self._weigh(self.transform(D), term_scales)

    def distance(self, s0: Stats, s1: Stats, terms: Sequence[str], lins: Weights,
                 term_scales: Optional[torch.Tensor] = None, pair: Optional[Mapping[str, torch.Tensor]] = None
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The distance between two batches of statistics: ((N,), per-term (N, K)).

        ``lins``: per-tap channel weights (tap -> (C,)); ``term_scales``: (K,) ``a_k``; ``pair``: the
        ``D_k`` of pair terms (see :meth:`term_differences`).
        """
        n_channels = sum(CHANNELS[term_tap(t)] for t in terms)
        D = self.term_differences(s0, s1, terms, self.channel_weights(terms, lins), pair)
        return self.combine(D, term_scales, n_channels)

    # ------------------------------------------------------------------ calibration
    def initial_parameters(self, terms: Sequence[str], tensors: Weights) -> torch.Tensor:
        """The parameter vector calibration starts from (float64): here one scale per term."""
        return torch.tensor(self.term_scales(terms, tensors), dtype=torch.float64)

    def parameters_to_weights(self, terms: Sequence[str], params: torch.Tensor, tensors: Weights
                              ) -> Dict[str, torch.Tensor]:
        """The fitted vector back into a weights-file dict (tap -> (C,), ``scale.<term>`` -> (1,))."""
        params = params.detach().float()
        out = {k: v for k, v in tensors.items() if not k.startswith(SCALE_PREFIX)}
        out.update({SCALE_PREFIX + t: params[i:i + 1].clone() for i, t in enumerate(terms)})
        return out

    def design_matrix(self, s0: Stats, s1: Stats, terms: Sequence[str], tensors: Weights) -> torch.Tensor:
        """``X`` (P, K) float64 for P pairs of statistics: the per-term values the scales multiply."""
        D = self.term_differences(s0, s1, terms, self.channel_weights(terms, tensors))
        return self.transform(D.double())

    def predict(self, X: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """The distance of every pair from its design row and the parameters: (P,)."""
        return self._weigh(X, params)[0]


class ChannelFormulation(Formulation):
    """GAP means with learned per-channel weights (``lpips``, ``paper``): ``d`` from ``sum_k D_k``."""

    mean_only = True

    def combine(self, D, term_scales=None, n_channels=1):
        return D.sum(-1), D

    def initial_parameters(self, terms, tensors):
        return torch.cat([tensors[term_tap(t)].reshape(-1) for t in terms]).double()

    def parameters_to_weights(self, terms, params, tensors):
        params = params.detach().float()
        out, i = {}, 0
        for term in terms:
            c = CHANNELS[term_tap(term)]
            out[term_tap(term)] = params[i:i + c].clone()
            i += c
        if i != params.numel():
            raise ValueError(f"{params.numel()} parameters for terms {list(terms)}, which need {i}")
        return out

    def design_matrix(self, s0, s1, terms, tensors):
        """``X`` (P, D) float64: per-channel squared differences, the weights not applied."""
        return torch.cat([(s0[t].double() - s1[t].double()) ** 2 for t in terms], dim=1)

    def predict(self, X, params):
        # one "term" holding every channel: D = X @ w_eff, then the formulation's own combine
        D = (X @ self.effective_weights(params)).unsqueeze(-1)
        return self.combine(D, n_channels=X.shape[1])[0]


class WeightedFormulation(ChannelFormulation):
    name = "weighted"
    space = "unit"


class PaperFormulation(ChannelFormulation):
    name = "paper"
    space = "raw"

    def effective_weights(self, w):
        return w * w

    def combine(self, D, term_scales=None, n_channels=1):
        per = D / n_channels
        return safe_sqrt(per.sum(-1)), per


class MeanSpreadFormulation(Formulation):
    name = "mean-spread"

    def transform(self, D):
        return torch.sqrt(D + NORM_EPS ** 2) - NORM_EPS


class MeanSpreadSquaredFormulation(Formulation):
    name = "mean-spread-sq"


class TextureFormulation(Formulation):
    """DISTS' texture similarity of pooled statistics, with an optional *energy floor* ``kappa``.

    For a trunk tap's statistic (means or spreads ``s`` (N, C) of the two images)::

        T_k = sum_c w_c (s_xc - s_yc)^2 / (s_xc^2 + s_yc^2 + kappa * E + c0) / sum_c w_c
        E   = sum_c w_c (s_xc^2 + s_yc^2) / sum_c w_c            (the tap's mean channel energy, per pair)

    ``kappa = 0`` is DISTS' term (every channel's *relative* change counts alike). With ``kappa > 0`` a
    channel is compared relative to at least ``kappa`` times the tap's mean energy (divisive normalisation
    by the pooled activity of the tap): a large relative change of a weak channel, such as the finest
    channels after a slight blur, costs little; a change of a strong channel costs as before. ``T_k`` is
    in [0, 1], 0 at ``s_x = s_y``, unchanged when both statistics are scaled together, symmetric, and its
    gradient is finite everywhere. The CIELab tap is compared by squared differences (Lab / 100).
    """

    name = "texture"
    space = "raw"

    def __init__(self, floor: float = 0.0):
        floor = float(floor)
        if not floor >= 0.0 or floor == float("inf"):
            raise ValueError(f"the texture energy floor kappa must be a finite number >= 0, got {floor!r}")
        #: ``kappa``: a channel's change is taken relative to at least kappa x the tap's mean channel energy
        self.floor = floor

    def __repr__(self) -> str:
        return f"<formulation {self.name!r}" + (f" kappa={self.floor:g}>" if self.floor else ">")

    def term_difference(self, key, a, b, w):
        if term_tap(key) == COLOUR_TAP:
            return super().term_difference(key, a, b, w)
        diff = a - b  # 1 - (2ab + c) / (a^2 + b^2 + c), written so that it is exactly >= 0 and 0 at a = b
        energy = a * a + b * b
        wsum = w.sum().clamp_min(1e-12)
        if self.floor:
            energy = energy + self.floor * (w * energy).sum(dim=-1, keepdim=True) / wsum
        dissim = diff * diff / (energy + TEXTURE_C)
        return (w * dissim).sum(dim=-1) / wsum


class TextureStructureFormulation(TextureFormulation):
    """``texture`` plus *structure* terms: coarse maps compared where things are.

    ``d = sum_k a_k T_k + sum_j a_j S_j``: the texture terms ``T_k`` of pooled means and spreads (and the
    CIELab tap), as :class:`TextureFormulation`; for a coarse-map statistic ``coarse<g>`` of a tap,
    ``S_j = sum_c w_c sum_p (a~ - b~)^2 / (sum_c w_c sum_p (a~^2 + b~^2) + c0)`` with ``a~``, ``b~`` the
    maps centred per channel (:func:`~invariant_lpips.features.structure.compare_maps`, ``centred``): the
    energy of the difference of the two arrangements relative to their energy, in [0, 2], 0 at a = b.
    A shift by ``t`` px costs about ``(t / g)^2`` of that for small ``t`` (near zero at 1-2 px for g = 32)
    and grows until ``t`` is about ``g``; a mirror, a shuffle or another photo cost O(1).
    """

    name = "texture-structure"
    reads_maps = True
    comparison = "centred"

    def term_difference(self, key, a, b, w):
        if term_parts(key)[1] in MAP_STATISTICS:
            return compare_maps(a, b, self.comparison, w)
        return super().term_difference(key, a, b, w)


#: the statistic name of a registered (pair) term: ``"<space>.reg.<tap>"``
PAIR_STATISTIC = "reg"


def is_pair_term(key: str) -> bool:
    """A term computed from both images at once (registration), not from per-image statistics."""
    return term_parts(key)[1] == PAIR_STATISTIC


#: the block sizes (px) of the low-passed CIELab registered terms ``lab<s>.reg.lab`` (divide the strips' rows)
LAB_BLOCKS = (2, 4, 8)


def lab_block(space: str) -> int:
    """The block size of a CIELab registered term's space: ``"lab"`` -> 1 (pixels), ``"lab<s>"`` -> ``s``
    (block means of ``s`` x ``s`` px, ``s`` in :data:`LAB_BLOCKS`); 0 for any other space."""
    if space == COLOUR_TAP:
        return 1
    if space.startswith(COLOUR_TAP) and space[len(COLOUR_TAP):].isdigit():
        s = int(space[len(COLOUR_TAP):])
        return s if s in LAB_BLOCKS else 0
    return 0


def _block_means(x: torch.Tensor, s: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(N, C, h, w) -> its means over ``s`` x ``s`` blocks (partial blocks at the far edges: their own
    pixels), and each block's pixel count (1, 1, h', w')."""
    means = torch.nn.functional.avg_pool2d(x, s, s, ceil_mode=True)
    ones = torch.ones((1, 1) + tuple(x.shape[-2:]), device=x.device, dtype=x.dtype)
    return means, torch.nn.functional.avg_pool2d(ones, s, s, ceil_mode=True, divisor_override=1)


class RegisteredFormulation(TextureStructureFormulation):
    """``texture-structure`` plus *registered* terms: fine maps compared position by position after the
    two images are aligned (:mod:`~invariant_lpips.features.registration`).

    ``d = sum_k a_k T_k + sum_j a_j S_j + sum_r a_r M_r``: texture ``T_k`` and coarse structure ``S_j`` as
    :class:`TextureStructureFormulation`; for a registered term ``r`` = ``<space>.reg.<tap>``, on the maps
    ``a``, ``b`` (N, C, h, w) of the two images' *overlap* after the global displacement is undone:

    * ``unit`` space (a trunk tap): ``M_r = mean_p sum_c w_c (u_c(p) - v_c(p))^2 / sum_c w_c``, with ``u``,
      ``v`` the maps unit-normalised over channels at each position (LPIPS' comparison, averaged over the
      overlap);
    * ``lab`` (the CIELab image): ``M_r = mean_p sum_c w_c ((a_c(p) - b_c(p)) / 100)^2 / sum_c w_c``;
    * ``lab<s>`` (``s`` in :data:`LAB_BLOCKS`; the CIELab image low-passed): the same on the means of
      ``s`` x ``s`` px blocks, each block counted by its pixels, ``M_r = sum_B |B| sum_c w_c (a_cB - b_cB)^2
      / (h w sum_c w_c)``. Independent pixel noise of variance ``v`` adds ``v / s^2`` instead of ``v``, so
      two noise draws differ by less than in pixels; a change of colour or of the low frequencies costs
      as in ``lab``.

    With a pooling exponent ``q > 1`` (Minkowski pooling over positions) the per-position values ``e_p``
    (the summands above, ``e_p = sum_c w_c (u_c(p) - v_c(p))^2 / sum_c w_c``) are pooled as
    ``M_r = (mean_p e_p^q)^(1/q)``: a few positions changed a lot (impulses, a moved patch) weigh more than
    the same total spread thinly (slight ringing in flat regions). ``q = 1`` is the plain mean. ``exponents``
    (``{term: q}``) gives single registered terms their own ``q`` (e.g. ``{"lab.reg.lab": 2.0}``: only the
    CIELab differences pooled); the others take ``exponent``. The pair step sums :meth:`term_difference`
    (``mean_p e_p^q``) over strips and anchorings and then takes :meth:`pair_value` (the root), so strips
    still give the whole image's value.

    ``M_r`` is 0 for identical images and for a whole-pixel shift within the registration's range; a
    mirror or a shuffle, which no global shift explains, costs as much as unaligned LPIPS. Every pixel of
    the overlap gets a gradient (zero, not NaN, at identical images); the displacement itself is detached.
    """

    name = "texture-structure-registered"
    #: computes registered (pair) terms, ``"<space>.reg.<tap>"`` (see :func:`is_pair_term`)
    pair_terms = True

    def __init__(self, floor: float = 0.0, exponent: float = 1.0, exponents: Optional[Dict[str, float]] = None):
        super().__init__(floor)

        def checked(q, what):
            q = float(q)
            if not 1.0 <= q < float("inf"):
                raise ValueError(f"{what}: the pooling exponent q must be a finite number >= 1, got {q!r}")
            return q

        #: ``q``: Minkowski pooling of the registered terms over positions (1: the mean)
        self.exponent = checked(exponent, "the registered terms")
        #: per-term ``q`` overriding :attr:`exponent` (``{"<space>.reg.<tap>": q}``)
        self.exponents = {}
        for key, q in (exponents or {}).items():
            if not is_pair_term(key):
                raise ValueError(f"exponents: {key!r} is not a registered term ('<space>.reg.<tap>', e.g. "
                                 f"'lab.reg.lab' or 'unit.reg.relu1_2')")
            self.exponents[key] = checked(q, f"registered term {key!r}")

    def exponent_for(self, key: Optional[str]) -> float:
        """The pooling exponent ``q`` of registered term ``key`` (:attr:`exponent` unless overridden)."""
        return self.exponents.get(key, self.exponent)

    def __repr__(self) -> str:
        text = super().__repr__()
        extra = (f" q={self.exponent:g}" if self.exponent != 1.0 else "") + "".join(
            f" {k}:q={q:g}" for k, q in sorted(self.exponents.items()))
        return text[:-1] + extra + ">" if extra else text

    def pair_value(self, pooled: torch.Tensor, key: Optional[str] = None) -> torch.Tensor:
        """Registered term ``key`` from its pooled ``mean_p e_p^q`` (:meth:`term_difference`): the ``q``-th
        root, with a zero (not NaN) gradient at 0."""
        q = self.exponent_for(key)
        if q == 1.0:
            return pooled
        positive = pooled > 0
        root = torch.where(positive, pooled, torch.ones_like(pooled)) ** (1.0 / q)
        return torch.where(positive, root, torch.zeros_like(pooled))

    def term_difference(self, key, a, b, w):
        space, stat, tap = term_parts(key)
        if stat != PAIR_STATISTIC:
            return super().term_difference(key, a, b, w)
        block = lab_block(space)
        if space != "unit" and not block:  # the CIELab maps are already (L*, a*, b*) / 100
            raise ValueError(f"registered term {key!r}: the space must be 'unit' (a trunk tap), 'lab' or "
                             f"'lab<s>' with s in {list(LAB_BLOCKS)}")
        unit = space == "unit"
        q = self.exponent_for(key)
        h, wd = a.shape[-2:]
        if b.shape[-2:] != (h, wd):
            raise ValueError(f"registered term {key!r}: maps of sizes {tuple(a.shape[-2:])} and "
                             f"{tuple(b.shape[-2:])} (compare the overlap of two registered images)")
        count = None
        if block > 1:  # block means, each block weighed by its pixels (the sum over pixels of its value)
            (a, count), (b, _) = _block_means(a, block), _block_means(b, block)
        # the same formula on blocks of rows: the large maps' temporaries stay in the CPU's cache (the
        # per-position comparison is local, so the blocks' sums add up to the whole map's)
        rows = max(1, REGISTERED_BLOCK // max(1, a.shape[1] * a.shape[-1] * max(a.shape[0], b.shape[0])))
        wv = w.view(1, -1, 1, 1)
        wsum = w.sum().clamp_min(1e-12)
        total = None
        for r0 in range(0, a.shape[-2], rows):
            u, v = a[..., r0:r0 + rows, :], b[..., r0:r0 + rows, :]
            if unit:  # LPIPS' unit normalisation, with a floor that keeps the gradient finite at f = 0
                u = u * torch.rsqrt((u * u).sum(dim=1, keepdim=True) + REGISTERED_EPS)
                v = v * torch.rsqrt((v * v).sum(dim=1, keepdim=True) + REGISTERED_EPS)
            diff = u - v
            if q == 1.0:  # the plain mean: one reduction, divided by sum_c w_c at the end
                sq = wv * diff * diff
                part = (sq if count is None else sq * count[..., r0:r0 + rows, :]).sum(dim=(1, 2, 3))
            else:
                e = ((wv * diff * diff).sum(dim=1) / wsum) ** q                   # (N, rows, w): e_p^q
                part = (e if count is None else e * count[:, 0, r0:r0 + rows, :]).sum(dim=(1, 2))
            total = part if total is None else total + part
        return total / (h * wd) / (wsum if q == 1.0 else 1.0)


_REGISTRY: Dict[str, Formulation] = {}


def register_formulation(formulation: Formulation, overwrite: bool = False) -> Formulation:
    """Add a formulation instance to the registry under its ``name``."""
    if not formulation.name:
        raise ValueError("a formulation needs a name")
    if formulation.name in _REGISTRY and not overwrite:
        raise ValueError(f"formulation {formulation.name!r} is already registered (pass overwrite=True)")
    _REGISTRY[formulation.name] = formulation
    return formulation


for _f in (PaperFormulation(), WeightedFormulation(), MeanSpreadFormulation(), MeanSpreadSquaredFormulation(),
           TextureFormulation(), TextureStructureFormulation(), RegisteredFormulation()):
    register_formulation(_f)

def get_formulation(formulation: Union[str, Formulation]) -> Formulation:
    """A registered formulation by name (or the instance itself)."""
    if isinstance(formulation, Formulation):
        return formulation
    try:
        return _REGISTRY[formulation]
    except KeyError:
        raise ValueError(f"formulation must be one of {tuple(_REGISTRY)}, got {formulation!r}") from None


def list_formulations() -> List[str]:
    return list(_REGISTRY)
