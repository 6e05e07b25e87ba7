"""Grade notebooks: the whole pipeline for one submission, and batches of them (`course grade`, `course check`).

One submission (``grade_one``, pure: returns its result, writes nothing outside private temporary folders)
 1 static check   ``autograder.static_check``: graded functions found by name, forbidden imports flagged
 2 sandbox        ``autograder.execute.execute_submission``: papermill runs a copy under ``run_sandboxed``
 3 harvest        the sandbox's data-only outputs (npz, ``allow_pickle=False``) per function and case
 4 judge          ``autograder.judge``: pytest in a separate process that never runs student code
 5 report         ``autograder.report``: results.json (Gradescope), feedback.md/html

Seeds: case inputs come from ``numpy.random.default_rng(seed)`` with seed = HMAC-SHA256(secret salt, a label,
the visibility and the notebook's exact bytes), so everything of the submission that reaches the sandbox
decides its cases: the same file always gets the same cases (and score), any change to it (a markdown cell,
an output, metadata) draws new ones, and nobody without the salt can predict them. Seeds are written nowhere
a student sees (results.json, feedback, grades.csv, the key of a Dask task); ``extra_data.seed_commitment``
keeps a one-way fingerprint of them, so an instructor can tell whether two results were graded on the same
cases. The salt comes from ``$COURSE_GRADER_SALT`` or the file ``salt`` (mode 0600, created on first use) in
the grader's state folder (``$COURSE_GRADER_STATE``, default ``$XDG_STATE_HOME/course-grader`` or
``~/.local/state/course-grader``).

Inputs: a notebook file is opened without following links and read with a bounded read; one larger than
``MAX_NOTEBOOK_BYTES`` (``$COURSE_MAX_NOTEBOOK_MB``, or a suite's ``max_notebook_mb``) is never parsed and
gets a one-line result. Suites named by a notebook (its metadata, its file name) are looked up in the
course's registry only; a suite file is accepted from the instructor's command line alone.

Isolation: every result records the level its sandbox had (``extra_data.isolation``, one of
``autograder.sandbox.ISOLATION_LEVELS``). Hidden checks need at least ``min_isolation`` (default
``"namespaces"``, ``$COURSE_MIN_ISOLATION``); below it a batch stops before grading anything, unless the
instructor allows weak isolation, and then every result says so.

Batches (``grade_batch``): steps 1-3 (``run_submission``, the expensive part) run in this process
(``workers=1``), in a pool of processes (``workers=N``) or on a Dask cluster (``scheduler="tcp://..."`` or
``"tls://..."``), always with the same function; they send back data-only outputs. Steps 4-5
(``judge_submission``) run in the coordinating process, with one judge for the whole batch (its
torch/course_lib imports are paid once), and only the coordinating process writes files, into a results
folder it makes private (0700). A submission whose ``DIR/<name>/results.json`` is complete (same notebook
bytes, same assignment) is skipped, and ``grades.csv`` is rebuilt from the results.json files after each
result, so a batch killed at any point resumes without duplicates. Pool workers die with the coordinating
process (the kernel's parent-death signal) and take what they started with them; SIGTERM and SIGINT stop
the pool, after the result being written, if any, is whole.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import os
import platform
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import NamedTuple

import numpy as np

from autograder import report
from autograder.students import collect_submissions, read_roster, safe_name
from autograder.sandbox import set_parent_death_signal

# jsonschema (imported by nbformat) loads rfc3987_syntax when it is installed, and that module compiles a
# grammar for seconds at import time; nbformat never validates IRIs, so the grader goes without it.
sys.modules.setdefault("rfc3987_syntax", None)

__all__ = ["grade_one", "grade_submission", "grade_batch", "grade_command", "check_command", "load_salt",
           "submission_seeds", "seed_commitment", "collect_submissions", "state_dir", "read_submission",
           "parse_notebook", "notebook_limit", "make_private", "host_isolation", "resolve_min_isolation", "require_isolation",
           "dask_security", "GradingInterrupted", "IsolationError", "MAX_NOTEBOOK_BYTES", "DEFAULT_MIN_ISOLATION"]

#: Largest notebook the grader reads, in bytes; ``$COURSE_MAX_NOTEBOOK_MB`` or a suite's ``max_notebook_mb``
#: overrides it (a notebook with its outputs cleared is well under a megabyte).
MAX_NOTEBOOK_BYTES = 20_000_000

#: The isolation hidden checks need unless ``--min-isolation`` or ``$COURSE_MIN_ISOLATION`` says otherwise.
DEFAULT_MIN_ISOLATION = "namespaces"

_SEED_LABEL = b"course-grader/case-seed/v2"
_COMMITMENT_LABEL = b"course-grader/seed-commitment/v2"


class IsolationError(ValueError):
    """The sandbox's isolation is below the minimum hidden checks need (one line: what to install)."""


class GradingInterrupted(KeyboardInterrupt):
    """``course grade`` got SIGTERM or SIGINT: the pool is stopped, finished results are on disk."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    def __str__(self) -> str:
        try:
            name = signal.Signals(self.signum).name
        except ValueError:
            name = f"signal {self.signum}"
        return f"stopped by {name}: rerun the same command to grade the rest"


# ---------------------------------------------------------------------- private folders
def _never_private() -> list:
    """(path, what it is) whose permissions the grader never changes (nor those of their ancestors)."""
    from autograder.suites import REPO_ROOT
    out = [(lambda p=p: Path(p), "the Python installation") for p in
           {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}]
    out += [(lambda: REPO_ROOT, "the course's checkout"), (Path.home, "the home folder"),
            (lambda: Path(tempfile.gettempdir()), "the shared temporary folder"), (Path.cwd, "the current folder")]
    resolved = []
    for where, what in out:
        try:
            resolved.append((where().resolve(), what))
        except (OSError, RuntimeError):         # no current folder, no home: nothing to keep there
            continue
    return resolved


def make_private(path, what: str = "folder") -> Path:
    """Create ``path`` if needed and make it private to the grader's user (mode 0700); return it.

    Fails closed: raises ValueError (one line) when the folder cannot be created or made private, and refuses
    the Python installation, the course's checkout, the home, temporary and current folders and their
    ancestors (their permissions are never changed).
    """
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        real = path.resolve(strict=True)
    except OSError as exc:
        raise ValueError(f"{what} {path}: cannot create it ({exc.strerror or exc}): pick a folder you can write") \
            from None
    for keep, kind in _never_private():
        if real == keep or keep.is_relative_to(real):
            raise ValueError(f"{what} {path} is {'' if real == keep else 'above '}{kind}, which the grader "
                             f"keeps as it is: pick a folder of its own")
    st = os.stat(real)
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{what} {path} is not a folder: pick a folder of its own")
    if st.st_mode & 0o077:
        try:
            os.chmod(real, 0o700)
            st = os.stat(real)
        except OSError as exc:
            raise ValueError(f"{what} {path} cannot be made private ({exc.strerror or exc}): "
                             f"pick a folder you own") from None
        if st.st_mode & 0o077:
            raise ValueError(f"{what} {path} is still open to other users (mode {stat.S_IMODE(st.st_mode):o}) "
                             f"after chmod 700: pick a folder on a file system that keeps permissions")
    return path


# ---------------------------------------------------------------------- salt and seeds
def state_dir() -> Path:
    """The grader's private state folder (mode 0700; ValueError when it cannot be made private)."""
    env = os.environ.get("COURSE_GRADER_STATE")
    if env:
        d = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        d = Path(base) / "course-grader"
    return make_private(d, "the grader's state folder")


