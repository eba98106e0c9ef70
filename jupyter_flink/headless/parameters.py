"""Papermill-style parameters for ``jupyter-flink run``.

Parameters go into a code cell tagged ``injected-parameters``, placed right after the cell
tagged ``parameters`` (or at the top), as papermill does; running again replaces that cell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import nbformat
from nbformat import NotebookNode

__all__ = ["INJECTED_TAG", "PARAMETERS_TAG", "inject_parameters", "parse_param"]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
INJECTED_CELL_ID = "injected-parameters"

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
