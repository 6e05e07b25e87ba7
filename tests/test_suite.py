"""The suite API: validation (points sum to 100), lookup by name, case generation, feedback.compare."""
import numpy as np
import pytest

from autograder.feedback import compare
from autograder.suite import Check, CheckResult, Function, Suite, invariant_judge, reference_judge
from autograder.suites import available_suites, load_suite


def _cases(rng, visibility):
    return {"f": [{"x": rng.normal(size=3)}]}


def _suite(points=(60, 40), **kw):
    checks = [Check(f"c{i}", "f", p, "visible" if i == 0 else "hidden", lambda case, out, ctx: True)
              for i, p in enumerate(points)]
    args = dict(name="toy", notebook="x.ipynb", parameters={}, functions={"f": Function(5)},
                make_cases=_cases, checks=checks)
    args.update(kw)
    return Suite(**args)


def test_points_must_sum_to_100():
    assert _suite().max_score == 100
    with pytest.raises(ValueError, match="sum to 99"):
        _suite(points=(60, 39))


@pytest.mark.parametrize("bad, match", [
    (dict(functions={}), "no graded functions"),
    (dict(name="hw 2"), "identifier"),
    (dict(checks=[Check("a", "g", 100, "visible", lambda c, o, x: True)]), "unknown function 'g'"),
    (dict(checks=[Check("a", "f", 50, "visible", lambda c, o, x: True),
                  Check("a", "f", 50, "hidden", lambda c, o, x: True)]), "two checks are named"),
])
def test_inconsistent_suites_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        _suite(**bad)


def test_check_and_function_validate_their_fields():
    with pytest.raises(ValueError, match="visibility"):
        Check("a", "f", 10, "secret", lambda c, o, x: True)
    with pytest.raises(ValueError, match="positive"):
        Check("a", "f", 0, "visible", lambda c, o, x: True)
    with pytest.raises(ValueError, match="time_budget_s"):
        Function(time_budget_s=0)
    assert Function(forbidden="numpy.cov").forbidden == ("numpy.cov",)
    assert CheckResult(1.7).score_fraction == 1.0 and CheckResult(float("nan")).score_fraction == 0.0


def test_forbidden_includes_sklearn_and_the_functions_own():
    s = load_suite("fixture_hw")
    assert s.forbidden_for("sample_mean") == ("sklearn", "course_lib.mle")
    assert s.forbidden_for("log_sum_exp") == ("sklearn",)


def test_load_suite_by_name_and_unknown_name():
    assert "fixture_hw" in available_suites()
    s = load_suite("fixture_hw")
    assert s is load_suite("fixture_hw") and s.name == "fixture_hw"
    assert sum(c.points for c in s.checks) == 100
    with pytest.raises(ValueError, match="unknown assignment 'hw9'"):
        load_suite("hw9")


def test_every_registered_suite_is_valid():
    for name in available_suites():
        s = load_suite(name)
        assert sum(c.points for c in s.checks) == pytest.approx(100)
        for vis in ("visible", "hidden"):
            if s.checks_for(vis):
                cases = s.generate_cases(np.random.default_rng(0), vis)
                assert set(cases) == {c.function for c in s.checks_for(vis)}


def test_cases_are_deterministic_given_the_rng_and_differ_across_seeds():
    s = load_suite("fixture_hw")
    a = s.generate_cases(np.random.default_rng(5), "hidden")
    b = s.generate_cases(np.random.default_rng(5), "hidden")
    c = s.generate_cases(np.random.default_rng(6), "hidden")
    assert np.array_equal(a["sample_mean"][0]["X"], b["sample_mean"][0]["X"])
    assert not np.array_equal(a["sample_mean"][0]["X"], c["sample_mean"][0]["X"])


