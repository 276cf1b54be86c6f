"""The exact FIM-trace training step and the L2-PGD reverse-KL attack step in PyTorch, one thread,
for the same model and shapes as robustsbi (bench/suite.ts compares them with the tfjs/wasm side).

Model (RABI's affine MAF as robustsbi builds it, sbi/estimators/maf.ts): theta and x are z-scored
inside the model; 3 affine autoregressive transforms, each conditioned by its own MADE (its own
random variable order) with hidden [100, 100] ReLU; theta enters the first layer through masked
weights, the z-scored x through an unmasked block into the same first layer; the output layer gives
mu (columns 0..D-1) and the log-scale s (D..2D-1), s clamped to [-7, 5];
z_i = (u_i - mu_i) * exp(-s_i), base N(0, I). rsample is the naive inverse: per transform, D MADE
passes starting from zeros (after pass t the first t dimensions of the order are exact).
Task: gaussian_linear (theta ~ N(0, I_10), x ~ N(A theta, 0.1^2 I), A diagonal as
sbi/tasks/gaussian_linear.ts).

Parts (each in a child process of its own, so that each peak RSS is its own):
  plain  one NPE step: NLL of a batch of 512, backward, global grad-norm clip 75, Adam 1e-3.
  fim    one exact FIM-trace step with RABI's semantics: M = 5 reparameterized draws
         theta_m = rsample(x) that stay attached to the weights; the score
         s = d log q(theta_m | x') / dx' taken in a separate copy x' of x (detached, one row per
         draw); t_b = mean_m |s_mb|^2; rows with a non-finite t_b dropped; R = beta * mean_b t_b;
         its weight gradient by double backprop (create_graph=True), passed through RABI's EMA
         (weight 0.85 on the new gradient, bias-corrected) and added to the NLL gradient before the
         clip; one Adam step. Batches of 512 from 10,000 training rows.
  pgd    one L2-PGD step for 100 test x on the rKL objective: per row the mean over M = 5 draws
         theta_m = rsample(x~) of log q(theta_m | x~) - log q(theta_m | x), x~ = x + delta; its
         gradient in delta; delta += step * g / max(|g|, 1e-6); x + delta clipped to the test box;
         delta projected onto the L2 ball of radius eps. As bench/attack-cost.ts runs robustsbi's:
         the model at random initialization, z-score from 2,000 training rows, eps 1, 5 steps
         (so the auto step size min(20 eps / steps, eps) = 1).

Each part: a few warm-up steps, then --reps repetitions of K steps; the figures are the median
repetition's per-step time, by CPU time (time.process_time) and by wall time. Prints one JSON line.

  python bench/torch/fim_pgd_cost.py [--part all|plain|fim|pgd] [--reps 5] [--seed 0]
"""
import argparse
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np
import torch

# Peak RSS once torch is imported, before any work: most of each part's peak is the library itself.
IMPORT_RSS_MB = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

A_DIAG = [-2.633e-1, -1.9402, 1.6822, -2.9684e-1, -3.1292e-2, -1.025, 5.6811e-2, 2.9649e-1, 1.2073, -1.7704]
D = 10  # theta dimension
DX = 10  # x dimension
HIDDEN = (100, 100)
TRANSFORMS = 3
S_MIN, S_MAX = -7.0, 5.0
BATCH = 512
M = 5
BETA = 0.01  # the suite's beta; the step's cost does not depend on it (only beta = 0 is skipped)
EMA_DECAY = 0.85
CLIP = 75.0
PGD_POINTS = 100
PGD_EPS = 1.0
PGD_STEPS_OF_ATTACK = 5
GRAD_FLOOR = 1e-6
TINY = 1e-12


def simulate(n, gen):
    theta = torch.randn(n, D, generator=gen)
    x = theta * torch.tensor(A_DIAG) + 0.1 * torch.randn(n, DX, generator=gen)
    return theta, x


class ZScore:
    def __init__(self, theta, x):
        self.t_mean, self.t_std = theta.mean(0), theta.std(0).clamp_min(1e-8)
        self.x_mean, self.x_std = x.mean(0), x.std(0).clamp_min(1e-8)
        self.t_log_scale = torch.log(self.t_std).sum()


