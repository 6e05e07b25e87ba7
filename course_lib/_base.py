"""Input checking, device/dtype handling and the estimator base class shared by every estimator.

The rule every estimator follows: arrays come back as the kind that came in. NumPy input is computed on the
CPU in float64 and returned as NumPy; a torch tensor is computed on its own device in its own (floating)
dtype and returned as a tensor. ``device=`` and ``dtype=`` on an estimator override what the input says.
Fitted attributes follow the data passed to ``fit``.
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

__all__ = ["as_tensor", "to_output", "make_generator", "few_threads", "Estimator", "NotFittedError",
           "check_int", "check_nonneg", "check_choice", "check_n_components"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
           "bfloat16": torch.bfloat16, "double": torch.float64, "float": torch.float32}


def resolve_dtype(dtype) -> torch.dtype | None:
    """Turn ``None``, a torch dtype, a NumPy dtype or a name ("float32") into a torch dtype (or None)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in _DTYPES:
        raise ValueError(f"dtype={dtype!r} is not a floating type; use torch.float64 or torch.float32")
    return _DTYPES[name]


def as_tensor(X, *, name: str = "X", ndim: int | tuple[int, ...] | None = 2, device=None, dtype=None,
              allow_nan: bool = False, min_samples: int = 1) -> tuple[torch.Tensor, bool]:
    """Check ``X`` and return ``(tensor, came_as_numpy)``.

    Parameters
    ----------
    X : array-like or torch.Tensor
        The data. Lists and NumPy arrays become CPU float64 tensors; tensors keep their device and
        floating dtype (integer and boolean tensors become float64).
    name : str
        How the error messages call the argument.
    ndim : int, tuple of int or None
        Allowed numbers of dimensions (None: any).
    device, dtype : optional
        Override the device and dtype that follow from ``X``.
    allow_nan : bool
        Whether NaN entries are allowed (missing data). Infinite entries never are.
    min_samples : int
        The smallest allowed length of the first axis.
    """
    came_as_numpy = not isinstance(X, torch.Tensor)
    if came_as_numpy:
        try:
            arr = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} could not be read as a numeric array ({exc}); pass a NumPy array or tensor") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{name} has non-numeric dtype {arr.dtype}; pass numbers (a float NumPy array or tensor)")
        if np.iscomplexobj(arr):
            raise ValueError(f"{name} is complex; pass real numbers")
        tensor = torch.as_tensor(np.asarray(arr, dtype=np.float64))
    else:
        tensor = X.detach() if X.requires_grad else X
        if tensor.is_complex():
            raise ValueError(f"{name} is complex; pass real numbers")
        if not tensor.is_floating_point():
            tensor = tensor.to(torch.float64)
    target_dtype = resolve_dtype(dtype)
    if device is not None or target_dtype is not None:
        tensor = tensor.to(device=device if device is not None else tensor.device,
                           dtype=target_dtype if target_dtype is not None else tensor.dtype)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if tensor.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            hint = "; reshape a single feature with X.reshape(-1, 1)" if 2 in allowed and tensor.ndim == 1 else ""
            raise ValueError(f"{name} must be {want}, got shape {tuple(tensor.shape)}{hint}")
    if tensor.ndim >= 1 and tensor.shape[0] < min_samples:
        raise ValueError(f"{name} has {tensor.shape[0]} samples; at least {min_samples} are needed")
    if tensor.numel():
        if torch.isinf(tensor).any():
            raise ValueError(f"{name} contains infinite values; remove or clip them")
        if not allow_nan and torch.isnan(tensor).any():
            raise ValueError(f"{name} contains NaN; remove those rows, impute them (e.g. MissingDataGaussian), "
                             "or use an estimator that accepts missing entries")
    return tensor, came_as_numpy


def to_output(t: torch.Tensor, numpy: bool):
    """Return ``t`` as NumPy (detached, on the CPU) when ``numpy`` is true, else as the tensor itself."""
    if not isinstance(t, torch.Tensor):
        return t
    return t.detach().cpu().numpy() if numpy else t


