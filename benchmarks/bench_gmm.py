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
torch's own peak allocation is reported instead. Linux only (it reads /proc/self/statm).

The roofline: one iteration of the standard algorithm multiplies two pairs of matrices of n × d and d × K d
(the E-step's whitening and the M-step's weighted sums), 4 n K d² floating-point operations; divided by the
rate of a large dense product with torch on this machine (measured in the same run, interleaved with the
contenders, in a fresh process, float64 and float32) it gives the shortest time an iteration could take, and
that floor over the measured time is the fraction of the roofline reached.

Wall-clock time is the headline. Process CPU time is printed next to it: on a machine shared with other
jobs, wall-clock ratios wander with the load, and with ``--threads 1`` CPU time is the steadier measure of
the work each side does. The machine's load average (1 minute, /proc/loadavg) before and after the timed runs
is printed with them, so that a reader can tell a measurement on a busy machine from one on a quiet one.

    python benchmarks/bench_gmm.py            # n=100,000, d=32, K=16
    python benchmarks/bench_gmm.py --quick    # a small smoke run
    python benchmarks/bench_gmm.py --device cuda --n 1000000 --d 64 --k 64 --iters 1 --large   # on a GPU
"""
from __future__ import annotations

import argparse
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
        torch.cuda.reset_peak_memory_stats(dev)
        _fit(name, X, data, init, args.k, 1 + args.iters, args.covariance_type)
        print(torch.cuda.max_memory_allocated(dev))
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
    mem_what = "torch peak allocated" if dev.type == "cuda" else "RSS increase"
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
    print(f"(log-likelihood after {lengths[1]} iterations from the same start; data {X.nbytes / 2**20:.1f} MB in "
          f"float64; memory = {mem_what} during one fit, in a fresh process)")
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
    return results


if __name__ == "__main__":
    outcome = main()
    sys.exit(0 if outcome is None or outcome["ok"] else 1)
