"""Factor analysis, side by side: course_lib's EM against scikit-learn's FactorAnalysis.

Data are drawn from a factor-analysis model (default 100,000 x 50, k = 10). Each repeat fits, interleaved,
course_lib's FactorAnalysis (EM with completion by expectation: one pass over the data to form the covariance,
then O(d²k) per iteration) and scikit-learn's FactorAnalysis (its defaults, and svd_method="lapack" with the
same stopping rule as ours), then prints the median wall time of ``fit``, the final average log-likelihood of each fit and the speed ratios.

    python benchmarks/bench_fa.py            # the full size
    python benchmarks/bench_fa.py --quick    # a small smoke run
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np


def make_data(n_samples: int, n_features: int, n_components: int, seed: int = 0) -> np.ndarray:
    """``x = μ + A z + e`` with ``A ~ N(0, 1)``, noise variances uniform in [0.2, 1.0] and μ ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_features, n_components))
    psi = rng.uniform(0.2, 1.0, size=n_features)
    mu = rng.normal(size=n_features)
    Z = rng.normal(size=(n_samples, n_components))
    return mu + Z @ A.T + rng.normal(size=(n_samples, n_features)) * np.sqrt(psi)


def _time_fit(make, X):
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        est.fit(X)
        elapsed = time.perf_counter() - start
    return elapsed, est


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--n-components", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/torch threads for both libraries (default 1, so both get the same)")
    parser.add_argument("--tol", type=float, default=1e-8,
                        help="stop when the average log-likelihood rises by less than this (default 1e-8)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (2,000 x 10, k = 3, 1 repeat)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_samples, args.n_features, args.n_components, args.repeats = 2_000, 10, 3, 1

    import torch
    from sklearn.decomposition import FactorAnalysis as SkFA
    from threadpoolctl import threadpool_limits

    from course_lib.factor_analysis import FactorAnalysis

    torch.set_num_threads(args.threads)
    X = make_data(args.n_samples, args.n_features, args.n_components)
    k = args.n_components
    n = args.n_samples
    # Both stop when the log-likelihood rises by less than a threshold: ours on the average (tol), sklearn on
    # the total, so sklearn's matched threshold is tol * n_samples; its default (1e-2 on the total) is looser
    # for n_samples < 1e6.
    contenders = {
        "course_lib EM": lambda: FactorAnalysis(k, tol=args.tol, max_iter=10_000),
        "sklearn default": lambda: SkFA(k, random_state=0),
        "sklearn lapack": lambda: SkFA(k, svd_method="lapack", tol=args.tol * n, max_iter=10_000),
    }
    times = {name: [] for name in contenders}
    fitted = {}
    with threadpool_limits(limits=args.threads):
        for _ in range(args.repeats):
            for name, make in contenders.items():          # interleaved: every repeat runs each once
                elapsed, est = _time_fit(make, X)
                times[name].append(elapsed)
                fitted[name] = est
    print(f"factor analysis, {args.n_samples} x {args.n_features}, k = {k}, threads = {args.threads}, "
          f"median of {args.repeats}")
    ours = statistics.median(times["course_lib EM"])
    result = {"n_samples": args.n_samples, "n_features": args.n_features, "n_components": k}
    ref_ll = fitted["course_lib EM"].score(X)
    print(f"{'':20s} {'fit time (s)':>13s} {'iterations':>10s} {'avg log-lik':>16s} {'ll - ours':>11s} "
          f"{'time / ours':>11s}")
    for name, est in fitted.items():
        t = statistics.median(times[name])
        ll = est.score(X)
        print(f"{name:20s} {t:13.4f} {est.n_iter_:10d} {ll:16.8f} {ll - ref_ll:11.2e} {t / ours:11.1f}")
        result[name] = {"time": t, "avg_loglike": ll, "n_iter": est.n_iter_, "ratio": t / ours}
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
