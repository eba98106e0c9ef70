"""Remote mode on a standalone Flink cluster whose REST endpoint wants mutual TLS.

The cluster has a CA, a server certificate and a client certificate of its own
(tests/support/tls.py ``Pki``, nothing of the product's), and the kernel reaches it with
``flink.execution.remote.ssl.ca/.cert/.key`` and the encrypted key's password from
``${env:...}``. The remote tests' core paths run here unchanged (imported): submit, a
recorded checkpoint, cancel with savepoint and resume exactly once, stop and savepoint
magics; plus a live SELECT, and what a client without the certificate gets.
"""

from __future__ import annotations

import re
import ssl

import httpx
import pytest

from tests.integration import test_remote as remote_tests
from tests.integration.test_live import live_display_id, shown
from tests.integration.test_remote import CLUSTER_SETTINGS, kernel, notebook
from tests.support import flink
from tests.support.kernel import KernelDriver, running_kernel
from tests.support.standalone import KEY_PASSWORD_ENV, StandaloneCluster, cluster_fixture

pytestmark = pytest.mark.flink

__all__ = ["kernel", "notebook"]  # the fixtures of test_remote, on this module's cluster

cluster = cluster_fixture(slots=8, settings=CLUSTER_SETTINGS, tls=True)

test_tls_record = remote_tests.test_remote_record
test_tls_cancel_with_savepoint_then_resume = \
    remote_tests.test_remote_cancel_with_savepoint_then_resume
test_tls_stop_and_savepoint_magics = remote_tests.test_remote_stop_and_savepoint_magics


def test_the_cluster_wants_a_client_certificate(cluster: StandaloneCluster) -> None:
    """Without the client certificate, or with one of another CA, Flink's REST says no."""
    assert cluster.pki is not None and cluster.rest_url.startswith("https://")
    no_cert = ssl.create_default_context(cafile=cluster.pki.ca)
    with pytest.raises(httpx.HTTPError):
        httpx.get(cluster.rest_url + "/jobs/overview", verify=no_cert, timeout=10)
    stranger = ssl.create_default_context(cafile=cluster.pki.ca)
    stranger.load_cert_chain(cluster.pki.stranger_cert, cluster.pki.stranger_key)
    with pytest.raises(httpx.HTTPError):
        httpx.get(cluster.rest_url + "/jobs/overview", verify=stranger, timeout=10)
    assert isinstance(flink.jobs(cluster.rest_url), list)  # with it: fine


def test_live_select_over_mutual_tls(kernel: KernelDriver) -> None:
    """A live table's rows come through Flink's client (collect over REST) with the cert."""
    kernel.execute("%%flink.ssql\nCREATE TABLE IF NOT EXISTS tls_seq (id BIGINT) WITH ("
                   "'connector' = 'datagen', 'rows-per-second' = '100', "
                   "'number-of-rows' = '200', 'fields.id.kind' = 'sequence', "
                   "'fields.id.start' = '1', 'fields.id.end' = '200')")
    reply = kernel.execute("%%flink.ssql(type=single, refreshInterval=300)\n"
                           "SELECT COUNT(*), MAX(id) FROM tls_seq", cell_id="tls-live")
    display_id = live_display_id(reply)
    def final() -> str | None:
        text = shown(kernel, reply, display_id)
        return text if "final" in text.splitlines()[0] else None
    text = kernel.wait_for(final, timeout=120, what="the final live result")
    assert re.search(r"\b200 200\b", text), text


def test_info_and_conf_show_the_tls_settings_without_secrets(kernel: KernelDriver,
                                                             cluster: StandaloneCluster) -> None:
    info = kernel.execute("%flink.info").stdout
    assert cluster.rest_url in info and "client certificate" in info, info
    table = kernel.execute("conf = %flink.conf\nprint(conf.to_string())").stdout
    assert "${env:FLINK_TEST_CLIENT_KEY_PASSWORD}" in table, table
    from tests.support.tls import PASSWORD

    assert PASSWORD not in table and PASSWORD not in info


def test_a_missing_password_variable_is_a_clear_error(cluster: StandaloneCluster) -> None:
    """The key's password from an unset variable: the conf cell says which, on which line;
    a wrong password says what to set."""
    with running_kernel() as driver:
        missing = driver.execute("%%flink.conf\n" + cluster.conf_lines(), allow_error=True)
        wrong = driver.execute("%%flink.conf\n" + cluster.conf_lines().replace(
            "${env:" + KEY_PASSWORD_ENV + "}", "not-the-password"), allow_error=True)
    assert missing.status == "error"
    assert f"Line 8: flink.execution.remote.ssl.key-password: the environment variable " \
           f"{KEY_PASSWORD_ENV}" in missing.error_text, missing.error_text
    assert "is not set" in missing.error_text, missing.error_text
    assert wrong.status == "error" and "flink.execution.remote.ssl.key" in wrong.error_text
    assert "not-the-password" not in wrong.error_text, wrong.error_text
