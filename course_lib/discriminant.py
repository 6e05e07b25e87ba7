"""Generative classifiers: model p(x, y) = p(y) p(x | y) with Gaussian class conditionals, predict by Bayes' rule.

Fitting is maximum likelihood on the labelled data and has a closed form: each class prior is the fraction of
samples in that class, and each class-conditional Gaussian is fitted to that class's samples alone (mean and
1/N_c covariance). Prediction turns the joint log-density into the posterior

    p(y = c | x) = p(x | c) p(c) / sum_c' p(x | c') p(c'),

computed with log-sum-exp so that far-away points do not underflow to 0/0.

* :class:`GaussianDiscriminantAnalysis`: one full covariance per class (quadratic boundaries), or one pooled
  covariance shared by all classes (``shared_covariance=True``: linear boundaries, as in linear discriminant
  analysis).
* :class:`GaussianNaiveBayes`: diagonal covariances, i.e. the features are independent given the class.

Both have ``from_params`` to build a classifier from given priors, means and (co)variances without fitting.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import type_of_target

from ._base import Estimator, check_nonneg
from ._gaussian import LOG_2PI, cholesky, log_gaussian_pdf

__all__ = ["GaussianDiscriminantAnalysis", "GaussianNaiveBayes"]


class _GenerativeClassifier(ClassifierMixin, Estimator):
    """What both classifiers share: label handling, Bayes' rule, predictions and scores.

    Subclasses implement ``_fit(X, y_idx, n_classes)`` and ``_joint_log_likelihood(X) -> (N, C)``, the
    matrix of ``log p(x_n, y = c)``.
    """

    # ---- labels ------------------------------------------------------------------------------------------
    def _label(self, c: int):
        """Class number ``c`` as its label, for messages (a plain Python value, not a NumPy scalar)."""
        value = self.classes_[c]
        return value.item() if isinstance(value, np.generic) else value

    @staticmethod
    def _labels_numpy(y, n_samples: int | None, name: str = "y") -> np.ndarray:
        if y is None:
            raise ValueError(f"this classifier requires {name} to be passed, but the target {name} is None; pass one "
                             "class label per row of X")
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(f"A column-vector {name} was passed when a 1d array was expected; pass {name}.ravel()",
                          DataConversionWarning, stacklevel=3)
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one label per row of X), got shape {y.shape}; use y.ravel()")
        if n_samples is not None and y.shape[0] != n_samples:
            raise ValueError(f"{name} has {y.shape[0]} labels but X has {n_samples} rows; pass one label per row")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError(f"{name} contains NaN; drop the unlabelled rows before fitting")
        if y.dtype == object and any(v is None for v in y):
            raise ValueError(f"{name} contains None; drop the unlabelled rows before fitting")
        return y

    def _encode(self, y, n_samples: int) -> torch.Tensor:
        """Indices into ``classes_`` for known labels; a ValueError naming an unknown one."""
        y = self._labels_numpy(y, n_samples)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        bad = self.classes_[idx] != y
        if bad.any():
            unknown = y[bad][0]
            raise ValueError(f"y holds the label {unknown.item() if isinstance(unknown, np.generic) else unknown!r}, "
                             f"which was not seen in fit; known classes: {self.classes_.tolist()}")
        return torch.as_tensor(idx, device=self._device)

    # ---- fit ---------------------------------------------------------------------------------------------
    def fit(self, X, y):
        """Fit the class priors and the class-conditional Gaussians by maximum likelihood.

        Parameters
        ----------
        X : (n_samples, n_features) array-like or tensor
        y : (n_samples,) array-like or tensor
            Class labels of any kind (integers, strings, ...); the sorted distinct values become ``classes_``.

        Returns
        -------
        self
        """
        self._forget_fit()      # a failed fit leaves no earlier fit behind
        self._check_params()
        X = self._check_input(X, reset=True)
        y = self._labels_numpy(y, X.shape[0])
        kind = type_of_target(y) if y.dtype.kind in "biuf" else "multiclass"
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type: y looks {kind} (e.g. continuous values); a classifier needs "
                             "discrete class labels, such as integers or strings")
        classes, idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y holds {len(classes)} class; a classifier needs at least 2 distinct classes, so pass "
                             "samples of at least 2")
        self.classes_ = classes
        y_idx = torch.as_tensor(idx.reshape(-1), device=X.device)
        counts = torch.bincount(y_idx, minlength=len(classes)).to(X.dtype)
        self.class_count_ = self._out(counts)
        self._fit(X, y_idx, counts)
        return self

    # ---- prediction --------------------------------------------------------------------------------------
    def predict_log_proba(self, X):
        """Log posterior ``log p(y = c | x)``: (n_samples, n_classes), columns in the order of ``classes_``."""
        jll = self._joint_log_likelihood(self._check_input(X))
        return self._out(jll - torch.logsumexp(jll, dim=1, keepdim=True))

    def predict_proba(self, X):
        """Posterior ``p(y = c | x)`` by Bayes' rule: (n_samples, n_classes); every row sums to 1."""
        jll = self._joint_log_likelihood(self._check_input(X))
        return self._out(torch.softmax(jll, dim=1))

    def predict(self, X):
        """The most probable class of each row: (n_samples,), values taken from ``classes_``.

        NumPy input gives a NumPy array of labels; tensor input gives a tensor on the data's device when the
        labels are numbers (labels such as strings always come back as a NumPy array).
        """
        best = torch.argmax(self._joint_log_likelihood(self._check_input(X)), dim=1)
        if self._numpy_io or self.classes_.dtype.kind not in "biuf":
            return self.classes_[best.cpu().numpy()]
        return torch.as_tensor(self.classes_, device=best.device)[best]

    def score(self, X, y, sample_weight=None):
        """Accuracy: the fraction of rows whose predicted class equals ``y`` (a float, as in scikit-learn)."""
        X_t = self._check_input(X)
        y = self._labels_numpy(y, X_t.shape[0])
        pred = self.classes_[torch.argmax(self._joint_log_likelihood(X_t), dim=1).cpu().numpy()]
        hits = (pred == y).astype(np.float64)
        if sample_weight is not None:
            return float(np.average(hits, weights=np.asarray(sample_weight, dtype=np.float64)))
        return float(hits.mean())

    def log_likelihood(self, X, y) -> float:
        """Total joint log-likelihood ``sum_n log p(x_n, y_n)`` of labelled data under the fitted model."""
        X_t = self._check_input(X)
        idx = self._encode(y, X_t.shape[0])
        jll = self._joint_log_likelihood(X_t)
        return float(jll.gather(1, idx[:, None]).sum())

    def _log_priors(self) -> torch.Tensor:
        return torch.log(self._tensor(self._prior_attr()))

    def _given(self, priors, means, spread, names, classes):
        """Checked parameters for ``from_params``: tensors, and the classes (default 0, 1, ..., C-1)."""
        self._check_params()
        p, m, s = self._params_context(priors, means, spread, names=names)
        if p.ndim != 1 or m.ndim != 2 or p.shape[0] != m.shape[0] or p.shape[0] < 2 or m.shape[1] == 0:
            raise ValueError(f"{names[0]} has shape {tuple(p.shape)} and {names[1]} {tuple(m.shape)}; pass "
                             "(n_classes,) and (n_classes, n_features) for at least 2 classes")
        tol = 1e-6 if p.dtype == torch.float64 else 1e-4
        if bool((p <= 0).any()) or abs(float(p.sum()) - 1.0) > tol:
            raise ValueError(f"{names[0]} must be positive and sum to 1 (they sum to {float(p.sum()):.6g}); "
                             "divide them by their sum")
        C = p.shape[0]
        classes = np.arange(C) if classes is None else np.asarray(classes)
        if classes.shape != (C,) or len(np.unique(classes)) != C:
            raise ValueError(f"classes must hold {C} distinct labels, one per row of {names[1]}")
        order = np.argsort(classes, kind="stable")        # classes_ are sorted, as after fit
        idx = torch.as_tensor(order, device=p.device)
        self.classes_ = classes[order]
        self.n_features_in_ = int(m.shape[1])
        return p[idx], m[idx], s[idx] if s.ndim >= 1 and s.shape[0] == C else s


