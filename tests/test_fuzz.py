"""Bad input, fuzzed: every estimator, fed every kind of bad or unusual data, either raises one clear ValueError
or returns a finite result that is correct.

"Clear" is checked as: a ValueError, on one line, raised by course_lib's own code (not a message of NumPy or
torch passing through). "Correct" is checked against the same estimator fitted on the equivalent clean
float64 data: integer, boolean-free, object, list, read-only and Fortran-ordered arrays must give the same
fit to rounding (1e-10: float64 on both sides); float32 tensors to float32 accuracy (1e-3 on fitted
parameters after EM); data scaled by 1e100 or 1e-100 the same fit with every parameter scaled by s or s² (to
1e-8: the scaled fit does the same arithmetic up to the exponents). Data so large or so small that a
variance would overflow or underflow float64 (×1e200, ×1e-200) must be refused with advice to rescale, since
no finite fitted covariance could represent them.

Each case's expected outcome is listed below (``ERROR`` or ``OK``); a change of outcome fails the test.
"""
from __future__ import annotations

import os
import traceback
import warnings

import numpy as np
import pytest
import scipy.sparse
import torch

import course_lib
from course_lib import (VAE, FactorAnalysis, GaussianDiscriminantAnalysis, GaussianMixture, GaussianNaiveBayes,
                        MissingDataGaussian, PCA)

LIB_DIR = os.path.dirname(course_lib.__file__)
N, D = 40, 3
ERROR, OK = "error", "ok"


def clean() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(N, D)) @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.4], [0.0, 0.0, 1.0]]) + [0.0, 5.0, -3.0]


def _with(X, index, value):
    X = X.astype(float).copy()
    X[index] = value
    return X


def _readonly(X):
    X = X.copy()
    X.setflags(write=False)
    return X


