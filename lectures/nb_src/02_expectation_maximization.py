# %% [markdown]
# # Lecture 2 — Incomplete data and the EM algorithm
#
# Maximum likelihood is easy when every variable of the generating process is observed. Often it is not:
# some **components of a vector are missing**, or the process drew an intermediate variable we never see —
# **which mixture component** produced a point. This lecture shows
#
# 1. why incomplete data make the likelihood hard: a **log of a sum** (or of an integral);
# 2. how the **concavity of the logarithm** gives a lower bound, the ELBO, that has no sum inside the log;
# 3. **EM**: build a bound $J(\theta,\theta^k)$ that touches $\log P(o;\theta)$ at the current estimate, maximise it,
#    repeat — the likelihood never goes down;
# 4. EM for a Gaussian with missing components, and for a Gaussian mixture on the Old Faithful data;
# 5. completing the data **by expectation** (every value, weighted by its posterior) versus **by sampling**.

# %% tags=["parameters"]
# Parameters (papermill). FAST=True is the quick setting the test-suite runs; the figures use FAST=False.
FAST = False

# %% [markdown]
# ## 1. Incomplete data
#
# **Missing components.** We want a Gaussian for vectors $x$, but in many of them some entries were not
# recorded. Write each vector as $x=(o,m)$: observed part $o$ and missing part $m$. All we can maximise is the
# likelihood of what we saw,
#
# $$\arg\max_{\mu,\Sigma}\sum_{o\in O}\log P(o),\qquad P(o)=\int P(o,m)\,dm .$$
#
# **Missing information.** A Gaussian mixture draws the component $k$ first and then $o\sim\mathcal N(\mu_k,\Sigma_k)$.
# With $(o,k)$ pairs, fitting would be easy (split the points by component and fit each Gaussian); we only see
# $o$, so $P(o)=\sum_k P(k)\,\mathcal N(o;\mu_k,\Sigma_k)$. The figure shows both kinds of incompleteness.

# %%
from course_lib import data

# (a) a correlated Gaussian with two patterns of missing entries. First, x1 is hidden in about 7 % of the rows,
# chosen by a coin that ignores the data (missing completely at random). Then, among the other rows, x2 is
# mostly hidden when x1 is large: whether x2 is missing depends only on x1, which those rows show ("missing at
# random"). Neither pattern depends on a value that is itself hidden.
n_points = 150 if FAST else 400
true_mean, true_cov = np.array([1.0, 2.0]), np.array([[1.0, 0.8], [0.8, 1.0]])
rng = np.random.default_rng(SEED)
X_full = rng.multivariate_normal(true_mean, true_cov, size=n_points)
miss1 = rng.random(n_points) < 0.07
miss2 = ~miss1 & (X_full[:, 0] > true_mean[0]) & (rng.random(n_points) < 0.8)
X_miss = X_full.copy()
X_miss[miss1, 0] = np.nan
X_miss[miss2, 1] = np.nan
missing_rows = miss1 | miss2

faithful = data.load_faithful()
F = (faithful - faithful.mean(0)) / faithful.std(0)      # standardised (eruption, waiting)

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
ax = axes[0]
lo = X_full.min(0) - 0.7
ax.scatter(*X_miss[~missing_rows].T, s=10, color=COLORS[0], label=f"complete rows ({(~missing_rows).sum()})")
ax.plot(X_miss[miss2, 0], np.full(miss2.sum(), lo[1]), "|", color=COLORS[1], ms=12,
        label=f"$x_2$ missing ({miss2.sum()} rows): only $x_1$ known")
ax.plot(np.full(miss1.sum(), lo[0]), X_miss[miss1, 1], "_", color=COLORS[3], ms=12,
        label=f"$x_1$ missing ({miss1.sum()} rows): only $x_2$ known")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="Missing components")
ax.legend(fontsize=8, loc="upper left")
ax = axes[1]
ax.scatter(*F.T, s=10, color=COLORS[7])
ax.set(xlabel="eruption duration (standardised)", ylabel="waiting time (standardised)",
       title="Missing component labels: Old Faithful")
show(savefig("fig_02_incomplete_data"))
large = X_full[:, 0] > true_mean[0]
print(f"x1 hidden in {miss1.sum()} of {n_points} rows: {miss1[~large].mean():.1%} of the rows with x1 <= 1, "
      f"{miss1[large].mean():.1%} of those with x1 > 1 (the coin ignores x1)")
