"""PyFlink's JVM with a py4j auth token in both directions. Every trick this takes is here.

Why: PyFlink 2.3 starts its JVM (``PythonGatewayServer``) with a py4j gateway that takes
commands from any local process without a secret: full Java access, as the notebook's user
(reproduced in issue 11: a stranger's client wrote a file). Its callback server in the
kernel, through which the JVM calls Python functions, equally answers anyone. py4j supports an
auth token on both sides, but PyFlink's launcher passes none and has no setting for one.

How:

1. ``java/SecureGatewayServer.java`` does what ``PythonGatewayServer.main`` does, with a random
   token on the ``GatewayServer`` and on its ``CallbackClient``, bound to the loopback address.
   It is a class *body* run by Janino's ``org.codehaus.commons.compiler.samples.ClassBodyDemo``
   (bundled in ``flink-table-runtime``), so no JDK and no compiled class are needed.
2. :func:`launch_secure_gateway` starts it with PyFlink's own launch command
   (``pyflink.pyflink_gateway_server.launch_gateway_server_process``: the same java, class
   path, log settings and JVM options), only the main class and its argument swapped. The JVM
   writes the port and the token into the connection-info file in a 0700 directory; they
   never appear on a command line or in an environment.
3. The Python side connects with the token (``GatewayParameters`` and
   ``CallbackServerParameters`` ``auth_token``).
4. :func:`install` puts :func:`launch_secure_gateway` in place of PyFlink's
   ``pyflink.java_gateway.launch_gateway`` (looked up by name when ``get_gateway()`` first
   runs), so PyFlink's ``get_gateway()`` does the rest exactly as usual (callback client
   reset, imports, exception hooks, watchdog). Replacing it is the only way to cover code
   in plain cells that touches PyFlink before any Flink magic; jupyter-flink installs it when
   the extension loads and puts PyFlink's back when it unloads. ``PYFLINK_GATEWAY_PORT`` is
   removed from the environment: with it set, PyFlink connects to an existing gateway
   without a token.

Re-check on a Flink upgrade (the integration tests fail loudly if any of these moved):

* ``PythonGatewayServer.main`` (``javap -c -p`` on ``opt/flink-python-*.jar``): still what
  SecureGatewayServer.java does, plus the token? Same watchdog protocol?
* ``PythonEnvUtils.resetCallbackClientExecutorService(GatewayServer)`` and
  ``setGatewayServer(GatewayServer)``: still there, still static (called by reflection)?
* py4j is still shaded as ``org.apache.flink.api.python.shaded.py4j``, with
  ``GatewayServerBuilder.authToken`` and ``CallbackClient(int, InetAddress, String)``?
* ``ClassBodyDemo`` still bundled in ``flink-table-runtime`` (or in another jar of
  ``pyflink/lib``), and still reading ``@file``?
* ``pyflink.java_gateway``: ``launch_gateway`` still looked up at call time by
  ``get_gateway``; the connection-info file still written through ``_PYFLINK_CONN_INFO_PATH``;
  ``launch_gateway_server_process(env, args)`` with ``args = ["-c", MAIN, "local", ...]``.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from importlib import resources
from typing import Any

__all__ = ["install", "installed", "launch_secure_gateway", "owns_gateway", "uninstall"]

CLASS_BODY_RUNNER = "org.codehaus.commons.compiler.samples.ClassBodyDemo"
START_TIMEOUT_S = 120.0
_lock = threading.Lock()
_state: dict[str, Any] = {}  # "original": PyFlink's launch_gateway; "gateway": the one we made


def install() -> None:
    """Make PyFlink start its JVM with the token from now on (idempotent)."""
    from pyflink import java_gateway

    os.environ.pop("PYFLINK_GATEWAY_PORT", None)
    with _lock:
        if java_gateway.launch_gateway is not launch_secure_gateway:
            _state["original"] = java_gateway.launch_gateway
            java_gateway.launch_gateway = launch_secure_gateway


def uninstall() -> None:
    """Put PyFlink's own launcher back (a JVM already started keeps its token)."""
    from pyflink import java_gateway

    with _lock:
        original = _state.pop("original", None)
        if original is not None and java_gateway.launch_gateway is launch_secure_gateway:
            java_gateway.launch_gateway = original


def installed() -> bool:
    from pyflink import java_gateway

    return java_gateway.launch_gateway is launch_secure_gateway


def owns_gateway(gateway: Any) -> bool:
    """Whether ``gateway`` is one :func:`launch_secure_gateway` started (token-protected)."""
    return gateway is not None and gateway is _state.get("gateway")


def launch_secure_gateway() -> Any:
    """Start PyFlink's JVM with a py4j auth token and connect to it (PyFlink's
    ``launch_gateway``, with the token)."""
    from py4j.java_gateway import CallbackServerParameters, GatewayParameters, JavaGateway
    from pyflink.find_flink_home import _find_flink_home
    from pyflink.java_gateway import is_launch_gateway_disabled
    from pyflink.pyflink_gateway_server import launch_gateway_server_process

    if is_launch_gateway_disabled():  # as PyFlink: a Python worker must not start a JVM
        raise RuntimeError("PyFlink's JVM must not be started from a Python UDF worker.")
    conn_info_dir = tempfile.mkdtemp(prefix="jupyter-flink-gateway-")  # 0700
    try:
        conn_info = os.path.join(conn_info_dir, "connection.info")
        _find_flink_home()
        env = dict(os.environ)
        env["_PYFLINK_CONN_INFO_PATH"] = conn_info
        with resources.as_file(resources.files(__package__).joinpath(
                "java", "SecureGatewayServer.java")) as class_body:
            process = launch_gateway_server_process(
                env, ["-c", CLASS_BODY_RUNNER, "local", f"@{class_body}"])
            port, token = _read_connection_info(process, conn_info)
    finally:
        shutil.rmtree(conn_info_dir, ignore_errors=True)
    gateway = JavaGateway(
        gateway_parameters=GatewayParameters(port=port, auto_convert=True, auth_token=token),
        callback_server_parameters=CallbackServerParameters(
            port=0, daemonize=True, daemonize_connections=True, auth_token=token))
    _state["gateway"] = gateway
    return gateway


def _read_connection_info(process: subprocess.Popen[bytes], path: str) -> tuple[int, str]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while process.poll() is None and not os.path.isfile(path):
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"PyFlink's JVM did not start within {START_TIMEOUT_S:g} s.")
        time.sleep(0.02)
    if not os.path.isfile(path):
        stderr = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
        raise RuntimeError("Java gateway process exited before sending its port number.\n"
                           f"Stderr:\n{stderr}")
    with open(path, "rb") as info:
        port, length = struct.unpack("!II", info.read(8))
        token = info.read(length).decode("ascii")
    return port, token
