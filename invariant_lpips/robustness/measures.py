"""Translation-robustness measures for any perceptual metric.

A *metric* is any callable ``metric(x, y) -> Tensor`` taking two float tensors
``(N, 3, H, W)`` with values in ``[0, 1]`` and returning ``N`` distances (shape
``(N,)``, ``(N, 1)``, ``(N, 1, 1, 1)``...; it is flattened), lower meaning more
similar. Every measure here calls the metric under :func:`torch.no_grad`, in
batches of at most ``batch_size`` pairs, with tensors on the device of the
input images (nothing is moved). Both arguments always have the same batch
size (references are expanded, never broadcast implicitly), so the metric need
not support broadcasting.

Images may be given as a tensor ``(N, 3, H, W)`` or ``(3, H, W)``, or as a
sequence of ``(3, H, W)`` / ``(1, 3, H, W)`` tensors (sizes may differ between
images; each batch only mixes pairs of one size).

Measures
--------
* :func:`shift_sweep` -- ``d(x, T_k x)`` for a range of shifts ``k``.
* :func:`~invariant_lpips.robustness.periodicity.periodicity` -- dominant period and ripple of a
  sweep (the residual periodic aliasing that discrete pooling leaves, arXiv 2604.27870).
* :func:`rank_flip_rate` -- how often a k-pixel shift flips which of two
  distorted images the metric prefers (with :func:`make_distortion_triplets`
  and :func:`invariant_lpips.distortions.tensor.default_distortions`).
* :func:`shift_to_distortion_ratio` -- a 1-pixel shift measured in units of a
  just-visible distortion.
* :func:`evaluate_metric` -- all of the above as one JSON-able dict.

The shift operators and the distortions come from the distortion library
(:mod:`invariant_lpips.distortions.shifts`, :mod:`invariant_lpips.distortions.tensor`).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..distortions.shifts import circular_shift, crop_shift_pair, mirror_mosaic_shift, subpixel_shift
from ..distortions.tensor import Distortion, default_distortions, gaussian_blur, gaussian_noise
from .periodicity import periodicity
from .report import jsonable

__all__ = [
    "Metric",
    "Triplet",
    "RankFlipResult",
    "ShiftToDistortionResult",
    "PROTOCOLS",
    "shift_sweep",
    "make_distortion_triplets",
    "rank_flip_rate",
    "shift_to_distortion_ratio",
    "evaluate_metric",
    "evaluate_stages",
]

Metric = Callable[[Tensor, Tensor], Tensor]
Images = Union[Tensor, Sequence[Tensor]]

#: sweep protocols understood by :func:`shift_sweep`
PROTOCOLS = ("crop", "circular", "mirror", "fourier", "bilinear")


# --------------------------------------------------------------------------- helpers


def _as_image_list(images: Images) -> List[Tensor]:
    """A list of ``(1, C, H, W)`` float tensors (views where possible)."""
    if isinstance(images, Tensor):
        if images.dim() == 3:
            images = images.unsqueeze(0)
        if images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W) or (C, H, W), got shape {tuple(images.shape)}")
        out = [images[i : i + 1] for i in range(images.shape[0])]
    else:
        out = []
        for i, im in enumerate(images):
            if not isinstance(im, Tensor):
                raise TypeError(f"image {i} is a {type(im).__name__}, expected a torch.Tensor")
            out.append(_as_4d(im, f"image {i}"))
    for i, im in enumerate(out):
        if not im.is_floating_point():
            raise TypeError(f"image {i} must be a float tensor in [0, 1], got dtype {im.dtype}")
    if not out:
        raise ValueError("no images given")
    return out


def _as_4d(t: Tensor, what: str = "tensor") -> Tensor:
    if t.dim() == 3:
        return t.unsqueeze(0)
    if t.dim() == 4 and t.shape[0] == 1:
        return t
    raise ValueError(f"{what} must be (C, H, W) or (1, C, H, W), got shape {tuple(t.shape)}")


def _flatten_distances(out: Any, n: int) -> np.ndarray:
    t = out if isinstance(out, Tensor) else torch.as_tensor(out)
    t = t.detach().reshape(-1)
    if t.numel() != n:
        raise ValueError(
            f"metric returned {t.numel()} values (shape {tuple(getattr(out, 'shape', ()))}) "
            f"for a batch of {n} pairs; it must return one distance per pair"
        )
    return t.to(device="cpu", dtype=torch.float64).numpy()


def _view_key(t: Tensor) -> tuple:
    """Identity of a tensor view (same storage, offset, shape and strides -> same pixels)."""
    return (t.data_ptr(), t.device.type, tuple(t.shape), tuple(t.stride()), t.dtype)


def _broadcasts(metric: Metric) -> bool:
    """Whether ``metric`` computes a batch-of-1 first argument once itself: its own ``broadcasts``
    attribute, or that of its registry spec (:class:`~invariant_lpips.metric.registry.MetricSpec`)."""
    if hasattr(metric, "broadcasts"):
        return bool(metric.broadcasts)
    return bool(getattr(getattr(metric, "spec", None), "broadcasts", False))


def _evaluate_pairs(metric: Metric, pairs: Iterable[Tuple[Tensor, Tensor]], batch_size: int,
                    dedupe: bool = False) -> np.ndarray:
    """``metric`` over a stream of ``(x, y)`` pairs of ``(1, C, H, W)`` tensors, batched.

    Consecutive pairs of the same size are concatenated into batches of at most
    ``batch_size``; the result keeps the order of the stream. A pair that repeats
    an earlier one (the same tensor views, as in rank-flip triplets that share
    their distorted images) is computed once. When every ``x`` of a batch is the
    same view and the metric declares ``broadcasts = True``, it receives that
    image once, as a batch of 1 (our metrics then compute its features once).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    broadcasts = _broadcasts(metric)
    order: List[int] = []            # stream position -> unique pair index
    unique: Dict[tuple, Tuple[int, Tensor, Tensor]] = {}
    results: List[np.ndarray] = []
    xs: List[Tensor] = []
    ys: List[Tensor] = []
    xkeys: List[tuple] = []
    shape = None

    def flush() -> None:
        same_ref = broadcasts and all(k == xkeys[0] for k in xkeys)
        x = xs[0] if same_ref else torch.cat(xs, 0)
        y = torch.cat(ys, 0)
        with torch.no_grad():
            out = metric(x, y)
        results.append(_flatten_distances(out, y.shape[0]))
        xs.clear()
        ys.clear()
        xkeys.clear()

    for x, y in pairs:
        if x.shape != y.shape:
            raise ValueError(f"pair of different shapes {tuple(x.shape)} and {tuple(y.shape)}")
        if dedupe:
            key = (_view_key(x), _view_key(y))
            if key in unique:
                order.append(unique[key][0])
                continue
            unique[key] = (len(unique), x, y)  # holding x, y keeps their addresses unique
            order.append(unique[key][0])
        else:
            order.append(len(order))
        if xs and (x.shape != shape or len(xs) >= batch_size):
            flush()
        shape = x.shape
        xs.append(x)
        ys.append(y)
        xkeys.append(_view_key(x))
    if xs:
        flush()
    if not results:
        return np.zeros(0, dtype=np.float64)
    values = np.concatenate(results)
    return values[np.asarray(order, dtype=np.int64)]


