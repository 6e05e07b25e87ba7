"""VAE.fit against a plain hand-written PyTorch training loop of the same model, side by side.

Two settings, each run with both trainers interleaved epoch by epoch (the plain loop's epoch runs inside
VAE.fit's per-epoch callback), so a busy machine slows both alike:

1. 8x8 digits (course_lib.data.load_digits), 64-256-256-8 encoder and mirrored decoder, Bernoulli likelihood,
   Adam (lr 1e-3), batch 128: test negative ELBO after a fixed number of epochs (target: within 0.3 nats of
   the plain loop) and time per epoch (target: at most 1.1x the plain loop's).
2. A 60,000 x 784 synthetic array, 784-400-20, batch 128: time per epoch.

Both trainers start from the same initial weights; they draw their own random numbers. The test negative
ELBO of both is measured by the same code (VAE.elbo with 10 draws of z, fixed seed).

    python benchmarks/bench_vae.py                 # full run (200 digit epochs, 2 synthetic epochs)
    python benchmarks/bench_vae.py --quick         # smoke setting, seconds
    python benchmarks/bench_vae.py --device cuda   # on a GPU
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from course_lib.data import load_digits
from course_lib.vae import VAE


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PlainLoop:
    """The textbook VAE training loop: a preloaded tensor, a random permutation per epoch, Adam."""

    def __init__(self, encoder, decoder, latent_dim: int, X: torch.Tensor, lr: float, batch_size: int, seed: int):
        self.enc, self.dec, self.k, self.X, self.bs = encoder, decoder, latent_dim, X, batch_size
        self.opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)
        self.gen = torch.Generator(device=X.device)
        self.gen.manual_seed(seed)

    def epoch(self) -> float:
        X, n, k = self.X, self.X.shape[0], self.k
        perm = torch.randperm(n, generator=self.gen, device=X.device)
        total = torch.zeros((), device=X.device, dtype=X.dtype)
        for start in range(0, n, self.bs):
            xb = X[perm[start:start + self.bs]]
            h = self.enc(xb)
            mu, logvar = h[:, :k], h[:, k:]
            eps = torch.randn(mu.shape, generator=self.gen, device=X.device, dtype=X.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps
            rec = F.binary_cross_entropy_with_logits(self.dec(z), xb, reduction="none").sum(-1)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
            loss = (rec + kl).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.detach() * xb.shape[0]
        return float(total) / n


def side_by_side(X: torch.Tensor, hidden, latent: int, epochs: int, lr: float, batch_size: int, seed: int,
                 warmup: bool = True):
    """Train VAE.fit and the plain loop together, alternating epochs. Returns both models and epoch times."""
    if warmup:   # one throwaway epoch of each on a slice, so first-use costs of these shapes hit neither timing
        side_by_side(X[:4 * batch_size], hidden, latent, 1, lr, batch_size, seed, warmup=False)
    ours = VAE(X.shape[1], latent, hidden_dims=hidden, random_state=seed).to(X.device)
    plain_model = copy.deepcopy(ours)                      # same initial weights
    plain = PlainLoop(plain_model.encoder, plain_model.decoder, latent, X, lr, batch_size, seed + 1)
    t_ours: list[float] = []
    t_plain: list[float] = []
    plain_losses: list[float] = []
    clock = {"t": 0.0}

    def after_epoch(model, epoch, history):
        _sync(X.device)
        t_ours.append(time.perf_counter() - clock["t"])
        t0 = time.perf_counter()
        plain_losses.append(plain.epoch())
        _sync(X.device)
        t_plain.append(time.perf_counter() - t0)
        clock["t"] = time.perf_counter()

    clock["t"] = time.perf_counter()
    ours.fit(X, epochs=epochs, batch_size=batch_size, lr=lr, progress=False, callback=after_epoch)
    return ours, plain_model, t_ours, t_plain, plain_losses


def _median_skip_first(ts: list[float]) -> float:
    return statistics.median(ts[1:] if len(ts) > 1 else ts)


def _test_neg_elbo(model: VAE, X: torch.Tensor) -> float:
    with torch.no_grad():
        return -float(model.elbo(X, n_samples=10, random_state=123).mean())


def bench_digits(args, device) -> dict:
    Xtr, _ = load_digits("train")
    Xte, _ = load_digits("test")
    Xtr = torch.tensor(Xtr, dtype=torch.float32, device=device)
    Xte = torch.tensor(Xte, dtype=torch.float32, device=device)
    ours, plain, t_o, t_p, _ = side_by_side(Xtr, (256, 256), 8, args.epochs, 1e-3, 128, args.seed)
    res = {"ours_nelbo": _test_neg_elbo(ours, Xte), "plain_nelbo": _test_neg_elbo(plain, Xte),
           "ours_epoch_s": _median_skip_first(t_o), "plain_epoch_s": _median_skip_first(t_p)}
    res["nelbo_diff"] = res["ours_nelbo"] - res["plain_nelbo"]
    res["time_ratio"] = res["ours_epoch_s"] / res["plain_epoch_s"]
    print(f"digits ({args.epochs} epochs, 64-256-256-8, batch 128, {device}):")
    print(f"  test negative ELBO  ours {res['ours_nelbo']:.3f}  plain {res['plain_nelbo']:.3f}  "
          f"diff {res['nelbo_diff']:+.3f} nats  (target <= +0.3)")
    print(f"  time per epoch      ours {res['ours_epoch_s'] * 1e3:.1f} ms  plain {res['plain_epoch_s'] * 1e3:.1f} ms  "
          f"ratio {res['time_ratio']:.3f}  (target <= 1.1)")
    return res


def bench_synthetic(args, device) -> dict:
    g = torch.Generator().manual_seed(args.seed)
    X = torch.rand(args.rows, 784, generator=g).to(device)
    _, _, t_o, t_p, _ = side_by_side(X, (400,), 20, args.synthetic_epochs, 1e-3, 128, args.seed)
    res = {"ours_epoch_s": statistics.median(t_o), "plain_epoch_s": statistics.median(t_p)}
    res["time_ratio"] = res["ours_epoch_s"] / res["plain_epoch_s"]
    print(f"synthetic {args.rows} x 784 ({args.synthetic_epochs} epochs, 784-400-20, batch 128, {device}):")
    print(f"  time per epoch      ours {res['ours_epoch_s']:.3f} s  plain {res['plain_epoch_s']:.3f} s  "
          f"ratio {res['time_ratio']:.3f}  (target <= 1.1)")
    return res


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200, help="digit epochs (default 200)")
    parser.add_argument("--synthetic-epochs", type=int, default=2, help="epochs on the synthetic array (default 2)")
    parser.add_argument("--rows", type=int, default=60000, help="rows of the synthetic array (default 60000)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, or auto (CUDA when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke setting: 3 digit epochs, 2,000 synthetic rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.synthetic_epochs, args.rows = 3, 1, 2000
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}")
    results = {"digits": bench_digits(args, device)}
    if not args.skip_synthetic:
        results["synthetic"] = bench_synthetic(args, device)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
