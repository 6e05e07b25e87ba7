# %% [markdown]
# # Lecture 4 — Variational autoencoders
#
# Linear Gaussian models describe data near a **flat** subspace. Real data (images, sounds) lie near
# **curved** surfaces. Replacing the linear map $Az$ by a neural network $f(z;\theta)$ gives the non-linear
# Gaussian model; the price is that the posterior $P(z\mid x)$ — which EM needs — becomes intractable. The
# variational autoencoder (VAE) learns an approximation $Q(z,x)$ to it alongside the model. This lecture
#
# 1. shows data on curved manifolds and the **non-linear Gaussian model** (NLGM) that generates them;
# 2. explains why its posterior is intractable and **approximates it by $Q(z,x)=\mathcal N(\mu(x),\Sigma(x))$**;
# 3. samples $z$ with the **reparameterisation** trick and derives the **loss**: KL plus reconstruction;
# 4. trains a VAE on handwritten digits: samples, reconstructions, the latent space, a latent traversal;
# 5. compares the ELBO with the **importance-weighted log-likelihood**, and ends with the **conditional VAE**.

# %% tags=["parameters"]
# Parameters (papermill). FAST=True is the quick setting the test-suite runs; the figures use FAST=False.
FAST = False

# %% [markdown]
# ## 1. Data on curved manifolds
#
# Linear Gaussian models (PCA, factor analysis) model Gaussian data near a hyperplane. When the data lie near a
# curved surface, the best plane is a poor summary. Instead, let the model bend its plane. Generation then takes
# three steps:
#
# 1. draw a code $z\sim\mathcal N(0,I)$ in a flat $K$-dimensional latent space;
# 2. map it into data space with a smooth function $f$: the image of the whole latent space is a curved
#    $K$-dimensional surface (the manifold), and the points $f(z)$ crowd where the codes $z$ crowd;
# 3. add independent Gaussian noise $e\sim\mathcal N(0,D)$, $D$ diagonal, which moves each point a little off the
#    surface.
#
# This is the **non-linear Gaussian model**: $x=f(z;\theta)+e$, $P(x\mid z)=\mathcal N(x;f(z;\theta),D)$. With
# $f(z)=Az$ it is the linear model again.

# %%
from course_lib import PCA, data

NOISE_SD = 0.16
Z_ENDS = np.pi / 1.2          # f(-Z_ENDS) = f(Z_ENDS) = (0, -2): the two ends of the bent line meet there

def f_toy(z):
    # the warping function of this toy model, f(z) = (2 sin(1.2 z), 2 cos(1.2 z)): the z axis bent round a circle
    # of radius 2; z = 0 goes to the top, and the two tails, |z| near Z_ENDS, meet at the bottom
    return np.column_stack([2 * np.sin(1.2 * z), 2 * np.cos(1.2 * z)])

rng = np.random.default_rng(SEED)
z_demo = rng.normal(size=60)
x_demo = f_toy(z_demo) + NOISE_SD * rng.normal(size=(60, 2))
n_curve = 300 if FAST else 800                 # many draws of the same model, for the linear fit
z_curve = rng.normal(size=n_curve)
X_curve = f_toy(z_curve) + NOISE_SD * rng.normal(size=(n_curve, 2))
pca = PCA(n_components=1).fit(X_curve)
proj = pca.inverse_transform(pca.transform(X_curve))

zz = np.linspace(-Z_ENDS, Z_ENDS, 241)           # the whole manifold: every z lands on this curve
z_colors = dict(cmap="coolwarm", norm=plt.Normalize(-Z_ENDS, Z_ENDS))   # one colour per z, in every panel
fig, axes = plt.subplots(1, 4, figsize=(17, 4.4))
ax = axes[0]
_, edges, bars = ax.hist(z_demo, bins=np.linspace(-Z_ENDS, Z_ENDS, 17), edgecolor="white")
for bar, centre in zip(bars, (edges[:-1] + edges[1:]) / 2):
    bar.set_facecolor(plt.get_cmap(z_colors["cmap"])(z_colors["norm"](centre)))
