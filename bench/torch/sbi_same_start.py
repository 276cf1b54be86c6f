"""Records where sbi 0.27's NPE() starts and where it ends, for bench/sbi-same-start.ts.

Reads an exchange directory as bench/sbi-exchange.ts writes it (meta.json, theta.f32, x.f32 and,
with "heldout", heldout-theta.f32 / heldout-x.f32). For each torch seed it trains NPE() with its
defaults (MAF, batch 200, lr 5e-4, clip 5, patience 20; one torch thread) and, just before the first
epoch, records sbi's validation split, its z-score and the MAF's initial weights (nflows' layout,
masks applied, as bench/torch/nflows_maf_fixture.py). With --inits K it also records K further
initial MAFs built by sbi's build_maf on the same training rows (torch seeds 1000 * seed + k), to
compare initializations on one split.

    python bench/torch/sbi_same_start.py DIR --torch-seeds 0,1 [--inits 3]

Writes DIR/sbi-start-<seed>.json: split, z-score, layers, extra inits, per-epoch losses, epochs,
best validation loss, held-out NLL (or null) and training CPU seconds.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from sbi.inference import NPE
from sbi.inference.trainers import base as sbi_base
from sbi.neural_nets.net_builders.flow import build_maf
from sbi.utils import BoxUniform

from nflows_layers import made_layers


def read_f32(path, rows, cols):
    a = np.fromfile(path, dtype="<f4")
    if a.size != rows * cols:
        raise SystemExit(f"{path}: {a.size} floats, expected {rows} x {cols}")
    return torch.from_numpy(a.reshape(rows, cols).astype(np.float32))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--torch-seeds", required=True)
    ap.add_argument("--inits", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    meta = json.load(open(os.path.join(a.dir, "meta.json")))
    n, d, dx = meta["n"], meta["thetaDim"], meta["xDim"]
    theta = read_f32(os.path.join(a.dir, "theta.f32"), n, d)
    x = read_f32(os.path.join(a.dir, "x.f32"), n, dx)
    h = meta.get("heldout", 0)
    held = None
    if h:
        held = (
            read_f32(os.path.join(a.dir, "heldout-theta.f32"), h, d),
            read_f32(os.path.join(a.dir, "heldout-x.f32"), h, dx),
        )
    p = meta["prior"]
    if p["kind"] != "box":
        raise SystemExit("sbi_same_start.py: only box priors (the bench runs slcp-like tasks)")
    prior = BoxUniform(torch.tensor(p["low"]), torch.tensor(p["high"]))

    for seed in [int(s) for s in a.torch_seeds.split(",")]:
        start = {}
        original = sbi_base.NeuralInference._run_training_loop

        def record_start(self, *args, **kwargs):
            net = self._neural_net.net
            standardize = net._transform._transforms[0]
            emb = net._embedding_net.state_dict()
            scale = standardize._scale.reshape(-1).expand(d)
            shift = standardize._shift.reshape(-1).expand(d)
            start.update(
                {
                    "train": self.train_indices.tolist(),
                    "val": self.val_indices.tolist(),
                    "thetaMean": (-shift / scale).tolist(),
                    "thetaStd": (1 / scale).tolist(),
                    "xMean": emb["0._mean"].reshape(-1).tolist(),
                    "xStd": emb["0._std"].reshape(-1).tolist(),
                    "layers": made_layers(net),
                }
            )
            return original(self, *args, **kwargs)

        sbi_base.NeuralInference._run_training_loop = record_start
        try:
            torch.manual_seed(seed)
            inference = NPE(prior=prior, show_progress_bars=False)
            t0 = time.process_time()
            inference.append_simulations(theta, x).train()
            cpu = time.process_time() - t0
        finally:
            sbi_base.NeuralInference._run_training_loop = original
        s = inference._summary
        heldout_nll = None
        if held is not None:
            net = inference._neural_net
            net.eval()
            with torch.no_grad():
                lq = torch.cat(
                    [
                        net.log_prob(held[0][i : i + 1000].unsqueeze(0), condition=held[1][i : i + 1000])[0]
                        for i in range(0, h, 1000)
                    ]
                )
            heldout_nll = float(-lq.mean())
        extra = []
        train_rows = torch.tensor(start["train"])
        for k in range(a.inits):
            torch.manual_seed(1000 * seed + k)
            extra.append(made_layers(build_maf(theta[train_rows], x[train_rows]).net))
        out = {
            "torchSeed": seed,
            "thetaDim": d,
            "xDim": dx,
            "hidden": len(start["layers"][0]["b0"]),
            **start,
            "extraInits": extra,
            "trainLoss": s["training_loss"],
            "valLoss": s["validation_loss"],
            "epochs": len(s["validation_loss"]),
            "bestValLoss": float(s["best_validation_loss"][-1]),
            "heldoutNll": heldout_nll,
            "trainCpuS": cpu,
        }
        with open(os.path.join(a.dir, f"sbi-start-{seed}.json"), "w") as f:
            json.dump(out, f)
        print(f"sbi torch seed {seed}: {out['epochs']} epochs, best validation {out['bestValLoss']:.3f}")


if __name__ == "__main__":
    main()