def load_salt() -> bytes:
    """The secret salt: ``$COURSE_GRADER_SALT``, or ``<state dir>/salt`` (created with mode 0600)."""
    env = os.environ.get("COURSE_GRADER_SALT")
    if env:
        return env.encode("utf-8")
    path = state_dir() / "salt"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"the grader's salt file {path} is empty: delete it to create a new one")
    return value.encode("utf-8")


def submission_seeds(nb_bytes: bytes, salt: bytes) -> dict:
    """``{"visible": hex, "hidden": hex}``: HMAC-SHA256(salt, label NUL visibility NUL notebook bytes).

    The exact bytes of the submitted file, so any change to what reaches the sandbox (code, markdown,
    outputs, metadata) draws new cases, and the same file always draws the same ones.
    """
    nb_bytes = bytes(nb_bytes)
    return {vis: hmac.new(salt, _SEED_LABEL + b"\0" + vis.encode() + b"\0" + nb_bytes, hashlib.sha256).hexdigest()
            for vis in ("visible", "hidden")}


#: Former name, still used by the Gradescope entry point.
_seeds_for_bytes = submission_seeds


def seed_commitment(seeds: dict) -> dict:
    """A one-way fingerprint of each seed (HMAC keyed by the seed under its own label), safe to show.

    Equal commitments mean equal cases; the seed cannot be recovered from it (it has 256 bits).
    """
    return {vis: hmac.new(str(s).encode(), _COMMITMENT_LABEL, hashlib.sha256).hexdigest()[:32]
            for vis, s in seeds.items()}


# ---------------------------------------------------------------------- reading submissions
class SubmissionFile(NamedTuple):
    """A notebook file read for grading: ``data`` is None when ``problem`` (one line) says why."""

    data: bytes | None
    size: int
    sha256: str
    problem: str | None


def notebook_limit(suite=None) -> int:
    """Largest notebook accepted, in bytes: ``$COURSE_MAX_NOTEBOOK_MB``, else ``suite.max_notebook_mb``, else
    ``MAX_NOTEBOOK_BYTES``. Raises ValueError (one line) for a setting that is not a positive number."""
    for source, value in (("COURSE_MAX_NOTEBOOK_MB", os.environ.get("COURSE_MAX_NOTEBOOK_MB")),
                          ("the suite's max_notebook_mb", getattr(suite, "max_notebook_mb", None))):
        if value is None or value == "":
            continue
        try:
            mb = float(value)
        except (TypeError, ValueError):
            mb = -1.0
        if not mb > 0 or mb != mb or mb == float("inf"):
            raise ValueError(f"{source}={value!r}: give the largest notebook to accept in MB, e.g. 20")
        return int(mb * 1_000_000)
    return MAX_NOTEBOOK_BYTES


def _megabytes(n: int, other: int | None = None) -> str:
    """``200 MB``, ``1.5 MB``, ``12 kB``; more digits when ``other`` would otherwise read the same."""
    unit, scale = ("MB", 1e6) if n >= 100_000 else ("kB", 1e3)
    digits = 0 if n / scale >= 10 else 1
    while True:
        text = f"{n / scale:.{digits}f}"
        text = (text.rstrip("0").rstrip(".") if "." in text else text) + f" {unit}"
        if other is None or digits >= 6 or text != _megabytes(other):
            return text
        digits += 1


def size_problem(size: int, limit: int) -> str:
    """The one-line result of a notebook over ``limit`` bytes."""
    return (f"the notebook is {_megabytes(size, limit)}; the grader accepts at most {_megabytes(limit)}: "
            f"clear its outputs")


_RESAVE = "submit the .ipynb file you worked in (saved from JupyterLab)"
#: The most characters of code (all code cells together) a notebook may hold: reading it (IPython's
#: translation of magics, Python's parser) takes time in proportion, before any sandbox runs. A
#: course's notebooks hold tens of thousands.
MAX_CODE_CHARS = 1_000_000
#: The most lines of IPython syntax (``!cmd``, ``%magic``, ``obj?``, autocalls) a notebook may hold: each
#: becomes a call some forty characters long, so a million characters of ``!a`` lines would be read as
#: fourteen million characters of Python. A course's notebooks hold a handful.
MAX_ESCAPE_LINES = 5_000
#: The most work IPython's translation of a notebook may take, in characters re-read: it reads a whole cell again
#: for each line of IPython syntax in it (the static check translates a cell line by line past 2 million, but
#: fifty cells just under that took minutes). A course's notebooks need some ten thousand.
MAX_ESCAPE_WORK = 4_000_000
#: The most cells a notebook may have: each costs the grader (and papermill) some kilobytes and time, even
#: empty, and empty cells count nothing towards the limits above. A course's notebooks have about a hundred.
MAX_CELLS = 2_000


def _code_source(cell) -> str:
    """A code cell's source (a string or a list of strings, as nbformat allows); "" for any other cell."""
    if not isinstance(cell, dict) or cell.get("cell_type") != "code":
        return ""
    source = cell.get("source", "")
    lines = [source] if isinstance(source, str) else source if isinstance(source, list) else []
    return "".join(line for line in lines if isinstance(line, str))


