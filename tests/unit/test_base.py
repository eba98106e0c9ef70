"""The helpers below every stage: atomic files, ISO times, Java causes, durations, the
notebook path, parse-error shortening."""

from __future__ import annotations

import os
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from jupyter_flink import files
from jupyter_flink.execution.statement_errors import shorten_expected
from jupyter_flink.kernel import cell
from jupyter_flink.parsing.durations import parse_duration
from jupyter_flink.recording.record import newest_record
from jupyter_flink.times import EPOCH, parse_iso
from jupyter_flink.traces import best_cause, summarize_java_trace


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    target = tmp_path / "n.ipynb"
    target.write_text("old")
    target.chmod(0o640)
    files.atomic_write_text(target, "new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640
    fresh = files.atomic_write_text(tmp_path / "private.json", "{}", new_file_mode=0o600)
    assert fresh.stat().st_mode & 0o777 == 0o600


def test_a_failed_atomic_write_leaves_the_file_and_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "journal.json"
    target.write_text("kept")

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        files.atomic_write_text(target, "lost")
    assert target.read_text() == "kept" and [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize(("text", "utc_hour"), [
    ("2026-11-29T10:00:00+01:00", 9), ("2026-11-29T09:30:00Z", 9), ("2026-11-29T09:30:00", 9),
    ("2026-11-29T09:30:00.123+00:00", 9)])
def test_iso_times_are_read_with_their_offset(text: str, utc_hour: int) -> None:
    assert parse_iso(text).astimezone(timezone.utc).hour == utc_hour


@pytest.mark.parametrize("junk", [None, "", "yesterday", 17, ["2026"]])
def test_unreadable_times_are_the_oldest(junk: object) -> None:
    assert parse_iso(junk) == EPOCH


def test_the_newest_record_is_chosen_by_time_not_text() -> None:
    older = {"updated": "2026-11-29T10:00:00+01:00", "p": "older"}  # 09:00 UTC
    newer = {"updated": "2026-11-29T09:30:00+00:00", "p": "newer"}
    chosen = newest_record(("a", older), ("b", newer))
    assert chosen is not None and chosen[1]["p"] == "newer"


def test_best_cause_is_the_deepest_with_a_message() -> None:
    assert best_cause([("org.apache.flink.table.api.TableException", "Failed to execute sql"),
                       ("org.apache.calcite.runtime.CalciteContextException", None),
                       ("org.apache.flink.table.api.ValidationException", "Object 'x' not found"),
                       ("java.lang.NullPointerException", "null")]) == \
        "ValidationException: Object 'x' not found"
    assert best_cause([("java.lang.NullPointerException", None)]) == "NullPointerException"
    trace = ("org.x.Outer: wrapped\n\tat a.b(C.java:1)\nCaused by: java.io.IOException: disk full"
             "\n\tat d.e(F.java:2)")
    assert summarize_java_trace(trace) == "IOException: disk full"


def test_one_duration_grammar_and_the_bare_number_rule() -> None:
    assert parse_duration("1m30s", bare_unit="ms") == timedelta(seconds=90)
    assert parse_duration("1.5h", bare_unit="s") == timedelta(minutes=90)
    assert parse_duration("250", bare_unit="ms") == timedelta(milliseconds=250)  # Flink's rule
    assert parse_duration("30", bare_unit="s") == timedelta(seconds=30)  # the command line's
    with pytest.raises(ValueError, match=r"e\.g\. 30s"):
        parse_duration("-3s", bare_unit="s")


def test_the_notebook_path_is_captured_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", "work/captured.ipynb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cell, "_resolved", {})
    first = cell.notebook_path_from_env()
    monkeypatch.chdir(tmp_path.parent)  # user code: os.chdir("..")
    assert cell.notebook_path_from_env() == first == str(tmp_path / "captured.ipynb")


def test_parse_errors_list_a_few_expected_tokens() -> None:
    message = ('SqlParseException: Encountered "FORM" at line 1, column 10.\nWas expecting one '
               'of:\n    <EOF> \n    "EXCEPT" ...\n    "FETCH" ...\n    "FROM" ...\n'
               '    "GROUP" ...\n    "HAVING" ...\n    "LIMIT" ...\n    "ORDER" ...\n')
    short = shorten_expected(message)
    assert short.startswith('SqlParseException: Encountered "FORM" at line 1, column 10.')
    assert '"FROM"' in short and "(and 3 more)" in short and "ORDER" not in short
    reserved = shorten_expected('ParseException: Encountered "out" at line 1, column 14.\n'
                                'Was expecting one of:\n    <QUOTED_IDENTIFIER> ...\n')
    assert "it is a reserved word: write it `out`" in reserved
    assert shorten_expected("plain message") == "plain message"


def test_a_cluster_that_refuses_the_kernel_is_not_a_statement_error() -> None:
    from jupyter_flink.errors import RestError
    from jupyter_flink.execution.statement_errors import statement_error
    from jupyter_flink.flink.cluster import cluster_refusal
    from jupyter_flink.parsing.sql import split_statements

    [statement] = split_statements("INSERT INTO sink SELECT * FROM src")
    refused = statement_error(statement, RuntimeError(
        "org.apache.flink.runtime.rest.util.RestClientException: [missing the gate header]"))
    assert "the Flink cluster refused the job of `INSERT INTO sink" in refused.message
    assert "[missing the gate header]" in refused.message
    assert "The statement is fine" in (refused.fix or "")
    wrong = statement_error(statement, RuntimeError(
        "org.apache.flink.table.api.ValidationException: Object 'src' not found"))
    assert "Flink rejected `INSERT" in wrong.message and wrong.fix.startswith("Fix the statement")

    refusal = cluster_refusal("https://flink:8081", RestError("GET /config: 403", status=403))
    assert refusal is not None and "answers but refuses this kernel (HTTP 403" in refusal.message
    assert "flink.execution.remote.headers" in (refusal.fix or "")
    assert cluster_refusal("https://flink:8081", RestError("no route", status=None)) is None
    assert cluster_refusal("https://flink:8081", RestError("GET /config: 500", status=500)) is None
