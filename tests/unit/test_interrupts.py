"""interrupt_held: an interrupt during a JVM call is delivered after the call, not in it."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from jupyter_flink.flink.interrupts import interrupt_held


def _interrupt_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_one_interrupt_is_held_until_the_body_returns() -> None:
    finished = []
    with pytest.raises(KeyboardInterrupt), interrupt_held():
        _interrupt_self()
        finished.append(True)  # the body is not cut off
    assert finished == [True]


def test_a_second_interrupt_breaks_through() -> None:
    reached = []
    with pytest.raises(KeyboardInterrupt), interrupt_held():
        _interrupt_self()
        _interrupt_self()
        reached.append(True)
    assert reached == []


def test_no_interrupt_no_error_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with interrupt_held():
        pass
    assert signal.getsignal(signal.SIGINT) is before


def test_body_errors_pass_through_and_restore_the_handler() -> None:
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(ValueError), interrupt_held():
        raise ValueError("from the JVM")
    assert signal.getsignal(signal.SIGINT) is before


def test_off_the_main_thread_it_is_a_no_op() -> None:
    outcome = []

    def body() -> None:
        with interrupt_held():
            outcome.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert outcome == [signal.getsignal(signal.SIGINT)]
