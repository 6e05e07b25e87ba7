"""Speed of one EM iteration of course_lib's GaussianMixture against scikit-learn's, side by side.

Full covariances by default (``--covariance-type diag`` or ``spherical`` for the others), the same data and the
same initial parameters (weights, means, precisions) for every contender: scikit-learn (always float64), course_lib in float64 and course_lib in float32. The contenders are
timed in one run, interleaved (the order rotates every repeat), and the median is taken, so both sides see
the same machine load; each measurement runs in a fresh process of its own (after a warm-up fit), because a
torch fit in a process where scikit-learn had just run was measured twice as slow here (NumPy's BLAS thread
pool still awake), which says nothing about either library. Per-iteration time = (time of a fit with 1 + ``iters`` iterations − time of a
fit with 1 iteration) / ``iters``, which removes input checks, initialisation and scikit-learn's final E-step.

After the same number of iterations the average log-likelihoods must agree (float64: 1e-8 relative,
float32: 1e-4 relative); the script says so and exits non-zero when they do not.

Peak memory is the increase of the resident set size during one fit, sampled every millisecond from a
background thread, each contender in a fresh process of its own (after the data are made), so that memory
cached by an allocator from an earlier fit does not hide anything. tracemalloc is not used: it sees NumPy's
allocations but neither torch's nor the BLAS buffers, so it would not compare like with like. On a GPU,
torch's own peak allocation during the fit is reported instead, less what was allocated before it (the data), as
the RSS increase leaves out the data too. Linux only (it reads /proc/self/statm).

The roofline: one iteration of the standard algorithm multiplies two pairs of matrices of n × d and d × K d
(the E-step's whitening and the M-step's weighted sums), 4 n K d² floating-point operations; divided by the
rate of a large dense product with torch on this machine (measured in the same run, interleaved with the
contenders, in a fresh process, float64 and float32) it gives the shortest time an iteration could take, and
that floor over the measured time is the fraction of the roofline reached.

Wall-clock time is the headline. Process CPU time is printed next to it: on a machine shared with other
jobs, wall-clock ratios wander with the load, and with ``--threads 1`` CPU time is the steadier measure of
the work each side does. The machine's load average (1 minute, /proc/loadavg) before and after the timed runs
is printed with them, so that a reader can tell a measurement on a busy machine from one on a quiet one.

With ``--gpu-block-bytes`` course_lib's fits are also timed, in this process, with other caps on the workspace
of its blocks on a GPU (``course_lib.mixture._GPU_WORKSPACE_MIN`` and ``_GPU_WORKSPACE_PER_DATA``, set for each
run), each with its peak memory, so that one run compares them. ``--profile`` counts, with torch.profiler, what
one EM iteration of course_lib does: torch operations, kernel launches, host synchronisations, copies.
``--sklearn-one-iteration`` (for sizes where a scikit-learn fit takes minutes) times one EM iteration of
scikit-learn directly (its own E-step and M-step from the shared initial parameters) instead of two fits, and
compares log-likelihoods after one iteration.

    python benchmarks/bench_gmm.py            # n=100,000, d=32, K=16
    python benchmarks/bench_gmm.py --quick    # a small smoke run
    python benchmarks/bench_gmm.py --device cuda --gpu-block-bytes default,uncapped,32M,128M --profile
    python benchmarks/bench_gmm.py --device cuda --n 1000000 --d 64 --k 64 --iters 1 --large   # on a GPU
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import torch

from course_lib import mixture
from course_lib.mixture import GaussianMixture


def make_problem(n: int, d: int, k: int, seed: int, covariance_type: str = "full"):
    """Data from a K-component mixture, and one shared initialisation (weights, means, precisions)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    mixing = rng.normal(size=(k, d, d)) / np.sqrt(d) + np.eye(d)
    labels = rng.integers(k, size=n)
    X = rng.normal(size=(n, d))
    for j in range(k):
        rows = labels == j
        X[rows] = centers[j] + X[rows] @ mixing[j]
    weights = np.full(k, 1.0 / k)
    means = X[rng.choice(n, k, replace=False)]
    precisions = np.repeat(np.linalg.inv(np.cov(X.T) + 1e-6 * np.eye(d))[None], k, axis=0)
    if covariance_type == "diag":
        precisions = np.diagonal(precisions, axis1=1, axis2=2).copy()
    elif covariance_type == "spherical":
        precisions = np.diagonal(precisions, axis1=1, axis2=2).mean(1)
    return X, dict(weights_init=weights, means_init=means, precisions_init=precisions)


