"""The request handler that shows a kernel's Flink web UI through the Jupyter server.

Read-only on purpose: GET and HEAD are forwarded; anything that changes a job (the web UI's
cancel button) goes through the notebook (``%flink.cancel``, the jobs panel), where it is
recorded. Jupyter's own authentication applies (token or cookie), so the UI is exactly as
private as the notebook.
"""

from __future__ import annotations

import ssl
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from tornado import httpclient, web

from .endpoints import UiEndpoint, read_endpoint

__all__ = ["FlinkUIHandler"]

TIMEOUT_S = 20.0
# Not forwarded either way: they belong to one hop (RFC 9110, 7.6.1) or to Jupyter.
_HOP_HEADERS = frozenset({"connection", "keep-alive", "proxy-authenticate",
                          "proxy-authorization", "te", "trailer", "transfer-encoding",
                          "upgrade", "content-length", "content-encoding", "host", "cookie",
                          "authorization", "set-cookie", "access-control-allow-origin"})


class FlinkUIHandler(JupyterHandler):
    """``{base_url}jupyter-flink/ui/{kernel_id}/{path}`` -> the kernel's Flink ``/{path}``."""

    @web.authenticated
    async def get(self, kernel_id: str, path: str | None = None) -> None:
        await self._forward("GET", kernel_id, path)

    @web.authenticated
    async def head(self, kernel_id: str, path: str | None = None) -> None:
        await self._forward("HEAD", kernel_id, path)

    async def _forward(self, method: str, kernel_id: str, path: str | None) -> None:
        if kernel_id not in self.kernel_manager:
            raise web.HTTPError(404, f"No kernel {kernel_id} runs on this server.")
        if not path:  # the dashboard loads its assets relative to the directory
            self.redirect(self.request.path + "/" + (f"?{self.request.query}"
                                                     if self.request.query else ""))
            return
        endpoint = read_endpoint(kernel_id)
        if endpoint is None:
            raise web.HTTPError(404, "This kernel has no Flink cluster yet: run a Flink cell.")
        url = endpoint.url.rstrip("/") + path + (f"?{self.request.query}"
                                                 if self.request.query else "")
        headers = {k: v for k, v in self.request.headers.items()
                   if k.lower() not in _HOP_HEADERS}
        headers.update(endpoint.headers)
        request = httpclient.HTTPRequest(
            url, method=method, headers=headers, request_timeout=TIMEOUT_S,
            follow_redirects=False,
            ssl_options=_tls(endpoint) if url.startswith("https:") else None)
        try:
            response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except Exception as exc:  # refused, TLS, timeout: the cluster is not there
            raise web.HTTPError(502, f"The kernel's Flink cluster does not answer: {exc}") \
                from exc
        self.set_status(response.code, response.reason)
        for name, value in response.headers.get_all():
            if name.lower() not in _HOP_HEADERS:
                self.add_header(name, value)
        if method != "HEAD" and response.body:
            self.write(response.body)

    def check_xsrf_cookie(self) -> Any:
        return None  # only safe methods are served


def _tls(endpoint: UiEndpoint) -> ssl.SSLContext:
    """The kernel's TLS settings for its cluster: its CA, its client certificate."""
    context = ssl.create_default_context(cafile=endpoint.ca_file)
    context.check_hostname = endpoint.check_hostname
    if endpoint.cert_file and endpoint.key_file:
        context.load_cert_chain(endpoint.cert_file, endpoint.key_file,
                                password=endpoint.key_password)
    return context
