"""Principal component analysis: the closed form, the iterative (alternating least squares) form, and its
probabilistic reading.

Closed form
    Centre the data, form the maximum-likelihood covariance ``C = X_cᵀ X_c / N`` and keep the ``k``
    eigenvectors with the largest eigenvalues. These span the *principal subspace*: projecting the data onto it
    leaves the smallest total squared error of any ``k``-dimensional subspace.

Iterative form
    With the data as columns (``d x N``) and a basis ``W`` (``d x k``), alternate

    * ``Z <- W⁺ X``: the best position of every point on the current subspace (its perpendicular projection),
    * ``W <- X Z⁺``: the best subspace for those positions (least squares with ``Z`` fixed),

    until the subspace stops moving. The answer is any basis of the principal subspace (rotations and scalings
    of ``W`` are absorbed by ``Z``), so at the end it is rotated to the eigenvector basis. This module stores
    samples as *rows*, so the same two steps read ``Z <- X (W⁺)ᵀ`` and ``W <- Xᵀ (Z⁺)ᵀ``; see
    :func:`iterative_pca_step`, which a lecture can call once per step.

Probabilistic PCA (Tipping & Bishop)
    ``x = μ + W z + e`` with ``z ~ N(0, I_k)`` and isotropic noise ``e ~ N(0, σ² I)``, so
    ``x ~ N(μ, W Wᵀ + σ² I)``. Its maximum-likelihood fit is the closed form above with
    ``σ² = mean of the d - k discarded eigenvalues`` and ``W = V_k (Λ_k - σ² I)^{1/2}``.

Normalisation
    Every variance here is the **maximum-likelihood** one, dividing by ``N`` (scikit-learn divides by
    ``N - 1``). To compare: ``explained_variance_ == sklearn.explained_variance_ * (N - 1) / N``, the same for
    ``noise_variance_`` and ``get_covariance()``; the components and ``explained_variance_ratio_`` agree as they are.
"""
from __future__ import annotations

import math
import warnings

import torch
from sklearn.base import TransformerMixin
from sklearn.exceptions import ConvergenceWarning

from ._base import (Estimator, as_tensor, check_choice, check_int, check_n_components, check_nonneg, few_threads,
                    make_generator, to_output)
from ._gaussian import LOG_2PI, flip_signs

__all__ = ["PCA", "iterative_pca_step"]

_SOLVERS = ("eigh", "iterative")


def _small(X: torch.Tensor, k: int) -> bool:
    return X.device.type == "cpu" and X.shape[0] * X.shape[1] * k < 4_000_000


