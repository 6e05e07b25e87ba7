"""The cells of the four solution notebooks, in order (read by solutions/build.py).

Entries: ("md", text) markdown; ("code", source) given code; ("params", source) the papermill parameters
cell; ("solution", function_name, source) a graded function (nbgrader solution cell, grade_id = the
function's name); ("test", grade_id, points, source) a public test cell (hidden parts between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are removed on release).
"""
from __future__ import annotations

WORKFLOW = r"""
**How to work.** Fill in every function whose body says `raise NotImplementedError`, keeping its name and
signature: the grader finds each function by name in its own cell and calls it on inputs it draws itself.
Run the test cell under each function; the tests here are a first check, and the grader runs more (hidden)
checks of the same kind. `course check {hw}.ipynb` runs the public checks exactly as the grader does.

You may use NumPy{extra} and the course's data loaders (`course_lib.data`). Do not import scikit-learn or
course_lib's estimators for the functions you are asked to write: the grader gives no points to a function
whose notebook imports its reference implementation.
"""


def _conventions(extra: str = "") -> str:
    return r"""
**Conventions used throughout.**

* Data are rows: `X` has shape `(N, d)`, one sample per row.
* Every log-likelihood and every ELBO a function returns is the **total over the data set**, the sum over
  samples (not the mean).""" + extra + r"""
* Covariances and variances are the **maximum-likelihood** ones: divide by $N$ (or by the soft count
  $N_k=\sum_n r_{nk}$), never by $N-1$.
"""


# ====================================================================================================
# hw1_mle
# ====================================================================================================
HW1 = [
    ("md", r"""
# Homework 1: maximum likelihood and generative classifiers

In the lecture on generative models we built a classifier by imitating how the data were generated: first
pick a class $y$ with probability $p(y)$, then draw $\mathbf{x}$ from that class's Gaussian
$p(\mathbf{x}\mid y)$. Learning such a model means estimating each piece by **maximum likelihood**, and
predicting means turning the pieces around with Bayes' rule. In this homework you write those estimators
yourself and reproduce the estimate table from the slides on the lecture's two-Gaussian data.
""" + _conventions() + WORKFLOW.format(hw="hw1_mle", extra="")),
    ("code", r"""
import numpy as np

from course_lib import seed_everything
from course_lib.data import make_two_gaussians
"""),
    ("params", r"""
# Parameters (the grader runs the notebook with a smaller setting)
SEED = 0
N_SAMPLES = 1000
"""),
    ("code", r"""
seed_everything(SEED)
X, y = make_two_gaussians(N_SAMPLES, seed=SEED)
classes = np.unique(y)
labels = np.searchsorted(classes, y)      # class indices 0..C-1 (index 1 is the positive class)
print(X.shape, "classes:", classes, "counts:", np.bincount(labels))
"""),
    ("md", r"""
## 1. The Gaussian maximum-likelihood estimate (20 points)

For $N$ samples $\mathbf{x}_1,\dots,\mathbf{x}_N\in\mathbb{R}^d$ drawn from $\mathcal{N}(\boldsymbol\mu,\Sigma)$
the log-likelihood is

$$\ell(\boldsymbol\mu,\Sigma)=\sum_{n=1}^N\log\mathcal{N}(\mathbf{x}_n;\boldsymbol\mu,\Sigma)
=-\frac{Nd}{2}\log 2\pi-\frac{N}{2}\log|\Sigma|-\frac12\sum_{n=1}^N(\mathbf{x}_n-\boldsymbol\mu)^\top\Sigma^{-1}(\mathbf{x}_n-\boldsymbol\mu).$$

(The density's normaliser is $(2\pi)^{d/2}|\Sigma|^{1/2}$: the slide writes $|\Sigma|$ without the square
root, a typo.) Setting the gradient with respect to $\boldsymbol\mu$ to zero gives
$\sum_n\Sigma^{-1}(\mathbf{x}_n-\boldsymbol\mu)=0$, and with respect to $\Sigma^{-1}$ gives
$\frac N2\Sigma-\frac12\sum_n(\mathbf{x}_n-\boldsymbol\mu)(\mathbf{x}_n-\boldsymbol\mu)^\top=0$, so

$$\hat{\boldsymbol\mu}=\frac1N\sum_{n}\mathbf{x}_n,\qquad
\hat\Sigma=\frac1N\sum_{n}(\mathbf{x}_n-\hat{\boldsymbol\mu})(\mathbf{x}_n-\hat{\boldsymbol\mu})^\top .$$

Note the $\frac1N$: the maximum-likelihood covariance is *biased*. `np.cov` divides by $N-1$ unless you
pass `bias=True`, which gives a different (unbiased) estimate and fails the checks.
"""),
    ("solution", "gaussian_mle", r'''
def gaussian_mle(X):
    """Maximum-likelihood mean and covariance of a Gaussian.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        The samples, one per row.

    Returns
    -------
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d)
        The maximum-likelihood covariance (divide by N).
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    mean = X.mean(axis=0)
    diff = X - mean
    cov = diff.T @ diff / X.shape[0]
    return mean, cov
    ### END SOLUTION
'''),
    ("test", "test_gaussian_mle", 20, r'''
"""Check gaussian_mle on a square of four points (mean (1, 1), covariance = the identity)."""
square = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
mean, cov = gaussian_mle(square)
assert mean.shape == (2,) and cov.shape == (2, 2), "mean must be (d,) and cov (d, d)"
assert np.allclose(mean, [1.0, 1.0])
assert np.allclose(cov, np.eye(2)), "divide by N (maximum likelihood), not N - 1"
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(1)
Z = rng.normal(size=(50, 3))
m, C = gaussian_mle(Z)
assert np.allclose(m, Z.mean(0)) and np.allclose(C, np.cov(Z, rowvar=False, bias=True))
### END HIDDEN TESTS
'''),
    ("md", r"""
## 2. The categorical maximum-likelihood estimate (15 points)

A die with $K$ faces (or a class label with $K$ values) has probabilities $p_1,\dots,p_K$ with
$\sum_k p_k=1$. If face $k$ came up $n_k$ times in $N$ throws, the log-likelihood is
$\sum_k n_k\log p_k$. Maximising it under the constraint (a Lagrange multiplier $\lambda$:
$n_k/p_k=\lambda$, and summing over $k$ gives $\lambda=N$) yields

$$\hat p_k=\frac{n_k}{N}.$$

The Bernoulli prior $\alpha=p(y=+1)$ of the slides is the case $K=2$. Faces that never came up get
probability $0$; the result must still have length `num_classes`.
"""),
    ("solution", "categorical_mle", r'''
def categorical_mle(x, num_classes):
    """Maximum-likelihood probabilities of a categorical distribution.

    Parameters
    ----------
    x : ndarray of shape (N,)
        Observed outcomes, integers in 0 .. num_classes - 1.
    num_classes : int
        K, the number of possible outcomes.

    Returns
    -------
    probs : ndarray of shape (K,)
        probs[k] = (number of times k was observed) / N.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x).astype(int)
    counts = np.bincount(x, minlength=int(num_classes)).astype(float)
    return counts / x.shape[0]
    ### END SOLUTION
'''),
    ("test", "test_categorical_mle", 15, r'''
"""Check categorical_mle on ten throws of a four-sided die (face 3 never comes up)."""
throws = np.array([0, 1, 1, 2, 2, 2, 0, 1, 2, 2])
probs = categorical_mle(throws, 4)
assert probs.shape == (4,), "one probability per class, also for classes never observed"
assert np.allclose(probs, [0.2, 0.3, 0.5, 0.0])
### BEGIN HIDDEN TESTS
assert np.isclose(categorical_mle(np.arange(7) % 3, 3).sum(), 1.0)
### END HIDDEN TESTS
'''),
    ("md", r"""
## 3. Gaussian discriminant analysis (25 + 20 points)

The generative classifier of the lecture models $q(y)$ as a categorical distribution and each class's
inputs as a Gaussian, $q(\mathbf{x}\mid y=c)=\mathcal N(\mathbf{x};\boldsymbol\mu_c,\Sigma_c)$. The
log-likelihood of labelled data splits into one term for the labels and one term per class,

$$\sum_n\log q(\mathbf{x}_n,y_n)=\sum_n\log q(y_n)+\sum_c\sum_{n:\,y_n=c}\log\mathcal N(\mathbf{x}_n;\boldsymbol\mu_c,\Sigma_c),$$

so each piece is estimated on its own: the priors are the class frequencies (part 2), and class $c$'s mean
and covariance are the Gaussian estimates of part 1 computed **only on the samples of class $c$**
(the slides' equations (19) and (20)).

To **predict**, Bayes' rule turns the model around:

$$q(y=c\mid\mathbf{x})=\frac{q(y=c)\,\mathcal N(\mathbf{x};\boldsymbol\mu_c,\Sigma_c)}{\sum_{c'}q(y=c')\,\mathcal N(\mathbf{x};\boldsymbol\mu_{c'},\Sigma_{c'})}.$$

Compute it in log space: form $a_c=\log q(y=c)+\log\mathcal N(\mathbf{x};\boldsymbol\mu_c,\Sigma_c)$,
subtract $\max_c a_c$ before exponentiating, then normalise. Far from the data the densities themselves
underflow to $0$ and the plain ratio gives $0/0$.

Labels are class indices $0,\dots,C-1$ (we relabelled the slides' $\pm1$ above).
"""),
    ("solution", "gda_fit", r'''
def gda_fit(X, y):
    """Fit Gaussian discriminant analysis (one full-covariance Gaussian per class).

    Parameters
    ----------
    X : ndarray of shape (N, d)
    y : ndarray of shape (N,)
        Class indices 0 .. C-1 (C = y.max() + 1).

    Returns
    -------
    priors : ndarray of shape (C,)
        The class frequencies.
    means : ndarray of shape (C, d)
        Row c is the mean of the samples of class c.
    covs : ndarray of shape (C, d, d)
        covs[c] is the maximum-likelihood covariance of the samples of class c (divide by their count).
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    C = int(y.max()) + 1
    priors = np.bincount(y, minlength=C) / y.shape[0]
    means = np.stack([X[y == c].mean(axis=0) for c in range(C)])
    covs = np.stack([(X[y == c] - means[c]).T @ (X[y == c] - means[c]) / np.sum(y == c) for c in range(C)])
    return priors, means, covs
    ### END SOLUTION
'''),
    ("test", "test_gda_fit", 25, r'''
"""Check gda_fit on six points in two classes."""
X_small = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0], [5.0, 5.0], [7.0, 5.0], [6.0, 8.0]])
y_small = np.array([0, 0, 0, 1, 1, 1])
priors, means, covs = gda_fit(X_small, y_small)
assert priors.shape == (2,) and means.shape == (2, 2) and covs.shape == (2, 2, 2)
assert np.allclose(priors, [0.5, 0.5])
assert np.allclose(means, [[1.0, 1.0], [6.0, 6.0]])
assert np.allclose(covs[0], [[2 / 3, 0.0], [0.0, 2.0]]), "each class's covariance divides by its own count"
assert np.allclose(covs[1], covs[0])
### BEGIN HIDDEN TESTS
p, m, S = gda_fit(X, labels)
assert np.isclose(p.sum(), 1.0) and np.allclose(S, np.transpose(S, (0, 2, 1)))
### END HIDDEN TESTS
'''),
    ("solution", "gda_predict_proba", r'''
def gda_predict_proba(X, priors, means, covs):
    """Posterior class probabilities q(y = c | x) under a fitted Gaussian discriminant analysis.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    priors : ndarray of shape (C,)
    means : ndarray of shape (C, d)
    covs : ndarray of shape (C, d, d)

    Returns
    -------
    proba : ndarray of shape (N, C)
        Each row sums to 1. Computed in log space (subtract the row maximum before exponentiating).
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    N, d = X.shape
    C = len(priors)
    log_joint = np.empty((N, C))
    for c in range(C):
        L = np.linalg.cholesky(covs[c])
        sol = np.linalg.solve(L, (X - means[c]).T)
        log_det = 2.0 * np.log(np.diag(L)).sum()
        log_joint[:, c] = np.log(priors[c]) - 0.5 * (sol ** 2).sum(0) - 0.5 * log_det - 0.5 * d * np.log(2 * np.pi)
    log_joint -= log_joint.max(axis=1, keepdims=True)
    proba = np.exp(log_joint)
    return proba / proba.sum(axis=1, keepdims=True)
    ### END SOLUTION
'''),
    ("test", "test_gda_predict_proba", 20, r'''
"""Check gda_predict_proba: equal priors and covariances put the boundary halfway between the means."""
priors = np.array([0.5, 0.5])
means = np.array([[-1.0, 0.0], [1.0, 0.0]])
covs = np.stack([np.eye(2), np.eye(2)])
proba = gda_predict_proba(np.array([[0.0, 0.0], [1.0, 0.0], [300.0, 0.0]]), priors, means, covs)
assert proba.shape == (3, 2)
assert np.allclose(proba.sum(axis=1), 1.0)
assert np.allclose(proba[0], [0.5, 0.5])
assert np.allclose(proba[1], [1 / (1 + np.exp(2.0)), 1 / (1 + np.exp(-2.0))])
assert np.allclose(proba[2], [0.0, 1.0]), "far from the data: work in log space so nothing underflows to 0/0"
### BEGIN HIDDEN TESTS
p, m, S = gda_fit(X, labels)
accuracy = np.mean(gda_predict_proba(X, p, m, S).argmax(1) == labels)
assert accuracy > 0.9
### END HIDDEN TESTS
'''),
    ("md", r"""
## 4. Naive Bayes (20 points)

A full covariance in $d$ dimensions has $d(d+1)/2$ free numbers per class (the slides count $d^2$; the
matrix is symmetric), far too many when $d$ is large. **Naive Bayes** assumes that, given the class, the
features are independent: $\Sigma_c$ is diagonal, so

$$q(\mathbf{x}\mid y=c)=\prod_{j=1}^d\mathcal N(x_j;\mu_{cj},\sigma^2_{cj}),$$

and every feature of every class is a one-dimensional Gaussian estimated on its own:
$\sigma^2_{cj}=\frac1{N_c}\sum_{n:\,y_n=c}(x_{nj}-\mu_{cj})^2$. The means are the same as in GDA; the
variances are the diagonals of the GDA covariances (look at the last column of the table in part 5).
"""),
    ("solution", "naive_bayes_fit", r'''
def naive_bayes_fit(X, y):
    """Fit Gaussian naive Bayes (one diagonal Gaussian per class).

    Parameters
    ----------
    X : ndarray of shape (N, d)
    y : ndarray of shape (N,)
        Class indices 0 .. C-1.

    Returns
    -------
    priors : ndarray of shape (C,)
    means : ndarray of shape (C, d)
    variances : ndarray of shape (C, d)
        variances[c, j] is the maximum-likelihood variance of feature j within class c (divide by N_c).
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    C = int(y.max()) + 1
    priors = np.bincount(y, minlength=C) / y.shape[0]
    means = np.stack([X[y == c].mean(axis=0) for c in range(C)])
    variances = np.stack([((X[y == c] - means[c]) ** 2).mean(axis=0) for c in range(C)])
    return priors, means, variances
    ### END SOLUTION
'''),
    ("test", "test_naive_bayes_fit", 20, r'''
"""Check naive_bayes_fit on the six points of part 3."""
X_small = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0], [5.0, 5.0], [7.0, 5.0], [6.0, 8.0]])
y_small = np.array([0, 0, 0, 1, 1, 1])
priors, means, variances = naive_bayes_fit(X_small, y_small)
assert priors.shape == (2,) and means.shape == (2, 2) and variances.shape == (2, 2)
assert np.allclose(means, [[1.0, 1.0], [6.0, 6.0]])
assert np.allclose(variances, [[2 / 3, 2.0], [2 / 3, 2.0]]), "divide by the class count N_c"
### BEGIN HIDDEN TESTS
_, _, S = gda_fit(X, labels)
_, _, v = naive_bayes_fit(X, labels)
assert np.allclose(v, np.diagonal(S, axis1=1, axis2=2))
### END HIDDEN TESTS
'''),
    ("md", r"""
## 5. The estimate table

The data above were drawn exactly as in the lecture: $p(y=+1)=0.6$,
$\boldsymbol\mu_+=[2,0]^\top$, $\Sigma_+=\begin{bmatrix}1&0.8\\0.8&2\end{bmatrix}$,
$\boldsymbol\mu_-=[-2,0]^\top$, $\Sigma_-=\begin{bmatrix}2&0.6\\0.6&1\end{bmatrix}$. The next cell puts
your estimates next to the true values, as the slides' table does.
"""),
    ("code", r"""
truth = {
    "+": (np.array([2.0, 0.0]), np.array([[1.0, 0.8], [0.8, 2.0]])),
    "-": (np.array([-2.0, 0.0]), np.array([[2.0, 0.6], [0.6, 1.0]])),
}
priors, means, covs = gda_fit(X, labels)
_, _, variances = naive_bayes_fit(X, labels)
print(f"q(y=+1) = {priors[1]:.3f}   (true 0.6)")
for name, c in (("+", 1), ("-", 0)):
    mu, Sigma = truth[name]
    print(f"mu_{name}:    true {mu}   GDA {np.round(means[c], 2)}")
    print(f"Sigma_{name}: true {Sigma.tolist()}   GDA {np.round(covs[c], 2).tolist()}   "
          f"naive Bayes diag {np.round(variances[c], 2).tolist()}")
accuracy = np.mean(gda_predict_proba(X, priors, means, covs).argmax(axis=1) == labels)
print(f"training accuracy of GDA: {accuracy:.3f}")
"""),
    ("md", r"""
**Questions** (not graded; think about them before the next lecture).

1. Your estimates differ from the true parameters, and from the slides' numbers. Why, and how would the
   difference change with $N=100$ or $N=100\,000$?
2. Naive Bayes keeps the means of GDA and drops the off-diagonal covariances. For which of the two classes
   here do you expect it to lose more, and why?
3. The prediction rule only needs $q(y)\,q(\mathbf{x}\mid y)$, never $q(\mathbf{x})$. Where did the
   normaliser go in your `gda_predict_proba`?
"""),
]


