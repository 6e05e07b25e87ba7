"""course_lib: every estimator of the course on generative models, in PyTorch, with scikit-learn's conventions.

Arrays come back as the kind that came in: NumPy in (CPU, float64) gives NumPy out; a tensor in gives a
tensor out on the same device and dtype. Estimators are imported lazily, so ``import course_lib`` is cheap
(and works where only this file, ``utils``, ``data`` and ``datasets`` are present, as in the grader's sandbox).

Besides the estimators, the steps they are made of are public, for exercises and their grading:
``mixture.log_joint / e_step / m_step / em_step``, ``missing_data.complete / m_step`` and
``factor_analysis.em_step``; every estimator but the VAE has ``from_params``, which builds a fitted model
from given parameters. Library calls change no process-wide state (threads, seeds, warnings, environment)
and may run in several threads at once.
"""
from __future__ import annotations

import importlib

from .utils import get_device, seed_everything

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "GaussianDiscriminantAnalysis": "discriminant",
    "GaussianNaiveBayes": "discriminant",
    "MissingDataGaussian": "missing_data",
    "GaussianMixture": "mixture",
    "PCA": "pca",
    "FactorAnalysis": "factor_analysis",
    "VAE": "vae",
}
_SUBMODULES = {"mle", "discriminant", "missing_data", "mixture", "elbo", "pca", "factor_analysis", "vae",
               "data", "plotting", "utils"}

__all__ = ["seed_everything", "get_device", *_LAZY, *sorted(_SUBMODULES)]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
