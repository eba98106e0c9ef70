"""What a job's output says (our MIME type's JSON, HTML, text) and the jobs comm's
bookkeeping: who is told what, and when (no kernel: the comm's send is a list)."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import pytest

from jupyter_flink.display.job_comm import JobSubscriptions
from jupyter_flink.display.job_facts import (
    MIME_TYPE,
    KernelFacts,
    format_bytes,
    format_millis,
    format_rate,
    health_text,
    job_payload,
    state_detail,
)
from jupyter_flink.display.job_status import JobDisplays, render_text
from jupyter_flink.errors import JobError
from jupyter_flink.jobs.health import CheckpointPoint, HealthSample, JobHealth
from jupyter_flink.jobs.registry import JobRegistry, Owner, TrackedJob
from jupyter_flink.rest import SlotCounts, TaskCounts
from tests.support.waiting import wait_until

JOB = "a" * 32
OTHER = "b" * 32
KERNEL = KernelFacts(instance="k1")
HEALTH = JobHealth(
    samples=(HealthSample(1_000, None, None, 0.2, 0.0, None),
             HealthSample(4_000, 45.0, 12.5, 1.0, 0.93, 5_200)),
    checkpoints=(CheckpointPoint(1, 900, 40, 5961),), busiest="GroupAggregate[6]")


def job(job_id: str = JOB, **changes: Any) -> TrackedJob:
    changes.setdefault("state", "RUNNING")
    return TrackedJob(job_id=job_id, name="word_count", owner=Owner(None, "cell-1", "wc"),
                      start_time_ms=1, **changes)


# --- facts ---------------------------------------------------------------------------------


def test_running_says_when_tasks_start_or_wait_for_a_slot() -> None:
    assert state_detail(job(), "embedded") is None
    assert state_detail(job(tasks=TaskCounts(4, 4, 0, 0)), "embedded") is None
    assert state_detail(job(tasks=TaskCounts(4, 3, 0, 1)), "embedded") == "3/4 tasks running"
    waiting = job(tasks=TaskCounts(20, 0, 20, 20), slots=SlotCounts(8, 0))
    assert state_detail(waiting, "embedded") == (
        "waiting for a free slot: the embedded cluster has 8; raise "
        "taskmanager.numberOfTaskSlots")
    assert state_detail(waiting, "remote") == ("waiting for a free slot: all 8 slots of the "
                                               "cluster are taken")
    assert state_detail(dataclasses.replace(waiting, state="CANCELED"), "embedded") is None


def test_health_in_one_line_and_the_units() -> None:
    assert health_text(HEALTH) == ("in 45/s \u00b7 out 12/s \u00b7 busiest task 100% busy, "
                                   "93% backpressured \u00b7 watermark lag 5.2 s")
    assert health_text(JobHealth()) is None and health_text(None) is None
    assert [format_rate(x) for x in (0.25, 45.4, 1_234, 56_789, 2_500_000)] == [
        "0.2/s", "45/s", "1.2k/s", "57k/s", "2.5M/s"]
    assert [format_bytes(x) for x in (12, 5961, 3 * 1024**2)] == ["12 B", "5.8 KB", "3.0 MB"]
    assert [format_millis(x) for x in (40, 1_200, 185_000)] == ["40 ms", "1.2 s", "3m 05s"]


def test_the_payload_has_the_facts_and_the_charts_only_when_asked() -> None:
    failing = job(checkpoints_failed=2, checkpoint_failure="expired after 10 min",
                  checkpoint_failure_ms=5, tasks=TaskCounts(4, 3, 0, 1))
    bundle_json = job_payload(failing, KERNEL, HEALTH, now_ms=9, series=False)
    assert bundle_json["kernel"] == "k1" and bundle_json["observed_ms"] == 9
    assert bundle_json["state_detail"] == "3/4 tasks running"
    assert bundle_json["checkpoints"]["failure"] == "expired after 10 min"
    assert bundle_json["health"]["latest"]["in"] == 45.0
    assert "series" not in bundle_json["health"]
    comm_json = job_payload(failing, KERNEL, HEALTH, now_ms=9, series=True)
    assert comm_json["health"]["series"]["in"] == [None, 45.0]
    assert comm_json["health"]["checkpoints"] == {"t": [900], "duration_ms": [40],
                                                  "size": [5961]}
    json.dumps(comm_json)  # JSON all through
    ended = job_payload(dataclasses.replace(failing, state="CANCELED"), KERNEL, HEALTH,
                        now_ms=9, series=True)
    assert ended["health"] is None  # no charts for a job that stopped


def test_the_text_shows_health_and_the_reason_of_failed_checkpoints() -> None:
    text = render_text(job(checkpoints_completed=3, checkpoints_failed=1, last_checkpoint_ms=1,
                           checkpoint_duration_ms=40, checkpoint_size=5961,
                           checkpoint_failure="not all tasks running yet",
                           checkpoint_failure_ms=1, tasks=TaskCounts(4, 3, 0, 1)),
                       health=HEALTH)
    assert "[RUNNING: 3/4 tasks running]" in text.splitlines()[0]
    assert "  health: in 45/s" in text
    assert "3 completed, 1 failed" in text and "(took 40 ms, 5.8 KB)" in text
    assert "not all tasks running yet" in text


# --- displays and the comm ---------------------------------------------------------------


class Frontends:
    """Stand-ins for comms: what the kernel sent to each."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()

    def send_to(self, comm_id: str) -> Any:
        def send(data: dict[str, Any]) -> None:
            with self.lock:
                self.sent.setdefault(comm_id, []).append(json.loads(json.dumps(data)))
        return send


