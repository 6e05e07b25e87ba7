"""Hostile outputs fed straight to the suites' judges: a degenerate answer scores 0, a correct one full marks.

Each test builds a case with the suite's own ``make_cases`` and a fixed rng, builds what a submission gaming
the check would return, and calls the check's judge (no sandbox, no notebook run). Correct outputs come from
the solution notebooks' own functions, run here.
"""
import functools
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from autograder.suite import JudgeContext, case_arguments, probe_arguments
from autograder.suites import load_suite

ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=None)
def solution(hw):
    """The solution notebook's imports, given code and graded functions, defined in a namespace here."""
    nb = nbformat.read(str(ROOT / "solutions" / hw / f"{hw}.ipynb"), as_version=4)
    ns = {}
    for cell in nb.cells:
        first = cell.source.lstrip().split("\n", 1)[0]
        if cell.cell_type == "code" and (cell.metadata.get("nbgrader", {}).get("solution")
                                         or first.startswith(("import", "from", "class"))):
            exec(compile(cell.source, f"<{hw} solution>", "exec"), ns)
    return ns


def cases(hw, visibility, seed=0):
    return load_suite(hw).generate_cases(np.random.default_rng(seed), visibility)


def as_data(value):
    """What the harvest hands the judge: tensors as arrays, tuples kept."""
    if isinstance(value, (tuple, list)):
        return tuple(as_data(v) for v in value)
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
        return value[()] if value.ndim == 0 else value
    return value


def run_checks(hw, function, visibility, case_index, output, all_cases):
    """{check name: CheckResult} of every check of ``function`` with this visibility, on one case."""
    suite = load_suite(hw)
    out = {}
    for check in suite.checks_for(visibility):
        if check.function == function:
            ctx = JudgeContext(suite, check, case_index, all_cases, {function: [output]}, suite.parameters)
            out[check.name] = check.run(all_cases[function][case_index], output, ctx)
    assert out, f"{hw} has no {visibility} check of {function}"
    return out


def correct(hw, function, case):
    ns = solution(hw)
    output = ns[function](**case_arguments(case))
    probe = load_suite(hw).functions[function].probe
    if probe:
        scope = {}
        exec(probe, scope)
        output = scope["probe"](output, **probe_arguments(case))
    return as_data(output)


# ------------------------------------------------------------------------------ hw2_em: fit_gmm
VISIBILITIES = ("visible", "hidden")


def _spike(case, cov_scale):
    """No EM: component 0 a spike of covariance cov_scale * I on a data point, the others the whole data's
    Gaussian, equal weights, and a history rising to just below the likelihood of these parameters (which
    a spike makes as large as one likes)."""
    from autograder.suites.hw2_em import ref_log_likelihood
    X, K, n_iter = case["X"], int(case["K"]), int(case["n_iter"])
    d = X.shape[1]
    covs = np.repeat(np.cov(X, rowvar=False, bias=True)[None], K, axis=0)
    covs[0] = cov_scale * np.eye(d)
    means = np.repeat(X.mean(0)[None], K, axis=0)
    means[0] = X[0]
    weights = np.full(K, 1.0 / K)
    final = ref_log_likelihood(X, weights, means, covs)
    return weights, means, covs, np.linspace(final - 500.0, final - 1.0, n_iter)


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_fit_gmm_collapsed_components_score_zero(visibility):
    all_cases = cases("hw2_em", visibility)
    case = all_cases["fit_gmm"][0]
    results = run_checks("hw2_em", "fit_gmm", visibility, 0, _spike(case, 1e-200), all_cases)
    assert {name: r.score_fraction for name, r in results.items()} == {name: 0.0 for name in results}


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_fit_gmm_spikes_above_the_floor_never_earn_full_marks(visibility):
    from autograder.suites.hw2_em import PARTIAL_MAX
    all_cases = cases("hw2_em", visibility)
    case = all_cases["fit_gmm"][0]
    results = run_checks("hw2_em", "fit_gmm", visibility, 0, _spike(case, 1e-3 * case["X"].var(0).mean()), all_cases)
    assert all(r.score_fraction <= PARTIAL_MAX for r in results.values()), results


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_fit_gmm_made_up_history_scores_zero(visibility):
    """EM's final parameters (from the solution), reported next to a history that is not EM's: a straight
    line between its first and last values never goes down, but no EM produced it. On Old Faithful EM ends
    at one optimum from almost every start, so those parameters could be written into the notebook: the
    optimum is credited only together with EM's own history."""
    all_cases = cases("hw2_em", visibility)
    w, m, S, lls = correct("hw2_em", "fit_gmm", all_cases["fit_gmm"][0])
    for fake in (np.linspace(lls[0], lls[-1], len(lls)), np.full(len(lls), lls[-1])):
        results = run_checks("hw2_em", "fit_gmm", visibility, 0, (w, m, S, fake), all_cases)
        assert all(r.score_fraction == 0.0 for r in results.values()), results


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_fit_gmm_correct_output_scores_full_marks_in_any_component_order(visibility):
    all_cases = cases("hw2_em", visibility)
    w, m, S, lls = correct("hw2_em", "fit_gmm", all_cases["fit_gmm"][0])
    order = np.roll(np.arange(len(w)), 1)
    for output in ((w, m, S, lls), (w[order], m[order], S[order], lls)):
        results = run_checks("hw2_em", "fit_gmm", visibility, 0, output, all_cases)
        assert all(r.passed for r in results.values()), {n: r.message for n, r in results.items()}


