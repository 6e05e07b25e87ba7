"""The supervisor of one sandboxed run: papermill executes the prepared notebook cell by cell, surviving hangs
and crashes, and exports what the grader reads.

This module runs inside the sandbox (the grader copies it into the run's read-only input folder as
``course_driver.py``) and imports only the standard library, nbformat, nbclient and papermill. Its folders
come from the sandbox's environment: ``COURSE_SANDBOX_INPUT`` (read-only: ``plan.json``, ``notebook.ipynb``,
the case inputs), ``COURSE_SANDBOX_RUN`` (the working folder, shared with the kernel) and
``COURSE_SANDBOX_OUT`` (the supervisor's own folder, which the grader reads afterwards). In a namespace
sandbox the kernel runs nested in PID, IPC and mount namespaces of its own (``plan["kernel_prefix"]``): it
can neither signal this process nor see ``OUT``, so the progress record, the kernel spec and the exported
outputs are out of its reach.

Fate of each graded function, whoever calls it: a student cell that hangs or kills the kernel is re-run on
the next attempt reduced to its imports and definitions (then left out), every attempt with a fresh budget
for the student's cells; harvest cells already done are left out; attempts go on while the run's wall-clock
budget lasts and each attempt leaves out something new. So a hang, ``os._exit``, ``kill(-1)`` or SIGSTOP in
one function costs that function, and every other function is still harvested.

Visible before hidden: the harvest cells of every function's visible cases come first; the hidden case
inputs sit in ``INPUT/hidden``, which the nested kernel cannot see, and are copied into its reach
(:func:`reveal`) one function at a time, when its hidden harvest cell is reached. From then on no student
text (an error message of a student cell re-run after a crash) is recorded, the fate of a student cell is
marked ``after_reveal`` (the grader reports none of it: which cell failed could encode hidden inputs), and
no visible record is exported.

Exported records: after each harvest cell, exactly the files that cell writes (:func:`record_names`), never
replacing one already exported, within a byte budget for the run. So a function cannot plant or rewrite
another function's records, nor fill the host's disk through the export.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import sys
import time

import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.utils import merge_kwargs, remove_args

try:                                # inside the sandbox: copied next to this module (run with -I, so put it
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # on the path by hand)
    import course_wire as wire
except ImportError:                 # in the grader's own tests
    from autograder import wire

INPUT = os.environ.get("COURSE_SANDBOX_INPUT", os.getcwd())
OUT = os.environ.get("COURSE_SANDBOX_OUT", os.getcwd())
RUN = os.environ.get("COURSE_SANDBOX_RUN", os.getcwd())
KERNEL_NAME = "course-sandbox"


class Fatal(Exception):
    """The kernel died or stopped answering during a cell."""


class Run:
    """One run's plan (``INPUT/plan.json``), its progress (``OUT/run.json``) and its deadline."""

    def __init__(self, plan: dict):
        self.plan = plan
        self.deadline = time.monotonic() + plan["wall_seconds"]
        self.progress = {"attempts": 0, "cells": {}, "finished": False, "events": [], "fatal": [], "replaced": {},
                         "completed": [], "hung": False}

    def save(self) -> None:
        path = os.path.join(OUT, "run.json")
        with open(path + ".tmp", "w") as fh:
            json.dump(self.progress, fh)
        os.replace(path + ".tmp", path)

    def left(self) -> float:
        return self.deadline - time.monotonic()


RUN_STATE: Run | None = None
#: The files of one function's case inputs (``<function>.npz`` and ``.json``, written by the grader).
CASE_FILES = (".npz", ".json")


def record_names(meta: dict) -> list:
    """The files the harvest cell ``meta`` writes under ``RUN/outputs`` (see ``course_harvest``): the group's
    status, then for each of its cases ``start.json``, ``value`` and ``json``. Nothing else is exported."""
    name, group, offset = meta["function"], int(meta.get("group", 0)), int(meta.get("offset", 0))
    names = [f"{name}.g{group}.status.json"]
    for i in range(offset, offset + int(meta.get("cases", 0))):
        names += [f"{name}.{i}.start.json", f"{name}.{i}.value", f"{name}.{i}.json"]
    return names


