"""`course gradebook`: course grade's results in nbgrader's gradebook (its API, its database), the same score
per student and per graded function, formgrader's views showing them, and a re-import that changes nothing."""
import hashlib
import importlib
import json
import shutil
import sqlite3
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook, MissingEntry

from autograder import gradebook, release, report
from autograder.cli import main
from autograder.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "fixture_hw"
HW = "hw2_em"


def _results(suite, name, fractions=None, student=None, sha256="0" * 64):
    """A results.json dict as the grader writes it (``report.build_results``); ``fractions`` maps a check name
    to the fraction of its points earned (1 by default)."""
    fractions = fractions or {}
    checks = []
    for c in suite.checks:
        f = fractions.get(c.name, 1.0)
        checks.append({"name": c.name, "function": c.function, "visibility": c.visibility, "points": c.points,
                       "score": round(c.points * f, 4), "fraction": f, "status": "passed" if f >= 1 else "failed",
                       "cases": []})
    extra = {"submission_sha256": sha256}
    if student is not None:
        extra["student"] = student
    return report.build_results(suite, {"checks": checks}, name=name, notebook_status={"status": "ok", "reason": ""},
                                function_status={f: "ok" for f in suite.functions}, extra=extra, execution_time=1.0)


def _dump(db_path):
    """Every row of every table of an SQLite gradebook, sorted: two dumps are equal when nothing changed."""
    con = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}
    finally:
        con.close()


@pytest.fixture
def batch(tmp_path):
    """RESULTS_DIR of hw2_em: alice 100, bob 75 (two checks of one function failed), a submission known only
    by its name, and a roster's student without a submission."""
    suite = load_suite(HW)
    out = tmp_path / "grades"
    fn = suite.checks[0].function
    failed = [c.name for c in suite.checks if c.function != fn][:2]
    lost = sum(c.points for c in suite.checks if c.name in failed)
    report.write_submission(out, "alice", _results(suite, "alice", student="alice"))
    report.write_submission(out, "bob", _results(suite, "bob", {n: 0.0 for n in failed}, student="bob"))
    report.write_submission(out, "hw2_em-final", _results(suite, "hw2_em-final", {suite.checks[0].name: 0.5}))
    report.write_submission(out, "carol", report.error_results(HW, "carol", "no submission",
                                                                {"no_submission": True, "student": "carol"}))
    return suite, out, lost


def test_import_gives_every_student_the_score_course_grade_gave(batch, tmp_path):
    suite, out, lost = batch
    db = tmp_path / "gradebook.db"
    summary = gradebook.import_results(HW, out, db=f"sqlite:///{db}")
    assert sorted(summary.created) == ["alice", "bob", "hw2_em-final"] and summary.no_submission == ["carol"]
    assert not summary.problems, summary.problems
    points = gradebook.function_points(suite)
    with Gradebook(f"sqlite:///{db}") as gb:
        nb = gb.find_notebook(HW, HW)
        assert {c.name: c.max_score for c in nb.grade_cells} == {f"test_{f}": p for f, p in points.items()}
        assert sorted(c.name for c in nb.solution_cells) == sorted(suite.functions)
        assert gb.find_assignment(HW).max_score == pytest.approx(100.0)
        for folder, student in (("alice", "alice"), ("bob", "bob"), ("hw2_em-final", "hw2_em-final")):
            res = json.loads((out / folder / "results.json").read_text())
            sub = gb.find_submission(HW, student)
            assert sub.score == pytest.approx(res["score"]) and sub.max_score == pytest.approx(100.0)
            for f, score in gradebook.function_scores(suite, res).items():
                grade = gb.find_grade(f"test_{f}", HW, HW, student)
                assert grade.score == pytest.approx(score) and not grade.needs_manual_grade
        assert gb.find_submission(HW, "bob").score == pytest.approx(100.0 - lost)
        assert gb.find_student("carol")
        with pytest.raises(MissingEntry):
            gb.find_submission(HW, "carol")
        # formgrader's gradebook and student pages read these dicts
        rows = {d["student"]: d for d in gb.submission_dicts(HW)}
        assert rows["bob"]["score"] == pytest.approx(100.0 - lost) and rows["alice"]["score"] == pytest.approx(100)
        assert not rows["bob"]["needs_manual_grade"]


