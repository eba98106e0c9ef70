"""The Flink web UI of a kernel's cluster, through the Jupyter server and its login only.

A real Jupyter server (with a base URL, as under JupyterHub), a real flink kernel started by
it, a real streaming job: the job's page data comes through
``{base_url}jupyter-flink/ui/{kernel_id}/``, and nothing comes without Jupyter's token.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jupyter_client import BlockingKernelClient

from tests.support.header_gate import HeaderGate
from tests.support.standalone import StandaloneCluster, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.flink

BASE_URL = "/user/alice/"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A jupyter_server with a JupyterHub-like base URL; yields (url, token, runtime dir)."""
    port, token = free_port(), secrets.token_hex(16)
    runtime = tmp_path / "runtime"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    command = [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.base_url={BASE_URL}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={tmp_path}", "--ServerApp.open_browser=False",
               "--ServerApp.jpserver_extensions={'jupyter_flink.server': True}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}{BASE_URL}"

    def ready() -> bool:
        assert process.poll() is None, (tmp_path / "server.log").read_text()
        try:
            return httpx.get(url + "api/status", params={"token": token}).status_code == 200
        except httpx.HTTPError:
            return False
    try:
        wait_until(ready, timeout=60, what="the jupyter server")
        yield url, token, runtime
    finally:
        for kernel in httpx.get(url + "api/kernels", params={"token": token}).json():
            httpx.delete(url + f"api/kernels/{kernel['id']}", params={"token": token},
                         timeout=60)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_the_flink_ui_is_served_through_jupyter_and_its_login(
        server: tuple[str, str, Path]) -> None:
    url, token, runtime = server
    kernel_id = httpx.post(url + "api/kernels", params={"token": token},
                           json={"name": "flink"}, timeout=60).json()["id"]
    client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel_id}.json"))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive(
            "%%flink.ssql(jobName=seen_through_jupyter)\n"
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', "
            "'rows-per-second' = '5');\n"
            "CREATE TABLE sink_out (id BIGINT) WITH ('connector' = 'blackhole');\n"
            "INSERT INTO sink_out SELECT id FROM src", timeout=180)
        assert reply["content"]["status"] == "ok"
        ui = f"{url}jupyter-flink/ui/{kernel_id}/"

        overview = httpx.get(ui + "jobs/overview", params={"token": token}, timeout=30)
        assert overview.status_code == 200, overview.text
        jobs = {job["name"]: job for job in overview.json()["jobs"]}
        job = jobs["seen_through_jupyter"]
        assert job["state"] == "RUNNING"
        page = httpx.get(ui, params={"token": token}, timeout=30)
        assert page.status_code == 200 and "<title>Apache Flink" in page.text
        details = httpx.get(ui + f"jobs/{job['jid']}", params={"token": token}, timeout=30)
        assert details.json()["name"] == "seen_through_jupyter"
        # the bare prefix redirects to the directory the dashboard loads from
        bare = httpx.get(ui.rstrip("/"), params={"token": token}, follow_redirects=False)
        assert bare.status_code in (301, 302) and bare.headers["location"].endswith("/?token="
                                                                                  + token)

        # Jupyter's login, and nothing else, guards it; changes are refused.
        assert httpx.get(ui + "jobs/overview", timeout=30,
                         follow_redirects=False).status_code in (302, 403)
        assert httpx.get(ui + "jobs/overview", params={"token": "wrong"}, timeout=30,
                         follow_redirects=False).status_code in (302, 403)
        assert httpx.patch(ui + f"jobs/{job['jid']}", params={"token": token,
                                                              "mode": "cancel"},
                           timeout=30).status_code == 405
        unknown = httpx.get(f"{url}jupyter-flink/ui/{'0' * 32}/jobs/overview",
                            params={"token": token}, timeout=30)
        assert unknown.status_code == 404
        endpoint = runtime / f"jupyter-flink-{kernel_id}.json"
        assert endpoint.stat().st_mode & 0o077 == 0, "the endpoint file is the user's only"
        assert json.loads(endpoint.read_text())["url"].startswith(("http://127.0.0.1",
                                                                   "https://127.0.0.1"))
    finally:
        client.stop_channels()
    httpx.delete(url + f"api/kernels/{kernel_id}", params={"token": token}, timeout=60)
    wait_until(lambda: not (runtime / f"jupyter-flink-{kernel_id}.json").exists(), timeout=30,
               what="the kernel to take its endpoint file away at shutdown")