def prepare_harvest(run: Run, meta: dict) -> None:
    """Before the harvest cell ``meta`` runs: remove what sits under the names it writes (another function's
    plant), and for a hidden group reveal its function's inputs (a plant in the way of those: the cell finds
    no inputs and its function fails)."""
    for n in record_names(meta):
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(RUN, "outputs", n))
    if meta.get("group", 0) > 0:
        try:
            reveal(run, meta["group"], meta["function"])
        except OSError as exc:
            run.progress["events"].append(f"{meta['function']}: inputs not revealed: {exc}"[:300])


def export_outputs(run: Run, meta: dict) -> None:
    """Copy the records of one harvest cell (:func:`record_names`) from ``RUN/outputs`` to ``OUT/outputs``,
    where the kernel cannot reach them: regular files only, no links, at most ``max_output_bytes`` each and
    ``export_bytes`` over the whole run. A file already exported is never replaced, and a visible group's
    records are not exported once hidden inputs were revealed (the kernel that wrote them could read those).
    A no-op when the two folders are one."""
    plan = run.plan
    src, dst = os.path.join(RUN, "outputs"), os.path.join(OUT, "outputs")
    if os.path.realpath(src) == os.path.realpath(dst):
        return
    if int(meta.get("group", 0)) == 0 and run.progress.get("revealed"):
        run.progress["events"].append(f"{meta['function']}: visible records written after the reveal: not exported")
        return
    os.makedirs(dst, exist_ok=True)
    for n in record_names(meta):
        target = os.path.join(dst, n)
        if os.path.lexists(target):
            continue
        left = plan["export_bytes"] - run.progress.get("exported_bytes", 0)
        try:   # the grader's own reader: no links, regular files only, read to the end but never past the cap
            data = wire.read_untrusted(os.path.join(src, n), max(0, min(plan["max_output_bytes"], left)))
        except (wire.FormatError, OSError):
            continue
        if data is not None:
            wire.write_atomic(target, data)
            run.progress["exported_bytes"] = run.progress.get("exported_bytes", 0) + len(data)


class CourseClient(PapermillNotebookClient):
    """A notebook client that caps each cell's output and records each cell's fate in ``run.json``."""

    def output(self, outs, msg, display_id, cell_index):
        plan = RUN_STATE.plan
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._course_sizes.get(cell_index, 0)
        self._course_total = getattr(self, "_course_total", 0)
        if used + size > plan["cell_output_bytes"] or self._course_total + size > plan["notebook_output_bytes"]:
            if cell_index not in self._course_cut:
                self._course_cut.add(cell_index)
                outs.append(nbformat.v4.new_output("stream", name="stderr",
                                                   text="[further output of this cell was cut by the grader]\n"))
            return None
        self._course_sizes[cell_index] = used + size
        self._course_total += size
        return super().output(outs, msg, display_id, cell_index)

    def papermill_execute_cells(self):
        run = RUN_STATE
        plan, progress = run.plan, run.progress
        self._course_sizes, self._course_cut = {}, set()
        student_left = plan["notebook_seconds"]
        for index, cell in enumerate(self.nb.cells):
            meta = cell.metadata.get("course", {})
            role = meta.get("role", "parameters")
            key = cell_key(meta)
            if cell.cell_type != "code":
                continue
            if role == "harvest":
                timeout = meta["budget"] + plan["harvest_grace"]
            elif role == "helper":
                timeout = 30
            else:
                timeout = student_left
                if progress.get("hung") and key not in progress["completed"]:
                    # after a cell hung, a cell that never finished before gets a short leash: a second hang
                    # (another top-level call of the same looping function) costs seconds, not a whole budget
                    timeout = min(timeout, plan["retry_cell_seconds"])
            timeout = min(timeout, run.left() - 1)
            if timeout <= 0.5:
                progress["cells"][key] = {"role": role, "status": "skipped", "reason": "budget"}
                run.save()
                continue
            if role == "harvest":      # only for a cell that runs: a skipped one reveals nothing
                prepare_harvest(run, meta)
            self.timeout = max(1, int(math.ceil(timeout)))
            t = time.monotonic()
            rec = {"role": role, "status": "running"}
            if progress.get("revealed") and role in ("student", "parameters"):
                rec["after_reveal"] = True   # its fate may depend on hidden inputs: the grader does not report it
            progress["cells"][key] = rec
            run.save()
            fatal = None
            try:
                self.nb_man.cell_start(cell, index)
                self.execute_cell(cell, index)
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                if errors and progress.get("revealed") and role in ("student", "parameters"):
                    rec["status"] = "error"  # after hidden inputs reached the kernel, no student text leaves it
                elif errors:
                    rec.update(status="error", ename=str(errors[0].get("ename", ""))[:200],
                               evalue=" ".join(str(errors[0].get("evalue", "")).split())[:300])
                else:
                    rec["status"] = "ok"
            except CellTimeoutError:
                rec["status"] = fatal = "timeout"
            except DeadKernelError:
                rec["status"] = fatal = "dead"
            except Exception as exc:  # noqa: BLE001 - a broken message from the kernel is the kernel's fault
                rec.update(status="error", ename=type(exc).__name__, evalue=str(exc)[:300])
            finally:
                with contextlib.suppress(Exception):
                    self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)
            rec["seconds"] = round(time.monotonic() - t, 3)
            if role == "harvest":
                export_outputs(run, meta)
                if meta.get("group", 0) > 0:
                    conceal(meta["group"], meta["function"])
            if role in ("student", "parameters"):
                student_left -= rec["seconds"]
                if rec["status"] == "timeout" and student_left <= 1:
                    rec["reason"] = "budget"
                if rec["status"] in ("ok", "error"):
                    progress["completed"].append(key)
                elif rec["status"] == "timeout":
                    progress["hung"] = True
            if fatal:
                progress["fatal"].append({"cell": key, "role": role, "status": fatal,
                                          "reason": rec.get("reason", ""),
                                          "after_reveal": bool(rec.get("after_reveal"))})
            run.save()
            if fatal:
                raise Fatal(fatal)


