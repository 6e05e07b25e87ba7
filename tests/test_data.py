"""Tests of course_lib.data: shipped data sets, seeded generators and the MNIST reader."""
import gzip
import struct

import numpy as np
import pytest

from course_lib import data
from course_lib.data import (TWO_GAUSSIANS, load_digits, load_faithful, load_mnist, make_curved_manifold,
                             make_dice_rolls, make_line, make_missing, make_two_gaussians)


def test_load_faithful():
    X = load_faithful()
    assert X.shape == (272, 2) and X.dtype == np.float64
    assert 1.0 < X[:, 0].min() and X[:, 0].max() < 6.0 and 40 < X[:, 1].min() and X[:, 1].max() < 100


def test_load_digits_split():
    Xtr, ytr = load_digits("train")
    Xte, yte = load_digits("test")
    Xall, yall = load_digits(None)
    assert Xtr.shape == (1500, 64) and Xte.shape == (297, 64) and Xall.shape == (1797, 64)
    assert Xtr.dtype == np.float64 and ytr.dtype == np.int64
    assert Xall.min() == 0.0 and Xall.max() == 1.0
    assert set(np.unique(ytr)) == set(range(10)) and set(np.unique(yte)) == set(range(10))
    # a partition of the whole set, and the same on every call
    rows = {r.tobytes() for r in np.vstack([Xtr, Xte])}
    assert len(rows) == len({r.tobytes() for r in Xall})
    np.testing.assert_array_equal(load_digits("train", return_labels=False), Xtr)
    with pytest.raises(ValueError, match="split"):
        load_digits("validation")


def test_two_gaussians_match_their_true_parameters():
    X, y = make_two_gaussians(20000, seed=1)
    assert X.shape == (20000, 2) and set(np.unique(y)) == {-1, 1}
    assert abs((y == 1).mean() - 0.6) < 0.02
    for k, label in enumerate(TWO_GAUSSIANS["classes"]):
        Xk = X[y == label]
        np.testing.assert_allclose(Xk.mean(0), TWO_GAUSSIANS["means"][k], atol=0.06)
        np.testing.assert_allclose(np.cov(Xk.T), TWO_GAUSSIANS["covariances"][k], atol=0.1)
    np.testing.assert_array_equal(make_two_gaussians(50, seed=3)[0], make_two_gaussians(50, seed=3)[0])
    assert not np.array_equal(make_two_gaussians(50, seed=3)[0], make_two_gaussians(50, seed=4)[0])
    assert make_two_gaussians()[0].shape == (1000, 2)
    with pytest.raises(ValueError):
        TWO_GAUSSIANS["means"][0, 0] = 5.0       # the truth is read-only


def test_dice_rolls():
    r = make_dice_rolls(6000, seed=0)
    assert r.shape == (6000,) and r.min() == 1 and r.max() == 6
    loaded = make_dice_rolls(6000, probs=[0.5, 0.1, 0.1, 0.1, 0.1, 0.1], seed=0)
    assert abs((loaded == 1).mean() - 0.5) < 0.03
    with pytest.raises(ValueError, match="probs"):
        make_dice_rolls(10, probs=[0.5, 0.5])
    with pytest.raises(ValueError, match="seed"):
        make_dice_rolls(10, seed=-1)


def test_make_missing():
    X = np.arange(3000, dtype=float).reshape(1000, 3)
    Xm = make_missing(X, missing_rate=0.4, seed=0)
    assert np.isnan(X).sum() == 0                                       # input untouched
    miss = np.isnan(Xm)
    assert 0.3 < miss.mean() < 0.4
    assert (~miss).any(axis=1).all()                                    # every row keeps an entry
    np.testing.assert_array_equal(Xm[~miss], X[~miss])
    Xm2, Xc = make_missing(500, missing_rate=0.2, seed=1, return_complete=True)
    assert Xm2.shape == Xc.shape == (500, 3) and not np.isnan(Xc).any()
    np.testing.assert_array_equal(np.isnan(make_missing(X, 0.4, seed=0)), miss)
    with pytest.raises(ValueError, match="missing_rate"):
        make_missing(X, missing_rate=1.0)


