"""Interpreter-level keys: settings of jupyter-flink itself, not of Flink (Zeppelin's names).

They go in ``%%flink.conf`` next to Flink's options but are never sent to a job.

Secrets among them (``.headers``, ``.ssl.*``) may be given as ``${env:NAME}`` or
``${file:PATH}`` references (:mod:`jupyter_flink.secrets`), read when they are used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigurationError
from ..secrets import has_references

__all__ = [
    "INTERPRETER_ALIASES",
    "INTERPRETER_KEYS",
    "REMOTE_SSL_KEYS",
    "InterpreterKey",
    "interpreter_defaults",
    "is_interpreter_key",
    "parse_headers",
    "resolve_interpreter",
]
_TYPE_NAMES = {"choice": "Enum", "host": "String", "port": "Integer", "positive": "Integer",
               "boolean": "Boolean", "headers": "String", "path": "String", "secret": "String"}
# Kinds whose values may hold ${env:...} / ${file:...} references.
_REFERENCE_KINDS = frozenset({"headers", "path", "secret"})


@dataclass(frozen=True)
class InterpreterKey:
    """One interpreter-level key: its default (as text), value kind and meaning."""

    key: str
    default: str
    kind: str  # choice, host, port, positive, boolean, headers, path or secret
    help: str
    choices: tuple[str, ...] = ()

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES[self.kind]


INTERPRETER_KEYS: Mapping[str, InterpreterKey] = {k.key: k for k in (
    InterpreterKey("flink.execution.mode", "local", "choice",
                   "local: an embedded MiniCluster; remote: a running session cluster",
                   ("local", "remote")),
    InterpreterKey("flink.execution.remote.host", "", "host",
                   "host of the remote cluster's REST API"),
    InterpreterKey("flink.execution.remote.port", "8081", "port", "port of the remote REST API"),
    InterpreterKey("flink.execution.remote.https", "false", "boolean", "use HTTPS for REST calls"),
    InterpreterKey("flink.execution.remote.headers", "", "headers",
                   "HTTP headers for REST calls: a JSON object or 'Name: value; Name2: value'"),
    InterpreterKey("flink.execution.remote.ssl.ca", "", "path",
                   "PEM file of the CAs the remote cluster's REST certificate is checked "
                   "against (default: the system's); implies HTTPS"),
    InterpreterKey("flink.execution.remote.ssl.cert", "", "path",
                   "PEM file of the client certificate (chain) for a cluster that requires "
                   "mutual TLS (security.ssl.rest.authentication-enabled)"),
    InterpreterKey("flink.execution.remote.ssl.key", "", "path",
                   "PEM file of the client certificate's private key"),
    InterpreterKey("flink.execution.remote.ssl.key-password", "", "secret",
                   "password of an encrypted private key, e.g. ${env:NAME}"),
    InterpreterKey("flink.execution.remote.ssl.verify-hostname", "true", "boolean",
                   "check that the cluster's certificate names its host"),
    InterpreterKey("flink.job.check_interval", "1000", "positive",
                   "how often (ms) job status and checkpoints are polled"),
    InterpreterKey("flink.shutdown.stop_jobs", "true", "boolean",
                   "stop this kernel's jobs when the kernel shuts down"),
    InterpreterKey("flink.maxRows", "1000", "positive", "most rows a SQL result table shows"),
)}
REMOTE_SSL_KEYS = tuple(k for k in INTERPRETER_KEYS if k.startswith("flink.execution.remote.ssl."))
# Zeppelin's names for the same settings.
INTERPRETER_ALIASES: Mapping[str, str] = {
    "zeppelin.flink.job.check_interval": "flink.job.check_interval",
    "zeppelin.flink.maxResult": "flink.maxRows",
}


def is_interpreter_key(key: str) -> bool:
    return key in INTERPRETER_KEYS or key in INTERPRETER_ALIASES


def interpreter_defaults() -> dict[str, str]:
    return {k: spec.default for k, spec in INTERPRETER_KEYS.items()}


def resolve_interpreter(key: str, value: str) -> tuple[str, str, str | None]:
    """Check an interpreter-level setting: (key, normalised value, notice or None)."""
    canonical = INTERPRETER_ALIASES.get(key, key)
    spec = INTERPRETER_KEYS.get(canonical)
    if spec is None:
        raise ConfigurationError(f"'{key}' is not an interpreter-level key", key=key)
    notice = f"{key} is Zeppelin's name; using {canonical}." if canonical != key else None
    return canonical, _check(spec, key, value.strip()), notice


def _check(spec: InterpreterKey, key: str, value: str) -> str:
    def bad(expected: str, fix: str | None = None) -> ConfigurationError:
        return ConfigurationError(f"{key}: {value!r} is not {expected}", key=key, fix=fix)

    if has_references(value) and spec.kind not in _REFERENCE_KINDS:
        raise ConfigurationError(
            f"{key}: ${{env:...}} and ${{file:...}} are read only in Flink settings and in "
            "secrets (flink.execution.remote.headers and .ssl.*).", key=key,
            fix="Write the value itself.")

    if spec.kind == "choice":
        if value.lower() not in spec.choices:
            raise bad("one of " + ", ".join(spec.choices))
        return value.lower()
    if spec.kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise bad("a boolean (true or false)")
        return value.lower()
    if spec.kind in ("port", "positive"):
        number = int(value) if re.fullmatch(r"[+]?\d+", value) else 0
        if spec.kind == "port" and not 0 < number < 65536:
            raise bad("a port number (1-65535)")
        if number <= 0:
            raise bad("a positive whole number" + (" of milliseconds" if "interval" in key else ""))
        return str(number)
    if spec.kind in ("path", "secret"):
        return value
    if spec.kind == "host":
        if "/" in value or " " in value:
            raise bad("a host name", fix="Give the host only (e.g. flink.example.com); set "
                      "flink.execution.remote.https true for HTTPS.")
        return value
    parse_headers(value, key=key)
    return value


def parse_headers(text: str, *, key: str = "flink.execution.remote.headers") -> dict[str, str]:
    """Headers from a JSON object or from ``Name: value; Name2: value`` (empty: none)."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{key}: not valid JSON ({exc})", key=key) from exc
        if not all(isinstance(v, (str, int, float)) for v in data.values()):
            raise ConfigurationError(f"{key}: header values must be strings", key=key)
        return {str(k): str(v) for k, v in data.items()}
    headers: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, sep, value = item.partition(":")
        if not sep or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name.strip()):
            raise ConfigurationError(
                f"{key}: {item!r} is not a 'Name: value' header", key=key,
                fix='Write headers as \'Name: value; Name2: value\' or as a JSON object.')
        headers[name.strip()] = value.strip()
    return headers
