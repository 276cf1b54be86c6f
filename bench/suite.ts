// The whole bench suite (`npm run bench` with no bench name): training throughput per tfjs backend
// against PyTorch, the defenses' training-cost ratios, the exact `fim` step and the L2-PGD rKL
// evaluation step against PyTorch (bench/fim-pgd-vs-torch.ts), simulator throughput, orchestration
// overhead and result writes to MongoDB, one after another, as one markdown table with the machine
// described, or (--json) as one JSON object on stdout with every log line on stderr. Each part
// stays runnable alone (bench/main.ts names). Default sizes are the ones BENCHMARKS.md documents;
// --quick takes a couple of minutes in all. --install-torch creates the PyTorch venv
// (bench/torch-venv.ts) when it is missing; without it and without the venv, every torch figure is
// reported unavailable with that hint. --only <part,...> runs the named parts (SUITE_PARTS, the
// JSON keys) and what they need; the others report { error: 'not run (--only)' }.
import { describeMachine, machineLines, type MachineInfo } from './machine.js';
import { runDefenseCost, type DefenseCostFigures } from './defense-cost.js';
import {
  evaluationThroughput,
  fimFromRows,
  runBackendPgd,
  runTorchFimPgd,
  sideBySideRows,
  type EvaluationThroughput,
  type FimStepVsTorch,
} from './fim-pgd-vs-torch.js';
import { runMongoWrites, type MongoWriteOptions } from './mongo-writes.js';
import { runOrchestration, type OrchestrationOptions } from './orchestration.js';
import { runSimulators, type SimulatorOptions } from './simulators.js';
import { runTrainThroughput, type ThroughputOptions } from './train-throughput.js';
import { parseArgs } from './args.js';
import { TASK_NAMES } from '../sbi/tasks/index.js';

/** The defenses whose cost ratio the suite reports (each relative to none, which also runs). */
export const SUITE_DEFENSES = ['fim', 'fim-fast', 'noise', 'adversarial', 'trades'] as const;

export interface Sizes {
  throughput: ThroughputOptions;
  /** Training rows and epochs of every defense run; the exact fim step is timed in the fim one. */
  defense: { n: number; epochs: number };
  /** Repetitions of each timing in the fim / PGD comparison with PyTorch. */
  sideBySide: { reps: number };
  simulators: SimulatorOptions;
  /** The headline sweep: trivial trials packed, as a spec for short trials would run them. */
  orchestration: OrchestrationOptions;
  /** The same trials a workflow each (pack 1), for comparison. */
  orchestrationUnpacked: OrchestrationOptions;
  mongo: MongoWriteOptions;
}

export const SUITE_SIZES: Record<'default' | 'quick', Sizes> = {
  default: {
    throughput: {
      n: 10000,
      epochs: 10,
      reps: 3,
      backends: ['wasm', 'wasm-ops', 'cpu', 'tfjs-node'],
    },
    defense: { n: 10000, epochs: 2 },
    sideBySide: { reps: 5 },
    simulators: { n: 5000, tasks: [...TASK_NAMES] },
    orchestration: { trials: 1000, window: 100, pack: 25, activityConcurrency: 50 },
    orchestrationUnpacked: { trials: 1000, window: 50, pack: 1, activityConcurrency: 50 },
    mongo: { single: 500, batched: 2000, batch: 100, trials: 300 },
  },
  quick: {
    throughput: { n: 2000, epochs: 1, backends: ['wasm', 'wasm-ops', 'cpu', 'tfjs-node'] },
    defense: { n: 512, epochs: 1 },
    sideBySide: { reps: 3 },
    simulators: { n: 500, tasks: [...TASK_NAMES] },
    orchestration: { trials: 100, window: 100, pack: 25, activityConcurrency: 50 },
    orchestrationUnpacked: { trials: 100, window: 50, pack: 1, activityConcurrency: 50 },
    mongo: { single: 100, batched: 500, batch: 100, trials: 50 },
  },
};

