"""Fixtures that drive JupyterLab in headless Chromium, for ``@pytest.mark.browser`` tests.

``jupyter_server``  JupyterLab on 127.0.0.1 and a free port, with its own root dir, lab settings,
                    workspaces and a kernel spec dir first on JUPYTER_PATH (``python3`` is this
                    interpreter's ipykernel; ``flink`` comes from tests/conftest.py); stopped
                    with its kernels at the end. It serves the labextension this checkout built
                    (``jupyter_flink/labextension``), not a copy installed earlier. Helpers:
                    REST calls, reading a saved notebook.
``browser_page``    a Playwright page in Debian's Chromium (never a downloaded browser); its
                    screenshot and console log go to ``test-artifacts/`` at the end.
``lab``             both, with user-level helpers: open a notebook, wait for its kernel, run a
                    cell (or a cell's new code), save with Ctrl+S, reload, restart the kernel,
                    and wait until the saved notebook satisfies a predicate.

The page keeps ``window.jupyterapp`` (``LabApp.expose_app_in_browser``) so that waits can watch
the live notebook model instead of sleeping; keystrokes and clicks still do the user's part.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import nbformat
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
BUILT_EXTENSION = ROOT / "jupyter_flink" / "labextension"  # labextension/'s build output
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT = 60.0
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each phase's report so that fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def _failed(node: pytest.Item) -> bool:
    return any(report.failed for report in node.stash.get(REPORTS, {}).values())


def _artifact_stem(node: pytest.Item) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", node.name)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class JupyterServer:
    """A running ``jupyter lab`` subprocess and the means to talk to it."""

    url: str
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the server's REST API (``path`` below ``/api/``) and fail on an error status."""
        headers = {"Authorization": f"token {self.token}"}
        response = httpx.request(
            method, f"{self.url}/api/{path}", headers=headers, timeout=10, **kwargs
        )
        response.raise_for_status()
        return response

    def read_notebook(self, path: str) -> dict[str, Any]:
        """The notebook as saved on the server, through the contents API.

        jupyter_server writes a notebook in place (keeping a backup until it is done), so a
        read while a save is under way (the labextension saves after a metadata update) may
        find it empty: then read again.
        """
        deadline = time.monotonic() + 10
        while True:
            try:
                content = self.api("GET", f"contents/{quote(path)}",
                                   params={"content": 1}).json()
                return dict(content["content"])
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 400 or time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def write_notebook(self, path: str, notebook: nbformat.NotebookNode) -> None:
        """Write a notebook file below the root dir (before a page opens it)."""
        target = self.root_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _write_kernelspec(data_dir: Path) -> None:
    """``python3``: this interpreter's ipykernel, so kernels import this checkout's packages."""
    spec_dir = data_dir / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))


def _this_checkouts_extension(target: Path) -> list[str]:
    """A labextensions dir with this checkout's build of ours: JupyterLab takes the first
    ``jupyter-flink`` it finds, and extra_labextensions_path comes before the installed ones
    (a worktree's or a stale build would otherwise be tested instead)."""
    if not (BUILT_EXTENSION / "package.json").exists():
        return []  # not built: the installed one (pip install -e . builds it)
    shutil.copytree(BUILT_EXTENSION, target / "jupyter-flink")
    return [f"--LabApp.extra_labextensions_path={target}"]


def _write_lab_settings(settings_dir: Path) -> None:
    """No news or update toasts: they would cover the notebook and call out to the web."""
    settings = settings_dir / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def _stop_server(server: JupyterServer) -> None:
    """Shut kernels down through the API, stop the server, then kill whatever it left."""
    try:
        leftovers = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        leftovers = []
    if server.process.poll() is None:
        try:
            for kernel in server.api("GET", "kernels").json():
                server.api("DELETE", f"kernels/{kernel['id']}")
        except httpx.HTTPError:
            pass  # the server is stopped below either way
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
    for process in leftovers:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(leftovers, timeout=10)