ax.set(xlabel="$z$", ylabel="count", title="1. draw $z \\sim N(0, 1)$ (colour: $z$)")
for ax, pts, z_pts, title in [(axes[1], f_toy(z_demo), z_demo, "2. warp it onto the manifold: $f(z)$"),
                              (axes[2], x_demo, z_demo, "3. add noise: $x = f(z) + e$"),
                              (axes[3], X_curve, z_curve, f"4. {n_curve} draws: a line cannot follow them")]:
    ax.plot(*f_toy(zz).T, color="k", lw=1, alpha=0.5, label="the manifold $f(z)$")
    ax.scatter(*pts.T, s=18 if len(pts) < 100 else 6, c=z_pts, zorder=3, **z_colors)
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title, xlim=(-2.8, 2.8), ylim=(-2.8, 2.8))
    ax.set_aspect("equal")
line = proj[np.argsort(proj[:, 0])]
axes[3].plot(*line.T, color=COLORS[1], lw=2, zorder=4, label="best line (PCA)")
for ax in axes[1:]:
    ax.legend(fontsize=8, loc="center")
show(savefig("fig_04_curved_manifold"))

# %% [markdown]
# ## 2. Learning the NLGM, and why the posterior is intractable
#
# With complete data $(x,z)$, maximum likelihood for $\theta$ and $D$ is a regression: minimise
#
# $$L(\theta,D)=\sum_{(x,z)}\tfrac12\log|D|+\tfrac12\big(x-f(z;\theta)\big)^\top D^{-1}\big(x-f(z;\theta)\big)$$
#
# by backpropagation. But $z$ is missing, so we want EM: complete the data with $P(z\mid x)$. Here it stops:
#
# $$P(z\mid x)=\frac{P(x\mid z)P(z)}{P(x)},\qquad P(x)=\int\mathcal N\big(x;f(z;\theta),D\big)\,\mathcal N(z;0,I)\,dz,$$
#
# and for a non-linear $f$ this integral has no closed form. (The slides write the prior in this integral as
# $\mathcal N(z;0,D)$, a typo: $D$ is the noise covariance of $x$, and the prior of $z$ is $\mathcal N(z;0,I)$.) The posterior may even have several modes: a point near the bottom of our bent line, where
# its two ends meet, could have come from either end. In one dimension we can still compute it on a grid to look
# at it — in many dimensions we cannot.
#
# ## 3. Approximating $P(z\mid x)$ by $Q(z,x)$
#
# We approximate the posterior by a Gaussian whose mean and (diagonal) covariance are functions of $x$,
#
# $$P(z\mid x)\approx Q(z,x)=\mathcal N\big(z;\mu(x;\varphi),\Sigma(x;\varphi)\big),$$
#
# with $\varphi$ chosen so that $Q$ is as close as possible to the posterior, in KL divergence. Below: the exact
# posterior on a grid, and the Gaussian closest to it in $\mathrm{KL}(Q\,\|\,P)$ (found by a grid search).

# %%
sigma2 = NOISE_SD ** 2
zg = np.linspace(-3.5, 3.5, 1401)
dz = zg[1] - zg[0]
log_prior = -0.5 * zg ** 2 - 0.5 * np.log(2 * np.pi)

def exact_posterior(x):
    log_joint = log_prior - 0.5 * ((f_toy(zg) - x) ** 2).sum(1) / sigma2 - np.log(2 * np.pi * sigma2)
    w = np.exp(log_joint - log_joint.max())
    return w / (w.sum() * dz)

