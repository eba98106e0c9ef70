"""Drive a real kernel through jupyter_client, as JupyterLab does.

Execute requests carry a cell id and the cell's metadata (JupyterLab sends both), and every
iopub message is kept, so tests can wait for messages that arrive after a cell finished
(display updates from the job poller, metadata comm messages).
"""

from __future__ import annotations

import os
import queue
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

from jupyter_flink.recording.comm import TARGET_NAME as METADATA_TARGET
from jupyter_flink.recording.comm import updates_in

from .waiting import wait_until


@dataclass
class Reply:
    """What one execute request produced."""

    msg_id: str
    status: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.messages
                       if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(m["content"]["text"] for m in self.messages
                       if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")

    def data(self, mime: str = "text/plain") -> list[str]:
        """The given mime type of every display_data / execute_result, in order."""
        return [m["content"]["data"][mime] for m in self.messages
                if m["msg_type"] in ("display_data", "execute_result")
                and mime in m["content"]["data"]]

    @property
    def result(self) -> str | None:
        results = [m["content"]["data"].get("text/plain") for m in self.messages
                   if m["msg_type"] == "execute_result"]
        return results[-1] if results else None

    @property
    def error_text(self) -> str:
        if not self.error:
            return ""
        return f"{self.error['ename']}: {self.error['evalue']}\n" + "\n".join(
            self.error.get("traceback", []))

    def shown(self, mime: str = "text/plain") -> list[str]:
        """What each display of this cell shows now (after in-place updates in the reply)."""
        latest: dict[str, str] = {}
        order: list[str] = []
        for m in self.messages:
            display_id = m["content"].get("transient", {}).get("display_id") if \
                m["msg_type"] in ("display_data", "update_display_data") else None
            if display_id is None or mime not in m["content"].get("data", {}):
                continue
            if m["msg_type"] == "display_data" and display_id not in latest:
                order.append(display_id)
            elif display_id not in latest:
                continue  # an update of another cell's output, sent while this cell ran
            latest[display_id] = m["content"]["data"][mime]
        return [latest[d] for d in order]

    def display_ids(self) -> list[str]:
        return [m["content"]["transient"]["display_id"] for m in self.messages
                if m["msg_type"] == "display_data" and "display_id" in
                m["content"].get("transient", {})]


class KernelDriver:
    """A started kernel plus a client that records all iopub traffic."""

    def __init__(self, manager: KernelManager):
        self.manager = manager
        self.client = manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)
        self.iopub: list[dict[str, Any]] = []

    @property
    def pid(self) -> int:
        return self.manager.provisioner.pid  # type: ignore[union-attr]

    def _drain(self, timeout: float) -> dict[str, Any] | None:
        try:
            msg = self.client.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            return None
        self.iopub.append(msg)
        return msg

    def pump(self, seconds: float = 0.0) -> None:
        """Read the iopub messages that are waiting (or arrive within ``seconds``)."""
        deadline = time.monotonic() + seconds
        while self._drain(max(0.0, min(0.05, deadline - time.monotonic()))) is not None or \
                time.monotonic() < deadline:
            pass

    def execute(self, code: str, *, cell_id: str | None = None,
                metadata: dict[str, Any] | None = None, timeout: float = 300,
                allow_error: bool = False) -> Reply:
        """Run ``code`` as the cell ``cell_id`` with ``metadata``; wait until the kernel is idle."""
        request_meta = {**(metadata or {}), "cellId": cell_id or uuid.uuid4().hex}
        msg = self.client.session.msg(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {},
             "allow_stdin": False, "stop_on_error": True},
            metadata=request_meta)
        self.client.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        reply = Reply(msg_id, "unknown")
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish in {timeout}s:\n{code}")
            message = self._drain(min(remaining, 1.0))
            if message is None:
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            reply.messages.append(message)
            if message["msg_type"] == "error":
                reply.error = message["content"]
            if message["msg_type"] == "status" and \
                    message["content"]["execution_state"] == "idle":
                break
        shell_reply = self.client.get_shell_msg(timeout=30)
        while shell_reply["parent_header"].get("msg_id") != msg_id:
            shell_reply = self.client.get_shell_msg(timeout=30)
        reply.status = shell_reply["content"]["status"]
        if reply.status == "error" and reply.error is None:  # UsageError: printed, not raised
            content = shell_reply["content"]
            reply.error = {"ename": content.get("ename"), "evalue": content.get("evalue"),
                           "traceback": [reply.stderr]}
        if reply.status != "ok" and not allow_error:
            raise AssertionError(f"cell failed:\n{code}\n---\n{reply.error_text}\n"
                                 f"stdout: {reply.stdout}\nstderr: {reply.stderr}")
        return reply

    def request(self, msg_type: str, content: dict[str, Any], timeout: float = 30
                ) -> dict[str, Any]:
        """Send a shell request (complete_request, inspect_request...); its reply's content."""
        msg = self.client.session.msg(msg_type, content)
        self.client.shell_channel.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {msg_type} in {timeout}s")
            reply = self.client.get_shell_msg(timeout=remaining)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return dict(reply["content"])

    def complete(self, code: str, cursor: int | None = None) -> dict[str, Any]:
        """A complete_request, as JupyterLab sends for Tab (cursor: default the end)."""
        return self.request("complete_request", {
            "code": code, "cursor_pos": len(code) if cursor is None else cursor})

    def inspect(self, code: str, cursor: int | None = None) -> dict[str, Any]:
        """An inspect_request, as JupyterLab sends for Shift+Tab."""
        return self.request("inspect_request", {
            "code": code, "cursor_pos": len(code) if cursor is None else cursor,
            "detail_level": 0})

    def metadata_updates(self, cell_id: str | None = None) -> list[dict[str, Any]]:
        """Every cell update of the jupyter_flink.metadata comm_opens seen so far, one
        ``{"notebook_path", "cell_id", "flink"}`` per cell (a message may carry several)."""
        updates = [{"notebook_path": data.get("notebook_path"), "cell_id": cell, "flink": flink}
                   for m in self.iopub
                   if m["msg_type"] == "comm_open"
                   and m["content"].get("target_name") == METADATA_TARGET
                   for data in [m["content"]["data"]]
                   for cell, flink in updates_in(data).items()]
        return [u for u in updates if cell_id is None or u["cell_id"] == cell_id]

    def open_comm(self, target_name: str, data: dict[str, Any]) -> str:
        """Open a comm to the kernel as a frontend does; returns its id."""
        comm_id = uuid.uuid4().hex
        self.client.shell_channel.send(self.client.session.msg(
            "comm_open", {"comm_id": comm_id, "target_name": target_name, "data": data}))
        return comm_id

    def comm_send(self, comm_id: str, data: dict[str, Any]) -> None:
        self.client.shell_channel.send(self.client.session.msg(
            "comm_msg", {"comm_id": comm_id, "data": data}))

    def comm_close(self, comm_id: str) -> None:
        self.client.shell_channel.send(self.client.session.msg(
            "comm_close", {"comm_id": comm_id, "data": {}}))

    def comm_messages(self, comm_id: str) -> list[dict[str, Any]]:
        """The data of every message the kernel sent on ``comm_id`` so far, in order."""
        return [m["content"]["data"] for m in self.iopub
                if m["msg_type"] == "comm_msg" and m["content"].get("comm_id") == comm_id]

    def display_updates(self, display_id: str) -> list[dict[str, Any]]:
        return [m["content"]["data"] for m in self.iopub
                if m["msg_type"] == "update_display_data"
                and m["content"].get("transient", {}).get("display_id") == display_id]

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Pump iopub until ``predicate()`` is truthy; returns its value."""
        def check() -> Any:
            self.pump(0.1)
            return predicate()
        return wait_until(check, timeout=timeout, what=what, interval=0.0)

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def shutdown(self) -> None:
        self.client.stop_channels()
        if self.manager.is_alive():
            self.manager.shutdown_kernel(now=False)


@contextmanager
def running_kernel(kernel_name: str = "flink", *, env: dict[str, str] | None = None,
                   cwd: str | None = None) -> Iterator[KernelDriver]:
    """Start a kernel, yield a driver, and make sure the kernel and its JVM are gone after."""
    manager = KernelManager(kernel_name=kernel_name)
    manager.start_kernel(env={**os.environ, **(env or {})}, cwd=cwd)
    driver = None
    try:
        driver = KernelDriver(manager)
        yield driver
    finally:
        pid = manager.provisioner.pid if manager.provisioner else None
        children = child_pids(pid) if pid else []
        if driver is not None:
            driver.shutdown()
        elif manager.is_alive():
            manager.shutdown_kernel(now=True)
        for child in children:  # the JVM exits with its parent; make sure of it
            kill_quietly(child)


def without_warm_start(root: Path) -> dict[str, str]:
    """Environment for a kernel that starts nothing of Flink before its first Flink cell:
    an IPython dir under ``root`` whose config sets ``FlinkMagics.warm_start = False``."""
    profile = Path(root) / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text("c.FlinkMagics.warm_start = False\n")
    return {"IPYTHONDIR": str(Path(root) / "ipython")}


def child_pids(pid: int) -> list[int]:
    """Direct and indirect children of ``pid`` (Linux /proc)."""
    children: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as handle:
                found = [int(p) for p in handle.read().split()]
        except OSError:
            continue
        children.extend(found)
        todo.extend(found)
    return children


def kill_quietly(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False
