"""Cells of the report's Markdown tables: numbers, signed differences, confidence intervals, a run's flags."""

from __future__ import annotations

from jepa_tui.reporting.collect import RunRecord


def _f(x: float | None, digits: int = 4) -> str:
    """``x`` with ``digits`` decimals; in 4 significant digits once it is too large for them (a diverged run)."""
    if x is None:
        return "n/a"
    return f"{x:.{digits}f}" if abs(x) < 1e4 else f"{x:.{digits}g}"


def _signed(x: float, digits: int = 4) -> str:
    return f"{x:+.{digits}f}" if abs(x) < 1e4 else f"{x:+.{digits}g}"


def _ci(low: float | None, high: float | None, n: int) -> str:
    return f"n/a ({n} seed)" if low is None or high is None else f"[{_f(low)}, {_f(high)}]"


def _flags(run: RunRecord) -> str:
    return "; ".join(run.flags()) or "-"
