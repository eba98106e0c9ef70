"""Moving one HTTP request and its answer: urllib3, behind a small interface tests replace.

urllib3 rather than httpx: the job poller sends many small requests, and httpx spent about
twice urllib3's CPU on each (figures in bench/README.md), a good part of an idle kernel's
budget.

A transport is any callable ``(Request, timeout seconds) -> Response`` that raises
:class:`TransportError` when there is no answer.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)


@dataclass(frozen=True)
class Request:
    """One request: ``headers`` look up case-insensitively."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=urllib3.HTTPHeaderDict)
    content: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))


@dataclass(frozen=True)
class Response:
    status_code: int
    content: bytes = b""
    reason: str = ""  # as the server sent it

    @property
    def reason_phrase(self) -> str:
        """The server's reason, else the standard one for the status code."""
        if self.reason:
            return self.reason
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    @classmethod
    def of_json(cls, status_code: int, body: Any) -> Response:
        return cls(status_code, json.dumps(body).encode())


class TransportError(Exception):
    """No answer: the connection failed or timed out (``timeout`` says which)."""

    def __init__(self, reason: str, *, timeout: bool = False):
        super().__init__(reason)
        self.timeout = timeout


Transport = Callable[[Request, float], Response]


class Urllib3Transport:
    """Keep-alive connections to one endpoint (and through ``proxy``, if given); thread-safe."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, proxy: str | None = None):
        options: dict[str, Any] = {"maxsize": 4, "retries": False}
        if ssl_context is not None:
            options["ssl_context"] = ssl_context
        self._pools: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options))

    def __call__(self, request: Request, timeout: float) -> Response:
        try:
            answer = self._pools.request(
                request.method, request.url, body=request.content or None,
                headers=dict(request.headers), timeout=urllib3.Timeout(timeout),
                retries=False, redirect=False)
        except NewConnectionError as exc:  # before the timeouts: it is a subclass of one
            raise TransportError(_without_connection(str(exc))) from exc
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise TransportError(str(exc), timeout=True) from exc
        except HTTPError as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        return Response(answer.status, answer.data, answer.reason or "")

    def close(self) -> None:
        self._pools.clear()


def env_proxy(url: str) -> str | None:
    """The proxy the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) names for ``url``."""
    parts = urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _without_connection(message: str) -> str:
    """urllib3 starts the message with the connection: ``HTTPConnection(host='...', port=...):
    Failed to establish a new connection: [Errno 111] Connection refused``."""
    if message.startswith(("<", "HTTPConnection(", "HTTPSConnection(")) and ": " in message:
        return message.split(": ", 1)[1]
    return message
