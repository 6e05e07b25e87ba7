"""Grading suite of hw3_linear: PCA (closed form and alternating least squares) and factor analysis.

Expected values come from course_lib's public API: ``course_lib.PCA`` (components and explained variances;
compared as subspaces, since a basis is not unique), ``course_lib.pca.iterative_pca_step``,
``FactorAnalysis.from_params`` with the case's ``A``, ``D`` and zero mean for the posterior (``posterior``),
the log-likelihood (``score_samples``) and the ELBO (``elbo``), and ``course_lib.factor_analysis.em_step``
(zero mean, no noise floor: the slides' plain update) for one EM step.

The invariants (an EM step never lowers the log-likelihood; the ELBO is at most log p(X), with equality at
the posterior) are credited only with the reference value: returning A and D unchanged never lowers the
likelihood, and -1e300 is below every bound.
"""
from __future__ import annotations

import numpy as np

from autograder.suite import Check, CheckResult, Function, Suite, reference_judge
from autograder.suites._common import NUMPY_ONLY, elbo_bound_judge, random_spd

# float64 NumPy against float64 torch: eigen-decompositions and solves agree to ~1e-12 relative on these
# well-conditioned problems (distinct eigenvalues, D bounded away from 0).
RTOL, ATOL = 1e-8, 1e-10

_FORBID_PCA = ("course_lib.pca", "course_lib.PCA")
_FORBID_FA = ("course_lib.factor_analysis", "course_lib.FactorAnalysis")


# ---------------------------------------------------------------------------------------------- cases
def _centred(rng, n, d):
    X = rng.normal(size=(n, d)) * np.linspace(3.0, 0.5, d) @ np.linalg.qr(rng.normal(size=(d, d)))[0]
    return X - X.mean(axis=0)


def _fa_data(rng, n, d, k):
    A = rng.normal(size=(d, k))
    D = rng.uniform(0.3, 1.5, size=d)
    X = rng.normal(size=(n, k)) @ A.T + rng.normal(size=(n, d)) * np.sqrt(D)
    # the parameters the student's function is evaluated at: near, not at, the truth
    return X - X.mean(axis=0), A + 0.3 * rng.normal(size=(d, k)), D * rng.uniform(0.7, 1.4, size=d)


def make_cases(rng, visibility):
    vis = visibility == "visible"
    n, d, k = (30, 5, 2) if vis else (60, 8, 3)
    cases = {"pca": [{"X": _centred(rng, n, d), "k": k}],
             "iterative_pca_step": [{"X": _centred(rng, n, d), "W": rng.normal(size=(d, k))}]}
    X, A, D = _fa_data(rng, n, d, k)
    cases["fa_posterior"] = [{"X": X, "A": A, "D": D}]
    cases["fa_em_step"] = [{"X": X, "A": A, "D": D}]
    cases["fa_log_likelihood"] = [{"X": X, "A": A, "D": D}]
    elbo = [{"X": X, "A": A, "D": D, "q_means": rng.normal(size=(n, k)), "q_cov": random_spd(rng, k, jitter=0.3),
             "_kind": "random"}]
    if not vis:
        # at the posterior of data of their own: these inputs hold fa_posterior's answer, so they must not
        # share fa_posterior's hidden data (a function's hidden inputs may outlive its run in the kernel)
        X, A, D = _fa_data(rng, n, d, k)
        means, cov = ref_fa_posterior({"X": X, "A": A, "D": D})
        elbo.append({"X": X, "A": A, "D": D, "q_means": means, "q_cov": cov, "_kind": "posterior"})
        elbo.append({"X": X, "A": A, "D": D, "q_means": means + 0.05 * rng.normal(size=means.shape),
                     "q_cov": cov, "_kind": "near posterior"})
    cases["fa_elbo"] = elbo
    return cases


# ---------------------------------------------------------------------------------------------- references
def _fa_model(A, D):
    """A course_lib FactorAnalysis holding the given loadings A (d, k), noise D (d,) and a zero mean."""
    from course_lib import FactorAnalysis
    return FactorAnalysis.from_params(np.asarray(A, dtype=np.float64).T, np.asarray(D, dtype=np.float64))