def _shift_values(shifts: Iterable) -> List:
    vals = list(shifts)
    if not vals:
        raise ValueError("shifts is empty")
    return vals


def _int_shifts(shifts: Sequence, protocol: str) -> List[int]:
    out = []
    for s in shifts:
        f = float(s)
        if not f.is_integer():
            raise ValueError(f"protocol {protocol!r} needs whole-pixel shifts, got {s!r}")
        out.append(int(f))
    return out


# --------------------------------------------------------------------------- sweep


def _shifted_pairs(
    im: Tensor, shifts: Sequence, axis: str, protocol: str, margin: Optional[int]
) -> Iterator[Tuple[Tensor, Tensor]]:
    horizontal = axis == "x"
    if protocol == "crop":
        ref, _ = crop_shift_pair(im, 0, margin, axis)
        for k in shifts:
            yield ref, crop_shift_pair(im, k, margin, axis)[1]
    elif protocol == "circular":
        for k in shifts:
            yield im, circular_shift(im, k, 0) if horizontal else circular_shift(im, 0, k)
    elif protocol == "mirror":
        for k in shifts:
            yield im, mirror_mosaic_shift(im, k, 0) if horizontal else mirror_mosaic_shift(im, 0, k)
    elif protocol in ("fourier", "bilinear"):
        for k in shifts:
            shifted = subpixel_shift(im, k, 0, protocol) if horizontal else subpixel_shift(im, 0, k, protocol)
            yield im, shifted.clamp(0, 1)
    else:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


