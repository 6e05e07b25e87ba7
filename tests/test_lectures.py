"""The lecture notebooks: in sync with their source, the same setup cell, and every one executes (FAST=True)
writing exactly its registered figures; regenerating gives the same bytes."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import figures as figcmd
from course_lib.plotting import check_registry, load_registry

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "lectures"
NOTEBOOKS = figcmd.lecture_notebooks(LECTURES)
NAMES = ["01_generative_models_mle", "02_expectation_maximization", "03_pca_factor_analysis",
         "04_variational_autoencoders"]


def load(path):
    return json.loads(Path(path).read_text())


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_the_four_lectures_exist():
    assert [p.stem for p in NOTEBOOKS] == NAMES


def test_notebooks_are_in_sync_with_their_source():
    out = subprocess.run([sys.executable, str(LECTURES / "build_notebooks.py"), "--check"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    nb = load(path)
    cells = code_cells(nb)
    for c in cells:
        assert not c.get("outputs") and c.get("execution_count") is None, "committed notebooks carry no outputs"
    setup, params = cells[0], cells[1]
    assert "seed_everything" in "".join(setup["source"]) and "get_device" in "".join(setup["source"])
    assert "parameters" in params["metadata"].get("tags", [])
    assert "FAST = False" in "".join(params["source"])
    code = "\n".join("".join(c["source"]) for c in cells)
    # notebooks import the estimators from course_lib and never define their own
    assert "\nclass " not in "\n" + code and "def fit(" not in code


def test_every_lecture_opens_with_the_same_setup_cell():
    setups = {"".join(code_cells(load(p))[0]["source"]) for p in NOTEBOOKS}
    assert len(setups) == 1


_RUNS = {}


def executed(stem, tmp_path_factory):
    """Run a lecture once per test session with FAST=True into a temporary figures folder."""
    if stem not in _RUNS:
        nb = LECTURES / f"{stem}.ipynb"
        out = tmp_path_factory.mktemp(f"figs_{stem[:2]}")
        _RUNS[stem] = figcmd.run_lecture(nb, out, {"FAST": True}, executed=out / "executed.ipynb")
    return _RUNS[stem]


@pytest.mark.parametrize("stem", NAMES)
def test_lecture_executes_and_writes_its_registered_figures(stem, tmp_path_factory):
    run = executed(stem, tmp_path_factory)
    registry = load_registry()
    assert check_registry({stem: set(run.figures)}, registry) == []
    assert set(run.figures) == {f for f, e in registry.items() if e["lecture"] == stem}
    for path in run.figures.values():
        assert path.stat().st_size > 5000 and path.read_bytes()[:4] == b"\x89PNG"
    nb = load(run.executed)
    errors = [o for c in code_cells(nb) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # the polls show as plain text when executed without a browser
    text = json.dumps(nb)
    assert "answer key: course_lib.polls.answer" in text or stem == "04_variational_autoencoders"


@pytest.mark.parametrize("name", NAMES)
def test_course_figures_regenerates_byte_identical_files(name, tmp_path, tmp_path_factory, monkeypatch, capsys):
    first = executed(name, tmp_path_factory)
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    rc = figcmd.figures_command(argparse.Namespace(lectures=[name[:2]], parameters={"FAST": True}))
    out = capsys.readouterr().out
    assert rc == 0 and f"[1/1] {name}" in out
    again = sorted(tmp_path.glob("fig_*.png"))
    assert [p.stem for p in again] == sorted(first.figures)
    for p in again:
        assert p.read_bytes() == first.figures[p.stem].read_bytes(), f"{p.name} differs between two runs"
