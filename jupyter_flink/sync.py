"""Notebook files and their ``metadata.flink``: read, merge recorded paths in, write safely.

Used by ``jupyter-flink run`` (metadata updates from the kernel, then the journal at the end),
``jupyter-flink sync`` (the journal into a notebook, for frontends without our extension) and
``jupyter-flink show``.

Merging follows the journal's rule: a recorded path is only ever replaced by a newer one, so a
value of ``None`` never erases what a cell already carries, and between two records of the
same cell the one ``updated`` last wins. Metadata that names another cell (copied along with
the cell) is replaced as a whole, never mixed with this cell's record.

Writes validate the exact text with nbformat, then go to a temporary file beside the target
that ``os.replace`` moves into place: a notebook on disk is never half-written or invalid.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from .journal import Journal
from .tracker import cell_metadata

__all__ = ["FLINK_KEY", "CellChange", "SyncReport", "apply_entries", "ensure_cell_ids",
           "flink_cells", "merge_flink_metadata", "read_notebook", "sync_notebook",
           "write_notebook"]

FLINK_KEY = "flink"


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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0666 & ~umask."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def merge_flink_metadata(existing: Any, incoming: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata.flink`` after ``incoming`` (a kernel update or journal entry) arrives.

    The newer record (by ``updated``) wins field by field, except that ``None`` never
    erases a recorded value; metadata recorded for another cell is replaced whole.
    """
    current = dict(existing) if isinstance(existing, Mapping) else {}
    update = dict(incoming)
    owner, incoming_owner = current.get("cell_id"), update.get("cell_id")
    if not current or (owner and incoming_owner and owner != incoming_owner):
        return cell_metadata(update)
    if str(current.get("updated") or "") > str(update.get("updated") or ""):
        newer, older = current, update
    else:
        newer, older = update, current
    merged = dict(older)
    for key, value in newer.items():
        if value is not None or key not in merged:
            merged[key] = value
    return cell_metadata(merged)


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
    after = merge_flink_metadata(before, incoming)
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
