"""`course lab [NOTEBOOK | DIR]`: JupyterLab as a student sees it (or, with ``--instructor``, as nbgrader ships it).

nbgrader installs its JupyterLab plugins and server extensions for everyone. A student should not see the
instructor's tools, so the student's JupyterLab turns them off with Jupyter's own configuration, nothing
patched: the folder :data:`STUDENT_CONFIG_DIR` (shipped in the package) is a Jupyter configuration directory,
put first on ``JUPYTER_CONFIG_PATH`` for the server ``course lab`` starts. It holds

* ``labconfig/page_config.json``: ``disabledExtensions`` lists nbgrader's lab plugins for the *Create
  Assignment* panel, the *Formgrader*, the *Course List*, the *Assignment List* and the *Nbgrader* menu;
* ``jupyter_server_config.d/course-student.json``: ``ServerApp.jpserver_extensions`` turns off the
  formgrader, course-list and assignment-list server extensions (``/formgrader`` answers 404).

The student keeps the notebook's *Validate* button (nbgrader's ``validate-assignment``). The Assignment List
goes too: it serves nbgrader's exchange, which a student's own ``course lab`` does not have (there it only
reports an error about the exchange folder); a JupyterHub whose students fetch and submit through
the exchange keeps it and the menu (see the README). This hides tools, it is no access control: a student's
server is theirs to reconfigure, and the grader's secrets never reach it.

A course that runs its own JupyterHub image applies the same settings to every user of the image with
nbgrader's documented commands (:func:`image_commands` writes them; the README shows them), or with
``ENV JUPYTER_CONFIG_PATH=<this folder>``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["STUDENT_CONFIG_DIR", "disabled_lab_plugins", "disabled_server_extensions", "lab_environment",
           "lab_argv", "image_commands", "lab_command"]

#: The student's Jupyter configuration directory (package data).
STUDENT_CONFIG_DIR = Path(__file__).resolve().with_name("student_lab")
_PAGE_CONFIG = STUDENT_CONFIG_DIR / "labconfig" / "page_config.json"
_SERVER_CONFIG = STUDENT_CONFIG_DIR / "jupyter_server_config.d" / "course-student.json"


def disabled_lab_plugins() -> list[str]:
    """The JupyterLab plugin ids the student configuration disables, sorted."""
    data = json.loads(_PAGE_CONFIG.read_text())
    return sorted(k for k, off in data["disabledExtensions"].items() if off)


def disabled_server_extensions() -> list[str]:
    """The Jupyter server extensions the student configuration turns off, sorted."""
    data = json.loads(_SERVER_CONFIG.read_text())
    return sorted(k for k, on in data["ServerApp"]["jpserver_extensions"].items() if not on)


def lab_environment(instructor: bool = False, env=None) -> dict:
    """``env`` (default: this process's) with the student configuration first on ``JUPYTER_CONFIG_PATH``,
    or, for an instructor, without it (also where an image had put it there)."""
    env = dict(os.environ if env is None else env)
    student = str(STUDENT_CONFIG_DIR)
    paths = [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep)
             if p and os.path.abspath(p) != student]
    if not instructor:
        paths.insert(0, student)
    if paths:
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(paths)
    else:
        env.pop("JUPYTER_CONFIG_PATH", None)
    return env


def lab_argv(target=None, jupyter_args=()) -> list[str]:
    """The command that starts JupyterLab with this Python, on ``target`` (a notebook opens it, a folder
    becomes the root; default: the current folder)."""
    return [sys.executable, "-m", "jupyterlab", *([str(Path(target).resolve())] if target else []),
            *jupyter_args]


def image_commands(level: str = "sys_prefix") -> list[str]:
    """The two commands that apply the student configuration to a whole Python environment (``level``
    ``sys_prefix``, ``system`` or ``user``), e.g. in a JupyterHub image's Dockerfile."""
    server_flag = {"sys_prefix": "--sys-prefix", "system": "--system", "user": "--user"}[level]
    return [f"jupyter labextension disable --level={level} " + " ".join(disabled_lab_plugins()),
            f"jupyter server extension disable {server_flag} " + " ".join(disabled_server_extensions())]


def _split(args):
    """(target, JupyterLab's arguments, instructor?) from the parsed command line: argparse hands everything
    after the target to JupyterLab, so ``--instructor`` there is taken back, and a leading ``--`` dropped."""
    target, rest = args.target, list(args.jupyter_args or ())
    if target is not None and target.startswith("-"):     # `course lab -- --ServerApp.x=1`
        rest.insert(0, target)
        target = None
    if rest[:1] == ["--"]:
        rest = rest[1:]
    instructor = bool(args.instructor) or "--instructor" in rest
    rest = [a for a in rest if a != "--instructor"]
    if args.no_browser:
        rest.insert(0, "--no-browser")
    if args.port is not None:
        rest.insert(0, f"--port={args.port}")
    return target, rest, instructor


def lab_command(args) -> int:
    target, jupyter_args, instructor = _split(args)
    if target is not None and not Path(target).exists():
        print(f"course lab: {target} does not exist (give a notebook or a folder)", file=sys.stderr)
        return 2
    argv = lab_argv(target, jupyter_args)
    env = lab_environment(instructor)
    who = "instructor (all of nbgrader's tools)" if instructor else \
        "student (nbgrader's instructor tools off; --instructor for them)"
    print(f"course lab: JupyterLab for the {who}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    if os.name == "posix":      # JupyterLab takes this process over: signals and the exit code are its own
        os.execve(argv[0], argv, env)
    return subprocess.call(argv, env=env)
