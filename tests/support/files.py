"""Files and folders in states a user's machine can put them in."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    """Make ``folder`` read-only for the duration, also for root (tests run as root in CI):
    root ignores permission bits, so the folder is made immutable with chattr instead."""
    with _read_only(folder, stat.S_IRUSR | stat.S_IXUSR, stat.S_IRWXU):
        yield folder


@contextmanager
def read_only_file(path: Path) -> Iterator[Path]:
    """Make the file ``path`` read-only (immutable for root) for the duration."""
    with _read_only(path, stat.S_IRUSR, stat.S_IRUSR | stat.S_IWUSR):
        yield path


@contextmanager
def _read_only(path: Path, mode: int, restore: int) -> Iterator[None]:
    if os.geteuid() != 0:
        path.chmod(mode)
        try:
            yield
        finally:
            path.chmod(restore)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a folder read-only")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not permitted here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
