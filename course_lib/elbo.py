"""The evidence lower bound (ELBO) for models with a discrete latent variable.

For an observation ``o`` and a latent variable ``m`` taking ``M`` values, every function here works from the
log joint ``log P(o, m; θ)`` laid out as an array whose last axis runs over the latent values:

* ``log_marginal``  log P(o; θ) = log Σ_m P(o, m; θ)                       (log-sum-exp, never underflows)
* ``posterior``     P(m | o; θ) = P(o, m; θ) / P(o; θ)                     (the responsibilities)
* ``elbo``          Σ_m q(m) [log P(o, m; θ) − log q(m)]  ≤  log P(o; θ)   (with 0 · log 0 = 0)
* ``entropy``       −Σ_m q(m) log q(m)
* ``kl_divergence`` Σ_m q(m) log(q(m) / p(m)); the gap log P(o; θ) − ELBO(q) = KL(q ‖ P(m | o; θ))
* ``bound``         J(θ, θ′) = ELBO with q = P(m | o; θ′), evaluated over a grid of θ.  It lies below
                    log P(o; θ) everywhere and touches it at θ = θ′, which is why EM (maximise J over θ,
                    then move θ′ there) never lowers the likelihood.

Leading axes are independent observations; unless ``per_observation=True`` the results are summed over them
(the log-likelihood of a data set is the sum over its points). NumPy in gives NumPy (or a float) out; a tensor
in gives a tensor out on the same device and dtype.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

__all__ = ["log_marginal", "posterior", "log_posterior", "elbo", "entropy", "kl_divergence", "bound"]

# How far q may be from summing to one before it is refused (float32 rounding, with room).
_SUM_TOL = 1e-4


def _log_normalize(log_joint: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log P(m | o), log P(o))`` from the log joint (..., M), with no input checks (the fast path).

    Rows whose log joint is ``-inf`` for every ``m`` (impossible observations) get ``log P(o) = -inf``
    and a NaN posterior; callers that can meet them check ``log P(o)``.
    """
    log_norm = torch.logsumexp(log_joint, dim=-1)
    return log_joint - log_norm.unsqueeze(-1), log_norm


def _posterior_(log_joint: torch.Tensor, log_norm_out: torch.Tensor | None = None):
    """``(P(m | o), log P(o))`` from a finite log joint (n, M), overwriting it (the E-step's fast path).

    The same log-sum-exp as ``_log_normalize``, arranged as a few in-place passes because the E-step calls it
    on many small blocks. ``log_norm_out`` (n,), if given, receives log P(o).
    """
    shift = log_joint.amax(dim=-1, keepdim=True)
    resp = log_joint.sub_(shift).exp_()
    total = resp.sum(dim=-1, keepdim=True)
    resp.div_(total)
    log_norm = torch.add(total.log_().squeeze(-1), shift.squeeze(-1), out=log_norm_out)
    return resp, log_norm


def _as_log_joint(log_joint, name: str = "log_joint") -> tuple[torch.Tensor, bool]:
    numpy_io = not isinstance(log_joint, torch.Tensor)
    t = torch.as_tensor(np.asarray(log_joint, dtype=np.float64)) if numpy_io else log_joint.detach()
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.ndim == 0:
        raise ValueError(f"{name} must have a last axis over the latent values, got a scalar")
    if t.shape[-1] == 0:
        raise ValueError(f"{name} has no latent values (last axis of length 0)")
    if torch.isnan(t).any():
        raise ValueError(f"{name} contains NaN; check the model's log-probabilities")
    if (t == float("inf")).any():
        raise ValueError(f"{name} contains +inf; a log-probability must be finite or -inf")
    return t, numpy_io


