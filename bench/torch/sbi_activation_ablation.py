"""sbi 0.27's NPE() on RABI's gaussian_linear with its MADE's activation swapped (tanh or relu).

Why: robustsbi's ReLU default trailed sbi on the Gaussian tasks; this isolates the activation on
sbi's own MAF (BENCHMARKS.md, "tanh MADEs on the fused step"). Simulates N rows with numpy (theta ~
N(0, I_10), x = A theta + 0.1 eps, A = RABI's diagonal), trains NPE() with sbi's defaults but the
given activation, and prints KL(p || q) against the exact posterior at 10 prior-predictive
observations (10,000 exact samples each).

  ~/.cache/robustsbi/torch-venv/bin/python bench/torch/sbi_activation_ablation.py tanh|relu N SEED
"""
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from torch.nn import functional as F

A = np.array([-2.633e-1, -1.9402, 1.6822, -2.9684e-1, -3.1292e-2,
              -1.025, 5.6811e-2, 2.9649e-1, 1.2073, -1.7704])
D, S = 10, 0.1


def main():
    activation, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if activation not in ("tanh", "relu"):
        raise SystemExit(f"activation must be tanh or relu, not {activation!r}")
    torch.set_num_threads(1)
    # sbi writes tensorboard logs under ./sbi-logs: keep them out of the caller's directory.
    os.chdir(tempfile.mkdtemp(prefix="sbi-ablation-"))
    import sbi.neural_nets.net_builders.flow as flow
    from nflows import transforms
    from sbi.inference import NPE

    act = torch.tanh if activation == "tanh" else F.relu
    base = transforms.MaskedAffineAutoregressiveTransform

    class Swapped(base):
        def __init__(self, *a, **k):
            k["activation"] = act
            super().__init__(*a, **k)

    # build_maf looks the class up in the module it imported, so the swap goes there.
    flow.transforms.MaskedAffineAutoregressiveTransform = Swapped

    rng = np.random.default_rng(seed)
    th = rng.standard_normal((n, D))
    x = A * th + S * rng.standard_normal((n, D))
    orng = np.random.default_rng(1234)
    xo = A * orng.standard_normal((10, D)) + S * orng.standard_normal((10, D))
    torch.manual_seed(seed)
    prior = torch.distributions.MultivariateNormal(torch.zeros(D), torch.eye(D))
    inf = NPE(prior=prior, show_progress_bars=False)
    inf.append_simulations(torch.tensor(th, dtype=torch.float32), torch.tensor(x, dtype=torch.float32))
    t0 = time.process_time()
    inf.train()
    cpu = time.process_time() - t0
    post = inf.build_posterior()
    kls = []
    for k in range(10):
        var = 1 / (1 + A**2 / S**2)
        mean = var * A * xo[k] / S**2
        ref = mean + np.sqrt(var) * np.random.default_rng(k).standard_normal((10000, D))
        lp = (-0.5 * (ref - mean) ** 2 / var - 0.5 * np.log(2 * np.pi * var)).sum(1)
        with torch.no_grad():
            lq = post.log_prob(torch.tensor(ref, dtype=torch.float32),
                               x=torch.tensor(xo[k:k + 1], dtype=torch.float32),
                               norm_posterior=False).numpy()
        kls.append(float(np.mean(lp - lq)))
    s = inf._summary
    print(json.dumps({
        "activation": activation, "n": n, "seed": seed,
        "epochs": int(s["epochs_trained"][-1]),
        "bestValLoss": float(s["best_validation_loss"][-1]),
        "trainCpuS": round(cpu, 1),
        "klMean": float(np.mean(kls)), "klMedian": float(np.median(kls)),
        "kl": [round(v, 3) for v in kls],
    }))


if __name__ == "__main__":
    main()
