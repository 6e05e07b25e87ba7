"""The suite API: validation (points sum to 100), lookup by name, case generation, feedback.compare; the
suites reach course_lib only through its public names and compute no reference of their own."""
import ast
from pathlib import Path

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
    assert "fixture_hw" in available_suites(fixtures=True) and "fixture_hw" not in available_suites()
    s = load_suite("fixture_hw")
    assert s is load_suite("fixture_hw") and s.name == "fixture_hw"
    assert sum(c.points for c in s.checks) == 100
    with pytest.raises(ValueError, match="unknown assignment 'hw9'") as info:
        load_suite("hw9")
    assert "fixture_hw" not in str(info.value)   # the test fixture never appears in what users are offered


def test_every_registered_suite_is_valid():
    for name in available_suites(fixtures=True):
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


# ---------------------------------------------------------------------------------- suites use course_lib's front door
SUITE_FILES = sorted((Path(__file__).resolve().parent.parent / "autograder" / "suites").glob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _root(node):
    """The name an expression such as ``a.b(c)[0].d`` starts from (``a``), or None."""
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _bound_names(target) -> set:
    """The names an assignment target binds or mutates (``x``, ``a, b``, ``cache[key]``, ``obj.attr``)."""
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _bindings(tree):
    """(target names, value) for every assignment-like binding, and (function name, returned value)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            yield set().union(*(_bound_names(t) for t in node.targets)), node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)) and node.value is not None:
            yield _bound_names(node.target), node.value
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            yield _bound_names(node.target), node.iter
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    yield _bound_names(item.optional_vars), item.context_expr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    yield {node.name}, ret.value


def private_course_lib_uses(source: str) -> list:
    """Every private course_lib name a module reaches, as ``"line N: what"``.

    Private: a dotted part after ``course_lib.`` or an imported name that starts with "_" (dunders aside),
    and an attribute starting with "_" read from anything that comes from course_lib: its modules, the
    names imported from it, and (followed through assignments and return values) the objects made from
    them, such as an estimator ``gm = GaussianMixture(...)`` whose ``gm._estimate_from_resp`` is private.
    ``getattr(obj, "_name")`` and ``importlib.import_module("course_lib._x")`` count too.
    """
    tree = ast.parse(source)
    found, tainted = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "course_lib":
                    tainted.add(alias.asname or parts[0])
                    if any(_private(p) for p in parts[1:]):
                        found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "course_lib":
            private_module = any(_private(p) for p in node.module.split(".")[1:])
            for alias in node.names:
                tainted.add(alias.asname or alias.name)
                if private_module or _private(alias.name):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    changed = True
    while changed:                              # follow course_lib's objects through assignments and returns
        changed = False
        for targets, value in _bindings(tree):
            if targets - tainted and {n.id for n in ast.walk(value) if isinstance(n, ast.Name)} & tainted:
                tainted |= targets
                changed = True
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and _root(node.value) in tainted:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if name in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2 \
                    and _root(node.args[0]) in tainted and any(_private(text) for text in strings):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
            elif name in ("import_module", "__import__") and any(
                    text.split(".")[0] == "course_lib" and any(_private(p) for p in text.split(".")[1:])
                    for text in strings):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


PRIVATE_USES = {
    "private module": "from course_lib._gaussian import log_gaussian_pdf",
    "private name": "from course_lib.missing_data import _complete, _Layout",
    "private module, imported whole": "import course_lib._gaussian as g",
    "private attribute of the package": "import course_lib\nf = course_lib._base.few_threads",
    "private attribute of a module alias": "from course_lib import mixture as mx\np = mx._Params",
    "private method of an estimator": ("from course_lib.mixture import GaussianMixture\n"
                                       "def ref(X, r):\n    gm = GaussianMixture(reg_covar=0.0)\n"
                                       "    return gm._estimate_from_resp(X, r)"),
    "private static method on the class": ("from course_lib import MissingDataGaussian\n"
                                           "m = MissingDataGaussian._m_step(X, C)"),
    "private method on a fitted estimator": "import course_lib\nfa = course_lib.FactorAnalysis(2).fit(X)\nfa._params()",
    "an estimator a helper returned": ("def model(A):\n    from course_lib import FactorAnalysis\n"
                                       "    fa = FactorAnalysis(n_components=2)\n    return fa\n"
                                       "def ref(A):\n    return model(A)._check_input(A, reset=True)"),
    "an estimator kept in a cache": ("from course_lib import VAE\n_CACHE = {}\n_CACHE['k'] = VAE(4, 2)\n"
                                     "x = _CACHE['k']._encode(X, None)"),
    "getattr with a private name": "from course_lib import PCA\npca = PCA(2)\ngetattr(pca, '_check_params')()",
    "import_module": "import importlib\ng = importlib.import_module('course_lib._gaussian')",
}
PUBLIC_USES = {
    "public steps and from_params": ("from course_lib.mixture import e_step, m_step\n"
                                     "from course_lib import FactorAnalysis, GaussianMixture\n"
                                     "fa = FactorAnalysis.from_params(C, D)\nm = fa.posterior(X)\n"
                                     "gm = GaussianMixture(2).fit(X)\nw = gm.weights_, gm.__class__.__name__\n"
                                     "r = e_step(X, w, m, S)[0]"),
    "private names of other modules": ("from autograder.suites._common import as_numpy as _np\n"
                                       "import numpy as np\nrng = np.random.default_rng(0)\nb = rng._bit_generator"),
    "forbidden names written as text": "_FORBID = ('course_lib._gaussian', 'course_lib.mle')",
}


@pytest.mark.parametrize("what", sorted(PRIVATE_USES))
def test_the_private_name_check_finds_each_way_of_reaching_course_lib_internals(what):
    assert private_course_lib_uses(PRIVATE_USES[what]), what


@pytest.mark.parametrize("what", sorted(PUBLIC_USES))
def test_the_private_name_check_passes_public_use(what):
    assert private_course_lib_uses(PUBLIC_USES[what]) == []


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.name)
def test_suites_use_no_private_course_lib_name(path):
    uses = private_course_lib_uses(path.read_text())
    assert not uses, f"{path.name} reaches private course_lib code (use its public API): " + "; ".join(uses)


def test_every_suite_module_is_checked():
    names = {p.stem for p in SUITE_FILES}
    assert {"hw1_mle", "hw2_em", "hw3_linear", "hw4_vae", "_common"} <= names
    assert set(available_suites()) - {"fixture_hw"} <= names


#: Linear algebra a reference would need if a suite computed it itself rather than asking course_lib.
_OWN_MATHEMATICS = ("np.linalg", "numpy.linalg", "torch.linalg", "scipy")


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.name)
def test_reference_functions_compute_nothing_themselves(path):
    """Every ``ref_*`` function takes its values from course_lib: no linear algebra of its own (the old
    factor-analysis reference solved its M-step with np.linalg.solve, the mixture one inverted a covariance)."""
    tree = ast.parse(path.read_text())
    bad = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and fn.name.startswith("ref_"):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Attribute, ast.Name)):
                    text = ast.unparse(node)
                    if any(text == m or text.startswith(m + ".") for m in _OWN_MATHEMATICS):
                        bad.append(f"{fn.name} (line {node.lineno}): {text}")
    assert not bad, f"{path.name}: " + "; ".join(sorted(set(bad)))


def test_no_suite_changes_torch_threads():
    """torch.set_num_threads sets a process-wide default (and MKL's dynamic flag): a judge must not call it."""
    for path in SUITE_FILES:
        calls = [n.lineno for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Attribute) and n.attr in ("set_num_threads", "set_num_interop_threads")]
        assert not calls, f"{path.name} changes torch's thread count at lines {calls}"


def test_vae_reference_training_leaves_the_thread_count_alone(monkeypatch):
    import threading

    import torch

    from autograder.suites import hw4_vae

    def refuse(n):
        raise AssertionError("the reference training called torch.set_num_threads")

    before = torch.get_num_threads()
    monkeypatch.setattr(torch, "set_num_threads", refuse)
    rng = np.random.default_rng(0)
    X = (rng.random((60, 16)) < 0.3).astype(np.float32)
    case = {"X": torch.from_numpy(X), "latent_dim": 2, "epochs": 1, "seed": 3, "_X_eval": X[:20],
            "_eps": rng.normal(size=(20, 2)).astype(np.float32)}
    assert np.isfinite(hw4_vae.ref_trained_loss(case))
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert torch.get_num_threads() == before and seen == [before]


@pytest.mark.parametrize("hw, functions", [
    ("hw1_mle", ("gda_predict_proba",)),
    ("hw2_em", ("log_gaussian_pdf", "e_step", "m_step", "elbo", "fit_gmm")),
])
def test_public_gaussian_log_density_is_forbidden_where_densities_are_the_exercise(hw, functions):
    """course_lib.mle.gaussian_log_likelihood(..., per_observation=True) is a log-density: forbidden in the
    functions built on one, and the solution notebook and its samples pass the static check without it."""
    import nbformat

    from autograder.static_check import check_notebook, check_submission
    suite = load_suite(hw)
    assert all("course_lib.mle" in suite.forbidden_for(f) for f in functions)
    root = Path(__file__).resolve().parent.parent
    for path in [root / "solutions" / hw / f"{hw}.ipynb", *(root / "examples" / hw).glob("*.ipynb")]:
        assert check_submission(path, suite).violations == [], path.name
    source = ("def {f}(*args):\n    from course_lib.mle import gaussian_log_likelihood\n"
              "    return gaussian_log_likelihood(*args[:3], per_observation=True)\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source.format(f=f)) for f in functions])
    for f in functions:
        report = check_notebook(nb, functions, suite.forbidden_for(f))
        assert "course_lib.mle" in {v.forbidden for v in report.violations}, f


def test_hw2_fit_reference_is_the_estimator_from_the_notebooks_initialisation():
    """The EM steps the fit_gmm reference iterates are what GaussianMixture runs from the same start."""
    import warnings

    from course_lib import GaussianMixture
    from course_lib.mle import gaussian

    from autograder.suites import hw2_em
    case = hw2_em.SUITE.generate_cases(np.random.default_rng(4), "hidden")["fit_gmm"][0]
    ref = hw2_em.ref_fit_gmm(case)
    X, K, n_iter = case["X"], case["K"], case["n_iter"]
    means0 = X[np.random.default_rng(case["seed"]).choice(len(X), size=K, replace=False)]
    gm = GaussianMixture(K, tol=0.0, reg_covar=0.0, max_iter=n_iter, weights_init=np.full(K, 1.0 / K),
                         means_init=means0, precisions_init=np.repeat(np.linalg.inv(gaussian(X)[1])[None], K, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # tol=0 never "converges"
        gm.fit(X)
    # float64, the same iteration from the same start: rounding only (a precision given instead of a covariance)
    assert np.allclose(ref["history"], np.asarray(gm.lower_bounds_) * len(X), rtol=1e-10, atol=0)
    for name, attr in (("weights", "weights_"), ("means", "means_"), ("covs", "covariances_")):
        assert np.allclose(ref[name], getattr(gm, attr), rtol=1e-9, atol=1e-12), name
    assert np.all(np.diff(ref["history"]) >= -1e-9 * np.abs(ref["history"][1:]))


def test_the_judge_keeps_only_the_latest_vae_reference_models(monkeypatch):
    """A batch's judge process scores submission after submission, each with cases of its own: the reference
    VAEs trained for them do not pile up, and a case scored twice reuses its model."""
    import torch

    from autograder.suites import hw4_vae

    monkeypatch.setattr(hw4_vae, "_REFERENCE_MODELS", {})
    rng = np.random.default_rng(0)
    X = (rng.random((30, 8)) < 0.3).astype(np.float32)
    cases = [{"X": torch.from_numpy(X), "latent_dim": 2, "epochs": 1, "seed": s, "_X_eval": X[:10],
              "_eps": rng.normal(size=(10, 2)).astype(np.float32)} for s in range(hw4_vae._KEEP_MODELS + 3)]
    first = hw4_vae.ref_trained_loss(cases[-1])
    assert hw4_vae.ref_trained_loss(cases[-1]) == first and len(hw4_vae._REFERENCE_MODELS) == 1
    for case in cases:
        hw4_vae.ref_trained_loss(case)
    assert len(hw4_vae._REFERENCE_MODELS) == hw4_vae._KEEP_MODELS
    assert max(key[0] for key in hw4_vae._REFERENCE_MODELS) == len(cases) - 1
