"""EM for a Gaussian from rows with missing entries."""
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import course_lib.missing_data as md
from course_lib import MissingDataGaussian, mle

MU = np.array([1.0, -1.0, 0.5, 2.0])
SIGMA = np.array([[2.0, 0.8, 0.3, 0.0],
                  [0.8, 1.5, 0.5, 0.2],
                  [0.3, 0.5, 1.0, 0.4],
                  [0.0, 0.2, 0.4, 1.2]])


def data(n=2000, frac=0.3, seed=0):
    """Gaussian rows with about ``frac`` of the entries missing completely at random (no empty rows)."""
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal(MU, SIGMA, size=n)
    Xm = X.copy()
    Xm[rng.random(X.shape) < frac] = np.nan
    empty = np.isnan(Xm).all(1)
    Xm[empty, 0] = X[empty, 0]
    return X, Xm


def em_step_reference(Xm, mean, cov):
    """One EM update written row by row with NumPy, straight from the formulas."""
    n, d = Xm.shape
    completed = np.empty_like(Xm)
    correction = np.zeros((d, d))
    for i, x in enumerate(Xm):
        m = np.isnan(x)
        o = ~m
        xh = x.copy()
        if m.any():
            K = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
            xh[m] = mean[m] + K @ (x[o] - mean[o])
            correction[np.ix_(m, m)] += cov[np.ix_(m, m)] - K @ cov[np.ix_(o, m)]
        completed[i] = xh
    new_mean = completed.mean(0)
    new_cov = (completed.T @ completed + correction) / n - np.outer(new_mean, new_mean)
    return new_mean, new_cov


def observed_loglik_reference(Xm, mean, cov):
    out = np.empty(len(Xm))
    for i, x in enumerate(Xm):
        o = ~np.isnan(x)
        out[i] = multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(x[o]) if o.any() else 0.0
    return out


@pytest.fixture(scope="module")
def fitted():
    X, Xm = data()
    return X, Xm, MissingDataGaussian().fit(Xm)


