"""Generative classifiers: Gaussian discriminant analysis and Gaussian naive Bayes."""
import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import NotFittedError
from sklearn.naive_bayes import GaussianNB

from course_lib import GaussianDiscriminantAnalysis, GaussianNaiveBayes

# float64 references computed by other code: equal up to rounding
TOL = 1e-10


def three_blobs(seed=0, n=300):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centres = np.array([[0.0, 0.0, 0.0], [2.0, 1.0, -1.0], [-1.0, 2.0, 1.0]])
    A = rng.normal(size=(3, 3, 3)) * 0.5 + np.eye(3)
    X = centres[y] + np.einsum("nij,nj->ni", A[y], rng.normal(size=(n, 3)))
    return X, y


def two_gaussians_of_the_slides(seed=0, n=1000):
    """The example of the lecture: p(y=+1) = 0.6 and two correlated 2-D Gaussians."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.6, 1, -1)
    mu = {1: np.array([2.0, 0.0]), -1: np.array([-2.0, 0.0])}
    sigma = {1: np.array([[1.0, 0.8], [0.8, 2.0]]), -1: np.array([[2.0, 0.6], [0.6, 1.0]])}
    X = np.empty((n, 2))
    for label in (1, -1):
        rows = y == label
        X[rows] = rng.multivariate_normal(mu[label], sigma[label], size=rows.sum())
    return X, y, mu, sigma


def bayes_rule(X, priors, means, covs):
    """p(y | x) computed directly from scipy's densities."""
    log_joint = np.stack([np.log(p) + multivariate_normal(m, c).logpdf(X)
                          for p, m, c in zip(priors, means, covs)], axis=1)
    return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True)), log_joint


# ---------------------------------------------------------------------------------------------------------
# Gaussian naive Bayes equals scikit-learn
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("var_smoothing", [0.0, 1e-3])
def test_naive_bayes_equals_sklearn(var_smoothing):
    X, y = three_blobs()
    ours = GaussianNaiveBayes(var_smoothing=var_smoothing).fit(X, y)
    ref = GaussianNB(var_smoothing=var_smoothing).fit(X, y)
    np.testing.assert_allclose(ours.theta_, ref.theta_, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.var_, ref.var_, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.class_prior_, ref.class_prior_, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.predict_log_proba(X), ref.predict_log_proba(X), rtol=0, atol=1e-8)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.score(X, y) == pytest.approx(ref.score(X, y))
    assert ours.epsilon_ == pytest.approx(ref.epsilon_, abs=1e-15)


