"""The paper's statistics (spec §5.3, §6) and ours beside them.

The paper's (pre-registered): seed means with percentile-bootstrap CIs, the sample std (ddof = 1), the relative
difference δ and the outcome class. With 3 or fewer seeds a percentile bootstrap CI of the mean is exactly
[min, max] of the seed values (each extreme is resampled three times over with probability ≥ 1/27 > 2.5 %).

Ours, marked as such in the report: a t-based CI of each mean and Welch's unequal-variance t-test between two
tracks (``scipy.stats``). Nothing is computed from fewer than two values: such statistics are None ("n/a").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from jepa_tui.config import ReportConfig

OUTCOMES = {"A": "strong confirmation", "B": "partial confirmation", "C": "null result", "D": "falsified"}


@dataclass(frozen=True)
class SeedSummary:
    """Seed-level values of one group: mean; sample std (ddof = 1); the percentile-bootstrap CI of the mean (the
    paper's); the t-based CI of the mean (ours). The spread statistics are None for a single value."""

    values: tuple[float, ...]
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None
    t_low: float | None = None
    t_high: float | None = None

    @property
    def n(self) -> int:
        return len(self.values)


def summarise(values: list[float], config: ReportConfig | None = None) -> SeedSummary:
    """Mean, std (ddof = 1), the ``config.confidence`` percentile-bootstrap CI of the mean
    (``scipy.stats.bootstrap``, ``config.bootstrap_resamples`` resamples, seeded) and the t-based CI of the mean.

    One value has no spread: std and both CIs are None. Identical values give a zero-width interval.

    Raises:
        ValueError: for no values.
    """
    config = config or ReportConfig()
    if not values:
        raise ValueError("no values to summarise")
    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean())
    if len(data) < 2:
        return SeedSummary(tuple(values), mean, None, None, None)
    std = float(data.std(ddof=1))
    if np.all(data == data[0]):
        return SeedSummary(tuple(values), mean, std, mean, mean, mean, mean)
    result = stats.bootstrap((data,), np.mean, method="percentile", n_resamples=config.bootstrap_resamples,
                             confidence_level=config.confidence, rng=np.random.default_rng(config.bootstrap_seed))
    ci = result.confidence_interval
    t_low, t_high = stats.t.interval(config.confidence, len(data) - 1, loc=mean, scale=stats.sem(data))
    return SeedSummary(tuple(values), mean, std, float(ci.low), float(ci.high), float(t_low), float(t_high))


@dataclass(frozen=True)
class WelchTest:
    """Welch's two-sided t-test of mean(a) = mean(b) without assuming equal variances (ours)."""

    t: float
    df: float
    p: float


def welch(a: list[float], b: list[float]) -> WelchTest | None:
    """Welch's t-test between two groups of seed values; None when either has fewer than two values or both
    have no spread (the test is then undefined)."""
    if len(a) < 2 or len(b) < 2 or (np.std(a) == 0 and np.std(b) == 0):
        return None
    result = stats.ttest_ind(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), equal_var=False)
    df = float(result.df) if hasattr(result, "df") else math.nan
    return WelchTest(float(result.statistic), df, float(result.pvalue))


def relative_delta_pct(reference: float, candidate: float) -> float:
    """δ = (reference − candidate) / reference × 100: positive when ``candidate`` has the lower (better) D_shift."""
    return (reference - candidate) / reference * 100.0


def outcome(delta_pct: float, config: ReportConfig | None = None) -> str:
    """The pre-registered outcome class "A", "B", "C" or "D" for δ in percent (thresholds in ``config``)."""
    config = config or ReportConfig()
    if delta_pct >= config.strong_pct:
        return "A"
    if delta_pct >= config.null_band_pct:
        return "B"
    if delta_pct > -config.null_band_pct:
        return "C"
    return "D"