class _PeakRSS:
    """Peak increase of the resident set size (bytes) while the block runs, sampled every millisecond."""

    def __init__(self):
        self.peak = 0

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * 4096
        except OSError:
            return 0

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss() - self.base)
            time.sleep(0.001)

    def __enter__(self):
        self.base = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss() - self.base)


class _PeakCUDA:
    """Peak increase of torch's allocated GPU memory (bytes) while the block runs: the allocation's peak less
    what was allocated before (the data), like the RSS increase on the CPU."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0

    def __enter__(self):
        torch.cuda.synchronize(self.device)
        self.base = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc):
        torch.cuda.synchronize(self.device)
        self.peak = torch.cuda.max_memory_allocated(self.device) - self.base


NAMES = ["sklearn", "course_lib float64", "course_lib float32"]


def _fit(name: str, X: np.ndarray, data: dict, init: dict, k: int, iters: int, covariance_type: str = "full"):
    """Fit one contender; returns (wall seconds, CPU seconds, model)."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    common = dict(covariance_type=covariance_type, max_iter=iters, tol=0.0, reg_covar=1e-6, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "sklearn":
            model = SkGaussianMixture(k, init_params="random_from_data", random_state=0, **common)
            Xin = X
        else:
            model = GaussianMixture(k, **common)
            Xin = data[name.split()[-1]]
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(Xin)
        if isinstance(Xin, torch.Tensor) and Xin.device.type == "cuda":
            torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu, model


def _sklearn_one_iteration(X: np.ndarray, init: dict, k: int, covariance_type: str):
    """One EM iteration of scikit-learn (its ``_e_step`` and ``_m_step``, what its fit runs per iteration) from
    the shared initial parameters; returns (wall seconds, CPU seconds, average log-likelihood at them)."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    model = SkGaussianMixture(k, covariance_type=covariance_type, max_iter=1, tol=0.0, reg_covar=1e-6,
                              init_params="random_from_data", random_state=0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X[:max(64 * k, 1000)])      # a fitted model (cheap: a slice), its parameters then replaced
    precisions = np.asarray(init["precisions_init"], dtype=np.float64)
    model.weights_ = np.asarray(init["weights_init"], dtype=np.float64)
    model.means_ = np.asarray(init["means_init"], dtype=np.float64)
    # a factor L of each precision P = L Lᵀ: ‖(x − μ)ᵀ L‖² = (x − μ)ᵀ P (x − μ), ½ log det P = Σ log diag L
    model.precisions_cholesky_ = (np.linalg.cholesky(precisions) if covariance_type == "full"
                                  else np.sqrt(precisions))
    start, cpu = time.perf_counter(), time.process_time()
    log_prob_norm, log_resp = model._e_step(X)
    model._m_step(X, log_resp)
    return time.perf_counter() - start, time.process_time() - cpu, float(log_prob_norm)


def _problem(args):
    X, init = make_problem(args.n, args.d, args.k, args.seed, args.covariance_type)
    dev = torch.device(args.device)
    data = {"float64": torch.as_tensor(X, dtype=torch.float64, device=dev),
            "float32": torch.as_tensor(X, dtype=torch.float32, device=dev)}
    return X, init, data, dev


def _memory_child(args) -> None:
    """Run in a fresh process: one fit of one contender; print its peak memory in bytes."""
    X, init, data, dev = _problem(args)
    name = args.memory_of
    _warm_up(name, data, args)
    if name != "sklearn" and dev.type == "cuda":
        with _PeakCUDA(dev) as watch:
            _fit(name, X, data, init, args.k, 1 + args.iters, args.covariance_type)
        print(watch.peak)
        return
    with _PeakRSS() as watch:
        _fit(name, X, data, init, args.k, 1 + args.iters, args.covariance_type)
    print(watch.peak)


def _warm_up(name, data, args) -> None:
    """Load a contender's lazily loaded parts (BLAS kernels, thread pools, GPU kernels) on a tiny problem."""
    Xs, init_s = make_problem(64 * args.d, args.d, 2, args.seed, args.covariance_type)
    small = {key: torch.as_tensor(Xs, dtype=t.dtype, device=t.device) for key, t in data.items()}
    _fit(name, Xs, small, init_s, 2, 2, args.covariance_type)


