"""Restore points on storage: whether a checkpoint or savepoint still exists, and which do.

A checkpoint (``.../<job id>/chk-N``) or savepoint (``.../savepoint-<id>-<n>``) can be restored
from only while its ``_metadata`` file exists. Paths are read through fsspec, so ``file://``,
``s3://``, ``hdfs://``... work alike wherever fsspec has a filesystem for them.
"""

from __future__ import annotations

import posixpath
import re

from ..errors import StateNotFoundError

__all__ = [
    "check_restore_path",
    "checkpoint_root",
    "checkpoints_of_job",
    "delete_restore_point",
    "fsspec_url",
    "job_id_of",
    "list_alternatives",
    "newer_checkpoints",
    "newest_restore_point",
    "same_place",
    "written_at",
]

_CHK = re.compile(r"^chk-(\d+)$")
_JOB_ID = re.compile(r"[0-9a-f]{32}")


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


def written_at(path: str) -> float | None:
    """When ``path``'s ``_metadata`` was written (epoch seconds); None if it is not there or
    the storage cannot be read from here."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(fsspec_url(path))
        info = fs.info(posixpath.join(root, "_metadata"))
    except (ImportError, ValueError, OSError):
        return None  # lost, or a scheme we cannot read
    mtime = info.get("mtime") or info.get("created") or info.get("LastModified") or 0
    return mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)


def newest_restore_point(paths: tuple[str | None, ...]) -> str | None:
    """Of ``paths`` (a savepoint, a checkpoint...), the restorable one written last."""
    best: tuple[float, str] | None = None
    for path in filter(None, paths):
        when = written_at(path)
        if when is not None and (best is None or when > best[0]):
            best = (when, path)
    return best[1] if best else None


def newer_checkpoints(path: str) -> list[str]:
    """Complete checkpoints of the same job as ``path`` (``.../chk-N``) with a higher N,
    newest first: Flink completed them after the one recorded (a kernel that died, or a
    cluster whose REST API answered late)."""
    parent, name = posixpath.split(fsspec_url(path).rstrip("/"))
    match = _CHK.match(name)
    if not match:
        return []
    newer = []
    for _, child in _restorable_children(parent, checkpoints=True):
        number = _CHK.match(posixpath.basename(child.rstrip("/")))
        if number and int(number.group(1)) > int(match.group(1)):
            newer.append((int(number.group(1)), child))
    return [child for _, child in sorted(newer, reverse=True)]


def checkpoint_root(path: str) -> str | None:
    """The checkpoint directory a checkpoint path (``<dir>/<job id>/chk-N``) is in."""
    if job_id_of(path) is None:
        return None
    return posixpath.dirname(posixpath.dirname(fsspec_url(path).rstrip("/")))


def checkpoints_of_job(root: str, job_id: str) -> list[str]:
    """Complete checkpoints of job ``job_id`` in the checkpoint directory ``root``
    (``<root>/<job id>/chk-N``: another run of the cell), newest first."""
    if not _JOB_ID.fullmatch(job_id):
        return []
    found = [(int(number.group(1)), child) for _, child in _restorable_children(
        posixpath.join(fsspec_url(root).rstrip("/"), job_id), checkpoints=True)
        if (number := _CHK.match(posixpath.basename(child.rstrip("/"))))]
    return [child for _, child in sorted(found, reverse=True)]


def job_id_of(path: str) -> str | None:
    """The job id in a checkpoint path (``.../<32 hex digits>/chk-N``), if there is one."""
    parent, name = posixpath.split(fsspec_url(path).rstrip("/"))
    job = posixpath.basename(parent)
    return job if _CHK.match(name) and _JOB_ID.fullmatch(job) else None


def same_place(a: str | None, b: str | None) -> bool:
    """Whether two Flink paths name the same place (``file:/x`` is ``file:///x``)."""
    return bool(a and b) and fsspec_url(a or "").rstrip("/") == fsspec_url(b or "").rstrip("/")


def delete_restore_point(path: str) -> None:
    """Delete a savepoint or checkpoint directory (raises OSError if it cannot)."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(fsspec_url(path))
    except (ImportError, ValueError) as exc:
        raise OSError(f"cannot delete {path}: {exc}") from exc
    fs.rm(root, recursive=True)
