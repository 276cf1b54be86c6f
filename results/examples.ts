// Adversarial examples (the paper's Fig. 2 and the pyloric figure): per completed trial of a sweep
// whose spec asks for them, its most damaging test point at one evaluated (attack, objective, eps),
// stored as what the plots need: the point's theta, x and x~, histograms of the clean and attacked
// posterior marginals, and a few posterior-predictive simulations from each. The raw samples go to
// an artifact (activities/examples.ts). One document per (trial, attack, objective, eps), `_id` that
// key, written whole: a retried activity writes the same document. FerretDB stores no nested arrays,
// so per-dimension and per-simulation arrays are arrays of objects.
import type { Collection, Db } from 'mongodb';
import type { AdversarialExample } from '../sbi/adversarial-example.js';
import { documentValidator } from './validate.js';

export const EXAMPLES_COLLECTION = 'adversarial_examples';

/** Bins of each marginal's histogram. */
export const MARGINAL_BINS = 40;

export interface MarginalHistogram {
  /** The range binned: every sample of both posteriors and the true value. */
  lo: number;
  hi: number;
  clean: number[];
  attacked: number[];
  /** Posterior means and standard deviations. */
  cleanMean: number;
  cleanStd: number;
  attackedMean: number;
  attackedStd: number;
}

export interface PredictiveTrace {
  /** The posterior the parameters were drawn from. */
  from: 'clean' | 'attacked';
  /** Non-finite values (a failed simulation) as null. */
  x: (number | null)[];
}

export interface ExampleDoc {
  _id: string;
  trialId: string;
  task: string;
  /** The task's parameter names, and its x as named traces back to back where it is. */
  paramNames: string[];
  xTraces?: string[];
  attack: string;
  objective: string;
  eps: number;
  epsAbs: number;
  /** The test point's index and how many the evaluation had. */
  index: number;
  nTest: number;
  /** Its KL in the trial's evaluation (what picked it), the mean there, and under this re-attack. */
  klEvaluation: number | null;
  klMeanEvaluation: number | null;
  kl: number | null;
  theta: number[];
  x: number[];
  xAdv: number[];
  samples: number;
  marginals: MarginalHistogram[];
  predictive: PredictiveTrace[];
  /** Predictive simulations that came back finite, of those drawn, per posterior. */
  predictiveFinite: { clean: number; attacked: number; drawn: number };
  /** The full samples and simulations (JSON), for export. */
  artifact: string;
  updatedAt: Date;
}

export function exampleId(trialId: string, attack: string, objective: string, eps: number): string {
  return `${trialId}/${attack}/${objective}/${eps}`;
}

const numbers = { type: 'array', items: { type: 'number' } } as const;
const schema = {
  type: 'object',
  required: [
    '_id',
    'trialId',
    'task',
    'attack',
    'objective',
    'eps',
    'index',
    'theta',
    'x',
    'xAdv',
    'marginals',
    'predictive',
    'artifact',
  ],
  properties: {
    _id: { type: 'string' },
    trialId: { type: 'string' },
    task: { type: 'string' },
    paramNames: { type: 'array', items: { type: 'string' } },
    xTraces: { type: 'array', items: { type: 'string' } },
    attack: { type: 'string' },
    objective: { type: 'string' },
    eps: { type: 'number' },
    epsAbs: { type: 'number' },
    index: { type: 'integer', minimum: 0 },
    nTest: { type: 'integer', minimum: 1 },
    klEvaluation: { type: ['number', 'null'] },
    klMeanEvaluation: { type: ['number', 'null'] },
    kl: { type: ['number', 'null'] },
    theta: numbers,
    x: numbers,
    xAdv: numbers,
    samples: { type: 'integer', minimum: 1 },
    marginals: {
      type: 'array',
      items: {
        type: 'object',
        required: ['lo', 'hi', 'clean', 'attacked'],
        properties: {
          lo: { type: 'number' },
          hi: { type: 'number' },
          clean: numbers,
          attacked: numbers,
        },
      },
    },
    predictive: {
      type: 'array',
      items: {
        type: 'object',
        required: ['from', 'x'],
        properties: {
          from: { enum: ['clean', 'attacked'] },
          x: { type: 'array', items: { type: ['number', 'null'] } },
        },
      },
    },
    artifact: { type: 'string' },
  },
} as const;

const validateExample = documentValidator(EXAMPLES_COLLECTION, schema);

/** Six significant digits: plots need no more, and the documents stay a third of the size. */
function round(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(6)) : v;
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? round(v) : null;
}

function moments(values: number[]): { mean: number; std: number } {
  let s = 0;
  for (const v of values) s += v;
  const mean = s / values.length;
  let q = 0;
  for (const v of values) q += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(q / Math.max(1, values.length - 1)) };
}

