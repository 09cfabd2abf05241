"""``python -m course_tools lab [--role student|instructor]`` (``make lab``, ``make lab ROLE=instructor``).

JupyterLab with jupytext (lecture ``.py`` files open as notebooks) and nbgrader's extensions, cut
to the user's role:

- ``student`` (the default) keeps nbgrader's *Validate* button and the *Assignment List*, and
  hides the instructor's tools: the formgrader (its Lab plugin and its server extension, so
  ``/formgrader`` does not exist), the *Create Assignment* side panel and the instructor's
  *Course List*;
- ``instructor`` gets every nbgrader tool.

Nothing in the virtual environment is changed: the command writes a small Jupyter config folder
per role (``build/lab/<role>``: ``labconfig/page_config.json`` with JupyterLab's
``disabledExtensions``, and ``jupyter_server_config.json`` switching nbgrader's server extensions
off) and puts it first on ``JUPYTER_CONFIG_PATH`` for this one server. The user's own
``~/.jupyter`` (``JUPYTER_CONFIG_DIR``) still wins over it, as Jupyter intends. The same folder
holds the JupyterLab settings overrides (``settings/overrides.json``, passed as
``--LabApp.app_settings_dir``): Python files open with jupytext's notebook view, so a lecture's
``.py`` source opens as a notebook; overrides the environment already has are kept.

Before the server starts, the ``.ipynb`` twins of the lectures and solutions are brought up to date
(``python -m course_tools sync``; git-ignored, instant when current). A lecture's ``.py`` is paired
with its twin (``formats: ipynb,py:percent``), and jupytext takes the notebook metadata that the
``.py`` header leaves out from the twin, the kernel's full ``language_info`` among them: without it
JupyterLab marks the freshly opened lecture as modified (it fills in a blank ``language_info``,
then the kernel's).

The server log, investigated (issue 12; jupyter_server 2.21.1, tornado 6.6.1, JupyterLab 4.6.6,
ipykernel 7.4.0): no 500 on a kernel websocket could be reproduced, neither by the browser opening
a lecture or an assignment (``/lab/tree/…`` and ``docmanager:open``) nor by websocket clients
connecting at once after ``POST /api/kernels`` or ``/api/sessions``, eight at a time, during a
kernel restart or a kernel shutdown (every handshake ``101``; an unknown or shut-down kernel gives
``404 Kernel does not exist``). jupyter_server answers 500 there only when the kernel failed to
start (``KernelWebsocketConnection.prepare``) or never became alive within ``kernel_info_timeout``;
nothing of ours is on that path. Two warnings are upstream's and harmless:

- ``The websocket_ping_timeout (90000) cannot be longer than the websocket_ping_interval (30000)``
  on the first kernel websocket: jupyter_server's ``WebSocketMixin`` gives its own pinger
  milliseconds through properties that tornado >= 6.5 reads as seconds (jupyter_server issue
  #1612; the server's own 30 s pings still run). Lowering ``ws_ping_timeout`` to silence it
  would make that pinger close live connections on timer jitter, so it is left alone;
- ``Notebook … is not trusted``: the notebooks are not signed on this machine (their outputs,
  if any, are not trusted; code cells run as always).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from course_tools.layout import REPO_ROOT, CourseLayout

ROLES = ("student", "instructor")
#: nbgrader's JupyterLab plugins (nbgrader 0.9.6) and its server extensions
NBGRADER_LAB_PLUGINS = ("@jupyter/nbgrader:menu", "@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:assignment-list",
                        "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:create-assignment",
                        "@jupyter/nbgrader:validate-assignment")
NBGRADER_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.validate_assignment",
                              "nbgrader.server_extensions.assignment_list", "nbgrader.server_extensions.course_list")
#: what a student does not get (the menu then shows the Assignment List only: Lab hides the
#: entries of commands that no plugin registered)
INSTRUCTOR_ONLY_LAB_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                               "@jupyter/nbgrader:course-list")
INSTRUCTOR_ONLY_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
#: JupyterLab settings defaults: lectures/NN-topic/NN-topic.py open as notebooks (jupytext)
SETTINGS_OVERRIDES = {"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}


def _environment_settings_dir() -> Path:
    """JupyterLab's default settings folder of this environment (``<sys.prefix>/share/jupyter/lab/settings``)."""
    return Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def role_config(role: str) -> tuple[dict, dict]:
    """(page_config.json, jupyter_server_config.json) of a role."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}; got {role!r}")
    hidden = role == "student"
    page = {"disabledExtensions": {p: hidden and p in INSTRUCTOR_ONLY_LAB_PLUGINS for p in NBGRADER_LAB_PLUGINS}}
    server = {"ServerApp": {"jpserver_extensions": {
        e: not (hidden and e in INSTRUCTOR_ONLY_SERVER_EXTENSIONS) for e in NBGRADER_SERVER_EXTENSIONS}}}
    return page, server


def write_role_config(role: str, root: Path = REPO_ROOT) -> Path:
    """Write ``build/lab/<role>`` and return it (a folder for ``JUPYTER_CONFIG_PATH``)."""
    page, server = role_config(role)
    folder = CourseLayout(root).lab_config / role
    (folder / "labconfig").mkdir(parents=True, exist_ok=True)
    (folder / "labconfig" / "page_config.json").write_text(json.dumps(page, indent=2) + "\n")
    (folder / "jupyter_server_config.json").write_text(json.dumps(server, indent=2) + "\n")
    settings, installed = folder / "settings", _environment_settings_dir()
    shutil.rmtree(settings, ignore_errors=True)
    if (installed / "overrides.d").is_dir():  # packages' own overrides stay in force
        shutil.copytree(installed / "overrides.d", settings / "overrides.d")
    settings.mkdir(parents=True, exist_ok=True)
    try:
        existing = json.loads((installed / "overrides.json").read_text())
    except (OSError, ValueError):
        existing = {}
    (settings / "overrides.json").write_text(json.dumps(_merge(existing, SETTINGS_OVERRIDES), indent=2) + "\n")
    return folder


def lab_environment(role: str, env: dict[str, str] | None = None, root: Path = REPO_ROOT) -> dict[str, str]:
    """The environment of ``jupyter lab`` for ``role``: the role's config folder first on JUPYTER_CONFIG_PATH."""
    env = dict(os.environ if env is None else env)
    folder = str(write_role_config(role, root))
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([folder, *filter(None, [env.get("JUPYTER_CONFIG_PATH")])])
    return env


