"""Sockets of this kernel's process tree that listen beyond the loopback interface.

The embedded cluster, the py4j gateway and its callback server listen on 127.0.0.1 only, and
its Python functions run in thread mode (README, "Security"). Code in a ``%%flink`` cell can
still open ports for everyone without meaning to: an environment it builds itself
(``StreamExecutionEnvironment.get_execution_environment()``, ``TableEnvironment.create(...)``)
starts a MiniCluster with Flink's defaults, whose REST API (jar upload included) and blob server
listen on every interface, as does PyFlink's Beam loopback worker pool in the kernel (measured
with PyFlink 2.3). :func:`exposure_note` tells the cell when that happened.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable

__all__ = ["exposure_note", "wide_listeners"]


def wide_listeners(pid: int | None = None) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets of ``pid`` (this process) and its descendants that
    listen on anything but a loopback address."""
    import psutil

    found: set[tuple[str, int]] = set()
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid or os.getpid())
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                for conn in process.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN and not _loopback(conn.laddr.ip):
                        found.add((conn.laddr.ip, conn.laddr.port))
    return found


def exposure_note(new: Iterable[tuple[str, int]]) -> str | None:
    """A note for the cell about listeners it opened for everyone (None if it opened none)."""
    listeners = sorted(new, key=lambda item: item[1])
    if not listeners:
        return None
    where = ", ".join(f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
                      for address, port in listeners)
    return (f"This cell's code opened ports on every network interface ({where}), reachable "
            "by other users and machines: an environment built in the cell "
            "(get_execution_environment(), TableEnvironment.create()) runs its own Flink "
            "cluster with Flink's defaults. Use senv, stenv and btenv, which run on the "
            "kernel's protected cluster.")


def _loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)
