"""Fixtures of the unit tests (no JVM)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """An in-process IPython shell with ``%load_ext jupyter_flink``."""
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("jupyter_flink")
    try:
        yield ip
    finally:
        ip.extension_manager.unload_extension("jupyter_flink")
        InteractiveShell.clear_instance()
