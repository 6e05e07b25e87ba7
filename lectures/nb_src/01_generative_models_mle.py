# %% [markdown]
# # Lecture 1 — Generative models and maximum likelihood
#
# A **generative model** is a probability distribution $P(x;\theta)$ over the data, together with a story of how
# the data could have been produced: draw some random quantities, transform them, draw again. Because it is a
# distribution, we can do two things with it: *evaluate* how probable an observation is, and *sample* new data
# that look like the old.
#
# This lecture covers
# 1. the data-generation process, with a two-Gaussian example;
# 2. **maximum likelihood** (MLE): choosing $\theta$ so that the observed data are as probable as possible —
#    for a die, for a Gaussian, for a coin (Bernoulli);
# 3. **generative versus discriminative** classifiers;
# 4. **Gaussian discriminant analysis** (GDA) and **naive Bayes**, and the decision boundaries they draw.
#
# Every estimator used here lives in `course_lib`; the notebook only calls it and draws pictures.

# %% tags=["parameters"]
# Parameters (papermill). FAST=True is the quick setting the test-suite runs; the figures use FAST=False.
FAST = False

# %% [markdown]
# ## 1. The data-generation process
#
# Think of a data set as the output of a random process. For a labelled example $(x, y)$:
#
# 1. draw the label $y\in\{+1,-1\}$ from $p(y)$;
# 2. draw the input from the class-conditional distribution $p(x\mid y)$;
# 3. add $(x, y)$ to the training set and repeat.
#
# Our running example uses two Gaussians in the plane:
#
# $$p(y=+1)=0.6,\qquad p(y=-1)=0.4,\qquad p(x\mid y=\pm1)=\mathcal N(x;\mu_\pm,\Sigma_\pm),$$
#
# $$\mu_+=\begin{bmatrix}2\\0\end{bmatrix},\;
# \Sigma_+=\begin{bmatrix}1.0&0.8\\0.8&2.0\end{bmatrix},\qquad
# \mu_-=\begin{bmatrix}-2\\0\end{bmatrix},\;
# \Sigma_-=\begin{bmatrix}2.0&0.6\\0.6&1.0\end{bmatrix}.$$
#
# Marginally, $p(x)=0.6\,\mathcal N(x;\mu_+,\Sigma_+)+0.4\,\mathcal N(x;\mu_-,\Sigma_-)$. We draw $N=1000$ samples.
# About 60 % of them should be positive; the exact count varies from draw to draw.

# %%
from course_lib import data

X, y = data.make_two_gaussians(n=1000, seed=SEED)
TRUE = data.TWO_GAUSSIANS           # the true parameters, ordered like classes_ = (-1, +1)
n_pos, n_neg = int((y == 1).sum()), int((y == -1).sum())
print(f"{len(y)} samples: {n_pos} positive, {n_neg} negative")

fig, ax = plt.subplots(figsize=(6, 4.6))
for label, color, name, count in [(1, COLORS[0], "$y=+1$", n_pos), (-1, COLORS[1], "$y=-1$", n_neg)]:
    m = y == label
    ax.scatter(X[m, 0], X[m, 1], s=9, alpha=0.55, color=color, label=f"{name}: {count} samples")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title=f"{len(y)} draws from the two-Gaussian model")
ax.set_aspect("equal")
ax.legend(loc="upper left")
show(savefig("fig_01_two_gaussians"))

# %% [markdown]
# ## 2. Learning a generative model: maximum likelihood
#
# We are handed data $X=\{x\}$ and pick a family $P(x;\theta)$. Which $\theta$ fits best?
# The maximum-likelihood principle answers: the one under which the data we saw are **most probable**,
#
# $$\hat\theta=\arg\max_\theta \log P(X;\theta)=\arg\max_\theta\sum_{x\in X}\log P(x;\theta).$$
#
# Behind this choice is a quiet bet: our sample is an ordinary draw from the process, not a freak one, so the
# right model is one that finds it unsurprising. (When the sample does happen to be unusual, the estimate is
# misled; the more data we have, the less likely that is.)
#
# ### A die (categorical distribution)
#
# A die is rolled many times; face $i$ comes up $n_i$ times out of $N$. With $P(x=i)=p_i$,
#
# $$\log P(X)=\sum_{i=1}^6 n_i\log p_i,$$
#
# and maximising under the constraint $\sum_i p_i=1$ (a Lagrange multiplier) gives the relative frequencies
# $\hat p_i=n_i/N$. Below: a histogram of rolls of a loaded die, and two candidate distributions. Which one is
# more likely to have produced the rolls? The one whose bars follow the histogram — its log-likelihood is higher.

