"""``course figures [LECTURE...]``: execute the lecture notebooks and write every figure they make.

Each lecture runs with papermill in its own kernel, with its figures going to a fresh folder first; only when
the whole notebook succeeds are they copied into ``lectures/figures`` (or ``$COURSE_FIGURES_DIR``), and, for a
full run (no parameters), the executed notebook, normalised, into ``lectures/executed/`` (what students read). Afterwards
the figures written are compared with the figure registry (``lectures/figures/registry.json``).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["figures_command", "lecture_notebooks", "resolve_lectures", "run_lecture", "LectureRun"]

def lecture_notebooks(lectures_dir: Path | None = None) -> list[Path]:
    """The lecture notebooks ``NN_topic.ipynb`` of the course folder (or ``lectures_dir``), in order."""
    from course_lib.plotting import lectures_dir as course_lectures
    return sorted(p for p in Path(lectures_dir or course_lectures()).glob("[0-9][0-9]_*.ipynb"))


def resolve_lectures(names: list[str] | None, lectures_dir: Path | None = None) -> list[Path]:
    """Map ``02``, ``2``, ``02_expectation_maximization`` or its ``.ipynb`` path to notebooks; [] means all."""
    from course_lib.plotting import lectures_dir as course_lectures
    lectures_dir = Path(lectures_dir or course_lectures())
    available = lecture_notebooks(lectures_dir)
    if not available:
        raise ValueError(f"no lecture notebooks (NN_topic.ipynb) found in {lectures_dir}")
    if not names:
        return available
    chosen = []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        if stem.isdigit():
            stem = f"{int(stem):02d}"
        matches = [p for p in available if p.stem == stem or p.stem.startswith(stem + "_")]
        if len(matches) != 1:
            known = ", ".join(p.stem for p in available)
            raise ValueError(f"no single lecture matches {name!r}; choose from: {known}")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


@dataclass
class LectureRun:
    """What one executed lecture produced."""
    notebook: Path
    figures: dict[str, Path] = field(default_factory=dict)  # fig_id -> file in the scratch folder
    seconds: float = 0.0
    executed: Path | None = None  # the executed copy of the notebook


def run_lecture(notebook: Path, figures_dir: Path, parameters: dict | None = None, *, executed: Path | None = None,
                progress: bool = False, timeout: int | None = 600) -> LectureRun:
    """Execute ``notebook`` with papermill, its figures written to ``figures_dir`` (which should be empty).

    Raises ``RuntimeError`` with a one-line message when a cell fails.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    executed = Path(executed) if executed is not None else figures_dir / f"{notebook.stem}.executed.ipynb"
    # Agg: figures are written by savefig only, none is rendered a second time for the (discarded) outputs
    env_set = {"COURSE_FIGURES_DIR": str(figures_dir), "MPLBACKEND": "agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
               "COURSE_POLLS": "text",
               # one thread: the lectures' models are small, and a fixed thread count keeps the sums (and so the
               # figures' bytes) the same from run to run
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               # the same code path on every x86-64 processor: MKL's compatible branch, and torch's plain kernels
               # instead of the AVX2/AVX-512 ones picked at start-up (training the VAE amplifies their last-bit
               # differences into other pixels)
               "MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default"}
    saved = {k: os.environ.get(k) for k in env_set}
    os.environ.update(env_set)
    start = time.perf_counter()
    # the kernel inherits file descriptor 2: send its start-up and shut-down chatter to a scratch file, so the
    # command's own output stays one line per lecture (the progress bar still goes to the real stderr)
    sys.stderr.flush()
    real_stderr = os.dup(2)
    chatter = tempfile.TemporaryFile()
    os.dup2(chatter.fileno(), 2)
    bar = {"file": os.fdopen(os.dup(real_stderr), "w"), "desc": notebook.stem} if progress else False
    try:
        pm.execute_notebook(str(notebook), str(executed), parameters=parameters or {}, kernel_name="python3",
                            cwd=str(notebook.parent), progress_bar=bar, log_output=False,
                            request_save_on_cell_execute=False, execution_timeout=timeout)
    except PapermillExecutionError as exc:
        msg = str(exc.evalue).strip().splitlines()
        detail = msg[-1] if msg else ""
        raise RuntimeError(f"{notebook.stem} failed in cell {exc.exec_count}: {exc.ename}: {detail} "
                           f"(executed copy: {executed})") from None
    except Exception as exc:  # kernel died, timeout, bad notebook
        first = (str(exc).strip().splitlines() or [""])[0]
        raise RuntimeError(f"{notebook.stem} could not be executed: {type(exc).__name__}: {first}") from None
    finally:
        sys.stderr.flush()
        os.dup2(real_stderr, 2)
        os.close(real_stderr)
        chatter.close()
        if bar:
            bar["file"].close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - start
    figs = {p.stem: p for p in sorted(figures_dir.glob("fig_*.png"))}
    return LectureRun(notebook=notebook, figures=figs, seconds=seconds, executed=executed)


def _lecture_tools(lectures_dir: Path):
    """The course's lecture build script (``lectures/build_notebooks.py``), loaded as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("course_lecture_tools", lectures_dir / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def figures_command(args) -> int:
    """Handler of ``course figures``: run the chosen lectures (default all) and install their figures."""
    from course_lib.plotting import check_registry, figures_dir, load_registry

    try:
        notebooks = resolve_lectures(getattr(args, "lectures", None) or [])
        registry = load_registry()
    except ValueError as exc:
        print(f"course figures: {exc}", file=sys.stderr)
        return 2
    # the real figures use each notebook's own defaults; the tests pass {"FAST": True}
    parameters = getattr(args, "parameters", None) or {}
    target = figures_dir()
    target.mkdir(parents=True, exist_ok=True)
    interactive = sys.stderr.isatty()
    written: dict[str, set[str]] = {}
    failures = 0
    total_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="course-figures-") as scratch:
        for i, nb in enumerate(notebooks, 1):
            print(f"[{i}/{len(notebooks)}] {nb.stem} ...", flush=True)
            work = Path(scratch) / nb.stem
            keep = Path(tempfile.gettempdir()) / f"course-figures-{nb.stem}.ipynb"
            try:
                run = run_lecture(nb, work, parameters, executed=keep, progress=interactive)
            except RuntimeError as exc:
                print(f"course figures: {exc}", file=sys.stderr)
                failures += 1
                continue
            for fig_id, path in run.figures.items():
                shutil.copyfile(path, target / path.name)
            written[nb.stem] = set(run.figures)
            if not parameters:   # a full run: the readable copy with every output, lectures/executed/<stem>.ipynb
                _lecture_tools(nb.parent).write_executed(keep, nb.stem)
            print(f"      {len(run.figures)} figures in {run.seconds:.1f} s", flush=True)
    problems = check_registry(written, registry, lectures=list(written))
    for p in problems:
        print(f"course figures: {p}", file=sys.stderr)
    n = sum(len(v) for v in written.values())
    print(f"wrote {n} figures to {target} in {time.perf_counter() - total_start:.1f} s", flush=True)
    if failures:
        print(f"course figures: {failures} of {len(notebooks)} lectures failed", file=sys.stderr)
    return 1 if failures or problems else 0
