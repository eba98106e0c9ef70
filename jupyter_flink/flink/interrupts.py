"""Hold a kernel interrupt until a job submission returns from the JVM.

An interrupt (SIGINT) cuts py4j's socket read, but the JVM goes on with the call: the job
is submitted after the cell gave up on it, Flink's JobListener reports it too late for the
cell to cancel it, and it runs on unowned. Holding the interrupt until the call returns
lets the cell see its job and cancel it. A second interrupt goes through at once, so a
submission that hangs (an unreachable cluster) can still be broken off.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def interrupt_held() -> Iterator[None]:
    """Run the body with SIGINT held; raise KeyboardInterrupt after it if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be changed on the main thread
        return
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        # None means a handler not installed from Python; the default is the closest.
        signal.signal(signal.SIGINT,
                      previous if previous is not None else signal.default_int_handler)
    if received:
        raise KeyboardInterrupt
