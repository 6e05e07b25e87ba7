"""Execute a submission in the sandbox and harvest what its graded functions return.

How one submission runs
-----------------------
1. A fresh folder under the system's temporary directory (root-owned, mode 0711) holds ``input/``: the
   prepared notebook, the driver, and the case inputs, ``cases/<function>.npz`` (arrays, loaded with
   ``allow_pickle=False``) and ``cases/<function>.json`` (argument names and plain values), readable but not
   writable by the run; and ``run/``, the run's own working folder. Nothing else of the grader is there.
2. After the student's cells come a helper cell and one *harvest cell per graded function*. A harvest cell
   forks the kernel: the child calls the function on each case and writes ``outputs/<function>.<i>.npz``
   (data only) with a small JSON beside it; the parent (still the kernel) kills the child's process group
   when the function's time budget is spent. A hang, ``sys.exit``, ``os._exit``, a segfault or a memory
   bomb thus costs that function only, and the kernel stays healthy for the next one. Forking costs a few
   milliseconds; a fresh kernel would cost seconds.
3. papermill runs that notebook inside :func:`autograder.sandbox.run_sandboxed` with a small driver: a
   papermill engine that executes cell by cell, stops a cell that outlives the notebook's budget, keeps
   cell outputs small (floods are cut), and writes its progress to ``run.json``. If a cell hangs without
   answering interrupts or kills the kernel, the driver starts a new kernel and runs the notebook again,
   that cell reduced to its imports and definitions (then skipped), harvest cells already done left out.
4. Back in the grader, nothing the sandbox wrote is trusted: files are opened without following links, size
   capped, arrays loaded with ``allow_pickle=False`` and must be numeric (no object arrays), JSON is
   validated. The clean result is written again by the grader to ``workdir/outputs/<function>.npz/.json``
   (read back with :func:`load_outputs`).

Nothing printed by the notebook is ever parsed for a score.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autograder.sandbox import Limits, SandboxError, privileged, run_sandboxed

__all__ = ["CaseResult", "FunctionResult", "ExecutionResult", "execute_submission", "load_outputs",
           "write_cases", "build_notebook", "FUNCTION_STATUSES", "MAX_OUTPUT_ELEMENTS"]

#: Per-function statuses.
FUNCTION_STATUSES = ("ok", "error", "timeout", "missing", "not_run")
#: Largest number of numbers one case's output may hold.
MAX_OUTPUT_ELEMENTS = 20_000_000
#: Largest JSON file read back from the sandbox.
_MAX_JSON_BYTES = 1 << 20
#: Extra seconds a harvest cell gets over its function's budget (fork, writing outputs).
_HARVEST_GRACE_S = 5.0
_KINDS = "biufc"  # bool, int, unsigned, float, complex


# ============================================================================================ results
@dataclass
class CaseResult:
    """One call of a graded function: status "ok" | "error" | "timeout" | "not_run", its message."""

    status: str
    message: str = ""
    seconds: float = 0.0


@dataclass
class FunctionResult:
    """What happened to one graded function.

    Attributes
    ----------
    status : "ok" | "error" | "timeout" | "missing" | "not_run"
        "error" when any case raised or returned something that is not plain numeric data.
    message : str
        One line for the student ("" when ok).
    outputs_path : Path or None
        ``workdir/outputs/<function>.npz`` written by the grader (read it with :func:`load_outputs`).
    seconds : float
        Wall-clock seconds the function took over all its cases.
    cases : list of CaseResult
        One per case, aligned with the cases passed in.
    outputs : list
        The outputs as data (NumPy arrays, Python scalars, tuples/dicts of those, or None), one per case.
    """

    status: str
    message: str = ""
    outputs_path: Path | None = None
    seconds: float = 0.0
    cases: list = field(default_factory=list)
    outputs: list = field(default_factory=list)


@dataclass
class ExecutionResult:
    """The notebook-level outcome plus one FunctionResult per graded function.

    ``status`` is "ok", "error" (a student cell raised), "timeout" (the notebook's own cells or the whole
    run ran out of time) or "crashed" (the kernel died or stopped answering; the run was resumed without
    the offending cell). ``reason`` is one line for the student.
    """

    status: str
    reason: str | None
    duration: float
    stdout_tail: str
    functions: dict
    notebook_path: Path | None = None
    attempts: int = 0
    cells: list = field(default_factory=list)
    sandbox: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "status": self.status, "reason": self.reason, "duration": round(self.duration, 3),
            "attempts": self.attempts, "stdout_tail": self.stdout_tail, "sandbox": self.sandbox,
            "functions": {name: {"status": f.status, "message": f.message, "seconds": round(f.seconds, 4),
                                 "outputs_path": str(f.outputs_path) if f.outputs_path else None,
                                 "cases": [vars(c) for c in f.cases]}
                          for name, f in self.functions.items()},
        }


# ============================================================================================ case inputs
def _is_tensor(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def write_cases(directory, cases) -> None:
    """Write ``{function: [case dict]}`` as ``directory/<function>.npz`` + ``.json`` (no pickles).

    Arrays (and torch tensors, which the harvest turns back into tensors) go to the npz; ints, floats,
    bools, strings and None go to the JSON; keys starting with "_" are the judge's and are left out.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for fname, case_list in cases.items():
        arrays, spec = {}, []
        for i, case in enumerate(case_list):
            entry = {}
            for key, value in case.items():
                if str(key).startswith("_"):
                    continue
                torch_in = _is_tensor(value)
                if torch_in:
                    value = value.detach().cpu().numpy()
                if isinstance(value, np.generic):
                    value = value.item()
                if isinstance(value, np.ndarray):
                    if value.dtype.kind not in _KINDS:
                        raise ValueError(f"case {i} of {fname}: argument {key} has dtype {value.dtype}; "
                                         f"case inputs must be numeric arrays")
                    k = f"a{len(arrays)}"
                    arrays[k] = value
                    entry[key] = {"kind": "array", "key": k, "torch": torch_in}
                elif value is None or isinstance(value, (bool, int, float, str)):
                    entry[key] = {"kind": "value", "value": value}
                elif isinstance(value, (list, tuple)):
                    arr = np.asarray(value)
                    if arr.dtype.kind not in _KINDS:
                        raise ValueError(f"case {i} of {fname}: argument {key} is not numeric")
                    k = f"a{len(arrays)}"
                    arrays[k] = arr
                    entry[key] = {"kind": "array", "key": k, "torch": False, "list": True}
                else:
                    raise ValueError(f"case {i} of {fname}: argument {key} is a {type(value).__name__}; "
                                     f"use arrays, numbers, strings or None")
            spec.append(entry)
        np.savez(directory / f"{fname}.npz", **arrays)
        (directory / f"{fname}.json").write_text(json.dumps({"function": fname, "cases": spec}))


