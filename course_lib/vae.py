"""The variational autoencoder: a non-linear Gaussian latent variable model trained by maximising the ELBO.

The generative story is the one of factor analysis with the linear map replaced by a network:

    z ~ N(0, I_k),        x | z ~ p(x | f(z; theta))

where ``f`` (the *decoder*) gives Bernoulli logits (binary or [0, 1]-valued data such as digits) or the mean
of a Gaussian with noise variance sigma^2 (fixed or learned). The posterior p(z | x) has no closed form, so an
*encoder* network approximates it by Q(z | x) = N(mu(x; phi), diag(sigma^2(x; phi))). Both are trained together
by maximising, for every example, the evidence lower bound

    ELBO(x) = E_{z ~ Q} log p(x | z) - KL(Q(z | x) || N(0, I))  <=  log p(x),

where the expectation is estimated with the reparameterisation z = mu + sigma * eps, eps ~ N(0, I), which lets
gradients flow to the encoder. The KL term between two Gaussians has the closed form

    KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2).

A conditional VAE (``num_classes=C``) feeds a label y, one-hot, to both networks and models p(x | y).

Arrays and devices: the networks compute in float32 unless told otherwise (float64 training of networks is
several times slower and gains nothing here). A tensor passed to ``fit`` moves the model to the tensor's device
and floating dtype (unless ``device``/``dtype`` were given); NumPy data is computed wherever the model already
is. Later methods convert their input to the model's device and dtype. Outputs are the kind that came in:
NumPy in gives NumPy out (CPU, float64, as everywhere in the package); a tensor in gives a tensor on the
model's device and dtype.
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._base import as_tensor, check_scale, make_generator, resolve_dtype
from ._gaussian import LOG_2PI

__all__ = ["VAE", "reparameterize", "kl_standard_normal", "bernoulli_log_likelihood",
           "gaussian_log_likelihood"]

_LIKELIHOODS = ("bernoulli", "gaussian")
# How many floats one chunk of importance samples may hold (k_chunk * rows * widest layer).
_IW_BUDGET = 1 << 22


# ----------------------------------------------------------------------------------------------------------
# The pieces a VAE is made of
# ----------------------------------------------------------------------------------------------------------
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw z ~ N(mu, diag(exp(logvar))) as a differentiable function of ``mu`` and ``logvar``.

    z = mu + exp(logvar / 2) * eps with eps ~ N(0, I): the randomness sits in ``eps``, so gradients of any
    function of z flow back to ``mu`` and ``logvar`` (dz/dmu = 1, dz/dlogvar = eps * sigma / 2).

    Parameters
    ----------
    mu, logvar : (..., k) tensors
        Mean and log-variance of the diagonal Gaussian.
    eps : tensor, optional
        Standard-normal noise broadcastable with ``mu``, e.g. (S, N, k) for S samples per row. Drawn with
        ``generator`` (shape of ``mu``) when omitted.
    generator : torch.Generator, optional
        Source of randomness for ``eps`` (on ``mu``'s device).

    Returns
    -------
    z : tensor of the broadcast shape of ``mu``, ``logvar`` and ``eps``
    """
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) in closed form, summed over the last (latent) axis.

    KL = 1/2 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j); it is >= 0, and 0 only at mu = 0, logvar = 0.

    Parameters
    ----------
    mu, logvar : (N, k) tensors

    Returns
    -------
    kl : (N,) tensor
    """
    return 0.5 * (mu.pow(2) + torch.exp(logvar) - 1.0 - logvar).sum(-1)


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum_j log Bernoulli(x_j; sigmoid(logits_j)), summed over the last axis.

    Computed from the logits (never from probabilities), so it stays finite when the network is confident:
    x * logits - softplus(logits). Values of x in [0, 1] (grey levels) are allowed, as in the usual
    binary cross-entropy.

    Parameters
    ----------
    x : (..., d) tensor, values in [0, 1]
    logits : (..., d) tensor, broadcastable with ``x`` (e.g. (S, N, d) for S samples of z per row)

    Returns
    -------
    log_lik : tensor of the broadcast shape without the last axis, e.g. (N,)
    """
    x, logits = torch.broadcast_tensors(x, logits)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_var) -> torch.Tensor:
    """sum_j log N(x_j; mean_j, exp(log_var_j)), summed over the last axis.

    With an isotropic variance sigma^2 this is -d/2 log(2 pi) - d/2 log sigma^2 - ||x - mean||^2 / (2 sigma^2):
    the d log sigma^2 term is what keeps a learned noise variance from shrinking to zero.

    Parameters
    ----------
    x : (..., d) tensor
    mean : (..., d) tensor, broadcastable with ``x``
    log_var : float, scalar tensor, (d,) tensor or a tensor of the shape of ``x``
        Log of the noise variance: one for all dimensions, one per dimension, or one per entry.

    Returns
    -------
    log_lik : tensor of the broadcast shape without the last axis, e.g. (N,)
    """
    log_var = torch.as_tensor(log_var, dtype=mean.dtype, device=mean.device)
    sq = (x - mean).pow(2) * torch.exp(-log_var)
    return -0.5 * (sq + log_var + LOG_2PI).sum(-1) if log_var.ndim else \
        -0.5 * (sq.sum(-1) + x.shape[-1] * (log_var + LOG_2PI))