def ref_pca(case):
    from course_lib import PCA
    model = PCA(n_components=int(case["k"])).fit(case["X"])
    return model.components_, model.explained_variance_


def ref_iterative_pca_step(case):
    from course_lib.pca import iterative_pca_step
    return iterative_pca_step(case["X"], case["W"], center=False)


def ref_fa_posterior(case):
    return _fa_model(case["A"], case["D"]).posterior(case["X"])


def ref_fa_em_step(case):
    """course_lib's EM step from A (d, k) and D (d,) under a zero mean, without a noise floor: (A_new, D_new)."""
    from course_lib.factor_analysis import em_step
    X = np.asarray(case["X"], dtype=np.float64)
    components, D_new = em_step(X, np.asarray(case["A"], dtype=np.float64).T, case["D"],
                                mean=np.zeros(X.shape[1]), noise_floor=0.0)
    return components.T, D_new


def ref_fa_log_likelihood(case):
    return float(np.sum(_fa_model(case["A"], case["D"]).score_samples(case["X"])))


def ref_fa_elbo(case):
    return _fa_model(case["A"], case["D"]).elbo(case["X"], case["q_means"], case["q_cov"])


# ---------------------------------------------------------------------------------------------- judges
def _pca_judge(case, output, ctx):
    """Half for the subspace (projectors agree; the basis and its signs are free), half for the variances."""
    from autograder.feedback import compare
    if not isinstance(output, (tuple, list)) or len(output) != 2:
        return CheckResult(0.0, "pca must return (components, variances)")
    comps, variances = (np.asarray(o, dtype=float) for o in output)
    ref_c, ref_v = ref_pca(case)
    k, d = ref_c.shape
    if comps.shape != (k, d):
        return CheckResult(0.0, f"components has shape {comps.shape}, expected ({k}, {d}): one component per row")
    score, msgs = 0.0, []
    if np.allclose(comps @ comps.T, np.eye(k), atol=1e-8) and \
            np.allclose(comps.T @ comps, ref_c.T @ ref_c, rtol=RTOL, atol=1e-8):
        score += 0.5
    else:
        msgs.append("the components do not span the principal subspace with orthonormal rows "
                    "(compared as subspaces, so signs and order within equal variances do not matter)")
    res = compare(variances, ref_v, rtol=RTOL, atol=ATOL,
                  mistakes={"unbiased_covariance": ref_v * case["X"].shape[0] / (case["X"].shape[0] - 1)})
    if res.passed:
        score += 0.5
    else:
        msgs.append("variances: " + res.message)
    return CheckResult(score, "\n".join(msgs), res.mistake)


def _em_monotone_judge(case, output, ctx):
    """The step is the reference EM step and does not lower the log-likelihood (a step that changes nothing,
    or any other step that happens not to lower it, scores 0)."""
    from autograder.feedback import compare
    if not isinstance(output, (tuple, list)) or len(output) != 2:
        return CheckResult(0.0, "fa_em_step must return (A_new, D_new)")
    A_new, D_new = (np.asarray(o, dtype=float) for o in output)
    if A_new.shape != case["A"].shape or D_new.shape != case["D"].shape or not np.all(np.isfinite(A_new)) \
            or not np.all(D_new > 0) or not np.all(np.isfinite(D_new)):
        return CheckResult(0.0, "A_new must have the shape of A with finite entries, D_new the shape of D with "
                                "finite positive entries")
    before = ref_fa_log_likelihood(case)
    after = ref_fa_log_likelihood({"X": case["X"], "A": A_new, "D": D_new})
    if not (np.isfinite(after) and after >= before - 1e-8 * abs(before)):
        return CheckResult(0.0, f"the step lowered the log-likelihood from {before:.4f} to {after:.4f}")
    res = compare((A_new, D_new), ref_fa_em_step(case), rtol=RTOL, atol=ATOL)
    if not res.passed:
        return CheckResult(0.0, "the log-likelihood did not go down, but the step is not EM's:\n" + res.message)
    return CheckResult(1.0)


