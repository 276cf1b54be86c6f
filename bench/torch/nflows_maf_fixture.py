"""Writes test/fixtures/nflows-maf.json: a MAF as sbi 0.27's NPE() builds it (sbi's build_maf over
nflows 0.14: standardized theta and x, MaskedAffineAutoregressiveTransform with tanh MADEs of
num_blocks=2 and nflows' context layer, RandomPermutation between transforms), its weights set away
from their initialization, and its log q at fixed rows, in float64, for the parity test of
robustsbi's MAF in sbi's configuration (test/unit/sbi/nflows-maf-parity.test.ts).

Run with the torch venv (sbi 0.27 installed, as for `npm run bench -- sbi-parity`):
    ~/.cache/robustsbi/torch-venv/bin/python bench/torch/nflows_maf_fixture.py
    npx prettier --write test/fixtures/nflows-maf.json

Small sizes (3-d theta, 4-d x, hidden width 8, 3 transforms) keep the fixture short; the structure is
sbi's default one. Masked weights are stored with their masks applied, rows in nflows' layout
([out, in]; the MADE's last layer interleaves each position's unconstrained scale and shift).
"""

import json
from pathlib import Path

import torch
from sbi.neural_nets.net_builders.flow import build_maf

from nflows_layers import made_layers

torch.set_default_dtype(torch.float64)
torch.manual_seed(11)
D, X, H, T, ROWS = 3, 4, 8, 3, 20


def main():
    theta = torch.rand(400, D) * 6 - 3
    x = torch.randn(400, X) * torch.tensor([0.5, 1.0, 2.0, 4.0]) + torch.tensor([1.0, -2.0, 0.0, 3.0])
    flow = build_maf(theta, x, hidden_features=H, num_transforms=T)
    net = flow.net
    with torch.no_grad():
        # Away from the initialization, so scales and shifts vary well beyond their starting values.
        for p in net._transform.parameters():
            p.add_(0.3 * torch.randn_like(p))
    parts = net._transform._transforms
    standardize = parts[0]
    emb = net._embedding_net.state_dict()
    layers = made_layers(net)
    rows_theta = theta[:ROWS] * 0.8
    rows_x = x[:ROWS]
    with torch.no_grad():
        logq = flow.log_prob(rows_theta.unsqueeze(0), condition=rows_x)[0]
    scale = standardize._scale.reshape(-1).expand(D)
    shift = standardize._shift.reshape(-1).expand(D)
    out = {
        "source": "sbi 0.27 build_maf (nflows 0.14), float64; bench/torch/nflows_maf_fixture.py",
        "thetaDim": D,
        "xDim": X,
        "hidden": H,
        "transforms": T,
        "thetaMean": (-shift / scale).tolist(),
        "thetaStd": (1 / scale).tolist(),
        "xMean": emb["0._mean"].reshape(-1).tolist(),
        "xStd": emb["0._std"].reshape(-1).tolist(),
        "layers": layers,
        "theta": rows_theta.tolist(),
        "x": rows_x.tolist(),
        "logq": logq.tolist(),
    }
    path = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "nflows-maf.json"
    path.write_text(json.dumps(out) + "\n")
    print(f"wrote {path}: log q from {float(logq.min()):.3f} to {float(logq.max()):.3f}")


if __name__ == "__main__":
    main()
