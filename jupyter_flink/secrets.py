"""Secrets in settings and in what we print: ``${env:NAME}`` / ``${file:PATH}`` references,
credentials written in URLs, and the masking every printed text goes through.

Notebook outputs are saved with the notebook, so nothing jupyter-flink prints may carry a
secret. :func:`mask` hides, wherever they appear in a text:

* credentials in a URL: ``s3://KEY:SECRET@bucket/x`` -> ``s3://***@bucket/x``;
* every value this process resolved from a reference (:func:`resolve_references` remembers
  them), e.g. the contents of ``${env:AWS_SECRET_ACCESS_KEY}`` quoted back in a Java error.

:func:`shown_setting` is for configuration tables: the value of a key Flink treats as
sensitive (``*password*``, ``*secret*``, ``*token*``...) is hidden as a whole, a reference is
shown as written (it names where the secret is, not the secret).

References are the clean way to pass a secret: ``s3.secret-key ${env:S3_SECRET}`` in
``%%flink.conf`` stores the reference, and the value is read only when it is handed to Flink
(:func:`resolve_references`), with a clear error when the variable or file is missing.
``${file:PATH}`` reads a file (``~`` expanded, one trailing newline dropped: the format of
Kubernetes and Docker secrets).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigurationError

__all__ = ["MASK", "has_references", "is_sensitive_key", "mask", "remember",
           "resolve_references", "resolve_settings", "shown_setting", "strip_url_credentials"]

MASK = "***"
MAX_FILE_BYTES = 64 * 1024
# Shorter values are not worth hiding everywhere (masking "on" would garble every text).
MIN_REMEMBERED_LENGTH = 4

_REFERENCE = re.compile(r"\$\{(env|file):([^}]*)\}")
# scheme://userinfo@ : userinfo ends at the last "@" before a space, quote or bracket, so a
# secret with an unescaped "/" (AWS secret keys have them) is still caught whole.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)"
                           r"(?P<userinfo>[^\s'\"<>()\[\]{}@]*)@")
# host:port/path@x is a path with an "@", not credentials.
_HOST_PORT_PATH = re.compile(r"[^:/]*:\d+/")
# The parts of a key that make Flink hide its value (GlobalConfiguration.isSensitive), and
# our own headers (an Authorization header is a credential).
_SENSITIVE_PARTS = ("password", "secret", "token", "fs.azure.account.key", "apikey",
                    "api-key", "auth-params", "service-key", "basic-auth", "jaas.config",
                    "http-headers", "headers")


class _Remembered:
    """The values resolved from references in this process, longest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()

    def add(self, value: str) -> None:
        if len(value) < MIN_REMEMBERED_LENGTH:
            return
        with self._lock:
            if value not in self._values:
                self._values = tuple(sorted({*self._values, value}, key=len, reverse=True))

    def all(self) -> tuple[str, ...]:
        return self._values


_remembered = _Remembered()


def remember(value: str) -> None:
    """Hide ``value`` in every text :func:`mask` sees from now on (this process)."""
    _remembered.add(value)
    for line in value.splitlines():  # a multi-line secret may be quoted one line at a time
        _remembered.add(line.strip())


def mask(text: str) -> str:
    """``text`` without URL credentials and without any remembered secret value."""
    if not text:
        return text
    for value in _remembered.all():
        if value in text:
            text = text.replace(value, MASK)
    if "@" in text and "://" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    return text


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    if not userinfo or userinfo == MASK or _HOST_PORT_PATH.match(userinfo) or (
            "/" in userinfo and ":" not in userinfo):
        return match.group(0)  # a path that contains "@", or already masked
    return f"{match.group('scheme')}{MASK}@"


def strip_url_credentials(url: str) -> str:
    """``url`` without its ``user:password@`` (for what is recorded in notebooks)."""
    match = _URL_USERINFO.match(url)
    if match is not None and _mask_userinfo(match) != match.group(0):
        return match.group("scheme") + url[match.end():]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{host}:{port}" if port else host))


def is_sensitive_key(key: str) -> bool:
    """Whether Flink (or jupyter-flink) hides the value of ``key`` when it shows settings."""
    lowered = key.lower()
    return any(part in lowered for part in _SENSITIVE_PARTS)


def shown_setting(key: str, value: str | None) -> str | None:
    """How a setting's value appears in a table: a reference as written, a sensitive key's
    value hidden, anything else masked."""
    if value is None:
        return None
    if has_references(value):
        return mask(value)
    if is_sensitive_key(key) and value:
        return MASK
    return mask(value)


def has_references(value: str) -> bool:
    return "${" in value and _REFERENCE.search(value) is not None


def resolve_references(value: str, *, key: str | None = None) -> str:
    """``value`` with each ``${env:NAME}`` and ``${file:PATH}`` replaced by what it names.

    The values read are remembered (:func:`remember`), so they never show in our outputs.
    ConfigurationError (naming ``key``) when a variable is not set or a file cannot be read.
    """
    if not has_references(value):
        return value

    def replace(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2).strip()
        resolved = _read_env(name, key) if kind == "env" else _read_file(name, key)
        remember(resolved)
        return resolved

    return _REFERENCE.sub(replace, value)


def resolve_settings(settings: Mapping[str, str]) -> dict[str, str]:
    """Every value of ``settings`` with its references resolved."""
    return {key: resolve_references(value, key=key) for key, value in settings.items()}


def _read_env(name: str, key: str | None) -> str:
    where = f"{key}: " if key else ""
    if not name:
        raise ConfigurationError(f"{where}${{env:}} names no environment variable.", key=key,
                                 fix="Write ${env:NAME}.")
    value = os.environ.get(name)
    if value is None:
        raise ConfigurationError(
            f"{where}the environment variable {name} (from ${{env:{name}}}) is not set in the "
            "kernel's environment.", key=key,
            fix=f"Set {name} where Jupyter (or the kernel) is started, or use ${{file:PATH}}.")
    return value


def _read_file(name: str, key: str | None) -> str:
    where = f"{key}: " if key else ""
    if not name:
        raise ConfigurationError(f"{where}${{file:}} names no file.", key=key,
                                 fix="Write ${file:/path/to/secret}.")
    path = Path(name).expanduser()
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(
            f"{where}the file {path} (from ${{file:{name}}}) cannot be read: "
            f"{exc.strerror or exc}.", key=key,
            fix="Check the path (it is read by the kernel, relative to its working directory) "
                "and that the file is readable.") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigurationError(f"{where}the file {path} is larger than "
                                 f"{MAX_FILE_BYTES // 1024} KiB: not a secret.", key=key)
    text = data.decode("utf-8", errors="replace")
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
