"""The sandbox: limits, timeouts, a scrubbed environment, and (as root) a private user that can read
nothing of the project and import neither the reference nor scikit-learn."""
import json
import os
import signal
import tempfile
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.sandbox import Limits, describe_exit, run_sandboxed

REPO = Path(__file__).resolve().parents[1]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="a private sandbox user needs a grader running as root")
FAST = Limits(wall_seconds=20, memory_bytes=1 << 30, max_processes=64, file_size_bytes=1 << 20,
              output_bytes=4096, cpu_seconds=10)


@pytest.fixture
def rundir():
    d = Path(tempfile.mkdtemp(prefix="course-test-run-"))
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def py(code, rundir, limits=FAST, **kw):
    return run_sandboxed(["{python}", "-I", "-c", code], rundir, limits, **kw)


def test_limits_are_validated():
    with pytest.raises(ValueError, match="memory_bytes"):
        Limits(memory_bytes=0)
    with pytest.raises(ValueError, match="wall_seconds"):
        Limits(wall_seconds=-1)


def test_describe_exit_names_the_signal():
    assert describe_exit(3) == "exit status 3"
    assert "segmentation fault" in describe_exit(-signal.SIGSEGV)
    assert "file-size limit" in describe_exit(-signal.SIGXFSZ)


def test_environment_is_scrubbed_and_threads_capped(rundir, monkeypatch):
    monkeypatch.setenv("COURSE_GRADER_SALT", "do-not-leak")
    r = py("import json, os; print(json.dumps(dict(os.environ)))", rundir, FAST.__class__(**{**FAST.as_dict(), "threads": 2}))
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)
    assert "COURSE_GRADER_SALT" not in env and not any("SALT" in k for k in env)
    assert env["HOME"] == str(rundir.resolve()) and env["OMP_NUM_THREADS"] == "2" and env["MPLBACKEND"] == "Agg"
    assert env["TMPDIR"].startswith(str(rundir.resolve()))


def test_wall_clock_budget_kills_the_whole_group(rundir):
    code = ("import os, time\n"
            "if os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
            "open('started', 'w').close(); time.sleep(60)")
    r = py(code, rundir, Limits(**{**FAST.as_dict(), "wall_seconds": 1.5}))
    assert r.timed_out and "1.5 s" in r.reason and r.duration < 5
    if os.geteuid() == 0:  # the setsid'd grandchild is gone too
        assert not sandbox._uid_has_processes(r.uid)


def test_memory_file_size_and_process_limits(rundir):
    r = py("x = bytearray(2 << 30)", rundir)
    assert r.returncode != 0 and "MemoryError" in r.stderr
    r = py("open('big', 'wb').write(b'x' * (2 << 20))", rundir)
    assert r.returncode != 0 and "File too large" in r.stderr  # Python ignores SIGXFSZ: the write fails
    r = py("while True: pass", rundir, Limits(**{**FAST.as_dict(), "cpu_seconds": 1}))
    assert r.returncode == -signal.SIGXCPU and "CPU" in r.reason


def test_output_flood_is_truncated_keeping_head_and_tail(rundir):
    r = py("import sys\nprint('HEAD')\nfor _ in range(2000): sys.stdout.write('x' * 1000)\nprint('TAIL')", rundir)
    assert r.returncode == 0
    assert len(r.stdout) < 4096 + 200 and r.stdout.startswith("HEAD") and r.stdout.rstrip().endswith("TAIL")
    assert "dropped" in r.stdout


@as_root
def test_private_user_cannot_read_secrets_nor_import_the_reference(rundir):
    salt = Path(tempfile.mkdtemp(prefix="course-test-grader-")) / "salt"
    salt.write_text("secret")
    os.chmod(salt, 0o600)
    canary = Path(tempfile.mkdtemp(prefix="course-test-canary-"))
    os.chmod(canary, 0o755)
    (canary / "keep.txt").write_text("keep")
    os.chmod(canary / "keep.txt", 0o644)
    probes = [str(salt), str(REPO / "autograder" / "suites" / "__init__.py"), str(REPO / "tests" / "conftest.py"),
              str(REPO / "course_lib" / "__init__.py"), "/root/.bashrc"]
    code = f"""
import json, os, sys
out = {{"uid": os.getuid(), "read": [], "imported": [], "wrote": []}}
for p in {probes!r}:
    try:
        open(p, "rb").read(1); out["read"].append(p)
    except OSError:
        pass
for m in ("sklearn", "course_lib.mixture", "course_lib.vae", "course_lib._base", "autograder"):
    try:
        __import__(m); out["imported"].append(m)
    except ImportError:
        pass
from course_lib.data import load_faithful   # the student view: data sets and seeding
from course_lib import seed_everything
out["faithful"] = load_faithful().shape[0]
import numpy
for p in ({str(canary / 'keep.txt')!r}, {str(canary / 'new.txt')!r}, {str(REPO / 'pwned.txt')!r}):
    try:
        open(p, "w").write("x"); out["wrote"].append(p)
    except OSError:
        pass
open("/tmp/course-test-stray-" + str(os.getuid()), "w").write("left behind")
print(json.dumps(out))
"""
    r = py(code, rundir, protect=[salt.parent])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["uid"] in sandbox.UID_RANGE and out["uid"] == r.uid
    assert out["read"] == [] and out["imported"] == [] and out["wrote"] == []
    assert out["faithful"] == 272
    assert (canary / "keep.txt").read_text() == "keep" and not (canary / "new.txt").exists()
    assert not Path(f"/tmp/course-test-stray-{r.uid}").exists()  # cleaned after the run
    assert not sandbox._uid_has_processes(r.uid)
    # the run's folder is handed back to the grader
    assert os.stat(rundir).st_uid == 0


@as_root
def test_process_limit_is_per_run(rundir):
    code = ("import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time; time.sleep(30)\n"
            "        n += 1\nexcept OSError:\n    print(n)")
    r = py(code, rundir, Limits(**{**FAST.as_dict(), "max_processes": 20}))
    assert r.returncode == 0 and 5 <= int(r.stdout.split()[-1]) < 20
    assert not sandbox._uid_has_processes(r.uid)


def test_runtime_lacks_the_reference_and_sklearn():
    site = next((sandbox.build_runtime() / "lib").glob("python3*/site-packages"))
    names = {p.name.split("-")[0].lower() for p in site.iterdir()}
    assert "numpy" in names and "papermill" in names
    assert not {"sklearn", "autograder"} & names
    assert not list(site.glob("__editable__*"))
    # of course_lib, only the student view: data sets and seeding, no estimator
    shipped = {p.relative_to(site / "course_lib").parts[0] for p in (site / "course_lib").rglob("*")}
    assert shipped == set(sandbox.STUDENT_VIEW)
