"""The HTTP layer: requests to a Flink REST endpoint over a transport
(:mod:`~jupyter_flink.rest.transport`, urllib3), the retry policy around them, and Flink's
error answers turned into :class:`~jupyter_flink.errors.RestError`.

It knows nothing of jobs or checkpoints (that is :mod:`jupyter_flink.rest.client`). It is safe to
share between threads, e.g. the job poller and the kernel thread: urllib3's pools are
thread-safe, and this class keeps no per-request state.
"""

from __future__ import annotations

import ipaddress
import json as jsonlib
import os
import ssl
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union
from urllib.parse import urlencode, urlsplit

import urllib3

from ..errors import ConfigurationError, RestError
from .retry import LinearRetryPolicy, RetryPolicy
from .traces import flink_errors, summarize_java_trace
from .transport import Request, Response, Transport, TransportError, Urllib3Transport, env_proxy

DEFAULT_TIMEOUT = 5.0
# Methods that are safe to send twice. Flink's POST/PATCH start operations (savepoint, stop,
# cancel): a retry after a lost answer could start a second one.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD"})

Verify = Union[bool, str, "os.PathLike[str]", ssl.SSLContext]


@dataclass(frozen=True)
class ClientCertificate:
    """A TLS client certificate: PEM files of the certificate (chain) and of its key, and the
    key's password if it is encrypted (never shown in a repr)."""

    cert: str
    key: str
    password: str | None = field(default=None, repr=False)


class HttpClient:
    """Sends requests to one Flink REST endpoint and checks their status codes.

    ``headers`` are sent with every request (e.g. for an authenticating proxy). ``verify`` is
    True (system CAs), False, the path of a CA bundle file or directory, or an SSLContext;
    ``client_cert`` is presented to servers that ask for one (mutual TLS), and
    ``check_hostname`` False accepts a trusted certificate issued for another name.
    ``timeout`` is the connect and the read timeout of one request, in seconds. ``retry``
    decides about retrying GETs (default :class:`LinearRetryPolicy`). ``transport`` replaces
    the network (tests). ``trust_env`` (the proxy variables) defaults to off for loopback
    addresses, where a corporate HTTP_PROXY would otherwise swallow requests meant for the
    embedded cluster.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        verify: Verify = True,
        client_cert: ClientCertificate | None = None,
        check_hostname: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        trust_env: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        try:
            parts = urlsplit(base_url)
            scheme, host, _ = parts.scheme, parts.hostname, parts.port
        except ValueError:  # a port that is not a number, an unclosed [IPv6 address
            scheme, host = "", None
        if scheme not in ("http", "https") or not host:
            raise ConfigurationError(
                f"{base_url!r} is not a Flink REST address.",
                fix="Use http://host:port or https://host:port (the JobManager's rest.port).",
            )
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.retry: RetryPolicy = retry if retry is not None else LinearRetryPolicy()
        self.headers = urllib3.HTTPHeaderDict({"Accept": "application/json",
                                               **dict(headers or {})})
        self.trust_env = (not is_loopback(host)) if trust_env is None else trust_env
        self._sleep = sleep
        self._closed = False
        self._transport = transport if transport is not None else Urllib3Transport(
            ssl_context=ssl_context(verify, client_cert, check_hostname=check_hostname)
            if scheme == "https" else None,
            proxy=env_proxy(self.base_url) if self.trust_env else None)

    def request(
        self,
        method: str,
        path: str,
        *,
        accepted: Collection[int],
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Response:
        """Send a request; return the response if its status is in ``accepted``.

        Raises RestError with ``status`` None when there is no answer, and with the status,
        the body and Flink's ``errors`` when the status is not accepted. GETs are retried as
        the policy says; other methods are sent exactly once.
        """
        method = method.upper()
        request = self._request(method, path, params, json)
        attempt = 0
        while True:
            attempt += 1
            if self._closed:
                raise self._closed_error(method, path)
            try:
                response = self._transport(request, self.timeout)
            except TransportError as exc:
                if self._closed:  # close() raced with the request
                    raise self._closed_error(method, path) from exc
                if self._should_retry(method, None, attempt):
                    continue
                raise self._unreachable(method, path, exc) from exc
            if response.status_code in accepted:
                return response
            if self._should_retry(method, response.status_code, attempt):
                continue
            raise status_error(method, path, response, accepted)

    def _request(self, method: str, path: str, params: Mapping[str, str] | None,
                 json: Any) -> Request:
        url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
        if json is None:
            return Request(method, url, self.headers)
        headers = self.headers.copy()
        headers["Content-Type"] = "application/json"
        return Request(method, url, headers, jsonlib.dumps(json).encode())

    def close(self) -> None:
        """Close the connections; later requests raise RestError. Idempotent."""
        self._closed = True
        close = getattr(self._transport, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r}, timeout={self.timeout:g}, retry={self.retry!r})"

    def _should_retry(self, method: str, status_code: int | None, attempt: int) -> bool:
        if method not in IDEMPOTENT_METHODS or not self.retry.should_retry(status_code, attempt):
            return False
        self._sleep(self.retry.delay(attempt))
        return True

    def _unreachable(self, method: str, path: str, exc: TransportError) -> RestError:
        if exc.timeout:
            reason = f"no answer within {self.timeout:g} s"
        else:
            reason = str(exc) or type(exc).__name__
        return RestError(
            f"The Flink cluster at {self.base_url} is unreachable: {method} {path} failed "
            f"({reason}).",
            fix="Check that the cluster is running and that its REST address and port are right.",
        )

    def _closed_error(self, method: str, path: str) -> RestError:
        return RestError(f"{method} {path}: the REST client for {self.base_url} is closed.")


def status_error(
    method: str, path: str, response: Response, accepted: Collection[int]
) -> RestError:
    """A RestError for an answer whose status was not expected, with Flink's own reasons."""
    body = response.text
    errors = flink_errors(body)
    expected = "/".join(str(code) for code in sorted(accepted))
    message = (
        f"Flink answered {method} {path} with {response.status_code} "
        f"{response.reason_phrase} (expected {expected})"
    )
    summaries = [summary for summary in map(summarize_java_trace, errors) if summary]
    message += (": " + "; ".join(summaries)) if summaries else "."
    fix = None
    if response.status_code in (401, 403, 407):
        fix = "Check the headers configured for the Flink REST endpoint (authentication)."
    return RestError(
        message,
        status=response.status_code,
        body=body,
        fix=fix,
        details="\n\n".join(errors) or None,
    )