class CourseEngine(NBClientEngine):
    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                 stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final = merge_kwargs(safe_kwargs, timeout=None, startup_timeout=start_timeout, kernel_name=kernel_name,
                             log_output=False, allow_errors=True, interrupt_on_timeout=False,
                             shutdown_kernel="immediate")
        return CourseClient(nb_man, **final).execute()


def cell_key(meta: dict) -> str:
    """The name of a cell in ``run.json``: ``c<index>`` (student), ``p`` (parameters), ``f:<function>:g<group>``
    (harvest) or ``_helper``."""
    role = meta.get("role", "parameters")
    if role == "student":
        return f"c{meta['index']}"
    if role == "harvest":
        return f"f:{meta['function']}:g{meta.get('group', 0)}"
    return "p" if role == "parameters" else "_helper"


def _cases_folder(group: int) -> int:
    """A descriptor of ``RUN/.cases-g<group>`` (created when absent; a link or file planted there is removed
    first), so that what is copied in cannot be redirected by a link the kernel swaps in."""
    path = os.path.join(RUN, f".cases-g{group}")
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
        os.unlink(path)
    os.makedirs(path, exist_ok=True)
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def reveal(run: Run, group: int, function: str) -> None:
    """Copy ``function``'s inputs of group ``group`` (``INPUT/hidden/g<group>/<function>.npz`` and ``.json``, out
    of the kernel's sight) to ``RUN/.cases-g<group>``, where its harvest cell reads them. Hidden inputs enter
    the kernel's reach only after every visible case has run, one function at a time: a function's hidden
    run never sees the hidden inputs of a function harvested after it, and :func:`conceal` removes its own
    when its cell is done. (What the student's code copied during its own run stays within its reach: a suite
    must not put one function's answer into another function's inputs on shared data.)"""
    if not run.progress.get("revealed"):
        run.progress["revealed"] = True
        run.save()
    folder = _cases_folder(group)
    try:
        for ext in CASE_FILES:
            name = function + ext
            with contextlib.suppress(OSError):  # a folder planted under that name stays, and the open fails
                os.unlink(name, dir_fd=folder)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=folder)
            with open(os.path.join(INPUT, "hidden", f"g{group}", name), "rb") as fin, open(fd, "wb") as fout:
                shutil.copyfileobj(fin, fout)
    finally:
        os.close(folder)


def conceal(group: int, function: str) -> None:
    """Remove what :func:`reveal` copied for ``function`` (what the kernel copied elsewhere stays its own)."""
    for ext in CASE_FILES:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(RUN, f".cases-g{group}", function + ext))


