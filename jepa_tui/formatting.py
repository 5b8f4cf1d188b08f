"""Plain-text formatting shared by the headless console, the dashboard and the report."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """3725 -> '1h02m05s', 65 -> '1m05s', 7 -> '7s'."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_value(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals, or '-' for None."""
    return "-" if value is None else f"{value:.{digits}f}"
