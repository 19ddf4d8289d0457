"""Dominant period and ripple of a shift sweep ``d(x, T_k x)``: the residual periodic aliasing that
discrete pooling leaves (arXiv 2604.27870). See :func:`periodicity` for the definitions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional, Sequence, Union

import numpy as np

from .report import jsonable

__all__ = ["PeriodicityResult", "periodicity"]


@dataclass
class PeriodicityResult:
    """Output of :func:`periodicity` (see there for the definitions)."""

    period: float  #: dominant period in pixels (NaN when there is none)
    frequency: float  #: 1 / period, cycles per pixel (NaN when none)
    amplitude: float  #: sinusoid amplitude at the peak of the spectrum
    relative_amplitude: float  #: amplitude / mean of the sweep
    ripple: float  #: mean per-period peak-to-peak of the raw sweep / its mean
    ripple_detrended: float  #: the same for the detrended sweep
    n_periods: int  #: complete periods used for the ripple
    mean_value: float  #: mean of the sweep over the shifts of those periods
    freqs: np.ndarray = field(repr=False)  #: frequency grid, cycles per pixel
    spectrum: np.ndarray = field(repr=False)  #: amplitude spectrum on ``freqs``
    shifts: np.ndarray = field(repr=False)  #: the shifts analysed (k = 0 excluded)

    def to_dict(self, include_spectrum: bool = True) -> Dict[str, Any]:
        d = {
            "period": self.period,
            "frequency": self.frequency,
            "amplitude": self.amplitude,
            "relative_amplitude": self.relative_amplitude,
            "ripple": self.ripple,
            "ripple_detrended": self.ripple_detrended,
            "n_periods": self.n_periods,
            "mean_value": self.mean_value,
        }
        if include_spectrum:
            d["freqs"] = self.freqs.tolist()
            d["spectrum"] = self.spectrum.tolist()
        return jsonable(d)


def _detrend(s: np.ndarray, d: np.ndarray, detrend: Union[str, int]) -> np.ndarray:
    if detrend in ("none", None):
        return d.copy()
    if detrend == "mean":
        return d - d.mean()
    deg = 1 if detrend == "linear" else detrend
    if not isinstance(deg, (int, np.integer)) or isinstance(deg, bool) or deg < 0:
        raise ValueError(f"detrend must be 'none', 'mean', 'linear' or a polynomial degree, got {detrend!r}")
    if deg == 0:
        return d - d.mean()
    # centre and scale the abscissa for a well-conditioned fit
    t = (s - s.mean()) / (np.ptp(s) or 1.0)
    coef = np.polyfit(t, d, int(deg))
    return d - np.polyval(coef, t)


def periodicity(
    sweep: Union[np.ndarray, Sequence[float]],
    shifts: Optional[Iterable] = None,
    *,
    min_period: float = 2.0,
    max_period: Optional[float] = None,
    detrend: Union[str, int] = "linear",
    window: Optional[str] = None,
    pad_factor: int = 8,
    exclude_zero: bool = True,
) -> PeriodicityResult:
    """Dominant period, spectrum and ripple amplitude of a shift sweep.

    ``sweep`` is a 1-D array of ``d(x, T_k x)`` over ``shifts`` (default
    ``0, 1, 2, ...``) or a 2-D ``(n_images, n_shifts)`` array, which is first
    averaged over images. Definitions:

    1. The shifts are sorted; ``k = 0`` (where ``d = 0`` by construction) is
       removed when ``exclude_zero`` and it is the first or last shift; an
       interior zero (a sweep over ``-16..16``) is instead replaced by the
       linear interpolation of its two neighbours, so the spacing stays
       uniform. The remaining shifts ``s_1 < ... < s_n`` must be
       uniformly spaced (step ``delta``) and ``n >= 4``.
    2. The values are detrended: ``'mean'`` subtracts the mean, ``'linear'``
       (default) the least-squares line (the mean included), an int ``p`` a
       degree-``p`` polynomial, ``'none'`` nothing. Removing the linear trend
       keeps the monotone growth of ``d`` with ``k`` from leaking into the low
       frequencies; periodic aliasing is what remains.
    3. ``spectrum`` = ``2/n * |rfft(residual * window, n * pad_factor)|`` on
       ``freqs = rfftfreq(n * pad_factor, delta)`` (cycles per pixel); a
       sinusoid of amplitude ``A`` whose period divides the window gives a peak
       of height ``A``. ``window`` is ``None`` or ``'hann'``.
    4. The dominant frequency is the argmax of the spectrum (refined by a
       parabola through the peak and its two neighbours) over periods
       ``min_period * delta <= 1/f <= max_period`` (default: at least 2 samples
       per period and ``max_period = n * delta / 2``, i.e. at least two complete
       periods in the sweep). ``period = 1/f`` in pixels. When the residual is
       identically zero (a flat or exactly linear sweep) there is no period:
       ``period = frequency = NaN``.
    5. Ripple: with ``p = round(period / delta)`` samples per period, the first
       ``m = n // p`` complete periods (blocks of ``p`` consecutive shifts
       starting at ``s_1``) are used::

           ripple = mean_b (max_b d - min_b d) / mean(d over the m*p shifts)

       where ``max_b``/``min_b`` run over the shifts of block ``b``. The raw
       peak-to-peak includes the trend's rise across a block;
       ``ripple_detrended`` uses the detrended residual's peak-to-peak instead
       (same denominator). A flat sweep has ``ripple = 0``; without a period
       (or a complete one) the ripples are NaN. ``relative_amplitude`` is
       ``amplitude / mean(d)`` over all analysed shifts.
    """
    d = np.asarray(sweep, dtype=np.float64)
    if d.ndim == 2:
        d = d.mean(axis=0)
    if d.ndim != 1:
        raise ValueError(f"sweep must be 1-D or (n_images, n_shifts), got shape {np.shape(sweep)}")
    s = np.arange(d.size, dtype=np.float64) if shifts is None else np.asarray(list(shifts), dtype=np.float64)
    if s.shape != d.shape:
        raise ValueError(f"{s.size} shifts for a sweep of {d.size} values")
    order = np.argsort(s, kind="stable")
    s, d = s[order], d[order]
    if exclude_zero and np.any(s == 0):
        z = int(np.flatnonzero(s == 0)[0])
        if z in (0, s.size - 1):
            keep = s != 0
            s, d = s[keep], d[keep]
        else:  # interior zero: bridge it so the spacing stays uniform
            d = d.copy()
            d[z] = np.interp(0.0, [s[z - 1], s[z + 1]], [d[z - 1], d[z + 1]])
    n = d.size
    if n < 4:
        raise ValueError(f"periodicity needs at least 4 non-zero shifts, got {n}")
    steps = np.diff(s)
    delta = float(steps[0])
    if delta <= 0 or not np.allclose(steps, delta, rtol=1e-6, atol=1e-9):
        raise ValueError("periodicity needs uniformly spaced shifts")
    if pad_factor < 1:
        raise ValueError("pad_factor must be >= 1")
    if max_period is None:
        max_period = n * delta / 2.0

    resid = _detrend(s, d, detrend)
    if window in (None, "none"):
        w = np.ones(n)
    elif window == "hann":
        w = np.hanning(n)
        w = w / w.mean()
    else:
        raise ValueError(f"window must be None or 'hann', got {window!r}")
    nfft = int(n * pad_factor)
    freqs = np.fft.rfftfreq(nfft, d=delta)
    spectrum = np.abs(np.fft.rfft(resid * w, nfft)) * 2.0 / n

    mean_all = float(d.mean())
    scale = max(float(np.max(np.abs(d))), 1e-300)
    flat_resid = float(np.max(np.abs(resid))) <= 1e-12 * scale or float(np.max(np.abs(d))) == 0.0
    with np.errstate(divide="ignore"):
        periods = np.where(freqs > 0, 1.0 / np.where(freqs > 0, freqs, 1.0), np.inf)
    valid = (freqs > 0) & (periods >= min_period * delta - 1e-9) & (periods <= max_period + 1e-9)

    period = frequency = amplitude = float("nan")
    if valid.any() and not flat_resid:
        idx = int(np.flatnonzero(valid)[np.argmax(spectrum[valid])])
        frequency = float(freqs[idx])
        if 0 < idx < freqs.size - 1:  # parabolic refinement of the peak between grid points
            a, b, c = spectrum[idx - 1], spectrum[idx], spectrum[idx + 1]
            den = a - 2.0 * b + c
            if den < 0:
                off = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
                refined = frequency + off * float(freqs[1] - freqs[0])
                if min_period * delta - 1e-9 <= 1.0 / refined <= max_period + 1e-9:
                    frequency = refined
        period = 1.0 / frequency
        amplitude = float(spectrum[idx])
    elif flat_resid:
        amplitude = 0.0
    relative_amplitude = amplitude / mean_all if mean_all != 0 else (0.0 if amplitude == 0 else float("nan"))

    ripple = ripple_d = mean_value = float("nan")
    n_periods = 0
    if float(np.ptp(d)) == 0.0:
        ripple = ripple_d = 0.0
        mean_value = mean_all
    elif math.isfinite(period):
        p = max(int(round(period / delta)), 1)
        n_periods = n // p
        if n_periods >= 1:
            blocks = d[: n_periods * p].reshape(n_periods, p)
            rblocks = resid[: n_periods * p].reshape(n_periods, p)
            mean_value = float(blocks.mean())
            if mean_value != 0:
                ripple = float(np.ptp(blocks, axis=1).mean() / mean_value)
                ripple_d = float(np.ptp(rblocks, axis=1).mean() / mean_value)
    return PeriodicityResult(
        period=period,
        frequency=frequency,
        amplitude=amplitude,
        relative_amplitude=relative_amplitude,
        ripple=ripple,
        ripple_detrended=ripple_d,
        n_periods=n_periods,
        mean_value=mean_value,
        freqs=freqs,
        spectrum=spectrum,
        shifts=s,
    )
