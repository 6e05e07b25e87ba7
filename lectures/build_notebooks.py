"""Write the lecture notebooks from their source in ``lectures/nb_src/`` (one Python module per lecture).

    python lectures/build_notebooks.py           # (re)write every lectures/NN_topic.ipynb
    python lectures/build_notebooks.py --check   # exit 1 if a committed notebook differs from its source

Every notebook has the same shape: a title, the shared setup cell (seeds, device, paths, style), a papermill
``parameters`` cell (``FAST = False``; the tests run with ``FAST = True``), then the lecture. The notebooks
are written without outputs or execution counts, with stable cell ids, so rebuilding gives the same bytes.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "nb_src"

SETUP = '''\
# Setup: the same first cell in every lecture (seeds, device, paths, plotting style, polls).
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import course_lib
from course_lib import get_device, seed_everything
from course_lib.plotting import COLORS, figures_dir, savefig, use_style
from course_lib.polls import ask

SEED = seed_everything(0)
DEVICE = get_device()
LECTURE_DIR = Path.cwd()
FIGURES = figures_dir()  # savefig("fig_NN_name") writes FIGURES / "fig_NN_name.png"
use_style()
print(f"course_lib {course_lib.__version__}, torch {torch.__version__}, device {DEVICE}, figures -> {FIGURES}")'''


def _cells(lecture) -> list:
    cells = [new_markdown_cell(lecture.TITLE.strip()), new_code_cell(SETUP)]
    params = new_code_cell(lecture.PARAMETERS.strip())
    params.metadata["tags"] = ["parameters"]
    cells.append(params)
    for kind, text in lecture.CELLS:
        text = text.strip("\n")
        cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    stem = lecture.NAME[:2]
    for i, cell in enumerate(cells):
        cell["id"] = f"l{stem}-{i:03d}"
    return cells


def build(name: str):
    """The notebook of lecture ``name`` (a module of ``nb_src``) as a NotebookNode."""
    path = SOURCES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_lecture_{name}", path)
    lecture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lecture)
    nb = new_notebook(cells=_cells(lecture))
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return lecture.NAME, nb


def lecture_sources() -> list[str]:
    return sorted(p.stem for p in SOURCES.glob("lecture_[0-9][0-9].py"))


def render(nb) -> str:
    return nbformat.writes(nb, version=4) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that differ from their source")
    args = parser.parse_args(argv)
    stale = []
    for src in lecture_sources():
        name, nb = build(src)
        nbformat.validate(nb)
        target = HERE / f"{name}.ipynb"
        text = render(nb)
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(target.name)
        elif not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(HERE.parent)}")
    if stale:
        print(f"out of date with lectures/nb_src: {', '.join(stale)}; run python lectures/build_notebooks.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
