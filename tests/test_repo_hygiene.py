"""Promises about the repository itself: notebooks carry no outputs, every notebook has a parameters cell."""
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def tracked_notebooks():
    try:
        out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True)
        paths = [ROOT / p for p in out.stdout.split()]
    except (OSError, subprocess.CalledProcessError):
        paths = []
    if not paths:  # not a git checkout: look at the folders that hold notebooks
        paths = [p for d in ("lectures", "solutions", "assignments", "examples") for p in (ROOT / d).rglob("*.ipynb")
                 if ".ipynb_checkpoints" not in p.parts]
    return sorted(p for p in paths if p.exists())


#: Generated on purpose with every output: the lectures as students read them (written by `course figures`).
READABLE = ROOT / "lectures" / "executed"


@pytest.mark.parametrize("path", [p for p in tracked_notebooks() if READABLE not in p.parents],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
