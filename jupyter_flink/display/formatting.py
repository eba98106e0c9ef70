"""How durations, times and job names are written in outputs."""

from __future__ import annotations

from datetime import datetime

__all__ = ["format_duration", "format_time_ms", "short_name"]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def format_time_ms(millis: int | None) -> str:
    if not millis:
        return "-"
    return datetime.fromtimestamp(millis / 1000).strftime("%H:%M:%S")


def short_name(name: str, limit: int = 60) -> str:
    """A job name fit for a heading: unnamed SQL jobs are named after their statement."""
    first = " ".join(name.split())
    return first if len(first) <= limit else first[:limit - 1] + "\u2026"
