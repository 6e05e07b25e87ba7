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
import os
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
    """A notebook to grade: ``name`` (unique in the batch), its ``path``, its ``student`` (None: unknown), and
    ``problem``: why it cannot be graded as it stands (one line), or None."""

    name: str
    path: Path
    student: str | None
    problem: str | None = None


def safe_name(text: str) -> str:
    """``text`` as a folder name: letters, digits, ``-`` and ``_``. No dot, so no name can be one of the
    grader's own files in the results folder (``grades.csv``, a temporary ``.*.tmp``) or a relative path."""
    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(text))
    return name or "submission"


def student_of(path, assignment: str | None = None, root=None) -> str | None:
    """The student a collected notebook belongs to, from the layouts above; None when no layout matches.

    ``root`` is the folder the notebook was found in (the folder named on the command line): only the part
    of the path from ``root`` on (its own name included) is read, so a folder above it says nothing. The
    outermost folder that fits a layout decides: a student's repository ``hw2_em-aaron`` that holds
    ``submitted/bob/hw2_em/x.ipynb`` or ``hw2_em-bob/`` is still aaron's.
    """
    path = Path(path)
    parts = (Path(root).name, *path.relative_to(root).parts) if root is not None else path.parts
    folders = parts[:-1]
    for j, folder in enumerate(folders):
        if folder in _NBGRADER_STEPS and j + 3 <= len(folders):    # step / student / assignment / notebook
            return parts[j + 1]
        if assignment and folder.startswith(assignment + "-") and len(folder) > len(assignment) + 1:
            return folder[len(assignment) + 1:]
        m = _MOODLE.match(folder)
        if m:
            return m.group("student")
    m = _CANVAS.match(path.name)
    return m.group("student") if m else None


def collect_submissions(items, assignment: str | None = None, expected=()) -> list:
    """Expand files and folders (``*.ipynb``, recursively, checkpoints skipped) to ``Submission``s, names unique.

    A file that is no student's never takes a student's name: not that of a student found here, nor that of one
    in ``expected`` (the roster's ids), whatever the order; a loose ``bob.ipynb`` becomes ``bob-2`` and bob keeps
    ``bob``. A student has one submission: where several notebooks are theirs, the one named ``<assignment>.ipynb``
    nearest the top of their folder is graded when there is exactly one such, else their submission gets
    ``problem`` (one line) and a score of 0. Raises ValueError (one line) for a path that does not exist or
    a folder without notebooks; a file named directly is kept whatever it holds (grading gives it a row
    saying what is wrong with it).
    """
    found = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            inside = sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
            if not inside:
                raise ValueError(f"{item}: no .ipynb notebooks in this folder")
            found += [(q, student_of(q, assignment, root=p)) for q in inside]
        elif p.is_file():               # any file named on the command line gets its row (a .py: "not a notebook")
            found.append((p, student_of(p, assignment)))
        else:
            raise ValueError(f"{item}: no such file or folder")
    mine = {}
    for p, student in found:
        if student is not None:
            mine.setdefault(student, []).append(p)
    out, used, seen = [], set(), set()
    students = {safe_name(s) for s in [*mine, *expected]}
    for p, student in found:
        problem = None
        if student is not None:
            if student in seen:
                continue
            seen.add(student)
            paths = mine[student]
            named = [q for q in paths if assignment and q.stem == assignment]
            shallowest = min((len(q.parts) for q in named), default=None)
            top = [q for q in named if len(q.parts) == shallowest]
            if len(paths) > 1 and len(top) == 1:     # the shallowest <assignment>.ipynb, when there is one
                p = top[0]
            elif len(paths) > 1:
                common = Path(os.path.commonpath(paths))
                shown = ", ".join(str(q.relative_to(common)) for q in paths[:4]) + (", ..." if len(paths) > 4 else "")
                problem = (f"{len(paths)} notebooks are {student}'s ({shown}): hand in one, named "
                           f"{assignment or 'after the assignment'}.ipynb")
        base = safe_name(student if student is not None else p.stem)
        name, k = base, 2
        while name in used or (student is None and name in students):   # (or ids that a safe name merges)
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        out.append(Submission(name, p, student, problem))
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
