"""GaussianMixture: EM against scikit-learn, the properties EM guarantees, errors, devices, the benchmark."""
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from course_lib import elbo
from course_lib._base import NotFittedError
from course_lib.data import load_faithful
from course_lib.mixture import GaussianMixture

ROOT = Path(__file__).resolve().parent.parent
TYPES = ["full", "diag", "spherical"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These problems are tiny: one thread is faster, and far steadier on a machine shared with other jobs."""
    from threadpoolctl import threadpool_limits
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


def blobs(n=300, d=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    mixing = rng.normal(size=(k, d, d)) * 0.6 + np.eye(d)
    labels = rng.integers(k, size=n)
    return centers[labels] + np.einsum("nd,nde->ne", rng.normal(size=(n, d)), mixing[labels])


def initial_params(X, k, covariance_type, seed=1):
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    weights = rng.dirichlet(np.full(k, 5.0))
    means = X[rng.choice(len(X), k, replace=False)]
    if covariance_type == "full":
        base = np.linalg.inv(np.cov(X.T))
        precisions = np.stack([base * s for s in rng.uniform(0.5, 2.0, k)])
    elif covariance_type == "diag":
        precisions = rng.uniform(0.2, 2.0, (k, d))
    else:
        precisions = rng.uniform(0.2, 2.0, k)
    return dict(weights_init=weights, means_init=means, precisions_init=precisions)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_one_em_step_equals_sklearn(covariance_type):
    X = blobs()
    init = initial_params(X, 3, covariance_type)
    ours = GaussianMixture(3, covariance_type=covariance_type, max_iter=1, **init).fit(X)
    ref = SkGaussianMixture(3, covariance_type=covariance_type, max_iter=1, **init).fit(X)
    # float64 on both sides; the two compute the same sums in a different order, so 1e-7 leaves room for
    # the rounding of ill-conditioned covariances while any formula slip (N_k vs N_k - 1, missing reg_covar,
    # unnormalised weights) is off by far more
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-7, atol=1e-12, err_msg=name)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-10)
    assert ours.n_iter_ == ref.n_iter_ == 1 and ours.converged_ is False


@pytest.mark.parametrize("covariance_type", TYPES)
def test_several_steps_follow_sklearn(covariance_type):
    X = blobs(seed=3)
    init = initial_params(X, 3, covariance_type, seed=4)
    ours = GaussianMixture(3, covariance_type=covariance_type, max_iter=8, tol=0, **init).fit(X)
    ref = SkGaussianMixture(3, covariance_type=covariance_type, max_iter=8, tol=0, **init).fit(X)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("d, k", [(8, 4), (12, 4), (12, 9)])
def test_products_cut_in_halves_follow_sklearn(d, k):
    """With an even number of features ≥ 8 the full-covariance products run by halves of the features (the
    triangular factors' zeros left out), their outputs laid out by component (few components) or by feature
    (many): several steps, predict_proba and score_samples as scikit-learn's."""
    from course_lib import mixture
    assert mixture._parts(d) == 2, "this test is meant for the cut products"
    assert mixture._Whitened(d, k).feature_major == (k >= 8)
    X = blobs(n=600, d=d, k=k, seed=6)
    init = initial_params(X, k, "full", seed=7)
    ours = GaussianMixture(k, max_iter=6, tol=0, **init).fit(X)
    ref = SkGaussianMixture(k, max_iter=6, tol=0, **init).fit(X)
    # float64 on both sides, sums in another order: equal to rounding (1e-9 leaves room for the conditioning)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-9, atol=1e-12, err_msg=name)
    # With d=12 three components have covariances with condition numbers near 1e6, which the precision factors
    # amplify rounding by: scikit-learn's own are 1.3e-9 (relative) from the answer computed with 40 digits
    # (mpmath), ours 1.5e-10, so the two are compared to 1e-8; a formula slip is off by far more.
    np.testing.assert_allclose(ours.precisions_cholesky_, ref.precisions_cholesky_, rtol=1e-8, atol=1e-12)
    # predict_proba and score_samples on the same parameters (scikit-learn's given ours): the cut products of
    # the log-densities alone, equal to rounding
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(ref, name, getattr(ours, name))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_log_likelihood_never_decreases_without_regularisation(covariance_type):
    X = blobs(n=400, d=2, k=4, seed=5)
    gm = GaussianMixture(4, covariance_type=covariance_type, reg_covar=0.0, max_iter=40, tol=0, random_state=0).fit(X)
    lb = np.asarray(gm.lower_bounds_)
    assert len(lb) == 40
    # EM's guarantee; 1e-10 relative leaves room for rounding only
    assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb[1:])), np.diff(lb).min()
    assert gm.lower_bound_ == lb[-1]


