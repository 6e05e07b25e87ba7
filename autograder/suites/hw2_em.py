"""Grading suite of hw2_em: EM for Gaussian mixtures and for a Gaussian with missing entries, and the ELBO.

Every expected value comes from course_lib's public API: ``course_lib.mle.gaussian_log_likelihood`` for
the densities, ``course_lib.mixture`` (``log_joint``, ``e_step``, ``m_step`` with ``reg_covar=0``, and
``em_step`` iterated from the notebook's initialisation for the fitted mixture), ``course_lib.elbo.elbo`` for
the bound, and ``course_lib.missing_data`` (``complete``, ``m_step``) for the missing-data E- and M-steps.
The grader does not re-implement the mathematics; the known-mistake alternatives (what a wrong solution
returns) are the only formulas written here.

Judging ``fit_gmm``. A mixture's likelihood is unbounded (a component of covariance 1e-200·I sitting on a data
point has an arbitrarily large density there), so neither "the likelihood is high" nor "the history never
goes down" proves that EM ran. The judges evaluate the returned parameters only when they are regular
(every weight at least 1/N, every covariance eigenvalue at least ``COV_FLOOR`` times the data's average
variance), compare them with course_lib's EM run from the notebook's initialisation (up to relabelling the
components), and credit the history only when it is that EM's history.
"""
from __future__ import annotations

import numpy as np

from autograder.suite import Check, CheckResult, Function, Suite, reference_judge
from autograder.suites._common import NUMPY_ONLY, elbo_bound_judge, match_components, random_spd

# float64 NumPy against a float64 torch reference; the two differ by rounding only. Cholesky versus
# inverse-based solutions agree to ~1e-12 relative on these well-conditioned problems.
RTOL, ATOL = 1e-8, 1e-10
#: fit_gmm: EM from the same start is a deterministic map; two float64 implementations differ by rounding
#: (~1e-15 relative, observed), which EM does not amplify on these well-separated problems. Parameters must
#: agree with the reference run to FIT_RTOL (relative to the data's scale), the history to HISTORY_RTOL.
FIT_RTOL, HISTORY_RTOL = 1e-6, 1e-7
#: fit_gmm: the smallest covariance eigenvalue accepted, relative to the data's average variance. Honest EM
#: on these cases stays above 8e-4 (300 seeds of each kind); 1e-200 (a component collapsed on a point) does not.
COV_FLOOR = 1e-6
#: fit_gmm: partial credit when the parameters are not EM's: at most this much, shrinking linearly with the
#: distance of their log-likelihood from the reference's, to 0 at GAP_NATS.
PARTIAL_MAX, GAP_NATS = 0.5, 25.0

_FORBID_GMM = ("course_lib.mixture", "course_lib.GaussianMixture", "course_lib.elbo", "course_lib._gaussian",
               "course_lib.mle", "scipy.stats", "scipy.special.logsumexp")
_FORBID_MISSING = ("course_lib.missing_data", "course_lib.MissingDataGaussian")


# ---------------------------------------------------------------------------------------------- cases
def _mixture(rng, K, d, spread=3.0):
    weights = rng.dirichlet(np.full(K, 3.0))
    means = rng.normal(scale=spread, size=(K, d))
    covs = np.stack([random_spd(rng, d) for _ in range(K)])
    return weights, means, covs


def _faithful():
    from course_lib.data import load_faithful
    X = load_faithful()
    return (X - X.mean(0)) / X.std(0)


def _blobs(rng, K, d, n_per):
    """K Gaussian blobs of n_per points each, blob after blob: shape (K * n_per, d)."""
    centres = rng.normal(scale=6.0, size=(K, d))
    return np.concatenate([c + rng.normal(size=(n_per, d)) @ np.diag(rng.uniform(0.5, 1.5, d)) for c in centres])


def _covering_seed(labels, K, seed):
    """The first seed from ``seed`` on whose initial means (``default_rng(seed).choice(N, K, replace=False)``,
    the notebook's initialisation) come from K different blobs. Two initial means in one blob can make EM
    collapse a component onto a few points (2% of draws with reg_covar = 0), and then no answer is right."""
    N = len(labels)
    while len(set(labels[np.random.default_rng(seed).choice(N, size=K, replace=False)].tolist())) < K:
        seed += 1
    return seed


