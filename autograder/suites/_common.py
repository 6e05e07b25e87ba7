"""Helpers shared by the grading suites: arrays in and out of torch, random test matrices, and judges.

What lives here is used by more than one suite (``autograder/suites/hw*.py``); a helper used by one suite
stays in it. Nothing here runs student code: the judges receive the harvested output as data.

Judging an invariant. A bound (ELBO <= log p(x)), a sign (KL >= 0) or a monotone history says little on its
own: -1e300 satisfies every upper bound and a constant satisfies every "never decreases". Wherever a
reference value exists, an invariant is credited only when the output is also close to it
(:func:`elbo_bound_judge`, ``autograder.suite.invariant_judge(reference=...)``).
"""
from __future__ import annotations

import itertools

import numpy as np

from autograder.suite import ALWAYS_FORBIDDEN, CheckResult

__all__ = ["NUMPY_ONLY", "as_tensor", "as_numpy", "random_spd", "scalar", "elbo_bound_judge", "match_components"]

#: The suite-wide forbidden names of an assignment written with NumPy alone: PyTorch is in the sandbox (the
#: VAE assignment needs it), and its ``distributions``, ``logsumexp`` and linear algebra would do the work.
NUMPY_ONLY = (*ALWAYS_FORBIDDEN, "torch")


def as_tensor(a, dtype=np.float64):
    """``a`` (array-like, tensor, number) as a CPU torch tensor of ``dtype`` (a NumPy dtype)."""
    import torch
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return torch.as_tensor(np.asarray(a, dtype=dtype))


def as_numpy(t) -> np.ndarray:
    """A torch tensor as a NumPy array (on the CPU, detached)."""
    return t.detach().cpu().numpy()


def random_spd(rng: np.random.Generator, d: int, scale: float = 1.0, jitter: float = 0.5) -> np.ndarray:
    """A random symmetric positive definite matrix ``scale * (B B^T / d + jitter * I)``, shape (d, d).

    Draws one (d, d) standard normal matrix from ``rng`` (the suites' cases depend on that order).
    """
    B = rng.normal(size=(d, d))
    return scale * (B @ B.T / d + jitter * np.eye(d))


def scalar(output) -> float:
    """A function's output as one float; ValueError (one line) when it is not a single number."""
    value = np.asarray(output, dtype=float)
    if value.size != 1:
        raise ValueError(f"expected a single number, got an array of shape {value.shape}")
    return float(value.reshape(()))


def elbo_bound_judge(ref_elbo, ref_log_likelihood, rtol: float, atol: float, bound_rtol: float = 1e-8):
    """A judge of "ELBO <= log p(X), with equality at the posterior", credited only with the right ELBO.

    Parameters
    ----------
    ref_elbo : callable ``ref_elbo(case) -> float``
        The reference ELBO of the case's variational distribution.
    ref_log_likelihood : callable ``ref_log_likelihood(case) -> float``
        The reference log p(X) of the case's data and parameters.
    rtol, atol : float
        How close the output must be to ``ref_elbo(case)`` (the suite's reference tolerances).
    bound_rtol : float
        Slack of the bound, relative to ``max(1, |log p(X)|)``: float64 rounding of sums over the data.

    Returns
    -------
    judge : callable ``judge(case, output, ctx) -> CheckResult``
        Full marks when the output is one finite number, close to the reference ELBO, at most log p(X), and
        equal to it when ``case["_kind"] == "posterior"``; 0 otherwise. A value far below the reference
        (say -1e300) satisfies the bound but is not the ELBO, and scores 0.
    """
    def judge(case, output, ctx):
        try:
            value = scalar(output)
        except (TypeError, ValueError) as exc:
            return CheckResult(0.0, str(exc))
        if not np.isfinite(value):
            return CheckResult(0.0, f"the ELBO is {value}; terms with zero responsibility contribute 0 (0 log 0 = 0)")
        expected = float(ref_elbo(case))
        if not abs(value - expected) <= atol + rtol * abs(expected):
            return CheckResult(0.0, f"the ELBO of this distribution is {expected:.6f}, got {value:.6f}: the bound "
                                    f"is credited only with the right value")
        ll = float(ref_log_likelihood(case))
        slack = bound_rtol * max(1.0, abs(ll))
        if case.get("_kind") == "posterior":
            ok = abs(value - ll) <= slack
            return CheckResult(float(ok), "" if ok else f"at the posterior the ELBO must equal log p(X) = {ll:.6f}; "
                                                          f"got {value:.6f}")
        ok = value <= ll + slack
        return CheckResult(float(ok), "" if ok else f"the ELBO {value:.6f} exceeds log p(X) = {ll:.6f}")
    return judge


def match_components(reference_means: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The relabelling of fitted components that best matches a reference fit.

    Parameters
    ----------
    reference_means : (K, d)
    means : (K, d)

    Returns
    -------
    order : (K,) int
        ``means[order]`` is the permutation of ``means`` closest to ``reference_means`` (least total squared
        distance; exhaustive up to K = 7, greedy nearest pairs beyond).
    """
    ref, got = np.asarray(reference_means, dtype=float), np.asarray(means, dtype=float)
    K = ref.shape[0]
    cost = ((ref[:, None, :] - got[None, :, :]) ** 2).sum(-1)          # (K ref, K got)
    cost = np.where(np.isfinite(cost), cost, np.inf)
    if K <= 7:
        best = min(itertools.permutations(range(K)), key=lambda p: cost[np.arange(K), list(p)].sum())
        return np.asarray(best, dtype=int)
    order, free = np.full(K, -1), set(range(K))
    for flat in np.argsort(cost, axis=None, kind="stable"):
        r, g = divmod(int(flat), K)
        if order[r] < 0 and g in free:
            order[r] = g
            free.discard(g)
    return order