def write_kernelspec(prefix: list) -> None:
    """The kernel spec, in the supervisor's own folder: the kernel's command (nested in its own namespaces
    when ``prefix`` is given) cannot be rewritten by a kernel."""
    data = os.path.join(OUT, ".jupyter-data")
    d = os.path.join(data, "kernels", KERNEL_NAME)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "kernel.json"), "w") as fh:
        json.dump({"argv": [*prefix, sys.executable, "-I", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": "Python 3 (sandbox)", "language": "python"}, fh)
    os.environ["JUPYTER_DATA_DIR"] = data
    os.environ["JUPYTER_PATH"] = data


def variant(run: Run, original: str, path: str) -> bool:
    """Write the next attempt's notebook to ``path``: failed student cells reduced to their definitions (then
    left out), harvest cells already done left out. Returns False when nothing changed since the last attempt
    (another attempt would fail the same way)."""
    nb = nbformat.read(original, as_version=4)
    progress, rep = run.progress, run.progress["replaced"]
    before = json.dumps(rep, sort_keys=True)
    done_harvests = 0
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("course", {})
        role = meta.get("role")
        if role == "student":
            key = f"c{meta['index']}"
            rec = progress["cells"].get(key)
            if rec and rec["status"] in ("timeout", "dead"):
                if rep.get(key) == "defs" or not meta.get("defs_only"):
                    rep[key] = "skip"   # even its definitions hang or kill the kernel: leave it out
                else:
                    rep[key] = "defs"   # keep its imports and definitions, drop its other statements
            if rep.get(key) == "skip":
                continue
            if rep.get(key) == "defs":
                cell.source = meta["defs_only"]
        elif role == "harvest":
            rec = progress["cells"].get(cell_key(meta))
            if rec and rec["status"] not in ("running", "skipped"):
                done_harvests += 1
                continue
        cells.append(cell)
    nb.cells = cells
    nbformat.write(nb, path)
    changed = json.dumps(rep, sort_keys=True) != before
    progress.setdefault("_harvested", 0)
    new_harvests = done_harvests > progress["_harvested"]
    progress["_harvested"] = done_harvests
    return changed or new_harvests


def clear_leftovers() -> None:
    """SIGKILL every other process this supervisor may signal (what the last kernel left: a fork bomb,
    daemons). Only where the run has processes of its own (a private uid or a PID namespace)."""
    for _ in range(200):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:  # ProcessLookupError: none left
            return
        time.sleep(0.01)


def main() -> int:
    global RUN_STATE
    with open(os.path.join(INPUT, "plan.json")) as fh:
        plan = json.load(fh)
    run = RUN_STATE = Run(plan)
    papermill_engines.register("course", CourseEngine)
    write_kernelspec(list(plan.get("kernel_prefix") or []))
    attempt_path = os.path.join(OUT, "attempt.ipynb")
    executed = os.path.join(OUT, "executed.ipynb")
    for attempt in range(plan["max_attempts"]):
        if run.left() < 3:
            run.progress["events"].append("no time left for another attempt")
            break
        if attempt and plan.get("clear_between_attempts"):
            clear_leftovers()
        for d in ("outputs", "tmp", ".ipython", ".jupyter", os.environ.get("JUPYTER_RUNTIME_DIR", "rt")):
            os.makedirs(os.path.join(RUN, d), exist_ok=True)  # the notebook may have deleted its own folders
        if not variant(run, os.path.join(INPUT, "notebook.ipynb"), attempt_path) and attempt:
            run.progress["events"].append(f"attempt {attempt + 1}: nothing left to change")
            break
        run.progress["attempts"] = attempt + 1
        run.save()
        try:
            papermill.execute_notebook(attempt_path, executed, parameters=plan["parameters"],
                                       kernel_name=KERNEL_NAME, engine_name="course", progress_bar=False,
                                       log_output=False, start_timeout=int(min(60, max(5, run.left()))), cwd=RUN)
            run.progress["finished"] = True
        except Fatal as exc:
            run.progress["events"].append(f"attempt {attempt + 1}: kernel {exc}")
            run.save()
            continue
        except Exception as exc:  # noqa: BLE001 - papermill's own errors, a kernel that would not start
            if type(exc).__name__ == "PapermillExecutionError":
                run.progress["finished"] = True
            else:
                run.progress["events"].append(f"attempt {attempt + 1}: {type(exc).__name__}: {str(exc)[:300]}")
                running = [r for r in run.progress["cells"].values() if r.get("status") == "running"]
                for r in running:
                    r["status"] = "dead"
                run.save()
                if running:
                    continue
        break
    run.progress.pop("_harvested", None)
    run.save()
    with contextlib.suppress(OSError):
        shutil.rmtree(os.path.join(OUT, ".jupyter-data"))
    print("driver finished after", run.progress["attempts"], "attempt(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
