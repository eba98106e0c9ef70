"""Tab and Shift+Tab in JupyterLab on the flink kernel: a conf key in the completer's list,
Flink's description in the tooltip."""

from __future__ import annotations

import nbformat
import pytest

NOTEBOOK = "work/completion.ipynb"
CONF = "%%flink.conf\nexecution.checkpointing.interval 10 s"


def write_notebook(server) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "flink", "display_name": "Flink (PyFlink)",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(CONF), nbformat.v4.new_code_cell("")]
    server.write_notebook(NOTEBOOK, notebook)


@pytest.mark.browser
@pytest.mark.flink
def test_tab_in_a_conf_cell_shows_flinks_keys_and_shift_tab_their_help(lab, jupyter_server):
    write_notebook(jupyter_server)
    lab.open_notebook(NOTEBOOK, timeout=120)
    lab.run_cell(0, timeout=180)  # Flink's JVM reads its options: what Tab offers next

    editor = lab.page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".cm-content")
    editor.click()
    lab.page.keyboard.type("%%flink.conf\nexecution.checkpointing.inter")
    lab.page.keyboard.press("Tab")
    completer = lab.page.locator(".jp-Completer")
    item = completer.locator(".jp-Completer-item", has_text="execution.checkpointing.interval")
    item.first.wait_for(state="visible", timeout=30_000)
    items = completer.locator(".jp-Completer-item").all_inner_texts()
    assert any("execution.checkpointing.interval-during-backlog" in i for i in items), items
    assert any("duration" in i.lower() for i in items), items  # the option's type beside it
    lab.screenshot("conf-key-completer")

    lab.page.keyboard.press("Enter")  # takes the first: execution.checkpointing.interval
    source = lab.page.evaluate(f"{lab.panel_js}.content.widgets[1].model.sharedModel.source")
    assert source == "%%flink.conf\nexecution.checkpointing.interval"

    lab.page.keyboard.press("Shift+Tab")
    # The tooltip renders its Markdown after it appears: wait for the last line
    tooltip = lab.page.locator(".jp-Tooltip", has_text="Flink's options")
    tooltip.wait_for(state="visible", timeout=30_000)
    text = tooltip.inner_text()
    assert "execution.checkpointing.interval" in text and "Duration" in text, text
    assert "10 s" in text, text  # the value the conf cell set
    lab.screenshot("conf-key-tooltip")