def _with_missing(rng, X, fraction):
    Xm = X.copy()
    Xm[rng.random(X.shape) < fraction] = np.nan
    Xm[0] = np.nan                      # a row with every entry missing
    Xm[1] = X[1]                        # a complete row
    return Xm


def _posterior(X, weights, means, covs):
    """The E-step's responsibilities, from course_lib (for the ELBO's equality case)."""
    from course_lib.mixture import e_step
    return e_step(X, weights, means, covs)[0]


def make_cases(rng, visibility):
    """Visible cases are small and include a far-away point (log-sum-exp) and soft responsibilities (the
    soft counts); hidden ones are larger, higher-dimensional, and exercise the same properties again."""
    vis = visibility == "visible"
    cases = {}
    # log_gaussian_pdf
    d = 3 if vis else 6
    cases["log_gaussian_pdf"] = [{"X": rng.normal(size=(12 if vis else 40, d)), "mean": rng.normal(size=d),
                                  "cov": random_spd(rng, d)}]
    # e_step: include points where every density underflows (exp(-1000) == 0 in float64)
    K, d = (3, 2) if vis else (4, 5)
    w, m, S = _mixture(rng, K, d)
    X = rng.normal(scale=2.0, size=(20 if vis else 60, d))
    X[:2] += 80.0
    cases["e_step"] = [{"X": X, "weights": w, "means": m, "covs": S}]
    # m_step: soft responsibilities (a Dirichlet per row)
    K, d = (3, 2) if vis else (4, 3)
    X = rng.normal(size=(25 if vis else 60, d)) * 2.0 + 1.0
    cases["m_step"] = [{"X": X, "resp": rng.dirichlet(np.ones(K), size=X.shape[0])}]
    # elbo: random responsibilities (strictly below), one-hot ones (0 log 0), the posterior (equality)
    K, d = (2, 2) if vis else (3, 3)
    w, m, S = _mixture(rng, K, d, spread=1.5)
    X = rng.normal(scale=1.5, size=(15 if vis else 40, d))
    elbo_cases = [{"X": X, "resp": rng.dirichlet(np.ones(K), size=X.shape[0]), "weights": w, "means": m,
                   "covs": S, "_kind": "random"}]
    if not vis:
        elbo_cases.append({"X": X, "resp": np.eye(K)[rng.integers(0, K, size=X.shape[0])], "weights": w,
                           "means": m, "covs": S, "_kind": "one-hot"})
        elbo_cases.append({"X": X, "resp": np.asarray(_posterior(X, w, m, S)), "weights": w, "means": m,
                           "covs": S, "_kind": "posterior"})
    cases["elbo"] = elbo_cases
    # fit_gmm: Old Faithful (visible); well-separated blobs (hidden)
    if vis:
        cases["fit_gmm"] = [{"X": _faithful(), "K": 2, "n_iter": 60, "seed": int(rng.integers(0, 2**31 - 1))}]
    else:
        X = _blobs(rng, 3, 2, 60)
        seed = _covering_seed(np.repeat(np.arange(3), 60), 3, int(rng.integers(0, 2**31 - 1)))
        cases["fit_gmm"] = [{"X": X, "K": 3, "n_iter": 80, "seed": seed}]
    # missing data
    d = 3 if vis else 4
    mean, cov = rng.normal(size=d), random_spd(rng, d)
    X = rng.multivariate_normal(mean, cov, size=15 if vis else 40)
    cases["missing_e_step"] = [{"X": _with_missing(rng, X, 0.3), "mean": mean, "cov": cov}]
    X_filled = rng.normal(size=(15 if vis else 40, d))
    cond = np.zeros((X_filled.shape[0], d, d))
    for n in range(X_filled.shape[0]):
        miss = rng.random(d) < 0.4
        if miss.any():
            C = random_spd(rng, int(miss.sum()), 0.5)
            cond[n][np.ix_(miss, miss)] = C
    cases["missing_m_step"] = [{"X_filled": X_filled, "cond_covs": cond}]
    return cases


# ---------------------------------------------------------------------------------------------- references
def _log_joint(X, weights, means, covs):
    """log pi_k + log N(x_n; mu_k, Sigma_k), shape (N, K), from course_lib."""
    from course_lib.mixture import log_joint
    return log_joint(X, weights, means, covs)


