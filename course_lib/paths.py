"""Where the course folder is: the folder holding ``solutions/`` and ``lectures/`` (and ``assignments/``,
``examples/``, ``ci/``), wherever the package itself is installed.

``course_root()`` is ``$COURSE_ROOT`` when set (``course --root DIR`` sets it), else the first folder holding
both ``solutions/`` and ``lectures/`` from the current directory upwards, else the checkout the package runs
from (an editable install). A plain ``pip install`` of the package therefore works on any copy of the course.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["course_root", "is_course_folder"]


def is_course_folder(path) -> bool:
    """True when ``path`` holds both ``solutions/`` and ``lectures/``."""
    path = Path(path)
    return (path / "solutions").is_dir() and (path / "lectures").is_dir()


def course_root(start=None) -> Path:
    """The course folder (see the module's docstring); ValueError (one line) when there is none."""
    env = os.environ.get("COURSE_ROOT")
    if env:
        root = Path(env).expanduser().resolve()
        if not is_course_folder(root):
            raise ValueError(f"COURSE_ROOT={env} is not a course folder (it must hold solutions/ and lectures/)")
        return root
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if is_course_folder(folder):
            return folder
    source = Path(__file__).resolve().parents[1]
    if is_course_folder(source):
        return source
    raise ValueError("no course folder here: run the command inside the course folder (the one holding "
                     "solutions/ and lectures/) or pass --root DIR")
