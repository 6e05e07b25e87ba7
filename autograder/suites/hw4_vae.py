"""Grading suite of hw4_vae: the pieces of the VAE's loss in PyTorch, and training.

Expected values come from ``course_lib.vae`` (``reparameterize``, ``kl_standard_normal``,
``bernoulli_log_likelihood``, ``gaussian_log_likelihood``); the loss is their batch mean. For training, the
reference is ``course_lib.VAE`` with the notebook's architecture (one hidden layer of 128 units), trained on
the same data with the same epochs, batch size and learning rate.

The training data. Each ``train_vae`` case draws a generative model of its own from the case's random
generator (:func:`_random_vae_data`: z ~ N(0, I_k) with k the case's ``latent_dim``, a random ReLU layer, large
random logits of 64 binary pixels) and samples ``TRAIN_ROWS`` training rows and 100 (visible) or 200
(hidden) held-out rows from it. No model can be fitted to such data in advance: a ``train_vae`` that ignores
``X`` and returns weights trained elsewhere (on public digits, however their pixels were shuffled, or on data
of another random model) or untrained ones scores 0. Public digits with secretly permuted pixels did not do
that: the rows were exactly public digits, so the permutation could be recovered in the sandbox and weights
trained offline permuted to match.

Evaluating ``train_vae``. It returns a model, not data. The sandbox runs :data:`TRAIN_VAE_PROBE` on it,
which returns the trained weights of the notebook's ``VAEModel`` (plain tensors, in a fixed order), and the
judge loads them into course_lib's VAE of the same architecture and computes the negative ELBO on the
held-out rows at noise it drew itself. Neither the held-out rows nor the noise ever enter the sandbox (they
travel in the case under ``_X_eval`` and ``_eps``, which only the judge sees), so the student's code cannot
evaluate, or memorise, what it is scored on: a model that remembers what its encoder saw and decodes it
back gains nothing, since its own ``encode``/``decode`` are never called on them. A model that is not the
notebook's ``VAEModel`` (one hidden layer, ``to_mu``/``to_logvar`` heads) cannot be evaluated and scores 0
with that reason.

Scoring ``train_vae``. A decoder that ignores z does best with constant logits at the held-out rows' pixel
means (and KL = 0): that model needs no training, only the pixel means. Its negative ELBO is the baseline:
a model no better than it scores 0, one that gains at least ``FULL_SHARE`` of the reference's gain over it
gets full marks, linearly in between. Measured over ten cases of each latent size: the reference beats the
baseline by 7.9 to 15.4 nats per row (baselines of 24 to 36 nats), the notebook's ``train_vae`` gains 88 to
103 % of that and gets full marks on every case, and one trained for 10 epochs still does; after 3 epochs
it scores at most 0.1, after one 0, as do models trained on public digits or on another random model's data,
and untrained ones. A case trains in about a second.

The KL check ("never negative") is credited only together with the reference value: zeros are never
negative either.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from autograder.suite import Check, CheckResult, Function, Suite, invariant_judge, reference_judge
from autograder.suites._common import as_numpy as _np
from autograder.suites._common import as_tensor

# float32 torch on both sides; sums over up to 64 pixels of O(1) terms: 1e-4 relative, 1e-4 absolute.
RTOL, ATOL = 1e-4, 1e-4
#: The training check: full marks for a model that gains FULL_SHARE of the reference's gain over the best
#: decoder that ignores z (in negative ELBO per held-out row), none without gain, linear in between.
FULL_SHARE = 0.5
#: The training case: rows and epochs enough for a trained model to beat that baseline by far.
TRAIN_ROWS, TRAIN_EPOCHS = 1500, 40
#: The random generative model of the training case's data (see :func:`_random_vae_data`): binary pixels,
#: hidden units, and the scale of the logits (large: the pixels depend strongly on z).
GEN_PIXELS, GEN_HIDDEN, GEN_SCALE = 64, 32, 6.0
#: The widest hidden layer the judge evaluates (the notebook's VAEModel has 128 units).
MAX_HIDDEN = 4096

_FORBID = ("course_lib.vae", "course_lib.VAE", "torch.distributions")

#: Run in the sandbox on the model ``train_vae`` returned (source of a function; no grader code in it): the
#: weights and biases of the notebook's VAEModel, in the order of :data:`WEIGHT_NAMES`.
TRAIN_VAE_PROBE = '''
def probe(model):
    layers = (model.encoder[0], model.to_mu, model.to_logvar, model.decoder[0], model.decoder[2])
    return tuple(p.detach().cpu().float().clone() for layer in layers for p in (layer.weight, layer.bias))
'''

#: What the probe returns, in order: (name, shape) with d = pixels, k = latent_dim, H = hidden units.
WEIGHT_NAMES = (("encoder.0.weight", ("H", "d")), ("encoder.0.bias", ("H",)), ("to_mu.weight", ("k", "H")),
                ("to_mu.bias", ("k",)), ("to_logvar.weight", ("k", "H")), ("to_logvar.bias", ("k",)),
                ("decoder.0.weight", ("H", "k")), ("decoder.0.bias", ("H",)), ("decoder.2.weight", ("d", "H")),
                ("decoder.2.bias", ("d",)))


# ---------------------------------------------------------------------------------------------- cases
_t = partial(as_tensor, dtype=np.float32)       # the notebook works in float32 torch


def _random_vae_data(rng, latent_dim, sizes):
    """Binary data of a generative model drawn at random from ``rng``, one (n, GEN_PIXELS) float32 array per
    n in ``sizes``, all from the same model: z ~ N(0, I_k) with k = ``latent_dim``, h = ReLU(z A + a) with
    GEN_HIDDEN units, logits = GEN_SCALE * h B / sqrt(GEN_HIDDEN) + c, and x ~ Bernoulli(sigmoid(logits)),
    where A, a, B and c are standard normal."""
    A, a = rng.normal(size=(latent_dim, GEN_HIDDEN)), rng.normal(size=GEN_HIDDEN)
    B, c = rng.normal(size=(GEN_HIDDEN, GEN_PIXELS)), rng.normal(size=GEN_PIXELS)
    z = rng.normal(size=(sum(sizes), latent_dim))
    logits = GEN_SCALE * np.maximum(z @ A + a, 0.0) @ B / np.sqrt(GEN_HIDDEN) + c
    X = (rng.random(logits.shape) < 1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    return np.split(X, np.cumsum(sizes)[:-1])


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
    X_train, X_eval = _random_vae_data(rng, latent, (TRAIN_ROWS, 100 if vis else 200))   # see the docstring
    seed = int(rng.integers(0, 2**31 - 1))
    eps = rng.normal(size=(X_eval.shape[0], latent)).astype(np.float32)
    cases["train_vae"] = [{"X": _t(X_train), "latent_dim": latent, "epochs": TRAIN_EPOCHS, "seed": seed,
                           "_X_eval": X_eval, "_eps": eps}]
    return cases


# ---------------------------------------------------------------------------------------------- references
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


def _held_out_loss(model, case) -> float:
    """Negative ELBO per held-out row of a course_lib VAE, at the case's noise (computed in the judge)."""
    import torch
    with torch.no_grad():
        X_eval = _t(case["_X_eval"])
        mu, logvar = model.encode(X_eval)
        logits = model.decode(mu + torch.exp(0.5 * logvar) * _t(case["_eps"]))
        return float(_negative_elbo_per_row(X_eval, logits, mu, logvar).mean())


