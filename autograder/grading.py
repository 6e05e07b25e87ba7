"""Grade notebooks: the whole pipeline for one submission, and batches of them (`course grade`, `course check`).

One submission (``grade_one``, pure: returns its result, writes nothing outside private temporary folders)
 1 static check   ``autograder.static_check``: graded functions found by name, forbidden imports flagged
 2 sandbox        ``autograder.execute.execute_submission``: papermill runs a copy under ``run_sandboxed``
 3 harvest        the sandbox's data-only outputs (npz, ``allow_pickle=False``) per function and case
 4 judge          ``autograder.judge``: pytest in a separate process that never runs student code
 5 report         ``autograder.report``: results.json (Gradescope), feedback.md/html

Seeds: case inputs come from ``numpy.random.default_rng(seed)`` with seed = HMAC-SHA256(secret salt,
visibility + the source of the notebook's code cells): the same code always gets the same cases (and score),
different code gets different ones, and nobody without the salt can predict them. The salt comes from
``$COURSE_GRADER_SALT`` or the file ``salt`` (mode 0600, created on first use) in the grader's state folder
(``$COURSE_GRADER_STATE``, default ``$XDG_STATE_HOME/course-grader`` or ``~/.local/state/course-grader``).

Batches (``grade_batch``): steps 1-3 (``run_submission``, the expensive part) run in this process
(``workers=1``), in a pool of processes (``workers=N``) or on a Dask cluster (``scheduler="tcp://..."``),
always with the same function; they send back data-only outputs. Steps 4-5 (``judge_submission``) run
in the coordinating process, with one judge for the whole batch (its torch/course_lib imports are paid
once), and only the coordinating process writes files. A submission whose ``DIR/<name>/results.json`` is
complete (same notebook bytes, same assignment) is skipped, and ``grades.csv`` is rebuilt from the
results.json files after each result, so a batch killed at any point resumes without duplicates.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from autograder import report

# jsonschema (imported by nbformat) loads rfc3987_syntax when it is installed, and that module compiles a
# grammar for seconds at import time; nbformat never validates IRIs, so the grader goes without it.
sys.modules.setdefault("rfc3987_syntax", None)

__all__ = ["grade_one", "grade_submission", "grade_batch", "grade_command", "check_command", "load_salt",
           "submission_seeds", "code_source", "collect_submissions", "state_dir"]


# ---------------------------------------------------------------------- salt and seeds
def state_dir() -> Path:
    """The grader's private state folder (mode 0700)."""
    env = os.environ.get("COURSE_GRADER_STATE")
    if env:
        d = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        d = Path(base) / "course-grader"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


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


def code_source(nb) -> bytes:
    """The source of the notebook's code cells, in order (what the seed depends on)."""
    parts = []
    for c in nb.get("cells", []):
        if isinstance(c, dict) and c.get("cell_type") == "code":
            src = c.get("source", "")
            parts.append("".join(map(str, src)) if isinstance(src, list) else str(src))
    return "\n\0\n".join(parts).encode("utf-8")


def submission_seeds(code: bytes, salt: bytes) -> dict:
    """``{"visible": hex, "hidden": hex}``: HMAC-SHA256(salt, visibility NUL code), as hex strings."""
    return {vis: hmac.new(salt, vis.encode() + b"\0" + code, hashlib.sha256).hexdigest()
            for vis in ("visible", "hidden")}


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
    # A forbidden name used inside a graded function's own cell costs that function only; used anywhere
    # else (an imports cell, top-level code) it costs every function that forbids it.
    own_cell = {f: info.cell for f, info in rep.functions.items()}
    out = {}
    for fname in suite.functions:
        bad = [v for v in rep.violations_for(suite.forbidden_for(fname))
               if v.cell == own_cell.get(fname) or v.cell not in own_cell.values()]
        if bad:
            out[fname] = ("forbidden", bad[0].message)
        elif fname in rep.missing:
            out[fname] = ("missing", rep.message(fname) or f"no function named {fname}")
    return out


def _get(obj, key, default=None):
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _limits(suite):
    """Sandbox limits for one submission: the notebook's budget + every function's + kernel starts."""
    from autograder.sandbox import Limits
    budget = float(suite.notebook_timeout_s) + sum(float(f.time_budget_s) for f in suite.functions.values())
    return Limits(wall_seconds=budget + 60.0)


