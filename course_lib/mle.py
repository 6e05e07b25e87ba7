"""Closed-form maximum-likelihood estimates and the log-likelihoods they maximise.

Each family comes as a pair: an estimator that returns the maximiser of the log-likelihood for i.i.d. data,
and the total log-likelihood ``sum_n log p(x_n; theta)`` of data under given parameters.

==========================  ==================================  ============================================
family                      MLE                                 log-likelihood (total over the samples)
==========================  ==================================  ============================================
categorical (a die)         ``probs_k = N_k / N``               ``sum_k N_k log probs_k``
Bernoulli (a coin)          ``p = N_1 / N``                     ``N_1 log p + N_0 log(1 - p)``
Poisson (counts)            ``rate = mean(x)``                  ``sum_n x_n log rate - rate - log(x_n!)``
Gaussian (d dimensions)     ``mean``, ``cov = 1/N sum (x-m)(x-m)^T``  ``sum_n log N(x_n; mean, cov)``
==========================  ==================================  ============================================

Kinds of input and output: NumPy (or lists) in gives NumPy out, computed in float64 on the CPU; a torch tensor
in gives a tensor out on the tensor's device (integer tensors are read as float64). Scalar results follow the
same rule: a Python ``float`` for NumPy input, a 0-d tensor for tensor input. When the data and the
parameters are of different kinds, a tensor among them decides the device and the floating dtype: the data
when they are a floating tensor, else a tensor parameter (integer labels carry no floating dtype).

Zero probabilities: an outcome that was observed but has probability 0 under the parameters makes the
log-likelihood ``-inf``; that is the correct value (the data are impossible under that model), not an error.
Outcomes that were never observed contribute nothing, whatever their probability (``0 * log 0 = 0``).
"""
from __future__ import annotations

import numbers

import torch

from ._base import as_tensor, to_output
from ._gaussian import log_gaussian_pdf

__all__ = [
    "categorical", "categorical_log_likelihood",
    "bernoulli", "bernoulli_log_likelihood",
    "poisson", "poisson_log_likelihood",
    "gaussian", "gaussian_log_likelihood",
]


# ----------------------------------------------------------------------------------------------------------
# input helpers
# ----------------------------------------------------------------------------------------------------------
def _data(x, name: str, ndim, like=None) -> tuple[torch.Tensor, bool]:
    """``x`` as a floating tensor. A floating tensor ``x`` keeps its device and dtype; otherwise a tensor
    parameter ``like`` decides them (integer labels carry no floating dtype of their own)."""
    device = dtype = None
    x_is_float_tensor = isinstance(x, torch.Tensor) and x.is_floating_point()
    if isinstance(like, torch.Tensor) and not x_is_float_tensor:
        device = like.device
        dtype = like.dtype if like.is_floating_point() else None
    t, was_numpy = as_tensor(x, name=name, ndim=ndim, device=device, dtype=dtype)
    return t, was_numpy and not isinstance(like, torch.Tensor)


def _param(value, name: str, ref: torch.Tensor) -> torch.Tensor:
    """A parameter as a tensor on ``ref``'s device and dtype; finite entries only."""
    t, _ = as_tensor(value, name=name, ndim=None, device=ref.device, dtype=ref.dtype)
    return t


def _scalar(value, name: str, ref: torch.Tensor) -> torch.Tensor:
    t = _param(value, name, ref)
    if t.numel() != 1:
        raise ValueError(f"{name} must be a single number, got shape {tuple(t.shape)}")
    return t.reshape(())


def _check_integers(t: torch.Tensor, name: str, what: str) -> None:
    if t.numel() and not bool((t == torch.round(t)).all()):
        raise ValueError(f"{name} must hold whole numbers ({what}); found a non-integer value")
    if t.numel() and bool((t < 0).any()):
        raise ValueError(f"{name} must hold non-negative values ({what}); found {t.min().item():g}")


def _scalar_out(t: torch.Tensor, numpy: bool):
    return float(t.item()) if numpy else t


# ----------------------------------------------------------------------------------------------------------
# categorical (multinomial with one trial per sample)
# ----------------------------------------------------------------------------------------------------------
def _labels(x, num_classes, like=None) -> tuple[torch.Tensor, bool, int]:
    t, numpy = _data(x, "x", 1, like)
    _check_integers(t, "x", "class labels 0, 1, ..., K-1")
    top = int(t.max().item())
    if num_classes is None:
        num_classes = top + 1
    else:
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
            raise ValueError(f"num_classes={num_classes!r} must be a positive integer")
        num_classes = int(num_classes)
        if top >= num_classes:
            raise ValueError(f"x holds the label {top}, but num_classes={num_classes} allows only "
                             f"0..{num_classes - 1}; relabel the data or raise num_classes")
    return t, numpy, num_classes


