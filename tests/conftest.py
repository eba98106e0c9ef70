"""Fixtures shared by all tests: isolated Jupyter dirs and the flink kernelspec."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Jupyter data (default checkpoint/savepoint dirs, journals) and kernelspecs in a temp dir.

    The kernelspec is installed with the real installer, into a prefix of its own.
    """
    root = tmp_path_factory.mktemp("jupyter")
    prefix = root / "prefix"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_DATA_DIR", str(root / "data"))
        patch.setenv("JUPYTER_CONFIG_DIR", str(root / "config"))
        patch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        patch.setenv("IPYTHONDIR", str(root / "ipython"))
        patch.setenv("XDG_CACHE_HOME", str(root / "cache"))  # the Flink option registry cache
        subprocess.run([sys.executable, "-m", "jupyter_flink.kernel", "install", "--prefix",
                        str(prefix)], check=True, capture_output=True)
        yield root


@pytest.fixture(scope="session")
def jupyter_data_dir(isolated_jupyter: Path) -> Path:
    return Path(os.environ["JUPYTER_DATA_DIR"])