class GaussianDiscriminantAnalysis(_GenerativeClassifier):
    """Gaussian discriminant analysis: ``p(y) p(x | y)`` with ``x | y = c ~ N(mu_c, Sigma_c)``.

    Parameters
    ----------
    shared_covariance : bool, default False
        False: one full covariance per class, ``Sigma_c = 1/N_c sum_{n in c} (x_n - mu_c)(x_n - mu_c)^T``
        (quadratic decision boundaries). True: one pooled covariance
        ``Sigma = 1/N sum_c sum_{n in c} (x_n - mu_c)(x_n - mu_c)^T`` for all classes (linear boundaries; the
        maximum-likelihood estimate under a shared covariance, the same matrix scikit-learn's
        ``LinearDiscriminantAnalysis`` uses).
    reg_covar : float, default 0.0
        Added to the diagonal of every covariance, to keep them invertible for small or degenerate classes.
    random_state, device, dtype
        As for every estimator of the package (fitting is deterministic; ``random_state`` is unused).

    Attributes
    ----------
    classes_ : (n_classes,) ndarray
        The distinct labels, sorted.
    class_count_ : (n_classes,)
        Number of training samples per class.
    priors_ : (n_classes,)
        ``N_c / N``.
    means_ : (n_classes, n_features)
    covariances_ : (n_classes, n_features, n_features)
        Always one matrix per class, also with ``shared_covariance=True`` (then the pooled matrix repeated),
        so that code reading ``covariances_[c]`` works in both cases.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0., 0.], [1., .2], [.2, 1.], [5., 5.], [6., 5.2], [5.2, 6.]])
    >>> gda = GaussianDiscriminantAnalysis(shared_covariance=True).fit(X, ["a", "a", "a", "b", "b", "b"])
    >>> gda.predict(np.array([[0.5, 0.5], [5.5, 5.5]])).tolist()
    ['a', 'b']
    """

    _fitted_attributes = ("classes_", "priors_", "means_", "covariances_")

    def __init__(self, shared_covariance: bool = False, reg_covar: float = 0.0, random_state=None,
                 device=None, dtype=None):
        self.shared_covariance = shared_covariance
        self.reg_covar = reg_covar
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    def _check_params(self) -> None:
        check_nonneg(self.reg_covar, "reg_covar")
        if not isinstance(self.shared_covariance, (bool, np.bool_)):
            raise ValueError(f"shared_covariance={self.shared_covariance!r} must be True or False")

    def _prior_attr(self):
        return self.priors_

    @classmethod
    def from_params(cls, priors, means, covariances, *, classes=None, **params):
        """A classifier with the given class priors, means and covariances, ready to predict, without fitting.

        Parameters
        ----------
        priors : (n_classes,)
            Positive, summing to 1.
        means : (n_classes, n_features)
        covariances : (n_classes, n_features, n_features)
            Symmetric positive definite, one per class (repeat one matrix for a shared covariance).
        classes : (n_classes,), optional
            The label of each row; default 0, 1, ..., n_classes - 1.
        **params
            Other constructor parameters (``device``, ``dtype``).

        Returns
        -------
        GaussianDiscriminantAnalysis
            With ``classes_ priors_ means_ covariances_ n_features_in_`` set. A tensor among the parameters
            makes it compute on its device and dtype and return tensors; otherwise NumPy.

        Examples
        --------
        >>> import numpy as np
        >>> gda = GaussianDiscriminantAnalysis.from_params([0.5, 0.5], [[0.0], [4.0]], [[[1.0]], [[1.0]]])
        >>> gda.predict_proba(np.array([[2.0]]))
        array([[0.5, 0.5]])
        """
        model = cls(**params)
        p, m, c = model._given(priors, means, covariances, ("priors", "means", "covariances"), classes)
        C, d = m.shape
        if tuple(c.shape) != (C, d, d):
            raise ValueError(f"covariances has shape {tuple(c.shape)}; pass ({C}, {d}, {d}), one per class")
        tol = 1e-6 if c.dtype == torch.float64 else 1e-4
        if not torch.allclose(c, c.mT, rtol=tol, atol=tol * float(c.abs().amax())):
            raise ValueError("covariances must be symmetric; pass (C + C.T) / 2 for each class")
        cholesky(c, "covariance of a class", "pass symmetric positive-definite covariances")
        model.priors_ = model._out(p)
        model.means_ = model._out(m)
        model.covariances_ = model._out(c)
        return model

    def _fit(self, X: torch.Tensor, y_idx: torch.Tensor, counts: torch.Tensor) -> None:
        n, d = X.shape
        C = counts.shape[0]
        reg = float(self.reg_covar)
        if not self.shared_covariance and reg == 0.0:
            small = [(self._label(c), int(counts[c])) for c in range(C) if int(counts[c]) <= d]
            if small:
                label, size = small[0]
                raise ValueError(f"class {label!r} has {size} sample(s), too few for a full covariance in {d} "
                                 f"dimensions (needs at least {d + 1}); use shared_covariance=True or reg_covar>0")
        means = torch.zeros(C, d, device=X.device, dtype=X.dtype).index_add_(0, y_idx, X) / counts[:, None]
        diff = X - means[y_idx]                                              # centred by each row's class
        scatter = torch.stack([diff[y_idx == c].T @ diff[y_idx == c] for c in range(C)])   # (C, d, d)
        eye = torch.eye(d, device=X.device, dtype=X.dtype)
        if self.shared_covariance:
            covs = (scatter.sum(0) / n + reg * eye).expand(C, d, d).clone()
        else:
            covs = scatter / counts[:, None, None] + reg * eye
        covs = 0.5 * (covs + covs.transpose(1, 2))
        hint = ("the features are collinear or a class is degenerate; increase reg_covar" if self.shared_covariance
                else "the features are collinear or a class is degenerate; increase reg_covar or use "
                     "shared_covariance=True")
        cholesky(covs, "covariance of a class" if not self.shared_covariance else "pooled covariance", hint)
        self.priors_ = self._out(counts / n)
        self.means_ = self._out(means)
        self.covariances_ = self._out(covs)

    def _joint_log_likelihood(self, X: torch.Tensor) -> torch.Tensor:
        means, covs = self._tensor(self.means_), self._tensor(self.covariances_)
        if self.shared_covariance:
            # one Cholesky factor L for all classes: whiten the data and the means once with L^{-1}
            L = cholesky(covs[0], "pooled covariance", "increase reg_covar")
            Z = torch.linalg.solve_triangular(L, X.T, upper=False)                      # (d, N)
            W = torch.linalg.solve_triangular(L, means.T, upper=False)                  # (d, C)
            const = -torch.log(torch.diagonal(L)).sum() - 0.5 * X.shape[1] * LOG_2PI
            quad = torch.stack([((Z - W[:, c:c + 1]) ** 2).sum(0) for c in range(W.shape[1])], 1)   # (N, C)
            return const - 0.5 * quad + self._log_priors()
        # one class at a time keeps the memory at (N, d) instead of (C, N, d)
        log_px = torch.stack([log_gaussian_pdf(X, means[c], covs[c], what="class covariance",
                                               hint="increase reg_covar") for c in range(means.shape[0])], 1)
        return log_px + self._log_priors()                                               # (N, C)