def closest_gaussian(post):
    best = (np.inf, None, None)
    for mu in np.linspace(-3, 3, 121):
        for s in np.geomspace(0.02, 2, 60):
            q = np.exp(-0.5 * ((zg - mu) / s) ** 2) / (s * np.sqrt(2 * np.pi))
            kl = np.sum(q * (np.log(q + 1e-300) - np.log(post + 1e-300))) * dz
            if kl < best[0]:
                best = (kl, mu, s)
    return best

points = {"a point on the curve": f_toy(np.array([0.6]))[0] + np.array([0.05, -0.05]),
          "a point where the two ends meet": np.array([0.0, -1.9])}
fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
ax = axes[0]
ax.plot(*f_toy(zz).T, color="k", lw=1, alpha=0.5, label="the manifold $f(z)$")
for (name, x), c in zip(points.items(), COLORS[2:4]):
    ax.scatter(*x, s=60, color=c, edgecolor="k", zorder=3, label=name)
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="two observations near the curve $f(z)$")
ax.set_aspect("equal")
ax.legend(fontsize=8, loc="center")
for ax, ((name, x), c) in zip(axes[1:], zip(points.items(), COLORS[2:4])):
    post = exact_posterior(x)
    kl, mu, s = closest_gaussian(post)
    ax.plot(zg, post, color=c, lw=2, label=r"exact $P(z\mid x)$ (grid)")
    ax.plot(zg, np.exp(-0.5 * ((zg - mu) / s) ** 2) / (s * np.sqrt(2 * np.pi)), "k--", lw=1.5,
            label=f"closest Gaussian $Q$: KL = {kl:.2f}")
    ax.set(xlabel="$z$", ylabel="density", title=name, xlim=(-3.5, 3.5))
    ax.legend(fontsize=8, loc="upper left")
show(savefig("fig_04_posterior_approximation"))

# %% [markdown]
# ## 4. Completing the data by sampling: the reparameterisation
#
# The expectation over $Q$ has no closed form either, so the data are completed **by sampling**
# (option 2 of EM): for each $x$, draw $z\sim Q(z,x)$. To let gradients reach $\varphi$ through the sample, draw
# the randomness first and transform it:
#
# $$\varepsilon\sim\mathcal N(0,I),\qquad z=\mu(x;\varphi)+\Sigma(x;\varphi)^{1/2}\,\varepsilon,$$
#
# so $\nabla_\varphi z=\nabla_\varphi\mu(x;\varphi)+\mathrm{diag}(\varepsilon)\,\nabla_\varphi\Sigma(x;\varphi)^{1/2}$ is an
# ordinary derivative. (The slides have a typo in this gradient: they write the last term as
# $\mathrm{diag}(\varepsilon)\,\Sigma(x;\varphi)^{0.5}$, without the gradient. The derivative of $z$ reaches $\varphi$
# through $\Sigma^{1/2}$, so that term is $\mathrm{diag}(\varepsilon)\,\nabla_\varphi\Sigma(x;\varphi)^{1/2}$.)
# `course_lib.vae.reparameterize(mu, logvar)` does exactly this.

# %%
from course_lib.vae import reparameterize

g = torch.Generator().manual_seed(SEED)
eps = torch.randn(5000, 1, generator=g)
mu, logvar = torch.tensor([[1.5]], requires_grad=True), torch.tensor([[np.log(0.25)]], requires_grad=True)
z = reparameterize(mu, logvar, eps)
z.mean().backward()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
axes[0].hist(eps.numpy().ravel(), bins=60, density=True, color=COLORS[7])
axes[0].set(xlabel=r"$\varepsilon$", ylabel="density", title=r"$\varepsilon \sim N(0, 1)$: the randomness")
axes[1].hist(z.detach().numpy().ravel(), bins=60, density=True, color=COLORS[0])
axes[1].set(xlabel="$z$", title=r"$z = \mu + \sigma\,\varepsilon$ with $\mu = 1.5$, $\sigma = 0.5$")
show(savefig("fig_04_reparameterization"))
print(f"d mean(z)/d mu = {mu.grad.item():.3f} (exactly 1): the gradient flows through the sample")

