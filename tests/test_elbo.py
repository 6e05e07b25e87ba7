"""course_lib.elbo: the ELBO of a discrete latent variable and the EM bound J(θ, θ′)."""
import math

import numpy as np
import pytest
import torch

from course_lib import elbo as E


def two_gaussians_log_joint(x, theta, weights=(0.3, 0.7), sigma=1.0):
    """log P(x_n, m; θ) for a 1-D mixture with means (−θ, θ): shape (n, 2)."""
    x = np.asarray(x)[:, None]
    means = np.array([-theta, theta])
    return np.log(weights) - 0.5 * ((x - means) / sigma) ** 2 - 0.5 * math.log(2 * math.pi * sigma**2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny arrays: one thread avoids waking a thread pool for every small operation."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def log_joint():
    rng = np.random.default_rng(0)
    return rng.normal(scale=5.0, size=(50, 4)) - 3.0


def test_elbo_never_exceeds_log_marginal_for_random_q(log_joint):
    rng = np.random.default_rng(1)
    log_p = E.log_marginal(log_joint)
    for _ in range(20):
        q = rng.dirichlet(np.full(4, 0.5), size=50)
        assert E.elbo(log_joint, q) <= log_p + 1e-12
        # the gap is exactly the KL divergence to the posterior
        gap = log_p - E.elbo(log_joint, q)
        assert gap == pytest.approx(E.kl_divergence(q, E.posterior(log_joint)), rel=1e-9, abs=1e-9)


def test_elbo_equals_log_marginal_at_the_posterior(log_joint):
    q = E.posterior(log_joint)
    # float64 reference: both sides are sums of 50 terms of size ~10, so 1e-10 is rounding only
    assert abs(E.elbo(log_joint, q) - E.log_marginal(log_joint)) < 1e-10
    per_obs = E.elbo(log_joint, q, per_observation=True)
    assert per_obs.shape == (50,)
    np.testing.assert_allclose(per_obs, E.log_marginal(log_joint, per_observation=True), rtol=0, atol=1e-10)


def test_posterior_rows_sum_to_one_even_far_in_the_tail():
    lj = np.array([[-1000.0, -1001.0, -1e4], [-5.0, -5.0, -5.0]])
    q = E.posterior(lj)
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=0, atol=1e-12)
    assert q[0, 0] == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-12)
    assert E.log_marginal(lj, per_observation=True)[0] == pytest.approx(-1000 + math.log(1 + math.exp(-1)), rel=1e-14)
    np.testing.assert_allclose(np.exp(E.log_posterior(lj)), q, rtol=1e-12)


def test_zero_probabilities_follow_0_log_0_convention():
    lj = np.array([[0.0, -np.inf, -1.0]])
    q = np.array([[0.5, 0.0, 0.5]])
    assert np.isfinite(E.elbo(lj, q))
    assert E.entropy(np.array([0.0, 1.0, 0.0])) == 0.0
    assert E.entropy(np.full(4, 0.25)) == pytest.approx(math.log(4), rel=1e-14)
    # putting mass on an impossible latent value gives a bound of -inf, not NaN
    assert E.elbo(lj, np.array([[0.5, 0.5, 0.0]])) == -np.inf


def test_tensors_in_tensors_out(log_joint):
    t = torch.as_tensor(log_joint, dtype=torch.float32)
    q = E.posterior(t)
    assert isinstance(q, torch.Tensor) and q.dtype == torch.float32
    val = E.elbo(t, q)
    assert isinstance(val, torch.Tensor) and val.ndim == 0
    # float32: 1e-4 relative
    assert float(val) == pytest.approx(float(E.log_marginal(t)), rel=1e-4)


def test_bound_touches_log_likelihood_at_theta_prime_and_stays_below():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(-2, 1, 60), rng.normal(2, 1, 140)])
    fn = lambda th: two_gaussians_log_joint(x, th)  # noqa: E731
    grid = np.linspace(-1, 4, 41)
    theta_prime = 1.0
    J, log_p = E.bound(fn, grid, theta_prime, return_log_marginal=True)
    assert J.shape == log_p.shape == (41,)
    assert np.all(J <= log_p + 1e-9)
    at = np.argmin(np.abs(grid - theta_prime))
    assert J[at] == pytest.approx(log_p[at], abs=1e-9)
    assert E.bound(fn, [theta_prime], theta_prime)[0] == pytest.approx(E.log_marginal(fn(theta_prime)), abs=1e-10)
    # away from θ′ the bound is strictly below: it is tight only at θ′
    assert J[0] < log_p[0] - 1e-3
    # the M-step: the maximiser of J(·, θ′) does not lower the likelihood
    assert log_p[np.argmax(J)] >= log_p[at]


@pytest.mark.parametrize("q, match", [
    (np.full((50, 4), 0.3), "sum to 1"),
    (np.full((50, 3), 1 / 3), "shape"),
    (-np.eye(4)[[0] * 50], "non-negative"),
])
def test_bad_q_is_one_clear_line(log_joint, q, match):
    with pytest.raises(ValueError, match=match) as info:
        E.elbo(log_joint, q)
    assert "\n" not in str(info.value)


def test_nan_log_joint_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        E.posterior(np.array([[0.0, np.nan]]))
