"""The course's data sets: shipped inside the package or drawn from a seeded generator (no network needed).

Loaders (real data): :func:`load_faithful`, :func:`load_digits`, and :func:`load_mnist` for MNIST files you
have downloaded yourself. Generators (synthetic data with known truth, so a lecture can compare estimates
with the true parameters): :func:`make_two_gaussians`, :func:`make_dice_rolls`, :func:`make_missing`,
:func:`make_line`, :func:`make_curved_manifold`.

Every generator takes a ``seed`` and returns the same NumPy arrays for the same arguments.
"""
from __future__ import annotations

import gzip
import os
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["load_faithful", "load_digits", "load_mnist", "make_two_gaussians", "TWO_GAUSSIANS",
           "make_dice_rolls", "make_missing", "MISSING_GAUSSIAN", "make_line", "make_curved_manifold",
           "DIGITS_SPLIT_SEED", "DIGITS_N_TRAIN"]


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    return np.random.default_rng(int(seed))


def _check_n(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name}={n!r} must be a positive integer")
    return int(n)


def _check_noise(noise) -> float:
    if not (isinstance(noise, (int, float, np.floating)) and np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise={noise!r} must be a non-negative number")
    return float(noise)


# ----------------------------------------------------------------------------------------------------------
# Real data
# ----------------------------------------------------------------------------------------------------------
def load_faithful(as_frame: bool = False):
    """Old Faithful geyser eruptions: 272 rows of (eruption duration in minutes, waiting time in minutes).

    Returns
    -------
    X : ndarray of shape (272, 2), float64
        Columns ``eruptions`` and ``waiting``.
    """
    with resources.files("course_lib.datasets").joinpath("faithful.csv").open("r") as fh:
        rows = [line.strip().split(",") for line in fh if line.strip()]
    X = np.array([[float(r[1]), float(r[2])] for r in rows[1:]], dtype=np.float64)
    return X


DIGITS_SPLIT_SEED = 0
DIGITS_N_TRAIN = 1500


def load_digits(split: str | None = "train", return_labels: bool = True):
    """The 1797 handwritten 8x8 digits (the copy scikit-learn bundles, shipped here), scaled to [0, 1].

    Pixel values (0..16 grey levels) are divided by 16, so the data suit a Bernoulli likelihood. The split is
    fixed: a permutation drawn with ``np.random.default_rng(DIGITS_SPLIT_SEED=0)`` whose first
    ``DIGITS_N_TRAIN = 1500`` rows are the training set and the other 297 the test set.

    Parameters
    ----------
    split : {"train", "test"} or None
        Which part; None gives all 1797 rows in scikit-learn's order.
    return_labels : bool
        Also return the digit labels.

    Returns
    -------
    X : ndarray of shape (n, 64), float64 in [0, 1]
        Row-major 8x8 images (``X[i].reshape(8, 8)``).
    y : ndarray of shape (n,), int64 in 0..9
        Only when ``return_labels``.
    """
    if split not in ("train", "test", None):
        raise ValueError(f"split={split!r} must be 'train', 'test' or None (all 1797 digits)")
    with resources.files("course_lib.datasets").joinpath("digits.csv.gz").open("rb") as fh:
        table = np.loadtxt(gzip.open(fh, "rt"), delimiter=",", dtype=np.float64)
    X = table[:, :-1] / 16.0
    y = table[:, -1].astype(np.int64)
    if split is not None:
        perm = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(X.shape[0])
        idx = perm[:DIGITS_N_TRAIN] if split == "train" else perm[DIGITS_N_TRAIN:]
        X, y = X[idx], y[idx]
    return (X, y) if return_labels else X


_MNIST_FILES = {"images": "{kind}-images-idx3-ubyte", "labels": "{kind}-labels-idx1-ubyte"}
_IDX_MAGIC = {"images": 2051, "labels": 2049}   # 0x00000803 (3-D ubyte), 0x00000801 (1-D ubyte)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"MNIST file {stem}[.gz] not found in {folder}; download the four MNIST IDX files "
                            "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                            "t10k-labels-idx1-ubyte, raw or .gz) and put them in that folder")


