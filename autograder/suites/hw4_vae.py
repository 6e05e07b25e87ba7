"""Grading suite of hw4_vae: the pieces of the VAE's loss in PyTorch, and training.

Expected values come from ``course_lib.vae`` (``reparameterize``, ``kl_standard_normal``,
``bernoulli_log_likelihood``, ``gaussian_log_likelihood``); the loss is their batch mean. For training, the
reference is ``course_lib.VAE`` with the notebook's architecture (one hidden layer of 128 units), trained on
the same digits with the same epochs, batch size and learning rate.

Evaluating ``train_vae``. It returns a model, not data, so the sandbox evaluates the model there: after
``model = train_vae(X, latent_dim, epochs, seed)`` the harvest runs :data:`TRAIN_VAE_PROBE` with the
held-out digits and the noise the grader drew (``probe(model, X_eval, eps) -> (mu, logvar, logits)``,
plain tensors), and the judge computes the negative ELBO from those outputs itself. The held-out digits and
noise travel in the case under ``probe_X_eval`` and ``probe_eps`` (see ``Function.probe``). If the model
cannot be evaluated (an output that is not ``(mu, logvar, logits)``) the check scores 0 with that reason.
"""
from __future__ import annotations

import numpy as np

from autograder.suite import Check, CheckResult, Function, Suite, reference_judge

# float32 torch on both sides; sums over up to 64 pixels of O(1) terms: 1e-4 relative, 1e-4 absolute.
RTOL, ATOL = 1e-4, 1e-4
#: The training check: full marks within FULL_NATS of the reference model's negative ELBO (per digit),
#: none at ZERO_NATS above it, linear in between.
FULL_NATS, ZERO_NATS = 2.0, 30.0

_FORBID = ("course_lib.vae", "course_lib.VAE", "torch.distributions")

#: Run in the sandbox on the model ``train_vae`` returned (source of a function; no grader code in it).
TRAIN_VAE_PROBE = '''
def probe(model, X_eval, eps):
    import torch
    with torch.no_grad():
        X_eval = torch.as_tensor(X_eval, dtype=torch.float32)
        mu, logvar = model.encode(X_eval)
        logits = model.decode(mu + torch.exp(0.5 * logvar) * torch.as_tensor(eps, dtype=mu.dtype))
    return mu, logvar, logits
'''


# ---------------------------------------------------------------------------------------------- cases
def _t(a):
    import torch
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _digits(split, n, rng):
    from course_lib.data import load_digits
    X, _ = load_digits(split)
    return X[np.sort(rng.choice(X.shape[0], size=n, replace=False))].astype(np.float32)


def make_cases(rng, visibility):
    """Torch float32 tensors (the notebook works in PyTorch). Visible: small batches; hidden: larger ones,
    extreme logits for the Bernoulli likelihood, a per-pixel log-variance for the Gaussian one."""
    vis = visibility == "visible"
    n, k, d = (5, 2, 8) if vis else (20, 4, 64)
    cases = {"reparameterize": [{"mu": _t(rng.normal(size=(n, k))), "logvar": _t(rng.normal(size=(n, k))),
                                 "eps": _t(rng.normal(size=(n, k)))}],
             "kl_divergence": [{"mu": _t(rng.normal(size=(n, k))), "logvar": _t(rng.normal(size=(n, k)))}]}
    x = _t(rng.random((n, d)) < 0.4)
    logits = rng.normal(scale=3.0, size=(n, d))
    if not vis:
        logits[0, :4] = [-150.0, 150.0, -150.0, 150.0]   # log(sigmoid) underflows unless computed stably
    cases["bernoulli_log_likelihood"] = [{"x": x, "logits": _t(logits)}]
    log_var = _t(rng.normal(size=())) if vis else _t(rng.normal(scale=0.5, size=d))
    cases["gaussian_log_likelihood"] = [{"x": _t(rng.normal(size=(n, d))), "mean": _t(rng.normal(size=(n, d))),
                                         "log_var": log_var}]
    cases["negative_elbo"] = [{"x": _t(rng.random((n, d))), "logits": _t(rng.normal(size=(n, d))),
                               "mu": _t(rng.normal(size=(n, k))), "logvar": _t(rng.normal(size=(n, k)))}]
    latent = 2 if vis else 4
    X_eval = _digits("test", 100 if vis else 200, rng)
    cases["train_vae"] = [{"X": _t(_digits("train", 600, rng)), "latent_dim": latent, "epochs": 10,
                           "seed": int(rng.integers(0, 2**31 - 1)), "probe_X_eval": X_eval,
                           "probe_eps": rng.normal(size=(X_eval.shape[0], latent)).astype(np.float32)}]
    return cases