def _execute(nb_path: Path, suite, cases: dict, workdir: Path) -> tuple[dict, dict]:
    """Run the submission in the sandbox; returns (notebook status, {function: [(status, message, value)]})."""
    from autograder.execute import execute_submission
    limits = _limits(suite)
    res = execute_submission(nb_path, suite, cases, workdir, limits)
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

    Returns ``{"results": ...}`` when the submission is already settled (unreadable notebook, grader
    error), else ``{"pending": ...}``: the judge's request and the harvested arrays (numeric data only)
    plus what the report needs, for ``judge_submission`` in the coordinating process.
    """
    t0 = time.perf_counter()
    sha = hashlib.sha256(nb_bytes).hexdigest()
    extra = {"submission_sha256": sha, "seeds": seeds, "versions": _versions(), "host": platform.node()}
    suite_label = getattr(suite_name, "name", suite_name)
    workdir = None
    try:
        from autograder.suites import load_suite, suite_reference
        suite = load_suite(suite_name)
        suite_label = suite.name
        try:
            nb = json.loads(nb_bytes.decode("utf-8"))
            if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
                raise ValueError("no list of cells")
        except Exception as exc:
            return {"results": report.error_results(
                suite.name, name, f"the notebook could not be read ({_one_line(exc, 150)}): submit a valid .ipynb",
                extra, time.perf_counter() - t0)}
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
        if run_cases:
            nb_status, outputs = _execute(nb_path, suite, run_cases, sandbox_dir)
        else:
            nb_status, outputs = {"status": "skipped", "reason": "", "duration": 0.0}, {}
        durations["sandbox"] = time.perf_counter() - t
        limits = nb_status.pop("limits", None)
        if limits:
            extra["sandbox_limits"] = limits
        sandbox_info = nb_status.pop("sandbox", None)
        if sandbox_info:
            extra["sandbox"] = sandbox_info

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
                            "public_only": bool(public_only), "seconds": time.perf_counter() - t0}}
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
        from autograder.judge import run_judge
        from autograder.suites import load_suite
        suite = load_suite(p["suite"])
        jdir = Path(tempfile.mkdtemp(prefix="course-judge-"))
        (jdir / "request.json").write_text(json.dumps(p["request"]))
        np.savez(jdir / "outputs.npz", **p["arrays"])
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


def grade_submission(path, suite_name, out_dir, salt: bytes | None = None) -> dict:
    """Grade one notebook file and write its results into ``out_dir/<stem>/``; returns results.json's dict."""
    path = Path(path)
    nb_bytes = path.read_bytes()
    seeds = _seeds_for_bytes(nb_bytes, salt if salt is not None else load_salt())
    res = grade_one(nb_bytes, path.stem, suite_name, seeds)["results"]
    report.write_submission(out_dir, path.stem, res)
    from autograder.suites import load_suite
    suite = load_suite(suite_name)
    report.rebuild_csv(out_dir, [c.name for c in suite.checks], assignment=suite.name)
    return res


def _seeds_for_bytes(nb_bytes: bytes, salt: bytes) -> dict:
    try:
        nb = json.loads(nb_bytes.decode("utf-8"))
        code = code_source(nb if isinstance(nb, dict) else {})
    except (ValueError, UnicodeDecodeError):
        code = nb_bytes
    return submission_seeds(code, salt)


