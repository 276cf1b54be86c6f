"""Reference timing for bench/simulators.ts: RABI's spatial_sir update (30 x 30, T = 10) written
batched in PyTorch as RABI runs it (batches of 100 rows, one uniform grid per step shared by the
batch), one thread. Prints sims/s (wall) and sims per CPU-second. Usage: python spatial_sir_throughput.py N
"""
import sys
import time

import torch


def simulate(theta, grid=30, steps=10, err=0.05):
    b = theta.shape[0]
    beta = theta[:, 0].view(b, 1, 1, 1)
    gamma = theta[:, 1].view(b, 1, 1, 1)
    kernel = torch.ones(1, 1, 3, 3)
    inf = torch.bernoulli(torch.full((b, 1, grid, grid), 4 / grid**2))
    rec = torch.zeros_like(inf)
    for _ in range(steps):
        if inf.sum() == 0:
            break
        sus = (1 - rec) * (1 - inf)
        pressure = torch.nn.functional.conv2d(inf, kernel, padding=1) * sus * beta / 8
        new_inf = (((pressure > torch.rand(grid, grid)) + inf) * (1 - rec)) >= 1
        new_rec = ((inf * gamma > torch.rand(grid, grid)) + rec) >= 1
        inf, rec = new_inf.float(), new_rec.float()
    return torch.distributions.Beta(inf + err, 1 - inf + err).sample().reshape(b, grid * grid)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    torch.set_num_threads(1)
    torch.manual_seed(0)
    theta = torch.exp(0.5 * torch.randn(n, 2))
    simulate(theta[:100])
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(0, n, 100):
        simulate(theta[i : i + 100])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"torch spatial_sir n={n}: {n / wall:,.0f} sims/s wall, {n / cpu:,.0f} sims per CPU-second")


if __name__ == "__main__":
    main()