print(f"x2 hidden in {miss2.sum()} rows: {miss2[~miss1 & large].mean():.1%} of the rows with x1 > 1 that show x1, "
      f"{miss2[~miss1 & ~large].mean():.1%} of those with x1 <= 1")

# %% [markdown]
# ## 2. The log of a sum
#
# Both problems have the same form. With $h$ the hidden (missing) part,
#
# $$\hat\theta=\arg\max_\theta\sum_{o}\log\sum_h P(h,o;\theta)$$
#
# (an integral instead of the sum when $h$ is continuous). The sum inside the logarithm couples all the
# parameters: setting the gradient to zero has no closed-form solution. Could we replace it by something
# without a sum inside the log?
#
# ## 3. Concavity of the log and the variational lower bound
#
# Multiply and divide by any distribution $Q(h)$ ($Q(h)\ge0$, $\sum_hQ(h)=1$):
# $\log P(o)=\log\sum_h Q(h)\,\frac{P(h,o)}{Q(h)}$. The logarithm is **concave**: for weights $q_i\ge0$ summing to 1,
#
# $$\log\Big(\sum_i q_i x_i\Big)\;\ge\;\sum_i q_i\log x_i\qquad\text{(the chord lies below the curve).}$$
#
# Hence the **variational lower bound**, or **ELBO** (evidence lower bound: $\log P(o)$ is called the evidence;
# the slides expand the acronym as "empirical lower bound", but the bound is on the evidence):
#
# $$\log P(o;\theta)\;\ge\;\sum_h Q(h)\log\frac{P(h,o;\theta)}{Q(h)} .$$
#
# It holds for every $Q$ and is **tight** for $Q(h)=P(h\mid o;\theta)$: then $P(h,o)/Q(h)=P(o)$ for every $h$
# and the right side equals $\log P(o;\theta)$. The gap is exactly $\mathrm{KL}\big(Q\,\|\,P(h\mid o;\theta)\big)\ge 0$: write
# $P(h,o)=P(o)\,P(h\mid o)$ inside the bound, and it becomes
# $\sum_hQ(h)\big[\log P(o)+\log\frac{P(h\mid o)}{Q(h)}\big]=\log P(o)-\mathrm{KL}\big(Q\,\|\,P(h\mid o)\big)$.
# Left: the chord under $\log$. Right: for one Old Faithful point and a two-component mixture, the ELBO as a
# function of $Q(h{=}1)$ stays below $\log P(o)$ and touches it at the posterior.

# %%
from course_lib import elbo

def log_normal(x, mean, var):
    return -0.5 * np.log(2 * np.pi * var) - 0.5 * (x - mean) ** 2 / var

fig, axes = plt.subplots(1, 2, figsize=(11, 3.9))
ax = axes[0]
t = np.linspace(0.15, 6, 300)
x1, x2 = 0.5, 5.0
q = np.linspace(0, 1, 50)
ax.plot(t, np.log(t), color=COLORS[0], label=r"$\log x$")
ax.plot(q * x1 + (1 - q) * x2, q * np.log(x1) + (1 - q) * np.log(x2), color=COLORS[1],
        label=r"chord $q\log x_1+(1-q)\log x_2$")
qm = 0.4
xm = qm * x1 + (1 - qm) * x2
ax.plot([xm, xm], [qm * np.log(x1) + (1 - qm) * np.log(x2), np.log(xm)], "k:", lw=1.5)
ax.plot([x1, x2], np.log([x1, x2]), "ko", ms=5)
ax.annotate(r"$\log(qx_1+(1-q)x_2)\geq q\log x_1+(1-q)\log x_2$", (xm, np.log(xm)), (1.2, 1.9), fontsize=9,
            arrowprops=dict(arrowstyle="->", lw=1))
ax.set(xlabel="$x$", ylabel="value", title="The logarithm is concave", ylim=(-2, 2.4))
ax.legend(loc="lower right", fontsize=8)

