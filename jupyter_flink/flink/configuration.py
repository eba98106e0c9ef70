"""What ``%%flink.conf`` cells configured: one layer per cell, checked before it counts.

Each conf cell contributes a layer (re-running the cell replaces it); later cells win where
they overlap. A layer is built and checked whole before it replaces the old one, so a bad
line leaves the previous configuration in force. ``${env:...}`` and ``${file:...}``
references are checked (they must resolve) but kept as written: they are read again when
used. Flink settings are checked by Flink's option registry (options/registry.py); the
integration's own keys by options/interpreter_keys.py.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..options.interpreter_keys import (
    interpreter_defaults,
    is_interpreter_key,
    parse_headers,
    resolve_interpreter,
)
from ..secrets import has_references, resolve_references
from .cluster import check_embedded_settings
from .gateway import get_gateway
from .java_helpers import invoke_static, load_class

if TYPE_CHECKING:
    from ..options.registry import OptionRegistry, Resolved
    from ..parsing.conf import ConfEntry

__all__ = ["HEADERS_ENV", "HEADERS_KEY", "ConfLayer", "Configuration", "default_job_settings"]

log = logging.getLogger(__name__)

HEADERS_ENV = "FLINK_REST_CLIENT_HEADERS"  # read by Flink's RestClusterClient
HEADERS_KEY = "flink.execution.remote.headers"


def default_job_settings() -> dict[str, str]:
    """Flink settings every job gets unless %%flink.conf says otherwise.

    Checkpoints and savepoints go to Jupyter's data dir and survive a cancel, because
    resuming a cell from its latest checkpoint is the point of recording it.
    """
    from jupyter_core.paths import jupyter_data_dir

    base = Path(jupyter_data_dir()) / "flink"
    return {
        "execution.checkpointing.dir": (base / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (base / "savepoints").as_uri(),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
    }


@dataclass
class ConfLayer:
    """The settings one ``%%flink.conf`` cell contributed (re-running the cell replaces them)."""

    flink: dict[str, str] = field(default_factory=dict)
    interpreter: dict[str, str] = field(default_factory=dict)


class Configuration:
    """The layers of one kernel's ``%%flink.conf`` cells and what they add up to."""

    def __init__(self, options: Callable[[], OptionRegistry],
                 kernel_defaults: Mapping[str, str] | None = None):
        self._options = options  # Flink's option registry (loading it starts the JVM)
        self.layers: dict[str, ConfLayer] = {}
        # Interpreter keys' defaults as the kernel's configuration sets them (FlinkMagics).
        self._kernel_defaults = dict(kernel_defaults or {})

    # ----------------------------------------------------------------- reading

    def interpreter_default(self, key: str) -> str:
        """The value of an interpreter key that no %%flink.conf cell set."""
        return {**interpreter_defaults(), **self._kernel_defaults}[key]

    def interpreter_setting(self, key: str, *, extra: ConfLayer | None = None) -> str:
        merged = {**interpreter_defaults(), **self._kernel_defaults}
        for layer in [*self.layers.values(), *([extra] if extra else [])]:
            merged.update(layer.interpreter)
        return merged[key]

    def flink_settings(self) -> dict[str, str]:
        """The Flink settings %%flink.conf cells made, in the order the cells last ran."""
        merged: dict[str, str] = {}
        for layer in self.layers.values():
            merged.update(layer.flink)
        return merged

    def default_settings(self) -> dict[str, str]:
        """What every job gets unless %%flink.conf says otherwise (jupyter-flink's defaults).

        On the embedded cluster, Python functions run in this kernel's interpreter, in the
        TaskManager's threads (``python.execution-mode: thread``, PEMJA): process mode would
        start a worker per task that talks to the JVM over six Beam gRPC ports bound to
        every network interface, reachable from other machines (README, "Security").
        """
        settings = default_job_settings()
        if self.interpreter_setting("flink.execution.mode") == "local":
            settings.update({
                # this kernel's interpreter (it has PyFlink), not whatever "python" is on PATH
                "python.executable": sys.executable,
                "python.execution-mode": "thread",
                # the embedded interpreter needs pemja and PyFlink from this environment
                "python.pythonpath": os.pathsep.join(_site_packages()),
            })
        return settings

    def job_settings(self) -> dict[str, str]:
        """Defaults plus configured job-scope settings: the base of every job's configuration."""
        settings = self.default_settings()
        options = self._options()
        configured = {k: v for k, v in self.flink_settings().items()
                      if options.scope(k) == "job"}
        path = configured.get("python.pythonpath")
        if path and "python.pythonpath" in settings:  # keep what thread mode needs
            configured["python.pythonpath"] = os.pathsep.join([path, settings[
                "python.pythonpath"]])
        settings.update(configured)
        return settings

    def cluster_settings(self) -> dict[str, str]:
        options = self._options()
        return {k: v for k, v in self.flink_settings().items() if options.scope(k) == "cluster"}

    # ----------------------------------------------------------------- building

    def build(self, entries: Sequence[ConfEntry], *, jvm_started: Callable[[], bool]
              ) -> tuple[ConfLayer, list[str]]:
        """Check one cell's entries and make its layer; returns it and the notices.

        Interpreter keys come first, in Python: the headers must be known before the JVM
        starts (the option registry starts it), since Flink's client reads them from its
        environment. Raises ConfigurationError (line and key named) with nothing changed.
        """
        layer = ConfLayer()
        notices: list[str] = []
        lines: dict[str, int | None] = {}
        headers_before = os.environ.get(HEADERS_ENV)
        try:
            for entry in sorted(entries, key=lambda e: not is_interpreter_key(e.key)):
                try:
                    if is_interpreter_key(entry.key):
                        key, value, notice = resolve_interpreter(entry.key, entry.value)
                        resolve_references(value, key=key)  # must resolve; kept as written
                        layer.interpreter[key] = value
                    else:
                        resolved = self.resolve_flink_setting(entry.key, entry.value)
                        layer.flink.update(dict(resolved.settings))
                        lines.update({k: entry.line for k, _ in resolved.settings})
                        notice = resolved.notice
                except ConfigurationError as exc:
                    raise ConfigurationError(exc.message, line=entry.line, key=entry.key,
                                             fix=exc.fix, details=exc.details) from exc
                if is_interpreter_key(entry.key) and entry.key.endswith(".headers"):
                    _export_headers(layer.interpreter[HEADERS_KEY])
                if notice:
                    notices.append(f"Line {entry.line}: {notice}")
            if self.interpreter_setting("flink.execution.mode", extra=layer) == "local":
                _check_embedded(layer, lines)
        except ConfigurationError:
            _restore_env(HEADERS_ENV, headers_before)  # a bad cell changes nothing
            raise
        if os.environ.get(HEADERS_ENV) != headers_before and jvm_started():
            notices.extend(_headers_to_running_jvm())
        return layer, notices

    def resolve_flink_setting(self, key: str, value: str) -> Resolved:
        """The settings ``key value`` stands for (checked by Flink's option registry); a value
        with references is checked as resolved and kept as written."""
        options = self._options()
        if not has_references(value):
            return options.resolve(key, value)
        actual = resolve_references(value.strip(), key=key)
        resolved = options.resolve(key, actual)
        kept = tuple((k, value.strip() if v == actual.strip() else v)
                     for k, v in resolved.settings)
        return replace(resolved, settings=kept)

    def put(self, source: str, layer: ConfLayer) -> ConfLayer | None:
        """Make ``layer`` the one of ``source`` (now the latest); returns the one replaced."""
        previous = self.layers.pop(source, None)
        self.layers[source] = layer
        return previous

    def take_back(self, source: str, previous: ConfLayer | None) -> None:
        """Undo :meth:`put`."""
        if previous is not None:
            self.layers[source] = previous
        else:
            self.layers.pop(source, None)

    def reset(self) -> None:
        self.layers.clear()


