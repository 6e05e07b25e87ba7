"""Closed-form MLEs: values by hand and by NumPy, log-likelihoods against torch.distributions, edge cases."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from course_lib import mle

# float64 reference computations agree to rounding; 1e-10 leaves room for summation order
TOL = 1e-10


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------------------
# categorical
# ---------------------------------------------------------------------------------------------------------
def test_categorical_by_hand():
    x = np.array([0, 0, 1, 2, 2, 2])
    probs = mle.categorical(x)
    np.testing.assert_allclose(probs, [2 / 6, 1 / 6, 3 / 6], atol=TOL)
    expected = 2 * math.log(2 / 6) + math.log(1 / 6) + 3 * math.log(3 / 6)
    assert mle.categorical_log_likelihood(x, probs) == pytest.approx(expected, abs=TOL)
    assert isinstance(mle.categorical_log_likelihood(x, probs), float)


def test_categorical_dice_matches_numpy_and_torch(rng):
    x = rng.integers(0, 6, size=600)
    probs = mle.categorical(x, num_classes=6)
    assert isinstance(probs, np.ndarray) and probs.shape == (6,)
    np.testing.assert_allclose(probs, np.bincount(x, minlength=6) / 600, atol=TOL)
    assert probs.sum() == pytest.approx(1.0, abs=TOL)
    ref = torch.distributions.Categorical(probs=torch.as_tensor(probs)).log_prob(torch.as_tensor(x)).sum().item()
    assert mle.categorical_log_likelihood(x, probs) == pytest.approx(ref, abs=1e-8)


def test_categorical_mle_is_the_maximum(rng):
    x = rng.integers(0, 4, size=200)
    probs = mle.categorical(x)
    best = mle.categorical_log_likelihood(x, probs)
    for _ in range(20):
        other = rng.dirichlet(np.ones(4))
        assert mle.categorical_log_likelihood(x, other) < best


def test_categorical_unseen_classes_and_zero_probabilities():
    x = np.array([0, 1, 1])
    probs = mle.categorical(x, num_classes=4)
    np.testing.assert_allclose(probs, [1 / 3, 2 / 3, 0, 0], atol=TOL)
    # an unobserved outcome with probability 0 costs nothing; an observed one makes the data impossible
    assert np.isfinite(mle.categorical_log_likelihood(x, probs))
    assert mle.categorical_log_likelihood(np.array([0, 3]), probs) == -math.inf


@pytest.mark.parametrize("x, kwargs, match", [
    (np.array([0, -1, 2]), {}, "non-negative"),
    (np.array([0, 1.5, 2]), {}, "whole numbers"),
    (np.array([0, 1, 6]), {"num_classes": 6}, "num_classes"),
    (np.array([]), {}, "0 sample\\(s\\)"),
    (np.array([[0, 1]]), {}, "1-D"),
    (np.array([0, 1]), {"num_classes": 0}, "num_classes"),
])
def test_categorical_invalid_labels(x, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        mle.categorical(x, **kwargs)
    assert "\n" not in str(info.value)


def test_categorical_log_likelihood_checks_probs():
    with pytest.raises(ValueError, match="sum to 1"):
        mle.categorical_log_likelihood([0, 1], [0.5, 0.6])
    with pytest.raises(ValueError, match="non-negative"):
        mle.categorical_log_likelihood([0, 1], [1.5, -0.5])
    with pytest.raises(ValueError, match="only 2 classes"):
        mle.categorical_log_likelihood([0, 2], [0.5, 0.5])


def test_categorical_tensor_in_tensor_out():
    x = torch.tensor([0, 2, 2, 1])
    probs = mle.categorical(x)
    assert isinstance(probs, torch.Tensor) and probs.dtype == torch.float64
    ll = mle.categorical_log_likelihood(x, probs.float())
    assert isinstance(ll, torch.Tensor) and ll.ndim == 0 and ll.dtype == torch.float32


# ---------------------------------------------------------------------------------------------------------
# Bernoulli
# ---------------------------------------------------------------------------------------------------------
def test_bernoulli_matches_torch(rng):
    x = (rng.random(500) < 0.3).astype(int)
    p = mle.bernoulli(x)
    assert isinstance(p, float) and p == pytest.approx(x.mean(), abs=TOL)
    ref = torch.distributions.Bernoulli(probs=torch.tensor(p, dtype=torch.float64)) \
        .log_prob(torch.as_tensor(x, dtype=torch.float64)).sum().item()
    assert mle.bernoulli_log_likelihood(x, p) == pytest.approx(ref, abs=1e-8)
    assert mle.bernoulli_log_likelihood(x, p) > mle.bernoulli_log_likelihood(x, p + 0.05)
    assert mle.bernoulli_log_likelihood(x, p) > mle.bernoulli_log_likelihood(x, p - 0.05)


def test_bernoulli_bool_and_boundaries():
    assert mle.bernoulli(np.array([True, False, True, True])) == pytest.approx(0.75)
    assert mle.bernoulli_log_likelihood([0, 0, 0], 0.0) == 0.0
    assert mle.bernoulli_log_likelihood([0, 1, 0], 0.0) == -math.inf
    assert mle.bernoulli_log_likelihood([1, 1], 1.0) == 0.0


def test_bernoulli_errors():
    with pytest.raises(ValueError, match="only 0 and 1"):
        mle.bernoulli(np.array([1, -1, 1]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mle.bernoulli_log_likelihood([0, 1], 1.2)
    with pytest.raises(ValueError, match="single number"):
        mle.bernoulli_log_likelihood([0, 1], [0.2, 0.3])


def test_bernoulli_tensor():
    p = mle.bernoulli(torch.tensor([1.0, 0.0, 1.0], dtype=torch.float32))
    assert isinstance(p, torch.Tensor) and p.dtype == torch.float32
    assert float(p) == pytest.approx(2 / 3, rel=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Poisson
# ---------------------------------------------------------------------------------------------------------
def test_poisson_matches_torch(rng):
    x = rng.poisson(3.5, size=400)
    rate = mle.poisson(x)
    assert rate == pytest.approx(x.mean(), abs=TOL)
    ref = torch.distributions.Poisson(torch.tensor(rate, dtype=torch.float64)) \
        .log_prob(torch.as_tensor(x, dtype=torch.float64)).sum().item()
    assert mle.poisson_log_likelihood(x, rate) == pytest.approx(ref, abs=1e-8)
    assert mle.poisson_log_likelihood(x, rate) > mle.poisson_log_likelihood(x, rate * 1.05)


def test_poisson_by_hand_includes_factorial():
    # x = [0, 2, 3], rate 1.5: sum x log r - 3 r - log(0! 2! 3!)
    expected = 5 * math.log(1.5) - 4.5 - math.log(1 * 2 * 6)
    assert mle.poisson_log_likelihood([0, 2, 3], 1.5) == pytest.approx(expected, abs=TOL)
    assert mle.poisson_log_likelihood([0, 0], 0.0) == 0.0
    assert mle.poisson_log_likelihood([0, 1], 0.0) == -math.inf


@pytest.mark.parametrize("x, match", [([1, -2, 3], "non-negative"), ([1, 2.5], "whole numbers")])
def test_poisson_errors(x, match):
    with pytest.raises(ValueError, match=match):
        mle.poisson(x)
    with pytest.raises(ValueError, match="rate"):
        mle.poisson_log_likelihood([1, 2], -1.0)


# ---------------------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------------------
def test_gaussian_matches_numpy_scipy_and_torch(rng):
    X = rng.multivariate_normal([1.0, -2.0, 0.5], [[2, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 1.5]], size=300)
    mean, cov = mle.gaussian(X)
    np.testing.assert_allclose(mean, X.mean(0), atol=TOL)
    np.testing.assert_allclose(cov, np.cov(X.T, bias=True), atol=TOL)      # 1/N, not 1/(N-1)
    ll = mle.gaussian_log_likelihood(X, mean, cov)
    assert ll == pytest.approx(multivariate_normal(mean, cov).logpdf(X).sum(), abs=1e-8)
    ref = torch.distributions.MultivariateNormal(torch.as_tensor(mean), torch.as_tensor(cov)) \
        .log_prob(torch.as_tensor(X)).sum().item()
    assert ll == pytest.approx(ref, abs=1e-8)
    # the MLE beats the truth and the unbiased covariance on its own data
    assert ll > mle.gaussian_log_likelihood(X, mean, np.cov(X.T))
    assert ll > mle.gaussian_log_likelihood(X, mean + 0.05, cov)


def test_gaussian_one_dimensional_input(rng):
    x = rng.normal(2.0, 3.0, size=200)
    mean, cov = mle.gaussian(x)
    assert mean.shape == (1,) and cov.shape == (1, 1)
    assert cov[0, 0] == pytest.approx(x.var(), abs=TOL)
    ll = mle.gaussian_log_likelihood(x, mean[0], cov[0, 0])
    ref = torch.distributions.Normal(torch.tensor(mean[0], dtype=torch.float64),
                                     torch.tensor(math.sqrt(cov[0, 0]), dtype=torch.float64)) \
        .log_prob(torch.as_tensor(x)).sum().item()
    assert ll == pytest.approx(ref, abs=1e-8)


def test_gaussian_log_likelihood_errors():
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match="positive definite"):
        mle.gaussian_log_likelihood(X, np.zeros(2), np.array([[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="shape"):
        mle.gaussian_log_likelihood(X, np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="symmetric"):
        mle.gaussian_log_likelihood(X, np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="NaN"):
        mle.gaussian(np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_gaussian_tensor_keeps_dtype():
    X = torch.randn(50, 2, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    mean, cov = mle.gaussian(X)
    assert isinstance(mean, torch.Tensor) and mean.dtype == torch.float32 and cov.shape == (2, 2)
    ll = mle.gaussian_log_likelihood(X, mean, cov)
    ref = torch.distributions.MultivariateNormal(mean.double(), cov.double()).log_prob(X.double()).sum()
    assert float(ll) == pytest.approx(float(ref), rel=1e-4)      # float32 arithmetic


@pytest.mark.cuda
def test_mle_on_cuda():
    X = torch.randn(100, 3, device="cuda", dtype=torch.float64)
    mean, cov = mle.gaussian(X)
    assert mean.device.type == "cuda" and cov.device.type == "cuda"
    ll = mle.gaussian_log_likelihood(X, mean, cov)
    assert ll.device.type == "cuda"
    ref = mle.gaussian_log_likelihood(X.cpu().numpy(), mean.cpu().numpy(), cov.cpu().numpy())
    assert float(ll) == pytest.approx(ref, abs=1e-8)
    labels = torch.randint(0, 6, (100,), device="cuda")
    probs = mle.categorical(labels, num_classes=6)
    assert probs.device.type == "cuda"
    assert float(mle.categorical_log_likelihood(labels, probs)) == pytest.approx(
        mle.categorical_log_likelihood(labels.cpu().numpy(), probs.cpu().numpy()), abs=1e-8)
    counts = torch.poisson(torch.full((100,), 2.0, device="cuda"))
    assert mle.poisson_log_likelihood(counts, mle.poisson(counts)).device.type == "cuda"
