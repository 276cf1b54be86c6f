// Shared by the sweeps tests: the project root (tests run from source and from dist/) and the
// example specs.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  attackRateKey,
  metricRateKey,
  missingRates,
  planActivities,
  trainRateKey,
  type Rates,
} from '../../../sweeps/plan.js';
import type { SweepSpec } from '../../../sweeps/types.js';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
  return dir;
}

export const root = findRoot();

/** The example specs shipped in sweeps/: file name -> text. */
export function exampleSpecs(): Map<string, string> {
  const dir = join(root, 'sweeps');
  const out = new Map<string, string>();
  for (const f of readdirSync(dir).sort())
    if (f.endsWith('.json')) out.set(f, readFileSync(join(dir, f), 'utf8'));
  return out;
}

/** A small valid spec object; tests derive variants from it. */
export function baseSpec(): Record<string, unknown> {
  return {
    name: 'unit',
    tasks: ['gaussian_linear', 'two_moons'],
    estimators: ['maf', { kind: 'nsf', architecture: { bins: 8 } }],
    defenses: [
      { name: 'none' },
      { name: 'fim', betas: [0.001, 0.01] },
      { name: 'trades', trainEps: [0.1, 0.5] },
    ],
    seeds: [0, 1],
    budgets: [1000, 2000],
    training: { maxEpochs: 20 },
    evaluation: { eps: [0.5, 1, 2], nTest: 100 },
  };
}

/** Every rate the plan of `spec` needs, each set to `s` seconds. */
export function flatRates(spec: SweepSpec, s: number): Rates {
  const m = missingRates(planActivities(spec), { simulate: {}, train: {}, attack: {}, metric: {} });
  const r: Rates = { simulate: {}, train: {}, attack: {}, metric: {} };
  for (const t of m.simulate) r.simulate[t] = s;
  for (const u of m.train) r.train[trainRateKey(u)] = s;
  for (const { unit, objective } of m.attack) r.attack[attackRateKey(unit, objective)] = s;
  for (const { unit, objective } of m.metric)
    r.metric[metricRateKey(unit, objective)] = { kl: s, coverage: s };
  return r;
}