# ====================================================================================================
# hw2_em
# ====================================================================================================
HW2 = [
    ("md", r"""
# Homework 2: EM for mixtures and missing data, and the ELBO

When part of the data is missing (a hidden component label, or blacked-out entries of a vector) the
log-likelihood contains a log of a sum (or of an integral) and has no closed-form maximum. The lecture's
answer is **expectation maximisation**: complete the data in proportion to the posterior of what is
missing under the current model (E-step), then re-estimate the parameters from the completed data as if
it were complete (M-step). In this homework you build EM for a Gaussian mixture and for a Gaussian with
missing entries, and you check numerically that EM is a bound optimiser: the ELBO never exceeds the
log-likelihood and touches it at the E-step's responsibilities.
""" + _conventions() + WORKFLOW.format(hw="hw2_em", extra="")),
    ("code", r"""
import numpy as np

from course_lib import seed_everything
from course_lib.data import load_faithful
"""),
    ("params", r"""
# Parameters (the grader runs the notebook with a smaller setting)
SEED = 0
N_ITER = 100          # EM iterations for Old Faithful
MISSING_FRACTION = 0.2
N_MISSING_ITER = 50   # EM iterations for the missing-data Gaussian
"""),
    ("code", r"""
seed_everything(SEED)
X_faithful = load_faithful()
# Standardise the two columns (minutes of eruption, minutes of waiting) so both matter equally.
X_faithful = (X_faithful - X_faithful.mean(0)) / X_faithful.std(0)
print(X_faithful.shape)
"""),
    ("md", r"""
## 1. The Gaussian log-density (10 points)

$$\log\mathcal N(\mathbf{x};\boldsymbol\mu,\Sigma)=-\frac d2\log 2\pi-\frac12\log|\Sigma|
-\frac12(\mathbf{x}-\boldsymbol\mu)^\top\Sigma^{-1}(\mathbf{x}-\boldsymbol\mu).$$

(The correct normaliser is $(2\pi)^{d/2}|\Sigma|^{1/2}$, hence $\frac12\log|\Sigma|$.) Do not form
$\Sigma^{-1}$: with the Cholesky factor $\Sigma=LL^\top$, the quadratic form is
$\|L^{-1}(\mathbf{x}-\boldsymbol\mu)\|^2$ (solve a triangular system) and
$\log|\Sigma|=2\sum_i\log L_{ii}$. Return the log-density of every row.
"""),
    ("solution", "log_gaussian_pdf", r'''
def log_gaussian_pdf(X, mean, cov):
    """log N(x_n; mean, cov) for every row of X.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d)
        Symmetric positive definite.

    Returns
    -------
    log_pdf : ndarray of shape (N,)
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    d = X.shape[1]
    L = np.linalg.cholesky(cov)
    sol = np.linalg.solve(L, (X - mean).T)
    return -0.5 * (sol ** 2).sum(axis=0) - np.log(np.diag(L)).sum() - 0.5 * d * np.log(2 * np.pi)
    ### END SOLUTION
'''),
    ("test", "test_log_gaussian_pdf", 10, r'''
"""Check log_gaussian_pdf at the mean of a standard and of a scaled Gaussian."""
out = log_gaussian_pdf(np.zeros((1, 2)), np.zeros(2), np.eye(2))
assert out.shape == (1,), "one log-density per row"
assert np.isclose(out[0], -np.log(2 * np.pi))
out = log_gaussian_pdf(np.array([[1.0, 0.0], [0.0, 0.0]]), np.zeros(2), 4 * np.eye(2))
assert np.allclose(out, [-np.log(2 * np.pi) - np.log(4) - 1 / 8, -np.log(2 * np.pi) - np.log(4)]), \
    "the normaliser is (2 pi)^(d/2) |cov|^(1/2)"
### BEGIN HIDDEN TESTS
A = np.array([[2.0, 0.5], [0.5, 1.0]])
x = np.array([[0.3, -1.2]])
ref = -np.log(2 * np.pi) - 0.5 * np.log(np.linalg.det(A)) - 0.5 * x[0] @ np.linalg.solve(A, x[0])
assert np.isclose(log_gaussian_pdf(x, np.zeros(2), A)[0], ref)
### END HIDDEN TESTS
'''),
    ("md", r"""
## 2. The E-step (15 points)

A mixture of $K$ Gaussians, $p(\mathbf{x})=\sum_k\pi_k\mathcal N(\mathbf{x};\boldsymbol\mu_k,\Sigma_k)$,
is a model with a hidden label $z$: $p(z=k)=\pi_k$, $p(\mathbf{x}\mid z=k)=\mathcal N(\mathbf{x};\boldsymbol\mu_k,\Sigma_k)$.
The E-step computes the **responsibilities**, the posterior of the hidden label,

$$r_{nk}=p(z_n=k\mid\mathbf{x}_n)=\frac{\pi_k\mathcal N(\mathbf{x}_n;\boldsymbol\mu_k,\Sigma_k)}{\sum_j\pi_j\mathcal N(\mathbf{x}_n;\boldsymbol\mu_j,\Sigma_j)},$$

and, with the same numbers, the log-likelihood
$\log p(X)=\sum_n\log\sum_k\pi_k\mathcal N(\mathbf{x}_n;\boldsymbol\mu_k,\Sigma_k)$.

This is the "log of a sum" from the lecture, and it must be computed with the **log-sum-exp** trick:
with $a_{nk}=\log\pi_k+\log\mathcal N(\mathbf{x}_n;\boldsymbol\mu_k,\Sigma_k)$ and $m_n=\max_k a_{nk}$,

$$\log\sum_k e^{a_{nk}}=m_n+\log\sum_k e^{a_{nk}-m_n}.$$

In 50 dimensions the densities are around $e^{-100}$ or smaller and exponentiating first gives $0$, then
$\log 0$ or $0/0$. The responsibilities are then $r_{nk}=\exp(a_{nk}-\log\sum_j e^{a_{nj}})$.
"""),
    ("solution", "e_step", r'''
def e_step(X, weights, means, covs):
    """The E-step of EM for a Gaussian mixture.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    weights : ndarray of shape (K,)
        Mixing proportions pi_k (they sum to 1).
    means : ndarray of shape (K, d)
    covs : ndarray of shape (K, d, d)

    Returns
    -------
    resp : ndarray of shape (N, K)
        Responsibilities p(z_n = k | x_n); every row sums to 1.
    log_likelihood : float
        log p(X) = sum_n log sum_k pi_k N(x_n; mu_k, Sigma_k), computed with log-sum-exp.
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    K = len(weights)
    log_joint = np.stack([np.log(weights[k]) + log_gaussian_pdf(X, means[k], covs[k]) for k in range(K)], axis=1)
    top = log_joint.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))
    resp = np.exp(log_joint - log_norm[:, None])
    return resp, float(log_norm.sum())
    ### END SOLUTION
'''),
    ("test", "test_e_step", 15, r'''
"""Check e_step: two equal, far-apart components; then a point where the densities underflow."""
weights = np.array([0.5, 0.5])
means = np.array([[-3.0, 0.0], [3.0, 0.0]])
covs = np.stack([np.eye(2), np.eye(2)])
resp, ll = e_step(np.array([[0.0, 0.0], [-3.0, 0.0]]), weights, means, covs)
assert resp.shape == (2, 2)
assert np.allclose(resp.sum(axis=1), 1.0)
assert np.allclose(resp[0], [0.5, 0.5]) and resp[1, 0] > 0.999
expected_ll = np.log(np.exp(-4.5) / (2 * np.pi)) + np.log(0.5 * (1 + np.exp(-18.0)) / (2 * np.pi))
assert np.isclose(ll, expected_ll), "the log-likelihood is the total over the data set"
resp, ll = e_step(np.array([[60.0, 0.0]]), weights, means, covs)
assert np.all(np.isfinite(resp)) and np.isfinite(ll), "use log-sum-exp: the densities underflow here"
assert np.allclose(resp, [[0.0, 1.0]])
### BEGIN HIDDEN TESTS
assert np.isclose(ll, np.log(0.5) - np.log(2 * np.pi) - 0.5 * 57.0 ** 2 + np.log1p(np.exp(-360.0)))
### END HIDDEN TESTS
'''),
    ("md", r"""
## 3. The M-step (15 points)

Treat the responsibilities as fractional labels: data point $n$ counts as $r_{nk}$ of a point of
component $k$. The weighted maximum-likelihood estimates are, with the **soft counts**
$N_k=\sum_n r_{nk}$,

$$\pi_k=\frac{N_k}{N},\qquad
\boldsymbol\mu_k=\frac1{N_k}\sum_n r_{nk}\mathbf{x}_n,\qquad
\Sigma_k=\frac1{N_k}\sum_n r_{nk}(\mathbf{x}_n-\boldsymbol\mu_k)(\mathbf{x}_n-\boldsymbol\mu_k)^\top .$$

Careful: the generative-models slides (equations 49 to 52) write $\frac1m$ in front of the means and
covariances; that is a typo. Dividing by $N$ instead of $N_k$ shrinks every mean towards zero and every
covariance by the factor $\pi_k$. (Their equation 51 for $\alpha$ also carries a stray $\mathbf{x}_i$: the
weight is $\frac1N\sum_n r_{nk}$.) The other lecture writes the same updates as
$\sum_o P(k\mid o)\,o\,/\sum_o P(k\mid o)$, which is the correct form.
"""),
    ("solution", "m_step", r'''
def m_step(X, resp):
    """The M-step of EM for a Gaussian mixture with full covariances.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    resp : ndarray of shape (N, K)
        Responsibilities; every row sums to 1.

    Returns
    -------
    weights : ndarray of shape (K,)
        N_k / N with the soft counts N_k = sum_n resp[n, k].
    means : ndarray of shape (K, d)
        Responsibility-weighted means (divide by N_k).
    covs : ndarray of shape (K, d, d)
        Responsibility-weighted maximum-likelihood covariances (divide by N_k).
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    resp = np.asarray(resp, dtype=float)
    Nk = resp.sum(axis=0)
    weights = Nk / X.shape[0]
    means = resp.T @ X / Nk[:, None]
    covs = np.stack([(resp[:, k, None] * (X - means[k])).T @ (X - means[k]) / Nk[k] for k in range(resp.shape[1])])
    return weights, means, covs
    ### END SOLUTION
'''),
    ("test", "test_m_step", 15, r'''
"""Check m_step with hard responsibilities (it must reduce to per-component estimates) and soft ones."""
X_small = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 12.0]])
hard = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
weights, means, covs = m_step(X_small, hard)
assert weights.shape == (2,) and means.shape == (2, 2) and covs.shape == (2, 2, 2)
assert np.allclose(weights, [0.5, 0.5])
assert np.allclose(means, [[1.0, 0.0], [10.0, 11.0]]), "divide by the soft counts N_k, not by N"
assert np.allclose(covs, [[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]])
soft = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
weights, means, covs = m_step(X_small, soft)
assert np.allclose(means[0], X_small.mean(axis=0)) and np.allclose(covs[0], np.cov(X_small.T, bias=True))
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(0)
r = rng.dirichlet(np.ones(3), size=20)
Z = rng.normal(size=(20, 2))
w, m, S = m_step(Z, r)
assert np.isclose(w.sum(), 1.0) and np.allclose(m[1], (r[:, 1] @ Z) / r[:, 1].sum())
### END HIDDEN TESTS
'''),
    ("md", r"""
## 4. The ELBO (15 points)

For any distribution $q_n(k)$ over the hidden label of point $n$, concavity of the log (Jensen) gives

$$\log p(\mathbf{x}_n)=\log\sum_k q_n(k)\frac{p(\mathbf{x}_n,z=k)}{q_n(k)}\ \ge\ 
\sum_k q_n(k)\log p(\mathbf{x}_n,z=k)-\sum_k q_n(k)\log q_n(k),$$

and summing over the data points gives the **evidence lower bound**

$$\mathrm{ELBO}(q)=\sum_n\sum_k r_{nk}\big[\log\pi_k+\log\mathcal N(\mathbf{x}_n;\boldsymbol\mu_k,\Sigma_k)-\log r_{nk}\big]\ \le\ \log p(X),$$

where $r_{nk}=q_n(k)$ and $0\log0=0$. The gap is $\sum_n\mathrm{KL}\big(q_n\,\|\,p(z\mid\mathbf{x}_n)\big)\ge0$,
so the bound is tight exactly when $q$ is the posterior, i.e. at the E-step's responsibilities. EM
alternates: the E-step makes the bound touch the log-likelihood, the M-step pushes the bound up; so the
log-likelihood never goes down.
"""),
    ("solution", "elbo", r'''
def elbo(X, resp, weights, means, covs):
    """The evidence lower bound of a Gaussian mixture for responsibilities ``resp``.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    resp : ndarray of shape (N, K)
        Any responsibilities (each row a distribution over the K components), not only the posterior.
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covs : ndarray of shape (K, d, d)

    Returns
    -------
    elbo : float
        sum_n sum_k resp[n, k] * (log weights[k] + log N(x_n; means[k], covs[k]) - log resp[n, k]),
        with 0 * log 0 = 0. At most the log-likelihood; equal to it at the E-step's responsibilities.
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    resp = np.asarray(resp, dtype=float)
    K = len(weights)
    log_joint = np.stack([np.log(weights[k]) + log_gaussian_pdf(X, means[k], covs[k]) for k in range(K)], axis=1)
    safe = np.where(resp > 0, resp, 1.0)
    return float(np.sum(np.where(resp > 0, resp * (log_joint - np.log(safe)), 0.0)))
    ### END SOLUTION
'''),
    ("test", "test_elbo", 15, r'''
"""Check elbo: at most the log-likelihood, equal to it at the E-step's responsibilities, 0 log 0 = 0."""
rng = np.random.default_rng(0)
X_small = rng.normal(size=(8, 2))
weights = np.array([0.3, 0.7])
means = np.array([[-1.0, 0.0], [1.0, 0.5]])
covs = np.stack([np.eye(2), 2 * np.eye(2)])
resp, ll = e_step(X_small, weights, means, covs)
assert np.isclose(elbo(X_small, resp, weights, means, covs), ll), "equal at the posterior"
other = rng.dirichlet(np.ones(2), size=8)
assert elbo(X_small, other, weights, means, covs) < ll, "a lower bound everywhere else"
hard = np.eye(2)[rng.integers(0, 2, size=8)]
assert np.isfinite(elbo(X_small, hard, weights, means, covs)), "0 * log 0 counts as 0"
### BEGIN HIDDEN TESTS
ref = sum(hard[:, k].sum() * np.log(weights[k]) + log_gaussian_pdf(X_small[hard[:, k] == 1], means[k], covs[k]).sum() for k in range(2))
assert np.isclose(elbo(X_small, hard, weights, means, covs), ref)
### END HIDDEN TESTS
'''),
    ("md", r"""
## 5. EM for a Gaussian mixture (15 points)

Put the pieces together. Start (so that everyone's runs can be compared) with

* `rng = np.random.default_rng(seed)`; the initial means are `K` distinct data points,
  `X[rng.choice(N, size=K, replace=False)]`;
* every initial covariance equal to the maximum-likelihood covariance of the whole data set;
* equal weights $1/K$.

Then repeat `n_iter` times: an E-step (record its log-likelihood), then an M-step. The recorded
log-likelihoods, one per iteration, must never decrease (up to round-off): if they do, one of your steps is
wrong.
"""),
    ("solution", "fit_gmm", r'''
def fit_gmm(X, K, n_iter, seed):
    """Fit a K-component Gaussian mixture by EM.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    K : int
        Number of components.
    n_iter : int
        Number of EM iterations (each: one E-step, then one M-step).
    seed : int
        Seed of ``np.random.default_rng`` for choosing the initial means.

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covs : ndarray of shape (K, d, d)
        The parameters after the last M-step.
    log_likelihoods : ndarray of shape (n_iter,)
        The log-likelihood computed by each iteration's E-step (non-decreasing).
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    N, d = X.shape
    rng = np.random.default_rng(seed)
    means = X[rng.choice(N, size=K, replace=False)]
    diff = X - X.mean(axis=0)
    covs = np.repeat((diff.T @ diff / N)[None], K, axis=0)
    weights = np.full(K, 1.0 / K)
    log_likelihoods = np.empty(n_iter)
    for t in range(n_iter):
        resp, log_likelihoods[t] = e_step(X, weights, means, covs)
        weights, means, covs = m_step(X, resp)
    return weights, means, covs, log_likelihoods
    ### END SOLUTION
'''),
    ("test", "test_fit_gmm", 15, r'''
"""Check fit_gmm on Old Faithful: the log-likelihood never decreases and ends near the optimum."""
weights, means, covs, lls = fit_gmm(X_faithful, 2, 60, seed=0)
assert weights.shape == (2,) and means.shape == (2, 2) and covs.shape == (2, 2, 2) and lls.shape == (60,)
assert np.all(np.diff(lls) >= -1e-8), "EM never lowers the log-likelihood"
assert lls[-1] > -400.0, f"log-likelihood {lls[-1]:.1f} is far below the two-component optimum (about -385)"
### BEGIN HIDDEN TESTS
assert np.isclose(weights.sum(), 1.0)
### END HIDDEN TESTS
'''),
    ("code", r"""
weights, means, covs, lls = fit_gmm(X_faithful, 2, N_ITER, seed=SEED)
print(f"log-likelihood: first iteration {lls[0]:.2f}, last {lls[-1]:.2f}")
for k in np.argsort(means[:, 0]):
    print(f"component {k}: weight {weights[k]:.3f}, mean {np.round(means[k], 3)}")
"""),
    ("md", r"""
## 6. EM for a Gaussian with missing entries (15 + 15 points)

Now the hidden part is not a label but some entries of $\mathbf{x}$. Write one data vector as its
observed part $\mathbf{o}$ and missing part $\mathbf{m}$. Under the current Gaussian
$\mathcal N(\boldsymbol\mu,\Sigma)$ the missing part given the observed one is again Gaussian:

$$p(\mathbf{m}\mid\mathbf{o})=\mathcal N\big(\boldsymbol\mu_m+\Sigma_{mo}\Sigma_{oo}^{-1}(\mathbf{o}-\boldsymbol\mu_o),\ 
\Sigma_{mm}-\Sigma_{mo}\Sigma_{oo}^{-1}\Sigma_{om}\big).$$

**E-step** (`missing_e_step`): "complete every vector with every possible value, in proportion to
$p(\mathbf m\mid\mathbf o)$". For each row, fill the missing entries with the conditional mean (the
observed entries stay as they are) and return the conditional covariance placed in a $d\times d$ matrix
at the missing rows and columns, zero elsewhere. A complete row gets a zero matrix; a row with every entry
missing gets $\boldsymbol\mu$ and $\Sigma$.

**M-step** (`missing_m_step`): the slides' update averages over the completed vectors,
$\boldsymbol\mu=\frac1N\sum_n\int p(\mathbf m\mid\mathbf o_n)\,\mathbf x_n(\mathbf m)\,d\mathbf m$ and
$\Sigma=\frac1N\sum_n\int p(\mathbf m\mid\mathbf o_n)(\mathbf x_n(\mathbf m)-\boldsymbol\mu)(\mathbf x_n(\mathbf m)-\boldsymbol\mu)^\top d\mathbf m$.
Working out the integrals with the filled rows $\hat{\mathbf x}_n$ and conditional covariances $C_n$:

$$\boldsymbol\mu=\frac1N\sum_n\hat{\mathbf x}_n,\qquad
\Sigma=\frac1N\sum_n\Big[(\hat{\mathbf x}_n-\boldsymbol\mu)(\hat{\mathbf x}_n-\boldsymbol\mu)^\top+C_n\Big].$$

Forgetting the $C_n$ term (treating the filled-in values as if they had been observed) underestimates the
covariance.
"""),
    ("solution", "missing_e_step", r'''
def missing_e_step(X, mean, cov):
    """The E-step of EM for a Gaussian with missing entries.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        The data, with np.nan where an entry is missing.
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d)
        The current Gaussian.

    Returns
    -------
    X_filled : ndarray of shape (N, d)
        X with each row's missing entries replaced by their conditional mean given the observed ones.
    cond_covs : ndarray of shape (N, d, d)
        cond_covs[n] holds the conditional covariance of row n's missing entries at their rows and
        columns, and zeros elsewhere (all zeros for a complete row).
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    N, d = X.shape
    X_filled = X.copy()
    cond_covs = np.zeros((N, d, d))
    for n in range(N):
        m = np.isnan(X[n])
        if not m.any():
            continue
        o = ~m
        if o.any():
            gain = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)]).T       # Sigma_mo Sigma_oo^-1
            X_filled[n, m] = mean[m] + gain @ (X[n, o] - mean[o])
            cond_covs[n][np.ix_(m, m)] = cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)]
        else:
            X_filled[n] = mean
            cond_covs[n] = cov
    return X_filled, cond_covs
    ### END SOLUTION
'''),
    ("test", "test_missing_e_step", 15, r'''
"""Check missing_e_step on a correlated 2-D Gaussian."""
mean = np.array([1.0, -1.0])
cov = np.array([[2.0, 1.0], [1.0, 2.0]])
X_missing = np.array([[3.0, np.nan], [np.nan, np.nan], [0.0, 0.0]])
X_filled, cond_covs = missing_e_step(X_missing, mean, cov)
assert X_filled.shape == (3, 2) and cond_covs.shape == (3, 2, 2)
assert np.allclose(X_filled[0], [3.0, -1.0 + 0.5 * 2.0]), "conditional mean: mu_m + S_mo S_oo^-1 (o - mu_o)"
assert np.allclose(cond_covs[0], [[0.0, 0.0], [0.0, 1.5]]), "conditional covariance at the missing entries"
assert np.allclose(X_filled[1], mean) and np.allclose(cond_covs[1], cov)
assert np.allclose(X_filled[2], [0.0, 0.0]) and np.allclose(cond_covs[2], 0.0)
### BEGIN HIDDEN TESTS
assert not np.isnan(X_filled).any()
### END HIDDEN TESTS
'''),
    ("solution", "missing_m_step", r'''
def missing_m_step(X_filled, cond_covs):
    """The M-step of EM for a Gaussian with missing entries.

    Parameters
    ----------
    X_filled : ndarray of shape (N, d)
        Rows completed by the E-step.
    cond_covs : ndarray of shape (N, d, d)
        The E-step's conditional covariances.

    Returns
    -------
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d)
        (1/N) sum_n [(x_n - mean)(x_n - mean)^T + cond_covs[n]].
    """
    ### BEGIN SOLUTION
    X_filled = np.asarray(X_filled, dtype=float)
    N = X_filled.shape[0]
    mean = X_filled.mean(axis=0)
    diff = X_filled - mean
    cov = (diff.T @ diff + np.asarray(cond_covs).sum(axis=0)) / N
    return mean, cov
    ### END SOLUTION
'''),
    ("test", "test_missing_m_step", 15, r'''
"""Check missing_m_step: the conditional covariances add to the scatter of the filled rows."""
X_filled = np.array([[0.0, 0.0], [2.0, 2.0]])
cond_covs = np.stack([np.zeros((2, 2)), np.array([[0.0, 0.0], [0.0, 2.0]])])
mean, cov = missing_m_step(X_filled, cond_covs)
assert mean.shape == (2,) and cov.shape == (2, 2)
assert np.allclose(mean, [1.0, 1.0])
assert np.allclose(cov, [[1.0, 1.0], [1.0, 2.0]]), "cov = (scatter + sum of cond_covs) / N"
### BEGIN HIDDEN TESTS
assert np.allclose(cov, cov.T)
### END HIDDEN TESTS
'''),
    ("code", r"""
# Hide entries of Old Faithful at random and recover the Gaussian by EM.
rng = np.random.default_rng(SEED)
X_missing = X_faithful.copy()
X_missing[rng.random(X_missing.shape) < MISSING_FRACTION] = np.nan
mean, cov = np.nanmean(X_missing, axis=0), np.diag(np.nanvar(X_missing, axis=0))
for _ in range(N_MISSING_ITER):
    X_filled, cond_covs = missing_e_step(X_missing, mean, cov)
    mean, cov = missing_m_step(X_filled, cond_covs)
print("EM on the incomplete data:   mean", np.round(mean, 3), " cov", np.round(cov, 3).tolist())
full_cov = np.cov(X_faithful.T, bias=True)
print("MLE on the complete data:    mean", np.round(X_faithful.mean(0), 3), " cov", np.round(full_cov, 3).tolist())
"""),
    ("md", r"""
**Questions** (not graded).

1. Plot `lls` from part 5 against the iteration. Where does it rise fastest, and why can it never go down?
2. Run `fit_gmm` with $K=3$ and several seeds. Do all runs reach the same log-likelihood? What does that
   say about the optimum EM finds?
3. The lecture's other way to complete the data is to *sample* the missing entries from
   $p(\mathbf m\mid\mathbf o)$ instead of averaging over them. What would change in `missing_m_step`?
"""),
]