type Failed = { error: string };

export interface BackendThroughput {
  ok: boolean;
  reason?: string;
  simsPerSecond?: number;
  simsPerCpuSecond?: number;
  /** tfjs / torch, wall time. */
  ratioToTorch?: number;
  /** tfjs / torch, CPU time (less sensitive to other load on the machine). */
  ratioToTorchCpu?: number;
  /** tfjs / torch by CPU time in each interleaved repetition (the figures above are medians). */
  ratioToTorchCpuEach?: number[];
  version?: string;
}

export interface SuiteFigures {
  machine: MachineInfo & { loadAverage1mAtEnd: number };
  quick: boolean;
  command: string;
  /** Wall seconds of each part, and of the whole suite. */
  wallS: Record<string, number>;
  /** The sizes each part ran at. */
  settings: Sizes;
  trainThroughput: Record<string, BackendThroughput> | Failed;
  /**
   * Training time of each defense / none; null where that run failed. `fim` is the exact estimator
   * (RABI's), `fim-fast` the cheap one, each under its own key.
   */
  defenseCostRatios: Record<string, number | null> | Failed;
  /** The exact fim step, robustsbi (trainNPE, the fim run above) against PyTorch autograd. */
  fimStepVsTorch: FimStepVsTorch | Failed;
  /** L2-PGD rKL steps: test points x steps per CPU-second, robustsbi against PyTorch. */
  evaluationThroughput: EvaluationThroughput | Failed;
  simulatorThroughput: Record<string, { simsPerSecond: number; simsPerCpuSecond: number }> | Failed;
  orchestration:
    | {
        trialsPerSecond: number;
        overheadMsPerTrial: number;
        trials: number;
        pack: number;
        /** The same sweep with a workflow per trial. */
        unpacked: { trialsPerSecond: number; overheadMsPerTrial: number; pack: 1 } | Failed;
        details: unknown;
      }
    | Failed;
  mongoWritesPerSecond:
    | {
        single: number;
        batched: number;
        batchSize: number;
        trialTransitions: number;
        details: unknown;
      }
    | Failed;
}

/** The suite's parts by their key in the JSON; `--only` takes a comma-separated list of them. */
export const SUITE_PARTS = [
  'trainThroughput',
  'defenseCostRatios',
  'fimStepVsTorch',
  'evaluationThroughput',
  'simulatorThroughput',
  'orchestration',
  'mongoWritesPerSecond',
] as const;
export type SuitePart = (typeof SUITE_PARTS)[number];

/** What a part left out by `--only` reports. */
export const NOT_RUN = 'not run (--only)';

