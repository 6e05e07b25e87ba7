"""The released student notebooks: generated from the solutions by nbgrader's preprocessors, and in sync."""
import ast
import importlib
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import release

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = release.ASSIGNMENTS


def _nbgrader(cell):
    return cell.metadata.get("nbgrader", {})


def _solution_cells(nb):
    return [c for c in nb.cells if _nbgrader(c).get("solution")]


def _read(path):
    return nbformat.read(str(path), as_version=4)


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_release_is_in_sync(hw):
    problem = release.check(hw)
    assert problem is None, problem


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_stubs_raise_and_hold_no_solution_or_hidden_tests(hw):
    solution = _read(release.solution_path(hw))
    student = _read(release.release_path(hw))
    text = release.release_path(hw).read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "HIDDEN TESTS" not in text
    by_id = {_nbgrader(c).get("grade_id"): c for c in student.cells if _nbgrader(c)}
    for cell in _solution_cells(solution):
        gid = _nbgrader(cell)["grade_id"]
        stub = by_id[gid].source
        assert stub.rstrip().endswith("raise NotImplementedError()"), f"{hw}/{gid}: the stub must end in raise"
        assert '"""' in stub, f"{hw}/{gid}: the stub keeps its docstring with the shapes"
        body = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        for line in body.strip().splitlines():
            if line.strip() and not line.strip().startswith("#") and len(line.strip()) > 12:
                assert line.strip() not in stub, f"{hw}/{gid}: solution line leaked into the stub: {line.strip()}"
    tests = [c for c in solution.cells if _nbgrader(c).get("grade")]
    assert tests, f"{hw}: the solution has no test cells"
    for cell in tests:
        released = by_id[_nbgrader(cell)["grade_id"]]
        assert cell.source.split("### BEGIN HIDDEN TESTS")[0].strip() in released.source


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_released_notebook_gives_nbgrader_nothing_of_its_own_to_grade(hw):
    """One source of truth for points: no released cell carries nbgrader grade metadata; each solution test
    cell is released as a locked nbgrader read-only cell (same grade_id, its visible asserts), which nbgrader
    neither scores nor lets a student edit; the metadata is valid nbgrader format."""
    from nbgrader import utils
    from nbgrader.nbgraderformat import MetadataValidator

    solution = _read(release.solution_path(hw))
    student = _read(release.release_path(hw))
    assert not [c for c in student.cells if utils.is_grade(c) or "points" in _nbgrader(c)]
    assert sum(float(_nbgrader(c).get("points", 0)) for c in student.cells) == 0
    by_id = {_nbgrader(c).get("grade_id"): c for c in student.cells if _nbgrader(c)}
    tests = [c for c in solution.cells if utils.is_grade(c)]
    assert len(tests) == len(_solution_cells(solution))
    for cell in tests:
        released = by_id[_nbgrader(cell)["grade_id"]]
        assert utils.is_locked(released) and not utils.is_solution(released)
        assert released.metadata["editable"] is False and released.metadata["deletable"] is False
        assert _nbgrader(released)["checksum"] == utils.compute_checksum(released)
    for cell in _solution_cells(student):       # the student's answers stay nbgrader solution cells
        assert not utils.is_locked(cell) and not utils.is_grade(cell)
    MetadataValidator().validate_nb(student)


def test_public_test_cells_keeps_solution_cells_and_drops_only_grading():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def f():\n    return 1"), nbformat.v4.new_code_cell("assert f() == 1"),
                nbformat.v4.new_markdown_cell("text")]
    nb.cells[0].metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False, "grade_id": "f",
                                        "schema_version": 3, "task": False}
    nb.cells[1].metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": "test_f",
                                        "points": 5, "schema_version": 3, "task": False}
    out, _ = release.PublicTestCells().preprocess(nb, {})
    kept = out.cells[0].metadata["nbgrader"]
    assert kept["solution"] is True and kept["grade_id"] == "f" and not kept["grade"]
    assert out.cells[1].metadata["nbgrader"] == {"grade": False, "solution": False, "locked": True,
                                                 "grade_id": "test_f", "schema_version": 3, "task": False}
    assert out.cells[1].source == "assert f() == 1" and "nbgrader" not in out.cells[2].metadata


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_grade_ids_are_the_graded_functions(hw):
    suite = importlib.import_module(f"autograder.suites.{hw}").SUITE
    for path in (release.solution_path(hw), release.release_path(hw)):
        nb = _read(path)
        ids = []
        for cell in _solution_cells(nb):
            tree = ast.parse(cell.source)
            defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
            assert defs == [_nbgrader(cell)["grade_id"]], f"{path.name}: {defs} in cell {_nbgrader(cell)['grade_id']}"
            ids.append(defs[0])
        assert sorted(ids) == sorted(suite.functions), f"{path.name}: solution cells {ids} vs graded {list(suite.functions)}"
    assert suite.notebook == f"assignments/{hw}/{hw}.ipynb"


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_points_in_the_notebook_match_the_suite(hw):
    suite = importlib.import_module(f"autograder.suites.{hw}").SUITE
    per_function = {}
    for check in suite.checks:
        per_function[check.function] = per_function.get(check.function, 0) + check.points
    nb = _read(release.solution_path(hw))
    tests = {_nbgrader(c)["grade_id"]: _nbgrader(c)["points"] for c in nb.cells if _nbgrader(c).get("grade")}
    assert tests == {f"test_{f}": p for f, p in per_function.items()}
    assert sum(tests.values()) == 100


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_parameters_cell_covers_the_grading_setting(hw):
    suite = importlib.import_module(f"autograder.suites.{hw}").SUITE
    for path in (release.solution_path(hw), release.release_path(hw)):
        nb = _read(path)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
        names = {t.id for node in ast.parse(params[0].source).body if isinstance(node, ast.Assign)
                 for t in node.targets}
        assert set(suite.parameters) <= names, f"{path.name}: grading parameters {set(suite.parameters) - names} unset"


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_committed_notebooks_carry_no_outputs(hw):
    paths = [release.solution_path(hw), release.release_path(hw), *sorted((ROOT / "examples" / hw).glob("*.ipynb"))]
    for path in paths:
        nb = json.loads(path.read_text())
        dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
                 and (c.get("outputs") or c.get("execution_count"))]
        assert not dirty, f"{path.relative_to(ROOT)}: cells {dirty} carry outputs"


