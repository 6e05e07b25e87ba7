"""`course release HW`: generate the student notebook from the instructor's solution notebook.

``solutions/HW/HW.ipynb`` (nbgrader markers) ──▶ ``assignments/HW/HW.ipynb`` through nbgrader's own
preprocessors, applied with nbconvert (no nbgrader course database is involved):

* ``ClearSolutions``    code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
                        ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (the docstring stays);
* ``ClearHiddenTests``  test code between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` is removed;
* ``ClearMarkScheme``   marking schemes of written answers are removed;
* ``PublicTestCells``   (ours) each test cell becomes an nbgrader *read-only* cell: its ``grade`` flag and
                        ``points`` are removed (see below);
* ``LockCells``         read-only cells are marked non-editable/non-deletable;
* ``ComputeChecksums``  nbgrader's checksum of every solution and read-only cell is recorded in its metadata;
* ``ClearOutput``       outputs and execution counts are cleared.

Then the markdown cell tagged ``allowed-modules`` gets the suite's :meth:`~autograder.suite.Suite.rules_markdown`:
what the graded functions may use and which names cost a function its points, written from the same lists
the grader enforces, so the notebook and the grader cannot disagree.

One source of truth for points. The solution's test cells carry nbgrader points (one cell per graded function,
its points the suite's points for that function), but their asserts are not the grading suite's checks
(``autograder/suites/HW.py``, with hidden cases judged outside the student's kernel): nbgrader's autograde
of those cells would give a second, different score for the same submission. So the released notebook does
not present itself as nbgrader-gradable: its test cells stay, locked, as quick checks a student runs, and no
cell carries ``grade`` or ``points``. The grade is ``course grade``'s; ``course gradebook HW RESULTS_DIR``
(``autograder.gradebook``) writes it into nbgrader's gradebook, one grade cell ``test_<function>`` per graded
function, so formgrader shows the same score.

``course release HW --check`` regenerates the notebook in memory and compares it with the committed one;
it exits 1 (naming the first differing cell) when they have drifted apart.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["ASSIGNMENTS", "PublicTestCells", "solution_path", "release_path", "release_notebook", "render",
           "release", "check", "release_command"]

from autograder.suites import ASSIGNMENTS  # noqa: E402 - the one registry of the course's assignments

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
#: The tag of the solution notebook's markdown cell that release fills with the suite's rules.
RULES_TAG = "allowed-modules"


def _root(root) -> Path:
    """``root``, else the course folder (``course_lib.paths.course_root``)."""
    from course_lib.paths import course_root
    return Path(root) if root is not None else course_root()


def solution_path(hw: str, root: Path | None = None) -> Path:
    return _root(root) / "solutions" / hw / f"{hw}.ipynb"


def release_path(hw: str, root: Path | None = None) -> Path:
    return _root(root) / "assignments" / hw / f"{hw}.ipynb"


class PublicTestCells:
    """Turn every nbgrader test cell (``grade`` set, not a solution) into a read-only cell without points.

    The cell keeps its source (the visible asserts), its ``grade_id`` and ``locked``; ``grade`` becomes False
    and ``points`` is removed, so nbgrader has nothing of its own to score in the released notebook. It runs
    before ``LockCells`` and ``ComputeChecksums``, so nbgrader locks and checksums the cell as what it now is.
    A preprocessor in nbgrader's sense: ``preprocess(nb, resources) -> (nb, resources)``.
    """

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if meta and meta.get("grade") and not meta.get("solution"):
                meta["grade"] = False
                meta.pop("points", None)
                meta["locked"] = True
        return nb, resources


def _preprocessors():
    from nbgrader.preprocessors import (ClearHiddenTests, ClearMarkScheme, ClearOutput, ClearSolutions,
                                        ComputeChecksums, LockCells)
    from traitlets.config import Config

    config = Config()
    config.ClearSolutions.code_stub = {"python": CODE_STUB}
    config.ClearSolutions.enforce_metadata = True
    config.ClearHiddenTests.enforce_metadata = True
    config.LockCells.lock_solution_cells = False      # students edit their solution cells
    config.LockCells.lock_grade_cells = True
    config.LockCells.lock_readonly_cells = True
    # The order of nbgrader's generate_assignment (clear, lock, checksum, then clear outputs), with the
    # test cells made read-only before they are locked and checksummed.
    first = [cls(config=config) for cls in (ClearSolutions, ClearHiddenTests, ClearMarkScheme)]
    last = [cls(config=config) for cls in (LockCells, ComputeChecksums, ClearOutput)]
    return [*first, PublicTestCells(), *last]


def release_notebook(nb):
    """Return the student version of a solution notebook (an ``nbformat.NotebookNode``; ``nb`` is copied)."""
    import copy

    nb = copy.deepcopy(nb)
    resources = {"metadata": {"name": nb.metadata.get("name", "notebook"), "path": ""}, "language": "python"}
    for pre in _preprocessors():
        nb, resources = pre.preprocess(nb, resources)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    _write_rules(nb)
    return nb


def _rules_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "markdown" and RULES_TAG in c.metadata.get("tags", [])]


def _write_rules(nb) -> None:
    """Fill the ``allowed-modules`` cell with the rules of the suite the notebook's metadata names."""
    from autograder.suites import available_suites, load_suite

    hw = (nb.metadata.get("course") or {}).get("assignment")
    cells = _rules_cells(nb)
    if cells and hw in available_suites(fixtures=True):
        text = load_suite(hw).rules_markdown()
        for cell in cells:
            cell.source = text