def test_reimport_changes_nothing_and_a_regrade_changes_only_its_grades(batch, tmp_path):
    suite, out, _ = batch
    db = tmp_path / "gradebook.db"
    url = f"sqlite:///{db}"
    gradebook.import_results(HW, out, db=url)
    first = _dump(db)
    again = gradebook.import_results(HW, out, db=url)
    assert _dump(db) == first
    assert again.created == [] and again.updated == [] and sorted(again.unchanged) == ["alice", "bob", "hw2_em-final"]

    # a grader's own score in formgrader (manual_score) survives a re-import
    with Gradebook(url) as gb:
        grade = gb.find_grade(f"test_{suite.checks[0].function}", HW, HW, "alice")
        grade.manual_score = 1.0
        gb.db.commit()
    manual = _dump(db)
    gradebook.import_results(HW, out, db=url)
    assert _dump(db) == manual

    # bob is graded again and now passes everything: only his grades change
    report.write_submission(out, "bob", _results(suite, "bob", student="bob"))
    summary = gradebook.import_results(HW, out, db=url)
    assert summary.updated == ["bob"]
    with Gradebook(url) as gb:
        assert gb.find_submission(HW, "bob").score == pytest.approx(100.0)
        assert gb.find_grade(f"test_{suite.checks[0].function}", HW, HW, "alice").manual_score == 1.0
    changed = {t for t in first if _dump(db)[t] != manual[t]}
    assert changed == {"grade"}


@pytest.mark.parametrize("hw", release.ASSIGNMENTS)
def test_grade_cells_are_the_solution_test_cells(hw):
    """The gradebook's grade cells are the solution notebook's test cells (names and points): one source."""
    suite = importlib.import_module(f"autograder.suites.{hw}").SUITE
    nb = nbformat.read(str(release.solution_path(hw)), as_version=4)
    tests = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in nb.cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    assert {gradebook.grade_cell_name(f): p for f, p in gradebook.function_points(suite).items()} == tests
    assert Path(suite.notebook).stem == hw