# ====================================================================================================
# hw3_linear
# ====================================================================================================
HW3 = [
    ("md", r"""
# Homework 3: PCA and factor analysis

PCA finds the $k$-dimensional subspace onto which the (centred) data project with the least squared error;
the lecture found it two ways, in closed form from the eigenvectors of the covariance and by alternating
least squares. Factor analysis (the linear Gaussian model) turns the same picture into a generative model,
$\mathbf x=A\mathbf z+\mathbf e$ with $\mathbf z\sim\mathcal N(0,I_k)$ and $\mathbf e\sim\mathcal N(0,D)$,
whose position vectors $\mathbf z$ are missing data, so EM fits it. You will write both and check the
ELBO of factor analysis against its exact log-likelihood.
""" + _conventions(r"""
* The data are **already centred** (zero mean), and the model is the zero-mean one of the slides:
  $A$ is `(d, k)`, $D$ is the diagonal noise covariance stored as its diagonal, a `(d,)` vector.
* The slides stack samples as *columns* ($X$ is $d\times N$). With rows as samples our $X$ is their
  $X^\top$, so their $Z\leftarrow W^+X,\ W\leftarrow XZ^+$ reads $Z\leftarrow W^+X^\top,\ W\leftarrow X^\top Z^+$ here.""")
     + WORKFLOW.format(hw="hw3_linear", extra="")),
    ("code", r"""
import numpy as np

from course_lib import seed_everything
from course_lib.data import load_digits
"""),
    ("params", r"""
# Parameters (the grader runs the notebook with a smaller setting)
SEED = 0
N_SAMPLES = 1500      # digits used by the demonstration at the end
N_COMPONENTS = 5
N_ITER = 50           # EM iterations of factor analysis
"""),
    ("code", r"""
seed_everything(SEED)
X_digits, y_digits = load_digits("train")             # 1500 images of 8x8 pixels in [0, 1]
X_digits = X_digits[:N_SAMPLES]
X_digits = X_digits[:, X_digits.var(axis=0) > 1e-2]   # drop the border pixels that are (almost) always blank
X_digits = X_digits - X_digits.mean(axis=0)           # centre: every model here has zero mean
print(X_digits.shape)
"""),
    ("md", r"""
## 1. PCA in closed form (15 points)

For centred data the best direction $\mathbf w$ (unit length) minimises the squared reconstruction
error $\sum_n\|\mathbf x_n-(\mathbf w^\top\mathbf x_n)\mathbf w\|^2$, which is the same as maximising
$\mathbf w^\top S\mathbf w$ with $S=\frac1N X^\top X$; the stationary points are the eigenvalue equation
$S\mathbf w=\lambda\mathbf w$, and the error left is smallest for the largest eigenvalues. So the
principal subspace is spanned by the top-$k$ eigenvectors of $S$, and the variance of the data along the
$i$-th one is its eigenvalue $\lambda_i$ (divide by $N$).

Return the components as **rows**, sorted by decreasing variance. Their signs are arbitrary (the grader
compares subspaces); use `np.linalg.eigh` for the symmetric $S$ (it returns ascending eigenvalues).
"""),
    ("solution", "pca", r'''
def pca(X, k):
    """The top-k principal components of centred data.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        Centred data (every column has mean 0).
    k : int
        Number of components, 1 <= k <= d.

    Returns
    -------
    components : ndarray of shape (k, d)
        Orthonormal rows: the eigenvectors of S = X^T X / N with the k largest eigenvalues, largest first.
    variances : ndarray of shape (k,)
        Those eigenvalues (the variance of the data along each component), in decreasing order.
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    S = X.T @ X / X.shape[0]
    evals, evecs = np.linalg.eigh(S)
    order = np.argsort(evals)[::-1][:k]
    return evecs[:, order].T, evals[order]
    ### END SOLUTION
'''),
    ("test", "test_pca", 15, r'''
"""Check pca on data stretched along the diagonal."""
t = np.array([-2.0, -1.0, 1.0, 2.0])
X_small = np.stack([t, t], axis=1) + np.array([[0.1, -0.1], [-0.1, 0.1], [-0.1, 0.1], [0.1, -0.1]])
components, variances = pca(X_small, 1)
assert components.shape == (1, 2) and variances.shape == (1,)
assert np.isclose(abs(components[0] @ np.array([1.0, 1.0]) / np.sqrt(2)), 1.0), "the diagonal direction"
assert np.isclose(variances[0], 5.0), "variance along the component: divide by N"
components, variances = pca(X_small, 2)
assert np.allclose(components @ components.T, np.eye(2)) and variances[0] >= variances[1]
### BEGIN HIDDEN TESTS
assert np.isclose(variances.sum(), np.trace(X_small.T @ X_small) / 4)
### END HIDDEN TESTS
'''),
    ("md", r"""
## 2. PCA by alternating least squares (15 points)

The lecture's iterative solution looks for bases $W$ and position vectors $Z$ with $WZ\approx X$ (columns
as samples) and alternates two least-squares problems:

* given $W$, the best positions are $Z\leftarrow W^+X$;
* given $Z$, the best bases are $W\leftarrow XZ^+$,

where $^+$ is the pseudo-inverse (`np.linalg.pinv`). With our rows-as-samples $X$ ($N\times d$) this is
$Z\leftarrow W^+X^\top$ ($k\times N$) and $W\leftarrow X^\top Z^+$ ($d\times k$). Write one such
step. Repeating it converges to a basis of the principal subspace, but not to the eigenvectors themselves:
any $WB$ with invertible $B$ spans the same subspace (the lecture's scale and rotation ambiguity).
"""),
    ("solution", "iterative_pca_step", r'''
def iterative_pca_step(X, W):
    """One alternating least-squares step of PCA: Z <- W^+ X^T, then W <- X^T Z^+.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        Centred data.
    W : ndarray of shape (d, k)
        The current bases (columns).

    Returns
    -------
    W_new : ndarray of shape (d, k)
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    Z = np.linalg.pinv(W) @ X.T
    return X.T @ np.linalg.pinv(Z)
    ### END SOLUTION
'''),
    ("test", "test_iterative_pca_step", 15, r'''
"""Check iterative_pca_step: exact data on a line are reproduced in one step; repeated steps find the subspace."""
t = np.array([[-2.0], [-1.0], [1.0], [2.0]])
X_line = t @ np.array([[3.0, 4.0]]) / 5.0
W_new = iterative_pca_step(X_line, np.array([[1.0], [0.0]]))
assert W_new.shape == (2, 1)
assert np.isclose(abs(W_new[:, 0] @ np.array([3.0, 4.0])) / (5 * np.linalg.norm(W_new)), 1.0)
rng = np.random.default_rng(0)
X_small = rng.normal(size=(40, 3)) * np.array([3.0, 1.0, 0.2])
X_small -= X_small.mean(axis=0)
W = rng.normal(size=(3, 2))
for _ in range(200):
    W = iterative_pca_step(X_small, W)
P = W @ np.linalg.pinv(W)                      # projector onto the span of W
top2 = pca(X_small, 2)[0]
assert np.allclose(P, top2.T @ top2, atol=1e-6), "the span of W must be the principal subspace"
### BEGIN HIDDEN TESTS
assert np.allclose(iterative_pca_step(X_small, 2 * W) @ np.linalg.pinv(iterative_pca_step(X_small, 2 * W)), P, atol=1e-6)
### END HIDDEN TESTS
'''),
    ("md", r"""
## 3. The factor-analysis posterior (15 points)

In the linear Gaussian model $\mathbf x=A\mathbf z+\mathbf e$, $\mathbf z\sim\mathcal N(0,I)$,
$\mathbf e\sim\mathcal N(0,D)$: $\mathbf x$ and $\mathbf z$ are jointly Gaussian with
$\operatorname{cov}(\mathbf x)=AA^\top+D$ and $\operatorname{cov}(\mathbf z,\mathbf x)=A^\top$, so the
posterior of the position vector is (the slides' formula)

$$p(\mathbf z\mid\mathbf x)=\mathcal N\big(\mathbf z;\ A^\top(AA^\top+D)^{-1}\mathbf x,\ I-A^\top(AA^\top+D)^{-1}A\big).$$

Its covariance does not depend on $\mathbf x$: return one $(k,k)$ matrix shared by all samples, and the
$(N,k)$ posterior means (one row per sample).
"""),
    ("solution", "fa_posterior", r'''
def fa_posterior(X, A, D):
    """The posterior p(z | x) of factor analysis for every row of X.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        Centred data.
    A : ndarray of shape (d, k)
        Loadings.
    D : ndarray of shape (d,)
        Diagonal of the noise covariance (positive).

    Returns
    -------
    means : ndarray of shape (N, k)
        Row n is A^T (A A^T + diag(D))^{-1} x_n.
    cov : ndarray of shape (k, k)
        I - A^T (A A^T + diag(D))^{-1} A, the same for every sample.
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    k = A.shape[1]
    G = np.linalg.solve(A @ A.T + np.diag(D), A).T          # A^T (A A^T + D)^{-1}, shape (k, d)
    return X @ G.T, np.eye(k) - G @ A
    ### END SOLUTION
'''),
    ("test", "test_fa_posterior", 15, r'''
"""Check fa_posterior in one dimension: x = a z + e gives mean a x / (a^2 + D), variance D / (a^2 + D)."""
means, cov = fa_posterior(np.array([[2.0], [-1.0]]), np.array([[3.0]]), np.array([1.0]))
assert means.shape == (2, 1) and cov.shape == (1, 1)
assert np.allclose(means, [[0.6], [-0.3]])
assert np.allclose(cov, [[0.1]])
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(0)
A_ = rng.normal(size=(4, 2))
m_, S_ = fa_posterior(rng.normal(size=(3, 4)), A_, np.ones(4))
assert np.allclose(S_, np.linalg.inv(np.eye(2) + A_.T @ A_))
### END HIDDEN TESTS
'''),
    ("md", r"""
## 4. One EM step of factor analysis (20 points)

With the position vectors $\mathbf z_n$ missing, EM completes them in proportion to the posterior of
part 3. Differentiating the expected complete-data log-likelihood
$\sum_n\mathbb E_{p(\mathbf z\mid\mathbf x_n)}\big[-\tfrac12\log|D|-\tfrac12(\mathbf x_n-A\mathbf z)^\top D^{-1}(\mathbf x_n-A\mathbf z)\big]$
gives the slides' updates. With the posterior means $\mathbf m_n$ and covariance $S$ from the *current*
$A, D$, the expectations are $\mathbb E[\mathbf z_n]=\mathbf m_n$ and
$\mathbb E[\mathbf z_n\mathbf z_n^\top]=S+\mathbf m_n\mathbf m_n^\top$, and

$$A_{\text{new}}=\Big(\sum_n\mathbf x_n\mathbf m_n^\top\Big)\Big(\sum_n S+\mathbf m_n\mathbf m_n^\top\Big)^{-1},\qquad
D_{\text{new}}=\operatorname{diag}\Big(\frac1N\Big(\sum_n\mathbf x_n\mathbf x_n^\top-A_{\text{new}}\sum_n\mathbf m_n\mathbf x_n^\top\Big)\Big).$$

(The slide writes $A\sum\mathbf x\mathbf z^\top$ in the $D$ update; the dimensions only work, and the
derivation gives, $A_{\text{new}}\sum_n\mathbb E[\mathbf z_n]\mathbf x_n^\top$.) In matrix form with
$M$ the $(N,k)$ means: $A_{\text{new}}=X^\top M\,(NS+M^\top M)^{-1}$.
"""),
    ("solution", "fa_em_step", r'''
def fa_em_step(X, A, D):
    """One EM iteration of factor analysis (E-step with the current A, D, then the M-step).

    Parameters
    ----------
    X : ndarray of shape (N, d)
        Centred data.
    A : ndarray of shape (d, k)
    D : ndarray of shape (d,)

    Returns
    -------
    A_new : ndarray of shape (d, k)
    D_new : ndarray of shape (d,)
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    N = X.shape[0]
    M, S = fa_posterior(X, A, D)
    XM = X.T @ M                                          # sum_n x_n m_n^T, (d, k)
    A_new = np.linalg.solve(N * S + M.T @ M, XM.T).T
    D_new = (np.sum(X * X, axis=0) - np.sum(A_new * XM, axis=1)) / N
    return A_new, D_new
    ### END SOLUTION
'''),
    ("test", "test_fa_em_step", 20, r'''
"""Check fa_em_step on a hand-worked one-dimensional example, then that it raises the likelihood."""
A_new, D_new = fa_em_step(np.array([[2.0], [-2.0]]), np.array([[1.0]]), np.array([1.0]))
# posterior: m = x / 2, S = 1/2; A_new = sum x m / sum (S + m^2) = 4 / 3; D_new = (8 - A_new * 4) / 2
assert A_new.shape == (1, 1) and D_new.shape == (1,)
assert np.allclose(A_new, [[4 / 3]]) and np.allclose(D_new, [4 / 3])
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(0)
Xs = rng.normal(size=(30, 4)) @ rng.normal(size=(4, 4))
Xs -= Xs.mean(0)
A1, D1 = fa_em_step(Xs, rng.normal(size=(4, 2)), np.ones(4))
assert np.all(D1 > 0)
### END HIDDEN TESTS
'''),
    ("md", r"""
## 5. The factor-analysis log-likelihood (15 points)

Marginally $\mathbf x\sim\mathcal N(0,AA^\top+D)$, so

$$\log p(X)=\sum_n\log\mathcal N(\mathbf x_n;0,AA^\top+D),$$

the quantity the slides maximise. Use a Cholesky factor as in homework 2 and return the total over the
rows. EM must never lower it.
"""),
    ("solution", "fa_log_likelihood", r'''
def fa_log_likelihood(X, A, D):
    """The log-likelihood of factor analysis, sum_n log N(x_n; 0, A A^T + diag(D)).

    Parameters
    ----------
    X : ndarray of shape (N, d)
    A : ndarray of shape (d, k)
    D : ndarray of shape (d,)

    Returns
    -------
    log_likelihood : float
        The total over the rows.
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    N, d = X.shape
    L = np.linalg.cholesky(A @ A.T + np.diag(D))
    sol = np.linalg.solve(L, X.T)
    return float(-0.5 * np.sum(sol ** 2) - N * np.log(np.diag(L)).sum() - 0.5 * N * d * np.log(2 * np.pi))
    ### END SOLUTION
'''),
    ("test", "test_fa_log_likelihood", 15, r'''
"""Check fa_log_likelihood in one dimension (variance a^2 + D = 2) and that EM raises it."""
X_small = np.array([[1.0], [-1.0], [0.0]])
ll = fa_log_likelihood(X_small, np.array([[1.0]]), np.array([1.0]))
assert np.isclose(ll, 3 * (-0.5 * np.log(2 * np.pi * 2.0)) - 0.5 * (1 + 1) / 2.0), "the total over the rows"
rng = np.random.default_rng(0)
X_small = rng.normal(size=(50, 3)) @ np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 0.3]])
X_small -= X_small.mean(axis=0)
A, D = rng.normal(size=(3, 1)), np.ones(3)
lls = []
for _ in range(20):
    lls.append(fa_log_likelihood(X_small, A, D))
    A, D = fa_em_step(X_small, A, D)
assert np.all(np.diff(lls) >= -1e-8), "EM never lowers the log-likelihood"
### BEGIN HIDDEN TESTS
assert lls[-1] > lls[0]
### END HIDDEN TESTS
'''),
    ("md", r"""
## 6. The ELBO of factor analysis (20 points)

For any Gaussian $q(\mathbf z_n)=\mathcal N(\mathbf q_n,S_q)$ (one mean per sample, a shared covariance),

$$\mathrm{ELBO}=\sum_n\Big(\mathbb E_{q}\big[\log p(\mathbf x_n\mid\mathbf z)\big]-\mathrm{KL}\big(q(\mathbf z_n)\,\|\,\mathcal N(0,I)\big)\Big)\ \le\ \log p(X),$$

with equality when $q$ is the posterior of part 3. Both terms have closed forms. With
$p(\mathbf x\mid\mathbf z)=\mathcal N(A\mathbf z,D)$,

$$\mathbb E_q[\log p(\mathbf x_n\mid\mathbf z)]=-\frac d2\log2\pi-\frac12\sum_j\log D_j
-\frac12\sum_j\frac{(x_{nj}-(A\mathbf q_n)_j)^2+(AS_qA^\top)_{jj}}{D_j},$$

and for two Gaussians in $k$ dimensions

$$\mathrm{KL}\big(\mathcal N(\mathbf q,S_q)\,\|\,\mathcal N(0,I)\big)=\frac12\Big(\operatorname{tr}S_q+\mathbf q^\top\mathbf q-k-\log|S_q|\Big).$$

(The VAE slides print this as $\frac12(\operatorname{tr}\Sigma+\boldsymbol\mu^\top(\boldsymbol\mu-d-\log|\Sigma|))$,
a misplaced parenthesis: $k$ and $\log|S_q|$ are not multiplied by $\boldsymbol\mu^\top$.)
"""),
    ("solution", "fa_elbo", r'''
def fa_elbo(X, A, D, q_means, q_cov):
    """The ELBO of factor analysis for Gaussian posteriors q(z_n) = N(q_means[n], q_cov).

    Parameters
    ----------
    X : ndarray of shape (N, d)
    A : ndarray of shape (d, k)
    D : ndarray of shape (d,)
    q_means : ndarray of shape (N, k)
    q_cov : ndarray of shape (k, k)
        Shared by every sample; symmetric positive definite.

    Returns
    -------
    elbo : float
        sum_n E_q[log p(x_n | z)] - KL(q(z_n) || N(0, I)); at most fa_log_likelihood(X, A, D), equal at the
        posterior.
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    N, d = X.shape
    k = A.shape[1]
    resid = X - q_means @ A.T
    spread = np.diag(A @ q_cov @ A.T)
    expected_ll = (-0.5 * d * np.log(2 * np.pi) * N - 0.5 * N * np.log(D).sum()
                   - 0.5 * np.sum((resid ** 2 + spread) / D))
    _, logdet = np.linalg.slogdet(q_cov)
    kl = 0.5 * (N * np.trace(q_cov) + np.sum(q_means ** 2) - N * k - N * logdet)
    return float(expected_ll - kl)
    ### END SOLUTION
'''),
    ("test", "test_fa_elbo", 20, r'''
"""Check fa_elbo: equal to the log-likelihood at the posterior, below it elsewhere."""
rng = np.random.default_rng(0)
X_small = rng.normal(size=(10, 3))
A, D = rng.normal(size=(3, 2)), np.array([0.5, 1.0, 2.0])
means, cov = fa_posterior(X_small, A, D)
ll = fa_log_likelihood(X_small, A, D)
assert np.isclose(fa_elbo(X_small, A, D, means, cov), ll), "equality at the posterior"
assert fa_elbo(X_small, A, D, means + 0.1, cov) < ll
assert fa_elbo(X_small, A, D, means, 2 * cov) < ll
### BEGIN HIDDEN TESTS
assert fa_elbo(X_small, A, D, np.zeros_like(means), np.eye(2)) < ll
### END HIDDEN TESTS
'''),
    ("code", r"""
# PCA and factor analysis on the centred digits.
components, variances = pca(X_digits, N_COMPONENTS)
print("PCA: fraction of the variance kept by", N_COMPONENTS, "components:",
      round(variances.sum() / np.trace(X_digits.T @ X_digits / len(X_digits)), 3))
A = components.T * np.sqrt(variances)                  # start factor analysis from the PCA solution
D = np.full(X_digits.shape[1], X_digits.var(axis=0).mean())
lls = []
for _ in range(N_ITER):
    lls.append(fa_log_likelihood(X_digits, A, D))
    A, D = fa_em_step(X_digits, A, D)
print(f"factor analysis: log-likelihood {lls[0]:.1f} -> {lls[-1]:.1f} in {N_ITER} EM steps")
"""),
    ("md", r"""
**Questions** (not graded).

1. Compare the span of `A` after EM with the PCA subspace (e.g. the principal angles between them). When
   would they coincide?
2. Both PCA and factor analysis leave the basis undetermined up to $A\to AR$ with $R$ orthogonal. Which
   quantities you computed are unaffected by $R$, and why does that make them the right things to grade?
3. Why is the ELBO of part 6 equal to the log-likelihood at the posterior? Write the gap as a KL divergence.
"""),
]


