"""The urllib3 transport against a real HTTP server on a free loopback port (Flink's REST
API itself is exercised by the integration tests)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jupyter_flink.errors import RestError
from jupyter_flink.rest import FlinkRestClient, NoRetry
from jupyter_flink.rest.transport import Request, TransportError, Urllib3Transport, env_proxy


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Flink's REST server
    seen: list[dict[str, Any]] = []
    hold = threading.Event()  # set: answer /slow only when released

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append({"method": self.command, "path": self.path, "body": body,
                          "headers": dict(self.headers), "port": self.client_address[1]})
        if self.path == "/slow":
            self.hold.wait(10)
        status, payload = (404, {"errors": ["Not found: " + self.path]}) \
            if self.path.startswith("/missing") else (200, {"path": self.path})
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.seen = []
    Recorder.hold = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        Recorder.hold.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_requests_headers_bodies_and_kept_alive_connections(server: str) -> None:
    with FlinkRestClient(server, headers={"X-Auth": "t0ken"}) as client:
        assert client.http.request("GET", "/jobs/overview", accepted={200},
                                   params={"a": "1"}).json() == {"path": "/jobs/overview?a=1"}
        client.http.request("POST", "/jobs/x/savepoints", accepted={200},
                            json={"cancel-job": False})
        client.http.request("PATCH", "/jobs/x", accepted={200}, params={"mode": "cancel"})
        with pytest.raises(RestError) as info:
            client.http.request("GET", "/missing", accepted={200})
    assert info.value.status == 404 and "404 Not Found" in info.value.message
    get, post, patch, _ = Recorder.seen
    assert get["headers"]["X-Auth"] == "t0ken" and get["headers"]["Accept"] == "application/json"
    assert json.loads(post["body"]) == {"cancel-job": False}
    assert post["headers"]["Content-Type"] == "application/json"
    assert patch["path"] == "/jobs/x?mode=cancel" and patch["body"] == b""
    assert len({seen["port"] for seen in Recorder.seen}) == 1, "a new connection per request"


def test_no_answer_in_time_is_a_timeout(server: str) -> None:
    transport = Urllib3Transport()
    with pytest.raises(TransportError) as info:
        transport(Request("GET", server + "/slow"), 0.3)
    assert info.value.timeout
    with FlinkRestClient(server, timeout=0.3, retry=NoRetry()) as client, \
            pytest.raises(RestError, match=r"no answer within 0\.3 s") as error:
        client.http.request("GET", "/slow", accepted={200})
    assert error.value.status is None


def test_a_closed_port_is_refused_not_timed_out() -> None:
    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError) as info:
        Urllib3Transport()(Request("GET", f"http://127.0.0.1:{port}/overview"), 2.0)
    assert not info.value.timeout
    assert str(info.value).startswith("Failed to establish a new connection"), str(info.value)


def test_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert env_proxy("https://flink.example:8443") == "http://proxy.corp:3128"
    assert env_proxy("https://flink.internal.example") is None
    assert env_proxy("http://flink.example") is None  # no HTTP_PROXY
