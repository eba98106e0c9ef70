"""WarmStart's steps and its meeting points with the session, with a stand-in session (the
real one, with its JVM and cluster, is in tests/integration/test_warm_start.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from jupyter_flink.flink import warm as warm_module
from jupyter_flink.flink.warm import WarmStart
from tests.support.waiting import wait_until


class FakeSession:
    """Records the steps a warm start takes; ``gate`` holds the JVM step until set."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail: Exception | None = None
        self.lock = threading.RLock()
        self.envs = object()

    def _gateway(self) -> None:
        self.gate.wait(10)
        self.steps.append("jvm")
        if self.fail is not None:
            raise self.fail

    @property
    def options(self) -> None:
        self.steps.append("options")

    def start(self) -> None:
        self.steps.append("start")

    def cluster_is_local(self) -> bool:
        return True


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> FakeSession:
    fake = FakeSession()

    def warm_up(self: WarmStart, envs: Any, *, local: bool) -> None:
        fake.steps.append("warm-up")
        self.warmed_up = True
    monkeypatch.setattr(WarmStart, "_warm_up", warm_up)
    return fake


def warm_start(session: FakeSession) -> WarmStart:
    return WarmStart(session, session.lock)  # type: ignore[arg-type]


def test_all_steps_run_in_order(session: FakeSession) -> None:
    warm = warm_start(session)
    warm.begin()
    wait_until(lambda: not warm.in_flight, timeout=10, what="the warm start")
    assert session.steps == ["jvm", "options", "start", "warm-up"]
    assert warm.warmed_up and warm.failure is None


def test_a_cell_that_joins_skips_the_warm_up_job(session: FakeSession) -> None:
    session.gate.clear()
    warm = warm_start(session)
    warm.begin()
    joined = threading.Thread(target=warm.join)
    joined.start()
    wait_until(lambda: warm._hurry.is_set(), timeout=10, what="the join")
    session.gate.set()
    joined.join(10)
    assert not joined.is_alive() and not warm.in_flight
    assert session.steps == ["jvm", "options", "start"]


def test_a_conf_cell_being_applied_holds_the_cluster_step(session: FakeSession) -> None:
    warm = warm_start(session)
    with warm.configuring():
        warm.begin()
        wait_until(lambda: session.steps == ["jvm", "options"], timeout=10,
                   what="the steps before the cluster")
        assert warm.in_flight and "start" not in session.steps
    wait_until(lambda: not warm.in_flight, timeout=10, what="the warm start")
    assert session.steps[-2:] == ["start", "warm-up"]


def test_begin_while_running_warms_again(session: FakeSession) -> None:
    session.gate.clear()
    warm = warm_start(session)
    warm.begin()
    warm.begin()  # the settings changed meanwhile
    session.gate.set()
    wait_until(lambda: not warm.in_flight, timeout=10, what="both warm starts")
    assert session.steps == ["jvm", "options", "start", "warm-up"] * 2


def test_cancel_stops_before_the_next_step(session: FakeSession) -> None:
    session.gate.clear()
    warm = warm_start(session)
    warm.begin()
    assert not warm.cancel(timeout=0.1)  # still in the JVM step
    session.gate.set()
    assert warm.cancel(timeout=10)
    assert session.steps == ["jvm"]


def test_a_failure_is_kept_not_raised(session: FakeSession,
                                      caplog: pytest.LogCaptureFixture) -> None:
    session.fail = RuntimeError("no Java")
    warm = warm_start(session)
    with caplog.at_level("INFO", logger=warm_module.__name__):
        warm.begin()
        wait_until(lambda: not warm.in_flight, timeout=10, what="the warm start")
    assert isinstance(warm.failure, RuntimeError) and session.steps == ["jvm"]
    warm.join()  # the first cell starts again itself: joining raises nothing
    assert "in the background failed" in caplog.text
