"""Gaussian mixture models fitted by expectation-maximisation (EM).

The model: pick a component m with probability π_m, then draw x ~ N(μ_m, Σ_m). The component is the latent
variable; EM alternates

* E-step: the responsibilities r_nm = P(m | x_n) = π_m N(x_n; μ_m, Σ_m) / Σ_j π_j N(x_n; μ_j, Σ_j), computed
  in log space with log-sum-exp (``course_lib.elbo``), so points far from every component do not give 0/0;
* M-step: the weighted maximum-likelihood estimates N_m = Σ_n r_nm, π_m = N_m / N, μ_m = Σ_n r_nm x_n / N_m,
  Σ_m = Σ_n r_nm (x_n − μ_m)(x_n − μ_m)ᵀ / N_m + reg_covar · I.

Each iteration maximises the bound J(θ, θ′) of ``course_lib.elbo``, so with ``completion="expectation"`` the
log-likelihood never goes down. ``completion="sampling"`` completes the data by drawing one component per
point from its responsibilities instead (stochastic EM); the likelihood then wanders near a maximum.

How it is computed (full covariances). Each component is held through the Cholesky factor U_m of its precision (U_m
U_mᵀ = Σ_m⁻¹, U_m upper triangular, as in scikit-learn), so the Mahalanobis term is ‖(x − μ_m) U_m‖². The data are
taken relative to their mean c (e = x − c), so that a far-away origin costs no digits. With a column of ones in
front, one matrix product ``[1, E] @ [[−m_1 U_1 … −m_K U_K], [U_1 … U_K]]`` (m_k = μ_k − c) gives the whitened
residuals of every point under every component at once. The M-step reuses them: weighted by the responsibilities
and multiplied by ``E`` they give, in one more product, Σ_n r_nm e_n ((x_n − μ_m) U_m)ᵀ, from which, with N_m and
Σ_n r_nm e_n (a small product ``Rᵀ [1, E]``), the new means and covariances follow with small d × d products per
component. Because U_m is triangular, the features are cut into two halves and each product into one per half: the
first half of the residuals needs only the first half of the features, and the M-step needs only the lower blocks
of the symmetric sums (the others follow by symmetry), which saves a quarter of the multiplications (by zero)
without changing what is computed. The residuals are laid out feature-major (column i K + k), so their squares are
summed over the features in one pass that runs along K contiguous numbers. Diagonal and spherical covariances need
no residuals: the log-density is linear in [e², e, 1] (or [‖e‖², e, 1]), so each step is one product with that row,
and the M-step's sums are one more.

The products are large, well-shaped matrix multiplications, and the work runs over blocks of samples sized to
stay in the caches, made when used (nothing of the data's size is copied, no N × K × d array is formed). On a
multi-core CPU the blocks, grouped in a fixed set of chunks, are shared among as many threads as torch has
(the calling thread and helpers from a pool kept by this module), each running with a one-thread torch: many
small operations per block then cost no thread-pool hand-off, a thread takes the next chunk when it is done,
so a core slowed by other work takes fewer, and the chunks' sums are added in their order, so the result does
not depend on the number of threads. On a GPU the blocks are as large as a cap on the workspace allows
(see ``_GPU_WORKSPACE_PER_DATA``), in one chunk, and an iteration waits for the device once: its checks read
what they need in one transfer with the log-likelihood. A responsibility below the smallest normal number of
the dtype is set to 0 (float32's exp is many times slower on the arguments that would give a subnormal). A
process forked from one that has fitted gets a new pool, and the forking thread computes on one thread (GNU
OpenMP's threads do not survive a fork; see :func:`_fork_safe`).

The steps on their own, from given parameters (the reference the course's exercises are graded against, and
the code the estimator runs): :func:`log_joint` (log π_m + log N(x_n; μ_m, Σ_m)), :func:`e_step`
(responsibilities and log-likelihood), :func:`m_step` (weighted estimates from responsibilities) and
:func:`em_step` (one iteration, exactly as :class:`GaussianMixture` runs it: the E-step and the M-step fused
into the two products above). ``GaussianMixture.from_params`` builds a fitted mixture without running EM.
"""
from __future__ import annotations

import functools
import math
import numbers
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from sklearn.base import DensityMixin
from sklearn.exceptions import ConvergenceWarning

from ._base import Estimator, as_tensor, check_choice, check_int, check_nonneg, check_scale, few_threads
from ._gaussian import LOG_2PI
from .elbo import _log_normalize

__all__ = ["GaussianMixture", "log_joint", "e_step", "m_step", "em_step"]

_COVARIANCE_TYPES = ("full", "diag", "spherical")
_INIT_PARAMS = ("kmeans", "random_from_data")
_COMPLETIONS = ("expectation", "sampling")
# Bytes of the largest per-block array (the whitened residuals of full covariances, block rows × K d): small
# enough to stay in the caches between the products and passes that read it, large enough that the operations
# on a block are not dominated by their fixed cost.
_BLOCK_BYTES = 1 << 21
_MIN_BLOCK_ROWS = 16
# On other devices (a GPU) every operation on a block is a kernel launch that costs the host the same whatever
# the block's size, so the blocks are made large: up to _GPU_BLOCK_NUMBERS numbers in the largest per-block
# array, but the workspace (all of a block's buffers together) at most _GPU_WORKSPACE_PER_DATA times the bytes of
# the data, or _GPU_WORKSPACE_MIN bytes where that is more (small data sets would otherwise get tiny blocks: on
# an H200 at n = 100,000, d = 32, K = 16 in float64, 14 blocks under a 64 MiB floor took 5.0 ms an iteration,
# 4 blocks under 256 MiB 2.3-3.4 ms, and 2 blocks with no cap, 555 MB, 2.1-2.7 ms).
_GPU_BLOCK_NUMBERS = 1 << 25
_GPU_WORKSPACE_PER_DATA = 2.0
_GPU_WORKSPACE_MIN = 256 << 20
# Chunks of blocks, each summed on its own and the sums added in order: the unit of work a thread takes.
_MAX_CHUNKS = 128
# The triangular products cut the features into this many equal parts (see _Whitened), each at least
# _MIN_PART wide: fewer multiplications by zero, more and smaller products.
_FEATURE_PARTS = 2
_MIN_PART = 4
# From this many components on, the whitened residuals are laid out feature-major (see _Whitened).
_FEATURE_MAJOR_FROM = 8
_KMEANS_ITERS = 10
# Below this log-responsibility (relative to the largest of the row) a responsibility is set to 0: the log of
# the smallest normal number, plus a margin.
_LOG_TINY = {dtype: math.log(torch.finfo(dtype).tiny) + 1.0 for dtype in (torch.float64, torch.float32,
                                                                            torch.float16, torch.bfloat16)}


