"""The student's entry point for real: ``make lab`` (JupyterLab 4 + jupytext + nbgrader's extensions).

One JupyterLab server, started the way ``make lab`` starts it (``jupyter lab`` in the repository
root) but headless, on a free loopback port, with a token, and with throwaway Jupyter config,
data and runtime folders so the user's own settings cannot change the outcome. Through the REST
API a lecture ``.py`` opens as a notebook model (jupytext's contents manager), a kernel imports
``course_lib``; headless Chromium opens ``/lab/tree/<lecture>.py`` and the notebook renders
(screenshot in build/site-screenshots/lab-lecture.png); nbgrader's JupyterLab plugins are
activated without errors; the server then shuts down cleanly, kernels included.

The server is the student's (``python -m course_tools lab``, i.e. ``make lab``): the Validate
button and the assignment list are there, the formgrader, the Create Assignment panel and the
course list are not. A second, instructor's server (``make lab ROLE=instructor``) is checked for
the instructor's tools, in the same browser.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import chromium_client  # tests/tools/chromium_client.py, the headless-Chromium client (pytest puts this folder on sys.path)
import pytest

from course_tools.layout import REPO_ROOT

ROOT = REPO_ROOT
SHOTS = ROOT / "build" / "site-screenshots"
LECTURE = "lectures/01-neural-networks/01-neural-networks.py"
ASSIGNMENT = "assignments/03-convolutions/03-convolutions.ipynb"
STUDENT_PLUGINS = ["@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:menu"]
INSTRUCTOR_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:course-list"]
# `make lab` opens lectures/*.py as notebooks because `python -m course_tools lab` gives JupyterLab
# this settings override (build/lab/<role>/settings/overrides.json)
LAB_OVERRIDES = REPO_ROOT / "build" / "lab" / "student" / "settings" / "overrides.json"
DEFAULT_VIEWERS = {"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}
STUDENT_COMMANDS = ["nbgrader:open-assignment-list"]
INSTRUCTOR_COMMANDS = ["nbgrader:open-formgrader", "nbgrader:open-course-list", "nbgrader:open-create-assignment"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A running ``jupyter lab`` and a tiny client for its REST API."""

    def __init__(self, tmp: Path, role: str = "student"):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "COURSE_SMOKE": "1", "JUPYTER_PLATFORM_DIRS": "1",
               "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
               "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "PYTHONDONTWRITEBYTECODE": "1"}
        self.log_path = tmp / "jupyter-lab.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "course_tools", "lab", f"--role={role}", "--no-browser", "--ip=127.0.0.1",
             f"--port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={ROOT}", "--LabApp.expose_app_in_browser=True"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                self.api("GET", "api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jupyter lab did not answer within 120 s:\n{self.log()[-3000:]}") from None
                time.sleep(0.3)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 60):
        request = urllib.request.Request(self.base + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read()
            return json.loads(data) if data else None

    def get_text(self, path: str, timeout: float = 60) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", errors="replace")

    def status(self, path: str) -> int:
        """The HTTP status of GET ``path`` (errors included)."""
        try:
            return self.get_text(path)[0]
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._log.close()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("jupyter"))
    server.lecture_files = snapshot((ROOT / LECTURE).parent)
    yield server
    server.stop()


