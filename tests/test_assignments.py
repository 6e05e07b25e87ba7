"""The four assignments graded on the samples in examples/HW/: the complete solution scores 100, the
released stub 0 (cleanly, one reason per function), and every sample with a planted known mistake gets
partial credit with the mistake named in its feedback.

End to end through ``autograder.grading`` (sandbox + judge, about ten seconds per notebook on a busy
two-core machine) the tests grade every sample of hw2_em and the complete solution of the other three;
``COURSE_FULL_E2E=1`` grades every sample of every assignment that way. The remaining samples are judged
in-process with the same suites (their functions run here, no sandbox): fast, and the same judges.
"""
import importlib
import json
import os
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "solutions"))

from make_examples import MISTAKES, example_notebooks  # noqa: E402

from autograder.release import ASSIGNMENTS  # noqa: E402
from autograder.suite import JudgeContext, case_arguments, probe_arguments  # noqa: E402


FULL_E2E = os.environ.get("COURSE_FULL_E2E") == "1"
E2E = [hw if hw == "hw2_em" or FULL_E2E else None for hw in ASSIGNMENTS]


def _suite(hw):
    return importlib.import_module(f"autograder.suites.{hw}")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """{hw: {sample: results.json dict}}, graded lazily (one batch per assignment)."""
    from autograder.grading import grade_batch

    cache = {}

    def get(hw):
        if hw not in cache:
            out = tmp_path_factory.mktemp(f"grades_{hw}")
            samples = sorted((ROOT / "examples" / hw).glob("*.ipynb"))
            if hw != "hw2_em" and not FULL_E2E:
                samples = [p for p in samples if p.stem == "complete"]
            grade_batch([str(p) for p in samples], hw, str(out), workers=1, salt=b"tests", progress=False)
            by_name = {}
            for p in samples:
                hits = list(out.glob(f"{p.stem}*/results.json"))
                assert hits, f"no results.json for {p.name} in {out}"
                by_name[p.stem] = json.loads(hits[0].read_text())
            cache[hw] = by_name
        return cache[hw]
    return get


def _failing_outputs(res):
    return "\n".join(t.get("output", "") for t in res["tests"] if t["score"] < t["max_score"])


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_complete_solution_scores_100(graded, hw):
    res = graded(hw)["complete"]
    assert res["score"] == pytest.approx(100.0), _failing_outputs(res)


@pytest.mark.parametrize("hw", [h for h in E2E if h])
def test_stub_scores_zero_with_one_line_per_function(graded, hw):
    """The untouched stub: every check still in results.json (Gradescope's tests), but a person reads one line
    per function, in the feedback and from `course check`, never one per check."""
    import re

    from autograder import report
    from autograder.grading import format_check
    res = graded(hw)["stub"]
    assert res["score"] == 0.0
    suite = _suite(hw).SUITE
    assert len(res["tests"]) == len(suite.checks)
    assert res["extra_data"]["functions"] == {f: "stub" for f in suite.functions}
    shown = report.display_tests(res)
    assert [t["name"] for t in shown] == [f"{f} is not written yet" for f in suite.functions]
    assert sum(t["max_score"] for t in shown) == pytest.approx(100.0)
    md = report.render_markdown(res)
    for fname in suite.functions:    # the summary line and the table row, nothing per check
        assert len(re.findall(rf"(?<![A-Za-z0-9_]){fname}(?![A-Za-z0-9_])", md)) == 2, (fname, md)
    printed = format_check(res)
    assert printed.count("TODO  ") == len(suite.functions) and "FAIL" not in printed


@pytest.mark.parametrize("hw,mistake", [(hw, m) for hw in E2E if hw for m in MISTAKES[hw]])
def test_known_mistake_gets_partial_credit_and_is_named(graded, hw, mistake):
    res = graded(hw)[mistake]
    assert 0.0 < res["score"] < 100.0, _failing_outputs(res)
    assert f"known mistake ({mistake})" in _failing_outputs(res), _failing_outputs(res)


# ------------------------------------------------------------------------------ the suites, in-process
def _namespace(path):
    """Run a notebook's imports, parameters, given definitions and solution cells (our own samples)."""
    nb = nbformat.read(str(path), as_version=4)
    ns = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        first = cell.source.lstrip().split("\n", 1)[0]
        if cell.cell_type == "code" and (meta.get("solution") or "parameters" in cell.metadata.get("tags", [])
                                         or first.startswith(("import", "from", "class"))):
            exec(compile(cell.source, f"<{path.name}>", "exec"), ns)
    return ns


