"""Durations as users write them: ``500ms``, ``30s``, ``10min``, ``2h``, ``1m30s``, ``1.5h``.

One grammar everywhere: one or more parts, each a number (decimals allowed) and a unit, with
optional spaces. Units: ``ms``/``milli``/``millis``/``millisecond(s)``, ``s``/``sec(s)``/
``second(s)``, ``m``/``min(s)``/``minute(s)``, ``h``/``hr``/``hour(s)``, ``d``/``day(s)``.

A bare number has no unit, and what it means depends on where it is written, which is why
the caller must say (``bare_unit``): in cell headers and Flink settings it is milliseconds,
Flink's own rule (``TimeUtils.parseDuration``); on the command line (``--run-for 30``) it is
seconds, as for ``sleep`` and ``timeout``.
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["DURATION_EXAMPLES", "parse_duration"]

DURATION_EXAMPLES = "e.g. 30s, 2min, 1m30s, 500ms or 1h"

_UNIT_SECONDS = {
    **dict.fromkeys(("ms", "msec", "milli", "millis", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(_NUMBER + r"\s*([a-z]+)")
_PARTS = re.compile(r"(?:\s*" + _NUMBER + r"\s*[a-z]+)+\s*")


def parse_duration(text: str, *, bare_unit: str) -> timedelta:
    """The duration ``text`` says; a bare number counts in ``bare_unit`` ("ms" or "s").

    Raises ValueError, with examples, for anything else (negative, infinite, unknown unit).
    """
    spec = text.strip().lower()
    if re.fullmatch(_NUMBER, spec):
        return timedelta(seconds=float(spec) * _UNIT_SECONDS[bare_unit])
    if _PARTS.fullmatch(spec):
        parts = _PART.findall(spec)
        if all(unit in _UNIT_SECONDS for _, unit in parts):
            return timedelta(seconds=sum(float(number) * _UNIT_SECONDS[unit]
                                         for number, unit in parts))
    raise ValueError(f"{text!r} is not a duration: use {DURATION_EXAMPLES}.")