def _check_embedded(layer: ConfLayer, lines: Mapping[str, int | None]) -> None:
    """In local mode, settings that would open the embedded cluster are errors now."""
    try:
        check_embedded_settings(layer.flink)
    except ConfigurationError as exc:
        raise ConfigurationError(exc.message, line=lines.get(exc.key or ""), key=exc.key,
                                 fix=exc.fix) from exc


def _export_headers(text: str) -> None:
    """Hand the remote cluster's HTTP headers to Flink's own REST client (job submission),
    which reads them from FLINK_REST_CLIENT_HEADERS: a JVM started later inherits them."""
    os.environ[HEADERS_ENV] = "\n".join(
        f"{k}:{v}" for k, v in parse_headers(resolve_references(text, key=HEADERS_KEY)).items())


def _headers_to_running_jvm() -> list[str]:
    """The JVM runs already (warm start, an earlier cell): change its environment too, so
    that its next submission sends the new headers; notices if that cannot be done."""
    try:
        gateway = get_gateway()
        env = load_class(gateway, "ProcessEnv.java", "jupyterflink.ProcessEnv")
        invoke_static(gateway, env, "set", ["java.lang.String", "java.lang.String"],
                      HEADERS_ENV, os.environ.get(HEADERS_ENV))
        return []
    except Exception as exc:  # py4j and reflection errors alike
        log.warning("could not hand the new headers to the running JVM: %s", exc)
        return ["flink.execution.remote.headers: the Flink JVM already runs and its "
                "environment could not be changed, so job submissions get the new headers "
                "only after a kernel restart (status polling uses them at once)."]


def _site_packages() -> list[str]:
    import site

    return [path for path in site.getsitepackages() if os.path.isdir(path)]


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
