"""Input checking, device/dtype handling, thread control and the estimator base class shared by every estimator.

The rule every estimator follows: arrays come back as the kind that came in. NumPy input is computed on the
CPU in float64 and returned as NumPy; a torch tensor is computed on its own device in its own (floating)
dtype and returned as a tensor. ``device=`` and ``dtype=`` on an estimator override what the input says.
Fitted attributes follow the data passed to ``fit`` (or the parameters passed to ``from_params``).

A library call leaves the process as it found it: nothing here changes torch's global thread count, seeds,
warning filters or the environment, and every function is safe to call from several threads at once.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import math
import numbers
import os
import threading

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

__all__ = ["as_tensor", "to_output", "make_generator", "few_threads", "check_scale", "Estimator", "NotFittedError",
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


def _is_sparse(X) -> bool:
    if isinstance(X, torch.Tensor):
        return X.layout != torch.strided
    return type(X).__module__.startswith("scipy.sparse")


def _numeric_array(X, name: str) -> np.ndarray:
    """``X`` as a float64 NumPy array (numbers, booleans, or an object array holding numbers)."""
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be read as a numeric array ({exc}); pass a NumPy array or tensor") from None
    if np.iscomplexobj(arr):
        raise ValueError(f"Complex data not supported: {name} is complex; pass its real part ({name}.real) or "
                         f"its magnitude (abs({name}))")
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} is an object array with entries that are not numbers ({exc}); "
                             "pass a numeric array") from None
    elif not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} has non-numeric dtype {arr.dtype}; pass numbers (a float NumPy array or tensor)")
    arr = np.asarray(arr, dtype=np.float64)
    if not arr.flags.writeable:        # torch would warn about sharing memory it may not write
        arr = arr.copy()
    return arr


def as_tensor(X, *, name: str = "X", ndim: int | tuple[int, ...] | None = 2, device=None, dtype=None,
              allow_nan: bool = False, min_samples: int = 1, min_features: int = 0) -> tuple[torch.Tensor, bool]:
    """Check ``X`` and return ``(tensor, came_as_numpy)``.

    Parameters
    ----------
    X : array-like or torch.Tensor
        The data. Lists and NumPy arrays (numeric, boolean, or object arrays of numbers) become CPU float64
        tensors; tensors keep their device and floating dtype (integer and boolean tensors become float64).
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
    min_features : int
        The smallest allowed length of the second axis (2-D input).

    Raises
    ------
    ValueError
        One line saying what is wrong with ``X`` and what to pass instead.
    """
    if _is_sparse(X):
        raise ValueError(f"{name} is a sparse matrix and sparse input is not supported; pass a dense array "
                         f"({name}.toarray() or {name}.to_dense())")
    came_as_numpy = not isinstance(X, torch.Tensor)
    if came_as_numpy:
        tensor = torch.as_tensor(_numeric_array(X, name))
    else:
        tensor = X.detach() if X.requires_grad else X
        if tensor.is_complex():
            raise ValueError(f"Complex data not supported: {name} is complex; pass its real part ({name}.real) "
                             f"or its magnitude ({name}.abs())")
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
            hint = ""
            if 2 in allowed and tensor.ndim < 2:
                hint = (f". Reshape your data: {name}.reshape(-1, 1) if it is a single feature, "
                        f"{name}.reshape(1, -1) if it is a single sample")
            raise ValueError(f"{name} must be {want}, got shape {tuple(tensor.shape)}{hint}")
    if tensor.ndim >= 1 and tensor.shape[0] < min_samples:
        raise ValueError(f"{name} has {tensor.shape[0]} sample(s) (shape={tuple(tensor.shape)}) while a minimum of "
                         f"{min_samples} is required; pass more rows")
    if tensor.ndim == 2 and tensor.shape[1] < min_features:
        raise ValueError(f"{name} has {tensor.shape[1]} feature(s) (shape={tuple(tensor.shape)}) while a minimum "
                         f"of {min_features} is required; pass at least {min_features} column(s)")
    if tensor.numel():
        if torch.isinf(tensor).any():
            raise ValueError(f"{name} contains infinite values; remove or clip them")
        if not allow_nan and torch.isnan(tensor).any():
            raise ValueError(f"{name} contains NaN; remove those rows, impute them (e.g. MissingDataGaussian), "
                             "or use an estimator that accepts missing entries")
    return tensor, came_as_numpy


def check_scale(X: torch.Tensor, name: str = "X", dtype: torch.dtype | None = None) -> None:
    """A one-line ValueError when the magnitudes in a column of ``X`` (n, d) are beyond what second moments allow.

    Variances, covariances and the sums that form them hold squares of the data. A column whose largest
    magnitude ``m`` has ``n d m²`` above the largest number of ``X``'s dtype overflows them; one with ``m²``
    below the smallest normal number divided by the machine epsilon underflows them (its variance would
    come out as 0 or lose its digits). Both ends are far outside any measured quantity in its natural units
    (about 1e149 and 1e-146 in float64), and the fix is the same: rescale the data. All-zero columns and NaN
    entries are left to the estimators (a constant column is their concern, a NaN may mean "missing").
    ``dtype`` is the type the arithmetic will run in, when it is not ``X``'s own.
    """
    if X.numel() == 0 or not X.is_floating_point():
        return
    dtype = dtype or X.dtype
    info = torch.finfo(dtype)
    n, d = X.shape[0], (X.shape[1] if X.ndim == 2 else 1)
    high = math.sqrt(info.max / (16.0 * n * d))
    low = math.sqrt(info.tiny / info.eps)
    lo_val, hi_val = torch.aminmax(X.reshape(n, -1), dim=0)
    largest = torch.maximum(lo_val.abs(), hi_val.abs())
    if bool(torch.isnan(largest).any()):        # missing entries: the slower NaN-aware maximum
        largest = torch.nan_to_num(X.reshape(n, -1).abs(), nan=0.0).amax(0)
    if bool((largest > high).any()):
        j = int(torch.argmax(largest))
        raise ValueError(f"{name} has values as large as {float(largest[j]):.3g} (column {j}): their squares "
                         f"overflow {str(dtype).replace('torch.', '')}; divide {name} by a constant (e.g. its "
                         "standard deviation) before fitting, and scale the results back")
    tiny = (largest > 0) & (largest < low)
    if bool(tiny.any()):
        j = int(torch.nonzero(tiny)[0])
        raise ValueError(f"{name} has values no larger than {float(largest[j]):.3g} in magnitude (column {j}): their "
                         f"squares underflow {str(dtype).replace('torch.', '')}; multiply {name} by a constant "
                         "(e.g. 1 / its standard deviation) before fitting, and scale the results back")


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
    if not isinstance(value, str) or value not in options:
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


# ------------------------------------------------------------------------------------------ thread control
class _ThreadKnobs:
    """The calling thread's own thread-count settings of the runtimes torch computes with, found once.

    ``torch.set_num_threads`` cannot serve a library: besides the calling thread it sets a process-wide
    default that every thread started later inherits, so concurrent calls that save and restore it leave it
    wrong. OpenMP's ``omp_set_num_threads`` and MKL's ``MKL_Set_Num_Threads_Local`` act on the calling
    thread only; these are what torch's CPU kernels and its MKL products read. Where a runtime cannot be
    found (another build of torch), its knob is missing and ``few_threads`` leaves it alone.
    """

    _lock = threading.Lock()
    _found: tuple | None = None

    @classmethod
    def get(cls) -> tuple:
        with cls._lock:
            if cls._found is None:
                cls._found = (cls._openmp(), cls._mkl())
            return cls._found

    @staticmethod
    def _openmp() -> list:
        try:
            from threadpoolctl import threadpool_info
            paths = [i["filepath"] for i in threadpool_info() if i.get("user_api") == "openmp"]
        except Exception:       # no threadpoolctl, or a platform it cannot inspect
            return []
        libs = []
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
                get, put = lib.omp_get_max_threads, lib.omp_set_num_threads
            except (OSError, AttributeError):
                continue
            get.restype, get.argtypes = ctypes.c_int, []
            put.restype, put.argtypes = None, [ctypes.c_int]
            libs.append((get, put))
        return libs

    @staticmethod
    def _mkl():
        for path in glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "*torch_cpu.*")):
            try:
                fn = ctypes.CDLL(path).MKL_Set_Num_Threads_Local
            except (OSError, AttributeError):
                continue
            fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int]
            return fn
        return None


@contextlib.contextmanager
def few_threads(active: bool = True):
    """Run the torch work of the calling thread on one CPU thread while ``active``; restored after.

    Products that take microseconds cost more to hand to a thread pool than they save and, on a busy
    machine, can make an EM iteration tens to hundreds of times slower. Only the calling thread is
    affected: other threads, threads started later and ``torch.get_num_threads()`` elsewhere see no change,
    so concurrent calls from several threads are safe.
    """
    if not active:
        yield
        return
    torch.get_num_threads()     # torch sets each thread's count when the thread first uses it; let it go first
    openmp, mkl = _ThreadKnobs.get()
    saved = [get() for get, _ in openmp]
    for _, put in openmp:
        put(1)
    mkl_saved = mkl(1) if mkl is not None else None
    try:
        yield
    finally:
        if mkl is not None:
            mkl(mkl_saved)
        for (_, put), before in zip(openmp, saved):
            put(before)


# ------------------------------------------------------------------------------------------ the base class
class Estimator(BaseEstimator):
    """Base class: scikit-learn's parameter handling plus the device/dtype rule of this package.

    Subclasses check their hyper-parameters first in ``fit``, then call ``self._check_input(X, reset=True)``
    (which forgets any earlier fit and records the device, dtype and whether outputs go back as NumPy),
    ``self._check_input(X)`` in later methods, store fitted attributes with ``self._out(t)`` and read them
    back as tensors with ``self._tensor(self.attr_)``. An estimator counts as fitted once every name in
    ``_fitted_attributes`` is set, so a failed ``fit`` leaves it unfitted (``NotFittedError``, never a
    half-fitted state). ``from_params`` builds a fitted estimator from given parameters.
    """

    _fitted_attributes: tuple[str, ...] = ()

    def __sklearn_is_fitted__(self) -> bool:
        return "_device" in self.__dict__ and all(a in self.__dict__ for a in self._fitted_attributes)

    def _forget_fit(self) -> None:
        """Delete every fitted attribute (names ending in one underscore) and the recorded input kind."""
        params = set(self.get_params(deep=False))
        for key in list(self.__dict__):
            if (key.endswith("_") and not key.endswith("__") and key not in params) \
                    or key in ("_numpy_io", "_device", "_dtype"):
                del self.__dict__[key]

    def _set_context(self, tensor: torch.Tensor, numpy_io: bool) -> None:
        self._numpy_io = numpy_io
        self._device = tensor.device
        self._dtype = tensor.dtype

    def _check_input(self, X, *, reset: bool = False, name: str = "X", allow_nan: bool = False,
                     ndim=2, min_samples: int = 1, check_features: bool = True, scale: bool = True) -> torch.Tensor:
        if reset:
            self._forget_fit()
            tensor, numpy_io = as_tensor(X, name=name, ndim=ndim, device=getattr(self, "device", None),
                                         dtype=getattr(self, "dtype", None), allow_nan=allow_nan,
                                         min_samples=min_samples, min_features=1)
            if scale:
                check_scale(tensor, name)
            self._set_context(tensor, numpy_io)
            if tensor.ndim == 2:
                self.n_features_in_ = tensor.shape[1]
            return tensor
        self._check_fitted()
        tensor, _ = as_tensor(X, name=name, ndim=ndim, device=self._device, dtype=self._dtype,
                              allow_nan=allow_nan, min_samples=min_samples)
        if check_features and tensor.ndim == 2 and hasattr(self, "n_features_in_") \
                and tensor.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {tensor.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input; pass the columns it was fitted on")
        return tensor

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit(X) first")

    def _out(self, t):
        return to_output(t, self._numpy_io)

    def _tensor(self, value) -> torch.Tensor:
        return torch.as_tensor(value, device=self._device, dtype=self._dtype)

    def _generator(self) -> torch.Generator:
        return make_generator(getattr(self, "random_state", None), self._device)

    def _params_context(self, *arrays, names) -> list[torch.Tensor]:
        """For ``from_params``: the given parameters as tensors of one device and dtype, and the I/O kind.

        A tensor among them decides the device and floating dtype (outputs are then tensors); otherwise
        they are NumPy float64 on the CPU. ``device``/``dtype`` on the estimator override, as for ``fit``.
        """
        like = next((a for a in arrays if isinstance(a, torch.Tensor) and a.is_floating_point()), None)
        device = getattr(self, "device", None) or (like.device if like is not None else None)
        dtype = getattr(self, "dtype", None) or (like.dtype if like is not None else None)
        tensors = [as_tensor(a, name=n, ndim=None, device=device, dtype=dtype)[0] for a, n in zip(arrays, names)]
        self._forget_fit()
        self._set_context(tensors[0], like is None)
        return tensors
