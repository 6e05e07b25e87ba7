"""What the ``read_hidden`` notebook of the hostile corpus looks for: the grader's secrets within reach.

``make_corpus.py`` copies the source of :func:`_hidden_within_reach` into the notebook's graded cell. It
derives every place it probes at run time, never from one machine's layout: the folders of every path on a
visible command line and of every visible working directory (and their parents, where a checkout of the
course, its grading suites or the grader's state folder would be), the temporary folders, the user's home,
and Gradescope's documented source folder. It reports what it could actually open and read: a hidden suite,
the reference implementation, a salt file, or a salt in the environment of a process it can see.
"""
from __future__ import annotations


def _hidden_within_reach(seconds=1.0):
    """Paths (and environment variable names) of grader secrets this process can read, at most 20."""
    import glob
    import os
    import tempfile
    import time

    deadline = time.monotonic() + seconds
    patterns = ("autograder/suites/*.py", "tests/fixtures/*/suite.py", "course_lib/mixture.py",
                "course_lib/_gaussian.py", "source/autograder/suites/*.py", "*salt*", "course-grader/salt",
                ".local/state/course-grader/salt", "*/course-grader/salt", "*/*salt*")
    roots = [tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~"), "/autograder"]
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = [a.decode("utf-8", "replace") for a in fh.read(1 << 16).split(b"\0") if a]
        except OSError:
            args = []
        try:
            args.append(os.readlink(f"/proc/{pid}/cwd") + "/x")
        except OSError:
            pass
        for a in args:
            d = os.path.dirname(a) if a.startswith("/") else None
            for _ in range(5):
                if not d or d == "/":
                    break
                roots.append(d)
                d = os.path.dirname(d)
    found, seen = [], set()
    for root in roots:
        if root in seen or time.monotonic() > deadline:
            continue
        seen.add(root)
        for pattern in patterns:
            for path in glob.glob(os.path.join(root, pattern)):
                try:
                    with open(path, "rb") as fh:
                        fh.read(1)
                except OSError:
                    continue
                if path not in found:
                    found.append(path)
    found += [f"${k}" for k in os.environ if "SALT" in k or "SECRET" in k]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if b"SALT" in fh.read(1 << 16):
                    found.append(f"/proc/{pid}/environ")
        except OSError:
            continue
    return found[:20]