# ============================================================================================ the notebook
_HELPER = r'''
def __course_harvest__(name, budget, ncases, memory_mib, cases_dir, probe=""):
    """Grader's harvest: run `name` on its cases in a forked child, kill it after `budget` seconds."""
    import json as _json, os as _os, select as _select, signal as _signal, time as _time
    t0 = _time.monotonic()
    _os.makedirs("outputs", exist_ok=True)
    def status(**kw):
        kw["seconds"] = round(_time.monotonic() - t0, 4)
        tmp = f"outputs/.{name}.status.tmp"
        with open(tmp, "w") as fh:
            _json.dump(kw, fh)
        _os.replace(tmp, f"outputs/{name}.status.json")
    def clear_group(pgid):
        # SIGKILL the function's process group until it is empty. Orphans come back to the kernel (a child
        # subreaper), which reaps them: a fork bomb's zombies would otherwise hold the process limit.
        for _ in range(1000):
            try:
                _os.killpg(pgid, _signal.SIGKILL)
            except OSError:
                return
            while True:
                try:
                    done, _ = _os.waitpid(-1, _os.WNOHANG)
                except ChildProcessError:
                    break
                if done == 0:
                    break
            _time.sleep(0.002)
    with __import__("contextlib").suppress(Exception):
        import ctypes as _ctypes
        _ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    fn = globals().get(name)
    if fn is None:
        return status(status="missing", message=f"no function named {name} was defined when the notebook ran")
    if not callable(fn):
        return status(status="missing", message=f"{name} is a {type(fn).__name__}, not a function")
    try:
        pid = _os.fork()
    except OSError as exc:
        return status(status="error", message=f"could not start {name}: {exc}")
    if pid == 0:
        code = 0
        try:
            __course_child__(name, fn, memory_mib, cases_dir, probe)
        except BaseException:
            code = 70
        finally:
            _os._exit(code)
    with __import__("contextlib").suppress(OSError):
        _os.setpgid(pid, pid)
    try:
        pidfd = _os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    deadline = t0 + budget
    timed_out = False
    while True:
        done, wstatus = _os.waitpid(pid, _os.WNOHANG)
        if done == pid:
            break
        left = deadline - _time.monotonic()
        if left <= 0:
            timed_out = True
            for kill in (lambda: _os.killpg(pid, _signal.SIGKILL), lambda: _os.kill(pid, _signal.SIGKILL)):
                with __import__("contextlib").suppress(OSError):
                    kill()
            _, wstatus = _os.waitpid(pid, 0)
            break
        if pidfd is not None:
            _select.select([pidfd], [], [], min(left, 0.5))
        else:
            _time.sleep(min(left, 0.005))
    if pidfd is not None:
        _os.close(pidfd)
    clear_group(pid)  # what the function left running
    finished = _os.path.exists(f"outputs/{name}.done")
    if timed_out:
        return status(status="timeout", budget=budget)
    code = _os.waitstatus_to_exitcode(wstatus)
    if finished and code == 0:
        return status(status="ok")
    return status(status="crashed", exitcode=code)


def __course_child__(name, fn, memory_mib, cases_dir, probe=""):
    import json as _json, os as _os, signal as _signal, sys as _sys, time as _time, traceback as _tb
    _os.setpgid(0, 0)
    null = _os.open(_os.devnull, _os.O_RDWR)
    for fd in (0, 1, 2):
        _os.dup2(null, fd)
    _sys.stdout = _sys.stderr = open(_os.devnull, "w")
    for sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGALRM, _signal.SIGCHLD):
        _signal.signal(sig, _signal.SIG_DFL)
    import numpy as _np
    spec = _json.load(open(f"{cases_dir}/{name}.json"))["cases"]
    arrays = _np.load(f"{cases_dir}/{name}.npz", allow_pickle=False)

    class OutputError(Exception):
        pass

    def to_data(out, data, depth=0):
        if depth > 3:
            raise OutputError("returned values nested more than 3 levels deep")
        if type(out).__module__.split(".")[0] == "torch" and hasattr(out, "detach"):
            t = out.detach().cpu()
            if str(t.dtype) in ("torch.bfloat16",):
                t = t.float()
            out = t.numpy()
            if out.ndim == 0:
                out = out[()]
        if out is None:
            return {"kind": "none"}
        if isinstance(out, (bool, int, float, complex, _np.generic)) and not isinstance(out, (str, bytes)):
            arr = _np.asarray(out)
            if arr.dtype.kind not in "biufc":
                raise OutputError(f"returned a {type(out).__name__}; return numbers")
            key = f"o{len(data)}"
            data[key] = arr
            return {"kind": "scalar", "key": key, "type": {"b": "bool", "i": "int", "u": "int", "f": "float",
                                                             "c": "complex"}[arr.dtype.kind]}
        if isinstance(out, _np.ndarray):
            if out.dtype.kind not in "biufc":
                raise OutputError(f"returned an array of dtype {out.dtype}; return a numeric array")
            key = f"o{len(data)}"
            data[key] = _np.ascontiguousarray(out)
            return {"kind": "array", "key": key}
        if isinstance(out, tuple):
            return {"kind": "tuple", "items": [to_data(x, data, depth + 1) for x in out]}
        if isinstance(out, list):
            try:
                arr = _np.asarray([x.detach().cpu().numpy() if hasattr(x, "detach") else x for x in out])
            except Exception:
                arr = None
            if arr is not None and arr.dtype.kind in "biufc":
                key = f"o{len(data)}"
                data[key] = arr
                return {"kind": "array", "key": key}
            return {"kind": "tuple", "items": [to_data(x, data, depth + 1) for x in out]}
        if isinstance(out, dict):
            return {"kind": "dict", "items": {str(k): to_data(v, data, depth + 1) for k, v in out.items()}}
        raise OutputError(f"returned a {type(out).__module__}.{type(out).__name__}; return a NumPy array, a "
                          f"tensor, a number, or a tuple of those")

    def describe(exc):
        if isinstance(exc, SystemExit):
            return f"{name} called sys.exit({exc.code!r}); a graded function must return its result"
        if isinstance(exc, MemoryError):
            return f"{name} ran out of memory (the grader allows {memory_mib} MiB)"
        if isinstance(exc, OutputError):
            return f"{name} {exc}"
        frames = [f for f in _tb.extract_tb(exc.__traceback__) if f.name != "__course_child__"]
        where = f" (in {frames[-1].name}, line {frames[-1].lineno})" if frames else ""
        text = " ".join(str(exc).split())[:300]
        return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"

    def write_json(path, obj):
        with open(path + ".tmp", "w") as fh:
            _json.dump(obj, fh)
        _os.replace(path + ".tmp", path)

    for i, case in enumerate(spec):
        t = _time.monotonic()
        _os.makedirs("outputs", exist_ok=True)
        write_json(f"outputs/{name}.{i}.start.json", {"case": i})
        try:
            kwargs, probe_kwargs = {}, {}
            for key, v in case.items():
                if v["kind"] == "array":
                    a = _np.array(arrays[v["key"]])
                    if v.get("torch"):
                        import torch as _torch
                        a = _torch.from_numpy(a)
                else:
                    a = v["value"]
                if key.startswith("probe_"):
                    probe_kwargs[key[len("probe_"):]] = a
                else:
                    kwargs[key] = a
            out = fn(**kwargs)
            if probe:
                scope = {}
                exec(probe, scope)
                out = scope["probe"](out, **probe_kwargs)
            data = {}
            struct = to_data(out, data)
            with open(f"outputs/{name}.{i}.npz.tmp", "wb") as fh:
                _np.savez(fh, **data)
            _os.replace(f"outputs/{name}.{i}.npz.tmp", f"outputs/{name}.{i}.npz")
            meta = {"status": "ok", "structure": struct}
        except BaseException as exc:
            meta = {"status": "error", "message": describe(exc)}
        meta["seconds"] = round(_time.monotonic() - t, 4)
        write_json(f"outputs/{name}.{i}.json", meta)
    open(f"outputs/{name}.done", "w").close()
'''


