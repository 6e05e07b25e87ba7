"""Grading suite of hw1_mle: maximum-likelihood estimates and Gaussian generative classifiers.

Expected values come from course_lib's public API: ``course_lib.mle.gaussian`` and
``course_lib.mle.categorical``, the fitted attributes of ``GaussianDiscriminantAnalysis`` and
``GaussianNaiveBayes``, and for the posterior class probabilities ``predict_proba`` of a
``GaussianDiscriminantAnalysis.from_params`` holding the case's priors, means and covariances. The
known-mistake alternatives (the unbiased covariance, probabilities without log-sum-exp, the latter from
``course_lib.mle.gaussian_log_likelihood``) are the only formulas written here.

Every check compares with a reference (the fits are closed-form maximum-likelihood estimates, so there is
no optimisation result a degenerate answer could fake and no invariant judged on its own).
"""
from __future__ import annotations

import numpy as np

from autograder.suite import Check, Function, Suite, reference_judge
from autograder.suites._common import NUMPY_ONLY, random_spd

# float64 NumPy against a float64 reference: agreement to rounding error.
RTOL, ATOL = 1e-9, 1e-11

_FORBID_MLE = ("course_lib.mle",)
_FORBID_CLASSIFIERS = ("course_lib.discriminant", "course_lib.GaussianDiscriminantAnalysis",
                       "course_lib.GaussianNaiveBayes", "course_lib._gaussian", "scipy.stats")


# ---------------------------------------------------------------------------------------------- cases
def _classes(rng, C, d, n_per, spread=3.0):
    X, y = [], []
    for c in range(C):
        B = rng.normal(size=(d, d))
        X.append(rng.normal(scale=spread, size=d) + rng.normal(size=(n_per[c], d)) @ B / np.sqrt(d)
                 + 0.3 * rng.normal(size=(n_per[c], d)))
        y.append(np.full(n_per[c], c))
    order = rng.permutation(sum(n_per))
    return np.concatenate(X)[order], np.concatenate(y)[order].astype(np.int64)


def make_cases(rng, visibility):
    """Visible: small 2-D problems (one far-away point for the posterior). Hidden: more classes and
    dimensions, a class that never occurs (categorical), and points where every density underflows."""
    vis = visibility == "visible"
    d = 2 if vis else 4
    cases = {"gaussian_mle": [{"X": rng.normal(size=(10 if vis else 30, d)) @ rng.normal(size=(d, d)) + 1.0}]}
    K = 4 if vis else 6
    x = rng.integers(0, K - (0 if vis else 1), size=20 if vis else 50)   # hidden: the last class never occurs
    cases["categorical_mle"] = [{"x": x.astype(np.int64), "num_classes": K}]
    C = 2 if vis else 3
    X, y = _classes(rng, C, d, [8, 12, 10][:C] if vis else [15, 25, 20][:C])
    cases["gda_fit"] = [{"X": X, "y": y}]
    cases["naive_bayes_fit"] = [{"X": X, "y": y}]
    priors = rng.dirichlet(np.full(C, 3.0))
    means = rng.normal(scale=2.0, size=(C, d))
    covs = np.stack([random_spd(rng, d) for _ in range(C)])
    Xq = rng.normal(scale=2.0, size=(12 if vis else 30, d))
    Xq[0] = 60.0                      # every density underflows here: log space is needed
    if not vis:
        Xq[1] = -80.0
    cases["gda_predict_proba"] = [{"X": Xq, "priors": priors, "means": means, "covs": covs}]
    return cases


# ---------------------------------------------------------------------------------------------- references
def ref_gaussian(case):
    from course_lib.mle import gaussian
    return gaussian(case["X"])


def ref_categorical(case):
    from course_lib.mle import categorical
    return categorical(case["x"], int(case["num_classes"]))


def ref_gda(case):
    from course_lib import GaussianDiscriminantAnalysis
    model = GaussianDiscriminantAnalysis().fit(case["X"], case["y"])
    return model.priors_, model.means_, model.covariances_


def ref_naive_bayes(case):
    from course_lib import GaussianNaiveBayes
    model = GaussianNaiveBayes().fit(case["X"], case["y"])
    return model.class_prior_, model.theta_, model.var_


def ref_predict_proba(case):
    from course_lib import GaussianDiscriminantAnalysis
    gda = GaussianDiscriminantAnalysis.from_params(case["priors"], case["means"], case["covs"])
    return gda.predict_proba(case["X"])


# ---------------------------------------------------------------------------------------------- mistakes
def _unbiased(X):
    return np.cov(X, rowvar=False, bias=False).reshape(X.shape[1], X.shape[1])


