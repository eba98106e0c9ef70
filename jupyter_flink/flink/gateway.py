"""The JVM behind PyFlink: finding Java, starting PyFlink's gateway, and small py4j helpers.

PyFlink starts one JVM per Python process and talks to it over py4j; jupyter-flink has it
started with a py4j auth token in both directions (:mod:`~jupyter_flink.flink.secure_gateway`).
That JVM exits when its Python parent dies, even on ``kill -9``: its watchdog calls into
Python, and the call fails. We rely on that for "no JVM outlives its kernel".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ClusterError, JavaNotFoundError
from ..traces import best_cause, java_causes, summarize_java_trace
from . import secure_gateway

MIN_JAVA_MAJOR = 11
_INSTALL_HINT = (
    "Install Java 11 or newer (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless) "
    "or point JAVA_HOME at one, then restart the kernel."
)
_lock = threading.Lock()


def find_java() -> str:
    """Return the java executable PyFlink will use, checking that it is Java 11 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        where = f"JAVA_HOME={java_home}" if java_home else "PATH"
        raise JavaNotFoundError(f"Apache Flink needs Java, and none was found on {where}.",
                                fix=_INSTALL_HINT)
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaNotFoundError(f"{java} -version failed: {exc}.", fix=_INSTALL_HINT) from exc
    major = java_major_version(out.stderr + out.stdout)
    if major is None or major < MIN_JAVA_MAJOR:
        found = f"Java {major}" if major else "an unrecognised Java"
        raise JavaNotFoundError(f"{java} is {found}; Apache Flink 2 needs Java 11 or newer.",
                                fix=_INSTALL_HINT, details=out.stderr)
    return java


def java_major_version(version_output: str) -> int | None:
    """The major version in ``java -version`` output ("1.8.0_292" -> 8, "17.0.1" -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def get_gateway() -> Any:
    """Start (once per process) and return PyFlink's py4j gateway, token-protected, with
    clear errors."""
    with _lock:
        from pyflink import java_gateway

        secure_gateway.install()
        if java_gateway._gateway is None:  # first start: check Java before PyFlink tries
            find_java()
            os.environ.setdefault("FLINK_LOG_DIR", str(log_dir()))
        elif not secure_gateway.owns_gateway(java_gateway._gateway):
            raise ClusterError(
                "PyFlink's JVM was started in this process before jupyter-flink was loaded, "
                "so its py4j gateway takes commands from any local process without a token.",
                fix="Restart the kernel and load jupyter-flink (%load_ext jupyter_flink) "
                    "before any PyFlink code runs; the flink kernel loads it by itself.")
        try:
            return java_gateway.get_gateway()
        except Exception as exc:
            raise ClusterError(
                "The Java side of PyFlink could not be started.",
                fix="Check the Java installation and the log in " + str(log_dir()) + ".",
                details=traceback.format_exc(),
            ) from exc


def java_gateway_started() -> bool:
    """Whether PyFlink's JVM already runs in this process."""
    from pyflink import java_gateway

    return java_gateway._gateway is not None


def log_dir() -> Path:
    """Where the JVM writes Flink's logs (PyFlink's default is inside site-packages)."""
    from jupyter_core.paths import jupyter_data_dir

    path = Path(os.environ.get("FLINK_LOG_DIR") or Path(jupyter_data_dir()) / "flink" / "log")
    path.mkdir(parents=True, exist_ok=True)
    return path


def java_configuration(gateway: Any, settings: Mapping[str, str]) -> Any:
    """A fresh ``org.apache.flink.configuration.Configuration`` holding ``settings``."""
    conf = gateway.jvm.org.apache.flink.configuration.Configuration()
    for key, value in settings.items():
        conf.setString(key, str(value))
    return conf


def java_error_summary(exc: BaseException) -> str:
    """One line for a py4j error: :func:`~jupyter_flink.traces.best_cause` of its Java
    exception chain, read from the live exception, else from its text."""
    java_exc = getattr(exc, "java_exception", None)
    if java_exc is not None:
        try:
            return best_cause(java_causes(java_exc))
        except Exception:  # the JVM may be gone; fall back to the text
            pass
    text = str(java_exc or exc)
    return summarize_java_trace(text) or repr(exc)

