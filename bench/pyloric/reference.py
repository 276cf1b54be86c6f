"""The pyloric reference: mackelab/pyloric, the package RABI simulates with (research/pyloric.md).

Used only to check sbi/tasks/pyloric*.ts; nothing in the product runs Python. The package is not on
PyPI under its name (PyPI's "pyloric" 0.0.1 is an empty placeholder, and
"pyloric-network-simulator" is another model with its own integrator), so its source is put on
sys.path from a checkout (commit 89dd27d; --src, default ~/.cache/robustsbi/pyloric-src).
bench/pyloric-venv.ts makes the venv: numpy, pandas < 2.3 (the package writes through .loc in a way
pandas 3 rejects), scipy, cython (pyximport compiles simulator.pyx on first import), matplotlib.
The package imports torch and sbi only for its prior wrapper; where they are missing, empty stand-ins
are installed, and the prior's bounds are read from prior_bounds() as the wrapper reads them.

Usage:
  python reference.py fixture OUT.json          the fixture of test/unit/sbi/pyloric.test.ts (then
                                                npx prettier --write OUT.json)
  python reference.py throughput N [SEED]       N prior draws, RABI's setting: CPU seconds per simulation
  python reference.py validity N SEED OUT.json  N prior draws with their seeds, counts and valid flags
"""
import argparse
import json
import math
import os
import resource
import sys
import time
import types


def load_package(src):
    try:
        import torch  # noqa: F401
        import sbi  # noqa: F401
    except ImportError:
        torch = types.ModuleType("torch")
        exec("class Tensor: pass", torch.__dict__)
        sys.modules["torch"] = torch
        sbi = types.ModuleType("sbi")
        utils = types.ModuleType("sbi.utils")
        utils.BoxUniform = None
        sbi.utils = utils
        sys.modules["sbi"] = sbi
        sys.modules["sbi.utils"] = utils
    sys.path.insert(0, src)
    import warnings

    warnings.filterwarnings("ignore")
    import pyloric
    from pyloric.prior import prior_bounds
    from pyloric.utils import to_pyloric_pd

    return pyloric, prior_bounds, to_pyloric_pd


SETUPS = None  # filled in main(): the package's default selection (31 parameters)

# research/pyloric.md section 5: the package's test vector and Prinz et al. 2004 Fig. 3e.
THETA_T = [
    2.86921725e02, 9.75099899e-02, 5.53758392e00, 2.17553840e01, 1.21938578e01, 1.23777092e02,
    9.64585042e-03, 5.16584517e-03, 1.67802913e02, 9.94858342e-01, 7.71058188e00, 1.92827439e01,
    7.30915903e00, 4.33907960e01, 5.03816170e-02, 2.12142250e-02, 4.77249899e02, 5.10924385e00,
    7.13955321e-01, 3.96705037e01, 4.89271588e00, 5.92566636e01, 5.51743568e-02, 1.21729756e-02,
    -1.08318439e01, -1.05837408e01, -1.38916890e01, -9.07825715e00, -8.90034224e00,
    -1.57819342e01, -7.23973359e00,
]
THETA_C = [100, 2.5, 6, 50, 5, 100, 0.01, 0, 100, 0, 4, 20, 0, 25, 0.05, 0.03,
           100, 2.5, 2, 50, 0, 125, 0.05, 0.01] + [
    math.log(nS * 1e-6) for nS in (30, 30, 10, 3, 30, 1, 30)]

STATS = {
    "cycle_period": True, "burst_durations": True, "duty_cycles": True, "start_phases": True,
    "starts_to_starts": True, "ends_to_starts": True, "phase_gaps": True,
    "plateau_durations": True, "num_bursts": True, "num_spikes": True, "pyloric_like": True,
}


class Reference:
    def __init__(self, src):
        import numpy as np

        self.np = np
        self.pyloric, prior_bounds, self.to_pd = load_package(src)
        setups = {
            "membrane_gbar": [[True] * 8] * 3,
            "Q10_gbar_mem": [False] * 8, "Q10_gbar_syn": [False] * 2, "Q10_tau_m": [False],
            "Q10_tau_h": [False], "Q10_tau_CaBuff": [False], "Q10_tau_syn": [False] * 2,
        }
        setups = {k: np.asarray(v) for k, v in setups.items()}
        self.low, self.high = prior_bounds(setups, synapses_log_space=True)

    def simulate(self, theta, seed, t_max, noise_std=0.001):
        # RABI's call (figures/pyloric_simulations/simulate.py): one parameter row as a Series.
        row = self.to_pd(self.np.asarray([theta], dtype=self.np.float64)).iloc[0]
        return self.pyloric.simulate(row, seed=seed, dt=0.025, t_max=t_max, temperature=283,
                                     noise_std=noise_std)

    def prior_draws(self, n, seed):
        # sbi's BoxUniform keeps float32 bounds and float32 draws.
        np = self.np
        rng = np.random.RandomState(seed)
        low = self.low.astype(np.float32)
        high = self.high.astype(np.float32)
        u = rng.uniform(size=(n, len(low))).astype(np.float32)
        theta = np.clip((low + (high - low) * u).astype(np.float32), low, high)
        seeds = rng.randint(0, 10000, size=n)
        return theta, seeds

    def rabi_case(self, name, theta, seed, noise_std=0.001):
        v = self.simulate(theta, seed, 2000, noise_std)["voltage"]
        counts = (v[:, ::10] > 20).sum(axis=1)
        x = v[:, ::100].astype(self.np.float32).astype(self.np.float64)
        return {
            "name": name, "theta": [float(t) for t in theta], "seed": int(seed),
            "noiseStd": noise_std, "counts": [int(c) for c in counts],
            "valid": bool(self.np.all(counts > 5)),
            "xSum": [float(s) for s in x.sum(axis=1)],
            "xExcerptEvery": 20, "xExcerpt": [[float(a) for a in r[::20]] for r in x],
        }

    def stats_case(self, name, theta, seed, noise_std=0.001):
        out = self.simulate(theta, seed, 11000, noise_std)
        ss = self.pyloric.summary_stats(out, stats_customization=STATS, t_burn_in=1000)
        stats = {}
        for (general, _specific), value in zip(ss.columns, ss.to_numpy()[0]):
            value = float(value)
            stats.setdefault(general, []).append(None if math.isnan(value) else value)
        v = out["voltage"]
        return {
            "name": name, "theta": [float(t) for t in theta], "seed": int(seed),
            "noiseStd": noise_std, "tMax": 11000, "burnIn": 1000, "stats": stats,
            # The last 10 ms at every 4th step: 100 points per neuron.
            "tailFrom": v.shape[1] - 400, "tailEvery": 4,
            "tail": [[float(a) for a in r[-400::4]] for r in v],
        }


