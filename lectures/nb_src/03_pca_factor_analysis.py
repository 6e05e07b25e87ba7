# %% [markdown]
# # Lecture 3 — PCA, linear autoencoders and factor analysis
#
# Principal component analysis looks like a geometry problem — find the subspace closest to the data — but it
# hides a generative model, and its iterative solution is an EM algorithm. This lecture
#
# 1. defines PCA as the subspace of **least projection error**, solved in closed form (an eigenproblem) and
#    iteratively ($Z\leftarrow W^+X$, $W\leftarrow XZ^+$);
# 2. meets the same solution in a **linear autoencoder**;
# 3. sees that the **basis is not unique** (scale and rotation invariance) and how constraints fix it;
# 4. tells PCA's **generative story** and generalises it to the **linear Gaussian model** (factor analysis),
#    whose noise need not be orthogonal to the subspace;
# 5. fits factor analysis by **EM**, using the posterior $P(z\mid x)$.

# %% tags=["parameters"]
# Parameters (papermill). FAST=True is the quick setting the test-suite runs; the figures use FAST=False.
FAST = False

# %% [markdown]
# ## 1. The subspace of least projection error
#
# Given centred data, find the direction $w$ (a unit vector) such that replacing every point by its projection
# $(w^\top x)\,w$ loses as little as possible. The total squared error is
#
# $$L(w)=\sum_x\big(x^\top x-w^\top x\,x^\top w\big),$$
#
# so minimising it means maximising $w^\top\big(\sum_x xx^\top\big)w$ under $\|w\|=1$: the solution is the
# eigenvector of the scatter matrix $\sum_x xx^\top$ with the largest eigenvalue,
# $\big(\sum_x xx^\top\big)w=\lambda w$. For $k$ dimensions, the top $k$ eigenvectors. (The slides have a typo in
# this eigen-equation: they write $\big(\sum_x x^\top x\big)w=\lambda w$. But $x^\top x$ is a number, the squared
# length of $x$; the matrix whose eigenvector we need is the outer-product sum $\sum_x xx^\top$.) Below we search
# over all directions of a 2-D cloud; the minimum sits at the first principal component.

# %%
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
show(savefig("fig_03_projection_error"))

# %% [markdown]
# ## 2. The iterative solution
#
# Find a basis $W$ and positions $Z=[z_1\dots z_N]$ with $WZ\approx X$ (data as columns). Alternate:
#
# * given $W$, the best positions are the perpendicular projections: $Z\leftarrow W^{+}X$;
# * given $Z$, the best basis is a least-squares fit: $W\leftarrow XZ^{+}$.
#
# Each step can only lower the error, and the iteration converges to (a basis of) the principal subspace.
# Here in 3-D with a 2-D subspace, starting from a random basis; we measure the largest principal angle
# between the current subspace and the eigenvector solution.

# %%
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
show(savefig("fig_03_iterative_pca"))
print("closed-form components:\n", np.round(closed.components_, 4))
print("iterative solver components:\n", np.round(iterative.components_, 4))

# %% [markdown]
# ## 3. The linear autoencoder
#
# Draw the two steps as a network: the encoder maps $x$ to $z=W^+x$, the decoder maps $z$ back to
# $\hat x=Wz$. That is an **autoencoder with linear activations**. Training it by backpropagation on the
# squared reconstruction error updates $Z$ (implicitly, through the encoder) and $W$ together in small steps,
# and it lands on the same principal subspace: its reconstructions are the projections onto it.

# %%
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
show(savefig("fig_03_linear_autoencoder"))
print(f"decoder weights {np.round(w_dec, 3)}, first principal component {np.round(w_pca, 3)}")