# ---------------------------------------------------------------------------------------------- references
def _np(t):
    return t.detach().cpu().numpy()


def ref_reparameterize(case):
    from course_lib.vae import reparameterize
    return _np(reparameterize(case["mu"], case["logvar"], case["eps"]))


def ref_kl(case):
    from course_lib.vae import kl_standard_normal
    return _np(kl_standard_normal(case["mu"], case["logvar"]))


def ref_bernoulli(case):
    from course_lib.vae import bernoulli_log_likelihood
    return _np(bernoulli_log_likelihood(case["x"], case["logits"]))


def ref_gaussian(case):
    from course_lib.vae import gaussian_log_likelihood
    return _np(gaussian_log_likelihood(case["x"], case["mean"], case["log_var"]))


def _negative_elbo_per_row(x, logits, mu, logvar):
    from course_lib.vae import bernoulli_log_likelihood, kl_standard_normal
    return kl_standard_normal(_t(mu), _t(logvar)) - bernoulli_log_likelihood(_t(x), _t(logits))


def ref_negative_elbo(case):
    return float(_negative_elbo_per_row(case["x"], case["logits"], case["mu"], case["logvar"]).mean())


_REFERENCE_LOSS: dict = {}


def ref_trained_loss(case):
    """Negative ELBO per held-out digit of course_lib's VAE trained like the notebook's, at the same noise."""
    import torch
    from course_lib import VAE
    key = (int(case["seed"]), int(case["latent_dim"]), int(case["epochs"]), float(case["X"].sum()))
    if key not in _REFERENCE_LOSS:
        model = VAE(case["X"].shape[1], int(case["latent_dim"]), hidden_dims=(128,), random_state=int(case["seed"]),
                    dtype=torch.float32)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)            # a small network: one thread is fastest, and leaves the others alone
        try:
            model.fit(case["X"], epochs=int(case["epochs"]), batch_size=100, lr=1e-3, progress=False)
        finally:
            torch.set_num_threads(threads)
        with torch.no_grad():
            X_eval = _t(case["probe_X_eval"])
            mu, logvar = model.encode(X_eval)
            logits = model.decode(mu + torch.exp(0.5 * logvar) * _t(case["probe_eps"]))
        _REFERENCE_LOSS[key] = float(_negative_elbo_per_row(X_eval, logits, mu, logvar).mean())
    return _REFERENCE_LOSS[key]


# ---------------------------------------------------------------------------------------------- mistakes
def kl_wrong_sign(case):
    return -ref_kl(case)


def negative_elbo_summed(case):
    return float(_negative_elbo_per_row(case["x"], case["logits"], case["mu"], case["logvar"]).sum())


def negative_elbo_wrong_kl_sign(case):
    from course_lib.vae import bernoulli_log_likelihood, kl_standard_normal
    return float((-kl_standard_normal(_t(case["mu"]), _t(case["logvar"]))
                  - bernoulli_log_likelihood(_t(case["x"]), _t(case["logits"]))).mean())


# ---------------------------------------------------------------------------------------------- judges
def _training_judge(case, output, ctx):
    n, k, d = case["probe_X_eval"].shape[0], int(case["latent_dim"]), case["probe_X_eval"].shape[1]
    if not (isinstance(output, (tuple, list)) and len(output) == 3):
        return CheckResult(0.0, "the grader could not evaluate the returned model: train_vae must return the "
                                "trained VAEModel (with encode(x) -> (mu, logvar) and decode(z) -> logits)")
    mu, logvar, logits = (np.asarray(o, dtype=np.float32) for o in output)
    for name, arr, shape in (("mu", mu, (n, k)), ("logvar", logvar, (n, k)), ("logits", logits, (n, d))):
        if arr.shape != shape:
            return CheckResult(0.0, f"model.encode/decode gave {name} of shape {arr.shape}, expected {shape}")
    if not all(np.all(np.isfinite(a)) for a in (mu, logvar, logits)):
        return CheckResult(0.0, "the trained model outputs NaN or infinity on held-out digits")
    got = float(_negative_elbo_per_row(case["probe_X_eval"], logits, mu, logvar).mean())
    ref = ref_trained_loss(case)
    gap = got - ref
    fraction = 1.0 if gap <= FULL_NATS else max(0.0, 1.0 - (gap - FULL_NATS) / (ZERO_NATS - FULL_NATS))
    msg = (f"negative ELBO on held-out digits: {got:.2f} nats per digit; the reference model reaches "
           f"{ref:.2f} (full marks within {FULL_NATS:g} nats, none at {ZERO_NATS:g} above)")
    return CheckResult(fraction, msg)