class FakeHealth:
    def __init__(self) -> None:
        self.shown: frozenset[str] = frozenset()

    def show(self, job_ids: Any) -> None:
        self.shown = frozenset(job_ids)

    def health(self, job_id: str) -> JobHealth | None:
        return HEALTH


@pytest.fixture
def setup() -> tuple[JobRegistry, JobDisplays, JobSubscriptions, Frontends, FakeHealth]:
    registry = JobRegistry()
    fake_health = FakeHealth()
    displays = JobDisplays(registry.get, kernel=KERNEL, health=fake_health.health,
                           min_update_interval_s=0.0, uptime_only_every_s=0.0)
    actions: list[tuple[str, str]] = []

    def act(action: str, job_id: str) -> str:
        actions.append((action, job_id))
        if job_id == OTHER:
            raise JobError("the savepoint failed: no space left")
        return f"{action} done"

    hub = JobSubscriptions(displays, jobs=registry.all, health=fake_health,  # type: ignore
                           act=act)
    displays.share = hub
    return registry, displays, hub, Frontends(), fake_health


def test_a_subscription_is_answered_at_once_and_unknown_jobs_are_null(setup) -> None:
    registry, _, hub, frontends, fake_health = setup
    registry.add(job())
    hub.opened("c1", frontends.send_to("c1"), {"version": 1, "jobs": [JOB, OTHER]})
    [answer] = frontends.sent["c1"]
    assert answer["kernel"] == {"instance": "k1", "cluster": "embedded"}
    assert answer["jobs"][JOB]["state"] == "RUNNING"
    assert answer["jobs"][JOB]["health"]["series"]["busy"] == [0.2, 1.0]
    assert answer["jobs"][OTHER] is None  # not this kernel's: it was restarted since
    assert fake_health.shown == {JOB}  # only jobs whose outputs are shown are sampled
    hub.closed("c1")
    assert fake_health.shown == frozenset()