def ref_log_gaussian_pdf(case):
    from course_lib.mle import gaussian_log_likelihood
    return gaussian_log_likelihood(case["X"], case["mean"], case["cov"], per_observation=True)


def ref_e_step(case):
    from course_lib.mixture import e_step
    return e_step(case["X"], case["weights"], case["means"], case["covs"])


def ref_m_step(case):
    from course_lib.mixture import m_step
    return m_step(case["X"], case["resp"])


def ref_elbo(case):
    from course_lib.elbo import elbo
    return float(elbo(_log_joint(case["X"], case["weights"], case["means"], case["covs"]), case["resp"]))


def ref_log_likelihood(X, weights, means, covs):
    from course_lib.mixture import e_step
    return float(e_step(X, weights, means, covs)[1])


_REFERENCE_FITS: dict = {}


def ref_fit_gmm(case) -> dict:
    """n_iter of course_lib's EM iterations (``course_lib.mixture.em_step``, with ``reg_covar=0``) from the
    notebook's initialisation: the means at ``default_rng(seed).choice(N, K, replace=False)``, every
    covariance the data's ML covariance, equal weights.

    Returns
    -------
    dict
        ``log_likelihood`` (float, of the final parameters), ``history`` (n_iter,) the log-likelihood each
        iteration's E-step computes, and the final ``weights`` (K,), ``means`` (K, d), ``covs`` (K, d, d).
    """
    import hashlib

    from course_lib.mixture import em_step
    from course_lib.mle import gaussian
    X, K, n_iter = np.asarray(case["X"], dtype=np.float64), int(case["K"]), int(case["n_iter"])
    key = (hashlib.sha256(X.tobytes()).hexdigest(), X.shape, K, n_iter, int(case["seed"]))
    if key not in _REFERENCE_FITS:
        N = X.shape[0]
        weights = np.full(K, 1.0 / K)
        means = X[np.random.default_rng(int(case["seed"])).choice(N, size=K, replace=False)]
        covs = np.repeat(gaussian(X)[1][None], K, axis=0)
        history = np.empty(n_iter)
        for i in range(n_iter):
            weights, means, covs, history[i] = em_step(X, weights, means, covs)
        _REFERENCE_FITS[key] = {"log_likelihood": ref_log_likelihood(X, weights, means, covs), "history": history,
                                "weights": weights, "means": means, "covs": covs}
    return _REFERENCE_FITS[key]


def ref_missing_e_step(case):
    from course_lib.missing_data import complete
    return complete(case["X"], case["mean"], case["cov"])


def ref_missing_m_step(case):
    from course_lib.missing_data import m_step
    return m_step(case["X_filled"], case["cond_covs"])


# ---------------------------------------------------------------------------------------------- mistakes
def naive_e_step(case):
    """What an E-step without log-sum-exp returns: exp first, then normalise and log."""
    with np.errstate(all="ignore"):
        joint = np.exp(_log_joint(case["X"], case["weights"], case["means"], case["covs"]))
        total = joint.sum(axis=1, keepdims=True)
        return joint / total, float(np.log(total).sum())


def _names_missing_logsumexp(judge):
    """Name the mistake when the output is non-finite on rows where every density underflows (exp(a) == 0),
    whichever naive form produced it (0/0 = nan, or exp(a - log 0) = inf)."""
    def wrapped(case, output, ctx):
        from autograder.feedback import describe_mistake
        res = judge(case, output, ctx)
        if res.passed or res.mistake:
            return res
        with np.errstate(all="ignore"):
            underflow = np.exp(_log_joint(case["X"], case["weights"], case["means"], case["covs"])).sum(1) == 0
        parts = output if isinstance(output, (tuple, list)) else (output,)
        try:
            resp = np.asarray(parts[0], dtype=float)
            bad_rows = ~np.all(np.isfinite(resp.reshape(resp.shape[0], -1)), axis=1)
            ll_bad = len(parts) > 1 and not np.isfinite(float(np.asarray(parts[1], dtype=float).reshape(())))
        except (TypeError, ValueError, IndexError):
            return res
        if underflow.any() and (bad_rows[underflow].any() or ll_bad) and not bad_rows[~underflow].any():
            return CheckResult(res.score_fraction, f"{res.message}\nthis matches a known mistake (missing_logsumexp): "
                                                   f"{describe_mistake('missing_logsumexp')}", "missing_logsumexp")
        return res
    return wrapped


