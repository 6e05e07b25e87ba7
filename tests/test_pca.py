"""PCA: closed form against scikit-learn, the iterative solver, and the probabilistic-PCA likelihood."""
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA as SkPCA

from course_lib.pca import PCA, iterative_pca_step


def make_data(n=300, d=8, seed=0):
    """Anisotropic Gaussian data with well-separated variances and a non-zero mean."""
    rng = np.random.default_rng(seed)
    scales = np.array([5.0, 4.0, 3.0, 1.0, 0.8, 0.6, 0.5, 0.3])[:d]
    rotation = np.linalg.qr(rng.normal(size=(d, d)))[0]
    return rng.normal(size=(n, d)) * scales @ rotation + 3.0


def projector(components):
    Q = np.linalg.qr(np.asarray(components).T)[0]
    return Q @ Q.T


def test_eigenvalues_and_subspace_equal_sklearn_after_n_minus_1_conversion():
    X = make_data()
    n = X.shape[0]
    ours = PCA(3).fit(X)
    sk = SkPCA(3, svd_solver="full").fit(X)
    # we use the ML normalisation 1/N; sklearn divides by N - 1 (float64 reference: 1e-10)
    np.testing.assert_allclose(ours.explained_variance_, sk.explained_variance_ * (n - 1) / n, rtol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_ratio_, sk.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(ours.noise_variance_, sk.noise_variance_ * (n - 1) / n, rtol=1e-10)
    np.testing.assert_allclose(ours.get_covariance(), sk.get_covariance() * (n - 1) / n, atol=1e-10)
    np.testing.assert_allclose(ours.mean_, sk.mean_, atol=1e-12)
    assert np.linalg.norm(projector(ours.components_) - projector(sk.components_)) < 1e-10
    # same sign rule as sklearn: the components themselves agree
    np.testing.assert_allclose(ours.components_, sk.components_, atol=1e-10)
    np.testing.assert_allclose(ours.components_ @ ours.components_.T, np.eye(3), atol=1e-12)
    assert np.all(np.diff(ours.explained_variance_) < 0)


def test_iterative_solver_reaches_the_closed_form_subspace():
    X = make_data()
    closed = PCA(3).fit(X)
    it = PCA(3, solver="iterative", random_state=0).fit(X)
    assert it.n_iter_ > 1
    assert np.linalg.norm(projector(it.components_) - projector(closed.components_)) < 1e-6
    # after the final rotation the basis itself is the eigenvector basis (same sign rule)
    np.testing.assert_allclose(it.components_, closed.components_, atol=1e-6)
    np.testing.assert_allclose(it.explained_variance_, closed.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(it.noise_variance_, closed.noise_variance_, rtol=1e-10)


def test_iterative_step_lowers_reconstruction_error_and_converges():
    X = make_data()
    Xc = X - X.mean(0)
    W = np.random.default_rng(1).normal(size=(X.shape[1], 2))
    errors = []
    for _ in range(40):
        W = iterative_pca_step(X, W)
        Z = Xc @ np.linalg.pinv(W).T
        errors.append(np.sum((Xc - Z @ W.T) ** 2))
    assert isinstance(W, np.ndarray) and W.shape == (8, 2)
    assert np.all(np.diff(errors) <= 1e-9 * errors[0])          # alternating least squares never goes up
    closed = PCA(2).fit(X)
    assert np.linalg.norm(projector(W.T) - projector(closed.components_)) < 1e-6
    # the principal subspace is a fixed point (up to the basis)
    W_star = closed.components_.T * 3.0
    W2 = iterative_pca_step(Xc, W_star, center=False)
    assert np.linalg.norm(projector(W2.T) - projector(W_star.T)) < 1e-12


def test_transform_inverse_transform_round_trip_at_full_rank():
    X = make_data()
    pca = PCA(None).fit(X)
    assert pca.components_.shape == (8, 8)
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(X)), X, atol=1e-10)
    assert pca.noise_variance_ == 0.0
    np.testing.assert_allclose(pca.explained_variance_ratio_.sum(), 1.0, rtol=1e-12)
    # the coordinates are uncorrelated with the explained variances as their variances (ML normalisation)
    Z = pca.transform(X)
    np.testing.assert_allclose(Z.T @ Z / len(X), np.diag(pca.explained_variance_), atol=1e-10)