def fixture(ref, path):
    np = ref.np
    normals = {}
    for seed in (0, 5340):
        normals[str(seed)] = [float(g) for g in np.random.RandomState(seed).normal(size=6)]
    theta, seeds = ref.prior_draws(40, 2023)
    rabi = [
        ref.rabi_case("theta_T seed 5340", THETA_T, 5340),
        ref.rabi_case("theta_T noise-free", THETA_T, 5340, 0.0),
        ref.rabi_case("Prinz 2004 Fig. 3e seed 1", THETA_C, 1),
        ref.rabi_case("Prinz 2004 Fig. 3e seed 0", THETA_C, 0),
    ]
    for i in range(len(theta)):
        rabi.append(ref.rabi_case(f"prior draw {i}", theta[i], seeds[i]))
    valid = [c for c in rabi[4:] if c["valid"]]
    stats = [
        ref.stats_case("theta_T seed 5340 (the package's regression test)", THETA_T, 5340),
        ref.stats_case("Prinz 2004 Fig. 3e seed 1", THETA_C, 1),
    ]
    for c in valid[:3]:
        stats.append(ref.stats_case(c["name"], c["theta"], c["seed"]))
    doc = {
        "about": "mackelab/pyloric simulate() and summary_stats() as RABI calls them "
                 "(dt 0.025 ms, 283 K); written by bench/pyloric/reference.py fixture",
        "versions": {"pyloric": "89dd27d", "numpy": np.__version__,
                     "pandas": sys.modules["pandas"].__version__, "python": sys.version.split()[0]},
        "prior": {"low": [float(a) for a in ref.low], "high": [float(a) for a in ref.high]},
        "numpyNormals": normals,
        "rabi": rabi,
        "stats": stats,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(rabi)} RABI-setting cases ({sum(c['valid'] for c in rabi)} valid), "
          f"{len(stats)} statistics cases")


def throughput(ref, n, seed):
    theta, seeds = ref.prior_draws(n + 2, seed)
    ref.simulate(theta[0], seeds[0], 2000)  # first call: imports and allocations
    c0, t0 = time.process_time(), time.perf_counter()
    valid = 0
    for i in range(1, n + 1):
        v = ref.simulate(theta[i], seeds[i], 2000)["voltage"]
        valid += bool(((v[:, ::10] > 20).sum(axis=1) > 5).all())
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(json.dumps({"n": n, "cpuS": cpu, "wallS": wall, "simsPerCpuSecond": n / cpu,
                      "simsPerSecond": n / wall, "valid": valid, "peakRssMb": peak}))


def validity(ref, n, seed, path):
    theta, seeds = ref.prior_draws(n, seed)
    counts = []
    c0 = time.process_time()
    for i in range(n):
        v = ref.simulate(theta[i], seeds[i], 2000)["voltage"]
        counts.append([int(c) for c in (v[:, ::10] > 20).sum(axis=1)])
    cpu = time.process_time() - c0
    doc = {"n": n, "seed": seed, "cpuS": cpu, "theta": [[float(t) for t in r] for r in theta],
           "seeds": [int(s) for s in seeds], "counts": counts,
           "valid": [all(c > 5 for c in r) for r in counts]}
    with open(path, "w") as f:
        json.dump(doc, f)
    print(json.dumps({"n": n, "valid": sum(doc["valid"]), "cpuS": cpu}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--src", default=os.path.expanduser("~/.cache/robustsbi/pyloric-src"))
    p.add_argument("command", choices=["fixture", "throughput", "validity"])
    p.add_argument("args", nargs="*")
    a = p.parse_args()
    ref = Reference(a.src)
    if a.command == "fixture":
        fixture(ref, a.args[0])
    elif a.command == "throughput":
        throughput(ref, int(a.args[0]), int(a.args[1]) if len(a.args) > 1 else 0)
    else:
        validity(ref, int(a.args[0]), int(a.args[1]), a.args[2])


if __name__ == "__main__":
    main()