class MaskedConditioner(torch.nn.Module):
    """One MADE: (u [N, D], context term [N, H0]) -> (mu, clamped s), output i from u_<i in order."""

    def __init__(self, order, gen):
        super().__init__()
        h0, h1 = HIDDEN
        position = np.empty(D, dtype=np.int64)
        position[np.asarray(order)] = np.arange(1, D + 1)  # input degree: 1 + place in the order
        deg0, deg1 = np.arange(h0) % D, np.arange(h1) % D  # degree-0 units see the context only
        self.register_buffer("m_in", torch.tensor(position[None, :] <= deg0[:, None], dtype=torch.float32))
        self.register_buffer("m_hid", torch.tensor(deg0[None, :] <= deg1[:, None], dtype=torch.float32))
        out_deg = np.concatenate([position, position])  # mu then s, both for dimension i at column i
        self.register_buffer("m_out", torch.tensor(deg1[None, :] < out_deg[:, None], dtype=torch.float32))

        def uniform(shape, fan_in):
            b = 1.0 / math.sqrt(fan_in)
            return torch.nn.Parameter((torch.rand(*shape, generator=gen) * 2 - 1) * b)

        self.w_theta = uniform((h0, D), D + DX)
        self.w_ctx = uniform((h0, DX), D + DX)
        self.b_in = torch.nn.Parameter(torch.zeros(h0))
        self.w_hid = uniform((h1, h0), h0)
        self.b_hid = torch.nn.Parameter(torch.zeros(h1))
        self.w_out = uniform((2 * D, h1), h1)
        self.b_out = torch.nn.Parameter(torch.zeros(2 * D))

    def prepare(self, xz, repeat=1):
        """The masked weights and the context term, once per call (not once per sampler pass)."""
        ctx = torch.nn.functional.linear(xz, self.w_ctx, self.b_in)
        if repeat > 1:
            ctx = ctx.repeat(repeat, 1)  # row m * B + b is x_b (sample-major)
        return ctx, self.w_theta * self.m_in, self.w_hid * self.m_hid, self.w_out * self.m_out

    def forward(self, u, state):
        ctx, w_in, w_hid, w_out = state
        h = torch.relu(u @ w_in.t() + ctx)
        h = torch.relu(torch.nn.functional.linear(h, w_hid, self.b_hid))
        p = torch.nn.functional.linear(h, w_out, self.b_out)
        return p[:, :D], p[:, D:].clamp(S_MIN, S_MAX)


class AffineFlow(torch.nn.Module):
    def __init__(self, zscore, gen):
        super().__init__()
        self.z = zscore
        orders = [torch.randperm(D, generator=gen).tolist() for _ in range(TRANSFORMS)]
        self.conds = torch.nn.ModuleList(MaskedConditioner(o, gen) for o in orders)

    def xz(self, x):
        return (x - self.z.x_mean) / self.z.x_std

    def log_prob(self, theta, x):
        u = (theta - self.z.t_mean) / self.z.t_std
        xz = self.xz(x)
        log_det = torch.zeros(u.shape[0])
        for c in self.conds:
            mu, s = c(u, c.prepare(xz))
            u = (u - mu) * torch.exp(-s)
            log_det = log_det - s.sum(1)
        base = -0.5 * (u * u).sum(1) - 0.5 * D * math.log(2 * math.pi)
        return base + log_det - self.z.t_log_scale

    def rsample(self, x, n, gen):
        """n reparameterized draws per row of x: [n, B, D], differentiable in the weights and x."""
        b = x.shape[0]
        y = torch.randn(n * b, D, generator=gen)
        xz = self.xz(x)
        for c in reversed(self.conds):
            state = c.prepare(xz, n)
            u = torch.zeros_like(y)
            for _ in range(D):
                mu, s = c(u, state)
                u = y * torch.exp(s) + mu
            y = u
        return (y * self.z.t_std + self.z.t_mean).reshape(n, b, D)


def nll(model, theta, x):
    return -model.log_prob(theta, x).mean()


def fim_regularizer(model, x, gen):
    """beta * mean over the finite rows of t_b = mean_m |d log q(theta_m | x') / dx'|^2."""
    b = x.shape[0]
    theta = model.rsample(x, M, gen).reshape(M * b, D)  # attached to the weights
    xr = x.detach().repeat(M, 1).requires_grad_(True)  # the separate copy x', a row per draw
    (score,) = torch.autograd.grad(model.log_prob(theta, xr).sum(), xr, create_graph=True)
    t = (score * score).sum(1).reshape(M, b).mean(0)
    finite = torch.isfinite(t)
    if not bool(finite.any()):
        return torch.zeros(())
    return BETA * t[finite].mean()


class Ema:
    """RABI's gradient EMA: m = d g + (1 - d) m, returned as m / (1 - (1 - d)^t)."""

    def __init__(self, decay):
        self.d, self.t, self.m = decay, 0, None

    def update(self, grads):
        self.t += 1
        grads = [torch.nan_to_num(g) for g in grads]
        if self.m is None:
            self.m = [self.d * g for g in grads]
        else:
            self.m = [self.d * g + (1 - self.d) * m for g, m in zip(grads, self.m)]
        c = 1 - (1 - self.d) ** self.t
        return [m / c for m in self.m]