def m_step_divided_by_n(case):
    """Means divided by N (they shrink by pi_k), covariances around those means also divided by N."""
    weights, means, covs = ref_m_step(case)
    shift = means * (1.0 - weights[:, None])                       # mu_k - pi_k mu_k
    wrong_covs = weights[:, None, None] * (covs + shift[:, :, None] * shift[:, None, :])
    return weights, means * weights[:, None], wrong_covs


def m_step_without_conditional_covs(case):
    return ref_missing_m_step({"X_filled": case["X_filled"], "cond_covs": np.zeros_like(case["cond_covs"])})


# ---------------------------------------------------------------------------------------------- judges
def _elbo_log_likelihood(case):
    return ref_log_likelihood(case["X"], case["weights"], case["means"], case["covs"])


def _gmm_parts(output, case):
    """(weights, means, covs, log_likelihoods) of a fit_gmm output; ValueError (one line) on a wrong structure."""
    if not isinstance(output, (tuple, list)) or len(output) != 4:
        raise ValueError("fit_gmm must return (weights, means, covs, log_likelihoods)")
    w, m, S, lls = (np.asarray(o, dtype=float) for o in output)
    K, d, n_iter = int(case["K"]), case["X"].shape[1], int(case["n_iter"])
    shapes = {"weights": (w.shape, (K,)), "means": (m.shape, (K, d)), "covs": (S.shape, (K, d, d)),
              "log_likelihoods": (lls.shape, (n_iter,))}
    for name, (got, want) in shapes.items():
        if got != want:
            raise ValueError(f"{name} has shape {got}, expected {want}")
    return w, m, S, lls


def _irregular(case, w, m, S) -> str:
    """Why the parameters are not a proper mixture whose likelihood is bounded ('' when they are)."""
    X = np.asarray(case["X"], dtype=float)
    N, var = X.shape[0], float(np.var(X, axis=0).mean())        # the data's average variance: its scale
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(m)) and np.all(np.isfinite(S))):
        return "the returned parameters contain NaN or infinity"
    if np.any(w < 1.0 / N) or abs(float(w.sum()) - 1.0) > 1e-8:
        return (f"the weights {np.array2string(w, precision=4)} must sum to 1 and each be at least "
                f"1/N = {1.0 / N:.3g} (a component explaining less than one point is degenerate)")
    if not np.allclose(S, np.swapaxes(S, 1, 2), rtol=1e-8, atol=1e-10 * var):
        return "every covariance must be symmetric"
    floor = COV_FLOOR * var
    smallest = float(np.linalg.eigvalsh(S).min())
    if not smallest >= floor:
        return (f"a covariance has eigenvalue {smallest:.3g}, below {floor:.3g} ({COV_FLOOR:g} of the data's "
                f"variance): a component collapsed onto a few points has an unbounded likelihood and is not an EM fit")
    return ""


def _agrees_with_reference(case, w, m, S, ref) -> str:
    """'' when (w, m, S) are the reference fit's parameters up to relabelling, else what differs."""
    var = float(np.var(np.asarray(case["X"], dtype=float), axis=0).mean())      # the data's scale
    order = match_components(ref["means"], m)
    w, m, S = w[order], m[order], S[order]
    for name, got, exp, atol in (("weights", w, ref["weights"], FIT_RTOL),
                                 ("means", m, ref["means"], FIT_RTOL * np.sqrt(var)),
                                 ("covariances", S, ref["covs"], FIT_RTOL * var)):
        if not np.allclose(got, exp, rtol=FIT_RTOL, atol=atol):
            k = int(np.argmax(np.abs(got - exp).reshape(len(exp), -1).max(axis=1)))
            return (f"the {name} differ from those EM reaches from the notebook's initialisation after "
                    f"{int(case['n_iter'])} iterations (component {k}: got {np.array2string(got[k], precision=4)}, "
                    f"EM gives {np.array2string(exp[k], precision=4)})")
    return ""