def _as_data(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
        return value[()] if value.ndim == 0 else value
    if isinstance(value, tuple):
        return tuple(_as_data(v) for v in value)
    return value


def judge_in_process(hw, path, seeds=(11,)):
    """(score, {mistake names seen in visible checks}, {function: error}) of a notebook's functions."""
    import torch
    torch.set_num_threads(1)
    module = _suite(hw)
    suite = module.SUITE
    ns = _namespace(path)
    score, mistakes, errors = 0.0, set(), {}
    for seed in seeds:
        for vis in ("visible", "hidden"):
            cases = suite.generate_cases(np.random.default_rng([seed, vis == "hidden"]), vis)
            outputs = {}
            for f, lst in cases.items():
                outputs[f] = []
                for c in lst:
                    try:
                        out = ns[f](**case_arguments(c))
                        if suite.functions[f].probe:      # what the harvest does in the sandbox
                            probe = {}
                            exec(suite.functions[f].probe, probe)
                            out = probe["probe"](out, **probe_arguments(c))
                        outputs[f].append(_as_data(out))
                    except Exception as exc:
                        errors[f] = type(exc).__name__
                        outputs[f].append(None)
            for check in suite.checks_for(vis):
                fractions = []
                for i, case in enumerate(cases[check.function]):
                    out = outputs[check.function][i]
                    if out is None:
                        fractions.append(0.0)
                        continue
                    res = check.run(case, out, JudgeContext(suite, check, i, cases, outputs, suite.parameters))
                    fractions.append(res.score_fraction)
                    if vis == "visible" and res.mistake:
                        mistakes.add(res.mistake)
                score += check.points * float(np.mean(fractions)) / len(seeds)
    return score, mistakes, errors


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_solution_passes_every_check_in_process(hw):
    score, mistakes, errors = judge_in_process(hw, ROOT / "solutions" / hw / f"{hw}.ipynb")
    assert not errors and not mistakes
    assert score == pytest.approx(100.0)


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_stub_scores_zero_in_process(hw):
    score, _, errors = judge_in_process(hw, ROOT / "examples" / hw / "stub.ipynb")
    assert score == 0.0
    assert errors == {f: "NotImplementedError" for f in _suite(hw).SUITE.functions}


@pytest.mark.parametrize("hw,mistake", [(hw, m) for hw in ASSIGNMENTS for m in MISTAKES[hw]])
def test_known_mistake_partial_credit_in_process(hw, mistake):
    score, mistakes, _ = judge_in_process(hw, ROOT / "examples" / hw / f"{mistake}.ipynb")
    assert 0.0 < score < 100.0
    assert mistake in mistakes


@pytest.mark.parametrize("hw", ASSIGNMENTS)
def test_sample_submissions_are_in_sync_with_the_solution(hw):
    """examples/HW/*.ipynb are what solutions/make_examples.py makes from the solution notebook."""
    for name, nb in example_notebooks(hw).items():
        committed = nbformat.read(str(ROOT / "examples" / hw / f"{name}.ipynb"), as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in nb.cells], \
            f"examples/{hw}/{name}.ipynb is out of date: run python solutions/make_examples.py {hw}"


def test_a_train_vae_that_ignores_its_data_gets_no_training_points(tmp_path):
    """A train_vae that trains on the digits it can load itself (or returns weights trained elsewhere)
    instead of X: the case's data come from a generative model drawn at random per case, so its model is no
    better than the baseline."""
    nb = nbformat.read(str(ROOT / "examples" / "hw4_vae" / "complete.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "def train_vae" in c.source)
    body = "    X = torch.as_tensor(X, dtype=torch.float32)\n"
    assert body in cell.source
    cell.source = cell.source.replace(body, "    from course_lib.data import load_digits\n"
                                            "    X = torch.as_tensor(load_digits('train')[0], dtype=torch.float32)\n")
    path = tmp_path / "ignores_x.ipynb"
    nbformat.write(nb, str(path))
    points = sum(c.points for c in _suite("hw4_vae").SUITE.checks if c.function == "train_vae")
    score, _, errors = judge_in_process("hw4_vae", path)
    assert not errors and score == pytest.approx(100.0 - points, abs=1e-6), score


def test_the_train_vae_cases_are_no_public_digits_in_any_pixel_order():
    """What a notebook could embed and recognise in the sandbox: no row of a case's data holds the values of a
    public digit, whatever the order of its pixels (the rows are sorted), and each case has its own data."""
    from course_lib.data import load_digits
    suite = _suite("hw4_vae").SUITE
    public = {row.tobytes() for row in np.sort(load_digits(None)[0].astype(np.float32), axis=1)}
    seen = []
    for seed in (11, 12):
        for vis in ("visible", "hidden"):
            case = suite.generate_cases(np.random.default_rng([seed, vis == "hidden"]), vis)["train_vae"][0]
            for X in (np.asarray(case["X"], dtype=np.float32), np.asarray(case["_X_eval"], dtype=np.float32)):
                assert not any(row.tobytes() in public for row in np.sort(X, axis=1)), (seed, vis)
            seen.append(np.asarray(case["X"]).mean(axis=0))
    assert all(not np.allclose(a, b, atol=0.05) for i, a in enumerate(seen) for b in seen[i + 1:])