def test_changes_go_to_the_frontends_that_show_the_job_or_list_all(setup) -> None:
    registry, displays, hub, frontends, _ = setup
    registry.add(job())
    hub.opened("shows", frontends.send_to("shows"), {"jobs": [JOB]})
    hub.opened("other", frontends.send_to("other"), {"jobs": [OTHER]})
    hub.opened("panel", frontends.send_to("panel"), {"list": True})
    assert list(frontends.sent["panel"][0]["jobs"]) == [JOB]  # the list at once
    displays.job_tracked(registry.get(JOB))  # type: ignore[arg-type]
    registry.update(JOB, checkpoints_completed=4)
    displays.job_changed(registry.get(JOB), urgent=False)  # type: ignore[arg-type]
    assert frontends.sent["shows"][-1]["jobs"][JOB]["checkpoints"]["completed"] == 4
    # the answer had the charts' points; changes carry the latest sample, to append
    assert "series" in frontends.sent["shows"][0]["jobs"][JOB]["health"]
    assert "series" not in frontends.sent["shows"][-1]["jobs"][JOB]["health"]
    assert frontends.sent["shows"][-1]["jobs"][JOB]["health"]["latest"]["in"] == 45.0
    assert frontends.sent["panel"][-1]["jobs"][JOB]["checkpoints"]["completed"] == 4
    assert len(frontends.sent["other"]) == 1  # its answer, nothing else


def test_a_resubmission_keeps_the_output_and_its_subscription(setup) -> None:
    registry, displays, hub, frontends, fake_health = setup
    registry.add(job(state="FAILED"))
    displays.job_tracked(registry.get(JOB))  # type: ignore[arg-type]
    hub.opened("c1", frontends.send_to("c1"), {"jobs": [JOB]})
    registry.add(job(OTHER))
    displays.job_tracked(registry.get(OTHER))  # type: ignore[arg-type]
    view = displays.view(JOB)
    assert view is not None
    view._handle = type("Handle", (), {"update": lambda self, bundle, raw: None})()
    displays.show(OTHER, takes_over=JOB)  # the output of JOB follows OTHER now
    payload = frontends.sent["c1"][-1]["jobs"][JOB]
    assert payload["job_id"] == OTHER  # keyed by what the frontend asked for
    assert fake_health.shown == {OTHER}
    hub.received("c1", {"jobs": [JOB]})
    assert frontends.sent["c1"][-1]["jobs"][JOB]["job_id"] == OTHER


def test_the_status_bundle_carries_our_mime_type_first(setup) -> None:
    registry, displays, _, _, _ = setup
    registry.add(job())
    view = displays._new_view(JOB)
    bundle = view.bundle(registry.get(JOB))  # type: ignore[arg-type]
    assert list(bundle) == [MIME_TYPE, "text/plain", "text/html"]
    assert bundle[MIME_TYPE]["job_id"] == JOB and "series" not in bundle[MIME_TYPE]["health"]


def test_live_tables_are_kept_and_sent_to_who_shows_them(setup) -> None:
    _, _, hub, frontends, _ = setup
    hub.publish_table(JOB, "<table>1</table>", final=False)
    hub.opened("c1", frontends.send_to("c1"), {"tables": [JOB, OTHER]})
    assert frontends.sent["c1"][0]["tables"][JOB]["html"] == "<table>1</table>"
    assert frontends.sent["c1"][0]["tables"][OTHER] is None
    hub.publish_table(JOB, "<table>2</table>", final=True)
    assert frontends.sent["c1"][-1]["tables"][JOB] == {
        **frontends.sent["c1"][-1]["tables"][JOB], "html": "<table>2</table>", "final": True}


def test_panel_requests_are_carried_out_and_answered(setup) -> None:
    _, _, hub, frontends, _ = setup
    hub.opened("c1", frontends.send_to("c1"), {"list": True})
    hub.received("c1", {"request": "stop", "job_id": JOB, "request_id": "r1"})
    hub.received("c1", {"request": "savepoint", "job_id": OTHER, "request_id": "r2"})
    hub.received("c1", {"request": "drop", "job_id": JOB, "request_id": "r3"})

    def replies() -> dict[str, dict[str, Any]]:
        return {m["reply"]: m for m in frontends.sent["c1"] if "reply" in m}

    wait_until(lambda: len(replies()) == 3, timeout=5, what="three replies")
    assert replies()["r1"] == {"reply": "r1", "ok": True, "message": "stop done"}
    assert replies()["r2"]["ok"] is False and "no space left" in replies()["r2"]["message"]
    assert replies()["r3"]["ok"] is False
    hub.close()