ax = axes[1]
o = faithful[np.argmin(np.abs(faithful[:, 0] - 3.2)), 0]  # one eruption duration (minutes), between the modes
# h = 1: a short eruption N(2.0, 0.5), weight 0.35; h = 2: a long one N(4.3, 0.5), weight 0.65
log_joint = np.array([np.log(0.35) + log_normal(o, 2.0, 0.5), np.log(0.65) + log_normal(o, 4.3, 0.5)])
post = elbo.posterior(log_joint)
qs = np.linspace(0.0, 1.0, 401)
bounds = [elbo.elbo(log_joint, np.array([qq, 1 - qq])) for qq in qs]
ax.plot(qs, bounds, color=COLORS[2], label=r"ELBO $\sum_h Q(h)\log\frac{P(h,o)}{Q(h)}$")
ax.axhline(elbo.log_marginal(log_joint), color=COLORS[0], ls="--", label=r"$\log P(o)$")
ax.plot(post[0], elbo.log_marginal(log_joint), "ko", ms=6, label=f"$Q = P(h\\mid o)$: $Q(h{{=}}1)$ = {post[0]:.2f}")
ax.set(xlabel=r"$Q(h=1)$", ylabel="nats", title=f"The bound for one observation (o = {o:.2f} min)",
       ylim=(min(bounds) - 0.1, elbo.log_marginal(log_joint) + 0.15))
ax.legend(loc="lower center", fontsize=8)
show(savefig("fig_02_concavity_elbo"))

# %% [markdown]
# ## 4. EM: climbing a ladder of lower bounds
#
# Freeze $Q$ at the posterior of some parameter value $\theta'$ and define
#
# $$J(\theta,\theta')=\sum_{o}\sum_h P(h\mid o;\theta')\log\frac{P(h,o;\theta)}{P(h\mid o;\theta')} .$$
#
# Then $\log P(O;\theta)\ge J(\theta,\theta')$ for every $\theta$, with equality at $\theta=\theta'$:
# $J(\theta,\theta)=\log P(O;\theta)$. (One line of the slides drops the log and writes $P(o;\theta)=J(\theta,\theta)$;
# the equality is with the log-probability.) EM iterates:
#
# * start from $\theta^0$;
# * build $J(\theta,\theta^k)$: it **touches** $\log P(O;\theta)$ at $\theta^k$;
# * $\theta^{k+1}=\arg\max_\theta J(\theta,\theta^k)$.
#
# Because $\log P(O;\theta^{k+1})\ge J(\theta^{k+1},\theta^k)\ge J(\theta^k,\theta^k)=\log P(O;\theta^k)$, the
# log-likelihood never decreases. The second term of $J$, $-\sum P(h\mid o;\theta^k)\log P(h\mid o;\theta^k)$,
# does not depend on $\theta$, so the two steps read
#
# * **E-step:** compute $P(h\mid o;\theta^k)$ for every $o$ and $h$;
# * **M-step:** $\theta^{k+1}=\arg\max_\theta\sum_o\sum_h P(h\mid o;\theta^k)\log P(h,o;\theta)$.
#
# To see the bounds, we let only one number vary: the mean $\theta$ of the short-eruption component of a
# two-component mixture for the Old Faithful eruption durations (the other parameters are held fixed).

# %%
durations = faithful[:, 0]
W_SHORT, VAR_SHORT, MEAN_LONG, VAR_LONG = 0.35, 0.5, 4.3, 0.5

def log_joint_fn(theta):
    # log P(o, h; theta) for every duration o (rows) and component h (columns: short, long)
    return np.column_stack([np.log(W_SHORT) + log_normal(durations, theta, VAR_SHORT),
                            np.log(1 - W_SHORT) + log_normal(durations, MEAN_LONG, VAR_LONG)])

def m_step(theta_k):
    r = elbo.posterior(log_joint_fn(theta_k))[:, 0]
    return float((r * durations).sum() / r.sum())

thetas = [3.3]
for _ in range(3):
    thetas.append(m_step(thetas[-1]))
grid = np.linspace(0.8, 4.2, 341)
_, log_p = elbo.bound(log_joint_fn, grid, thetas[0], return_log_marginal=True)

fig, ax = plt.subplots(figsize=(7.5, 4.6))
ax.plot(grid, log_p, color="k", lw=2.4, label=r"$\log P(O;\theta)$")
for k, color in zip(range(3), COLORS[:3]):
    J = elbo.bound(log_joint_fn, grid, thetas[k])
    ax.plot(grid, J, color=color, lw=1.6, label=fr"$J(\theta,\theta^{k})$")
    ax.plot(thetas[k], elbo.log_marginal(log_joint_fn(thetas[k])), "o", color=color, ms=7)
    j_next = elbo.bound(log_joint_fn, [thetas[k + 1]], thetas[k])[0]
    ax.annotate("", (thetas[k + 1], j_next), (thetas[k], elbo.log_marginal(log_joint_fn(thetas[k]))),
                arrowprops=dict(arrowstyle="->", color=color, lw=1.4))
    ax.annotate(fr"$\theta^{k}$", (thetas[k], elbo.log_marginal(log_joint_fn(thetas[k]))), (6, 6),
                textcoords="offset points", color=color, fontsize=12)