def test_responsibilities_sum_to_one_and_predict_is_their_argmax():
    X = blobs()
    gm = GaussianMixture(3, random_state=0).fit(X)
    R = gm.predict_proba(X)
    assert R.shape == (300, 3) and np.all(R >= 0)
    np.testing.assert_allclose(R.sum(1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(gm.predict(X), R.argmax(1))
    np.testing.assert_array_equal(gm.fit_predict(X), gm.predict(X))


def test_score_is_mean_of_score_samples_and_matches_elbo_module():
    X = blobs()
    gm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    s = gm.score_samples(X)
    assert s.shape == (300,)
    assert gm.score(X) == pytest.approx(s.mean(), rel=1e-12)
    # log p(x) is the log marginal of the joint log π_m + log N(x; μ_m, Σ_m) over the components
    joint = np.log(gm.weights_) + np.stack([
        -0.5 * (((X - m) ** 2) / v).sum(1) - 0.5 * np.log(2 * np.pi * v).sum()
        for m, v in zip(gm.means_, gm.covariances_)], axis=1)
    np.testing.assert_allclose(s, elbo.log_marginal(joint, per_observation=True), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_bic_aic_match_sklearn_on_the_same_parameters(covariance_type):
    X = blobs(seed=6)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    sk = SkGaussianMixture(3, covariance_type=covariance_type)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(sk, name, getattr(gm, name))
    sk.n_features_in_ = X.shape[1]
    assert gm.bic(X) == pytest.approx(sk.bic(X), rel=1e-10)
    assert gm.aic(X) == pytest.approx(sk.aic(X), rel=1e-10)
    np.testing.assert_allclose(gm.score_samples(X), sk.score_samples(X), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_sample_shapes_and_labels(covariance_type):
    X = blobs()
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    Xs, ys = gm.sample(500)
    assert Xs.shape == (500, 3) and ys.shape == (500,)
    assert set(np.unique(ys)) <= {0, 1, 2}
    # the samples come from the fitted mixture: their mean is close to the mixture mean
    mix_mean = gm.weights_ @ gm.means_
    assert np.abs(Xs.mean(0) - mix_mean).max() < 1.0
    Xt, yt = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(torch.as_tensor(X)).sample(7)
    assert isinstance(Xt, torch.Tensor) and Xt.shape == (7, 3) and yt.shape == (7,)


@pytest.mark.parametrize("completion", ["expectation", "sampling"])
def test_old_faithful_has_two_sensible_clusters(completion):
    X = load_faithful()
    gm = GaussianMixture(2, completion=completion, random_state=0, max_iter=200).fit(X)
    order = np.argsort(gm.means_[:, 0])
    means, weights = gm.means_[order], gm.weights_[order]
    # the well-known answer: short eruptions (~2.0 min, ~54 min wait) and long ones (~4.3 min, ~80 min wait)
    tol = np.array([0.15, 2.5]) if completion == "sampling" else np.array([0.05, 0.5])
    assert np.all(np.abs(means - [[2.04, 54.5], [4.29, 80.0]]) <= tol), means
    np.testing.assert_allclose(weights, [0.36, 0.64], atol=0.05)
    if completion == "expectation":
        assert gm.converged_
        # scikit-learn converges to the same optimum (to tol=1e-3 per sample, so 1e-6 leaves room)
        ref = SkGaussianMixture(2, random_state=0).fit(X)
        assert gm.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-6)


def test_sampling_completion_is_reproducible_and_random():
    X = blobs()
    a = GaussianMixture(3, completion="sampling", max_iter=5, tol=0, random_state=3).fit(X)
    b = GaussianMixture(3, completion="sampling", max_iter=5, tol=0, random_state=3).fit(X)
    c = GaussianMixture(3, completion="sampling", max_iter=5, tol=0, random_state=4).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert not np.array_equal(a.lower_bounds_, c.lower_bounds_)


def test_init_options_and_n_init():
    X = blobs()
    one = GaussianMixture(3, init_params="random_from_data", random_state=0).fit(X)
    assert np.isfinite(one.lower_bound_)
    best = GaussianMixture(3, init_params="random_from_data", n_init=4, random_state=0).fit(X)
    assert best.lower_bound_ >= one.lower_bound_ - 1e-12
    km = GaussianMixture(3, max_iter=0, random_state=0).fit(X)    # max_iter=0: the initial parameters
    assert km.n_iter_ == 0 and km.weights_.sum() == pytest.approx(1.0)


def test_dtype_and_kind_follow_input():
    X = blobs()
    gm32 = GaussianMixture(3, random_state=0).fit(torch.as_tensor(X, dtype=torch.float32))
    assert isinstance(gm32.means_, torch.Tensor) and gm32.means_.dtype == torch.float32
    assert gm32.predict_proba(torch.as_tensor(X[:5], dtype=torch.float32)).dtype == torch.float32
    gm64 = GaussianMixture(3, random_state=0).fit(X)
    assert isinstance(gm64.means_, np.ndarray) and gm64.means_.dtype == np.float64
    assert isinstance(gm64.predict(X[:5]), np.ndarray)
    # same initialisation seed, same data: float32 lands on the same optimum to float32 accuracy
    assert gm32.lower_bound_ == pytest.approx(gm64.lower_bound_, rel=1e-4)
    gm = GaussianMixture(3, random_state=0, dtype=torch.float32).fit(X)
    assert gm.means_.dtype == np.float32 or gm.means_.dtype == torch.float32


def one_line_error(match, fn):
    with pytest.raises(ValueError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("X, kwargs, match", [
    (np.array([[0.0, np.nan], [1.0, 2.0]]), {}, "NaN"),
    (np.array([[0.0, np.inf], [1.0, 2.0]]), {}, "infinite"),
    (np.arange(5.0), {}, "2-D"),
    (np.random.default_rng(0).normal(size=(3, 2)), {"n_components": 4}, "at most 3 components"),
    (np.random.default_rng(0).normal(size=(30, 2)), {"covariance_type": "tied"}, "covariance_type"),
    (np.random.default_rng(0).normal(size=(30, 2)), {"weights_init": [0.5, 0.6]}, "divide it by its sum"),
    (np.random.default_rng(0).normal(size=(30, 2)), {"weights_init": [1.0]}, "shape"),
    (np.random.default_rng(0).normal(size=(30, 2)), {"means_init": np.zeros((2, 3))}, "shape"),
    (np.random.default_rng(0).normal(size=(30, 2)), {"completion": "guess"}, "completion"),
])
def test_bad_input_is_one_clear_line(X, kwargs, match):
    kwargs = {"n_components": 2, **kwargs}
    one_line_error(match, lambda: GaussianMixture(**kwargs).fit(X))


def test_degenerate_covariance_without_regularisation_says_increase_reg_covar():
    rng = np.random.default_rng(0)
    X = np.vstack([np.full((10, 2), 5.0), rng.normal(size=(40, 2))])   # ten copies of one point
    msg = one_line_error("increase reg_covar", lambda: GaussianMixture(2, reg_covar=0.0, random_state=0).fit(X))
    assert "component" in msg
    GaussianMixture(2, reg_covar=1e-6, random_state=0).fit(X)           # the advice works


def test_component_that_loses_all_points_is_named():
    X = np.random.default_rng(0).normal(size=(50, 2))
    init = dict(weights_init=[0.5, 0.5], means_init=[[0.0, 0.0], [1e4, 1e4]], precisions_init=np.stack([np.eye(2)] * 2))
    msg = one_line_error("component 1 lost all its points", lambda: GaussianMixture(2, **init).fit(X))
    assert "fewer components" in msg and "reg_covar" in msg


def test_predict_checks_features_and_fit():
    X = blobs()
    with pytest.raises(NotFittedError):
        GaussianMixture(2).predict(X)
    gm = GaussianMixture(2, random_state=0).fit(X)
    one_line_error("features", lambda: gm.predict(X[:, :2]))


@pytest.mark.cuda
def test_runs_on_cuda_like_on_cpu():
    X = blobs()
    init = initial_params(X, 3, "full")
    cpu = GaussianMixture(3, max_iter=5, tol=0, **init).fit(torch.as_tensor(X))
    gpu = GaussianMixture(3, max_iter=5, tol=0, **init).fit(torch.as_tensor(X, device="cuda"))
    assert gpu.means_.device.type == "cuda"
    torch.testing.assert_close(gpu.means_.cpu(), cpu.means_, rtol=1e-9, atol=1e-9)
    assert gpu.predict_proba(torch.as_tensor(X, device="cuda")).device.type == "cuda"
    assert gpu.sample(10)[0].device.type == "cuda"
    GaussianMixture(3, completion="sampling", random_state=0).fit(torch.as_tensor(X, device="cuda"))


def test_benchmark_smoke_run(capsys):
    spec = importlib.util.spec_from_file_location("bench_gmm", ROOT / "benchmarks" / "bench_gmm.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--quick"])
    assert results["ok"], results["loglik"]
    assert set(results["speedup"]) == {"sklearn", "course_lib float64", "course_lib float32"}
    assert "speed-up" in capsys.readouterr().out


def test_threaded_cpu_blocks_match_one_thread_and_are_deterministic():
    """With several torch threads the E/M sums run block-parallel; the result must not depend on it."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(size=(2500, 16)) + 4 * rng.normal(size=16) for _ in range(4)])
    kw = dict(n_components=8, max_iter=5, tol=0.0, random_state=0)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = GaussianMixture(**kw).fit(X)
        torch.set_num_threads(2)
        two = GaussianMixture(**kw).fit(X)
        again = GaussianMixture(**kw).fit(X)
        assert torch.get_num_threads() == 2          # restored after every EM step
    finally:
        torch.set_num_threads(before)
    # the same chunks of blocks, summed in the same order, whichever thread ran them: the same numbers
    np.testing.assert_array_equal(two.covariances_, one.covariances_)
    np.testing.assert_array_equal(two.lower_bounds_, one.lower_bounds_)
    np.testing.assert_array_equal(two.covariances_, again.covariances_)



def test_chunk_sums_are_added_in_chunk_order_whatever_order_they_arrive_in():
    """The fused EM step's sums of chunks are added in the chunks' order, so the bits of the total do not
    depend on which thread finished first (numbers chosen so that the order of the additions shows)."""
    from course_lib.mixture import _OrderedSum
    values = [1e16, 1.0, -1e16, 1.0, 3.0]

    def total(arrival):
        sums = _OrderedSum()
        for i in arrival:
            sums.add(i, [torch.tensor([values[i]], dtype=torch.float64)])
        return float(sums.total[0])

    in_order = total(range(5))
    assert in_order == (((1e16 + 1.0) - 1e16) + 1.0) + 3.0
    for arrival in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        assert total(arrival) == in_order


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_responsibilities_below_the_smallest_normal_number_are_zero(dtype):
    """Far-away components get responsibility 0, never a subnormal number (slow to compute with), and the
    rest is the usual log-sum-exp: rows sum to 1, log p(x) as torch.logsumexp."""
    from course_lib.mixture import _responsibilities_
    gen = torch.Generator().manual_seed(0)
    lj = -torch.rand(500, 6, generator=gen, dtype=dtype) * torch.tensor([1.0, 10.0, 80.0, 90.0, 300.0, 1000.0],
                                                                        dtype=dtype)
    log_norm = torch.empty(500, dtype=dtype)
    resp = _responsibilities_(lj.clone(), log_norm)
    tiny = torch.finfo(dtype).tiny
    assert bool(((resp == 0) | (resp >= tiny)).all())
    # float32: 1e-6, float64: 1e-14 (rounding of a six-term sum)
    tol = 1e-6 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(resp.sum(1), torch.ones(500, dtype=dtype), rtol=0, atol=tol)
    torch.testing.assert_close(log_norm, torch.logsumexp(lj, 1), rtol=tol, atol=tol)
    exact = torch.softmax(lj.double(), 1)
    assert float((resp.double() - exact).abs().max()) < (1e-6 if dtype == torch.float32 else 1e-14)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_an_em_iteration_reads_the_device_once(covariance_type, monkeypatch):
    """On a GPU each read of a tensor's value by the host waits for the device: an EM iteration reads once (its
    checks and its log-likelihood in one transfer), counted here on the CPU by the methods that read."""
    X = blobs(n=400, d=4, k=3, seed=2)
    init = initial_params(X, 3, covariance_type, seed=3)
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            reads.append(1)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counted)
    Xt = torch.as_tensor(X)
    per_fit = []
    for iters in (1, 5):
        reads.clear()
        GaussianMixture(3, covariance_type=covariance_type, max_iter=iters, tol=0, **init).fit(Xt)
        per_fit.append(len(reads))
    assert (per_fit[1] - per_fit[0]) / 4 == 1


def test_an_iteration_whose_quick_check_misfires_goes_on():
    """The quick check of an iteration (one transfer) only decides whether to run the full checks, which raise
    only for what is wrong: on sound values they pass."""
    from course_lib import mixture
    X = torch.as_tensor(blobs(n=200, d=3, k=2, seed=1))
    init = initial_params(X.numpy(), 2, "full")
    gm = GaussianMixture(2, max_iter=1, **init).fit(X)
    p = gm._fitted_params()
    nk = torch.tensor([120.0, 80.0], dtype=torch.float64)
    L, info = torch.linalg.cholesky_ex(p.covariances)
    new = mixture._Params(p.weights, p.means, p.covariances, torch.linalg.inv(L).mT, L)
    mixture._check_iteration(torch.tensor(-500.0, dtype=torch.float64), nk, new, info, "full", 1e-6, False)


def test_gpu_blocks_are_capped_by_the_size_of_the_data():
    """Off the CPU the blocks are large (fewer kernel launches), but all of a block's buffers together take at
    most about max(_GPU_WORKSPACE_PER_DATA x the data, _GPU_WORKSPACE_MIN) bytes, and the blocks run in one chunk
    (chunks are for CPU threads). The CPU's blocks are sized for its caches, whatever the data."""
    from course_lib import mixture
    meta = torch.device("meta")
    for n, d, k, dtype in [(100_000, 32, 16, torch.float64), (100_000, 32, 16, torch.float32),
                           (1_000_000, 64, 64, torch.float64), (2_000_000, 4, 3, torch.float32),
                           (50, 2, 2, torch.float64)]:
        X = torch.empty(n, d, dtype=dtype, device=meta)
        design = mixture._Design(X, "full", k)
        item = X.element_size()
        line = 64 // item
        row_bytes = (2 * (k * d + 2 * line) + d + 1 + k) * item
        data = n * d * item
        budget = max(mixture._GPU_WORKSPACE_PER_DATA * data, mixture._GPU_WORKSPACE_MIN)
        assert design.block_rows * row_bytes <= budget
        assert design.block_rows * k * d <= mixture._GPU_BLOCK_NUMBERS
        assert design.block_rows == min(n, mixture._GPU_BLOCK_NUMBERS // (k * d), int(budget // row_bytes))
        assert len(design.chunks) == 1 and sum(len(c) for c in design.chunks) == -(-n // design.block_rows)
    # n = 100,000, d = 32, float64 (25.6 MB): the workspace takes at most the 256 MiB floor, not the uncapped
    # 2^25-number buffers (65,536 rows, 555 MB measured on an H200); at 1M x 64, K = 64 the data caps it
    assert mixture._Design(torch.empty(100_000, 32, dtype=torch.float64, device=meta), "full", 16).block_rows < 32768
    cpu = mixture._Design(torch.zeros(100_000, 32, dtype=torch.float64), "full", 16)
    assert cpu.block_rows == mixture._BLOCK_BYTES // (16 * 32 * 8) and len(cpu.chunks) > 1


def test_benchmark_compares_gpu_workspaces_and_profiles(capsys, monkeypatch):
    """The benchmark's options for the one-shot GPU run, on the CPU: the blocks sized as on a GPU, the
    workspace caps compared, an iteration profiled, scikit-learn timed on one iteration."""
    from course_lib import mixture
    spec = importlib.util.spec_from_file_location("bench_gmm", ROOT / "benchmarks" / "bench_gmm.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    gpu_rows = mixture._block_rows
    monkeypatch.setattr(mixture, "_block_rows", lambda n, w, dt, dev, *a: gpu_rows(n, w, dt, torch.device("meta"), *a))
    monkeypatch.setattr(bench, "_workspace_applies", lambda dev: True)
    floor = mixture._GPU_WORKSPACE_MIN
    results = bench.main(["--quick", "--gpu-block-bytes", "default,uncapped,200K", "--profile",
                          "--sklearn-one-iteration"])
    assert results["ok"], results["loglik"]
    assert mixture._GPU_WORKSPACE_MIN == floor                       # restored
    rows = results["workspace_variants"]
    assert [(r["workspace"], r["contender"]) for r in rows] == [
        (w, c) for w in ("default", "uncapped", 200 * 1024) for c in ("course_lib float64", "course_lib float32")]
    assert rows[0]["blocks"] == 1 and rows[4]["blocks"] > 1
    assert all(r["seconds_per_iter"] > 0 for r in rows)
    assert abs(rows[4]["loglik"] - rows[0]["loglik"]) < 1e-10 * abs(rows[0]["loglik"])
    assert results["profile"]["course_lib float64"]["torch ops (top level)"] > 0
    out = capsys.readouterr().out
    assert "--gpu-block-bytes" in out and "one EM iteration of course_lib" in out
    with pytest.raises(SystemExit):
        bench.main(["--gpu-block-bytes", "lots"])
