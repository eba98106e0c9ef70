"""The REST client against a scripted transport: no network, no JVM.

The JSON shapes below are trimmed copies of answers captured from a live Flink 2.3.0
MiniCluster (stack traces shortened to their headline and ``Caused by`` lines).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import certifi
import pytest

import jupyter_flink.rest as rest_api
from jupyter_flink.errors import ConfigurationError, JobError, RestError
from jupyter_flink.rest import (
    CheckpointTimeout,
    FlinkRestClient,
    HttpClient,
    JobNotFound,
    JobStateTimeout,
    LinearRetryPolicy,
    NoRetry,
    SavepointStatus,
    SavepointTimeout,
    WaitTimeout,
    checkpoint_counts,
    checkpoint_interval_ms,
    latest_checkpoint,
    latest_failure,
    latest_savepoint,
    restored_from,
    summarize_java_trace,
)
from jupyter_flink.rest.transport import Request, Response, TransportError

JOB = "13db265d5da22e3140d67bc53961a45b"
REQUEST = "6845f081137ec838f65cc82db6b3163d"
BASE = "http://flink.example:8081"

# --- captured shapes ---------------------------------------------------------------------

COMPLETED_CHECKPOINT = {
    "className": "completed", "id": 85, "status": "COMPLETED", "is_savepoint": False,
    "savepointFormat": None, "trigger_timestamp": 1795315903214,
    "latest_ack_timestamp": 1795315903219, "checkpointed_size": 5961, "state_size": 5961,
    "end_to_end_duration": 5, "num_subtasks": 2, "num_acknowledged_subtasks": 2,
    "checkpoint_type": "CHECKPOINT", "tasks": {},
    "external_path": f"file:/tmp/chk/{JOB}/chk-85", "discarded": False,
}
CHECKPOINTS_RUNNING = {
    "counts": {"restored": 0, "total": 86, "in_progress": 0, "completed": 85, "failed": 1},
    "latest": {"completed": COMPLETED_CHECKPOINT, "savepoint": None, "failed": None,
               "restored": None},
}
CHECKPOINTS_NO_DIR = {
    "counts": {"restored": 0, "total": 86, "in_progress": 0, "completed": 85, "failed": 1},
    "latest": {"completed": {**COMPLETED_CHECKPOINT,
                             "external_path": "<checkpoint-not-externally-addressable>"},
               "savepoint": None, "failed": None, "restored": None},
}
CHECKPOINTS_RESTORED = {
    "counts": {"restored": 1, "total": 2, "in_progress": 0, "completed": 1, "failed": 1},
    "latest": {
        "completed": {**COMPLETED_CHECKPOINT, "id": 3,
                      "external_path": "file:/tmp/chk/a6a080219fbef56030a261a60131ba19/chk-3"},
        "savepoint": None, "failed": None,
        "restored": {"id": 2, "restore_timestamp": 1795316077535, "is_savepoint": True,
                     "external_path": "file:/tmp/sp/savepoint-c83fc7-85aa0085265b"},
    },
}
CHECKPOINTS_DISABLED = {
    "counts": {"restored": 0, "total": 0, "in_progress": 0, "completed": 0, "failed": 0},
    "summary": {"state_size": {"min": 0, "max": 0, "avg": 0, "p50": "NaN"}},
    "latest": {"completed": None, "savepoint": None, "failed": None, "restored": None},
    "history": [],
}
CHECKPOINTS_AFTER_STOP = {  # stop-with-savepoint: the checkpoint is deleted, the savepoint kept
    "counts": {"restored": 0, "total": 3, "in_progress": 0, "completed": 2, "failed": 1},
    "latest": {
        "completed": {**COMPLETED_CHECKPOINT, "id": 1, "discarded": True,
                      "external_path": f"file:/tmp/chk/{JOB}/chk-1"},
        "savepoint": {**COMPLETED_CHECKPOINT, "id": 2, "is_savepoint": True,
                      "savepointFormat": "CANONICAL", "checkpoint_type": "SYNC_SAVEPOINT",
                      "external_path": "file:/tmp/sp/savepoint-c83fc7-85aa0085265b"},
        "failed": None, "restored": None,
    },
}
SAVEPOINT_IN_PROGRESS = {"status": {"id": "IN_PROGRESS"}, "operation": None}
SAVEPOINT_DONE = {"status": {"id": "COMPLETED"},
                  "operation": {"location": "file:/tmp/sp/savepoint-13db26-06ca015a4740"}}
SAVEPOINT_FAILED_TRACE = (
    "java.util.concurrent.CompletionException: org.apache.flink.runtime.checkpoint."
    "CheckpointException: An Exception occurred while triggering the checkpoint. IO-problem "
    "detected.\n"
    "\tat java.base/java.util.concurrent.CompletableFuture.encodeRelay(CompletableFuture.java)\n"
    "Caused by: org.apache.flink.runtime.checkpoint.CheckpointException: An Exception occurred "
    "while triggering the checkpoint. IO-problem detected.\n"
    "\tat org.apache.flink.runtime.checkpoint.PendingCheckpoint.abort(PendingCheckpoint.java:561)\n"
    "Caused by: java.io.IOException: Failed to create savepoint directory at file:/proc/nope/sp\n"
    "\tat org.apache.flink.runtime.state.filesystem.AbstractFsCheckpointStorageAccess"
    ".initializeLocationForSavepoint(AbstractFsCheckpointStorageAccess.java:191)\n"
    "\t... 3 more\n"
)
SAVEPOINT_FAILED = {
    "status": {"id": "COMPLETED"},
    "operation": {"failure-cause": {"class": "java.util.concurrent.CompletionException",
                                    "stack-trace": SAVEPOINT_FAILED_TRACE,
                                    "serialized-throwable": "rO0ABXNy..."}},
}
SAVEPOINT_JOB_GONE = {  # stop-with-savepoint triggered for a job that had already finished
    "status": {"id": "COMPLETED"},
    "operation": {"failure-cause": {
        "class": "java.util.concurrent.CompletionException",
        "stack-trace": "java.util.concurrent.CompletionException: org.apache.flink.runtime."
        f"messages.FlinkJobNotFoundException: Could not find Flink job ({JOB})\n"
        "\tat java.base/java.util.concurrent.CompletableFuture.encodeThrowable(Unknown Source)\n",
    }},
}
JOB_FAILED_EXCEPTIONS = {"exceptionHistory": {"entries": [{
    "exceptionName": "org.apache.flink.runtime.JobException",
    "stacktrace": "org.apache.flink.runtime.JobException: Recovery is suppressed by "
    "NoRestartBackoffTimeStrategy\n\tat org.apache.flink.runtime.executiongraph.failover."
    "ExecutionFailureHandler.handleFailure(ExecutionFailureHandler.java:213)\n"
    "Caused by: java.lang.NumberFormatException: For input string: 'd74f'. Invalid character "
    "found.\n\tat org.apache.flink.table.data.binary.BinaryStringDataUtil"
    ".numberFormatExceptionFor(BinaryStringDataUtil.java:585)\n",
    "timestamp": 1795316078676, "failureLabels": {},
    "concurrentExceptions": [{"exceptionName": "java.lang.NumberFormatException",
                              "taskName": "Source: src[16] -> Calc[17] (1/1) - execution #0",
                              "timestamp": 1795316078653}],
}], "truncated": False}}
CHECKPOINT_CONFIG = {"mode": "exactly_once", "interval": 500, "timeout": 600000,
                     "externalization": {"enabled": False, "delete_on_cancellation": True},
                     "checkpoint_storage": "FileSystemCheckpointStorage"}
CHECKPOINT_CONFIG_DISABLED = {**CHECKPOINT_CONFIG, "mode": "at_least_once",
                              "interval": 9223372036854775807}
OVERVIEW = {"taskmanagers": 1, "slots-total": 8, "slots-available": 6, "jobs-running": 2,
            "jobs-finished": 0, "jobs-cancelled": 0, "jobs-failed": 0,
            "flink-version": "2.3.0", "flink-commit": "c0f8d1a"}
CONFIG = {"refresh-interval": 3000, "flink-version": "2.3.0",
          "flink-revision": "c0f8d1a @ 2026-06-14T16:29:03+02:00",
          "features": {"web-submit": True, "web-cancel": True}}
JOBS_OVERVIEW = {"jobs": [{"jid": JOB, "name": "insert-into_default_catalog.default_database.snk",
                           "jobType": "STREAMING", "state": "RUNNING", "start-time": 1795315860229,
                           "end-time": -1}]}


def flink_error(*lines: str) -> dict[str, list[str]]:
    """A Flink error body: each error is a Java trace (here: headline, one frame, causes)."""
    return {"errors": [line + "\n\tat org.apache.flink.runtime.rest.handler.Somewhere(X.java:1)\n"
                       for line in lines]}


JOB_NOT_FOUND_BODY = flink_error(
    f"org.apache.flink.runtime.rest.NotFoundException: Job {JOB} not found\n\tat x.Y(Z.java:1)\n"
    "Caused by: org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find "
    f"Flink job ({JOB})")
NO_SAVEPOINT_DIR_BODY = flink_error(
    "org.apache.flink.runtime.rest.handler.RestHandlerException: Config key "
    "[execution.checkpointing.savepoint-dir] is not set. Property [targetDirectory] must be "
    "provided.")


# --- a scripted Flink ----------------------------------------------------------------------

class FakeClock:
    """``clock`` and ``sleep`` for the waits: sleeping only advances the time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeFlink:
    """Answers requests from a script: route -> one response, or a list consumed in order."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Any] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()

    def on(self, method: str, path: str, *answers: Any) -> None:
        self.routes[(method, path)] = list(answers)

    def handler(self, request: Request, timeout: float | None = None) -> Response:
        with self.lock:
            self.requests.append(request)
            answers = self.routes.get((request.method, request.path))
            if answers is None:
                return Response.of_json(404, {"errors": ["Not found: " + request.path]})
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        status, body = answer
        if isinstance(body, (dict, list)):
            return Response.of_json(status, body)
        return Response(status, body.encode())

    def calls(self, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if method is None or r.method == method]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def flink() -> FakeFlink:
    return FakeFlink()


@pytest.fixture
def make_client(flink: FakeFlink, clock: FakeClock) -> Iterator[Callable[..., FlinkRestClient]]:
    clients: list[FlinkRestClient] = []

    def make(base_url: str = BASE, **kwargs: Any) -> FlinkRestClient:
        kwargs.setdefault("transport", flink.handler)
        client = FlinkRestClient(base_url, clock=clock, sleep=clock.sleep, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., FlinkRestClient]) -> FlinkRestClient:
    return make_client()


def connect_error(request: Request) -> Response:
    raise TransportError("[Errno 111] Connection refused")


# --- public API ----------------------------------------------------------------------------

def test_public_api_is_exported() -> None:
    for name in rest_api.__all__:
        assert getattr(rest_api, name) is not None, name
    assert sorted(rest_api.__all__) == sorted(set(rest_api.__all__))
    assert issubclass(JobNotFound, RestError)
    assert issubclass(SavepointTimeout, WaitTimeout) and issubclass(WaitTimeout, RestError)
    assert issubclass(JobStateTimeout, WaitTimeout) and issubclass(CheckpointTimeout, WaitTimeout)


# --- transport -----------------------------------------------------------------------------

def test_headers_and_https_base_url_with_path_prefix(flink, make_client) -> None:
    flink.on("GET", "/flink/overview", (200, OVERVIEW))
    client = make_client("https://gateway.example/flink/",
                         headers={"Authorization": "Bearer t0ken", "X-Tenant": "a"})
    assert client.overview() == OVERVIEW
    [request] = flink.requests
    assert request.url == "https://gateway.example/flink/overview"
    assert request.headers["authorization"] == "Bearer t0ken"
    assert request.headers["x-tenant"] == "a"
    assert request.headers["accept"] == "application/json"


def test_for_cluster_takes_url_and_headers(flink, make_client) -> None:
    class Remote:
        rest_url = "https://flink.example:8443"
        headers = {"X-Auth": "yes"}

    flink.on("GET", "/config", (200, CONFIG))
    with FlinkRestClient.for_cluster(Remote(), transport=flink.handler) as client:
        assert client.config()["flink-version"] == "2.3.0"
        assert client.base_url == "https://flink.example:8443"
    assert flink.requests[0].headers["x-auth"] == "yes"


def test_verify_takes_a_ca_bundle_path(tmp_path) -> None:
    with HttpClient("https://flink.example", verify=certifi.where()) as http:
        assert http.base_url == "https://flink.example"
    from jupyter_flink.rest.http import ssl_context

    context = ssl_context(certifi.where())
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0
    assert ssl_context(False).verify_mode == ssl.CERT_NONE
    assert ssl_context(True).verify_mode == ssl.CERT_REQUIRED
    given = ssl.create_default_context()
    assert ssl_context(given) is given
    with pytest.raises(ConfigurationError, match="does not exist"):
        ssl_context(str(tmp_path / "missing.pem"))


def test_trust_env_is_off_for_loopback_only() -> None:
    with HttpClient("http://127.0.0.1:8081") as local, HttpClient("http://localhost:1") as named, \
            HttpClient("https://flink.example") as remote, \
            HttpClient("http://127.0.0.1:8081", trust_env=True) as forced:
        assert not local.trust_env
        assert not named.trust_env
        assert remote.trust_env
        assert forced.trust_env


@pytest.mark.parametrize("url", ["flink:8081", "ftp://flink", "", "http://", "http://flink:port",
                                 "http://[::1"])
def test_bad_base_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not a Flink REST address"):
        HttpClient(url)


def test_timeout_is_passed_to_the_transport(flink) -> None:
    timeouts: list[float] = []

    def transport(request: Request, timeout: float) -> Response:
        timeouts.append(timeout)
        return Response.of_json(200, OVERVIEW)

    with FlinkRestClient("http://127.0.0.1:1", timeout=2.5, transport=transport) as client:
        client.overview()
    assert timeouts == [2.5]
    with pytest.raises(ValueError):
        HttpClient("http://127.0.0.1:1", timeout=0)


def test_get_is_retried_on_503(flink, client, clock) -> None:
    flink.on("GET", "/overview", (503, "busy"), (503, "busy"), (200, OVERVIEW))
    assert client.overview() == OVERVIEW
    assert len(flink.requests) == 3
    assert clock.sleeps == [0.2, 0.2]


@pytest.mark.parametrize("status", [502, 504])
def test_get_is_retried_on_gateway_errors(flink, client, status: int) -> None:
    flink.on("GET", "/overview", (status, "proxy"), (200, OVERVIEW))
    assert client.overview() == OVERVIEW
    assert len(flink.requests) == 2


def test_get_gives_up_after_the_policy_attempts(flink, make_client, clock) -> None:
    flink.on("GET", "/overview", (503, {"errors": ["Service temporarily unavailable."]}))
    client = make_client(retry=LinearRetryPolicy(attempts=4, delay=0.5))
    with pytest.raises(RestError) as info:
        client.overview()
    assert info.value.status == 503
    assert len(flink.requests) == 4
    assert clock.sleeps == [0.5, 0.5, 0.5]
    assert "Service temporarily unavailable." in info.value.message


def test_get_is_retried_on_connection_errors(flink, client) -> None:
    flink.on("GET", "/overview", connect_error, (200, OVERVIEW))
    assert client.overview() == OVERVIEW
    assert len(flink.requests) == 2


def test_unreachable_cluster_is_a_rest_error_without_status(flink, client) -> None:
    flink.on("GET", "/overview", connect_error)
    with pytest.raises(RestError) as info:
        client.overview()
    assert info.value.status is None
    assert f"The Flink cluster at {BASE} is unreachable" in info.value.message
    assert "GET /overview" in info.value.message
    assert "Connection refused" in info.value.message
    assert info.value.fix
    assert len(flink.requests) == 3


def test_timeout_is_reported_with_its_length(flink, make_client) -> None:
    def slow(request: Request) -> Response:
        raise TransportError("read timed out", timeout=True)

    flink.on("GET", "/overview", slow)
    client = make_client(timeout=1.5, retry=NoRetry())
    with pytest.raises(RestError, match=r"unreachable.*no answer within 1.5 s") as info:
        client.overview()
    assert info.value.status is None


def test_get_is_not_retried_on_500(flink, client) -> None:
    flink.on("GET", "/overview", (500, flink_error("java.lang.IllegalStateException: boom")))
    with pytest.raises(RestError, match="IllegalStateException: boom"):
        client.overview()
    assert len(flink.requests) == 1


def test_no_retry_policy_sends_once(flink, make_client) -> None:
    flink.on("GET", "/overview", (503, "busy"))
    with pytest.raises(RestError):
        make_client(retry=NoRetry()).overview()
    assert len(flink.requests) == 1


@pytest.mark.parametrize("answer", [(503, "busy"), connect_error])
def test_post_is_never_retried(flink, client, answer) -> None:
    flink.on("POST", f"/jobs/{JOB}/stop", answer, (202, {"request-id": REQUEST}))
    with pytest.raises(RestError):
        client.trigger_stop_with_savepoint(JOB, "file:///sp")
    assert len(flink.requests) == 1


@pytest.mark.parametrize("answer", [(503, "busy"), connect_error])
def test_patch_is_never_retried(flink, client, answer) -> None:
    flink.on("PATCH", f"/jobs/{JOB}", answer, (202, {}))
    with pytest.raises(RestError):
        client.cancel(JOB)
    assert len(flink.requests) == 1


def test_linear_retry_policy() -> None:
    policy = LinearRetryPolicy(attempts=3, delay=0.2)
    assert policy.should_retry(None, 1) and policy.should_retry(503, 2)
    assert not policy.should_retry(503, 3)
    assert not policy.should_retry(500, 1) and not policy.should_retry(404, 1)
    assert policy.delay(1) == policy.delay(2) == 0.2
    assert not NoRetry().should_retry(None, 1)
    with pytest.raises(ValueError):
        LinearRetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        LinearRetryPolicy(delay=-1)


def test_error_names_method_path_status_and_flinks_reason(flink, client) -> None:
    flink.on("POST", f"/jobs/{JOB}/stop", (400, NO_SAVEPOINT_DIR_BODY))
    with pytest.raises(RestError) as info:
        client.trigger_stop_with_savepoint(JOB)
    error = info.value
    assert error.status == 400
    assert error.message == (
        f"Flink answered POST /jobs/{JOB}/stop with 400 Bad Request (expected 202): "
        "RestHandlerException: Config key [execution.checkpointing.savepoint-dir] is not set. "
        "Property [targetDirectory] must be provided.")
    assert "\tat org.apache.flink" in str(error.details)  # the trace, one step away
    assert json.loads(str(error.body)) == NO_SAVEPOINT_DIR_BODY


def test_error_without_flink_body(flink, client) -> None:
    flink.on("GET", "/overview", (401, "<html>login</html>"))
    with pytest.raises(RestError) as info:
        client.overview()
    assert info.value.message == (
        "Flink answered GET /overview with 401 Unauthorized (expected 200).")
    assert "headers" in str(info.value.fix)
    assert info.value.body == "<html>login</html>"


def test_accepted_answer_that_is_not_json(flink, client) -> None:
    flink.on("GET", "/overview", (200, "<html>proxy login</html>"))
    with pytest.raises(RestError, match="not with JSON"):
        client.overview()


def test_closed_client_raises_rest_error(flink, client) -> None:
    flink.on("GET", "/overview", (200, OVERVIEW))
    client.close()
    client.close()
    with pytest.raises(RestError, match="closed"):
        client.overview()
    assert flink.requests == []


def test_one_client_serves_several_threads(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/status", (200, {"status": "RUNNING"}))
    flink.on("GET", f"/jobs/{JOB}/checkpoints", (200, CHECKPOINTS_RUNNING))
    errors: list[BaseException] = []

    def work(call: Callable[[], Any]) -> None:
        try:
            for _ in range(50):
                call()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    calls = [lambda: client.job_status(JOB), lambda: client.checkpoints(JOB),
             lambda: client.job_status(JOB)]
    threads = [threading.Thread(target=work, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(flink.requests) == 150


# --- endpoints -----------------------------------------------------------------------------

GETS = [
    (lambda c: c.overview(), "/overview", OVERVIEW, OVERVIEW),
    (lambda c: c.config(), "/config", CONFIG, CONFIG),
    (lambda c: c.jobs_overview(), "/jobs/overview", JOBS_OVERVIEW, JOBS_OVERVIEW["jobs"]),
    (lambda c: c.job(JOB), f"/jobs/{JOB}", {"jid": JOB, "state": "RUNNING"},
     {"jid": JOB, "state": "RUNNING"}),
    (lambda c: c.job_status(JOB), f"/jobs/{JOB}/status", {"status": "RUNNING"}, "RUNNING"),
    (lambda c: c.job_config(JOB), f"/jobs/{JOB}/config", {"jid": JOB}, {"jid": JOB}),
    (lambda c: c.job_exceptions(JOB), f"/jobs/{JOB}/exceptions", JOB_FAILED_EXCEPTIONS,
     JOB_FAILED_EXCEPTIONS),
    (lambda c: c.checkpoints(JOB), f"/jobs/{JOB}/checkpoints", CHECKPOINTS_RUNNING,
     CHECKPOINTS_RUNNING),
    (lambda c: c.checkpoint_config(JOB), f"/jobs/{JOB}/checkpoints/config", CHECKPOINT_CONFIG,
     CHECKPOINT_CONFIG),
    (lambda c: c.checkpoint_details(JOB, 85), f"/jobs/{JOB}/checkpoints/details/85",
     COMPLETED_CHECKPOINT, COMPLETED_CHECKPOINT),
    (lambda c: c.savepoint_status(JOB, REQUEST), f"/jobs/{JOB}/savepoints/{REQUEST}",
     SAVEPOINT_DONE, SavepointStatus("COMPLETED", SAVEPOINT_DONE["operation"]["location"])),
    (lambda c: c.checkpoint_interval_ms(JOB), f"/jobs/{JOB}/checkpoints/config",
     CHECKPOINT_CONFIG, 500),
]


GET_IDS = ["overview", "config", "jobs_overview", "job", "job_status", "job_config",
           "job_exceptions", "checkpoints", "checkpoint_config", "checkpoint_details",
           "savepoint_status", "checkpoint_interval_ms"]


@pytest.mark.parametrize(("call", "path", "body", "expected"), GETS, ids=GET_IDS)
def test_get_endpoints(flink, client, call, path, body, expected) -> None:
    flink.on("GET", path, (200, body))
    assert call(client) == expected
    [request] = flink.requests
    assert (request.method, request.path, request.content) == ("GET", path, b"")


@pytest.mark.parametrize(("call", "path", "body", "expected"), GETS[:-1], ids=GET_IDS[:-1])
def test_get_endpoints_reject_other_statuses(flink, client, call, path, body, expected) -> None:
    flink.on("GET", path, (201, body))
    with pytest.raises(RestError) as info:
        call(client)
    assert info.value.status == 201
    assert path in info.value.message


def test_cancel(flink, client) -> None:
    flink.on("PATCH", f"/jobs/{JOB}", (202, {}))
    assert client.cancel(JOB) is True
    [request] = flink.requests
    assert request.params["mode"] == "cancel"
    assert request.content == b""


def test_cancel_of_a_job_that_ended_otherwise_returns_false(flink, client) -> None:
    body = flink_error("org.apache.flink.runtime.rest.handler.RestHandlerException: Job "
                       "cancellation failed because the job has already reached another "
                       "terminal state (FINISHED).")
    flink.on("PATCH", f"/jobs/{JOB}", (409, body))
    assert client.cancel(JOB) is False


def test_cancel_of_an_unknown_job(flink, client) -> None:
    body = flink_error("org.apache.flink.runtime.rest.handler.RestHandlerException: Job could "
                       "not be found.")
    flink.on("PATCH", f"/jobs/{JOB}", (404, body))
    with pytest.raises(JobNotFound) as info:
        client.cancel(JOB)
    assert info.value.job_id == JOB and info.value.status == 404


def test_trigger_stop_with_savepoint_body(flink, client) -> None:
    flink.on("POST", f"/jobs/{JOB}/stop", (202, {"request-id": REQUEST}))
    assert client.trigger_stop_with_savepoint(JOB, "file:///tmp/sp") == REQUEST
    assert client.trigger_stop_with_savepoint(JOB, drain=True, format_type="native",
                                              trigger_id=REQUEST) == REQUEST
    first, second = (json.loads(r.content) for r in flink.requests)
    assert first == {"targetDirectory": "file:///tmp/sp", "drain": False,
                     "formatType": "CANONICAL"}
    assert second == {"drain": True, "formatType": "NATIVE", "triggerId": REQUEST}
    assert flink.requests[0].headers["content-type"] == "application/json"


def test_trigger_savepoint_body(flink, client) -> None:
    flink.on("POST", f"/jobs/{JOB}/savepoints", (202, {"request-id": REQUEST}))
    assert client.trigger_savepoint(JOB, "file:///tmp/sp") == REQUEST
    assert client.trigger_savepoint(JOB, cancel_job=True) == REQUEST
    first, second = (json.loads(r.content) for r in flink.requests)
    assert first == {"target-directory": "file:///tmp/sp", "cancel-job": False,
                     "formatType": "CANONICAL"}
    assert second == {"cancel-job": True, "formatType": "CANONICAL"}


def test_trigger_rejects_bad_arguments_without_sending(flink, client) -> None:
    with pytest.raises(ValueError, match="format_type"):
        client.trigger_savepoint(JOB, "file:///sp", format_type="binary")
    with pytest.raises(ValueError, match="trigger id"):
        client.trigger_stop_with_savepoint(JOB, "file:///sp", trigger_id="abc")
    assert flink.requests == []


def test_trigger_answer_without_request_id(flink, client) -> None:
    flink.on("POST", f"/jobs/{JOB}/stop", (202, {}))
    with pytest.raises(RestError, match="request-id"):
        client.trigger_stop_with_savepoint(JOB, "file:///sp")


@pytest.mark.parametrize("bad", ["bogus", "../../overview", JOB + "0", "", None])
def test_malformed_job_id_is_job_not_found_without_a_request(flink, client, bad) -> None:
    with pytest.raises(JobNotFound, match="not a Flink job id"):
        client.job(bad)
    with pytest.raises(JobNotFound):
        client.trigger_stop_with_savepoint(bad, "file:///sp")
    assert flink.requests == []


def test_malformed_request_id(flink, client) -> None:
    with pytest.raises(ValueError, match="request id"):
        client.savepoint_status(JOB, "../x")
    assert flink.requests == []


@pytest.mark.parametrize("call", [
    lambda c: c.job(JOB), lambda c: c.job_status(JOB), lambda c: c.job_config(JOB),
    lambda c: c.job_exceptions(JOB), lambda c: c.checkpoints(JOB),
    lambda c: c.checkpoint_config(JOB), lambda c: c.checkpoint_details(JOB, 3),
    lambda c: c.checkpoint_interval_ms(JOB),
])
def test_404_naming_the_job_is_job_not_found(call) -> None:
    def transport(request: Request, timeout: float) -> Response:
        return Response.of_json(404, JOB_NOT_FOUND_BODY)

    with FlinkRestClient(BASE, transport=transport) as client, \
            pytest.raises(JobNotFound) as info:
        call(client)
    error = info.value
    assert error.job_id == JOB and error.status == 404
    assert f"Flink has no job {JOB}" in error.message
    assert "FlinkJobNotFoundException" in str(error.details)


def test_plain_404_on_a_job_path_is_job_not_found(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}", (404, "Not Found"))
    with pytest.raises(JobNotFound):
        client.job(JOB)


def test_404_for_other_things_under_a_job_is_not_job_not_found(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/checkpoints/details/1", (404, flink_error(
        "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not find "
        "checkpointing statistics for checkpoint 1.")))
    flink.on("GET", f"/jobs/{JOB}/savepoints/{REQUEST}", (404, flink_error(
        "org.apache.flink.runtime.rest.handler.RestHandlerException: There is no savepoint "
        f"operation with triggerId={REQUEST} for job {JOB}.")))
    flink.on("GET", f"/jobs/{JOB}/checkpoints", (404, {"errors": [
        "Checkpointing has not been enabled."]}))
    flink.on("GET", f"/jobs/{JOB}/checkpoints/config", (404, {"errors": [
        f"Checkpointing is not enabled for this job ({JOB})."]}))
    for call, reason in [
        (lambda: client.checkpoint_details(JOB, 1), "Could not find checkpointing statistics"),
        (lambda: client.savepoint_status(JOB, REQUEST), "There is no savepoint operation"),
        (lambda: client.checkpoints(JOB), "Checkpointing has not been enabled."),
    ]:
        with pytest.raises(RestError, match=reason) as info:
            call()
        assert not isinstance(info.value, JobNotFound)
        assert info.value.status == 404
    assert client.checkpoint_interval_ms(JOB) is None


def test_checkpoint_interval_of_a_job_without_checkpointing(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/checkpoints/config", (200, CHECKPOINT_CONFIG_DISABLED))
    assert client.checkpoint_interval_ms(JOB) is None


# --- waits ---------------------------------------------------------------------------------

def test_wait_for_savepoint_returns_the_location(flink, client, clock) -> None:
    flink.on("GET", f"/jobs/{JOB}/savepoints/{REQUEST}", (200, SAVEPOINT_IN_PROGRESS),
             (200, SAVEPOINT_IN_PROGRESS), (200, SAVEPOINT_DONE))
    location = client.wait_for_savepoint(JOB, REQUEST, timeout=10, poll=0.5)
    assert location == "file:/tmp/sp/savepoint-13db26-06ca015a4740"
    assert clock.sleeps == [0.5, 0.5]


def test_wait_for_savepoint_raises_flinks_cause(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/savepoints/{REQUEST}", (200, SAVEPOINT_IN_PROGRESS),
             (200, SAVEPOINT_FAILED))
    with pytest.raises(JobError) as info:
        client.wait_for_savepoint(JOB, REQUEST, timeout=10)
    error = info.value
    assert error.message == (f"The savepoint of job {JOB} failed: IOException: Failed to "
                             "create savepoint directory at file:/proc/nope/sp")
    assert "\n" not in error.message
    assert error.details == SAVEPOINT_FAILED_TRACE
    assert error.job_id == JOB


def test_wait_for_savepoint_of_a_vanished_job(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/savepoints/{REQUEST}", (200, SAVEPOINT_JOB_GONE))
    with pytest.raises(JobNotFound) as info:
        client.wait_for_savepoint(JOB, REQUEST, timeout=10)
    assert "FlinkJobNotFoundException" in str(info.value.details)


def test_wait_for_savepoint_deadline(flink, client, clock) -> None:
    flink.on("GET", f"/jobs/{JOB}/savepoints/{REQUEST}", (200, SAVEPOINT_IN_PROGRESS))
    start = clock.now
    with pytest.raises(SavepointTimeout) as info:
        client.wait_for_savepoint(JOB, REQUEST, timeout=1.0, poll=0.3)
    assert clock.now - start == pytest.approx(1.0)  # never sleeps past the deadline
    assert clock.sleeps == pytest.approx([0.3, 0.3, 0.3, 0.1])
    assert len(flink.requests) == 5  # at the start, after each sleep (the last at the deadline)
    error = info.value
    assert (error.job_id, error.request_id, error.timeout) == (JOB, REQUEST, 1.0)
    assert "did not complete within 1 s" in error.message
    assert error.status is None


def test_wait_with_zero_timeout_checks_once(flink, client, clock) -> None:
    flink.on("GET", f"/jobs/{JOB}/savepoints/{REQUEST}", (200, SAVEPOINT_IN_PROGRESS))
    with pytest.raises(SavepointTimeout):
        client.wait_for_savepoint(JOB, REQUEST, timeout=0)
    assert len(flink.requests) == 1 and clock.sleeps == []


def test_wait_rejects_bad_durations(client) -> None:
    with pytest.raises(ValueError):
        client.wait_for_savepoint(JOB, REQUEST, timeout=-1)
    with pytest.raises(ValueError):
        client.wait_for_job_state(JOB, {"RUNNING"}, timeout=1, poll=0)


def test_wait_for_job_state(flink, client, clock) -> None:
    flink.on("GET", f"/jobs/{JOB}/status", (200, {"status": "INITIALIZING"}),
             (200, {"status": "CREATED"}), (200, {"status": "RUNNING"}))
    assert client.wait_for_job_state(JOB, {"running", "FINISHED"}, timeout=5) == "RUNNING"
    assert clock.sleeps == [0.2, 0.2]


def test_wait_for_a_terminal_state(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/status", (200, {"status": "CANCELLING"}),
             (200, {"status": "CANCELED"}))
    assert client.wait_for_job_state(JOB, {"CANCELED", "FAILED", "FINISHED"}, 5) == "CANCELED"


def test_wait_for_job_state_reports_a_failed_job(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/status", (200, {"status": "FAILED"}))
    flink.on("GET", f"/jobs/{JOB}/exceptions", (200, JOB_FAILED_EXCEPTIONS))
    with pytest.raises(JobError) as info:
        client.wait_for_job_state(JOB, {"RUNNING"}, timeout=5)
    error = info.value
    assert error.message == (f"Job {JOB} FAILED (waiting for RUNNING): NumberFormatException: "
                             "For input string: 'd74f'. Invalid character found.")
    assert "Recovery is suppressed" in str(error.details)
    assert not isinstance(error, RestError)


def test_wait_for_job_state_reports_a_failed_job_even_without_its_cause(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/status", (200, {"status": "FAILED"}))
    flink.on("GET", f"/jobs/{JOB}/exceptions", (500, "oops"))
    with pytest.raises(JobError, match=r"FAILED \(waiting for RUNNING\)\.$"):
        client.wait_for_job_state(JOB, {"RUNNING"}, timeout=5)


def test_wait_for_job_state_stops_at_an_unwanted_end(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/status", (200, {"status": "FINISHED"}))
    with pytest.raises(JobError, match=f"Job {JOB} is FINISHED"):
        client.wait_for_job_state(JOB, {"RUNNING"}, timeout=5)


def test_wait_for_job_state_deadline(flink, client, clock) -> None:
    flink.on("GET", f"/jobs/{JOB}/status", (200, {"status": "INITIALIZING"}))
    with pytest.raises(JobStateTimeout) as info:
        client.wait_for_job_state(JOB, {"RUNNING"}, timeout=2, poll=1)
    error = info.value
    assert error.last_state == "INITIALIZING" and error.states == {"RUNNING"}
    assert "did not become RUNNING within 2 s (it is INITIALIZING)" in error.message
    assert sum(clock.sleeps) == pytest.approx(2)
    with pytest.raises(ValueError):
        client.wait_for_job_state(JOB, set(), timeout=1)


def test_wait_for_job_state_of_an_unknown_job(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/status", (404, JOB_NOT_FOUND_BODY))
    with pytest.raises(JobNotFound):
        client.wait_for_job_state(JOB, {"RUNNING"}, timeout=5)


def test_wait_for_checkpoint(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/checkpoints", (200, CHECKPOINTS_DISABLED),
             (200, CHECKPOINTS_RUNNING))
    flink.on("GET", f"/jobs/{JOB}/status", (200, {"status": "RUNNING"}))
    info = client.wait_for_checkpoint(JOB, timeout=5)
    assert info.id == 85


def test_wait_for_a_newer_checkpoint(flink, client, clock) -> None:
    flink.on("GET", f"/jobs/{JOB}/checkpoints", (200, CHECKPOINTS_RUNNING))
    flink.on("GET", f"/jobs/{JOB}/status", (200, {"status": "RUNNING"}))
    with pytest.raises(CheckpointTimeout, match="no checkpoint newer than 85 within 1 s"):
        client.wait_for_checkpoint(JOB, timeout=1, newer_than=85)
    assert sum(clock.sleeps) == pytest.approx(1)


def test_wait_for_checkpoint_of_a_job_that_ends(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/checkpoints", (200, CHECKPOINTS_DISABLED))
    flink.on("GET", f"/jobs/{JOB}/status", (200, {"status": "CANCELED"}))
    with pytest.raises(JobError, match="is CANCELED"):
        client.wait_for_checkpoint(JOB, timeout=5)


# --- views on captured shapes --------------------------------------------------------------

def test_latest_checkpoint() -> None:
    info = latest_checkpoint(CHECKPOINTS_RUNNING)
    assert info is not None
    assert info.id == 85
    assert info.external_path == f"file:/tmp/chk/{JOB}/chk-85"
    assert info.addressable and not info.is_savepoint and not info.discarded
    assert info.trigger_timestamp == 1795315903214
    assert info.latest_ack_timestamp == 1795315903219
    assert info.status == "COMPLETED" and info.checkpoint_type == "CHECKPOINT"


def test_latest_checkpoint_without_checkpoint_dir() -> None:
    info = latest_checkpoint(CHECKPOINTS_NO_DIR)
    assert info is not None and info.id == 85
    assert info.external_path is None
    assert not info.addressable
    assert "execution.checkpointing.dir" in rest_api.NO_CHECKPOINT_DIR_FIX


def test_restored_from_a_savepoint() -> None:
    restore = restored_from(CHECKPOINTS_RESTORED)
    assert restore is not None
    assert restore.external_path == "file:/tmp/sp/savepoint-c83fc7-85aa0085265b"
    assert restore.is_savepoint and restore.addressable
    assert restore.restore_timestamp == 1795316077535
    assert restore.id == 2
    assert checkpoint_counts(CHECKPOINTS_RESTORED).restored == 1
    assert restored_from(CHECKPOINTS_RUNNING) is None


def test_counts() -> None:
    counts = checkpoint_counts(CHECKPOINTS_RUNNING)
    assert (counts.completed, counts.failed, counts.in_progress, counts.restored, counts.total) \
        == (85, 1, 0, 0, 86)


def test_views_of_a_job_without_checkpoints() -> None:
    assert latest_checkpoint(CHECKPOINTS_DISABLED) is None
    assert latest_savepoint(CHECKPOINTS_DISABLED) is None
    assert restored_from(CHECKPOINTS_DISABLED) is None
    assert checkpoint_counts(CHECKPOINTS_DISABLED).total == 0


def test_views_after_stop_with_savepoint() -> None:
    checkpoint = latest_checkpoint(CHECKPOINTS_AFTER_STOP)
    savepoint = latest_savepoint(CHECKPOINTS_AFTER_STOP)
    assert checkpoint is not None and checkpoint.discarded  # Flink deleted it
    assert savepoint is not None and savepoint.is_savepoint
    assert savepoint.checkpoint_type == "SYNC_SAVEPOINT"
    assert savepoint.external_path == "file:/tmp/sp/savepoint-c83fc7-85aa0085265b"


@pytest.mark.parametrize("junk", [{}, {"latest": None}, {"latest": "x"}, {"latest": {
    "completed": []}}, {"counts": None}])
def test_views_tolerate_unexpected_shapes(junk) -> None:
    assert latest_checkpoint(junk) is None
    assert restored_from(junk) is None
    assert checkpoint_counts(junk).completed == 0


def test_checkpoint_interval_view() -> None:
    assert checkpoint_interval_ms(CHECKPOINT_CONFIG) == 500
    assert checkpoint_interval_ms(CHECKPOINT_CONFIG_DISABLED) is None
    assert checkpoint_interval_ms({}) is None


def test_savepoint_status_view() -> None:
    running = SavepointStatus.from_json(SAVEPOINT_IN_PROGRESS)
    assert (running.status, running.done, running.succeeded) == ("IN_PROGRESS", False, False)
    done = SavepointStatus.from_json(SAVEPOINT_DONE)
    assert done.succeeded and done.location == "file:/tmp/sp/savepoint-13db26-06ca015a4740"
    failed = SavepointStatus.from_json(SAVEPOINT_FAILED)
    assert failed.done and not failed.succeeded and failed.location is None
    assert failed.failure == ("IOException: Failed to create savepoint directory at "
                              "file:/proc/nope/sp")
    assert failed.failure_trace == SAVEPOINT_FAILED_TRACE


def test_latest_failure_view() -> None:
    failure = latest_failure(JOB_FAILED_EXCEPTIONS)
    assert failure is not None
    assert failure.message.startswith("NumberFormatException: For input string")
    assert failure.timestamp == 1795316078676
    assert latest_failure({"exceptionHistory": {"entries": [], "truncated": False}}) is None


@pytest.mark.parametrize(("text", "summary"), [
    (SAVEPOINT_FAILED_TRACE,
     "IOException: Failed to create savepoint directory at file:/proc/nope/sp"),
    ("org.apache.flink.runtime.rest.handler.RestHandlerException: Job could not be found.\n"
     "\tat a.B(C.java:1)\n", "RestHandlerException: Job could not be found."),
    ("java.lang.IllegalStateException\n\tat a.B(C.java:1)\nCaused by: java.lang.Outer$Error: "
     "null\n", "Outer$Error"),
    ("java.lang.RuntimeException: outer\nCaused by: java.lang.NullPointerException\n",
     "RuntimeException: outer"),
    ("Unable to load requested file /nonexistent.", "Unable to load requested file /nonexistent."),
    ("", ""),
])
def test_summarize_java_trace(text: str, summary: str) -> None:
    assert summarize_java_trace(text) == summary


# --- vertices, metrics and the views the health charts use -------------------------------

VERTEX = "cbc357ccb763df2852fee8c4fc7d55f2"
SINK_VERTEX = "f6dc7f4d2283f4605b127b9364e21148"
# Trimmed from GET /jobs/{id} of "INSERT INTO snk SELECT k, COUNT(*) FROM src GROUP BY k"
JOB_DETAILS = {
    "jid": JOB, "name": "agg", "state": "RUNNING",
    "vertices": [
        {"id": VERTEX, "name": "Source: src[1] -> Calc[2] -> WatermarkAssigner[3] -> Calc[4]",
         "parallelism": 1, "status": "RUNNING"},
        {"id": SINK_VERTEX, "name": "GroupAggregate[6] -> snk[7]: Writer", "parallelism": 2,
         "status": "RUNNING"},
    ],
    "plan": {"jid": JOB, "nodes": [
        {"id": SINK_VERTEX, "parallelism": 2,
         "inputs": [{"id": VERTEX, "num": 0, "ship_strategy": "HASH"}]},
        {"id": VERTEX, "parallelism": 1},
    ]},
}
METRIC_NAMES = [{"id": name} for name in (
    "Source__src[1].numRecordsOut", "Calc[2].numRecordsOut", "numRecordsOut", "numRecordsIn",
    "busyTimeMsPerSecond", "backPressuredTimeMsPerSecond")]
AGGREGATED = [
    {"id": "busyTimeMsPerSecond", "min": "NaN", "max": "NaN", "sum": "NaN"},
    {"id": "backPressuredTimeMsPerSecond", "min": 0.0, "max": 1000.0, "sum": 1000.0},
    {"id": "currentInputWatermark", "min": -9.223372036854776e18, "max": 1795978263933.0},
    {"id": "Source__src[1].numRecordsOut", "min": 2600.0, "max": 2600.0, "sum": 2600.0},
]


def test_vertex_metric_endpoints(flink, client) -> None:
    path = f"/jobs/{JOB}/vertices/{VERTEX}/subtasks/metrics"
    flink.on("GET", path, (200, METRIC_NAMES))
    assert client.vertex_metric_names(JOB, VERTEX)[0] == "Source__src[1].numRecordsOut"
    flink.on("GET", path, (200, AGGREGATED))
    metrics = client.vertex_metrics(JOB, VERTEX, ["busyTimeMsPerSecond", "a.b"])
    assert flink.requests[-1].params == {"get": "busyTimeMsPerSecond,a.b",
                                         "agg": "min,max,sum"}
    # NaN and a watermark never set are left out
    assert metrics == {"backPressuredTimeMsPerSecond": {"min": 0.0, "max": 1000.0,
                                                        "sum": 1000.0},
                       "currentInputWatermark": {"max": 1795978263933.0},
                       "Source__src[1].numRecordsOut": {"min": 2600.0, "max": 2600.0,
                                                        "sum": 2600.0}}
    assert client.vertex_metrics(JOB, VERTEX, []) == {}  # nothing asked: no request
    assert len(flink.requests) == 2
    with pytest.raises(ValueError):
        client.vertex_metrics(JOB, "../../jobs", ["x"])


def test_vertex_metrics_of_an_unknown_job(flink, client) -> None:
    flink.on("GET", f"/jobs/{JOB}/vertices/{VERTEX}/subtasks/metrics",
             (404, {"errors": [f"org.apache.flink.runtime.messages.FlinkJobNotFoundException: "
                               f"Could not find Flink job ({JOB})"]}))
    with pytest.raises(JobNotFound):
        client.vertex_metric_names(JOB, VERTEX)


def test_job_graph_sources_and_sinks() -> None:
    graph = rest_api.job_graph(JOB_DETAILS)
    source, sink = graph.vertices
    assert graph.sources == (source,) and graph.sinks == (sink,)
    assert source.operators == ("Source: src[1]", "Calc[2]", "WatermarkAssigner[3]",
                                "Calc[4]")
    assert sink.inputs == (VERTEX,) and sink.parallelism == 2
    assert rest_api.job_graph({}).vertices == ()


def test_operator_metric_names_follow_flinks_spelling() -> None:
    names = (*(entry["id"] for entry in METRIC_NAMES), "snk[7]__Writer.numRecordsIn",
             "Sink__Print_to_Std__Out.numRecordsIn", "A" * 80 + ".numRecordsIn")
    assert rest_api.operator_metric(names, "Source: src[1]", "numRecordsOut") == \
        "Source__src[1].numRecordsOut"
    assert rest_api.operator_metric(names, "snk[7]: Writer", "numRecordsIn") == \
        "snk[7]__Writer.numRecordsIn"
    assert rest_api.operator_metric(names, "Sink: Print to Std. Out", "numRecordsIn") == \
        "Sink__Print_to_Std__Out.numRecordsIn"
    assert rest_api.operator_metric(names, "A" * 100, "numRecordsIn") == \
        "A" * 80 + ".numRecordsIn"  # Flink cuts operator names to 80 characters
    assert rest_api.operator_metric(names, "Calc[9]", "numRecordsOut") is None


def test_task_and_slot_counts() -> None:
    waiting = rest_api.task_counts({"tasks": {"running": 0, "total": 20, "scheduled": 20,
                                              "created": 0, "canceled": 0}})
    assert waiting == rest_api.TaskCounts(total=20, running=0, scheduled=20, waiting=20)
    assert not waiting.all_running
    starting = rest_api.task_counts({"tasks": {"running": 3, "initializing": 1, "total": 4}})
    assert starting is not None and starting.waiting == 1 and not starting.all_running
    assert rest_api.task_counts({"tasks": {"running": 4, "total": 4}}).all_running
    assert rest_api.task_counts({"state": "RUNNING"}) is None
    details = {"status-counts": {"RUNNING": 3, "INITIALIZING": 1, "SCHEDULED": 0}}
    assert rest_api.task_counts(details) == rest_api.TaskCounts(4, 3, 0, 1)
    assert rest_api.slot_counts(OVERVIEW) == rest_api.SlotCounts(
        OVERVIEW["slots-total"], OVERVIEW["slots-available"])


def test_checkpoint_history_and_the_last_failure() -> None:
    failed = {**COMPLETED_CHECKPOINT, "className": "failed", "id": 86, "status": "FAILED",
              "end_to_end_duration": 600_012, "failure_message":
              "Checkpoint expired before completing."}
    savepoint = {**COMPLETED_CHECKPOINT, "id": 84, "is_savepoint": True}
    checkpoints = {**CHECKPOINTS_RUNNING, "history": [failed, COMPLETED_CHECKPOINT, savepoint],
                   "latest": {**CHECKPOINTS_RUNNING["latest"], "failed": failed}}
    history = rest_api.checkpoint_history(checkpoints)
    assert [(stat.id, stat.status) for stat in history] == [(86, "FAILED"), (85, "COMPLETED")]
    last = rest_api.latest_failed_checkpoint(checkpoints)
    assert last is not None and last.failure_message == "Checkpoint expired before completing."
    assert last.ended_at_ms == failed["trigger_timestamp"] + 600_012
    assert rest_api.latest_failed_checkpoint(CHECKPOINTS_RUNNING) is None
    assert rest_api.checkpoint_history(CHECKPOINTS_DISABLED) == ()
    latest = latest_checkpoint(CHECKPOINTS_RUNNING)
    assert latest is not None and (latest.duration_ms, latest.state_size) == (5, 5961)