ymax, y0 = log_p.max(), elbo.log_marginal(log_joint_fn(thetas[0]))
ax.set(xlabel=r"$\theta$ (mean of the short-eruption component, minutes)", ylabel="log-likelihood (nats)",
       title="EM maximises a bound that touches the log-likelihood at the current estimate",
       ylim=(ymax - 2.2 * (ymax - y0), ymax + 0.15 * (ymax - y0)))
ax.legend(loc="lower left")
show(savefig("fig_02_em_bounds"))
print("theta^k:", np.round(thetas, 3))

# %%
ask("em_elbo")

# %% [markdown]
# ## 5. What EM does with missing components
#
# **A discrete warm-up.** Let $x$ be observed and $y\in\{a,b\}$ missing, with joint probabilities
# $P(x,a)=0.3$ and $P(x,b)=0.1$ at the $x$ we saw. If the process produced a million observations with exactly
# this $x$, how many had $y=a$? In proportion to the posterior: $P(a\mid x)=0.3/(0.3+0.1)=0.75$, so 750 000
# with $a$ and 250 000 with $b$. Completing the data "in every possible way" means exactly this: clone the
# observation and fill in each value of $y$ for a share of the clones equal to its posterior.
#
# **Continuous missing parts.** The same reasoning works for a vector with a hidden entry. Picture all the vectors the
# process could produce that agree with ours on the observed part $o$: their hidden parts are spread out, with
# density $P(m\mid o)$, not piled on one value. So EM **completes** each vector in every
# possible way — clones $x_i(m)=(o_i,m)$ weighted by $P(m\mid o_i;\theta^k)$ — and re-estimates from the
# completed data:
#
# $$\mu^{k+1}=\frac1N\sum_{o}\int P(m\mid o;\theta^k)\,x_i(m)\,dm,\qquad
# \Sigma^{k+1}=\frac1N\sum_o\int P(m\mid o;\theta^k)\,(x_i(m)-\mu^{k+1})(x_i(m)-\mu^{k+1})^\top dm .$$
#
# For a Gaussian, $P(m\mid o)$ is Gaussian with mean $\mu_m+\Sigma_{mo}\Sigma_{oo}^{-1}(o-\mu_o)$ and covariance
# $\Sigma_{mm}-\Sigma_{mo}\Sigma_{oo}^{-1}\Sigma_{om}$, so the integrals are the conditional mean (for $\mu$) and
# conditional mean plus conditional covariance (for $\Sigma$). `MissingDataGaussian` implements exactly this.
# Dropping the incomplete rows instead throws information away; filling in the conditional mean without its
# covariance would make $\Sigma$ too small.
#
# In our data $x_2$ is hidden mostly when $x_1$ is large. The complete rows are then mostly those with small
# $x_1$ — and, since the two are correlated, small $x_2$: an estimate from them alone is **biased**. EM is not,
# because of how the entries went missing (the numbers printed under the first figure): $x_1$ is hidden by a
# coin that ignores the data, and whether $x_2$ is hidden depends only on $x_1$, which those rows show. When the
# chance of being missing depends only on what is observed (**missing at random**), the missingness carries no
# extra information about the parameters, and maximising the likelihood of the observed entries, as EM does,
# is sound. Had the rule looked at the hidden value itself (say, $x_2$ hidden when $x_2$ is large), EM would be
# biased too.

# %%
from course_lib import MissingDataGaussian
from course_lib.plotting import gaussian_ellipse

import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore")      # FAST stops after 30 iterations, before convergence
    em_gauss = MissingDataGaussian(max_iter=30 if FAST else 200, tol=1e-10).fit(X_miss)
drop_mean = X_miss[~missing_rows].mean(0)
drop_cov = np.cov(X_miss[~missing_rows].T, bias=True)
imputed = em_gauss.impute(X_miss)

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
ax = axes[0]
ax.scatter(*X_miss[~missing_rows].T, s=9, color=COLORS[0], alpha=0.6, label="complete rows")
ax.scatter(*imputed[missing_rows].T, s=12, marker="x", color=COLORS[1], alpha=0.8,
           label="incomplete rows filled with $E[m\\mid o]$")