# %% [markdown]
# ## 5. The loss
#
# Choose $\varphi$ to minimise $\mathrm{KL}\big(Q(z,x)\,\|\,P(z\mid x)\big)$. Expanding with Bayes' rule,
#
# $$\mathrm{KL}\big(Q\,\|\,P(z\mid x)\big)=\mathbb E_{z\sim Q}\log Q(z,x)-\mathbb E_{z\sim Q}\log P(z)-\mathbb E_{z\sim Q}\log P(x\mid z)+\log P(x)
# =\mathrm{KL}\big(Q\,\|\,P(z)\big)-\mathbb E_{z\sim Q}\log P(x\mid z)+\log P(x).$$
#
# (The slides end this expansion with $-\,\mathbb E_{z\sim Q}\log P(x)$; the sign is $+$: $\log P(z\mid x)=\log P(z)+\log P(x\mid z)-\log P(x)$.)
# The last term does not depend on $\varphi$; what remains is minus the **ELBO**:
#
# $$\log P(x)\;\ge\;\mathrm{ELBO}(x)=\mathbb E_{z\sim Q}\log P(x\mid z;\theta)-\mathrm{KL}\big(Q(z,x)\,\|\,\mathcal N(0,I)\big).$$
#
# The KL between the Gaussians has a closed form (with $\Sigma$ diagonal, $K$ the dimension of $z$):
#
# $$\mathrm{KL}=\tfrac12\Big(\mathrm{tr}\,\Sigma(x)+\mu(x)^\top\mu(x)-K-\log|\Sigma(x)|\Big)$$
#
# (the slides print $\mu^\top(\mu-d-\log|\Sigma|)$, with two typos: a misplaced parenthesis, since $\mu^\top\mu$ and
# $-K-\log|\Sigma|$ are separate terms, and $d$ where the dimension of $z$, $K$, is meant; $d$ is the dimension
# of $x$). The reconstruction term is estimated with the
# sampled $z$; with $D=\sigma^2I$ it is $-\frac{1}{2\sigma^2}\|x-f(z;\theta)\|^2-\frac d2\log\sigma^2$ + const, so
# $\theta$, $\varphi$ and even $\sigma^2$ are learned together by minimising
#
# $$L(\theta,\sigma^2,\varphi)=\sum_x\mathrm{KL}\big(Q(z,x)\,\|\,\mathcal N(0,I)\big)+\sum_{(x,z)}\Big[\frac{1}{2\sigma^2}\|x-f(z;\theta)\|^2+\frac d2\log\sigma^2\Big].$$
#
# (The slides write this loss without the factors $\tfrac12$, which only doubles it, but with a typo: their
# $d\log\sigma^2$ stands once, outside the sum over the pairs $(x,z)$. Each pair brings its own Gaussian
# normaliser, so the term belongs inside the sum, $Nd\log\sigma^2$ in total for $N$ pairs. With a single
# $d\log\sigma^2$, the minimising $\sigma^2$ would come out $N$ times too large.)
#
# For pixel intensities in $[0,1]$ we use a Bernoulli $P(x\mid z)$ instead, whose log-likelihood is minus the
# binary cross-entropy. $f(z;\theta)$ is a network (the **decoder**, the generative model). A second network, the
# **encoder**, reads $x$ and returns both $\mu(x;\varphi)$ and the diagonal of $\Sigma(x;\varphi)$ (as log-variances);
# it is needed only for training.
#
# ### The same loss, derived from completed data
#
# The slides derive it a second time, the way EM thinks. Complete the data first: for each $x$ draw
# $z\sim Q(z,x)$, giving pairs $(x,z)$. On these pairs, make the model's posterior and the approximation agree by
# minimising $\sum_{(x,z)}\big[\log Q(z,x)-\log P(z\mid x)\big]$; with Bayes' rule and dropping $\log P(x)$ (it
# depends on neither $\varphi$ nor $z$),
#
# $$L_Q(\varphi)=\sum_{(x,z)}\Big[\log Q(z,x;\varphi)-\log P(z)-\log P(x\mid z;\theta)\Big].$$
#
# The first two terms can be summed over **every** $z$ in closed form — that is $\mathrm{KL}(Q\,\|\,P(z))$ — while
# the last one can only be averaged over the drawn samples. Taking each part the best way it can be taken gives
# the loss above: KL in closed form plus reconstruction over samples.
#
# **One step instead of two.** Written like EM, training alternates: complete the data by sampling
# $z\sim Q(z,x)$; re-estimate $\theta$ (and $\sigma^2$) from the completed pairs; re-estimate $\varphi$. Because both
# re-estimations are gradient steps on terms of the same loss $L(\theta,\sigma^2,\varphi)$, they can be merged: each
# minibatch draws $z$ by reparameterisation and takes one gradient step on all parameters at once. That merged
# step is what `VAE.fit` runs.
#
# ## 6. Training a VAE on digits
#
# The 8×8 handwritten digits, intensities scaled to $[0,1]$, with a 2-dimensional latent space so we can look
# at it. The training is small enough for a laptop CPU; `FAST` trains for a few epochs only.

