"""Descriptive statistics and baseline comparison for repeated build timings (pure, stdlib only).

Quartiles use the *inclusive* linear-interpolation method: for sorted samples ``x[0..n-1]`` the
p-quantile is at position ``h = (n - 1) * p``, interpolated between ``x[floor(h)]`` and
``x[floor(h) + 1]``.  This equals ``statistics.quantiles(..., method="inclusive")``, numpy's default
``linear`` method and Excel's ``QUARTILE.INC``; unlike ``statistics.quantiles`` it also accepts n = 1.
``stdev`` is the sample standard deviation (n - 1); ``cv = stdev / |mean|``.

A comparison gates on the median ratio with a tolerance of at least twice the observed CV
(``max(min_tolerance, 2 * max(cv_baseline, cv_current))``), as recommended for noisy build timings.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bakery.errors import BakeryError

__all__ = ["Comparison", "Stats", "StatsError", "Verdict", "compare", "describe", "high_cv"]

Verdict = Literal["regression", "improvement", "same"]


class StatsError(BakeryError):
    """Samples or parameters that statistics cannot be computed from (empty, NaN, negative tolerance)."""


@dataclass(frozen=True)
class Stats:
    """Summary of one set of samples (seconds, typically).  ``cv`` is 0 for n < 2."""

    n: int
    median: float
    min: float
    max: float
    q1: float
    q3: float
    iqr: float
    mean: float
    stdev: float
    cv: float


@dataclass(frozen=True)
class Comparison:
    """``current`` against ``baseline``: ``ratio`` of medians, the ``tolerance`` used, and the verdict."""

    baseline_median: float
    current_median: float
    ratio: float
    tolerance: float
    verdict: Verdict

    @property
    def change(self) -> float:
        """Relative change of the median, e.g. 0.12 for 12 % slower, -0.3 for 30 % faster."""
        return self.ratio - 1.0


def _quantile(ordered: Sequence[float], p: float) -> float:
    h = (len(ordered) - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (h - lo)


def describe(samples: Sequence[float]) -> Stats:
    """Median, range, inclusive quartiles, IQR, mean, sample stdev and CV of ``samples``."""
    if isinstance(samples, (str, bytes)):
        raise StatsError("samples must be a sequence of numbers")
    values = []
    for value in samples:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StatsError(f"sample {value!r} is not a number")
        if not math.isfinite(value):
            raise StatsError(f"sample {value!r} is not finite")
        values.append(float(value))
    if not values:
        raise StatsError("no samples to describe")
    ordered = sorted(values)
    n = len(ordered)
    mean = statistics.fmean(ordered)
    stdev = statistics.stdev(ordered) if n >= 2 else 0.0
    if n < 2 or stdev == 0.0:
        cv = 0.0
    elif mean == 0.0:
        cv = math.inf
    else:
        cv = stdev / abs(mean)
    q1 = _quantile(ordered, 0.25)
    q3 = _quantile(ordered, 0.75)
    return Stats(
        n=n,
        median=statistics.median(ordered),
        min=ordered[0],
        max=ordered[-1],
        q1=q1,
        q3=q3,
        iqr=q3 - q1,
        mean=mean,
        stdev=stdev,
        cv=cv,
    )


def high_cv(stats: Stats, threshold: float = 0.1) -> bool:
    """True if the samples are noisier than ``threshold`` (CV strictly above it)."""
    if not threshold >= 0:
        raise StatsError(f"CV threshold must be >= 0, got {threshold!r}")
    return stats.cv > threshold


def compare(baseline: Stats, current: Stats, min_tolerance: float = 0.05) -> Comparison:
    """Compare medians: regression if ``ratio > 1 + tolerance``, improvement if ``ratio < 1 - tolerance``.

    ``tolerance = max(min_tolerance, 2 * max(baseline.cv, current.cv))``; a ratio exactly on the
    boundary is "same".  Two zero medians compare as ratio 1.
    """
    if not min_tolerance >= 0:
        raise StatsError(f"min_tolerance must be >= 0, got {min_tolerance!r}")
    if baseline.median < 0 or current.median < 0:
        raise StatsError("cannot compare negative medians")
    if baseline.median == 0:
        if current.median != 0:
            raise StatsError("baseline median is 0; cannot compute a ratio")
        ratio = 1.0
    else:
        ratio = current.median / baseline.median
    tolerance = max(min_tolerance, 2.0 * max(baseline.cv, current.cv))
    verdict: Verdict
    if ratio > 1.0 + tolerance:
        verdict = "regression"
    elif ratio < 1.0 - tolerance:
        verdict = "improvement"
    else:
        verdict = "same"
    return Comparison(
        baseline_median=baseline.median,
        current_median=current.median,
        ratio=ratio,
        tolerance=tolerance,
        verdict=verdict,
    )
