"""The magics through IPython's real dispatcher, where no JVM is needed: argument handling,
usage errors, and the Flink settings a cell header makes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from jupyter_flink.execution.preparation import Preparation
from jupyter_flink.magics import FlinkMagics
from jupyter_flink.parsing.header import parse_header
from jupyter_flink.parsing.properties import ParagraphProperties

UNCLAIMED = "execution.state-recovery.ignore-unclaimed-state"




def magics(shell: InteractiveShell) -> FlinkMagics:
    return next(m for m in shell.magics_manager.registry.values()
                if isinstance(m, FlinkMagics))


@pytest.mark.parametrize(("line", "says"), [
    ("flink.checkpoints --all", "No job of this kernel is running"),
    ("flink.cancel --all", "No job of this kernel is running"),
    ("flink.cancel", r"Usage: %flink\.cancel JOB_NAME_OR_ID \(or --all\)"),
    ("flink.stop some_job --all", "takes a job or --all, not both"),
    ("flink.stop some_job --dir", "expected one argument"),
    ("flink.conf --bogus", "Usage: %flink.conf"),
])
def test_job_magics_answer_bad_lines_with_usage(shell: InteractiveShell, line: str,
                                                says: str) -> None:
    name, _, rest = line.partition(" ")
    with pytest.raises(UsageError, match=says):
        shell.run_line_magic(name, rest)


def test_an_unknown_job_is_named(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match=r"No job of this kernel is called .*'nightly'"):
        shell.run_line_magic("flink.savepoint", "nightly --dir file:///tmp/sp")


def test_settings_are_traits_that_reach_the_service() -> None:
    ip = InteractiveShell.instance()
    try:
        ip.config.FlinkMagics.poll_interval = 250
        ip.config.FlinkMagics.startup_timeout = 30.0
        ip.config.FlinkMagics.warm_start = False
        ip.extension_manager.load_extension("jupyter_flink")
        service = magics(ip).service
        assert service.session.interpreter_setting("flink.job.check_interval") == "250"
        assert service.tracker.startup_timeout_s == 30.0
        assert service.settings.warm_start is False
        ip.extension_manager.unload_extension("jupyter_flink")
    finally:
        InteractiveShell.clear_instance()


def overrides(header: str) -> dict[str, str]:
    props = ParagraphProperties.from_header(parse_header(header), kind="ssql")
    preparation = Preparation(SimpleNamespace(options=None), None)  # type: ignore[arg-type]
    return preparation.job_overrides(props)


def test_allow_non_restored_state_is_set_only_when_the_cell_says_so() -> None:
    # Unset in the header: what %%flink.conf configured applies (no per-job key).
    assert UNCLAIMED not in overrides("(jobName=a)")
    assert overrides("(allowNonRestoredState=true)")[UNCLAIMED] == "true"
    assert overrides("(allowNonRestoredState=false)")[UNCLAIMED] == "false"


def test_header_properties_become_job_settings() -> None:
    settings: dict[str, Any] = overrides("(jobName=wc, parallelism=2, maxParallelism=10)")
    assert settings == {"pipeline.name": "wc", "parallelism.default": "2",
                        "pipeline.max-parallelism": "10"}


def test_outside_a_jupyter_kernel_nothing_warms_up(shell: InteractiveShell) -> None:
    """A terminal IPython or a test shell has no kernel: loading the extension starts no
    JVM in the background (a Jupyter kernel's shell does, FlinkMagics.warm_start)."""
    service = magics(shell).service
    assert service.settings.warm_start is True
    assert not service.session.warm.in_flight and not service.session.started