def _as_distribution(q, like: torch.Tensor | None, name: str = "q") -> torch.Tensor:
    if isinstance(q, torch.Tensor):
        t = q.detach()
        if like is not None:
            t = t.to(device=like.device, dtype=like.dtype)
        elif not t.is_floating_point():
            t = t.to(torch.float64)
    else:
        t = torch.as_tensor(np.asarray(q, dtype=np.float64))
        if like is not None:
            t = t.to(device=like.device, dtype=like.dtype)
    if like is not None and t.shape != like.shape:
        raise ValueError(f"{name} has shape {tuple(t.shape)} but log_joint has shape {tuple(like.shape)}; "
                         "give one probability per latent value")
    if t.ndim == 0:
        raise ValueError(f"{name} must have a last axis over the latent values, got a scalar")
    if not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"{name} must hold finite, non-negative probabilities")
    if t.numel() and ((t.sum(-1) - 1).abs() > _SUM_TOL).any():
        raise ValueError(f"{name} must sum to 1 over its last axis (the latent values); normalise it")
    return t


def _reduce(values: torch.Tensor, per_observation: bool, numpy_io: bool):
    if not per_observation:
        values = values.sum()
        return float(values) if numpy_io else values
    return values.cpu().numpy() if numpy_io else values


def _xlogy(q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """q · log_p with the convention 0 · (anything, including -inf) = 0."""
    return torch.where(q > 0, q * log_p, torch.zeros((), dtype=q.dtype, device=q.device))


def log_marginal(log_joint, *, per_observation: bool = False):
    """log P(o; θ) = log Σ_m P(o, m; θ), by log-sum-exp.

    Parameters
    ----------
    log_joint : array or tensor of shape (..., M)
        log P(o, m; θ) for each observation (leading axes) and latent value ``m`` (last axis).
    per_observation : bool
        Return one value per observation, shape (...), instead of their sum.

    Returns
    -------
    float or tensor, or array of shape (...)
    """
    t, numpy_io = _as_log_joint(log_joint)
    return _reduce(torch.logsumexp(t, dim=-1), per_observation, numpy_io)


def log_posterior(log_joint):
    """log P(m | o; θ) = log P(o, m; θ) − log P(o; θ), shape (..., M), same kind as the input."""
    t, numpy_io = _as_log_joint(log_joint)
    log_post, log_norm = _log_normalize(t)
    if torch.isinf(log_norm).any():
        raise ValueError("some observation has probability 0 under every latent value (log_joint all -inf); "
                         "its posterior is undefined")
    return log_post.cpu().numpy() if numpy_io else log_post


def posterior(log_joint):
    """The responsibilities P(m | o; θ), shape (..., M); each row sums to 1.

    Computed as ``exp(log_joint − logsumexp(log_joint))`` so that very negative log joints (long-tailed
    components, many dimensions) do not underflow to 0/0.
    """
    t, numpy_io = _as_log_joint(log_joint)
    log_post, log_norm = _log_normalize(t)
    if torch.isinf(log_norm).any():
        raise ValueError("some observation has probability 0 under every latent value (log_joint all -inf); "
                         "its posterior is undefined")
    post = log_post.exp()
    return post.cpu().numpy() if numpy_io else post


def entropy(q, *, per_observation: bool = False):
    """H(q) = −Σ_m q(m) log q(m) over the last axis, with 0 · log 0 = 0.

    Parameters
    ----------
    q : array or tensor of shape (..., M)
        A distribution over the latent values for each observation.
    per_observation : bool
        Return shape (...) instead of the sum over observations.
    """
    numpy_io = not isinstance(q, torch.Tensor)
    t = _as_distribution(q, None)
    return _reduce(-_xlogy(t, torch.log(t)).sum(-1), per_observation, numpy_io)


def kl_divergence(q, p, *, per_observation: bool = False):
    """KL(q ‖ p) = Σ_m q(m) log(q(m) / p(m)) over the last axis (≥ 0; +inf where q > 0 = p).

    Parameters
    ----------
    q, p : array or tensor of shape (..., M)
        Distributions over the latent values (each sums to 1 over the last axis).
    """
    numpy_io = not isinstance(q, torch.Tensor)
    tq = _as_distribution(q, None, "q")
    tp = _as_distribution(p, tq, "p")
    return _reduce(_xlogy(tq, torch.log(tq) - torch.log(tp)).sum(-1), per_observation, numpy_io)


def elbo(log_joint, q, *, per_observation: bool = False):
    """The variational lower bound Σ_m q(m) [log P(o, m; θ) − log q(m)] ≤ log P(o; θ).

    Equality holds exactly when ``q`` is the posterior P(m | o; θ); the gap is KL(q ‖ P(m | o; θ)).

    Parameters
    ----------
    log_joint : array or tensor of shape (..., M)
        log P(o, m; θ); ``-inf`` is allowed where P(o, m; θ) = 0.
    q : array or tensor of shape (..., M)
        Any distribution over the latent values for each observation (rows sum to 1). Terms with
        q(m) = 0 contribute 0.
    per_observation : bool
        Return shape (...) instead of the sum over observations.

    Returns
    -------
    float or tensor (summed), or array/tensor of shape (...)
    """
    t, numpy_io = _as_log_joint(log_joint)
    tq = _as_distribution(q, t)
    return _reduce(_xlogy(tq, t - torch.log(tq)).sum(-1), per_observation, numpy_io)


def bound(log_joint_fn: Callable, theta_grid: Iterable, theta_prime, *, return_log_marginal: bool = False):
    """J(θ, θ′) = Σ_m P(m | o; θ′) log [P(o, m; θ) / P(m | o; θ′)] for every θ in ``theta_grid``.

    This is the ELBO with q frozen at the posterior of the current estimate θ′. As a function of θ it lies
    below log P(o; θ) and touches it at θ = θ′; the M-step of EM moves to its maximum.

    Parameters
    ----------
    log_joint_fn : callable
        ``log_joint_fn(theta)`` returns log P(o, m; θ) as an array or tensor of shape (..., M) for the
        fixed observations ``o`` (leading axes) and every latent value ``m`` (last axis).
    theta_grid : iterable
        The parameter values at which to evaluate the bound (numbers, tuples, arrays: whatever
        ``log_joint_fn`` takes).
    theta_prime : object
        The parameter value that fixes q = P(m | o; θ′).
    return_log_marginal : bool
        Also return log P(o; θ) on the same grid, for drawing the bound against the curve it bounds.

    Returns
    -------
    J : ndarray (or tensor, when ``log_joint_fn`` returns tensors) of shape (len(theta_grid),)
    log_p : same shape, only when ``return_log_marginal`` is true
    """
    lj_prime, numpy_io = _as_log_joint(log_joint_fn(theta_prime), "log_joint_fn(theta_prime)")
    log_q, log_norm = _log_normalize(lj_prime)
    if torch.isinf(log_norm).any():
        raise ValueError("an observation has probability 0 under theta_prime; pick a theta_prime where "
                         "every observation is possible")
    q = log_q.exp()
    values, marginals = [], []
    for theta in theta_grid:
        lj, _ = _as_log_joint(log_joint_fn(theta), "log_joint_fn(theta)")
        if lj.shape != lj_prime.shape:
            raise ValueError(f"log_joint_fn returned shape {tuple(lj.shape)} for one theta and "
                             f"{tuple(lj_prime.shape)} for theta_prime; it must not depend on theta")
        lj = lj.to(device=q.device, dtype=q.dtype)
        values.append(_xlogy(q, lj - log_q).sum())
        if return_log_marginal:
            marginals.append(torch.logsumexp(lj, dim=-1).sum())
    J = torch.stack(values) if values else torch.zeros(0, dtype=q.dtype, device=q.device)
    out = J.cpu().numpy() if numpy_io else J
    if not return_log_marginal:
        return out
    L = torch.stack(marginals) if marginals else torch.zeros(0, dtype=q.dtype, device=q.device)
    return out, (L.cpu().numpy() if numpy_io else L)