def test_line_and_curved_manifold():
    X = make_line(2000, noise=0.1, seed=0)
    evals = np.linalg.eigvalsh(np.cov(X.T))
    assert X.shape == (2000, 2) and evals[0] < 0.02 and evals[1] > 3      # nearly one-dimensional
    for kind, dim in [("arc", 2), ("spiral", 2), ("s_curve", 3)]:
        Xc, t = make_curved_manifold(300, noise=0.0, seed=0, kind=kind, return_latent=True)
        assert Xc.shape == (300, dim) and t.shape == (300,)
    arc = make_curved_manifold(300, noise=0.0, seed=0)
    np.testing.assert_allclose(np.linalg.norm(arc, axis=1), 1.0)
    with pytest.raises(ValueError, match="kind"):
        make_curved_manifold(kind="torus")
    with pytest.raises(ValueError, match="noise"):
        make_line(noise=-1)


# ---- MNIST reader, on small IDX files written here --------------------------------------------------------
def _write_idx(path, array, magic, compress):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


@pytest.fixture
def tiny_mnist():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 28, 28)), rng.integers(0, 10, size=5)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_reads_idx(tmp_path, tiny_mnist, compress):
    images, labels = tiny_mnist
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images, 2051, compress)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, 2049, compress)
    X, y = load_mnist(tmp_path, kind="t10k")
    assert X.shape == (5, 784) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X, images.reshape(5, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    assert 0.0 <= X.min() and X.max() <= 1.0


def test_load_mnist_errors(tmp_path, tiny_mnist):
    images, labels = tiny_mnist
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, 2049, False)       # a labels magic number
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels, 2049, False)
    with pytest.raises(ValueError, match="magic number"):
        load_mnist(tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, 2051, False)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels[:4], 2049, False)
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        load_mnist(tmp_path)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-10])               # truncated
    with pytest.raises(ValueError, match="truncated"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        load_mnist(tmp_path, kind="test")


def test_module_exports():
    for name in data.__all__:
        assert hasattr(data, name)


def test_shipped_digits_are_scikit_learns():
    from sklearn.datasets import load_digits as sk_load_digits

    from course_lib.data import load_digits
    X, y = load_digits(None)
    ref = sk_load_digits()
    np.testing.assert_array_equal(X, ref.data / 16.0)
    np.testing.assert_array_equal(y, ref.target)


def test_course_lib_imports_from_the_graders_student_view(tmp_path):
    """The grader's sandbox holds only part of course_lib (the data sets and seeding) and no scikit-learn:
    ``import course_lib`` must work there, and the estimators stay out of reach."""
    import os
    import shutil
    import subprocess
    import sys

    import course_lib
    from autograder.sandbox import STUDENT_VIEW

    src = os.path.dirname(course_lib.__file__)
    dest = tmp_path / "course_lib"
    dest.mkdir()
    for name in STUDENT_VIEW:
        path = os.path.join(src, name)
        if os.path.isdir(path):
            shutil.copytree(path, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, dest / name)
    code = "\n".join([
        "import sys",
        "sys.modules['sklearn'] = None                       # the sandbox has no scikit-learn",
        f"sys.path.insert(0, {str(tmp_path)!r})",
        "import course_lib",
        f"assert course_lib.__file__.startswith({str(tmp_path)!r}), course_lib.__file__",
        "assert course_lib.seed_everything(3) == 3 and course_lib.get_device().type",
        "from course_lib.data import load_digits, load_faithful, make_missing, make_two_gaussians",
        "X, y = load_digits('train')",
        "assert X.shape == (1500, 64) and load_faithful().shape == (272, 2)",
        "assert make_missing(20, seed=0).shape[0] == 20 and len(make_two_gaussians(10)) == 2",
        "try:",
        "    course_lib.GaussianMixture",
        "except ImportError:",
        "    print('estimators out of reach')",
        "print('ok')",
    ])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["estimators", "out", "of", "reach", "ok"]