# %%
from course_lib import mle

n_rolls = 120 if FAST else 600
true_die = np.array([0.10, 0.10, 0.15, 0.15, 0.20, 0.30])
rolls = data.make_dice_rolls(n_rolls, probs=true_die, seed=SEED) - 1      # faces 1..6 coded as 0..5
counts = np.bincount(rolls, minlength=6)
p_hat = mle.categorical(rolls, num_classes=6)
candidates = {"candidate A": np.array([0.30, 0.20, 0.15, 0.15, 0.10, 0.10]),
              "candidate B": np.array([0.10, 0.12, 0.14, 0.16, 0.20, 0.28])}

faces = np.arange(1, 7)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].bar(faces, counts, color=COLORS[7])
axes[0].set(xlabel="face", ylabel="count", title=f"{n_rolls} rolls of a die", xticks=faces)
width = 0.38
for k, ((name, p), color) in enumerate(zip(candidates.items(), COLORS[:2])):
    ll = mle.categorical_log_likelihood(rolls, p)
    axes[1].bar(faces + (k - 0.5) * width, p, width, color=color, label=f"{name}: log-lik {ll:.1f}")
axes[1].plot(faces, p_hat, "k_", ms=22, mew=2.5, label=f"MLE $n_i/N$: log-lik {mle.categorical_log_likelihood(rolls, p_hat):.1f}")
top = max(max(p.max() for p in candidates.values()), p_hat.max())
axes[1].set(xlabel="face", ylabel="probability", title="Two candidate distributions", xticks=faces,
            ylim=(0, 1.75 * top))                       # head room: the legend sits above every bar
axes[1].legend(fontsize=8, loc="upper left")
show(savefig("fig_01_dice_mle"))
print("MLE p_i = n_i / N:", np.round(p_hat, 3))

# %% [markdown]
# ### Counts without an upper limit (Poisson distribution)
#
# A table of probabilities works when the outcomes are finitely many. For counts $0,1,2,\dots$ (calls per
# minute, photons per pixel) we need a parametric form, for instance the **Poisson** distribution
#
# $$P(x=k)=\frac{\lambda^k e^{-\lambda}}{k!},\qquad k=0,1,2,\dots$$
#
# with one parameter, the rate $\lambda>0$. Its log-likelihood $\sum_x\big(x\log\lambda-\lambda-\log x!\big)$ has
# derivative $\sum_x x/\lambda-N$, zero at $\hat\lambda=\frac1N\sum_x x$: the sample mean.

# %%
counts_p = np.random.default_rng(SEED).poisson(3.2, size=100 if FAST else 500)
lam_hat = mle.poisson(counts_p)
lams = np.linspace(1.5, 5.5, 161)
ll_lam = np.array([mle.poisson_log_likelihood(counts_p, lam) for lam in lams])
ks = np.arange(counts_p.max() + 2)
log_fact = np.array([np.sum(np.log(np.arange(1, k + 1))) for k in ks])
pmf = np.exp(ks * np.log(lam_hat) - lam_hat - log_fact)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].bar(ks, np.bincount(counts_p, minlength=len(ks)) / len(counts_p), color=COLORS[7], label="observed frequency")
axes[0].plot(ks, pmf, "o-", color=COLORS[0], label=f"Poisson($\\hat\\lambda$ = {lam_hat:.2f})")
axes[0].set(xlabel="count $k$", ylabel="probability", title=f"{len(counts_p)} counts", xticks=ks)
axes[0].legend(loc="upper right")
axes[1].plot(lams, ll_lam, color=COLORS[0])
axes[1].axvline(lam_hat, color="k", ls="--", lw=1.2, label=f"$\\hat\\lambda$ = mean = {lam_hat:.2f}")
axes[1].set(xlabel=r"$\lambda$", ylabel="log-likelihood", title="Poisson log-likelihood of the counts")
axes[1].legend(loc="lower center")
show(savefig("fig_01_poisson_mle"))