def _monotone_judge(case, output, ctx):
    """The history never goes down, and it is the history of EM from the notebook's initialisation (a
    made-up non-decreasing sequence, or one reported next to degenerate parameters, scores 0)."""
    try:
        w, m, S, lls = _gmm_parts(output, case)
    except ValueError as exc:
        return CheckResult(0.0, str(exc))
    if not np.all(np.isfinite(lls)):
        return CheckResult(0.0, "the log-likelihoods contain NaN or infinity")
    drops = np.diff(lls)
    tol = 1e-7 * max(1.0, float(np.abs(lls).max()))
    bad = np.flatnonzero(drops < -tol)
    if bad.size:
        i = int(bad[0])
        return CheckResult(0.0, f"the log-likelihood went down from iteration {i} ({lls[i]:.6f}) to {i + 1} "
                                f"({lls[i + 1]:.6f}); EM never lowers it, so an E- or M-step is wrong")
    why = _irregular(case, w, m, S)
    if why:
        return CheckResult(0.0, why)
    history = ref_fit_gmm(case)["history"]
    off = np.abs(lls - history) > HISTORY_RTOL * np.maximum(1.0, np.abs(history))
    if off.any():
        i = int(np.flatnonzero(off)[0])
        return CheckResult(0.0, f"the log-likelihoods never go down, but they are not EM's from the notebook's "
                                f"initialisation: iteration {i} records {lls[i]:.6f}, EM's E-step computes "
                                f"{history[i]:.6f}")
    return CheckResult(1.0)


def _optimum_judge(case, output, ctx):
    """The returned parameters against course_lib's EM from the same initialisation: full marks when they are
    EM's parameters (up to relabelling the components) with EM's log-likelihood; otherwise partial credit of
    at most PARTIAL_MAX, shrinking linearly to 0 as their log-likelihood moves GAP_NATS from the reference's.
    Degenerate parameters (collapsed components, weights below 1/N) score 0, and so do parameters whose
    log-likelihood is below the last recorded value (they are not those of the last M-step)."""
    try:
        w, m, S, lls = _gmm_parts(output, case)
    except ValueError as exc:
        return CheckResult(0.0, str(exc))
    why = _irregular(case, w, m, S)
    if why:
        return CheckResult(0.0, why)
    ref = ref_fit_gmm(case)
    best = ref["log_likelihood"]
    try:
        final = ref_log_likelihood(case["X"], w, m, S)
    except Exception:
        return CheckResult(0.0, "the returned covariances are not symmetric positive definite")
    if not np.isfinite(final) or not np.isfinite(lls[-1]):
        return CheckResult(0.0, "the fitted log-likelihood is not finite")
    if final < lls[-1] - 1e-6 * max(1.0, abs(final)):
        return CheckResult(0.0, f"the returned parameters have log-likelihood {final:.4f}, below the last "
                                f"recorded value {lls[-1]:.4f}: return the parameters of the last M-step")
    differs = _agrees_with_reference(case, w, m, S, ref)
    gap = abs(best - final)
    if not differs and gap <= 1e-6 * max(1.0, abs(best)):
        return CheckResult(1.0)
    fraction = PARTIAL_MAX * max(0.0, 1.0 - gap / GAP_NATS)
    return CheckResult(fraction, f"final log-likelihood {final:.4f}; EM from the initialisation described in the "
                                 f"notebook reaches {best:.4f} after {int(case['n_iter'])} iterations"
                                 + (f"\n{differs}" if differs else ""))


def _em_optimum_judge(case, output, ctx):
    """The optimum reached by EM's own history: the lower of :func:`_monotone_judge` and :func:`_optimum_judge`.
    On fixed data (Old Faithful) EM ends at one optimum from almost every start, so parameters written into
    the notebook next to a made-up history would reach it without running EM; the history cannot be made up,
    since it must be EM's from the initialisation of the case's seed."""
    monotone, optimum = _monotone_judge(case, output, ctx), _optimum_judge(case, output, ctx)
    return monotone if monotone.score_fraction < optimum.score_fraction else optimum


