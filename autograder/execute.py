"""Execute a submission in the sandbox and harvest what its graded functions return.

How one submission runs
-----------------------
1. A fresh folder under the system's temporary directory (root-owned, mode 0711) holds ``input/``, which the
   run reads but cannot change: the prepared notebook, ``plan.json``, the case inputs
   (``cases/<function>.npz`` with ``allow_pickle=False`` and ``cases/<function>.json``), and ``lib/``: the code
   that runs inside the sandbox, copied from the package (``autograder.runner.driver``,
   ``autograder.runner.harvest``, ``autograder.wire``). ``run/`` is the supervisor's output folder.
2. After the student's cells come a helper cell and one *harvest cell per graded function*
   (:mod:`autograder.runner.harvest`): each case runs in a child forked from the kernel, visible cases first,
   and writes one data-only record ``outputs/<function>.<i>.case``; the kernel kills a child that outlives
   the function's budget. A hang, ``sys.exit``, ``os._exit``, a segfault or a memory bomb costs that
   function only, and the kernel stays healthy for the next one.
3. The supervisor (:mod:`autograder.runner.driver`) runs that notebook with papermill inside
   :func:`autograder.sandbox.run_sandboxed`, cell by cell, survives hangs and dead kernels (the failing cell
   is re-run reduced to its definitions, then left out), keeps cell outputs small, writes its progress to
   ``run.json`` and exports each function's records. In a namespace sandbox the kernel runs nested in
   namespaces of its own and cannot touch the supervisor.
4. Back in the grader, nothing the sandbox wrote is trusted: every read goes through :mod:`autograder.wire`
   (no links followed, sizes and nesting bounded before anything is inflated or parsed, numeric data only).
   The clean result is written again by the grader to ``workdir/outputs/<function>.out`` (read back with
   :func:`load_outputs`).

Nothing printed by the notebook is ever parsed for a score.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autograder import wire
from autograder.sandbox import Limits, SandboxError, describe_exit, run_sandboxed

__all__ = ["CaseResult", "FunctionResult", "ExecutionResult", "execute_submission", "load_outputs",
           "write_cases", "build_notebook", "FUNCTION_STATUSES", "MAX_OUTPUT_ELEMENTS"]

#: Per-function statuses.
FUNCTION_STATUSES = ("ok", "error", "timeout", "missing", "not_run")
#: Largest number of numbers one case's output may hold.
MAX_OUTPUT_ELEMENTS = 20_000_000
#: Largest JSON file read back from the sandbox, and its deepest nesting.
_MAX_JSON_BYTES = 1 << 20
_MAX_JSON_DEPTH = 8
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


def write_cases(directory, cases, offsets=None) -> None:
    """Write ``{function: [case dict]}`` as ``directory/<function>.npz`` + ``.json`` (no pickles).

    ``offsets`` (``{function: int}``) gives the index of each function's first case among all its cases
    (the harvest names its outputs by that index). Arrays (and torch tensors, which the harvest turns back into tensors) go to the npz; ints, floats,
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
        (directory / f"{fname}.json").write_text(json.dumps(
            {"function": fname, "cases": spec, "offset": int((offsets or {}).get(fname, 0))}))


def _groups(cases: dict, case_groups: dict | None) -> list:
    """Split ``{function: [case]}`` into groups ``[{function: (offset, [case])}]`` (visible, then hidden)."""
    out = []
    for fname, case_list in cases.items():
        sizes = [int(n) for n in (case_groups or {}).get(fname, [len(case_list)])]
        if sum(sizes) != len(case_list) or any(n < 0 for n in sizes):
            raise ValueError(f"case groups of {fname} add up to {sum(sizes)} cases, not {len(case_list)}")
        offset = 0
        for k, n in enumerate(sizes):
            while len(out) <= k:
                out.append({})
            if n:
                out[k][fname] = (offset, case_list[offset: offset + n])
            offset += n
    return out