def parse_notebook(data: bytes) -> tuple[dict | None, str | None]:
    """``(notebook, None)`` when ``data`` is a Jupyter notebook's JSON (an object with a list of cells),
    else ``(None, problem)``: the one line that `course check` and `course grade` both give for it."""
    if not data.strip():
        return None, f"the file is empty: {_RESAVE}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"the file is not a Jupyter notebook (not UTF-8 text): {_RESAVE}"
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, (f"the file is not a Jupyter notebook (invalid JSON at line {exc.lineno}, column "
                      f"{exc.colno}: {exc.msg}): {_RESAVE}")
    except (ValueError, RecursionError):
        return None, f"the file is not a Jupyter notebook (JSON nested too deeply to read): {_RESAVE}"
    if not isinstance(nb, dict):
        return None, f"the file is JSON but not a Jupyter notebook (it has no list of cells): {_RESAVE}"
    version = nb.get("nbformat")
    # Format 4 only: Jupyter converts older formats (and a file without "nbformat" counts as format 1) when it
    # reads them, and their code sits elsewhere ("worksheets", "input", "code"), unseen by the size limit.
    if version != 4 and (version is not None or isinstance(nb.get("cells"), list)):
        shown = f"format {version}" if type(version) is int and 0 <= version < 100 else "no known format"
        return None, f"the notebook is in {shown} (nbformat), and the grader reads format 4 only: {_RESAVE}"
    if not isinstance(nb.get("cells"), list):
        return None, f"the file is JSON but not a Jupyter notebook (it has no list of cells): {_RESAVE}"
    if len(nb["cells"]) > MAX_CELLS:
        return None, (f"the notebook has {len(nb['cells'])} cells, more than the {MAX_CELLS} the grader reads: "
                      f"merge cells and delete empty ones")
    sources = [_code_source(c) for c in nb["cells"]]
    code = sum(len(src) for src in sources)
    if code > MAX_CODE_CHARS:
        return None, (f"the notebook's code cells hold {code / 1e6:.1f} million characters, more than the "
                      f"{MAX_CODE_CHARS / 1e6:g} million the grader reads: keep data out of the code (load it "
                      f"from a file) and remove generated code")
    from autograder.static_check import escape_lines, translation_work
    per_cell = [escape_lines(src) for src in sources]
    escapes = sum(per_cell)
    if escapes > MAX_ESCAPE_LINES:
        return None, (f"the notebook's code cells hold {escapes} lines of IPython syntax (starting with !, %, ?, "
                      f"',', ';' or '/', or ending with ?), more than the {MAX_ESCAPE_LINES} the grader reads: "
                      f"write such commands as Python")
    if sum(translation_work(src, n) for n, src in zip(per_cell, sources)) > MAX_ESCAPE_WORK:
        return None, ("the notebook's lines of IPython syntax (starting with !, %, ?, ',', ';' or '/', or ending "
                      "with ?) sit in long cells, and reading them would take the grader minutes: move them into "
                      "short cells of their own, or write them as Python")
    return nb, None


def read_submission(path, limit: int = MAX_NOTEBOOK_BYTES) -> SubmissionFile:
    """Read a submitted notebook, never more than ``limit`` bytes into memory and never through a link.

    ``sha256`` covers the whole file (hashed in chunks) so resuming recognises it whatever its size.
    ``problem`` is set for a file that cannot be a notebook (not ``.ipynb``, empty, not a notebook's JSON),
    with the same line for `course check` and `course grade`.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    empty = hashlib.sha256(b"").hexdigest()
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return SubmissionFile(None, 0, empty, "the submission is a link, not a file: submit the notebook itself")
        return SubmissionFile(None, 0, empty, f"the notebook could not be opened ({exc.strerror or exc})")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return SubmissionFile(None, 0, empty, "the submission is not a regular file: submit the notebook itself")
        h, kept, size = hashlib.sha256(), bytearray(), 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
            if size <= limit:
                kept += chunk
            else:
                kept = bytearray()
    finally:
        os.close(fd)
    if size > limit:
        return SubmissionFile(None, size, h.hexdigest(), size_problem(size, limit))
    suffix = Path(path).suffix
    if suffix != ".ipynb":
        kind = f"a {suffix} file" if suffix else "a file without the .ipynb extension"
        return SubmissionFile(None, size, h.hexdigest(), f"the file is not a Jupyter notebook ({kind}): {_RESAVE}")
    _, problem = parse_notebook(bytes(kept))
    return SubmissionFile(None if problem else bytes(kept), size, h.hexdigest(), problem)


# ---------------------------------------------------------------------- isolation
_LEVEL_WORDS = {"none": "no sandbox user: the grader's own uid", "uid": "a private user id and rlimits",
                "namespaces": "a bubblewrap sandbox with its own namespaces"}


def isolation_levels() -> tuple:
    """The sandbox's levels, weakest first."""
    from autograder import sandbox
    return tuple(getattr(sandbox, "ISOLATION_LEVELS", ("none", "uid", "namespaces")))


def host_isolation() -> str:
    """The strongest isolation the sandbox offers on this host ("none" when it cannot tell: fail closed)."""
    from autograder import sandbox
    probe = getattr(sandbox, "isolation_level", None)
    try:
        level = probe() if probe is not None else ("uid" if sandbox.privileged() else "none")
    except Exception:
        return "none"
    return level if level in isolation_levels() else "none"


def resolve_min_isolation(value: str | None = None) -> str:
    """The minimum level for hidden checks: ``value``, else ``$COURSE_MIN_ISOLATION``, else "namespaces"."""
    levels = isolation_levels()
    chosen = value or os.environ.get("COURSE_MIN_ISOLATION") or DEFAULT_MIN_ISOLATION
    if chosen not in levels:
        raise ValueError(f"unknown isolation level {chosen!r}: use one of {', '.join(levels)}")
    return chosen


def _rank(level) -> int:
    levels = isolation_levels()
    return levels.index(level) if level in levels else -1


def require_isolation(level: str, minimum: str, allow_weak: bool = False, where: str = "this host offers") -> dict:
    """What results record about ``level`` against ``minimum``; IsolationError (one line) when it is below
    and weak isolation is not allowed."""
    if _rank(level) >= _rank(minimum):
        return {}
    if not allow_weak:
        how = ("install bubblewrap (apt-get install bubblewrap) where user namespaces are enabled"
               if minimum == "namespaces" else "run the grader as root (each run gets a private user id) "
               "or install bubblewrap")
        raise IsolationError(f"{where} isolation '{level}' ({_LEVEL_WORDS.get(level, level)}) but hidden "
                             f"checks need '{minimum}': {how}, or pass --allow-weak-isolation")
    return {"isolation_required": minimum, "weak_isolation_allowed": True}


# ---------------------------------------------------------------------- sandbox adapter
def _versions() -> dict:
    v = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        from importlib.metadata import version
        v["course-generative-models"] = version("course-generative-models")
        v["papermill"] = version("papermill")
    except Exception:
        pass
    return v


