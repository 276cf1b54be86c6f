// The share of valid pyloric simulations under the prior (RABI keeps only those), robustsbi against
// mackelab/pyloric, three ways, n simulations each (default 1000; about 6 minutes in all):
//   reference   the package on n prior draws (numpy, float32 as sbi's BoxUniform) with RABI's seeds
//               randint(0, 10000);
//   replayed    robustsbi on exactly those draws and seeds, noise replayed bit for bit: every
//               decision should agree;
//   robustsbi   the task as the product runs it: its own prior draws and noise (sbi/rng.ts).
// Shares come with 95 % Wilson intervals. `npm run bench -- pyloric-validity [--n 1000] [--seed 1]`.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '../sbi/rng.js';
import { NumpyLegacyRandom } from '../sbi/tasks/numpy-legacy-random.js';
import { PyloricTask, pyloricValid } from '../sbi/tasks/pyloric.js';
import { isMain, numberArg, parseArgs, runMain } from './args.js';
import { pyloricPython, runReference } from './pyloric-venv.js';

export interface Share {
  n: number;
  valid: number;
  share: number;
  /** 95 % Wilson interval. */
  low: number;
  high: number;
}

export function wilson(valid: number, n: number): Share {
  const z = 1.959963984540054;
  const p = valid / n;
  const den = 1 + (z * z) / n;
  const mid = (p + (z * z) / (2 * n)) / den;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / den;
  return { n, valid, share: p, low: mid - half, high: mid + half };
}

interface ReferenceDraws {
  n: number;
  cpuS: number;
  theta: number[][];
  seeds: number[];
  counts: number[][];
  valid: boolean[];
}

export interface ValidityFigures {
  reference: Share & { cpuS: number };
  replayed: Share & { agree: number; countsEqual: number; cpuS: number };
  robustsbi: Share & { cpuS: number };
  /** robustsbi's own share minus the reference's, percentage points. */
  differencePp: number;
}

const cpu = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

export function runValidity(n: number, seed: number, install: boolean): ValidityFigures {
  const py = pyloricPython(install);
  if (!py.ok) throw new Error(`pyloric reference unavailable: ${py.reason}`);
  const dir = mkdtempSync(join(tmpdir(), 'pyloric-validity-'));
  let ref: ReferenceDraws;
  try {
    const file = join(dir, 'draws.json');
    console.error(`reference: ${n} simulations...`);
    runReference(py, ['validity', String(n), String(seed), file], undefined, 7_200_000);
    ref = JSON.parse(readFileSync(file, 'utf8')) as ReferenceDraws;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  console.error(`replayed: the reference's ${n} draws and seeds...`);
  const task = new PyloricTask();
  const x = new Float32Array(100 * task.xDim);
  let agree = 0;
  let countsEqual = 0;
  let valid = 0;
  let c0 = cpu();
  for (let from = 0; from < n; from += 100) {
    const rows = Array.from({ length: Math.min(100, n - from) }, (_, i) => from + i);
    const counts = task.simulateRows(
      ref.theta.flat(),
      rows,
      rows.map((i) => (z: Float64Array) => new NumpyLegacyRandom(ref.seeds[i]!).fillGauss(z)),
      x,
      rows.map((_, i) => i * task.xDim),
    );
    rows.forEach((i, k) => {
      const c = counts.subarray(3 * k, 3 * k + 3);
      const ok = pyloricValid(c);
      valid += ok ? 1 : 0;
      agree += ok === ref.valid[i] ? 1 : 0;
      countsEqual += ref.counts[i]!.every((r, j) => r === c[j]) ? 1 : 0;
    });
  }
  const replayCpu = cpu() - c0;

  console.error(`robustsbi: ${n} draws of its own prior and noise...`);
  const own = new PyloricTask();
  const rng = createRng(seed);
  const theta = own.prior.sample(n, rng.fork('prior'));
  c0 = cpu();
  own.simulate(theta, n, rng.fork('simulator'));
  const ownCpu = cpu() - c0;

  const reference = { ...wilson(ref.valid.filter(Boolean).length, n), cpuS: ref.cpuS };
  const robustsbi = { ...wilson(own.stats.valid, n), cpuS: ownCpu };
  return {
    reference,
    replayed: { ...wilson(valid, n), agree, countsEqual, cpuS: replayCpu },
    robustsbi,
    differencePp: 100 * (robustsbi.share - reference.share),
  };
}

const pct = (s: Share): string =>
  `${(100 * s.share).toFixed(1)} % [${(100 * s.low).toFixed(1)}, ${(100 * s.high).toFixed(1)}]`;

export function validityTable(f: ValidityFigures): string {
  return [
    `| run | n | valid | share [95 % interval] | CPU s |`,
    `|---|---|---|---|---|`,
    `| mackelab/pyloric, its prior draws and seeds | ${f.reference.n} | ${f.reference.valid} | ${pct(f.reference)} | ${f.reference.cpuS.toFixed(0)} |`,
    `| robustsbi on the same draws and noise | ${f.replayed.n} | ${f.replayed.valid} | ${pct(f.replayed)} | ${f.replayed.cpuS.toFixed(0)} |`,
    `| robustsbi, its own prior draws and noise | ${f.robustsbi.n} | ${f.robustsbi.valid} | ${pct(f.robustsbi)} | ${f.robustsbi.cpuS.toFixed(0)} |`,
    ``,
    `same draws: ${f.replayed.agree} of ${f.replayed.n} decisions agree, ${f.replayed.countsEqual} with all three counts above +20 mV equal; own draws minus reference: ${f.differencePp.toFixed(1)} percentage points`,
  ].join('\n');
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const f = runValidity(
    numberArg(a, 'n', 1000),
    numberArg(a, 'seed', 1),
    a.has('install-reference'),
  );
  console.log(a.has('json') ? JSON.stringify(f) : validityTable(f));
}

if (isMain(import.meta.url)) await runMain(cli);