gaussian_ellipse(ax, true_mean, true_cov, edgecolor="k", ls="--", lw=1.5, label="true Gaussian")
gaussian_ellipse(ax, em_gauss.mean_, em_gauss.covariance_, edgecolor=COLORS[2], lw=2.2, label="EM estimate")
gaussian_ellipse(ax, drop_mean, drop_cov, edgecolor=COLORS[3], lw=1.6, ls="-.", label="complete rows only")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="EM for a Gaussian with missing components")
ax.legend(fontsize=7.5, loc="upper left")
ax = axes[1]
lls = np.asarray(em_gauss.log_likelihoods_)
ax.plot(np.arange(len(lls)), lls, "o-", ms=3, color=COLORS[2])
ax.set(xlabel="EM iteration $k$", ylabel=r"$\log P(O;\theta^k)$ (observed data)", title="The likelihood never decreases")
show(savefig("fig_02_missing_data_em"))
print("true mean", true_mean, "  EM mean", np.round(em_gauss.mean_, 3), "  complete rows only", np.round(drop_mean, 3))
print("EM covariance", np.round(em_gauss.covariance_, 3).tolist(), "  complete rows only",
      np.round(drop_cov, 3).tolist())

# %% [markdown]
# ## 6. EM for a Gaussian mixture, iteration by iteration
#
# For a mixture the hidden variable is the component $k$. Every observation is attributed to **every**
# component, in proportion to the responsibility $P(k\mid o;\theta^l)$ (E-step), and each component is re-fitted
# to its weighted share of the data (M-step):
#
# $$P(k\mid o;\theta^l)=\frac{P(k)\,\mathcal N(o;\mu_k,\Sigma_k)}{\sum_j P(j)\,\mathcal N(o;\mu_j,\Sigma_j)},\qquad
# N_k=\sum_oP(k\mid o;\theta^l),\qquad P(k)^{l+1}=\frac{N_k}{N},$$
#
# $$\mu_k^{l+1}=\frac{1}{N_k}\sum_o P(k\mid o;\theta^l)\,o,\qquad
# \Sigma_k^{l+1}=\frac{1}{N_k}\sum_oP(k\mid o;\theta^l)\,(o-\mu_k^{l+1})(o-\mu_k^{l+1})^\top .$$
#
# (The normaliser is $N_k$, the effective number of points of component $k$. The generative-models slides have
# typos here. Their equations 49, 50 and 52 divide the means and covariances by $m$, the number of all points,
# instead of by $\sum_i\delta(z_i{=}1)$ or $\sum_i\gamma_i$ (our $N_k$): that would shrink every mean towards 0
# and every covariance by the weight $P(k)$. Their equation 51 has the right normaliser $m$ for the weight, but a
# stray $x_i$: it should read $\alpha=\frac1m\sum_i\gamma_i$.)
#
# Why may a responsibility stand in for the unknown label? Write $\delta(z_i{=}k)$ for the indicator that is 1 when
# point $i$ came from component $k$. With labels, the estimates above are sums of indicators times data (counts,
# sums, sums of outer products). Without them, the E-step takes the expectation of each indicator under the
# current posterior, $E[\delta(z_i{=}k)\mid o_i]=P(k\mid o_i;\theta^l)=\gamma_{ik}$, and the M-step uses those
# expectations in the same formulas.
#
# The same cloning picture as before: suppose three Gaussians give an observation $o$ the values
# $P(k)\,\mathcal N(o;\mu_k,\Sigma_k)=0.1,\ 0.2,\ 0.2$. Of $L$ clones of $o$, the shares $0.1/0.5=20\%$, $40\%$ and
# $40\%$ are attributed to the three components, and each component's new mean averages the clones it
# received. Below, the standardised Old Faithful data; each point's colour mixes red and blue in proportion to
# its two responsibilities (pure red: surely component 1, pure blue: surely component 2, purple: shared),
# and the ellipses (1.5 standard deviations) are the components.

# %%
import warnings
from course_lib import GaussianMixture

means0 = np.array([[-1.5, 1.0], [1.5, -1.0]])
precisions0 = np.stack([np.eye(2) / 0.5, np.eye(2) / 0.5])

