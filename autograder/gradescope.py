"""Gradescope: `course gradescope HW` builds the autograder zip; `run_autograder` grades inside its container.

The zip holds Gradescope's two entry points (``setup.sh``, ``run_autograder``, from ``ci/gradescope/``), the
course package's source (``pyproject.toml``, ``course_lib/``, ``autograder/`` with every suite), the suite
file when it lives outside the package, ``grader.json`` (which assignment) and ``state/salt``: a random salt
made when the zip is built, so every container (and every regrade) draws the same cases for the same code.

In the container, ``run_autograder`` calls ``python -m autograder.gradescope run``: it grades
``/autograder/submission/*.ipynb`` with the same pipeline as ``course grade`` and writes
``/autograder/results/results.json`` (atomically), always — a missing notebook or a grader failure is a
result with score 0 and the reason.
"""
from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import zipfile
from pathlib import Path

__all__ = ["build_zip", "gradescope_command", "run", "main"]

PACKAGES = Path(__file__).resolve().parents[1]   # where course_lib and autograder are (a checkout or site-packages)
_SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}


def _add(zf: zipfile.ZipFile, arcname: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(arcname, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | mode) << 16
    zf.writestr(info, data)


def _add_tree(zf: zipfile.ZipFile, folder: Path, prefix: str) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not (_SKIP_PARTS & set(p.parts)) and p.suffix not in (".pyc", ".tmp"):
            _add(zf, f"{prefix}/{p.relative_to(folder).as_posix()}", p.read_bytes())


def build_zip(assignment: str, out: Path | None = None) -> Path:
    """Build the Gradescope autograder zip for ``assignment``; returns its path."""
    from autograder.suites import load_suite
    suite = load_suite(assignment)
    from course_lib.paths import course_root
    root = course_root()
    out = Path(out) if out else root / "build" / f"gradescope_{suite.name}.zip"  # build/ is ignored by git
    templates = root / "ci" / "gradescope"
    for name in ("setup.sh", "run_autograder"):
        if not (templates / name).is_file():
            raise ValueError(f"{templates / name} is missing: the Gradescope templates ship in ci/gradescope/")
    source = Path(getattr(suite, "source", "")).resolve()
    package_suites = (PACKAGES / "autograder" / "suites").resolve()
    config = {"assignment": suite.name, "suite": None, "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        _add(zf, "setup.sh", (templates / "setup.sh").read_bytes(), 0o755)
        _add(zf, "run_autograder", (templates / "run_autograder").read_bytes(), 0o755)
        for name in ("pyproject.toml", "README.md"):
            if (root / name).is_file():
                _add(zf, name, (root / name).read_bytes())
        _add_tree(zf, PACKAGES / "course_lib", "course_lib")
        _add_tree(zf, PACKAGES / "autograder", "autograder")
        if source.is_file() and source.parent != package_suites:
            config["suite"] = f"suite/{suite.name}.py"
            _add(zf, config["suite"], source.read_bytes())
        _add(zf, "grader.json", (json.dumps(config, indent=1) + "\n").encode())
        _add(zf, "state/salt", (secrets.token_hex(32) + "\n").encode(), 0o600)
    tmp.replace(out)
    return out


def gradescope_command(args) -> int:
    """`course gradescope HW [--out ZIP]`."""
    try:
        path = build_zip(args.assignment, getattr(args, "out", None))
    except ValueError as exc:
        print(f"course: {exc}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(path) as zf:
        n = len(zf.namelist())
    print(f"wrote {path} ({n} files): upload it as the assignment's autograder on Gradescope "
          f"(Ubuntu base image); it runs setup.sh once, then run_autograder for each submission")
    return 0


# ---------------------------------------------------------------------- inside the container
def _pick_notebook(submission_dir: Path, assignment: str) -> tuple[Path | None, str]:
    found = sorted(p for p in submission_dir.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not found:
        return None, f"no .ipynb notebook in the submission: upload your {assignment}.ipynb"
    named = [p for p in found if p.stem.startswith(assignment)]
    chosen = (named or found)[0]
    note = "" if len(found) == 1 else f"graded {chosen.name} (of {len(found)} notebooks submitted)"
    return chosen, note


def _suite_ref(cfg: dict, config: Path) -> str:
    """What ``load_suite`` takes for the assignment of ``cfg``, read from the ``grader.json`` at ``config``."""
    return str((Path(config).parent / cfg["suite"]).resolve()) if cfg.get("suite") else cfg["assignment"]


def prepare(config: Path) -> Path:
    """Build the sandbox's Python for the configured assignment (the one its runs use, without the packages
    the suite forbids: :meth:`autograder.suite.Suite.runtime_without`); returns its folder."""
    from autograder.sandbox import build_runtime
    from autograder.suites import load_suite

    return build_runtime(load_suite(_suite_ref(json.loads(Path(config).read_text()), config)).runtime_without())


def run(config: Path, submission_dir: Path, results: Path) -> dict:
    """Grade the submission in ``submission_dir`` and write ``results``; returns the results dict."""
    from autograder import grading, report
    from autograder.grading import _seeds_for_bytes, grade_one, load_salt, state_dir

    t0 = time.perf_counter()
    cfg = json.loads(Path(config).read_text())
    assignment, suite_ref = cfg["assignment"], _suite_ref(cfg, config)
    grading.make_private(state_dir(), "state folder")
    nb, note = _pick_notebook(Path(submission_dir), assignment)
    try:   # Gradescope runs the hidden checks: they need the configured isolation level
        grading.require_isolation(grading.host_isolation(), grading.resolve_min_isolation(cfg.get("min_isolation")),
                                  bool(cfg.get("allow_weak_isolation")))
    except ValueError as exc:      # still exactly one result, saying what the instructor must change
        nb, note = None, f"the autograder could not grade safely: {exc}"
    if nb is None:
        res = report.error_results(assignment, "submission", note, {}, time.perf_counter() - t0)
    else:
        try:
            sub = grading.read_submission(nb, grading.notebook_limit())
            if sub.data is None:
                res = report.error_results(assignment, nb.stem, sub.problem, {}, time.perf_counter() - t0)
            else:
                res = grade_one(sub.data, nb.stem, suite_ref, _seeds_for_bytes(sub.data, load_salt()))["results"]
        except Exception as exc:       # grade_one never raises; the salt or the file might
            res = report.error_results(assignment, nb.stem, f"grader error: {type(exc).__name__}: {exc}", {},
                                       time.perf_counter() - t0)
        if note:
            res["output"] = f"{note}\n{res['output']}"
    report.write_atomic(results, report.results_json(res))
    return res


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="grade a Gradescope submission folder")
    r.add_argument("--config", default="/autograder/source/grader.json")
    r.add_argument("--submission-dir", default="/autograder/submission")
    r.add_argument("--results", default="/autograder/results/results.json")
    b = sub.add_parser("build", help="build the autograder zip (same as `course gradescope`)")
    b.add_argument("assignment")
    b.add_argument("--out", default=None)
    p = sub.add_parser("prepare", help="build the sandbox's Python for the configured assignment (setup.sh)")
    p.add_argument("--config", default="/autograder/source/grader.json")
    args = parser.parse_args(argv)
    if args.cmd == "build":
        return gradescope_command(args)
    if args.cmd == "prepare":
        print(f"sandbox runtime: {prepare(Path(args.config))}")
        return 0
    res = run(Path(args.config), Path(args.submission_dir), Path(args.results))
    from autograder import report
    print(f"score {res['score']:g}: {report._printable(res['output'].splitlines()[0]) if res['output'] else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