# %% [markdown]
# ## 4. The basis is not unique: scale and rotation invariance
#
# We can stretch $w$ and shrink $z$ to compensate; more generally, for any invertible $B$,
#
# $$WZ=(WB)(B^{-1}Z),$$
#
# so $W'=WB$, $Z'=B^{-1}Z$ reconstruct the data equally well. The **subspace** is determined; the **bases**
# and the **coordinates** in them are not. Two constraints are in common use, and each of them, alone, does only
# half of the job:
#
# * **orthonormal columns**, $W^\top W=I$. This fixes the length of every basis vector, but not their directions
#   inside the subspace: for any orthogonal $R$, $(WR)^\top(WR)=R^\top R=I$ again, and $(WR)(R^\top Z)=WZ$.
# * **unit-variance codes**, $\mathrm{cov}(z)=I$. This fixes the scale of the codes, but again not a rotation:
#   $z'=R^\top z$ has covariance $R^\top IR=I$, and $W'=WR$ reconstructs just as well.
#
# Either constraint alone leaves the same freedom, **a rotation $W\to WR$ inside the subspace**. A unique basis
# (up to the sign and the order of its columns, when the eigenvalues differ) needs one more condition on top of
# each:
#
# * orthonormal columns **and** uncorrelated codes (diagonal $\mathrm{cov}(z)$) give the eigenvectors, $W=U$: the
#   standard closed-form PCA;
# * unit-variance codes **and** orthogonal columns ($W^\top W$ diagonal) give the eigenvectors scaled by the square
#   roots of their eigenvalues, $W=U\Lambda^{1/2}$.
#
# Below: the same five points in the codes of the orthonormal eigenvector basis, of a stretched basis $WB$, of
# the unit-variance codes, and of those codes rotated by $40°$ — still unit variance, still the same
# reconstruction. The printout does the same rotation to the orthonormal basis: $WR$ is still orthonormal, only
# its codes are no longer uncorrelated.

# %%
B = np.array([[1.6, 0.9], [-0.4, 0.7]])                 # any invertible 2 x 2 matrix
Z_orth = (X3 - closed.mean_) @ U                          # codes in the orthonormal basis (N, 2)
Z_skew = Z_orth @ np.linalg.inv(B).T                      # Z' = B^-1 Z
rec_orth = Z_orth @ U.T
rec_skew = Z_skew @ (U @ B).T                             # (W B)(B^-1 Z)
scale = Z_orth.std(0)
Z_unit = Z_orth / scale                                   # unit-variance codes, W = U diag(scale)
c, s_ = np.cos(np.deg2rad(40)), np.sin(np.deg2rad(40))
R = np.array([[c, -s_], [s_, c]])                         # a rotation
Z_rot = Z_unit @ R                                        # z' = R^T z for every row
rec_unit = Z_unit @ (U * scale).T
rec_rot = Z_rot @ (U * scale @ R).T                       # (W R)(R^T z)
gap = max(np.abs(rec_orth - rec_skew).max(), np.abs(rec_unit - rec_rot).max())

fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
pick = np.arange(5)
for ax, Z, title in [(axes[0], Z_orth, "codes for orthonormal $W$"), (axes[1], Z_skew, "codes for $W' = WB$"),
                     (axes[2], Z_unit, "unit-variance codes"),
                     (axes[3], Z_rot, "unit-variance codes, rotated 40°")]:
    ax.scatter(*Z.T, s=6, color=COLORS[7], alpha=0.5)
    for i, col in zip(pick, COLORS):
        ax.scatter(*Z[i], s=70, color=col, edgecolor="k", zorder=3)
    cov = np.round(np.cov(Z.T, bias=True), 2) + 0.0          # + 0.0 turns a rounded -0.00 into 0.00
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=f"{title}\ncov(z) = [[{cov[0, 0]:.2f}, {cov[0, 1]:.2f}], "
                                                  f"[{cov[1, 0]:.2f}, {cov[1, 1]:.2f}]]")
    ax.set_aspect("equal", adjustable="datalim")
# the reconstructions agree to rounding error; print a bound, never the rounding noise itself
fig.suptitle("Same subspace, same reconstruction (all four differ by less than 1e-10), different coordinates",
             y=1.04)
show(savefig("fig_03_basis_invariance"))
assert gap < 1e-10
print("largest difference between the four reconstructions: below 1e-10 (rounding error)")
U_rot = U @ R                                             # the orthonormal basis, rotated by 40 degrees
Z_orth_rot = Z_orth @ R                                   # its codes R^T z, one row per point
assert np.abs(Z_orth_rot @ U_rot.T - rec_orth).max() < 1e-10
for name, Wb, Zb in [("eigenvectors U", U, Z_orth), ("U R (rotated 40 deg)", U_rot, Z_orth_rot)]:
    gram = np.round(Wb.T @ Wb, 3) + 0.0
    cz = np.round(np.cov(Zb.T, bias=True), 2) + 0.0
    print(f"{name:21s}: W^T W = {gram.tolist()}, cov(z) = {cz.tolist()}")

