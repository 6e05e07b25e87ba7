"""Whose submission is this: the student a notebook belongs to, read from where it was collected, and the roster.

Layouts recognised (``student_of``), checked in this order:

* nbgrader's exchange: ``.../submitted/<student>/<assignment>/<notebook>.ipynb`` (also ``autograded/`` and
  ``feedback/``);
* a GitHub Classroom batch clone: a folder ``<assignment>-<student>`` (Classroom names each student's repository
  after the assignment's prefix and the student's GitHub login);
* an LMS download: Canvas names files ``<student>_[LATE_]<user id>_<submission id>_<file>.ipynb``; Moodle puts each
  student's files in a folder ``<Full Name>_<user id>_assignsubmission_file_``.

Anything else keeps its file name (``student`` is None). A submission's name (its folder in the results and its row
in grades.csv) is the student's id when one is known, so two students' ``hw2_em.ipynb`` never become ``hw2_em`` and
``hw2_em-2``. A roster (``read_roster``) lists the students a course expects: each one without a submission gets a
result of its own ("no submission", score 0).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import NamedTuple

__all__ = ["Submission", "student_of", "collect_submissions", "read_roster", "safe_name"]

_NBGRADER_STEPS = ("submitted", "autograded", "feedback")
_CANVAS = re.compile(r"^(?P<student>[A-Za-z0-9]+)_(?:LATE_)?\d+_\d+_")
_MOODLE = re.compile(r"^(?P<student>.+?_\d+)_assignsubmission_file_?$")
#: Column names a roster's student id may have (any case); otherwise its first column.
ROSTER_COLUMNS = ("student", "student_id", "id", "login", "github_username", "github", "username", "email")


class Submission(NamedTuple):
    """A notebook to grade: ``name`` (unique in the batch), its ``path``, and its ``student`` (None: unknown)."""

    name: str
    path: Path
    student: str | None


def safe_name(text: str) -> str:
    """``text`` as a folder name: letters, digits, ``-``, ``_`` and ``.`` (no leading dot)."""
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(text)).lstrip(".")
    return name or "submission"


def student_of(path, assignment: str | None = None) -> str | None:
    """The student a collected notebook belongs to, from the layouts above; None when no layout matches."""
    parts = Path(path).parts
    for step in _NBGRADER_STEPS:
        if step in parts[:-1]:
            i = len(parts) - 1 - parts[::-1].index(step)
            if i + 2 < len(parts):        # step / student / assignment / notebook
                return parts[i + 1]
    if assignment:
        for folder in reversed(parts[:-1]):
            if folder.startswith(assignment + "-") and len(folder) > len(assignment) + 1:
                return folder[len(assignment) + 1:]
    m = _CANVAS.match(Path(path).name)
    if m:
        return m.group("student")
    for folder in reversed(parts[:-1]):
        m = _MOODLE.match(folder)
        if m:
            return m.group("student")
    return None


def collect_submissions(items, assignment: str | None = None) -> list:
    """Expand files and folders (``*.ipynb``, recursively, checkpoints skipped) to ``Submission``s, names unique.

    Raises ValueError (one line) for a path that does not exist or a folder without notebooks; a file named
    directly is kept whatever it holds (grading gives it a row saying what is wrong with it).
    """
    paths = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
            if not found:
                raise ValueError(f"{item}: no .ipynb notebooks in this folder")
            paths += found
        elif p.is_file():               # any file named on the command line gets its row (a .py: "not a notebook")
            paths.append(p)
        else:
            raise ValueError(f"{item}: no such file or folder")
    out, used = [], set()
    for p in paths:
        student = student_of(p, assignment)
        base = safe_name(student if student is not None else p.stem)
        name, k = base, 2
        while name in used:             # the same student twice (or files without a student): keep both
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        out.append(Submission(name, p, student))
    return out


def read_roster(path) -> list:
    """The student ids of a roster CSV: the column named like a student id (``ROSTER_COLUMNS``, any case),
    else the first column; blank rows skipped, order kept, duplicates dropped. ValueError (one line) otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"roster {path}: {exc.strerror or exc}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise ValueError(f"roster {path} is empty: give a CSV with one student id per row")
    header = [h.strip().lower() for h in rows[0]]
    col = next((header.index(c) for c in ROSTER_COLUMNS if c in header), None)
    body = rows[1:] if col is not None else rows
    col = col or 0
    ids = []
    for row in body:
        if len(row) > col and row[col].strip() and row[col].strip() not in ids:
            ids.append(row[col].strip())
    if not ids:
        raise ValueError(f"roster {path} names no student: give a CSV with one student id per row")
    return ids