# ============================================================================================ the notebook
def build_notebook(nb, groups: list, budgets: dict, memory_mib: int, input_dir: str, run_dir: str,
                   probes: dict | None = None):
    """The notebook the sandbox runs: the student's cells (tagged with their index, outputs stripped) +
    the helper cell (imports the kernel-side harvest from ``input_dir/lib``) + one harvest cell per function
    and group of cases (``groups``: ``[{function: (offset, cases)}]``, visible first; ``budgets``: function ->
    seconds; ``probes``: function -> source of the probe run on what it returns, see ``Function.probe``).

    Group 0 reads its cases from ``input_dir/cases``; group k > 0 from ``run_dir/.cases-g<k>``, where the
    supervisor copies one function's inputs from ``input_dir/hidden/g<k>`` (out of the kernel's sight) only
    when the harvest reaches that function's cell, and removes them after it: every visible case has run
    before any hidden input is in the kernel's reach, and no function sees another's hidden inputs unless
    that one's cell ran earlier.
    """
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
    helper = nbformat.v4.new_code_cell(
        f"import sys as __course_sys__\n__course_sys__.path.insert(0, {input_dir + '/lib'!r})\n"
        f"from course_harvest import harvest as __course_harvest__")
    helper.metadata["course"] = {"role": "helper"}
    nb.cells.append(helper)
    for k, group in enumerate(groups):
        cases_dir = f"{input_dir}/cases" if k == 0 else f"{run_dir}/.cases-g{k}"
        for name, (offset, group_cases) in group.items():
            budget = float(budgets[name])
            cell = nbformat.v4.new_code_cell(
                f"__course_harvest__(globals(), {name!r}, {budget!r}, {int(memory_mib)}, {cases_dir!r}, "
                f"{(probes or {}).get(name, '')!r}, group={k}, offset={int(offset)})")
            cell.metadata["course"] = {"role": "harvest", "function": name, "group": k, "budget": budget,
                                       "offset": int(offset), "cases": len(group_cases)}
            nb.cells.append(cell)
    return nb


#: What the grader copies into the run's read-only ``lib`` folder: the code that runs inside the sandbox.
_SANDBOX_MODULES = {"course_driver.py": ("autograder.runner", "driver.py"),
                    "course_harvest.py": ("autograder.runner", "harvest.py"),
                    "course_wire.py": ("autograder", "wire.py")}


def _install_sandbox_modules(lib: Path) -> None:
    from importlib.resources import files
    lib.mkdir(parents=True, exist_ok=True)
    for target, (package, name) in _SANDBOX_MODULES.items():
        (lib / target).write_bytes(files(package).joinpath(name).read_bytes())


# ============================================================================================ reading back
def _read_json(path: Path):
    """A JSON object the sandbox wrote (size and nesting bounded), or None when absent or malformed. No link
    is followed below the run's folder (``within``)."""
    try:
        raw = wire.read_untrusted(path, _MAX_JSON_BYTES, within=path.parent.parent if path.parent.name == "outputs" else path.parent)
        return wire.load_json(raw, max_bytes=_MAX_JSON_BYTES, max_depth=_MAX_JSON_DEPTH) if raw else None
    except wire.FormatError:
        return None


def _read_case(out_dir: Path, name: str, i: int, file_cap: int):
    """Case ``i``'s record from the sandbox (``<name>.<i>.json``, and for an "ok" case its value
    ``<name>.<i>.value``): ``(record, None)``, ``(None, None)`` when absent, or ``(None, why)``."""
    rec = _read_json(out_dir / f"{name}.{i}.json")
    if rec is None:
        return None, None
    if rec.get("status") not in ("ok", "error", "crashed"):
        return None, "the output was rejected: malformed case record"
    if rec["status"] == "ok":
        try:
            raw = wire.read_untrusted(out_dir / f"{name}.{i}.value", file_cap, within=out_dir.parent)
            if raw is None:
                return None, "the output was rejected: the output file is missing"
            rec["value"] = wire.loads(raw, max_bytes=file_cap, max_elements=MAX_OUTPUT_ELEMENTS)
        except wire.FormatError as exc:
            return None, f"the output was rejected: {exc}"
    return rec, None


