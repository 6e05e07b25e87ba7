"""Kernel side of the harvest: call one graded function on its cases and write data-only outputs.

This module runs inside the sandbox, in the student's kernel: the grader copies it into the run's read-only
input folder (as ``course_harvest.py``, next to ``course_wire.py``) and the harvest cells that follow the
student's cells call :func:`harvest`. It imports only the standard library, NumPy and the wire format.

The cases come in groups (visible cases, then hidden ones). Each group runs in a child forked from the
kernel, after the previous group's child has ended: whatever a case does to its process (globals,
monkeypatching, ``sys.exit``, ``os._exit``, a segfault, a memory bomb) dies with that child, so nothing a
hidden case sees can flow back into a visible case's message. A case that kills its child costs that case;
a fresh child goes on with the group's next case.
The kernel kills a child's whole process group when the function's time budget is spent, and reaps what it
left behind (the kernel is a child subreaper), so the kernel stays healthy for the next function.

Files written under ``outputs/`` (all hostile input to the grader, which bounds every read):
``<name>.status.json`` (the function's fate), ``<name>.<i>.start.json`` (case i started),
``<name>.<i>.value`` (case i's output, in the wire format) and ``<name>.<i>.json`` (its status, message and
seconds, written last).
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
import traceback

try:                                # inside the sandbox: copied next to this module
    import course_wire as wire
except ImportError:                 # in the grader's own tests
    from autograder import wire

__all__ = ["harvest"]

_CASE_EXIT_ERROR = 70


def _write_json(path: str, obj) -> None:
    wire.write_atomic(path, json.dumps(obj).encode("utf-8"))


def _clear_group(pgid: int) -> None:
    """SIGKILL a process group until it is empty, reaping orphans (the kernel is their subreaper)."""
    for _ in range(1000):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            return
        while True:
            try:
                done, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if done == 0:
                break
        time.sleep(0.002)


def _become_subreaper() -> None:
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _wait(pid: int, deadline: float):
    """Wait for ``pid`` until ``deadline``; returns (wait status or None if it timed out)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            done, wstatus = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return wstatus
            left = deadline - time.monotonic()
            if left <= 0:
                for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                    with contextlib.suppress(OSError):
                        kill()
                os.waitpid(pid, 0)
                return None
            if pidfd is not None:
                select.select([pidfd], [], [], min(left, 0.5))
            else:
                time.sleep(min(left, 0.005))
    finally:
        if pidfd is not None:
            os.close(pidfd)


def harvest(namespace: dict, name: str, budget: float, memory_mib: int, cases_dir: str, probe: str = "",
            group: int = 0, offset: int = 0) -> None:
    """Run ``namespace[name]`` on each case of ``cases_dir/<name>.npz/.json`` within ``budget`` seconds.

    Parameters
    ----------
    namespace : dict
        The notebook's globals (the harvest cell passes ``globals()``).
    name : str
        The graded function.
    budget : float
        Wall-clock seconds for all its cases together.
    memory_mib : int
        The memory the grader allows (named in the message of a MemoryError).
    cases_dir : str
        The read-only folder of case inputs.
    probe : str
        Source of a ``probe(output, **probe_kwargs)`` function evaluated on the output, in the child.
    group, offset : int
        Which group of cases this is (0: visible; its fate goes to ``outputs/<name>.g<group>.status.json``)
        and the index of its first case among all the function's cases (output files use that index).
    """
    t0 = time.monotonic()
    os.makedirs("outputs", exist_ok=True)

    def status(**kw):
        kw["seconds"] = round(time.monotonic() - t0, 4)
        _write_json(f"outputs/{name}.g{group}.status.json", kw)

    _become_subreaper()
    fn = namespace.get(name)
    if fn is None:
        return status(status="missing", message=f"no function named {name} was defined when the notebook ran")
    if not callable(fn):
        return status(status="missing", message=f"{name} is a {type(fn).__name__}, not a function")
    with open(f"{cases_dir}/{name}.json") as fh:
        spec = json.load(fh)
    ncases = len(spec["cases"])
    deadline = t0 + budget
    end = offset + ncases
    first = offset
    while first < end:  # a child runs the group's cases from `first` on; one that dies costs its case
        if time.monotonic() >= deadline:
            return status(status="timeout", budget=budget)
        try:
            pid = os.fork()
        except OSError as exc:
            return status(status="error", message=f"could not start {name}: {exc}")
        if pid == 0:
            code = _CASE_EXIT_ERROR
            try:
                for i in range(first, end):
                    _run_case(name, fn, i, i - offset, memory_mib, cases_dir, probe)
                code = 0
            finally:
                os._exit(code)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        wstatus = _wait(pid, deadline)
        _clear_group(pid)  # what the cases left running
        if wstatus is None:
            return status(status="timeout", budget=budget)
        code = os.waitstatus_to_exitcode(wstatus)
        done = first
        while done < end and os.path.exists(f"outputs/{name}.{done}.json"):
            done += 1
        if done < end:
            _write_case(name, done, {"status": "crashed", "exitcode": code})
            done += 1
        first = done
    return status(status="ok")


