"""The grader against its own death: `course grade --workers 2` stopped mid-batch (SIGTERM, then SIGKILL of its
main process) leaves no process it started alive, and a rerun grades every submission exactly once."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBS = ROOT / "tests" / "fixtures" / "fixture_hw" / "submissions"
HANG = "import time\nwhile True:\n    time.sleep(1)\n"      # a top-level cell that never ends

pytestmark = pytest.mark.slow


def _env(tmp_path):
    env = dict(os.environ, COURSE_GRADER_SALT="hostile-test-salt", COURSE_GRADER_STATE=str(tmp_path / "state"),
               COURSE_MIN_ISOLATION="none", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("COURSE_MAX_NOTEBOOK_MB", None)
    return env


def _batch(tmp_path) -> tuple[Path, list]:
    """A suite file (the fixture with a 30 s notebook budget) and fast, slow_a, slow_b: the slow ones hang
    in a top-level cell until that budget cuts them off."""
    suite = tmp_path / "short_suite.py"
    suite.write_text("import copy\nfrom autograder.suites import load_suite\n"
                     "SUITE = copy.copy(load_suite('fixture_hw'))\nSUITE.notebook_timeout_s = 30.0\n")
    subs = tmp_path / "subs"
    subs.mkdir()
    nb = json.loads((SUBS / "complete.ipynb").read_text())
    (subs / "fast.ipynb").write_text(json.dumps(nb))
    paths = [subs / "fast.ipynb"]
    for name in ("slow_a", "slow_b"):
        slow = json.loads(json.dumps(nb))
        slow["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                              "source": HANG + f"# {name}\n"})
        (subs / f"{name}.ipynb").write_text(json.dumps(slow))
        paths.append(subs / f"{name}.ipynb")
    return suite, paths


def _tree(proc) -> list:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _rows(out: Path) -> list:
    with open(out / "grades.csv") as f:
        return [r["submission"] for r in csv.DictReader(f)]


def _stop_mid_batch(argv, env, out: Path, sig: int, log: Path) -> int:
    """Run `course grade`, send ``sig`` to its main process once fast is graded and both pool workers run a
    sandbox, and return its exit status once every process it started has died (the test fails otherwise)."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    seen: dict = {}
    try:
        deadline = time.monotonic() + 240
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            tree = _tree(proc)
            seen.update({p.pid: p for p in tree})
            workers = [p for p in tree if _ppid(p) == proc.pid and "spawn_main" in " ".join(_cmdline(p))]
            busy = [w for w in workers if _children(w)]
            if (out / "fast" / "results.json").exists() and len(workers) == 2 and len(busy) == 2:
                time.sleep(1.0)                 # let the sandboxes get going
                seen.update({p.pid: p for p in _tree(proc)})
                ready = True
                break
            time.sleep(0.2)
        assert ready, f"the batch never had both workers running a sandbox: {log.read_text()[-1500:]}"
        assert proc.poll() is None
        os.kill(proc.pid, sig)                  # the main process only (as `kill` or the OOM killer would)
        rc = proc.wait(timeout=30)
        survivors = list(seen.values())
        deadline = time.monotonic() + 15
        while survivors and time.monotonic() < deadline:
            survivors = [p for p in survivors if _alive(p)]
            time.sleep(0.2)
        assert not survivors, [(p.pid, " ".join(_cmdline(p))[:120]) for p in survivors]
        assert len(seen) >= 4                   # 2 workers, each with at least one sandboxed process
        return rc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for p in seen.values():
            if _alive(p):
                p.kill()


def test_killed_course_grade_takes_its_workers_and_sandboxes_along_and_a_rerun_grades_each_once(tmp_path):
    """SIGTERM, then SIGKILL, of `course grade --workers 2` mid-batch; then a rerun that finishes."""
    suite, paths = _batch(tmp_path)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "autograder.cli", "grade", *map(str, paths), "--assignment", str(suite),
            "--out", str(out), "--workers", "2"]
    env = _env(tmp_path)

    rc = _stop_mid_batch(argv, env, out, signal.SIGTERM, tmp_path / "term.log")
    assert rc == 128 + signal.SIGTERM
    assert "stopped by SIGTERM: rerun the same command" in (tmp_path / "term.log").read_text()
    first = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    assert set(first) == {"fast"} and _rows(out) == ["fast"] and not list(out.rglob("*.tmp"))

    rc = _stop_mid_batch(argv, env, out, signal.SIGKILL, tmp_path / "kill.log")
    assert rc == -signal.SIGKILL
    assert {p.parent.name for p in out.glob("*/results.json")} == {"fast"} and not list(out.rglob("*.tmp"))

    rerun = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "1 submission(s) already graded" in rerun.stderr
    assert (out / "fast" / "results.json").stat().st_mtime_ns == first["fast"]        # never graded again
    assert sorted(_rows(out)) == ["fast", "slow_a", "slow_b"]                          # one row each
    for name in ("fast", "slow_a", "slow_b"):
        res = json.loads((out / name / "results.json").read_text())
        assert res["extra_data"]["complete"] and res["extra_data"]["submission"] == name
    assert json.loads((out / "fast" / "results.json").read_text())["score"] == 100.0


def _cmdline(p) -> list:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _ppid(p) -> int:
    try:
        return p.ppid()
    except psutil.Error:
        return -1


def _children(p) -> list:
    try:
        return p.children()
    except psutil.Error:
        return []