# ---------------------------------------------------------------------------------------------------------
# GDA against Bayes' rule and against LDA
# ---------------------------------------------------------------------------------------------------------
def test_gda_predict_proba_is_bayes_rule():
    X, y = three_blobs()
    gda = GaussianDiscriminantAnalysis().fit(X, y)
    for c in range(3):
        Xc = X[y == c]
        np.testing.assert_allclose(gda.means_[c], Xc.mean(0), atol=TOL)
        np.testing.assert_allclose(gda.covariances_[c], np.cov(Xc.T, bias=True), atol=TOL)
        assert gda.priors_[c] == pytest.approx(np.mean(y == c), abs=TOL)
    probs, log_joint = bayes_rule(X, gda.priors_, gda.means_, gda.covariances_)
    np.testing.assert_allclose(gda.predict_proba(X), probs, rtol=0, atol=TOL)
    np.testing.assert_allclose(gda.predict_proba(X).sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(gda.predict(X), gda.classes_[probs.argmax(1)])
    # joint log-likelihood: sum_n log p(x_n, y_n)
    assert gda.log_likelihood(X, y) == pytest.approx(log_joint[np.arange(len(y)), y].sum(), abs=1e-8)


@pytest.mark.parametrize("solver", ["lsqr", "eigen"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_shared_covariance_equals_lda(solver, n_classes):
    # LDA's covariance_ is sum_c prior_c * (1/N_c) scatter_c = (1/N) pooled scatter: the same ML estimate
    X, y = three_blobs(seed=1)
    keep = y < n_classes
    X, y = X[keep], y[keep]
    gda = GaussianDiscriminantAnalysis(shared_covariance=True).fit(X, y)
    lda = LinearDiscriminantAnalysis(solver=solver).fit(X, y)
    assert gda.covariances_.shape == (n_classes, 3, 3)
    for c in range(n_classes):
        np.testing.assert_allclose(gda.covariances_[c], lda.covariance_, atol=TOL)
    np.testing.assert_allclose(gda.means_, lda.means_, atol=TOL)
    np.testing.assert_allclose(gda.predict_proba(X), lda.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(gda.predict(X), lda.predict(X))


def test_shared_covariance_is_the_pooled_ml_estimate():
    X, y = three_blobs(seed=2)
    gda = GaussianDiscriminantAnalysis(shared_covariance=True).fit(X, y)
    pooled = sum((X[y == c] - X[y == c].mean(0)).T @ (X[y == c] - X[y == c].mean(0)) for c in range(3)) / len(X)
    np.testing.assert_allclose(gda.covariances_, np.broadcast_to(pooled, (3, 3, 3)), atol=TOL)


# ---------------------------------------------------------------------------------------------------------
# the two-Gaussian example of the lecture
# ---------------------------------------------------------------------------------------------------------
def test_two_gaussian_example_recovers_the_truth():
    X, y, mu, sigma = two_gaussians_of_the_slides()
    gda = GaussianDiscriminantAnalysis().fit(X, y)
    np.testing.assert_array_equal(gda.classes_, [-1, 1])
    assert gda.priors_[1] == pytest.approx(0.6, abs=0.05)           # ~4 standard errors with N = 1000
    for i, label in enumerate(gda.classes_):
        np.testing.assert_allclose(gda.means_[i], mu[label], atol=0.2)
        np.testing.assert_allclose(gda.covariances_[i], sigma[label], atol=0.3)
    assert gda.score(X, y) > 0.9
    # naive Bayes keeps the same means and the diagonals of the same covariances (the table of the slides)
    nb = GaussianNaiveBayes().fit(X, y)
    np.testing.assert_allclose(nb.theta_, gda.means_, atol=TOL)
    np.testing.assert_allclose(nb.var_, np.diagonal(gda.covariances_, axis1=1, axis2=2), atol=TOL)
    np.testing.assert_allclose(nb.class_prior_, gda.priors_, atol=TOL)
    # the full model fits the correlated data better than the naive one
    assert gda.log_likelihood(X, y) > nb.log_likelihood(X, y)


# ---------------------------------------------------------------------------------------------------------
# labels, outputs, robustness
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("Model", [GaussianDiscriminantAnalysis, GaussianNaiveBayes])
def test_any_labels_and_output_kinds(Model):
    X, y = three_blobs()
    names = np.array(["cat", "dog", "emu"])[y]
    model = Model().fit(X, names)
    np.testing.assert_array_equal(model.classes_, ["cat", "dog", "emu"])
    pred = model.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= {"cat", "dog", "emu"}
    assert 0.0 <= model.score(X, names) <= 1.0
    assert model.score(X, names) == pytest.approx(np.mean(pred == names))
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X)), proba, atol=1e-12)
    # far from every class: log-sum-exp keeps the posterior finite
    far = model.predict_proba(np.full((2, 3), 1e3))
    assert np.isfinite(far).all()
    np.testing.assert_allclose(far.sum(1), 1.0, atol=1e-12)
    assert clone(model).get_params() == model.get_params()


@pytest.mark.parametrize("Model", [GaussianDiscriminantAnalysis, GaussianNaiveBayes])
def test_tensor_input_follows_dtype(Model):
    X, y = three_blobs()
    Xt = torch.as_tensor(X, dtype=torch.float32)
    model = Model().fit(Xt, torch.as_tensor(y))
    proba = model.predict_proba(Xt)
    assert isinstance(proba, torch.Tensor) and proba.dtype == torch.float32
    pred = model.predict(Xt)
    assert isinstance(pred, torch.Tensor)
    ref = Model().fit(X, y)
    np.testing.assert_allclose(proba.numpy(), ref.predict_proba(X), atol=1e-4)   # float32 arithmetic
    assert (pred.numpy() == ref.predict(X)).mean() > 0.99


def test_reg_covar_rescues_a_small_class():
    X, y = three_blobs()
    X = np.vstack([X, [[10.0, 10.0, 10.0], [11.0, 10.0, 10.0]]])
    y = np.concatenate([y, [3, 3]])
    with pytest.raises(ValueError, match="shared_covariance=True or reg_covar"):
        GaussianDiscriminantAnalysis().fit(X, y)
    gda = GaussianDiscriminantAnalysis(reg_covar=1e-2).fit(X, y)
    assert np.all(np.linalg.eigvalsh(gda.covariances_) >= 1e-2 - 1e-12)
    assert gda.predict(np.array([[10.5, 10.0, 10.0]]))[0] == 3
    assert GaussianDiscriminantAnalysis(shared_covariance=True).fit(X, y).score(X, y) > 0.5


@pytest.mark.parametrize("Model", [GaussianDiscriminantAnalysis, GaussianNaiveBayes])
def test_errors(Model):
    X, y = three_blobs()
    with pytest.raises(ValueError, match="at least 2"):
        Model().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="labels but X has"):
        Model().fit(X, y[:-1])
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Model().fit(Xn, y)
    yn = y.astype(float)
    yn[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Model().fit(X, yn)
    with pytest.raises(NotFittedError):
        Model().predict(X)
    model = Model().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :2])
    with pytest.raises(ValueError, match="not seen in fit"):
        model.log_likelihood(X[:2], [0, 7])


def test_singular_covariance_is_reported():
    X, y = three_blobs()
    X = np.column_stack([X, X[:, 0] + X[:, 1]])        # a collinear feature: every covariance is singular
    with pytest.raises(ValueError, match="reg_covar") as info:
        GaussianDiscriminantAnalysis().fit(X, y)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianDiscriminantAnalysis(shared_covariance=True).fit(X, y)
    assert GaussianDiscriminantAnalysis(reg_covar=1e-6).fit(X, y).score(X, y) > 0.5


def test_naive_bayes_zero_variance_is_reported():
    X, y = three_blobs()
    X[y == 1, 2] = 5.0                                   # constant feature inside class 1
    with pytest.raises(ValueError, match="var_smoothing"):
        GaussianNaiveBayes().fit(X, y)
    assert np.isfinite(GaussianNaiveBayes(var_smoothing=1e-9).fit(X, y).predict_proba(X)).all()


def test_bad_hyperparameters():
    X, y = three_blobs()
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianDiscriminantAnalysis(reg_covar=-1).fit(X, y)
    with pytest.raises(ValueError, match="var_smoothing"):
        GaussianNaiveBayes(var_smoothing=-1e-9).fit(X, y)


@pytest.mark.cuda
@pytest.mark.parametrize("Model", [GaussianDiscriminantAnalysis, GaussianNaiveBayes])
def test_on_cuda(Model):
    X, y = three_blobs()
    Xt = torch.as_tensor(X, device="cuda")
    model = Model().fit(Xt, torch.as_tensor(y, device="cuda"))
    proba = model.predict_proba(Xt)
    assert proba.device.type == "cuda" and model.predict(Xt).device.type == "cuda"
    np.testing.assert_allclose(proba.cpu().numpy(), Model().fit(X, y).predict_proba(X), atol=1e-8)
