"""Write the four solution notebooks (solutions/HW/HW.ipynb) from the cell lists in solutions/_content.py.

The committed notebooks are what the instructor edits; this script is how they were first laid out and a
quick way to rebuild them all after an edit here. Usage::

    python solutions/build.py            # rewrite every solution notebook
    python solutions/build.py hw2_em     # rewrite one

After rebuilding, run ``course release HW`` to regenerate the student notebook.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _content import ASSIGNMENTS  # noqa: E402

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python", "pygments_lexer": "ipython3", "file_extension": ".py",
                 "mimetype": "text/x-python", "codemirror_mode": {"name": "ipython", "version": 3},
                 "nbconvert_exporter": "python"}


def _nbgrader(grade_id: str, *, solution: bool = False, grade: bool = False, points: int | None = None,
              locked: bool = False) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def build_cell(kind: str, source: str, index: int, hw: str, **opts):
    """One notebook cell from an entry of a cell list: ("md", text), ("code", src), ("params", src),
    ("solution", function_name, src), ("test", grade_id, points, src)."""
    source = source.strip("\n")
    cell_id = f"{hw.replace('_', '-')}-{index:02d}"
    if kind == "md":
        cell = new_markdown_cell(source)
    elif kind == "code":
        cell = new_code_cell(source)
    elif kind == "params":
        cell = new_code_cell(source, metadata={"tags": ["parameters"]})
    elif kind == "solution":
        cell = new_code_cell(source, metadata={"nbgrader": _nbgrader(opts["grade_id"], solution=True)})
    elif kind == "test":
        cell = new_code_cell(source, metadata={"nbgrader": _nbgrader(opts["grade_id"], grade=True, locked=True,
                                                                     points=opts["points"])})
    else:
        raise ValueError(f"unknown cell kind {kind!r}")
    cell["id"] = cell_id
    return cell


def build_notebook(hw: str) -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO})
    for i, entry in enumerate(ASSIGNMENTS[hw]):
        kind = entry[0]
        if kind == "solution":
            nb.cells.append(build_cell(kind, entry[2], i, hw, grade_id=entry[1]))
        elif kind == "test":
            nb.cells.append(build_cell(kind, entry[3], i, hw, grade_id=entry[1], points=entry[2]))
        else:
            nb.cells.append(build_cell(kind, entry[1], i, hw))
    nbformat.validate(nb)
    return nb


def write_notebook(hw: str) -> Path:
    path = HERE / hw / f"{hw}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = build_notebook(hw)
    text = nbformat.writes(nb) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def main(argv=None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(ASSIGNMENTS)
    for hw in names:
        if hw not in ASSIGNMENTS:
            print(f"build: unknown assignment {hw!r}; choose from {', '.join(ASSIGNMENTS)}", file=sys.stderr)
            return 2
        print(f"wrote {write_notebook(hw).relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
