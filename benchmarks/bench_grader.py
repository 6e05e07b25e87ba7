"""The grader, side by side with a bare papermill run: overhead per submission and throughput of workers.

Overhead: each repeat runs, interleaved, (a) ``papermill`` on the complete sample submission (a fresh
process, as anyone would run it), (b) ``course grade`` of that one notebook (a fresh process: static check,
sandbox, harvest, judge, report; the judge's imports overlap with the sandbox run), and (c) grading the same
notebook inside a warm grading worker (what each submission costs in a batch), and (d) the same with the
sandbox lowered to the "uid" isolation level (no namespaces): (c) - (d) is what namespaces cost per
submission. Target: (c)/(a) <= 1.5.

Throughput: ``course grade`` of a batch of distinct submissions (copies of the complete sample, each with
its own code and so its own cases) with ``--workers 1`` and ``--workers 2``, interleaved. Target: >= 1.7x.

    python benchmarks/bench_grader.py            # 3 overhead repeats, a batch of 20
    python benchmarks/bench_grader.py --quick    # 1 repeat, a batch of 4
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sample(assignment: str) -> Path:
    """The complete sample submission of ``assignment`` (an assignment's examples, or the test fixture's)."""
    for folder in (ROOT / "examples" / assignment, ROOT / "tests" / "fixtures" / assignment / "submissions"):
        if (folder / "complete.ipynb").is_file():
            return folder / "complete.ipynb"
    raise SystemExit(f"no complete.ipynb sample for {assignment}")


def make_batch(notebook: Path, folder: Path, n: int) -> list:
    """``n`` distinct submissions: the notebook with a different comment in its last code cell."""
    nb = json.loads(Path(notebook).read_text())
    code = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        copy = json.loads(json.dumps(nb))
        src = copy["cells"][code[-1]]["source"]
        src = "".join(src) if isinstance(src, list) else src
        copy["cells"][code[-1]]["source"] = src + f"\n# submission {k:03d}"
        p = folder / f"student_{k:03d}.ipynb"
        p.write_text(json.dumps(copy))
        paths.append(p)
    return paths


def _timed(argv, env=None) -> float:
    t = time.perf_counter()
    r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv[:4]))} ... failed:\n{r.stderr[-2000:]}")
    return time.perf_counter() - t


# papermill's command line with jsonschema's optional rfc3987_syntax left out, as the grader and its sandbox
# do (importing it compiles a grammar for seconds): the fastest bare run, the fair baseline.
_PAPERMILL_LEAN = ("import sys; sys.modules['rfc3987_syntax'] = None; sys.argv[0] = 'papermill'; "
                   "from papermill.cli import papermill; papermill()")


def bare_papermill(notebook: Path, parameters: dict, tmp: Path, lean: bool = True) -> float:
    head = [sys.executable, "-c", _PAPERMILL_LEAN] if lean else [sys.executable, "-m", "papermill"]
    argv = head + [str(notebook), str(tmp / "bare_out.ipynb"), "--log-level", "ERROR", "--no-progress-bar",
                   "--cwd", str(tmp)]
    for k, v in parameters.items():
        argv += ["-p", k, str(v)]
    return _timed(argv)


def cli_grade(paths, assignment: str, out: Path, workers: int = 1) -> float:
    shutil.rmtree(out, ignore_errors=True)
    return _timed([sys.executable, "-m", "autograder.cli", "grade", *map(str, paths), "--assignment", assignment,
                   "--out", str(out), "--workers", str(workers)])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="fixture_hw")
    parser.add_argument("--repeats", type=int, default=3, help="overhead repeats (default 3)")
    parser.add_argument("--batch", type=int, default=20, help="submissions in the throughput batch (default 20)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 repeat, a batch of 4")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.batch = 1, 4
    os.environ.setdefault("COURSE_GRADER_SALT", "benchmark-salt")

    from autograder.grading import _seeds_for_bytes, grade_one
    from autograder.judge import shared_judge
    from autograder.suites import load_suite

    suite = load_suite(args.assignment)
    nb = sample(args.assignment)
    tmp = Path(tempfile.mkdtemp(prefix="bench-grader-"))
    print(f"grader benchmark: {args.assignment}, {nb.relative_to(ROOT)}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    # (c) needs a warm worker: start the judge and grade once before timing.
    shared_judge()
    nb_bytes = nb.read_bytes()
    seeds = _seeds_for_bytes(nb_bytes, b"benchmark-salt")
    warm = grade_one(nb_bytes, "warmup", args.assignment, seeds)["results"]
    assert warm["score"] == 100, warm["output"]

    times = {"papermill": [], "papermill_cli": [], "cold": [], "warm": [], "warm_uid": []}
    from autograder.sandbox import isolation_level
    level = isolation_level()

    def warm_grade(cap=None):
        t = time.perf_counter()
        if cap:
            os.environ["COURSE_SANDBOX_ISOLATION"] = cap
        try:
            res = grade_one(nb_bytes, "complete", args.assignment, seeds)["results"]
        finally:
            os.environ.pop("COURSE_SANDBOX_ISOLATION", None)
        if res["score"] != 100:
            raise SystemExit(f"the complete submission scored {res['score']}: {res['output']}\n"
                             f"{json.dumps(res['tests'][:1], indent=1)}\n{json.dumps(res['extra_data'], indent=1)[:3000]}")
        if not cap:
            warm_grade.last = res
        return time.perf_counter() - t

    runs = [("papermill", lambda: bare_papermill(nb, suite.parameters, tmp)),
            ("papermill_cli", lambda: bare_papermill(nb, suite.parameters, tmp, lean=False)),
            ("cold", lambda: cli_grade([nb], args.assignment, tmp / "cold")),
            ("warm", warm_grade), ("warm_uid", lambda: warm_grade("uid" if level != "none" else None))]
    for r in range(args.repeats):
        for key, fn in runs[r % len(runs):] + runs[: r % len(runs)]:     # rotate the order: fair to all
            times[key].append(fn())
        print(f"  repeat {r + 1}: papermill {times['papermill'][-1]:.2f} s (plain CLI "
              f"{times['papermill_cli'][-1]:.2f} s) | course grade, fresh process {times['cold'][-1]:.2f} s | "
              f"grading in a warm worker {times['warm'][-1]:.2f} s ({level}), "
              f"{times['warm_uid'][-1]:.2f} s (uid level)", flush=True)
    m = {k: statistics.median(v) for k, v in times.items()}
    res = warm_grade.last
    out = {"papermill_s": m["papermill"], "papermill_plain_cli_s": m["papermill_cli"],
           "grade_fresh_process_s": m["cold"], "grade_warm_worker_s": m["warm"],
           "overhead_warm": m["warm"] / m["papermill"], "overhead_fresh": m["cold"] / m["papermill"],
           "stages_s": res["extra_data"].get("durations"), "isolation": level,
           "grade_warm_worker_uid_level_s": m["warm_uid"], "isolation_cost_s": m["warm"] - m["warm_uid"]}
    print(f"overhead vs papermill ({m['papermill']:.2f} s; plain `papermill` CLI {m['papermill_cli']:.2f} s): "
          f"grading one complete submission takes {m['warm']:.2f} s in a warm worker "
          f"({out['overhead_warm']:.2f}x, target <= 1.5x) and {m['cold']:.2f} s as a fresh `course grade` "
          f"process ({out['overhead_fresh']:.2f}x: + starting the judge, which imports torch and course_lib)")
    print(f"  stages of the last one: {out['stages_s']}")
    print(f"isolation: {level}; the same grading at the uid level takes {m['warm_uid']:.2f} s: namespaces cost "
          f"{out['isolation_cost_s']:+.2f} s per submission")

    if not args.skip_throughput:
        batch = make_batch(nb, tmp / "batch", args.batch)
        t1 = cli_grade(batch, args.assignment, tmp / "w1", workers=1)
        t2 = cli_grade(batch, args.assignment, tmp / "w2", workers=2)
        from autograder.report import read_complete
        s1 = [read_complete(tmp / "w1" / p.stem / "results.json")["score"] for p in batch]
        s2 = [read_complete(tmp / "w2" / p.stem / "results.json")["score"] for p in batch]
        assert s1 == s2, "workers=2 gave other scores than workers=1"
        out.update({"batch": args.batch, "workers1_s": t1, "workers2_s": t2, "speedup": t1 / t2})
        print(f"throughput: {args.batch} submissions, 1 worker {t1:.1f} s ({t1 / args.batch:.2f} s each), "
              f"2 workers {t2:.1f} s: {t1 / t2:.2f}x (target >= 1.7x); scores equal: {s1 == s2}")
    shutil.rmtree(tmp, ignore_errors=True)
    results_dir = ROOT / "benchmarks" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "bench_grader.json").write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
