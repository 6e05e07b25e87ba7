"""Write the lecture notebooks from their text source in ``lectures/nb_src/`` (jupytext's percent format).

    python lectures/build_notebooks.py             # (re)write every lectures/NN_topic.ipynb
    python lectures/build_notebooks.py --check     # exit 1 if a committed notebook differs from its source
    python lectures/build_notebooks.py --executed  # run `course figures`, then write lectures/executed/*.ipynb

``lectures/nb_src/NN_topic.py`` is the source of ``lectures/NN_topic.ipynb``: ``# %% [markdown]`` cells of comment
lines, ``# %%`` code cells, the papermill cell marked ``# %% tags=["parameters"]``. jupytext reads it; this script
only adds what is ours: the shared setup cell (``nb_src/setup_cell.py``, the same second cell in every lecture),
stable cell ids and a fixed notebook metadata, so that rebuilding gives the same bytes.

The notebooks in ``lectures/`` carry no outputs (the ones students run). The copies in ``lectures/executed/`` are
the same notebooks with the outputs of a full run (text, tables, the figures' PNG bytes, the polls as text),
normalised so that a rerun gives the same bytes: no timings, no kernel ids, no stderr, execution counts 1, 2, ...

Every notebook has the same shape: a title, the shared setup cell (seeds, device, paths, style), a papermill
``parameters`` cell (``FAST = False``; the tests run with ``FAST = True``), then the lecture.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat
from nbformat.v4 import new_code_cell

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "nb_src"
SETUP = SOURCES / "setup_cell.py"
EXECUTED = HERE / "executed"
METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def lecture_sources() -> list[Path]:
    """The lecture sources ``nb_src/NN_topic.py``, in order."""
    return sorted(SOURCES.glob("[0-9][0-9]_*.py"))


def build(source: Path):
    """The notebook of the lecture source ``source`` (``nb_src/NN_topic.py``) as ``(name, NotebookNode)``."""
    source = Path(source)
    nb = jupytext.read(source, fmt="py:percent")
    cells = nb.cells
    if len(cells) < 2 or cells[0].cell_type != "markdown" or "parameters" not in cells[1].metadata.get("tags", []):
        raise ValueError(f"{source.name}: a lecture source must open with its title (a markdown cell) and then "
                         f'the papermill cell (# %% tags=["parameters"])')
    cells.insert(1, new_code_cell(SETUP.read_text(encoding="utf-8").strip("\n")))
    for i, cell in enumerate(cells):
        cell["id"] = f"l{source.stem[:2]}-{i:03d}"
        tags = cell.metadata.get("tags")             # jupytext's layout hints (blank lines) stay in the text
        cell.metadata = {"tags": tags} if tags else {}
    nb.metadata = {k: dict(v) for k, v in METADATA.items()}
    return source.stem, nb


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
    sources = lecture_sources()
    stale = []
    for src in sources:
        try:
            name, nb = build(src)
        except ValueError as exc:
            print(f"build_notebooks: {exc}", file=sys.stderr)
            return 2
        nbformat.validate(nb)
        target = HERE / f"{name}.ipynb"
        text = render(nb)
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(target.name)
        elif not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(HERE.parent)}")
    orphans = sorted(p.name for p in HERE.glob("[0-9][0-9]_*.ipynb") if SOURCES / f"{p.stem}.py" not in sources)
    if orphans:
        print(f"build_notebooks: {', '.join(orphans)} in lectures/ have no source lectures/nb_src/<name>.py: "
              "add it or delete the notebook", file=sys.stderr)
        return 1
    if stale:
        print(f"out of date with lectures/nb_src: {', '.join(stale)}; run python lectures/build_notebooks.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
