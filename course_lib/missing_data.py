"""Fitting a Gaussian to data with missing entries by expectation-maximisation.

Each row ``x_n`` splits into its observed block ``o`` and its missing block ``m`` (the NaN entries). The
quantity to maximise is the likelihood of what was observed, with the missing entries integrated out:

    log P(O; mu, Sigma) = sum_n log N(x_{n,o}; mu_o, Sigma_oo).

EM alternates two steps from the current estimate ``(mu, Sigma)``:

E-step ("complete" every row)
    Under the current Gaussian the missing block given the observed one is again Gaussian,

        P(m | o) = N(m; mu_m + Sigma_mo Sigma_oo^{-1} (x_o - mu_o),  Sigma_mm - Sigma_mo Sigma_oo^{-1} Sigma_om).

    ``completion="expectation"`` fills the missing block with that conditional mean ``x_hat`` and keeps its
    conditional covariance ``C_n`` (``Sigma_mm - ...`` placed in the (m, m) block of a d x d zero matrix):
    this is the limit of filling in every value of ``m`` in proportion to ``P(m | o)``.
    ``completion="sampling"`` instead fills it with one draw from ``P(m | o)`` and uses ``C_n = 0``
    (stochastic EM: cheaper to explain, noisier, and its likelihood is not guaranteed to increase).

M-step (plain Gaussian MLE on the completed rows)
    ``mu = 1/N sum_n x_hat_n``,   ``Sigma = 1/N sum_n (x_hat_n x_hat_n^T + C_n) - mu mu^T``
    (computed in the equivalent centred form ``1/N sum_n [(x_hat_n - mu)(x_hat_n - mu)^T + C_n]``, which loses
    less precision).

With expectation completion every iteration increases the observed-data log-likelihood (or leaves it
unchanged at a fixed point). Rows that share a missingness pattern share ``Sigma_oo^{-1}``, the regression
matrix and ``C_n``, so the work is done once per pattern and vectorised over its rows.

The two steps on their own, from given parameters: :func:`complete` (the E-step's conditional means and
covariances) and :func:`m_step`; :class:`MissingDataGaussian` runs the same code, and
``MissingDataGaussian.from_params`` builds a fitted model (to impute or score) without running EM.
"""
from __future__ import annotations

import warnings

import torch
from sklearn.base import DensityMixin
from sklearn.exceptions import ConvergenceWarning

from ._base import Estimator, as_tensor, check_choice, check_int, check_nonneg, few_threads
from ._gaussian import LOG_2PI, cholesky

__all__ = ["MissingDataGaussian", "complete", "m_step"]

# Per-pattern matrix products are used when the patterns hold, on average, more than this many row-entries
# of work (rows * d * d); below it one batched product over all rows is cheaper than a loop over patterns.
_ROWS_X_WORK_PER_PATTERN = 3_000
# Largest number of matrix entries gathered at once by the batched product (bounds its memory).
_GATHER_CHUNK = 2**22

_HINT = "the observed features are (nearly) collinear; drop a redundant feature or add more rows"