class GaussianNaiveBayes(_GenerativeClassifier):
    """Gaussian naive Bayes: Gaussian discriminant analysis with diagonal class covariances.

    Given the class, the features are modelled as independent, so each class needs only one mean and one
    variance per feature, estimated feature by feature (``var = 1/N_c sum (x_nj - mu_cj)^2``). Attribute
    names and results follow ``sklearn.naive_bayes.GaussianNB``.

    Parameters
    ----------
    var_smoothing : float, default 0.0
        ``var_smoothing * max_j Var(X[:, j])`` is added to every variance (scikit-learn uses 1e-9 by default;
        0 gives the plain maximum-likelihood estimate).
    random_state, device, dtype
        As for every estimator of the package (fitting is deterministic; ``random_state`` is unused).

    Attributes
    ----------
    classes_ : (n_classes,) ndarray
    class_count_ : (n_classes,)
    class_prior_ : (n_classes,)
        ``N_c / N``.
    theta_ : (n_classes, n_features)
        Per-class feature means.
    var_ : (n_classes, n_features)
        Per-class feature variances (the diagonals of the class covariances), plus ``epsilon_``.
    epsilon_ : float
        What ``var_smoothing`` added to the variances.
    n_features_in_ : int
    """

    _fitted_attributes = ("classes_", "class_prior_", "theta_", "var_")

    def __init__(self, var_smoothing: float = 0.0, random_state=None, device=None, dtype=None):
        self.var_smoothing = var_smoothing
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    def _check_params(self) -> None:
        check_nonneg(self.var_smoothing, "var_smoothing")

    def _prior_attr(self):
        return self.class_prior_

    @classmethod
    def from_params(cls, class_prior, theta, var, *, classes=None, **params):
        """A naive Bayes classifier with the given priors, per-class means and variances, without fitting.

        Parameters
        ----------
        class_prior : (n_classes,)
            Positive, summing to 1.
        theta : (n_classes, n_features)
            Per-class feature means.
        var : (n_classes, n_features)
            Per-class feature variances, positive.
        classes : (n_classes,), optional
            The label of each row; default 0, 1, ..., n_classes - 1.
        **params
            Other constructor parameters (``device``, ``dtype``).

        Returns
        -------
        GaussianNaiveBayes
            With ``classes_ class_prior_ theta_ var_ n_features_in_`` set (``epsilon_`` is 0).

        Examples
        --------
        >>> import numpy as np
        >>> nb = GaussianNaiveBayes.from_params([0.5, 0.5], [[0.0], [4.0]], [[1.0], [1.0]], classes=["a", "b"])
        >>> nb.predict(np.array([[0.5], [3.0]])).tolist()
        ['a', 'b']
        """
        model = cls(**params)
        p, m, v = model._given(class_prior, theta, var, ("class_prior", "theta", "var"), classes)
        if tuple(v.shape) != tuple(m.shape):
            raise ValueError(f"var has shape {tuple(v.shape)}; pass {tuple(m.shape)}, the shape of theta")
        if not bool((v > 0).all()):
            raise ValueError("var must be positive in every entry")
        model.epsilon_ = 0.0
        model.class_prior_ = model._out(p)
        model.theta_ = model._out(m)
        model.var_ = model._out(v)
        return model

    def _fit(self, X: torch.Tensor, y_idx: torch.Tensor, counts: torch.Tensor) -> None:
        C, d = counts.shape[0], X.shape[1]
        epsilon = float(self.var_smoothing) * float(X.var(0, unbiased=False).max())
        theta = torch.zeros(C, d, device=X.device, dtype=X.dtype).index_add_(0, y_idx, X) / counts[:, None]
        sq = (X - theta[y_idx]) ** 2
        var = torch.zeros(C, d, device=X.device, dtype=X.dtype).index_add_(0, y_idx, sq) / counts[:, None]
        var = var + epsilon
        zero = (var <= 0).nonzero()
        if zero.shape[0]:
            c, j = (int(v) for v in zero[0])
            raise ValueError(f"feature {j} has zero variance in class {self._label(c)!r} (constant values or a "
                             f"single sample); set var_smoothing>0, e.g. 1e-9")
        self.epsilon_ = epsilon
        self.class_prior_ = self._out(counts / X.shape[0])
        self.theta_ = self._out(theta)
        self.var_ = self._out(var)

    def _joint_log_likelihood(self, X: torch.Tensor) -> torch.Tensor:
        theta, var = self._tensor(self.theta_), self._tensor(self.var_)                 # (C, d)
        norm = -0.5 * (LOG_2PI + torch.log(var)).sum(1)                                  # (C,)
        quad = torch.stack([((X - theta[c]) ** 2 / var[c]).sum(1) for c in range(theta.shape[0])], 1)  # (N, C)
        return self._log_priors() + norm - 0.5 * quad