def gaussian_unbiased(case):
    return case["X"].mean(axis=0), _unbiased(case["X"])


def gda_unbiased(case):
    priors, means, covs = ref_gda(case)
    return priors, means, np.stack([_unbiased(case["X"][case["y"] == c]) for c in range(len(priors))])


def naive_bayes_unbiased(case):
    priors, means, _ = ref_naive_bayes(case)
    return priors, means, np.stack([case["X"][case["y"] == c].var(axis=0, ddof=1) for c in range(len(priors))])


def proba_without_logsumexp(case):
    """Bayes' rule on the densities themselves: exp of each log joint, then normalise (0/0 where every
    density underflows)."""
    from course_lib.mle import gaussian_log_likelihood
    X = case["X"]
    log_joint = np.log(case["priors"]) + np.stack(
        [gaussian_log_likelihood(X, m, S, per_observation=True) for m, S in zip(case["means"], case["covs"])], axis=1)
    with np.errstate(all="ignore"):
        joint = np.exp(log_joint)
        return joint / joint.sum(axis=1, keepdims=True)


_unbiased_gaussian = {"unbiased_covariance": gaussian_unbiased}
_unbiased_gda = {"unbiased_covariance": gda_unbiased}
_unbiased_nb = {"unbiased_covariance": naive_bayes_unbiased}
_naive_proba = {"missing_logsumexp": proba_without_logsumexp}

SUITE = Suite(
    name="hw1_mle",
    forbidden=NUMPY_ONLY,
    notebook="assignments/hw1_mle/hw1_mle.ipynb",
    description="Maximum likelihood and generative classifiers",
    parameters={"SEED": 0, "N_SAMPLES": 200},
    functions={
        "gaussian_mle": Function(time_budget_s=20, forbidden=_FORBID_MLE,
                                 description="the maximum-likelihood mean and covariance"),
        "categorical_mle": Function(time_budget_s=20, forbidden=_FORBID_MLE,
                                    description="the maximum-likelihood class probabilities"),
        "gda_fit": Function(time_budget_s=20, forbidden=_FORBID_CLASSIFIERS + _FORBID_MLE,
                            description="priors, means and covariances per class"),
        "gda_predict_proba": Function(time_budget_s=20, forbidden=_FORBID_CLASSIFIERS + _FORBID_MLE,
                                      description="posterior class probabilities, in log space"),
        "naive_bayes_fit": Function(time_budget_s=20, forbidden=_FORBID_CLASSIFIERS + _FORBID_MLE,
                                    description="priors, means and per-feature variances per class"),
    },
    make_cases=make_cases,
    checks=[
        Check("gaussian_mle matches the reference", "gaussian_mle", 10, "visible",
              reference_judge(ref_gaussian, rtol=RTOL, atol=ATOL, mistakes=_unbiased_gaussian)),
        Check("gaussian_mle in four dimensions", "gaussian_mle", 10, "hidden",
              reference_judge(ref_gaussian, rtol=RTOL, atol=ATOL, mistakes=_unbiased_gaussian)),
        Check("categorical_mle matches the reference", "categorical_mle", 8, "visible",
              reference_judge(ref_categorical, rtol=RTOL, atol=ATOL)),
        Check("categorical_mle with a class never observed", "categorical_mle", 7, "hidden",
              reference_judge(ref_categorical, rtol=RTOL, atol=ATOL)),
        Check("gda_fit matches the reference", "gda_fit", 13, "visible",
              reference_judge(ref_gda, rtol=RTOL, atol=ATOL, mistakes=_unbiased_gda)),
        Check("gda_fit with three classes in four dimensions", "gda_fit", 12, "hidden",
              reference_judge(ref_gda, rtol=RTOL, atol=ATOL, mistakes=_unbiased_gda)),
        Check("gda_predict_proba matches the reference (a far-away point)", "gda_predict_proba", 10, "visible",
              reference_judge(ref_predict_proba, rtol=RTOL, atol=ATOL, mistakes=_naive_proba)),
        Check("gda_predict_proba with three classes and far-away points", "gda_predict_proba", 10, "hidden",
              reference_judge(ref_predict_proba, rtol=RTOL, atol=ATOL, mistakes=_naive_proba)),
        Check("naive_bayes_fit matches the reference", "naive_bayes_fit", 10, "visible",
              reference_judge(ref_naive_bayes, rtol=RTOL, atol=ATOL, mistakes=_unbiased_nb)),
        Check("naive_bayes_fit with three classes in four dimensions", "naive_bayes_fit", 10, "hidden",
              reference_judge(ref_naive_bayes, rtol=RTOL, atol=ATOL, mistakes=_unbiased_nb)),
    ],
)