def _static_check(nb_path: Path, suite) -> dict:
    """``{function: (status, message)}`` for the functions the static check rules out (never executed)."""
    from autograder.static_check import check_submission
    rep = check_submission(nb_path, suite)
    # A forbidden name used inside a graded function's body costs that function only; used anywhere else
    # (top-level code of any cell, a helper function, a function declaring globals) it costs every function
    # that forbids it: what top-level code imports, every function can reach.
    out = {}
    for fname in suite.functions:
        bad = [v for v in rep.violations_for(suite.forbidden_for(fname))
               if v.function == fname or v.function not in suite.functions]
        if bad:
            out[fname] = ("forbidden", f"{bad[0].message}: write it yourself with {suite.allowed_text()}")
        elif fname in rep.missing:
            out[fname] = ("missing", rep.message(fname) or f"no function named {fname}")
        elif rep.functions[fname].stub:        # untouched: one line for the function, and nothing to run
            out[fname] = ("stub", report.STUB_HINT)
    return out


def _limits(suite):
    """Sandbox limits for one submission: the notebook's budget twice (a hanging cell costs one budget, the
    re-run without it another) + every function's twice (its visible and its hidden cases) + kernel starts."""
    from autograder.sandbox import Limits
    budget = 2 * float(suite.notebook_timeout_s) + 2 * sum(float(f.time_budget_s) for f in suite.functions.values())
    return Limits(wall_seconds=budget + 60.0)


def _execute(nb_path: Path, suite, cases: dict, workdir: Path, groups: dict | None = None) -> tuple[dict, dict]:
    """Run the submission in the sandbox; returns (notebook status, {function: [(status, message, value)]}).
    ``groups``: per function, the sizes of its visible and hidden case groups (run in separate processes)."""
    from autograder.execute import execute_submission
    limits = _limits(suite)
    res = execute_submission(nb_path, suite, cases, workdir, limits, case_groups=groups)
    nb_status = {"status": str(res.status), "reason": _one_line(res.reason or ""),
                 "duration": round(float(res.duration), 3), "attempts": int(getattr(res, "attempts", 0) or 0)}
    outputs = {}
    for fname, fcases in cases.items():
        fr = res.functions.get(fname)
        if fr is None:
            outputs[fname] = [("not_run", "", None)] * len(fcases)
            continue
        per_case = list(getattr(fr, "cases", []) or [])
        values = list(getattr(fr, "outputs", []) or [])
        entries = []
        for i in range(len(fcases)):
            cr = per_case[i] if i < len(per_case) else None
            st = cr.status if cr is not None else (fr.status if fr.status != "ok" else "not_run")
            msg = _one_line(cr.message if cr is not None else fr.message)
            val = values[i] if i < len(values) else None
            if st == "ok" and val is None and fr.status == "ok":
                st, msg = "error", f"{fname} returned None"
            entries.append((st, msg, val if st == "ok" else None))
        outputs[fname] = entries
    nb_status["limits"] = limits.as_dict()
    nb_status["sandbox"] = {k: v for k, v in (getattr(res, "sandbox", {}) or {}).items() if k != "limits"}
    return nb_status, outputs


def _one_line(s: str, n: int = 300) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


# ---------------------------------------------------------------------- one submission
def grade_one(nb_bytes: bytes, name: str, suite_name, seeds: dict, public_only: bool = False) -> dict:
    """Grade one notebook given as bytes; return ``{"results": results.json dict}``. Never raises.

    Both phases in this process: ``run_submission`` (static check, sandbox, harvest), then ``judge_submission``
    (the judge, the report). It reads nothing but its arguments and writes only inside temporary folders.
    """
    return judge_submission(run_submission(nb_bytes, name, suite_name, seeds, public_only))


