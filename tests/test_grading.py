"""Grading end to end: resume after SIGKILL, workers=2 and Dask (over TLS) give the same scores; seeds that
nothing student-visible reveals; suites by registered name only; size limits; isolation levels; private folders."""
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import cli, grading
from autograder.grading import (collect_submissions, grade_one, load_salt, read_submission, seed_commitment,
                                submission_seeds)
from autograder.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]
SUBS = ROOT / "tests" / "fixtures" / "fixture_hw" / "submissions"
SALT = "test-salt-0123456789"
EXPECTED = {"complete": 100.0, "partial": 40.0, "broken": 30.0}  # partial: its covariance is wrong, so the PSD invariant earns nothing


@pytest.fixture(autouse=True)
def grader_env(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_GRADER_SALT", SALT)
    monkeypatch.setenv("COURSE_GRADER_STATE", str(tmp_path / "state"))
    # These tests are about the pipeline, on whatever sandbox the host offers; the minimum level has its own.
    monkeypatch.setenv("COURSE_MIN_ISOLATION", "none")
    monkeypatch.delenv("COURSE_MAX_NOTEBOOK_MB", raising=False)


def _env():
    env = dict(os.environ, COURSE_GRADER_SALT=SALT, COURSE_MIN_ISOLATION="none")
    env["PYTHONPATH"] = str(ROOT)
    env.pop("COURSE_MAX_NOTEBOOK_MB", None)
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
    assert len(resumed["first"]) >= 1     # a write the kill cut short leaves at most a hidden temporary file,
    assert all(n.startswith(".") and n.endswith(".tmp") for n in resumed["after_kill"]["leftovers"])
    assert not list(out.rglob("*.tmp"))  # which the next run removes
    assert set(resumed["csv_after_kill"]) <= set(resumed["first"])
    assert f"{len(resumed['first'])} submission(s) already graded" in rerun.stderr
    for name, mtime in resumed["first"].items():          # not graded a second time
        assert (out / name / "results.json").stat().st_mtime_ns == mtime
    assert _scores(out) == {"partial": EXPECTED["partial"], "broken": EXPECTED["broken"]}
    for name in ("partial", "broken"):
        assert {p.name for p in (out / name).iterdir()} == {"results.json", "feedback.md", "feedback.html"}
    assert "partial" in rerun.stdout and "40 / 100" in rerun.stdout    # the table


def test_results_json_schema(resumed):
    res = json.loads((resumed["out"] / "partial" / "results.json").read_text())
    assert {"score", "execution_time", "output", "tests", "extra_data"} <= set(res)
    assert res["score"] == 40.0 and sum(t["max_score"] for t in res["tests"]) == 100
    for t in res["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(t)
        assert t["status"] in ("passed", "failed") and 0 <= t["score"] <= t["max_score"]
    ed = res["extra_data"]
    assert {"seed_commitment", "isolation", "versions", "durations", "sandbox_limits", "submission_sha256"} <= set(ed)
    assert "seeds" not in ed and ed["isolation"] in ("none", "uid", "namespaces")


def test_no_seed_reaches_anything_a_student_sees(resumed):
    """results.json, feedback.md/html and grades.csv hold neither seed, in hex, in part or as the rng's int."""
    texts = {p.relative_to(resumed["out"]): p.read_text() for p in resumed["out"].rglob("*") if p.is_file()}
    assert {"grades.csv", "partial/results.json", "partial/feedback.md", "broken/feedback.html"} <= set(map(str, texts))
    for name in ("partial", "broken"):
        seeds = submission_seeds((SUBS / f"{name}.ipynb").read_bytes(), SALT.encode())
        res = json.loads(texts[Path(name, "results.json")])
        assert res["extra_data"]["seed_commitment"] == seed_commitment(seeds)
        for seed in seeds.values():
            for form in (seed[:12], seed[-12:], str(int(seed, 16))[:15]):
                assert not [str(p) for p, t in texts.items() if form in t], form


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
    assert "unbiased_covariance" in md and "unbiased_covariance" in html and "40 / 100" in md


def test_workers_2_gives_the_same_scores(resumed, tmp_path):
    out = tmp_path / "w2"
    r = subprocess.run([sys.executable, "-m", "autograder.cli", "grade", str(SUBS / "complete.ipynb"),
                        str(SUBS / "partial.ipynb"), "--assignment", "fixture_hw", "--out", str(out),
                        "--workers", "2"], env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _scores(out) == {"complete": 100.0, "partial": 40.0}
    _same_result(out / "partial", resumed["out"] / "partial")


def _same_result(a, b):
    """The same submission graded twice (same salt): same seeds, same score on every check."""
    a = json.loads((a / "results.json").read_text())
    b = json.loads((b / "results.json").read_text())
    assert a["extra_data"]["seed_commitment"] == b["extra_data"]["seed_commitment"]
    assert [(t["name"], t["score"]) for t in a["tests"]] == [(t["name"], t["score"]) for t in b["tests"]]


def _tls_files(folder: Path) -> tuple:
    """A self-signed certificate and key for 127.0.0.1 (openssl), used as CA, scheduler, worker and client."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_dask_tls_cluster_through_the_cli(resumed, tmp_path, capsys):
    """`course grade --scheduler tls://... --tls-*`: same scores as locally; no task key names a seed."""
    from distributed import LocalCluster
    from distributed.security import Security
    cert, key = _tls_files(tmp_path)
    sec = Security(tls_ca_file=str(cert), tls_scheduler_cert=str(cert), tls_scheduler_key=str(key),
                   tls_worker_cert=str(cert), tls_worker_key=str(key), tls_client_cert=str(cert),
                   tls_client_key=str(key), require_encryption=True)
    out = tmp_path / "dask"
    subs = [str(SUBS / "partial.ipynb"), str(SUBS / "broken.ipynb")]
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                      protocol="tls://", host="127.0.0.1", security=sec) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        assert cli.main(["grade", *subs, "--assignment", "fixture_hw", "--out", str(out), "--scheduler", address]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "needs TLS credentials" in err and not out.exists()
        rc = cli.main(["grade", *subs, "--assignment", "fixture_hw", "--out", str(out), "--scheduler", address,
                       "--tls-ca-file", str(cert), "--tls-cert", str(cert), "--tls-key", str(key)])
        keys = {str(t.key) for t in cluster.scheduler.transition_log}
    assert rc == 0
    assert _scores(out) == _scores(resumed["out"])
    for name in ("partial", "broken"):
        _same_result(out / name, resumed["out"] / name)
    assert any(k.startswith("course-grade-partial-") for k in keys)
    for name in ("partial", "broken"):
        for seed in submission_seeds((SUBS / f"{name}.ipynb").read_bytes(), SALT.encode()).values():
            assert not [k for k in keys if seed[:8] in k]


def test_tls_options_are_checked_before_connecting(tmp_path):
    assert grading.dask_security(None) is None and grading.dask_security("tcp://h:8786") is None
    with pytest.raises(ValueError, match="need a tls:// scheduler address"):
        grading.dask_security("tcp://h:8786", ca_file="ca.pem")
    with pytest.raises(ValueError, match="--tls-ca-file and --tls-cert"):
        grading.dask_security("tls://h:8786", cert=str(tmp_path / "c.pem"))
    with pytest.raises(ValueError, match="no such file"):
        grading.dask_security("tls://h:8786", ca_file=str(tmp_path / "ca.pem"), cert=str(tmp_path / "c.pem"))
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "c.pem").write_text("x")
    sec = grading.dask_security("tls://h:8786", ca_file=str(tmp_path / "ca.pem"), cert=str(tmp_path / "c.pem"))
    assert sec.require_encryption and sec.tls_ca_file == str(tmp_path / "ca.pem")


# ---------------------------------------------------------------------------------- no sandbox needed
def test_seeds_cover_the_exact_notebook_bytes():
    """A markdown cell (where the attack hid its answers) changes the cases; the same bytes never do."""
    raw = (SUBS / "complete.ipynb").read_bytes()
    nb = json.loads(raw)
    markdown = json.loads(json.dumps(nb))
    md = next(c for c in markdown["cells"] if c["cell_type"] == "markdown")
    md["source"] = "answers: 0.1 0.2 0.3"
    s = submission_seeds(raw, b"salt-a")
    assert s == submission_seeds(bytes(raw), b"salt-a")                       # the same submission, the same cases
    assert s["visible"] != s["hidden"]
    other = submission_seeds(json.dumps(markdown).encode(), b"salt-a")
    assert other["visible"] != s["visible"] and other["hidden"] != s["hidden"]
    assert submission_seeds(raw + b"\n", b"salt-a")["hidden"] != s["hidden"]  # even one trailing byte
    salted = submission_seeds(raw, b"salt-b")
    assert salted["visible"] != s["visible"] and salted["hidden"] != s["hidden"]
    suite = load_suite("fixture_hw")
    a = suite.generate_cases(np.random.default_rng(int(s["hidden"], 16)), "hidden")
    b = suite.generate_cases(np.random.default_rng(int(other["hidden"], 16)), "hidden")
    assert not np.allclose(a["log_sum_exp"][0]["a"], b["log_sum_exp"][0]["a"])
    c = seed_commitment(s)
    assert c == seed_commitment(dict(s)) and c != seed_commitment(other)
    assert not any(s[v][:8] in c[v] or c[v] in s[v] for v in s)


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
    assert r["score"] == 0 and "not a Jupyter notebook (invalid JSON at line 1" in r["output"]


BAD_FILES = {   # name: (content, what the one line must say)
    "code.py": (b"def sample_mean(X):\n    return X.mean(0)\n", "(a .py file)"),
    "notes.txt": (b'{"cells": []}', "(a .txt file)"),
    "empty.ipynb": (b"", "the file is empty"),
    "blank.ipynb": (b"  \n", "the file is empty"),
    "latin1.ipynb": ("{\"cells\": [\"\xe9\"]}".encode("latin-1"), "not UTF-8 text"),
    "broken.ipynb": (b'{"cells": [', "invalid JSON at line 1, column 12"),
    "deep.ipynb": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "object.ipynb": (b"{}", "it has no list of cells"),
    "list.ipynb": (b"[1, 2]", "it has no list of cells"),
    "v3.ipynb": (b'{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}', "in format 3 (nbformat)"),
    "unversioned.ipynb": (b'{"cells": []}', "in no known format (nbformat)"),
}


def _magic_heavy(n_magic: int, n_lines: int, escape: str = "!true") -> dict:
    """The fixture's correct notebook with one more cell: ``n_magic`` lines ``<escape> i`` (shell escapes by
    default), then ``n_lines`` lines of 100 additions each (IPython re-tokenises the whole cell once per escape)."""
    nb = json.loads((SUBS / "complete.ipynb").read_text())
    src = "".join(f"{escape} {i}\n" for i in range(n_magic)) + ("_p = " + "+".join(["1"] * 100) + "\n") * n_lines
    nb["cells"].insert(2, {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                           "source": src})
    return nb


@pytest.mark.parametrize("escape", ["!true", ";str", ",str", "/str", "x[0] = !true", "a, b = %time"])
def test_a_notebook_full_of_magics_is_read_in_linear_time(tmp_path, escape):
    """250 shell escapes in a 680 kB cell took IPython's translation 10 minutes (one pass over the cell per
    escape), and so do IPython's autocalls (``;f``) and assignments of escapes to any target, which the count of
    escapes once missed; code past a million characters is refused with one line before anything reads it."""
    from autograder.static_check import check_notebook
    nb = _magic_heavy(250, 3_000, escape)
    t0 = time.monotonic()
    rep = check_notebook(nbformat.from_dict(nb), ["sample_mean"], ["sklearn"])
    assert time.monotonic() - t0 < 60 and rep.ok and not rep.missing, rep
    big = tmp_path / "big.ipynb"
    big.write_text(json.dumps(_magic_heavy(500, 5_000)))
    sub = read_submission(big)
    assert sub.data is None and "million characters" in sub.problem and "\n" not in sub.problem, sub.problem
    many = tmp_path / "many.ipynb"          # short lines of escapes: each is read as some forty characters
    many.write_text(json.dumps(_magic_heavy(grading.MAX_ESCAPE_LINES + 1, 0, escape)))
    sub = read_submission(many)
    assert sub.data is None and f"{grading.MAX_ESCAPE_LINES + 1} lines of IPython syntax" in sub.problem, sub.problem
    fine = tmp_path / "fine.ipynb"
    fine.write_text(json.dumps(_magic_heavy(grading.MAX_ESCAPE_LINES - 10, 0, escape)))
    assert read_submission(fine).problem is None
    # fifty cells, each just under the size where the check translates line by line, took minutes
    spread = _magic_heavy(100, 60, escape)
    spread["cells"] += [dict(spread["cells"][2], id=f"c{i}") for i in range(49)]
    (tmp_path / "spread.ipynb").write_text(json.dumps(spread))
    sub = read_submission(tmp_path / "spread.ipynb")
    assert sub.data is None and "would take the grader minutes" in sub.problem, sub.problem


@pytest.mark.parametrize("cell", [
    "\xa0%%capture\n" + "!true\n" * 400 + "_p = 1\n" * 10_000,   # not a cell magic to IPython: 28 s
    "%timeit " + "-q " * 80_000 + "pass\n",                       # getopt is quadratic in the options: 33 s
    "%timeit -" + "t" * 160_000 + " x = 1\n",                     # options packed in one word (round 6b): 38 s
    "\n" * 100_000 + "_p = 1\n",                                  # blank lines: the escape count was quadratic
])
def test_what_looks_like_a_magic_is_read_in_linear_time(tmp_path, cell):
    """Attack round 6: a no-break space before ``%%`` made the check translate the cell whole (``str.lstrip``
    drops it, IPython does not, so IPython re-read the cell once per escape line), and a ``%timeit`` line of
    80,000 options went to IPython's option parser. Both notebooks pass the input limits."""
    from autograder.static_check import check_notebook
    nb = json.loads((SUBS / "complete.ipynb").read_text())
    nb["cells"].insert(2, {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": cell})
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    t0 = time.monotonic()
    assert read_submission(path).problem is None
    rep = check_notebook(nbformat.from_dict(nb), ["sample_mean"], ["sklearn"])
    assert time.monotonic() - t0 < 8 and not rep.missing, rep


def test_code_in_an_older_notebook_format_cannot_pass_the_size_limit_unseen(tmp_path):
    """Jupyter converts a format-3 notebook (code in ``worksheets``/``input``) or one without ``nbformat`` (read as
    format 1, code in ``code``) to format 4 when it reads it; an empty top-level ``cells`` list once let such a
    notebook carry 17 million characters of code past the limit, into hours of reading before any sandbox."""
    nb = nbformat.read(SUBS / "complete.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("_p = 1\n" * 200_000))           # 1.4 million characters
    v1 = {"cells": [{"cell_type": "code", "code": c.source} for c in nb.cells if c.cell_type == "code"]}
    v3 = json.loads(nbformat.writes(nbformat.convert(nb, 3), version=3))
    v3["cells"] = []
    for name, hidden, says in (("v3", v3, "in format 3 (nbformat)"), ("v1", v1, "in no known format")):
        data = json.dumps(hidden).encode()
        if name == "v3":     # the attack is real: what Jupyter reads holds all the code
            read = nbformat.reads(data.decode(), as_version=4)
            assert sum(len(c.source) for c in read.cells if c.cell_type == "code") > grading.MAX_CODE_CHARS
        (tmp_path / f"{name}.ipynb").write_bytes(data)
        sub = read_submission(tmp_path / f"{name}.ipynb")
        assert sub.data is None and says in sub.problem and "\n" not in sub.problem, (name, sub.problem)


def _exit_on_bomb(task):
    """Runs in the grading pool's workers: the task "bomb" kills its worker, as a submission that exhausts the
    grader's memory would; the others take a moment."""
    if task == "bomb":
        os._exit(3)
    time.sleep(0.3)
    return task


def test_a_submission_that_kills_its_worker_costs_no_other_its_result():
    """The tasks a dead worker's pool had not finished are graded again, each in a pool of its own: only the
    submission that kills its worker gets "grader error" (a shared second pool once lost every one again)."""
    got = {}
    names = ["a", "bomb", "b", "c", "d", "e"]
    grading._run_pool([(n, n) for n in names], 2, got.__setitem__,
                      lambda name, task, exc: f"failed: {type(exc).__name__}", "fixture_hw", run=_exit_on_bomb)
    assert got == {**{n: n for n in names}, "bomb": "failed: BrokenProcessPool"}, got


def test_a_notebook_that_killed_the_grader_twice_gets_a_row_and_the_batch_goes_on(tmp_path, capsys):
    """With one worker a notebook is graded in the grading process itself, so one that kills it (memory, a
    crash) would stop every rerun of the batch at the same place. A marker counts the runs that died on it: after
    one death it is graded again (the run may have been killed from outside); after two it gets a row saying so,
    and the others are graded. A finished batch leaves no marker."""
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    sha = hashlib.sha256((SUBS / "broken.ipynb").read_bytes()).hexdigest()
    (out / ".broken.grading").write_text(f"{sha} 2")
    (out / ".partial.grading").write_text(f"{hashlib.sha256((SUBS / 'partial.ipynb').read_bytes()).hexdigest()} 1")
    argv = ["grade", str(SUBS / "partial.ipynb"), str(SUBS / "broken.ipynb"), "--assignment", "fixture_hw",
            "--out", str(out)]
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert _scores(out) == {"partial": EXPECTED["partial"], "broken": 0.0}
    reason = json.loads((out / "broken" / "results.json").read_text())["extra_data"]["reason"]
    assert "died 2 times while it graded this notebook" in reason and "delete the folder broken" in reason
    assert not list(out.glob(".*.grading"))
    shutil.rmtree(out / "broken")                        # as the row says: graded once more
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert _scores(out) == {"partial": EXPECTED["partial"], "broken": EXPECTED["broken"]}


def test_text_utf8_cannot_encode_stops_no_batch(tmp_path, capsys):
    """Found by an attack: a lone surrogate in a student's error message (the hostile corpus' lone_surrogate),
    or a byte that is not UTF-8 in a file name in a student's repository, raised while the feedback was written,
    which stopped the batch; with workers the others never got a row, on any rerun. Now every submission gets
    its row, and the text shows U+FFFD."""
    batch = tmp_path / "clones"
    for login in ("aaron", "bob", "carol"):
        (batch / f"fixture_hw-{login}").mkdir(parents=True)
    for name in (b"notes.ipynb", b"\xff.ipynb"):            # two notebooks: one names no file UTF-8 can say
        with open(os.path.join(os.fsencode(batch / "fixture_hw-aaron"), name), "wb") as fh:
            fh.write((SUBS / "complete.ipynb").read_bytes())
    shutil.copy(ROOT / "examples" / "hostile" / "lone_surrogate.ipynb", batch / "fixture_hw-bob" / "fixture_hw.ipynb")
    shutil.copy(SUBS / "complete.ipynb", batch / "fixture_hw-carol" / "fixture_hw.ipynb")
    out = tmp_path / "out"
    assert cli.main(["grade", str(batch), "--assignment", "fixture_hw", "--out", str(out), "--workers", "2"]) == 0
    assert "\ufffd.ipynb" in capsys.readouterr().out
    scores = _scores(out)
    assert set(scores) == {"aaron", "bob", "carol"} and scores["aaron"] == 0 and 0 < scores["bob"] < 100 \
        and scores["carol"] == 100, scores
    bob = (out / "bob" / "feedback.md").read_text(encoding="utf-8")
    assert "\ufffd" in bob and "not encodable" in bob
    reason = json.loads((out / "aaron" / "results.json").read_text())["extra_data"]["reason"]
    assert "\ufffd.ipynb" in reason and "hand in one" in reason


def test_a_notebook_of_too_many_cells_is_one_line(tmp_path):
    """240,000 empty cells (empty cells count nothing towards the code limits) cost the grader 2.2 GB."""
    nb = nbformat.read(SUBS / "complete.ipynb", as_version=4)
    nb.cells += [nbformat.v4.new_code_cell("") for _ in range(grading.MAX_CELLS)]
    path = tmp_path / "cells.ipynb"
    nbformat.write(nb, str(path))
    sub = read_submission(path)
    assert sub.data is None and f"{len(nb.cells)} cells, more than the {grading.MAX_CELLS}" in sub.problem


def test_check_and_grade_give_the_same_line_for_a_bad_file(tmp_path, capsys):
    """A .py, an empty file, broken JSON...: `course check` prints the very line `course grade` records,
    and grading still writes a row for each (one bad file does not stop the batch)."""
    folder = tmp_path / "subs"
    folder.mkdir()
    for name, (data, _) in BAD_FILES.items():
        (folder / name).write_bytes(data)
    checked = {}
    for name in BAD_FILES:
        assert cli.main(["check", str(folder / name), "--assignment", "fixture_hw"]) == 1
        out = capsys.readouterr().out.strip()
        assert out.count("\n") == 0 and out.startswith("could not check the notebook: "), out
        checked[name] = out.removeprefix("could not check the notebook: ")
    paths = [str(folder / n) for n in BAD_FILES]
    assert cli.main(["grade", *paths, "--assignment", "fixture_hw", "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    with open(tmp_path / "out" / "grades.csv") as f:
        rows = {r["submission"]: r for r in csv.DictReader(f)}
    assert len(rows) == len(BAD_FILES)
    for name, (_, says) in BAD_FILES.items():
        row = rows[Path(name).stem]
        res = json.loads((tmp_path / "out" / row["submission"] / "results.json").read_text())
        assert res["output"] == checked[name] and says in checked[name], (name, checked[name], res["output"])
        assert row["status"] == "error" and float(row["score"]) == 0
        assert checked[name].endswith("submit the .ipynb file you worked in (saved from JupyterLab)")


def test_names_are_unique_and_missing_files_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "hw.ipynb").write_text("{}")
    names = [n for n, *_ in collect_submissions([tmp_path / "a" / "hw.ipynb", tmp_path / "b" / "hw.ipynb"])]
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
    assert res["score"] == 0 and "not a Jupyter notebook (invalid JSON" in res["output"]
    assert res["extra_data"]["assignment"] == "fixture_hw"


def test_bench_grader_batch_is_distinct_submissions(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_grader", ROOT / "benchmarks" / "bench_grader.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    paths = bench.make_batch(bench.sample("fixture_hw"), tmp_path, 3)
    seeds = {submission_seeds(p.read_bytes(), b"s")["hidden"] for p in paths}
    assert len(paths) == 3 and len(seeds) == 3                     # each copy gets its own cases
    with pytest.raises(SystemExit):
        bench.main(["--help"])


def test_forbidden_imports_cost_the_function_whose_body_uses_them(tmp_path):
    """Inside a graded function's body: that function only. At the top level of any cell, its own included:
    every function that forbids it (what top-level code imports, every function can reach)."""
    from autograder.grading import _static_check
    suite = load_suite("fixture_hw")
    nb = json.loads((SUBS / "complete.ipynb").read_text())
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]}
    src = "".join(cells["sample_mean"]["source"])
    head, body = src.split("def sample_mean", 1)
    signature, rest = body.split("\n", 1)
    cells["sample_mean"]["source"] = (f"{head}def sample_mean{signature}\n"
                                      f"    from sklearn.preprocessing import scale\n{rest}")
    p = tmp_path / "one.ipynb"
    p.write_text(json.dumps(nb))
    found = _static_check(p, suite)
    assert set(found) == {"sample_mean"} and found["sample_mean"][0] == "forbidden"
    assert "sklearn" in found["sample_mean"][1]
    assert found["sample_mean"][1].endswith(f"write it yourself with {suite.allowed_text()}")
    everyone = {"sample_mean", "mle_covariance", "log_sum_exp"}
    cells["sample_mean"]["source"] = "from sklearn.preprocessing import scale\n" + src    # its cell, top level
    p.write_text(json.dumps(nb))
    assert set(_static_check(p, suite)) == everyone
    cells["sample_mean"]["source"] = src
    nb["cells"][2]["source"] = "import numpy as np\nimport sklearn"            # the shared imports cell
    p.write_text(json.dumps(nb))
    assert set(_static_check(p, suite)) == everyone


# ---------------------------------------------------------------------------------- suites by registered name
def test_a_suite_named_by_a_notebook_is_never_executed(tmp_path, capsys):
    """`course check` on a notebook whose metadata names a suite file: refused, the file never runs."""
    marker = tmp_path / "executed"
    evil = tmp_path / "evil_suite.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\n")
    nb = json.loads((SUBS / "complete.ipynb").read_text())
    for named in (str(evil), "evil_suite.py", "evil_suite", "../fixture_hw"):
        nb["metadata"]["course"] = {"assignment": named}
        p = tmp_path / "evil_suite.ipynb"                     # the file name does not help either
        p.write_text(json.dumps(nb))
        assert cli.main(["check", str(p)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "not one of this course's" in err and "--assignment" in err
        assert not marker.exists()
    nb["metadata"].pop("course")
    p.write_text(json.dumps(nb))
    assert cli.main(["check", str(p)]) == 2
    assert "cannot tell which assignment" in capsys.readouterr().err and not marker.exists()
    nb["metadata"]["course"] = {"assignment": "fixture_hw"}     # a registered name is what it is for
    assert grading._assignment_of(p, nb) == "fixture_hw"


# ---------------------------------------------------------------------------------- sizes
def test_an_oversized_notebook_gets_one_result_with_the_size_line(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MAX_NOTEBOOK_MB", "0.001")               # 1 kB: every sample is over it
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("a", "b"):
        shutil.copy(SUBS / "complete.ipynb", subs / f"{name}.ipynb")
    size = (subs / "a.ipynb").stat().st_size
    results = grading.grade_batch([subs], "fixture_hw", tmp_path / "out", progress=False)
    assert [r["extra_data"]["submission"] for r in results] == ["a", "b"]       # the batch went on
    line = f"the notebook is {grading._megabytes(size)}; the grader accepts at most 1 kB: clear its outputs"
    for r in results:
        assert r["score"] == 0 and r["output"] == line and r["extra_data"]["complete"]
    assert _scores(tmp_path / "out") == {"a": 0.0, "b": 0.0}
    assert grading.size_problem(200_000_000, 20_000_000) == \
        "the notebook is 200 MB; the grader accepts at most 20 MB: clear its outputs"
    r = grade_one((SUBS / "complete.ipynb").read_bytes(), "c", "fixture_hw", {"visible": "1", "hidden": "2"})
    assert r["results"]["output"].startswith("the notebook is ")                  # grade_one checks it too


def test_notebook_limit_settings(monkeypatch):
    class Big:
        max_notebook_mb = 50
    assert grading.notebook_limit() == grading.MAX_NOTEBOOK_BYTES == 20_000_000
    assert grading.notebook_limit(Big()) == 50_000_000
    monkeypatch.setenv("COURSE_MAX_NOTEBOOK_MB", "2.5")
    assert grading.notebook_limit(Big()) == 2_500_000
    for bad in ("-1", "lots", "nan"):
        monkeypatch.setenv("COURSE_MAX_NOTEBOOK_MB", bad)
        with pytest.raises(ValueError, match="COURSE_MAX_NOTEBOOK_MB"):
            grading.notebook_limit()


def test_read_submission_is_bounded_and_follows_no_link(tmp_path):
    big = tmp_path / "big.ipynb"
    data = b'{"nbformat": 4, "cells": [], "pad": "' + b"x" * 4961 + b'"}'
    big.write_bytes(data)
    r = grading.read_submission(big, limit=1000)
    assert r.data is None and r.size == 5000 and "at most 1 kB" in r.problem
    import hashlib
    assert r.sha256 == hashlib.sha256(data).hexdigest()           # resuming still recognises it
    ok = grading.read_submission(big, limit=5000)
    assert ok.data == data and ok.problem is None
    link = tmp_path / "link.ipynb"
    link.symlink_to(tmp_path / "state")
    os.mkfifo(tmp_path / "pipe.ipynb")
    assert "is a link" in grading.read_submission(link).problem
    assert "not a regular file" in grading.read_submission(tmp_path / "pipe.ipynb").problem


# ---------------------------------------------------------------------------------- isolation levels
def _level(monkeypatch, level):
    from autograder import sandbox
    monkeypatch.setattr(sandbox, "isolation_level", lambda: level, raising=False)
    monkeypatch.setattr(sandbox, "ISOLATION_LEVELS", ("none", "uid", "namespaces"), raising=False)


def test_course_grade_refuses_weak_isolation_unless_allowed(tmp_path, monkeypatch, capsys):
    _level(monkeypatch, "uid")
    monkeypatch.delenv("COURSE_MIN_ISOLATION")
    monkeypatch.setenv("COURSE_MAX_NOTEBOOK_MB", "0.001")    # settled without a sandbox run: the test stays fast
    out = tmp_path / "out"
    argv = ["grade", str(SUBS / "partial.ipynb"), "--assignment", "fixture_hw", "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "isolation 'uid'" in err and "need 'namespaces'" in err
    assert "bubblewrap" in err and "--allow-weak-isolation" in err and not out.exists()
    monkeypatch.setenv("COURSE_MIN_ISOLATION", "uid")                   # the environment lowers the minimum
    assert cli.main(argv) == 0
    ed = json.loads((out / "partial" / "results.json").read_text())["extra_data"]
    assert ed["isolation"] == "uid" and "weak_isolation_allowed" not in ed
    shutil.rmtree(out)
    assert cli.main([*argv, "--min-isolation", "namespaces"]) == 2      # the flag beats the environment
    assert cli.main([*argv, "--min-isolation", "namespaces", "--allow-weak-isolation"]) == 0
    ed = json.loads((out / "partial" / "results.json").read_text())["extra_data"]
    assert ed["isolation"] == "uid" and ed["isolation_required"] == "namespaces" and ed["weak_isolation_allowed"]
    assert "below 'namespaces'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown isolation level"):
        grading.resolve_min_isolation("chroot")


def test_a_run_below_the_minimum_writes_nothing(tmp_path, monkeypatch):
    """The host claims namespaces but a run reports uid: the batch stops, that submission stays ungraded."""
    _level(monkeypatch, "namespaces")
    monkeypatch.setenv("COURSE_MIN_ISOLATION", "namespaces")

    def fake_run(nb_bytes, name, suite_name, seeds, public_only=False):
        return {"pending": {"name": name, "sandbox_ran": True, "extra": {"isolation": "uid"}}}

    def fake_judge(outcome):
        p = outcome["pending"]
        return {"results": {"score": 50.0, "tests": [], "output": "", "extra_data": {
            **p["extra"], "assignment": "fixture_hw", "submission": p["name"], "complete": True,
            "submission_sha256": "0"}}}

    monkeypatch.setattr("autograder.judge.shared_judge", lambda: None)
    monkeypatch.setattr(grading, "run_submission", fake_run)
    monkeypatch.setattr(grading, "judge_submission", fake_judge)
    out = tmp_path / "out"
    with pytest.raises(grading.IsolationError, match="the sandbox that ran partial had isolation 'uid'"):
        grading.grade_batch([SUBS / "partial.ipynb"], "fixture_hw", out, progress=False)
    assert not (out / "partial").exists()
    res = grading.grade_batch([SUBS / "partial.ipynb"], "fixture_hw", out, progress=False, allow_weak_isolation=True)
    assert res[0]["extra_data"]["weak_isolation_allowed"] and res[0]["extra_data"]["isolation"] == "uid"


def test_course_check_runs_at_any_level(monkeypatch, tmp_path):
    _level(monkeypatch, "none")
    monkeypatch.delenv("COURSE_MIN_ISOLATION")
    monkeypatch.setattr(grading, "grade_one", lambda *a, **k: {"results": {
        "score": 0.0, "output": "", "tests": [], "extra_data": {"isolation": "none"}}})
    assert cli.main(["check", str(SUBS / "complete.ipynb")]) == 0


# ---------------------------------------------------------------------------------- fail closed
def test_results_and_state_folders_are_made_private(tmp_path, monkeypatch):
    new = grading.make_private(tmp_path / "a" / "out", "the results folder")
    assert new.stat().st_mode & 0o777 == 0o700
    opened = tmp_path / "shared"
    opened.mkdir(mode=0o755)
    opened.chmod(0o755)
    grading.make_private(opened)
    assert opened.stat().st_mode & 0o777 == 0o700
    monkeypatch.setenv("COURSE_GRADER_STATE", str(tmp_path / "st"))
    (tmp_path / "st").mkdir()
    (tmp_path / "st").chmod(0o755)
    grading.state_dir()
    assert (tmp_path / "st").stat().st_mode & 0o777 == 0o700


def test_private_folders_fail_closed(tmp_path, monkeypatch):
    from autograder.suites import REPO_ROOT
    before = {p: p.stat().st_mode for p in (REPO_ROOT, Path(sys.prefix))}
    for p in (REPO_ROOT, Path(sys.prefix), Path(sys.prefix).parent):
        with pytest.raises(ValueError, match="keeps as it is"):
            grading.make_private(p, "the results folder")
    assert cli.main(["grade", str(SUBS / "partial.ipynb"), "--assignment", "fixture_hw", "--out", str(REPO_ROOT)]) == 2
    assert {p: p.stat().st_mode for p in before} == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder|cannot create"):
        grading.make_private(tmp_path / "file")
    target = tmp_path / "open"
    target.mkdir()
    target.chmod(0o755)

    def refuse(path, mode):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(grading.os, "chmod", refuse)
    with pytest.raises(ValueError, match="cannot be made private"):
        grading.make_private(target, "the results folder")
    monkeypatch.setattr(grading.os, "chmod", lambda path, mode: None)          # a file system that ignores it
    with pytest.raises(ValueError, match="still open to other users"):
        grading.make_private(target, "the results folder")
    monkeypatch.setenv("COURSE_GRADER_STATE", str(target))
    monkeypatch.delenv("COURSE_GRADER_SALT")
    with pytest.raises(ValueError, match="the grader's state folder .* still open"):
        load_salt()


# ---------------------------------------------------------------------------------- stopping
def test_stop_signals_wait_for_the_result_being_written():
    order = []
    with pytest.raises(grading.GradingInterrupted) as info:
        with grading._StopSignals() as stop:
            with stop.writing():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                order.append("written")                 # the file is finished before the stop
            order.append("after")
    assert order == ["written"] and info.value.signum == signal.SIGTERM
    assert "SIGTERM" in str(info.value) and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_pool_workers_get_a_parent_death_signal():
    code = ("import ctypes, signal; from autograder.sandbox import set_parent_death_signal as s; "
            "assert s(signal.SIGTERM); libc = ctypes.CDLL(None); v = ctypes.c_int(); "
            "libc.prctl(2, ctypes.byref(v), 0, 0, 0); print(v.value)")
    if not sys.platform.startswith("linux"):
        pytest.skip("prctl is Linux only")
    r = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-1000:]
    assert int(r.stdout) == signal.SIGTERM