# %%
from course_lib import VAE

X_train, y_train = data.load_digits("train")
X_test, y_test = data.load_digits("test")
EPOCHS = 5 if FAST else 100
vae = VAE(input_dim=64, latent_dim=2, hidden_dims=(128, 64), likelihood="bernoulli", random_state=SEED)
vae.fit(X_train, epochs=EPOCHS, batch_size=128, lr=3e-3, validation_data=X_test, progress=False)

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(np.arange(1, EPOCHS + 1), vae.history_["loss"], color=COLORS[0], label="training")
ax.plot(np.arange(1, EPOCHS + 1), vae.history_["val_loss"], color=COLORS[1], label="test")
ax.set(xlabel="epoch", ylabel="negative ELBO (nats per digit)", title="Training the VAE on 8x8 digits")
ax.legend()
show(savefig("fig_04_training_curve"))
print(f"{len(X_train)} training and {len(X_test)} test digits; final test negative ELBO "
      f"{vae.history_['val_loss'][-1]:.2f} nats")

# %% [markdown]
# ## 7. What the trained model does
#
# * **Samples**: draw $z\sim\mathcal N(0,I)$ and decode. We show the mean of $P(x\mid z)$, the *expected*
#   generation, without adding the pixel noise.
# * **Reconstructions**: encode a test digit to $\mu(x)$, decode it.
# * **The latent space**: $\mu(x)$ of every test digit, coloured by its label — similar digits cluster,
#   although the model never saw a label.
# * **A latent traversal**: decode a regular grid of $z$ values; moving smoothly in $z$ changes the digit smoothly.

# %%
from course_lib.plotting import image_grid

samples = vae.sample(40, random_state=SEED)
recon = vae.reconstruct(X_test[:20])
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
image_grid(axes[0], samples, ncols=10)
axes[0].set_title("40 samples: $z \\sim N(0, I)$, decoded")
image_grid(axes[1], np.concatenate([X_test[:10], recon[:10], X_test[10:20], recon[10:20]]), ncols=10)
axes[1].set_title("test digits (rows 1, 3) and their reconstructions (rows 2, 4)")
show(savefig("fig_04_samples_reconstructions"))

# %%
from course_lib.plotting import image_grid

mu_test, _ = vae.encode(X_test)
fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.4))
ax = axes[0]
sc = ax.scatter(mu_test[:, 0], mu_test[:, 1], c=y_test, cmap="tab10", s=10, vmin=-0.5, vmax=9.5)
for d in range(10):
    cx, cy = np.median(mu_test[y_test == d], axis=0)
    ax.text(cx, cy, str(d), fontsize=14, weight="bold", ha="center", va="center",
            bbox=dict(boxstyle="circle,pad=0.2", fc="white", alpha=0.7, lw=0))
fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
ax.set(xlabel="$z_1$", ylabel="$z_2$", title="Latent means $\\mu(x)$ of the test digits")
steps = 7 if FAST else 15
span = 2.0
values = np.linspace(-span, span, steps)
tiles = vae.latent_traversal(dims=(0, 1), steps=steps, span=span)   # (steps, steps, 8, 8); [i, j]: z1_i, z2_j
rows = tiles.transpose(1, 0, 2, 3)[::-1].reshape(steps * steps, 8, 8)  # rows: z2 from high to low; columns: z1
ax = axes[1]
image_grid(ax, rows, ncols=steps)
centres = 1 + np.arange(steps) * 9 + 3.5
ticks = np.linspace(0, steps - 1, 5).round().astype(int)
ax.set_xticks(centres[ticks], labels=[f"{values[t]:.1f}" for t in ticks])
ax.set_yticks(centres[ticks], labels=[f"{values[::-1][t]:.1f}" for t in ticks])
ax.set(xlabel="$z_1$", ylabel="$z_2$", title="Latent traversal: decoding a grid of $z$")
show(savefig("fig_04_latent_space"))

# %% [markdown]
# ### Changing one real digit: moving $z$ around $\mu(x)$
#
# The traversal above starts from $z=0$. To edit a given input, start from its own expected latent $\mu(x)$ and
# wiggle $z$ around it; decode without adding noise (the expected generation). Each row below is one test
# digit: its original, then $\mu(x)+\delta\,e_1$ for $\delta$ from $-1.5$ to $1.5$, then the same along $e_2$.

# %%
picks = [int(np.flatnonzero(y_test == d)[0]) for d in (0, 3, 7)]
mu_pick, _ = vae.encode(X_test[picks])
deltas = np.linspace(-1.5, 1.5, 7)
tiles = []
for i in range(len(picks)):
    tiles.append(X_test[picks[i]])
    for axis in (0, 1):
        Z = np.repeat(mu_pick[i:i + 1], len(deltas), axis=0)
        Z[:, axis] += deltas
        tiles.extend(1 / (1 + np.exp(-vae.decode(Z))))                  # Bernoulli means of the decoder
fig, ax = plt.subplots(figsize=(11, 3.2))
image_grid(ax, np.array(tiles), ncols=1 + 2 * len(deltas))
ax.set_title(f"original | $z_1$ = $\\mu_1(x)$ {deltas[0]:+.1f} ... {deltas[-1]:+.1f} | "
             f"$z_2$ = $\\mu_2(x)$ {deltas[0]:+.1f} ... {deltas[-1]:+.1f}")
show(savefig("fig_04_latent_manipulation"))

# %% [markdown]
# ## 8. The ELBO versus the log-likelihood
#
# A VAE does not give $\log P(x)$ directly: the integral over $z$ is intractable. The ELBO is a lower bound.
# A tighter estimate draws $k$ samples $z_i\sim Q(z,x)$ and averages the importance weights inside the log,
#
# $$\log P(x)\;\approx\;\log\frac1k\sum_{i=1}^k\frac{P(x\mid z_i)P(z_i)}{Q(z_i,x)},$$
#
# which equals the ELBO in expectation for $k=1$ and climbs towards $\log P(x)$ as $k$ grows. This is the
# number to report as a VAE's log-likelihood.

