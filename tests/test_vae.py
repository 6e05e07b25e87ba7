"""Tests of course_lib.vae: the ELBO's pieces, the bound itself, training, and input checking."""
import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from course_lib import vae as vae_mod
from course_lib.data import load_digits
from course_lib.factor_analysis import FactorAnalysis
from course_lib.vae import (VAE, bernoulli_log_likelihood, gaussian_log_likelihood, kl_standard_normal,
                            reparameterize)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Small networks run fastest on one thread, and much faster than two threads on a busy machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    Xtr, ytr = load_digits("train")
    Xte, yte = load_digits("test")
    return Xtr, ytr, Xte, yte


@pytest.fixture(scope="module")
def trained(digits):
    Xtr, _, _, _ = digits
    return VAE(64, 4, hidden_dims=(128,), random_state=0).fit(Xtr, epochs=15, progress=False)


# ---- the pieces ------------------------------------------------------------------------------------------
def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(7, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(7, 3, generator=g, dtype=torch.float64)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    got = kl_standard_normal(mu, logvar)
    assert got.shape == (7,)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)   # float64 reference
    assert float(kl_standard_normal(torch.zeros(1, 3), torch.zeros(1, 3))) == 0.0


def test_bernoulli_log_likelihood_matches_torch_and_is_stable():
    g = torch.Generator().manual_seed(1)
    logits = 5 * torch.randn(6, 10, generator=g, dtype=torch.float64)
    x = (torch.rand(6, 10, generator=g, dtype=torch.float64) > 0.5).to(torch.float64)
    expected = Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(bernoulli_log_likelihood(x, logits), expected, rtol=1e-12, atol=1e-12)
    # extreme logits: finite, and log(1 - sigmoid(100)) = -100
    big = torch.tensor([[100.0, -100.0]], dtype=torch.float32)
    out = bernoulli_log_likelihood(torch.tensor([[0.0, 1.0]]), big)
    assert torch.isfinite(out).all() and abs(float(out) + 200.0) < 1e-3
    # broadcasting over a leading sample axis
    assert bernoulli_log_likelihood(x, logits.expand(4, 6, 10)).shape == (4, 6)


@pytest.mark.parametrize("kind", ["float", "scalar", "per_dim", "full"])
def test_gaussian_log_likelihood_matches_torch(kind):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    mean = torch.randn(5, 4, generator=g, dtype=torch.float64)
    log_var = {"float": -0.7, "scalar": torch.tensor(0.3, dtype=torch.float64),
               "per_dim": torch.randn(4, generator=g, dtype=torch.float64),
               "full": torch.randn(5, 4, generator=g, dtype=torch.float64)}[kind]
    lv = torch.as_tensor(log_var, dtype=torch.float64)
    expected = Normal(mean, torch.exp(0.5 * lv)).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_log_likelihood(x, mean, log_var), expected, rtol=1e-12, atol=1e-12)