# %% [markdown]
# ### A Gaussian
#
# For real-valued data we may choose $P(x)=\mathcal N(x;\mu,\sigma^2)$. The log-likelihood
#
# $$\log P(X)=\sum_{x\in X}\Big(-\tfrac12\log(2\pi\sigma^2)-\frac{(x-\mu)^2}{2\sigma^2}\Big)$$
#
# is maximised by the sample mean and the (biased, divide-by-$N$) sample variance:
#
# $$\hat\mu=\frac1N\sum_{x}x,\qquad \hat\sigma^2=\frac1N\sum_x (x-\hat\mu)^2 .$$
#
# In $d$ dimensions the density is
# $\mathcal N(x;\mu,\Sigma)=\dfrac{1}{(2\pi)^{d/2}|\Sigma|^{1/2}}\exp\!\big(-\tfrac12(x-\mu)^\top\Sigma^{-1}(x-\mu)\big)$
# — note the **square root** of the determinant, and
# $\hat\Sigma=\frac1N\sum_x(x-\hat\mu)(x-\hat\mu)^\top$. The slides have typos in this normaliser: the
# generative-models slides (their equation 18) write $(2\pi)^{d/2}|\Sigma|$, without the square root, and the VAE
# slides write $\sqrt{2\pi|\Sigma|}$, which also has the wrong power of $2\pi$ when $d>1$. The correct normaliser is
# $(2\pi)^{d/2}|\Sigma|^{1/2}=\sqrt{(2\pi)^d|\Sigma|}$. Which of three Gaussians best explains this histogram?

# %%
rng = np.random.default_rng(SEED)
x1d = rng.normal(1.0, 1.5, size=200 if FAST else 1000)
mean_hat, var_hat = mle.gaussian(x1d)
mu_hat, s2_hat = float(mean_hat[0]), float(var_hat[0, 0])
three = [(mu_hat - 2.0, 0.6 * s2_hat), (mu_hat, s2_hat), (mu_hat + 1.5, 2.5 * s2_hat)]

grid = np.linspace(x1d.min() - 2, x1d.max() + 2, 400)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
axes[0].hist(x1d, bins=30, color=COLORS[7], alpha=0.8)
axes[0].set(xlabel="$x$", ylabel="count", title=f"{len(x1d)} observations")
axes[1].hist(x1d, bins=30, density=True, color=COLORS[7], alpha=0.3)
for (m, v), color, name in zip(three, COLORS[:3], "abc"):
    ll = mle.gaussian_log_likelihood(x1d, m, v)
    pdf = np.exp(-0.5 * (grid - m) ** 2 / v) / np.sqrt(2 * np.pi * v)
    axes[1].plot(grid, pdf, color=color, label=f"({name}) $\\mu$={m:.2f}, $\\sigma^2$={v:.2f}: log-lik {ll:.0f}")
axes[1].set(xlabel="$x$", ylabel="density", title="Three candidate Gaussians")
axes[1].legend(fontsize=8, loc="upper left")
show(savefig("fig_01_gaussian_mle"))
print(f"MLE: mean {mu_hat:.3f}, variance {s2_hat:.3f}  (curve (b))")

# %% [markdown]
# Time for a poll: answer it before reading on.

# %%
ask("mle")

# %% [markdown]
# ### A coin (Bernoulli) — the class prior
#
# The label of our two-Gaussian example is a coin: $p(y)=\alpha^{\delta(y=+1)}(1-\alpha)^{\delta(y=-1)}$.
# Its log-likelihood and its derivative,
#
# $$\sum_{i=1}^m\log p(y_i;\alpha)=\sum_i\big[\delta(y_i=+1)\log\alpha+\delta(y_i=-1)\log(1-\alpha)\big],\qquad
# \frac{d}{d\alpha}=\frac{\sum_i\delta(y_i=+1)}{\alpha}-\frac{\sum_i\delta(y_i=-1)}{1-\alpha}=0,$$
#
# give $\hat\alpha=\frac1m\sum_i\delta(y_i=+1)$: the fraction of positive examples.

# %%
is_pos = (y == 1).astype(float)
alpha_hat = mle.bernoulli(is_pos)
alphas = np.linspace(0.01, 0.99, 197)
ll = np.array([mle.bernoulli_log_likelihood(is_pos, a) for a in alphas])

fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(alphas, ll, color=COLORS[0])
ax.axvline(alpha_hat, color="k", ls="--", lw=1.2, label=f"$\\hat\\alpha$ = {n_pos}/{len(y)} = {alpha_hat:.3f}")
ax.axvline(0.6, color=COLORS[1], ls=":", lw=1.5, label="true $p(y=+1)$ = 0.6")
ax.set(xlabel=r"$\alpha$", ylabel="log-likelihood of the labels", title="Bernoulli log-likelihood of the class labels",
       ylim=(ll.max() - 400, ll.max() + 30))
ax.legend()
show(savefig("fig_01_bernoulli_loglik"))

# %% [markdown]
# ## 3. Generative versus discriminative classifiers
#
# A **discriminative** classifier models only what it must predict, $p(y\mid x)$ — for instance logistic
# regression $p(y\mid x)=\sigma(y\langle w,x\rangle)$, an SVM or a feed-forward network.
#
# A **generative** classifier imitates the data-generation process: it models $q(y)$ and $q(x\mid y)$ (and so the
# joint $q(x,y)=q(y)\,q(x\mid y)$), and predicts with Bayes' rule
#
# $$q(y\mid x)=\frac{q(y)\,q(x\mid y)}{q(x)}\;\propto\;q(y)\,q(x\mid y),\qquad
# \hat y=\begin{cases}+1 & q(y=+1\mid x)>q(y=-1\mid x)\\ -1 & \text{otherwise.}\end{cases}$$
#
# The rule looks like the Bayes-optimal predictor, but it is only as good as the approximation
# $q(y\mid x)\approx p(y\mid x)$: we never see the true $p$, only samples from it.
#
# ## 4. Gaussian discriminant analysis
#
# Choose $q(y)=\mathrm{Bern}(\alpha)$ and $q(x\mid y=\pm1)=\mathcal N(x;\mu_\pm,\Sigma_\pm)$, so
# $\theta=\{\alpha,\mu_+,\Sigma_+,\mu_-,\Sigma_-\}$. The joint log-likelihood splits into one term for $\alpha$ and
# one per class, so each part is fitted separately: $\hat\alpha$ as above, and for the positive class (the samples
# $S_+$ with $y=+1$)
#
# $$\hat\mu_+=\frac{1}{|S_+|}\sum_{x_i\in S_+}x_i,\qquad
# \hat\Sigma_+=\frac{1}{|S_+|}\sum_{x_i\in S_+}(x_i-\hat\mu_+)(x_i-\hat\mu_+)^\top ,$$
#
# and the same for the negative class. (Exercise: prove both for $d=1$.)

# %%
from course_lib import GaussianDiscriminantAnalysis, GaussianNaiveBayes

gda = GaussianDiscriminantAnalysis().fit(X, y)
nb = GaussianNaiveBayes().fit(X, y)
pos, neg = list(gda.classes_).index(1), list(gda.classes_).index(-1)

t_pos, t_neg = list(TRUE["classes"]).index(1), list(TRUE["classes"]).index(-1)
rows = [(r"$\alpha=p(y=+1)$", TRUE["priors"][t_pos], gda.priors_[pos], nb.class_prior_[pos]),
        (r"$\mu_+$", TRUE["means"][t_pos], gda.means_[pos], nb.theta_[pos]),
        (r"$\Sigma_+$", TRUE["covariances"][t_pos], gda.covariances_[pos], np.diag(nb.var_[pos])),
        (r"$\mu_-$", TRUE["means"][t_neg], gda.means_[neg], nb.theta_[neg]),
        (r"$\Sigma_-$", TRUE["covariances"][t_neg], gda.covariances_[neg], np.diag(nb.var_[neg]))]
display(Markdown("| parameter | true $p(\\cdot)$ | GDA estimate $q(\\cdot)$ | naive Bayes |\n|---|---|---|---|\n"
                 + "\n".join(f"| {name} | {fmt(t)} | {fmt(g)} | {fmt(n)} |" for name, t, g, n in rows)))

# %%
fig, ax = plt.subplots(figsize=(6, 4.6))
for label, color in [(1, COLORS[0]), (-1, COLORS[1])]:
    ax.scatter(*X[y == label].T, s=7, alpha=0.3, color=color)
from course_lib.plotting import gaussian_ellipse
for idx, t, color in [(pos, t_pos, COLORS[0]), (neg, t_neg, COLORS[1])]:
    gaussian_ellipse(ax, TRUE["means"][t], TRUE["covariances"][t], edgecolor="k", ls="--", lw=1.5)
    gaussian_ellipse(ax, gda.means_[idx], gda.covariances_[idx], edgecolor=color, lw=2.2)