# %%
ks = [1, 5, 20] if FAST else [1, 5, 20, 100, 500]
X_eval = X_test[:100] if FAST else X_test
elbo_mean = float(np.mean(vae.elbo(X_eval, n_samples=10, random_state=SEED)))
iw = [float(np.mean(vae.log_likelihood(X_eval, k=k, random_state=SEED))) for k in ks]
fig, ax = plt.subplots(figsize=(6.5, 3.9))
ax.plot(ks, iw, "o-", color=COLORS[0], label="importance-weighted estimate of $\\log P(x)$")
ax.axhline(elbo_mean, color=COLORS[1], ls="--", label="ELBO")
ax.set(xscale="log", xlabel="importance samples $k$", ylabel="nats per test digit",
       title="The ELBO is a lower bound on the log-likelihood")
ax.legend(loc="center right")
show(savefig("fig_04_elbo_vs_iwae"))
print(f"ELBO {elbo_mean:.2f}; importance-weighted: " + ", ".join(f"k={k}: {v:.2f}" for k, v in zip(ks, iw)))
print(f"k = 1 is a one-sample estimate of the ELBO: it differs from the 10-sample ELBO by {round(iw[0] - elbo_mean, 2) + 0.0:+.2f} nats, "
      "Monte-Carlo error of averaging over a finite number of digits and draws")

# %% [markdown]
# ### Why not sample $z$ from the prior?
#
# $P(x)=\int P(z)P(x\mid z)\,dz=\mathbb E_{z\sim P(z)}P(x\mid z)$ suggests the plain Monte-Carlo estimate
# $\frac1k\sum_i P(x\mid z_i)$ with $z_i\sim P(z)$. It is unbiased but useless in practice: for a given $x$ almost
# every $z$ from the prior decodes to something else, $P(x\mid z_i)\approx0$, and the rare $z$ that explain $x$
# dominate the average. Drawing $z$ from $Q(z,x)$ instead and weighting by $P(z)/Q(z,x)$ (the estimate of §8)
# puts the samples where the posterior is. On the bent line of §2, where the exact $\log P(x)$ is known from
# the grid, we repeat both estimates 200 times with $k=10$ samples each.

# %%
x_on = points["a point on the curve"]
log_px_exact = np.log(np.sum(np.exp(log_prior - 0.5 * ((f_toy(zg) - x_on) ** 2).sum(1) / sigma2
                                    - np.log(2 * np.pi * sigma2))) * dz)
_, mu_q, s_q = closest_gaussian(exact_posterior(x_on))

def log_lik_toy(z):
    return -0.5 * ((f_toy(z) - x_on) ** 2).sum(1) / sigma2 - np.log(2 * np.pi * sigma2)

rng = np.random.default_rng(SEED)
k_est, reps = 10, 200
prior_est, is_est = [], []
for _ in range(reps):
    z_p = rng.normal(size=k_est)
    prior_est.append(np.log(np.mean(np.exp(log_lik_toy(z_p)))))
    z_q = mu_q + s_q * rng.normal(size=k_est)
    log_w = log_lik_toy(z_q) - 0.5 * z_q ** 2 + 0.5 * ((z_q - mu_q) / s_q) ** 2 + np.log(s_q)
    is_est.append(np.log(np.mean(np.exp(log_w))))
prior_est, is_est = np.array(prior_est), np.array(is_est)
fig, ax = plt.subplots(figsize=(7, 3.8))
bins = np.linspace(min(prior_est.min(), is_est.min()), max(prior_est.max(), is_est.max()), 50)
ax.hist(prior_est, bins=bins, color=COLORS[1], alpha=0.6, label="$z$ from the prior $P(z)$")
ax.hist(is_est, bins=bins, color=COLORS[0], alpha=0.8, label="$z$ from $Q(z, x)$, importance-weighted")
ax.axvline(log_px_exact, color="k", ls="--", label=f"exact $\\log P(x)$ = {log_px_exact:.2f}")
ax.set(xlabel=f"estimate of $\\log P(x)$ from k = {k_est} samples", ylabel=f"count (of {reps} repetitions)",
       title="Sampling the prior vs importance sampling")
