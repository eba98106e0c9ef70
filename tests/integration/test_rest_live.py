"""The REST client against a real Flink 2.3 MiniCluster (one per module) running real SQL jobs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from jupyter_flink.errors import JobError, RestError
from jupyter_flink.flink.cluster import LocalCluster, remote_environment
from jupyter_flink.rest import (
    FlinkRestClient,
    JobNotFound,
    NoRetry,
    checkpoint_counts,
    latest_checkpoint,
    restored_from,
)

pytestmark = [
    pytest.mark.flink,
    pytest.mark.timeout(240),
]

RUNNING_TIMEOUT = 60.0  # the first job of a fresh JVM takes ~10 s to plan and deploy
WAIT = 30.0
UNKNOWN_JOB = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    from jupyter_flink.flink.gateway import get_gateway

    # Flink's close() waits for unread savepoint results for rest.async.store-duration
    # (5 min by default): keep it short so a failing test cannot stall the teardown.
    local = LocalCluster(get_gateway(), settings={"rest.async.store-duration": "20 s"})
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[FlinkRestClient]:
    tls = cluster.client_tls()  # the embedded cluster takes only its own client certificate
    assert tls is not None
    with FlinkRestClient(cluster.rest_url, timeout=10, **tls.rest_options()) as rest:
        yield rest


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flink-state")


def submit(cluster: LocalCluster, settings: dict[str, str]) -> str:
    """Start a streaming SQL job (datagen -> GROUP BY -> blackhole); return its id."""
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StreamTableEnvironment

    senv = StreamExecutionEnvironment(remote_environment(cluster.gateway, cluster, settings))
    tenv = StreamTableEnvironment.create(senv)
    tenv.execute_sql("CREATE TEMPORARY TABLE src (k INT) WITH ('connector' = 'datagen', "
                     "'rows-per-second' = '50', 'fields.k.min' = '0', 'fields.k.max' = '9')")
    tenv.execute_sql("CREATE TEMPORARY TABLE snk (k INT, c BIGINT) "
                     "WITH ('connector' = 'blackhole')")
    result = tenv.execute_sql("INSERT INTO snk SELECT k, COUNT(*) FROM src GROUP BY k")
    return str(result.get_job_client().get_job_id())


def checkpointing(state_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "execution.checkpointing.interval": "500 ms",
        "execution.checkpointing.dir": (state_dir / "chk").as_uri(),
        # a checkpoint is deleted once newer ones replace it; keep a few so that the one
        # we were told about is still on disk when we look
        "execution.checkpointing.num-retained": "5",
        **extra,
    }


def local_path(uri: str) -> Path:
    """``file:/tmp/x`` (how Flink writes paths) -> /tmp/x."""
    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    return Path(parsed.path)


def test_cluster_endpoints(client: FlinkRestClient) -> None:
    assert client.overview()["flink-version"] == "2.3.0"
    assert client.config()["flink-version"] == "2.3.0"
    assert isinstance(client.jobs_overview(), list)


def test_checkpoints_savepoint_and_stop(
    cluster: LocalCluster, client: FlinkRestClient, state_dir: Path
) -> None:
    job_id = submit(cluster, checkpointing(state_dir))
    assert client.wait_for_job_state(job_id, {"RUNNING"}, RUNNING_TIMEOUT) == "RUNNING"
    assert client.job(job_id)["jid"] == job_id
    assert client.job_config(job_id)["jid"] == job_id
    assert client.job_exceptions(job_id)["exceptionHistory"]["entries"] == []
    assert client.checkpoint_interval_ms(job_id) == 500

    # a completed checkpoint, on disk
    info = client.wait_for_checkpoint(job_id, WAIT)
    assert info.addressable and info.external_path is not None
    assert (local_path(info.external_path) / "_metadata").is_file()
    assert info.latest_ack_timestamp >= info.trigger_timestamp > 0
    assert client.checkpoint_details(job_id, info.id)["id"] == info.id
    assert checkpoint_counts(client.checkpoints(job_id)).completed >= 1
    assert restored_from(client.checkpoints(job_id)) is None

    # a savepoint, the job keeps running
    request = client.trigger_savepoint(job_id, (state_dir / "sp").as_uri())
    savepoint = client.wait_for_savepoint(job_id, request, WAIT)
    assert (local_path(savepoint) / "_metadata").is_file()
    assert client.job_status(job_id) == "RUNNING"

    # stop with a savepoint: the job finishes
    request = client.trigger_stop_with_savepoint(job_id, (state_dir / "stop").as_uri())
    stopped = client.wait_for_savepoint(job_id, request, WAIT)
    assert local_path(stopped).parent == state_dir / "stop"
    assert (local_path(stopped) / "_metadata").is_file()
    assert client.wait_for_job_state(job_id, {"FINISHED"}, WAIT) == "FINISHED"

    # Flink's answers for a finished job
    assert client.cancel(job_id) is False  # 409: it already reached another terminal state
    with pytest.raises(JobError, match="is FINISHED"):
        client.wait_for_job_state(job_id, {"RUNNING"}, WAIT)

    # resume from the stop savepoint
    resumed = submit(cluster, checkpointing(
        state_dir, **{"execution.state-recovery.path": stopped}))
    client.wait_for_job_state(resumed, {"RUNNING"}, RUNNING_TIMEOUT)
    client.wait_for_checkpoint(resumed, WAIT)
    stats = client.checkpoints(resumed)
    restore = restored_from(stats)
    assert restore is not None and restore.is_savepoint
    assert restore.external_path == stopped
    assert checkpoint_counts(stats).restored == 1
    assert client.cancel(resumed) is True
    assert client.wait_for_job_state(resumed, {"CANCELED"}, WAIT) == "CANCELED"


def test_cancel_a_job_without_checkpoint_dir(
    cluster: LocalCluster, client: FlinkRestClient
) -> None:
    job_id = submit(cluster, {"execution.checkpointing.interval": "500 ms"})
    client.wait_for_job_state(job_id, {"RUNNING"}, RUNNING_TIMEOUT)
    info = client.wait_for_checkpoint(job_id, WAIT)
    assert info.external_path is None and not info.addressable
    latest = latest_checkpoint(client.checkpoints(job_id))
    assert latest is not None and not latest.addressable

    assert client.cancel(job_id) is True
    assert client.wait_for_job_state(job_id, {"CANCELED"}, WAIT) == "CANCELED"
    assert client.cancel(job_id) is True  # cancelling a CANCELED job is acknowledged again


def test_savepoint_errors(client: FlinkRestClient, cluster: LocalCluster) -> None:
    job_id = submit(cluster, {"execution.checkpointing.interval": "500 ms"})
    try:
        client.wait_for_job_state(job_id, {"RUNNING"}, RUNNING_TIMEOUT)
        # A RUNNING job may still be deploying its tasks, and a savepoint then fails with
        # "Not all required tasks are currently running"; after a checkpoint they all run.
        client.wait_for_checkpoint(job_id, WAIT)
        # no target directory and no execution.checkpointing.savepoint-dir: 400 at once
        with pytest.raises(RestError) as info:
            client.trigger_stop_with_savepoint(job_id)
        assert info.value.status == 400
        assert "execution.checkpointing.savepoint-dir" in info.value.message
        # an unwritable directory: the savepoint fails and the job keeps running
        request = client.trigger_savepoint(job_id, "file:///proc/no-such-dir/sp")
        with pytest.raises(JobError) as failed:
            client.wait_for_savepoint(job_id, request, WAIT)
        assert "IOException" in failed.value.message
        assert "\n" not in failed.value.message and "Caused by" in (failed.value.details or "")
        assert client.job_status(job_id) == "RUNNING"
    finally:
        client.cancel(job_id)
        client.wait_for_job_state(job_id, {"CANCELED"}, WAIT)


def test_unknown_job(client: FlinkRestClient) -> None:
    with pytest.raises(JobNotFound) as info:
        client.job(UNKNOWN_JOB)
    assert info.value.status == 404 and info.value.job_id == UNKNOWN_JOB
    with pytest.raises(JobNotFound):
        client.checkpoints(UNKNOWN_JOB)
    with pytest.raises(JobNotFound):
        client.cancel(UNKNOWN_JOB)
    with pytest.raises(JobNotFound):
        client.job("not-a-job-id")
    # Flink accepts the trigger (202) and reports the missing job in the operation's result
    request = client.trigger_stop_with_savepoint(UNKNOWN_JOB, "file:///tmp/never")
    with pytest.raises(JobNotFound):
        client.wait_for_savepoint(UNKNOWN_JOB, request, WAIT)


def test_unreachable_port() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with FlinkRestClient(url, retry=NoRetry(), timeout=2) as client, \
            pytest.raises(RestError) as info:
        client.overview()
    assert info.value.status is None
    assert f"The Flink cluster at {url} is unreachable" in info.value.message