def run_submission(nb_bytes: bytes, name: str, suite_name, seeds: dict, public_only: bool = False) -> dict:
    """Phase 1, where the work is (a pool or Dask worker): static check, sandbox, harvest. Never raises.

    Returns ``{"results": ...}`` when the submission is already settled (too large, unreadable notebook,
    grader error), else ``{"pending": ...}``: the judge's request and the harvested arrays (numeric data
    only) plus what the report needs, for ``judge_submission`` in the coordinating process. The seeds go
    to the judge's request only; the results keep their commitment (``extra_data.seed_commitment``).
    """
    t0 = time.perf_counter()
    sha = hashlib.sha256(nb_bytes).hexdigest()
    extra = {"submission_sha256": sha, "seed_commitment": seed_commitment(seeds), "versions": _versions(),
             "host": platform.node(), "isolation": host_isolation()}
    suite_label = getattr(suite_name, "name", suite_name)
    workdir = None
    try:
        from autograder.suites import load_suite, suite_reference
        suite = load_suite(suite_name)
        suite_label = suite.name
        limit = notebook_limit(suite)
        if len(nb_bytes) > limit:
            return {"results": report.error_results(suite.name, name, size_problem(len(nb_bytes), limit), extra,
                                                     time.perf_counter() - t0)}
        nb, problem = parse_notebook(nb_bytes)
        if problem:
            return {"results": report.error_results(suite.name, name, problem, extra, time.perf_counter() - t0)}
        other = _other_assignment(nb, suite.name)
        if other:
            return {"results": report.error_results(
                suite.name, name, f"this notebook is the {other} assignment (its metadata says so), not "
                f"{suite.name}: submit your {suite.name} notebook", extra, time.perf_counter() - t0)}
        visibilities = suite.visibilities(public_only)
        durations = {}
        t = time.perf_counter()
        cases = {vis: suite.generate_cases(np.random.default_rng(int(seeds[vis], 16)), vis) for vis in visibilities}
        combined: dict = {}
        for vis in visibilities:
            for fname, lst in cases[vis].items():
                combined.setdefault(fname, []).extend(lst)
        durations["cases"] = time.perf_counter() - t

        # The grader's own folder (mode 0700, never readable by the sandbox, which gets a folder of its own
        # from execute_submission): the submission's pristine copy, the harvested outputs, the judge's files.
        workdir = Path(tempfile.mkdtemp(prefix="course-grade-"))
        private = workdir
        sandbox_dir = private / "execution"
        nb_path = private / "submission.ipynb"
        nb_path.write_bytes(nb_bytes)

        t = time.perf_counter()
        static = _static_check(nb_path, suite)
        durations["static_check"] = time.perf_counter() - t

        t = time.perf_counter()
        run_cases = {f: c for f, c in combined.items() if f not in static}
        groups = {f: [len(cases[vis].get(f, [])) for vis in visibilities] for f in run_cases}
        if run_cases:
            nb_status, outputs = _execute(nb_path, suite, run_cases, sandbox_dir, groups)
        else:
            nb_status, outputs = {"status": "skipped", "reason": "", "duration": 0.0}, {}
        durations["sandbox"] = time.perf_counter() - t
        limits = nb_status.pop("limits", None)
        if limits:
            extra["sandbox_limits"] = limits
        sandbox_info = nb_status.pop("sandbox", None)
        if sandbox_info:
            extra["sandbox"] = sandbox_info
            if "isolation" in sandbox_info:      # the level this run had (an unknown word counts as none)
                used = sandbox_info["isolation"]
                extra["isolation"] = used if used in isolation_levels() else "none"

        # Split the combined per-function outputs back into visibilities; apply static findings.
        entries, function_status = {}, {}
        for fname in suite.functions:
            per_vis, offset = {}, 0
            for vis in visibilities:
                n = len(cases[vis].get(fname, []))
                if not n:
                    continue
                if fname in static:
                    st, msg = static[fname]
                    per_vis[vis] = [(st, msg, None)] * n
                else:
                    per_vis[vis] = list(outputs.get(fname, [("not_run", "", None)] * (offset + n))[offset: offset + n])
                offset += n
            if per_vis:
                entries[fname] = per_vis
                sts = [s for lst in per_vis.values() for (s, _, _) in lst]
                function_status[fname] = "ok" if all(s == "ok" for s in sts) else \
                    next(s for s in sts if s != "ok")

        from autograder.judge import encode_outputs
        meta, arrays = encode_outputs(entries)
        request = {"suite": suite_reference(suite), "seeds": {v: seeds[v] for v in visibilities},
                   "visibilities": list(visibilities), "functions": meta}
        extra["durations"] = durations
        return {"pending": {"name": name, "suite": suite_reference(suite), "request": request, "arrays": arrays,
                            "notebook_status": nb_status, "function_status": function_status, "extra": extra,
                            "public_only": bool(public_only), "sandbox_ran": bool(run_cases),
                            "seconds": time.perf_counter() - t0}}
    except Exception as exc:     # a fault of the grader: still exactly one result
        extra["traceback"] = traceback.format_exc(limit=8)
        return {"results": report.error_results(str(suite_label), name, f"grader error: {_one_line(f'{type(exc).__name__}: {exc}', 250)}",
                                                 extra, time.perf_counter() - t0)}
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def judge_submission(outcome: dict) -> dict:
    """Phase 2, in the coordinating process: judge a ``run_submission`` outcome. Never raises.

    The judge (pytest in its own process, started once per grader) reads the harvested arrays from a
    private folder with ``allow_pickle=False`` and computes the expected values itself.
    """
    if "results" in outcome:
        return outcome
    p = outcome["pending"]
    t0 = time.perf_counter()
    extra = p["extra"]
    durations = extra.get("durations", {})
    jdir = None
    try:
        from autograder.judge import run_judge, write_inputs
        from autograder.suites import load_suite
        suite = load_suite(p["suite"])
        jdir = Path(tempfile.mkdtemp(prefix="course-judge-"))
        write_inputs(jdir, p["request"], p["arrays"])
        judged = run_judge(jdir)
        durations["judge"] = time.perf_counter() - t0
        total = p["seconds"] + durations["judge"]
        durations["total"] = total
        extra["durations"] = {k: round(v, 3) for k, v in durations.items()}
        results = report.build_results(
            suite, judged, name=p["name"], notebook_status=p["notebook_status"],
            function_status=p["function_status"], extra=extra, execution_time=total, public_only=p["public_only"])
        return {"results": results}
    except Exception as exc:
        extra["traceback"] = traceback.format_exc(limit=8)
        extra["durations"] = {k: round(v, 3) for k, v in durations.items()}
        return {"results": report.error_results(
            str(p["request"].get("suite")), p["name"], f"grader error: {_one_line(f'{type(exc).__name__}: {exc}', 250)}",
            extra, p["seconds"] + time.perf_counter() - t0)}
    finally:
        if jdir is not None:
            shutil.rmtree(jdir, ignore_errors=True)


def _grade_task(args) -> dict:
    """Picklable entry point for process pools and Dask, ``(nb_bytes, name, suite_name, seeds)``: phase 1."""
    return run_submission(*args)


def _warm_worker(suite_name) -> None:
    """Pool/Dask worker set-up: import the sandbox side now (the judge runs in the coordinating process)."""
    try:
        import autograder.execute  # noqa: F401
        import autograder.static_check  # noqa: F401
        import nbformat  # noqa: F401
        from autograder.suites import load_suite
        load_suite(suite_name)
    except Exception:
        pass


def grade_submission(path, suite_name, out_dir, salt: bytes | None = None, **options) -> dict:
    """Grade one notebook file into ``out_dir/<name>/`` (as ``grade_batch``); returns results.json's dict."""
    return grade_batch([path], suite_name, out_dir, salt=salt, progress=False, **options)[0]


# ---------------------------------------------------------------------- pool workers die with the grader

def _kill_descendants() -> None:
    """SIGKILL every process below this one (sandboxes, kernels), again while new ones keep appearing."""
    import psutil
    me = psutil.Process()
    for _ in range(5):
        try:
            kids = me.children(recursive=True)
        except psutil.Error:
            return
        if not kids:
            return
        for k in kids:
            with contextlib.suppress(psutil.Error):
                k.kill()
        psutil.wait_procs(kids, timeout=1.0)


def _end_worker(signum=None, frame=None) -> None:
    """A pool worker's end when the grader is gone or stops it: take its sandboxes along, then exit."""
    try:
        _kill_descendants()
    finally:
        os._exit(128 + int(signum or signal.SIGTERM))


def _watch_parent(parent_pid: int) -> None:
    """Backstop of the parent-death signal (and its stand-in where there is no ``prctl``)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            _end_worker()


def _pool_worker_init(suite_ref, parent_pid: int) -> None:
    """Process-pool initializer: die with the coordinating process, leave SIGINT to it, warm up."""
    import psutil  # noqa: F401 - imported now, not first inside a signal handler
    signal.signal(signal.SIGTERM, _end_worker)
    signal.signal(signal.SIGINT, lambda signum, frame: None)     # the coordinating process decides
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:                                 # it died before prctl took effect
        _end_worker()
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="course-parent-watch", daemon=True).start()
    _warm_worker(suite_ref)


class _StopSignals:
    """SIGTERM and SIGINT raise GradingInterrupted in the main thread, after the result being written."""

    def __init__(self):
        self.pending = None
        self.depth = 0
        self.saved = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        return False

    def _handle(self, signum, frame):
        if self.depth:
            self.pending = signum
            return
        raise GradingInterrupted(signum)

    @contextlib.contextmanager
    def writing(self):
        """Files written inside are whole: a stop signal waits until the block ends."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if self.pending is not None and not self.depth:
            raise GradingInterrupted(self.pending)