def build_notebook(nb, functions: dict, ncases: dict, memory_mib: int, cases_dir: str = "cases",
                   probes: dict | None = None):
    """The notebook the sandbox runs: the student's cells (tagged with their index, outputs stripped) +
    the helper cell + one harvest cell per function (``functions``: name -> budget in seconds;
    ``probes``: name -> source of the probe run on what that function returns, see ``Function.probe``)."""
    import nbformat

    from autograder.static_check import definitions_only

    nb = nbformat.from_dict(json.loads(json.dumps(nb)))  # a deep copy
    for i, cell in enumerate(nb.cells):
        meta = cell.setdefault("metadata", {})
        meta.pop("course", None)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            src = cell.get("source", "")
            meta["course"] = {"role": "student", "index": i, "defs_only": definitions_only(src)}
    helper = nbformat.v4.new_code_cell(_HELPER.strip())
    helper.metadata["course"] = {"role": "helper"}
    nb.cells.append(helper)
    for name, budget in functions.items():
        cell = nbformat.v4.new_code_cell(
            f"__course_harvest__({name!r}, {float(budget)!r}, {int(ncases.get(name, 0))}, {int(memory_mib)}, "
            f"{str(cases_dir)!r}, {(probes or {}).get(name, '')!r})")
        cell.metadata["course"] = {"role": "harvest", "function": name, "budget": float(budget)}
        nb.cells.append(cell)
    return nb