def _block_rows(n_samples: int, width: int, dtype: torch.dtype, device: torch.device,
                row_numbers: int | None = None, data_bytes: int = 0) -> int:
    """Rows per block when each row holds ``width`` numbers of ``dtype`` in the largest per-block array, and
    ``row_numbers`` (default ``width``) in all of a block's buffers together (the workspace, capped on a GPU
    by ``data_bytes``, the size of the data: see ``_GPU_WORKSPACE_PER_DATA``)."""
    if device.type != "cpu":
        row_bytes = max(row_numbers or width, 1) * torch.finfo(dtype).bits // 8
        workspace = max(_GPU_WORKSPACE_PER_DATA * data_bytes, _GPU_WORKSPACE_MIN)
        return max(1, min(n_samples, _GPU_BLOCK_NUMBERS // max(width, 1), int(workspace // row_bytes)))
    row_bytes = max(width, 1) * torch.finfo(dtype).bits // 8
    return max(_MIN_BLOCK_ROWS, min(n_samples, _BLOCK_BYTES // row_bytes))


# ------------------------------------------------------------------------------------------ threads
def _counter(total: int):
    """A callable, safe to share among threads, that hands out 0, 1, …, ``total`` − 1 and then None."""
    lock = threading.Lock()
    items = iter(range(total))

    def next_item():
        with lock:
            return next(items, None)
    return next_item


class _OrderedSum:
    """Adds the sums of numbered chunks (lists of tensors) in the chunks' order, whichever thread hands which in
    first, so that the total does not depend on the number of threads; a chunk's sums are kept only until
    their turn comes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting: dict[int, list[torch.Tensor]] = {}
        self._next = 0
        self.total: list[torch.Tensor] | None = None

    def add(self, index: int, sums: list[torch.Tensor]) -> None:
        with self._lock:
            self._waiting[index] = sums
            while self._next in self._waiting:
                part = self._waiting.pop(self._next)
                if self.total is None:
                    self.total = part
                else:
                    for total, value in zip(self.total, part):
                        total += value
                self._next += 1


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
# In a child forked from this process: the thread that called fork (the only one the child has at first).
_forked_thread: int | None = None


def _after_fork_in_child() -> None:
    """The pool's threads do not exist in a forked child: start a new pool when one is needed. Neither do the
    OpenMP threads of the thread that forked, so a parallel region it starts waits for them forever: remember
    that thread (see :func:`_fork_safe`)."""
    global _pool, _pool_lock, _forked_thread
    _pool, _pool_lock = None, threading.Lock()
    _forked_thread = threading.get_ident()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _fork_safe(fn):
    """Run ``fn`` on a one-thread torch when called, in a forked child, from the thread that forked.

    GNU OpenMP (torch's CPU threads) keeps a team of threads per thread that used it; ``fork`` copies the
    team's bookkeeping but not its threads, so in the child the forking thread's next parallel operation
    hangs. With one thread it starts no team; the fit still uses the cores through this module's helper
    threads, which are new in the child. Other threads, and the parent, are left alone.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with few_threads(_forked_thread is not None and threading.get_ident() == _forked_thread):
            return fn(*args, **kwargs)
    return wrapper


def _helpers() -> ThreadPoolExecutor:
    """The module's pool of helper threads, started on first use and kept (one thread per extra core)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, (os.cpu_count() or 2) - 1), thread_name_prefix="course_lib-em")
        return _pool


def _run_shared(run, n_chunks: int, workers: int) -> None:
    """``run(next_chunk)`` in the calling thread and ``workers`` − 1 helper threads, each with a one-thread
    torch; they take chunks from one counter until none is left, so a core slowed by other work takes fewer."""
    next_chunk = _counter(n_chunks)

    def work():
        with few_threads():                          # this thread only
            run(next_chunk)

    futures = [_helpers().submit(work) for _ in range(workers - 1)]
    try:
        work()
    finally:
        for future in futures:
            if not future.cancel():                  # a helper that never started has nothing left to do
                future.result()


# ------------------------------------------------------------------------------------------ parameters
def _flip(a: torch.Tensor) -> torch.Tensor:
    return a.flip(-1).flip(-2)


class _Params:
    """One set of mixture parameters as tensors, with the factors the E-step needs.

    ``prec_chol``: full (K, d, d) upper U with U Uᵀ = Σ⁻¹; diag (K, d); spherical (K,), each 1/σ.
    ``cov_chol``: full only, the lower Cholesky factor L of Σ (L = U⁻ᵀ).
    """

    def __init__(self, weights, means, covariances, prec_chol, cov_chol=None):
        self.weights, self.means, self.covariances = weights, means, covariances
        self.prec_chol, self.cov_chol = prec_chol, cov_chol


def _bad_components(mask: torch.Tensor) -> str:
    idx = torch.nonzero(mask).flatten().tolist()
    shown = ", ".join(str(i) for i in idx[:5]) + (" …" if len(idx) > 5 else "")
    return f"component{'s' if len(idx) > 1 else ''} {shown}"


def _covariance_hint(reg_covar: float, hint: str | None) -> str:
    if hint is not None:
        return hint
    return ("increase reg_covar (e.g. reg_covar=1e-6 or more), use fewer components, or rescale the data"
            if reg_covar <= 0 else "increase reg_covar, use fewer components, or rescale the data")


def _factor_covariances(covariances, cov_type: str, eye: torch.Tensor | None = None):
    """The factors of the covariances, unchecked (no host synchronisation): ``(prec_chol, cov_chol, info)``,
    ``info`` the Cholesky factorisation's (full; None otherwise). ``eye``: the identity of the features, if
    one is at hand."""
    if cov_type == "full":
        L, info = torch.linalg.cholesky_ex(covariances)
        if eye is None:
            eye = torch.eye(covariances.shape[-1], dtype=covariances.dtype, device=covariances.device)
        U = torch.linalg.solve_triangular(L, eye.expand_as(L), upper=False).mT
        return U, L, info
    return covariances.rsqrt(), None, None


def _check_factors(covariances, cov_type: str, prec_chol, info, hint: str) -> None:
    """A clear error naming the components that are not positive definite (checks of
    :func:`_factor_covariances`' output, in this order)."""
    if cov_type == "full":
        if bool((info != 0).any()):
            raise ValueError(f"the covariance of {_bad_components(info != 0)} is not positive definite (too few "
                             f"or collapsed points); {hint}")
        if not torch.isfinite(prec_chol).all():
            raise ValueError(f"a covariance is numerically singular; {hint}")
        return
    bad = covariances <= 0 if cov_type == "spherical" else (covariances <= 0).any(-1)
    if bool(bad.any()) or not torch.isfinite(covariances).all():
        raise ValueError(f"the covariance of {_bad_components(bad)} is singular (zero variance); {hint}")


def _params_from_covariances(weights, means, covariances, cov_type: str, reg_covar: float,
                             hint: str | None = None) -> _Params:
    """Factor the covariances; a clear error naming the components that are not positive definite."""
    prec_chol, cov_chol, info = _factor_covariances(covariances, cov_type)
    _check_factors(covariances, cov_type, prec_chol, info, _covariance_hint(reg_covar, hint))
    return _Params(weights, means, covariances, prec_chol, cov_chol)


def _params_from_precisions(weights, means, precisions, cov_type: str) -> _Params:
    """Like scikit-learn: the upper factor U of P = U Uᵀ is flip(chol(flip(P)))."""
    if cov_type == "full":
        Lf, info = torch.linalg.cholesky_ex(_flip(precisions))
        if bool((info != 0).any()):
            raise ValueError(f"precisions_init of {_bad_components(info != 0)} is not symmetric positive "
                             "definite; pass valid precision matrices")
        U = _flip(Lf)
        eye = torch.eye(means.shape[1], dtype=means.dtype, device=means.device).expand_as(U)
        L = torch.linalg.solve_triangular(U, eye, upper=True).mT          # U⁻ᵀ, lower
        return _Params(weights, means, L @ L.mT, U, L)
    if (precisions <= 0).any():
        raise ValueError("precisions_init must be positive; pass inverse variances")
    return _Params(weights, means, 1.0 / precisions, precisions.sqrt())


def _log_det_prec_chol(p: _Params, cov_type: str, d: int) -> torch.Tensor:
    """½ log det Σ⁻¹ per component, (K,)."""
    if cov_type == "full":
        return torch.log(torch.diagonal(p.prec_chol, dim1=-2, dim2=-1)).sum(-1)
    if cov_type == "diag":
        return torch.log(p.prec_chol).sum(-1)
    return d * torch.log(p.prec_chol)


def _log_const(p: _Params, cov_type: str, d: int, design: _Design | None = None) -> torch.Tensor:
    """log π + ½ log det Σ⁻¹ − ½ d log 2π per component, (K,) (the constant from ``design``, when given, made
    once per fit)."""
    offset = 0.5 * d * LOG_2PI
    return torch.log(p.weights) + _log_det_prec_chol(p, cov_type, d) - (
        offset if design is None else design.scalar(offset))


# ------------------------------------------------------------------------------------------ the fused EM step
class _Design:
    """The data of one fit, cut into row blocks (grouped into chunks), and the rows the products take.

    Every product reads the data relative to their mean c, so that a far-away origin costs no digits. The rows
    of a block are made when it is used, into a buffer of the thread's (:meth:`buffer`, :meth:`rows_of`), so
    nothing of the data's size is copied:

    * full covariances: ``[1, x − c]`` (d + 1 columns), so that the columns the E-step's product of each part
      of the features needs (``[1, e_0 … e_j]``) and those the M-step's needs (``[e_j … e_d−1]``) are both
      contiguous (e = x − c);
    * diagonal and spherical: ``[q(e), e, 1]`` with q(e) the squares e² (diagonal) or ‖e‖² (spherical); the
      log-density is linear in these rows, and so are the sums the M-step needs.
    """

    def __init__(self, X: torch.Tensor, cov_type: str, n_components: int):
        n, d = X.shape
        self.X, self.n, self.d, self.cov_type = X, n, d, cov_type
        self.center = X.mean(0)
        if cov_type == "full":
            self.n_quad = 0
            self.width = d + 1
            self.whitened = _Whitened(d, n_components)
            per_row = n_components * d                # the whitened residuals of a row
            # all buffers of a block: the residuals and their squares (each padded, see _Whitened.blocks),
            # the rows [1, e] and the log joint
            line = max(1, 64 // (torch.finfo(X.dtype).bits // 8))
            row_numbers = 2 * per_row + 4 * line + self.width + n_components
        else:
            self.n_quad = d if cov_type == "diag" else 1
            self.width = self.n_quad + d + 1
            per_row = row_numbers = self.width + n_components + d     # the rows, their log joint, temporaries
        self.block_rows = _block_rows(n, per_row, X.dtype, X.device, row_numbers, X.numel() * X.element_size())
        blocks = [(i, min(i + self.block_rows, n)) for i in range(0, n, self.block_rows)]
        # chunks are for threads (CPU); elsewhere one chunk: each further one costs a few small operations
        chunks = min(len(blocks), _MAX_CHUNKS) if X.device.type == "cpu" else 1
        per_chunk = -(-len(blocks) // chunks)
        self.chunks = [blocks[i:i + per_chunk] for i in range(0, len(blocks), per_chunk)]
        self._constants: dict = {}

    def constant(self, key, make):
        """``make()``, made once per design (a fit) and kept: what every EM iteration would otherwise make again."""
        if key not in self._constants:
            self._constants[key] = make()
        return self._constants[key]

    def scalar(self, value: float) -> torch.Tensor:
        """``value`` as a 0-dim CPU tensor of the data's dtype, made once: as an operand of a CPU or GPU tensor
        it gives the same numbers as the Python float (which torch would convert to that dtype on every use)."""
        return self.constant(("scalar", value), lambda: torch.tensor(value, dtype=self.X.dtype))

    def buffer(self) -> torch.Tensor:
        """A buffer for the rows of one block, (block_rows, width), its constant columns set."""
        a = torch.empty(self.block_rows, self.width, dtype=self.X.dtype, device=self.X.device)
        a[:, 0 if self.cov_type == "full" else -1] = 1
        return a

    def rows_of(self, start: int, stop: int, a: torch.Tensor) -> torch.Tensor:
        """Diagonal and spherical: the rows of the points ``start`` … ``stop`` − 1, written into ``a`` (a
        :meth:`buffer`); that view. (Full covariances: :meth:`_FullBlock.load`.)"""
        d, q = self.d, self.n_quad
        a = a[:stop - start]
        e = torch.sub(self.X[start:stop], self.center, out=a[:, q:q + d])
        if self.cov_type == "diag":
            torch.mul(e, e, out=a[:, :d])
        else:
            torch.linalg.vecdot(e, e, out=a[:, 0])
        return a


def _parts(d: int) -> int:
    """How many equal parts the features are cut into for the triangular products (1 when d does not allow)."""
    for parts in range(_FEATURE_PARTS, 1, -1):
        if d % parts == 0 and d // parts >= _MIN_PART:
            return parts
    return 1


class _Whitened:
    """The whitened residuals y_k = (x − μ_k) U_k of a block of m points under the K components, laid out
    (m, d K), and the products and passes over them.

    The features are cut into ``parts`` equal parts of h (see :func:`_parts`), each the output of one product
    (see :meth:`weights`) in its own columns. Within a part the columns are feature-major (column i K + k is
    feature i of component k) when there are many components, so that the sums over the features run along K
    contiguous numbers, and component-major (k h + i) when there are few (K < ``_FEATURE_MAJOR_FROM``), so
    that they run along h: torch's reductions and broadcasts are slow along a few numbers.
    """

    def __init__(self, d: int, n_components: int):
        self.d, self.K = d, n_components
        self.parts = _parts(d)
        self.h = d // self.parts
        self.feature_major = n_components >= _FEATURE_MAJOR_FROM

    def columns(self, j: int) -> slice:
        """The columns of part j."""
        return slice(j * self.h * self.K, (j + 1) * self.h * self.K)

    def blocks(self, a: torch.Tensor):
        """The buffers of one thread for blocks of up to ``a.shape[0]`` points (``a``: a :meth:`_Design.buffer`):
        a function of m that gives their views for a block of m points (a :class:`_FullBlock`, made once per m).

        The residuals' and squares' buffers, (rows, d K) each, have their rows padded by a cache line or three,
        so that a row is not a multiple of 4 KiB apart from the next (d K = 512 doubles is exactly 4 KiB): such
        strides make the products' reads collide in the same cache sets, and the squares' writes alias the
        residuals' reads; the float64 products were 9 % slower.
        """
        rows, dtype, device = a.shape[0], a.dtype, a.device
        width, line = self.d * self.K, max(1, 64 // (torch.finfo(dtype).bits // 8))
        y = torch.empty(rows, width + line, dtype=dtype, device=device)[:, :width]
        sq = torch.empty(rows, width + 3 * line, dtype=dtype, device=device)[:, :width]
        lj = torch.empty(rows, self.K, dtype=dtype, device=device)
        made: dict[int, _FullBlock] = {}

        def block(m: int) -> _FullBlock:
            if m not in made:
                made[m] = _FullBlock(self, a[:m], y[:m], sq[:m], lj[:m])
            return made[m]
        return block

    def weights(self, p: _Params, center: torch.Tensor) -> list[torch.Tensor]:
        """The E-step's product matrices, one per part j of the features.

        Part j of the whitened residuals (x − μ_k) U_k = (e − m_k) U_k (e = x − c, m_k = μ_k − c), for every
        k at once, is ``[1, e_0 … e_(j+1)h−1] @ W_j`` with ``W_j = [[−m_1 U_1 … −m_K U_K], [U_1 … U_K]]``
        restricted to the columns of part j and to the rows above its end: U_k is upper triangular, so the rows
        below are zero and are left out of the product. Returns the W_j, each ((j + 1) h + 1, h K).
        """
        U, K, h = p.prec_chol, self.K, self.h
        bias = -((p.means - center).unsqueeze(1) @ U).squeeze(1)                     # (K, d)
        out = []
        for j in range(self.parts):
            cols = slice(j * h, (j + 1) * h)
            end = (j + 1) * h
            top, body = bias[:, cols], U[:, :end, cols]                               # (K, h), (K, end, h)
            if self.feature_major:
                top, body = top.T, body.permute(1, 2, 0)
            else:
                body = body.permute(1, 0, 2)
            out.append(torch.cat([top.reshape(1, h * K), body.reshape(end, h * K)], dim=0))
        return out

    def log_joint(self, b: _FullBlock, Ws: list[torch.Tensor], const: torch.Tensor) -> torch.Tensor:
        """log π_k + log N(x_n; μ_k, Σ_k) of the block ``b`` (its rows loaded) into ``b.lj`` (m, K), the whitened
        residuals into ``b.y`` (m, d K), their squares into ``b.sq``."""
        for (rows, y_j), Wj in zip(b.e_step, Ws):
            torch.matmul(rows, Wj, out=y_j)
        torch.mul(b.y, b.y, out=b.sq)
        if self.feature_major:                                                        # ‖(x − μ_k) U_k‖²
            torch.sum(b.sq_terms, dim=1, out=b.lj)
        else:
            torch.sum(b.sq_terms.sum(3), dim=1, out=b.lj)
        return torch.add(const, b.lj, alpha=-0.5, out=b.lj)

    def per_component(self, g: torch.Tensor) -> torch.Tensor:
        """Sums laid out like a part's columns, (rows, h K), as (K, rows, h)."""
        if self.feature_major:
            return g.view(-1, self.h, self.K).permute(2, 0, 1)
        return g.view(-1, self.K, self.h).permute(1, 0, 2)


class _FullBlock:
    """The views of one thread's buffers that the operations on a block of m points take (full covariances).

    Made once per m (a fit has at most two: the block size and the last block's) and reused: taking a view
    costs about as much as one of the small operations on the block, and a block takes some twenty views.
    ``lj`` holds the log joint, then the responsibilities (m, K); the M-step's sums take ``r_e`` (rᵀ with
    ``[1, e]``) and ``m_step`` (``e_(≥jh)ᵀ`` with the scaled residuals of part j).
    """

    def __init__(self, w: _Whitened, a: torch.Tensor, y: torch.Tensor, sq: torch.Tensor, lj: torch.Tensor):
        m, d, K, h = a.shape[0], w.d, w.K, w.h
        self.y, self.sq, self.lj = y, sq, lj
        self.e = a[:, 1:d + 1]                                                        # x − c
        self.e_step = [(a[:, :(j + 1) * h + 1], y[:, w.columns(j)]) for j in range(w.parts)]
        self.m_step = [(a[:, 1 + j * h:d + 1].T, y[:, w.columns(j)]) for j in range(w.parts)]
        self.r_e = (lj.T, a)
        if w.feature_major:
            self.sq_terms, self.y_terms, self.r_terms = sq.view(m, d, K), y.view(m, d, K), lj.view(m, 1, K)
        else:
            self.sq_terms = sq.view(m, w.parts, K, h)
            self.y_terms, self.r_terms = y.view(m, w.parts, K, h), lj.view(m, 1, K, 1)

    def load(self, X: torch.Tensor, center: torch.Tensor, start: int, stop: int) -> None:
        """The rows of the points ``start`` … ``stop`` − 1: ``[1, x − c]``."""
        torch.sub(X[start:stop], center, out=self.e)


def _responsibilities_(lj: torch.Tensor, log_norm_out: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``P(k | x_n)`` from a finite log joint, overwriting it; ``log p(x_n)`` into ``log_norm_out`` (m,). The
    components run along ``dim``: (m, K) with ``dim=1``, (K, m) with ``dim=0``.

    The log-sum-exp of ``course_lib.elbo``, with one difference: a responsibility below the smallest normal
    number of the dtype (exp(−87) in float32) is set to 0 instead of computed (as a subnormal): torch's exp is
    many times slower on such arguments, and the subnormals would slow the products that follow.
    """
    low = _LOG_TINY[lj.dtype]
    shift = lj.amax(dim=dim, keepdim=True)
    resp = lj.sub_(shift).clamp_(min=low).exp_()
    torch.nn.functional.threshold_(resp, math.exp(low + 0.5), 0.0)
    total = resp.sum(dim=dim, keepdim=True)
    resp.div_(total)
    torch.add(total.log_().squeeze(dim), shift.squeeze(dim), out=log_norm_out)
    return resp


def _diag_weights(p: _Params, design: _Design, const: torch.Tensor) -> torch.Tensor:
    """Coefficients of the rows [q(e), e, 1] (e = x − c) in log π + log N, diagonal and spherical: (K, F).

    With m_k = μ_k − c and precisions λ: −½ Σ λ (e − m_k)² = −½ λ e² + λ m_k e − ½ λ m_k²."""
    prec, mc = p.prec_chol ** 2, p.means - design.center
    if design.cov_type == "diag":
        quad, lin, mpm = -0.5 * prec, prec * mc, (prec * mc * mc).sum(1)
    else:
        quad, lin, mpm = -0.5 * prec[:, None], prec[:, None] * mc, prec * (mc * mc).sum(1)
    return torch.cat([quad, lin, (const - 0.5 * mpm)[:, None]], dim=1)


def _weighted_log_prob(X: torch.Tensor, p: _Params, cov_type: str) -> torch.Tensor:
    """log π_m + log N(x_n; μ_m, Σ_m), (n, K), over row blocks (the products of the E-step)."""
    K, d = p.means.shape
    design = _Design(X, cov_type, K)
    const = _log_const(p, cov_type, d)
    out = torch.empty(design.n, K, dtype=X.dtype, device=X.device)
    buf = design.buffer()
    if cov_type == "full":
        whitened = design.whitened
        Ws, blocks = whitened.weights(p, design.center), whitened.blocks(buf)
    else:
        W = _diag_weights(p, design, const)
    for chunk in design.chunks:
        for start, stop in chunk:
            if cov_type == "full":
                b = blocks(stop - start)
                b.load(X, design.center, start, stop)
                out[start:stop] = whitened.log_joint(b, Ws, const)
            else:
                torch.matmul(design.rows_of(start, stop, buf), W.T, out=out[start:stop])
    return out


def _estimate_from_resp(X: torch.Tensor, resp: torch.Tensor, cov_type: str, reg_covar: float):
    """Weighted maximum-likelihood estimates: ``(N_m, means, covariances)`` from responsibilities (n, K).

    ``N_m = Σ_n r_nm`` (plus 10 machine epsilons, as in scikit-learn, so an empty component gives 0, not 0/0).
    """
    eps = torch.finfo(X.dtype).eps
    nk = resp.sum(0) + 10 * eps
    means = (resp.T @ X) / nk[:, None]
    if cov_type == "full":
        covs = []
        for k in range(means.shape[0]):
            diff = X - means[k]
            covs.append((resp[:, k:k + 1] * diff).T @ diff / nk[k])
        cov = torch.stack(covs)
        cov = 0.5 * (cov + cov.mT)
        cov.diagonal(dim1=-2, dim2=-1).add_(reg_covar)
    else:
        cov = (resp.T @ (X * X)) / nk[:, None] - means ** 2 + reg_covar
        if cov_type == "spherical":
            cov = cov.mean(1)
    return nk, means, cov


def _em_iteration(design: _Design, p: _Params, reg_covar: float, sampling: bool, gen: torch.Generator | None):
    """One E-step (at ``p``) and M-step, fused; returns (new parameters, total log-likelihood at ``p`` as a
    tensor, and as a float).

    The checks of the iteration (the log-likelihood finite, no component without points, the new covariances
    positive definite) wait for the device once, all together, with the log-likelihood: one host
    synchronisation per iteration, not one per check (each makes the host wait for a GPU to finish before it
    may queue the next operation)."""
    ct, d, n = design.cov_type, design.d, design.n
    K = p.means.shape[0]
    dev, dt = p.means.device, p.means.dtype
    # the operations on the parameters are small: on one thread (more would spin idle after each)
    with few_threads(dev.type == "cpu"):
        const = _log_const(p, ct, d, design)
        if ct == "full":
            whitened = design.whitened
            n_parts, h = whitened.parts, whitened.h
            Ws = whitened.weights(p, design.center)
            # part l of the M-step's sums: [e_lh … e_d−1]ᵀ (r ⊙ y_l), (d − l h, h K); then rᵀ [1, e]: N_m and
            # Σ r e, (K, d + 1)
            acc_shapes = [(d - l * h, h * K) for l in range(n_parts)] + [(K, d + 1)]
        else:
            W = _diag_weights(p, design, const)
            acc_shapes = [(K, design.width)]
    log_norm = torch.empty(n, dtype=dt, device=dev)         # log p(x_n)
    k_dim = 1 if ct == "full" else 0                        # the axis of the components in the log joint
    sums = _OrderedSum()

    def run(next_chunk):
        """E-step and M-step sums over the chunks ``next_chunk()`` hands out, each chunk into its own sums."""
        a_buf = design.buffer()
        if ct == "full":
            blocks = whitened.blocks(a_buf)
        else:
            lj_buf = torch.empty(K, design.block_rows, dtype=dt, device=dev)   # the log joint, (K, m)
        while (c := next_chunk()) is not None:
            accs = [torch.zeros(shape, dtype=dt, device=dev) for shape in acc_shapes]
            for start, stop in design.chunks[c]:
                if ct == "full":
                    b = blocks(stop - start)
                    b.load(design.X, design.center, start, stop)
                    lj = whitened.log_joint(b, Ws, const)                            # log π + log N, (m, K)
                else:
                    a = design.rows_of(start, stop, a_buf)
                    lj = torch.matmul(W, a.T, out=lj_buf[:, :stop - start])          # (K, m)
                r = _responsibilities_(lj, log_norm[start:stop], k_dim)
                if sampling:
                    z = torch.multinomial(r if k_dim == 1 else r.T, 1, generator=gen)   # (m, 1)
                    r.zero_().scatter_(k_dim, z if k_dim == 1 else z.T, 1.0)
                if ct == "full":
                    accs[-1].addmm_(*b.r_e)                        # Σ r [1, e]
                    b.y_terms.mul_(b.r_terms)                      # y_k ← r_k y_k
                    for acc, (rows, y_l) in zip(accs, b.m_step):   # Σ e_(≥lh) r ((x − μ_k) U_k)_lᵀ
                        acc.addmm_(rows, y_l)
                else:
                    accs[0].addmm_(r, a)             # Σ r [q(e), e, 1]; its last column is N_m
            sums.add(c, accs)

    n_chunks = len(design.chunks)
    workers = min(torch.get_num_threads(), n_chunks) if dev.type == "cpu" and not sampling else 1
    if workers > 1:
        _run_shared(run, n_chunks, workers)
    else:
        # a small problem: a thread pool costs more than it saves on its tiny operations
        with few_threads(dev.type == "cpu" and n * (K * d if ct == "full" else design.width + K) < 4_000_000):
            run(_counter(n_chunks))
    with few_threads(dev.type == "cpu"):
        ll = log_norm.sum()
        new, nk_raw, info = _m_from_sums(sums.total, design, p, reg_covar)
        # what the checks read, sent to the host with the log-likelihood in one transfer: the N_m, and (full)
        # the sum of the new precision factors, finite where they all are, and the factorisations' info, or
        # (otherwise) the smallest and largest new variance; only where these look wrong do the checks run
        # (they raise for what is wrong, with its own message)
        if ct == "full":
            probe = torch.cat([ll.view(1), new.prec_chol.sum().view(1), nk_raw, info.to(dt)]).tolist()
            fine = math.isfinite(probe[1]) and not any(probe[2 + K:])
        else:
            low, high = torch.aminmax(new.covariances)
            probe = torch.cat([ll.view(1), low.view(1), nk_raw, high.view(1)]).tolist()
            fine = probe[1] > 0 and math.isfinite(probe[-1])
        tiny = 10 * torch.finfo(dt).eps
        if not (fine and math.isfinite(probe[0]) and all(v > tiny for v in probe[2:2 + K])):
            _check_iteration(ll, nk_raw, new, info, ct, reg_covar, sampling)
        return new, ll, probe[0]


def _check_iteration(ll: torch.Tensor, nk_raw: torch.Tensor, new: _Params, info, ct: str, reg_covar: float,
                     sampling: bool) -> None:
    """The checks of an EM iteration (see :func:`_em_iteration`), in order; a clear error for the first that
    fails."""
    if not torch.isfinite(ll):
        raise ValueError("the log-likelihood is not finite (a component collapsed onto single points); "
                         "increase reg_covar or use fewer components")
    empty = nk_raw <= 10 * torch.finfo(nk_raw.dtype).eps
    if bool(empty.any()):
        one = int(empty.sum()) == 1
        how = (f"no point was drawn for {'it' if one else 'them'}" if sampling
               else "the responsibilities vanished")
        raise ValueError(f"{_bad_components(empty)} lost all {'its' if one else 'their'} points ({how}); "
                         "use fewer components, "
                         "a larger reg_covar, or another initialisation (random_state, init_params)")
    _check_factors(new.covariances, ct, new.prec_chol, info, _covariance_hint(float(reg_covar), None))


def _m_from_sums(acc: list[torch.Tensor], design: _Design, p: _Params, reg_covar: float):
    """The M-step from the fused sums of :func:`_em_iteration` (see the module docstring), unchecked:
    ``(new parameters, N_m as summed, the Cholesky factorisation's info (full; else None))``."""
    ct, d, q = design.cov_type, design.d, design.n_quad
    K = p.means.shape[0]
    nk_raw = acc[-1][:, 0] if ct == "full" else acc[0][:, -1]
    eps = torch.finfo(nk_raw.dtype).eps
    nk = nk_raw + design.scalar(10 * eps)
    reg = design.scalar(float(reg_covar))
    if ct == "full":
        n_parts = len(acc) - 1
        h = d // n_parts
        L = p.cov_chol                                         # U_k⁻ᵀ, lower: (e − m) = y Lᵀ
        c = p.means - design.center                            # m_k = μ_k − c
        s = acc[-1][:, 1:] - nk_raw[:, None] * c                # Σ r (e − m)
        # G_l = Σ r e_(≥lh) y_lᵀ per k, (K, d − l h, h); e_i (e − m)_jᵀ for i ≥ j follows from the G_l with
        # l ≤ j ((e − m)_j = Σ_(l ≤ j) y_l L_jlᵀ, L lower triangular)
        G = [design.whitened.per_component(g) for g in acc[:-1]]
        S = torch.empty(K, d, d, dtype=nk.dtype, device=nk.device)
        for j in range(n_parts):
            cols = slice(j * h, (j + 1) * h)
            M_j = None
            for l in range(j + 1):
                term = G[l][:, (j - l) * h:] @ L[:, cols, l * h:(l + 1) * h].mT
                M_j = term if M_j is None else M_j + term               # Σ r e_(≥jh) (e − m)_jᵀ
            S[:, j * h:, cols] = M_j - c[:, j * h:, None] * s[:, None, cols]          # Σ r (e − m)_(≥jh) (e − m)_jᵀ

        def below_mask():                                      # the blocks on and below the diagonal
            below = torch.ones(n_parts, n_parts, dtype=torch.bool, device=S.device).tril()
            return below.repeat_interleave(h, 0).repeat_interleave(h, 1)
        S = torch.where(design.constant("below", below_mask), S, S.mT)   # those above by symmetry
        delta = s / nk[:, None]
        means = p.means + delta
        cov = S / nk[:, None, None] - delta.unsqueeze(-1) * delta.unsqueeze(1)
        cov = (cov + cov.mT) * design.scalar(0.5)
        cov.diagonal(dim1=-2, dim2=-1).add_(reg)
        eye = design.constant("eye", lambda: torch.eye(d, dtype=cov.dtype, device=cov.device))
    else:
        acc = acc[0]
        shift = acc[:, q:q + d] / nk[:, None]                  # μ_k − c
        means = design.center + shift
        if ct == "diag":
            cov = acc[:, :d] / nk[:, None] - shift * shift + reg
        else:
            cov = (acc[:, 0] / nk - (shift * shift).sum(1)) / d + reg
        eye = None
    weights = nk / nk.sum()
    prec_chol, cov_chol, info = _factor_covariances(cov, ct, eye)
    return _Params(weights, means, cov, prec_chol, cov_chol), nk_raw, info


# ------------------------------------------------------------------------------------------ the public steps
_GIVEN_HINT = "pass symmetric positive-definite covariances (positive variances for 'diag' and 'spherical')"


def _given_params(X: torch.Tensor | None, weights, means, covariances, cov_type: str, *, like=None) -> _Params:
    """Mixture parameters given by a caller, checked, as tensors on the device and dtype of ``X`` (or ``like``)."""
    check_choice(cov_type, "covariance_type", _COVARIANCE_TYPES)
    ref = X if X is not None else like
    conv = dict(device=ref.device, dtype=ref.dtype) if ref is not None else {}
    w, _ = as_tensor(weights, name="weights", ndim=1, **conv)
    m, _ = as_tensor(means, name="means", ndim=2, **conv)
    c, _ = as_tensor(covariances, name="covariances", ndim=None, device=m.device, dtype=m.dtype)
    w = w.to(device=m.device, dtype=m.dtype)
    K, d = m.shape
    if w.shape[0] != K or K == 0:
        raise ValueError(f"weights has {w.shape[0]} entries and means {K} rows; pass one weight and one mean per "
                         "component")
    if X is not None and d != X.shape[1]:
        raise ValueError(f"means has {d} columns but X has {X.shape[1]} features; pass means of shape "
                         f"(n_components, {X.shape[1]})")
    shape = {"full": (K, d, d), "diag": (K, d), "spherical": (K,)}[cov_type]
    if tuple(c.shape) != shape:
        raise ValueError(f"covariances has shape {tuple(c.shape)}; covariance_type={cov_type!r} with {K} "
                         f"components in {d} dimensions needs {shape}")
    tol = 1e-6 if m.dtype == torch.float64 else 1e-4
    if bool((w < 0).any()) or abs(float(w.sum()) - 1.0) > tol:
        raise ValueError(f"weights must be non-negative and sum to 1 (they sum to {float(w.sum()):.6g}); "
                         "divide them by their sum")
    if cov_type == "full":
        scale = float(c.abs().amax()) if c.numel() else 0.0
        if not torch.allclose(c, c.mT, rtol=tol, atol=tol * scale):
            raise ValueError("covariances must be symmetric; pass (C + C.T) / 2 for each component")
    return _params_from_covariances(w, m, c, cov_type, 0.0, hint=_GIVEN_HINT)


def _total(t: torch.Tensor, per_observation: bool, numpy_io: bool):
    if per_observation:
        return t.cpu().numpy() if numpy_io else t
    total = t.sum()
    return float(total) if numpy_io else total


@_fork_safe
def log_joint(X, weights, means, covariances, *, covariance_type: str = "full"):
    """The log joint ``log π_m + log N(x_n; μ_m, Σ_m)`` of every point and component.

    Parameters
    ----------
    X : (n_samples, n_features) array or tensor
        The points. Their kind decides the output's: NumPy in, NumPy (float64) out; a tensor in, a tensor
        out on its device and in its floating dtype (the parameters are converted to them).
    weights : (n_components,)
        Mixing proportions π, non-negative, summing to 1.
    means : (n_components, n_features)
    covariances : (n_components, n_features, n_features) for "full", (n_components, n_features) for "diag",
        (n_components,) for "spherical"
        Symmetric positive definite (positive variances).
    covariance_type : {"full", "diag", "spherical"}

    Returns
    -------
    (n_samples, n_components)
        Its log-sum-exp over the components is log p(x_n); :func:`course_lib.elbo.posterior` of it gives
        the responsibilities.

    Examples
    --------
    >>> import numpy as np
    >>> lj = log_joint(np.zeros((1, 2)), [0.5, 0.5], [[0.0, 0.0], [3.0, 0.0]], [np.eye(2), np.eye(2)])
    >>> np.round(lj, 3)
    array([[-2.531, -7.031]])
    """
    Xt, numpy_io = as_tensor(X, name="X", ndim=2, min_features=1)
    p = _given_params(Xt, weights, means, covariances, covariance_type)
    return _weighted_log_prob(Xt, p, covariance_type).cpu().numpy() if numpy_io \
        else _weighted_log_prob(Xt, p, covariance_type)


@_fork_safe
def e_step(X, weights, means, covariances, *, covariance_type: str = "full", per_observation: bool = False):
    """The E-step of a Gaussian mixture: responsibilities and log-likelihood at the given parameters.

    ``r_nm = π_m N(x_n; μ_m, Σ_m) / Σ_j π_j N(x_n; μ_j, Σ_j)``, computed in log space with log-sum-exp, so
    points far from every component give no 0/0.

    Parameters
    ----------
    X, weights, means, covariances, covariance_type
        As for :func:`log_joint`.
    per_observation : bool, default False
        Return ``log p(x_n)`` for every point (shape (n_samples,)) instead of their sum.

    Returns
    -------
    resp : (n_samples, n_components)
        The responsibilities; every row sums to 1.
    log_likelihood : float (0-d tensor for tensor input), or (n_samples,) with ``per_observation=True``
        ``Σ_n log p(x_n)`` at the given parameters.

    Examples
    --------
    >>> import numpy as np
    >>> resp, ll = e_step(np.array([[0.0], [3.0]]), [0.5, 0.5], [[0.0], [3.0]], [[[1.0]], [[1.0]]])
    >>> np.round(resp, 3)
    array([[0.989, 0.011],
           [0.011, 0.989]])
    >>> round(ll, 4)
    -3.2021
    """
    Xt, numpy_io = as_tensor(X, name="X", ndim=2, min_features=1)
    p = _given_params(Xt, weights, means, covariances, covariance_type)
    log_resp, log_norm = _log_normalize(_weighted_log_prob(Xt, p, covariance_type))
    resp = log_resp.exp()
    return (resp.cpu().numpy() if numpy_io else resp), _total(log_norm, per_observation, numpy_io)


@_fork_safe
def m_step(X, resp, *, covariance_type: str = "full", reg_covar: float = 0.0):
    """The M-step of a Gaussian mixture: the weighted maximum-likelihood parameters from responsibilities.

    ``N_m = Σ_n r_nm``, ``π_m = N_m / Σ_j N_j``, ``μ_m = Σ_n r_nm x_n / N_m`` and
    ``Σ_m = Σ_n r_nm (x_n − μ_m)(x_n − μ_m)ᵀ / N_m + reg_covar · I`` (its diagonal for "diag", the mean of
    that diagonal for "spherical"). With ``reg_covar=0`` (the default) these are the exact maximisers;
    :class:`GaussianMixture` adds its ``reg_covar``.

    Parameters
    ----------
    X : (n_samples, n_features) array or tensor
    resp : (n_samples, n_components)
        Non-negative weights of every point for every component (the E-step's responsibilities; rows need
        not sum to 1).
    covariance_type : {"full", "diag", "spherical"}
    reg_covar : float, default 0.0

    Returns
    -------
    weights : (n_components,)
    means : (n_components, n_features)
    covariances : shaped as ``covariance_type`` says (see :func:`log_joint`)

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [2.0], [10.0], [12.0]])
    >>> weights, means, covs = m_step(X, np.array([[1, 0], [1, 0], [0, 1], [0, 1]]))
    >>> weights, means.ravel(), covs.ravel()
    (array([0.5, 0.5]), array([ 1., 11.]), array([1., 1.]))
    """
    Xt, numpy_io = as_tensor(X, name="X", ndim=2, min_features=1)
    check_choice(covariance_type, "covariance_type", _COVARIANCE_TYPES)
    reg = check_nonneg(reg_covar, "reg_covar")
    r, _ = as_tensor(resp, name="resp", ndim=2, device=Xt.device, dtype=Xt.dtype)
    if r.shape[0] != Xt.shape[0] or r.shape[1] == 0:
        raise ValueError(f"resp has shape {tuple(r.shape)}; pass one row per point of X ({Xt.shape[0]}) and one "
                         "column per component")
    if bool((r < 0).any()):
        raise ValueError("resp has negative entries; pass responsibilities (probabilities, each row summing to 1)")
    mass = r.sum(0)
    if bool((mass <= 0).any()):
        raise ValueError(f"{_bad_components(mass <= 0)} has zero total responsibility, so its mean and covariance "
                         "are undefined; drop it or give it some weight")
    nk, means, covs = _estimate_from_resp(Xt, r, covariance_type, reg)
    weights = nk / nk.sum()
    return tuple(t.cpu().numpy() if numpy_io else t for t in (weights, means, covs))


@_fork_safe
def em_step(X, weights, means, covariances, *, covariance_type: str = "full", reg_covar: float = 0.0):
    """One EM iteration of a Gaussian mixture, run as :class:`GaussianMixture` runs it.

    The E-step at the given parameters and the M-step from its responsibilities, fused into the blocked
    products of the module docstring; equal (to rounding) to ``m_step(X, e_step(X, ...)[0], ...)``.

    Parameters
    ----------
    X, weights, means, covariances, covariance_type
        As for :func:`log_joint`.
    reg_covar : float, default 0.0
        Added to the diagonal of the new covariances.

    Returns
    -------
    weights, means, covariances
        The updated parameters, shaped as the given ones.
    log_likelihood : float (0-d tensor for tensor input)
        ``Σ_n log p(x_n)`` at the given parameters (EM never lowers it from one step to the next).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [2.0], [10.0], [12.0]])
    >>> w, m, c, ll = em_step(X, [0.5, 0.5], [[0.0], [10.0]], [[[4.0]], [[4.0]]])
    >>> np.round(m.ravel(), 2), ll < 0
    (array([ 1., 11.]), True)
    """
    Xt, numpy_io = as_tensor(X, name="X", ndim=2, min_features=1)
    check_scale(Xt)
    reg = check_nonneg(reg_covar, "reg_covar")
    p = _given_params(Xt, weights, means, covariances, covariance_type)
    new, ll, value = _em_iteration(_Design(Xt, covariance_type, p.means.shape[0]), p, reg, False, None)
    out = [t.cpu().numpy() if numpy_io else t for t in (new.weights, new.means, new.covariances)]
    return (*out, value if numpy_io else ll)


class GaussianMixture(DensityMixin, Estimator):
    """A mixture of K Gaussians fitted by EM, with scikit-learn's parameters and fitted attributes.

    Parameters
    ----------
    n_components : int
        The number of mixture components K.
    covariance_type : {"full", "diag", "spherical"}
        Each component's covariance: a full matrix, a diagonal, or a single variance times the identity.
    tol : float
        Stop when the average log-likelihood per sample changes by less than ``tol`` between iterations.
    reg_covar : float
        Added to the diagonal of every covariance; keeps components from collapsing onto single points.
        With ``reg_covar=0`` the updates are exact maximum likelihood.
    max_iter : int
        The most EM iterations per initialisation.
    n_init : int
        Number of initialisations; the one with the highest final log-likelihood is kept.
    init_params : {"kmeans", "random_from_data"}
        "kmeans": responsibilities from a few Lloyd iterations of k-means (k-means++ seeding).
        "random_from_data": K distinct data points as means, the data covariance for every component,
        equal weights.
    weights_init : array of shape (K,), optional
        Initial mixing weights (non-negative, summing to 1).
    means_init : array of shape (K, d), optional
        Initial means.
    precisions_init : array, optional
        Initial precisions (inverse covariances): (K, d, d) for "full", (K, d) for "diag", (K,) for
        "spherical".
    completion : {"expectation", "sampling"}
        How the E-step completes the data: with every component in proportion to its responsibility
        (classical EM), or with one component drawn per point from its responsibilities (stochastic EM).
    random_state : int, torch.Generator or None
        Seeds the initialisation, ``completion="sampling"`` and ``sample``.
    device, dtype : optional
        Compute on this device / in this dtype instead of the input's.
    verbose : int
        Print the log-likelihood at each iteration when positive.

    Attributes
    ----------
    weights_ : (K,)
    means_ : (K, d)
    covariances_ : (K, d, d) for "full", (K, d) for "diag", (K,) for "spherical"
    precisions_, precisions_cholesky_ : same shapes as ``covariances_``
    lower_bound_ : float
        The average log-likelihood per sample, (1/N) Σ_n log p(x_n), at the parameters the last E-step used
        (the same quantity as scikit-learn's ``lower_bound_``), for the best initialisation.
    lower_bounds_ : list of float
        That quantity at every iteration of the best initialisation.
    n_iter_ : int
    converged_ : bool

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 6])
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0]).round(1), gm.converged_
    (array([-0.1,  5.9]), True)
    """

    def __init__(self, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100, n_init=1,
                 init_params="kmeans", weights_init=None, means_init=None, precisions_init=None,
                 completion="expectation", random_state=None, device=None, dtype=None, verbose=0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.completion = completion
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    _fitted_attributes = ("weights_", "means_", "covariances_", "precisions_cholesky_")

    # ------------------------------------------------------------------ checks
    def _check_hyperparameters(self) -> None:
        check_int(self.n_components, "n_components")
        check_choice(self.covariance_type, "covariance_type", _COVARIANCE_TYPES)
        check_choice(self.init_params, "init_params", _INIT_PARAMS)
        check_choice(self.completion, "completion", _COMPLETIONS)
        check_nonneg(self.tol, "tol")
        check_nonneg(self.reg_covar, "reg_covar")
        check_int(self.max_iter, "max_iter", minimum=0)
        check_int(self.n_init, "n_init")

    def _user_init(self, X: torch.Tensor):
        """The user's initial parameters as tensors on X's device and dtype (None where not given)."""
        K, d = self.n_components, X.shape[1]

        def conv(value, name, shape):
            if value is None:
                return None
            t = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
            t = t.to(device=X.device, dtype=X.dtype)
            if tuple(t.shape) != shape:
                raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {shape} "
                                 f"(n_components={K}, n_features={d})")
            if not torch.isfinite(t).all():
                raise ValueError(f"{name} contains NaN or infinite values; pass finite numbers")
            return t

        w = conv(self.weights_init, "weights_init", (K,))
        if w is not None:
            if (w < 0).any() or (w == 0).all():
                raise ValueError("weights_init must be non-negative; pass mixing proportions summing to 1")
            if abs(float(w.sum()) - 1.0) > 1e-6:
                raise ValueError(f"weights_init sums to {float(w.sum()):.6g}, not 1; divide it by its sum")
        m = conv(self.means_init, "means_init", (K, d))
        shape = {"full": (K, d, d), "diag": (K, d), "spherical": (K,)}[self.covariance_type]
        p = conv(self.precisions_init, "precisions_init", shape)
        if p is not None and self.covariance_type == "full":
            if not torch.allclose(p, p.mT, rtol=1e-6, atol=1e-8 * float(p.abs().max())):
                raise ValueError("precisions_init must hold symmetric matrices; pass (P + P.T) / 2")
        return w, m, p

    # ------------------------------------------------------------------ initialisation
    def _estimate_from_resp(self, X: torch.Tensor, resp: torch.Tensor):
        """Weighted ML estimates ``(N_m, means, covariances)`` from given responsibilities (used for the
        initialisation), with this mixture's ``covariance_type`` and ``reg_covar``; see :func:`m_step`."""
        return _estimate_from_resp(X, resp, self.covariance_type, float(self.reg_covar))

    def _kmeans_labels(self, X: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """k-means++ seeding followed by a few Lloyd iterations; returns labels (n,)."""
        n, K = X.shape[0], self.n_components
        x2 = (X * X).sum(1)

        def sq_dist(C):
            return (x2[:, None] - 2 * (X @ C.T) + (C * C).sum(1)[None]).clamp_min_(0)

        first = torch.randint(n, (1,), generator=gen, device=X.device)
        centers = [X[first[0]]]
        closest = sq_dist(centers[0][None])[:, 0]
        for _ in range(1, K):
            total = closest.sum()
            if total <= 0:      # fewer distinct points than components: take any not yet chosen
                idx = torch.randint(n, (1,), generator=gen, device=X.device)[0]
            else:
                idx = torch.multinomial(closest / total, 1, generator=gen)[0]
            centers.append(X[idx])
            closest = torch.minimum(closest, sq_dist(X[idx][None])[:, 0])
        C = torch.stack(centers)
        labels = None
        for _ in range(_KMEANS_ITERS):
            D = sq_dist(C)
            new = D.argmin(1)
            if labels is not None and torch.equal(new, labels):
                break
            labels = new
            counts = torch.bincount(labels, minlength=K).to(X.dtype)
            sums = torch.zeros_like(C).index_add_(0, labels, X)
            empty = counts == 0
            C = torch.where(empty[:, None], C, sums / counts.clamp_min(1)[:, None])
            if bool(empty.any()):   # move empty clusters to the points farthest from their centers
                far = D.gather(1, labels[:, None])[:, 0].argsort(descending=True)
                C[empty] = X[far[: int(empty.sum())]]
        return sq_dist(C).argmin(1)

    def _initialize(self, X: torch.Tensor, gen: torch.Generator, user) -> _Params:
        n, d = X.shape
        K = self.n_components
        w0, m0, p0 = user
        ct = self.covariance_type
        weights = means = covs = None
        if w0 is None or m0 is None or p0 is None:
            if self.init_params == "kmeans":
                labels = self._kmeans_labels(X, gen)
                resp = torch.zeros(n, K, dtype=X.dtype, device=X.device)
                resp[torch.arange(n, device=X.device), labels] = 1
                nk, means, covs = self._estimate_from_resp(X, resp)
                weights = nk / n
            else:
                idx = torch.randperm(n, generator=gen, device=X.device)[:K]
                means = X[idx].clone()
                weights = torch.full((K,), 1.0 / K, dtype=X.dtype, device=X.device)
                _, _, c1 = self._estimate_from_resp(X, torch.ones(n, 1, dtype=X.dtype, device=X.device))
                covs = c1.expand(K, *c1.shape[1:]).clone()
        weights = w0 if w0 is not None else weights
        means = m0 if m0 is not None else means
        if p0 is not None:
            return _params_from_precisions(weights, means, p0, ct)
        return _params_from_covariances(weights, means, covs, ct, float(self.reg_covar))

    # ------------------------------------------------------------------ EM
    def _em_step(self, design: _Design, p: _Params, gen: torch.Generator | None):
        """One E-step (at ``p``) and M-step; returns (new parameters, average log-likelihood at ``p``)."""
        new, _, ll = _em_iteration(design, p, float(self.reg_covar), self.completion == "sampling", gen)
        return new, ll / design.n

    def _run(self, X: torch.Tensor, design: _Design, gen: torch.Generator, user):
        p = self._initialize(X, gen, user)
        lower_bound, history, converged, n_iter = -math.inf, [], False, 0
        for n_iter in range(1, self.max_iter + 1):
            prev = lower_bound
            p, lower_bound = self._em_step(design, p, gen)
            history.append(lower_bound)
            change = lower_bound - prev
            if self.verbose:
                print(f"  iteration {n_iter:4d}: average log-likelihood {lower_bound:.10g} (change {change:.3g})")
            if abs(change) < self.tol:
                converged = True
                break
        return p, lower_bound, history, converged, n_iter

    @_fork_safe
    def fit(self, X, y=None):
        """Fit the mixture by EM (``n_init`` times, keeping the best).

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._forget_fit()      # a failed fit leaves no earlier fit behind
        self._check_hyperparameters()
        X = self._check_input(X, reset=True)
        if self.n_components > X.shape[0]:
            raise ValueError(f"n_components={self.n_components} is larger than the number of samples "
                             f"({X.shape[0]}); use at most {X.shape[0]} components or pass more data")
        user = self._user_init(X)
        gen = self._generator()
        design = _Design(X, self.covariance_type, self.n_components)
        best = None
        for init in range(self.n_init):
            if self.verbose:
                print(f"initialisation {init}")
            result = self._run(X, design, gen, user)
            if best is None or result[1] > best[1]:
                best = result
        p, lower_bound, history, converged, n_iter = best
        if not converged and self.max_iter > 0:
            warnings.warn(f"EM did not converge in max_iter={self.max_iter} iterations (tol={self.tol}); "
                          "increase max_iter or tol, or try another initialisation", ConvergenceWarning,
                          stacklevel=2)
        self._set_params(p)
        self.lower_bound_ = lower_bound if self.max_iter > 0 else -math.inf
        self.lower_bounds_ = history
        self.n_iter_ = n_iter
        self.converged_ = converged
        return self

    @classmethod
    def from_params(cls, weights, means, covariances, *, covariance_type: str = "full", **params):
        """A mixture with the given parameters, ready to predict, score and sample, without running EM.

        Parameters
        ----------
        weights : (n_components,)
            Mixing proportions, non-negative, summing to 1.
        means : (n_components, n_features)
        covariances : (n_components, n_features, n_features) for "full", (n_components, n_features) for
            "diag", (n_components,) for "spherical"
            Symmetric positive definite (positive variances).
        covariance_type : {"full", "diag", "spherical"}
        **params
            Other constructor parameters (``random_state`` for :meth:`sample`, ``device``, ``dtype``).

        Returns
        -------
        GaussianMixture
            With ``weights_ means_ covariances_ precisions_ precisions_cholesky_ n_features_in_`` set (the
            attributes of an EM run, such as ``lower_bound_`` and ``n_iter_``, are not). A tensor among the
            parameters makes it compute on its device and dtype and return tensors; otherwise NumPy.

        Examples
        --------
        >>> import numpy as np
        >>> gm = GaussianMixture.from_params([0.5, 0.5], [[0.0], [3.0]], [[[1.0]], [[1.0]]])
        >>> gm.predict(np.array([[-1.0], [4.0]]))
        array([0, 1])
        """
        gm = cls(covariance_type=covariance_type, **params)
        gm._check_hyperparameters()
        w, m, c = gm._params_context(weights, means, covariances, names=("weights", "means", "covariances"))
        p = _given_params(None, w, m, c, covariance_type, like=m)
        gm.n_components = int(p.means.shape[0])
        gm.n_features_in_ = int(p.means.shape[1])
        gm._set_params(p)
        return gm

    def _set_params(self, p: _Params) -> None:
        self.weights_ = self._out(p.weights)
        self.means_ = self._out(p.means)
        self.covariances_ = self._out(p.covariances)
        self.precisions_cholesky_ = self._out(p.prec_chol)
        if self.covariance_type == "full":
            self.precisions_ = self._out(p.prec_chol @ p.prec_chol.mT)
        else:
            self.precisions_ = self._out(p.prec_chol ** 2)

    def _fitted_params(self) -> _Params:
        self._check_fitted()
        w, m = self._tensor(self.weights_), self._tensor(self.means_)
        cov, pc = self._tensor(self.covariances_), self._tensor(self.precisions_cholesky_)
        return _Params(w, m, cov, pc)

    # ------------------------------------------------------------------ inference
    def _weighted_log_prob(self, X: torch.Tensor) -> torch.Tensor:
        """log π_m + log N(x_n; μ_m, Σ_m), (n, K): :func:`log_joint` at the fitted parameters."""
        return _weighted_log_prob(X, self._fitted_params(), self.covariance_type)

    @_fork_safe
    def score_samples(self, X):
        """log p(x_n) under the fitted mixture, shape (n_samples,)."""
        X = self._check_input(X)
        return self._out(torch.logsumexp(self._weighted_log_prob(X), dim=1))

    @_fork_safe
    def score(self, X, y=None) -> float:
        """The average log-likelihood per sample, (1/N) Σ_n log p(x_n)."""
        X = self._check_input(X)
        return float(torch.logsumexp(self._weighted_log_prob(X), dim=1).mean())

    @_fork_safe
    def predict_proba(self, X):
        """The responsibilities P(m | x_n), shape (n_samples, n_components); rows sum to 1."""
        X = self._check_input(X)
        log_resp, _ = _log_normalize(self._weighted_log_prob(X))
        return self._out(log_resp.exp())

    @_fork_safe
    def predict(self, X):
        """The most probable component of each sample, shape (n_samples,), integers."""
        X = self._check_input(X)
        return self._out(self._weighted_log_prob(X).argmax(1))

    def fit_predict(self, X, y=None):
        """Fit, then return ``predict(X)``."""
        return self.fit(X).predict(X)

    @_fork_safe
    def sample(self, n_samples: int = 1):
        """Draw from the fitted mixture.

        Returns
        -------
        X : (n_samples, n_features)
            Samples, grouped by component (as in scikit-learn).
        y : (n_samples,)
            The component each sample came from.
        """
        p = self._fitted_params()
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples={n_samples!r} must be a positive integer")
        gen = self._generator()
        K, d = p.means.shape
        counts = torch.bincount(torch.multinomial(p.weights, int(n_samples), replacement=True, generator=gen),
                                minlength=K)
        xs, ys = [], []
        for k in range(K):
            c = int(counts[k])
            if c == 0:
                continue
            z = torch.randn(c, d, generator=gen, device=p.means.device, dtype=p.means.dtype)
            if self.covariance_type == "full":
                L = torch.linalg.cholesky(p.covariances[k])
                xs.append(p.means[k] + z @ L.T)
            else:
                xs.append(p.means[k] + z * p.covariances[k].sqrt())
            ys.append(torch.full((c,), k, dtype=torch.int64, device=p.means.device))
        return self._out(torch.cat(xs)), self._out(torch.cat(ys))

    def _n_parameters(self) -> int:
        K, d = self.n_components, self.n_features_in_
        cov = {"full": K * d * (d + 1) // 2, "diag": K * d, "spherical": K}[self.covariance_type]
        return int(cov + K * d + K - 1)

    @_fork_safe
    def bic(self, X) -> float:
        """Bayesian information criterion −2 log L + p log N (lower is better)."""
        X = self._check_input(X)
        return -2 * self.score(X) * X.shape[0] + self._n_parameters() * math.log(X.shape[0])

    @_fork_safe
    def aic(self, X) -> float:
        """Akaike information criterion −2 log L + 2p (lower is better)."""
        X = self._check_input(X)
        return -2 * self.score(X) * X.shape[0] + 2 * self._n_parameters()
