"""MAF training throughput in PyTorch, the same model and loop as robustsbi's tfjs MAF.

Model: 3 affine autoregressive transforms of the z-scored theta (z_i = (u_i - mu_i) * exp(-s_i),
s clipped to [-7, 5]), each conditioned by a MADE with hidden [100, 100] ReLU whose first layer also
takes the z-scored x unmasked; a random variable order per transform; base N(0, I).
Loop: Adam 1e-3, batch 512, shuffled, global grad-norm clip 75, a validation pass per epoch and a
copy of the weights on every validation improvement (as robustsbi's trainNPE).
Task: gaussian_linear (theta ~ N(0, I), x ~ N(A theta, 0.1^2 I), RABI's diagonal A).

Prints one JSON line. simulations_per_second = training rows processed per epoch * epochs / the
wall time of those epochs (setup, simulation and z-scoring excluded).
"""
import argparse
import json
import math
import resource
import time

import numpy as np
import torch

A_DIAG = [-2.633e-1, -1.9402, 1.6822, -2.9684e-1, -3.1292e-2, -1.025, 5.6811e-2, 2.9649e-1, 1.2073, -1.7704]  # as sbi/tasks/gaussian_linear.ts


def made_masks(dim, hidden, order, params_per_dim):
    """0/1 masks [out, in] (torch Linear layout) so that output i depends only on u_<i in `order`."""
    in_deg = np.empty(dim, dtype=np.int64)
    for k, d in enumerate(order):
        in_deg[d] = k + 1
    # Hidden degrees cycle through 0..dim-1: degree-0 units see only the context, so the first
    # dimension of the order still depends on x.
    hid_deg = [np.arange(h) % dim for h in hidden]
    masks = [(in_deg[None, :] <= hid_deg[0][:, None]).astype(np.float32)]
    for a, b in zip(hid_deg[:-1], hid_deg[1:]):
        masks.append((a[None, :] <= b[:, None]).astype(np.float32))
    out_deg = np.tile(in_deg, params_per_dim)  # param-major: column p * dim + i
    masks.append((hid_deg[-1][None, :] < out_deg[:, None]).astype(np.float32))
    return [torch.from_numpy(m) for m in masks]


class Made(torch.nn.Module):
    def __init__(self, dim, ctx_dim, hidden, order):
        super().__init__()
        self.dim = dim
        sizes = [dim] + hidden + [2 * dim]
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.ctx = torch.nn.Linear(ctx_dim, hidden[0], bias=False)
        for i, m in enumerate(made_masks(dim, hidden, order, 2)):
            self.register_buffer(f"mask{i}", m)

    def forward(self, u, x):
        h = u
        for i, layer in enumerate(self.layers):
            h = torch.nn.functional.linear(h, layer.weight * getattr(self, f"mask{i}"), layer.bias)
            if i == 0:
                h = h + self.ctx(x)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return h[:, : self.dim], h[:, self.dim :]


class Maf(torch.nn.Module):
    def __init__(self, dim, ctx_dim, hidden=(100, 100), transforms=3, s_min=-7.0, s_max=5.0, gen=None):
        super().__init__()
        self.dim, self.s_min, self.s_max = dim, s_min, s_max
        orders = [torch.randperm(dim, generator=gen).tolist() for _ in range(transforms)]
        self.mades = torch.nn.ModuleList(Made(dim, ctx_dim, list(hidden), o) for o in orders)

    def log_prob(self, u, x):
        log_det = torch.zeros(u.shape[0])
        for made in self.mades:
            mu, s = made(u, x)
            s = s.clamp(self.s_min, self.s_max)
            u = (u - mu) * torch.exp(-s)
            log_det = log_det - s.sum(1)
        base = -0.5 * (u * u).sum(1) - 0.5 * self.dim * math.log(2 * math.pi)
        return base + log_det


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)

    setup_start = time.perf_counter()
    theta = torch.randn(a.n, 10, generator=gen)
    x = theta * torch.tensor(A_DIAG) + 0.1 * torch.randn(a.n, 10, generator=gen)
    n_val = int(round(a.n * a.val_fraction))
    n_train = a.n - n_val
    tr_t, va_t, tr_x, va_x = theta[:n_train], theta[n_train:], x[:n_train], x[n_train:]
    t_mean, t_std = tr_t.mean(0), tr_t.std(0).clamp_min(0.05)
    x_mean, x_std = tr_x.mean(0), tr_x.std(0).clamp_min(0.05)
    zt = lambda t: (t - t_mean) / t_std
    zx = lambda v: (v - x_mean) / x_std
    model = Maf(10, 10, gen=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    setup_s = time.perf_counter() - setup_start

    start = time.perf_counter()
    cpu_start = time.process_time()
    train_loss = val_loss = float("nan")
    best_val, best_state = float("inf"), None
    for _ in range(a.epochs):
        model.train()
        perm = torch.randperm(n_train, generator=gen)
        total = 0.0
        for s in range(0, n_train, a.batch):
            idx = perm[s : s + a.batch]
            # log|d z(theta)/d theta| includes -sum log std of the theta z-score.
            loss = -(model.log_prob(zt(tr_t[idx]), zx(tr_x[idx])) - torch.log(t_std).sum()).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 75.0)
            opt.step()
            total += loss.item() * len(idx)
        train_loss = total / n_train
        model.eval()
        with torch.no_grad():
            val_loss = -(model.log_prob(zt(va_t), zx(va_x)) - torch.log(t_std).sum()).mean().item()
        # Keep the best weights, as robustsbi's trainNPE does on every improvement.
        if val_loss < best_val:
            best_val = val_loss
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    elapsed = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start

    print(json.dumps({
        "impl": "torch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "n": a.n, "n_train": n_train, "epochs": a.epochs, "batch": a.batch,
        "setup_s": round(setup_s, 3),
        "train_s": round(elapsed, 3),
        "simulations_per_second": round(n_train * a.epochs / elapsed, 1),
        "train_cpu_s": round(cpu_s, 3),
        "simulations_per_cpu_second": round(n_train * a.epochs / cpu_s, 1),
        "final_train_loss": round(train_loss, 4), "final_val_loss": round(val_loss, 4),
        "best_val_loss": round(best_val, 4), "kept_tensors": len(best_state or {}),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