# ---------------------------------------------------------------------------------------------------------
# the algorithm
# ---------------------------------------------------------------------------------------------------------
def test_likelihood_never_decreases(fitted):
    _, _, model = fitted
    ll = np.asarray(model.log_likelihoods_)
    assert model.converged_ and len(ll) == model.n_iter_ + 1 and model.n_iter_ > 3
    # float64: allow rounding, relative 1e-9
    assert np.all(np.diff(ll) >= -1e-9 * np.abs(ll[:-1]))
    assert ll[-1] > ll[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_one_update_equals_the_row_by_row_formulas(seed):
    _, Xm = data(n=300, seed=seed)
    mean = np.array([0.5, -0.5, 0.0, 1.5])
    cov = SIGMA * 0.7 + 0.3 * np.eye(4)
    ref_mean, ref_cov = em_step_reference(Xm, mean, cov)
    ours_mean, ours_cov = md.MissingDataGaussian._m_step(
        *md.MissingDataGaussian._e_step(md._Layout(torch.as_tensor(Xm)), torch.as_tensor(mean),
                                        torch.as_tensor(cov), None)[1])
    np.testing.assert_allclose(ours_mean.numpy(), ref_mean, atol=1e-10)
    np.testing.assert_allclose(ours_cov.numpy(), ref_cov, atol=1e-10)


def test_first_iteration_from_the_documented_start():
    _, Xm = data(n=300)
    start_mean = np.nanmean(Xm, 0)
    start_cov = np.diag(np.nanvar(Xm, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MissingDataGaussian(max_iter=1).fit(Xm)
    ref_mean, ref_cov = em_step_reference(Xm, start_mean, start_cov)
    np.testing.assert_allclose(model.mean_, ref_mean, atol=1e-10)
    np.testing.assert_allclose(model.covariance_, ref_cov, atol=1e-10)
    assert model.log_likelihoods_[0] == pytest.approx(
        observed_loglik_reference(Xm, start_mean, start_cov).sum(), rel=1e-12)
    assert model.log_likelihoods_[1] == pytest.approx(
        observed_loglik_reference(Xm, ref_mean, ref_cov).sum(), rel=1e-12)


def test_both_ways_of_grouping_rows_agree(monkeypatch):
    _, Xm = data(n=500)
    # one batched product over rows
    monkeypatch.setattr(md, "_ROWS_X_WORK_PER_PATTERN", 10**12)
    a = MissingDataGaussian().fit(Xm)
    assert md._Layout(torch.as_tensor(Xm)).gather
    # a loop over patterns, with a gather chunk smaller than the data
    monkeypatch.setattr(md, "_ROWS_X_WORK_PER_PATTERN", 0)
    monkeypatch.setattr(md, "_GATHER_CHUNK", 100)
    b = MissingDataGaussian().fit(Xm)
    assert not md._Layout(torch.as_tensor(Xm)).gather
    np.testing.assert_allclose(a.mean_, b.mean_, atol=1e-12)
    np.testing.assert_allclose(a.covariance_, b.covariance_, atol=1e-12)
    assert a.n_iter_ == b.n_iter_


def test_no_missing_entries_is_the_plain_mle_in_one_step():
    X, _ = data(n=500)
    mean, cov = mle.gaussian(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = MissingDataGaussian(max_iter=1).fit(X)
    np.testing.assert_allclose(one.mean_, mean, atol=1e-12)
    np.testing.assert_allclose(one.covariance_, cov, atol=1e-12)
    full = MissingDataGaussian().fit(X)
    assert full.converged_ and full.n_iter_ == 2          # the second update changes nothing
    np.testing.assert_allclose(full.covariance_, cov, atol=1e-12)
    assert full.log_likelihoods_[-1] == pytest.approx(mle.gaussian_log_likelihood(X, mean, cov), rel=1e-12)


def test_estimates_near_the_truth_with_30_percent_missing(fitted):
    X, Xm, model = fitted
    assert 0.25 < np.isnan(Xm).mean() < 0.35
    np.testing.assert_allclose(model.mean_, MU, atol=0.12)
    np.testing.assert_allclose(model.covariance_, SIGMA, atol=0.2)
    # and it beats the naive fixes: mean imputation shrinks the variances
    mean_imputed = np.where(np.isnan(Xm), np.nanmean(Xm, 0), Xm)
    naive_var = mean_imputed.var(0)
    assert np.all(np.abs(np.diag(model.covariance_) - np.diag(SIGMA)) < np.abs(naive_var - np.diag(SIGMA)))


# ---------------------------------------------------------------------------------------------------------
# after fitting
# ---------------------------------------------------------------------------------------------------------
def test_score_samples_and_score(fitted):
    _, Xm, model = fitted
    rows = Xm[:200]
    ref = observed_loglik_reference(rows, model.mean_, model.covariance_)
    np.testing.assert_allclose(model.score_samples(rows), ref, atol=1e-9)
    assert model.score(Xm) == pytest.approx(model.score_samples(Xm).mean(), rel=1e-12)
    assert model.score(Xm) * len(Xm) == pytest.approx(model.log_likelihoods_[-1], rel=1e-12)
    assert model.score_samples(np.full((1, 4), np.nan))[0] == 0.0


def test_impute(fitted):
    X, Xm, model = fitted
    before = Xm.copy()
    filled = model.impute(Xm)
    assert filled.shape == Xm.shape and not np.isnan(filled).any()
    np.testing.assert_array_equal(Xm, before)                           # input untouched
    obs = ~np.isnan(Xm)
    np.testing.assert_array_equal(filled[obs], Xm[obs])                 # observed entries unchanged
    # a row with entries 1 and 3 missing: the conditional mean by hand
    x = np.array([0.3, np.nan, -0.2, np.nan])
    mu, S = model.mean_, model.covariance_
    o, m = [0, 2], [1, 3]
    expected = mu[m] + S[np.ix_(m, o)] @ np.linalg.solve(S[np.ix_(o, o)], x[o] - mu[o])
    np.testing.assert_allclose(model.impute(x[None])[0, m], expected, atol=1e-12)
    np.testing.assert_allclose(model.impute(np.full((1, 4), np.nan))[0], mu, atol=1e-12)
    # conditional means are better guesses than column means
    err_em = np.abs(filled - X)[~obs].mean()
    err_mean = np.abs(np.nanmean(Xm, 0)[None].repeat(len(X), 0) - X)[~obs].mean()
    assert err_em < err_mean


def test_tensor_in_tensor_out():
    _, Xm = data(n=400)
    Xt = torch.as_tensor(Xm, dtype=torch.float32)
    model = MissingDataGaussian().fit(Xt)
    assert isinstance(model.mean_, torch.Tensor) and model.covariance_.dtype == torch.float32
    filled = model.impute(Xt)
    assert isinstance(filled, torch.Tensor) and filled.dtype == torch.float32
    assert torch.equal(filled[~torch.isnan(Xt)], Xt[~torch.isnan(Xt)])
    ref = MissingDataGaussian().fit(Xm)
    np.testing.assert_allclose(model.covariance_.numpy(), ref.covariance_, atol=1e-3)   # float32 arithmetic


# ---------------------------------------------------------------------------------------------------------
# sampling completion
# ---------------------------------------------------------------------------------------------------------
def test_sampling_completion_is_seeded_and_sensible():
    _, Xm = data(n=1000)
    a = MissingDataGaussian(completion="sampling", max_iter=15, random_state=3).fit(Xm)
    b = MissingDataGaussian(completion="sampling", max_iter=15, random_state=3).fit(Xm)
    c = MissingDataGaussian(completion="sampling", max_iter=15, random_state=4).fit(Xm)
    np.testing.assert_array_equal(a.covariance_, b.covariance_)
    assert a.log_likelihoods_ == b.log_likelihoods_
    assert not np.array_equal(a.covariance_, c.covariance_)
    assert len(a.log_likelihoods_) == a.n_iter_ + 1
    # stochastic EM hovers around the EM solution
    exact = MissingDataGaussian().fit(Xm)
    np.testing.assert_allclose(a.mean_, exact.mean_, atol=0.1)
    np.testing.assert_allclose(a.covariance_, exact.covariance_, atol=0.25)
    assert a.log_likelihoods_[-1] > a.log_likelihoods_[0]


# ---------------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------------
def test_fully_missing_rows_are_named():
    _, Xm = data(n=50)
    Xm[[4, 17]] = np.nan
    with pytest.raises(ValueError, match=r"rows 4, 17") as info:
        MissingDataGaussian().fit(Xm)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"completion": "mean"}, "completion"),
    ({"max_iter": 0}, "max_iter"),
    ({"tol": -1.0}, "tol"),
])
def test_bad_hyperparameters(kwargs, match):
    _, Xm = data(n=50)
    with pytest.raises(ValueError, match=match):
        MissingDataGaussian(**kwargs).fit(Xm)