def _counts(t: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(t.to(torch.long), minlength=num_classes).to(t.dtype)


def categorical(x, num_classes: int | None = None):
    """Maximum-likelihood class probabilities of a categorical variable: the relative frequencies.

    Parameters
    ----------
    x : (n_samples,) array-like or tensor of int
        Observed outcomes coded ``0, 1, ..., K-1`` (for a die: faces 1..6 as 0..5).
    num_classes : int, optional
        K. Defaults to ``max(x) + 1``; pass it when some outcomes were never observed.

    Returns
    -------
    probs : (K,) ndarray or tensor
        ``probs[k] = N_k / N``; the entries sum to 1.
    """
    t, numpy, K = _labels(x, num_classes)
    return to_output(_counts(t, K) / t.shape[0], numpy)


def categorical_log_likelihood(x, probs):
    """Total log-likelihood ``sum_n log probs[x_n] = sum_k N_k log probs_k`` of labels under ``probs``.

    Parameters
    ----------
    x : (n_samples,) array-like or tensor of int
        Observed outcomes coded ``0..K-1``.
    probs : (K,) array-like or tensor
        Non-negative probabilities summing to 1.

    Returns
    -------
    float or 0-d tensor
        ``-inf`` when an observed outcome has probability 0.
    """
    t, numpy, _ = _labels(x, None, like=probs)
    p = _param(probs, "probs", t)
    if p.ndim != 1:
        raise ValueError(f"probs must be 1-D (one probability per class), got shape {tuple(p.shape)}")
    if bool((p < 0).any()) or abs(float(p.sum()) - 1.0) > 1e-6:
        raise ValueError("probs must be non-negative and sum to 1; normalise them with probs / probs.sum()")
    if int(t.max().item()) >= p.shape[0]:
        raise ValueError(f"x holds the label {int(t.max().item())}, but probs has only {p.shape[0]} classes")
    return _scalar_out(torch.xlogy(_counts(t, p.shape[0]), p).sum(), numpy)


# ----------------------------------------------------------------------------------------------------------
# Bernoulli
# ----------------------------------------------------------------------------------------------------------
def _binary(x, like=None) -> tuple[torch.Tensor, bool]:
    t, numpy = _data(x, "x", 1, like)
    if not bool(((t == 0) | (t == 1)).all()):
        raise ValueError("x must hold only 0 and 1 (or False/True); map labels such as -1/+1 with (y == 1)")
    return t, numpy


def bernoulli(x):
    """Maximum-likelihood success probability of a coin: the fraction of ones.

    Parameters
    ----------
    x : (n_samples,) array-like or tensor of {0, 1} or bool

    Returns
    -------
    p : float or 0-d tensor
        ``N_1 / N``.
    """
    t, numpy = _binary(x)
    return _scalar_out(t.mean(), numpy)


def bernoulli_log_likelihood(x, p):
    """Total log-likelihood ``N_1 log p + N_0 log(1 - p)`` of binary data.

    Parameters
    ----------
    x : (n_samples,) array-like or tensor of {0, 1} or bool
    p : float or 0-d array/tensor in [0, 1]

    Returns
    -------
    float or 0-d tensor
        ``-inf`` when ``p`` is 0 and a one was observed, or ``p`` is 1 and a zero was observed.
    """
    t, numpy = _binary(x, like=p)
    p = _scalar(p, "p", t)
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p={float(p):g} must lie in [0, 1]")
    ones = t.sum()
    return _scalar_out(torch.xlogy(ones, p) + torch.xlogy(t.shape[0] - ones, 1 - p), numpy)


# ----------------------------------------------------------------------------------------------------------
# Poisson
# ----------------------------------------------------------------------------------------------------------
def _count_data(x, like=None) -> tuple[torch.Tensor, bool]:
    t, numpy = _data(x, "x", 1, like)
    _check_integers(t, "x", "counts 0, 1, 2, ...")
    return t, numpy


def poisson(x):
    """Maximum-likelihood rate of a Poisson variable: the sample mean.

    Parameters
    ----------
    x : (n_samples,) array-like or tensor of non-negative int

    Returns
    -------
    rate : float or 0-d tensor
    """
    t, numpy = _count_data(x)
    return _scalar_out(t.mean(), numpy)


def poisson_log_likelihood(x, rate):
    """Total log-likelihood ``sum_n [x_n log(rate) - rate - log(x_n!)]`` of counts.

    Parameters
    ----------
    x : (n_samples,) array-like or tensor of non-negative int
    rate : float or 0-d array/tensor, >= 0

    Returns
    -------
    float or 0-d tensor
        ``log(x_n!)`` is included (computed as ``lgamma(x_n + 1)``), so the value is a true log-probability.
        ``rate = 0`` gives 0 when every count is 0 and ``-inf`` otherwise.
    """
    t, numpy = _count_data(x, like=rate)
    rate = _scalar(rate, "rate", t)
    if float(rate) < 0:
        raise ValueError(f"rate={float(rate):g} must be non-negative")
    total = torch.xlogy(t, rate).sum() - t.shape[0] * rate - torch.lgamma(t + 1).sum()
    return _scalar_out(total, numpy)


# ----------------------------------------------------------------------------------------------------------
# Gaussian
# ----------------------------------------------------------------------------------------------------------
def _points(X, like=None) -> tuple[torch.Tensor, bool]:
    t, numpy = _data(X, "X", (1, 2), like)
    if t.ndim == 1:
        t = t.reshape(-1, 1)
    return t, numpy


def gaussian(X):
    """Maximum-likelihood mean and covariance of a multivariate Gaussian.

    Parameters
    ----------
    X : (n_samples, n_features) array-like or tensor
        A 1-D array is read as ``n_samples`` scalars, i.e. ``n_features = 1``; the results then still have
        shapes (1,) and (1, 1), so code written for d dimensions works unchanged.

    Returns
    -------
    mean : (n_features,) ndarray or tensor
        ``1/N sum_n x_n``.
    cov : (n_features, n_features) ndarray or tensor
        ``1/N sum_n (x_n - mean)(x_n - mean)^T``: the biased estimate, divided by N and not N - 1, because that
        is what maximises the likelihood. With fewer than ``n_features + 1`` samples it is singular.
    """
    t, numpy = _points(X)
    mean = t.mean(0)
    diff = t - mean
    cov = diff.T @ diff / t.shape[0]
    return to_output(mean, numpy), to_output(0.5 * (cov + cov.T), numpy)


def gaussian_log_likelihood(X, mean, cov, *, per_observation: bool = False):
    """Total log-likelihood ``sum_n log N(x_n; mean, cov)`` (or each ``log N(x_n; mean, cov)``).

    Parameters
    ----------
    X : (n_samples, n_features) array-like or tensor
        1-D input is read as ``n_features = 1`` (see :func:`gaussian`).
    mean : (n_features,) array-like or tensor
        A single number is accepted when ``n_features = 1``.
    cov : (n_features, n_features) array-like or tensor
        Symmetric positive definite; a single number (the variance) is accepted when ``n_features = 1``.
    per_observation : bool, default False
        Return the log-density of every sample, shape (n_samples,), instead of their sum.

    Returns
    -------
    float or 0-d tensor, or (n_samples,) ndarray or tensor with ``per_observation=True``

    Raises
    ------
    ValueError
        When ``cov`` is not positive definite (its density does not exist).
    """
    like = mean if isinstance(mean, torch.Tensor) else cov
    t, numpy = _points(X, like=like)
    d = t.shape[1]
    m = _param(mean, "mean", t)
    c = _param(cov, "cov", t)
    if d == 1:
        m = m.reshape(-1) if m.numel() == 1 else m
        c = c.reshape(1, 1) if c.numel() == 1 else c
    if tuple(m.shape) != (d,):
        raise ValueError(f"mean must have shape ({d},) to match X with {d} features, got {tuple(m.shape)}")
    if tuple(c.shape) != (d, d):
        raise ValueError(f"cov must have shape ({d}, {d}) to match X with {d} features, got {tuple(c.shape)}")
    if not torch.allclose(c, c.T, rtol=1e-6, atol=1e-8 * float(c.abs().max().clamp_min(1e-300))):
        raise ValueError("cov must be symmetric; symmetrise it with (cov + cov.T) / 2")
    per_sample = log_gaussian_pdf(t, m, c, what="covariance cov",
                                  hint="pass a positive definite cov (add a small multiple of the identity)")
    if per_observation:
        return to_output(per_sample, numpy)
    return _scalar_out(per_sample.sum(), numpy)