# ---------------------------------------------------------------------------------------------- the suite
SUITE = Suite(
    name="hw2_em",
    forbidden=NUMPY_ONLY,
    notebook="assignments/hw2_em/hw2_em.ipynb",
    description="EM for Gaussian mixtures and missing data, and the ELBO",
    parameters={"SEED": 0, "N_ITER": 10, "MISSING_FRACTION": 0.2, "N_MISSING_ITER": 5},
    functions={
        "log_gaussian_pdf": Function(time_budget_s=20, forbidden=_FORBID_GMM,
                                     description="log N(x; mean, cov) of every row"),
        "e_step": Function(time_budget_s=20, forbidden=_FORBID_GMM,
                           description="responsibilities and log-likelihood, with log-sum-exp"),
        "m_step": Function(time_budget_s=20, forbidden=_FORBID_GMM,
                           description="weights, means, covariances from responsibilities (soft counts)"),
        "elbo": Function(time_budget_s=20, forbidden=_FORBID_GMM, description="the evidence lower bound"),
        "fit_gmm": Function(time_budget_s=40, forbidden=_FORBID_GMM, description="EM for a Gaussian mixture"),
        "missing_e_step": Function(time_budget_s=20, forbidden=_FORBID_MISSING,
                                   description="conditional means and covariances of missing entries"),
        "missing_m_step": Function(time_budget_s=20, forbidden=_FORBID_MISSING,
                                   description="mean and covariance from the completed data"),
    },
    make_cases=make_cases,
    checks=[
        Check("log_gaussian_pdf matches the reference", "log_gaussian_pdf", 5, "visible",
              reference_judge(ref_log_gaussian_pdf, rtol=RTOL, atol=ATOL)),
        Check("log_gaussian_pdf in six dimensions", "log_gaussian_pdf", 5, "hidden",
              reference_judge(ref_log_gaussian_pdf, rtol=RTOL, atol=ATOL)),
        Check("e_step matches the reference (points far from every component)", "e_step", 8, "visible",
              _names_missing_logsumexp(reference_judge(ref_e_step, rtol=RTOL, atol=ATOL,
                                                       mistakes={"missing_logsumexp": naive_e_step}))),
        Check("e_step in five dimensions with far-away points", "e_step", 7, "hidden",
              _names_missing_logsumexp(reference_judge(ref_e_step, rtol=RTOL, atol=ATOL,
                                                       mistakes={"missing_logsumexp": naive_e_step}))),
        Check("m_step matches the reference (soft responsibilities)", "m_step", 8, "visible",
              reference_judge(ref_m_step, rtol=RTOL, atol=ATOL,
                              mistakes={"mstep_divided_by_n": m_step_divided_by_n})),
        Check("m_step with four components", "m_step", 7, "hidden",
              reference_judge(ref_m_step, rtol=RTOL, atol=ATOL,
                              mistakes={"mstep_divided_by_n": m_step_divided_by_n})),
        Check("elbo matches the reference", "elbo", 5, "visible", reference_judge(ref_elbo, rtol=RTOL, atol=ATOL)),
        Check("elbo is at most the log-likelihood, equal at the posterior, and 0 log 0 = 0", "elbo", 5,
              "hidden", elbo_bound_judge(ref_elbo, _elbo_log_likelihood, rtol=RTOL, atol=ATOL)),
        Check("elbo matches the reference on other responsibilities", "elbo", 5, "hidden",
              reference_judge(ref_elbo, rtol=RTOL, atol=ATOL)),
        Check("fit_gmm never lowers the log-likelihood (Old Faithful)", "fit_gmm", 5, "visible", _monotone_judge),
        Check("fit_gmm reaches the reference log-likelihood on Old Faithful, by EM", "fit_gmm", 5, "visible",
              _em_optimum_judge),
        Check("fit_gmm on three clusters: monotone and as high as the reference", "fit_gmm", 5, "hidden",
              _em_optimum_judge),
        Check("missing_e_step matches the reference", "missing_e_step", 8, "visible",
              reference_judge(ref_missing_e_step, rtol=RTOL, atol=ATOL)),
        Check("missing_e_step in four dimensions", "missing_e_step", 7, "hidden",
              reference_judge(ref_missing_e_step, rtol=RTOL, atol=ATOL)),
        Check("missing_m_step matches the reference", "missing_m_step", 8, "visible",
              reference_judge(ref_missing_m_step, rtol=RTOL, atol=ATOL,
                              mistakes={"ignored_conditional_covariance": m_step_without_conditional_covs})),
        Check("missing_m_step in four dimensions", "missing_m_step", 7, "hidden",
              reference_judge(ref_missing_m_step, rtol=RTOL, atol=ATOL)),
    ],
)