def _nonnegative_kl(case, output, ctx):
    out = np.asarray(output, dtype=float)
    ok = out.shape == (case["mu"].shape[0],) and bool(np.all(out >= -1e-6))
    return CheckResult(float(ok), "" if ok else "a KL divergence is never negative: check its sign",
                       None if ok else "kl_wrong_sign")


SUITE = Suite(
    name="hw4_vae",
    notebook="assignments/hw4_vae/hw4_vae.ipynb",
    description="The variational autoencoder",
    parameters={"SEED": 0, "EPOCHS": 1, "LATENT_DIM": 2, "N_TRAIN": 200},
    functions={
        "reparameterize": Function(time_budget_s=20, forbidden=_FORBID, description="z = mu + sigma * eps"),
        "kl_divergence": Function(time_budget_s=20, forbidden=_FORBID, description="KL(Q || N(0, I)) per row"),
        "bernoulli_log_likelihood": Function(time_budget_s=20, forbidden=_FORBID,
                                             description="log P(x | z) of a Bernoulli decoder, stably"),
        "gaussian_log_likelihood": Function(time_budget_s=20, forbidden=_FORBID,
                                            description="log P(x | z) of a Gaussian decoder"),
        "negative_elbo": Function(time_budget_s=20, forbidden=_FORBID, description="the loss: batch mean"),
        "train_vae": Function(time_budget_s=60, forbidden=_FORBID, description="training loop",
                              probe=TRAIN_VAE_PROBE),
    },
    make_cases=make_cases,
    checks=[
        Check("reparameterize matches the reference", "reparameterize", 5, "visible",
              reference_judge(ref_reparameterize, rtol=RTOL, atol=ATOL)),
        Check("reparameterize on a larger batch", "reparameterize", 5, "hidden",
              reference_judge(ref_reparameterize, rtol=RTOL, atol=ATOL)),
        Check("kl_divergence matches the reference", "kl_divergence", 8, "visible",
              reference_judge(ref_kl, rtol=RTOL, atol=ATOL, mistakes={"kl_wrong_sign": kl_wrong_sign})),
        Check("kl_divergence is never negative", "kl_divergence", 7, "hidden", _nonnegative_kl),
        Check("bernoulli_log_likelihood matches the reference", "bernoulli_log_likelihood", 8, "visible",
              reference_judge(ref_bernoulli, rtol=RTOL, atol=ATOL)),
        Check("bernoulli_log_likelihood with extreme logits", "bernoulli_log_likelihood", 7, "hidden",
              reference_judge(ref_bernoulli, rtol=RTOL, atol=ATOL)),
        Check("gaussian_log_likelihood with a scalar log-variance", "gaussian_log_likelihood", 8, "visible",
              reference_judge(ref_gaussian, rtol=RTOL, atol=ATOL)),
        Check("gaussian_log_likelihood with a per-pixel log-variance", "gaussian_log_likelihood", 7, "hidden",
              reference_judge(ref_gaussian, rtol=RTOL, atol=ATOL)),
        Check("negative_elbo matches the reference (the batch mean)", "negative_elbo", 8, "visible",
              reference_judge(ref_negative_elbo, rtol=RTOL, atol=ATOL,
                              mistakes={"sum_vs_mean": negative_elbo_summed,
                                        "kl_wrong_sign": negative_elbo_wrong_kl_sign})),
        Check("negative_elbo on a larger batch", "negative_elbo", 7, "hidden",
              reference_judge(ref_negative_elbo, rtol=RTOL, atol=ATOL,
                              mistakes={"sum_vs_mean": negative_elbo_summed})),
        Check("train_vae: negative ELBO of the trained model on held-out digits", "train_vae", 20, "visible",
              _training_judge),
        Check("train_vae with four latent dimensions", "train_vae", 10, "hidden", _training_judge),
    ],
)
