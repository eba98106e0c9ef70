"""Whether a starting job waits for task slots that the cluster does not have free."""

from __future__ import annotations

import time
from typing import Any

from ..errors import RestError
from ..rest import FlinkRestClient, slot_counts

__all__ = ["SLOT_WAIT_S", "SlotWait"]

SLOT_WAIT_S = 2.0  # tasks waiting for a slot this long, on a cluster with none free: say so


class SlotWait:
    """Whether a starting job's tasks wait for slots the cluster does not have free.

    Flink's default scheduler keeps such tasks SCHEDULED until a slot frees up (or
    ``slot.request.timeout``, 5 min, fails the job): the cell need not wait that long.
    """

    def __init__(self) -> None:
        self.since: float | None = None
        self.asked_at = 0.0

    def hopeless(self, vertices: list[dict[str, Any]], rest: FlinkRestClient) -> bool:
        now = time.monotonic()
        if not any((vertex.get("tasks") or {}).get("SCHEDULED") for vertex in vertices):
            self.since = None
            return False
        self.since = self.since or now
        if now - self.since < SLOT_WAIT_S or now - self.asked_at < 1.0:
            return False
        self.asked_at = now
        try:
            return slot_counts(rest.overview()).available == 0
        except RestError:
            return False