def _describe(name: str, exc: BaseException, memory_mib: int) -> str:
    if isinstance(exc, SystemExit):
        return f"{name} called sys.exit({exc.code!r}); a graded function must return its result"
    if isinstance(exc, MemoryError):
        return f"{name} ran out of memory (the grader allows {memory_mib} MiB)"
    if isinstance(exc, wire.FormatError):
        return f"{name} {exc}"
    if isinstance(exc, NotImplementedError) and not str(exc).strip():
        return f"{name} is not written yet: it still raises NotImplementedError (replace the stub with your code)"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    own = [f for f in frames if f.filename.startswith("<") or "ipykernel" in f.filename]
    where = own[-1] if own else (frames[-1] if frames else None)
    at = f" (in {where.name}, line {where.lineno})" if where else ""
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}{at}" if text else f"{type(exc).__name__}{at}"


def _run_case(name, fn, i, j, memory_mib, cases_dir, probe) -> None:
    """In the forked child: call ``fn`` on case ``i`` (the ``j``-th of ``cases_dir``) and write its outcome
    (:func:`_write_case`)."""
    if os.getpgid(0) != os.getpid():
        os.setpgid(0, 0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        sys.stdout = sys.stderr = open(os.devnull, "w")
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
    _write_json(f"outputs/{name}.{i}.start.json", {"case": i})
    t = time.monotonic()
    try:
        kwargs, probe_kwargs = _case_inputs(cases_dir, name, j)
        out = fn(**kwargs)
        if probe:
            scope: dict = {}
            exec(probe, scope)
            out = scope["probe"](out, **probe_kwargs)
        data = wire.dumps(out)
        _write_case(name, i, {"status": "ok", "seconds": round(time.monotonic() - t, 4)}, data)
    except BaseException as exc:  # noqa: BLE001 - the student's code may raise anything, SystemExit included
        _write_case(name, i, {"status": "error", "message": _describe(name, exc, memory_mib),
                              "seconds": round(time.monotonic() - t, 4)})


def _write_case(name: str, i: int, record: dict, value: bytes | None = None) -> None:
    """Case ``i``'s outcome: ``outputs/<name>.<i>.value`` (the output in the wire format, when there is
    one), then ``outputs/<name>.<i>.json`` (status, message, seconds), each written atomically."""
    if value is not None:
        wire.write_atomic(f"outputs/{name}.{i}.value", value)
    _write_json(f"outputs/{name}.{i}.json", record)


def _case_inputs(cases_dir: str, name: str, i: int):
    """Keyword arguments of case ``i`` (written by ``autograder.execute.write_cases``), split into the
    function's and the probe's (``probe_`` prefix). Arrays flagged as tensors become torch tensors."""
    import numpy as np
    with open(f"{cases_dir}/{name}.json") as fh:
        spec = json.load(fh)["cases"][i]
    kwargs, probe_kwargs = {}, {}
    with np.load(f"{cases_dir}/{name}.npz", allow_pickle=False) as arrays:
        for key, v in spec.items():
            if v["kind"] == "array":
                a = np.array(arrays[v["key"]])
                if v.get("torch"):
                    import torch
                    a = torch.from_numpy(a)
            else:
                a = v["value"]
            if key.startswith("probe_"):
                probe_kwargs[key[len("probe_"):]] = a
            else:
                kwargs[key] = a
    return kwargs, probe_kwargs