def shift_sweep(
    metric: Metric,
    images: Images,
    shifts: Iterable = range(0, 33),
    axis: str = "x",
    protocol: str = "crop",
    margin: Optional[int] = None,
    batch_size: int = 16,
) -> np.ndarray:
    """``d(x, T_k x)`` for every image and shift: an array ``(n_images, n_shifts)``.

    ``protocol``:

    * ``'crop'`` (ST-LPIPS): ``d(ref, shifted)`` with
      ``(ref, shifted) = crop_shift_pair(x, k, margin, axis)``; the reference
      crop ``[0, W - margin)`` is the same for every ``k``. Shifts must be
      integers in ``[0, margin]``; ``margin`` defaults to ``max(shifts)``.
    * ``'circular'``: ``d(x, circular_shift(x, k))`` (wrap-around).
    * ``'mirror'`` (the authors'): ``d(x, mirror_mosaic_shift(x, k))``.
    * ``'fourier'`` / ``'bilinear'``: ``d(x, subpixel_shift(x, k, method))``,
      clamped to ``[0, 1]``; shifts may be fractional.

    ``axis`` is ``'x'`` (horizontal shifts) or ``'y'``. ``margin`` is used by
    the crop protocol only. Values are float64 on the CPU.
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    shifts = _shift_values(shifts)
    if protocol in ("crop", "circular", "mirror"):
        shifts = _int_shifts(shifts, protocol)
    if protocol == "crop":
        if margin is None:
            margin = max(shifts)
        bad = [k for k in shifts if k < 0 or k > margin]
        if bad:
            raise ValueError(f"crop protocol needs 0 <= k <= margin={margin}; bad shifts {bad}")
    ims = _as_image_list(images)

    def stream():
        for im in ims:
            yield from _shifted_pairs(im, shifts, axis, protocol, margin)

    d = _evaluate_pairs(metric, stream(), batch_size)
    return d.reshape(len(ims), len(shifts))


# --------------------------------------------------------------------------- rank-flip triplets


class Triplet(NamedTuple):
    """``(ref, p0, p1)`` plus labels; indexable like a 3-tuple for the first three."""

    ref: Tensor
    p0: Tensor
    p1: Tensor
    name0: str = ""
    name1: str = ""
    image_index: int = -1


def make_distortion_triplets(
    images: Images, distortions: Optional[Sequence[Distortion]] = None
) -> List[Triplet]:
    """All unordered pairs of distortions of every image, as :class:`Triplet` s.

    ``distortions`` is a list of ``(name, fn)`` with ``fn`` mapping a
    ``(1, C, H, W)`` image in [0, 1] to one of the same shape (default:
    :func:`default_distortions`, 17 of them, 136 pairs per image). Each
    distortion is computed once per image; triplets share those tensors.
    Order: image by image, pairs in :func:`itertools.combinations` order, with
    ``p0`` the distortion listed first.
    """
    if distortions is None:
        distortions = default_distortions()
    distortions = list(distortions)
    if len(distortions) < 2:
        raise ValueError("need at least two distortions to form pairs")
    names = [n for n, _ in distortions]
    if len(set(names)) != len(names):
        raise ValueError(f"distortion names must be unique, got {names}")
    out: List[Triplet] = []
    for i, im in enumerate(_as_image_list(images)):
        with torch.no_grad():
            dist = []
            for name, fn in distortions:
                y = fn(im)
                if y.shape != im.shape:
                    raise ValueError(f"distortion {name!r} changed the shape {tuple(im.shape)} -> {tuple(y.shape)}")
                dist.append(y)
        for a, b in itertools.combinations(range(len(distortions)), 2):
            out.append(Triplet(im, dist[a], dist[b], names[a], names[b], i))
    return out


# --------------------------------------------------------------------------- rank flips


@dataclass
class RankFlipResult:
    """Output of :func:`rank_flip_rate`."""

    shifts: List[int]
    rate: List[float]  #: flips / n_triplets per shift
    flips: List[int]  #: number of flipped triplets per shift
    ties: List[int]  #: triplets with an exact tie (unshifted or shifted) per shift
    n_triplets: int
    baseline_ties: int  #: triplets with d(ref,p0) == d(ref,p1) exactly before shifting
    flipped: np.ndarray = field(repr=False)  #: bool (n_triplets, n_shifts)
    distances: np.ndarray = field(repr=False)  #: (n_triplets, 1 + n_shifts, 2); [:, 0] unshifted
    labels: List[Tuple[int, str, str]] = field(default_factory=list, repr=False)

    def by_pair_kind(self) -> Dict[str, List[float]]:
        """Flip rate per shift grouped by the kinds of the two distortions
        (``'noise|blur'``...; kind = name before ``':'``), when labels are known."""
        groups: Dict[str, List[int]] = {}
        for t, (_, a, b) in enumerate(self.labels):
            ka, kb = sorted((a.split(":")[0], b.split(":")[0]))
            groups.setdefault(f"{ka}|{kb}", []).append(t)
        return {k: self.flipped[idx].mean(axis=0).tolist() for k, idx in sorted(groups.items())}

    def to_dict(self) -> Dict[str, Any]:
        d = {
            "shifts": self.shifts,
            "rate": self.rate,
            "flips": self.flips,
            "ties": self.ties,
            "n_triplets": self.n_triplets,
            "baseline_ties": self.baseline_ties,
        }
        if self.labels and self.n_triplets:
            d["rate_by_pair_kind"] = self.by_pair_kind()
        return jsonable(d)


def _is_triplet_list(obj: Any) -> bool:
    if isinstance(obj, Tensor):
        return False
    try:
        first = obj[0]
    except (TypeError, IndexError, KeyError):
        return False
    return isinstance(first, (tuple, list)) and not isinstance(first, Tensor)


def rank_flip_rate(
    metric: Metric,
    triplets_or_images: Union[Images, Sequence[Sequence[Tensor]]],
    shifts: Iterable[int] = (1, 2, 3),
    margin: Optional[int] = None,
    axis: str = "x",
    distortions: Optional[Sequence[Distortion]] = None,
    batch_size: int = 16,
) -> RankFlipResult:
    """Rate at which a k-pixel shift of the two candidates flips the metric's preference.

    ``triplets_or_images`` is either a sequence of triplets ``(ref, p0, p1)``
    (tensors ``(C, H, W)`` or ``(1, C, H, W)`` of one size per triplet; extra
    items such as :class:`Triplet` labels are kept for reporting) or images,
    from which :func:`make_distortion_triplets` builds the triplets with
    ``distortions``.

    Crop-shift protocol with ``margin`` (default ``max(shifts)``), along
    ``axis``: the reference crop ``ref[0 : W - margin)`` is fixed; the candidate
    crops are ``p[k : W - margin + k)``. For every triplet
    ``pref_k = sign(d(ref, p1_k) - d(ref, p0_k))`` (+1: p0 preferred, -1: p1
    preferred, 0: exact tie), with ``k = 0`` the unshifted baseline. A *flip* at
    shift ``k`` is a strict reversal, ``pref_0 * pref_k < 0``. Ties are exact
    equality only (no tolerance) and never count as flips; they are counted in
    ``ties`` (a tie at ``k = 0`` or at ``k``). ``rate[k] = flips[k] / n_triplets``.
    """
    shifts = _int_shifts(_shift_values(shifts), "crop")
    if margin is None:
        margin = max(max(shifts), 0)
    bad = [k for k in shifts if k < 0 or k > margin]
    if bad:
        raise ValueError(f"rank flips need 0 <= k <= margin={margin}; bad shifts {bad}")
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")

    if _is_triplet_list(triplets_or_images):
        triplets = list(triplets_or_images)  # type: ignore[arg-type]
    else:
        triplets = make_distortion_triplets(triplets_or_images, distortions)  # type: ignore[arg-type]
    labels: List[Tuple[int, str, str]] = []
    for i, t in enumerate(triplets):
        if len(t) < 3:
            raise ValueError(f"triplet {i} has {len(t)} items, expected (ref, p0, p1)")
        if isinstance(t, Triplet) or (hasattr(t, "name0") and hasattr(t, "name1")):
            labels.append((int(getattr(t, "image_index", -1)), str(t.name0), str(t.name1)))
    if len(labels) != len(triplets):
        labels = []
    all_k = [0] + shifts

    def stream():
        for i, t in enumerate(triplets):
            ref, p0, p1 = (_as_4d(v, f"triplet {i} item {j}") for j, v in enumerate(t[:3]))
            if not (ref.shape == p0.shape == p1.shape):
                raise ValueError(f"triplet {i}: shapes differ {tuple(ref.shape)}, {tuple(p0.shape)}, {tuple(p1.shape)}")
            r, _ = crop_shift_pair(ref, 0, margin, axis)
            for k in all_k:
                yield r, crop_shift_pair(p0, k, margin, axis)[1]
                yield r, crop_shift_pair(p1, k, margin, axis)[1]

    n = len(triplets)
    dist = _evaluate_pairs(metric, stream(), batch_size, dedupe=True).reshape(n, len(all_k), 2)
    pref = np.sign(dist[..., 1] - dist[..., 0])  # +1: p0 preferred, -1: p1, 0: tie
    flipped = (pref[:, :1] * pref[:, 1:]) < 0
    tie = (pref[:, :1] == 0) | (pref[:, 1:] == 0)
    flips = flipped.sum(axis=0).astype(int).tolist()
    return RankFlipResult(
        shifts=shifts,
        rate=[f / n if n else float("nan") for f in flips],
        flips=flips,
        ties=tie.sum(axis=0).astype(int).tolist(),
        n_triplets=n,
        baseline_ties=int((pref[:, 0] == 0).sum()),
        flipped=flipped,
        distances=dist,
        labels=labels,
    )


# --------------------------------------------------------------------------- shift / distortion


@dataclass
class ShiftToDistortionResult:
    """Output of :func:`shift_to_distortion_ratio`."""

    ratio: float  #: median_shift / median_distortion
    median_shift: float
    median_distortion: float
    distortion: str
    sigma: float
    shift: int
    d_shift: np.ndarray = field(repr=False)  #: per image
    d_distortion: np.ndarray = field(repr=False)  #: per image

    def to_dict(self, per_image: bool = False) -> Dict[str, Any]:
        d = {
            "ratio": self.ratio,
            "median_shift": self.median_shift,
            "median_distortion": self.median_distortion,
            "distortion": self.distortion,
            "sigma": self.sigma,
            "shift": self.shift,
        }
        if per_image:
            d["d_shift"] = self.d_shift.tolist()
            d["d_distortion"] = self.d_distortion.tolist()
        return jsonable(d)


_DEFAULT_SIGMA = {"noise": 0.02, "blur": 0.5}


def shift_to_distortion_ratio(
    metric: Metric,
    images: Images,
    distortion: str = "noise",
    shift: int = 1,
    sigma: Optional[float] = None,
    axis: str = "x",
    seed: int = 0,
    batch_size: int = 16,
) -> ShiftToDistortionResult:
    """A ``shift``-pixel translation measured in units of a just-visible distortion.

    ``ratio = median_i d(ref_i, shifted_i) / median_i d(ref_i, D(x_i)[crop])``
    where ``(ref, shifted) = crop_shift_pair(x, shift, margin=shift, axis)``
    (crop protocol) and ``D`` is Gaussian noise of std ``sigma`` (default 0.02
    on the [0, 1] scale, fixed ``seed``, clamped to [0, 1]) or Gaussian blur of
    std ``sigma`` px (default 0.5). ``D`` is applied to the whole image and the
    result cropped like ``ref``, so both distances compare images of one size.
    A ratio above 1 means a 1-pixel shift looks larger to the metric than a
    just-visible distortion. ``ratio`` is NaN when both medians are 0 and inf
    when only the denominator is.
    """
    if distortion not in _DEFAULT_SIGMA:
        raise ValueError(f"distortion must be 'noise' or 'blur', got {distortion!r}")
    shift = int(shift)
    if shift < 0:
        raise ValueError(f"shift must be >= 0, got {shift}")
    if sigma is None:
        sigma = _DEFAULT_SIGMA[distortion]
    fn = gaussian_noise(sigma, seed) if distortion == "noise" else gaussian_blur(sigma)
    ims = _as_image_list(images)

    def shift_pairs():
        for im in ims:
            yield crop_shift_pair(im, shift, shift, axis)

    def dist_pairs():
        for im in ims:
            with torch.no_grad():
                y = fn(im)
            yield crop_shift_pair(im, 0, shift, axis)[0], crop_shift_pair(y, 0, shift, axis)[0]

    d_shift = _evaluate_pairs(metric, shift_pairs(), batch_size)
    d_dist = _evaluate_pairs(metric, dist_pairs(), batch_size)
    ms = float(np.median(d_shift))
    md = float(np.median(d_dist))
    if md == 0:
        ratio = float("nan") if ms == 0 else float("inf")
    else:
        ratio = ms / md
    return ShiftToDistortionResult(
        ratio=ratio,
        median_shift=ms,
        median_distortion=md,
        distortion=distortion,
        sigma=float(sigma),
        shift=shift,
        d_shift=d_shift,
        d_distortion=d_dist,
    )


# --------------------------------------------------------------------------- everything


def evaluate_metric(
    metric: Metric,
    images: Images,
    *,
    shifts: Iterable = range(0, 33),
    axis: str = "x",
    protocols: Sequence[str] = ("crop", "mirror"),
    margin: Optional[int] = None,
    flip_shifts: Optional[Iterable[int]] = (1, 2, 3),
    flip_images: Optional[int] = None,
    distortions: Optional[Sequence[Distortion]] = None,
    sdr_distortions: Sequence[str] = ("noise", "blur"),
    sdr_shift: int = 1,
    batch_size: int = 16,
    name: Optional[str] = None,
    seed: int = 0,
    per_image: bool = True,
    callback: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Run every measure and return a JSON-able dict (NaN/inf become ``None``).

    Stages, each followed by ``callback(stage_name)`` when given:
    one sweep + periodicity per protocol (``'sweep:<protocol>'``), rank flips
    on the first ``flip_images`` images (all by default; skipped when
    ``flip_shifts`` is empty/None) with ``distortions`` (default 17), and the
    shift-to-distortion ratio for each of ``sdr_distortions``. See
    :func:`evaluate_stages` for the stage names. Layout::

        {"metric", "lower_is_better", "n_images", "image_sizes", "axis",
         "sweeps": {protocol: {"shifts", "mean", "std", "median",
                               "per_image"?, "periodicity": {...}}},
         "rank_flip": {...} | None,
         "shift_to_distortion": {"noise": {...}, "blur": {...}}}
    """
    ims = _as_image_list(images)
    shifts = _shift_values(shifts)
    result: Dict[str, Any] = {
        "metric": name or getattr(metric, "name", None) or getattr(metric, "__name__", type(metric).__name__),
        "lower_is_better": bool(getattr(metric, "lower_is_better", True)),
        "n_images": len(ims),
        "image_sizes": sorted({(int(im.shape[-2]), int(im.shape[-1])) for im in ims}),
        "axis": axis,
        "sweeps": {},
        "rank_flip": None,
        "shift_to_distortion": {},
    }

    def done(stage: str) -> None:
        if callback is not None:
            callback(stage)

    for protocol in protocols:
        sw = shift_sweep(metric, ims, shifts, axis=axis, protocol=protocol, margin=margin, batch_size=batch_size)
        entry: Dict[str, Any] = {
            "shifts": shifts,
            "mean": sw.mean(axis=0),
            "std": sw.std(axis=0),
            "median": np.median(sw, axis=0),
        }
        if per_image:
            entry["per_image"] = sw
        try:
            entry["periodicity"] = periodicity(sw, shifts).to_dict()
        except ValueError as exc:  # too few / irregular shifts
            entry["periodicity"] = {"error": str(exc)}
        result["sweeps"][protocol] = entry
        done(f"sweep:{protocol}")

    if flip_shifts:
        flip_set = ims if flip_images is None else ims[: int(flip_images)]
        rf = rank_flip_rate(
            metric, flip_set, shifts=flip_shifts, axis=axis, distortions=distortions, batch_size=batch_size
        )
        result["rank_flip"] = dict(rf.to_dict(), n_images=len(flip_set))
        done("rank_flip")

    for dname in sdr_distortions:
        r = shift_to_distortion_ratio(
            metric, ims, distortion=dname, shift=sdr_shift, axis=axis, seed=seed, batch_size=batch_size
        )
        result["shift_to_distortion"][dname] = r.to_dict()
        done(f"sdr:{dname}")
    return jsonable(result)


def evaluate_stages(
    protocols: Sequence[str] = ("crop", "mirror"),
    flip_shifts: Optional[Iterable[int]] = (1, 2, 3),
    sdr_distortions: Sequence[str] = ("noise", "blur"),
) -> List[str]:
    """Names of the stages :func:`evaluate_metric` reports, in order (for progress bars)."""
    stages = [f"sweep:{p}" for p in protocols]
    if flip_shifts:
        stages.append("rank_flip")
    stages += [f"sdr:{d}" for d in sdr_distortions]
    return stages
