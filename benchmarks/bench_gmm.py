"""Speed of one EM iteration of course_lib's GaussianMixture against scikit-learn's, side by side.

Full covariances, the same data and the same initial parameters (weights, means, precisions) for every
contender: scikit-learn (always float64), course_lib in float64 and course_lib in float32. The contenders are
timed in one process, interleaved (the order rotates every repeat), and the median is taken, so both sides
see the same machine load. Per-iteration time = (time of a fit with 1 + ``iters`` iterations − time of a
fit with 1 iteration) / ``iters``, which removes input checks, initialisation and scikit-learn's final E-step.

After the same number of iterations the average log-likelihoods must agree (float64: 1e-8 relative,
float32: 1e-4 relative); the script says so and exits non-zero when they do not.

Peak memory is the increase of the process's resident set size during one fit, sampled every millisecond
from a background thread (on Linux; tracemalloc would miss torch's allocations and NumPy's BLAS buffers, so
it would not compare like with like). On a GPU, torch's own peak allocation is reported instead.

    python benchmarks/bench_gmm.py            # n=100,000, d=32, K=16
    python benchmarks/bench_gmm.py --quick    # a small smoke run
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import warnings

import numpy as np
import torch

from course_lib.mixture import GaussianMixture


def make_problem(n: int, d: int, k: int, seed: int):
    """Data from a K-component mixture, and one shared initialisation (weights, means, precisions)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    mixing = rng.normal(size=(k, d, d)) / np.sqrt(d) + np.eye(d)
    labels = rng.integers(k, size=n)
    X = centers[labels] + np.einsum("nd,nde->ne", rng.normal(size=(n, d)), mixing[labels])
    weights = np.full(k, 1.0 / k)
    means = X[rng.choice(n, k, replace=False)]
    precisions = np.repeat(np.linalg.inv(np.cov(X.T) + 1e-6 * np.eye(d))[None], k, axis=0)
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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="samples")
    parser.add_argument("--d", type=int, default=32, help="features")
    parser.add_argument("--k", type=int, default=16, help="components")
    parser.add_argument("--iters", type=int, default=4, help="EM iterations per timed fit")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median taken)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="device for course_lib (scikit-learn runs on the CPU)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.d, args.k, args.iters, args.repeats = 3000, 4, 3, 2, 3
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X, init = make_problem(args.n, args.d, args.k, args.seed)
    dev = torch.device(args.device)
    data = {"float64": torch.as_tensor(X, dtype=torch.float64, device=dev),
            "float32": torch.as_tensor(X, dtype=torch.float32, device=dev)}

    def run(name: str, iters: int):
        common = dict(covariance_type="full", max_iter=iters, tol=0.0, reg_covar=1e-6, **init)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name == "sklearn":
                model = SkGaussianMixture(args.k, init_params="random_from_data", random_state=0, **common)
                start = time.perf_counter()
                model.fit(X)
            else:
                model = GaussianMixture(args.k, **common)
                Xt = data[name.split()[-1]]
                start = time.perf_counter()
                model.fit(Xt)
                if Xt.device.type == "cuda":
                    torch.cuda.synchronize()
        return time.perf_counter() - start, model

    names = ["sklearn", "course_lib float64", "course_lib float32"]
    for name in names:                      # warm-up (threads, allocator, lazy imports)
        run(name, 1)
    lengths = (1, 1 + args.iters)
    times = {(name, it): [] for name in names for it in lengths}
    models = {}
    for rep in range(args.repeats):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            for it in lengths:
                elapsed, model = run(name, it)
                times[name, it].append(elapsed)
                models[name] = model
    per_iter = {name: max(statistics.median(times[name, lengths[1]]) - statistics.median(times[name, 1]), 1e-9)
                / args.iters for name in names}

    memory = {}
    for name in names:
        if name != "sklearn" and dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
            run(name, lengths[1])
            memory[name] = ("torch peak allocated", torch.cuda.max_memory_allocated(dev))
        else:
            with _PeakRSS() as watch:
                run(name, lengths[1])
            memory[name] = ("RSS increase", watch.peak)

    ref = models["sklearn"].lower_bound_
    tolerance = {"sklearn": 0.0, "course_lib float64": 1e-8, "course_lib float32": 1e-4}
    results = {"n": args.n, "d": args.d, "k": args.k, "iters": args.iters, "repeats": args.repeats,
               "seconds_per_iter": per_iter, "speedup": {}, "loglik": {}, "agree": {}, "peak_bytes": {}}
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info())
    except Exception:                        # threadpoolctl is optional
        blas = "unknown"
    data_mb = X.nbytes / 2**20
    print(f"GMM, full covariance: n={args.n:,} d={args.d} K={args.k}; 1 + {args.iters} EM iterations per fit, "
          f"{args.repeats} interleaved repeats (median); torch threads={torch.get_num_threads()}, "
          f"thread pools: {blas}; course_lib on {dev}")
    print(f"{'contender':<22}{'s / iteration':>14}{'speed-up':>10}{'avg log-lik':>18}{'rel. diff':>11}"
          f"{'peak memory':>22}")
    for name in names:
        ll = models[name].lower_bound_
        rel = abs(ll - ref) / max(abs(ref), 1e-300)
        speedup = per_iter["sklearn"] / per_iter[name]
        what, peak = memory[name]
        results["speedup"][name] = speedup
        results["loglik"][name] = ll
        results["agree"][name] = bool(rel <= tolerance[name])
        results["peak_bytes"][name] = peak
        mem = f"{peak / 2**20:8.1f} MB ({peak / X.nbytes:4.1f}x data)"
        print(f"{name:<22}{per_iter[name]:>14.4f}{speedup:>9.2f}x{ll:>18.10f}{rel:>11.1e}{mem:>22}"
              + ("" if results["agree"][name] else "   <-- log-likelihood DISAGREES"))
    print(f"(data: {data_mb:.1f} MB in float64; memory = {memory[names[-1]][0]} during one fit)")
    print("speed-up of course_lib over scikit-learn per EM iteration: "
          f"float64 {results['speedup']['course_lib float64']:.2f}x, "
          f"float32 {results['speedup']['course_lib float32']:.2f}x")
    results["ok"] = all(results["agree"].values())
    return results


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