ax.plot([], [], "k--", label="true $p(x\\mid y)$ (2 s.d.)")
ax.plot([], [], color=COLORS[0], label="estimated $q(x\\mid y=+1)$")
ax.plot([], [], color=COLORS[1], label="estimated $q(x\\mid y=-1)$")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="GDA: true and estimated class Gaussians")
ax.set_aspect("equal")
ax.legend(loc="upper left", fontsize=8)
show(savefig("fig_01_gda_estimates"))

# %% [markdown]
# ## 5. Naive Bayes: a diagonal covariance
#
# With $x\in\mathbb R^d$ the model has $1+2(d+d^2)=2d^2+2d+1$ parameters — already 20 201 for $d=100$ (counting
# every entry of $\Sigma$; symmetry saves about half). The covariance is the expensive part. **Naive Bayes**
# assumes $\sigma_{ij}=0$ for $i\neq j$:
#
# $$\Sigma=\mathrm{diag}(\sigma_1^2,\dots,\sigma_d^2),\quad |\Sigma|=\prod_j\sigma_j^2,\quad
# (x-\mu)^\top\Sigma^{-1}(x-\mu)=\sum_j\frac{(x_j-\mu_j)^2}{\sigma_j^2},$$
#
# so $q(x\mid y)=\prod_{j=1}^d q(x_j\mid y;\mu_j,\sigma_j^2)$: **given the class, the features are independent**.
# It is a strong (naive) assumption, but every parameter is now estimated one dimension at a time, and the
# means and variances are exactly those of GDA (the table above): only the off-diagonal entries are dropped.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True, sharey=True)
for ax, title, covs in [(axes[0], "GDA: full covariances", [gda.covariances_[pos], gda.covariances_[neg]]),
                        (axes[1], "Naive Bayes: diagonal covariances", [np.diag(nb.var_[pos]), np.diag(nb.var_[neg])])]:
    for label, color in [(1, COLORS[0]), (-1, COLORS[1])]:
        ax.scatter(*X[y == label].T, s=7, alpha=0.3, color=color)
    for idx, cov, color in [(pos, covs[0], COLORS[0]), (neg, covs[1], COLORS[1])]:
        for k in (1, 2):
            gaussian_ellipse(ax, gda.means_[idx], cov, n_std=k, edgecolor=color, lw=2 if k == 1 else 1.2)
    ax.set(xlabel="$x_1$", title=title)
    ax.set_aspect("equal")
axes[0].set_ylabel("$x_2$")
show(savefig("fig_01_naive_bayes_covariance"))


# %% [markdown]
# ## 6. The posterior $q(y=+1\mid x)$ and the decision boundaries
#
# Bayes' rule gives every point a probability of being positive,
#
# $$q(y=+1\mid x)=\frac{q(+1)\,q(x\mid+1)}{q(+1)\,q(x\mid+1)+q(-1)\,q(x\mid-1)},$$
#
# and the classifier predicts
#
# $$\hat y=\begin{cases}+1 & q(y=+1\mid x)>q(y=-1\mid x),\ \text{i.e. } q(y=+1\mid x)>\tfrac12,\\
# -1 & q(y=+1\mid x)<q(y=-1\mid x).\end{cases}$$
#
# (The slides' version of this rule, their equation 22, has a typo in the second case: it compares
# $q(y'=+1\mid x')$ with itself; the comparison is with $q(y'=-1\mid x')$.) All of this rests on the hope that
# the estimate is close to the truth, $q(y\mid x)\approx p(y\mid x)$. Below, the
# posterior of the true model next to three estimates: GDA with a covariance per class, GDA with one shared
# covariance (its log-odds are linear in $x$, so its boundary is a line), and naive Bayes. The white line is
# $q=\tfrac12$.

# %%
def log_gauss(P, mean, cov):
    diff = P - mean
    sol = np.linalg.solve(cov, diff.T).T
    return -0.5 * (diff * sol).sum(1) - 0.5 * np.log(np.linalg.det(2 * np.pi * np.asarray(cov)))

def true_posterior(P):
    a = np.log(TRUE["priors"][t_pos]) + log_gauss(P, TRUE["means"][t_pos], TRUE["covariances"][t_pos])
    b = np.log(TRUE["priors"][t_neg]) + log_gauss(P, TRUE["means"][t_neg], TRUE["covariances"][t_neg])
    return 1 / (1 + np.exp(b - a))

