"""Writes test/fixtures/pyro-linear-rational.json: pyro's order="linear" spline (the one RABI's
"nsf" uses) evaluated at fixed parameters and inputs, in float64, for the parity test of
sbi/estimators/linear-rational-spline.ts.

Run with the torch venv after `pip install pyro-ppl` (RABI pins 1.8.4; spline.py is unchanged
from 1.8.4 to 1.9.1):
    ~/.cache/robustsbi/torch-venv/bin/python bench/torch/pyro_linear_rational_fixture.py
    npx prettier --write test/fixtures/pyro-linear-rational.json

It calls pyro's public Spline transform only: each of the R input dimensions is one spline whose
unconstrained parameters are set to fixed pseudo-random values, and the fixture stores those
parameters in robustsbi's per-dimension order (K widths, K heights, K - 1 derivatives, K lambdas),
the inputs, pyro's outputs and log|dy/dx|, and pyro's inverse of a second set of points.
"""

import json
import math
import sys
from pathlib import Path

import pyro
import torch
from pyro.distributions.transforms import Spline

torch.set_default_dtype(torch.float64)
K = 12
BOUND = 30.0
R = 4  # splines (one per input dimension)


def pseudo(n, seed, scale):
    # Deterministic values without depending on torch's generator across versions.
    return [scale * math.sin(seed * 12.9898 + i * 78.233) for i in range(n)]


def main(out: Path) -> None:
    spline = Spline(R, count_bins=K, bound=BOUND, order="linear")
    raw = []
    with torch.no_grad():
        for r in range(R):
            w = pseudo(K, 1 + 4 * r, 1.5)
            h = pseudo(K, 2 + 4 * r, 1.5)
            d = pseudo(K - 1, 3 + 4 * r, 2.0)
            lam = pseudo(K, 4 + 4 * r, 2.5)
            spline.unnormalized_widths[r] = torch.tensor(w)
            spline.unnormalized_heights[r] = torch.tensor(h)
            spline.unnormalized_derivatives[r] = torch.tensor(d)
            spline.unnormalized_lambdas[r] = torch.tensor(lam)
            raw.append(w + h + d + lam)

        # Inputs: a sweep over [-34, 34] (tails, both bounds, interior), shared by every spline.
        xs = [-34.0, -30.0, -29.999, -25.0] + [-29.5 + 59.0 * i / 40 for i in range(41)] + [
            29.999,
            30.0,
            31.5,
        ]
        x = torch.tensor(xs).unsqueeze(-1).expand(-1, R).contiguous()
        y = spline(x)
        logdet = spline.log_abs_det_jacobian(x, y)
        # The inverse on fresh points (no cache: a new tensor).
        ys = [-33.0, -30.0, -12.5, -3.0, 0.0, 0.7, 4.2, 17.0, 29.9, 30.0, 35.0]
        yq = torch.tensor(ys).unsqueeze(-1).expand(-1, R).contiguous()
        spline._cache_log_detJ = None
        xq = spline._inverse(yq.clone())

    doc = {
        "source": f"pyro-ppl {pyro.__version__} Spline(order='linear'), torch {torch.__version__}, float64",
        "bins": K,
        "tailBound": BOUND,
        "minBinWidth": 1e-3,
        "minBinHeight": 1e-3,
        "minDerivative": 1e-3,
        "raw": raw,
        "x": xs,
        "y": y.T.tolist(),
        "logDet": logdet.T.tolist(),
        "inverseY": ys,
        "inverseX": xq.T.tolist(),
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[2]
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else root / "test/fixtures/pyro-linear-rational.json")
