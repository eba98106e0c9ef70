"""A real Flink standalone session cluster, started from the pip package's ``pyflink/bin``.

``jobmanager.sh start-foreground`` and ``taskmanager.sh start-foreground`` end in ``exec java``,
so the processes started here *are* the JVMs: their PIDs are reliable, and killing one
(``kill -9`` on the TaskManager, SIGSTOP/SIGCONT on the JobManager) does exactly that to
Flink. Each cluster gets its own FLINK_CONF_DIR (a Flink 2 ``config.yaml``), FLINK_LOG_DIR
and FLINK_PID_DIR under ``root``, binds 127.0.0.1 only, and takes free ports, so two clusters
(and other people's tests) can run side by side.

    with StandaloneCluster(tmp_path) as cluster:   # or: cluster = cluster_fixture() in a module
        cluster.rest_url          # http://127.0.0.1:PORT (https with tls=True)
        cluster.kill_taskmanager()
        cluster.start_taskmanager()
        with cluster.rest_unreachable():
            ...                   # the JobManager is frozen: REST requests hang

With ``tls=True`` the REST endpoint wants mutual TLS (``security.ssl.rest.*``), with a CA,
server and client certificates made for the cluster in ``root/tls`` (:class:`~tests.support.
tls.Pki`); :meth:`StandaloneCluster.conf_lines` then names the client's files, with the key's
password read from the environment variable :data:`KEY_PASSWORD_ENV`.

Everything it started is stopped by PID at the end, and the end checks that none is left.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from .tls import PASSWORD, Credentials, Pki
from .waiting import wait_until

HOST = "127.0.0.1"
KEY_PASSWORD_ENV = "FLINK_TEST_CLIENT_KEY_PASSWORD"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0

# Small enough that two clusters fit next to other tests in 24 GiB; heartbeats quick enough
# that a killed TaskManager is noticed within seconds (a dead process refuses the heartbeat
# RPC at once; two refusals make it lost), yet a JobManager frozen for up to a minute is not
# given up on by its TaskManagers (heartbeat.timeout).
DEFAULT_SETTINGS: Mapping[str, str] = {
    "jobmanager.memory.process.size": "900m",
    "taskmanager.memory.process.size": "1400m",
    "taskmanager.memory.managed.size": "64m",
    "taskmanager.memory.network.min": "64m",
    "taskmanager.memory.network.max": "64m",
    "taskmanager.numberOfTaskSlots": "4",
    "parallelism.default": "1",
    "rest.cache.checkpoint-statistics.timeout": "100 ms",
    "heartbeat.interval": "1000",
    "heartbeat.timeout": "60000",
    "heartbeat.rpc-failure-threshold": "2",
    "slot.request.timeout": "60000",
    "resourcemanager.taskmanager-timeout": "5000",
    "cluster.evenly-spread-out-slots": "false",
    "jobmanager.execution.failover-strategy": "region",
    "env.stdout-err.redirect-to-file": "true",
}


def free_port() -> int:
    """A TCP port nobody listens on right now (bound once on 127.0.0.1, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pyflink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).resolve().parent


def yaml_value(value: str) -> str:
    """A YAML scalar that Flink reads back as the same string."""
    return "'" + value.replace("'", "''") + "'"


