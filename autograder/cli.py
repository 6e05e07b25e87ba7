"""The ``course`` command: one entry point for instructors, students, CI and TAs.

Each subcommand lives in its own module and is imported only when it runs, so ``course --help`` is fast.
A subcommand's handler is ``handler(args) -> int`` (the exit code). Errors a person will read are one line.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

__all__ = ["main", "build_parser"]


def _lazy(target: str):
    module, func = target.split(":")

    def run(args):
        return getattr(importlib.import_module(module), func)(args)
    return run


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course", description="The generative-models course: grade, check, release, figures.")
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="the course folder (holding solutions/ and lectures/); default: found from the "
                             "current directory upwards")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="grade the sample submissions in examples/ and print the table")
    p.set_defaults(func=_lazy("autograder.demo:demo_command"))

    p = sub.add_parser("grade", help="grade notebook submissions")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="notebooks (or folders of notebooks)")
    p.add_argument("--assignment", required=True, metavar="HW", help="e.g. hw2_em, or the path of a suite file")
    p.add_argument("--out", default="grading_output", metavar="DIR", help="where results go (default: grading_output)")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="parallel grading processes (default 1)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a Dask scheduler, e.g. tls://host:8786 (with --tls-*) or tcp://host:8786")
    p.add_argument("--min-isolation", default=None, choices=("none", "uid", "namespaces"), metavar="LEVEL",
                   help="weakest sandbox hidden checks accept: none, uid or namespaces "
                        "(default: $COURSE_MIN_ISOLATION or namespaces)")
    p.add_argument("--allow-weak-isolation", action="store_true",
                   help="grade below --min-isolation anyway; every result records it")
    p.add_argument("--roster", default=None, metavar="CSV",
                   help="the students expected (a CSV with a student/id/login column): each one without a "
                        "submission gets a row 'no submission'")
    p.add_argument("--tls-ca-file", default=None, metavar="FILE", help="CA certificate of a tls:// scheduler")
    p.add_argument("--tls-cert", default=None, metavar="FILE", help="this client's TLS certificate")
    p.add_argument("--tls-key", default=None, metavar="FILE", help="this client's TLS key")
    p.set_defaults(func=_lazy("autograder.grading:grade_command"))

    p = sub.add_parser("check", help="run the public checks on your notebook, as the grader would")
    p.add_argument("notebook", metavar="NOTEBOOK")
    p.add_argument("--assignment", default=None, metavar="HW",
                   help="default: the course assignment the notebook names")
    p.add_argument("--classroom", default=None, metavar="JSON",
                   help="also write the points as GitHub Classroom's autograding reporter reads them")
    p.set_defaults(func=_lazy("autograder.grading:check_command"))

    p = sub.add_parser("release", help="generate the student notebook from the solution notebook")
    p.add_argument("assignment", metavar="HW")
    p.add_argument("--check", action="store_true", help="only report whether assignments/HW is in sync")
    p.set_defaults(func=_lazy("autograder.release:release_command"))

    p = sub.add_parser("gradebook", help="import course grade's results into nbgrader's gradebook (formgrader)")
    p.add_argument("assignment", metavar="HW")
    p.add_argument("results", metavar="RESULTS_DIR", help="the --out folder of `course grade`")
    p.add_argument("--db", default=None, metavar="URL",
                   help="the gradebook's database URL or SQLite file (default: COURSE_DIR/gradebook.db with "
                        "--course-dir, else sqlite:///gradebook.db)")
    p.add_argument("--course-dir", default=None, metavar="DIR",
                   help="the nbgrader course folder: graded notebooks are copied from submitted/ to autograded/ "
                        "so formgrader lists them as graded")
    p.add_argument("--course-id", default=None, metavar="ID", help="nbgrader's course id (default: nbgrader's)")
    p.set_defaults(func=_lazy("autograder.gradebook:gradebook_command"))

    p = sub.add_parser("gradescope", help="build the Gradescope autograder zip for an assignment")
    p.add_argument("assignment", metavar="HW")
    p.add_argument("--out", default=None, metavar="ZIP")
    p.set_defaults(func=_lazy("autograder.gradescope:gradescope_command"))

    p = sub.add_parser("figures", help="execute the lecture notebooks and write every figure")
    p.add_argument("lectures", nargs="*", metavar="LECTURE", help="e.g. 02 or 02_expectation_maximization (default: all)")
    p.set_defaults(func=_lazy("autograder.figures:figures_command"))

    p = sub.add_parser("lab", help="start JupyterLab as a student sees it (nbgrader's instructor tools off)",
                       epilog="Arguments after NOTEBOOK (or after --) go to JupyterLab, e.g. "
                              "`course lab hw.ipynb --ServerApp.ip=0.0.0.0`.")
    p.add_argument("target", nargs="?", metavar="NOTEBOOK|DIR", help="open this notebook, or serve this folder "
                                                                     "(default: the current folder)")
    p.add_argument("--instructor", action="store_true", help="keep all of nbgrader's tools (Formgrader, Create "
                                                             "Assignment, the Nbgrader menu)")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--port", type=int, default=None, metavar="PORT", help="the server's port (default: Jupyter's)")
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=_lazy("autograder.lab:lab_command"))
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.root:
        import os
        from pathlib import Path

        from course_lib.paths import is_course_folder
        if not is_course_folder(args.root):
            print(f"course: --root {args.root} is not a course folder (it must hold solutions/ and lectures/)",
                  file=sys.stderr)
            return 2
        os.environ["COURSE_ROOT"] = str(Path(args.root).resolve())   # seen by workers and subprocesses too
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"course: {exc}" if str(exc) else "course: interrupted", file=sys.stderr)
        return 128 + int(signum)


if __name__ == "__main__":
    sys.exit(main())
