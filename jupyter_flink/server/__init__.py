"""The Jupyter server side: Flink's web UI of a kernel's cluster, behind Jupyter's own login.

The embedded cluster's REST endpoint answers only the kernel (mutual TLS, bound to
127.0.0.1), and a remote cluster may sit behind headers the browser does not have. So the
browser never talks to Flink: it asks the Jupyter server at
``{base_url}jupyter-flink/ui/{kernel_id}/``, which checks Jupyter's authentication (token or
cookie) and forwards the request with the kernel's credentials (endpoints.py). Imports
nothing of the kernel's job service, JVM or cluster.
"""

from __future__ import annotations

from typing import Any

__all__ = ["UI_PREFIX", "_jupyter_server_extension_points", "_load_jupyter_server_extension"]

UI_PREFIX = "jupyter-flink/ui"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "jupyter_flink.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server.utils import url_path_join

    from .proxy import FlinkUIHandler

    base_url = serverapp.web_app.settings["base_url"]
    pattern = url_path_join(base_url, UI_PREFIX, r"(?P<kernel_id>[0-9a-fA-F-]{8,64})(?P<path>/.*)?")
    serverapp.web_app.add_handlers(".*$", [(pattern, FlinkUIHandler)])
    serverapp.log.info("jupyter-flink: Flink web UIs at %s", url_path_join(base_url, UI_PREFIX))