# %% [markdown]
# ## 5. The generative story of PCA
#
# The iterative solution looks like EM: for each $x$ the missing information is its position $z$ on the
# subspace; "complete" the data with the $z$'s, re-estimate the plane, repeat. Which generative model is it
# fitting? Constraining $z$ to unit variance amounts to assuming $z\sim\mathcal N(0,I)$. Then:
#
# $$z\sim\mathcal N(0,I_K),\qquad \hat x=Az,\qquad x=\hat x+e,\quad e\sim\mathcal N(0,D),$$
#
# with $A=U\Lambda^{1/2}$ the principal eigenvectors scaled by the **square roots** of their eigenvalues (the
# slides say "scaled by eigenvalues": then $AA^\top=U\Lambda^2U^\top$, not the covariance), and $e$ Gaussian noise
# **orthogonal to the principal subspace** (its covariance $D$ is low-rank and $A^\top D=0$). So
# $P(\hat x)=\mathcal N(0,AA^\top)$ and $P(x)=\mathcal N(0,AA^\top+D)$: PCA models Gaussian data lying close to a
# plane. The decoder of a unit-variance linear autoencoder is this generative model.
#
# This also explains why the iteration of §2 is an EM algorithm, and why its completion step has no randomness.
# Since the noise is orthogonal to the subspace, $A^\top e=0$, so $A^+x=(A^\top A)^{-1}A^\top(Az+e)=z$: the
# observation fixes its code exactly. The posterior $P(z\mid x)$ is a point mass at $A^+x$, so completing by
# expectation and completing by sampling give the same $Z=A^+X$. With $Z$ filled in, the data are complete, and
# the maximum-likelihood (least-squares) estimate of the basis is $A=XZ^+$: the two steps of §2.

# %%
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
show(savefig("fig_03_pca_generative"))

# %%
ask("pca")

# %% [markdown]
# ## 6. The linear Gaussian model (factor analysis)
#
# PCA's story only allows noise at right angles to the subspace. Real measurements seldom oblige: the errors in a
# recording are often of the same kind as the signal, so part of them lies inside the subspace the clean data
# span. The **linear Gaussian model** keeps the rest and lets the noise point anywhere, uncorrelated across
# coordinates:
#
# $$z\sim\mathcal N(0,I),\qquad x=Az+e,\qquad e\sim\mathcal N(0,D),\ D\ \text{diagonal and full rank}.$$
#
# Still $P(x)=\mathcal N(0,AA^\top+D)$ and $P(x\mid z)=\mathcal N(Az,D)$: a Gaussian whose covariance is
# low-rank plus diagonal — between a diagonal and a full covariance. Because the noise is no longer orthogonal,
# the same $x$ can be produced from many points of the plane: $x$ no longer tells us exactly which $z$ produced it,
# only a distribution over them, $P(z\mid x)$.

# %%
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
show(savefig("fig_03_noise_models"))

# %% [markdown]
# ## 7. EM for the linear Gaussian model
#
# The likelihood of $A$ and $D$ has no closed-form maximiser, but with complete data $(x,z)$ it would:
#
# $$A=\Big(\sum xz^\top\Big)\Big(\sum zz^\top\Big)^{-1},\qquad D=\mathrm{diag}\Big(\frac1N\Big(\sum xx^\top-A\sum zx^\top\Big)\Big).$$
#
# (The slides write $A\sum xz^\top$ in the $D$ update: that product is not even defined for $d\neq k$; the
# derivation gives $A\sum zx^\top$, a $d\times d$ matrix.)
#
# We do not observe $z$, so EM completes the data with the posterior, which for this model is Gaussian:
#
# $$P(z\mid x)=\mathcal N\big(z;\;A^\top(AA^\top+D)^{-1}x,\;\;I-A^\top(AA^\top+D)^{-1}A\big).$$
#
# Completing **by expectation** replaces $\sum xz^\top$ by $\sum x\,E[z\mid x]^\top$ and $\sum zz^\top$ by
# $\sum E[zz^\top\mid x]$; completing **by sampling** draws $z\sim P(z\mid x)$ and uses the complete-data formulas.
# A mechanical picture: tie each data point by elastic bands to all the places on the plane that could have
# produced it, each band as strong as $P(z\mid x)$ says; the M-step moves and reshapes the plane until the pulls
# of all the bands balance; then the bands are tied again for the new plane.