def make_generator(random_state, device="cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` from ``random_state`` (None, an int, or a Generator)."""
    if isinstance(random_state, torch.Generator):
        return random_state
    gen = torch.Generator(device=device)
    if random_state is None:
        gen.manual_seed(int(np.random.SeedSequence().generate_state(1)[0]))
    elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state={random_state} must be a non-negative integer or None")
        gen.manual_seed(int(random_state))
    elif isinstance(random_state, np.random.RandomState):
        gen.manual_seed(int(random_state.randint(0, 2**31 - 1)))
    elif isinstance(random_state, np.random.Generator):
        gen.manual_seed(int(random_state.integers(0, 2**63 - 1)))
    else:
        raise ValueError(f"random_state={random_state!r} must be None, an int or a torch.Generator")
    return gen


def check_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int, or a one-line ValueError when it is not an integer ≥ ``minimum`` (1 or 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "positive" if minimum >= 1 else "non-negative"
        raise ValueError(f"{name}={value!r} must be a {kind} integer")
    return int(value)


def check_nonneg(value, name: str) -> float:
    """``value`` as a float, or a one-line ValueError when it is not a finite number ≥ 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf"):
        raise ValueError(f"{name}={value!r} must be a non-negative finite number")
    return float(value)


def check_choice(value, name: str, options):
    """``value``, or a one-line ValueError naming the allowed ``options``."""
    if value not in options:
        raise ValueError(f"{name}={value!r} is not supported; use one of {', '.join(map(repr, options))}")
    return value


def check_n_components(n_components, n_features: int) -> int:
    """The number of components (``None``: all ``n_features``), at most ``n_features``."""
    k = n_features if n_components is None else n_components
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"n_components={n_components!r} must be a positive integer or None")
    if k > n_features:
        raise ValueError(f"n_components={k} is larger than n_features={n_features}; use at most {n_features}")
    return int(k)


@contextlib.contextmanager
def few_threads(active: bool = True):
    """Run small matrix algebra on one CPU thread while ``active``; the previous setting is restored after.

    Products that take microseconds cost more to hand to a thread pool than they save and, on a busy
    machine, can make an EM iteration tens to hundreds of times slower.
    """
    if not active:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Estimator(BaseEstimator):
    """Base class: scikit-learn's parameter handling plus the device/dtype rule of this package.

    Subclasses call ``self._check_input(X, reset=True)`` in ``fit`` (which records the device, dtype and
    whether outputs go back as NumPy), ``self._check_input(X)`` in later methods, store fitted attributes
    with ``self._out(t)`` and read them back as tensors with ``self._tensor(self.attr_)``.
    """

    def _check_input(self, X, *, reset: bool = False, name: str = "X", allow_nan: bool = False,
                     ndim=2, min_samples: int = 1, check_features: bool = True) -> torch.Tensor:
        if reset:
            tensor, numpy_io = as_tensor(X, name=name, ndim=ndim, device=getattr(self, "device", None),
                                         dtype=getattr(self, "dtype", None), allow_nan=allow_nan,
                                         min_samples=min_samples)
            self._numpy_io = numpy_io
            self._device = tensor.device
            self._dtype = tensor.dtype
            if tensor.ndim == 2:
                self.n_features_in_ = tensor.shape[1]
            return tensor
        self._check_fitted()
        tensor, _ = as_tensor(X, name=name, ndim=ndim, device=self._device, dtype=self._dtype,
                              allow_nan=allow_nan, min_samples=min_samples)
        if check_features and tensor.ndim == 2 and hasattr(self, "n_features_in_") \
                and tensor.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {tensor.shape[1]} features, but {type(self).__name__} was fitted "
                             f"with {self.n_features_in_}")
        return tensor

    def _check_fitted(self) -> None:
        if not hasattr(self, "_device"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit(X) first")

    def _out(self, t):
        return to_output(t, self._numpy_io)

    def _tensor(self, value) -> torch.Tensor:
        return torch.as_tensor(value, device=self._device, dtype=self._dtype)

    def _generator(self) -> torch.Generator:
        return make_generator(getattr(self, "random_state", None), self._device)
