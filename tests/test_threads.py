"""No process-wide side effects: a library call leaves torch's thread count, the random generators, the warning
filters and the environment as it found them, and fits run in several Python threads at once give the
results they give alone."""
from __future__ import annotations

import io
import os
import random
import select
import threading
import time
import warnings

import numpy as np
import pytest
import torch

import course_lib
from course_lib import (VAE, FactorAnalysis, GaussianDiscriminantAnalysis, GaussianMixture, GaussianNaiveBayes,
                        MissingDataGaussian, PCA)
from course_lib._base import _ThreadKnobs, few_threads
from course_lib.data import make_missing

# The short fits below stop before converging. warnings.catch_warnings is not thread-safe (it swaps global
# state), so the warning is filtered for the whole test instead of around each fit.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def two_threads():
    """torch at 2 threads for the test (the suite runs at 1), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def _in_new_thread(fn):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def _blobs(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centers = 4 * rng.normal(size=(k, d))
    return np.concatenate([rng.normal(size=(n // k, d)) + c for c in centers])


X_BIG = _blobs(8000, 16, 8, 0)        # 2,048-row blocks: the EM step shares them among worker threads
X_SMALL = _blobs(300, 3, 3, 1)        # one-thread EM step
Y_SMALL = np.arange(300) % 3
X_MISSING = make_missing(400, missing_rate=0.2, seed=2)
X_UNIT = (X_SMALL - X_SMALL.min(0)) / np.ptp(X_SMALL, axis=0)


# name -> a call that fits and returns what identifies its result
JOBS = {
    "GaussianMixture (threaded blocks)": lambda: GaussianMixture(8, max_iter=4, tol=0, random_state=0).fit(
        X_BIG).covariances_,
    "GaussianMixture (small)": lambda: GaussianMixture(3, covariance_type="diag", random_state=0).fit(X_SMALL).means_,
    "PCA (iterative)": lambda: PCA(2, solver="iterative", random_state=0).fit(X_SMALL).components_,
    "FactorAnalysis": lambda: FactorAnalysis(2, max_iter=50).fit(X_SMALL).components_,
    "FactorAnalysis (sampling)": lambda: FactorAnalysis(2, max_iter=20, completion="sampling",
                                                        random_state=0).fit(X_SMALL).noise_variance_,
    "MissingDataGaussian": lambda: MissingDataGaussian(max_iter=30).fit(X_MISSING).covariance_,
    "GaussianDiscriminantAnalysis": lambda: GaussianDiscriminantAnalysis().fit(X_SMALL, Y_SMALL).predict_proba(X_SMALL),
    "GaussianNaiveBayes": lambda: GaussianNaiveBayes().fit(X_SMALL, Y_SMALL).predict_proba(X_SMALL),
    "VAE": lambda: VAE(3, 2, (16,), random_state=0).fit(X_UNIT, epochs=2, progress=False).elbo(
        X_UNIT[:20], random_state=0),
}


def test_parallel_fits_give_their_serial_results_and_leave_the_thread_count(two_threads):
    reference = {name: job() for name, job in JOBS.items()}
    assert torch.get_num_threads() == two_threads

    rounds, copies = 3, 2
    names = [name for name in JOBS for _ in range(copies)]
    barrier = threading.Barrier(len(names))
    results, errors = {}, []

    def worker(i, name):
        try:
            barrier.wait()
            for r in range(rounds):
                results[(i, r)] = (name, JOBS[name]())
        except Exception as exc:  # noqa: BLE001 - reported below with its name
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(i, name)) for i, name in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == rounds * len(names)
    for name, value in results.values():
        np.testing.assert_allclose(np.asarray(value), np.asarray(reference[name]), rtol=1e-12, atol=1e-12,
                                   err_msg=name)
    # the calling thread, and a thread started now (which inherits torch's process-wide default), see 2
    assert torch.get_num_threads() == two_threads
    assert _in_new_thread(torch.get_num_threads) == two_threads


def test_few_threads_acts_on_the_calling_thread_only(two_threads):
    openmp, _ = _ThreadKnobs.get()
    if "OpenMP" in torch.__config__.parallel_info():
        assert openmp, "torch computes with OpenMP here, so its per-thread setting must be found"
    inside, started_inside = [], []
    entered, release = threading.Event(), threading.Event()

    def hold():
        with few_threads():
            inside.append(torch.get_num_threads())
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert entered.wait(10)
    try:
        assert torch.get_num_threads() == two_threads                    # the main thread: untouched
        started_inside.append(_in_new_thread(torch.get_num_threads))     # a thread started meanwhile: untouched
    finally:
        release.set()
        t.join()
    assert inside == [1 if openmp else two_threads]
    assert started_inside == [two_threads]
    with few_threads():
        assert torch.get_num_threads() == (1 if openmp else two_threads)
    assert torch.get_num_threads() == two_threads


def _process_state():
    return {
        "threads": torch.get_num_threads(),
        "torch rng": torch.get_rng_state(),
        "numpy rng": np.random.get_state()[1].copy(),
        "python rng": random.getstate(),
        "warning filters": list(warnings.filters),
        "environment": dict(os.environ),
        "default dtype": torch.get_default_dtype(),
        "grad enabled": torch.is_grad_enabled(),
    }


def test_library_calls_leave_the_process_as_they_found_it(two_threads):
    from course_lib import factor_analysis, missing_data, mixture
    before = _process_state()
    for job in JOBS.values():
        job()
    gm = GaussianMixture(2, random_state=0).fit(X_SMALL)
    gm.sample(5)
    mixture.e_step(X_SMALL, gm.weights_, gm.means_, gm.covariances_)
    mixture.em_step(X_SMALL, gm.weights_, gm.means_, gm.covariances_)
    missing_data.complete(X_MISSING, np.zeros(X_MISSING.shape[1]), np.eye(X_MISSING.shape[1]))
    factor_analysis.em_step(X_SMALL, np.ones((1, 3)), np.ones(3))
    VAE(3, 2, (8,), random_state=1)                   # a seeded model draws its weights from its own generator
    after = _process_state()
    for key in before:
        if isinstance(before[key], torch.Tensor):
            assert torch.equal(before[key], after[key]), key
        elif isinstance(before[key], np.ndarray):
            assert np.array_equal(before[key], after[key]), key
        else:
            assert before[key] == after[key], key


def _in_forked_child(fn, timeout=60.0):
    """``fn()`` (an array) run in a child forked from this process; raises when it fails or hangs."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)       # "this process is multi-threaded": the point
        pid = os.fork()
    if pid == 0:                                                   # the child: report, then leave at once
        status = 1
        try:
            os.close(read)
            buf = io.BytesIO()
            np.save(buf, np.asarray(fn()))
            os.write(write, buf.getvalue())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    data, deadline = b"", time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([read], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, 9)
                raise AssertionError(f"the forked child did not finish in {timeout:.0f} s (it hangs)")
            chunk = os.read(read, 1 << 20)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child failed"
    return np.load(io.BytesIO(data))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_threaded_fit_in_a_forked_child(two_threads):
    """A fit in a child forked after this process ran threaded fits (torch's OpenMP threads and the mixture's
    helper threads, neither of which a child inherits) finishes, and gives the parent's numbers."""
    job = JOBS["GaussianMixture (threaded blocks)"]
    reference = job()                                   # OpenMP regions in this thread, the helper pool started
    child = _in_forked_child(job)
    np.testing.assert_array_equal(child, reference)
    assert torch.get_num_threads() == two_threads


def test_seed_everything_sets_the_generators_and_not_the_environment():
    env = dict(os.environ)
    course_lib.seed_everything(3)
    a = (random.random(), np.random.rand(), float(torch.rand(())))
    course_lib.seed_everything(3)
    assert (random.random(), np.random.rand(), float(torch.rand(()))) == a
    assert dict(os.environ) == env