# %% [markdown]
# ### EM at work: five features, one factor, unequal noise
#
# To see what EM does, take data where factor analysis has something to find: $d=5$ features driven by one
# factor, each with its **own** noise variance (from 0.1 to 1.2), and start EM far from the answer — tiny
# loadings and $D$ equal to each feature's total variance, i.e. "everything is noise". We run 200 iterations
# of both completions and record $\log P(X)$ after each.
#
# For comparison we also fit **probabilistic PCA**: the same model $x=Az+e$, but with isotropic noise
# $e\sim\mathcal N(0,\sigma^2I)$, one variance shared by all features. Its maximum-likelihood fit spans the
# principal subspace, with $\sigma^2$ the mean of the discarded eigenvalues of the covariance (`PCA.noise_variance_`).
# Unlike the PCA story of §5, its noise is not orthogonal to the subspace.

# %%
import warnings
from course_lib import FactorAnalysis, PCA
from course_lib.factor_analysis import em_step as fa_em_step

A_5 = np.array([[1.2], [1.0], [0.9], [0.8], [0.7]])                # (d, k) = (5, 1) loadings
D_5 = np.array([0.1, 0.25, 0.5, 0.8, 1.2])                           # one noise variance per feature
N_5 = 1000                                                           # FA's EM is cheap: same data in FAST
rng = np.random.default_rng(SEED + 4)
X_5 = rng.normal(size=(N_5, 1)) @ A_5.T + rng.normal(size=(N_5, 5)) * np.sqrt(D_5)
start = dict(components_init=np.array([[0.1, -0.1, 0.1, -0.1, 0.1]]), noise_variance_init=X_5.var(0))
N_IT_FA = 200
# completion by expectation, one public EM step at a time (the loop FactorAnalysis.fit runs), N_IT_FA steps
components, noise = start["components_init"], start["noise_variance_init"]
def loglik(components, noise):
    return FactorAnalysis.from_params(components, noise, X_5.mean(0)).score(X_5) * N_5
ll_e = [loglik(components, noise)]                                   # iteration 0 = the start
for _ in range(N_IT_FA):
    components, noise = fa_em_step(X_5, components, noise)
    ll_e.append(loglik(components, noise))
ll_e = np.array(ll_e)
fa5 = FactorAnalysis.from_params(components, noise, X_5.mean(0))
# completion by sampling: tol=0 never stops a noisy fit early, so it runs all N_IT_FA iterations
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fa5_s = FactorAnalysis(1, max_iter=N_IT_FA, tol=0.0, completion="sampling", random_state=SEED, **start).fit(X_5)
ll_s = np.concatenate([[ll_e[0]], fa5_s.loglike_])
ppca5 = PCA(n_components=1).fit(X_5)

fig, axes = plt.subplots(1, 3, figsize=(16, 4.3))
it = np.arange(len(ll_e))
ax = axes[0]
it_s = np.arange(len(ll_s))
ax.plot(it_s, ll_s, color=COLORS[1], alpha=0.7, label="completion by sampling")
ax.plot(it, ll_e, color=COLORS[0], label="completion by expectation")
ax.set(xlabel="EM iteration (0 = the start)", ylabel=r"$\log P(X)$ (nats)", title="From the start to the maximum",
       xscale="symlog")
ax.legend(loc="lower right")
ax = axes[1]
tail = it >= 40
ax.plot(it_s[40:], ll_s[40:], color=COLORS[1], alpha=0.8, label="by sampling: wanders below")
ax.plot(it[tail], ll_e[tail], color=COLORS[0], lw=2.2, label="by expectation: never goes down")
ax.set(xlabel="EM iteration", ylabel=r"$\log P(X)$ (nats)", title=f"Near the maximum (iterations 40 to {N_IT_FA})")
ax.legend(loc="lower right")
ax = axes[2]
j = np.arange(1, 6)
w = 0.27
ax.bar(j - w, D_5, w, color=COLORS[7], label="true $D$")
ax.bar(j, fa5.noise_variance_, w, color=COLORS[0], label="factor analysis (EM)")
ax.bar(j + w, np.full(5, ppca5.noise_variance_), w, color=COLORS[3], label=r"probabilistic PCA: one $\sigma^2$")
ax.set(xlabel="feature $j$", ylabel="noise variance $D_{jj}$", title="Recovered noise variances", xticks=j)
ax.legend(loc="upper left")
fig.tight_layout()
show(savefig("fig_03_factor_analysis_em"))