def test_check_reports_drift_and_release_fixes_it(tmp_path, capsys):
    hw = "hw1_mle"
    for sub in ("solutions", "assignments"):
        shutil.copytree(ROOT / sub / hw, tmp_path / sub / hw)
    assert release.check(hw, tmp_path) is None
    sol = release.solution_path(hw, tmp_path)
    nb = _read(sol)
    md = next(c for c in nb.cells if c.cell_type == "markdown")
    md.source += "\n\nA new sentence."
    nbformat.write(nb, str(sol))
    problem = release.check(hw, tmp_path)
    assert problem and "out of sync" in problem and "cell 0" in problem and "course release hw1_mle" in problem
    release.release(hw, tmp_path)
    assert release.check(hw, tmp_path) is None
    assert "A new sentence." in release.release_path(hw, tmp_path).read_text()


def _solution_code_outside_a_solution_cell(nb):
    nb.cells.append(nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION"))


def _no_rules_cell(nb):
    nb.cells = [c for c in nb.cells if release.RULES_TAG not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("breaks,error,says", [
    (_solution_code_outside_a_solution_cell, RuntimeError, "non-solution cell"),
    (_no_rules_cell, ValueError, "tag one markdown cell 'allowed-modules'"),
])
def test_release_refuses_a_broken_solution(tmp_path, breaks, error, says):
    hw = "hw2_em"
    shutil.copytree(ROOT / "solutions" / hw, tmp_path / "solutions" / hw)
    sol = release.solution_path(hw, tmp_path)
    nb = _read(sol)
    breaks(nb)
    nbformat.write(nb, str(sol))
    with pytest.raises(error, match=says):
        release.build(hw, tmp_path)


def test_cli_check_exit_codes(capsys):
    from autograder.cli import main
    assert main(["release", "hw2_em", "--check"]) == 0
    assert "in sync" in capsys.readouterr().out
    assert main(["release", "hw9_none", "--check"]) == 2
    assert re.search(r"no solution notebook", capsys.readouterr().err)


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_student_notebook_names_its_assignment(hw):
    """`course check my_copy.ipynb` finds the assignment from the notebook itself, whatever the file is called."""
    from autograder.grading import _assignment_of
    nb = nbformat.read(str(ROOT / "assignments" / hw / f"{hw}.ipynb"), as_version=4)
    assert nb.metadata["course"]["assignment"] == hw
    renamed = ROOT / "examples" / hw / "complete.ipynb"      # a student's copy under another name
    assert _assignment_of(renamed, json.loads(renamed.read_text())) == hw


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_the_notebook_states_the_rules_the_grader_enforces(hw):
    """The paragraph on what may be used is the suite's own, and names every name that costs points."""
    from autograder.suites import load_suite
    suite = load_suite(hw)
    nb = nbformat.read(str(ROOT / "assignments" / hw / f"{hw}.ipynb"), as_version=4)
    cells = [c for c in nb.cells if release.RULES_TAG in c.metadata.get("tags", [])]
    assert len(cells) == 1 and cells[0].cell_type == "markdown"
    text = cells[0].source
    assert text == suite.rules_markdown()
    assert suite.allowed_text() in text and "scikit-learn, SciPy" in text
    for fname in suite.functions:
        for name in suite.forbidden_for(fname):
            assert f"`{name}`" in text, (fname, name)


def test_hw4_says_torch_distributions_is_forbidden():
    """What an independent hw4 lost points for, now said where the student reads."""
    nb = nbformat.read(str(ROOT / "assignments" / "hw4_vae" / "hw4_vae.ipynb"), as_version=4)
    text = next(c.source for c in nb.cells if release.RULES_TAG in c.metadata.get("tags", []))
    assert "`torch.distributions`" in text and "PyTorch (`torch`, `torch.nn`" in text


def test_a_change_to_the_suite_changes_the_release(tmp_path, monkeypatch):
    """The rules come from the suite: forbidding one more name makes the committed notebook out of date."""
    from autograder.suite import Function
    from autograder.suites import load_suite
    hw = "hw1_mle"
    for sub in ("solutions", "assignments"):
        shutil.copytree(ROOT / sub / hw, tmp_path / sub / hw)
    suite = load_suite(hw)
    fn = suite.functions["gaussian_mle"]
    monkeypatch.setitem(suite.functions, "gaussian_mle",
                        Function(fn.time_budget_s, fn.forbidden + ("numpy.cov",), fn.description))
    problem = release.check(hw, tmp_path)
    assert problem and "out of sync" in problem and "cell 1" in problem
    release.release(hw, tmp_path)
    assert "`numpy.cov`" in release.release_path(hw, tmp_path).read_text()

