"""Source of lectures/03_pca_factor_analysis.ipynb (rebuild with python lectures/build_notebooks.py)."""

NAME = "03_pca_factor_analysis"

TITLE = r"""
# Lecture 3 — PCA, linear autoencoders and factor analysis

Principal component analysis looks like a geometry problem — find the subspace closest to the data — but it
hides a generative model, and its iterative solution is an EM algorithm. This lecture

1. defines PCA as the subspace of **least projection error**, solved in closed form (an eigenproblem) and
   iteratively ($Z\leftarrow W^+X$, $W\leftarrow XZ^+$);
2. meets the same solution in a **linear autoencoder**;
3. sees that the **basis is not unique** (scale and rotation invariance) and how constraints fix it;
4. tells PCA's **generative story** and generalises it to the **linear Gaussian model** (factor analysis),
   whose noise need not be orthogonal to the subspace;
5. fits factor analysis by **EM**, using the posterior $P(z\mid x)$.
"""

PARAMETERS = r"""
# Parameters (papermill). FAST=True is the quick setting the test-suite runs; the figures use FAST=False.
FAST = False
"""

CELLS = [
    ("md", r"""
## 1. The subspace of least projection error

Given centred data, find the direction $w$ (a unit vector) such that replacing every point by its projection
$(w^\top x)\,w$ loses as little as possible. The total squared error is

$$L(w)=\sum_x\big(x^\top x-w^\top x\,x^\top w\big),$$

so minimising it means maximising $w^\top\big(\sum_x xx^\top\big)w$ under $\|w\|=1$: the solution is the
eigenvector of the scatter matrix $\sum_x xx^\top$ with the largest eigenvalue,
$\big(\sum_x xx^\top\big)w=\lambda w$. For $k$ dimensions, the top $k$ eigenvectors. Below we search over all
directions of a 2-D cloud; the minimum sits at the first principal component.
"""),
    ("code", r"""
from course_lib import PCA, data

n = 200 if FAST else 500
X = data.make_line(n, noise=0.6, seed=SEED)              # 2-D points scattered around a line
Xc = X - X.mean(0)
pca = PCA(n_components=1).fit(X)
w_pca = pca.components_[0]

angles = np.linspace(0, np.pi, 361)
W = np.column_stack([np.cos(angles), np.sin(angles)])                 # candidate unit directions
errors = (Xc ** 2).sum() - ((Xc @ W.T) ** 2).sum(0)                   # L(w) for each direction
best = np.arctan2(w_pca[1], w_pca[0]) % np.pi
other = best + np.deg2rad(50)

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
ax = axes[0]
for theta, color, name in [(other, COLORS[1], "another direction"), (best, COLORS[0], "principal direction")]:
    u = np.array([np.cos(theta), np.sin(theta)])
    proj = (Xc @ u)[:, None] * u
    for p, q in zip(Xc[::6], proj[::6]):
        ax.plot([p[0], q[0]], [p[1], q[1]], color=color, lw=0.7, alpha=0.6)
    ax.axline((0, 0), u, color=color, lw=2, label=f"{name}: error {((Xc - proj) ** 2).sum():.0f}")
ax.scatter(*Xc.T, s=8, color=COLORS[7])
ax.set(xlabel="$x_1$ (centred)", ylabel="$x_2$ (centred)", title="Projection errors onto two directions")
ax.set_aspect("equal")
ax.legend(fontsize=8, loc="upper left")
ax = axes[1]
ax.plot(np.rad2deg(angles), errors, color=COLORS[2])
ax.axvline(np.rad2deg(best), color=COLORS[0], ls="--", label="first eigenvector")
ax.set(xlabel="direction of $w$ (degrees)", ylabel="total squared projection error $L(w)$",
       title="Searching all directions")
ax.legend()
savefig("fig_03_projection_error")
plt.show()
"""),
    ("md", r"""
## 2. The iterative solution

Find a basis $W$ and positions $Z=[z_1\dots z_N]$ with $WZ\approx X$ (data as columns). Alternate:

* given $W$, the best positions are the perpendicular projections: $Z\leftarrow W^{+}X$;
* given $Z$, the best basis is a least-squares fit: $W\leftarrow XZ^{+}$.

Each step can only lower the error, and the iteration converges to (a basis of) the principal subspace.
Here in 3-D with a 2-D subspace, starting from a random basis; we measure the largest principal angle
between the current subspace and the eigenvector solution.
"""),
    ("code", r"""
from course_lib.pca import iterative_pca_step

rng = np.random.default_rng(SEED)
X3 = rng.normal(size=(n, 3)) @ np.diag([3.0, 1.5, 0.8]) @ np.linalg.qr(rng.normal(size=(3, 3)))[0]
closed = PCA(n_components=2).fit(X3)
U = closed.components_.T                                             # (3, 2) orthonormal eigenvectors

def largest_angle(W):
    # sine of the largest principal angle: the largest singular value of the part of span(W) outside span(U)
    Q = np.linalg.qr(W)[0]
    sines = np.linalg.svd(Q - U @ (U.T @ Q), compute_uv=False)
    return np.degrees(np.arcsin(np.clip(sines.max(), 0, 1)))

W = rng.normal(size=(3, 2))
angles_it = [largest_angle(W)]
for _ in range(15 if FAST else 25):
    W = iterative_pca_step(X3, W)
    angles_it.append(largest_angle(W))
iterative = PCA(n_components=2, solver="iterative", random_state=SEED).fit(X3)

fig, ax = plt.subplots(figsize=(6.5, 3.8))
# the angles' last digits are rounding noise that differs from run to run: plot 6 significant digits,
# and nothing below 1e-9 degrees
shown = np.array([float(f"{a:.6g}") for a in np.maximum(angles_it, 1e-9)])
ax.semilogy(shown, "o-", ms=4, color=COLORS[0])
ax.set(xlabel="iteration ($Z \\leftarrow W^+X$, $W \\leftarrow XZ^+$)",
       ylabel="largest angle to the eigenvectors (degrees)",
       title="Iterative PCA converges to the principal subspace")
savefig("fig_03_iterative_pca")
plt.show()
print("closed-form components:\n", np.round(closed.components_, 4))
print("iterative solver components:\n", np.round(iterative.components_, 4))
"""),
    ("md", r"""
## 3. The linear autoencoder

Draw the two steps as a network: the encoder maps $x$ to $z=W^+x$, the decoder maps $z$ back to
$\hat x=Wz$. That is an **autoencoder with linear activations**. Training it by backpropagation on the
squared reconstruction error updates $Z$ (implicitly, through the encoder) and $W$ together in small steps,
and it lands on the same principal subspace: its reconstructions are the projections onto it.
"""),
    ("code", r"""
torch.manual_seed(SEED)
Xt = torch.as_tensor(Xc, dtype=torch.float32)
encoder, decoder = torch.nn.Linear(2, 1, bias=False), torch.nn.Linear(1, 2, bias=False)
opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=0.02)
losses = []
for step in range(150 if FAST else 600):
    loss = ((decoder(encoder(Xt)) - Xt) ** 2).sum(1).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    losses.append(loss.item())
with torch.no_grad():
    recon_ae = decoder(encoder(Xt)).numpy()
w_dec = decoder.weight.detach().numpy()[:, 0]
pca_recon = (Xc @ w_pca)[:, None] * w_pca
cos = abs(w_dec @ w_pca) / np.linalg.norm(w_dec)

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
ax = axes[0]
ax.scatter(*Xc.T, s=8, color=COLORS[7], label="data")
ax.scatter(*pca_recon.T, s=26, facecolors="none", edgecolors=COLORS[0], label="PCA projections")
ax.scatter(*recon_ae.T, s=6, color=COLORS[1], label="linear autoencoder reconstructions")
ax.set(xlabel="$x_1$ (centred)", ylabel="$x_2$ (centred)",
       title=f"Decoder direction vs first PC: |cos| = {cos:.4f}")
ax.set_aspect("equal")
ax.legend(fontsize=8, loc="upper left")
ax = axes[1]
ax.semilogy(losses, color=COLORS[1], label="autoencoder")
ax.axhline(((Xc - pca_recon) ** 2).sum(1).mean(), color=COLORS[0], ls="--", label="PCA (the minimum)")
ax.set(xlabel="gradient step", ylabel="mean squared reconstruction error", title="Training the linear autoencoder")
ax.legend()
fig.tight_layout()
savefig("fig_03_linear_autoencoder")
plt.show()
print(f"decoder weights {np.round(w_dec, 3)}, first principal component {np.round(w_pca, 3)}")
"""),
    ("md", r"""
## 4. The basis is not unique: scale and rotation invariance

We can stretch $w$ and shrink $z$ to compensate; more generally, for any invertible $B$,

$$WZ=(WB)(B^{-1}Z),$$

so $W'=WB$, $Z'=B^{-1}Z$ reconstruct the data equally well. The **subspace** is determined; the **bases**
and the **coordinates** in them are not. Two ways to pin down a unique solution:

* require the columns of $W$ to be **orthonormal** — the standard closed-form PCA;
* require the codes $z$ to have **unit variance** (uncorrelated, variance 1).

Both find the same subspace, but with different $W$. Below: the same five points in coordinates of the
orthonormal basis and of a rotated-and-stretched basis $WB$, and the reconstruction error of both.
"""),
    ("code", r"""
B = np.array([[1.6, 0.9], [-0.4, 0.7]])                 # any invertible 2 x 2 matrix
Z_orth = (X3 - closed.mean_) @ U                          # codes in the orthonormal basis (N, 2)
Z_skew = Z_orth @ np.linalg.inv(B).T                      # Z' = B^-1 Z
rec_orth = Z_orth @ U.T
rec_skew = Z_skew @ (U @ B).T                             # (W B)(B^-1 Z)
Z_unit = Z_orth / Z_orth.std(0)                           # the unit-variance normalisation of the codes

fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
pick = np.arange(5)
for ax, Z, title in [(axes[0], Z_orth, "codes for orthonormal $W$"), (axes[1], Z_skew, "codes for $W' = WB$"),
                     (axes[2], Z_unit, "unit-variance codes")]:
    ax.scatter(*Z.T, s=6, color=COLORS[7], alpha=0.5)
    for i, c in zip(pick, COLORS):
        ax.scatter(*Z[i], s=70, color=c, edgecolor="k", zorder=3)
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=title)
    ax.set_aspect("equal", adjustable="datalim")
fig.suptitle(f"Same subspace, different coordinates: max |WZ - (WB)(B$^{{-1}}$Z)| = "
             f"{np.abs(rec_orth - rec_skew).max():.1e}", y=1.02)
savefig("fig_03_basis_invariance")
plt.show()
"""),
    ("md", r"""
## 5. The generative story of PCA

The iterative solution looks like EM: for each $x$ the missing information is its position $z$ on the
subspace; "complete" the data with the $z$'s, re-estimate the plane, repeat. Which generative model is it
fitting? Constraining $z$ to unit variance amounts to assuming $z\sim\mathcal N(0,I)$. Then:

$$z\sim\mathcal N(0,I_K),\qquad \hat x=Az,\qquad x=\hat x+e,\quad e\sim\mathcal N(0,D),$$

with $A$ the principal eigenvectors scaled by the square roots of their eigenvalues, and $e$ Gaussian noise
**orthogonal to the principal subspace** (its covariance $D$ is low-rank and $A^\top D=0$). So
$P(\hat x)=\mathcal N(0,AA^\top)$ and $P(x)=\mathcal N(0,AA^\top+D)$: PCA models Gaussian data lying close to a
plane. The decoder of a unit-variance linear autoencoder is this generative model.
"""),
    ("code", r"""
A = w_pca * np.sqrt(pca.explained_variance_[0])            # the 1-D basis, scaled
normal = np.array([-w_pca[1], w_pca[0]])                    # orthogonal to the subspace
resid_sd = np.sqrt(((Xc @ normal) ** 2).mean())
rng = np.random.default_rng(SEED + 1)
z = rng.normal(size=12)
x_hat = z[:, None] * A
x_gen = x_hat + rng.normal(scale=resid_sd, size=12)[:, None] * normal

fig, ax = plt.subplots(figsize=(6.5, 4.6))
ax.scatter(*Xc.T, s=6, color=COLORS[7], alpha=0.35, label="data (centred)")
ax.axline((0, 0), w_pca, color=COLORS[0], lw=1.5, label="principal subspace")
ax.scatter(*x_hat.T, s=30, color=COLORS[0], zorder=3, label=r"$\hat x = Az$, $z\sim N(0,1)$")
for a, b in zip(x_hat, x_gen):
    ax.annotate("", b, a, arrowprops=dict(arrowstyle="->", color=COLORS[1], lw=1.3))
ax.scatter(*x_gen.T, s=30, color=COLORS[1], zorder=3, label="$x = \\hat x + e$, $e$ orthogonal to the plane")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="PCA as a generative model")
ax.set_aspect("equal")
ax.legend(fontsize=8, loc="upper left")
savefig("fig_03_pca_generative")
plt.show()
"""),
    ("code", r"""
ask("pca")
"""),
    ("md", r"""
## 6. The linear Gaussian model (factor analysis)

PCA insists the noise is orthogonal to the subspace — rarely true (noise in an image can look like an image).
The **linear Gaussian model** keeps the rest and lets the noise point anywhere, uncorrelated across coordinates:

$$z\sim\mathcal N(0,I),\qquad x=Az+e,\qquad e\sim\mathcal N(0,D),\ D\ \text{diagonal and full rank}.$$

Still $P(x)=\mathcal N(0,AA^\top+D)$ and $P(x\mid z)=\mathcal N(Az,D)$: a Gaussian whose covariance is
low-rank plus diagonal — between a diagonal and a full covariance. Because the noise is no longer orthogonal,
the same $x$ can be produced from many points of the plane: the "shadow" of $x$ on the plane is uncertain.
"""),
    ("code", r"""
A_true, D_true = np.array([2.0, 1.0]), np.array([0.15, 0.6])     # loading and diagonal noise variances
rng = np.random.default_rng(SEED + 2)
m = 10
z_s = rng.normal(size=m)
on_plane = z_s[:, None] * A_true
noise_fa = rng.normal(size=(m, 2)) * np.sqrt(D_true)
u = A_true / np.linalg.norm(A_true)
noise_pca = (noise_fa @ np.array([-u[1], u[0]]))[:, None] * np.array([-u[1], u[0]])

fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharex=True, sharey=True)
for ax, noise, title in [(axes[0], noise_pca, "PCA: noise orthogonal to the plane"),
                         (axes[1], noise_fa, "Factor analysis: diagonal noise, any direction")]:
    ax.axline((0, 0), A_true, color=COLORS[0], lw=1.5)
    ax.scatter(*on_plane.T, s=26, color=COLORS[0], zorder=3, label=r"$\hat x = Az$")
    for a, e in zip(on_plane, noise):
        ax.annotate("", a + e, a, arrowprops=dict(arrowstyle="->", color=COLORS[1], lw=1.3))
    ax.scatter(*(on_plane + noise).T, s=26, color=COLORS[1], zorder=3, label="$x = Az + e$")
    ax.set(xlabel="$x_1$", title=title)
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="upper left")
axes[0].set_ylabel("$x_2$")
savefig("fig_03_noise_models")
plt.show()
"""),
    ("md", r"""
## 7. EM for the linear Gaussian model

The likelihood of $A$ and $D$ has no closed-form maximiser, but with complete data $(x,z)$ it would:

$$A=\Big(\sum xz^\top\Big)\Big(\sum zz^\top\Big)^{-1},\qquad D=\mathrm{diag}\Big(\frac1N\Big(\sum xx^\top-A\sum zx^\top\Big)\Big).$$

We do not observe $z$, so EM completes the data with the posterior, which for this model is Gaussian:

$$P(z\mid x)=\mathcal N\big(z;\;A^\top(AA^\top+D)^{-1}x,\;\;I-A^\top(AA^\top+D)^{-1}A\big).$$

Completing **by expectation** replaces $\sum xz^\top$ by $\sum x\,E[z\mid x]^\top$ and $\sum zz^\top$ by
$\sum E[zz^\top\mid x]$; completing **by sampling** draws $z\sim P(z\mid x)$ and uses the complete-data formulas.
Intuitively: attach each point to every place on the plane that could have produced it, with strength
$P(z\mid x)$; let the plane rotate and stretch to reduce the total tension; repeat.

(In this 2-D picture with one factor the model has four parameters for a covariance with three free entries,
so several $(A, D)$ fit equally well and EM settles on one of them; with one factor and three or more
features, $A$ is determined up to its sign.)
"""),
    ("code", r"""
from course_lib import FactorAnalysis
from course_lib.plotting import gaussian_ellipse

N_fa = 300 if FAST else 1000
rng = np.random.default_rng(SEED + 3)
X_fa = rng.normal(size=(N_fa, 1)) * A_true + rng.normal(size=(N_fa, 2)) * np.sqrt(D_true)
fa = FactorAnalysis(n_components=1, max_iter=200, tol=1e-10).fit(X_fa)
fa_s = FactorAnalysis(n_components=1, max_iter=50 if FAST else 200, tol=1e-10, completion="sampling",
                      random_state=SEED).fit(X_fa)
post_mean, post_cov = fa.posterior(X_fa[:4])
A_hat = fa.components_[0]

fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4))
ax = axes[0]
ax.scatter(*X_fa.T, s=5, color=COLORS[7], alpha=0.4)
ax.axline(fa.mean_, fa.mean_ + A_hat, color=COLORS[0], lw=1.5, label="fitted plane $\\mu + Az$")
sd = np.sqrt(post_cov[0, 0])
for i, c in zip(range(4), COLORS[1:5]):
    lo, hi = fa.mean_ + (post_mean[i, 0] - 2 * sd) * A_hat, fa.mean_ + (post_mean[i, 0] + 2 * sd) * A_hat
    ax.plot([lo[0], hi[0]], [lo[1], hi[1]], color=c, lw=5, alpha=0.5, solid_capstyle="butt")
    ax.scatter(*X_fa[i], s=45, color=c, edgecolor="k", zorder=4)
    ax.scatter(*(fa.mean_ + post_mean[i, 0] * A_hat), s=25, color=c, marker="D", zorder=4)
ax.plot([], [], color=COLORS[1], lw=5, alpha=0.5, label=r"$E[z\mid x]\pm2$ s.d. of $P(z\mid x)$, on the plane")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="Posterior $P(z\\mid x)$: where on the plane $x$ came from")
ax.set_aspect("equal", adjustable="datalim")
ax.legend(fontsize=8, loc="upper left")
ax = axes[1]
ax.plot(np.arange(1, len(fa_s.loglike_) + 1), fa_s.loglike_, color=COLORS[1], alpha=0.7, label="completion by sampling")
ax.plot(np.arange(1, len(fa.loglike_) + 1), fa.loglike_, "o-", ms=3, color=COLORS[0], label="completion by expectation")
ax.set(xlabel="EM iteration", ylabel="log-likelihood $\\sum_n \\log P(x_n)$", title="EM for factor analysis",
       xscale="log")
ax.legend()
fig.tight_layout()
savefig("fig_03_factor_analysis_em")
plt.show()
print("true A", A_true, " estimated A", np.round(A_hat, 3), "(up to sign)")
print("true D", D_true, " estimated D", np.round(fa.noise_variance_, 3))
print(f"ELBO at the exact posterior {fa.elbo(X_fa, *fa.posterior(X_fa)):.3f} = log-likelihood "
      f"{fa.score(X_fa) * N_fa:.3f}")
"""),
    ("md", r"""
## Summary

* PCA finds the subspace of least squared projection error: in closed form (top eigenvectors) or by
  alternating $Z\leftarrow W^+X$, $W\leftarrow XZ^+$ — which is what a linear autoencoder learns, too.
* The basis is unique only up to an invertible transform; orthonormal bases or unit-variance codes fix it.
* PCA is a generative model: Gaussian $z$ on a plane plus noise orthogonal to it. Factor analysis (the
  linear Gaussian model) allows diagonal noise in any direction, and is fitted by EM with
  $P(z\mid x)=\mathcal N(A^\top(AA^\top+D)^{-1}x,\;I-A^\top(AA^\top+D)^{-1}A)$.
* Next: what if the data lie near a **curved** surface? Replace $Az$ by a neural network — the VAE.
"""),
]