# ---------------------------------------------------------------------- batches
def _progress(total: int, desc: str):
    try:
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, unit="nb", file=sys.stderr, dynamic_ncols=True, disable=not total)
    except ImportError:          # pragma: no cover
        class _Null:
            def update(self, n=1): pass
            def set_postfix_str(self, s): pass
            def close(self): pass
        return _Null()


def grade_batch(items, suite_name, out_dir, workers: int = 1, scheduler: str | None = None,
                salt: bytes | None = None, progress: bool = True, *, min_isolation: str | None = None,
                allow_weak_isolation: bool = False, security=None, roster=None) -> list:
    """Grade every submission not yet graded; write results and grades.csv; return every result (sorted).

    Parameters
    ----------
    items : list of paths (notebooks or folders of notebooks)
    suite_name : str
        The assignment, e.g. ``"hw2_em"`` (or the instructor's own suite file).
    out_dir : path
        ``DIR/<name>/results.json, feedback.md, feedback.html`` and ``DIR/grades.csv``; made private (0700).
    workers : int
        Parallel grading processes on this machine (1: grade in this process).
    scheduler : str or None
        A Dask scheduler address (``tcp://host:8786``, ``tls://host:8786``): submissions are graded on its
        workers, whose isolation is checked instead of this host's.
    min_isolation : str or None
        The weakest sandbox hidden checks accept (default ``$COURSE_MIN_ISOLATION`` or "namespaces").
    allow_weak_isolation : bool
        Grade below ``min_isolation`` anyway; every result then says so.
    security : distributed.security.Security or None
        TLS credentials for the scheduler (see ``dask_security``).
    roster : path or None
        A CSV of the students expected (``autograder.students.read_roster``): each one without a submission gets
        a result "no submission" (score 0). Submissions are named by their student where the folder's layout
        says who it is (nbgrader, GitHub Classroom, Canvas, Moodle; ``autograder.students``).

    Raises
    ------
    ValueError
        One line, before anything is graded: unknown assignment or submission, isolation below the minimum
        (IsolationError), a results or state folder that cannot be made private. Also while grading, when
        a run's sandbox had less isolation than required (nothing is written for that submission).
    GradingInterrupted
        SIGTERM or SIGINT: workers are stopped; results already written are whole and a rerun resumes.
    """
    from autograder.suites import load_suite, suite_reference
    suite = load_suite(suite_name)
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    minimum = resolve_min_isolation(min_isolation)
    expected = read_roster(roster) if roster else []
    subs = collect_submissions(items, suite.name, expected)
    students = {sub.name: sub.student for sub in subs}
    check_names = [c.name for c in suite.checks]
    suite_ref = suite_reference(suite)

    with _StopSignals() as stop, contextlib.ExitStack() as stack:
        client = stack.enter_context(_dask_client(scheduler, security)) if scheduler else None
        if client is not None:
            level, where = _weakest_worker(client, scheduler)
        else:
            level, where = host_isolation(), "this host offers"
        waiver = require_isolation(level, minimum, allow_weak_isolation, where)
        if waiver and progress:
            print(f"course grade: grading with isolation '{level}', below '{minimum}' (--allow-weak-isolation); "
                  f"every result records it", file=sys.stderr)
        out_dir = make_private(out_dir, "the results folder")
        for stale in [*out_dir.glob(".*.tmp"), *out_dir.glob("*/.*.tmp")]:   # a killed run's unfinished writes
            stale.unlink(missing_ok=True)
        state_dir()
        salt = load_salt() if salt is None else salt
        limit = notebook_limit(suite)

        done, todo, settled = {}, [], []
        pending = {}     # name -> (sha256, how many runs died grading it) of each notebook in todo
        handed_in = {sub.student for sub in subs}
        for student in expected:   # on the roster, nothing handed in: a result of its own, score 0
            if student not in handed_in:
                name = safe_name(student)
                while name in students:
                    name += "_"
                students[name] = student
                settled.append((name, {"results": report.error_results(
                    suite.name, name, "no submission", {"isolation": level, "no_submission": True})}))
        for name, path, _, problem in subs:
            sub = read_submission(path, limit)
            if problem:
                sub = sub._replace(problem=problem)
            prev = report.read_complete(out_dir / name / report.RESULTS_FILE, sha256=sub.sha256, assignment=suite.name)
            if prev is not None and not problem:
                done[name] = prev
            elif sub.problem:
                settled.append((name, {"results": report.error_results(
                    suite.name, name, sub.problem, {"submission_sha256": sub.sha256, "isolation": level})}))
            elif (deaths := _deaths(out_dir, name, sub.sha256)) >= _MAX_DEATHS:
                _grading_marker(out_dir, name).unlink(missing_ok=True)
                settled.append((name, {"results": report.error_results(suite.name, name, (
                    f"grader error: the grading process died {_MAX_DEATHS} times while it graded this notebook "
                    f"(out of memory or a crash), so it is not graded again; delete the folder {name} in the "
                    "results folder to try once more"), {"submission_sha256": sub.sha256, "isolation": level})}))
            else:
                todo.append((name, (sub.data, name, suite_ref, submission_seeds(sub.data, salt))))
                pending[name] = (sub.sha256, deaths)
        with stop.writing():
            report.rebuild_csv(out_dir, check_names, assignment=suite.name)

        bar = _progress(len(todo) + len(settled), f"grading {suite.name}") if progress else _progress(0, "")
        if done and progress:
            print(f"course grade: {len(done)} submission(s) already graded in {out_dir}, skipped", file=sys.stderr)

        def record(name, outcome):
            res = judge_submission(outcome)["results"]
            ed = res.setdefault("extra_data", {})
            if students.get(name) is not None:
                ed["student"] = students[name]
            marks = dict(waiver)
            if "pending" in outcome and outcome["pending"].get("sandbox_ran"):
                marks.update(require_isolation(ed.get("isolation", "none"), minimum, allow_weak_isolation,
                                               f"the sandbox that ran {name} had"))
            ed.update(marks)
            with stop.writing():
                report.write_submission(out_dir, name, res)
                report.rebuild_csv(out_dir, check_names, assignment=suite.name)
            done[name] = res
            bar.update(1)
            bar.set_postfix_str(f"{name}: {res['score']:g}")

        def failed(name, task, exc):
            extra = {"submission_sha256": pending[name][0],
                     "seed_commitment": seed_commitment(task[3]), "isolation": level}
            return {"results": report.error_results(
                suite.name, name, f"grader error: {_one_line(f'{type(exc).__name__}: {exc}', 250)}", extra)}

        if todo:
            try:
                from autograder.judge import shared_judge
                shared_judge()                # one judge for the whole batch; its imports overlap with the work
            except Exception:
                pass
        try:
            for name, outcome in settled:
                record(name, outcome)
            if not todo:
                pass
            elif client is not None:
                _run_dask(client, todo, record, failed, suite_ref)
            elif workers > 1 and len(todo) > 1:
                _run_pool(todo, workers, record, failed, suite_ref)
            else:
                for name, task in todo:
                    # in this process: a submission that kills it would stop every rerun of the batch at the
                    # same place, so a marker says which one it was (see _deaths)
                    marker, (sha, deaths) = _grading_marker(out_dir, name), pending[name]
                    marker.write_text(f"{sha} {deaths + 1}")
                    try:
                        outcome = _grade_task(task)
                    except Exception as exc:   # grade_one never raises; belt and braces
                        outcome = failed(name, task, exc)
                    except BaseException:      # interrupted: graded again next time
                        marker.unlink(missing_ok=True)
                        raise
                    record(name, outcome)
                    marker.unlink(missing_ok=True)
        finally:
            bar.close()
    return [done[name] for name in students if name in done]


