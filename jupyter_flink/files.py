"""Writing files so that nobody ever reads half of one.

The journal, notebooks and the option cache are all written the same way: to a temporary
file in the target's folder, flushed to disk, then moved over the target with ``os.replace``
(atomic on POSIX and Windows). A crash leaves the old file or the new one, never a mix.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_text", "file_mode"]


def atomic_write_text(path: str | os.PathLike[str], text: str, *,
                      new_file_mode: int | None = None) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically; returns the path.

    The file keeps the permissions of the one it replaces; a new file gets ``new_file_mode``
    (default: the usual ``0o666 & ~umask``). Raises OSError and leaves the target as it was
    when anything fails (a read-only folder, a full disk).
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, file_mode(target, new_file_mode))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def file_mode(target: Path, new_file_mode: int | None = None) -> int:
    """An existing file's permissions; for a new one ``new_file_mode``, else
    ``0o666 & ~umask`` as ``open`` gives."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        if new_file_mode is not None:
            return new_file_mode
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
