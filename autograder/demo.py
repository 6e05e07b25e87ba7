"""`course demo`: grade the sample submissions in examples/ and print the table of scores.

The demo grades the first entry of ``DEMOS`` whose suite exists and whose folder holds notebooks, with the
same code path as ``course grade`` (sandbox, judge, report), into a temporary folder it prints at the end.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

__all__ = ["DEMOS", "demo_command", "pick_demo"]

#: (assignment, folder of sample submissions relative to the course folder), in order of preference.
DEMOS = (("hw2_em", Path("examples") / "hw2_em"),)


def _samples(folder: Path) -> list:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.ipynb") if p.is_file())


def pick_demo(demos=DEMOS) -> tuple[str, list]:
    """The first (assignment, sample notebooks) of ``demos`` that can be graded."""
    from course_lib.paths import course_root

    from autograder.suites import load_suite
    root = course_root()
    for assignment, folder in demos:
        samples = _samples(root / folder)
        if not samples:
            continue
        try:
            load_suite(assignment)
        except ValueError:
            continue
        return assignment, samples
    raise ValueError("no sample submissions to grade: add examples/<HW>/*.ipynb for an assignment with a suite")


def demo_command(args=None) -> int:
    from autograder import report
    from autograder.grading import grade_batch
    try:
        assignment, samples = pick_demo()
    except ValueError as exc:
        print(f"course: {exc}", file=sys.stderr)
        return 2
    out = Path(getattr(args, "out", None) or tempfile.mkdtemp(prefix="course-demo-"))
    workers = 2 if (os.cpu_count() or 1) >= 2 and len(samples) > 1 else 1
    print(f"grading {len(samples)} sample submission(s) of {assignment} "
          f"({', '.join(p.stem for p in samples)}) with {workers} worker(s) ...", file=sys.stderr)
    # the demo grades the course's own samples: a host without namespaces may run it, and its results say so
    results = grade_batch(samples, assignment, out, workers=workers, allow_weak_isolation=True)
    print(report.format_table(results))
    for res in results:
        ed = res.get("extra_data", {})
        for m in ed.get("mistakes", []):
            from autograder.feedback import describe_mistake
            print(f"  {ed.get('submission')}: known mistake {m}: {describe_mistake(m)}")
    print(f"\nfeedback for each submission: {out}/<submission>/feedback.md (and .html); scores: {out}/grades.csv")
    return 0