def _read_idx(path: Path, what: str) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} could not be read ({exc}); download it again") from None
    ndim = 3 if what == "images" else 1
    header = 4 * (1 + ndim)
    if len(raw) < header:
        raise ValueError(f"{path} is too short to be an MNIST {what} file; download it again")
    magic = int.from_bytes(raw[:4], "big")
    if magic != _IDX_MAGIC[what]:
        raise ValueError(f"{path} has magic number {magic}, expected {_IDX_MAGIC[what]} for MNIST {what}; "
                         "the file is corrupted or not the right one (images and labels swapped?)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise ValueError(f"{path} holds {len(raw) - header} values but its header says {shape}; "
                         "the file is truncated or corrupted, download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(path=None, kind: str = "train", dtype=np.float32):
    """Read MNIST from its IDX files in a local folder (nothing is downloaded).

    Expects ``{kind}-images-idx3-ubyte`` and ``{kind}-labels-idx1-ubyte`` (each raw or gzipped ``.gz``) in
    ``path``. The magic numbers, sizes and the agreement between images and labels are checked.

    Parameters
    ----------
    path : str or Path, optional
        The folder; default: the environment variable ``COURSE_MNIST_DIR``, else ``./data/mnist``.
    kind : {"train", "t10k"}
        The 60,000 training or the 10,000 test images.
    dtype : NumPy float dtype, default float32
        Of the returned images (float32 halves the memory of the 60,000 x 784 array; the VAE trains in
        float32 anyway).

    Returns
    -------
    X : ndarray of shape (n, 784), values in [0, 1]
        Pixel grey levels / 255, row-major 28x28 images.
    y : ndarray of shape (n,), int64 in 0..9
    """
    if kind not in ("train", "t10k"):
        raise ValueError(f"kind={kind!r} must be 'train' (60,000 images) or 't10k' (10,000 test images)")
    folder = Path(path if path is not None else os.environ.get("COURSE_MNIST_DIR", "data/mnist")).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder {folder} does not exist; create it and put the four MNIST IDX files "
                                "(train-/t10k-images-idx3-ubyte and train-/t10k-labels-idx1-ubyte, raw or .gz) in it")
    images = _read_idx(_find_idx(folder, _MNIST_FILES["images"].format(kind=kind)), "images")
    labels = _read_idx(_find_idx(folder, _MNIST_FILES["labels"].format(kind=kind)), "labels")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"MNIST {kind} files disagree: {images.shape[0]} images but {labels.shape[0]} labels; "
                         "download them again")
    X = images.reshape(images.shape[0], -1).astype(dtype) / np.asarray(255, dtype=dtype)
    return X, labels.astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# Synthetic data with known truth
# ----------------------------------------------------------------------------------------------------------
TWO_GAUSSIANS = {
    "classes": np.array([-1, 1]),
    "priors": _frozen([0.4, 0.6]),
    "means": _frozen([[-2.0, 0.0], [2.0, 0.0]]),
    "covariances": _frozen([[[2.0, 0.6], [0.6, 1.0]],
                            [[1.0, 0.8], [0.8, 2.0]]]),
}
"""True parameters of :func:`make_two_gaussians`, ordered like a fitted classifier's ``classes_`` (-1, +1):
p(y=+1) = 0.6, mu+ = [2, 0], Sigma+ = [[1, .8], [.8, 2]], mu- = [-2, 0], Sigma- = [[2, .6], [.6, 1]]."""
TWO_GAUSSIANS["classes"].setflags(write=False)


def make_two_gaussians(n: int = 1000, seed: int = 0):
    """Labelled 2-D data from two Gaussian classes (the generative-classifier example).

    Each point first draws its class, y = +1 with probability 0.6 and y = -1 otherwise, then
    x ~ N(mu_y, Sigma_y) with the parameters in :data:`TWO_GAUSSIANS`.

    Parameters
    ----------
    n : int
        Number of points (the lecture uses 1000).
    seed : int

    Returns
    -------
    X : ndarray of shape (n, 2), float64
    y : ndarray of shape (n,), int64 in {+1, -1}
    """
    n = _check_n(n)
    rng = _rng(seed)
    y = np.where(rng.random(n) < TWO_GAUSSIANS["priors"][1], 1, -1).astype(np.int64)
    X = np.empty((n, 2))
    for k, label in enumerate(TWO_GAUSSIANS["classes"]):
        rows = y == label
        X[rows] = rng.multivariate_normal(TWO_GAUSSIANS["means"][k], TWO_GAUSSIANS["covariances"][k],
                                          size=int(rows.sum()))
    return X, y


def make_dice_rolls(n: int = 100, probs=None, seed: int = 0) -> np.ndarray:
    """Rolls of a six-sided die, for the multinomial (categorical) maximum-likelihood example.

    Parameters
    ----------
    n : int
        Number of rolls.
    probs : (6,) array, optional
        Probabilities of faces 1..6 (non-negative, summing to 1); default a fair die.
    seed : int

    Returns
    -------
    rolls : ndarray of shape (n,), int64 in 1..6
    """
    n = _check_n(n)
    p = np.full(6, 1.0 / 6.0) if probs is None else np.asarray(probs, dtype=np.float64)
    if p.shape != (6,) or not np.all(np.isfinite(p)) or np.any(p < 0) or abs(p.sum() - 1.0) > 1e-8:
        raise ValueError(f"probs must be 6 non-negative numbers summing to 1, got {np.asarray(probs).tolist()}")
    return _rng(seed).choice(np.arange(1, 7), size=n, p=p).astype(np.int64)


MISSING_GAUSSIAN = {"mean": _frozen([1.0, -1.0, 0.5]),
                    "covariance": _frozen([[2.0, 1.2, 0.4], [1.2, 1.5, -0.3], [0.4, -0.3, 1.0]])}
