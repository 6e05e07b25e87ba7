"""Factor analysis by EM: against scikit-learn, EM's guarantees, the posterior, the ELBO and the benchmark."""
import importlib.util
import pathlib
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.decomposition import FactorAnalysis as SkFA

from course_lib.factor_analysis import FactorAnalysis

ROOT = pathlib.Path(__file__).resolve().parents[1]


def make_data(n=500, d=8, k=2, seed=0):
    """Draws from a factor-analysis model x = μ + A z + e."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, k))
    psi = rng.uniform(0.2, 1.0, size=d)
    return rng.normal(size=(n, k)) @ A.T + rng.normal(size=(n, d)) * np.sqrt(psi) + 1.0


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def fitted(data):
    return FactorAnalysis(2, tol=1e-13, max_iter=20_000).fit(data)


def kl_gaussians(m0, S0, m1, S1):
    """KL(N(m0, S0) || N(m1, S1)) for one pair."""
    k = len(m0)
    S1inv = np.linalg.inv(S1)
    diff = m1 - m0
    return 0.5 * (np.trace(S1inv @ S0) + diff @ S1inv @ diff - k
                  + np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1])


def test_converged_loglikelihood_equals_sklearn(data, fitted):
    sk = SkFA(2, svd_method="lapack", tol=1e-12, max_iter=100_000).fit(data)
    assert fitted.converged_
    # both at the same maximum; tolerance 1e-6 on the average log-likelihood, as both stop on small changes
    assert abs(fitted.score(data) - sk.score(data)) < 1e-6
    np.testing.assert_allclose(fitted.get_covariance(), sk.get_covariance(), atol=1e-4)
    np.testing.assert_allclose(fitted.noise_variance_, sk.noise_variance_, atol=1e-4)
    np.testing.assert_allclose(fitted.mean_, data.mean(0), atol=1e-12)
    # loglike_ holds totals (sklearn's convention); the last entry is the fitted model's
    assert fitted.loglike_[-1] == pytest.approx(len(data) * fitted.score(data), rel=1e-12)
    assert fitted.n_iter_ == len(fitted.loglike_)


def test_em_never_lowers_the_loglikelihood(fitted):
    ll = np.asarray(fitted.loglike_)
    assert len(ll) > 20
    # float64 round-off on a total of ~5e3: allow 1e-9 relative
    assert np.all(np.diff(ll) >= -1e-9 * abs(ll[-1]))
    assert ll[-1] > ll[0]


def test_score_samples_is_the_gaussian_logpdf(data, fitted):
    cov = fitted.get_covariance()
    A = fitted.components_.T
    np.testing.assert_allclose(cov, A @ A.T + np.diag(fitted.noise_variance_), atol=1e-14)
    expected = multivariate_normal(fitted.mean_, cov).logpdf(data)
    np.testing.assert_allclose(fitted.score_samples(data), expected, rtol=1e-10)
    assert fitted.score(data) == pytest.approx(expected.mean(), rel=1e-12)
    np.testing.assert_allclose(fitted.get_precision() @ cov, np.eye(8), atol=1e-10)


def test_posterior_equals_the_formula_on_a_small_case():
    X = make_data(n=60, d=4, k=2, seed=3)
    fa = FactorAnalysis(2, max_iter=50).fit(X)
    A, D = fa.components_.T, np.diag(fa.noise_variance_)
    C = A @ A.T + D
    means, cov = fa.posterior(X)
    np.testing.assert_allclose(means, (X - fa.mean_) @ np.linalg.inv(C) @ A, atol=1e-12)   # Aᵀ C⁻¹ (x - μ)
    np.testing.assert_allclose(cov, np.eye(2) - A.T @ np.linalg.inv(C) @ A, atol=1e-12)
    np.testing.assert_allclose(fa.transform(X), means, atol=0)


def test_elbo_is_a_lower_bound_tight_at_the_posterior(data, fitted):
    X = data[:50]
    total = fitted.score_samples(X).sum()
    means, cov = fitted.posterior(X)
    assert fitted.elbo(X, means, cov) == pytest.approx(total, rel=1e-8)
    assert fitted.elbo(X, means, np.broadcast_to(cov, (50, 2, 2)).copy()) == pytest.approx(total, rel=1e-8)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q_mean = means + rng.normal(size=means.shape)
        B = rng.normal(size=(50, 2, 2))
        q_cov = B @ B.transpose(0, 2, 1) + 0.1 * np.eye(2)
        bound = fitted.elbo(X, q_mean, q_cov)
        assert bound < total
        # the gap is exactly Σ_n KL(q_n || P(z | x_n))
        gap = sum(kl_gaussians(q_mean[i], q_cov[i], means[i], cov) for i in range(50))
        assert total - bound == pytest.approx(gap, rel=1e-8)


def test_sampling_completion_runs_seeded(data, fitted):
    def fit(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return FactorAnalysis(2, completion="sampling", max_iter=60, random_state=seed).fit(data)
    a, b, c = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.loglike_ == b.loglike_
    assert not np.array_equal(a.components_, c.components_)
    # stochastic EM hovers near the maximum: within 0.05 nats per sample of the exact EM fit
    assert fitted.score(data) - 0.05 < a.score(data) <= fitted.score(data) + 1e-9


def test_start_is_deterministic_and_sample_follows_the_model(data):
    a = FactorAnalysis(2, max_iter=30, random_state=0).fit(data)
    b = FactorAnalysis(2, max_iter=30).fit(data)                  # the start does not depend on random_state
    np.testing.assert_array_equal(a.components_, b.components_)
    draws = a.sample(20_000)
    assert draws.shape == (20_000, 8)
    np.testing.assert_array_equal(draws, a.sample(20_000))         # seeded by random_state
    # sampling error of a covariance from 2e4 draws with entries ~O(1): 0.15 is ~5 standard errors
    np.testing.assert_allclose(np.cov(draws.T), a.get_covariance(), atol=0.15)


def test_tensor_in_tensor_out_float32(data):
    X = torch.as_tensor(data, dtype=torch.float32)
    fa = FactorAnalysis(2, tol=1e-6).fit(X)
    assert isinstance(fa.components_, torch.Tensor) and fa.components_.dtype == torch.float32
    means, cov = fa.posterior(X)
    assert means.dtype == torch.float32 and means.shape == (500, 2) and cov.shape == (2, 2)
    ref = FactorAnalysis(2, tol=1e-10).fit(data)
    assert fa.score(X) == pytest.approx(ref.score(data), abs=1e-3)      # float32 arithmetic
    assert isinstance(fa.sample(3), torch.Tensor)


def test_errors_are_clear(data):
    with pytest.raises(ValueError, match="n_components=9 is larger than n_features=8"):
        FactorAnalysis(9).fit(data)
    with pytest.raises(ValueError, match="completion"):
        FactorAnalysis(2, completion="mode").fit(data)
    Xn = data.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FactorAnalysis(2).fit(Xn)
    Xc = data.copy()
    Xc[:, 5] = 7.3
    with pytest.raises(ValueError, match=r"constant features .* columns \[5\]"):
        FactorAnalysis(2).fit(Xc)
    with pytest.raises(ValueError, match="noise_variance_init has 3 entries"):
        FactorAnalysis(2, noise_variance_init=np.ones(3)).fit(data)
    fa = FactorAnalysis(2, max_iter=20).fit(data)
    with pytest.raises(ValueError, match="features"):
        fa.score(data[:, :4])
    with pytest.raises(ValueError, match="q_mean has shape"):
        fa.elbo(data, np.zeros((500, 3)), np.eye(2))
    with pytest.raises(ValueError, match="q_cov has shape"):
        fa.elbo(data, np.zeros((500, 2)), np.eye(3))
    with pytest.raises(ValueError, match="positive definite"):
        fa.elbo(data, np.zeros((500, 2)), -np.eye(2))
    with pytest.raises(Exception, match="not fitted"):
        FactorAnalysis(2).score(data)


def test_noise_variance_init_is_used(data, fitted):
    one = FactorAnalysis(2, noise_variance_init=np.full(8, 0.5), max_iter=1).fit(data)
    other = FactorAnalysis(2, noise_variance_init=np.full(8, 3.0), max_iter=1).fit(data)
    assert one.n_iter_ == 1 and len(one.loglike_) == 1
    assert one.loglike_[0] == pytest.approx(len(data) * one.score(data), rel=1e-12)
    assert not np.allclose(one.noise_variance_, other.noise_variance_, atol=1e-3)
    # from either start EM reaches the same maximum
    far = FactorAnalysis(2, noise_variance_init=np.full(8, 3.0), tol=1e-13, max_iter=20_000).fit(data)
    assert far.score(data) == pytest.approx(fitted.score(data), abs=1e-8)


def test_benchmark_smoke(capsys):
    spec = importlib.util.spec_from_file_location("bench_fa", ROOT / "benchmarks" / "bench_fa.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    before = torch.get_num_threads()
    try:
        result = bench.main(["--n-samples", "800", "--n-features", "6", "--n-components", "2", "--repeats", "1"])
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "course_lib EM" in out and "sklearn lapack" in out
    assert abs(result["sklearn lapack"]["avg_loglike"] - result["course_lib EM"]["avg_loglike"]) < 1e-4


@pytest.mark.cuda
def test_cuda_matches_cpu(data):
    cpu = FactorAnalysis(2, tol=1e-12, max_iter=5000).fit(data)
    X = torch.as_tensor(data, device="cuda")
    gpu = FactorAnalysis(2, tol=1e-12, max_iter=5000).fit(X)
    assert gpu.components_.device.type == "cuda"
    assert gpu.score(X) == pytest.approx(cpu.score(data), abs=1e-8)
    means, _ = gpu.posterior(X)
    np.testing.assert_allclose(means.cpu().numpy(), cpu.posterior(data)[0], atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = FactorAnalysis(2, completion="sampling", max_iter=20, random_state=0).fit(X)
    assert np.isfinite(s.score(X))


def test_the_fit_does_not_depend_on_the_eigenvectors_signs(data, monkeypatch):
    """LAPACK and cuSOLVER return eigenvectors of opposite signs (seen on a GPU): the starting loadings fix them,
    so the fit, its components and its posterior means are the same whichever sign eigh returns."""
    before = FactorAnalysis(2, tol=1e-12, max_iter=500).fit(data)
    eigh = torch.linalg.eigh

    def flipped(a):
        s, U = eigh(a)
        return s, -U

    monkeypatch.setattr(torch.linalg, "eigh", flipped)
    after = FactorAnalysis(2, tol=1e-12, max_iter=500).fit(data)
    np.testing.assert_allclose(after.components_, before.components_, atol=1e-10)
    np.testing.assert_allclose(after.transform(data), before.transform(data), atol=1e-10)
