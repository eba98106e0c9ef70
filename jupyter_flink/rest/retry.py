"""Retry policies for the HTTP layer (sparkmagic's ``linearretrypolicy.py``, for Flink).

A policy only decides; :class:`~jupyter_flink.rest.http.HttpClient` asks it after a failed
*idempotent* request (GET) and never for POST or PATCH, which Flink does not deduplicate
unless the caller passes its own trigger id.
"""

from __future__ import annotations

from typing import Protocol

# What a restarting JobManager or a proxy in front of it answers while it is briefly away.
RETRYABLE_STATUS_CODES = frozenset({502, 503, 504})


class RetryPolicy(Protocol):
    """Whether to try a failed GET again, and how long to wait first."""

    def should_retry(self, status_code: int | None, attempt: int) -> bool:
        """``status_code`` is None for a connection error or timeout; ``attempt`` counts from 1."""
        ...

    def delay(self, attempt: int) -> float:
        """Seconds to wait before the attempt after ``attempt``."""
        ...


class LinearRetryPolicy:
    """Up to ``attempts`` tries in all, ``delay`` seconds apart (a constant pause, as in
    sparkmagic), on connection errors, timeouts and 502/503/504."""

    def __init__(self, attempts: int = 3, delay: float = 0.2):
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        if delay < 0:
            raise ValueError(f"delay must not be negative, not {delay}")
        self.attempts = attempts
        self._delay = delay

    def should_retry(self, status_code: int | None, attempt: int) -> bool:
        retryable = status_code is None or status_code in RETRYABLE_STATUS_CODES
        return retryable and attempt < self.attempts

    def delay(self, attempt: int) -> float:
        return self._delay

    def __repr__(self) -> str:
        return f"LinearRetryPolicy(attempts={self.attempts}, delay={self._delay})"


class NoRetry:
    """Never retry: for callers with their own backoff, such as the job poller."""

    def should_retry(self, status_code: int | None, attempt: int) -> bool:
        return False

    def delay(self, attempt: int) -> float:
        return 0.0

    def __repr__(self) -> str:
        return "NoRetry()"