def execute(lab: Lab, kernel_id: str, code: str, timeout: float = 60) -> tuple[str, dict]:
    """Run ``code`` in a kernel over its websocket (Jupyter messaging protocol); return (stdout, reply content)."""
    import websocket

    session = uuid.uuid4().hex  # a session id, as JupyterLab sends it (the server warns without one)
    ws = websocket.create_connection(f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels?token={lab.token}"
                                     f"&session_id={session}", timeout=timeout, suppress_origin=True)

    def request(msg_type: str, content: dict) -> str:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({"header": {"msg_id": msg_id, "msg_type": msg_type, "username": "test", "session": session,
                                       "date": "", "version": "5.3"},
                            "parent_header": {}, "metadata": {}, "channel": "shell", "content": content}))
        return msg_id

    try:
        # outputs published before the iopub channel is subscribed are lost: nudge with kernel_info
        # requests until one of them shows up on iopub (the usual Jupyter client handshake)
        deadline, ready = time.monotonic() + timeout, False
        while not ready:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel's iopub channel did not answer within {timeout} s")
            nudge = request("kernel_info_request", {})
            ws.settimeout(1.0)
            try:
                while True:
                    msg = json.loads(ws.recv())
                    if msg.get("channel") == "iopub" and msg.get("parent_header", {}).get("msg_id") == nudge:
                        ready = True
                        break
            except websocket.WebSocketTimeoutException:
                pass
        ws.settimeout(timeout)
        msg_id = request("execute_request", {"code": code, "silent": False, "store_history": False,
                                             "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        # the reply (shell) and the outputs (iopub) travel separately: done when both the reply and
        # iopub's "idle" status for this request have arrived
        stdout, reply, idle, deadline = [], None, False, time.monotonic() + timeout
        while time.monotonic() < deadline and not (reply is not None and idle):
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream" and msg["content"].get("name") == "stdout":
                stdout.append(msg["content"]["text"])
            elif kind == "error":
                stdout.append("\n".join(msg["content"].get("traceback", [])))
            elif kind == "execute_reply":
                reply = msg["content"]
            elif kind == "status" and msg["content"].get("execution_state") == "idle":
                idle = True
        if reply is None or not idle:
            raise TimeoutError(f"no complete answer to the execute request within {timeout} s")
        return "".join(stdout), reply
    finally:
        ws.close()


def test_rest_api_opens_the_lecture_py_as_a_notebook_through_jupytext(lab):
    model = lab.api("GET", f"api/contents/{LECTURE}?type=notebook&content=1")
    assert model["type"] == "notebook", f"{LECTURE} opened as {model['type']}, not as a notebook (jupytext?)"
    cells = model["content"]["cells"]
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"].startswith("# Lecture 01")
    assert any("parameters" in c["metadata"].get("tags", []) for c in cells), "the parameters cell lost its tag"
    assert sum(c["cell_type"] == "code" for c in cells) >= 5
    # the folder listing shows the text notebook as a notebook, too
    listing = lab.api("GET", "api/contents/" + str(Path(LECTURE).parent))
    assert {c["name"]: c["type"] for c in listing["content"]}[Path(LECTURE).name] == "notebook"


def test_a_kernel_starts_and_imports_course_lib(lab):
    kernel = lab.api("POST", "api/kernels", {"name": "python3"})
    try:
        stdout, reply = execute(lab, kernel["id"], "import course_lib, course_lib.notebook\n"
                                                   "print(course_lib.__file__)\n"
                                                   "print(course_lib.notebook.smoke_mode())")
        assert reply["status"] == "ok", stdout
        path, smoke = stdout.split()
        assert Path(path) == ROOT / "course_lib" / "__init__.py", f"the kernel imported {path}"
        assert smoke == "True", "COURSE_SMOKE=1 of the server did not reach the kernel"
    finally:
        lab.api("DELETE", f"api/kernels/{kernel['id']}")


@pytest.fixture(scope="module")
def lab_page(lab):
    """Chromium showing /lab/tree/<lecture>.py, once the notebook's cells are on screen."""
    try:
        binary = chromium_client.ensure_chromium(install=True)
    except chromium_client.BrowserSetupError as exc:
        pytest.skip(f"!!! BROWSER TESTS SKIPPED: no Chromium and it could not be installed: {exc}")
    with chromium_client.Chromium(binary, width=1400, height=900, timeout=120) as browser:
        n_cells = len(lab.api("GET", f"api/contents/{LECTURE}?type=notebook&content=1")["content"]["cells"])
        browser.goto(f"{lab.base}lab/tree/{LECTURE}?token={lab.token}",
                     ready="document.querySelector('.jp-NotebookPanel .jp-Cell, .jp-FileEditor') !== null", timeout=120)
        if not browser.evaluate("document.querySelector('.jp-NotebookPanel .jp-Cell') !== null"):
            pytest.fail(f"JupyterLab opened {LECTURE} in the text editor, not as a notebook: the default viewer of "
                        f"Python files must be 'Jupytext Notebook', i.e. {LAB_OVERRIDES} must hold "
                        f"{json.dumps(DEFAULT_VIEWERS)} (course_tools/lab.py writes it)")
        # a test only looks: no autosave may write the lecture (or a paired .ipynb) back to the repository
        browser.evaluate("window.jupyterapp.restored.then(() => window.jupyterapp.commands.isToggled("
                         "'docmanager:toggle-autosave') ? window.jupyterapp.commands.execute("
                         "'docmanager:toggle-autosave') : null).then(() => true)", timeout=60)
        assert browser.evaluate("window.jupyterapp.commands.isToggled('docmanager:toggle-autosave')") is False
        yield browser, n_cells


def test_jupyterlab_renders_the_lecture_as_a_notebook(lab_page):
    browser, n_cells = lab_page
    browser.wait_for("!!document.querySelector('.jp-NotebookPanel .jp-MarkdownCell .jp-RenderedMarkdown h1')", timeout=60)
    title = browser.evaluate("document.querySelector('.jp-NotebookPanel .jp-RenderedMarkdown h1').innerText")
    assert title.startswith("Lecture 01"), title
    # the lecture's math is typeset by JupyterLab's bundled MathJax (offline)
    browser.wait_for("document.querySelectorAll('.jp-NotebookPanel .jp-RenderedMarkdown mjx-container').length > 0",
                     timeout=60)
    model_cells = browser.evaluate("window.jupyterapp.shell.currentWidget.content.model.cells.length")
    assert model_cells == n_cells, f"the notebook shows {model_cells} cells, the REST model has {n_cells}"
    assert browser.evaluate("window.jupyterapp.shell.currentWidget.context.path") == LECTURE
    time.sleep(1)  # let the kernel indicator and toolbar settle for the picture
    shot = browser.screenshot(SHOTS / "lab-lecture.png")
    assert shot.stat().st_size > 20_000


def opens_unmodified(browser) -> dict:
    """Once the current notebook's kernel has answered kernel_info (JupyterLab then writes the kernel's
    kernelspec and language_info into the notebook): is the document still unmodified?"""
    return browser.evaluate("""(async () => {
        const panel = window.jupyterapp.shell.currentWidget;
        await panel.context.ready;
        await panel.sessionContext.ready;
        const info = await panel.sessionContext.session.kernel.info;
        await new Promise(resolve => setTimeout(resolve, 500));
        const tab = Array.from(document.querySelectorAll('.lm-TabBar-tab.jp-mod-current'))
            .find(t => t.innerText.includes(panel.title.label));
        return {path: panel.context.path, dirty: panel.model.dirty,
                tabDirty: !!tab && tab.classList.contains('jp-mod-dirty'),
                kernel: info.language_info};
    })()""", timeout=120)


def test_unmodified_notebooks_open_unmodified(lab, lab_page):
    """No "modified" dot on opening a notebook: the lecture (through its paired twin) and the released
    assignment carry the kernel's language_info (course_tools/notebooks/convert.py), so the kernel's
    answer changes nothing."""
    browser, _ = lab_page
    lecture = browser.evaluate("window.jupyterapp.shell.currentWidget.id")
    states = [opens_unmodified(browser)]
    browser.evaluate(f"window.jupyterapp.commands.execute('docmanager:open', {{path: {json.dumps(ASSIGNMENT)}}})"
                     ".then(() => true)", timeout=60)
    try:
        browser.wait_for(f"window.jupyterapp.shell.currentWidget.context.path === {json.dumps(ASSIGNMENT)}", timeout=60)
        states.append(opens_unmodified(browser))
    finally:  # back to the lecture alone, for the tests that follow; dispose() asks nothing
        browser.evaluate("(async () => { const w = window.jupyterapp.shell.currentWidget;"
                         f" if (w.context.path === {json.dumps(ASSIGNMENT)}) {{ await w.sessionContext.shutdown(); w.dispose(); }}"
                         f" window.jupyterapp.shell.activateById({json.dumps(lecture)}); return true; }})()", timeout=60)
    assert [s["path"] for s in states] == [LECTURE, ASSIGNMENT]
    for state in states:
        recorded = lab.api("GET", f"api/contents/{state['path']}?type=notebook&content=1")["content"]["metadata"]
        assert recorded.get("language_info") == state["kernel"], (
            f"{state['path']} records language_info {recorded.get('language_info')}, the kernel reports {state['kernel']}: "
            "regenerate it (`make release` / `make notebooks`) in the course's environment")
        assert not state["dirty"] and not state["tabDirty"], f"{state['path']} opens modified although nobody edited it"


def test_students_lab_has_validate_and_assignment_list_but_no_instructor_tools(lab, lab_page):
    browser, _ = lab_page
    plugins = browser.evaluate("window.jupyterapp.listPlugins().filter(p => p.startsWith('@jupyter/nbgrader'))")
    inactive = browser.evaluate(f"{json.dumps(STUDENT_PLUGINS)}.filter(p => !window.jupyterapp.isPluginActivated(p))")
    assert inactive == [], f"nbgrader's student plugins not activated: {inactive} (registered: {plugins})"
    shown = [p for p in INSTRUCTOR_PLUGINS if p in plugins]
    assert shown == [], f"the student's Lab registers instructor plugins {shown}: build/lab/student/labconfig/page_config.json"
    commands = browser.evaluate("window.jupyterapp.commands.listCommands()")
    assert [c for c in STUDENT_COMMANDS if c not in commands] == []
    assert [c for c in INSTRUCTOR_COMMANDS if c in commands] == []
    # visible: the Nbgrader menu (whose only entry is then the assignment list), the Validate button
    # in the notebook's toolbar; no Create Assignment panel in the right side bar
    menus = browser.evaluate("Array.from(document.querySelectorAll('.lm-MenuBar-itemLabel')).map(e => e.innerText)")
    assert "Nbgrader" in menus, menus
    browser.wait_for("Array.from(document.querySelectorAll('.jp-NotebookPanel-toolbar *'))"
                     ".some(e => /validate/i.test(e.innerText || e.title || ''))", timeout=30)
    assert browser.evaluate("document.getElementById('nbgrader-create_assignemnt') === null")
    # the formgrader's server extension is off, the student's ones are on
    assert lab.status("assignments") != 404, "the assignment list's server extension is off"
    assert lab.status("formgrader") == 404
    assert browser.console_errors == [], f"JupyterLab logged errors: {browser.console_errors}"
    outside = [u for u in browser.requests if not u.startswith("http://127.0.0.1:")
               and not u.startswith(("data:", "blob:", "ws://127.0.0.1", "about:"))]
    assert outside == [], f"JupyterLab tried to reach the internet: {outside}"


def test_instructors_lab_has_formgrader_and_create_assignment(lab_page, tmp_path_factory):
    instructor = Lab(tmp_path_factory.mktemp("jupyter-instructor"), role="instructor")
    # a browser of its own: leaving the student's page would stop at an "unsaved changes" prompt
    # if a notebook there were (wrongly) marked modified
    browser = chromium_client.Chromium(chromium_client.ensure_chromium(install=False), width=1400, height=900, timeout=120)
    try:
        status, page = instructor.get_text("formgrader")
        assert status == 200 and "<title>nbgrader formgrade</title>" in page, page[:500]
        browser.goto(f"{instructor.base}lab?token={instructor.token}", ready="!!window.jupyterapp", timeout=120)
        browser.evaluate("window.jupyterapp.restored.then(() => true)", timeout=120)
        every = STUDENT_PLUGINS + INSTRUCTOR_PLUGINS
        inactive = browser.evaluate(f"{json.dumps(every)}.filter(p => !window.jupyterapp.isPluginActivated(p))")
        assert inactive == [], f"nbgrader plugins not activated for the instructor: {inactive}"
        commands = browser.evaluate("window.jupyterapp.commands.listCommands()")
        assert [c for c in STUDENT_COMMANDS + INSTRUCTOR_COMMANDS if c not in commands] == []
        assert browser.evaluate("document.getElementById('nbgrader-create_assignemnt') !== null")
        errors = [e for e in browser.console_errors if "nbgrader" in e.lower()]
        assert errors == [], errors
    finally:
        browser.close()
        instructor.api("POST", "api/shutdown")
        instructor.proc.wait(timeout=60)
        instructor.stop()


def unexpected_tracebacks(log: str) -> list[str]:
    """The tracebacks of a server log, less ipykernel's known shutdown race: a control message
    handled while the kernel closes its iopub pipe flushes stderr into a closed socket (ENOTSOCK,
    logged by tornado as an uncaught ZMQStream callback; ipython/ipykernel#1518). It says nothing
    about the course's configuration, and it comes and goes with the timing of the shutdown."""
    blocks = log.split("Traceback (most recent call last):")[1:]
    known = ("ipykernel/iostream.py", "zmq.error.ZMQError: Socket operation on non-socket")
    return [b for b in blocks if not all(k in b.split("\n[", 1)[0] for k in known)]


def test_unexpected_tracebacks_tolerates_only_the_ipykernel_shutdown_race():
    race = (
        "ERROR:tornado.general:Uncaught exception in ZMQStream callback\nTraceback (most recent call last):\n"
        '  File ".../ipykernel/iostream.py", line 343, in schedule\n    self._event_pipe.send(b"")\n'
        "zmq.error.ZMQError: Socket operation on non-socket\n[I 2026-12-02 ServerApp] done\n"
    )
    other = 'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: 1\n'
    assert unexpected_tracebacks("[I] started\n" + race) == []
    assert len(unexpected_tracebacks(race + other)) == 1
    same_error_elsewhere = other.replace("KeyError: 1", "zmq.error.ZMQError: Socket operation on non-socket")
    assert len(unexpected_tracebacks(same_error_elsewhere)) == 1


def test_the_server_shuts_down_cleanly_with_its_kernels(lab):
    kernel = lab.api("POST", "api/kernels", {"name": "python3"})
    stdout, reply = execute(lab, kernel["id"], "import os; print(os.getpid())")
    assert reply["status"] == "ok"
    kernel_pid = int(stdout)
    lab.api("POST", "api/shutdown")
    assert lab.proc.wait(timeout=60) == 0, lab.log()[-3000:]

    def alive(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return False
        return state not in {"Z", "X"}

    deadline = time.monotonic() + 20
    while alive(kernel_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(kernel_pid), "a kernel outlived the server"
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", lab.port)) != 0, "the port is still open after shutdown"
    log = lab.log()
    assert unexpected_tracebacks(log) == [], log[-3000:]
    assert snapshot((ROOT / LECTURE).parent) == lab.lecture_files, "opening the lecture in JupyterLab changed files"
