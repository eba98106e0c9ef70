"""Live streaming SELECT results, through a real flink kernel on real Flink.

Deterministic inputs come from datagen sequences, so a live (streaming) run and a batch run
of the same bounded query must give the same table; unbounded inputs are slow random
datagen streams. One kernel serves the whole module; no checkpointing is configured, so a
failing query fails at once instead of restarting.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import flink
from tests.support.kernel import KernelDriver, Reply, running_kernel

pytestmark = pytest.mark.flink

TABLES = """%%flink.ssql
CREATE TABLE IF NOT EXISTS seq_20k (id BIGINT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '10000', 'number-of-rows' = '20000',
  'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '20000');
CREATE TABLE IF NOT EXISTS seq_40 (id BIGINT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '40', 'number-of-rows' = '40',
  'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '40');
CREATE TABLE IF NOT EXISTS seq_slow (id BIGINT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '10',
  'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '100');
CREATE TABLE IF NOT EXISTS events (k INT, v BIGINT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '50',
  'fields.k.min' = '0', 'fields.k.max' = '9');
CREATE TABLE IF NOT EXISTS events_sink (k INT, c BIGINT) WITH ('connector' = 'blackhole');
"""

# More than one refresh per second keeps the tests short; the default is Zeppelin's 3 s.
FAST = "refreshInterval=300"


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("live")
    path = root / "live.ipynb"
    path.write_text("{}")
    return path


@pytest.fixture(scope="module")
def kernel(notebook: Path) -> Iterator[KernelDriver]:
    with running_kernel(env={"JPY_SESSION_NAME": str(notebook)},
                        cwd=str(notebook.parent)) as driver:
        driver.execute(TABLES)
        yield driver


@pytest.fixture(scope="module")
def background_job(kernel: KernelDriver) -> dict[str, str]:
    """A streaming INSERT that must keep running whatever the live tables do."""
    reply = kernel.execute("%%flink.ssql(jobName=background)\n"
                           "INSERT INTO events_sink SELECT k, COUNT(*) FROM events GROUP BY k",
                           cell_id="background-cell")
    url = flink.rest_url_from("\n".join(reply.data()))
    job = flink.job_by_name(url, "background")
    assert job is not None and job["state"] == "RUNNING"
    return {"url": url, "job_id": job["jid"]}


# ---------------------------------------------------------------------------- helpers


def live_display_id(reply: Reply) -> str:
    """The display id of the live table a cell created."""
    for message in reply.messages:
        content = message["content"]
        if message["msg_type"] == "display_data" and \
                "jupyter-flink-live" in content["data"].get("text/html", ""):
            return content["transient"]["display_id"]
    raise AssertionError(f"no live table in the cell's output: {reply.data()}")


def shown(kernel: KernelDriver, reply: Reply, display_id: str, mime: str = "text/plain") -> str:
    """What the live table shows now."""
    kernel.pump()
    updates = kernel.display_updates(display_id)
    if updates:
        return updates[-1][mime]
    return next(m["content"]["data"][mime] for m in reply.messages
                if m["msg_type"] == "display_data"
                and m["content"].get("transient", {}).get("display_id") == display_id)


def wait_final(kernel: KernelDriver, reply: Reply, display_id: str, *, contains: str = "",
               timeout: float = 120) -> str:
    """Wait until the table shows its final state (and ``contains``); returns its text."""
    def final() -> str | None:
        text = shown(kernel, reply, display_id)
        return text if "final" in text.splitlines()[0] and contains in text else None
    return kernel.wait_for(final, timeout=timeout, what=f"the final table with {contains!r}")


def live_select(kernel: KernelDriver, header: str, sql: str, **kwargs: Any
                ) -> tuple[Reply, str]:
    reply = kernel.execute(f"%%flink.ssql({header})\n{sql}", **kwargs)
    return reply, live_display_id(reply)


def changes_received(text: str) -> int:
    match = re.search(r"([\d,]+) changes received", text)
    assert match, text
    return int(match.group(1).replace(",", ""))


def _short_error(reply: Reply) -> str:
    assert reply.status == "error", reply.stdout
    assert reply.error is not None and reply.error["ename"] == "UsageError", reply.error_text
    assert "\tat org.apache" not in reply.error_text
    return reply.error["evalue"]


# ---------------------------------------------------------------------------- modes


def test_update_mode_ends_with_the_batch_result(kernel: KernelDriver) -> None:
    query = ("SELECT MOD(id, 50) AS k, COUNT(*) AS c, SUM(id) AS s FROM seq_20k "
             "GROUP BY MOD(id, 50)")
    reply, display_id = live_select(kernel, f"type=update, resultName=live_counts, {FAST}",
                                    query)
    text = wait_final(kernel, reply, display_id, contains="finished")
    assert "50 rows" in text
    # every source row after the first of its key retracted the key's previous row
    assert changes_received(text) == 2 * 20_000 - 50
    kernel.execute(f"%%flink.bsql(resultName=batch_counts)\n{query}")
    check = kernel.execute(
        "import pandas as pd\n"
        "a = live_counts.sort_values('k').reset_index(drop=True)\n"
        "b = batch_counts.sort_values('k').reset_index(drop=True)\n"
        "pd.testing.assert_frame_equal(a, b, check_dtype=False)\n"
        "print(len(a), int(a.c.sum()), int(a.s.sum()))")
    assert check.stdout.split() == ["50", "20000", str(20_000 * 20_001 // 2)]


def test_update_mode_applies_deletes(kernel: KernelDriver) -> None:
    # Each key reaches c=4 and then leaves the filtered result: the live table ends empty,
    # as the batch result is.
    query = ("SELECT k, c FROM (SELECT MOD(id, 10) AS k, COUNT(*) AS c FROM seq_40 "
             "GROUP BY MOD(id, 10)) WHERE c < 4")
    reply, display_id = live_select(kernel, f"resultName=filtered, {FAST}", query)
    text = wait_final(kernel, reply, display_id, contains="finished")
    assert "0 rows" in text
    assert kernel.execute("print(len(filtered))").stdout.strip() == "0"
    batch = kernel.execute(f"%%flink.bsql(resultName=filtered_batch)\n{query}\n")
    assert batch.status == "ok"
    assert kernel.execute("print(len(filtered_batch))").stdout.strip() == "0"


def test_update_mode_keeps_duplicate_rows(kernel: KernelDriver) -> None:
    reply, display_id = live_select(kernel, f"resultName=parities, {FAST}",
                                    "SELECT MOD(id, 2) AS parity FROM seq_40")
    wait_final(kernel, reply, display_id, contains="finished")
    out = kernel.execute("print(len(parities), sorted(parities.parity.value_counts().items()))")
    assert out.stdout.strip() == "40 [(0, 20), (1, 20)]"


def test_batch_selects_still_work_after_live_tables(kernel: KernelDriver) -> None:
    # PyFlink's to_pandas checks Arrow on every call; the live tables' Arrow must not have
    # initialized it in a way that breaks the second and later calls.
    reply, display_id = live_select(kernel, FAST, "SELECT id FROM seq_40")
    wait_final(kernel, reply, display_id, contains="finished")
    for _ in range(2):
        reply = kernel.execute("%%flink.bsql\nSELECT COUNT(*) AS n FROM seq_40")
        assert re.search(r"\b40\b", reply.result or ""), reply.result


def test_bounded_select_ends_with_the_full_result(kernel: KernelDriver) -> None:
    reply, display_id = live_select(kernel, f"resultName=doubled, {FAST}",
                                    "SELECT id, id * 2 AS twice FROM seq_40")
    text = wait_final(kernel, reply, display_id, contains="finished")
    assert "40 rows" in text and "read all of its input" in text
    out = kernel.execute("print(sorted(doubled.id) == list(range(1, 41)), "
                         "bool((doubled.twice == 2 * doubled.id).all()))").stdout
    assert out.split() == ["True", "True"]


def test_wait_blocks_until_the_final_result(kernel: KernelDriver) -> None:
    reply = kernel.execute(f"%%flink.ssql(wait=true, type=single, resultName=total, {FAST})\n"
                           "SELECT COUNT(*) AS n FROM seq_40")
    assert "final" in shown(kernel, reply, live_display_id(reply)).splitlines()[0]
    assert kernel.execute("print(int(total.n[0]))").stdout.strip() == "40"


def test_append_mode_keeps_the_newest_rows(kernel: KernelDriver) -> None:
    reply, display_id = live_select(
        kernel, f"type=append, maxRows=5, parallelism=1, resultName=newest, {FAST}",
        "SELECT id FROM seq_40")
    text = wait_final(kernel, reply, display_id, contains="finished")
    assert "35 older rows were dropped" in text and "maxRows=5" in text
    assert kernel.execute("print(list(newest.id))").stdout.strip() == "[36, 37, 38, 39, 40]"


def test_append_mode_default_limit_is_flink_max_rows(kernel: KernelDriver) -> None:
    kernel.execute("%%flink.conf\nflink.maxRows 4")
    try:
        reply, display_id = live_select(kernel, f"type=append, parallelism=1, {FAST}",
                                        "SELECT id FROM seq_40")
        text = wait_final(kernel, reply, display_id, contains="finished")
        assert "36 older rows were dropped" in text and "maxRows=4" in text
    finally:
        kernel.execute("%flink.conf --reset")


def test_single_mode_renders_the_template(kernel: KernelDriver) -> None:
    reply, display_id = live_select(
        kernel, f"type=single, template=<h1>Total {{0}} events</h1>, {FAST}",
        "SELECT COUNT(*) AS total FROM seq_20k")
    wait_final(kernel, reply, display_id, contains="finished")
    html = shown(kernel, reply, display_id, "text/html")
    assert "<h1>Total 20000 events</h1>" in html, html


# ---------------------------------------------------------------------------- live behaviour


def test_cell_returns_while_the_table_keeps_updating(kernel: KernelDriver) -> None:
    reply, display_id = live_select(kernel, f"jobName=live_counts_stream, {FAST}",
                                    "SELECT k, COUNT(*) AS c FROM events GROUP BY k")
    after_reply = len(kernel.iopub)
    assert kernel.execute("6 * 7").result == "42"  # the kernel is free

    def later_updates() -> list[str]:
        return [m["content"]["data"]["text/plain"] for m in kernel.iopub[after_reply:]
                if m["msg_type"] == "update_display_data"
                and m["content"]["transient"].get("display_id") == display_id]

    updates = kernel.wait_for(lambda: len(later_updates()) >= 3 and later_updates(),
                              timeout=60, what="table updates after the cell returned")
    assert changes_received(updates[-1]) > changes_received(updates[0])
    assert "[RUNNING]" in updates[-1]
    kernel.execute("%flink.cancel live_counts_stream")
    text = wait_final(kernel, reply, display_id, contains="cancelled")
    assert "10 rows" in text


def test_two_live_selects_update_side_by_side(kernel: KernelDriver) -> None:
    first, first_id = live_select(kernel, f"jobName=side_a, {FAST}",
                                  "SELECT k, COUNT(*) AS c FROM events GROUP BY k")
    second, second_id = live_select(kernel, f"jobName=side_b, type=single, {FAST}",
                                    "SELECT COUNT(*) AS n FROM events")
    mark = len(kernel.iopub)

    def updated(display_id: str) -> int:
        return sum(1 for m in kernel.iopub[mark:] if m["msg_type"] == "update_display_data"
                   and m["content"]["transient"].get("display_id") == display_id)

    kernel.wait_for(lambda: updated(first_id) >= 2 and updated(second_id) >= 2, timeout=60,
                    what="both live tables to update after both cells returned")
    kernel.execute("%flink.cancel side_a\n%flink.cancel side_b")
    wait_final(kernel, first, first_id, contains="cancelled")
    wait_final(kernel, second, second_id, contains="cancelled")


def test_cancel_with_savepoint_records_it(kernel: KernelDriver, notebook: Path,
                                          tmp_path: Path) -> None:
    cell = uuid.uuid4().hex
    reply, display_id = live_select(
        kernel, f"jobName=live_sp, savepointDir=file://{tmp_path}/sp, {FAST}",
        "SELECT k, COUNT(*) AS c FROM events GROUP BY k", cell_id=cell)
    kernel.wait_for(lambda: changes_received(shown(kernel, reply, display_id)) > 0,
                    timeout=60, what="the first rows")
    out = kernel.execute("%flink.cancel live_sp").stdout
    match = re.search(r"stopped with savepoint (\S+?)\.?$", out.strip(), re.M)
    assert match, out
    savepoint = match.group(1)
    assert (flink.local_path(savepoint) / "_metadata").is_file()
    journal = json.loads((notebook.parent / f".{notebook.name}.flink-journal.json").read_text())
    assert journal["cells"][cell]["savepoint_path"] == savepoint
    kernel.wait_for(lambda: any(u["flink"].get("savepoint_path") == savepoint
                                for u in kernel.metadata_updates(cell)),
                    timeout=30, what="the savepoint path in a metadata comm message")
    text = wait_final(kernel, reply, display_id, contains=savepoint)
    assert "[FINISHED]" in text


# ---------------------------------------------------------------------------- bad input


def test_more_rows_than_max_rows_says_so(kernel: KernelDriver) -> None:
    reply, display_id = live_select(kernel, f"maxRows=10, resultName=capped, {FAST}",
                                    "SELECT id FROM seq_40")
    text = wait_final(kernel, reply, display_id, contains="finished")
    assert "30 result rows were not kept" in text and "maxRows=10" in text
    assert "10 rows" in text
    assert kernel.execute("print(len(capped))").stdout.strip() == "10"


def test_query_failing_after_some_rows(kernel: KernelDriver,
                                       background_job: dict[str, str]) -> None:
    reply, display_id = live_select(kernel, f"resultName=before_failure, parallelism=1, {FAST}",
                                    "SELECT id, 100 / (60 - id) AS q FROM seq_slow")
    text = wait_final(kernel, reply, display_id, contains="[FAILED]", timeout=180)
    assert "The query failed after" in text
    assert "ArithmeticException" in text and "by zero" in text, text
    assert "\tat " not in text  # no Java stack trace in the cell
    rows = int(kernel.execute("print(len(before_failure))").stdout)
    assert 0 < rows <= 59  # the rows before id=60, as far as they reached the client
    assert kernel.execute("1 + 1").result == "2"
    assert flink.get(background_job["url"], f"/jobs/{background_job['job_id']}")[
        "state"] == "RUNNING"


def test_type_the_table_cannot_show(kernel: KernelDriver,
                                    background_job: dict[str, str]) -> None:
    before = len(flink.jobs(background_job["url"]))
    message = _short_error(kernel.execute(
        "%%flink.ssql\nSELECT k, COLLECT(v) AS vs FROM events GROUP BY k", allow_error=True))
    assert "vs" in message and "MULTISET" in message and "CAST(vs AS STRING)" in message
    assert len(flink.jobs(background_job["url"])) == before  # nothing was submitted
    # and the suggestion works
    reply, display_id = live_select(
        kernel, f"jobName=multiset_cast, {FAST}",
        "SELECT k, CAST(COLLECT(v) AS STRING) AS vs FROM events GROUP BY k")
    kernel.wait_for(lambda: changes_received(shown(kernel, reply, display_id)) > 0,
                    timeout=60, what="rows of the CAST query")
    kernel.execute("%flink.cancel multiset_cast")