class _Layout:
    """The rows of ``X`` sorted by missingness pattern, so that each pattern is a contiguous slice.

    Attributes: ``order`` (N,) the sorting permutation; ``X0`` (N, d) the sorted rows with 0 in place of NaN;
    ``obs`` / ``mis`` (P, d) 0/1 masks of the P distinct patterns; ``slices`` the row range of each pattern.
    """

    def __init__(self, X: torch.Tensor):
        missing = torch.isnan(X)
        n, d = X.shape
        if d <= 62:        # a pattern as the bits of one integer: a 1-D unique is much faster than unique(dim=0)
            bits = torch.arange(d, device=X.device)
            codes, inverse = torch.unique((missing.long() << bits).sum(1), return_inverse=True)
            uniq = ((codes[:, None] >> bits) & 1).bool()
        else:
            uniq, inverse = torch.unique(missing, dim=0, return_inverse=True)
        self.order = torch.argsort(inverse, stable=True)
        sizes = torch.bincount(inverse, minlength=uniq.shape[0])
        self.sizes = sizes.to(X.dtype)
        bounds = [0] + torch.cumsum(sizes, 0).tolist()
        self.slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        self.X0 = torch.where(missing, 0, X)[self.order]
        self.mis = uniq.to(X.dtype)
        self.obs = 1 - self.mis
        self.pid = torch.repeat_interleave(torch.arange(uniq.shape[0], device=X.device), sizes)   # (N,) sorted
        self.obs_rows = self.obs[self.pid]                                                     # (N, d)
        # Many small patterns: one batched product over rows beats a Python loop over patterns.
        # Few large patterns: loop over patterns, one matrix product each.
        self.gather = n * d * d <= _ROWS_X_WORK_PER_PATTERN * uniq.shape[0]

    def unsort(self, rows: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(rows)
        out[self.order] = rows
        return out


def _conditionals(lay: _Layout, mean: torch.Tensor, cov: torch.Tensor):
    """The conditional-Gaussian algebra of every pattern at once, as (P, d, d) stacks.

    For pattern p with observed set o and missing set m, ``Sigma_oo`` is embedded in a d x d matrix with the
    identity on the missing block, so that all patterns share one shape and one batched Cholesky call; its
    factor is ``L_oo`` on the observed block and the identity elsewhere. Returns

    * ``Linv``: the inverse of that factor (so ``|Linv (x - mu)|^2`` is the Mahalanobis term of x_o),
    * ``R``: the regression ``Sigma_mo Sigma_oo^{-1}`` in the (m, o) block, zero elsewhere,
    * ``C``: the conditional covariance ``Sigma_mm - Sigma_mo Sigma_oo^{-1} Sigma_om`` in the (m, m) block,
    * ``const``: ``-1/2 log det Sigma_oo - |o|/2 log(2 pi)`` per pattern.
    """
    o, m = lay.obs, lay.mis
    d = cov.shape[0]
    eye = torch.eye(d, device=cov.device, dtype=cov.dtype)
    s_oo = cov * (o[:, :, None] * o[:, None, :]) + torch.diag_embed(m)
    L = cholesky(s_oo, "covariance of the observed features", _HINT)
    Linv = torch.linalg.solve_triangular(L, eye.expand_as(L), upper=False)
    prec = Linv.mT @ Linv                                   # Sigma_oo^{-1} embedded (identity on m)
    R = (cov * (m[:, :, None] * o[:, None, :])) @ prec      # Sigma_mo Sigma_oo^{-1}
    C = (cov - R @ cov) * (m[:, :, None] * m[:, None, :])
    C = 0.5 * (C + C.mT)
    const = -torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1) - 0.5 * o.sum(1) * LOG_2PI
    return Linv, R, C, const


