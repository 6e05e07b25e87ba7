"""Write the lecture notebooks from their source in ``lectures/nb_src/`` (one Python module per lecture).

    python lectures/build_notebooks.py             # (re)write every lectures/NN_topic.ipynb
    python lectures/build_notebooks.py --check     # exit 1 if a committed notebook differs from its source
    python lectures/build_notebooks.py --executed  # run `course figures`, then write lectures/executed/*.ipynb

The notebooks in ``lectures/`` carry no outputs (the ones students run). The copies in ``lectures/executed/`` are
the same notebooks with the outputs of a full run (text, tables, the figures' PNG bytes, the polls as text),
normalised so that a rerun gives the same bytes: no timings, no kernel ids, no stderr, execution counts 1, 2, ...

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
EXECUTED = HERE / "executed"

SETUP = '''\
# Setup: the same first cell in every lecture (seeds, device, paths, plotting style, polls).
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, Markdown, display

import course_lib
from course_lib import get_device, seed_everything
from course_lib.plotting import COLORS, figures_dir, savefig, use_style
from course_lib.polls import ask

SEED = seed_everything(0)
DEVICE = get_device()
LECTURE_DIR = Path.cwd()
FIGURES = figures_dir()  # savefig("fig_NN_name") writes FIGURES / "fig_NN_name.png"
use_style()


def show(path):
    """Display the PNG that savefig just wrote (the notebook shows the very bytes of lectures/figures/)."""
    plt.close("all")
    display(Image(filename=str(path)))'''


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


def normalise_executed(nb):
    """An executed notebook (papermill's output) with everything run-specific removed, in place; returns it.

    Kept: cell sources, ids, tags, and the outputs a reader needs (stdout, rich results: text, Markdown,
    PNG). Removed: papermill's injected-parameters cell, timings and kernel metadata, stderr streams (warnings
    name temporary files), widget state.
    Execution counts are renumbered 1, 2, ... over the code cells.
    """
    # papermill inserts a cell (with a random id) that sets the parameters passed to it: not part of the lecture
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in ("kernelspec", "language_info")}
    nb.metadata["language_info"] = {"name": "python"}
    count = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags")
        cell["metadata"] = {"tags": tags} if tags else {}
        if cell.cell_type != "code":
            continue
        count += 1
        cell["execution_count"] = count
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") != "stdout":
                continue
            if out.get("output_type") in ("display_data", "execute_result"):
                out["metadata"] = {}
                out["data"] = {k: v for k, v in out["data"].items()
                               if not k.startswith("application/vnd.jupyter.widget")}
                if out["output_type"] == "execute_result":
                    out["execution_count"] = count
            outputs.append(out)
        # consecutive stdout streams of one cell become one (how they are split depends on timing)
        merged = []
        for out in outputs:
            if merged and out.get("output_type") == "stream" and merged[-1].get("output_type") == "stream":
                merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(out["text"])
            else:
                merged.append(out)
        cell["outputs"] = merged
    return nb


def write_executed(executed_path, name: str, directory: Path = EXECUTED) -> Path:
    """Normalise the executed notebook at ``executed_path`` and write it as ``directory/<name>.ipynb``."""
    nb = normalise_executed(nbformat.read(str(executed_path), as_version=4))
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.ipynb"
    text = render(nb)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target


def run_executed(lectures: list[str]) -> int:
    """``course figures`` for ``lectures`` (all when empty): it rewrites the figures and lectures/executed/."""
    from types import SimpleNamespace

    sys.path.insert(0, str(HERE.parent))
    from autograder import figures as figcmd

    notebooks = figcmd.resolve_lectures(lectures)
    return figcmd.figures_command(SimpleNamespace(lectures=[p.stem for p in notebooks], parameters={}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that differ from their source")
    parser.add_argument("--executed", nargs="*", metavar="LECTURE",
                        help="run `course figures` (all lectures, or those named) and write lectures/executed/")
    args = parser.parse_args(argv)
    if args.executed is not None:
        return run_executed(args.executed)
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
