"""Expected vs got, in words a student can act on, and the known mistakes an output can match.

``compare(got, expected, rtol, atol, mistakes={name: alt_expected})`` is the one comparison every suite uses:
it checks shape, dtype kind and values, reports the largest absolute and relative error and where it is,
and, when the output does not match the reference but does match one of the alternative expectations (what a
known mistake would produce), names that mistake with a hint taken from ``KNOWN_MISTAKES``.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from autograder.suite import CheckResult

__all__ = ["KNOWN_MISTAKES", "compare", "describe_mistake", "format_value", "labelled", "to_array"]

#: Known mistakes: name -> what the student most likely did and what to change.
KNOWN_MISTAKES = {
    "unbiased_covariance": "you divided by N - 1 (the unbiased estimate); the maximum-likelihood covariance divides by N",
    "biased_covariance": "you divided by N; this estimate divides by N - 1 (the unbiased one)",
    "missing_logsumexp": "exp overflowed or underflowed: compute log(sum(exp(a))) as m + log(sum(exp(a - m))) with m = max(a) (log-sum-exp)",
    "mstep_divided_by_n": "the M-step divided by N; each component's means and covariances divide by its soft count N_k = sum_i r_ik",
    "kl_wrong_sign": "the KL term has the wrong sign: KL(q || p) >= 0 and the ELBO subtracts it",
    "sum_vs_mean": "you summed where the mean over samples is expected (or the reverse): check the normalisation by N",
    "transposed": "the output is transposed: check which axis is samples and which is features",
    "log_vs_prob": "you returned probabilities where log-probabilities are expected (or the reverse)",
    "variance_vs_std": "you returned a standard deviation where a variance is expected (or the reverse)",
}

_MAX_SHOWN = 12     # arrays with at most this many entries are printed in full


def describe_mistake(name: str) -> str:
    """The hint for a known mistake (the name itself, spaced out, when it is not in the registry)."""
    return KNOWN_MISTAKES.get(name, str(name).replace("_", " "))


def to_array(x: Any):
    """``x`` as a NumPy array (torch tensors moved to the CPU); None if it is not numeric data."""
    if x is None:
        return None
    if hasattr(x, "detach") and hasattr(x, "cpu"):           # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except Exception:
        return None
    if a.dtype == object or a.dtype.kind not in "biufc":
        return None
    return a


def format_value(a: np.ndarray, precision: int = 6) -> str:
    """A short rendering: the whole array when small, else shape and a few statistics."""
    a = np.asarray(a)
    if a.ndim == 0:
        return np.format_float_positional(a.item(), precision=precision, unique=True, trim="-") \
            if a.dtype.kind == "f" else repr(a.item())
    if a.size <= _MAX_SHOWN:
        return np.array2string(a, precision=precision, separator=", ", suppress_small=False, max_line_width=100)
    finite = a[np.isfinite(a)] if a.dtype.kind in "fc" else a
    if finite.size == 0:
        return f"array of shape {a.shape}, no finite entries"
    return (f"array of shape {a.shape}, min {float(np.min(finite)):.6g}, max {float(np.max(finite)):.6g}, "
            f"mean {float(np.mean(finite)):.6g}")


def labelled(label: str, text: str) -> str:
    """``label + text`` with the continuation lines of a multi-line ``text`` aligned under its first line."""
    return label + text.replace("\n", "\n" + " " * len(label))


def _where(idx) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _close(got: np.ndarray, exp: np.ndarray, rtol: float, atol: float) -> bool:
    if got.shape != exp.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(got.astype(np.complex128) if got.dtype.kind == "c" else got.astype(np.float64),
                                exp.astype(np.complex128) if exp.dtype.kind == "c" else exp.astype(np.float64),
                                rtol=rtol, atol=atol, equal_nan=True))


def _matches(got, expected, rtol, atol) -> bool:
    if isinstance(expected, (tuple, list)) and not _is_numeric_sequence(expected):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return False
        return all(_matches(g, e, rtol, atol) for g, e in zip(got, expected))
    g, e = to_array(got), to_array(expected)
    return g is not None and e is not None and _close(g, e, rtol, atol)


def _is_numeric_sequence(x) -> bool:
    """A list/tuple of plain numbers (one array), as opposed to a tuple of several outputs."""
    return all(isinstance(v, (int, float, complex, np.number, bool)) for v in x)


def _error_summary(got: np.ndarray, exp: np.ndarray) -> tuple[float, str]:
    """(max abs error, text) for two arrays of the same shape."""
    g = got.astype(np.float64) if got.dtype.kind != "c" else got
    e = exp.astype(np.float64) if exp.dtype.kind != "c" else exp
    bad_nan = np.isnan(g) & ~np.isnan(e)
    if bad_nan.any():
        idx = np.argwhere(bad_nan)[0]
        n = int(bad_nan.sum())
        where = _where(idx) if g.ndim else ""
        return float("inf"), (f"got NaN{(' at ' + where) if where else ''} where {format_value(e[tuple(idx)])} is "
                              f"expected ({n} NaN entr{'y' if n == 1 else 'ies'}): never let NaN through")
    bad_inf = np.isinf(g) & ~np.isinf(e)
    if bad_inf.any():
        idx = np.argwhere(bad_inf)[0]
        where = _where(idx) if g.ndim else ""
        return float("inf"), (f"got {format_value(g[tuple(idx)])}{(' at ' + where) if where else ''} where "
                              f"{format_value(e[tuple(idx)])} is expected (overflow?)")
    with np.errstate(all="ignore"):
        diff = np.abs(g - e)
        diff = np.where(np.isnan(g) & np.isnan(e), 0.0, diff)
        diff = np.where(np.isinf(g) & np.isinf(e) & (g == e), 0.0, diff)
        rel = diff / np.maximum(np.abs(e), np.finfo(np.float64).tiny)
    if diff.size == 0:
        return 0.0, "both empty"
    flat = int(np.nanargmax(diff)) if np.isfinite(diff).any() else 0
    idx = np.unravel_index(flat, diff.shape)
    max_abs = float(diff.reshape(-1)[flat])
    max_rel = float(np.nanmax(rel))
    where = f" at {_where(idx)}" if g.ndim else ""
    return max_abs, (f"max abs error {max_abs:.3g}{where} (got {format_value(g[idx])}, expected "
                     f"{format_value(e[idx])}); max rel error {max_rel:.3g}")


def _compare_one(got, expected, rtol, atol, label: str = "") -> tuple[bool, str]:
    """(ok, message) for one array-like output."""
    prefix = f"{label}: " if label else ""
    e = to_array(expected)
    g = to_array(got)
    if e is None:
        raise TypeError(f"the reference {label or 'output'} is not numeric data ({type(expected).__name__})")
    if g is None:
        return False, f"{prefix}expected an array of shape {e.shape}, got {type(got).__name__}"
    if g.dtype.kind == "b" and e.dtype.kind != "b":
        g = g.astype(np.float64)
    lines = []
    shape_line = (f"{prefix}expected shape {tuple(e.shape)} {e.dtype}, got shape {tuple(g.shape)} {g.dtype}")
    if g.shape != e.shape:
        squeezable = g.size == e.size
        hint = " (same number of entries: reshape or transpose?)" if squeezable else ""
        if g.ndim == 2 and g.T.shape == e.shape and _close(g.T, e, rtol, atol):
            hint = f"; {describe_mistake('transposed')}"
        return False, shape_line + hint
    if _close(g, e, rtol, atol):
        return True, f"{prefix}matches (shape {tuple(e.shape)}, rtol {rtol:g}, atol {atol:g})"
    kind = f"dtype {e.dtype}" if g.dtype == e.dtype else f"dtype {g.dtype} (expected {e.dtype})"
    lines.append(f"{prefix}shape {tuple(e.shape)} as expected, {kind}, but the values differ")
    _, err = _error_summary(g, e)
    lines.append(f"{prefix}{err} (tolerance rtol {rtol:g}, atol {atol:g})")
    if e.size <= _MAX_SHOWN:
        lines.append(labelled(f"{prefix}expected ", format_value(e)))
        lines.append(labelled(f"{prefix}got      ", format_value(g)))
    return False, "\n".join(lines)


def compare(got: Any, expected: Any, rtol: float = 1e-7, atol: float = 1e-10,
            mistakes: Mapping[str, Any] | None = None) -> CheckResult:
    """Compare an output with the reference; name the known mistake it matches, if any.

    Parameters
    ----------
    got : array-like, scalar, or tuple of those
        The student's output (NumPy array, torch tensor, Python number, or a tuple for several outputs).
    expected : same structure as ``got``
        The reference output.
    rtol, atol : float
        ``numpy.allclose`` tolerances.
    mistakes : dict name -> alternative expected, optional
        What known mistakes would have produced (e.g. ``{"unbiased_covariance": np.cov(X.T)}``). If ``got``
        does not match ``expected`` but matches one of these (same tolerances), the result names the closest.

    Returns
    -------
    CheckResult
        ``score_fraction`` 1 when everything matches, else the fraction of tuple elements that match
        (0 for a single array); ``message`` has shape, dtype, max abs and rel error and where;
        ``mistake`` is the matched known mistake's name or None.
    """
    multi = isinstance(expected, (tuple, list)) and not _is_numeric_sequence(expected)
    if multi:
        if not isinstance(got, (tuple, list)):
            return CheckResult(0.0, f"expected a tuple of {len(expected)} outputs, got {type(got).__name__}")
        if len(got) != len(expected):
            return CheckResult(0.0, f"expected a tuple of {len(expected)} outputs, got {len(got)}")
        oks, msgs = [], []
        for i, (g, e) in enumerate(zip(got, expected)):
            ok, msg = _compare_one(g, e, rtol, atol, label=f"output {i}")
            oks.append(ok)
            msgs.append(msg)
        fraction = sum(oks) / len(oks)
        message = "\n".join(msgs)
    else:
        ok, message = _compare_one(got, expected, rtol, atol)
        fraction = 1.0 if ok else 0.0
    if fraction >= 1.0:
        return CheckResult(1.0, message)
    mistake = None
    if mistakes:
        best, best_err = None, float("inf")
        for name, alt in mistakes.items():
            try:
                if not _matches(got, alt, rtol, atol):
                    continue
                g, a = to_array(got if not multi else got[0]), to_array(alt if not multi else alt[0])
                with np.errstate(all="ignore"):
                    d = np.abs(g.astype(np.float64) - a.astype(np.float64))
                    d = d[np.isfinite(d)]
                    err = float(d.max()) if d.size else 0.0
            except Exception:
                continue
            if not np.isfinite(err):
                err = 0.0
            if err < best_err:
                best, best_err = name, err
        if best is not None:
            mistake = best
            message = f"{message}\nthis matches a known mistake ({best}): {describe_mistake(best)}"
    return CheckResult(fraction, message, mistake)
