"""Multivariate Gaussian pieces shared by the estimators: a checked Cholesky factor, log-densities, and a fixed
sign for eigenvectors."""
from __future__ import annotations

import math

import torch

__all__ = ["cholesky", "flip_signs", "log_gaussian_pdf", "LOG_2PI"]

LOG_2PI = math.log(2.0 * math.pi)


def cholesky(cov: torch.Tensor, what: str = "covariance", hint: str = "increase reg_covar") -> torch.Tensor:
    """Lower Cholesky factor of ``cov`` (..., d, d); a clear ValueError when it is not positive definite."""
    L, info = torch.linalg.cholesky_ex(cov)
    if bool((info != 0).any()):
        raise ValueError(f"the {what} is not positive definite (singular or degenerate data); {hint}")
    return L


def flip_signs(components: torch.Tensor) -> torch.Tensor:
    """Fix the sign of each row (k, d) so that its entry of largest magnitude is positive (scikit-learn's rule).

    An eigenvector's sign is arbitrary, and LAPACK and cuSOLVER choose differently: with this rule a result does
    not depend on the device that computed it."""
    idx = components.abs().argmax(dim=1)
    signs = torch.sign(components.gather(1, idx[:, None]))
    signs[signs == 0] = 1
    return components * signs


def log_gaussian_pdf(X: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, *,
                     what: str = "covariance", hint: str = "increase reg_covar") -> torch.Tensor:
    """log N(x_n; mean, cov) for every row of ``X`` (N, d); returns (N,).

    ``mean`` may be (d,) or (K, d) with ``cov`` (K, d, d), in which case the result is (N, K).
    """
    L = cholesky(cov, what, hint)
    d = X.shape[-1]
    if mean.ndim == 1:
        diff = (X - mean).T                                               # (d, N)
        sol = torch.linalg.solve_triangular(L, diff, upper=False)        # (d, N)
        half_logdet = torch.log(torch.diagonal(L)).sum()
        return -0.5 * (sol * sol).sum(0) - half_logdet - 0.5 * d * LOG_2PI
    diff = (X.unsqueeze(0) - mean.unsqueeze(1)).transpose(1, 2)            # (K, d, N)
    sol = torch.linalg.solve_triangular(L, diff, upper=False)            # (K, d, N)
    half_logdet = torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)  # (K,)
    return (-0.5 * (sol * sol).sum(1) - half_logdet[:, None] - 0.5 * d * LOG_2PI).T