gda_shared = GaussianDiscriminantAnalysis(shared_covariance=True).fit(X, y)
lim_x, lim_y = (X[:, 0].min() - 0.5, X[:, 0].max() + 0.5), (X[:, 1].min() - 0.5, X[:, 1].max() + 0.5)
gx, gy = np.meshgrid(np.linspace(*lim_x, 200), np.linspace(*lim_y, 200))
grid_pts = np.column_stack([gx.ravel(), gy.ravel()])
panels = [("true model $p(y=+1\\mid x)$", true_posterior(grid_pts))]
for name, model in [("GDA, covariance per class", gda), ("GDA, shared covariance", gda_shared),
                    ("naive Bayes", nb)]:
    panels.append((name, np.asarray(model.predict_proba(grid_pts))[:, list(model.classes_).index(1)]))
fig, axes = plt.subplots(1, 4, figsize=(18, 4.3), sharex=True, sharey=True)
for ax, (name, post) in zip(axes, panels):
    im = ax.pcolormesh(gx, gy, post.reshape(gx.shape), cmap="RdBu", vmin=0, vmax=1, shading="auto")
    ax.contour(gx, gy, post.reshape(gx.shape), levels=[0.5], colors="w", linewidths=2)
    ax.scatter(*X[::4].T, s=3, c="k", alpha=0.3)
    ax.set(xlabel="$x_1$", title=name)
axes[0].set_ylabel("$x_2$")
fig.colorbar(im, ax=axes, label="$q(y=+1\\mid x)$", fraction=0.02)
show(savefig("fig_01_posterior"))
agree = {name: float(np.mean((post > 0.5) == (panels[0][1] > 0.5))) for name, post in panels[1:]}
print("share of the plotted square where the estimate predicts like the true model: "
      + ", ".join(f"{k} {v:.3f}" for k, v in agree.items()))

# %% [markdown]
# ### Decision boundaries
#
# Both classifiers predict the class with the larger $q(y)\,q(x\mid y)$; the boundary is where the two are equal.
# With a covariance per class the boundary is a quadratic curve. For comparison we also draw a discriminative
# classifier, logistic regression (from scikit-learn), which fits $p(y\mid x)$ directly and can only draw a line.

# %%
from sklearn.linear_model import LogisticRegression

logreg = LogisticRegression().fit(X, y)
lim_x, lim_y = (X[:, 0].min() - 0.5, X[:, 0].max() + 0.5), (X[:, 1].min() - 0.5, X[:, 1].max() + 0.5)
from course_lib.plotting import decision_boundary
fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), sharex=True, sharey=True)
for ax, (name, model) in zip(axes, [("Gaussian discriminant analysis", gda), ("Gaussian naive Bayes", nb),
                                     ("logistic regression (discriminative)", logreg)]):
    classes = list(model.classes_)
    proba = lambda P, model=model, classes=classes: np.asarray(model.predict_proba(P))[:, [classes.index(-1), classes.index(1)]]
    for label, color in [(1, COLORS[0]), (-1, COLORS[1])]:
        ax.scatter(*X[y == label].T, s=6, alpha=0.35, color=color)
    decision_boundary(ax, proba, lim_x, lim_y, colors=[COLORS[1], COLORS[0]])
    acc = float(np.mean(np.asarray(model.predict(X)) == y))
    ax.set(xlabel="$x_1$", title=f"{name}\ntraining accuracy {acc:.3f}", xlim=lim_x, ylim=lim_y)
axes[0].set_ylabel("$x_2$")
show(savefig("fig_01_decision_boundaries"))

# %% [markdown]
# ## Summary
#
# * A generative model is a distribution with a story of how the data were made; it can score and sample.
# * Maximum likelihood picks the parameters under which the observations are most probable: relative
#   frequencies for a die or a coin, sample mean and ($1/N$) covariance for a Gaussian.
# * A generative classifier fits $q(y)$ and $q(x\mid y)$ and classifies by Bayes' rule. GDA uses a full Gaussian
#   per class; naive Bayes keeps only the diagonal, trading accuracy of the model for far fewer parameters.
# * Next lecture: what if part of the data is **missing** — a component of $x$, or the label itself? Then the
#   likelihood contains a log of a sum, and we need the EM algorithm.
