"""Recorded paths into notebook files: ``metadata.flink`` merged from updates and journals.

Used by ``jupyter-flink run`` (metadata updates from the kernel, then the journal at the end),
``jupyter-flink sync`` (the journal into a notebook, for frontends without our extension) and
``jupyter-flink show``.

Merging follows the record's rules (:mod:`jupyter_flink.recording.record`): a ``None`` never
erases a recorded path, the record ``updated`` last wins, and a record of another cell is
replaced whole. Files are read and written by :mod:`jupyter_flink.headless.notebooks`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from ..recording.journal import Journal
from ..recording.record import FLINK_KEY, merge_records
from .notebooks import ensure_cell_ids, read_notebook, write_notebook

__all__ = ["CellChange", "SyncReport", "apply_entries", "apply_update", "flink_cells",
           "sync_notebook"]


@dataclass(frozen=True)
class CellChange:
    """What changed in one cell's ``metadata.flink``: {key: (before, after)}."""

    index: int
    cell_id: str
    job_name: str | None
    fields: dict[str, tuple[Any, Any]]


def apply_update(cell: NotebookNode, incoming: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Merge ``incoming`` into ``cell.metadata.flink``; touches no other key. Returns changes."""
    before = cell.metadata.get(FLINK_KEY)
    after = merge_records(before, incoming)
    old = dict(before) if isinstance(before, Mapping) else {}
    changed = {key: (old.get(key), value) for key, value in after.items()
               if old.get(key) != value}
    changed.update({key: (value, None) for key, value in old.items() if key not in after})
    if changed:
        cell.metadata[FLINK_KEY] = copy.deepcopy(after)
    return changed


def apply_entries(nb: NotebookNode, entries: Mapping[str, Mapping[str, Any]]
                  ) -> list[CellChange]:
    """Merge journal entries (keyed by cell id) into the cells with those ids."""
    changes: list[CellChange] = []
    for index, cell in enumerate(nb.cells):
        entry = entries.get(cell.get("id") or "")
        if entry is None:
            continue
        fields = apply_update(cell, {**entry, "cell_id": entry.get("cell_id") or cell.id})
        if fields:
            changes.append(CellChange(index, cell.id, cell.metadata[FLINK_KEY].get("job_name"),
                                      fields))
    return changes


@dataclass
class SyncReport:
    """The outcome of copying a journal into a notebook."""

    notebook: Path
    journal: Path
    journal_found: bool
    entries: int = 0
    changes: list[CellChange] = field(default_factory=list)
    ids_added: int = 0
    written: bool = False


def sync_notebook(path: str | os.PathLike[str], *, journal_dir: str | None = None,
                  dry_run: bool = False) -> SyncReport:
    """Copy the journal's entries for ``path``'s cells into their metadata and save it."""
    notebook = Path(path).resolve()
    journal = Journal.for_notebook(str(notebook), journal_dir)
    report = SyncReport(notebook, journal.path, journal.path.exists())
    if not report.journal_found:
        return report
    entries = journal.entries()
    report.entries = len(entries)
    nb = read_notebook(notebook)
    report.ids_added = ensure_cell_ids(nb)
    report.changes = apply_entries(nb, entries)
    if report.changes and not dry_run:
        write_notebook(nb, notebook)
        report.written = True
    return report


def flink_cells(nb: NotebookNode) -> list[tuple[int, NotebookNode]]:
    """The cells that carry ``metadata.flink``, with their index."""
    return [(index, cell) for index, cell in enumerate(nb.cells)
            if isinstance(cell.metadata.get(FLINK_KEY), Mapping)]
