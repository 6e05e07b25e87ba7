"""The student's JupyterLab (`course lab`) hides nbgrader's instructor tools; `course lab --instructor` has them.

Fast tests check the shipped configuration against the installed nbgrader (a renamed plugin or server extension
fails them) and against the page and server configuration JupyterLab resolves from it. The slow test starts
`course lab --no-browser` for real, opens a released assignment in headless Chromium (Playwright), runs all
cells from the Run menu and reads the public checks' output and the nbgrader UI off the page.
"""
import contextlib
import importlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from glob import glob
from pathlib import Path

import pytest

from autograder import lab
from autograder.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]

#: What a student must not see, and the student tools they keep (ids as nbgrader 0.9 names them).
INSTRUCTOR_PLUGINS = ["@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:course-list",
                      "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader",
                      "@jupyter/nbgrader:menu"]
INSTRUCTOR_SERVER_EXTENSIONS = ["nbgrader.server_extensions.assignment_list",
                                "nbgrader.server_extensions.course_list",
                                "nbgrader.server_extensions.formgrader"]
STUDENT_PLUGINS = ["@jupyter/nbgrader:validate-assignment"]
STUDENT_SERVER_EXTENSIONS = ["nbgrader.server_extensions.validate_assignment"]


def clean_env(tmp_path: Path) -> dict:
    """This environment without anyone's Jupyter configuration: a fresh HOME and Jupyter folders under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    home = tmp_path / "home"
    env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
               XDG_CONFIG_HOME=str(home / "xdg"), PYTHONDONTWRITEBYTECODE="1")
    home.mkdir(parents=True, exist_ok=True)
    return env


# ---------------------------------------------------------------------------------------------- configuration
def test_the_student_configuration_disables_exactly_the_instructor_tools():
    assert lab.disabled_lab_plugins() == INSTRUCTOR_PLUGINS
    assert lab.disabled_server_extensions() == INSTRUCTOR_SERVER_EXTENSIONS


def test_the_disabled_ids_are_nbgrader_s_own():
    """Each id names a plugin of the installed nbgrader lab extension and a server extension nbgrader enables
    itself: a rename in nbgrader fails here instead of silently showing the tool again."""
    from jupyter_core.paths import jupyter_path
    from jupyterlab_server.config import get_federated_extensions

    extension = get_federated_extensions(jupyter_path("labextensions"))["@jupyter/nbgrader"]
    bundle = "".join(Path(f).read_text(errors="replace")
                     for f in glob(os.path.join(extension["ext_path"], "static", "*.js")))
    plugin_ids = set(re.findall(r"""["'](@jupyter/nbgrader:[\w-]+)["']""", bundle))
    assert set(INSTRUCTOR_PLUGINS + STUDENT_PLUGINS) <= plugin_ids, sorted(plugin_ids)
    for name in INSTRUCTOR_SERVER_EXTENSIONS + STUDENT_SERVER_EXTENSIONS:   # nbgrader enabling them: see below
        module = importlib.import_module(name)
        assert hasattr(module, "load_jupyter_server_extension") or hasattr(module, "_load_jupyter_server_extension")


RESOLVE = """
import json
from jupyter_core.paths import jupyter_config_path, jupyter_path
from jupyter_server.extension.config import ExtensionConfigManager
from jupyterlab_server.config import get_page_config
page = get_page_config(jupyter_path("labextensions"))
server = ExtensionConfigManager(read_config_path=jupyter_config_path()).get_jpserver_extensions()
off = page["disabledExtensions"]       # a list, as the page gets it (a dict in some versions)
off = [k for k, v in off.items() if v] if isinstance(off, dict) else off
print(json.dumps({"disabled": sorted(off), "server": server}))
"""


def resolve(env) -> dict:
    """The disabled lab plugins and the server extensions JupyterLab would use in ``env``."""
    r = subprocess.run([sys.executable, "-c", RESOLVE], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("instructor", [False, True], ids=["student", "instructor"])
def test_jupyterlab_resolves_the_configuration_of_each_role(tmp_path, instructor):
    """The page config and server extensions JupyterLab computes, with the environment `course lab` gives it."""
    env = lab.lab_environment(instructor, clean_env(tmp_path))
    resolved = resolve(env)
    disabled = [p for p in resolved["disabled"] if p.startswith("@jupyter/nbgrader")]
    assert disabled == ([] if instructor else INSTRUCTOR_PLUGINS)
    for name in INSTRUCTOR_SERVER_EXTENSIONS:
        assert resolved["server"][name] is instructor
    for name in STUDENT_SERVER_EXTENSIONS:
        assert resolved["server"][name] is True   # as nbgrader's own config enables them


def test_lab_environment_adds_or_removes_the_student_folder():
    student = str(lab.STUDENT_CONFIG_DIR)
    env = lab.lab_environment(False, {"JUPYTER_CONFIG_PATH": "/course/etc"})
    assert env["JUPYTER_CONFIG_PATH"] == os.pathsep.join([student, "/course/etc"])
    assert lab.lab_environment(True, env)["JUPYTER_CONFIG_PATH"] == "/course/etc"
    assert "JUPYTER_CONFIG_PATH" not in lab.lab_environment(True, {"JUPYTER_CONFIG_PATH": student})


def test_the_command_line_passes_the_rest_to_jupyterlab():
    parse = build_parser().parse_args
    args = parse(["lab", "hw.ipynb", "--instructor", "--ServerApp.ip=0.0.0.0"])
    assert lab._split(args) == ("hw.ipynb", ["--ServerApp.ip=0.0.0.0"], True)
    args = parse(["lab", "--no-browser", "--port", "8899", "--", "--ServerApp.ip=0.0.0.0"])
    assert lab._split(args) == (None, ["--port=8899", "--no-browser", "--ServerApp.ip=0.0.0.0"], False)
    assert lab.lab_argv("hw.ipynb", ["--no-browser"])[1:3] == ["-m", "jupyterlab"]


def test_a_missing_notebook_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "autograder.cli", "lab", str(tmp_path / "nope.ipynb")],
                       capture_output=True, text=True, timeout=120, env=clean_env(tmp_path))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "nope.ipynb" in r.stderr


