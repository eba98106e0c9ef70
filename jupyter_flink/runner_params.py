"""The small parsers of ``jupyter-flink run``: durations and papermill-style parameters.

Parameters go into a code cell tagged ``injected-parameters``, placed right after the cell
tagged ``parameters`` (or at the top), as papermill does; running again replaces that cell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import nbformat
from nbformat import NotebookNode

__all__ = ["INJECTED_TAG", "PARAMETERS_TAG", "inject_parameters", "parse_duration",
           "parse_param"]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
INJECTED_CELL_ID = "injected-parameters"

_UNITS = {
    "ms": 0.001, "msec": 0.001, "millis": 0.001,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(_NUMBER + r"\s*([a-z]+)")
_DURATION = re.compile(r"(?:\s*" + _NUMBER + r"\s*[a-z]+)+\s*")


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``2min``, ``1m30s``, ``500ms``, ``1.5h`` or a bare number (seconds)."""
    spec = text.strip().lower()
    if re.fullmatch(_NUMBER, spec):
        return float(spec)
    if _DURATION.fullmatch(spec):
        parts = _PART.findall(spec)
        if all(unit in _UNITS for _, unit in parts):
            return sum(float(number) * _UNITS[unit] for number, unit in parts)
    raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 2min, 1m30s, 500ms or 1h.")


def parse_param(text: str) -> tuple[str, Any]:
    """``name=value`` -> (name, value); the value becomes an int, float, bool, None or str.

    Quote the value (``name='42'``) to keep it a string.
    """
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValueError(f"{text!r} is not a parameter: use NAME=VALUE, e.g. rows=1000.")
    return name, _infer(raw.strip())


def _infer(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return raw
    return number if math.isfinite(number) else raw  # nan/inf have no literal: keep text


def parameters_source(parameters: Mapping[str, Any]) -> str:
    lines = ["# Parameters"] + [f"{name} = {value!r}" for name, value in parameters.items()]
    return "\n".join(lines) + "\n"


def inject_parameters(nb: NotebookNode, parameters: Mapping[str, Any]) -> NotebookNode | None:
    """Insert (or replace) the ``injected-parameters`` cell; returns it (None: no parameters)."""
    if not parameters:
        return None
    cells = [cell for cell in nb.cells
             if INJECTED_TAG not in cell.get("metadata", {}).get("tags", [])]
    cell = nbformat.v4.new_code_cell(parameters_source(parameters),
                                     metadata={"tags": [INJECTED_TAG]})
    cell["id"] = INJECTED_CELL_ID
    tagged = [index for index, existing in enumerate(cells)
              if PARAMETERS_TAG in existing.get("metadata", {}).get("tags", [])]
    cells.insert(tagged[0] + 1 if tagged else 0, cell)
    nb.cells = cells
    return cell