def _step(Xc: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """One alternating least-squares step on centred rows ``Xc`` (N, d) from a basis ``W`` (d, k)."""
    # Z <- W⁺ X  (columns as samples)  ==  Z_rows = X (W⁺)ᵀ: solve W z_n = x_n in the least-squares sense
    Z = torch.linalg.lstsq(W, Xc.T).solution.T            # (N, k)
    # W <- X Z⁺  (columns as samples)  ==  solve Z_rows Wᵀ = X in the least-squares sense
    return torch.linalg.lstsq(Z, Xc).solution.T           # (d, k)


def iterative_pca_step(X, W, *, center: bool = True):
    """One step of iterative PCA: place every point on the subspace, then refit the subspace.

    Parameters
    ----------
    X : (n_samples, n_features) array or tensor
        The data, one sample per row.
    W : (n_features, n_components) array or tensor
        The current basis of the subspace, one basis vector per column (need not be orthonormal).
    center : bool, default True
        Subtract the mean of ``X`` first (PCA works on centred data). Pass False if ``X`` is already centred.

    Returns
    -------
    W_new : (n_features, n_components)
        ``W_new = Xᵀ (Z⁺)ᵀ`` with ``Z = X (W⁺)ᵀ`` (rows as samples), i.e. the slides' ``Z = W⁺X``, ``W = XZ⁺``
        with samples as columns. Same kind (NumPy or tensor) as ``X``. Repeated steps converge to a basis of
        the principal subspace; the basis itself is not unique (any invertible mix of its columns is as good).
    """
    Xt, numpy_io = as_tensor(X, name="X", ndim=2, min_samples=1)
    Wt, _ = as_tensor(W, name="W", ndim=2, device=Xt.device, dtype=Xt.dtype)
    if Wt.shape[0] != Xt.shape[1]:
        raise ValueError(f"W has {Wt.shape[0]} rows but X has {Xt.shape[1]} features; pass W of shape "
                         f"(n_features, n_components)")
    if Wt.shape[1] > min(Xt.shape):
        raise ValueError(f"W has {Wt.shape[1]} columns; use at most min(n_samples, n_features) = {min(Xt.shape)}")
    if center:
        Xt = Xt - Xt.mean(0)
    with few_threads(_small(Xt, Wt.shape[1])):
        W_new = _step(Xt, Wt)
    if not torch.isfinite(W_new).all():
        raise ValueError("the step produced non-finite values; W or Z lost rank (start from a W of full column rank)")
    return to_output(W_new, numpy_io)


class PCA(TransformerMixin, Estimator):
    """Principal component analysis with the probabilistic-PCA likelihood.

    Parameters
    ----------
    n_components : int or None
        Number of components ``k`` (1 <= k <= n_features). None keeps all ``n_features``.
    solver : {"eigh", "iterative"}, default "eigh"
        "eigh": eigendecomposition of the covariance (closed form). "iterative": the alternating least-squares
        steps ``Z <- W⁺X``, ``W <- XZ⁺`` from a random basis until the subspace moves less than ``tol``, then
        rotated to the eigenvector basis (a ``k x k`` eigenproblem), so both solvers give the same answer.
    max_iter : int, default 500
        Most iterations of the iterative solver.
    tol : float, default 1e-10
        The iterative solver stops when ``||P_new - P_old||_F / sqrt(2) < tol``, ``P`` being the orthogonal
        projector on the subspace (the norm of the sines of the principal angles between successive subspaces).
    random_state : None, int or torch.Generator
        Seeds the random starting basis of the iterative solver.
    device, dtype : optional
        Where and in which floating type to compute (default: follow the input; NumPy -> CPU float64).

    Attributes
    ----------
    mean_ : (n_features,)
    components_ : (n_components, n_features)
        Orthonormal rows, by decreasing variance; each row's largest-magnitude entry is positive.
    explained_variance_ : (n_components,)
        Variance along each component, maximum-likelihood normalisation (divide by ``N``, not ``N - 1``).
    explained_variance_ratio_ : (n_components,)
        ``explained_variance_ / total variance``.
    noise_variance_ : float
        Probabilistic-PCA ``σ²``: the mean of the ``n_features - n_components`` discarded eigenvalues (0 when
        none is discarded).
    n_iter_ : int
        Iterations run (0 for "eigh").
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 3)) * [3.0, 1.0, 0.1]
    >>> pca = PCA(1).fit(X)
    >>> np.abs(pca.components_).round(2), pca.explained_variance_ratio_.round(2)
    (array([[1.  , 0.01, 0.  ]]), array([0.9]))
    """

    _fitted_attributes = ("components_", "explained_variance_", "mean_")

    def __init__(self, n_components=None, *, solver="eigh", max_iter=500, tol=1e-10, random_state=None,
                 device=None, dtype=None):
        self.n_components = n_components
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    # ------------------------------------------------------------------ fitting
    def _check_params(self, n_samples: int | None = None, n_features: int | None = None) -> int | None:
        """The hyper-parameters; with the data's shape, also the number of components (returned)."""
        check_choice(self.solver, "solver", _SOLVERS)
        if self.solver == "iterative":
            check_int(self.max_iter, "max_iter")
            check_nonneg(self.tol, "tol")
        if n_features is None:
            if self.n_components is not None:
                check_int(self.n_components, "n_components")
            return None
        k = check_n_components(self.n_components, n_features)
        if self.solver == "iterative" and k > n_samples - 1:
            raise ValueError(f"n_components={k} needs at least {k + 1} samples for the iterative solver, "
                             f"got {n_samples}; use fewer components")
        return k

    def fit(self, X, y=None):
        """Fit the principal subspace of ``X`` (n_samples, n_features). Returns self."""
        self._forget_fit()      # a failed fit leaves no earlier fit behind
        self._check_params()
        X = self._check_input(X, reset=True, min_samples=2)
        n, d = X.shape
        k = self._check_params(n, d)
        mean = X.mean(0)
        Xc = X - mean
        cov = Xc.T @ Xc / n                                        # maximum-likelihood covariance (d, d)
        total_var = torch.diagonal(cov).sum()
        if self.solver == "eigh":
            evals, evecs = torch.linalg.eigh(cov)
            evals, evecs = evals.flip(0), evecs.flip(1)           # decreasing
            evals = evals.clamp_min(0)
            components = evecs[:, :k].T
            explained = evals[:k]
            n_iter = 0
        else:
            with few_threads(_small(Xc, k)):
                components, explained, n_iter = self._fit_iterative(Xc, cov, k)
        components = flip_signs(components)
        discarded = (total_var - explained.sum()).clamp_min(0)
        noise = discarded / (d - k) if k < d else torch.zeros((), dtype=X.dtype, device=X.device)
        self.n_components_ = k
        self.mean_ = self._out(mean)
        self.components_ = self._out(components)
        self.explained_variance_ = self._out(explained)
        ratio = explained / total_var if float(total_var) > 0 else torch.zeros_like(explained)
        self.explained_variance_ratio_ = self._out(ratio)
        self.noise_variance_ = float(noise)
        self.n_iter_ = n_iter
        self.n_samples_ = n
        return self

    @classmethod
    def from_params(cls, components, explained_variance, mean, noise_variance: float = 0.0, **params):
        """A fitted PCA with the given components and variances, without looking at data.

        Parameters
        ----------
        components : (n_components, n_features)
            Orthonormal rows.
        explained_variance : (n_components,)
            The variance along each component (non-negative).
        mean : (n_features,)
        noise_variance : float, default 0.0
            Probabilistic PCA's ``σ²`` in every other direction.
        **params
            Other constructor parameters (``device``, ``dtype``).

        Returns
        -------
        PCA
            With ``components_ explained_variance_ explained_variance_ratio_ mean_ noise_variance_
            n_components_ n_features_in_`` set. A tensor among the parameters makes it compute on its
            device and dtype and return tensors; otherwise NumPy.

        Examples
        --------
        >>> import numpy as np
        >>> pca = PCA.from_params([[1.0, 0.0]], [4.0], [0.0, 0.0], noise_variance=1.0)
        >>> pca.transform(np.array([[3.0, 5.0]]))
        array([[3.]])
        """
        model = cls(**params)
        model._check_params()
        V, lam, mu = model._params_context(components, explained_variance, mean,
                                           names=("components", "explained_variance", "mean"))
        if V.ndim != 2 or V.shape[0] == 0 or V.shape[0] > V.shape[1]:
            raise ValueError(f"components has shape {tuple(V.shape)}; pass (n_components, n_features) with "
                             "n_components <= n_features")
        k, d = V.shape
        if tuple(lam.shape) != (k,) or tuple(mu.shape) != (d,):
            raise ValueError(f"explained_variance has shape {tuple(lam.shape)} and mean {tuple(mu.shape)}; pass "
                             f"({k},) and ({d},)")
        eye = torch.eye(k, dtype=V.dtype, device=V.device)
        if not torch.allclose(V @ V.T, eye, atol=1e-6 if V.dtype == torch.float64 else 1e-4):
            raise ValueError("components must have orthonormal rows; orthonormalise them (e.g. with a QR "
                             "decomposition of components.T)")
        noise = check_nonneg(noise_variance, "noise_variance")
        if bool((lam < 0).any()):
            raise ValueError("explained_variance must be non-negative")
        total = lam.sum() + (d - k) * noise
        model.n_components = model.n_components_ = int(k)
        model.n_features_in_ = int(d)
        model.mean_ = model._out(mu)
        model.components_ = model._out(V)
        model.explained_variance_ = model._out(lam)
        model.explained_variance_ratio_ = model._out(lam / total if float(total) > 0 else torch.zeros_like(lam))
        model.noise_variance_ = noise
        return model

    def _fit_iterative(self, Xc: torch.Tensor, cov: torch.Tensor, k: int):
        gen = make_generator(self.random_state, Xc.device)
        W = torch.randn(Xc.shape[1], k, generator=gen, device=Xc.device, dtype=Xc.dtype)
        Q, _ = torch.linalg.qr(W)
        converged = False
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):
            W = _step(Xc, Q)
            if not torch.isfinite(W).all():
                raise ValueError("the iterative solver lost rank (the data has fewer than n_components "
                                 "directions of variance); use fewer components or solver='eigh'")
            # orthonormalising does not change the subspace, only keeps the basis well conditioned
            Q_new, _ = torch.linalg.qr(W)
            # ||sin(principal angles)||_F between the old and the new subspace, computed without cancellation
            moved = torch.linalg.norm(Q_new - Q @ (Q.T @ Q_new))
            Q = Q_new
            if float(moved) < self.tol:
                converged = True
                break
        if not converged:
            warnings.warn(f"iterative PCA did not converge in {self.max_iter} iterations (subspace still moves by "
                          f"{float(moved):.2e}); increase max_iter or use solver='eigh'", ConvergenceWarning,
                          stacklevel=3)
        # rotate the basis to the eigenvectors: eigenproblem of the k x k projected covariance
        small = Q.T @ cov @ Q
        evals, R = torch.linalg.eigh((small + small.T) / 2)
        evals, R = evals.flip(0).clamp_min(0), R.flip(1)
        return (Q @ R).T, evals, n_iter

    # ------------------------------------------------------------------ using the fit
    def transform(self, X):
        """Coordinates of ``X`` (n_samples, n_features) on the components: (n_samples, n_components)."""
        X = self._check_input(X)
        return self._out((X - self._tensor(self.mean_)) @ self._tensor(self.components_).T)

    def fit_transform(self, X, y=None):
        """Fit, then transform ``X``; (n_samples, n_components)."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z):
        """Back to data space: ``Z @ components_ + mean_``; Z (n_samples, n_components) -> (n_samples, n_features)."""
        Z = self._check_input(Z, name="Z", check_features=False)
        if Z.shape[1] != self.n_components_:
            raise ValueError(f"Z has {Z.shape[1]} columns, but this PCA has {self.n_components_} components")
        return self._out(Z @ self._tensor(self.components_) + self._tensor(self.mean_))

    def get_covariance(self):
        """Probabilistic-PCA covariance ``W Wᵀ + σ² I`` (n_features, n_features), ML normalisation."""
        self._check_fitted()
        V = self._tensor(self.components_)
        lam = self._tensor(self.explained_variance_)
        s2 = self.noise_variance_
        cov = V.T @ ((lam - s2)[:, None] * V)
        cov = cov + s2 * torch.eye(V.shape[1], dtype=V.dtype, device=V.device)
        return self._out(cov)

    def score_samples(self, X):
        """Log-likelihood of every sample under probabilistic PCA, ``log N(x; μ, W Wᵀ + σ² I)``: (n_samples,).

        The covariance has eigenvalues ``explained_variance_`` along the components and ``σ²`` in every other
        direction, so the density needs no ``d x d`` inverse.
        """
        X = self._check_input(X)
        V = self._tensor(self.components_)
        lam = self._tensor(self.explained_variance_)
        d, k = V.shape[1], V.shape[0]
        s2 = self.noise_variance_
        if bool((lam <= 0).any()) or (k < d and not s2 > 0):
            raise ValueError("the probabilistic-PCA covariance is singular (the data has no variance in some "
                             "direction); use fewer components or add noise to the data")
        Xc = X - self._tensor(self.mean_)
        proj = Xc @ V.T                                            # (N, k)
        maha = (proj ** 2 / lam).sum(1)
        logdet = torch.log(lam).sum()
        if k < d:
            resid = (Xc ** 2).sum(1) - (proj ** 2).sum(1)
            maha = maha + resid.clamp_min(0) / s2
            logdet = logdet + (d - k) * math.log(s2)
        return self._out(-0.5 * (maha + logdet + d * LOG_2PI))

    def score(self, X, y=None) -> float:
        """Average probabilistic-PCA log-likelihood of ``X`` (a float)."""
        return float(torch.as_tensor(self.score_samples(X)).mean())