# ---------------------------------------------------------------------- batches
def collect_submissions(items) -> list:
    """Expand files and folders (``*.ipynb``, recursively, checkpoints skipped) to (name, path), names unique.

    Raises ValueError (one line) for a path that does not exist or is not a notebook.
    """
    paths = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
            if not found:
                raise ValueError(f"{item}: no .ipynb notebooks in this folder")
            paths += found
        elif p.is_file():
            if p.suffix != ".ipynb":
                raise ValueError(f"{item}: not a notebook (expected a .ipynb file)")
            paths.append(p)
        else:
            raise ValueError(f"{item}: no such file or folder")
    out, used = [], set()
    for p in paths:
        base = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in p.stem) or "submission"
        name, k = base, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        out.append((name, p))
    return out


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
                salt: bytes | None = None, progress: bool = True) -> list:
    """Grade every submission not yet graded; write results and grades.csv; return every result (sorted).

    Parameters
    ----------
    items : list of paths (notebooks or folders of notebooks)
    suite_name : str
        The assignment, e.g. ``"hw2_em"``.
    out_dir : path
        ``DIR/<name>/results.json, feedback.md, feedback.html`` and ``DIR/grades.csv``.
    workers : int
        Parallel grading processes on this machine (1: grade in this process).
    scheduler : str or None
        A Dask scheduler address (``tcp://host:8786``): submissions are graded on its workers.
    """
    from autograder.suites import load_suite, suite_reference
    suite = load_suite(suite_name)
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    subs = collect_submissions(items)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    salt = load_salt() if salt is None else salt
    try:       # as root, sandboxed runs use other users: keep results and the salt out of their reach
        from autograder.sandbox import protect_paths
        protect_paths([out_dir, state_dir()])
    except Exception:
        pass
    check_names = [c.name for c in suite.checks]
    suite_ref = suite_reference(suite)

    done, todo = {}, []
    for name, path in subs:
        nb_bytes = path.read_bytes()
        sha = hashlib.sha256(nb_bytes).hexdigest()
        prev = report.read_complete(out_dir / name / report.RESULTS_FILE, sha256=sha, assignment=suite.name)
        if prev is not None:
            done[name] = prev
        else:
            todo.append((name, (nb_bytes, name, suite_ref, _seeds_for_bytes(nb_bytes, salt))))
    report.rebuild_csv(out_dir, check_names, assignment=suite.name)

    bar = _progress(len(todo), f"grading {suite.name}") if progress else _progress(0, "")
    if done and progress:
        print(f"course grade: {len(done)} submission(s) already graded in {out_dir}, skipped", file=sys.stderr)

    def record(name, outcome):
        res = judge_submission(outcome)["results"]
        report.write_submission(out_dir, name, res)
        report.rebuild_csv(out_dir, check_names, assignment=suite.name)
        done[name] = res
        bar.update(1)
        bar.set_postfix_str(f"{name}: {res['score']:g}")

    def failed(name, task, exc):
        nb_bytes = task[0]
        extra = {"submission_sha256": hashlib.sha256(nb_bytes).hexdigest(), "seeds": task[3]}
        return {"results": report.error_results(
            suite.name, name, f"grader error: {_one_line(f'{type(exc).__name__}: {exc}', 250)}", extra)}

    if todo:
        try:
            from autograder.judge import shared_judge
            shared_judge()                # one judge for the whole batch; its imports overlap with the work
        except Exception:
            pass
    try:
        if not todo:
            pass
        elif scheduler:
            _run_dask(todo, scheduler, record, failed, suite_ref)
        elif workers > 1 and len(todo) > 1:
            _run_pool(todo, workers, record, failed, suite_ref)
        else:
            for name, task in todo:
                try:
                    outcome = _grade_task(task)
                except Exception as exc:   # grade_one never raises; belt and braces
                    outcome = failed(name, task, exc)
                record(name, outcome)
    finally:
        bar.close()
    return [done[name] for name, _ in subs if name in done]


