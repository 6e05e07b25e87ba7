"""The judge: scores harvested outputs in its own process, names known mistakes, never leaks hidden inputs."""
import json

import numpy as np
import pytest

from autograder import wire
from autograder.judge import JudgeProcess, decode_outputs, encode_outputs, read_inputs, write_inputs
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
    write_inputs(jdir, {"suite": "fixture_hw", "seeds": dict(seeds), "visibilities": list(visibilities),
                        "functions": meta}, arrays)
    return jdir


@pytest.fixture(scope="module")
def judge():
    j = JudgeProcess().start()
    yield j
    j.close()


def _round_trip(tmp_path, entries):
    meta, arrays = encode_outputs(entries)
    jdir = tmp_path / "rt"
    jdir.mkdir()
    write_inputs(jdir, {"suite": "fixture_hw", "functions": meta}, arrays)
    request, outputs = read_inputs(jdir)
    assert request["functions"] == meta
    return outputs


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_encode_decode_round_trip(tmp_path):
    nested = {"weights": np.array([0.25, 0.75]), "history": (np.float32(-1.5), 3, True),
              "extra": {"none": None, "z": 1 - 2j}}
    deepest = np.arange(3.0)
    for _ in range(wire.MAX_DEPTH):            # as deep as a case's output may be, through request.json too
        deepest = {"k": deepest}
    entries = {"f": {"visible": [("ok", "", (np.eye(2), 3.5)), ("ok", "", np.arange(3)), ("error", "boom", None),
                                 ("ok", "", 2.0), ("ok", "", nested), ("ok", "", np.asfortranarray(np.eye(3)[:, :2])),
                                 ("ok", "", deepest)],
                     "hidden": [("timeout", "slow", None), ("ok", "", None)]},
               "g": {"visible": [("forbidden", "uses scipy", None)]}}
    back = _round_trip(tmp_path, entries)
    for fname, by_vis in entries.items():
        for vis, lst in by_vis.items():
            assert [(s, m) for s, m, _ in back[fname][vis]] == [(s, m) for s, m, _ in lst]
            assert all(_same(v, w) for (_, _, v), (_, _, w) in zip(lst, back[fname][vis]))
    assert type(back["f"]["visible"][3][2]) is float and type(back["f"]["visible"][4][2]["history"][1]) is int
    assert back["f"]["visible"][5][2].flags.f_contiguous


def test_encode_rejects_non_numeric_outputs():
    meta, arrays = encode_outputs({"f": {"visible": [("ok", "", np.array(["a", "b"])), ("ok", "", {"mu": "x"}),
                                                     ("ok", "", 1.0)]}})
    first, second, third = meta["f"]["visible"]
    assert first["status"] == "error" and first["output"] is None and "dtype <U1" in first["message"]
    assert second["status"] == "error" and second["message"].startswith("f returned a str at ['mu']")
    assert third["status"] == "ok" and list(arrays) == ["f/visible/2/0"]


def test_outputs_nested_too_deep_cost_only_their_case(tmp_path):
    deep = 1.0
    for _ in range(wire.MAX_DEPTH + 1):
        deep = (deep,)
    back = _round_trip(tmp_path, {"f": {"visible": [("ok", "", deep), ("ok", "", deep[0])]}})["f"]["visible"]
    assert back[0][0] == "error" and f"nested more than {wire.MAX_DEPTH} deep" in back[0][1]
    assert back[1][0] == "ok" and _same(back[1][2], deep[0])


def test_a_malformed_entry_costs_only_its_case():
    meta, arrays = encode_outputs({"f": {"visible": [("ok", "", np.ones(2)), ("ok", "", np.zeros(3))]}})
    meta["f"]["visible"][0]["output"] = {"kind": "array", "key": "f/visible/1/0"}     # steals case 1's array
    meta["f"]["visible"][1]["output"]["kind"] = "pickle"
    back = decode_outputs(meta, arrays)["f"]["visible"]
    assert back[0][0] == "ok" and _same(back[0][2], np.zeros(3))
    assert back[1] == ("error", "f's output was rejected: malformed output: unknown or incomplete entry 'pickle'",
                       None)


def test_read_inputs_refuses_a_bomb_in_the_judge_folder(tmp_path):
    jdir = tmp_path / "j"
    jdir.mkdir()
    write_inputs(jdir, {"suite": "fixture_hw", "functions": {}}, {})
    (jdir / "request.json").write_bytes(b"{\"functions\": " + b"[" * 200_000 + b"]" * 200_000 + b"}")
    with pytest.raises(wire.FormatError, match="nested more than"):
        read_inputs(jdir)
    (jdir / "request.json").unlink()
    (jdir / "request.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text('{"functions": {}}')
    with pytest.raises(wire.FormatError, match="link"):
        read_inputs(jdir)


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
    # the PSD invariant is credited only with a covariance that also matches the reference: 0 of its 5 points
    assert by["mle_covariance is symmetric positive semi-definite"]["score"] == 0
    assert sum(c["score"] for c in out["checks"]) == pytest.approx(20 + 10 + 10)


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


def test_a_folder_written_as_grading_does_today_is_judged(judge, tmp_path):
    # grading.py writes request.json and outputs.npz itself (json.dumps, np.savez); the judge reads both
    src = prepare(tmp_path, correct)
    jdir = tmp_path / "by_hand"
    jdir.mkdir()
    request, _ = read_inputs(src)
    with np.load(src / "outputs.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    (jdir / "request.json").write_text(json.dumps(request))
    np.savez(jdir / "outputs.npz", **arrays)
    out = judge.judge(jdir)
    assert sum(c["score"] for c in out["checks"]) == pytest.approx(100.0)