def test_the_configuration_ships_as_package_data():
    """pyproject's package-data globs for autograder pick up the student folder's files (so a wheel has them)."""
    try:
        import tomllib
    except ImportError:                      # Python 3.10
        from pip._vendor import tomli as tomllib
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["autograder"]
    package = ROOT / "autograder"
    shipped = {Path(f) for g in globs for f in glob(str(package / g), recursive=True)}
    files = {p for p in lab.STUDENT_CONFIG_DIR.rglob("*") if p.is_file()}
    assert files and files <= shipped, sorted(map(str, files - shipped))


@pytest.mark.slow
def test_the_readme_commands_give_the_student_configuration(tmp_path):
    """The README's commands for a course's own JupyterHub image are `lab.image_commands()`; run at the user
    level over a copy of nbgrader's own server config, they disable what `course lab` disables."""
    readme = (ROOT / "README.md").read_text()
    for command in lab.image_commands():
        assert command in readme, f"README.md lacks: {command}"
    env = clean_env(tmp_path)
    config_dir = Path(env["JUPYTER_CONFIG_DIR"])
    (config_dir / "jupyter_server_config.d").mkdir(parents=True)
    from jupyter_core.paths import jupyter_config_path
    nbgrader_json = next(Path(p) / "jupyter_server_config.d" / "nbgrader.json" for p in jupyter_config_path()
                         if (Path(p) / "jupyter_server_config.d" / "nbgrader.json").exists())
    shutil.copy(nbgrader_json, config_dir / "jupyter_server_config.d")   # as at the level pip enabled it
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["JUPYTER_PREFER_ENV_PATH"] = "0"        # the user level above this environment's, as sys_prefix would be
    for command in lab.image_commands(level="user"):
        subprocess.run(command.split(), env=env, check=True, capture_output=True, timeout=300)
    page = json.loads((config_dir / "labconfig" / "page_config.json").read_text())
    assert sorted(k for k, v in page["disabledExtensions"].items() if v) == INSTRUCTOR_PLUGINS
    server = resolve(env)["server"]
    assert [n for n in INSTRUCTOR_SERVER_EXTENSIONS if server[n] is False] == INSTRUCTOR_SERVER_EXTENSIONS


# ----------------------------------------------------------------------------------------- the browser test
#: A released hw1_mle notebook as a student filled it in, with the classic mistake of exponentiating without
#: subtracting the maximum: its public check on gda_predict_proba fails with this message.
SUBMISSION = ROOT / "examples" / "hw1_mle" / "missing_logsumexp.ipynb"
PUBLIC_CHECK_MESSAGE = "far from the data: work in log space so nothing underflows to 0/0"
SETUP_OUTPUT = "(1000, 2) classes:"          # printed by the notebook's data cell, before any check