def _run_pool(todo, workers, record, failed, suite_ref) -> None:
    """Grade in a pool of spawned processes; if a worker dies, the unfinished tasks get one more pool."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pending = list(todo)
    for attempt in range(2):
        lost = []
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx,
                                 initializer=_warm_worker, initargs=(suite_ref,)) as pool:
            futures = {pool.submit(_grade_task, task): (name, task) for name, task in pending}
            for fut in as_completed(futures):
                name, task = futures[fut]
                try:
                    outcome = fut.result()
                except Exception as exc:      # BrokenProcessPool: a worker died with this task
                    if attempt == 0:
                        lost.append((name, task))
                        continue
                    outcome = failed(name, task, exc)
                record(name, outcome)
        if not lost:
            return
        pending = lost


def _run_dask(todo, scheduler, record, failed, suite_ref) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:                     # pragma: no cover
        raise ValueError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    try:
        client = Client(scheduler, timeout="20s")
    except Exception as exc:
        raise ValueError(f"could not connect to the Dask scheduler at {scheduler}: {_one_line(exc, 120)}") from None
    try:
        try:
            client.run(_warm_worker, suite_ref)        # each worker starts its judge now
        except Exception:
            pass
        futures = {}
        for name, task in todo:
            fut = client.submit(_grade_task, task, key=f"course-grade-{name}-{task[3]['hidden'][:12]}", pure=False,
                                retries=1)
            futures[fut] = (name, task)
        for fut in as_completed(list(futures)):
            name, task = futures[fut]
            try:
                outcome = fut.result()
            except Exception as exc:
                outcome = failed(name, task, exc)
            record(name, outcome)
    finally:
        client.close()


# ---------------------------------------------------------------------- command line
def _error(msg: str, code: int = 2) -> int:
    print(f"course: {msg}", file=sys.stderr)
    return code


def grade_command(args) -> int:
    """`course grade SUBMISSION... --assignment HW [--out DIR] [--workers N] [--scheduler ADDRESS]`."""
    try:           # the judge's imports (torch, course_lib) take seconds: start them first
        from autograder.judge import shared_judge
        shared_judge()
    except Exception:
        pass
    try:
        from autograder.suites import load_suite
        load_suite(args.assignment)
        collect_submissions(args.submissions)
        results = grade_batch(args.submissions, args.assignment, args.out, workers=int(args.workers or 1),
                              scheduler=getattr(args, "scheduler", None))
    except ValueError as exc:
        return _error(str(exc))
    print(report.format_table(results))
    print(f"\nresults in {args.out}/ (grades.csv, <submission>/results.json, feedback.md, feedback.html)")
    return 0


def _assignment_of(nb_path: Path, nb: dict) -> str:
    from autograder.suites import available_suites
    meta = (nb.get("metadata") or {}).get("course") or {}
    if isinstance(meta, dict) and meta.get("assignment"):
        return str(meta["assignment"])
    stem = nb_path.stem
    for name in available_suites():
        if stem == name or stem.startswith(name):
            return name
    raise ValueError(f"{nb_path}: cannot tell which assignment this is: pass --assignment HW")


def check_command(args) -> int:
    """`course check NOTEBOOK`: the public checks, on this machine, printed with expected vs got."""
    path = Path(args.notebook)
    if not path.is_file():
        return _error(f"{args.notebook}: no such file")
    try:
        nb_bytes = path.read_bytes()
        try:
            nb = json.loads(nb_bytes.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return _error(f"{args.notebook}: not a notebook (invalid JSON)")
        assignment = getattr(args, "assignment", None) or _assignment_of(path, nb)
        from autograder.suites import load_suite
        suite = load_suite(assignment)
    except ValueError as exc:
        return _error(str(exc))
    print(f"checking {path} against the public checks of {suite.name} ...", file=sys.stderr)
    seeds = submission_seeds(code_source(nb), load_salt())
    res = grade_one(nb_bytes, path.stem, suite, seeds, public_only=True)["results"]
    print(format_check(res))
    if res["extra_data"].get("error"):
        return 1
    return 0 if all(t["status"] == "passed" for t in res["tests"]) else 1


def format_check(res: dict) -> str:
    """The `course check` printout: each public check, PASS/FAIL, and expected vs got for failures."""
    lines = []
    ed = res.get("extra_data", {})
    if ed.get("error"):
        return f"could not check the notebook: {res['output']}"
    nbs = ed.get("notebook") or {}
    if nbs.get("reason"):
        lines.append(f"note: {nbs['reason']}")
    got = sum(t["score"] for t in res["tests"])
    total = sum(t["max_score"] for t in res["tests"])
    for t in res["tests"]:
        mark = "PASS" if t["status"] == "passed" else "FAIL"
        lines.append(f"{mark}  {t['name']}  ({t['score']:g} / {t['max_score']:g})")
        if t["status"] != "passed":
            lines += [f"      {ln}" for ln in t["output"].splitlines()[1:] or t["output"].splitlines()]
    lines.append(f"\npublic checks: {got:g} / {total:g} points "
                 f"(hidden checks, worth {100 - total:g} more, run only when graded)")
    return "\n".join(lines)