def _grading_marker(out_dir: Path, name: str) -> Path:
    """The file that says ``name`` is being graded in the coordinating process (names have no dot)."""
    return out_dir / f".{name}.grading"


#: Runs that may die while grading one notebook in the coordinating process before it is recorded as a grader
#: error (a run killed from outside, SIGKILL or a reboot, leaves the same marker as one the notebook killed).
_MAX_DEATHS = 2


def _deaths(out_dir: Path, name: str, sha256: str) -> int:
    """How many earlier runs died while they graded this very notebook (the count its marker holds)."""
    try:
        sha, _, count = _grading_marker(out_dir, name).read_text().partition(" ")
        return int(count) if sha == sha256 else 0
    except (OSError, ValueError):
        return 0


def _stop_pool(pool, futures) -> None:
    """Cancel what has not started and end the workers (each takes its sandboxes along)."""
    for fut in futures:
        fut.cancel()
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + 5.0
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)


def _run_pool(todo, workers, record, failed, suite_ref, run=None) -> None:
    """Grade in a pool of spawned processes. If a worker dies, each task the pool had not finished is graded
    again in a pool of its own, so that a submission that kills its worker (memory, a crash) takes no other
    submission down with it: it alone gets "grader error".

    Workers die with this process (parent-death signal); on an exception here (GradingInterrupted, a grader
    fault) the pool is stopped before it propagates.
    """
    run = run or _grade_task
    for name, task in _pool_round(todo, workers, record, None, suite_ref, run):
        _pool_round([(name, task)], 1, record, failed, suite_ref, run)


def _pool_round(pending, workers, record, failed, suite_ref, run) -> list:
    """One pool running ``run(task)`` for ``pending``; records each outcome. A task whose worker died is recorded
    as ``failed`` when that is given, else returned (the list of such tasks)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    lost, futures = [], {}
    pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=mp.get_context("spawn"),
                               initializer=_pool_worker_init, initargs=(suite_ref, os.getpid()))
    try:
        futures = {pool.submit(run, task): (name, task) for name, task in pending}
        for fut in as_completed(futures):
            name, task = futures[fut]
            try:
                outcome = fut.result()
            except Exception as exc:      # BrokenProcessPool: a worker died with this task
                if failed is None:
                    lost.append((name, task))
                    continue
                outcome = failed(name, task, exc)
            record(name, outcome)
    except BaseException:
        _stop_pool(pool, futures)
        raise
    pool.shutdown(wait=True)
    return lost


# ---------------------------------------------------------------------- Dask
def dask_security(address: str | None, ca_file=None, cert=None, key=None):
    """The ``distributed.security.Security`` for a ``tls://`` scheduler, or None for another address.

    With ``ca_file`` and ``cert`` (and ``key`` unless the certificate file holds it), those files; without
    them, Dask's own configuration (``distributed.comm.tls.ca-file``, ``distributed.comm.tls.client.cert``
    and ``.key``). Raises ValueError (one line) for missing or misplaced credentials.
    """
    given = {opt: f for opt, f in (("--tls-ca-file", ca_file), ("--tls-cert", cert), ("--tls-key", key)) if f}
    tls = bool(address) and str(address).startswith("tls://")
    if given and not tls:
        raise ValueError(f"{', '.join(given)} need a tls:// scheduler address (--scheduler tls://HOST:PORT)")
    if not tls:
        return None
    try:
        import dask
        from distributed.security import Security
    except ImportError:                     # pragma: no cover
        raise ValueError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    if given:
        if not (ca_file and cert):
            raise ValueError("TLS needs --tls-ca-file and --tls-cert (and --tls-key unless the certificate file "
                             "holds the key)")
        for opt, f in given.items():
            if not Path(f).is_file():
                raise ValueError(f"{opt} {f}: no such file")
        return Security(tls_ca_file=str(ca_file), tls_client_cert=str(cert),
                        tls_client_key=str(key) if key else None, require_encryption=True)
    if not (dask.config.get("distributed.comm.tls.ca-file", None)
            and dask.config.get("distributed.comm.tls.client.cert", None)):
        raise ValueError(f"{address} needs TLS credentials: pass --tls-ca-file, --tls-cert and --tls-key, or set "
                         f"distributed.comm.tls.ca-file and distributed.comm.tls.client.cert in Dask's configuration")
    return Security(require_encryption=True)       # the rest from distributed.comm.tls.* of Dask's configuration


@contextlib.contextmanager
def _dask_client(address: str, security=None):
    try:
        from distributed import Client
    except ImportError:                     # pragma: no cover
        raise ValueError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    if security is None and str(address).startswith("tls://"):
        security = dask_security(address)
    try:
        client = Client(address, timeout="20s", security=security)
    except Exception as exc:
        raise ValueError(f"could not connect to the Dask scheduler at {address}: {_one_line(exc, 120)}") from None
    try:
        yield client
    finally:
        client.close()


def _weakest_worker(client, address) -> tuple[str, str]:
    """(level, "the Dask worker ADDRESS offers") of the worker with the weakest sandbox."""
    try:
        client.wait_for_workers(1, timeout=60)
        levels = client.run(host_isolation)
    except Exception as exc:
        raise ValueError(f"the Dask scheduler at {address} has no worker that answers ({_one_line(exc, 100)}): "
                         f"start one with `dask worker {address}`") from None
    if not levels:
        raise ValueError(f"the Dask scheduler at {address} has no workers: start one with `dask worker {address}`")
    worker, level = min(levels.items(), key=lambda kv: _rank(kv[1]))
    return (level if level in isolation_levels() else "none"), f"the Dask worker {worker} offers"


def _dask_key(name: str) -> str:
    """A task key naming the submission and nothing secret (never its seed)."""
    return f"course-grade-{name}-{secrets.token_hex(6)}"


def _run_dask(client, todo, record, failed, suite_ref) -> None:
    with contextlib.suppress(Exception):
        client.run(_warm_worker, suite_ref)        # each worker imports the sandbox side now
    from distributed import as_completed
    futures = {}
    try:
        for name, task in todo:
            fut = client.submit(_grade_task, task, key=_dask_key(name), pure=False, retries=1)
            futures[fut] = (name, task)
        for fut in as_completed(list(futures)):
            name, task = futures[fut]
            try:
                outcome = fut.result()
            except Exception as exc:
                outcome = failed(name, task, exc)
            record(name, outcome)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(futures))
        raise


# ---------------------------------------------------------------------- command line
def _error(msg: str, code: int = 2) -> int:
    print(f"course: {msg}", file=sys.stderr)
    return code


def grade_command(args) -> int:
    """`course grade SUBMISSION... --assignment HW [--out DIR] [--workers N] [--scheduler ADDRESS]
    [--min-isolation LEVEL] [--allow-weak-isolation] [--tls-ca-file F --tls-cert F --tls-key F]`."""
    scheduler = getattr(args, "scheduler", None)
    allow_weak = bool(getattr(args, "allow_weak_isolation", False))
    try:
        from autograder.suites import load_suite
        load_suite(args.assignment)                   # the instructor's command line: a name or a suite file
        collect_submissions(args.submissions)
        minimum = resolve_min_isolation(getattr(args, "min_isolation", None))
        security = dask_security(scheduler, getattr(args, "tls_ca_file", None), getattr(args, "tls_cert", None),
                                 getattr(args, "tls_key", None))
        if not scheduler:                             # refuse before paying for the judge's start
            require_isolation(host_isolation(), minimum, allow_weak)
        elif str(scheduler).startswith("tcp://"):
            print(f"course grade: the connection to {scheduler} is not encrypted; a shared cluster should use "
                  f"tls:// (--tls-ca-file, --tls-cert, --tls-key)", file=sys.stderr)
        try:       # the judge's imports (torch, course_lib) take seconds: start them now
            from autograder.judge import shared_judge
            shared_judge()
        except Exception:
            pass
        results = grade_batch(args.submissions, args.assignment, args.out, workers=int(args.workers or 1),
                              scheduler=scheduler, min_isolation=minimum, allow_weak_isolation=allow_weak,
                              security=security, roster=getattr(args, "roster", None))
    except ValueError as exc:
        return _error(str(exc))
    print(report.format_table(results))
    print(f"\nresults in {args.out}/ (grades.csv, <submission>/results.json, feedback.md, feedback.html)")
    return 0


def _other_assignment(nb: dict, assignment: str) -> str | None:
    """The course assignment a notebook's metadata names when it is another one than ``assignment``."""
    from autograder.suites import available_suites
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    named = (meta.get("course") or {}).get("assignment") if isinstance(meta.get("course"), dict) else None
    known = available_suites(fixtures=True)
    return named if isinstance(named, str) and named != assignment and named in known and assignment in known else None