def train_part(part, reps, seed):
    gen = torch.Generator().manual_seed(seed)
    theta, x = simulate(10000, gen)
    model = AffineFlow(ZScore(theta, x), gen)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    ema = Ema(EMA_DECAY)
    perm, at = torch.randperm(10000, generator=gen), 0

    def step():
        nonlocal perm, at
        if at + BATCH > perm.numel():
            perm, at = torch.randperm(10000, generator=gen), 0
        idx = perm[at : at + BATCH]
        at += BATCH
        tb, xb = theta[idx], x[idx]
        grads = torch.autograd.grad(nll(model, tb, xb), params)
        if part == "fim":
            reg = fim_regularizer(model, xb, gen)
            extra = torch.autograd.grad(reg, params, allow_unused=True)
            extra = [torch.zeros_like(p) if g is None else g for p, g in zip(params, extra)]
            grads = [g + e for g, e in zip(grads, ema.update(extra))]
        for p, g in zip(params, grads):
            p.grad = g
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()

    steps = 50 if part == "plain" else 8
    return timed(step, warmup=3, reps=reps, steps=steps)


def pgd_part(reps, seed):
    gen = torch.Generator().manual_seed(seed)
    tr_theta, tr_x = simulate(2000, gen)
    model = AffineFlow(ZScore(tr_theta, tr_x), gen)
    for p in model.parameters():
        p.requires_grad_(False)  # the attack differentiates in x~ only
    _, x = simulate(PGD_POINTS, gen)
    lo, hi = x.min().item(), x.max().item()
    step_size = min(20 * PGD_EPS / PGD_STEPS_OF_ATTACK, PGD_EPS)

    def rows_norm(v, floor):
        return v.norm(dim=1, keepdim=True).clamp_min(floor)

    d0 = torch.randn(PGD_POINTS, DX, generator=gen)
    r0 = torch.rand(PGD_POINTS, 1, generator=gen) ** (1 / DX) * PGD_EPS
    delta = (x + d0 / rows_norm(d0, TINY) * r0).clamp(lo, hi) - x
    x_rep = x.repeat(M, 1)

    def step():
        nonlocal delta
        d = delta.detach().requires_grad_(True)
        x_adv = x + d
        th = model.rsample(x_adv, M, gen).reshape(M * PGD_POINTS, D)
        kl = (model.log_prob(th, x_adv.repeat(M, 1)) - model.log_prob(th, x_rep)).reshape(M, PGD_POINTS).mean(0)
        (g,) = torch.autograd.grad(kl.sum(), d)
        with torch.no_grad():
            moved = d + step_size * g / rows_norm(g, GRAD_FLOOR)
            moved = (x + moved).clamp(lo, hi) - x
            delta = moved * torch.clamp(PGD_EPS / rows_norm(moved, TINY), max=1.0)

    out = timed(step, warmup=2, reps=reps, steps=10)
    out["points_steps_per_cpu_s"] = round(PGD_POINTS * 1000 / out["ms_per_step_cpu"], 1)
    out["points_steps_per_s"] = round(PGD_POINTS * 1000 / out["ms_per_step_wall"], 1)
    out["points"] = PGD_POINTS
    return out


def timed(step, warmup, reps, steps):
    for _ in range(warmup):
        step()
    cpu, wall = [], []
    for _ in range(reps):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(steps):
            step()
        cpu.append(1000 * (time.process_time() - c0) / steps)
        wall.append(1000 * (time.perf_counter() - w0) / steps)
    order = sorted(range(reps), key=lambda i: cpu[i])
    mid = order[(reps - 1) // 2]  # the median repetition by CPU time (the lower middle of an even count)
    return {
        "ms_per_step_cpu": round(cpu[mid], 3),
        "ms_per_step_wall": round(wall[mid], 3),
        "reps_ms_per_step_cpu": [round(v, 3) for v in cpu],
        "reps_ms_per_step_wall": [round(v, 3) for v in wall],
        "steps_per_rep": steps,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_import_mb": IMPORT_RSS_MB,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--part", choices=["all", "plain", "fim", "pgd"], default="all")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.part == "all":
        out = {"impl": "torch", "torch_version": torch.__version__, "threads": 1}
        for part in ("plain", "fim", "pgd"):
            r = subprocess.run(
                [sys.executable, __file__, "--part", part, "--reps", str(a.reps), "--seed", str(a.seed)],
                capture_output=True, text=True,
            )
            if r.returncode != 0:
                sys.stderr.write(r.stderr)
                sys.exit(f"part {part} failed with exit code {r.returncode}")
            out[part] = json.loads(r.stdout.strip().splitlines()[-1])
        out["fim"]["ratio_to_plain_cpu"] = round(out["fim"]["ms_per_step_cpu"] / out["plain"]["ms_per_step_cpu"], 2)
        print(json.dumps(out))
        return
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    r = pgd_part(a.reps, a.seed) if a.part == "pgd" else train_part(a.part, a.reps, a.seed)
    r["part"] = a.part
    r["threads"] = torch.get_num_threads()
    print(json.dumps(r))


if __name__ == "__main__":
    main()