@pytest.fixture
def jupyter_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JupyterServer]:
    """A JupyterLab server for one test; yields once ``/api/status`` answers.

    Its log (and so its kernels' stderr) is kept as ``test-artifacts/<test>-server.log``.
    """
    root_dir = tmp_path / "root"
    root_dir.mkdir()
    home = tmp_path / "jupyter"
    kernels_path, lab_dir = home / "path", home / "lab"
    _write_kernelspec(kernels_path)
    _write_lab_settings(lab_dir / "user-settings")
    # Kernel specs here come first; JUPYTER_DATA_DIR/CONFIG_DIR stay as tests/conftest.py set them.
    jupyter_path = [str(kernels_path), *filter(None, [os.environ.get("JUPYTER_PATH")])]
    env = {**os.environ, "JUPYTER_PATH": os.pathsep.join(jupyter_path), "PYTHONUNBUFFERED": "1"}
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={lab_dir / 'user-settings'}",
        f"--LabApp.workspaces_dir={lab_dir / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
        *_this_checkouts_extension(home / "labextensions"),
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI and containers run as root
    log_path = tmp_path / "jupyter-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root_dir, log_path, process)

    def ready() -> bool:
        if process.poll() is not None:
            log = server.log_tail()
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{log}")
        try:
            server.api("GET", "status")
        except httpx.HTTPError:
            return False
        return True

    try:
        wait_until(ready, SERVER_START_TIMEOUT, f"jupyter lab on port {port}")
        yield server
    finally:
        _stop_server(server)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(log_path, ARTIFACTS / f"{_artifact_stem(request.node)}-server.log")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium (``apt-get install chromium``), or ``$CHROMIUM``."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip(f"no Chromium at {path}: apt-get install chromium (or set $CHROMIUM)")
    return path


@pytest.fixture
def browser_console() -> list[str]:
    """What the page logged (``type: text``) and its uncaught errors, in order."""
    return []


@pytest.fixture
def browser_page(
    request: pytest.FixtureRequest, tmp_path: Path, chromium_path: str, browser_console: list[str]
):
    """A fresh Chromium profile and page; screenshot and console log kept in test-artifacts/."""
    sync_api = pytest.importorskip("playwright.sync_api")
    console = browser_console
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # fresh --user-data-dir
            executable_path=chromium_path,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 960},
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(30_000)
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        try:
            yield page
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            stem = _artifact_stem(request.node)
            suffix = "-failed" if _failed(request.node) else "-final"
            try:
                page.screenshot(path=str(ARTIFACTS / f"{stem}{suffix}.png"))
            finally:
                (ARTIFACTS / f"{stem}-console.log").write_text("\n".join(console) + "\n")
                context.close()