def test_fit_gmm_hidden_cases_start_em_from_every_cluster():
    """The hidden case's initial means come from three different blobs, so the reference EM never collapses
    a component (with two starts in one blob it did, for 2% of seeds, and then no answer could be right)."""
    from autograder.suites.hw2_em import ref_fit_gmm
    for seed in range(10):
        case = cases("hw2_em", "hidden", seed)["fit_gmm"][0]
        starts = np.random.default_rng(case["seed"]).choice(len(case["X"]), size=3, replace=False)
        assert len(set((starts // 60).tolist())) == 3
        assert np.linalg.eigvalsh(ref_fit_gmm(case)["covs"]).min() > 1e-3 * case["X"].var(0).mean()


# ------------------------------------------------------------------------------ bounds: hw2 elbo, hw3 fa_elbo
BOUND_CHECKS = [("hw2_em", "elbo"), ("hw3_linear", "fa_elbo")]


@pytest.mark.parametrize("hw, function", BOUND_CHECKS)
def test_elbo_far_below_the_bound_scores_zero(hw, function):
    """-1e300 is below log p(X) for every case (and would match 'equal at the posterior' never): the bound
    check credits it nothing, nor a value just below the bound that is not the ELBO."""
    all_cases = cases(hw, "hidden")
    for i, case in enumerate(all_cases[function]):
        right = correct(hw, function, case)
        for hostile in (-1e300, float(right) - 1.0):
            results = run_checks(hw, function, "hidden", i, hostile, all_cases)
            assert {n: r.score_fraction for n, r in results.items()} == {n: 0.0 for n in results}, (case["_kind"],
                                                                                                     hostile)


@pytest.mark.parametrize("hw, function", BOUND_CHECKS)
def test_correct_elbo_scores_full_marks_on_every_kind_of_distribution(hw, function):
    all_cases = cases(hw, "hidden")
    kinds = set()
    for i, case in enumerate(all_cases[function]):
        results = run_checks(hw, function, "hidden", i, correct(hw, function, case), all_cases)
        assert all(r.passed for r in results.values()), {n: r.message for n, r in results.items()}
        kinds.add(case["_kind"])
    assert "posterior" in kinds and len(kinds) == 3


# ------------------------------------------------------------------------------ hw3 fa_em_step: never lowers
def test_fa_em_step_that_changes_nothing_scores_zero():
    all_cases = cases("hw3_linear", "hidden")
    case = all_cases["fa_em_step"][0]
    results = run_checks("hw3_linear", "fa_em_step", "hidden", 0, (case["A"].copy(), case["D"].copy()), all_cases)
    assert {n: r.score_fraction for n, r in results.items()} == {n: 0.0 for n in results}


def test_correct_fa_em_step_scores_full_marks():
    all_cases = cases("hw3_linear", "hidden")
    output = correct("hw3_linear", "fa_em_step", all_cases["fa_em_step"][0])
    results = run_checks("hw3_linear", "fa_em_step", "hidden", 0, output, all_cases)
    assert len(results) == 2 and all(r.passed for r in results.values())


def test_fa_em_step_with_non_finite_entries_scores_zero_with_a_reason():
    """NaN or infinite parameters score 0 in the invariant check, which refuses them itself (course_lib's
    from_params raises on them), and never full marks in the comparison."""
    all_cases = cases("hw3_linear", "hidden")
    A, D = correct("hw3_linear", "fa_em_step", all_cases["fa_em_step"][0])
    for output in ((np.full_like(A, np.nan), D), (A, np.full_like(D, np.inf)), (A, np.where(D > D.min(), D, np.nan))):
        results = run_checks("hw3_linear", "fa_em_step", "hidden", 0, output, all_cases)
        monotone = results.pop("fa_em_step never lowers the log-likelihood")
        assert monotone.score_fraction == 0.0 and "finite" in monotone.message
        assert all(r.score_fraction < 1.0 for r in results.values())      # the comparison: the right half only


# ------------------------------------------------------------------------------ hw4 kl_divergence: never negative
def test_kl_that_is_never_negative_but_wrong_scores_zero():
    all_cases = cases("hw4_vae", "hidden")
    case = all_cases["kl_divergence"][0]
    right = correct("hw4_vae", "kl_divergence", case)
    for hostile in (np.zeros_like(right), np.abs(right) + 1.0):
        results = run_checks("hw4_vae", "kl_divergence", "hidden", 0, hostile, all_cases)
        assert {n: r.score_fraction for n, r in results.items()} == {n: 0.0 for n in results}
    assert all(r.passed for r in run_checks("hw4_vae", "kl_divergence", "hidden", 0, right, all_cases).values())


# ------------------------------------------------------------------------------ hw4 train_vae: the trained model
@pytest.fixture(scope="module")
def vae_case():
    all_cases = cases("hw4_vae", "visible")
    return all_cases, all_cases["train_vae"][0]


def _probe(model):
    scope = {}
    exec(load_suite("hw4_vae").functions["train_vae"].probe, scope)
    return as_data(scope["probe"](model))


def test_train_vae_evaluation_data_never_enter_the_sandbox(vae_case):
    """Only X, latent_dim, epochs and seed go to the student's code; the held-out digits and the noise stay
    in the judge (a model cannot remember what it is scored on)."""
    _, case = vae_case
    assert set(case_arguments(case)) == {"X", "latent_dim", "epochs", "seed"} and probe_arguments(case) == {}
    assert "_X_eval" in case and "_eps" in case


def test_train_vae_degenerate_models_score_zero(vae_case):
    all_cases, case = vae_case
    VAEModel = solution("hw4_vae")["VAEModel"]
    d, k = case["X"].shape[1], int(case["latent_dim"])

    class Memorising(VAEModel):
        """Remembers what the encoder saw and decodes it back (full marks when the sandbox evaluated it)."""

        def encode(self, x):
            self.seen = x
            return torch.zeros(len(x), k), torch.zeros(len(x), k)

        def decode(self, z):
            return 30.0 * (2.0 * self.seen - 1.0)

    torch.manual_seed(0)
    untrained = VAEModel(d, k)
    constant = VAEModel(d, k)                  # a decoder that ignores z, biased to the pixel means: no training
    with torch.no_grad():
        for p in constant.parameters():
            p.zero_()
        mean = case["X"].mean(0).clamp(1e-3, 1 - 1e-3)
        constant.decoder[2].bias.copy_(torch.log(mean) - torch.log1p(-mean))
    nan = list(_probe(untrained))
    nan[0] = np.full_like(nan[0], np.nan)
    mu = np.zeros((200, k), dtype=np.float32)
    hostile = {"memorising": _probe(Memorising(d, k)), "untrained": _probe(untrained), "constant": _probe(constant),
               "nan": tuple(nan), "old probe output (mu, logvar, logits)": (mu, mu, np.zeros((200, d), np.float32))}
    for what, output in hostile.items():
        results = run_checks("hw4_vae", "train_vae", "visible", 0, output, all_cases)
        assert {n: r.score_fraction for n, r in results.items()} == {n: 0.0 for n in results}, (what, results)


def test_train_vae_correct_training_scores_full_marks(vae_case):
    all_cases, case = vae_case
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        output = correct("hw4_vae", "train_vae", case)
    finally:
        torch.set_num_threads(threads)
    results = run_checks("hw4_vae", "train_vae", "visible", 0, output, all_cases)
    assert all(r.passed for r in results.values()), {n: r.message for n, r in results.items()}