def find_chromium():
    """A Chromium or Chrome to drive: the system's (scripts/install.sh installs Debian's `chromium`), else
    Playwright's own download. Skips, with the reason, only when neither is there."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[dev]')")
    for name in ("chromium", "google-chrome", "google-chrome-stable", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    with sync_playwright() as p:
        if os.path.exists(p.chromium.executable_path):
            return None          # Playwright's own build
    pytest.skip("no Chromium: scripts/install.sh installs it (apt-get install chromium as root on Debian, "
                "else `python -m playwright install chromium`)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, token, method="GET"):
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:                 # not listening (yet, or any more)
        return None


@contextlib.contextmanager
def course_lab(tmp_path, target, *, instructor):
    """`course lab TARGET --no-browser` on a free port with a random token and a private HOME; yields
    (base URL, token). The server, its kernels and anything they started are gone afterwards."""
    import psutil
    port, token = free_port(), secrets.token_hex(16)
    env = clean_env(tmp_path)
    env["JUPYTER_TOKEN"] = token
    argv = [sys.executable, "-m", "autograder.cli", "lab", str(target), *(["--instructor"] if instructor else []),
            "--no-browser", "--port", str(port), "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
            "--LabApp.expose_app_in_browser=True", *(["--allow-root"] if os.geteuid() == 0 else [])]
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                  cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    family = []
    try:
        deadline = time.monotonic() + 180
        while http(f"{base}/api/status", token) != 200:
            assert server.poll() is None, f"course lab exited {server.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"JupyterLab did not start:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
        yield base, token
    finally:
        with contextlib.suppress(psutil.Error):
            family = psutil.Process(server.pid).children(recursive=True)
        if server.poll() is None:
            http(f"{base}/api/shutdown", token, method="POST")     # stops its kernels too
            for sig, grace in ((None, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(server.pid, sig)
                try:
                    server.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    pass
        for proc in family:
            with contextlib.suppress(psutil.Error):
                proc.kill()


@pytest.mark.slow
@pytest.mark.parametrize("instructor", [False, True], ids=["student", "instructor"])
def test_a_released_assignment_runs_in_the_lab_of_each_role(tmp_path, instructor):
    executable = find_chromium()
    from playwright.sync_api import sync_playwright
    work = tmp_path / "course"
    work.mkdir()
    shutil.copy(SUBMISSION, work / "hw1_mle.ipynb")
    with course_lab(tmp_path, work / "hw1_mle.ipynb", instructor=instructor) as (base, token), sync_playwright() as p:
        # The formgrader server extension is off for a student (404), on for an instructor (its page).
        assert http(f"{base}/formgrader", token) == (200 if instructor else 404)
        browser = p.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/lab/tree/hw1_mle.ipynb?token={token}")
            page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook')",
                                   timeout=120_000)
            page.wait_for_function("() => jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel"
                                   "?.status === 'idle'", timeout=120_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            # The message is also in the check's source: wait for it in an output (attached: maybe off-screen).
            page.locator(".jp-OutputArea-output").filter(has_text=PUBLIC_CHECK_MESSAGE).first.wait_for(
                state="attached", timeout=120_000)
            outputs = "\n".join(page.locator(".jp-OutputArea-output").all_text_contents())
            assert SETUP_OUTPUT in outputs and "AssertionError" in outputs and PUBLIC_CHECK_MESSAGE in outputs
            text = page.locator("body").text_content()       # all of the page, shown or not (scripts aside)

            menus = page.locator(".lm-MenuBar-item").all_inner_texts()
            plugins = page.evaluate("ids => ids.map(i => jupyterapp.hasPlugin(i) && jupyterapp.isPluginActivated(i))",
                                    INSTRUCTOR_PLUGINS + STUDENT_PLUGINS)
            validate = page.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).count()
            assert validate == 1, "nbgrader's Validate button is a student tool: every role keeps it"
            if instructor:
                assert plugins == [True] * len(plugins)
                assert "Create Assignment" in text and "Nbgrader" in menus
                page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
                items = page.locator(".lm-Menu-item:not(.lm-mod-hidden) .lm-Menu-itemLabel").all_inner_texts()
                assert {"Assignment List", "Course List", "Formgrader", "Create assignment"} <= set(items), items
            else:
                assert plugins == [False] * len(INSTRUCTOR_PLUGINS) + [True] * len(STUDENT_PLUGINS)
                assert "Nbgrader" not in menus, menus
                for label in ("Create Assignment", "Formgrader", "Course List", "Assignment List", "Nbgrader"):
                    assert label not in text, f"the student's JupyterLab shows {label!r}"
        finally:
            browser.close()