def _linear(a: int, b: int, generator: torch.Generator | None) -> nn.Linear:
    """``nn.Linear(a, b)`` with its default initialisation, drawn from ``generator`` when one is given.

    ``nn.Linear`` draws its initial weights from torch's global generator; a seeded model draws the same
    numbers, in the same order, from a generator of its own, so it neither reads nor moves the global one.
    """
    if generator is None:
        return nn.Linear(a, b)
    layer = torch.nn.utils.skip_init(nn.Linear, a, b)
    with torch.no_grad():
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        bound = 1 / math.sqrt(a) if a > 0 else 0
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


def _mlp(sizes: Sequence[int], generator: torch.Generator | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(_linear(a, b, generator))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


# ----------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------
class VAE(nn.Module):
    """Variational autoencoder with a diagonal-Gaussian encoder and a Bernoulli or Gaussian decoder.

    It is a ``torch.nn.Module`` (use it in your own training loop through :meth:`loss`) that also behaves
    like a scikit-learn estimator: hyper-parameters in ``__init__``, ``fit`` returns ``self`` and stores
    ``history_``.

    Parameters
    ----------
    input_dim : int
        d, the number of features of x (64 for 8x8 digits, 784 for MNIST).
    latent_dim : int
        k, the dimension of z.
    hidden_dims : sequence of int, default (256, 256)
        Widths of the encoder's hidden layers (ReLU); the decoder uses them in reverse order. ``()`` gives a
        linear encoder and decoder: with ``likelihood="gaussian"`` that is probabilistic PCA (scalar noise)
        or factor analysis (``noise_variance="learned_diagonal"``) fitted through the ELBO.
    likelihood : {"bernoulli", "gaussian"}
        p(x | z): Bernoulli with logits f(z) (data in [0, 1]), or N(f(z), sigma^2 I).
    noise_variance : None, "learned", "learned_diagonal" or float
        Gaussian likelihood only. None or "learned": one sigma^2 learned with the networks (stored as
        ``log_noise_var``); "learned_diagonal": one learned variance per feature, as the D of factor analysis;
        a positive float: sigma^2 fixed to that value.
    num_classes : int, optional
        Makes a conditional VAE: a label y in {0, ..., C-1} is fed one-hot to the encoder and the decoder,
        and every method takes ``y``.
    random_state : None, int or torch.Generator
        Seeds the initial weights and the randomness of ``fit`` (minibatch order, eps); None uses PyTorch's
        global generator (see :func:`course_lib.seed_everything`).
    device, dtype : optional
        Where and in which precision the networks live. Default: the CPU and float32, then the device and
        floating dtype of the tensors passed to ``fit``.

    Attributes
    ----------
    encoder : nn.Sequential
        x (and one-hot y) -> (mu, logvar) stacked as (N, 2k).
    decoder : nn.Sequential
        z (and one-hot y) -> logits or Gaussian mean (N, d).
    log_noise_var : tensor
        Gaussian likelihood only: log sigma^2, a scalar or (d,) parameter, or a fixed buffer.
    history_ : dict
        After ``fit``: ``"loss"`` (per epoch, mean training negative ELBO in nats per example, averaged over the
        minibatches of the epoch) and, with validation data, ``"val_loss"`` (negative ELBO of the validation
        set at the end of each epoch).

    Examples
    --------
    >>> from course_lib.data import load_digits
    >>> X, y = load_digits("train")
    >>> vae = VAE(64, 8, random_state=0).fit(X, epochs=5, progress=False)
    >>> vae.elbo(X[:3]).shape
    (3,)
    """

    def __init__(self, input_dim: int, latent_dim: int, hidden_dims: Sequence[int] = (256, 256),
                 likelihood: str = "bernoulli", noise_variance=None, num_classes: int | None = None,
                 random_state=None, device=None, dtype=None):
        super().__init__()
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.likelihood = likelihood
        self.noise_variance = noise_variance
        self.num_classes = num_classes
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self._validate_params()
        self._rng: torch.Generator | None = None
        self._numpy_io = True
        self._build()

    # ---- construction ------------------------------------------------------------------------------------
    def _validate_params(self) -> None:
        _positive_int(self.input_dim, "input_dim")
        _positive_int(self.latent_dim, "latent_dim")
        try:
            hidden = tuple(self.hidden_dims)
        except TypeError:
            raise ValueError(f"hidden_dims={self.hidden_dims!r} must be a sequence of layer widths, e.g. (256, 256) "
                             "or () for a linear model") from None
        for h in hidden:
            _positive_int(h, "every entry of hidden_dims")
        if self.likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood={self.likelihood!r} must be one of {_LIKELIHOODS}")
        nv = self.noise_variance
        if self.likelihood == "bernoulli" and nv is not None:
            raise ValueError("noise_variance applies to likelihood='gaussian' only; leave it None for 'bernoulli'")
        if nv is not None and nv not in ("learned", "learned_diagonal"):
            if isinstance(nv, bool) or not isinstance(nv, numbers.Real) or not (nv > 0 and math.isfinite(nv)):
                raise ValueError(f"noise_variance={nv!r} must be None, 'learned', 'learned_diagonal' or a positive float")
        if self.num_classes is not None:
            _positive_int(self.num_classes, "num_classes", minimum=2)
        resolve_dtype(self.dtype)

    def _build(self) -> None:
        c = self.num_classes or 0
        hidden = [int(h) for h in self.hidden_dims]
        seed = self._init_seed()
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        self.encoder = _mlp([self.input_dim + c, *hidden, 2 * self.latent_dim], gen)
        self.decoder = _mlp([self.latent_dim + c, *hidden[::-1], self.input_dim], gen)
        if self.likelihood == "gaussian":
            nv = self.noise_variance
            if nv is None or nv == "learned":
                self.log_noise_var = nn.Parameter(torch.zeros(()))
            elif nv == "learned_diagonal":
                self.log_noise_var = nn.Parameter(torch.zeros(self.input_dim))
            else:
                self.register_buffer("log_noise_var", torch.tensor(math.log(float(nv))))
        self.to(device=self.device if self.device is not None else "cpu",
                dtype=resolve_dtype(self.dtype) or torch.float32)

    def _init_seed(self) -> int | None:
        rs = self.random_state
        if rs is None:
            return None
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and rs >= 0:
            return int(rs)
        gen = make_generator(rs)   # validates the other accepted kinds
        return int(torch.randint(0, 2**62, (1,), generator=gen))

    def reset_parameters(self) -> "VAE":
        """Re-draw the initial weights (seeded by ``random_state``) and forget the fit."""
        self._build()
        self._rng = None
        if hasattr(self, "history_"):
            del self.history_
        return self

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments, as scikit-learn's ``get_params``."""
        return {k: getattr(self, k) for k in ("input_dim", "latent_dim", "hidden_dims", "likelihood",
                                              "noise_variance", "num_classes", "random_state", "device",
                                              "dtype")}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)

    @property
    def _param(self) -> torch.Tensor:
        return next(self.encoder.parameters())

    # ---- input handling ----------------------------------------------------------------------------------
    def _x(self, X, name: str = "X", check_magnitude: bool = False) -> tuple[torch.Tensor, bool]:
        t, numpy_in = as_tensor(X, name=name, ndim=2)
        if check_magnitude:         # before the conversion, which would turn the evidence into inf or 0
            check_scale(t, name, dtype=self._param.dtype)
        if t.shape[1] != self.input_dim:
            raise ValueError(f"{name} has {t.shape[1]} features, but this VAE was built with input_dim={self.input_dim}")
        p = self._param
        t = t.to(device=p.device, dtype=p.dtype)
        if t.numel() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} has values beyond the range of the model's {str(p.dtype).replace('torch.', '')} "
                             f"(about {torch.finfo(p.dtype).max:.1e}); divide {name} by a constant (e.g. its standard "
                             "deviation) first")
        if self.likelihood == "bernoulli" and t.numel() and bool(((t < 0) | (t > 1)).any()):
            raise ValueError(f"{name} has values outside [0, 1], which the Bernoulli likelihood cannot model; "
                             "scale it to [0, 1] (e.g. X / X.max()) or use likelihood='gaussian'")
        return t, numpy_in

    def _onehot(self, y, n: int, name: str = "y") -> torch.Tensor | None:
        """One-hot (n, C) labels in the model's dtype, or None for an unconditional model."""
        if self.num_classes is None:
            if y is not None:
                raise ValueError("y was given but this VAE is not conditional; build it with num_classes=C to use labels")
            return None
        if y is None:
            raise ValueError(f"this conditional VAE needs labels: pass {name}= with one class in 0..{self.num_classes - 1} per row")
        p = self._param
        if isinstance(y, numbers.Integral) and not isinstance(y, bool):
            y = torch.full((n,), int(y), dtype=torch.long)
        if isinstance(y, torch.Tensor):
            lab = y.detach()
        else:
            arr = np.asarray(y)
            if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
                raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
            lab = torch.as_tensor(arr)
        if lab.is_floating_point():
            if bool((lab != torch.round(lab)).any()):
                raise ValueError(f"{name} must hold integer class labels in 0..{self.num_classes - 1}, got non-integers")
        if lab.ndim != 1 or lab.shape[0] != n:
            raise ValueError(f"{name} must have shape ({n},) to match the data, got {tuple(lab.shape)}")
        lab = lab.to(device=p.device, dtype=torch.long)
        if n and bool(((lab < 0) | (lab >= self.num_classes)).any()):
            raise ValueError(f"{name} has labels outside 0..{self.num_classes - 1}; num_classes={self.num_classes}")
        return F.one_hot(lab, self.num_classes).to(p.dtype)

    def _rng_for(self, random_state=None) -> torch.Generator:
        dev = self._param.device
        if random_state is not None:
            return make_generator(random_state, dev)
        if self._rng is None or self._rng.device != dev:
            self._rng = make_generator(self.random_state, dev) if self.random_state is not None else None
            if self._rng is None:   # follow PyTorch's global generator (seed_everything)
                self._rng = torch.Generator(device=dev)
                self._rng.manual_seed(int(torch.randint(0, 2**62, (1,))))
        return self._rng

    @staticmethod
    def _out(t: torch.Tensor, numpy_out: bool):
        return t.detach().cpu().to(torch.float64).numpy() if numpy_out else t

    # ---- the model's pieces (tensors in, tensors out) -----------------------------------------------------
    def _encode(self, x: torch.Tensor, c: torch.Tensor | None):
        h = self.encoder(x if c is None else torch.cat([x, c], -1))
        return h[..., :self.latent_dim], h[..., self.latent_dim:]

    def _decode(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if c is not None:
            c = c.expand(*z.shape[:-1], c.shape[-1])
            z = torch.cat([z, c], -1)
        return self.decoder(z)

    def _log_px(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x, out)
        return gaussian_log_likelihood(x, out, self.log_noise_var)

    def _mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def _elbo(self, x, c, gen, n_samples: int = 1) -> torch.Tensor:
        mu, logvar = self._encode(x, c)
        kl = kl_standard_normal(mu, logvar)
        shape = mu.shape if n_samples == 1 else (n_samples, *mu.shape)
        eps = torch.randn(shape, generator=gen, device=mu.device, dtype=mu.dtype)
        z = reparameterize(mu, logvar, eps)
        rec = self._log_px(x, self._decode(z, c))
        if n_samples > 1:
            rec = rec.mean(0)
        return rec - kl

    # ---- public API ---------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """The negative ELBO averaged over the batch (the same as :meth:`loss`)."""
        return self.loss(x, y)

    def encode(self, X, y=None):
        """Parameters of Q(z | x) = N(mu, diag(exp(logvar))).

        Parameters
        ----------
        X : (N, d) array or tensor
        y : (N,) int labels, conditional model only

        Returns
        -------
        mu, logvar : (N, k) each
        """
        x, numpy_in = self._x(X)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not numpy_in):
            mu, logvar = self._encode(x, self._onehot(y, x.shape[0]))
        return self._out(mu, numpy_in), self._out(logvar, numpy_in)

    def decode(self, Z, y=None):
        """The decoder's output f(z): Bernoulli logits or the Gaussian mean.

        Parameters
        ----------
        Z : (N, k) array or tensor
        y : (N,) int labels, conditional model only

        Returns
        -------
        out : (N, d) logits (Bernoulli; apply a sigmoid for probabilities) or means (Gaussian)
        """
        z, numpy_in = as_tensor(Z, name="Z", ndim=2)
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"Z has {z.shape[1]} columns, but this VAE has latent_dim={self.latent_dim}")
        p = self._param
        z = z.to(device=p.device, dtype=p.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not numpy_in):
            out = self._decode(z, self._onehot(y, z.shape[0]))
        return self._out(out, numpy_in)

    def elbo(self, X, y=None, n_samples: int = 1, random_state=None):
        """Per-example evidence lower bound E_Q[log p(x | z)] - KL(Q(z | x) || N(0, I)), in nats.

        The reconstruction term is a Monte Carlo average over ``n_samples`` reparameterised draws of z; the
        KL term is exact. For tensor input the result is differentiable (use it in your own loop).

        Parameters
        ----------
        X : (N, d) array or tensor
        y : (N,) int labels, conditional model only
        n_samples : int
            Draws of z per example.
        random_state : optional
            Seed for this call; by default the model's own stream (seeded by ``random_state``) is used.

        Returns
        -------
        elbo : (N,)
        """
        n_samples = _positive_int(n_samples, "n_samples")
        x, numpy_in = self._x(X)
        c = self._onehot(y, x.shape[0])
        with torch.set_grad_enabled(torch.is_grad_enabled() and not numpy_in):
            out = self._elbo(x, c, self._rng_for(random_state), n_samples)
        return self._out(out, numpy_in)

    def loss(self, X, y=None, random_state=None) -> torch.Tensor:
        """The training loss: the negative ELBO, summed over the dimensions of x and z and averaged over
        the batch (nats per example), from one draw of z per example.

        Parameters
        ----------
        X : (N, d) array or tensor
        y : (N,) int labels, conditional model only

        Returns
        -------
        loss : scalar tensor (differentiable)
        """
        x, _ = self._x(X)
        return -self._elbo(x, self._onehot(y, x.shape[0]), self._rng_for(random_state)).mean()

    def reconstruct(self, X, y=None):
        """Decode the encoder's mean: the mean of p(x | z = mu(x)) (probabilities for Bernoulli).

        Returns
        -------
        X_hat : (N, d), same kind as ``X``
        """
        x, numpy_in = self._x(X)
        c = self._onehot(y, x.shape[0])
        with torch.no_grad():
            mu, _ = self._encode(x, c)
            out = self._mean(self._decode(mu, c))
        return self._out(out, numpy_in)

    def sample(self, n_samples: int = 1, y=None, random_state=None):
        """Generate new data: z ~ N(0, I), then the mean of p(x | z) (probabilities for Bernoulli).

        Parameters
        ----------
        n_samples : int
        y : int or (n_samples,) labels, conditional model only
        random_state : optional seed for this call

        Returns
        -------
        X : (n_samples, d); NumPy if the model was fitted on NumPy data (or not fitted), else a tensor
        """
        n = _positive_int(n_samples, "n_samples")
        p = self._param
        c = self._onehot(y, n)
        with torch.no_grad():
            z = torch.randn((n, self.latent_dim), generator=self._rng_for(random_state), device=p.device,
                            dtype=p.dtype)
            out = self._mean(self._decode(z, c))
        return self._out(out, self._numpy_io)

    def latent_traversal(self, dims: Sequence[int] = (0, 1), steps: int = 9, span: float = 3.0, z0=None,
                         y=None, image_shape: tuple[int, ...] | None = None, as_image: bool = False):
        """Decode a grid of latent points, varying one or two coordinates of z and holding the rest at ``z0``.

        Parameters
        ----------
        dims : one or two ints
            Latent coordinates to vary.
        steps : int
            Values per coordinate, evenly spaced in [-span, span] (the prior has almost all of its mass in
            [-3, 3]).
        z0 : (k,) array, optional
            The point the other coordinates are held at (default: 0, the prior's mean).
        y : int, conditional model only
        image_shape : tuple, optional
            Shape of one decoded example (default: (s, s) when d = s * s, e.g. (8, 8) for digits).
        as_image : bool
            Tile the grid into one 2-D image ready for ``imshow`` (two dims and 2-D image_shape only).

        Returns
        -------
        grid : (steps, *image_shape) for one dim; (steps, steps, *image_shape) for two, where entry [i, j]
            has z[dims[0]] = values[i] and z[dims[1]] = values[j]; or (steps*h, steps*w) with ``as_image``.
            Means of p(x | z) (probabilities for Bernoulli); NumPy unless fitted on tensors.
        """
        dims = tuple(int(d) for d in np.atleast_1d(dims))
        if len(dims) not in (1, 2) or len(set(dims)) != len(dims) or any(d < 0 or d >= self.latent_dim for d in dims):
            raise ValueError(f"dims={dims} must be one or two distinct latent coordinates in 0..{self.latent_dim - 1}")
        steps = _positive_int(steps, "steps")
        if not (isinstance(span, numbers.Real) and span > 0):
            raise ValueError(f"span={span!r} must be a positive number")
        if image_shape is None:
            side = math.isqrt(self.input_dim)
            image_shape = (side, side) if side * side == self.input_dim else (self.input_dim,)
        image_shape = tuple(int(s) for s in image_shape)
        if math.prod(image_shape) != self.input_dim:
            raise ValueError(f"image_shape={image_shape} does not hold input_dim={self.input_dim} values")
        p = self._param
        base = torch.zeros(self.latent_dim, device=p.device, dtype=p.dtype)
        if z0 is not None:
            z0t, _ = as_tensor(z0, name="z0", ndim=1)
            if z0t.shape[0] != self.latent_dim:
                raise ValueError(f"z0 must have latent_dim={self.latent_dim} entries, got {z0t.shape[0]}")
            base = z0t.to(device=p.device, dtype=p.dtype)
        values = torch.linspace(-float(span), float(span), steps, device=p.device, dtype=p.dtype)
        if len(dims) == 1:
            Z = base.repeat(steps, 1)
            Z[:, dims[0]] = values
        else:
            Z = base.repeat(steps, steps, 1)
            Z[:, :, dims[0]] = values[:, None]
            Z[:, :, dims[1]] = values[None, :]
        flat = Z.reshape(-1, self.latent_dim)
        c = self._onehot(y, flat.shape[0])
        with torch.no_grad():
            out = self._mean(self._decode(flat, c))
        grid = out.reshape(*Z.shape[:-1], *image_shape)
        if as_image:
            if len(dims) != 2 or len(image_shape) != 2:
                raise ValueError("as_image=True needs two dims and a 2-D image_shape")
            h, w = image_shape
            grid = grid.permute(0, 2, 1, 3).reshape(steps * h, steps * w)
        return self._out(grid, self._numpy_io)

    def log_likelihood(self, X, y=None, k: int = 100, random_state=None, batch_size: int = 1024):
        """Importance-weighted estimate of log p(x): log (1/k) sum_i p(x, z_i) / Q(z_i | x), z_i ~ Q(z | x).

        With k = 1 its expectation is the ELBO; it rises towards log p(x) as k grows (in expectation it never
        decreases with k), so it is the number to report as the model's log-likelihood. Computed with a
        log-sum-exp over the k weights, in chunks of samples so memory stays bounded for any k.

        Parameters
        ----------
        X : (N, d) array or tensor
        y : (N,) int labels, conditional model only
        k : int
            Importance samples per example.
        random_state : optional seed for this call
        batch_size : int
            Rows processed at once.

        Returns
        -------
        log_px : (N,)
        """
        k = _positive_int(k, "k")
        batch_size = _positive_int(batch_size, "batch_size")
        x, numpy_in = self._x(X)
        c_all = self._onehot(y, x.shape[0])
        gen = self._rng_for(random_state)
        width = max([self.input_dim, *[int(h) for h in self.hidden_dims], 2 * self.latent_dim])
        pieces = []
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                xb = x[start:start + batch_size]
                cb = None if c_all is None else c_all[start:start + batch_size]
                mu, logvar = self._encode(xb, cb)
                chunk = max(1, min(k, _IW_BUDGET // max(1, xb.shape[0] * width)))
                acc = torch.full((xb.shape[0],), -math.inf, device=x.device, dtype=x.dtype)
                for s0 in range(0, k, chunk):
                    s = min(chunk, k - s0)
                    eps = torch.randn((s, *mu.shape), generator=gen, device=mu.device, dtype=mu.dtype)
                    z = reparameterize(mu, logvar, eps)
                    log_px_z = self._log_px(xb, self._decode(z, cb))                 # (s, n)
                    # log p(z) - log Q(z | x); the log(2 pi) terms cancel
                    log_ratio = -0.5 * (z.pow(2) - eps.pow(2) - logvar).sum(-1)       # (s, n)
                    acc = torch.logaddexp(acc, torch.logsumexp(log_px_z + log_ratio, 0))
                pieces.append(acc - math.log(k))
        out = torch.cat(pieces) if pieces else x.new_zeros(0)
        return self._out(out, numpy_in)

    # ---- training -----------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
            validation_data=None, progress: bool = True, random_state=None, callback=None) -> "VAE":
        """Train encoder and decoder together with Adam on the negative ELBO (one draw of z per example).

        Training continues from the current weights (a new ``VAE`` starts afresh; see
        :meth:`reset_parameters`). On the CPU the result is the same on every run for a given
        ``random_state``. Minibatches are cut from the data held on the model's device, in a seeded random
        order each epoch.

        Parameters
        ----------
        X : (N, d) array or tensor
            Training data (in [0, 1] for the Bernoulli likelihood). A tensor moves the model to its device
            and floating dtype unless ``device``/``dtype`` were set.
        y : (N,) int labels, conditional model only
        epochs : int
        batch_size : int
        lr : float
            Adam's learning rate.
        validation_data : X_val or (X_val, y_val), optional
            Evaluated (negative ELBO, one draw) after every epoch into ``history_["val_loss"]``.
        progress : bool
            Show a progress bar (updated once per epoch).
        random_state : optional
            Overrides the model's ``random_state`` for this call.
        callback : callable, optional
            Called after every epoch as ``callback(model, epoch, history)`` (epoch counts from 0; history as
            ``history_``), e.g. to save samples for an animation; returning True stops training.

        Returns
        -------
        self
        """
        if y is not None and np.ndim(y) == 0 and not isinstance(y, str):
            raise ValueError(f"y={y!r} is not an array of labels; pass the number of epochs as epochs={y!r}")
        epochs = _positive_int(epochs, "epochs")
        batch_size = _positive_int(batch_size, "batch_size")
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr={lr!r} must be a positive number, e.g. 1e-3")
        if isinstance(X, torch.Tensor):
            if not X.is_floating_point() and self.dtype is None:
                X = X.to(self._param.dtype)
            self.to(device=self.device if self.device is not None else X.device,
                    dtype=resolve_dtype(self.dtype) or (X.dtype if X.is_floating_point() else None))
        x, numpy_in = self._x(X, check_magnitude=self.likelihood == "gaussian")
        n = x.shape[0]
        c = self._onehot(y, n)
        val = None
        if validation_data is not None:
            xv, yv = validation_data if isinstance(validation_data, tuple) else (validation_data, None)
            xv, _ = self._x(xv, name="validation_data")
            val = (xv, self._onehot(yv, xv.shape[0], name="validation labels"))
        self._numpy_io = numpy_in
        self.n_features_in_ = self.input_dim
        if random_state is None:
            self._rng = None
        gen = self._rng_for(random_state)

        from tqdm.auto import tqdm

        opt = torch.optim.Adam(self.parameters(), lr=lr)
        history: dict[str, list[float]] = {"loss": []}
        if val is not None:
            history["val_loss"] = []
        bar = tqdm(range(epochs), desc="VAE", unit="epoch", disable=not progress, leave=False)
        self.train()
        for epoch in bar:
            perm = torch.randperm(n, generator=gen, device=x.device)
            total = torch.zeros((), device=x.device, dtype=x.dtype)
            for start in range(0, n, batch_size):
                idx = perm[start:start + batch_size]
                cb = None if c is None else c[idx]
                loss = -self._elbo(x[idx], cb, gen).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * idx.shape[0]
            epoch_loss = float(total) / n
            if not math.isfinite(epoch_loss):
                raise ValueError(f"training diverged (negative ELBO {epoch_loss}); lower lr (now {lr}) or check the data")
            history["loss"].append(epoch_loss)
            postfix = {"loss": f"{epoch_loss:.3f}"}
            if val is not None:
                self.eval()
                with torch.no_grad():
                    v = float(-self._elbo(val[0], val[1], gen).mean())
                history["val_loss"].append(v)
                postfix["val_loss"] = f"{v:.3f}"
                self.train()
            bar.set_postfix(postfix, refresh=False)
            if callback is not None:
                stop = callback(self, epoch, history)
                self.train()
                if stop is True:
                    break
        bar.close()
        self.eval()
        self.history_ = history
        return self
