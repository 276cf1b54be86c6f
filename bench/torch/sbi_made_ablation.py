"""sbi 0.27's NPE() with one part of its MADE changed, scored by held-out NLL on a parity cell.

Reads an exchange directory that `sbi-parity --keep DIR --heldout H` wrote (meta.json, theta.f32,
x.f32, heldout-theta.f32, heldout-x.f32; see sbi_npe_reference.py), trains sbi on its rows and
prints the mean -log q(theta | x) over the held-out rows, beside sbi's epochs and best validation
loss. Variants (joined with '+'):

  base        NPE() defaults: nflows MADEs with num_blocks=2, i.e. three masked tanh layers
  blocks1     num_blocks=1: two masked layers, the depth of robustsbi's default MADE [50, 50]
  noctxtanh   the context joins the first layer without its own tanh (robustsbi's MADE takes it so)

  ~/.cache/robustsbi/torch-venv/bin/python bench/torch/sbi_made_ablation.py DIR VARIANT [TORCH_SEED]

Only for benchmarks: it changes nflows' MADE.forward in this process for `noctxtanh`.
"""
import json
import os
import sys

import numpy as np
import torch


def read(directory, name, rows, cols):
    a = np.fromfile(os.path.join(directory, name), dtype="<f4")
    if a.size != rows * cols:
        raise SystemExit(f"{name}: {a.size} floats, expected {rows} x {cols}")
    return torch.from_numpy(a.reshape(rows, cols).copy())


def without_context_tanh():
    import nflows.transforms.made as made

    def forward(self, inputs, context=None):
        temps = self.initial_layer(inputs)
        if context is not None:
            temps = temps + self.context_layer(context)
        temps = self.activation(temps)
        for block in self.blocks:
            temps = block(temps, context)
        return self.final_layer(temps)

    made.MADE.forward = forward


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    directory, variant = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) == 4 else 0
    parts = set(variant.split("+"))
    unknown = parts - {"base", "blocks1", "noctxtanh"}
    if unknown:
        raise SystemExit(f"unknown variant part(s): {', '.join(sorted(unknown))}")
    torch.set_num_threads(1)
    from sbi.inference import NPE
    from sbi.neural_nets import posterior_nn

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sbi_npe_reference import make_prior

    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    d, dx, n, h = meta["thetaDim"], meta["xDim"], meta["n"], meta.get("heldout", 0)
    if not h:
        raise SystemExit(f"{directory} has no held-out rows: write it with sbi-parity --heldout")
    theta, x = read(directory, "theta.f32", n, d), read(directory, "x.f32", n, dx)
    h_theta, h_x = read(directory, "heldout-theta.f32", h, d), read(directory, "heldout-x.f32", h, dx)
    if "noctxtanh" in parts:
        without_context_tanh()
    options = {"num_blocks": 1} if "blocks1" in parts else {}

    torch.manual_seed(seed)
    inference = NPE(
        prior=make_prior(meta["prior"]),
        density_estimator=posterior_nn("maf", **options),
        show_progress_bars=False,
    )
    inference.append_simulations(theta, x)
    net = inference.train()
    with torch.no_grad():
        lq = torch.cat(
            [
                net.log_prob(h_theta[i : i + 1000].unsqueeze(0), condition=h_x[i : i + 1000])[0]
                for i in range(0, h, 1000)
            ]
        )
    summary = inference._summary
    print(
        json.dumps(
            {
                "variant": variant,
                "torchSeed": seed,
                "epochs": len(summary["training_loss"]),
                "bestValLoss": float(summary["best_validation_loss"][-1]),
                "heldoutNll": float(-lq.mean()),
                "valLosses": [round(float(v), 4) for v in summary["validation_loss"]],
            }
        )
    )


if __name__ == "__main__":
    main()
