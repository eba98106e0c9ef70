"""Where a kernel's Flink REST endpoint is, for the Jupyter server that serves its web UI.

The kernel writes ``jupyter-flink-<kernel id>.json`` into Jupyter's runtime directory (where
jupyter_server keeps the kernels' connection files, which hold their keys: readable by the
user only) when its cluster is ready, and deletes it when the kernel stops::

    {"url": "https://127.0.0.1:40123", "headers": {...}, "ca_file": ".../ca.pem",
     "cert_file": ".../client.pem", "key_file": ".../client.key", "key_password": null,
     "check_hostname": true}

It holds what the kernel's own REST client uses (a remote cluster's headers may carry a
token, its key a password), so it is written like the connection files beside it: readable
by the user only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["UiEndpoint", "endpoint_path", "read_endpoint", "remove_endpoint", "write_endpoint"]

_KERNEL_ID = re.compile(r"[0-9a-fA-F-]{8,64}")


@dataclass(frozen=True)
class UiEndpoint:
    """A kernel's Flink REST endpoint and the credentials to use it."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: str | None = field(default=None, repr=False)
    check_hostname: bool = True


def endpoint_path(kernel_id: str, runtime_dir: str | os.PathLike[str] | None = None) -> Path:
    if not _KERNEL_ID.fullmatch(kernel_id):
        raise ValueError(f"not a kernel id: {kernel_id!r}")
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    return Path(runtime_dir) / f"jupyter-flink-{kernel_id}.json"


def write_endpoint(kernel_id: str, endpoint: UiEndpoint) -> Path:
    """Publish ``endpoint`` for the server (private to the user, replaced atomically)."""
    from ..files import atomic_write_text

    path = endpoint_path(kernel_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(asdict(endpoint)), new_file_mode=0o600)


def read_endpoint(kernel_id: str) -> UiEndpoint | None:
    try:
        data = json.loads(endpoint_path(kernel_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    return UiEndpoint(url=data["url"], headers=dict(data.get("headers") or {}),
                      ca_file=data.get("ca_file"), cert_file=data.get("cert_file"),
                      key_file=data.get("key_file"), key_password=data.get("key_password"),
                      check_hostname=bool(data.get("check_hostname", True)))


def remove_endpoint(kernel_id: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        endpoint_path(kernel_id).unlink()
