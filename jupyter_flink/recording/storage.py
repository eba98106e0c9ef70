"""Restore points on storage: whether a checkpoint or savepoint still exists, and which do.

A checkpoint (``.../<job id>/chk-N``) or savepoint (``.../savepoint-<id>-<n>``) can be restored
from only while its ``_metadata`` file exists. Paths are read through fsspec, so ``file://``,
``s3://``, ``hdfs://``... work alike wherever fsspec has a filesystem for them.
"""

from __future__ import annotations

import posixpath
import re

from ..errors import StateNotFoundError

__all__ = ["check_restore_path", "fsspec_url", "list_alternatives", "newest_restore_point"]

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
