"""Grading end to end: resume after SIGKILL, workers=2 and Dask give the same scores, seeds, errors, check."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from autograder import cli
from autograder.grading import (code_source, collect_submissions, grade_one, load_salt, submission_seeds)
from autograder.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]
SUBS = ROOT / "tests" / "fixtures" / "fixture_hw" / "submissions"
SALT = "test-salt-0123456789"
EXPECTED = {"complete": 100.0, "partial": 45.0, "broken": 30.0}


@pytest.fixture(autouse=True)
def grader_env(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_GRADER_SALT", SALT)
    monkeypatch.setenv("COURSE_GRADER_STATE", str(tmp_path / "state"))


def _env():
    env = dict(os.environ, COURSE_GRADER_SALT=SALT)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _scores(out_dir):
    with open(Path(out_dir) / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    names = [r["submission"] for r in rows]
    assert len(names) == len(set(names)), f"duplicate rows in grades.csv: {names}"
    return {r["submission"]: float(r["score"]) for r in rows}


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """`course grade` on two submissions, SIGKILLed after the first result, then run again."""
    out = tmp_path_factory.mktemp("resume") / "grades"
    argv = [sys.executable, "-m", "autograder.cli", "grade", str(SUBS / "partial.ipynb"),
            str(SUBS / "broken.ipynb"), "--assignment", "fixture_hw", "--out", str(out)]
    proc = subprocess.Popen(argv, env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and proc.poll() is None:
        if list(out.glob("*/results.json")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    state_after_kill = {"done": sorted(first), "leftovers": sorted(p.name for p in out.rglob("*.tmp"))}
    for p in out.glob("*/results.json"):         # whatever was written is whole
        assert json.loads(p.read_text())["extra_data"]["complete"] is True
    csv_after_kill = _scores(out) if (out / "grades.csv").exists() else {}
    rerun = subprocess.run(argv, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    return {"out": out, "first": first, "after_kill": state_after_kill, "csv_after_kill": csv_after_kill,
            "rerun": rerun}


def test_resume_after_sigkill_grades_each_submission_once(resumed):
    out, rerun = resumed["out"], resumed["rerun"]
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert len(resumed["first"]) >= 1 and resumed["after_kill"]["leftovers"] == []
    assert set(resumed["csv_after_kill"]) <= set(resumed["first"])
    assert f"{len(resumed['first'])} submission(s) already graded" in rerun.stderr
    for name, mtime in resumed["first"].items():          # not graded a second time
        assert (out / name / "results.json").stat().st_mtime_ns == mtime
    assert _scores(out) == {"partial": EXPECTED["partial"], "broken": EXPECTED["broken"]}
    for name in ("partial", "broken"):
        assert {p.name for p in (out / name).iterdir()} == {"results.json", "feedback.md", "feedback.html"}
    assert "partial" in rerun.stdout and "45 / 100" in rerun.stdout    # the table


def test_results_json_schema(resumed):
    res = json.loads((resumed["out"] / "partial" / "results.json").read_text())
    assert {"score", "execution_time", "output", "tests", "extra_data"} <= set(res)
    assert res["score"] == 45.0 and sum(t["max_score"] for t in res["tests"]) == 100
    for t in res["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(t)
        assert t["status"] in ("passed", "failed") and 0 <= t["score"] <= t["max_score"]
    ed = res["extra_data"]
    assert {"seeds", "versions", "durations", "sandbox_limits", "submission_sha256"} <= set(ed)


def test_feedback_names_the_known_mistake_and_hidden_checks_leak_nothing(resumed):
    res = json.loads((resumed["out"] / "partial" / "results.json").read_text())
    tests = {t["name"]: t for t in res["tests"]}
    cov = tests["mle_covariance matches the reference"]["output"]
    assert "unbiased_covariance" in cov and "expected" in cov and "max abs error" in cov and "inputs:\n    X = [[" in cov
    for t in res["tests"]:
        if "hidden" in t["tags"]:
            assert t["output"].split(" (")[0] in ("passed", "failed")
            assert not any(ch.isdigit() for ch in t["output"].replace(" of ", "").split("(")[-1].rstrip(")")
                           if "hidden cases" not in t["output"]), t["output"]
            assert "expected" not in t["output"] and "=" not in t["output"]
    md = (resumed["out"] / "partial" / "feedback.md").read_text()
    html = (resumed["out"] / "partial" / "feedback.html").read_text()
    assert "unbiased_covariance" in md and "unbiased_covariance" in html and "45 / 100" in md


def test_workers_2_gives_the_same_scores(resumed, tmp_path):
    out = tmp_path / "w2"
    r = subprocess.run([sys.executable, "-m", "autograder.cli", "grade", str(SUBS / "complete.ipynb"),
                        str(SUBS / "partial.ipynb"), "--assignment", "fixture_hw", "--out", str(out),
                        "--workers", "2"], env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _scores(out) == {"complete": 100.0, "partial": 45.0}
    _same_result(out / "partial", resumed["out"] / "partial")


def _same_result(a, b):
    """The same submission graded twice (same salt): same seeds, same score on every check."""
    a = json.loads((a / "results.json").read_text())
    b = json.loads((b / "results.json").read_text())
    assert a["extra_data"]["seeds"] == b["extra_data"]["seeds"]
    assert [(t["name"], t["score"]) for t in a["tests"]] == [(t["name"], t["score"]) for t in b["tests"]]


def test_dask_local_cluster_through_the_cli(resumed, tmp_path):
    from distributed import LocalCluster
    out = tmp_path / "dask"
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        rc = cli.main(["grade", str(SUBS / "partial.ipynb"), str(SUBS / "broken.ipynb"),
                       "--assignment", "fixture_hw", "--out", str(out), "--scheduler", cluster.scheduler_address])
    assert rc == 0
    assert _scores(out) == _scores(resumed["out"])
    for name in ("partial", "broken"):
        _same_result(out / name, resumed["out"] / name)


# ---------------------------------------------------------------------------------- no sandbox needed
def test_seeds_depend_on_code_and_salt_only():
    nb = json.loads((SUBS / "complete.ipynb").read_text())
    same = json.loads(json.dumps(nb))
    same["cells"][0]["source"] = "a different markdown cell"          # markdown does not count
    edited = json.loads(json.dumps(nb))
    edited["cells"][3]["source"] = "".join(edited["cells"][3]["source"]) + "\n# a comment"
    as_lines = json.loads(json.dumps(nb))
    as_lines["cells"][3]["source"] = "".join(as_lines["cells"][3]["source"]).splitlines(keepends=True)
    s = submission_seeds(code_source(nb), b"salt-a")
    assert s == submission_seeds(code_source(same), b"salt-a") == submission_seeds(code_source(as_lines), b"salt-a")
    assert s["hidden"] != submission_seeds(code_source(edited), b"salt-a")["hidden"]
    other = submission_seeds(code_source(nb), b"salt-b")
    assert s["visible"] != other["visible"] and s["hidden"] != other["hidden"]
    suite = load_suite("fixture_hw")
    a = suite.generate_cases(np.random.default_rng(int(s["hidden"], 16)), "hidden")
    b = suite.generate_cases(np.random.default_rng(int(other["hidden"], 16)), "hidden")
    assert not np.allclose(a["log_sum_exp"][0]["a"], b["log_sum_exp"][0]["a"])


def test_salt_file_is_created_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_GRADER_SALT")
    monkeypatch.setenv("COURSE_GRADER_STATE", str(tmp_path / "st"))
    s1 = load_salt()
    assert (tmp_path / "st" / "salt").stat().st_mode & 0o777 == 0o600
    assert load_salt() == s1 and len(s1) >= 32
    monkeypatch.setenv("COURSE_GRADER_SALT", "explicit")
    assert load_salt() == b"explicit"


def test_grader_error_is_one_result_with_score_0(tmp_path):
    bad = tmp_path / "bad_suite.py"
    bad.write_text(
        "from autograder.suite import Suite, Function, Check\n"
        "def make_cases(rng, visibility):\n    raise RuntimeError('the case generator broke')\n"
        "SUITE = Suite(name='bad', notebook='x.ipynb', parameters={}, functions={'f': Function(5)},\n"
        "              make_cases=make_cases, checks=[Check('c', 'f', 100, 'visible', lambda c, o, x: True)])\n")
    res = grade_one((SUBS / "complete.ipynb").read_bytes(), "complete", str(bad), {"visible": "1", "hidden": "2"})
    r = res["results"]
    assert r["score"] == 0 and r["output"].startswith("grader error: RuntimeError: the case generator broke")
    assert r["extra_data"]["complete"] and r["extra_data"]["error"]


def test_unreadable_notebook_gets_a_result():
    r = grade_one(b"{not json", "junk", "fixture_hw", {"visible": "1", "hidden": "2"})["results"]
    assert r["score"] == 0 and "could not be read" in r["output"]


def test_names_are_unique_and_missing_files_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "hw.ipynb").write_text("{}")
    names = [n for n, _ in collect_submissions([tmp_path / "a" / "hw.ipynb", tmp_path / "b" / "hw.ipynb"])]
    assert names == ["hw", "hw-2"]
    assert cli.main(["grade", str(tmp_path / "nope.ipynb"), "--assignment", "fixture_hw", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such file" in err
    assert cli.main(["grade", str(tmp_path / "a" / "hw.ipynb"), "--assignment", "hw9", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown assignment 'hw9'" in err
    assert cli.main(["check", str(tmp_path / "missing.ipynb")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_course_check_prints_expected_vs_got_for_public_checks():
    r = subprocess.run([sys.executable, "-m", "autograder.cli", "check", str(SUBS / "partial.ipynb")],
                       env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=200)
    assert r.returncode == 1, r.stderr[-2000:]
    out = r.stdout
    assert "PASS  sample_mean matches the reference" in out
    assert "FAIL  mle_covariance matches the reference" in out
    assert "expected [[" in out and "got      [[" in out and "unbiased_covariance" in out
    assert "hidden" not in out.split("public checks")[0]          # hidden checks are not run
    assert "public checks: 30 / 50 points" in out


# ---------------------------------------------------------------------------------- Gradescope
def test_gradescope_zip_and_run_autograder_with_paths_overridden(tmp_path):
    import zipfile
    zpath = tmp_path / "autograder.zip"
    assert cli.main(["gradescope", "fixture_hw", "--out", str(zpath)]) == 0
    with zipfile.ZipFile(zpath) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        zf.extractall(tmp_path / "source")
    for required in ("setup.sh", "run_autograder", "grader.json", "state/salt", "pyproject.toml",
                     "course_lib/__init__.py", "autograder/grading.py", "autograder/judge.py",
                     "autograder/suites/__init__.py", "suite/fixture_hw.py"):
        assert required in names, required
    assert not any("__pycache__" in n for n in names)
    assert modes["run_autograder"] == 0o755 and modes["state/salt"] == 0o600
    cfg = json.loads((tmp_path / "source" / "grader.json").read_text())
    assert cfg == {**cfg, "assignment": "fixture_hw", "suite": "suite/fixture_hw.py"}

    def run_autograder(submission_files):
        sub = tmp_path / f"submission{len(submission_files)}"
        sub.mkdir()
        for name, data in submission_files.items():
            (sub / name).write_text(data)
        results = tmp_path / f"results{len(submission_files)}" / "results.json"
        env = dict(os.environ, COURSE_SUBMISSION_DIR=str(sub), COURSE_RESULTS_JSON=str(results),
                   COURSE_GRADER_CONFIG=str(tmp_path / "source" / "grader.json"), COURSE_PYTHON=sys.executable,
                   PYTHONPATH=str(tmp_path / "source"))         # the zip's own copy of the package
        env.pop("COURSE_GRADER_SALT", None)
        env.pop("COURSE_GRADER_STATE", None)
        r = subprocess.run(["bash", str(tmp_path / "source" / "run_autograder")], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(results.read_text())

    res = run_autograder({})
    assert res["score"] == 0 and "no .ipynb notebook" in res["output"]
    res = run_autograder({"fixture_hw.ipynb": "{broken json", "notes.txt": "x"})
    assert res["score"] == 0 and "could not be read" in res["output"]
    assert res["extra_data"]["assignment"] == "fixture_hw"


def test_bench_grader_batch_is_distinct_submissions(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_grader", ROOT / "benchmarks" / "bench_grader.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    paths = bench.make_batch(bench.sample("fixture_hw"), tmp_path, 3)
    seeds = {submission_seeds(code_source(json.loads(p.read_text())), b"s")["hidden"] for p in paths}
    assert len(paths) == 3 and len(seeds) == 3                     # each copy gets its own cases
    with pytest.raises(SystemExit):
        bench.main(["--help"])


def test_forbidden_imports_cost_the_function_whose_cell_uses_them(tmp_path):
    from autograder.grading import _static_check
    suite = load_suite("fixture_hw")
    nb = json.loads((SUBS / "complete.ipynb").read_text())
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]}
    src = "".join(cells["sample_mean"]["source"])
    cells["sample_mean"]["source"] = "from sklearn.preprocessing import scale\n" + src
    p = tmp_path / "one.ipynb"
    p.write_text(json.dumps(nb))
    found = _static_check(p, suite)
    assert set(found) == {"sample_mean"} and found["sample_mean"][0] == "forbidden"
    assert "sklearn" in found["sample_mean"][1]
    nb["cells"][2]["source"] = "import numpy as np\nimport sklearn"            # the shared imports cell
    p.write_text(json.dumps(nb))
    assert set(_static_check(p, suite)) == {"sample_mean", "mle_covariance", "log_sum_exp"}