# ---------------------------------------------------------------------------------- feedback.compare
def test_compare_reports_shape_dtype_errors_and_where():
    exp = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = exp.copy()
    got[1, 0] += 0.5
    r = compare(got, exp, rtol=1e-10, atol=1e-12)
    assert r.score_fraction == 0 and r.mistake is None
    assert "max abs error 0.5 at [1, 0]" in r.message and "max rel error" in r.message and "float64" in r.message
    assert compare(exp + 1e-14, exp, rtol=1e-10, atol=1e-12).passed
    r = compare(np.ones(3), exp)
    assert "expected shape (2, 2)" in r.message and "got shape (3,)" in r.message
    wide = np.array([[1.0, 2.0, 5.0], [3.0, 4.0, 6.0]])
    assert "transposed" in compare(wide, wide.T, 1e-9, 0).message
    r = compare(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    assert "NaN" in r.message and r.score_fraction == 0


@pytest.mark.parametrize("name, wrong, right", [
    ("unbiased_covariance", lambda X: np.cov(X.T), lambda X: np.cov(X.T, bias=True)),
    ("sum_vs_mean", lambda X: X.sum(0), lambda X: X.mean(0)),
    ("kl_wrong_sign", lambda X: -(X ** 2).sum(), lambda X: (X ** 2).sum()),
])
def test_compare_names_the_matching_known_mistake(name, wrong, right):
    X = np.random.default_rng(0).normal(size=(8, 3))
    others = {"sum_vs_mean": X.sum(0) * 3, "unbiased_covariance": np.cov(X.T), "kl_wrong_sign": -(X ** 2).sum()}
    alts = {name: wrong(X), **{k: v for k, v in others.items() if k != name and np.shape(v) != np.shape(wrong(X))}}
    r = compare(wrong(X), right(X), rtol=1e-10, atol=1e-12, mistakes=alts)
    assert r.mistake == name and "known mistake" in r.message
    assert compare(right(X), right(X), mistakes=alts).mistake is None


def test_compare_missing_logsumexp_overflow():
    a = np.array([1000.0, 1001.0])
    with np.errstate(over="ignore"):
        naive = float(np.log(np.exp(a).sum()))
    r = compare(naive, float(np.logaddexp(*a)), 1e-10, 1e-12, mistakes={"missing_logsumexp": naive})
    assert r.mistake == "missing_logsumexp" and "log-sum-exp" in r.message


def test_compare_tuples_give_partial_credit():
    r = compare((np.ones(2), 3.0), (np.ones(2), 4.0))
    assert r.score_fraction == 0.5 and "output 1" in r.message
    assert compare([1.0, 2.0], np.array([1.0, 2.0])).passed        # a list of numbers is one array


def test_ready_made_judges():
    j = reference_judge(lambda case: case["x"] * 2, rtol=1e-12, atol=0,
                        mistakes={"sum_vs_mean": lambda case: case["x"]})
    case = {"x": np.arange(3.0)}
    assert j(case, np.arange(3.0) * 2, None).passed
    assert j(case, np.arange(3.0), None).mistake == "sum_vs_mean"
    inv = invariant_judge(lambda case, out: np.all(out >= 0), "must be non-negative", mistake="kl_wrong_sign")
    assert inv(case, -np.ones(2), None) == CheckResult(0.0, "must be non-negative", "kl_wrong_sign")


def test_invariant_judge_with_a_reference_credits_only_the_right_value():
    """An invariant alone is satisfied by degenerate outputs; with a reference it is credited only with it."""
    right = np.array([0.5, 2.0])
    inv = invariant_judge(lambda case, out: np.all(np.asarray(out) >= 0), "must be non-negative",
                          mistake="kl_wrong_sign", reference=lambda case: right, rtol=1e-10, atol=0)
    assert inv({}, right, None).passed
    assert inv({}, np.zeros(2), None).score_fraction == 0.0                    # never negative, but wrong
    assert inv({}, -right, None).mistake == "kl_wrong_sign"


# ---------------------------------------------------------------------------------- helpers shared by suites
def test_shared_helpers():
    from autograder.suites import _common
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    B = rng_b.normal(size=(4, 4))
    S = _common.random_spd(rng_a, 4, scale=2.0, jitter=0.3)
    assert np.allclose(S, 2.0 * (B @ B.T / 4 + 0.3 * np.eye(4))) and np.linalg.eigvalsh(S).min() > 0
    assert rng_a.random() == rng_b.random()                      # the same draws: cases do not move
    t = _common.as_tensor([[1, 2]], np.float32)
    assert str(t.dtype) == "torch.float32" and _common.as_numpy(t).dtype == np.float32
    assert _common.scalar(np.array([[2.5]])) == 2.5
    with pytest.raises(ValueError, match="single number"):
        _common.scalar(np.ones(2))
    ref = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    assert list(_common.match_components(ref, ref[[2, 0, 1]] + 0.1)) == [1, 2, 0]
    big = np.arange(9.0)[:, None] * np.ones((1, 2))
    assert list(_common.match_components(big, big[::-1])) == list(range(8, -1, -1))     # greedy beyond K = 7
    assert "_common" not in available_suites()


def test_no_suite_defines_its_own_copy_of_a_shared_helper():
    import inspect

    from autograder.suites import hw1_mle, hw2_em, hw3_linear, hw4_vae
    for module in (hw1_mle, hw2_em, hw3_linear, hw4_vae):
        source = inspect.getsource(module)
        for name in ("_spd", "_t", "_np", "_elbo_bound_judge", "_scalar"):
            assert f"def {name}(" not in source, f"{module.__name__} defines {name}: use autograder.suites._common"