# kind -> (X or a function of the clean X, default outcome, how an OK result relates to the clean fit)
# relation: ("same", rtol) compares with the clean fit; ("scaled", s) with the clean fit scaled by s;
# None: only finiteness is checked (there is no clean equivalent).
KINDS = {
    "nan": (lambda X: _with(X, (2, 1), np.nan), ERROR, None),
    "inf": (lambda X: _with(X, (2, 1), np.inf), ERROR, None),
    "-inf": (lambda X: _with(X, (0, 0), -np.inf), ERROR, None),
    "empty rows (0, d)": (lambda X: X[:0], ERROR, None),
    "no features (n, 0)": (lambda X: X[:, :0], ERROR, None),
    "1-D": (lambda X: X[:, 0], ERROR, None),
    "3-D": (lambda X: X[None], ERROR, None),
    "0-D": (lambda X: np.float64(1.0), ERROR, None),
    "strings": (lambda X: X.astype(str), ERROR, None),
    "object, non-numbers": (lambda X: np.array([[1.0, None, {"a": 1}]] * N, dtype=object), ERROR, None),
    "ragged list": (lambda X: [[1.0, 2.0, 3.0], [4.0, 5.0]] * (N // 2), ERROR, None),
    "complex": (lambda X: X + 1j, ERROR, None),
    "sparse": (lambda X: scipy.sparse.csr_matrix(X), ERROR, None),
    "scaled by 1e200": (lambda X: X * 1e200, ERROR, None),
    "scaled by 1e-200": (lambda X: X * 1e-200, ERROR, None),
    "one row (n < n_components)": (lambda X: X[:1], ERROR, None),
    "constant columns": (lambda X: np.ones_like(X), ERROR, None),
    "one constant column": (lambda X: _with(X, (slice(None), 2), 7.0), ERROR, None),
    "integers": (lambda X: np.round(X * 10).astype(np.int64), OK, ("same-as", lambda X: np.round(X * 10))),
    "object, numbers": (lambda X: X.astype(object), OK, ("same", 1e-10)),
    "list of lists": (lambda X: X.tolist(), OK, ("same", 1e-10)),
    "read-only": (_readonly, OK, ("same", 1e-10)),
    "Fortran order": (np.asfortranarray, OK, ("same", 1e-10)),
    "float32 tensor": (lambda X: torch.as_tensor(X, dtype=torch.float32), OK, ("same", 1e-3)),
    "scaled by 1e100": (lambda X: X * 1e100, OK, ("scaled", 1e100)),
    "scaled by 1e-100": (lambda X: X * 1e-100, OK, ("scaled", 1e-100)),
}


def _labels(X):
    """Two alternating classes, one label per row of X (whatever X is)."""
    n = (X.shape[0] if len(X.shape) else 1) if hasattr(X, "shape") else len(X)
    return np.arange(n) % 2


def _vae(s=1.0):
    return VAE(D, 2, (8,), likelihood="gaussian", random_state=0)


# name -> (make(scale) -> estimator, fit(est, X), fitted parameters -> power of the scale they carry)
ESTIMATORS = {
    "GaussianMixture": (lambda s=1.0: GaussianMixture(2, reg_covar=1e-6 * s * s, random_state=0),
                        lambda e, X: e.fit(X), {"weights_": 0, "means_": 1, "covariances_": 2}),
    "PCA": (lambda s=1.0: PCA(2), lambda e, X: e.fit(X),
            {"components_": 0, "explained_variance_": 2, "mean_": 1}),
    "FactorAnalysis": (lambda s=1.0: FactorAnalysis(2), lambda e, X: e.fit(X),
                       {"components_": 1, "noise_variance_": 2, "mean_": 1}),
    "MissingDataGaussian": (lambda s=1.0: MissingDataGaussian(), lambda e, X: e.fit(X),
                            {"mean_": 1, "covariance_": 2}),
    "GaussianDiscriminantAnalysis": (lambda s=1.0: GaussianDiscriminantAnalysis(),
                                     lambda e, X: e.fit(X, _labels(X)),
                                     {"priors_": 0, "means_": 1, "covariances_": 2}),
    "GaussianNaiveBayes": (lambda s=1.0: GaussianNaiveBayes(),
                           lambda e, X: e.fit(X, _labels(X)),
                           {"class_prior_": 0, "theta_": 1, "var_": 2}),
    "VAE": (_vae, lambda e, X: e.fit(X, epochs=2, batch_size=16, progress=False), {}),
}

# Where an estimator's outcome differs from its kind's default, and why.
OVERRIDES = {
    ("MissingDataGaussian", "nan"): OK,                          # NaN marks a missing entry: its very purpose
    ("GaussianMixture", "one constant column"): OK,              # reg_covar keeps the covariance definite
    ("PCA", "one constant column"): OK,                          # a direction of zero variance is a fine answer
    ("PCA", "constant columns"): OK,
    ("VAE", "one constant column"): OK,                          # a network fits a constant
    ("VAE", "constant columns"): OK,
    ("VAE", "one row (n < n_components)"): OK,                   # no components: one row is a (tiny) data set
    ("VAE", "scaled by 1e-100"): ERROR,                          # its float32 networks cannot hold 1e-100
    ("VAE", "scaled by 1e100"): ERROR,                           # nor 1e100
}


def expected(est_name, kind):
    return OVERRIDES.get((est_name, kind), KINDS[kind][1])


def assert_clear_error(call):
    """The call raises a one-line ValueError from course_lib's own code; returns the message."""
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    frames = traceback.extract_tb(info.tb)
    origin = frames[-1].filename
    assert os.path.dirname(os.path.abspath(origin)).startswith(LIB_DIR), \
        f"the ValueError came from {origin}, not from course_lib: {message}"
    return message


def _array(value):
    return value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, float)


def fitted(est, names):
    return {name: _array(getattr(est, name)) for name in names}


def _fit_quietly(fit, est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # convergence warnings of the 40-point data sets
        return fit(est, X)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("est_name", list(ESTIMATORS))
def test_fit_on_bad_input_is_a_clear_error_or_a_correct_result(est_name, kind):
    make, fit, params = ESTIMATORS[est_name]
    build, _, relation = KINDS[kind]
    X0 = clean()
    X = build(X0)
    scale = relation[1] if relation and relation[0] == "scaled" else 1.0
    if expected(est_name, kind) == ERROR:
        message = assert_clear_error(lambda: _fit_quietly(fit, make(scale), X))
        if kind.startswith("scaled by"):
            assert "rescale" in message or "divide X" in message or "multiply X" in message, message
        return
    est = _fit_quietly(fit, make(scale), X)
    if est_name == "VAE":
        assert np.isfinite(est.history_["loss"]).all()
        if relation and relation[0] in ("same", "same-as"):
            reference = _fit_quietly(fit, make(), relation[1](X0) if relation[0] == "same-as" else X0)
            np.testing.assert_allclose(est.history_["loss"], reference.history_["loss"], rtol=1e-4)
        return
    got = fitted(est, params)
    for name, value in got.items():
        assert np.isfinite(value).all(), f"{name} is not finite"
    if relation is None:
        return
    if relation[0] == "same-as":
        reference = fitted(_fit_quietly(fit, make(), relation[1](X0)), params)
        rtol = 1e-10
        powers = {name: 0 for name in params}
    elif relation[0] == "same":
        reference = fitted(_fit_quietly(fit, make(), X0), params)
        rtol = relation[1]
        powers = {name: 0 for name in params}
    else:
        reference = fitted(_fit_quietly(fit, make(), X0), params)
        rtol = 1e-8
        powers = params
    for name, power in powers.items():
        expect = reference[name] * scale ** power
        if name == "components_" and est_name == "PCA":        # a basis: compare the projectors
            value, expect = got[name].T @ got[name], expect.T @ expect
        else:
            value = got[name]
        atol = rtol * np.abs(expect).max()
        np.testing.assert_allclose(value, expect, rtol=rtol, atol=atol, err_msg=f"{est_name}.{name} on {kind}")


# After a clean fit, every method that takes data refuses bad data the same way.
METHOD_INPUTS = {
    "nan": lambda X: _with(X, (1, 1), np.nan),
    "inf": lambda X: _with(X, (1, 1), np.inf),
    "1-D": lambda X: X[:, 0],
    "3-D": lambda X: X[None],
    "strings": lambda X: X.astype(str),
    "complex": lambda X: X + 1j,
    "wrong number of features": lambda X: X[:, :2],
    "no features (n, 0)": lambda X: X[:, :0],
    "sparse": lambda X: scipy.sparse.csr_matrix(X),
}
METHODS = {
    "GaussianMixture": ("predict", "predict_proba", "score_samples", "score", "bic"),
    "PCA": ("transform", "score_samples", "score"),
    "FactorAnalysis": ("transform", "posterior", "score_samples", "score"),
    "MissingDataGaussian": ("impute", "score_samples", "score"),
    "GaussianDiscriminantAnalysis": ("predict", "predict_proba", "predict_log_proba"),
    "GaussianNaiveBayes": ("predict", "predict_proba", "predict_log_proba"),
    "VAE": ("encode", "reconstruct", "elbo"),
}


@pytest.fixture(scope="module")
def fitted_estimators():
    out = {}
    for name, (make, fit, _) in ESTIMATORS.items():
        out[name] = _fit_quietly(fit, make(), clean())
    return out


@pytest.mark.parametrize("kind", list(METHOD_INPUTS))
@pytest.mark.parametrize("est_name", list(METHODS))
def test_methods_after_fit_refuse_bad_input(fitted_estimators, est_name, kind):
    est = fitted_estimators[est_name]
    X = METHOD_INPUTS[kind](clean())
    for method in METHODS[est_name]:
        if est_name == "MissingDataGaussian" and kind == "nan":
            out = getattr(est, method)(X)                    # missing entries: imputed or scored, finite
            assert np.isfinite(np.asarray(out, dtype=float)).all()
            continue
        assert_clear_error(lambda: getattr(est, method)(X))


def test_overrides_name_real_cases():
    """The table of exceptions stays in step with the estimators and kinds it talks about."""
    for est_name, kind in OVERRIDES:
        assert est_name in ESTIMATORS and kind in KINDS
        assert OVERRIDES[(est_name, kind)] != KINDS[kind][1]
    assert len(KINDS) >= 16 and len(ESTIMATORS) == 7
