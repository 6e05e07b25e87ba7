"""Factor analysis (the linear Gaussian model) fitted by expectation-maximisation.

The model
    ``x = μ + A z + e`` with ``z ~ N(0, I_k)`` and ``e ~ N(0, D)``, ``D`` diagonal. Integrating ``z`` out,
    ``x ~ N(μ, A Aᵀ + D)``: a Gaussian whose covariance is "low rank plus diagonal". Unlike probabilistic PCA the
    noise may have a different variance in every coordinate.

The posterior of the latent variable (the E-step)
    ``P(z | x) = N(Aᵀ(AAᵀ + D)⁻¹(x - μ),  I - Aᵀ(AAᵀ + D)⁻¹A)``. By the Woodbury identity this equals
    ``N(Σ_z AᵀD⁻¹(x - μ), Σ_z)`` with ``Σ_z = (I + AᵀD⁻¹A)⁻¹``, which only needs a ``k x k`` inverse instead of
    a ``d x d`` one. The posterior covariance is the same for every sample.

The update (the M-step), from the completed data
    ``A = (Σ_n x_n E[z_n]ᵀ)(Σ_n E[z_n z_nᵀ])⁻¹`` and ``D = diag(S - A (Σ_n E[z_n] x_nᵀ) / N)`` with ``x`` centred
    and ``S`` the (maximum-likelihood) sample covariance.

Why it is fast
    ``E[z_n]`` is a fixed linear map ``β = Σ_z AᵀD⁻¹`` of ``x_n``, so ``Σ_n x_n E[z_n]ᵀ / N = S βᵀ`` and
    ``Σ_n E[z_n z_nᵀ] / N = Σ_z + β S βᵀ``: with completion by expectation the data enter only through ``S``
    (``d x d``). After one pass to form ``S``, an iteration costs ``O(d² k)``, whatever the number of samples;
    so does the log-likelihood of each iterate (matrix determinant lemma and Woodbury).

Completion by sampling (stochastic EM)
    Instead of averaging over ``P(z | x_n)``, draw one ``z_n ~ P(z | x_n)`` per sample and apply the
    complete-data formulas to the drawn values. This needs the data at every iteration (``O(N d k)``) and the
    log-likelihood then fluctuates instead of rising monotonically.

One step on its own
    :func:`em_step` runs one EM iteration from given loadings and noise variances, with the code
    :class:`FactorAnalysis` iterates; ``FactorAnalysis(components_init=..., noise_variance_init=...)`` starts EM
    from given parameters, and ``FactorAnalysis.from_params`` builds a fitted model without running EM.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.exceptions import ConvergenceWarning

from ._base import (Estimator, as_tensor, check_choice, check_int, check_n_components, check_nonneg, check_scale,
                    few_threads)
from ._gaussian import LOG_2PI, cholesky, flip_signs

__all__ = ["FactorAnalysis", "em_step"]

_COMPLETIONS = ("expectation", "sampling")


def _noise_floor_factor(dtype: torch.dtype) -> float:
    return 1e-8 if dtype == torch.float64 else 1e-4


def _posterior_pieces(A: torch.Tensor, psi: torch.Tensor):
    """``L`` (Cholesky of I + AᵀD⁻¹A), ``Σ_z``, ``β = Σ_z AᵀD⁻¹`` and ``AᵀD⁻¹``."""
    AtPinv = A.T / psi                                                   # (k, d)
    M = AtPinv @ A
    M.diagonal().add_(1.0)
    L = cholesky(M, "matrix I + AᵀD⁻¹A", "the noise variances became degenerate; use fewer components")
    Sz = torch.cholesky_inverse(L)                                       # posterior covariance (k, k)
    beta = Sz @ AtPinv                                                   # (k, d)
    return L, Sz, beta, AtPinv


def _m_update(XZ: torch.Tensor, ZZ: torch.Tensor, var: torch.Tensor, floor: torch.Tensor):
    """The M-step from the completed data: ``A = (Σ x zᵀ)(Σ z zᵀ)⁻¹``, ``D = max(diag(S - A Σ z xᵀ / N), floor)``.

    ``XZ`` (d, k) is ``Σ_n x_n E[z_n]ᵀ / N``, ``ZZ`` (k, k) is ``Σ_n E[z_n z_nᵀ] / N`` and ``var`` (d,) the
    diagonal of the sample covariance S.
    """
    ZZ = (ZZ + ZZ.T) / 2
    Lzz = cholesky(ZZ, "second moment of the latent variables", "use fewer components")
    A = torch.cholesky_solve(XZ.T, Lzz).T                                # (Σ x zᵀ)(Σ z zᵀ)⁻¹
    psi = torch.maximum(var - (A * XZ).sum(1), floor)                    # diag(S - A Σ z xᵀ / N)
    return A, psi


def _expectation_moments(S: torch.Tensor, Sz: torch.Tensor, beta: torch.Tensor):
    """``Σ_n x_n E[z_n]ᵀ / N = S βᵀ`` (d, k) and ``Σ_n E[z_n z_nᵀ] / N = Σ_z + β S βᵀ`` (k, k)."""
    SbT = S @ beta.T
    return SbT, Sz + beta @ SbT


def em_step(X, components, noise_variance, *, mean=None, noise_floor=None):
    """One EM iteration of factor analysis from given loadings and noise variances.

    E-step: the posterior ``P(z | x_n) = N(β (x_n - μ), Σ_z)`` with ``Σ_z = (I + AᵀD⁻¹A)⁻¹`` and
    ``β = Σ_z AᵀD⁻¹``. M-step: ``A_new = (Σ_n x_n E[z_n]ᵀ)(Σ_n E[z_n z_nᵀ])⁻¹`` and
    ``D_new = diag(S - A_new Σ_n E[z_n] x_nᵀ / N)``, ``x`` centred and ``S`` its (1/N) sample covariance. This
    is the iteration :class:`FactorAnalysis` runs (with ``completion="expectation"``).

    Parameters
    ----------
    X : (n_samples, n_features) array or tensor
        The data. Its kind decides the output's (NumPy in, NumPy out; a tensor in, a tensor out on its
        device and dtype).
    components : (n_components, n_features)
        ``Aᵀ``, the loadings in scikit-learn's layout (``FactorAnalysis.components_``).
    noise_variance : (n_features,)
        The diagonal of ``D``, positive.
    mean : (n_features,), optional
        ``μ``. Default: the mean of ``X`` (its maximum-likelihood value, which ``fit`` uses); pass zeros for
        a zero-mean model.
    noise_floor : float or None, default None
        The smallest noise variance the update returns. None: ``FactorAnalysis``'s floor, 1e-8 times each
        feature's variance (1e-4 below float64); 0: the plain update.

    Returns
    -------
    components : (n_components, n_features)
        The new ``A_newᵀ``.
    noise_variance : (n_features,)
        The new diagonal of ``D``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 3)) @ np.array([[2.0, 1.0, 0.5], [0.0, 1.0, 1.0], [0, 0, 1]])
    >>> A, D = em_step(X, np.ones((1, 3)), np.ones(3))
    >>> A.shape, D.shape, bool((D > 0).all())
    ((1, 3), (3,), True)
    """
    Xt, numpy_io = as_tensor(X, name="X", ndim=2, min_features=1)
    check_scale(Xt)
    n, d = Xt.shape
    C, _ = as_tensor(components, name="components", ndim=2, device=Xt.device, dtype=Xt.dtype)
    psi, _ = as_tensor(noise_variance, name="noise_variance", ndim=1, device=Xt.device, dtype=Xt.dtype)
    if C.shape[1] != d or C.shape[0] == 0:
        raise ValueError(f"components has shape {tuple(C.shape)}; pass (n_components, {d}), one row per factor")
    if psi.shape[0] != d:
        raise ValueError(f"noise_variance has {psi.shape[0]} entries; pass one per feature ({d})")
    if not bool((psi > 0).all()):
        raise ValueError("noise_variance must be positive in every entry")
    if mean is None:
        mu = Xt.mean(0)
    else:
        mu, _ = as_tensor(mean, name="mean", ndim=1, device=Xt.device, dtype=Xt.dtype)
        if mu.shape[0] != d:
            raise ValueError(f"mean has {mu.shape[0]} entries; pass one per feature ({d})")
    Xc = Xt - mu
    S = Xc.T @ Xc / n
    S = (S + S.T) / 2
    var = torch.diagonal(S).clone()
    if noise_floor is None:
        floor = _noise_floor_factor(Xt.dtype) * var
    else:
        floor = torch.full_like(var, check_nonneg(noise_floor, "noise_floor"))
    _, Sz, beta, _ = _posterior_pieces(C.T, psi)
    A, psi_new = _m_update(*_expectation_moments(S, Sz, beta), var, floor)
    if numpy_io:
        return A.T.cpu().numpy(), psi_new.cpu().numpy()
    return A.T.contiguous(), psi_new


class FactorAnalysis(TransformerMixin, Estimator):
    """Factor analysis (linear Gaussian model) ``x = μ + A z + e``, fitted by EM.

    Parameters
    ----------
    n_components : int or None
        Dimension ``k`` of the latent ``z`` (1 <= k <= n_features). None uses ``n_features``.
    max_iter : int, default 1000
        Most EM iterations.
    tol : float, default 1e-8
        Stop when the **average** (per-sample) log-likelihood rises by less than ``tol`` in one iteration.
        With completion by sampling the log-likelihood is noisy; there the fit stops when its change is smaller
        than ``tol`` in magnitude, which usually means it runs ``max_iter`` iterations.
    completion : {"expectation", "sampling"}, default "expectation"
        How the E-step completes the data: by the posterior expectations (classic EM, works from the sample
        covariance alone, monotone likelihood) or by one draw of ``z_n ~ P(z | x_n)`` per sample (stochastic EM).
    components_init : None or array of shape (n_components, n_features)
        Starting loadings ``Aᵀ`` (the layout of ``components_``). None: the best loadings for the starting
        ``D`` (see Notes). With both ``components_init`` and ``noise_variance_init``, ``max_iter=1`` runs
        exactly one :func:`em_step`.
    noise_variance_init : None or array of shape (n_features,)
        Starting diagonal of ``D``. None: probabilistic PCA's ``σ²`` (mean of the discarded eigenvalues of ``S``)
        in every coordinate, or half of each feature's variance when nothing is discarded (``k = n_features``).
    random_state : None, int or torch.Generator
        Seeds the draws of completion by sampling and of :meth:`sample`. The start is deterministic.
    device, dtype : optional
        Where and in which floating type to compute (default: follow the input; NumPy -> CPU float64).

    Attributes
    ----------
    mean_ : (n_features,)
    components_ : (n_components, n_features)
        ``Aᵀ``, the factor loadings (scikit-learn's name and layout).
    noise_variance_ : (n_features,)
        The diagonal of ``D``.
    loglike_ : list of float
        Total log-likelihood ``Σ_n log p(x_n)`` (not the average; scikit-learn's convention) of the parameters
        after each iteration; the fitted parameters are those of the last entry, so
        ``loglike_[-1] == n_samples * score(X)``.
    n_iter_ : int
        Iterations (E-step + M-step) run, ``len(loglike_)``.
    converged_ : bool
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 1)) @ [[2.0, 1.0, 0.5]] + 0.3 * rng.normal(size=(2000, 3))
    >>> fa = FactorAnalysis(1).fit(X)
    >>> np.abs(fa.components_).round(1), fa.noise_variance_.round(2)
    (array([[2. , 1. , 0.5]]), array([0.08, 0.1 , 0.09]))

    Notes
    -----
    Start: with ``D₀`` as above, ``A₀`` is the best loading matrix for that ``D₀``: the top ``k`` eigenvectors
    ``u`` and eigenvalues ``s`` of ``D₀^{-1/2} S D₀^{-1/2}`` give ``A₀ = D₀^{1/2} U diag(sqrt(max(s - 1, 1e-3)))``
    (for ``D₀ = σ² I`` this is the probabilistic-PCA solution). Noise variances are kept above
    ``1e-8 x`` the feature's variance (``1e-4 x`` below float64), which stops a coordinate from collapsing onto a
    factor (a "Heywood case"). Constant features are rejected: their noise variance would go to zero.
    """

    _fitted_attributes = ("components_", "noise_variance_", "mean_")

    def __init__(self, n_components=None, *, max_iter=1000, tol=1e-8, completion="expectation",
                 components_init=None, noise_variance_init=None, random_state=None, device=None, dtype=None):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.completion = completion
        self.components_init = components_init
        self.noise_variance_init = noise_variance_init
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    # ------------------------------------------------------------------ checks and start
    def _check_params(self, n_features: int | None = None) -> int | None:
        """The hyper-parameters; with ``n_features``, also the number of components (returned)."""
        check_choice(self.completion, "completion", _COMPLETIONS)
        check_int(self.max_iter, "max_iter")
        check_nonneg(self.tol, "tol")
        if n_features is None:
            if self.n_components is not None:
                check_int(self.n_components, "n_components")
            return None
        return check_n_components(self.n_components, n_features)

    def _initial(self, S: torch.Tensor, var: torch.Tensor, k: int, floor: torch.Tensor):
        d = S.shape[0]
        if self.noise_variance_init is not None:
            psi, _ = as_tensor(self.noise_variance_init, name="noise_variance_init", ndim=1,
                               device=S.device, dtype=S.dtype)
            if psi.shape[0] != d:
                raise ValueError(f"noise_variance_init has {psi.shape[0]} entries; pass one per feature ({d})")
            if not bool((psi > 0).all()):
                raise ValueError("noise_variance_init must be positive in every entry")
        else:
            evals = torch.linalg.eigvalsh(S)
            sigma2 = evals[: d - k].clamp_min(0).mean() if k < d else torch.zeros((), dtype=S.dtype,
                                                                                   device=S.device)
            psi = torch.where(sigma2 > floor, sigma2, 0.5 * var)
        psi = torch.maximum(psi, floor)
        if self.components_init is not None:
            C, _ = as_tensor(self.components_init, name="components_init", ndim=2, device=S.device, dtype=S.dtype)
            if tuple(C.shape) != (k, d):
                raise ValueError(f"components_init has shape {tuple(C.shape)}; pass (n_components, n_features) = "
                                 f"{(k, d)}")
            return C.T.clone(), psi
        root = psi.sqrt()
        s, U = torch.linalg.eigh(S / root[:, None] / root[None, :])
        # the eigenvectors' signs fixed, so that EM (which keeps a column's sign) ends alike on every device
        s, U = s.flip(0)[:k], flip_signs(U.flip(1)[:, :k].T).T
        A = root[:, None] * U * (s - 1).clamp_min(1e-3).sqrt()
        return A, psi

    # ------------------------------------------------------------------ the two steps
    @staticmethod
    def _posterior_pieces(A: torch.Tensor, psi: torch.Tensor):
        """``L`` (Cholesky of I + AᵀD⁻¹A), ``Σ_z``, ``β = Σ_z AᵀD⁻¹`` and ``AᵀD⁻¹``."""
        return _posterior_pieces(A, psi)

    @staticmethod
    def _avg_loglike(S_diag, psi, L, SbT, AtPinv, d) -> torch.Tensor:
        """Average log-likelihood ``-½[d log 2π + log|C| + tr(C⁻¹S)]`` with ``C = AAᵀ + D``, in O(d k)."""
        logdet = torch.log(psi).sum() + 2 * torch.log(torch.diagonal(L)).sum()
        trace = (S_diag / psi).sum() - (SbT * AtPinv.T).sum()
        return -0.5 * (d * LOG_2PI + logdet + trace)

    def fit(self, X, y=None):
        """Fit the loadings, noise variances and mean to ``X`` (n_samples, n_features) by EM. Returns self."""
        self._forget_fit()      # a failed fit leaves no earlier fit behind
        self._check_params()
        X = self._check_input(X, reset=True, min_samples=2)
        n, d = X.shape
        k = self._check_params(d)
        mean = X.mean(0)
        Xc = X - mean
        S = Xc.T @ Xc / n                                                    # (d, d), the only use of X in EM
        S = (S + S.T) / 2
        var = torch.diagonal(S).clone()
        # a constant column has variance at most the rounding error of its mean; confirm those exactly
        eps = torch.finfo(X.dtype).eps
        maybe = (var <= (n * eps * mean.abs()) ** 2).nonzero().flatten()
        if maybe.numel():
            cols = X[:, maybe]
            constant = maybe[(cols.max(0).values == cols.min(0).values)].tolist()
            if constant:
                raise ValueError(f"X has constant features (zero variance) at columns {constant[:10]}; drop "
                                 "them, factor analysis would give them zero noise variance")
        floor = _noise_floor_factor(X.dtype) * var
        A, psi = self._initial(S, var, k, floor)

        sampling = self.completion == "sampling"
        gen = self._generator() if sampling else None
        work = (n if sampling else d) * d * k                                 # multiply-adds per iteration
        with few_threads(X.device.type == "cpu" and work < 4_000_000):
            A, psi, loglike, converged = self._em(Xc, S, var, floor, A, psi, gen)
        if not converged:
            warnings.warn(f"FactorAnalysis did not converge in {self.max_iter} iterations; increase max_iter "
                          "or tol", ConvergenceWarning, stacklevel=2)
        self.n_components_ = k
        self.mean_ = self._out(mean)
        self.components_ = self._out(A.T.contiguous())
        self.noise_variance_ = self._out(psi)
        self.loglike_ = loglike
        self.n_iter_ = len(loglike)
        self.converged_ = converged
        return self

    @classmethod
    def from_params(cls, components, noise_variance, mean=None, **params):
        """A model with the given parameters, ready for ``posterior``, ``score_samples``, ``elbo``..., without EM.

        Parameters
        ----------
        components : (n_components, n_features)
            ``Aᵀ``, the loadings in the layout of ``components_``.
        noise_variance : (n_features,)
            The diagonal of ``D``, positive.
        mean : (n_features,), optional
            ``μ``; default zeros.
        **params
            Other constructor parameters (``random_state`` for :meth:`sample`, ``device``, ``dtype``).

        Returns
        -------
        FactorAnalysis
            With ``components_ noise_variance_ mean_ n_components_ n_features_in_`` set (not the attributes of
            an EM run). A tensor among the parameters makes it compute on its device and dtype and return
            tensors; otherwise NumPy.

        Examples
        --------
        >>> import numpy as np
        >>> fa = FactorAnalysis.from_params([[1.0, 1.0]], [0.5, 0.5])
        >>> fa.get_covariance()
        array([[1.5, 1. ],
               [1. , 1.5]])
        """
        model = cls(**params)
        model._check_params()
        names = ("components", "noise_variance", "mean")
        arrays = (components, noise_variance, mean if mean is not None else np.zeros(np.shape(noise_variance)))
        C, psi, mu = model._params_context(*arrays, names=names)
        if C.ndim != 2 or C.shape[0] == 0:
            raise ValueError(f"components has shape {tuple(C.shape)}; pass (n_components, n_features)")
        d = C.shape[1]
        if tuple(psi.shape) != (d,) or tuple(mu.shape) != (d,):
            raise ValueError(f"noise_variance has shape {tuple(psi.shape)} and mean {tuple(mu.shape)}; pass ({d},) "
                             "each, one entry per feature")
        if not bool((psi > 0).all()):
            raise ValueError("noise_variance must be positive in every entry")
        model.n_components = model.n_components_ = int(C.shape[0])
        model.n_features_in_ = int(d)
        model.mean_ = model._out(mu)
        model.components_ = model._out(C)
        model.noise_variance_ = model._out(psi)
        return model

    def _em(self, Xc, S, var, floor, A, psi, gen):
        """The EM iterations; returns the final ``A``, ``psi``, the total log-likelihoods and convergence."""
        n, d = Xc.shape
        k = A.shape[1]
        sampling = gen is not None

        def e_step(A, psi):
            # the posterior P(z|x) = N(β (x - μ), Σ_z) of the parameters, and their average log-likelihood
            L, Sz, beta, AtPinv = _posterior_pieces(A, psi)
            SbT, ZZ = _expectation_moments(S, Sz, beta)                      # Σ x E[z]ᵀ / N, Σ E[z zᵀ] / N
            avg = float(self._avg_loglike(var, psi, L, SbT, AtPinv, d))
            if not np.isfinite(avg):
                raise ValueError("the log-likelihood became non-finite; the data may be degenerate "
                                 "(scale the features or use fewer components)")
            return L, beta, SbT, ZZ, avg

        L, beta, SbT, ZZ_e, old = e_step(A, psi)
        loglike = []
        converged = False
        for _ in range(self.max_iter):
            # M-step on the data completed by the current posterior
            if sampling:
                means = Xc @ beta.T                                          # (N, k)
                eps = torch.randn(n, k, generator=gen, device=Xc.device, dtype=Xc.dtype)
                # z = mean + L⁻ᵀ ε has covariance L⁻ᵀ L⁻¹ = (L Lᵀ)⁻¹ = Σ_z
                Z = means + torch.linalg.solve_triangular(L.T, eps.T, upper=True).T
                XZ = Xc.T @ Z / n                                            # (d, k)
                ZZ = Z.T @ Z / n                                             # (k, k)
            else:
                XZ, ZZ = SbT, ZZ_e
            A, psi = _m_update(XZ, ZZ, var, floor)
            # E-step for the new parameters (also gives their log-likelihood)
            L, beta, SbT, ZZ_e, avg = e_step(A, psi)
            loglike.append(n * avg)
            change = avg - old
            old = avg
            if (abs(change) if sampling else change) < self.tol:
                converged = True
                break
        return A, psi, loglike, converged

    # ------------------------------------------------------------------ using the fit
    def _params(self):
        self._check_fitted()
        return (self._tensor(self.components_).T, self._tensor(self.noise_variance_), self._tensor(self.mean_))

    def posterior(self, X):
        """The exact posterior ``P(z | x_n)`` for every row of ``X`` (n_samples, n_features).

        Returns
        -------
        means : (n_samples, n_components)
            ``Aᵀ(AAᵀ + D)⁻¹(x_n - μ)``, computed as ``(I + AᵀD⁻¹A)⁻¹ AᵀD⁻¹ (x_n - μ)``.
        cov : (n_components, n_components)
            ``I - Aᵀ(AAᵀ + D)⁻¹A = (I + AᵀD⁻¹A)⁻¹``, the same for every sample.
        """
        X = self._check_input(X)
        A, psi, mu = self._params()
        _, Sz, beta, _ = self._posterior_pieces(A, psi)
        return self._out((X - mu) @ beta.T), self._out(Sz)

    def transform(self, X):
        """Posterior means ``E[z | x]`` of ``X`` (n_samples, n_features): (n_samples, n_components)."""
        return self.posterior(X)[0]

    def fit_transform(self, X, y=None):
        """Fit, then transform ``X``; (n_samples, n_components)."""
        return self.fit(X).transform(X)

    def get_covariance(self):
        """The model covariance ``A Aᵀ + D``: (n_features, n_features)."""
        A, psi, _ = self._params()
        return self._out(A @ A.T + torch.diag(psi))

    def get_precision(self):
        """The inverse of :meth:`get_covariance`, by Woodbury: (n_features, n_features)."""
        A, psi, _ = self._params()
        _, Sz, _, AtPinv = self._posterior_pieces(A, psi)
        return self._out(torch.diag(1 / psi) - AtPinv.T @ Sz @ AtPinv)

    def score_samples(self, X):
        """``log N(x_n; μ, AAᵀ + D)`` for every row of ``X`` (n_samples, n_features): (n_samples,)."""
        X = self._check_input(X)
        A, psi, mu = self._params()
        d = A.shape[0]
        L, _, _, _ = self._posterior_pieces(A, psi)
        R = X - mu
        T = R / psi                                                          # D⁻¹ r
        U = torch.linalg.solve_triangular(L, (T @ A).T, upper=False)         # L⁻¹ AᵀD⁻¹ r   (k, N)
        maha = (R * T).sum(1) - (U * U).sum(0)                               # rᵀ C⁻¹ r by Woodbury
        logdet = torch.log(psi).sum() + 2 * torch.log(torch.diagonal(L)).sum()
        return self._out(-0.5 * (maha + logdet + d * LOG_2PI))

    def score(self, X, y=None) -> float:
        """Average log-likelihood of the rows of ``X`` (a float)."""
        return float(torch.as_tensor(self.score_samples(X)).mean())

    def elbo(self, X, q_mean, q_cov) -> float:
        """Evidence lower bound ``Σ_n E_q[log p(x_n|z)] + E_q[log p(z)] + H[q_n]`` for Gaussian ``q_n``, in closed form.

        Parameters
        ----------
        X : (n_samples, n_features)
        q_mean : (n_samples, n_components)
            Mean of ``q_n(z)`` for every sample.
        q_cov : (n_components, n_components) or (n_samples, n_components, n_components)
            Covariance of ``q_n(z)``, shared or one per sample; symmetric positive definite.

        Returns
        -------
        float
            The total over samples. It is at most ``Σ_n log p(x_n)`` and equal to it exactly when every ``q_n``
            is the posterior (:meth:`posterior`); the gap is ``Σ_n KL(q_n || P(z | x_n))``.
        """
        X = self._check_input(X)
        A, psi, mu = self._params()
        n, d = X.shape
        k = A.shape[1]
        m, _ = as_tensor(q_mean, name="q_mean", ndim=2, device=X.device, dtype=X.dtype)
        if tuple(m.shape) != (n, k):
            raise ValueError(f"q_mean has shape {tuple(m.shape)}; pass (n_samples, n_components) = {(n, k)}")
        cov, _ = as_tensor(q_cov, name="q_cov", ndim=(2, 3), device=X.device, dtype=X.dtype)
        if tuple(cov.shape[-2:]) != (k, k) or (cov.ndim == 3 and cov.shape[0] != n):
            raise ValueError(f"q_cov has shape {tuple(cov.shape)}; pass ({k}, {k}) or ({n}, {k}, {k})")
        if not torch.allclose(cov, cov.transpose(-1, -2), rtol=1e-6, atol=0):
            raise ValueError("q_cov is not symmetric; pass a symmetric positive-definite covariance")
        Lq = cholesky(cov, "q_cov", "pass a symmetric positive-definite covariance")
        logdet_q = 2 * torch.log(torch.diagonal(Lq, dim1=-2, dim2=-1)).sum(-1)   # () or (N,)
        G = (A.T / psi) @ A                                                  # AᵀD⁻¹A (k, k)
        if cov.ndim == 2:
            tr_G = n * (G * cov).sum()
            tr_cov = n * torch.diagonal(cov).sum()
            logdet_q = n * logdet_q
        else:
            tr_G = (G.unsqueeze(0) * cov).sum()
            tr_cov = torch.diagonal(cov, dim1=-2, dim2=-1).sum()
            logdet_q = logdet_q.sum()
        R = X - mu - m @ A.T
        expected_loglik = -0.5 * (n * d * LOG_2PI + n * torch.log(psi).sum() + (R * R / psi).sum() + tr_G)
        expected_logprior = -0.5 * (n * k * LOG_2PI + (m * m).sum() + tr_cov)
        entropy = 0.5 * (n * k * (1 + LOG_2PI) + logdet_q)
        return float(expected_loglik + expected_logprior + entropy)

    def sample(self, n_samples: int = 1):
        """Draw ``n_samples`` new points ``x = μ + A z + e``: (n_samples, n_features), seeded by ``random_state``."""
        A, psi, mu = self._params()
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples={n_samples!r} must be a positive integer")
        gen = self._generator()
        d, k = A.shape
        z = torch.randn(n_samples, k, generator=gen, device=A.device, dtype=A.dtype)
        e = torch.randn(n_samples, d, generator=gen, device=A.device, dtype=A.dtype) * psi.sqrt()
        return self._out(mu + z @ A.T + e)