def _plain(value):
    """``value`` if it is plain numeric data (arrays, Python numbers, tuples/dicts of those, None)."""
    if value is None or isinstance(value, (bool, int, float, complex, np.ndarray, np.generic)):
        return value
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    raise wire.FormatError(f"unexpected {type(value).__name__} in the output")


def _nbytes(value) -> int:
    """Bytes a harvested value holds: its arrays', 8 for each number."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, tuple):
        return sum(map(_nbytes, value))
    if isinstance(value, dict):
        return sum(map(_nbytes, value.values()))
    return 8


def _group_fate(name: str, st: dict, cell: dict, budget: float, run_reason: str | None):
    """(status, why) of a whole group of cases that has no per-case records, else None."""
    fstatus = st.get("status") if isinstance(st.get("status"), str) else None
    if fstatus == "missing":
        return "missing", " ".join(str(st.get("message", f"no function named {name} was defined")).split())[:300]
    if fstatus is not None:
        return None
    cs = cell.get("status")
    if cs == "timeout":
        return "timeout", f"{name} did not return within its {budget:g} s budget and the kernel stopped responding"
    if cs in ("dead", "running"):
        return "error", f"the kernel died while {name} ran"
    if cs == "error":
        return "error", f"the grader could not call {name}: {cell.get('ename', '')}: {cell.get('evalue', '')}"[:400]
    return "not_run", f"{name} was not run: {run_reason or 'the notebook stopped before it'}"


def _seconds(value, budget: float) -> float:
    """A time the sandbox reported, as a float in [0, budget + grace] (0 when it is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value == value:
        return 0.0
    return min(max(float(value), 0.0), budget + _HARVEST_GRACE_S)


def _harvest(outdir: Path, name: str, spans: list, budget: float, cells: dict, run_reason: str | None,
             file_cap: int, room: int) -> tuple[FunctionResult, int]:
    """One function's result from the sandbox's records, and what is left of ``room``; ``spans``:
    ``[(group, offset, n_cases)]``. A group's fate (missing, timeout, dead kernel) applies to that group's cases
    only. Each case's output is read within ``file_cap`` bytes, and only while the outputs kept so far, this
    one's included, hold at most ``room`` bytes: a file of zeros compresses a thousandfold, so the export's
    budget alone does not bound what the grader would hold."""
    out_dir = outdir / "outputs"
    res = FunctionResult(status="ok")
    ncases = sum(n for _, _, n in spans)
    for k, offset, n in spans:
        status_path = out_dir / f"{name}.g{k}.status.json"
        st = _read_json(status_path)
        if st is None:   # absent, or present but rejected (a link, malformed, too large or too deep)
            st = {"status": "rejected"} if os.path.lexists(status_path) else {}
        cell = cells.get(f"f:{name}:g{k}") if isinstance(cells.get(f"f:{name}:g{k}"), dict) else {}
        secs = st.get("seconds") if isinstance(st.get("seconds"), (int, float)) else cell.get("seconds")
        res.seconds += _seconds(secs, budget)
        fate = _group_fate(name, st, cell, budget, run_reason)
        if fate is not None:
            res.cases += [CaseResult(fate[0] if fate[0] != "missing" else "not_run", fate[1]) for _ in range(n)]
            res.outputs += [None] * n
            if fate[0] == "missing":
                return FunctionResult("missing", fate[1], None, 0.0,
                                      [CaseResult("not_run", fate[1]) for _ in range(ncases)], [None] * ncases), room
            continue
        timed_out = st.get("status") == "timeout"
        for i in range(offset, offset + n):
            rec, why = _read_case(out_dir, name, i, file_cap)
            started = (out_dir / f"{name}.{i}.start.json").exists()
            secs = _seconds(rec.get("seconds") if rec else None, budget)
            value = None
            if why is not None:
                cr = CaseResult("error", f"{name}'s {why[4:]}" if why.startswith("the ") else why)
            elif rec is None:
                if timed_out and started:
                    cr = CaseResult("timeout", f"{name} did not return within its {budget:g} s budget")
                elif timed_out:
                    cr = CaseResult("timeout", f"not run: {name} used up its {budget:g} s budget on earlier cases")
                elif st.get("status") == "rejected":
                    cr = CaseResult("error", f"the grader rejected {name}'s status record (a link, malformed, too "
                                             f"large or nested too deep)")
                else:
                    cr = CaseResult("not_run", f"{name} stopped before this case")
            elif rec["status"] == "crashed":
                code = rec.get("exitcode")
                ok_code = isinstance(code, int) and not isinstance(code, bool)
                how = describe_exit(int(code)) if ok_code else "an unknown reason"
                how = (f"it ended the Python process (os._exit({code}) or similar, {how})" if ok_code and code >= 0
                       else f"the process was {how}")
                cr = CaseResult("error", f"{name} did not return: {how}")
            elif rec["status"] == "error":
                cr = CaseResult("error", " ".join(str(rec.get("message", "raised an error")).split())[:400],
                                secs)
            else:
                try:
                    value = _plain(rec.get("value"))
                    cr = CaseResult("ok", "", secs)
                except wire.FormatError as exc:
                    cr = CaseResult("error", f"{name}'s output was rejected: {exc}", secs)
                size = _nbytes(value) if value is not None else 0
                if size > room:
                    value, cr = None, CaseResult("error", f"{name}'s output was rejected: the graded functions' "
                                                          f"outputs together hold more than {file_cap >> 20} MiB; "
                                                          "return only what the function is asked for", secs)
                else:
                    room -= size
            res.cases.append(cr)
            res.outputs.append(value)
    failed = [(i, c) for i, c in enumerate(res.cases) if c.status != "ok"]
    if failed and all(c.status == "not_run" for c in res.cases):
        res.status, res.message = "not_run", failed[0][1].message[:400]
    elif failed:
        i, cr = failed[0]
        res.status = "timeout" if any(c.status == "timeout" for _, c in failed) else \
            ("error" if cr.status in ("error", "not_run") else cr.status)
        res.message = (cr.message if ncases == 1 else f"case {i + 1} of {ncases}: {cr.message}")[:400]
    return res, room


def _write_clean(workdir: Path, name: str, res: FunctionResult) -> Path:
    """Re-write the validated outputs, by the grader: ``workdir/outputs/<name>/<i>.out``, one file per case in
    the wire format (a case without output has no file). Returns the folder."""
    folder = workdir / "outputs" / name
    folder.mkdir(parents=True, exist_ok=True)
    for i, value in enumerate(res.outputs):
        if value is not None:
            wire.write_atomic(folder / f"{i}.out", wire.dumps(value))
    (folder / "cases").write_text(str(len(res.outputs)))
    return folder


def load_outputs(outputs_path) -> list:
    """The per-case outputs saved by the grader in ``outputs_path`` (``.../outputs/<function>``).

    Returns a list aligned with the function's cases: a NumPy array, a Python or NumPy scalar, a tuple/dict
    of those, or None where the case produced no output. Data only: no pickles.
    """
    folder = Path(outputs_path)
    n = int((folder / "cases").read_text())
    out = []
    for i in range(n):
        raw = wire.read_untrusted(folder / f"{i}.out", wire.MAX_BYTES)
        out.append(None if raw is None else wire.loads(raw))
    return out


# ============================================================================================ entry point
def execute_submission(notebook_path, suite, cases, workdir, limits: Limits | None = None, *,
                       function_budget_s: float | None = None, notebook_budget_s: float | None = None,
                       max_attempts: int | None = None, keep_rundir: bool = False, protect=(),
                       isolation: str | None = None, case_groups: dict | None = None) -> ExecutionResult:
    """Run a submission in the sandbox and harvest its graded functions' outputs on ``cases``.

    Parameters
    ----------
    notebook_path : path
        The student's notebook (never modified).
    suite : autograder.suite.Suite
        Gives ``functions`` (names and ``time_budget_s``), ``parameters`` and ``notebook_timeout_s``.
    cases : dict function -> list of case dict
        Keyword arguments for each call; keys starting with "_" are not passed (nor copied to the sandbox).
        Functions without cases are not harvested (status "not_run"). List visible cases before hidden ones.
    case_groups : dict function -> list of int, optional
        Sizes of consecutive groups of each function's cases (``[n_visible, n_hidden]``): each group runs in
        a process of its own after the previous one ended, so nothing of a hidden case reaches a visible one.
    workdir : path
        A grader-owned folder receiving ``outputs/`` (clean, validated copies) and ``executed.ipynb``.
    limits : Limits
        ``limits.wall_seconds`` caps the whole run (kernel starts, the notebook, every harvest).
    function_budget_s, notebook_budget_s : float, optional
        Override the suite's per-function and notebook budgets (tests use small ones).
    max_attempts : int, optional
        Kernel starts allowed when cells hang or kill the kernel (default: enough for every cell to fail once
        in full and once reduced to its definitions; the wall-clock budget bounds them anyway).
    protect : iterable of paths
        Without namespaces, more grader-owned paths to make unreadable to the sandbox (the salt file).
    isolation : str, optional
        The isolation level to run at (default: the strongest the host offers).

    Returns
    -------
    ExecutionResult
        ``sandbox["isolation"]`` names the isolation level the run had.
    """
    import nbformat

    from autograder import sandbox

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

    level = isolation or sandbox.isolation_level()
    # the run's folders sit in a root-owned 0711 folder: the sandbox can use them but not rename or replace them
    outer = Path(tempfile.mkdtemp(prefix="course-run-"))
    os.chmod(outer, 0o711)
    outdir = outer / "run"
    outdir.mkdir()
    try:
        # what the run reads but must not change: read-only for it
        ro = outer / "input"
        ro.mkdir()
        paths = sandbox.sandbox_paths(level, outdir, ro)
        probes = {n: getattr(suite.functions[n], "probe", "") for n in names}
        groups = _groups({n: cases[n] for n in names}, case_groups)
        nbformat.write(build_notebook(nb, groups, budgets, limits.memory_bytes // 2**20, paths.input, paths.run,
                                      probes), str(ro / "notebook.ipynb"))
        (ro / "hidden").mkdir()
        for k, group in enumerate(groups):
            write_cases(ro / "cases" if k == 0 else ro / "hidden" / f"g{k}", {n: c for n, (_, c) in group.items()},
                        {n: off for n, (off, _) in group.items()})
        _install_sandbox_modules(ro / "lib")
        (outdir / "outputs").mkdir()
        student_cells = sum(1 for c in nb.cells if c.get("cell_type") == "code")
        plan = {"parameters": dict(getattr(suite, "parameters", {}) or {}), "notebook_seconds": nb_budget,
                "retry_cell_seconds": max(5.0, nb_budget / 6),
                "wall_seconds": max(1.0, limits.wall_seconds - 2.0), "harvest_grace": _HARVEST_GRACE_S,
                "max_attempts": int(max_attempts or 2 * student_cells + len(names) * len(groups) + 2),
                "cell_output_bytes": 100_000, "notebook_output_bytes": min(4_000_000, limits.file_size_bytes // 2),
                "max_output_bytes": limits.file_size_bytes, "export_bytes": limits.disk_bytes,
                "clear_between_attempts": level == "namespaces" or sandbox.privileged()}
        without = suite.runtime_without()       # the packages the run's Python lacks, kernel and supervisor alike
        try:
            plan["kernel_prefix"] = sandbox.kernel_command(level, limits, paths, without)
        except SandboxError as exc:
            return not_run(f"the sandbox could not start: {exc}", duration=time.monotonic() - t0)
        (ro / "plan.json").write_text(json.dumps(plan))
        for dirpath, dirnames, filenames in os.walk(ro):
            os.chmod(dirpath, 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
        try:
            sb = run_sandboxed(["{python}", "-I", f"{paths.input}/lib/course_driver.py"], outdir, limits,
                               protect=[workdir, *protect], inputs=ro, level=level,
                               without=without)
        except SandboxError as exc:
            return not_run(f"the sandbox could not start: {exc}", duration=time.monotonic() - t0)
        if not outdir.is_dir() or outdir.is_symlink():
            return not_run("the submission deleted its own working folder", duration=time.monotonic() - t0,
                           tail=(sb.stdout + sb.stderr)[-4000:])

        progress = _read_json(outdir / "run.json") or {}
        cells = progress.get("cells") if isinstance(progress.get("cells"), dict) else {}
        attempts = progress.get("attempts") if isinstance(progress.get("attempts"), int) else 0
        status, reason = _notebook_outcome(cells, sb, progress, nb_budget, limits)
        functions, room = {}, limits.file_size_bytes     # what every output together may hold, inflated
        for n in suite.functions:
            if n not in names:
                functions[n] = FunctionResult("not_run", f"no cases for {n}")
                continue
            spans = [(k, *g[n]) for k, g in enumerate(groups) if n in g]
            res, room = _harvest(outdir, n, [(k, off, len(c)) for k, off, c in spans], budgets[n], cells, reason,
                                 limits.file_size_bytes, room)
            res.outputs_path = _write_clean(workdir, n, res)
            functions[n] = res
        executed = None
        try:
            raw = wire.read_untrusted(outdir / "executed.ipynb", limits.file_size_bytes, within=outdir)
        except wire.FormatError:
            raw = None
        if raw:
            executed = workdir / "executed.ipynb"
            executed.write_bytes(raw)
        tail = (sb.stdout + sb.stderr)[-4000:]
        return ExecutionResult(status, reason, time.monotonic() - t0, tail, functions, executed, attempts,
                               [dict(v, cell=k) for k, v in cells.items() if isinstance(v, dict)],
                               {"returncode": sb.returncode, "timed_out": sb.timed_out, "reason": sb.reason,
                                "duration": round(sb.duration, 3), "uid": sb.uid, "isolation": sb.isolation,
                                "cgroup": sb.cgroup, "limits": limits.as_dict(),
                                **({"run_folder": str(outdir)} if keep_rundir else {})})
    finally:
        if not keep_rundir:
            shutil.rmtree(outer, ignore_errors=True)


def _notebook_outcome(cells, sb, progress, nb_budget, limits):
    def label(key):
        key = str(key)
        return f"cell {int(key[1:]) + 1}" if key[:1] == "c" and key[1:].isdigit() else "the parameters cell"

    # a student cell re-run after hidden inputs entered the kernel is never reported: its fate could carry them
    student = [(k, v) for k, v in cells.items() if isinstance(v, dict) and v.get("role") in ("student", "parameters")
               and not v.get("after_reveal")]
    fatal = [f for f in (progress.get("fatal") or []) if isinstance(f, dict)
             and f.get("role") in ("student", "parameters") and not f.get("after_reveal")]
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
        ename, evalue = str(v.get("ename") or "an error"), str(v.get("evalue") or "").strip()
        if ename == "NotImplementedError" and not evalue:
            evalue = "a function it calls is not written yet"
        return "error", (f"{label(k)} raised {ename}" + (f": {evalue}" if evalue else ""))[:400]
    return "ok", None