def _assignment_of(nb_path: Path, nb: dict) -> str:
    """The assignment a notebook belongs to, by name in the course's registry only (never a file it names)."""
    from autograder.suites import available_suites, registered_suite
    meta = (nb.get("metadata") or {}).get("course") if isinstance(nb.get("metadata"), dict) else None
    if isinstance(meta, dict) and meta.get("assignment"):
        return registered_suite(meta["assignment"], f"{nb_path.name} names")
    stem = nb_path.stem
    for name in available_suites(fixtures=True):
        if stem == name or stem.startswith(name):
            return name
    raise ValueError(f"{nb_path}: cannot tell which assignment this is: pass --assignment HW")


def check_command(args) -> int:
    """`course check NOTEBOOK`: the public checks, on this machine, printed with expected vs got.

    Public checks run whatever the sandbox's isolation; the assignment comes from ``--assignment`` (a name
    or a suite file: the person at the keyboard chooses) or from the notebook, by registered name only.
    """
    path = Path(args.notebook)
    if not path.is_file():
        return _error(f"{args.notebook}: no such file")
    res = None
    try:
        from autograder.suites import load_suite
        explicit = getattr(args, "assignment", None)
        suite = load_suite(explicit) if explicit else None
        sub = read_submission(path, notebook_limit(suite))
        if sub.problem:      # still a result, and a payload for --classroom: no other file stands in for it
            res = report.error_results(suite.name if suite else "", path.stem, sub.problem, {})
        else:
            suite = suite or load_suite(_assignment_of(path, json.loads(sub.data.decode("utf-8"))))
            seeds = submission_seeds(sub.data, load_salt())
    except ValueError as exc:
        return _error(str(exc))
    if res is None:
        print(f"checking {path} against the public checks of {suite.name} ...", file=sys.stderr)
        res = grade_one(sub.data, path.stem, suite, seeds, public_only=True)["results"]
    print(format_check(res))
    passed = not res["extra_data"].get("error") and all(t["status"] == "passed" for t in res["tests"])
    if getattr(args, "classroom", None):
        public = sum(c.points for c in suite.checks if c.visibility == "visible") if suite else 0.0
        report.write_atomic(args.classroom, json.dumps(report.classroom_payload(res, public)))
    return 0 if passed else 1


def format_check(res: dict) -> str:
    """The `course check` printout: each public check, PASS/FAIL, and expected vs got for failures."""
    lines = []
    ed = res.get("extra_data", {})
    if ed.get("error"):
        return f"could not check the notebook: {report._printable(res['output'])}"
    nbs = ed.get("notebook") or {}
    if nbs.get("reason"):
        lines.append(f"note: {report._printable(nbs['reason'])}")
    got = sum(t["score"] for t in res["tests"])
    total = sum(t["max_score"] for t in res["tests"])
    for t in report.display_tests(res):
        mark = {"passed": "PASS", "not written": "TODO"}.get(t["status"], "FAIL")
        lines.append(f"{mark}  {t['name']}  ({t['score']:g} / {t['max_score']:g})")
        if t["status"] not in ("passed", "not written"):
            out = report._printable(t["output"])  # student text reaches a terminal: no control sequences
            lines += [f"      {ln}" for ln in out.splitlines()[1:] or out.splitlines()]
    if any(t["status"] == "not written" for t in report.display_tests(res)):
        lines.append(f"TODO: in each function above that is not written yet, {report.STUB_HINT}")
    lines.append(f"\npublic checks: {got:g} / {total:g} points "
                 f"(hidden checks, worth {100 - total:g} more, run only when graded)")
    return "\n".join(lines)