def _timings(name, X, data, init, args, lengths) -> dict:
    """{iterations: (wall s, CPU s, average log-likelihood)} of one contender, after a warm-up fit (of the
    problem itself, which also warms allocators; with ``--large``, of a tiny one)."""
    if name == "sklearn" and args.sklearn_one_iteration:
        _warm_up(name, data, args)
        # one iteration timed directly, written as the difference of two fits that the table takes
        w, c, ll = _sklearn_one_iteration(X, init, args.k, args.covariance_type)
        return {1: (0.0, 0.0, ll), 1 + args.iters: (w * args.iters, c * args.iters, ll)}
    if args.large:
        _warm_up(name, data, args)
    else:
        _fit(name, X, data, init, args.k, 1, args.covariance_type)
    out = {}
    # with --large the longer fit runs first: the first fit of the problem pays the cold allocations, which
    # then count against the contender (an iteration looks slower), never for it
    for it in sorted(lengths, reverse=args.large):
        w, c, model = _fit(name, X, data, init, args.k, it, args.covariance_type)
        out[it] = (w, c, float(model.lower_bound_))
    return out


def _load_average() -> float | None:
    """The 1-minute load average of the machine (None where /proc/loadavg cannot be read)."""
    try:
        with open("/proc/loadavg") as fh:
            return float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _child_command(args, *mode: str) -> list[str]:
    cmd = [sys.executable, __file__, *mode, "--n", str(args.n), "--d", str(args.d), "--k", str(args.k),
           "--iters", str(args.iters), "--seed", str(args.seed), "--device", args.device,
           "--covariance-type", args.covariance_type]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    if args.large:
        cmd.append("--large")
    if args.sklearn_one_iteration:
        cmd.append("--sklearn-one-iteration")
    return cmd


