"""Which checkpoint or savepoint a cell's new job starts from, and whether it still exists.

Precedence (Zeppelin's, see DESIGN.md "Contract"):

1. the recorded ``savepoint_path`` if ``resumeFromSavepoint=true``;
2. else the recorded ``latest_checkpoint_path`` if ``resumeFromLatestCheckpoint=true``;
3. else the cell's own ``execution.savepoint.path`` / ``execution.state-recovery.path``;
4. else ``execution.state-recovery.path`` from ``%%flink.conf``;
5. else a fresh start.

A flag whose path was never recorded falls through to the next rule and says so (the first
run of a notebook written with ``resumeFromSavepoint=true`` starts fresh, as in Zeppelin).
A path that *was* chosen but lost its ``_metadata`` is an error, never a silent fresh start.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import StateNotFoundError

RESTORE_KEY = "execution.state-recovery.path"


@dataclass(frozen=True)
class Recorded:
    """The paths recorded for a cell, and where they were read from."""

    latest_checkpoint_path: str | None = None
    savepoint_path: str | None = None
    source: str = "nothing recorded"


@dataclass(frozen=True)
class ResumeChoice:
    """The path a job restores from (None: fresh start), why, and notes for the user."""

    path: str | None
    reason: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def recorded_for_cell(cell_id: str | None, metadata: Mapping[str, Any],
                      journal_entry: Mapping[str, Any] | None) -> tuple[Recorded, list[str]]:
    """Pick the recorded paths from the cell's metadata or the journal; returns notes too.

    Metadata recorded for another cell (copied along with the cell) is not used silently.
    When both sources describe this cell, the one updated last wins: the journal is written
    first, the metadata only after the frontend applied and saved it.
    """
    notes: list[str] = []
    candidates: list[tuple[str, Mapping[str, Any]]] = []
    if metadata:
        owner = metadata.get("cell_id")
        if cell_id and owner and owner != cell_id:
            path = metadata.get("savepoint_path") or metadata.get("latest_checkpoint_path")
            notes.append(
                f"This cell's metadata.flink was recorded for another cell ({owner}), probably "
                "copied with the cell, so it is not used. To resume from it anyway, add "
                f"execution.state-recovery.path={path} to the cell header."
                if path else
                f"This cell's metadata.flink belongs to another cell ({owner}); ignored.")
        else:
            candidates.append(("cell metadata", metadata))
    if journal_entry:
        candidates.append(("journal", journal_entry))
    if not candidates:
        return Recorded(), notes
    source, chosen = max(candidates, key=lambda c: str(c[1].get("updated") or ""))
    return Recorded(chosen.get("latest_checkpoint_path"), chosen.get("savepoint_path"),
                    source), notes


def choose_restore_path(*, resume_from_savepoint: bool, resume_from_latest_checkpoint: bool,
                        paragraph_path: str | None, conf_path: str | None,
                        recorded: Recorded) -> ResumeChoice:
    """Apply the precedence table."""
    notes: list[str] = []
    if resume_from_savepoint:
        if recorded.savepoint_path:
            return ResumeChoice(recorded.savepoint_path,
                                f"savepoint recorded in the {recorded.source}")
        notes.append("resumeFromSavepoint=true, but no savepoint is recorded for this cell yet.")
    if resume_from_latest_checkpoint:
        if recorded.latest_checkpoint_path:
            return ResumeChoice(recorded.latest_checkpoint_path,
                                f"latest checkpoint recorded in the {recorded.source}",
                                tuple(notes))
        notes.append("resumeFromLatestCheckpoint=true, but no checkpoint is recorded for this "
                     "cell yet.")
    if paragraph_path:
        return ResumeChoice(paragraph_path, "the cell's execution.state-recovery.path",
                            tuple(notes))
    if conf_path:
        return ResumeChoice(conf_path, "execution.state-recovery.path in %%flink.conf",
                            tuple(notes))
    if notes:
        notes.append("Starting without state.")
    return ResumeChoice(None, "fresh start", tuple(notes))


# ----------------------------------------------------------------------- storage checks

_CHK = re.compile(r"^chk-(\d+)$")


def fsspec_url(flink_path: str) -> str:
    """Flink writes local paths as ``file:/tmp/x``; fsspec wants ``file:///tmp/x``."""
    if flink_path.startswith("file:/") and not flink_path.startswith("file://"):
        return "file://" + flink_path[len("file:"):]
    return flink_path