def gmm_after(n_iter, completion="expectation", random_state=SEED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # stopping after n_iter iterations on purpose
        return GaussianMixture(2, max_iter=n_iter, tol=0.0, reg_covar=1e-6, weights_init=[0.5, 0.5],
                               means_init=means0, precisions_init=precisions0, completion=completion,
                               random_state=random_state).fit(F)

def draw_gmm(ax, means, covs, resp, title):
    colors = resp[:, :1] * np.array([[0.84, 0.15, 0.16]]) + resp[:, 1:] * np.array([[0.12, 0.47, 0.71]])
    ax.scatter(*F.T, s=9, c=np.clip(colors, 0, 1))
    for k, color in enumerate([COLORS[1], COLORS[0]]):
        gaussian_ellipse(ax, means[k], covs[k], n_std=1.5, edgecolor=color, lw=2.2)
    ax.set(title=title, xlim=(-2.6, 2.6), ylim=(-2.6, 2.6))
    ax.set_aspect("equal")

shown = [1, 2, 3, 5] if FAST else [1, 2, 5, 20]
N_IT = 15 if FAST else 50
fig, axes = plt.subplots(2, 3, figsize=(13, 8.4))
axes = axes.ravel()
g0 = gmm_after(0)                            # max_iter=0: the initial parameters, no EM step yet
draw_gmm(axes[0], g0.means_, g0.covariances_, g0.predict_proba(F), "initial guess ($l=0$)")
for ax, L in zip(axes[1:5], shown):
    g = gmm_after(L)
    draw_gmm(ax, g.means_, g.covariances_, g.predict_proba(F), f"after {L} iteration{'s' if L > 1 else ''}")
for ax in axes[[0, 3]]:
    ax.set_ylabel("waiting (standardised)")
for ax in axes[3:5]:
    ax.set_xlabel("eruption (standardised)")
g = gmm_after(N_IT)
ax = axes[5]
lbs = np.asarray(g.lower_bounds_)
ax.plot(np.arange(2, len(lbs) + 1), lbs[1:], "o-", ms=3, color=COLORS[2])
ax.set(xlabel="EM iteration", ylabel="mean log-likelihood per point",
       title=f"log-likelihood per iteration\n(from iteration 2; iteration 1: {lbs[0]:.2f})")
fig.suptitle("EM for a two-component Gaussian mixture on Old Faithful", y=1.0)
fig.tight_layout()
show(savefig("fig_02_gmm_iterations"))
print("weights", np.round(g.weights_, 3), " means", np.round(g.means_, 3).tolist())

# %% [markdown]
# ### Lecture 1's two classes, with the labels hidden
#
# Lecture 1 fitted one Gaussian per class of its two-Gaussian example with the labels in hand (GDA). Throw the
# labels away and the class becomes the hidden component of a two-component mixture: EM must find the classes
# from the inputs alone. The table puts the true parameters, GDA's estimates (labels used) and EM's (labels never
# seen) side by side; the component whose mean lies to the right is matched with $y=+1$.

# %%
from course_lib import GaussianDiscriminantAnalysis

X_two, y_two = data.make_two_gaussians(n=1000, seed=SEED)
TRUE_TWO = data.TWO_GAUSSIANS                       # ordered like classes_ = (-1, +1)
gda_two = GaussianDiscriminantAnalysis().fit(X_two, y_two)
gmm_two = GaussianMixture(2, reg_covar=1e-6, random_state=SEED).fit(X_two)
plus = int(np.argmax(gmm_two.means_[:, 0]))          # the right-hand component plays y = +1
minus = 1 - plus
g_pos, g_neg = list(gda_two.classes_).index(1), list(gda_two.classes_).index(-1)

rows = [(r"$p(y=+1)$", TRUE_TWO["priors"][1], gda_two.priors_[g_pos], gmm_two.weights_[plus]),
        (r"$\mu_+$", TRUE_TWO["means"][1], gda_two.means_[g_pos], gmm_two.means_[plus]),
        (r"$\Sigma_+$", TRUE_TWO["covariances"][1], gda_two.covariances_[g_pos], gmm_two.covariances_[plus]),
        (r"$\mu_-$", TRUE_TWO["means"][0], gda_two.means_[g_neg], gmm_two.means_[minus]),
        (r"$\Sigma_-$", TRUE_TWO["covariances"][0], gda_two.covariances_[g_neg], gmm_two.covariances_[minus])]
display(Markdown("| parameter | true | GDA (labels used) | EM mixture (no labels) |\n|---|---|---|---|\n"
                 + "\n".join(f"| {name} | {fmt(t)} | {fmt(g)} | {fmt(m)} |" for name, t, g, m in rows)))
same = float(np.mean((np.asarray(gmm_two.predict(X_two)) == plus) == (y_two == 1)))
print(f"the component with the larger responsibility is the true class for {same:.1%} of the {len(y_two)} points")

# %% [markdown]
# Without a single label, EM lands close to the estimates that used them. What the labels add is certainty about
# single points: where the two classes overlap, EM shares a point between the components according to its
# responsibilities, while GDA knows which class produced it. The printout counts how often the larger
# responsibility picks the true class.
#
# ## 6b. Singularities, `reg_covar`, and how many components
#
# The mixture likelihood has no **global** maximum: it is unbounded. (Local maxima exist, and they are what EM
# converges to.) Put one component exactly on one data point $x_0$ and let its
# variance $s^2$ shrink: that point's density $\mathcal N(x_0;x_0,s^2I)=(2\pi s^2)^{-d/2}$ grows without bound,
# while another component keeps every other point finite. So $\log P(O)\to\infty$ as $s\to0$ — a useless
# "maximum". EM can run into this when a component captures a single point (or a few identical ones).
# Below: a broad component fitted to all of Old Faithful (weight 0.9) plus a second one (weight 0.1) centred on
# the first eruption, with its standard deviation $s$ shrinking.

# %%
from course_lib.mixture import e_step

x0 = F[0]
s_values = np.geomspace(1.0, 1e-8, 33)
ll_collapse = []
for s_ in s_values:
    _, ll_s_ = e_step(F, [0.9, 0.1], np.stack([F.mean(0), x0]), np.stack([np.cov(F.T, bias=True), s_ ** 2 * np.eye(2)]))
    ll_collapse.append(ll_s_)
# rounded to 1e-6 nats: for small s the points lie on a straight line, and how its joins are drawn would
# otherwise turn on the last bits of exp and log, which differ between processors
ll_collapse = np.round(ll_collapse, 6)

# K: BIC on all the data, and the mean log-likelihood of held-out points (5-fold cross-validation)
K_range = range(1, 6 if FAST else 7)
folds = np.array_split(np.random.default_rng(SEED).permutation(len(F)), 5)
bic, train_ll, test_ll = [], [], []
for K in K_range:
    bic.append(GaussianMixture(K, reg_covar=1e-6, random_state=SEED).fit(F).bic(F))
    tr_k, te_k = [], []
    for f in folds:
        train = np.setdiff1d(np.arange(len(F)), f)
        gk = GaussianMixture(K, reg_covar=1e-6, random_state=SEED).fit(F[train])
        tr_k.append(gk.score(F[train]))
        te_k.append(gk.score(F[f]))
    train_ll.append(np.mean(tr_k))
    test_ll.append(np.mean(te_k))
K_bic, K_cv = K_range[int(np.argmin(bic))], K_range[int(np.argmax(test_ll))]

fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
ax = axes[0]
ax.semilogx(s_values, ll_collapse, "o-", ms=3, color=COLORS[1])
ax.invert_xaxis()
ax.set(xlabel="standard deviation $s$ of the component on one point (shrinking to the right)",
       ylabel=r"$\log P(O)$ (nats)", title="The likelihood grows without bound")
ax = axes[1]
ax.plot(list(K_range), bic, "o-", color=COLORS[0])
ax.axvline(K_bic, color="k", ls="--", lw=1, label=f"lowest BIC: K = {K_bic}")
ax.set(xlabel="number of components K", ylabel="BIC (lower is better)", title=f"BIC on all {len(F)} eruptions",
       xticks=list(K_range))
ax.legend()
ax = axes[2]
ax.plot(list(K_range), train_ll, "o-", color=COLORS[7], label="training points")
ax.plot(list(K_range), test_ll, "o-", color=COLORS[2], label="held-out points")
ax.set(xlabel="number of components K", ylabel="mean log-likelihood per point",
       title="5-fold cross-validation", xticks=list(K_range))
ax.legend()
fig.tight_layout()
show(savefig("fig_02_gmm_singularity"))
slope = (ll_collapse[-1] - ll_collapse[-9]) / np.log10(s_values[-9] / s_values[-1])
print(f"log P(O) at s = 1e-4: {ll_collapse[16]:.1f}, at s = 1e-8: {ll_collapse[-1]:.1f}; "
      f"it grows by {slope:.2f} nats per factor 10 in s (d log 10 = {2 * np.log(10):.2f})")
print("BIC:", ", ".join(f"K={K}: {b:.1f}" for K, b in zip(K_range, bic)), f" -> K = {K_bic}")
print("held-out log-likelihood:", ", ".join(f"K={K}: {v:.3f}" for K, v in zip(K_range, test_ll)), f" -> K = {K_cv}")
print("training log-likelihood:", ", ".join(f"K={K}: {v:.3f}" for K, v in zip(K_range, train_ll)))

# %% [markdown]
# On the left, each factor 10 in $s$ adds $d\log 10\approx4.6$ nats, for ever. This is why `GaussianMixture` takes
# `reg_covar`: it adds a small constant to the diagonal of every covariance in each M-step, so no variance can
# fall below it and the likelihood stays bounded (with `reg_covar=0` and a collapsing component, `course_lib`
# stops with an error that says to increase it). The same mechanism is behind overfitting: with $K=m$
# components, one per point, the training likelihood can be made as large as we like. The number of components
# is therefore a **hyperparameter**, chosen on something other than the training likelihood: the training curve
# (grey) keeps rising with $K$, while BIC (which charges $\tfrac12\log N$ per parameter) and the likelihood of
# held-out eruptions level off; the numbers above pick the $K$ to use.

# %% [markdown]
# ## 7. Completing the data: by expectation or by sampling
#
# Every EM algorithm of this lecture runs the same loop from some starting parameters: fill in what was not
# observed, using what the current model believes about it, $P(m\mid o)$ (**completion**); then fit the model to
# the filled-in data as if it had all been observed (**re-estimation**); go round again with the new model.
#
# The filling-in comes in two kinds:
#
# 1. **by expectation** — consider every value of the missing part, weighted by its posterior (what we did so
#    far: conditional means and covariances, responsibilities);
# 2. **by sampling** — draw one (or a few) values of the missing part from $P(m\mid o)$ and treat the drawn
#    values as if they had been observed (stochastic EM).
#
# Expectation is exact and never lowers the likelihood; sampling is simpler when the expectation has no closed
# form (it will be our only option for the VAE). With sampling, every re-estimate fits one random completion, so
# the parameters keep moving: the likelihood climbs at first, then jitters **below** the maximum that
# completion by expectation settles on (it cannot go above a maximum), without ever settling itself. Both panels
# count iterations the same way: $k$ is the number of parameter updates, and $k=0$ is the starting point.

# %%
n_it = 15 if FAST else 100
START = 4        # skip the first climb, to see how the two kinds of completion behave near the maximum
fig, axes = plt.subplots(1, 2, figsize=(11, 3.9), sharex=True)
ax = axes[0]
for completion, color in [("expectation", COLORS[0]), ("sampling", COLORS[1])]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=0: all n_it iterations on purpose
        m = MissingDataGaussian(completion=completion, max_iter=n_it, tol=0.0, random_state=SEED).fit(X_miss)
    lls = np.asarray(m.log_likelihoods_)
    ax.plot(np.arange(START, len(lls)), lls[START:], color=color, label=f"completion by {completion}")
ax.set(xlabel="EM iteration $k$ (parameters after $k$ updates)", ylabel=r"$\log P(O;\theta^k)$",
       title="Gaussian with missing components")
ax.legend()
ax = axes[1]
for completion, color in [("expectation", COLORS[0]), ("sampling", COLORS[1])]:
    g = gmm_after(n_it + 1, completion=completion)
    # lower_bounds_[k] is the log-likelihood at the parameters after k updates (the one the next E-step computes)
    lbs = np.asarray(g.lower_bounds_)
    ax.plot(np.arange(START, len(lbs)), lbs[START:], color=color, label=f"completion by {completion}")
ax.set(xlabel="EM iteration $k$ (parameters after $k$ updates)", ylabel="mean log-likelihood per point",
       title="Gaussian mixture on Old Faithful")
ax.legend()
show(savefig("fig_02_completion_compare"))

# %%
ask("data_completion")

# %% [markdown]
# ## Summary
#
# * Missing components or hidden variables put a **sum (or integral) inside the log** of the likelihood.
# * Concavity of the log gives the ELBO, $\log P(o;\theta)\ge\sum_hQ(h)\log\frac{P(h,o;\theta)}{Q(h)}$, tight at
#   $Q=P(h\mid o;\theta)$.
# * EM alternates building the tight bound $J(\theta,\theta^k)$ (E-step) and maximising it (M-step); the
#   likelihood never decreases, and it converges to a local maximum.
# * Intuitively, EM completes the data — with every value in proportion to its posterior, or with samples —
#   and re-estimates. Next: PCA, where the missing information is where each point sits on a subspace.
