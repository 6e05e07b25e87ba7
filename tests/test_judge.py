"""The judge: scores harvested outputs in its own process, names known mistakes, never leaks hidden inputs."""
import json

import numpy as np
import pytest

from autograder.judge import JudgeProcess, decode_outputs, encode_outputs
from autograder.suites import load_suite

SEEDS = {"visible": "1234abcd", "hidden": "feedbeef"}


def correct(fname, case):
    X = case.get("X")
    if fname == "sample_mean":
        return X.mean(axis=0)
    if fname == "mle_covariance":
        D = X - X.mean(axis=0)
        return D.T @ D / len(X)
    a = case["a"]
    m = a.max()
    return float(m + np.log(np.exp(a - m).sum()))


def mistaken(fname, case):
    if fname == "mle_covariance":
        return np.cov(case["X"], rowvar=False)                     # divides by N - 1
    if fname == "log_sum_exp":
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            return float(np.log(np.sum(np.exp(case["a"]))))       # overflows for large inputs
    return correct(fname, case)


def prepare(tmp_path, impl, visibilities=("visible", "hidden"), status=None, seeds=SEEDS):
    """A judge folder as the grading process writes it, with outputs computed by ``impl``."""
    suite = load_suite("fixture_hw")
    entries = {}
    for vis in visibilities:
        cases = suite.generate_cases(np.random.default_rng(int(seeds[vis], 16)), vis)
        for fname, lst in cases.items():
            st = (status or {}).get(fname)
            entries.setdefault(fname, {})[vis] = [
                (st[0], st[1], None) if st else ("ok", "", impl(fname, c)) for c in lst]
    meta, arrays = encode_outputs(entries)
    jdir = tmp_path / "judge"
    jdir.mkdir()
    (jdir / "request.json").write_text(json.dumps({"suite": "fixture_hw", "seeds": dict(seeds),
                                                   "visibilities": list(visibilities), "functions": meta}))
    np.savez(jdir / "outputs.npz", **arrays)
    return jdir


@pytest.fixture(scope="module")
def judge():
    j = JudgeProcess().start()
    yield j
    j.close()


def test_encode_decode_round_trip(tmp_path):
    entries = {"f": {"visible": [("ok", "", (np.eye(2), 3.5)), ("ok", "", np.arange(3)), ("error", "boom", None),
                                 ("ok", "", 2.0)]}}
    meta, arrays = encode_outputs(entries)
    np.savez(tmp_path / "o.npz", **arrays)
    with np.load(tmp_path / "o.npz", allow_pickle=False) as npz:
        back = decode_outputs(meta, npz)["f"]["visible"]
    assert isinstance(back[0][2], tuple) and np.array_equal(back[0][2][0], np.eye(2)) and back[0][2][1] == 3.5
    assert np.array_equal(back[1][2], np.arange(3))
    assert back[2] == ("error", "boom", None)
    assert back[3][2] == 2.0 and isinstance(back[3][2], float)


def test_encode_rejects_non_numeric_outputs():
    meta, arrays = encode_outputs({"f": {"visible": [("ok", "", np.array(["a", "b"]))]}})
    assert meta["f"]["visible"][0]["status"] == "error" and not arrays


def test_correct_outputs_score_100(judge, tmp_path):
    out = judge.judge(prepare(tmp_path, correct))
    assert sum(c["score"] for c in out["checks"]) == pytest.approx(100.0)
    assert all(c["status"] == "passed" for c in out["checks"])


def test_known_mistakes_are_named_and_cost_points(judge, tmp_path):
    out = judge.judge(prepare(tmp_path, mistaken))
    by = {c["name"]: c for c in out["checks"]}
    cov = by["mle_covariance matches the reference"]
    assert cov["score"] == 0 and cov["cases"][0]["mistake"] == "unbiased_covariance"
    assert "N - 1" in cov["cases"][0]["message"] and "max abs error" in cov["cases"][0]["message"]
    assert by["log_sum_exp matches the reference"]["status"] == "passed"     # small visible inputs
    assert by["log_sum_exp is stable for large inputs"]["score"] == 0      # both hidden cases overflow
    assert by["sample_mean matches the reference"]["score"] == 20
    assert sum(c["score"] for c in out["checks"]) == pytest.approx(20 + 10 + 5 + 10)


def test_hidden_checks_carry_no_inputs_or_messages(judge, tmp_path):
    secret = "SECRET-INPUT-0.123456"
    status = {"mle_covariance": ("error", f"ValueError: X was {secret}")}
    out = judge.judge(prepare(tmp_path, mistaken, status=status))
    blob = json.dumps([c for c in out["checks"] if c["visibility"] == "hidden"])
    assert secret not in blob and "\"inputs\":" not in blob and "unbiased" not in blob
    hidden = {c["name"]: c for c in out["checks"] if c["visibility"] == "hidden"}
    assert hidden["mle_covariance on hidden data"]["cases"][0]["message"] == "mle_covariance raised an exception"
    visible = {c["name"]: c for c in out["checks"] if c["visibility"] == "visible"}
    assert secret in visible["mle_covariance matches the reference"]["cases"][0]["message"]


def test_partial_credit_per_case(judge, tmp_path):
    # wrong on the first hidden case only: half of that check's points
    suite = load_suite("fixture_hw")
    first = suite.generate_cases(np.random.default_rng(int(SEEDS["hidden"], 16)), "hidden")["sample_mean"][0]["X"]

    def impl(fname, case):
        v = correct(fname, case)
        return v + 1.0 if fname == "sample_mean" and case["X"] is not None and case["X"].shape == first.shape else v
    out = judge.judge(prepare(tmp_path, impl))
    hid = next(c for c in out["checks"] if c["name"] == "sample_mean on hidden data")
    assert hid["score"] == pytest.approx(5.0) and hid["status"] == "failed"


def test_public_only_runs_visible_checks(judge, tmp_path):
    out = judge.judge(prepare(tmp_path, correct, visibilities=("visible",)))
    assert {c["visibility"] for c in out["checks"]} == {"visible"}
    assert sum(c["points"] for c in out["checks"]) == 50


def test_judge_survives_a_bad_request(judge, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(RuntimeError, match="judge failed"):
        judge.judge(bad)
    assert judge.judge(prepare(tmp_path, correct))["checks"]      # still serving