def test_reparameterize_gradients_flow():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(4, 3, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda m, v: reparameterize(m, v, eps=eps), (mu, logvar))
    z = reparameterize(mu, logvar, eps=eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))
    torch.testing.assert_close(logvar.grad, 0.5 * eps * torch.exp(0.5 * logvar.detach()))
    # drawn noise follows the generator, and has the right moments
    a = reparameterize(torch.zeros(20000, 1), torch.full((20000, 1), math.log(4.0)),
                       generator=torch.Generator().manual_seed(0))
    b = reparameterize(torch.zeros(20000, 1), torch.full((20000, 1), math.log(4.0)),
                       generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert abs(float(a.std()) - 2.0) < 0.05 and abs(float(a.mean())) < 0.05


# ---- the linear-Gaussian case: ELBO <= exact log p(x), and tight after training ---------------------------
def _linear_vae_bound(model, X):
    """Exact ELBO (no Monte Carlo) and exact log p(x) of a linear VAE with Gaussian likelihood."""
    with torch.no_grad():
        mu, logvar = model.encode(X)
        lin = model.decoder[0]
        W, b, log_s2 = lin.weight, lin.bias, model.log_noise_var
        d = X.shape[1]
        sq = ((X - mu @ W.T - b) ** 2).sum(1) + torch.exp(logvar) @ (W ** 2).sum(0)
        expected_log_px_z = -0.5 * d * (math.log(2 * math.pi) + log_s2) - 0.5 * sq / torch.exp(log_s2)
        elbo = expected_log_px_z - kl_standard_normal(mu, logvar)
        # the marginal of z ~ N(0, I), x = W z + b + noise is N(b, W W^T + sigma^2 I)
        cov = W @ W.T + torch.exp(log_s2) * torch.eye(d, dtype=X.dtype)
        log_px = torch.distributions.MultivariateNormal(b, cov).log_prob(X)
    return elbo, log_px


@pytest.fixture(scope="module")
def ppca_data():
    rng = np.random.default_rng(0)
    n, d, k = 500, 5, 2
    W = rng.normal(size=(d, k))
    X = rng.normal(size=(n, k)) @ W.T + rng.normal(size=d) + math.sqrt(0.1) * rng.normal(size=(n, d))
    # maximum-likelihood probabilistic PCA in closed form (Tipping & Bishop): the best any linear VAE can do
    S = np.cov(X.T, bias=True)
    lam, U = np.linalg.eigh(S)
    lam, U = lam[::-1], U[:, ::-1]
    s2 = lam[k:].mean()
    C = U[:, :k] @ np.diag(lam[:k] - s2) @ U[:, :k].T + s2 * np.eye(d)
    mle = -0.5 * (d * math.log(2 * math.pi) + np.linalg.slogdet(C)[1] + np.trace(np.linalg.solve(C, S)))
    return torch.tensor(X), k, mle


def test_linear_vae_elbo_never_exceeds_log_px_and_gets_close(ppca_data):
    X, k, mle = ppca_data
    model = VAE(X.shape[1], k, hidden_dims=(), likelihood="gaussian", random_state=0)
    # before training: still a bound, for every example (float64, so 1e-9 is rounding only)
    elbo0, logp0 = _linear_vae_bound(model.to(torch.float64), X)
    assert bool((elbo0 <= logp0 + 1e-9).all())
    model.fit(X, epochs=300, batch_size=X.shape[0], lr=0.03, progress=False)
    model.fit(X, epochs=300, batch_size=X.shape[0], lr=0.003, progress=False)
    assert model.encoder[0].weight.dtype == torch.float64          # followed the float64 tensor
    elbo, logp = _linear_vae_bound(model, X)
    assert bool((elbo <= logp + 1e-9).all())
    gap = float((logp - elbo).mean())
    # The diagonal Q can match the exact posterior (the decoder can rotate W so it is diagonal), so the gap
    # closes; 0.05 nats/example leaves room for the noise of one-sample stochastic gradients.
    assert gap < 0.05, gap
    # and the model it learned is (nearly) the maximum-likelihood pPCA
    assert float(logp.mean()) <= mle + 1e-9
    assert float(logp.mean()) > mle - 0.01, (float(logp.mean()), mle)
    # the model's Monte Carlo ELBO estimates the exact one
    with torch.no_grad():
        mc = model.elbo(X, n_samples=200, random_state=0)
    assert abs(float(mc.mean()) - float(elbo.mean())) < 0.01
    # the importance-weighted estimate lands between the ELBO and log p(x)
    iw = float(model.log_likelihood(X, k=200, random_state=0).mean())
    assert float(elbo.mean()) - 0.005 < iw < float(logp.mean()) + 0.005


@pytest.mark.filterwarnings("ignore:FactorAnalysis did not converge")
def test_linear_vae_against_factor_analysis(ppca_data):
    X, k, _ = ppca_data
    model = VAE(X.shape[1], k, hidden_dims=(), likelihood="gaussian", noise_variance="learned_diagonal",
                random_state=0)
    model.fit(X, epochs=300, batch_size=X.shape[0], lr=0.03, progress=False)
    model.fit(X, epochs=300, batch_size=X.shape[0], lr=0.003, progress=False)
    fa = FactorAnalysis(n_components=k, random_state=0).fit(X.numpy())
    fa_mean = float(np.mean(np.asarray(fa.score_samples(X.numpy()))))
    with torch.no_grad():
        elbo = float(model.elbo(X, n_samples=200, random_state=0).mean())
    # factor analysis is the maximum-likelihood model of this family: the VAE's bound stays below it
    # (0.01: Monte Carlo error of the ELBO estimate and FA's convergence tolerance) and gets close
    assert elbo < fa_mean + 0.01
    assert elbo > fa_mean - 0.1


# ---- training on digits ------------------------------------------------------------------------------------
def test_fit_lowers_the_loss(digits, trained):
    _, _, Xte, _ = digits
    fresh = VAE(64, 4, hidden_dims=(128,), random_state=0)
    before = -float(np.mean(fresh.elbo(Xte, random_state=0)))
    after = -float(np.mean(trained.elbo(Xte, random_state=0)))
    hist = trained.history_["loss"]
    assert len(hist) == 15 and hist[-1] < hist[0] - 5
    assert after < before - 10, (before, after)
    assert after < 40   # a 4-D latent VAE on 8x8 digits is near 30 nats after 15 epochs


def test_iw_log_likelihood_bounds_elbo_and_grows_with_k(digits, trained):
    _, _, Xte, _ = digits
    elbo = float(np.mean(trained.elbo(Xte, n_samples=20, random_state=1)))
    ll1 = float(np.mean(trained.log_likelihood(Xte, k=1, random_state=2)))
    ll5 = float(np.mean(trained.log_likelihood(Xte, k=5, random_state=3)))
    ll200 = trained.log_likelihood(Xte, k=200, random_state=4)
    assert ll200.shape == (Xte.shape[0],) and np.isfinite(ll200).all()
    ll200 = float(np.mean(ll200))
    assert abs(ll1 - elbo) < 0.5           # k = 1 is an unbiased estimate of the ELBO
    assert elbo < ll5 < ll200              # tighter with more samples
    assert ll200 > elbo + 0.1


def test_iw_log_likelihood_in_small_chunks(digits, trained, monkeypatch):
    _, _, Xte, _ = digits
    whole = float(np.mean(trained.log_likelihood(Xte[:100], k=64, random_state=0)))
    monkeypatch.setattr(vae_mod, "_IW_BUDGET", 100 * 128 * 3)      # forces chunks of 3 samples
    chunked = trained.log_likelihood(Xte[:100], k=64, random_state=0, batch_size=40)
    assert chunked.shape == (100,) and np.isfinite(chunked).all()
    assert abs(float(np.mean(chunked)) - whole) < 0.5


def test_seeded_fit_is_reproducible(digits):
    Xtr = digits[0][:300]
    a = VAE(64, 3, hidden_dims=(32,), random_state=7).fit(Xtr, epochs=3, batch_size=64, progress=False)
    b = VAE(64, 3, hidden_dims=(32,), random_state=7).fit(Xtr, epochs=3, batch_size=64, progress=False)
    c = VAE(64, 3, hidden_dims=(32,), random_state=8).fit(Xtr, epochs=3, batch_size=64, progress=False)
    assert a.history_ == b.history_
    for (_, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q)
    assert a.history_ != c.history_
    np.testing.assert_array_equal(a.sample(4, random_state=0), b.sample(4, random_state=0))


def test_validation_history_and_outputs(digits):
    Xtr, _, Xte, _ = digits
    model = VAE(64, 2, hidden_dims=(32,), random_state=0)
    assert model.fit(Xtr[:200], epochs=2, validation_data=Xte[:50], progress=False) is model
    assert set(model.history_) == {"loss", "val_loss"} and len(model.history_["val_loss"]) == 2
    assert model.encoder[0].weight.dtype == torch.float32           # NumPy data: float32 networks
    # NumPy in -> NumPy float64 out; tensor in -> tensor out
    mu, logvar = model.encode(Xte[:5])
    assert isinstance(mu, np.ndarray) and mu.dtype == np.float64 and mu.shape == logvar.shape == (5, 2)
    e = model.elbo(torch.tensor(Xte[:5]))
    assert isinstance(e, torch.Tensor) and e.shape == (5,) and e.requires_grad
    rec = model.reconstruct(Xte[:5])
    assert rec.shape == (5, 64) and rec.min() >= 0 and rec.max() <= 1
    logits = model.decode(np.zeros((3, 2)))
    assert logits.shape == (3, 64)
    np.testing.assert_allclose(model.sample(3, random_state=1), model.sample(3, random_state=1))
    assert model.sample(3).shape == (3, 64)
    grid = model.latent_traversal(dims=(0, 1), steps=5, span=2.0)
    assert grid.shape == (5, 5, 8, 8) and grid.min() >= 0 and grid.max() <= 1
    # the centre of a 5-step grid is z = 0
    centre = 1 / (1 + np.exp(-model.decode(np.zeros((1, 2)))[0]))
    np.testing.assert_allclose(grid[2, 2], centre.reshape(8, 8), rtol=1e-6)
    assert model.latent_traversal(dims=(1,), steps=4).shape == (4, 8, 8)
    assert model.latent_traversal(steps=3, as_image=True).shape == (24, 24)
    loss = model.loss(torch.tensor(Xtr[:16]))
    loss.backward()
    assert loss.ndim == 0 and model.decoder[0].weight.grad is not None


def test_loss_is_the_mean_negative_elbo(digits):
    X = torch.tensor(digits[0][:20])
    model = VAE(64, 2, hidden_dims=(16,), random_state=0)
    torch.testing.assert_close(model.loss(X, random_state=5), -model.elbo(X, random_state=5).mean())


def test_gaussian_vae_learns_noise_variance():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)) * np.array([1.0, 0.5, 0.2])
    model = VAE(3, 1, hidden_dims=(16,), likelihood="gaussian", random_state=0)
    model.fit(X, epochs=40, batch_size=100, lr=1e-2, progress=False)
    assert model.log_noise_var.item() < -0.5                      # started at log 1 = 0
    fixed = VAE(3, 1, hidden_dims=(16,), likelihood="gaussian", noise_variance=0.5, random_state=0)
    fixed.fit(X, epochs=2, progress=False)
    assert abs(float(fixed.log_noise_var) - math.log(0.5)) < 1e-6
    assert "log_noise_var" not in dict(fixed.named_parameters())


