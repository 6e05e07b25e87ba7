"""`course demo`: for now a short tour of course_lib on Old Faithful (the grader replaces it)."""
from __future__ import annotations

import numpy as np


def demo_command(args=None) -> int:
    from course_lib import GaussianMixture
    from course_lib.data import load_faithful
    from course_lib.mle import gaussian

    X = load_faithful()
    print(f"Old Faithful: {X.shape[0]} eruptions x (duration min, waiting min)")
    mean, cov = gaussian(X)
    print(f"one Gaussian (MLE): mean = {np.round(mean, 3)}, log-likelihood = "
          f"{float(gaussian.log_likelihood(X, mean, cov)) if hasattr(gaussian, 'log_likelihood') else float('nan'):.2f}")
    gmm = GaussianMixture(n_components=2, random_state=0).fit(X)
    print(f"two-component GMM by EM: {gmm.n_iter_} iterations, converged={gmm.converged_}, "
          f"average log-likelihood {gmm.lower_bound_:.4f}")
    for k in np.argsort(gmm.means_[:, 0]):
        print(f"  component {k}: weight {gmm.weights_[k]:.3f}, mean {np.round(gmm.means_[k], 3)}")
    return 0