def test_probabilistic_pca_score_equals_explicit_gaussian_logpdf():
    X = make_data()
    pca = PCA(3).fit(X)
    V, lam, s2 = pca.components_, pca.explained_variance_, pca.noise_variance_
    W = V.T * np.sqrt(lam - s2)                                  # Tipping & Bishop's ML loading matrix
    cov = W @ W.T + s2 * np.eye(8)
    np.testing.assert_allclose(cov, pca.get_covariance(), atol=1e-12)
    expected = multivariate_normal(pca.mean_, cov).logpdf(X)
    np.testing.assert_allclose(pca.score_samples(X), expected, rtol=1e-10)
    assert pca.score(X) == pytest.approx(expected.mean(), rel=1e-12)
    # the ML fit has the highest likelihood: sklearn's (N - 1) covariance scores lower on the training data
    sk = SkPCA(3, svd_solver="full").fit(X)
    assert pca.score(X) > sk.score(X)
    full = PCA(None).fit(X)                                      # k = d: the ML Gaussian itself
    np.testing.assert_allclose(full.score_samples(X),
                               multivariate_normal(X.mean(0), np.cov(X.T, bias=True)).logpdf(X), rtol=1e-10)


def test_tensor_in_tensor_out_float32():
    X = torch.as_tensor(make_data(), dtype=torch.float32)
    pca = PCA(2).fit(X)
    Z = pca.transform(X)
    assert isinstance(Z, torch.Tensor) and Z.dtype == torch.float32 and Z.shape == (300, 2)
    assert isinstance(pca.components_, torch.Tensor)
    ref = PCA(2).fit(X.double().numpy())
    np.testing.assert_allclose(pca.explained_variance_.numpy(), ref.explained_variance_, rtol=1e-4)  # float32
    scores = pca.score_samples(X)
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()
    assert PCA(2, dtype=torch.float64).fit(X).components_.dtype == torch.float64


def test_errors_are_clear():
    X = make_data()
    with pytest.raises(ValueError, match="n_components=9 is larger than n_features=8"):
        PCA(9).fit(X)
    with pytest.raises(ValueError, match="solver"):
        PCA(2, solver="svd").fit(X)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PCA(2).fit(Xn)
    pca = PCA(2).fit(X)
    with pytest.raises(ValueError, match="features"):
        pca.transform(X[:, :5])
    with pytest.raises(ValueError, match="2 components"):
        pca.inverse_transform(np.zeros((3, 4)))
    with pytest.raises(Exception, match="not fitted"):
        PCA(2).transform(X)
    with pytest.raises(ValueError, match="W has 5 rows"):
        iterative_pca_step(X, np.ones((5, 2)))
    # rank-deficient data: σ² is 0, the pPCA density does not exist
    flat = np.c_[X[:, :2], np.zeros((len(X), 2))]
    with pytest.raises(ValueError, match="singular"):
        PCA(2).fit(flat).score(flat)


def test_iterative_warns_when_not_converged():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        PCA(3, solver="iterative", max_iter=2, random_state=0).fit(make_data())
    assert any("did not converge" in str(w.message) for w in caught)


@pytest.mark.cuda
def test_cuda_matches_cpu():
    X = make_data()
    cpu = PCA(3, solver="iterative", random_state=0).fit(X)
    gpu = PCA(3, solver="iterative", random_state=0).fit(torch.as_tensor(X, device="cuda"))
    assert gpu.components_.device.type == "cuda"
    np.testing.assert_allclose(gpu.components_.cpu().numpy(), cpu.components_, atol=1e-6)
    np.testing.assert_allclose(gpu.score_samples(torch.as_tensor(X, device="cuda")).cpu().numpy(),
                               cpu.score_samples(X), rtol=1e-8)
