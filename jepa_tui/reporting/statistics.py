"""The paper's statistics (spec §5.3, §6): seed means with percentile-bootstrap CIs, the relative difference δ and
the pre-registered outcome class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from jepa_tui.config import ReportConfig

OUTCOMES = {"A": "strong confirmation", "B": "partial confirmation", "C": "null result", "D": "falsified"}


@dataclass(frozen=True)
class SeedSummary:
    """Seed-level values of one group: mean, sample std (ddof = 1) and a percentile-bootstrap CI of the mean."""

    values: tuple[float, ...]
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarise(values: list[float], config: ReportConfig | None = None) -> SeedSummary:
    """Mean, std (ddof = 1; 0 for one value) and the ``config.confidence`` percentile-bootstrap CI of the mean
    (``scipy.stats.bootstrap``, ``config.bootstrap_resamples`` resamples, seeded). One value gives a point CI.

    Raises:
        ValueError: for no values.
    """
    config = config or ReportConfig()
    if not values:
        raise ValueError("no values to summarise")
    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean())
    if len(data) < 2 or np.all(data == data[0]):
        return SeedSummary(tuple(values), mean, 0.0, mean, mean)
    result = stats.bootstrap((data,), np.mean, method="percentile", n_resamples=config.bootstrap_resamples,
                             confidence_level=config.confidence, rng=np.random.default_rng(config.bootstrap_seed))
    ci = result.confidence_interval
    return SeedSummary(tuple(values), mean, float(data.std(ddof=1)), float(ci.low), float(ci.high))


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