# ====================================================================================================
# hw4_vae
# ====================================================================================================
HW4 = [
    ("md", r"""
# Homework 4: the variational autoencoder

When the decoder $f(\mathbf z;\theta)$ is a neural network, the posterior $p(\mathbf z\mid\mathbf x)$ of
factor analysis has no closed form any more. The VAE approximates it by a Gaussian
$Q(\mathbf z,\mathbf x)=\mathcal N(\mathbf z;\boldsymbol\mu(\mathbf x;\varphi),\operatorname{diag}\boldsymbol\sigma^2(\mathbf x;\varphi))$
computed by an encoder network, and trains encoder and decoder together by maximising the ELBO
(minimising its negative). You write the pieces of that loss in PyTorch, then a training loop.
""" + _conventions(r"""
* The exception: `negative_elbo` returns the **mean over the batch** (a loss for the optimiser).
* The encoder returns the log-variance `logvar` $=\log\sigma^2$, one per latent dimension.""")
     + WORKFLOW.format(hw="hw4_vae", extra=" and PyTorch (`torch`, `torch.nn`)")),
    ("code", r"""
import math

import numpy as np
import torch
from torch import nn

from course_lib import get_device, seed_everything
from course_lib.data import load_digits
"""),
    ("params", r"""
# Parameters (the grader runs the notebook with a smaller setting)
SEED = 0
EPOCHS = 20
LATENT_DIM = 2
N_TRAIN = 1500
"""),
    ("code", r"""
seed_everything(SEED)
device = torch.device("cpu")          # small data: the CPU is fast enough (get_device() picks a GPU)
X_train, y_train = load_digits("train")          # 8x8 images, pixel intensities in [0, 1]
X_test, y_test = load_digits("test")
X_train = torch.as_tensor(X_train[:N_TRAIN], dtype=torch.float32)
X_test = torch.as_tensor(X_test, dtype=torch.float32)
print(X_train.shape, X_test.shape)
"""),
    ("md", r"""
## 1. The reparameterisation trick (10 points)

To backpropagate through a sample of $Q$, draw the noise first and make the sample a differentiable
function of the encoder's outputs: with $\boldsymbol\varepsilon\sim\mathcal N(0,I)$,

$$\mathbf z=\boldsymbol\mu+\boldsymbol\sigma\odot\boldsymbol\varepsilon,\qquad\boldsymbol\sigma=\exp(\tfrac12\,\texttt{logvar}).$$

(The slides write $\Sigma^{0.5}\boldsymbol\varepsilon$; for a diagonal $\Sigma$ that is the elementwise
standard deviation.) The noise is passed in, so the function itself is deterministic.
"""),
    ("solution", "reparameterize", r'''
def reparameterize(mu, logvar, eps):
    """A sample of N(mu, diag(exp(logvar))) written as a differentiable function of mu and logvar.

    Parameters
    ----------
    mu : tensor of shape (N, k)
    logvar : tensor of shape (N, k)
        log sigma^2.
    eps : tensor of shape (N, k)
        Standard normal noise.

    Returns
    -------
    z : tensor of shape (N, k)
        mu + exp(logvar / 2) * eps.
    """
    ### BEGIN SOLUTION
    return mu + torch.exp(0.5 * logvar) * eps
    ### END SOLUTION
'''),
    ("test", "test_reparameterize", 10, r'''
"""Check reparameterize: sigma = exp(logvar / 2), and gradients flow to mu and logvar."""
mu = torch.tensor([[1.0, -1.0]], requires_grad=True)
logvar = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True)
z = reparameterize(mu, logvar, torch.tensor([[0.5, 0.5]]))
assert z.shape == (1, 2)
assert torch.allclose(z, torch.tensor([[1.5, 0.0]])), "z = mu + exp(logvar / 2) * eps"
z.sum().backward()
assert mu.grad is not None and logvar.grad is not None, "build z from mu and logvar with torch operations"
### BEGIN HIDDEN TESTS
assert torch.allclose(logvar.grad, torch.tensor([[0.25, 0.5]]))
### END HIDDEN TESTS
'''),
    ("md", r"""
## 2. The KL term (15 points)

For $Q=\mathcal N(\boldsymbol\mu,\operatorname{diag}\boldsymbol\sigma^2)$ and the prior
$P(\mathbf z)=\mathcal N(0,I)$ in $k$ dimensions,

$$\mathrm{KL}(Q\,\|\,P)=\frac12\Big(\operatorname{tr}\Sigma+\boldsymbol\mu^\top\boldsymbol\mu-k-\log|\Sigma|\Big)
=\frac12\sum_{j=1}^k\big(\sigma_j^2+\mu_j^2-1-\log\sigma_j^2\big).$$

(The slide's version has a misplaced parenthesis, $\boldsymbol\mu^\top(\boldsymbol\mu-d-\log|\Sigma|)$;
the form above is the correct one, and it is $\ge0$ with equality only at $\boldsymbol\mu=0,\ \sigma=1$.
The prior is $\mathcal N(0,I)$, not $\mathcal N(0,D)$ as one slide has it.) A KL divergence is never
negative: if yours is, check its sign.
"""),
    ("solution", "kl_divergence", r'''
def kl_divergence(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) for every row.

    Parameters
    ----------
    mu : tensor of shape (N, k)
    logvar : tensor of shape (N, k)

    Returns
    -------
    kl : tensor of shape (N,)
        0.5 * sum_j (exp(logvar_j) + mu_j^2 - 1 - logvar_j); never negative.
    """
    ### BEGIN SOLUTION
    return 0.5 * torch.sum(torch.exp(logvar) + mu ** 2 - 1.0 - logvar, dim=-1)
    ### END SOLUTION
'''),
    ("test", "test_kl_divergence", 15, r'''
"""Check kl_divergence: zero at the prior, a hand-computed value elsewhere, never negative."""
kl = kl_divergence(torch.zeros(3, 2), torch.zeros(3, 2))
assert kl.shape == (3,), "one KL per row"
assert torch.allclose(kl, torch.zeros(3))
kl = kl_divergence(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]]))
assert torch.allclose(kl, torch.tensor([0.5 * (1.0 + 1.0 - math.log(2.0))])), "0.5 * (sigma^2 + mu^2 - 1 - log sigma^2)"
### BEGIN HIDDEN TESTS
g = torch.Generator().manual_seed(0)
assert (kl_divergence(torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g)) >= 0).all()
### END HIDDEN TESTS
'''),
    ("md", r"""
## 3. Decoder likelihoods (15 + 15 points)

The reconstruction term $\mathbb E_Q[\log P(\mathbf x\mid\mathbf z)]$ is estimated with one sample
$\mathbf z$. Two decoders:

**Bernoulli** (pixels in $[0,1]$): the decoder returns logits $\ell_j$, $p_j=\sigma(\ell_j)$, and

$$\log P(\mathbf x\mid\mathbf z)=\sum_j x_j\log p_j+(1-x_j)\log(1-p_j)=\sum_j x_j\ell_j-\log(1+e^{\ell_j}).$$

Use the logits form (or `torch.nn.functional.binary_cross_entropy_with_logits`, summed, with a minus sign):
$\log\sigma(\ell)$ computed as `torch.log(torch.sigmoid(l))` is $-\infty$ for $\ell\lesssim-100$.

**Gaussian** with a learned variance, as on the slides: $P(\mathbf x\mid\mathbf z)=\mathcal N(f(\mathbf z),\sigma^2I)$
(or a per-pixel variance), so with `log_var` $=\log\sigma^2$ a scalar or a `(d,)` vector,

$$\log P(\mathbf x\mid\mathbf z)=-\frac12\sum_j\Big(\log2\pi+\log\sigma_j^2+\frac{(x_j-f_j)^2}{\sigma_j^2}\Big).$$

The slides' loss $d\log\sigma^2+\frac1{\sigma^2}\|\mathbf x-f\|^2$ is twice the negative of this, without
the constant. Both functions return one value per row.
"""),
    ("solution", "bernoulli_log_likelihood", r'''
def bernoulli_log_likelihood(x, logits):
    """log P(x | z) of a Bernoulli decoder, for every row.

    Parameters
    ----------
    x : tensor of shape (N, d)
        Values in [0, 1].
    logits : tensor of shape (N, d)
        The decoder's outputs before the sigmoid.

    Returns
    -------
    log_likelihood : tensor of shape (N,)
        sum_j x_j * logits_j - log(1 + exp(logits_j)), computed stably.
    """
    ### BEGIN SOLUTION
    return torch.sum(x * logits - torch.nn.functional.softplus(logits), dim=-1)
    ### END SOLUTION
'''),
    ("test", "test_bernoulli_log_likelihood", 15, r'''
"""Check bernoulli_log_likelihood at p = 1/2, and with very confident logits."""
ll = bernoulli_log_likelihood(torch.tensor([[1.0, 0.0, 1.0]]), torch.zeros(1, 3))
assert ll.shape == (1,), "one value per row"
assert torch.allclose(ll, torch.tensor([3 * math.log(0.5)]))
ll = bernoulli_log_likelihood(torch.tensor([[0.0, 1.0]]), torch.tensor([[-200.0, 200.0]]))
assert torch.isfinite(ll).all() and torch.allclose(ll, torch.zeros(1), atol=1e-6), "use the stable logits form"
### BEGIN HIDDEN TESTS
ll = bernoulli_log_likelihood(torch.tensor([[1.0]]), torch.tensor([[-200.0]]))
assert torch.isfinite(ll).all() and torch.allclose(ll, torch.tensor([-200.0]))
### END HIDDEN TESTS
'''),
    ("solution", "gaussian_log_likelihood", r'''
def gaussian_log_likelihood(x, mean, log_var):
    """log N(x; mean, diag(exp(log_var))) for every row.

    Parameters
    ----------
    x : tensor of shape (N, d)
    mean : tensor of shape (N, d)
        The decoder's output f(z).
    log_var : float, tensor of shape () or (d,)
        log sigma^2, shared by every pixel (scalar) or one per pixel.

    Returns
    -------
    log_likelihood : tensor of shape (N,)
    """
    ### BEGIN SOLUTION
    log_var = torch.as_tensor(log_var, dtype=x.dtype, device=x.device)
    per_pixel = math.log(2 * math.pi) + log_var + (x - mean) ** 2 * torch.exp(-log_var)
    return -0.5 * torch.sum(per_pixel, dim=-1)
    ### END SOLUTION
'''),
    ("test", "test_gaussian_log_likelihood", 15, r'''
"""Check gaussian_log_likelihood with a scalar and with a per-pixel log-variance."""
x = torch.tensor([[1.0, 2.0]])
mean = torch.tensor([[0.0, 2.0]])
ll = gaussian_log_likelihood(x, mean, torch.tensor(0.0))
assert ll.shape == (1,)
assert torch.allclose(ll, torch.tensor([-math.log(2 * math.pi) - 0.5]))
ll = gaussian_log_likelihood(x, mean, torch.tensor([math.log(4.0), 0.0]))
assert torch.allclose(ll, torch.tensor([-math.log(2 * math.pi) - 0.5 * math.log(4.0) - 0.125]))
### BEGIN HIDDEN TESTS
assert torch.allclose(gaussian_log_likelihood(x, mean, 0.0), gaussian_log_likelihood(x, mean, torch.zeros(2)))
### END HIDDEN TESTS
'''),
    ("md", r"""
## 4. The loss (15 points)

Per data point the ELBO is $\mathbb E_Q[\log P(\mathbf x\mid\mathbf z)]-\mathrm{KL}(Q\,\|\,P(\mathbf z))$
(the handwritten notes' last line); the loss we minimise is its negative,
$\mathrm{KL}-\log P(\mathbf x\mid\mathbf z)$ with the Bernoulli decoder, **averaged over the batch** so
that the learning rate does not depend on the batch size. The decoder's logits were computed from a
reparameterised sample of $Q$.
"""),
    ("solution", "negative_elbo", r'''
def negative_elbo(x, logits, mu, logvar):
    """The VAE loss with a Bernoulli decoder: the batch mean of KL(Q || P(z)) - log P(x | z).

    Parameters
    ----------
    x : tensor of shape (N, d)
    logits : tensor of shape (N, d)
        The decoder's logits at a sample z of Q.
    mu, logvar : tensors of shape (N, k)
        The encoder's outputs.

    Returns
    -------
    loss : tensor of shape ()
        mean over the batch of kl_divergence(mu, logvar) - bernoulli_log_likelihood(x, logits).
    """
    ### BEGIN SOLUTION
    return torch.mean(kl_divergence(mu, logvar) - bernoulli_log_likelihood(x, logits))
    ### END SOLUTION
'''),
    ("test", "test_negative_elbo", 15, r'''
"""Check negative_elbo: KL minus log-likelihood, averaged (not summed) over the batch."""
x = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
loss = negative_elbo(x, torch.zeros(2, 2), torch.tensor([[1.0], [0.0]]), torch.zeros(2, 1))
assert loss.shape == (), "a scalar"
assert torch.isclose(loss, torch.tensor(2 * math.log(2.0) + 0.25)), "the batch mean of KL - log-likelihood"
### BEGIN HIDDEN TESTS
assert loss > 0
### END HIDDEN TESTS
'''),
    ("md", r"""
## 5. Training (30 points)

The network is given below: an encoder with one hidden layer that outputs $(\boldsymbol\mu,\texttt{logvar})$
and a decoder with one hidden layer that outputs logits. Write `train_vae`: seed with
`torch.manual_seed(seed)`, build `VAEModel(X.shape[1], latent_dim)`, then for `epochs` passes over the data
in shuffled mini-batches (about 100 rows), encode, draw `eps` with `torch.randn_like`, reparameterise,
decode, and take an Adam step (learning rate about `1e-3`) on `negative_elbo`. Return the model.

The grader trains your model on digits with the epochs it chooses, encodes held-out digits, decodes at
noise it draws itself and computes the negative ELBO from your model's outputs; full marks when it is
within 2 nats of the reference model's, fewer the further above.
"""),
    ("code", r'''
class VAEModel(nn.Module):
    """Encoder x -> (mu, logvar) and Bernoulli decoder z -> logits, one hidden layer each."""

    def __init__(self, input_dim, latent_dim, hidden_dim=128):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU())
        self.to_mu = nn.Linear(hidden_dim, latent_dim)
        self.to_logvar = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, input_dim))

    def encode(self, x):
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z):
        return self.decoder(z)
'''),
    ("solution", "train_vae", r'''
def train_vae(X, latent_dim, epochs, seed):
    """Train a VAEModel on X by minimising negative_elbo with Adam.

    Parameters
    ----------
    X : tensor or ndarray of shape (N, d)
        Training data with values in [0, 1].
    latent_dim : int
    epochs : int
        Passes over the data.
    seed : int
        Seeds torch (initial weights, shuffling and noise).

    Returns
    -------
    model : VAEModel
        Trained; model.encode(x) -> (mu, logvar) of shape (n, latent_dim) each, model.decode(z) -> logits (n, d).
    """
    ### BEGIN SOLUTION
    torch.manual_seed(seed)
    X = torch.as_tensor(X, dtype=torch.float32)
    model = VAEModel(X.shape[1], latent_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch_size = 100
    for _ in range(epochs):
        order = torch.randperm(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            x = X[order[start:start + batch_size]]
            mu, logvar = model.encode(x)
            z = reparameterize(mu, logvar, torch.randn_like(mu))
            loss = negative_elbo(x, model.decode(z), mu, logvar)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model
    ### END SOLUTION
'''),
    ("test", "test_train_vae", 30, r'''
"""Check train_vae: the model has encode/decode of the right shapes and training lowers the loss."""
model = train_vae(X_train[:300], LATENT_DIM, 3, seed=0)
with torch.no_grad():
    mu, logvar = model.encode(X_test[:10])
    logits = model.decode(mu)
assert mu.shape == (10, LATENT_DIM) and logvar.shape == (10, LATENT_DIM) and logits.shape == X_test[:10].shape
untrained = train_vae(X_train[:300], LATENT_DIM, 0, seed=0)
with torch.no_grad():
    def loss_of(m):
        g = torch.Generator().manual_seed(1)
        mu, logvar = m.encode(X_test)
        z = reparameterize(mu, logvar, torch.randn(mu.shape, generator=g))
        return negative_elbo(X_test, m.decode(z), mu, logvar).item()
    assert loss_of(model) < loss_of(untrained), "three epochs of training must lower the negative ELBO"
### BEGIN HIDDEN TESTS
assert np.isfinite(loss_of(model))
### END HIDDEN TESTS
'''),
    ("code", r"""
model = train_vae(X_train, LATENT_DIM, EPOCHS, seed=SEED)
with torch.no_grad():
    mu, logvar = model.encode(X_test)
    z = reparameterize(mu, logvar, torch.randn_like(mu))
    print(f"negative ELBO on held-out digits after {EPOCHS} epochs: "
          f"{negative_elbo(X_test, model.decode(z), mu, logvar).item():.2f} nats per digit")
"""),
    ("md", r"""
**Questions** (not graded).

1. Train with `LATENT_DIM = 2` and plot the encoder means of the test digits coloured by their label.
   What structure do you see, and how does it compare with the top two PCA components of homework 3?
2. Decode a grid of $\mathbf z$ values. Why do points between two clusters still decode to plausible
   digits, and what in the loss encourages that?
3. Replace the Bernoulli decoder by the Gaussian one with a learned scalar `log_var`. What does the
   learned $\sigma^2$ end up measuring?
"""),
]


ASSIGNMENTS = {"hw1_mle": HW1, "hw2_em": HW2, "hw3_linear": HW3, "hw4_vae": HW4}