def constant_decoder_loss(X_eval) -> float:
    """The lowest negative ELBO per row of any model whose decoder ignores z, on ``X_eval`` (n, d): KL = 0
    and constant logits at the pixel means m, i.e. the sum over pixels of -(m log m + (1 - m) log(1 - m))."""
    m = np.asarray(X_eval, dtype=np.float64).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -(np.where(m > 0, m * np.log(m), 0.0) + np.where(m < 1, (1 - m) * np.log1p(-m), 0.0))
    return float(entropy.sum())


#: The reference models of the latest cases (several checks score one case): a batch's judge process grades
#: submission after submission, each with cases of its own, so only the newest few are kept.
_REFERENCE_MODELS: dict = {}
_KEEP_MODELS = 8


def ref_trained_loss(case):
    """Negative ELBO per held-out row of course_lib's VAE trained like the notebook's, at the same noise."""
    import hashlib

    import torch
    from course_lib import VAE
    X = np.asarray(_np(_t(case["X"])))
    key = (int(case["seed"]), int(case["latent_dim"]), int(case["epochs"]), hashlib.sha256(X.tobytes()).hexdigest())
    if key not in _REFERENCE_MODELS:
        model = VAE(X.shape[1], int(case["latent_dim"]), hidden_dims=(128,), random_state=int(case["seed"]),
                    dtype=torch.float32)
        # Trained with the process's threads as they are: the judge process starts with OMP_NUM_THREADS=1
        # (autograder.judge), and torch.set_num_threads would change a process-wide setting.
        model.fit(case["X"], epochs=int(case["epochs"]), batch_size=100, lr=1e-3, progress=False)
        _REFERENCE_MODELS[key] = model
        while len(_REFERENCE_MODELS) > _KEEP_MODELS:
            del _REFERENCE_MODELS[next(iter(_REFERENCE_MODELS))]      # the oldest
    return _held_out_loss(_REFERENCE_MODELS[key], case)