def test_a_health_sample_goes_to_the_charts_not_to_the_output_each_time(setup) -> None:
    """Health figures move every sample: the subscribed frontends get each one (charts),
    the output itself only refreshes with its facts (or now and then, as for the uptime)."""
    registry, displays, hub, frontends, fake_health = setup
    samples = [HealthSample(1_000, 1.0, 1.0, 0.1, 0.0, None)]
    fake_health.health = lambda job_id: JobHealth(tuple(samples))  # type: ignore
    displays.health = fake_health.health
    registry.add(job())
    hub.opened("c1", frontends.send_to("c1"), {"jobs": [JOB]})
    displays.job_tracked(registry.get(JOB))  # type: ignore[arg-type]
    view = displays.view(JOB)
    assert view is not None
    view.health = fake_health.health
    view.uptime_only_every_s = 60.0
    updates: list[dict[str, Any]] = []
    view._handle = type("Handle", (), {"update": lambda self, bundle, raw: updates.append(
        bundle)})()
    view.update(force=True)
    sent, shown = len(frontends.sent["c1"]), len(updates)
    samples.append(HealthSample(4_000, 2.0, 2.0, 0.2, 0.0, None))
    displays.sampled(JOB)
    assert len(frontends.sent["c1"]) == sent + 1 and len(updates) == shown
    assert frontends.sent["c1"][-1]["jobs"][JOB]["health"]["latest"]["in"] == 2.0
    displays.sampled(JOB)  # the same sample again: nothing to send
    assert len(frontends.sent["c1"]) == sent + 1
    registry.update(JOB, checkpoints_completed=5)
    displays.job_changed(registry.get(JOB), urgent=False)  # type: ignore[arg-type]
    assert len(updates) == shown + 1 and "in 2.0/s" in updates[-1]["text/plain"]


def test_a_frontend_that_stops_renewing_is_dropped(setup, monkeypatch) -> None:
    """A reloaded page does not always close its comm: without renewals its subscription
    lapses, its health sampling stops and nothing more is sent to it."""
    from jupyter_flink.display import job_comm

    registry, displays, hub, frontends, fake_health = setup
    registry.add(job())
    displays.job_tracked(registry.get(JOB))  # type: ignore[arg-type]
    now = [1000.0]
    monkeypatch.setattr(job_comm.time, "monotonic", lambda: now[0])
    hub.opened("gone", frontends.send_to("gone"), {"jobs": [JOB]})
    hub.opened("here", frontends.send_to("here"), {"jobs": [JOB]})
    assert fake_health.shown == {JOB}
    for _ in range(6):  # the page that stays renews every 30 s; the other is gone
        now[0] += job_comm.RENEW_EVERY_S
        hub.received("here", {"version": 1, "alive": True})
    registry.update(JOB, checkpoints_completed=7)
    displays.job_changed(registry.get(JOB), urgent=True)  # type: ignore[arg-type]
    assert frontends.sent["here"][-1]["jobs"][JOB]["checkpoints"]["completed"] == 7
    assert len(frontends.sent["here"]) == 2, "a renewal is not answered"
    assert len(frontends.sent["gone"]) == 1  # its answer only: dropped before the change
    assert fake_health.shown == {JOB}
    now[0] += job_comm.LEASE_S + 1  # the last page goes too: nothing is sampled any more
    displays.job_changed(registry.get(JOB), urgent=True)  # type: ignore[arg-type]
    assert fake_health.shown == frozenset()
    assert not hub.interested([JOB])


def test_a_running_job_is_up_an_ended_one_ran() -> None:
    running = render_text(job()).splitlines()[0]
    ended = render_text(dataclasses.replace(job(state="CANCELED"), start_time_ms=1_000,
                                            end_time_ms=8_000)).splitlines()[0]
    assert " up " in running and " ran 7s" in ended, (running, ended)