def render(nb) -> str:
    """The committed text of a notebook: nbformat's JSON (sorted keys, one-space indent) and a newline."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def _read(path: Path):
    import nbformat

    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return nbformat.read(str(path), as_version=4)


def _check_solution(hw: str, nb) -> None:
    """Each graded function sits alone in a solution cell whose grade_id is its name; one markdown cell is
    tagged ``allowed-modules`` and the metadata names the assignment."""
    import ast

    if (nb.metadata.get("course") or {}).get("assignment") != hw:
        raise ValueError(f"{hw}: the notebook's metadata must say course.assignment = {hw!r}")
    if len(_rules_cells(nb)) != 1:
        raise ValueError(f"{hw}: tag one markdown cell {RULES_TAG!r} (release writes there what the functions "
                         f"may use), found {len(_rules_cells(nb))}")
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("solution") and cell.cell_type == "code"):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as exc:
            raise ValueError(f"{hw}: solution cell {i} does not parse ({exc.msg}, line {exc.lineno})") from None
        defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        if defs != [meta.get("grade_id")]:
            raise ValueError(f"{hw}: solution cell {i} (grade_id {meta.get('grade_id')!r}) must define exactly "
                             f"one function with that name, found {defs}")


def build(hw: str, root: Path | None = None) -> str:
    """The text the released notebook of ``hw`` must have."""
    nb = _read(solution_path(hw, root))
    _check_solution(hw, nb)
    return render(release_notebook(nb))


def release(hw: str, root: Path | None = None) -> Path:
    """Write ``assignments/HW/HW.ipynb`` from ``solutions/HW/HW.ipynb``; return its path."""
    text = build(hw, root)
    out = release_path(hw, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".ipynb.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def check(hw: str, root: Path | None = None) -> str | None:
    """None when the committed student notebook is what release would write, else one line saying where not."""
    root = _root(root)
    expected = build(hw, root)
    out = release_path(hw, root)
    if not out.is_file():
        return f"{out.relative_to(root)} is missing; run `course release {hw}`"
    actual = out.read_text(encoding="utf-8")
    if actual == expected:
        return None
    try:
        want, got = json.loads(expected)["cells"], json.loads(actual)["cells"]
        where = next((f"cell {i}" for i, (a, b) in enumerate(zip(want, got)) if a != b),
                     f"the number of cells ({len(got)} committed, {len(want)} expected)" if len(want) != len(got)
                     else "the notebook metadata")
    except (ValueError, KeyError):
        where = "its JSON"
    return (f"{out.relative_to(root)} is out of sync with {solution_path(hw, root).relative_to(root)} "
            f"(first difference: {where}); run `course release {hw}`")


def release_command(args: argparse.Namespace) -> int:
    try:
        root = _root(None)
    except ValueError as exc:
        print(f"course release: {exc}", file=sys.stderr)
        return 2
    names = list(ASSIGNMENTS) if args.assignment in ("all", "ALL") else [args.assignment]
    status = 0
    for hw in names:
        if not solution_path(hw, root).is_file():
            known = ", ".join(p.name for p in sorted((root / "solutions").glob("*")) if (p / f"{p.name}.ipynb").is_file())
            print(f"course release: no solution notebook solutions/{hw}/{hw}.ipynb; known: {known or 'none'}",
                  file=sys.stderr)
            return 2
        try:
            if args.check:
                problem = check(hw, root)
                if problem:
                    print(f"course release --check: {problem}", file=sys.stderr)
                    status = 1
                else:
                    print(f"{hw}: assignments/{hw}/{hw}.ipynb is in sync")
            else:
                out = release(hw, root)
                print(f"{hw}: wrote {out.relative_to(root)}")
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            print(f"course release: {hw}: {exc}", file=sys.stderr)
            return 1
    return status