def model_from_weights(weights, input_dim: int, latent_dim: int):
    """course_lib's VAE holding the weights the probe returned (the notebook's VAEModel has the same layers:
    Linear-ReLU-[Linear to mu, Linear to logvar] and Linear-ReLU-Linear). ValueError (one line) on anything
    else: a wrong number of arrays, shapes that are not one network's, NaN or infinity."""
    import torch
    from course_lib import VAE
    if not isinstance(weights, (tuple, list)) or len(weights) != len(WEIGHT_NAMES):
        raise ValueError(f"train_vae must return the notebook's VAEModel (the grader reads its "
                         f"{len(WEIGHT_NAMES)} weights and biases; got {type(weights).__name__})")
    arrays = [np.asarray(w, dtype=np.float32) for w in weights]
    d, k = int(input_dim), int(latent_dim)
    H = arrays[0].shape[0] if arrays[0].ndim == 2 else 0
    dims = {"d": d, "k": k, "H": H}
    for (name, symbols), a in zip(WEIGHT_NAMES, arrays):
        want = tuple(dims[c] for c in symbols)
        if a.shape != want or not 0 < H <= MAX_HIDDEN:
            raise ValueError(f"the model's {name} has shape {a.shape}, expected ({', '.join(symbols)}) = {want} "
                             f"with H <= {MAX_HIDDEN}: train_vae must return the notebook's VAEModel")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"the model's {name} contains NaN or infinity")
    W1, b1, Wm, bm, Wv, bv, D1, c1, D2, c2 = (torch.from_numpy(a) for a in arrays)
    model = VAE(d, k, hidden_dims=(H,), random_state=0, dtype=torch.float32)
    model.load_state_dict({"encoder.0.weight": W1, "encoder.0.bias": b1,
                           "encoder.2.weight": torch.cat([Wm, Wv]), "encoder.2.bias": torch.cat([bm, bv]),
                           "decoder.0.weight": D1, "decoder.0.bias": c1, "decoder.2.weight": D2,
                           "decoder.2.bias": c2})
    return model


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
    """The trained weights, evaluated by the judge on held-out rows the sandbox never saw: the share of the
    reference's gain over the best decoder that ignores z (see the module docstring)."""
    try:
        model = model_from_weights(output, case["_X_eval"].shape[1], int(case["latent_dim"]))
    except ValueError as exc:
        return CheckResult(0.0, str(exc))
    got = _held_out_loss(model, case)
    if not np.isfinite(got):
        return CheckResult(0.0, "the trained model's negative ELBO on held-out data is not finite")
    ref, base = ref_trained_loss(case), constant_decoder_loss(case["_X_eval"])
    if not ref < base:
        raise RuntimeError(f"the reference VAE ({ref:.2f}) does not beat constant logits ({base:.2f}) on this case")
    fraction = min(1.0, max(0.0, (base - got) / (FULL_SHARE * (base - ref))))
    msg = (f"negative ELBO on held-out data: {got:.2f} nats per row; the reference model reaches {ref:.2f}, "
           f"a decoder that ignores z at best {base:.2f} (full marks for {FULL_SHARE:.0%} of the reference's "
           f"gain over it, none without gain)")
    return CheckResult(fraction, msg)


def _kl_nonnegative(case, output):
    out = np.asarray(output, dtype=float)
    return out.shape == (case["mu"].shape[0],) and bool(np.all(out >= -1e-6))


SUITE = Suite(
    name="hw4_vae",
    notebook="assignments/hw4_vae/hw4_vae.ipynb",
    description="The variational autoencoder",
    allowed=("NumPy", "PyTorch (`torch`, `torch.nn`, `torch.nn.functional`, `torch.optim`)"),
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
        Check("kl_divergence is never negative", "kl_divergence", 7, "hidden",
              invariant_judge(_kl_nonnegative, "a KL divergence is never negative: check its sign",
                              mistake="kl_wrong_sign", reference=ref_kl, rtol=RTOL, atol=ATOL)),
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
        Check("train_vae: negative ELBO of the trained model on held-out data", "train_vae", 20, "visible",
              _training_judge),
        Check("train_vae with four latent dimensions", "train_vae", 10, "hidden", _training_judge),
    ],
)
