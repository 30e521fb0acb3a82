"""Tests for bakery.bench.stats."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bakery.errors import BakeryError
from bakery.bench.stats import Comparison, Stats, StatsError, compare, describe, high_cv


def stats_with(median: float, cv: float = 0.0) -> Stats:
    return Stats(n=5, median=median, min=median, max=median, q1=median, q3=median, iqr=0.0, mean=median,
                 stdev=cv * median, cv=cv)  # fmt: skip


def test_describe_odd_count() -> None:
    s = describe([5, 1, 4, 2, 3])
    assert (s.n, s.median, s.min, s.max) == (5, 3.0, 1.0, 5.0)
    assert (s.q1, s.q3, s.iqr) == (2.0, 4.0, 2.0)
    assert s.mean == 3.0
    assert s.stdev == pytest.approx(math.sqrt(2.5))
    assert s.cv == pytest.approx(math.sqrt(2.5) / 3)


def test_describe_even_count_uses_inclusive_linear_quartiles() -> None:
    s = describe([1, 2, 3, 4])
    assert s.median == 2.5
    assert (s.q1, s.q3, s.iqr) == (1.75, 3.25, 1.5)  # positions 0.75 and 2.25 (QUARTILE.INC)
    assert [s.q1, s.median, s.q3] == statistics.quantiles([1, 2, 3, 4], n=4, method="inclusive")


def test_describe_build_times() -> None:
    s = describe([10.0, 10.2, 9.8, 10.1, 30.0])  # one outlier
    assert s.median == 10.1
    assert s.q1 == pytest.approx(10.0)
    assert s.q3 == pytest.approx(10.2)
    assert s.mean == pytest.approx(14.02)
    assert s.cv == pytest.approx(statistics.stdev([10.0, 10.2, 9.8, 10.1, 30.0]) / 14.02)


def test_describe_single_sample() -> None:
    s = describe([7.5])
    assert (s.n, s.median, s.min, s.max, s.q1, s.q3, s.iqr, s.mean, s.stdev, s.cv) == (
        1, 7.5, 7.5, 7.5, 7.5, 7.5, 0.0, 7.5, 0.0, 0.0
    )  # fmt: skip


def test_describe_constant_and_zero_samples() -> None:
    assert describe([2, 2, 2]).cv == 0.0
    assert describe([0.0, 0.0]).cv == 0.0
    assert describe([-1.0, 1.0]).cv == math.inf  # mean 0, spread > 0


@pytest.mark.parametrize("samples", [[], [1.0, math.nan], [math.inf], ["1"], [True, 2.0], "12"])
def test_describe_rejects_bad_samples(samples: object) -> None:
    with pytest.raises(StatsError) as info:
        describe(samples)  # type: ignore[arg-type]
    assert isinstance(info.value, BakeryError) and "\n" not in str(info.value)


@settings(max_examples=200, database=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=40))
def test_describe_matches_statistics_module(samples: list[float]) -> None:
    s = describe(samples)
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    assert [s.q1, s.median, s.q3] == pytest.approx([q1, q2, q3])
    assert s.min <= s.q1 <= s.median <= s.q3 <= s.max
    assert s.stdev == pytest.approx(statistics.stdev(samples), rel=1e-9, abs=1e-9)
    assert s.cv >= 0


def test_high_cv() -> None:
    assert not high_cv(describe([10, 10.5, 9.5]))  # cv 0.05
    assert high_cv(describe([10, 12, 8]))  # cv 0.2
    assert not high_cv(stats_with(10, cv=0.1))  # strictly above the threshold
    assert high_cv(stats_with(10, cv=0.1), threshold=0.05)
    assert not high_cv(describe([3.0]))
    with pytest.raises(StatsError):
        high_cv(stats_with(10), threshold=-1)


@pytest.mark.parametrize(
    ("baseline", "current", "verdict"),
    [
        (100.0, 100.0, "same"),
        (100.0, 104.0, "same"),
        (100.0, 106.0, "regression"),
        (100.0, 94.0, "improvement"),
        (100.0, 96.0, "same"),
        (100.0, 200.0, "regression"),
        (100.0, 50.0, "improvement"),
    ],
)
def test_compare_with_min_tolerance(baseline: float, current: float, verdict: str) -> None:
    result = compare(stats_with(baseline), stats_with(current))
    assert isinstance(result, Comparison)
    assert result.tolerance == 0.05
    assert result.ratio == pytest.approx(current / baseline)
    assert result.change == pytest.approx(current / baseline - 1)
    assert (result.baseline_median, result.current_median) == (baseline, current)
    assert result.verdict == verdict


def test_compare_boundary_is_same() -> None:
    assert compare(stats_with(4.0), stats_with(5.0), min_tolerance=0.25).verdict == "same"
    assert compare(stats_with(4.0), stats_with(3.0), min_tolerance=0.25).verdict == "same"


def test_tolerance_is_at_least_twice_the_cv() -> None:
    noisy_base, quiet = stats_with(100, cv=0.08), stats_with(112)
    result = compare(noisy_base, quiet)
    assert result.tolerance == pytest.approx(0.16)  # 2 x the larger CV, not the 5 % minimum
    assert result.verdict == "same"  # +12 % is within the noise
    assert compare(stats_with(100), stats_with(112, cv=0.08)).verdict == "same"  # either side's CV counts
    assert compare(noisy_base, stats_with(120)).verdict == "regression"
    assert compare(noisy_base, stats_with(80)).verdict == "improvement"
    assert compare(stats_with(100, cv=0.01), stats_with(104, cv=0.01), min_tolerance=0.05).tolerance == 0.05


@settings(max_examples=200, database=None)
@given(
    st.floats(0.1, 1e4), st.floats(0.1, 1e4), st.floats(0, 1), st.floats(0, 1), st.floats(0, 0.5)
)
def test_tolerance_property(base: float, cur: float, cv_a: float, cv_b: float, min_tol: float) -> None:
    result = compare(stats_with(base, cv_a), stats_with(cur, cv_b), min_tolerance=min_tol)
    assert result.tolerance >= 2 * max(cv_a, cv_b) and result.tolerance >= min_tol
    if result.verdict == "same":
        assert abs(result.ratio - 1) <= result.tolerance
    else:
        assert abs(result.ratio - 1) > result.tolerance
        assert (result.verdict == "regression") == (result.ratio > 1)


def test_compare_with_real_describe() -> None:
    base = describe([60.1, 59.8, 60.4, 60.0, 59.9])
    slower = describe([66.0, 66.3, 65.8, 66.1, 66.2])
    assert compare(base, slower).verdict == "regression"
    assert compare(slower, base).verdict == "improvement"
    assert compare(base, describe([60.5, 60.2, 60.9, 60.3, 60.1])).verdict == "same"


def test_compare_zero_and_invalid() -> None:
    assert compare(stats_with(0.0), stats_with(0.0)).verdict == "same"
    with pytest.raises(StatsError, match="baseline median is 0"):
        compare(stats_with(0.0), stats_with(1.0))
    with pytest.raises(StatsError):
        compare(stats_with(1.0), stats_with(1.0), min_tolerance=-0.1)
    with pytest.raises(StatsError):
        compare(stats_with(-1.0), stats_with(1.0))
