"""Notebook files: read as nbformat 4, cell ids ensured, written validated and atomically.

A notebook on disk is never half-written or invalid: the exact text is validated with
nbformat before a temporary file beside the target replaces it (:mod:`jupyter_flink.files`).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from ..files import atomic_write_text

__all__ = ["ensure_cell_ids", "read_notebook", "write_notebook"]


def read_notebook(path: str | os.PathLike[str]) -> NotebookNode:
    """Read a notebook as nbformat 4."""
    with open(path, encoding="utf-8") as handle:
        return nbformat.read(handle, as_version=4)


def ensure_cell_ids(nb: NotebookNode) -> int:
    """Give every cell a unique id (nbformat 4.5), as recorded paths are keyed by cell id.

    Returns how many ids were added or replaced (0 for any notebook saved by JupyterLab 3+).
    """
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):
        nb.nbformat_minor = 5
    seen: set[str] = set()
    added = 0
    for cell in nb.cells:
        cell_id = cell.get("id")
        if not cell_id or cell_id in seen:
            cell["id"] = uuid.uuid4().hex[:12]
            added += 1
        seen.add(cell["id"])
    return added


def write_notebook(nb: NotebookNode, path: str | os.PathLike[str]) -> Path:
    """Write ``nb`` to ``path`` atomically, after validating the very text being written.

    Raises ``nbformat.ValidationError`` (and leaves the file as it was) if it is invalid.
    """
    target = Path(path)
    nbformat.validate(nb)  # raises before nbformat.writes would only log the problem
    text = nbformat.writes(nb, version=4)
    if not text.endswith("\n"):
        text += "\n"
    nbformat.validate(json.loads(text))  # the text itself, as it will be on disk
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(target, text)
