"""A Flink job's output in JupyterLab: live with health charts, still live after a reload and
after the notebook was closed and opened again, final after %flink.cancel, and honest after
a kernel restart; the jobs panel stops a job with a savepoint; metadata updates do not leave
a clean notebook with unsaved changes.

Real parts: the flink kernel with its embedded Flink, JupyterLab, Debian's Chromium.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import nbformat
import pytest

from tests.support.waiting import wait_until

NOTEBOOK = "work/jobs.ipynb"
CONF = "%%flink.conf\nexecution.checkpointing.interval 2 s"
JOB = """%%flink.ssql(jobName={name}{extra})
CREATE TABLE IF NOT EXISTS src_{name} (k INT, ts AS LOCALTIMESTAMP,
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) WITH ('connector' = 'datagen',
  'rows-per-second' = '20', 'fields.k.min' = '0', 'fields.k.max' = '9');
CREATE TABLE IF NOT EXISTS sink_{name} (k INT, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO sink_{name} SELECT k, COUNT(*) FROM src_{name} GROUP BY k"""
START_TIMEOUT = 240  # the first Flink cell starts the JVM, on a machine shared with others


def write_notebook(server, *cells: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "flink", "display_name": "Flink (PyFlink)",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    server.write_notebook(NOTEBOOK, notebook)


def output(lab, index: int) -> Any:
    return lab._cell(index).locator(".jf-job")


def shown(lab, index: int) -> dict[str, Any]:
    """What the job output of cell ``index`` shows now (None values while it has none)."""
    return dict(lab.page.evaluate(
        """node => {
            if (!node) return {};
            const facts = {};
            node.querySelectorAll('.jf-facts tr').forEach(row => {
                facts[row.querySelector('th').textContent] = row.querySelector('td').textContent;
            });
            const link = node.querySelector('a.jf-ui');
            return {
                state: node.dataset.state, live: node.dataset.live === 'true',
                banner: (node.querySelector('.jf-banner') || {}).textContent || null,
                charts: Array.from(node.querySelectorAll('.jf-chart-label'))
                    .map(label => label.textContent),
                drawn: Array.from(node.querySelectorAll('.jf-chart'))
                    .filter(chart => chart.querySelector('svg path'))
                    .map(chart => chart.querySelector('.jf-chart-label').textContent),
                link: link ? link.href : null, facts,
            };
        }""",
        output(lab, index).element_handle(timeout=60_000)))


def completed(view: dict[str, Any]) -> int:
    match = re.match(r"(\d+) completed", view.get("facts", {}).get("checkpoints", ""))
    return int(match.group(1)) if match else -1


def wait_for_checkpoints_beyond(lab, index: int, count: int, what: str) -> dict[str, Any]:
    return wait_until(lambda: (view := shown(lab, index)) and view["live"] and
                      completed(view) > count and view, timeout=60, what=what)


def kernel_id(server) -> str:
    [session] = [s for s in server.api("GET", "sessions").json()
                 if s["path"] == NOTEBOOK]
    return str(session["kernel"]["id"])


@pytest.mark.browser
@pytest.mark.flink
def test_a_jobs_output_stays_live_and_the_notebook_stays_saved(lab, jupyter_server):
    write_notebook(jupyter_server, CONF, JOB.format(name="live_counts", extra=""),
                   "%flink.cancel live_counts")
    lab.open_notebook(NOTEBOOK, timeout=120)
    lab.run_cell(0, timeout=START_TIMEOUT)
    lab.run_cell(1, timeout=START_TIMEOUT)

    # 1. Live, with its charts and a link to the job's page in Flink's UI through Jupyter
    # (subscribed as the job started, before any sample: the charts grow from the pushes)
    view = wait_until(lambda: (v := shown(lab, 1)) and v["live"] and v["state"] == "RUNNING"
                      and {"records / s", "busiest task", "watermark lag",
                           "checkpoint duration"} <= set(v["drawn"])
                      and v, timeout=90, what="the running job with its charts drawn")
    job_id = lab.cell_metadata(1)["flink"]["job_id"]
    assert view["link"] == (f"{jupyter_server.url}/jupyter-flink/ui/{kernel_id(jupyter_server)}"
                            f"/#/job/running/{job_id}/overview")
    open_flink_ui(lab, view["link"], "live_counts")
    view = wait_for_checkpoints_beyond(lab, 1, completed(view), "a checkpoint more")
    lab.screenshot("1-running")

    # 2. Saved once, the notebook stays saved: checkpoints recorded since reach the file,
    # and neither they nor the output's refreshes leave unsaved changes behind.
    lab.save()
    at_save = lab.cell_metadata(1)["flink"]["latest_checkpoint_path"]

    def saved_quietly() -> bool:
        lab.wait_for_saves()
        live = lab.cell_metadata(1)["flink"]["latest_checkpoint_path"]
        on_disk = jupyter_server.read_notebook(NOTEBOOK)["cells"][1]["metadata"]["flink"]
        return live != at_save and on_disk["latest_checkpoint_path"] == live and \
            not lab.is_dirty()

    wait_until(saved_quietly, timeout=60, what="a newer checkpoint saved without asking")
    lab.screenshot("2-saved-quietly")

    # 3. After a reload the output picks up the live state
    before = completed(shown(lab, 1))
    lab.reload()
    wait_for_checkpoints_beyond(lab, 1, before, "checkpoints counted on after the reload")
    lab.screenshot("3-after-reload")

    # ... and in a second tab of the browser, at the same time; one of them saves the
    # updates, so neither finds the file changed by the other ("File Changed" dialog)
    tab = lab.another_tab()
    try:
        tab.open_notebook(NOTEBOOK, timeout=120)
        wait_for_checkpoints_beyond(tab, 1, completed(shown(lab, 1)),
                                    "checkpoints counted on in a second tab")
        wait_for_checkpoints_beyond(lab, 1, completed(shown(tab, 1)),
                                    "and still in the first one")
        at_save = jupyter_server.read_notebook(NOTEBOOK)["cells"][1]["metadata"]["flink"][
            "latest_checkpoint_path"]
        wait_until(lambda: jupyter_server.read_notebook(NOTEBOOK)["cells"][1]["metadata"][
            "flink"]["latest_checkpoint_path"] != at_save, timeout=60,
            what="newer checkpoints saved while two tabs show the notebook")
        wait_for_checkpoints_beyond(lab, 1, completed(shown(lab, 1)), "a checkpoint more")
        for page in (lab, tab):
            assert page.page.locator(".jp-Dialog").count() == 0, page.page.locator(
                ".jp-Dialog").inner_text()
            wait_until(lambda p=page: not p.is_dirty(), timeout=20,
                       what="no unsaved changes (an update is saved within moments)")
        tab.screenshot("second-tab")
    finally:
        tab.page.close()

    # 4. Closed (nothing unsaved: no "Save your work?") and opened again: live again
    before = completed(shown(lab, 1))
    lab.page.evaluate(f"() => {lab.panel_js}.close()")
    lab.page.wait_for_function(f"() => !{lab.panel_js}", timeout=30_000)
    assert lab.page.locator(".jp-Dialog").count() == 0, "closing asked to save"
    lab.open_notebook(NOTEBOOK, new_page=False)
    wait_for_checkpoints_beyond(lab, 1, before, "checkpoints counted on after reopening")
    lab.screenshot("4-reopened")

    # 5. Cancelled: the final state, no charts
    lab.run_cell(2, timeout=120)
    view = wait_until(lambda: (v := shown(lab, 1)) and v["state"] == "CANCELED" and v,
                      timeout=60, what="the cancelled state")
    assert view["charts"] == [] and view["banner"] is None
    lab.screenshot("5-cancelled")


def open_flink_ui(lab, link: str, job_name: str) -> None:
    """The link opens the job's page of Flink's dashboard, through Jupyter, in the browser
    that is logged in to Jupyter; without Jupyter's login nothing of it comes."""
    page = lab.page.context.new_page()
    try:
        page.goto(link)
        page.get_by_text(job_name).first.wait_for(timeout=60_000)
        page.get_by_text("Checkpoints").first.wait_for(timeout=30_000)  # the job's tabs
        lab.screenshot("1-flink-ui", page=page)
    finally:
        page.close()
    stranger = httpx.get(link.split("#")[0] + "jobs/overview", follow_redirects=False)
    assert stranger.status_code in (302, 403), stranger.status_code
    assert job_name not in stranger.text


def panel_row(lab, name: str) -> Any:
    return lab.page.locator("#jupyter-flink-jobs .jf-panel-job", has_text=name)


@pytest.mark.browser
@pytest.mark.flink
def test_the_jobs_panel_and_a_kernel_restart(lab, jupyter_server, tmp_path):
    savepoints = (tmp_path / "savepoints").as_uri()
    write_notebook(jupyter_server, CONF,
                   JOB.format(name="panel_job", extra=f", savepointDir={savepoints}"),
                   JOB.format(name="restart_job", extra=f", savepointDir={savepoints}"))
    lab.open_notebook(NOTEBOOK, timeout=120)
    for index in range(3):
        lab.run_cell(index, timeout=START_TIMEOUT)

    # 1. The panel lists the kernel's jobs, each with its cell, state and checkpoints
    lab.page.locator(".jp-SideBar .lm-TabBar-tab[data-id='jupyter-flink-jobs']").click()
    for name in ("panel_job", "restart_job"):
        wait_until(lambda n=name: "RUNNING" in panel_row(lab, n).inner_text(), timeout=60,
                   what=f"{name} in the panel")
    assert "cell 2" in panel_row(lab, "panel_job").inner_text()
    lab.screenshot("1-panel")

    # 2. A click on a job shows its cell
    panel_row(lab, "restart_job").locator(".jf-panel-name").click()
    wait_until(lambda: lab.page.evaluate(f"{lab.panel_js}.content.activeCellIndex") == 2,
               timeout=10, what="the job's cell to become the active one")

    # 3. Stop with a savepoint: recorded in the cell's metadata, live and in the file
    lab.save()
    panel_row(lab, "panel_job").locator("button[data-action='stop']").click()
    wait_until(lambda: "FINISHED" in panel_row(lab, "panel_job").inner_text(), timeout=120,
               what="the job to stop")
    savepoint = wait_until(lambda: lab.cell_metadata(1)["flink"].get("savepoint_path"),
                           timeout=30, what="the savepoint in the cell's metadata")
    assert savepoint.startswith(savepoints.replace("file:///", "file:/"))
    # the button's answer (a reply on the comm) may come a moment after the metadata
    wait_until(lambda: "was stopped with savepoint" in panel_row(lab, "panel_job").inner_text(),
               timeout=30, what="the panel to say the stop took a savepoint")
    assert panel_row(lab, "panel_job").locator("button").count() == 0, "buttons of an ended job"
    saved = lab.wait_for_saved_notebook(
        NOTEBOOK, lambda nb: nb["cells"][1]["metadata"]["flink"].get("savepoint_path") ==
        savepoint, what="the savepoint in the file")
    assert saved["cells"][1]["metadata"]["flink"]["job_name"] == "panel_job"
    wait_until(lambda: shown(lab, 1)["state"] == "FINISHED", timeout=30,
               what="the stopped job's output")
    lab.screenshot("2-stopped-from-the-panel")

    # 4. A kernel restart stops the other job (with a savepoint: its cell set savepointDir);
    # its output says so instead of RUNNING, and the panel has no jobs any more
    lab.restart_kernel(timeout=120)
    view = wait_until(lambda: (v := shown(lab, 2)) and v["banner"] and
                      v["banner"].startswith("Kernel restarted") and v,
                      timeout=60, what="the output to tell of the restart")
    assert "savepoint" in view["banner"], view
    assert view["charts"] == [] and not view["live"]
    wait_until(lambda: "No Flink job" in lab.page.locator("#jupyter-flink-jobs").inner_text(),
               timeout=30, what="the panel of the new kernel")
    lab.screenshot("3-after-restart")

    # 5. No kernel at all: the output says what it last knew, and when
    lab.page.evaluate(f"async () => {{ await {lab.panel_js}.sessionContext.shutdown(); }}")
    view = wait_until(lambda: (v := shown(lab, 2)) and (v["banner"] or "").startswith(
        "Kernel not running: last known state at") and v, timeout=60,
        what="the output to say the kernel is not running")
    assert "stopped with savepoint" in view["banner"], view
    assert "not running" in lab.page.locator("#jupyter-flink-jobs").inner_text()
    lab.screenshot("4-no-kernel")


LIVE_TABLE = """%%flink.ssql(type=update, jobName=live_table)
CREATE TABLE IF NOT EXISTS numbers (k INT) WITH ('connector' = 'datagen',
  'rows-per-second' = '20', 'fields.k.min' = '0', 'fields.k.max' = '4');
SELECT k, COUNT(*) AS c FROM numbers GROUP BY k"""


def table_view(lab, index: int) -> dict[str, Any]:
    """What the live table of cell ``index`` shows: its changes received, its banner."""
    view = dict(lab.page.evaluate(
        """node => ({text: node.querySelector('.jf-table-body').textContent,
                     banner: node.querySelector('.jf-banner').textContent || null})""",
        lab._cell(index).locator(".jf-table").element_handle(timeout=60_000)))
    match = re.search(r"([\d,]+) changes? received", view["text"])
    view["changes"] = int(match.group(1).replace(",", "")) if match else -1
    return view


@pytest.mark.browser
@pytest.mark.flink
def test_a_live_table_stays_live_after_a_reload(lab, jupyter_server):
    write_notebook(jupyter_server, LIVE_TABLE, "%flink.cancel live_table")
    lab.open_notebook(NOTEBOOK, timeout=120)
    lab.run_cell(0, timeout=START_TIMEOUT)
    first = wait_until(lambda: (v := table_view(lab, 0))["changes"] > 0 and v, timeout=90,
                       what="the live table's first rows")
    lab.save()

    # After a reload the table goes on from where the kernel is, not from the saved file
    lab.reload()
    wait_until(lambda: (v := table_view(lab, 0))["changes"] > first["changes"] + 20 and
               v["banner"] is None, timeout=90, what="the table to go on after the reload")
    lab.screenshot("live-table-after-reload")

    # Cancelled: the final table, no banner, and it stays as it is
    lab.run_cell(1, timeout=120)
    final = wait_until(lambda: (v := table_view(lab, 0)) and "cancel" in v["text"].lower()
                       and v, timeout=60, what="the table's final state")
    assert final["banner"] is None
    lab.screenshot("live-table-cancelled")