# ============================================================================================ the driver
_DRIVER = r'''
"""Sandbox side: run the prepared notebook with papermill, cell by cell, surviving hangs and crashes."""
import json, math, os, sys, time, traceback

import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.utils import merge_kwargs, remove_args

HERE = os.path.dirname(os.path.abspath(__file__))
plan = json.load(open(os.path.join(HERE, "plan.json")))
T0 = time.monotonic()
DEADLINE = T0 + plan["wall_seconds"]
progress = {"attempts": 0, "cells": {}, "finished": False, "events": [], "fatal": [], "replaced": {}}


def save_progress():
    with open("run.json.tmp", "w") as fh:
        json.dump(progress, fh)
    os.replace("run.json.tmp", "run.json")


class Fatal(Exception):
    pass


class CourseClient(PapermillNotebookClient):
    def output(self, outs, msg, display_id, cell_index):
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
        self._course_sizes, self._course_cut = {}, set()
        student_left = plan["notebook_seconds"]
        for index, cell in enumerate(self.nb.cells):
            meta = cell.metadata.get("course", {})
            role = meta.get("role", "parameters")
            key = (f"c{meta['index']}" if role == "student" else "p" if role == "parameters"
                   else f"f:{meta['function']}" if role == "harvest" else "_helper")
            if cell.cell_type != "code":
                continue
            wall_left = DEADLINE - time.monotonic()
            if role == "harvest":
                timeout = meta["budget"] + plan["harvest_grace"]
            elif role == "helper":
                timeout = 30
            else:
                timeout = student_left
            timeout = min(timeout, wall_left - 1)
            if timeout <= 0.5:
                rec = {"role": role, "status": "skipped", "reason": "budget"}
                progress["cells"][key] = rec
                save_progress()
                continue
            self.timeout = max(1, int(math.ceil(timeout)))
            t = time.monotonic()
            rec = {"role": role, "status": "running"}
            progress["cells"][key] = rec
            save_progress()
            fatal = None
            try:
                self.nb_man.cell_start(cell, index)
                self.execute_cell(cell, index)
                errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                if errors:
                    rec.update(status="error", ename=str(errors[0].get("ename", ""))[:200],
                               evalue=" ".join(str(errors[0].get("evalue", "")).split())[:300])
                else:
                    rec["status"] = "ok"
            except CellTimeoutError:
                rec["status"] = fatal = "timeout"
            except DeadKernelError:
                rec["status"] = fatal = "dead"
            except Exception as exc:
                rec.update(status="error", ename=type(exc).__name__, evalue=str(exc)[:300])
            finally:
                with __import__("contextlib").suppress(Exception):
                    self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)
            rec["seconds"] = round(time.monotonic() - t, 3)
            if role in ("student", "parameters"):
                student_left -= rec["seconds"]
                if rec["status"] == "timeout" and student_left <= 1:
                    rec["reason"] = "budget"
            if fatal:
                progress["fatal"].append({"cell": key, "role": role, "status": fatal,
                                          "reason": rec.get("reason", "")})
            save_progress()
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


papermill_engines.register("course", CourseEngine)


def kernelspec():
    d = os.path.join(os.environ["JUPYTER_DATA_DIR"], "kernels", "course-sandbox")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "kernel.json"), "w") as fh:
        json.dump({"argv": [sys.executable, "-I", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": "Python 3 (sandbox)", "language": "python"}, fh)


def variant(original):
    nb = nbformat.read(original, as_version=4)
    rep = progress["replaced"]
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("course", {})
        role = meta.get("role")
        if role == "student":
            key = f"c{meta['index']}"
            rec = progress["cells"].get(key)
            if rec and rec["status"] in ("timeout", "dead"):
                if rec.get("reason") == "budget" or rep.get(key) == "defs" or not meta.get("defs_only"):
                    rep[key] = "skip"   # ran out of time, or even its definitions hang: leave it out
                else:
                    rep[key] = "defs"   # keep its imports and definitions, drop its other statements
            if rep.get(key) == "skip":
                continue
            if rep.get(key) == "defs":
                cell.source = meta["defs_only"]
        elif role == "harvest":
            rec = progress["cells"].get(f"f:{meta['function']}")
            if rec and rec["status"] not in ("running", "skipped"):
                continue
        cells.append(cell)
    nb.cells = cells
    nbformat.write(nb, "attempt.ipynb")


for attempt in range(plan["max_attempts"]):
    if DEADLINE - time.monotonic() < 3:
        progress["events"].append("no time left for another attempt")
        break
    progress["attempts"] = attempt + 1
    if attempt and plan.get("private_user"):
        # a private user runs only this driver and its kernel: clear whatever the last kernel left (a fork
        # bomb, daemons); kill(-1) reaches every process of this uid except the driver itself. A fork bomb
        # keeps forking while the signals go out, so repeat until nothing of this uid is left.
        for _ in range(200):
            try:
                os.kill(-1, 9)
            except OSError:  # ProcessLookupError: none left
                break
            time.sleep(0.01)
    for d in ("outputs", "tmp", ".ipython", ".jupyter", os.environ.get("JUPYTER_RUNTIME_DIR", "rt")):
        os.makedirs(d, exist_ok=True)  # the notebook may have deleted its own folders
    kernelspec()
    variant(os.path.join(HERE, "notebook.ipynb"))
    save_progress()
    try:
        papermill.execute_notebook("attempt.ipynb", "executed.ipynb", parameters=plan["parameters"],
                                   kernel_name="course-sandbox", engine_name="course", progress_bar=False,
                                   log_output=False, start_timeout=int(min(60, max(5, DEADLINE - time.monotonic()))),
                                   cwd=os.getcwd())
        progress["finished"] = True
    except Fatal as exc:
        progress["events"].append(f"attempt {attempt + 1}: kernel {exc}")
        save_progress()
        continue
    except Exception as exc:
        if type(exc).__name__ == "PapermillExecutionError":
            progress["finished"] = True
        else:
            progress["events"].append(f"attempt {attempt + 1}: {type(exc).__name__}: {str(exc)[:300]}")
            if any(r.get("status") == "running" for r in progress["cells"].values()):
                for r in progress["cells"].values():
                    if r.get("status") == "running":
                        r["status"] = "dead"
                save_progress()
                continue
    break
save_progress()
print("driver finished after", progress["attempts"], "attempt(s)")
'''