def decode_json(method: str, path: str, response: Response) -> Any:
    """The JSON body of an accepted response (None when empty), or RestError."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise RestError(
            f"Flink answered {method} {path} with {response.status_code}, but not with JSON.",
            status=response.status_code,
            body=response.text,
        ) from exc


def ssl_context(verify: Verify, client_cert: ClientCertificate | None = None, *,
                check_hostname: bool = True) -> ssl.SSLContext:
    """The TLS settings for ``verify``: system CAs (True), none (False), a CA bundle file or
    directory, or a given SSLContext; with ``client_cert`` loaded for mutual TLS."""
    if isinstance(verify, ssl.SSLContext):
        context = verify
    elif verify is True:
        context = ssl.create_default_context()
    elif verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        path = Path(verify).expanduser()
        if path.is_dir():
            context = ssl.create_default_context(capath=str(path))
        elif path.is_file():
            context = ssl.create_default_context(cafile=str(path))
        else:
            raise ConfigurationError(
                f"The CA bundle {path} for Flink's REST endpoint does not exist.",
                fix="Point the setting at a PEM file or a directory of CA certificates.",
            )
    if not check_hostname and context.verify_mode != ssl.CERT_NONE:
        context.check_hostname = False
    if client_cert is not None:
        try:
            context.load_cert_chain(client_cert.cert, client_cert.key,
                                    password=client_cert.password)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"The client certificate {client_cert.cert} (key {client_cert.key}) cannot be "
                f"used: {getattr(exc, 'strerror', None) or exc}.",
                fix="Give PEM files of the certificate and of its private key (and the key's "
                    "password if it is encrypted).") from None
    return context


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name, an IPv4 or a bracketed IPv6 address) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