class StandaloneCluster:
    """One JobManager and any number of TaskManagers, all owned (by PID) by this object."""

    def __init__(self, root: Path, *, slots: int = 4, settings: Mapping[str, str] | None = None,
                 python: str = sys.executable, start_timeout: float = START_TIMEOUT_S,
                 tls: bool = False):
        self.root = Path(root)
        self.host = HOST
        self.port = free_port()
        self.rpc_port = free_port()
        self.python = python
        self.start_timeout = start_timeout
        self.pki = Pki(self.root / "tls") if tls else None
        self.settings: dict[str, str] = {
            **DEFAULT_SETTINGS, "taskmanager.numberOfTaskSlots": str(slots),
            **(self.pki.server_settings() if self.pki else {}),
            **dict(settings or {})}
        self.conf_dir = self.root / "conf"
        self.log_dir = self.root / "log"
        self.pid_dir = self.root / "pid"
        self.lib_dir = self.root / "lib"
        self.jobmanager: subprocess.Popen[bytes] | None = None
        self.taskmanagers: list[subprocess.Popen[bytes]] = []
        self._started: list[subprocess.Popen[bytes]] = []  # everything, for the final check
        self._paused = False
        self.startup_seconds: float | None = None

    # ----------------------------------------------------------------- addresses

    @property
    def rest_url(self) -> str:
        return f"{'https' if self.pki else 'http'}://{self.host}:{self.port}"

    def conf_lines(self, extra: str = "") -> str:
        """The ``%%flink.conf`` lines that send a kernel's jobs to this cluster (with its
        client certificate; the kernel needs :meth:`kernel_env` in its environment)."""
        tls = ""
        if self.pki is not None:
            tls = (f"flink.execution.remote.ssl.ca {self.pki.ca}\n"
                   f"flink.execution.remote.ssl.cert {self.pki.client_cert}\n"
                   f"flink.execution.remote.ssl.key {self.pki.client_key}\n"
                   "flink.execution.remote.ssl.key-password ${env:" + KEY_PASSWORD_ENV + "}\n")
        return ("flink.execution.mode remote\n"
                f"flink.execution.remote.host {self.host}\n"
                f"flink.execution.remote.port {self.port}\n" + tls + extra)

    def kernel_env(self) -> dict[str, str]:
        """What a kernel's environment needs for :meth:`conf_lines` (the key's password)."""
        return {KEY_PASSWORD_ENV: PASSWORD} if self.pki is not None else {}

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> StandaloneCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self, taskmanagers: int = 1) -> None:
        began = time.monotonic()
        self._write_config()
        self.jobmanager = self._spawn("jobmanager.sh", "jobmanager")
        self.wait_for_rest()
        for _ in range(taskmanagers):
            self.start_taskmanager()
        self.startup_seconds = time.monotonic() - began

    def _write_config(self) -> None:
        home = pyflink_home()
        for directory in (self.conf_dir, self.log_dir, self.pid_dir, self.lib_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # lib/ plus flink-python (in opt/ of the pip package): %%flink cells with Python
        # functions run a Python worker on the TaskManager, which needs the Python operators.
        for jar in [*(home / "lib").glob("*.jar"), *(home / "opt").glob("flink-python-*.jar")]:
            link = self.lib_dir / jar.name
            if not link.exists():
                link.symlink_to(jar)
        for name in ("log4j-console.properties", "logback-console.xml", "log4j.properties"):
            source = home / "conf" / name
            if source.exists():
                (self.conf_dir / name).write_bytes(source.read_bytes())
        bundled = home / "conf" / "config.yaml"
        java_opts = _bundled_java_opts(bundled.read_text()) if bundled.exists() else ""
        settings = {
            "jobmanager.rpc.address": HOST,
            "jobmanager.rpc.port": str(self.rpc_port),
            "jobmanager.bind-host": HOST,
            "taskmanager.host": HOST,
            "taskmanager.bind-host": HOST,
            "taskmanager.rpc.port": "0",
            "taskmanager.data.port": "0",
            "blob.server.port": "0",
            "metrics.internal.query-service.port": "0",
            "rest.address": HOST,
            "rest.bind-address": HOST,
            "rest.port": str(self.port),
            "rest.bind-port": str(self.port),
            "python.executable": self.python,
            "python.client.executable": self.python,
            "io.tmp.dirs": str(self.root / "tmp"),
            **({"env.java.opts.all": java_opts} if java_opts else {}),
            **self.settings,
        }
        (self.root / "tmp").mkdir(exist_ok=True)
        text = "".join(f"{key}: {yaml_value(value)}\n" for key, value in settings.items())
        (self.conf_dir / "config.yaml").write_text(text)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLINK_", "JVM_ARGS"))}
        env.update(FLINK_HOME=str(pyflink_home()), FLINK_CONF_DIR=str(self.conf_dir),
                   FLINK_LOG_DIR=str(self.log_dir), FLINK_PID_DIR=str(self.pid_dir),
                   FLINK_LIB_DIR=str(self.lib_dir),
                   PATH=f"{Path(self.python).parent}:{env.get('PATH', '')}")
        return env

    def _spawn(self, script: str, role: str) -> subprocess.Popen[bytes]:
        index = sum(1 for p in self._started if getattr(p, "role", "") == role)
        out = open(self.log_dir / f"{role}-{index}.console", "wb")  # noqa: SIM115
        try:
            process = subprocess.Popen(
                ["bash", str(pyflink_home() / "bin" / script), "start-foreground"],
                env=self._env(), cwd=str(self.root), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            out.close()
        process.role = role  # type: ignore[attr-defined]
        self._started.append(process)
        return process

    def wait_for_rest(self, timeout: float | None = None) -> None:
        """Until the JobManager's REST API answers (and it is ours: its process listens)."""
        def ready() -> bool:
            self._check_alive(self.jobmanager, "the JobManager")
            try:
                return httpx.get(self.rest_url + "/overview", timeout=2,
                                 verify=self._verify()).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(ready, timeout=timeout or self.start_timeout, interval=0.2,
                   what=f"the JobManager's REST API at {self.rest_url} ({self.log_hint()})")
        assert self.jobmanager is not None
        assert self.port in _listening_ports(self.jobmanager.pid), \
            f"port {self.port} answers, but not from our JobManager"

    def overview(self) -> dict[str, Any]:
        return dict(httpx.get(self.rest_url + "/overview", timeout=10,
                              verify=self._verify()).json())

    def _verify(self) -> Any:
        if self.pki is None:
            return True
        return Credentials(self.pki.ca, self.pki.client_cert, self.pki.client_key,
                           PASSWORD).context()

    def start_taskmanager(self, timeout: float | None = None) -> subprocess.Popen[bytes]:
        """Start one more TaskManager and wait until the JobManager has its slots."""
        before = self.overview()["taskmanagers"]
        process = self._spawn("taskmanager.sh", "taskmanager")
        self.taskmanagers.append(process)

        def registered() -> bool:
            self._check_alive(process, "the new TaskManager")
            return bool(self.overview()["taskmanagers"] > before)
        wait_until(registered, timeout=timeout or self.start_timeout, interval=0.2,
                   what=f"a TaskManager to register ({self.log_hint()})")
        return process

    def kill_taskmanager(self, process: subprocess.Popen[bytes] | None = None) -> int:
        """``kill -9`` a TaskManager (the newest by default); returns its PID once it is gone."""
        process = process or self.taskmanagers[-1]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
        self.taskmanagers.remove(process)
        return process.pid

    def wait_for_taskmanagers(self, count: int, timeout: float = 60.0) -> None:
        """Until the JobManager counts exactly ``count`` TaskManagers (e.g. a killed one left)."""
        wait_until(lambda: self.overview()["taskmanagers"] == count, timeout=timeout,
                   what=f"{count} registered TaskManager(s)")

    @contextmanager
    def rest_unreachable(self) -> Iterator[None]:
        """Freeze the JobManager (SIGSTOP) for the block: REST requests hang, then time out.

        The TaskManagers keep their tasks running; they give up on a JobManager only after
        ``heartbeat.timeout`` (60 s here), so keep the block shorter than that.
        """
        assert self.jobmanager is not None
        self.jobmanager.send_signal(signal.SIGSTOP)
        self._paused = True
        try:
            yield
        finally:
            self.jobmanager.send_signal(signal.SIGCONT)
            self._paused = False

    def stop(self) -> None:
        """SIGTERM everything started (TaskManagers first), SIGKILL what outlives the deadline."""
        if self._paused and self.jobmanager is not None:
            with suppress(ProcessLookupError):
                self.jobmanager.send_signal(signal.SIGCONT)
            self._paused = False
        order = [p for p in self._started if getattr(p, "role", "") == "taskmanager"] + \
                [p for p in self._started if getattr(p, "role", "") != "taskmanager"]
        for process in order:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in order:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT_S)
        # Anything left in the processes' own sessions (a helper JVM, a Python worker)?
        leftovers = [pid for p in order for pid in _session_members(p.pid)]
        for pid in leftovers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.taskmanagers.clear()
        assert not any(p.poll() is None for p in order), "a Flink process survived stop()"
        assert not leftovers, f"processes left behind by the cluster: {leftovers}"

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._started if p.poll() is None]

    # ----------------------------------------------------------------- diagnostics

    def _check_alive(self, process: subprocess.Popen[bytes] | None, what: str) -> None:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}: {self.log_hint()}")

    def log_hint(self) -> str:
        tails = []
        for log in sorted(self.log_dir.glob("*")):
            if log.is_file() and log.stat().st_size:
                lines = log.read_text(errors="replace").splitlines()
                errors = [line for line in lines if "ERROR" in line or "Exception" in line]
                tails.append(f"{log.name}: " + " | ".join((errors or lines)[-3:]))
        return "; ".join(tails)[-2000:] or f"no logs in {self.log_dir}"


def _bundled_java_opts(config_yaml: str) -> str:
    """``env.java.opts.all`` of the pip package's config.yaml (the --add-opens Java 17 needs)."""
    lines = config_yaml.splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith("all:") and index >= 2 and "opts" in lines[index - 1]:
            return line.split(":", 1)[1].strip()
    return ""


def _listening_ports(pid: int) -> set[int]:
    import psutil

    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return set()
    return {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}


def _session_members(session_id: int) -> list[int]:
    """Live processes whose session is ``session_id`` (the scripts started new sessions)."""
    import psutil

    members = []
    for process in psutil.process_iter(["pid"]):
        with suppress(psutil.Error, OSError):
            if os.getsid(process.pid) == session_id and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
    return members


def cluster_fixture(*, scope: str = "module", **kwargs: Any) -> Any:
    """A pytest fixture that yields a started cluster and stops it after ``scope``.

        cluster = cluster_fixture(slots=12)   # in a test module
    """
    import pytest

    @pytest.fixture(scope=scope)  # type: ignore[misc]
    def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
        with StandaloneCluster(tmp_path_factory.mktemp("cluster"), **kwargs) as started:
            yield started

    return cluster