# ============================================================================================ reading back
def _read_untrusted(path: Path, max_bytes: int) -> bytes | None:
    """Bytes of a regular file written by the sandbox, None if it is absent.

    Opened without following links and without blocking (a FIFO cannot stall the grader); raises _Unfit
    for anything that is not a regular file or is larger than ``max_bytes``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Unfit("the output is not a regular file (a link or something else)") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Unfit("the output is not a regular file")
        if st.st_size > max_bytes:
            raise _Unfit(f"the output file is larger than {max_bytes} bytes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(max_bytes + 1)
    finally:
        os.close(fd)


def _read_json(path: Path):
    try:
        raw = _read_untrusted(path, _MAX_JSON_BYTES)
    except _Unfit:
        return None
    if not raw:
        return None
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


class _Unfit(Exception):
    pass


def _rebuild(struct, arrays, depth=0):
    if not isinstance(struct, dict) or depth > 4:
        raise _Unfit("malformed output description")
    kind = struct.get("kind")
    if kind == "none":
        return None
    if kind in ("array", "scalar"):
        key = struct.get("key")
        if not isinstance(key, str) or key not in arrays:
            raise _Unfit("output description refers to a missing array")
        arr = arrays[key]
        if kind == "array":
            return arr
        if arr.ndim != 0:
            raise _Unfit("a scalar output is not 0-dimensional")
        return {"bool": bool, "int": int, "float": float, "complex": complex}.get(struct.get("type"), float)(arr.item())
    if kind == "tuple":
        items = struct.get("items")
        if not isinstance(items, list) or len(items) > 1000:
            raise _Unfit("malformed tuple output")
        return tuple(_rebuild(s, arrays, depth + 1) for s in items)
    if kind == "dict":
        items = struct.get("items")
        if not isinstance(items, dict) or len(items) > 1000:
            raise _Unfit("malformed dict output")
        return {str(k): _rebuild(s, arrays, depth + 1) for k, s in items.items()}
    raise _Unfit(f"unknown output kind {kind!r}")


def _load_npz_bytes(raw: bytes) -> dict:
    """Arrays of an npz given as bytes: data only (allow_pickle=False), numeric, size-capped."""
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            arrays = {}
            total = 0
            for key in z.files:
                if len(arrays) >= 1000:
                    raise _Unfit("too many arrays")
                arr = z[key]
                if not isinstance(arr, np.ndarray) or arr.dtype.kind not in _KINDS or arr.dtype.hasobject:
                    raise _Unfit(f"an output array has dtype {getattr(arr, 'dtype', '?')}")
                total += arr.size
                if total > MAX_OUTPUT_ELEMENTS:
                    raise _Unfit(f"the output has more than {MAX_OUTPUT_ELEMENTS} numbers")
                arrays[key] = arr
            return arrays
    except _Unfit:
        raise
    except Exception as exc:  # ValueError for pickles / object arrays, BadZipFile, ...
        raise _Unfit(f"the output file is not plain numeric data ({type(exc).__name__})") from None


def _harvest(rundir: Path, name: str, ncases: int, budget: float, cells: dict, run_reason: str | None,
             file_cap: int) -> FunctionResult:
    out_dir = rundir / "outputs"
    st = _read_json(out_dir / f"{name}.status.json") or {}
    fstatus = st.get("status") if isinstance(st.get("status"), str) else None
    seconds = st.get("seconds") if isinstance(st.get("seconds"), (int, float)) else 0.0
    cell = cells.get(f"f:{name}") if isinstance(cells.get(f"f:{name}"), dict) else {}
    res = FunctionResult(status="ok", seconds=float(seconds))
    if fstatus == "missing":
        msg = str(st.get("message", f"no function named {name} was defined"))
        return FunctionResult("missing", " ".join(msg.split())[:300], None, 0.0,
                              [CaseResult("not_run", msg) for _ in range(ncases)], [None] * ncases)
    if fstatus is None:
        cs = cell.get("status")
        if cs == "timeout":
            why = f"{name} did not return within its {budget:g} s budget and the kernel stopped responding"
            status = "timeout"
        elif cs == "dead" or cs == "running":
            why, status = f"the kernel died while {name} ran", "error"
        elif cs == "error":
            why = f"the grader could not call {name}: {cell.get('ename', '')}: {cell.get('evalue', '')}"
            status = "error"
        else:
            why = f"{name} was not run: {run_reason or 'the notebook stopped before it'}"
            status = "not_run"
        return FunctionResult(status, why[:400], None, float(cell.get("seconds", 0.0) or 0.0),
                              [CaseResult("not_run", why) for _ in range(ncases)], [None] * ncases)
    first_error = None
    for i in range(ncases):
        meta = _read_json(out_dir / f"{name}.{i}.json")
        started = (out_dir / f"{name}.{i}.start.json").exists()
        if meta is None:
            if fstatus == "timeout" and started:
                cr = CaseResult("timeout", f"{name} did not return within its {budget:g} s budget")
            elif fstatus == "timeout":
                cr = CaseResult("timeout", f"not run: {name} used up its {budget:g} s budget on earlier cases")
            elif fstatus == "crashed" and started:
                code = st.get("exitcode")
                from autograder.sandbox import describe_exit
                how = describe_exit(int(code)) if isinstance(code, int) else "an unknown reason"
                if isinstance(code, int) and code >= 0:
                    how = f"it ended the Python process (os._exit({code}) or similar, {how})"
                else:
                    how = f"the process was {how}"
                cr = CaseResult("error", f"{name} did not return: {how}")
            else:
                cr = CaseResult("not_run", f"{name} stopped before this case")
            res.cases.append(cr)
            res.outputs.append(None)
        else:
            secs = meta.get("seconds") if isinstance(meta.get("seconds"), (int, float)) else 0.0
            if meta.get("status") == "ok":
                try:
                    raw = _read_untrusted(out_dir / f"{name}.{i}.npz", file_cap)
                    if not raw:
                        raise _Unfit("the output file is missing")
                    value = _rebuild(meta.get("structure"), _load_npz_bytes(raw))
                    res.cases.append(CaseResult("ok", "", float(secs)))
                    res.outputs.append(value)
                except _Unfit as exc:
                    res.cases.append(CaseResult("error", f"{name}'s output was rejected: {exc}", float(secs)))
                    res.outputs.append(None)
            else:
                msg = " ".join(str(meta.get("message", "raised an error")).split())[:400]
                res.cases.append(CaseResult("error", msg, float(secs)))
                res.outputs.append(None)
        if first_error is None and res.cases[-1].status != "ok":
            first_error = (i, res.cases[-1])
    if fstatus == "timeout":
        res.status = "timeout"
    elif first_error is not None:
        res.status = "error" if first_error[1].status in ("error", "not_run") else first_error[1].status
    if first_error is not None:
        i, cr = first_error
        res.message = (cr.message if ncases == 1 else f"case {i + 1} of {ncases}: {cr.message}")[:400]
    return res


def _write_clean(workdir: Path, name: str, res: FunctionResult) -> Path:
    """Re-write the validated outputs, by the grader, as workdir/outputs/<name>.npz + .json."""
    out_dir = workdir / "outputs"
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays, structs = {}, []

    def flat(value, depth=0):
        if value is None:
            return {"kind": "none"}
        if isinstance(value, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = value
            return {"kind": "array", "key": key}
        if isinstance(value, (bool, int, float, complex)):
            key = f"a{len(arrays)}"
            arrays[key] = np.asarray(value)
            return {"kind": "scalar", "key": key, "type": type(value).__name__}
        if isinstance(value, tuple):
            return {"kind": "tuple", "items": [flat(v, depth + 1) for v in value]}
        if isinstance(value, dict):
            return {"kind": "dict", "items": {k: flat(v, depth + 1) for k, v in value.items()}}
        raise TypeError(type(value))

    for value in res.outputs:
        structs.append(flat(value))
    path = out_dir / f"{name}.npz"
    tmp = out_dir / f".{name}.npz.tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
    meta = {"function": name, "status": res.status, "message": res.message, "seconds": res.seconds,
            "cases": [vars(c) for c in res.cases], "structure": structs}
    tmp = out_dir / f".{name}.json.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, out_dir / f"{name}.json")
    return path


def load_outputs(outputs_path) -> list:
    """The per-case outputs saved by the grader at ``outputs_path`` (``.../outputs/<function>.npz``).

    Returns a list aligned with the function's cases: a NumPy array, a Python scalar, a tuple/dict of those,
    or None where the case produced no output. Loads with ``allow_pickle=False``.
    """
    path = Path(outputs_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return [_rebuild(s, arrays) for s in meta["structure"]]


# ============================================================================================ entry point
def _project_paths(suite) -> list:
    import sys
    paths = [Path(__file__).resolve().parents[1], Path(sys.prefix)]
    src = getattr(suite, "source", None)
    if src:
        paths.append(Path(src).resolve().parent)
    return paths


def execute_submission(notebook_path, suite, cases, workdir, limits: Limits | None = None, *,
                       function_budget_s: float | None = None, notebook_budget_s: float | None = None,
                       max_attempts: int = 3, keep_rundir: bool = False, protect=()) -> ExecutionResult:
    """Run a submission in the sandbox and harvest its graded functions' outputs on ``cases``.

    Parameters
    ----------
    notebook_path : path
        The student's notebook (never modified).
    suite : autograder.suite.Suite
        Gives ``functions`` (names and ``time_budget_s``), ``parameters`` and ``notebook_timeout_s``.
    cases : dict function -> list of case dict
        Keyword arguments for each call; keys starting with "_" are not passed (nor copied to the sandbox).
        Functions without cases are not harvested (status "not_run").
    workdir : path
        A grader-owned folder receiving ``outputs/`` (clean, validated copies) and ``executed.ipynb``.
    limits : Limits
        ``limits.wall_seconds`` caps the whole run (kernel starts, the notebook, every harvest).
    function_budget_s, notebook_budget_s : float, optional
        Override the suite's per-function and notebook budgets (tests use small ones).
    max_attempts : int
        Kernel starts allowed when cells hang or kill the kernel.
    protect : iterable of paths
        More paths to make unreadable to the sandbox (the grader's output folder, the salt file).

    Returns
    -------
    ExecutionResult
    """
    import nbformat

    limits = limits or Limits()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    names = [n for n in suite.functions if n in cases]
    budgets = {n: float(function_budget_s or suite.functions[n].time_budget_s) for n in names}
    ncases = {n: len(cases[n]) for n in names}
    nb_budget = float(notebook_budget_s or getattr(suite, "notebook_timeout_s", 120.0))

    def not_run(reason, status="error", duration=0.0, tail="") -> ExecutionResult:
        funcs = {n: FunctionResult("not_run", f"{n} was not run: {reason}", None, 0.0,
                                   [CaseResult("not_run", reason) for _ in range(ncases.get(n, 0))],
                                   [None] * ncases.get(n, 0)) for n in suite.functions}
        return ExecutionResult(status, reason, duration, tail, funcs)

    try:
        nb = nbformat.read(str(notebook_path), as_version=4)
    except Exception as exc:
        return not_run(f"the file is not a readable Jupyter notebook ({type(exc).__name__})")

    # the run's folder sits in a root-owned 0711 folder: the sandbox can use it but not rename or replace it
    outer = Path(tempfile.mkdtemp(prefix="course-run-"))
    os.chmod(outer, 0o711)
    rundir = outer / "run"
    rundir.mkdir()
    try:
        # what the run reads but must not change: root-owned and read-only for it (it cannot delete them)
        ro = outer / "input"
        ro.mkdir()
        probes = {n: getattr(suite.functions[n], "probe", "") for n in names}
        nbformat.write(build_notebook(nb, budgets, ncases, limits.memory_bytes // 2**20, str(ro / "cases"), probes),
                       str(ro / "notebook.ipynb"))
        write_cases(ro / "cases", {n: cases[n] for n in names})
        (rundir / "outputs").mkdir()
        (ro / "driver.py").write_text(_DRIVER)
        plan = {"parameters": dict(getattr(suite, "parameters", {}) or {}), "notebook_seconds": nb_budget,
                "wall_seconds": max(1.0, limits.wall_seconds - 2.0), "harvest_grace": _HARVEST_GRACE_S,
                "max_attempts": int(max_attempts), "cell_output_bytes": 100_000,
                "notebook_output_bytes": min(4_000_000, limits.file_size_bytes // 2),
                "private_user": privileged()}
        (ro / "plan.json").write_text(json.dumps(plan))
        for dirpath, dirnames, filenames in os.walk(ro):
            os.chmod(dirpath, 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
        try:
            sb = run_sandboxed(["{python}", "-I", str(ro / "driver.py")], rundir, limits,
                               protect=[*_project_paths(suite), workdir, *protect])
        except SandboxError as exc:
            return not_run(f"the sandbox could not start: {exc}", duration=time.monotonic() - t0)
        if not rundir.is_dir() or rundir.is_symlink():
            return not_run("the submission deleted its own working folder", duration=time.monotonic() - t0,
                           tail=(sb.stdout + sb.stderr)[-4000:])

        progress = _read_json(rundir / "run.json") or {}
        cells = progress.get("cells") if isinstance(progress.get("cells"), dict) else {}
        attempts = progress.get("attempts") if isinstance(progress.get("attempts"), int) else 0
        status, reason = _notebook_outcome(cells, sb, progress, nb_budget, limits)
        functions = {}
        for n in suite.functions:
            if n not in names:
                functions[n] = FunctionResult("not_run", f"no cases for {n}")
                continue
            res = _harvest(rundir, n, ncases[n], budgets[n], cells, reason, limits.file_size_bytes)
            res.outputs_path = _write_clean(workdir, n, res)
            functions[n] = res
        executed = None
        try:
            raw = _read_untrusted(rundir / "executed.ipynb", limits.file_size_bytes)
        except _Unfit:
            raw = None
        if raw:
            executed = workdir / "executed.ipynb"
            executed.write_bytes(raw)
        tail = (sb.stdout + sb.stderr)[-4000:]
        return ExecutionResult(status, reason, time.monotonic() - t0, tail, functions, executed, attempts,
                               [dict(v, cell=k) for k, v in cells.items() if isinstance(v, dict)],
                               {"returncode": sb.returncode, "timed_out": sb.timed_out, "reason": sb.reason,
                                "duration": round(sb.duration, 3), "uid": sb.uid, "limits": limits.as_dict()})
    finally:
        if not keep_rundir:
            shutil.rmtree(outer, ignore_errors=True)


def _notebook_outcome(cells, sb, progress, nb_budget, limits):
    def label(key):
        key = str(key)
        return f"cell {int(key[1:]) + 1}" if key[:1] == "c" and key[1:].isdigit() else "the parameters cell"

    student = [(k, v) for k, v in cells.items() if isinstance(v, dict) and v.get("role") in ("student", "parameters")]
    fatal = [f for f in (progress.get("fatal") or []) if isinstance(f, dict)
             and f.get("role") in ("student", "parameters")]
    crashes = [f for f in fatal if f.get("reason") != "budget"]
    budget = [f for f in fatal if f.get("reason") == "budget"] + \
             [{"cell": k} for k, v in student if v.get("status") == "skipped"]
    errors = [(k, v) for k, v in student if v.get("status") == "error"]
    if sb.timed_out:
        return "timeout", f"the notebook did not finish within the {limits.wall_seconds:g} s budget"
    if crashes:
        f = crashes[0]
        what = "stopped responding" if f.get("status") == "timeout" else "stopped the Python kernel (exit or crash)"
        replaced = (progress.get("replaced") or {}).get(str(f.get("cell")))
        how = "with only that cell's imports and definitions" if replaced == "defs" else "without that cell"
        return "crashed", f"{label(f.get('cell'))} {what}; the notebook was run again {how}"
    if budget:
        return "timeout", (f"the notebook's own cells took longer than {nb_budget:g} s (at "
                           f"{label(budget[0].get('cell'))}); that cell was left out")
    if not progress.get("finished") and not cells:
        return "crashed", f"the notebook could not be run ({sb.reason or 'no progress recorded'})"
    if errors:
        k, v = errors[0]
        return "error", f"{label(k)} raised {v.get('ename', 'an error')}: {v.get('evalue', '')}"[:400]
    return "ok", None
