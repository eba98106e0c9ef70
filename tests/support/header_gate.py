"""An HTTP gate in front of a Flink REST endpoint that lets through only requests carrying
one header, as an authenticating proxy in front of a shared cluster does.

It forwards every method, bodies included (Flink's client uploads job graphs chunked), and
counts what it let through and what it turned away (401), by method and path.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["HeaderGate"]

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class HeaderGate:
    """``with HeaderGate(target_url, "X-Gate", "secret") as gate: gate.port ...``"""

    def __init__(self, target_url: str, header: str, value: str):
        self.target = urlsplit(target_url)
        self.header, self.value = header, value
        self.passed: Counter[str] = Counter()  # "POST /v1/jobs" -> count
        self.refused: Counter[str] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> HeaderGate:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                what = f"{self.command} {self.path.split('?')[0]}"
                body = self._body()
                if self.headers.get(gate.header) != gate.value:
                    gate.refused[what] += 1
                    self._answer(401, {"Content-Type": "application/json"},
                                 b'{"errors": ["missing the gate header"]}')
                    return
                gate.passed[what] += 1
                connection = http.client.HTTPConnection(gate.target.hostname or "127.0.0.1",
                                                        gate.target.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    self._answer(response.status, dict(response.getheaders()), response.read())
                finally:
                    connection.close()

            def _body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline().strip():  # trailers
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else None

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in _HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _any

        return Handler
