"""Trains sbi's NPE() with its defaults on a training set the TypeScript bench wrote, and samples it.

The parity bench (bench/sbi-parity.ts) writes a directory holding:
  meta.json        {"thetaDim", "xDim", "n", "observations", "samples", "seed",
                    "prior": {"kind": "box", "low", "high"} | {"kind": "gaussian", "mean", "std"},
                    "logQAtReference": bool}
  theta.f32, x.f32 the training rows, little-endian float32, row-major [n, thetaDim] and [n, xDim]
  obs.f32          the observations x_o, [observations, xDim]
  ref-<k>.f32      (only with logQAtReference) reference posterior samples at observation k
  heldout-theta.f32, heldout-x.f32
                   (only with "heldout": H > 0) held-out rows [H, thetaDim] and [H, xDim]

Every training row is handed to sbi as it is (sbi then holds out its own 10% for validation). The
estimator, the training schedule and the sampler are sbi 0.27's defaults: NPE(prior) builds a MAF
(5 transforms; nflows MADEs with num_blocks=2, i.e. three masked tanh layers of 50), trains with
batch 200, lr 5e-4, clip 5 and 20 epochs of patience, and the posterior rejects samples outside
the prior's support. One torch thread, so the
training CPU seconds (time.process_time) compare with one robustsbi process.

Writes beside the inputs:
  sbi-samples-<k>.f32  `samples` posterior samples at observation k, [samples, thetaDim]
  sbi-logq-<k>.f32     (with logQAtReference) log q(theta | x_o) at ref-<k>.f32's rows
  sbi-heldout-logq.f32 (with heldout) log q(theta_i | x_i) of each held-out row, [H]
  sbi-result.json      epochs, best and per-epoch validation loss, training CPU and wall seconds,
                       versions, and per observation the flow's mass inside the prior's support
"""
import argparse
import json
import os
import time

import numpy as np
import torch


def read_f32(path, rows, cols):
    a = np.fromfile(path, dtype="<f4")
    if a.size != rows * cols:
        raise SystemExit(f"{path}: {a.size} floats, expected {rows} x {cols}")
    return torch.from_numpy(a.reshape(rows, cols).astype(np.float32))


def write_f32(path, t):
    t.detach().cpu().numpy().astype("<f4").tofile(path)


def heldout_log_q(posterior, directory, h, d, dx):
    """log q(theta_i | x_i) of each held-out row: the estimator's own density (no leakage
    renormalization, as robustsbi's), one batched call per 1,000 rows, checked against sbi's
    per-observation posterior.log_prob on the first rows."""
    theta = read_f32(os.path.join(directory, "heldout-theta.f32"), h, d)
    x = read_f32(os.path.join(directory, "heldout-x.f32"), h, dx)
    net = posterior.posterior_estimator
    out = []
    with torch.no_grad():
        for i in range(0, h, 1000):
            # sbi 0.27's estimators take inputs [sample, batch, dim] and conditions [batch, dim].
            out.append(net.log_prob(theta[i : i + 1000].unsqueeze(0), condition=x[i : i + 1000])[0])
        lq = torch.cat(out)
        for i in range(min(3, h)):
            one = posterior.log_prob(theta[i : i + 1], x=x[i : i + 1], norm_posterior=False)
            if abs(float(one[0]) - float(lq[i])) > 1e-3 * max(1.0, abs(float(one[0]))):
                raise SystemExit(f"held-out row {i}: batched log q {float(lq[i])} != sbi's {float(one[0])}")
    return lq


def make_prior(spec):
    """The torch prior matching the TypeScript task's (sbi/tasks/priors.ts)."""
    from sbi.utils import BoxUniform

    if spec["kind"] == "box":
        return BoxUniform(
            low=torch.tensor(spec["low"], dtype=torch.float32),
            high=torch.tensor(spec["high"], dtype=torch.float32),
        )
    if spec["kind"] == "gaussian":
        mean = torch.tensor(spec["mean"], dtype=torch.float32)
        std = torch.tensor(spec["std"], dtype=torch.float32)
        return torch.distributions.MultivariateNormal(mean, covariance_matrix=torch.diag(std**2))
    raise SystemExit(f"prior.kind must be box or gaussian, not {spec['kind']!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="the directory the parity bench wrote")
    args = ap.parse_args()
    torch.set_num_threads(1)

    import sbi
    from sbi.inference import NPE

    with open(os.path.join(args.dir, "meta.json")) as f:
        meta = json.load(f)
    d, dx, n, k_obs = meta["thetaDim"], meta["xDim"], meta["n"], meta["observations"]
    theta = read_f32(os.path.join(args.dir, "theta.f32"), n, d)
    x = read_f32(os.path.join(args.dir, "x.f32"), n, dx)
    obs = read_f32(os.path.join(args.dir, "obs.f32"), k_obs, dx)
    prior = make_prior(meta["prior"])
    torch.manual_seed(meta["seed"])

    inference = NPE(prior=prior, show_progress_bars=False)
    inference.append_simulations(theta, x)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    inference.train()
    train_cpu, train_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    summary = inference._summary  # sbi's own record of the run (no public accessor in 0.27)
    posterior = inference.build_posterior()

    cpu0 = time.process_time()
    for k in range(1, k_obs + 1):
        xo = obs[k - 1 : k]
        s = posterior.sample((meta["samples"],), x=xo, show_progress_bars=False)
        write_f32(os.path.join(args.dir, f"sbi-samples-{k}.f32"), s)
        if meta.get("logQAtReference"):
            ref = read_f32(os.path.join(args.dir, f"ref-{k}.f32"), meta["samples"], d)
            # The estimator's own density, as robustsbi's KL uses its model's: without sbi's
            # leakage renormalization (the Gaussian priors of these tasks have no edge to leak past).
            with torch.no_grad():
                lq = posterior.log_prob(ref, x=xo, norm_posterior=False)
            write_f32(os.path.join(args.dir, f"sbi-logq-{k}.f32"), lq)
    sample_cpu = time.process_time() - cpu0

    # The share of the flow's mass inside the prior's support at each observation (sbi's own
    # estimate from 10,000 draws), after all sampling so that the samples above stay as they were.
    acceptance = [
        float(posterior.leakage_correction(x=obs[k - 1 : k], num_rejection_samples=10_000))
        for k in range(1, k_obs + 1)
    ]

    h = meta.get("heldout", 0)
    if h:
        write_f32(os.path.join(args.dir, "sbi-heldout-logq.f32"), heldout_log_q(posterior, args.dir, h, d, dx))

    result = {
        "sbiVersion": sbi.__version__,
        "torchVersion": torch.__version__,
        "epochs": int(summary["epochs_trained"][-1]),
        "bestValLoss": float(summary["best_validation_loss"][-1]),
        # The per-epoch validation losses, to set sbi's learning curve beside robustsbi's.
        "valLosses": [float(v) for v in summary["validation_loss"]],
        "trainCpuS": train_cpu,
        "trainWallS": train_wall,
        "sampleCpuS": sample_cpu,
        "acceptance": acceptance,
    }
    with open(os.path.join(args.dir, "sbi-result.json"), "w") as f:
        json.dump(result, f)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