def test_results_that_cannot_be_imported_are_named_and_the_rest_imported(batch, tmp_path, capsys):
    suite, out, _ = batch
    stale = _results(suite, "dave", student="dave")
    stale["tests"][0]["name"] = "a check this suite no longer has"
    report.write_submission(out, "dave", stale)
    report.write_submission(out, "erin", _results(suite, "erin", student="erin"))
    report.write_submission(out, "erin-2", _results(suite, "erin-2", student="erin"))
    public = _results(suite, "frank", student="frank")
    public["extra_data"]["public_only"] = True
    report.write_submission(out, "frank", public)
    report.write_submission(out, "gina", report.error_results(HW, "gina", "grader error: OSError: disk full",
                                                               {"student": "gina"}))
    db = tmp_path / "gb.db"
    gradebook.import_results(HW, out, db=str(db))
    with Gradebook(f"sqlite:///{db}") as gb:        # a written answer graded by hand in formgrader
        gb.add_grade_cell("essay", HW, HW, max_score=10, cell_type="markdown")
    assert main(["gradebook", HW, str(out), "--db", str(db)]) == 1
    cap = capsys.readouterr()
    assert "3 submission(s)" in cap.out and "1 without a submission" in cap.out
    err = cap.err.strip().splitlines()
    assert len(err) == 5, err
    assert any("also has grade cells essay, which course grade does not score" in e for e in err)
    assert any("dave: graded with another version of the hw2_em suite" in e for e in err)
    assert any("student erin has 2 results (erin, erin-2)" in e for e in err)
    assert any("frank: a `course check` result" in e for e in err)
    assert any("gina: the grader failed on it" in e for e in err)
    with Gradebook(f"sqlite:///{db}") as gb:
        for who in ("dave", "erin", "frank", "gina"):
            with pytest.raises(MissingEntry):
                gb.find_submission(HW, who)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["gradebook", "hw9_none", str(tmp_path)]) == 2
    assert "unknown assignment 'hw9_none'" in capsys.readouterr().err
    assert main(["gradebook", HW, str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and len(err.strip().splitlines()) == 1
    assert main(["gradebook", HW, str(tmp_path)]) == 2
    assert "holds no complete result of hw2_em" in capsys.readouterr().err
    report.write_submission(tmp_path / "g", "a", _results(load_suite(HW), "a"))
    (tmp_path / "not_a_db").write_text("plain text")
    assert main(["gradebook", HW, str(tmp_path / "g"), "--db", str(tmp_path / "not_a_db")]) == 2
    err = capsys.readouterr().err
    assert "cannot open the gradebook" in err and len(err.strip().splitlines()) == 1


def test_course_dir_copies_only_the_graded_notebook_of_a_plain_student_folder(tmp_path, capsys):
    suite = load_suite(HW)
    course, out = tmp_path / "course", tmp_path / "grades"
    data = (ROOT / "examples" / HW / "complete.ipynb").read_bytes()
    for who in ("alice", "mallory"):
        d = course / "submitted" / who / HW
        d.mkdir(parents=True)
        (d / f"{HW}.ipynb").write_bytes(data)
        (d / "timestamp.txt").write_text("2024-03-01 13:00:00.000000 CET")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (course / "autograded" / "mallory").mkdir(parents=True)
    (course / "autograded" / "mallory" / HW).symlink_to(elsewhere)
    sha = hashlib.sha256(data).hexdigest()
    for who in ("alice", "mallory", ".."):
        report.write_submission(out, who.strip(".") or "dots", _results(suite, who, student=who, sha256=sha))
    assert main(["gradebook", HW, str(out), "--course-dir", str(course)]) == 1
    err = capsys.readouterr().err
    assert "'..' cannot be a folder name" in err and "mallory's notebook was not copied" in err
    assert (course / "autograded" / "alice" / HW / f"{HW}.ipynb").read_bytes() == data
    assert not list(elsewhere.iterdir()) and not (tmp_path / "autograded").exists()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert str(gb.find_submission(HW, "alice").timestamp) == "2024-03-01 12:00:00"    # UTC, as nbgrader
        assert gb.find_submission(HW, "mallory").timestamp is None
        assert gb.find_submission(HW, "..").score == pytest.approx(100.0)


def _formgrader_html(path) -> str:
    """The page formgrader's notebook view serves for the notebook at ``path`` (its exporter and template)."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    exporter = HTMLExporter(template_name="formgrade", extra_template_basedirs=[handlers.template_path])
    resources = {"base_url": "/", "mathjax_url": "", "student": "mallory", "last_name": "M", "first_name": "M",
                 "submission_id": "1", "index": 0, "total": 1, "notebook_id": HW, "notebook_path": str(path),
                 "disable_toolbar": True}
    return exporter.from_filename(str(path), resources=resources)[0]


def _active(page: str) -> list:
    """What a browser would run in ``page`` that came from the student: event handlers, javascript: links and
    scripts that call alert or fetch (the attack's markers; formgrader's own handlers and scripts do not)."""
    from html.parser import HTMLParser

    found = []

    class Parser(HTMLParser):
        script = False

        def handle_starttag(self, tag, attrs):
            self.script = tag == "script"
            found.extend(f"{tag} {k}" for k, v in attrs if "javascript:" in (v or "").lower()
                         or k.startswith("on") and any(m in (v or "") for m in ("alert(", "fetch(")))

        def handle_data(self, text):
            if self.script and any(m in text for m in ("alert(", "fetch(")):
                found.append(f"script {text.strip()[:40]}")

    Parser().feed(page)
    return found


def test_a_student_s_html_and_scripts_reach_formgrader_inert(tmp_path, capsys):
    """Found by two attacks: formgrader shows autograded/'s notebook as HTML on the Jupyter server's origin, and
    passes through a Markdown cell's HTML, a Markdown link to javascript: (also spelled with an entity), a
    JavaScript or SVG output, and an image's width written unquoted ("1 onerror=..."), so a student's script
    would run with the grader's session. The copy shows all of it as text; an honest cell (a LaTeX matrix's &
    included) stays as it was."""
    suite = load_suite(HW)
    course, out = tmp_path / "course", tmp_path / "grades"
    nb = nbformat.read(str(ROOT / "examples" / HW / "complete.ipynb"), as_version=4)
    honest = "An answer with a matrix $\\begin{bmatrix}1&0\\\\0&1\\end{bmatrix}$, a [link](https://example.org)."
    nb.cells[1:1] = [nbformat.v4.new_markdown_cell(honest), nbformat.v4.new_markdown_cell(
        "My answer: <img src=x onerror=\"fetch('/api/terminals', {method: 'POST'})\"> "
        "<script>alert('markdown')</script>"),
        nbformat.v4.new_markdown_cell("[see](javascript:alert('link')) [too](jav&#x61;script:alert('entity'))"),
        # formgrader's template strips "files/" after rendering; a Bootstrap class lays a link over the page
        nbformat.v4.new_markdown_cell("[derivation](files/javascript:alert(document.domain))"),
        nbformat.v4.new_markdown_cell('<a class="modal-backdrop fade" href="https://example.org">x</a>'),
        nbformat.v4.new_raw_cell("<b>raw</b>", metadata={"raw_mimetype": 1})]   # an int here broke the page
    next(c for c in nb.cells if c.cell_type == "code").metadata["magics_language"] = ["html"]   # and here
    next(c for c in nb.cells if c.cell_type == "code").outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": "<b>table</b><script>alert('html output')</script>",
                                                      "text/plain": "the table"}),
        nbformat.v4.new_output("display_data", data={"application/javascript": "alert('javascript output')"}),
        nbformat.v4.new_output("display_data", data={"image/svg+xml": "<svg onload=\"alert('svg')\"></svg>"}),
        nbformat.v4.new_output("display_data", data={"text/markdown": "[md](javascript:alert('md output'))"}),
        nbformat.v4.new_output("display_data", data={"image/png": "AAAA"},
                               metadata={"image/png": {"width": "1 onerror=alert('width')", "height": 20}})]
    d = course / "submitted" / "mallory" / HW
    d.mkdir(parents=True)
    nbformat.write(nb, str(d / f"{HW}.ipynb"))
    data = (d / f"{HW}.ipynb").read_bytes()
    with pytest.raises(Exception):                                     # formgrader's page fails on it
        _formgrader_html(d / f"{HW}.ipynb")
    for cell in nb.cells:                                              # without the two ints, the attacks work
        cell.metadata.pop("raw_mimetype", None), cell.metadata.pop("magics_language", None)
    nbformat.write(nb, str(tmp_path / "as_submitted.ipynb"))
    before = _formgrader_html(tmp_path / "as_submitted.ipynb")
    assert len(_active(before)) >= 8, "\n".join(_active(before))
    report.write_submission(out, "mallory", _results(suite, "mallory", student="mallory",
                                                      sha256=hashlib.sha256(data).hexdigest()))
    assert main(["gradebook", HW, str(out), "--course-dir", str(course)]) == 0
    assert "1 notebook(s) copied to autograded/" in capsys.readouterr().out
    copied = course / "autograded" / "mallory" / HW / f"{HW}.ipynb"
    page = _formgrader_html(copied)
    assert _active(page) == []
    assert "My answer" in page and "javascript:alert" in page and "the table" in page   # shown, as text
    shown = nbformat.read(str(copied), as_version=4)
    assert shown.cells[1].source == honest
    assert [c.source for c in shown.cells if c.cell_type == "code"] == [c.source for c in nb.cells
                                                                        if c.cell_type == "code"]


def test_making_a_notebook_inert_takes_linear_time_and_a_broken_one_is_not_copied():
    """Found by attacks on the fix above: bleach (nbconvert's SanitizeHTML, tried first) is quadratic on unclosed
    markup: 1.2 MB of ``<a href='x' `` in one Markdown cell took 70 s, 0.67 MB of ``<p><b><i><u><s>x`` 113 s. A
    notebook may hold 20 MB: texts past the budgets are shown as source without being rendered. A notebook
    nbformat rejects (formgrader's page would fail on it) is not copied, with one line."""
    import time
    bulky = {"cell_type": "code", "id": "bulky", "metadata": {}, "source": "1", "execution_count": None,
             "outputs": [{"output_type": "display_data", "data": {"text/plain": ""}, "metadata": {"a": {"b": 1}}}]
             * 250_000}                                                  # 40 s and 2 GB before
    for cells, fenced in (([nbformat.v4.new_markdown_cell("<a href='x' " * 100_000)], 1),
                          ([nbformat.v4.new_markdown_cell("<p><b><i><u><s>x" * 4_000) for _ in range(30)], 29),
                          # nbconvert's Markdown math is quadratic in \begin: 3.9 s for each such cell
                          ([nbformat.v4.new_markdown_cell("\\begin{a}" * 7_000) for _ in range(16)], 15),
                          ([bulky], 0)):
        nb = nbformat.v4.new_notebook()
        nb.cells = cells
        t0 = time.monotonic()
        shown = gradebook.formgrader_copy(json.dumps(nb).encode(), {"grade": set(), "solution": set(),
                                                                     "task": set()})
        assert time.monotonic() - t0 < 30
        # harmless markup within the budgets is shown; past them, as source in a code block
        cells = nbformat.reads(shown.decode(), as_version=4).cells
        assert sum(c.source.startswith("```") for c in cells) == fenced
        assert sum(len(c.get("outputs", [])) for c in cells) <= gradebook._MAX_OUTPUTS
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1")]
    nb.cells[0].execution_count = "<img src=x>"
    with pytest.raises(ValueError, match="not a valid notebook"):
        gradebook.formgrader_copy(json.dumps(nb).encode(), {"grade": set(), "solution": set(), "task": set()})


def _formgrader_api(course):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    return NbGraderAPI(coursedir=CourseDirectory(root=str(course)))


@pytest.mark.slow
def test_an_nbgrader_course_graded_by_course_grade_shows_in_formgrader(tmp_path, monkeypatch, capsys):
    """nbgrader's layout end to end: submitted/ is graded by course grade, imported with --course-dir, and
    formgrader's API (the lists it shows, the notebook view's GetGrades) reports course grade's scores."""
    from autograder.grading import grade_batch

    monkeypatch.setenv("COURSE_GRADER_SALT", "gradebook-salt")
    monkeypatch.setenv("COURSE_GRADER_STATE", str(tmp_path / "state"))
    course = tmp_path / "course"
    for who, sample in (("alice", "complete"), ("bob", "partial")):
        d = course / "submitted" / who / "fixture_hw"
        d.mkdir(parents=True)
        shutil.copy(FIXTURE / "submissions" / f"{sample}.ipynb", d / "fixture_hw.ipynb")
        (d / "timestamp.txt").write_text("2024-03-01 12:00:00.000000 UTC")
    out = tmp_path / "grades"
    results = grade_batch([course / "submitted"], "fixture_hw", out, progress=False, allow_weak_isolation=True)
    scores = {r["extra_data"]["student"]: r["score"] for r in results}
    assert scores["alice"] == pytest.approx(100.0) and 0 < scores["bob"] < 100

    assert main(["gradebook", "fixture_hw", str(out), "--course-dir", str(course)]) == 0
    assert "(2 new, 0 updated, 0 unchanged); 2 notebook(s) copied to autograded/" in capsys.readouterr().out
    for who in ("alice", "bob"):
        copied = course / "autograded" / who / "fixture_hw"
        assert (copied / "fixture_hw.ipynb").read_bytes() == \
            (course / "submitted" / who / "fixture_hw" / "fixture_hw.ipynb").read_bytes()
        assert (copied / "timestamp.txt").exists()
    api = _formgrader_api(course)
    shown = {s["student"]: s for s in api.get_submissions("fixture_hw")}
    assert {w: (s["autograded"], s["score"]) for w, s in shown.items()} == \
        {w: (True, pytest.approx(scores[w])) for w in ("alice", "bob")}
    listed = api.get_notebook_submissions("fixture_hw", "fixture_hw")
    assert sorted((n["student"], n["score"]) for n in listed) == \
        [("alice", pytest.approx(scores["alice"])), ("bob", pytest.approx(scores["bob"]))]
    assert api.get_student("bob")["score"] == pytest.approx(scores["bob"])

    # formgrader's notebook view: GetGrades on the autograded notebook finds every cell it needs in the database
    from nbgrader.preprocessors import GetGrades
    nb = nbformat.read(str(course / "autograded" / "bob" / "fixture_hw" / "fixture_hw.ipynb"), as_version=4)
    resources = {"nbgrader": {"notebook": "fixture_hw", "assignment": "fixture_hw", "student": "bob",
                              "db_url": f"sqlite:///{course / 'gradebook.db'}"}}
    _, resources = GetGrades().preprocess(nb, resources)
    assert resources["nbgrader"]["score"] == pytest.approx(scores["bob"])
    assert resources["nbgrader"]["max_score"] == pytest.approx(100.0)

    # the same import again changes nothing, database and files
    before = _dump(course / "gradebook.db")
    stamp = (course / "autograded" / "bob" / "fixture_hw" / "fixture_hw.ipynb").stat().st_mtime_ns
    assert main(["gradebook", "fixture_hw", str(out), "--course-dir", str(course)]) == 0
    assert capsys.readouterr().out.strip().endswith("(0 new, 0 updated, 2 unchanged)")
    assert _dump(course / "gradebook.db") == before
    assert (course / "autograded" / "bob" / "fixture_hw" / "fixture_hw.ipynb").stat().st_mtime_ns == stamp

    # bob hands in again after grading: not copied, and formgrader lists him as waiting for grading
    sub = course / "submitted" / "bob" / "fixture_hw"
    shutil.copy(FIXTURE / "submissions" / "complete.ipynb", sub / "fixture_hw.ipynb")
    (sub / "timestamp.txt").write_text("2024-03-02 09:00:00.000000 UTC")
    assert main(["gradebook", "fixture_hw", str(out), "--course-dir", str(course)]) == 1
    assert "submitted/bob/fixture_hw/fixture_hw.ipynb: it differs from the notebook `course grade` graded" \
        in capsys.readouterr().err
    shown = {s["student"]: s for s in _formgrader_api(course).get_submissions("fixture_hw")}
    assert shown["bob"]["autograded"] is False and shown["alice"]["autograded"] is True


@pytest.mark.slow
def test_made_up_nbgrader_marks_cannot_break_formgrader_s_view_of_a_notebook(tmp_path, monkeypatch, capsys):
    """A student's notebook marks cells as a grade cell and a task the gradebook lacks, carries a mark that is
    no dict, and copies a solution cell's mark onto an earlier cell: formgrader's notebook view would fail on the
    first three, so autograded/ gets the notebook without them, the solution cell keeps its mark (the last
    copy, as nbgrader keeps it), and the view shows course grade's score. An honest notebook is copied byte
    for byte (the test above)."""
    from nbgrader.preprocessors import GetGrades

    from autograder.grading import grade_batch

    monkeypatch.setenv("COURSE_GRADER_SALT", "gradebook-salt")
    monkeypatch.setenv("COURSE_GRADER_STATE", str(tmp_path / "state"))
    course = tmp_path / "course"
    sub = course / "submitted" / "mallory" / "fixture_hw"
    sub.mkdir(parents=True)
    nb = nbformat.read(str(FIXTURE / "submissions" / "complete.ipynb"), as_version=4)
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    nb.cells[0].metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "points": 1000, "locked": True,
                                        "solution": False, "schema_version": 3}
    nb.cells[1].metadata["nbgrader"] = dict(solutions[0].metadata["nbgrader"])
    nb.cells[2].metadata["nbgrader"] = {"task": True, "grade_id": "essay", "points": 50, "schema_version": 3}
    nb.cells[-1].metadata["nbgrader"] = "grade"
    nbformat.write(nb, str(sub / "fixture_hw.ipynb"))
    out = tmp_path / "grades"
    results = grade_batch([course / "submitted"], "fixture_hw", out, progress=False, allow_weak_isolation=True)
    assert main(["gradebook", "fixture_hw", str(out), "--course-dir", str(course)]) == 0
    assert "1 notebook(s) copied to autograded/" in capsys.readouterr().out

    shown = nbformat.read(str(course / "autograded" / "mallory" / "fixture_hw" / "fixture_hw.ipynb"), as_version=4)
    marks = [c.metadata.get("nbgrader", {}).get("grade_id") for c in shown.cells]
    assert not {"bonus", "essay"} & set(marks) and "nbgrader" not in shown.cells[-1].metadata
    first = solutions[0].metadata["nbgrader"]["grade_id"]
    assert marks.count(first) == 1 and shown.cells[nb.cells.index(solutions[0])].metadata["nbgrader"]["grade_id"] \
        == first
    assert [c.source for c in shown.cells] == [c.source for c in nb.cells]
    resources = {"nbgrader": {"notebook": "fixture_hw", "assignment": "fixture_hw", "student": "mallory",
                              "db_url": f"sqlite:///{course / 'gradebook.db'}"}}
    _, resources = GetGrades().preprocess(shown, resources)
    assert resources["nbgrader"]["score"] == pytest.approx(results[0]["score"])
    assert resources["nbgrader"]["max_score"] == pytest.approx(100.0)
    # imported again: the copy in autograded/ is unchanged
    stamp = (course / "autograded" / "mallory" / "fixture_hw" / "fixture_hw.ipynb").stat().st_mtime_ns
    assert main(["gradebook", "fixture_hw", str(out), "--course-dir", str(course)]) == 0
    assert (course / "autograded" / "mallory" / "fixture_hw" / "fixture_hw.ipynb").stat().st_mtime_ns == stamp