"""The Gaussian :func:`make_missing` draws from when given a number of rows instead of data."""


def make_missing(X=200, missing_rate: float = 0.2, seed: int = 0, return_complete: bool = False):
    """Hide entries at random (missing completely at random), keeping at least one observed entry per row.

    Each entry is hidden independently with probability ``missing_rate``; a row that lost every entry gets
    one of them back (chosen at random), so the realised rate is slightly below ``missing_rate``.

    Parameters
    ----------
    X : (n, d) array or int
        Data to hide entries of (copied, never modified), or a number of rows to draw from the 3-D Gaussian
        :data:`MISSING_GAUSSIAN` first.
    missing_rate : float in [0, 1)
    seed : int
    return_complete : bool
        Also return the data before hiding.

    Returns
    -------
    X_missing : ndarray of shape (n, d), float64, NaN where hidden
    X_complete : ndarray of shape (n, d), only when ``return_complete``
    """
    rng = _rng(seed)
    if isinstance(X, (int, np.integer)) and not isinstance(X, bool):
        n = _check_n(X, "X")
        X = rng.multivariate_normal(MISSING_GAUSSIAN["mean"], MISSING_GAUSSIAN["covariance"], size=n)
    else:
        X = np.array(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < 1:
            raise ValueError(f"X must be a 2-D array (n, d) or a number of rows, got shape {X.shape}")
        if np.isnan(X).any():
            raise ValueError("X already has NaN entries; pass complete data")
    if not (isinstance(missing_rate, (int, float, np.floating)) and 0 <= missing_rate < 1):
        raise ValueError(f"missing_rate={missing_rate!r} must be in [0, 1)")
    n, d = X.shape
    hide = rng.random((n, d)) < missing_rate
    empty = np.flatnonzero(hide.all(axis=1))
    hide[empty, rng.integers(0, d, size=empty.size)] = False
    X_missing = X.copy()
    X_missing[hide] = np.nan
    return (X_missing, X) if return_complete else X_missing


def make_line(n: int = 200, noise: float = 0.2, seed: int = 0, angle: float = 30.0) -> np.ndarray:
    """2-D points scattered about a line, the picture behind PCA.

    x = [1, 2] + t * [cos(angle), sin(angle)] + noise * e, with t ~ N(0, 2^2) along the line and
    e ~ N(0, I) off it.

    Returns
    -------
    X : ndarray of shape (n, 2), float64
    """
    n, noise = _check_n(n), _check_noise(noise)
    rng = _rng(seed)
    a = np.deg2rad(angle)
    t = 2.0 * rng.standard_normal(n)
    return np.array([1.0, 2.0]) + t[:, None] * np.array([np.cos(a), np.sin(a)]) + noise * rng.standard_normal((n, 2))


def make_curved_manifold(n: int = 1000, noise: float = 0.05, seed: int = 0, kind: str = "arc",
                         return_latent: bool = False):
    """Points near a curved one-dimensional manifold: data no linear model (PCA, factor analysis) fits well,
    the motivation for a non-linear decoder.

    Parameters
    ----------
    n : int
    noise : float
        Standard deviation of the isotropic Gaussian noise added to every coordinate.
    seed : int
    kind : {"arc", "spiral", "s_curve"}
        "arc": half circle of radius 1 in 2-D, t ~ U(0, pi), x = (cos t, sin t);
        "spiral": 2-D spiral, t ~ U(0, 3 pi), x = t (cos t, sin t) / (3 pi);
        "s_curve": the 3-D S-curve, t ~ U(-3 pi / 2, 3 pi / 2), x = (sin t, 2 u, sign(t)(cos t - 1)) with
        u ~ U(0, 1) (a 2-D sheet bent into an S).
    return_latent : bool
        Also return the position t along the curve (e.g. to colour a scatter plot).

    Returns
    -------
    X : ndarray of shape (n, 2), or (n, 3) for "s_curve", float64
    t : ndarray of shape (n,), only when ``return_latent``
    """
    n, noise = _check_n(n), _check_noise(noise)
    rng = _rng(seed)
    if kind == "arc":
        t = rng.uniform(0.0, np.pi, n)
        X = np.column_stack([np.cos(t), np.sin(t)])
    elif kind == "spiral":
        t = rng.uniform(0.0, 3 * np.pi, n)
        X = t[:, None] * np.column_stack([np.cos(t), np.sin(t)]) / (3 * np.pi)
    elif kind == "s_curve":
        t = rng.uniform(-1.5 * np.pi, 1.5 * np.pi, n)
        u = rng.uniform(0.0, 1.0, n)
        X = np.column_stack([np.sin(t), 2.0 * u, np.sign(t) * (np.cos(t) - 1.0)])
    else:
        raise ValueError(f"kind={kind!r} must be 'arc', 'spiral' or 's_curve'")
    X = X + noise * rng.standard_normal(X.shape)
    return (X, t) if return_latent else X