def test_bad_data():
    _, Xm = data(n=50)
    thin = Xm.copy()
    thin[1:, 2] = np.nan
    thin[0, :] = [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="feature 2"):
        MissingDataGaussian().fit(thin)
    inf = Xm.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        MissingDataGaussian().fit(inf)
    X, _ = data(n=50)
    with pytest.raises(ValueError, match="collinear"):
        MissingDataGaussian().fit(np.column_stack([X[:, :2], X[:, 0]]))      # a duplicated feature
    model = MissingDataGaussian().fit(Xm)
    with pytest.raises(ValueError, match="features"):
        model.impute(Xm[:, :3])


@pytest.mark.cuda
def test_on_cuda():
    _, Xm = data(n=1000)
    Xt = torch.as_tensor(Xm, device="cuda")
    model = MissingDataGaussian().fit(Xt)
    assert model.mean_.device.type == "cuda"
    ref = MissingDataGaussian().fit(Xm)
    np.testing.assert_allclose(model.covariance_.cpu().numpy(), ref.covariance_, atol=1e-9)
    assert model.impute(Xt).device.type == "cuda"
    s = MissingDataGaussian(completion="sampling", max_iter=5, random_state=0).fit(Xt)
    t = MissingDataGaussian(completion="sampling", max_iter=5, random_state=0).fit(Xt)
    assert torch.equal(s.covariance_, t.covariance_)
