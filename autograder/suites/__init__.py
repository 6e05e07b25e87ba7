"""One grading suite per assignment: ``load_suite("hw2_em")`` returns ``autograder.suites.hw2_em.SUITE``.

A name resolves, in order, to
1. a path to a ``.py`` file defining ``SUITE`` (handy for a course's own assignments);
2. the module ``autograder.suites.<name>``;
3. ``tests/fixtures/<name>/suite.py`` in the repository (the fixture assignment used by the tests and the
   demo while the real assignments are being written).
Suites are validated (points sum to 100) when loaded; a loaded suite is cached per process.

A suite file (1.) is code the grader runs with its own rights: only the instructor's command line
(``course grade --assignment path/to/suite.py``) may name one. A name that comes from a submission (its
metadata, its file name) goes through ``registered_suite``, which accepts the names ``available_suites()``
lists and nothing else.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

__all__ = ["load_suite", "available_suites", "registered_suite", "suite_source", "suite_reference", "REPO_ROOT",
           "ASSIGNMENTS"]

#: The course's assignments, in order.
ASSIGNMENTS = ("hw1_mle", "hw2_em", "hw3_linear", "hw4_vae")

REPO_ROOT = Path(__file__).resolve().parents[2]
_FIXTURES = REPO_ROOT / "tests" / "fixtures"
_CACHE: dict = {}


def suite_source(name: str) -> Path:
    """The ``.py`` file defining the suite ``name``; ValueError (one line) if there is none."""
    name = str(name)
    if name.endswith(".py"):
        p = Path(name).expanduser().resolve()
        if not p.is_file():
            raise ValueError(f"suite file {name} does not exist")
        return p
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"unknown assignment {name!r}: use one of {', '.join(available_suites())}")
    own = Path(__file__).resolve().parent / f"{name}.py"
    if own.is_file():
        return own
    fixture = _FIXTURES / name / "suite.py"
    if fixture.is_file():
        return fixture
    raise ValueError(f"unknown assignment {name!r}: use one of {', '.join(available_suites()) or '(none yet)'}")


def available_suites(fixtures: bool = False) -> list:
    """The course's assignments with a suite, in order (what users are offered); with ``fixtures``, also the
    test fixtures of a checkout (which ``load_suite`` accepts by name but no user-facing list shows)."""
    own = sorted(p.stem for p in Path(__file__).resolve().parent.glob("*.py") if not p.stem.startswith("_"))
    ordered = [a for a in ASSIGNMENTS if a in own] + [a for a in own if a not in ASSIGNMENTS]
    if fixtures and _FIXTURES.is_dir():
        ordered += sorted(p.parent.name for p in _FIXTURES.glob("*/suite.py") if p.parent.name not in ordered)
    return ordered


def registered_suite(name, what: str = "the notebook names") -> str:
    """``name`` if it is one of the course's registered suites (``available_suites()``), else ValueError.

    For names read from a submission: a path, a file name or anything outside the registry is refused
    (one line), so a notebook can never make the grader import a file of its choosing.
    """
    known = available_suites()
    if isinstance(name, str) and name in available_suites(fixtures=True):
        return name
    shown = repr(name if isinstance(name, str) else str(name))
    shown = shown if len(shown) <= 80 else shown[:79] + "…"
    raise ValueError(f"{what} assignment {shown}, which is not one of this course's ({', '.join(known)}): "
                     f"pass --assignment HW")


def load_suite(name):
    """Return the validated ``Suite`` called ``name`` (or defined in the file ``name``).

    Raises
    ------
    ValueError
        One line: the assignment is unknown, or its suite is inconsistent (e.g. points do not sum to 100).
    """
    from autograder.suite import Suite

    if isinstance(name, Suite):
        return name
    path = suite_source(name)
    key = str(path)
    if key in _CACHE:
        return _CACHE[key]
    if path.parent == Path(__file__).resolve().parent:
        module = importlib.import_module(f"autograder.suites.{path.stem}")
    else:
        mod_name = f"_course_suite_{abs(hash(key)) & 0xFFFFFFFF:x}_{path.parent.name}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    suite = getattr(module, "SUITE", None)
    if not isinstance(suite, Suite):
        raise ValueError(f"{path} must define SUITE = Suite(...)")
    suite.validate()
    suite.source = str(path)
    _CACHE[key] = suite
    return suite


def suite_reference(suite) -> str:
    """What to pass to ``load_suite`` in another process: the name for the package's own suites (found on
    any machine with the package), else the path of the file that defines it."""
    src = getattr(suite, "source", None)
    if src and Path(src).resolve().parent != Path(__file__).resolve().parent:
        return str(src)
    return suite.name