def lab_command(role: str, extra: list[str], root: Path = REPO_ROOT) -> list[str]:
    jupyter = Path(sys.executable).with_name("jupyter")
    argv = [str(jupyter) if jupyter.exists() else "jupyter", "lab", *extra]
    if not any(a.startswith("--LabApp.app_settings_dir") for a in extra):
        argv.append(f"--LabApp.app_settings_dir={CourseLayout(root).lab_config / role / 'settings'}")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        argv.append("--allow-root")
    return argv


def main(argv: list[str] | None = None, prog: str = "python -m course_tools lab") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="JupyterLab for students (default) or instructors; "
                                     "other arguments go to `jupyter lab`")
    parser.add_argument("--role", choices=ROLES, default="student",
                        help="student: Validate button and assignment list only; instructor: formgrader, "
                             "Create Assignment and course list too")
    args, extra = parser.parse_known_args(argv)
    env = lab_environment(args.role)
    command = lab_command(args.role, extra)
    from course_tools.notebooks.convert import NotebookSourceError, sync

    try:
        sync(root=REPO_ROOT)
    except NotebookSourceError as exc:  # a broken source must not keep the student out of the Lab
        print(f"warning: the .ipynb twins are not all up to date ({exc}); that notebook may open as modified",
              file=sys.stderr, flush=True)
    print(f"JupyterLab for the {args.role} (config: {env['JUPYTER_CONFIG_PATH'].split(os.pathsep)[0]})", flush=True)
    os.chdir(REPO_ROOT)
    os.execvpe(command[0], command, env)
    return 0  # not reached


__all__ = ["ROLES", "lab_environment", "main", "role_config", "write_role_config"]