/** `--only a,b` as part names (undefined: every part); throws on a name that is no part. */
export function parseOnly(value: string | undefined): SuitePart[] | undefined {
  if (value === undefined) return undefined;
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const bad = names.filter((n) => !(SUITE_PARTS as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0)
    throw new Error(
      `--only takes a comma-separated list of ${SUITE_PARTS.join(', ')}; got ${JSON.stringify(value)}`,
    );
  return names as SuitePart[];
}

async function part<T>(
  name: string,
  wall: Record<string, number>,
  f: () => Promise<T> | T,
  run = true,
): Promise<T | Failed> {
  if (!run) return { error: NOT_RUN };
  const t0 = performance.now();
  console.error(`suite: ${name}...`);
  try {
    return await f();
  } catch (err) {
    console.error(`suite: ${name} failed: ${(err as Error).stack ?? String(err)}`);
    return { error: (err as Error).message ?? String(err) };
  } finally {
    wall[name] = (performance.now() - t0) / 1000;
  }
}

export async function runSuite(opts: {
  quick: boolean;
  noInstall: boolean;
  /** Run only these parts (and what they need); every part when absent. */
  only?: readonly SuitePart[];
}): Promise<SuiteFigures> {
  const want = (...names: SuitePart[]) => !opts.only || names.some((n) => opts.only!.includes(n));
  const t0 = performance.now();
  const sizes = SUITE_SIZES[opts.quick ? 'quick' : 'default'];
  const machine = await describeMachine();
  const wall: Record<string, number> = {};

  const trainThroughput = await part(
    'trainThroughput',
    wall,
    async () => {
      const f = await runTrainThroughput({ ...sizes.throughput, noInstall: opts.noInstall });
      const torch = f.rows.find((r) => r.impl === 'torch');
      const out: Record<string, BackendThroughput> = {};
      sizes.throughput.backends.forEach((b, i) => {
        const r = f.rows[i]!;
        out[b] = r.ok
          ? {
              ok: true,
              simsPerSecond: r.simulationsPerSecond!,
              simsPerCpuSecond: r.simulationsPerCpuSecond!,
              ...(torch?.ok
                ? {
                    ratioToTorch: r.simulationsPerSecond! / torch.simulationsPerSecond!,
                    ratioToTorchCpu: r.simulationsPerCpuSecond! / torch.simulationsPerCpuSecond!,
                    ratioToTorchCpuEach: (r.reps ?? []).map(
                      (x, j) => x.simulationsPerCpuSecond / torch.reps![j]!.simulationsPerCpuSecond,
                    ),
                  }
                : {}),
            }
          : { ok: false, reason: r.reason ?? 'failed' };
      });
      out.torch = torch?.ok
        ? {
            ok: true,
            simsPerSecond: torch.simulationsPerSecond!,
            simsPerCpuSecond: torch.simulationsPerCpuSecond!,
            ...(torch.version ? { version: torch.version } : {}),
          }
        : { ok: false, reason: torch?.reason ?? 'missing' };
      return out;
    },
    want('trainThroughput'),
  );

  let defenseRuns: DefenseCostFigures | undefined;
  const defenseCostRatios = await part(
    'defenseCostRatios',
    wall,
    () => {
      const f = runDefenseCost({
        ...sizes.defense,
        beta: 0.01,
        reps: 3,
        seed: 0,
        backend: 'wasm',
        defenses: ['none', ...SUITE_DEFENSES],
      });
      defenseRuns = f;
      if (!f.rows.some((r) => r.label === 'none')) throw new Error('the undefended run failed');
      const ratios: Record<string, number | null> = {};
      for (const d of SUITE_DEFENSES)
        ratios[d] = f.rows.find((r) => r.label === d)?.ratioToNone ?? null;
      return ratios;
    },
    want('defenseCostRatios', 'fimStepVsTorch'),
  );

  // PyTorch's side of both comparisons, each part in a process of its own.
  const torch = await part(
    'torchFimPgd',
    wall,
    () => runTorchFimPgd({ install: !opts.noInstall, reps: sizes.sideBySide.reps }),
    want('fimStepVsTorch', 'evaluationThroughput'),
  );
  const torchSide = isFailed(torch) ? { ok: false as const, reason: torch.error } : torch;
  const fimStepVsTorch = await part(
    'fimStepVsTorch',
    wall,
    () => {
      const r = fimFromRows(defenseRuns?.rows ?? [], torchSide);
      if (isFailed(r)) throw new Error(r.error);
      return r;
    },
    want('fimStepVsTorch'),
  );
  const evaluation = await part(
    'evaluationThroughput',
    wall,
    () =>
      evaluationThroughput(
        runBackendPgd({ backend: 'wasm', reps: sizes.sideBySide.reps }),
        torchSide,
      ),
    want('evaluationThroughput'),
  );

  const simulatorThroughput = await part(
    'simulatorThroughput',
    wall,
    () => {
      const f = runSimulators(sizes.simulators);
      return Object.fromEntries(
        Object.entries(f).map(([k, r]) => [
          k,
          { simsPerSecond: r.simsPerSecond, simsPerCpuSecond: r.simsPerCpuSecond },
        ]),
      );
    },
    want('simulatorThroughput'),
  );

  const unpacked = await part(
    'orchestrationUnpacked',
    wall,
    async () => {
      const f = await runOrchestration(sizes.orchestrationUnpacked);
      return {
        trialsPerSecond: f.trialsPerSecond,
        overheadMsPerTrial: f.overheadMsPerTrial,
        pack: 1 as const,
        details: f,
      };
    },
    want('orchestration'),
  );
  const orchestration = await part(
    'orchestration',
    wall,
    async () => {
      const f = await runOrchestration(sizes.orchestration);
      return {
        trialsPerSecond: f.trialsPerSecond,
        overheadMsPerTrial: f.overheadMsPerTrial,
        trials: f.trials,
        pack: sizes.orchestration.pack,
        unpacked: isFailed(unpacked)
          ? unpacked
          : {
              trialsPerSecond: unpacked.trialsPerSecond,
              overheadMsPerTrial: unpacked.overheadMsPerTrial,
              pack: 1 as const,
            },
        details: { packed: f, unpacked: isFailed(unpacked) ? unpacked : unpacked.details },
      };
    },
    want('orchestration'),
  );

  const mongoWritesPerSecond = await part(
    'mongoWritesPerSecond',
    wall,
    async () => {
      const f = await runMongoWrites(sizes.mongo);
      return {
        single: f.single.perSecond,
        batched: f.batched.perSecond,
        batchSize: f.batched.perCall,
        trialTransitions: f.trialTransitions.perSecond,
        details: f,
      };
    },
    want('mongoWritesPerSecond'),
  );

  wall.total = (performance.now() - t0) / 1000;
  const { loadavg } = await import('node:os');
  return {
    machine: { ...machine, loadAverage1mAtEnd: Math.round(100 * loadavg()[0]!) / 100 },
    quick: opts.quick,
    command: `npm run bench --${opts.quick ? ' --quick' : ''}${opts.only ? ` --only ${opts.only.join(',')}` : ''}`,
    wallS: wall,
    settings: sizes,
    trainThroughput,
    defenseCostRatios,
    fimStepVsTorch,
    evaluationThroughput: evaluation,
    simulatorThroughput,
    orchestration,
    mongoWritesPerSecond,
  };
}

const isFailed = (v: unknown): v is Failed =>
  typeof v === 'object' && v !== null && 'error' in v && typeof v.error === 'string';

const f0 = (v: number) => Math.round(v).toLocaleString('en-US');

/** The suite's figures as one markdown table, after the machine description. */
export function suiteTable(s: SuiteFigures): string {
  const rows: string[][] = [];
  const add = (bench: string, what: string, value: string, note = '') =>
    rows.push([bench, what, value, note]);
  const fail = (bench: string, v: Failed) => {
    if (v.error !== NOT_RUN) add(bench, 'failed', '-', v.error.slice(0, 120));
  };

  const tt = s.trainThroughput;
  if (isFailed(tt)) fail('train throughput', tt);
  else {
    const settings = s.settings.throughput;
    for (const [k, r] of Object.entries(tt)) {
      const name =
        k === 'torch' ? `torch ${r.version ?? ''}`.trim() : k.startsWith('tfjs-') ? k : `tfjs-${k}`;
      if (!r.ok) {
        add('train throughput', name, 'unavailable', r.reason ?? '');
        continue;
      }
      add(
        'train throughput',
        `${name} sims/s (wall; per CPU-s)`,
        `${f0(r.simsPerSecond!)}; ${f0(r.simsPerCpuSecond!)}`,
        r.ratioToTorch !== undefined
          ? `vs torch ${r.ratioToTorch.toFixed(3)} wall, ${r.ratioToTorchCpu!.toFixed(3)} CPU${
              (r.ratioToTorchCpuEach?.length ?? 0) > 1
                ? ` (medians of ${r.ratioToTorchCpuEach!.length} interleaved runs; CPU ratio each: ${r.ratioToTorchCpuEach!.map((x) => x.toFixed(2)).join(', ')})`
                : ''
            }`
          : `MAF gaussian_linear, n ${settings.n}, ${settings.epochs} epochs${settings.reps && settings.reps > 1 ? `, median of ${settings.reps} runs` : ''}`,
      );
    }
  }
  const dc = s.defenseCostRatios;
  if (isFailed(dc)) fail('defense cost', dc);
  else {
    for (const d of SUITE_DEFENSES) {
      const r = dc[d];
      const adv = dc.adversarial;
      add(
        'defense cost',
        `${d} / none (train time)`,
        typeof r === 'number' ? r.toFixed(2) : 'failed',
        `n ${s.settings.defense.n}, ${s.settings.defense.epochs} epochs, beta 0.01` +
          (d === 'fim'
            ? `; the exact estimator${typeof r === 'number' && typeof adv === 'number' ? `, ${(r / adv).toFixed(2)}x adversarial` : ''}`
            : d === 'fim-fast'
              ? '; the cheap estimator'
              : ''),
      );
    }
  }
  for (const r of sideBySideRows(s.fimStepVsTorch, s.evaluationThroughput))
    if (r[3] !== NOT_RUN) rows.push(r);
  const st = s.simulatorThroughput;
  if (isFailed(st)) fail('simulators', st);
  else
    for (const [task, r] of Object.entries(st))
      add(
        'simulators',
        `${task} sims/s (wall; per CPU-s)`,
        `${f0(r.simsPerSecond)}; ${f0(r.simsPerCpuSecond)}`,
      );
  const o = s.orchestration;
  if (isFailed(o)) fail('orchestration', o);
  else {
    const stalled = (o.details as { packed: { stalled?: string } }).packed.stalled;
    add(
      'orchestration',
      'trials/s',
      o.trialsPerSecond.toFixed(1),
      `${o.trials} trivial trials, ${o.pack} per pack${stalled ? `, completed before the sweep stalled (${stalled.slice(0, 90)})` : ''}`,
    );
    add(
      'orchestration',
      'overhead ms/trial',
      o.overheadMsPerTrial.toFixed(1),
      o.overheadMsPerTrial <= 50 ? 'bar 50 ms: met' : 'bar 50 ms: NOT met',
    );
    if (isFailed(o.unpacked)) fail('orchestration, a workflow per trial', o.unpacked);
    else
      add(
        'orchestration',
        'overhead ms/trial, a workflow per trial',
        o.unpacked.overheadMsPerTrial.toFixed(1),
        'pack 1',
      );
  }
  const m = s.mongoWritesPerSecond;
  if (isFailed(m)) fail('mongo writes', m);
  else {
    add('mongo writes', 'evaluations/s, single (1 per call)', f0(m.single));
    add('mongo writes', `evaluations/s, batched (${m.batchSize} per call)`, f0(m.batched));
    add(
      'mongo writes',
      'trial transitions/s (1 per call)',
      f0(m.trialTransitions),
      `FerretDB _id lookups: ${(m.details as { idLookups?: string }).idLookups ?? '?'}`,
    );
  }
  const secs = Object.entries(s.wallS)
    .map(([k, v]) => `${k} ${v.toFixed(0)} s`)
    .join(', ');
  return [
    `Machine (${s.command}):`,
    '',
    ...machineLines(s.machine),
    `- load average (1 min) at the end: ${s.machine.loadAverage1mAtEnd}`,
    '',
    '| bench | figure | value | note |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    `Wall time: ${secs}.`,
  ].join('\n');
}

export async function cli(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const s = await runSuite({
    quick: a.has('quick'),
    noInstall: !a.has('install-torch'),
    only: parseOnly(a.get('only')),
  });
  if (a.has('json')) console.log(JSON.stringify(s));
  else console.log(suiteTable(s));
}