def test_conditional_vae(digits):
    Xtr, ytr, Xte, yte = digits
    model = VAE(64, 2, hidden_dims=(64,), num_classes=10, random_state=0)
    model.fit(Xtr[:400], ytr[:400], epochs=3, validation_data=(Xte[:50], yte[:50]), progress=False)
    assert len(model.history_["val_loss"]) == 3
    assert model.elbo(Xte[:10], yte[:10]).shape == (10,)
    assert model.log_likelihood(Xte[:10], yte[:10], k=4).shape == (10,)
    assert model.sample(5, y=3).shape == (5, 64)
    assert model.sample(2, y=[0, 9]).shape == (2, 64)
    assert model.latent_traversal(steps=3, y=7).shape == (3, 3, 8, 8)
    with pytest.raises(ValueError, match="needs labels"):
        model.elbo(Xte[:10])
    with pytest.raises(ValueError, match="outside 0..9"):
        model.elbo(Xte[:2], np.array([0, 10]))
    with pytest.raises(ValueError, match="shape"):
        model.elbo(Xte[:2], np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="not conditional"):
        VAE(64, 2, hidden_dims=(8,)).elbo(Xte[:2], np.array([0, 1]))


@pytest.mark.parametrize("call, match", [
    (lambda: VAE(64, 0), "latent_dim"),
    (lambda: VAE(64, -2), "latent_dim"),
    (lambda: VAE(0, 2), "input_dim"),
    (lambda: VAE(64, 2, hidden_dims=(8, 0)), "hidden_dims"),
    (lambda: VAE(64, 2, likelihood="poisson"), "likelihood"),
    (lambda: VAE(64, 2, noise_variance=0.1), "gaussian"),
    (lambda: VAE(64, 2, likelihood="gaussian", noise_variance=-1.0), "noise_variance"),
    (lambda: VAE(64, 2, num_classes=1), "num_classes"),
])
def test_bad_parameters(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_data():
    model = VAE(4, 2, hidden_dims=(8,), random_state=0)
    X = np.full((10, 4), 0.5)
    with pytest.raises(ValueError, match="4 features|input_dim=4"):
        model.fit(np.full((10, 3), 0.5), progress=False)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad, progress=False)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        model.fit(X * 3, progress=False)
    with pytest.raises(ValueError, match="epochs="):
        model.fit(X, 5)
    with pytest.raises(ValueError, match="epochs"):
        model.fit(X, epochs=0)
    with pytest.raises(ValueError, match="latent_dim=2"):
        model.decode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="k="):
        model.log_likelihood(X, k=0)
    # a Gaussian model takes any real data
    VAE(4, 2, hidden_dims=(8,), likelihood="gaussian").fit(X * 3 - 7, epochs=1, progress=False)


@pytest.mark.cuda
def test_cuda_fit_follows_the_data(digits):
    Xtr, _, Xte, _ = digits
    X = torch.tensor(Xtr[:512], dtype=torch.float32, device="cuda")
    model = VAE(64, 4, hidden_dims=(64,), random_state=0).fit(X, epochs=3, progress=False)
    assert model.encoder[0].weight.is_cuda
    e = model.elbo(X[:10])
    assert e.is_cuda and e.shape == (10,)
    assert model.log_likelihood(X[:10], k=16).is_cuda
    assert isinstance(model.elbo(Xte[:3]), np.ndarray)
    assert model.history_["loss"][-1] < model.history_["loss"][0]


def test_benchmark_smoke_setting_runs():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_vae.py"
    spec = importlib.util.spec_from_file_location("bench_vae", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.main(["--quick"])
    d = res["digits"]
    assert abs(d["nelbo_diff"]) < 2 and d["ours_epoch_s"] > 0 and d["plain_epoch_s"] > 0
    assert res["synthetic"]["time_ratio"] > 0