def _apply(lay: _Layout, G: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Row-wise products with per-pattern matrices: row n of the result is ``G[pattern(n)] @ V[n]``.

    ``G`` is (P, k, d) and ``V`` (N, d) in sorted order; returns (N, k).
    """
    n, d = V.shape
    k = G.shape[1]
    if not lay.gather:
        return torch.cat([V[rows] @ G[p].T for p, rows in enumerate(lay.slices)])
    out = V.new_empty(n, k)
    step = max(1, _GATHER_CHUNK // (k * d))
    for start in range(0, n, step):
        stop = min(n, start + step)
        out[start:stop] = (G[lay.pid[start:stop]] @ V[start:stop, :, None]).squeeze(-1)
    return out


def _complete(lay: _Layout, mean: torch.Tensor, cov: torch.Tensor, noise: torch.Tensor | None = None):
    """Observed-data log-density of every row and the completed rows, both in sorted order.

    Returns ``log_p`` (N,), ``completed`` (N, d) (conditional means, plus ``noise`` pushed through the
    conditional covariance's square root when ``noise`` (N, d) is given) and ``C`` (P, d, d).
    """
    Linv, R, C, const = _conditionals(lay, mean, cov)
    d = mean.shape[0]
    diff = (lay.X0 - mean) * lay.obs_rows                   # x_o - mu_o, zero on the missing block
    out = _apply(lay, torch.cat([Linv, R], dim=1), diff)    # (N, 2d)
    white, regress = out[:, :d], out[:, d:]
    log_p = const[lay.pid] - 0.5 * (white * white).sum(1)
    # observed entries kept; missing ones: mu_m + Sigma_mo Sigma_oo^{-1} (x_o - mu_o)
    completed = lay.X0 + (1 - lay.obs_rows) * mean + regress
    if noise is not None:
        completed = completed + _apply(lay, _sqrt_psd(C), noise) * (1 - lay.obs_rows)
    return log_p, completed, C


def _small(X: torch.Tensor) -> bool:
    """Whether the per-iteration work is small enough that one CPU thread beats a thread pool."""
    n, d = X.shape
    return X.device.type == "cpu" and n * d * d < 4_000_000


def _sqrt_psd(C: torch.Tensor) -> torch.Tensor:
    """Factors ``F`` with ``F F^T = C`` for symmetric positive semi-definite ``C`` (..., d, d); eigenvalues
    below 0 (rounding) are clipped."""
    w, V = torch.linalg.eigh(C)
    return V * torch.sqrt(torch.clamp(w, min=0))[..., None, :]


def _gaussian_m_step(completed: torch.Tensor, correction: torch.Tensor):
    """Mean and covariance of completed rows (N, d) plus the summed conditional covariances (d, d)."""
    n = completed.shape[0]
    mean = completed.mean(0)
    diff = completed - mean
    cov = (diff.T @ diff + correction) / n
    return mean, 0.5 * (cov + cov.T)


def _given_gaussian(mean, covariance, like: torch.Tensor | None = None, d: int | None = None):
    """A caller's mean (d,) and covariance (d, d), checked, on ``like``'s device and dtype."""
    conv = dict(device=like.device, dtype=like.dtype) if like is not None else {}
    mu, _ = as_tensor(mean, name="mean", ndim=1, **conv)
    cov, _ = as_tensor(covariance, name="covariance", ndim=2, device=mu.device, dtype=mu.dtype)
    d = mu.shape[0] if d is None else d
    if mu.shape[0] != d or tuple(cov.shape) != (d, d) or d == 0:
        raise ValueError(f"mean has shape {tuple(mu.shape)} and covariance {tuple(cov.shape)}; pass ({d},) and "
                         f"({d}, {d}), one entry per feature")
    tol = 1e-6 if mu.dtype == torch.float64 else 1e-4
    if not torch.allclose(cov, cov.T, rtol=tol, atol=tol * float(cov.abs().amax())):
        raise ValueError("covariance must be symmetric; pass (C + C.T) / 2")
    cholesky(cov, "covariance", "pass a symmetric positive-definite covariance")
    return mu, cov


def complete(X, mean, covariance):
    """The E-step for a Gaussian with missing entries: every row completed by its conditional distribution.

    For a row with observed block ``o`` and missing block ``m`` (its NaN entries), the missing block given
    the observed one is Gaussian, ``N(mu_m + Sigma_mo Sigma_oo^{-1} (x_o - mu_o), Sigma_mm - Sigma_mo
    Sigma_oo^{-1} Sigma_om)``.

    Parameters
    ----------
    X : (n_samples, n_features) array or tensor
        NaN marks a missing entry. Its kind decides the output's (NumPy in, NumPy out; a tensor in, a tensor
        out on its device and dtype).
    mean : (n_features,)
    covariance : (n_features, n_features)
        Symmetric positive definite.

    Returns
    -------
    completed : (n_samples, n_features)
        ``X`` with every missing entry replaced by its conditional mean (observed entries unchanged; a row
        with nothing observed becomes ``mean``).
    conditional_covariances : (n_samples, n_features, n_features)
        ``C_n``: the conditional covariance of row n's missing block placed in its (m, m) block, zero in
        every row and column of an observed feature. ``sum_n C_n`` is the correction the M-step adds.

    Examples
    --------
    >>> import numpy as np
    >>> completed, C = complete(np.array([[1.0, np.nan]]), [0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]])
    >>> completed, C[0]
    (array([[1. , 0.5]]), array([[0.  , 0.  ],
           [0.  , 0.75]]))
    """
    Xt, numpy_io = as_tensor(X, name="X", ndim=2, allow_nan=True, min_features=1)
    mu, cov = _given_gaussian(mean, covariance, like=Xt, d=Xt.shape[1])
    with few_threads(_small(Xt)):
        lay = _Layout(Xt)
        _, completed, C = _complete(lay, mu, cov)
        per_row = lay.unsort(C[lay.pid])
        completed = lay.unsort(completed)
    if numpy_io:
        return completed.cpu().numpy(), per_row.cpu().numpy()
    return completed, per_row


def m_step(completed, conditional_covariances):
    """The M-step for a Gaussian with missing entries: mean and covariance of the completed rows.

    ``mu = 1/N sum_n x_hat_n`` and ``Sigma = 1/N sum_n [(x_hat_n - mu)(x_hat_n - mu)^T + C_n]``: the
    maximum-likelihood Gaussian of the completed rows, plus the average conditional covariance (what filling
    in the conditional mean alone leaves out).

    Parameters
    ----------
    completed : (n_samples, n_features) array or tensor
        The rows completed by :func:`complete`. Its kind decides the output's.
    conditional_covariances : (n_samples, n_features, n_features) or (n_features, n_features)
        The ``C_n`` of every row, or their sum over the rows (zeros for stochastic EM, whose rows hold draws).

    Returns
    -------
    mean : (n_features,)
    covariance : (n_features, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> mean, cov = m_step(np.array([[1.0, 0.5], [-1.0, -0.5]]), np.zeros((2, 2)))
    >>> mean, cov
    (array([0., 0.]), array([[1.  , 0.5 ],
           [0.5 , 0.25]]))
    """
    Xt, numpy_io = as_tensor(completed, name="completed", ndim=2, min_features=1)
    C, _ = as_tensor(conditional_covariances, name="conditional_covariances", ndim=(2, 3), device=Xt.device,
                     dtype=Xt.dtype)
    n, d = Xt.shape
    if tuple(C.shape) not in ((n, d, d), (d, d)):
        raise ValueError(f"conditional_covariances has shape {tuple(C.shape)}; pass ({n}, {d}, {d}), one per row, "
                         f"or their sum, ({d}, {d})")
    mean, cov = _gaussian_m_step(Xt, C.sum(0) if C.ndim == 3 else C)
    if numpy_io:
        return mean.cpu().numpy(), cov.cpu().numpy()
    return mean, cov



class MissingDataGaussian(DensityMixin, Estimator):
    """Maximum-likelihood Gaussian from rows with missing (NaN) entries, fitted by EM.

    Parameters
    ----------
    completion : {"expectation", "sampling"}, default "expectation"
        How the E-step fills in the missing entries: with their conditional mean plus the conditional
        covariance correction (exact EM), or with a draw from ``P(m | o)`` (stochastic EM).
    max_iter : int, default 100
        The largest number of EM updates.
    tol : float, default 1e-6
        Stop when the observed-data log-likelihood *per row* changes by less than ``tol`` between two
        iterations. With ``completion="sampling"`` the likelihood keeps fluctuating, so the fit usually runs
        for ``max_iter`` iterations (and, unlike the expectation variant, gives no ConvergenceWarning then).
    random_state : None, int or torch.Generator
        Seeds the draws of ``completion="sampling"`` (the expectation variant is deterministic).
    device, dtype
        Where and in what precision to compute (default: follow the input).

    Attributes
    ----------
    mean_ : (n_features,)
    covariance_ : (n_features, n_features)
    log_likelihoods_ : list of float
        The observed-data log-likelihood ``sum_n log N(x_{n,o}; mu_o, Sigma_oo)`` (a total over rows).
        Entry ``k`` is evaluated at the parameters after ``k`` EM updates: entry 0 at the starting point (the
        per-feature means and variances of the observed entries, with zero correlations), the last one at
        the returned ``mean_`` and ``covariance_``. There are ``n_iter_ + 1`` entries.
    n_iter_ : int
        Number of EM updates done.
    converged_ : bool
        Whether the stopping rule was met before ``max_iter``.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).multivariate_normal([0, 0], [[1, .9], [.9, 1]], size=500)
    >>> X[::3, 1] = np.nan
    >>> model = MissingDataGaussian().fit(X)
    >>> model.impute(X).shape
    (500, 2)
    """

    def __init__(self, completion: str = "expectation", max_iter: int = 100, tol: float = 1e-6,
                 random_state=None, device=None, dtype=None):
        self.completion = completion
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    _fitted_attributes = ("mean_", "covariance_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ---- checks ------------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_choice(self.completion, "completion", ("expectation", "sampling"))
        check_int(self.max_iter, "max_iter")
        check_nonneg(self.tol, "tol")

    @staticmethod
    def _check_coverage(X: torch.Tensor) -> None:
        missing = torch.isnan(X)
        empty_rows = torch.nonzero(missing.all(1)).flatten().tolist()
        if empty_rows:
            shown = ", ".join(map(str, empty_rows[:10])) + (" ..." if len(empty_rows) > 10 else "")
            raise ValueError(f"{len(empty_rows)} row(s) of X have no observed entry (rows {shown}); drop them, "
                             "they carry no information about the Gaussian")
        n_obs = (~missing).sum(0)
        thin = torch.nonzero(n_obs < 2).flatten().tolist()
        if thin:
            raise ValueError(f"feature {thin[0]} has {int(n_obs[thin[0]])} observed value(s); each feature needs "
                             "at least 2 to estimate its variance, so drop that column")

    # ---- EM ----------------------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Estimate ``mean_`` and ``covariance_`` from ``X`` by EM.

        Parameters
        ----------
        X : (n_samples, n_features) array-like or tensor
            NaN marks a missing entry; every row needs at least one observed entry.
        y : ignored

        Returns
        -------
        self
        """
        self._forget_fit()      # a failed fit leaves no earlier fit behind
        self._check_params()
        X = self._check_input(X, reset=True, allow_nan=True, min_samples=2)
        self._check_coverage(X)
        n, d = X.shape
        lay = _Layout(X)
        gen = self._generator() if self.completion == "sampling" else None

        # start: per-feature mean and variance of the observed entries, no correlations
        observed = ~torch.isnan(X)
        mean = torch.where(observed, X, 0).sum(0) / observed.sum(0)
        var = torch.where(observed, (X - mean) ** 2, 0).sum(0) / observed.sum(0)
        if bool((var <= 0).any()):
            j = int(torch.nonzero(var <= 0)[0])
            raise ValueError(f"feature {j} is constant over its observed entries; drop that column")
        cov = torch.diag(var)

        with few_threads(_small(X)):
            ll, stats = self._e_step(lay, mean, cov, gen)
            lls = [ll]
            converged = False
            n_iter = 0
            for n_iter in range(1, int(self.max_iter) + 1):
                mean, cov = self._m_step(*stats)
                ll, stats = self._e_step(lay, mean, cov, gen)
                lls.append(ll)
                if abs(lls[-1] - lls[-2]) < self.tol * n:
                    converged = True
                    break
        if not converged and self.completion == "expectation":
            warnings.warn(f"EM did not converge in max_iter={self.max_iter} iterations; increase max_iter or tol",
                          ConvergenceWarning, stacklevel=2)

        self.mean_ = self._out(mean)
        self.covariance_ = self._out(cov)
        self.log_likelihoods_ = lls
        self.n_iter_ = n_iter
        self.converged_ = converged
        return self

    @classmethod
    def from_params(cls, mean, covariance, **params):
        """A model with the given mean and covariance, ready to impute and score, without running EM.

        Parameters
        ----------
        mean : (n_features,)
        covariance : (n_features, n_features)
            Symmetric positive definite.
        **params
            Other constructor parameters (``device``, ``dtype``).

        Returns
        -------
        MissingDataGaussian
            With ``mean_ covariance_ n_features_in_`` set (not the attributes of an EM run). A tensor among
            the parameters makes it compute on its device and dtype and return tensors; otherwise NumPy.

        Examples
        --------
        >>> import numpy as np
        >>> model = MissingDataGaussian.from_params([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]])
        >>> model.impute(np.array([[2.0, np.nan]]))
        array([[2., 1.]])
        """
        model = cls(**params)
        model._check_params()
        mu, cov = model._params_context(mean, covariance, names=("mean", "covariance"))
        mu, cov = _given_gaussian(mu, cov)
        model.n_features_in_ = int(mu.shape[0])
        model.mean_ = model._out(mu)
        model.covariance_ = model._out(cov)
        return model

    @staticmethod
    def _e_step(lay: _Layout, mean, cov, gen):
        """Observed-data log-likelihood at ``(mean, cov)`` and what the M-step needs.

        Returns ``(total, (completed rows (N, d), sum over rows of C_n (d, d)))``; with sampling completion the
        rows hold draws from P(m | o) and the sum of C_n is zero.
        """
        noise = None
        if gen is not None:
            noise = torch.randn(lay.X0.shape, generator=gen, device=lay.X0.device, dtype=lay.X0.dtype)
        log_p, completed, C = _complete(lay, mean, cov, noise)
        if gen is None:
            correction = (lay.sizes[:, None, None] * C).sum(0)
        else:
            correction = torch.zeros_like(cov)
        return float(log_p.sum()), (completed, correction)

    @staticmethod
    def _m_step(completed: torch.Tensor, correction: torch.Tensor):
        """Mean and covariance from completed rows (N, d) and the summed conditional covariances; see :func:`m_step`."""
        return _gaussian_m_step(completed, correction)

    # ---- after fit ---------------------------------------------------------------------------------------
    def _complete_new(self, X):
        X = self._check_input(X, allow_nan=True)
        with few_threads(_small(X)):
            lay = _Layout(X)
            log_p, completed, _ = _complete(lay, self._tensor(self.mean_), self._tensor(self.covariance_))
        return lay, log_p, completed

    def impute(self, X):
        """Fill every NaN with its conditional mean given the row's observed entries, under the fitted model.

        Parameters
        ----------
        X : (n_samples, n_features) array-like or tensor
            A row with nothing observed is filled with ``mean_``.

        Returns
        -------
        (n_samples, n_features) ndarray or tensor
            A new array (``X`` is not modified); observed entries are copied unchanged.
        """
        lay, _, completed = self._complete_new(X)
        return self._out(lay.unsort(completed))

    def score_samples(self, X):
        """Observed-data log-likelihood of each row, ``log N(x_o; mu_o, Sigma_oo)``: (n_samples,).

        A row with nothing observed scores 0 (the probability of observing nothing is 1).
        """
        lay, log_p, _ = self._complete_new(X)
        return self._out(lay.unsort(log_p))

    def score(self, X, y=None) -> float:
        """Mean observed-data log-likelihood per row (the mean of :meth:`score_samples`)."""
        _, log_p, _ = self._complete_new(X)
        return float(log_p.mean())