ax.legend(loc="upper left", fontsize=8)
show(savefig("fig_04_prior_vs_importance"))
print(f"exact log P(x) {log_px_exact:.3f}; prior sampling: mean {prior_est.mean():.3f}, s.d. {prior_est.std():.3f}; "
      f"importance sampling: mean {is_est.mean():.3f}, s.d. {is_est.std():.3f}")

# %% [markdown]
# ## 9. The conditional VAE
#
# To model a **conditional** distribution $P(x\mid y)$ — say, the digit given its label — both networks are told
# the label: the encoder reads $(x,y)$ and the decoder reads $(z,y)$, with $y$ one-hot. The loss and the
# reparameterisation do not change. To generate a chosen digit, fix $y$ and draw $z\sim\mathcal N(0,I)$. Since
# the decoder already knows the class, the latent is free to describe the rest, the *style* (slant,
# thickness). Below, each column decodes **one** $z$ with each of the ten labels: along a column the class
# changes while $z$ stays the same.

# %%
cvae = VAE(input_dim=64, latent_dim=2, hidden_dims=(128, 64), num_classes=10, random_state=SEED)
cvae.fit(X_train, y_train, epochs=EPOCHS, batch_size=128, lr=3e-3, progress=False)
labels = np.repeat(np.arange(10), 8)
z_cols = np.random.default_rng(SEED).normal(size=(8, 2))              # 8 codes z ~ N(0, I), one per column
logits = cvae.decode(np.tile(z_cols, (10, 1)), labels)                # row d: the same 8 codes with label d
generated = 1 / (1 + np.exp(-np.asarray(logits)))                     # Bernoulli means of the decoder
fig, ax = plt.subplots(figsize=(5.2, 6.2))
image_grid(ax, generated, ncols=8)
ax.set_yticks(np.arange(10) * 9 + 4.5, labels=[str(d) for d in range(10)])
ax.set(ylabel="label $y$ given to the decoder", xlabel="the same code $z$ in every row of a column",
       title="Conditional VAE: 8 codes $z$, each decoded\nwith every label")
show(savefig("fig_04_cvae_samples"))

# %% [markdown]
# ## 10. Other priors: mixtures and dynamical systems
#
# Nothing in the derivation needs $P(z)=\mathcal N(0,I)$. The slides mention two common replacements. A
# **mixture prior** $P(z)=\sum_c\pi_c\,\mathcal N(z;m_c,S_c)$ gives the latent space clusters of its own (one per
# component, e.g. one per digit class), and is learned together with the networks. In a **dynamical-system**
# model the latent of a sequence follows a Markov chain, $P(z_1,\dots,z_T)=P(z_1)\prod_tP(z_t\mid z_{t-1})$, and
# the decoder maps each $z_t$ to a frame. The loss keeps its shape — reconstruction minus a divergence between $Q$
# and the prior — but the KL to a mixture no longer has a closed form and is estimated from the same samples as
# the reconstruction term, $\mathbb E_Q[\log Q(z,x)-\log P(z)]$. `course_lib.VAE` implements only the
# standard-normal prior; we do not train these variants here.
#
# ## Summary
#
# * The non-linear Gaussian model $x=f(z;\theta)+e$ describes data near curved manifolds; its posterior
#   $P(z\mid x)$ is intractable, so EM cannot complete the data exactly.
# * The VAE approximates the posterior by $Q(z,x)=\mathcal N(\mu(x;\varphi),\Sigma(x;\varphi))$, completes the data
#   by reparameterised sampling, and trains encoder and decoder together on
#   $-\mathrm{ELBO}=\mathrm{KL}(Q\,\|\,\mathcal N(0,I))-\mathbb E_Q\log P(x\mid z)$.
# * The decoder is the generative model; the encoder maps data to a smooth latent space. The ELBO is a lower
#   bound; the importance-weighted estimate tightens it. Conditioning both networks on $y$ gives a CVAE.