GATE_HEADER, GATE_VALUE = "X-Flink-Gate", secrets.token_hex(8)


def test_a_remote_cluster_behind_an_authenticating_gate(
        server: tuple[str, str, Path], tmp_path: Path) -> None:
    """Headers set in %%flink.conf after the JVM started (warm start does so at once) reach
    Flink's own client (the job is submitted through the gate), the kernel's polling and the
    web UI served through Jupyter."""
    url, token, runtime = server
    with StandaloneCluster(tmp_path / "cluster") as cluster, \
            HeaderGate(cluster.rest_url, GATE_HEADER, GATE_VALUE) as gate:
        kernel_id = httpx.post(url + "api/kernels", params={"token": token},
                               json={"name": "flink"}, timeout=60).json()["id"]
        client = BlockingKernelClient(
            connection_file=str(runtime / f"kernel-{kernel_id}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)

            def run(code: str) -> dict:
                reply = client.execute_interactive(code, timeout=180)
                assert reply["content"]["status"] == "ok", reply["content"]
                return reply

            # The JVM runs before the conf cell, as it does in every kernel with warm start
            run("import time\n"
                "from jupyter_flink.flink.gateway import java_gateway_started\n"
                "deadline = time.monotonic() + 120\n"
                "while not java_gateway_started():\n"
                "    assert time.monotonic() < deadline, 'the warm JVM did not start'\n"
                "    time.sleep(0.1)")
            remote = ("%%flink.conf\nflink.execution.mode remote\n"
                      "flink.execution.remote.host 127.0.0.1\n"
                      f"flink.execution.remote.port {gate.port}\n")
            job = ("%%flink.ssql(jobName=behind_the_gate)\n"
                   "CREATE TABLE IF NOT EXISTS src (id BIGINT) WITH ('connector' = 'datagen', "
                   "'rows-per-second' = '5');\n"
                   "CREATE TABLE IF NOT EXISTS sink_out (id BIGINT) WITH "
                   "('connector' = 'blackhole');\n"
                   "INSERT INTO sink_out SELECT id FROM src")
            # Without the header: the gate's refusal, said as such (not "fix the statement")
            run(remote)
            refused = client.execute_interactive(job, timeout=180)["content"]
            assert refused["status"] == "error"
            assert "refuses this kernel (HTTP 401" in refused["evalue"], refused["evalue"]
            assert "flink.execution.remote.headers" in refused["evalue"]
            assert gate.refused and not any(w.startswith("POST") for w in gate.passed)
            gate.refused.clear()

            run(remote + f"flink.execution.remote.headers {GATE_HEADER}: {GATE_VALUE}")
            run(job)
            submitted = [what for what in gate.passed if what.startswith("POST")
                         and what.endswith("/jobs")]
            assert submitted, f"no submission went through the gate: {gate.passed}"
            assert not gate.refused, f"requests without the header: {gate.refused}"

            ui = f"{url}jupyter-flink/ui/{kernel_id}/"
            overview = httpx.get(ui + "jobs/overview", params={"token": token}, timeout=30)
            assert overview.status_code == 200, overview.text
            states = {job["name"]: job["state"] for job in overview.json()["jobs"]}
            assert states.get("behind_the_gate") in ("RUNNING", "CREATED"), states
            assert not gate.refused
            endpoint = json.loads((runtime / f"jupyter-flink-{kernel_id}.json").read_text())
            assert endpoint["url"] == f"http://127.0.0.1:{gate.port}"
            run("%flink.cancel behind_the_gate")
        finally:
            client.stop_channels()
            httpx.delete(url + f"api/kernels/{kernel_id}", params={"token": token},
                         timeout=60)