class Lab:
    """A notebook in JupyterLab, driven the way a user drives it."""

    def __init__(self, server: JupyterServer, page: Any, stem: str):
        self.server = server
        self.page = page
        self.path = ""  # the notebook opened last; the helpers below act on it
        self._panel_selector = ""
        self._stem = stem  # of the screenshots' names

    def another_tab(self) -> Lab:
        """A second tab of the same browser (logged in alike); close its ``page`` when done."""
        return Lab(self.server, self.page.context.new_page(), f"{self._stem}-tab2")

    @property
    def panel_js(self) -> str:
        """JavaScript for the open notebook's panel (``undefined`` while it is not open)."""
        return (
            "(window.jupyterapp && Array.from(window.jupyterapp.shell.widgets('main')).find("
            f"w => w.context && w.context.path === {json.dumps(self.path)}))"
        )

    # Pages and notebooks

    def open_notebook(self, path: str, timeout: float = 60, *, new_page: bool = True) -> None:
        """Open ``path`` (relative to the root dir) and wait until its kernel is idle.

        ``new_page=False`` opens it in the page already loaded instead of navigating to it.
        """
        self.path = path
        if new_page:
            self.page.goto(f"{self.server.url}/lab/tree/{quote(path)}?token={self.server.token}")
        else:
            self.page.evaluate(
                "path => window.jupyterapp.commands.execute('docmanager:open', {path})", path
            )
        self._wait_for_notebook(timeout)

    def open_lab(self, timeout: float = 60) -> None:
        """Load JupyterLab without opening anything."""
        self.page.goto(f"{self.server.url}/lab?token={self.server.token}")
        self.page.wait_for_function("() => !!window.jupyterapp", timeout=timeout * 1000)
        self.page.evaluate("async () => { await window.jupyterapp.restored; }")

    def reload(self, timeout: float = 60) -> None:
        """Reload the page; the notebook reopens on the kernel it had."""
        self.page.reload()
        self._wait_for_notebook(timeout)

    def _wait_for_notebook(self, timeout: float) -> None:
        self.page.wait_for_function(
            f"""() => {{
                const panel = {self.panel_js};
                return !!panel && panel.context.isReady && panel.content.widgets.length > 0;
            }}""",
            timeout=timeout * 1000,
        )
        # Saves under way, the user's or the labextension's (it saves after a metadata update)
        self.page.evaluate(
            f"""() => {{
                const context = {self.panel_js}.context;
                if (context.__jfCounting) return;
                context.__jfCounting = true;
                window.__jfSavesInFlight = 0;
                context.saveState.connect((_, state) => {{
                    window.__jfSavesInFlight += state === 'started' ? 1 : -1;
                }});
            }}"""
        )
        panel_id = self.page.evaluate(f"{self.panel_js}.id")
        self.page.evaluate("id => window.jupyterapp.shell.activateById(id)", panel_id)
        self._panel_selector = f'[id="{panel_id}"]'
        self.wait_for_kernel_idle(timeout)

    def wait_for_kernel_idle(self, timeout: float = 60) -> None:
        """Wait until this page's connection to the notebook's kernel reports ``idle``."""
        self.page.wait_for_function(
            f"""() => {{
                const panel = {self.panel_js};
                const kernel = panel && panel.sessionContext.session &&
                    panel.sessionContext.session.kernel;
                return !!kernel && kernel.connectionStatus === 'connected' &&
                    kernel.status === 'idle';
            }}""",
            timeout=timeout * 1000,
        )

    # Cells

    def _panel(self) -> Any:
        return self.page.locator(self._panel_selector)

    def _cell(self, index: int) -> Any:
        return self._panel().locator(".jp-Notebook .jp-Cell").nth(index)

    def cell_count(self) -> int:
        return int(self.page.evaluate(f"{self.panel_js}.content.widgets.length"))

    def cell_metadata(self, index: int) -> dict[str, Any]:
        """The live (possibly unsaved) metadata of cell ``index``."""
        return dict(
            self.page.evaluate(
                f"i => {self.panel_js}.content.widgets[i].model.toJSON().metadata", index
            )
        )

    def set_cell_source(self, index: int, source: str) -> None:
        """Replace the code of cell ``index`` (typed into its editor as one paste)."""
        self._cell(index).locator(".jp-InputArea-editor .cm-content").click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.insert_text(source)

    def run_cell(self, index: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Run cell ``index`` with Ctrl+Enter; return its outputs, fail on an error output."""
        self.page.evaluate(
            f"""i => {{
                const model = {self.panel_js}.content.widgets[i].model;
                window.__jfExecuted = window.__jfExecuted || {{}};
                window.__jfExecuted[i] = false;
                const onChange = (_, change) => {{
                    if (change.name === 'executionCount' && change.newValue !== null) {{
                        window.__jfExecuted[i] = true;
                        model.stateChanged.disconnect(onChange);
                    }}
                }};
                model.stateChanged.connect(onChange);
            }}""",
            index,
        )
        self._cell(index).locator(".jp-InputArea-editor .cm-content").click()
        self.page.keyboard.press("Control+Enter")
        self.page.wait_for_function(
            "i => window.__jfExecuted[i]", arg=index, timeout=timeout * 1000
        )
        self.wait_for_kernel_idle(timeout)
        outputs_js = f"i => {self.panel_js}.content.widgets[i].model.outputs.toJSON()"
        outputs = list(self.page.evaluate(outputs_js, index))
        errors = [output for output in outputs if output.get("output_type") == "error"]
        if errors:
            trace = "\n".join(errors[0].get("traceback", []))
            raise AssertionError(f"cell {index} raised:\n{_ANSI.sub('', trace)}")
        return outputs

    def run_code(self, index: int, source: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Put ``source`` into cell ``index`` and run it."""
        self.set_cell_source(index, source)
        return self.run_cell(index, timeout)

    def show_cell_metadata(self, index: int) -> None:
        """Select cell ``index`` and show its metadata in the Property Inspector (screenshots)."""
        self._cell(index).locator(".jp-InputPrompt").click()
        inspector = self.page.locator("#jp-property-inspector")
        if not inspector.is_visible():
            self.page.locator(".jp-SideBar .lm-TabBar-tab[data-id='jp-property-inspector']").click()
        label = inspector.get_by_text("Cell metadata", exact=True)
        if not label.is_visible():
            inspector.locator(".jp-Collapser-title", has_text="Advanced Tools").click()
        label.wait_for()

    # Kernel

    def restart_kernel(self, timeout: float = 60) -> None:
        """Restart the kernel from the toolbar button and its confirmation dialog."""
        self.page.evaluate(
            f"""() => {{
                const kernel = {self.panel_js}.sessionContext.session.kernel;
                window.__jfRestarted = false;
                const onStatus = (_, status) => {{
                    if (status === 'restarting' || status === 'autorestarting') {{
                        window.__jfRestarted = true;
                        kernel.statusChanged.disconnect(onStatus);
                    }}
                }};
                kernel.statusChanged.connect(onStatus);
            }}"""
        )
        self._panel().locator("[data-command='notebook:restart-kernel']").click()
        self.page.locator(".jp-Dialog .jp-mod-accept").click()
        self.page.wait_for_function("() => window.__jfRestarted", timeout=timeout * 1000)
        self.wait_for_kernel_idle(timeout)

    # Saving

    def save(self, timeout: float = 30) -> None:
        """Save with Ctrl+S and wait until JupyterLab reports the save completed."""
        self.page.evaluate(
            f"""() => {{
                const context = {self.panel_js}.context;
                window.__jfSaved = false;
                const onSave = (_, state) => {{
                    if (state === 'completed') {{
                        window.__jfSaved = true;
                        context.saveState.disconnect(onSave);
                    }}
                }};
                context.saveState.connect(onSave);
            }}"""
        )
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function("() => window.__jfSaved", timeout=timeout * 1000)

    def wait_for_saved_notebook(
        self,
        path: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 30,
        what: str = "the saved notebook to match",
    ) -> dict[str, Any]:
        """Save (unless the notebook has no unsaved changes: the labextension saves after a
        metadata update when nothing else was unsaved) and read ``path`` back until
        ``predicate(notebook)`` holds; return the notebook."""
        deadline = time.monotonic() + timeout
        while True:
            self.save_if_dirty()
            notebook = self.server.read_notebook(path)
            if predicate(notebook):
                return notebook
            if time.monotonic() > deadline:
                cells = [cell.get("metadata") for cell in notebook["cells"]]
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; cell metadata: {cells}"
                )
            self.page.wait_for_timeout(250)  # let the page handle kernel messages meanwhile

    def is_dirty(self) -> bool:
        """Whether the open notebook has unsaved changes (JupyterLab's dirty flag)."""
        return bool(self.page.evaluate(f"{self.panel_js}.context.model.dirty"))

    def wait_for_saves(self, timeout: float = 30) -> None:
        """Wait until no save of the open notebook is under way."""
        self.page.wait_for_function("() => !window.__jfSavesInFlight",
                                    timeout=timeout * 1000)

    def save_if_dirty(self, timeout: float = 30) -> None:
        """Save as Ctrl+S does (docmanager:save) if the notebook has unsaved changes, once no
        other save is under way; check and save at once, so that the labextension's own save
        cannot start in between (two saves at once make JupyterLab see a conflict)."""
        self.page.evaluate(
            f"""async timeout => {{
                const context = {self.panel_js}.context;
                const until = Date.now() + timeout;
                while (window.__jfSavesInFlight && Date.now() < until) {{
                    await new Promise(resolve => setTimeout(resolve, 50));
                }}
                if (context.model.dirty) {{
                    await window.jupyterapp.commands.execute('docmanager:save');
                }}
            }}""",
            timeout * 1000,
        )

    # Evidence

    def screenshot(self, name: str, page: Any = None) -> Path:
        """Save a screenshot (of ``page``, default the lab's) as
        ``test-artifacts/<test>-<name>.png``."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self._stem}-{name}.png"
        (page or self.page).screenshot(path=str(path))
        return path


@pytest.fixture
def lab(request: pytest.FixtureRequest, jupyter_server: JupyterServer, browser_page: Any) -> Lab:
    """JupyterLab in Chromium on a fresh server (the page closes before the server stops)."""
    return Lab(jupyter_server, browser_page, _artifact_stem(request.node))