/** Counts of `values` in `bins` equal bins over [lo, hi] (hi falls in the last bin). */
export function histogram(
  values: readonly number[],
  lo: number,
  hi: number,
  bins: number,
): number[] {
  const counts = new Array<number>(bins).fill(0);
  const width = (hi - lo) / bins;
  for (const v of values) {
    if (!(v >= lo && v <= hi)) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / width))]!++;
  }
  return counts;
}

/** The marginal histograms of dimension d of both posteriors, over a range that holds both and theta. */
export function marginalsOf(
  clean: readonly number[][],
  attacked: readonly number[][],
  theta: readonly number[],
  bins = MARGINAL_BINS,
): MarginalHistogram[] {
  return theta.map((t, d) => {
    const c = clean.map((row) => row[d]!).filter(Number.isFinite);
    const a = attacked.map((row) => row[d]!).filter(Number.isFinite);
    let lo = Number.isFinite(t) ? t : Infinity;
    let hi = Number.isFinite(t) ? t : -Infinity;
    for (const v of [...c, ...a]) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    if (!Number.isFinite(lo)) {
      lo = 0;
      hi = 1;
    }
    if (hi - lo < 1e-9 * Math.max(1, Math.abs(lo))) {
      lo -= 0.5;
      hi += 0.5;
    }
    const mc = moments(c);
    const ma = moments(a);
    return {
      lo: round(lo),
      hi: round(hi),
      clean: histogram(c, lo, hi, bins),
      attacked: histogram(a, lo, hi, bins),
      cleanMean: round(mc.mean),
      cleanStd: round(mc.std),
      attackedMean: round(ma.mean),
      attackedStd: round(ma.std),
    };
  });
}

export interface ExampleContext {
  trialId: string;
  task: string;
  paramNames: readonly string[];
  xTraces?: readonly string[];
  attack: string;
  objective: string;
  nTest: number;
  /** The evaluation's mean KL at the example's (attack, objective, eps). */
  klMeanEvaluation: number;
  /** Predictive simulations kept in the document, per posterior. */
  predictiveKept: number;
  artifact: string;
}

/** The document of an example (sbi/adversarial-example.ts) of one trial. */
export function exampleDoc(ex: AdversarialExample, c: ExampleContext, now: Date): ExampleDoc {
  const finiteRow = (r: number[]) => r.every(Number.isFinite);
  const traces = (from: 'clean' | 'attacked', rows: number[][]): PredictiveTrace[] =>
    rows.slice(0, c.predictiveKept).map((r) => ({ from, x: r.map(finiteOrNull) }));
  return {
    _id: exampleId(c.trialId, c.attack, c.objective, ex.eps),
    trialId: c.trialId,
    task: c.task,
    paramNames: [...c.paramNames],
    ...(c.xTraces ? { xTraces: [...c.xTraces] } : {}),
    attack: c.attack,
    objective: c.objective,
    eps: ex.eps,
    epsAbs: round(ex.epsAbs),
    index: ex.index,
    nTest: c.nTest,
    klEvaluation: finiteOrNull(ex.klAll[ex.index] ?? NaN),
    klMeanEvaluation: finiteOrNull(c.klMeanEvaluation),
    kl: finiteOrNull(ex.kl),
    theta: ex.theta.map(round),
    x: ex.x.map(round),
    xAdv: ex.xAdv.map(round),
    samples: ex.posterior.clean.length,
    marginals: marginalsOf(ex.posterior.clean, ex.posterior.attacked, ex.theta),
    predictive: [
      ...traces('clean', ex.predictive.clean),
      ...traces('attacked', ex.predictive.attacked),
    ],
    predictiveFinite: {
      clean: ex.predictive.clean.filter(finiteRow).length,
      attacked: ex.predictive.attacked.filter(finiteRow).length,
      drawn: ex.predictive.clean.length,
    },
    artifact: c.artifact,
    updatedAt: now,
  };
}

export class ExampleStore {
  readonly collection: Collection<ExampleDoc>;

  constructor(db: Db) {
    this.collection = db.collection<ExampleDoc>(EXAMPLES_COLLECTION);
  }

  /** Writes the example whole (idempotent: keyed by trial, attack, objective and eps). */
  async put(doc: ExampleDoc): Promise<void> {
    validateExample(doc);
    await this.collection.replaceOne({ _id: doc._id }, doc, { upsert: true });
  }

  async has(id: string): Promise<boolean> {
    return (await this.collection.countDocuments({ _id: id }, { limit: 1 })) > 0;
  }

  /** The examples of these trials, in the order of `trialIds`. */
  async ofTrials(trialIds: readonly string[]): Promise<ExampleDoc[]> {
    if (trialIds.length === 0) return [];
    const docs = await this.collection.find({ trialId: { $in: [...trialIds] } }).toArray();
    const order = new Map(trialIds.map((id, i) => [id, i]));
    return docs.sort((a, b) => order.get(a.trialId)! - order.get(b.trialId)! || a.eps - b.eps);
  }
}