steps_down = np.diff(ll_e)
display(Markdown(
    "| feature | true $D_{jj}$ | factor analysis | probabilistic PCA $\\sigma^2$ |\n|---|---|---|---|\n"
    + "\n".join(f"| {i + 1} | {t:.2f} | {e:.3f} | {ppca5.noise_variance_:.3f} |"
                for i, (t, e) in enumerate(zip(D_5, fa5.noise_variance_)))))
print(f"completion by expectation: {N_IT_FA} iterations, log P(X) from {ll_e[0]:.1f} to {ll_e[-1]:.1f}; "
      f"non-decreasing: {bool(steps_down.min() > -1e-6)} (no step down larger than 1e-6 nats)")
print(f"completion by sampling: {len(fa5_s.loglike_)} iterations; from iteration 40 on, log P(X) moves between {ll_s[40:].min():.1f} and "
      f"{ll_s[40:].max():.1f}; it rises in {int((np.diff(ll_s[40:]) > 0).sum())} steps and falls in "
      f"{int((np.diff(ll_s[40:]) < 0).sum())}")
print(f"first 10 log-likelihood values of EM: {np.round(ll_e[:10], 1).tolist()}")
print("true loading ", A_5[:, 0], "\nestimated    ", np.round(np.abs(fa5.components_[0]), 3), "(up to sign)")

# %% [markdown]
# EM does not start at the answer: from "everything is noise" it needs a few dozen iterations before the
# log-likelihood levels off, and with completion by expectation every single step goes up (the guarantee of
# lecture 2). Completion by sampling climbs just as fast but then jitters below the maximum, because each
# iteration re-estimates from one random completion. The recovered $D$ follows the true variances feature by
# feature; probabilistic PCA can only offer one $\sigma^2$ for all five, too large for the clean features and
# too small for the noisy ones.
#
# ### Where on the plane did $x$ come from?
#
# In two dimensions we can draw the posterior itself: for each of four points, the stretch of the fitted line
# (the "plane" of one factor) that $P(z\mid x)$ covers. (With one factor in 2-D the model has four parameters
# for a covariance with three free entries, so several $(A,D)$ fit equally well; this picture is only about the
# posterior, not about recovering $D$.)

# %%
from course_lib.plotting import gaussian_ellipse

N_fa = 300 if FAST else 1000
rng = np.random.default_rng(SEED + 3)
X_fa = rng.normal(size=(N_fa, 1)) * A_true + rng.normal(size=(N_fa, 2)) * np.sqrt(D_true)
fa = FactorAnalysis(n_components=1, max_iter=200, tol=1e-10).fit(X_fa)
post_mean, post_cov = fa.posterior(X_fa[:4])
A_hat = fa.components_[0]

fig, ax = plt.subplots(figsize=(6.5, 4.6))
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
show(savefig("fig_03_fa_posterior"))
print(f"ELBO at the exact posterior {fa.elbo(X_fa, *fa.posterior(X_fa)):.3f} = log-likelihood "
      f"{fa.score(X_fa) * N_fa:.3f}")

# %% [markdown]
# ## Summary
#
# * PCA finds the subspace of least squared projection error: in closed form (top eigenvectors) or by
#   alternating $Z\leftarrow W^+X$, $W\leftarrow XZ^+$ — which is what a linear autoencoder learns, too.
# * The basis is unique only up to an invertible transform. Orthonormal columns alone, or unit-variance codes
#   alone, fix the scale but leave a rotation $W\to WR$ free; orthonormal columns with uncorrelated codes give
#   the eigenvectors $U$, unit-variance codes with orthogonal columns give $U\Lambda^{1/2}$ (both up to signs and
#   order).
# * With noise orthogonal to the subspace, $P(z\mid x)$ is a point mass: the alternation $Z=A^+X$, $A=XZ^+$ is EM
#   with a deterministic completion.
# * PCA is a generative model: Gaussian $z$ on a plane plus noise orthogonal to it. Factor analysis (the
#   linear Gaussian model) allows diagonal noise in any direction, and is fitted by EM with
#   $P(z\mid x)=\mathcal N(A^\top(AA^\top+D)^{-1}x,\;I-A^\top(AA^\top+D)^{-1}A)$.
# * Next: what if the data lie near a **curved** surface? Replace $Az$ by a neural network — the VAE.