def check_restore_path(path: str, *, savepoint_dirs: tuple[str, ...] = ()) -> str | None:
    """Raise StateNotFoundError if ``path`` lacks ``_metadata``; returns a note or None.

    The error lists what is still on storage: the other retained ``chk-N`` of the same job
    and the savepoints under ``savepoint_dirs``, newest first.
    """
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(fsspec_url(path))
    except (ImportError, ValueError) as exc:
        return f"Could not check {path} before submitting ({exc}); Flink will check it."
    metadata_file = root if root.endswith("/_metadata") else posixpath.join(root, "_metadata")
    if fs.exists(metadata_file):
        return None
    alternatives = list_alternatives(path, savepoint_dirs)
    found = ("\nStill on storage, newest first:\n" + "\n".join(f"  {a}" for a in alternatives)
             if alternatives else "\nNo other checkpoint or savepoint was found.")
    raise StateNotFoundError(
        f"Cannot resume: {path} has no _metadata (the checkpoint or savepoint was deleted or "
        f"moved).{found}",
        path=path,
        alternatives=alternatives,
        fix="\nTo resume from one of these, add execution.state-recovery.path=<path> to the "
        "cell header. To start without state, set resumeFromSavepoint=false and "
        "resumeFromLatestCheckpoint=false. The recorded paths were not changed.",
    )


def list_alternatives(path: str, savepoint_dirs: tuple[str, ...] = ()) -> list[str]:
    """Restorable checkpoints of the same job and savepoints in ``savepoint_dirs``."""
    found: list[tuple[float, str]] = []
    parent, name = posixpath.split(fsspec_url(path).rstrip("/"))
    if _CHK.match(name):
        found.extend(_restorable_children(parent, checkpoints=True))
    for directory in savepoint_dirs:
        found.extend(_restorable_children(fsspec_url(directory), checkpoints=False))
    found.sort(reverse=True)
    return [url for _, url in found]


def _restorable_children(directory: str, *, checkpoints: bool) -> list[tuple[float, str]]:
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(directory)
        children = fs.ls(root, detail=True)
    except (ImportError, ValueError, OSError):
        return []
    result = []
    for child in children:
        name = posixpath.basename(child["name"].rstrip("/"))
        wanted = _CHK.match(name) if checkpoints else name.startswith("savepoint-")
        if child.get("type") != "directory" or not wanted:
            continue
        try:
            info = fs.info(posixpath.join(child["name"], "_metadata"))
        except FileNotFoundError:
            continue  # an incomplete or deleted checkpoint: not restorable
        mtime = info.get("mtime") or info.get("created") or 0
        mtime = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
        result.append((mtime, fs.unstrip_protocol(child["name"])))
    return result


def newest_restore_point(paths: tuple[str | None, ...]) -> str | None:
    """Of ``paths`` (a savepoint, a checkpoint...), the restorable one written last."""
    import fsspec

    best: tuple[float, str] | None = None
    for path in filter(None, paths):
        try:
            fs, root = fsspec.core.url_to_fs(fsspec_url(path))
            info = fs.info(posixpath.join(root, "_metadata"))
        except (ImportError, ValueError, OSError):
            continue  # lost, or a scheme we cannot read
        mtime = info.get("mtime") or info.get("created") or 0
        mtime = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
        if best is None or mtime > best[0]:
            best = (mtime, path)
    return best[1] if best else None