def _mean_instead_of_total(case):
    return ref_fa_log_likelihood(case) / case["X"].shape[0]


SUITE = Suite(
    name="hw3_linear",
    forbidden=NUMPY_ONLY,
    notebook="assignments/hw3_linear/hw3_linear.ipynb",
    description="PCA and factor analysis",
    parameters={"SEED": 0, "N_SAMPLES": 200, "N_COMPONENTS": 3, "N_ITER": 3},
    functions={
        "pca": Function(time_budget_s=20, forbidden=_FORBID_PCA, description="top-k principal components"),
        "iterative_pca_step": Function(time_budget_s=20, forbidden=_FORBID_PCA,
                                       description="Z <- W+ X^T, W <- X^T Z+"),
        "fa_posterior": Function(time_budget_s=20, forbidden=_FORBID_FA, description="p(z | x) of factor analysis"),
        "fa_em_step": Function(time_budget_s=20, forbidden=_FORBID_FA, description="one EM step of factor analysis"),
        "fa_log_likelihood": Function(time_budget_s=20, forbidden=_FORBID_FA,
                                      description="sum_n log N(x_n; 0, A A^T + D)"),
        "fa_elbo": Function(time_budget_s=20, forbidden=_FORBID_FA, description="the ELBO of factor analysis"),
    },
    make_cases=make_cases,
    checks=[
        Check("pca finds the principal subspace and its variances", "pca", 8, "visible", _pca_judge),
        Check("pca in eight dimensions", "pca", 7, "hidden", _pca_judge),
        Check("iterative_pca_step matches the reference", "iterative_pca_step", 8, "visible",
              reference_judge(ref_iterative_pca_step, rtol=RTOL, atol=ATOL)),
        Check("iterative_pca_step in eight dimensions", "iterative_pca_step", 7, "hidden",
              reference_judge(ref_iterative_pca_step, rtol=RTOL, atol=ATOL)),
        Check("fa_posterior matches the reference", "fa_posterior", 8, "visible",
              reference_judge(ref_fa_posterior, rtol=RTOL, atol=ATOL)),
        Check("fa_posterior with three factors", "fa_posterior", 7, "hidden",
              reference_judge(ref_fa_posterior, rtol=RTOL, atol=ATOL)),
        Check("fa_em_step matches the reference", "fa_em_step", 10, "visible",
              reference_judge(ref_fa_em_step, rtol=RTOL, atol=ATOL)),
        Check("fa_em_step with three factors", "fa_em_step", 5, "hidden",
              reference_judge(ref_fa_em_step, rtol=RTOL, atol=ATOL)),
        Check("fa_em_step never lowers the log-likelihood", "fa_em_step", 5, "hidden", _em_monotone_judge),
        Check("fa_log_likelihood matches the reference (the total over the rows)", "fa_log_likelihood", 8,
              "visible", reference_judge(ref_fa_log_likelihood, rtol=RTOL, atol=ATOL,
                                         mistakes={"sum_vs_mean": _mean_instead_of_total})),
        Check("fa_log_likelihood with three factors", "fa_log_likelihood", 7, "hidden",
              reference_judge(ref_fa_log_likelihood, rtol=RTOL, atol=ATOL,
                              mistakes={"sum_vs_mean": _mean_instead_of_total})),
        Check("fa_elbo matches the reference", "fa_elbo", 10, "visible",
              reference_judge(ref_fa_elbo, rtol=RTOL, atol=ATOL)),
        Check("fa_elbo is at most log p(X), with equality at the posterior", "fa_elbo", 5, "hidden",
              elbo_bound_judge(ref_fa_elbo, ref_fa_log_likelihood, rtol=RTOL, atol=ATOL)),
        Check("fa_elbo matches the reference near the posterior", "fa_elbo", 5, "hidden",
              reference_judge(ref_fa_elbo, rtol=RTOL, atol=ATOL)),
    ],
)
