"""Students keep who they are: the student of a submission is read from where it was collected (nbgrader,
GitHub Classroom, Canvas, Moodle), named in results and grades.csv; a roster's students without a submission
get a row; a notebook of another assignment gets one clear line."""
import csv
import json
import shutil
from pathlib import Path

import pytest

from autograder.grading import grade_batch
from autograder.students import collect_submissions, read_roster, student_of

ROOT = Path(__file__).resolve().parents[1]
COMPLETE = ROOT / "tests" / "fixtures" / "fixture_hw" / "submissions" / "complete.ipynb"


@pytest.mark.parametrize("path, student", [
    ("course/submitted/alice/hw2_em/hw2_em.ipynb", "alice"),
    ("course/autograded/bob/hw2_em/my_notebook.ipynb", "bob"),
    ("batch/hw2_em-carol-gh/hw2_em.ipynb", "carol-gh"),
    ("batch/hw2_em-dave/notebooks/hw2_em.ipynb", "dave"),
    ("downloads/smitherin_12345_67890_hw2_em.ipynb", "smitherin"),
    ("downloads/jones_LATE_12345_67890_hw2_em-1.ipynb", "jones"),
    ("moodle/Erin Smith_4411_assignsubmission_file_/hw2_em.ipynb", "Erin Smith_4411"),
    ("loose/hw2_em.ipynb", None),
    ("submitted/hw2_em.ipynb", None),
])
def test_student_of_each_layout(path, student):
    assert student_of(path, "hw2_em") == student


def test_two_students_with_the_same_file_name_stay_apart(tmp_path):
    for who in ("alice", "bob"):
        d = tmp_path / "submitted" / who / "hw2_em"
        d.mkdir(parents=True)
        shutil.copy(COMPLETE, d / "hw2_em.ipynb")
    subs = collect_submissions([tmp_path], "hw2_em")
    assert [(s.name, s.student) for s in subs] == [("alice", "alice"), ("bob", "bob")]


def _notebook(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(COMPLETE, path)


def test_a_student_cannot_hand_in_for_another(tmp_path):
    """What a student's repository holds cannot name another student: the outermost folder that fits a layout
    decides, and folders above the one named on the command line say nothing."""
    batch = tmp_path / "feedback" / "classroom"          # an instructor's folder that looks like nbgrader's
    _notebook(batch / "hw2_em-aaron" / "hw2_em.ipynb")
    _notebook(batch / "hw2_em-aaron" / "submitted" / "bob" / "hw2_em" / "hw2_em.ipynb")
    _notebook(batch / "hw2_em-aaron" / "hw2_em-carol" / "hw2_em.ipynb")
    _notebook(batch / "hw2_em-bob" / "work" / "hw2_em.ipynb")
    subs = collect_submissions([batch], "hw2_em")
    assert [(s.name, s.student) for s in subs] == [("aaron", "aaron"), ("bob", "bob")]
    assert subs[0].path == batch / "hw2_em-aaron" / "hw2_em.ipynb" and subs[0].problem is None
    assert subs[1].path == batch / "hw2_em-bob" / "work" / "hw2_em.ipynb" and subs[1].problem is None


def test_several_notebooks_of_one_student_are_one_row_that_says_so(tmp_path):
    _notebook(tmp_path / "hw2_em-dave" / "draft.ipynb")
    _notebook(tmp_path / "hw2_em-dave" / "final.ipynb")
    _notebook(tmp_path / "hw2_em-erin" / "hw2_em.ipynb")
    subs = collect_submissions([tmp_path], "hw2_em")
    assert [s.name for s in subs] == ["dave", "erin"]
    assert "2 notebooks are dave's (draft.ipynb, final.ipynb)" in subs[0].problem
    assert "hand in one, named hw2_em.ipynb" in subs[0].problem and subs[1].problem is None


def test_roster_reads_the_id_column_or_the_first(tmp_path):
    (tmp_path / "a.csv").write_text("Name,Login\nAlice A,alice\nBob B,bob\n,\nAlice A,alice\n")
    assert read_roster(tmp_path / "a.csv") == ["alice", "bob"]
    (tmp_path / "b.csv").write_text("alice\nbob\n")
    assert read_roster(tmp_path / "b.csv") == ["alice", "bob"]
    (tmp_path / "c.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_roster(tmp_path / "c.csv")


@pytest.mark.slow
def test_an_nbgrader_folder_is_graded_with_every_student_named_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_GRADER_SALT", "students-salt")
    monkeypatch.setenv("COURSE_GRADER_STATE", str(tmp_path / "state"))
    for who in ("alice", "bob"):
        d = tmp_path / "exchange" / "submitted" / who / "fixture_hw"
        d.mkdir(parents=True)
        shutil.copy(COMPLETE, d / "fixture_hw.ipynb")
    other = json.loads(COMPLETE.read_text())
    other.setdefault("metadata", {})["course"] = {"assignment": "hw1_mle"}
    d = tmp_path / "exchange" / "submitted" / "erin" / "fixture_hw"
    d.mkdir(parents=True)
    (d / "fixture_hw.ipynb").write_text(json.dumps(other))
    (tmp_path / "roster.csv").write_text("student\nalice\nbob\ncarol\nerin\n")
    out = tmp_path / "out"
    results = grade_batch([tmp_path / "exchange"], "fixture_hw", out, roster=tmp_path / "roster.csv",
                          progress=False, allow_weak_isolation=True)
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert sorted(rows) == ["alice", "bob", "carol", "erin"] and len(results) == 4
    assert float(rows["alice"]["score"]) == float(rows["bob"]["score"]) == 100.0
    assert rows["carol"]["reason"] == "no submission" and float(rows["carol"]["score"]) == 0.0
    assert "the hw1_mle assignment" in rows["erin"]["reason"] and "submit your fixture_hw" in rows["erin"]["reason"]
    assert (out / "alice" / "results.json").exists() and (out / "bob" / "results.json").exists()
    assert json.loads((out / "bob" / "results.json").read_text())["extra_data"]["student"] == "bob"


def test_no_file_name_becomes_one_of_the_graders_own_files(tmp_path):
    """``grades.csv.ipynb`` once became the folder ``DIR/grades.csv`` and stopped the whole batch."""
    for name in ("grades.csv.ipynb", "..ipynb", ".hidden.ipynb", "alice.ipynb"):
        (tmp_path / name).write_text("{}")
    names = [s.name for s in collect_submissions([tmp_path], "hw1_mle")]
    assert sorted(names) == ["_", "_hidden", "alice", "grades_csv"], names
    assert not any("." in n for n in names)


def test_a_file_of_no_student_never_takes_a_students_name(tmp_path):
    """A loose notebook named after a student (found before or after them, or only on the roster) gets another
    name: the student's own row keeps theirs."""
    _notebook(tmp_path / "a_bob.ipynb")                          # sorts before hw2_em-bob/
    _notebook(tmp_path / "bob.ipynb")
    _notebook(tmp_path / "carol.ipynb")
    _notebook(tmp_path / "hw2_em-bob" / "hw2_em.ipynb")
    subs = collect_submissions([tmp_path], "hw2_em", expected=["carol"])
    names = {s.name: (s.student, s.path.relative_to(tmp_path).as_posix()) for s in subs}
    assert names["bob"] == ("bob", "hw2_em-bob/hw2_em.ipynb")
    assert names["bob-2"] == (None, "bob.ipynb") and names["carol-2"] == (None, "carol.ipynb")
    assert "carol" not in names and names["a_bob"] == (None, "a_bob.ipynb")