def _timings_isolated(name: str, args) -> dict:
    out = subprocess.run(_child_command(args, "--time-of", name), capture_output=True, text=True, check=True,
                         timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _matmul_rates(device: torch.device, size: int = 2048, repeats: int = 5) -> dict:
    """GFLOP/s of a dense size × size product with torch (float64 and float32; the best of ``repeats``)."""
    rates = {}
    for dtype in (torch.float64, torch.float32):
        a = torch.randn(size, size, dtype=dtype, device=device)
        best = math.inf
        for _ in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            a @ a
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        rates[str(dtype).replace("torch.", "")] = 2 * size ** 3 / best / 1e9
    return rates


def _matmul_rates_isolated(args) -> dict:
    out = subprocess.run(_child_command(args, "--matmul-rate"), capture_output=True, text=True, check=True,
                         timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peak_memory(args, name: str) -> int | None:
    cmd = _child_command(args, "--memory-of", name)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
        return int(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


# ------------------------------------------------------------------ other workspaces of course_lib on a GPU
def _workspace_setting(text: str):
    """'default', 'uncapped', or a number of bytes with an optional K, M or G (KiB, MiB, GiB) suffix."""
    t = text.strip().lower()
    if t in ("default", "uncapped"):
        return t
    scale = 1
    for suffix in ("ib", "b"):
        t = t.removesuffix(suffix)
    if t[-1:] in ("k", "m", "g"):
        t, scale = t[:-1], 1 << (10 * (1 + "kmg".index(t[-1])))
    try:
        value = int(float(t) * scale)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: pass 'default', 'uncapped' or bytes such as 64M")
    return value


def _workspace_settings(text: str) -> list:
    return [_workspace_setting(part) for part in text.split(",") if part.strip()]


def _describe_workspace(setting) -> str:
    if setting == "default":
        return (f"default: max({mixture._GPU_WORKSPACE_PER_DATA:g} x data, "
                f"{mixture._GPU_WORKSPACE_MIN / 2**20:g} MiB)")
    if setting == "uncapped":
        return f"uncapped (2^{mixture._GPU_BLOCK_NUMBERS.bit_length() - 1} numbers a buffer)"
    return f"{setting / 2**20:g} MiB"


@contextlib.contextmanager
def _workspace(setting):
    """course_lib's cap on the workspace of its blocks on a GPU set to ``setting`` (see ``_workspace_setting``)
    while the block runs."""
    saved = mixture._GPU_WORKSPACE_MIN, mixture._GPU_WORKSPACE_PER_DATA
    if setting == "uncapped":
        mixture._GPU_WORKSPACE_MIN = 1 << 62
    elif setting != "default":
        mixture._GPU_WORKSPACE_MIN, mixture._GPU_WORKSPACE_PER_DATA = setting, 0.0
    try:
        yield
    finally:
        mixture._GPU_WORKSPACE_MIN, mixture._GPU_WORKSPACE_PER_DATA = saved


def _workspace_applies(dev: torch.device) -> bool:
    """Whether course_lib sizes its blocks by the workspace cap on this device (not on the CPU)."""
    return dev.type != "cpu"


def _workspace_variants(settings: list, X, data, init, args, dev) -> list[dict]:
    """Per-iteration time and peak memory of course_lib's fits with each workspace cap, in this process (a GPU
    fit needs no fresh process: no CPU thread pool is involved), interleaved over repeats."""
    iters = args.iters if args.quick else max(args.iters, 20)
    repeats = args.repeats if args.quick else max(args.repeats, 5)
    runs = [(setting, name) for setting in settings for name in NAMES[1:]]
    ct = args.covariance_type
    times = {run: {1: [], 1 + iters: []} for run in runs}
    loglik = {}
    for setting, name in runs:                      # warm-up: allocator, kernels of these shapes
        with _workspace(setting):
            _fit(name, X, data, init, args.k, 1, ct)
    for rep in range(repeats):
        for run in runs[rep % len(runs):] + runs[:rep % len(runs)]:
            with _workspace(run[0]):
                for it in (1, 1 + iters):
                    w, _, model = _fit(run[1], X, data, init, args.k, it, ct)
                    times[run][it].append(w)
                    loglik[run] = float(model.lower_bound_)
    rows = []
    for setting, name in runs:
        Xt = data[name.split()[-1]]
        with _workspace(setting):
            design = mixture._Design(Xt, ct, args.k)
            with (_PeakCUDA(dev) if dev.type == "cuda" else _PeakRSS()) as watch:
                _fit(name, X, data, init, args.k, 2, ct)
        run = times[setting, name]
        rows.append({"workspace": setting if isinstance(setting, str) else int(setting), "contender": name,
                     "block_rows": design.block_rows, "blocks": sum(len(chunk) for chunk in design.chunks),
                     "seconds_per_iter": max(statistics.median(run[1 + iters]) - statistics.median(run[1]), 1e-9)
                     / iters, "peak_bytes": watch.peak, "loglik": loglik[setting, name]})
    what = "increase of torch's peak allocation" if dev.type == "cuda" else "RSS increase"
    print(f"course_lib on {dev} with other caps on the workspace of its blocks (--gpu-block-bytes): {iters} EM "
          f"iterations timed (fit with {1 + iters} minus fit with 1), median of {repeats} interleaved repeats, in "
          f"this process; peak memory = {what} during a fit of 2 iterations")
    print(f"{'workspace cap':<34}{'contender':<20}{'block rows':>11}{'blocks':>8}{'wall s/iter':>13}"
          f"{'peak memory':>26}{'log-lik rel. diff':>19}")
    first = {}
    for row in rows:
        ref = first.setdefault(row["contender"], row["loglik"])
        rel = abs(row["loglik"] - ref) / max(abs(ref), 1e-300)
        mem = f"{row['peak_bytes'] / 2**20:.1f} MB ({row['peak_bytes'] / X.nbytes:.1f}x data)"
        print(f"{_describe_workspace(row['workspace']):<34}{row['contender']:<20}{row['block_rows']:>11}"
              f"{row['blocks']:>8}{row['seconds_per_iter']:>13.5f}{mem:>26}{rel:>19.1e}")
    print(f"(log-likelihood after {1 + iters} iterations, relative to the first cap's; data "
          f"{X.nbytes / 2**20:.1f} MB in float64)")
    return rows


# ------------------------------------------------------------------ what one iteration does
def _count_events(events) -> collections.Counter:
    """Counts in a torch.profiler trace: torch operations called from Python (top level), some of them by
    name, kernels on the GPU and their time, and the CUDA runtime's kernel launches, synchronisations and
    copies."""
    from torch.autograd import DeviceType

    c = collections.Counter()
    for ev in events:
        name = ev.name
        if getattr(ev, "device_type", DeviceType.CPU) != DeviceType.CPU:
            copy = name.startswith(("Memcpy", "Memset"))
            c["GPU copies and sets" if copy else "GPU kernels"] += 1
            c["GPU time ms"] += ev.time_range.elapsed_us() / 1e3
        elif name.startswith("aten::"):
            if ev.cpu_parent is None or not ev.cpu_parent.name.startswith("aten::"):
                c["torch ops (top level)"] += 1
            if name in ("aten::copy_", "aten::clone", "aten::_to_copy", "aten::_local_scalar_dense"):
                c[name] += 1
        elif name.startswith(("cuda", "cu")):
            if "LaunchKernel" in name:
                c["kernel launches"] += 1
            elif "Synchronize" in name:
                c["host syncs (cuda*Synchronize)"] += 1
            elif "Memcpy" in name:
                c["copies (cuda*Memcpy*)"] += 1
    return c


def _profile_iterations(X, data, init, args, dev) -> dict:
    """What one EM iteration of course_lib does, both dtypes: the counts of :func:`_count_events` of a fit with
    1 + I iterations less those of a fit with 1, over I."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    iters = args.iters if args.quick else max(args.iters, 5)
    out, tops = {}, {}
    for name in NAMES[1:]:
        _fit(name, X, data, init, args.k, 1, args.covariance_type)
        counts, wall = {}, {}
        for it in (1, 1 + iters):
            with profile(activities=activities) as prof:
                wall[it], _, _ = _fit(name, X, data, init, args.k, it, args.covariance_type)
            counts[it] = _count_events(prof.events())
        keys = sorted(set(counts[1]) | set(counts[1 + iters]))
        out[name] = {key: (counts[1 + iters][key] - counts[1][key]) / iters for key in keys}
        out[name]["wall ms (profiled)"] = (wall[1 + iters] - wall[1]) / iters * 1e3
        tops[name] = _top_operations(prof.key_averages(), 1 + iters)
    order = ["torch ops (top level)", "kernel launches", "GPU kernels", "GPU copies and sets",
             "host syncs (cuda*Synchronize)", "copies (cuda*Memcpy*)", "aten::_local_scalar_dense", "aten::copy_",
             "aten::clone", "aten::_to_copy", "GPU time ms", "wall ms (profiled)"]
    cap = f"; workspace cap: {_describe_workspace('default')}" if _workspace_applies(dev) else ""
    print(f"one EM iteration of course_lib on {dev}, torch.profiler (fit with {1 + iters} minus fit with 1, over "
          f"{iters}{cap}):")
    print(f"{'':<34}" + "".join(f"{name:>22}" for name in NAMES[1:]))
    for key in order:
        if any(key in out[name] for name in NAMES[1:]):
            print(f"{key:<34}" + "".join(f"{out[name].get(key, 0.0):>22.1f}" for name in NAMES[1:]))
    print(f"where the time goes in the fit with {1 + iters} iterations (µs per iteration, calls per iteration):")
    for name in NAMES[1:]:
        for what, top in tops[name].items():
            print(f"  {name}, {what}: " + "; ".join(f"{key} {us:.0f} ({calls:.1f})" for key, us, calls in top))
    return out


def _top_operations(averages, iterations: int, count: int = 8) -> dict:
    """The operations with the most host time of their own and those with the most device time, from
    torch.profiler's ``key_averages()``: (name, µs per iteration, calls per iteration)."""
    def device_us(e):
        return getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0)) or 0

    rows = {"host": sorted(averages, key=lambda e: -e.self_cpu_time_total)[:count],
            "device": [e for e in sorted(averages, key=lambda e: -device_us(e))[:count] if device_us(e) > 0]}
    time_of = {"host": lambda e: e.self_cpu_time_total, "device": device_us}
    return {what: [(e.key[:48], time_of[what](e) / iterations, e.count / iterations) for e in top]
            for what, top in rows.items() if top}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="samples")
    parser.add_argument("--d", type=int, default=32, help="features")
    parser.add_argument("--k", type=int, default=16, help="components")
    parser.add_argument("--iters", type=int, default=4, help="EM iterations timed per fit (after the first)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median taken)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="device for course_lib (scikit-learn runs on the CPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both sides (torch and the BLAS under NumPy); default: the libraries' own")
    parser.add_argument("--covariance-type", default="full", choices=["full", "diag", "spherical"],
                        help="covariance type of every contender")
    parser.add_argument("--quick", action="store_true", help="small sizes, no memory measurement: a smoke run")
    parser.add_argument("--large", action="store_true",
                        help="for sizes where a scikit-learn fit takes minutes: one repeat, each contender warms "
                             "up on a tiny problem, and peak memory is not measured")
    parser.add_argument("--sklearn-one-iteration", action="store_true",
                        help="time one EM iteration of scikit-learn directly (its E-step and M-step) instead of "
                             "two fits, and compare the log-likelihoods after one iteration")
    parser.add_argument("--gpu-block-bytes", type=_workspace_settings, default=None, metavar="LIST",
                        help="after the table, time course_lib's fits (in this process) with each of these caps "
                             "on the workspace of its blocks on a GPU, with their peak memory: 'default' (the "
                             "module's cap), 'uncapped' (only 2^25 numbers a buffer) or bytes (64M, 1G, ...), "
                             "comma-separated")
    parser.add_argument("--profile", action="store_true",
                        help="after the table, count what one EM iteration of course_lib does (torch.profiler)")
    parser.add_argument("--matmul-rate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-of", choices=NAMES, help=argparse.SUPPRESS)
    parser.add_argument("--time-of", choices=NAMES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.d, args.k, args.iters, args.repeats = 3000, 4, 3, 2, 3
    if args.large:
        args.repeats = 1
    if args.threads is None:
        return _main(args)
    from threadpoolctl import threadpool_limits
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        with threadpool_limits(args.threads):
            return _main(args)
    finally:
        torch.set_num_threads(before)


def _main(args) -> dict | None:
    if args.memory_of:
        _memory_child(args)
        return None
    if args.matmul_rate:
        print(json.dumps(_matmul_rates(torch.device(args.device))))
        return None
    if args.time_of:
        X, init, data, _ = _problem(args)
        print(json.dumps(_timings(args.time_of, X, data, init, args, (1, 1 + args.iters))))
        return None
    X, init, data, dev = _problem(args)
    load_before = _load_average()
    lengths = (1, 1 + args.iters)
    # the log-likelihoods compared: after the longer fit, or after one iteration where that is what scikit-learn
    # ran (--sklearn-one-iteration) or what ran last (--large: the longer fit runs first)
    ll_at = 1 if args.large or args.sklearn_one_iteration else lengths[1]
    wall = {(name, it): [] for name in NAMES for it in lengths}
    cpu = {(name, it): [] for name in NAMES for it in lengths}
    loglik = {}
    rates = {"float64": [], "float32": []}
    for rep in range(args.repeats):
        order = NAMES[rep % len(NAMES):] + NAMES[:rep % len(NAMES)]
        # the machine's dense-product rate, in a fresh process between the contenders (the same load)
        for key, rate in (_matmul_rates(dev, 256, 2) if args.quick else _matmul_rates_isolated(args)).items():
            rates[key].append(rate)
        for name in order:
            # Each contender's fits run in a fresh process (all of them, interleaved): measured here, a torch
            # fit in a process where scikit-learn had just run (OpenBLAS's thread pool awake under NumPy)
            # was twice as slow, which says nothing about either library. --quick stays in this process.
            timings = _timings(name, X, data, init, args, lengths) if args.quick else _timings_isolated(name, args)
            for it, (w, c, ll) in timings.items():
                wall[name, int(it)].append(w)
                cpu[name, int(it)].append(c)
                if int(it) == ll_at:
                    loglik[name] = ll

    def per_iteration(table):
        return {name: max(statistics.median(table[name, lengths[1]]) - statistics.median(table[name, 1]), 1e-9)
                / args.iters for name in NAMES}

    per_iter, per_iter_cpu = per_iteration(wall), per_iteration(cpu)
    load_after = _load_average()
    memory = {name: None if args.quick or args.large else _peak_memory(args, name) for name in NAMES}

    ref = loglik["sklearn"]
    tolerance = {"sklearn": 0.0, "course_lib float64": 1e-8, "course_lib float32": 1e-4}
    results = {"n": args.n, "d": args.d, "k": args.k, "iters": args.iters, "repeats": args.repeats,
               "seconds_per_iter": per_iter, "cpu_seconds_per_iter": per_iter_cpu, "speedup": {},
               "speedup_cpu": {}, "loglik": {}, "agree": {}, "peak_bytes": memory,
               "covariance_type": args.covariance_type, "matmul_gflops": {}, "roofline_fraction": {},
               "load_average": {"before": load_before, "after": load_after}}
    try:
        from threadpoolctl import threadpool_info
        pools = ", ".join(f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info())
    except Exception:                        # threadpoolctl is optional
        pools = "unknown"
    mem_what = ("RSS increase (scikit-learn), increase of torch's peak allocation (course_lib)"
                if dev.type == "cuda" else "RSS increase")
    print(f"GMM, {args.covariance_type} covariance: n={args.n:,} d={args.d} K={args.k}; {args.iters} EM iterations timed "
          f"(fit with {lengths[1]} minus fit with 1), {args.repeats} interleaved repeats (median); "
          f"torch threads={torch.get_num_threads()}, thread pools: {pools}; course_lib on {dev}")
    print(f"{'contender':<20}{'wall s/iter':>12}{'speed-up':>10}{'CPU s/iter':>12}{'speed-up':>10}"
          f"{'avg log-lik':>18}{'rel. diff':>10}{'peak memory':>26}")
    for name in NAMES:
        ll = loglik[name]
        rel = abs(ll - ref) / max(abs(ref), 1e-300)
        results["speedup"][name] = per_iter["sklearn"] / per_iter[name]
        results["speedup_cpu"][name] = per_iter_cpu["sklearn"] / per_iter_cpu[name]
        results["loglik"][name] = ll
        results["agree"][name] = bool(rel <= tolerance[name])
        peak = memory[name]
        mem = "not measured" if peak is None else f"{peak / 2**20:.1f} MB ({peak / X.nbytes:.1f}x data)"
        print(f"{name:<20}{per_iter[name]:>12.4f}{results['speedup'][name]:>9.2f}x{per_iter_cpu[name]:>12.4f}"
              f"{results['speedup_cpu'][name]:>9.2f}x{ll:>18.10f}{rel:>10.1e}{mem:>26}"
              + ("" if results["agree"][name] else "   <-- log-likelihood DISAGREES"))
    print(f"(log-likelihood after {ll_at} iteration{'s' if ll_at > 1 else ''} from the same start; data "
          f"{X.nbytes / 2**20:.1f} MB in float64; memory = {mem_what} during one fit, in a fresh process"
          + ("; scikit-learn: one EM iteration timed on its own" if args.sklearn_one_iteration else "") + ")")
    loads = " / ".join("unknown" if v is None else f"{v:.2f}" for v in (load_before, load_after))
    print(f"load average (1 min) of the machine before / after the timed runs: {loads} "
          f"(on {os.cpu_count()} CPUs; other work on the machine slows every contender, not always alike)")
    print("speed-up of course_lib over scikit-learn per EM iteration (wall clock): "
          f"float64 {results['speedup']['course_lib float64']:.2f}x, "
          f"float32 {results['speedup']['course_lib float32']:.2f}x")
    flops = 4 * args.n * args.k * args.d ** 2
    floor = {}
    for key in ("float64", "float32"):
        results["matmul_gflops"][key] = rate = statistics.median(rates[key])
        floor[key] = flops / (rate * 1e9)
        results["roofline_fraction"][f"course_lib {key}"] = floor[key] / per_iter[f"course_lib {key}"]
    results["roofline_fraction"]["sklearn"] = floor["float64"] / per_iter["sklearn"]
    if args.covariance_type == "full" and not args.quick:
        print(f"roofline: one iteration of the standard algorithm is 4 n K d² = {flops / 1e9:.2f} GFLOP; a dense "
              f"{'256' if args.quick else '2048'}² product with torch here runs at "
              f"{results['matmul_gflops']['float64']:.0f} GFLOP/s (float64) and "
              f"{results['matmul_gflops']['float32']:.0f} GFLOP/s (float32) (median of the repeats), so an "
              f"iteration takes at least {floor['float64']:.3f} s / {floor['float32']:.3f} s; reached: "
              + ", ".join(f"{name} {results['roofline_fraction'][name]:.0%}" for name in NAMES))
    results["ok"] = all(results["agree"].values())
    if args.gpu_block_bytes:
        if _workspace_applies(dev):
            results["workspace_variants"] = _workspace_variants(args.gpu_block_bytes, X, data, init, args, dev)
        else:
            print(f"(--gpu-block-bytes: course_lib runs on the {dev.type} here, where its blocks are sized for "
                  "the caches, not by the workspace cap: nothing to compare)")
    if args.profile:
        try:
            results["profile"] = _profile_iterations(X, data, init, args, dev)
        except Exception as exc:             # the profiler is a diagnosis: its failure fails nothing else
            print(f"(--profile failed: {type(exc).__name__}: {exc})")
    return results


if __name__ == "__main__":
    outcome = main()
    sys.exit(0 if outcome is None or outcome["ok"] else 1)
