// Validation of sweep specs: JSON Schema (ajv, defaults filled) plus the cross-field rules a schema
// cannot say, each failure reported as one SpecError sentence with the JSON path. This module pulls
// in ajv, so workflow code imports expand/canonical/hash instead and trusts an already validated spec.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { canonicalJson } from './canonical.js';
import { SpecError, specPath } from './errors.js';
import { countEvaluations, countTrials, defenseVariants } from './expand.js';
import { FORBIDDEN_KEYS, parseJsonText } from './json-text.js';
import {
  DEFENSE_GRIDS,
  DEFENSE_OPTIONS,
  MAX_DEPTH,
  MAX_EVALUATIONS,
  MAX_TRIALS,
  SWEEP_SPEC_SCHEMA,
} from './schema.js';
import type { EstimatorSpec, SearchRange, SweepSpec, TrainingOptions } from './types.js';
import { REFERENCE_POSTERIOR_TASKS } from './names.js';

export { SpecError } from './errors.js';

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  compiled ??= new Ajv({
    useDefaults: true,
    allErrors: false,
    verbose: true,
    allowUnionTypes: true,
    strict: true,
  }).compile(SWEEP_SPEC_SCHEMA);
  return compiled;
}

/** Most nodes a spec object may hold (far above any legitimate spec; keeps the copy bounded). */
const MAX_NODES = 200_000;

/**
 * A deep copy made only of JSON data in fresh plain objects, so that ajv's defaults never write into
 * the caller's object and nothing exotic (prototypes, getters' classes, NaN) gets through.
 */
function plainCopy(value: unknown): unknown {
  let nodes = 0;
  const copy = (v: unknown, path: (string | number)[]): unknown => {
    if (++nodes > MAX_NODES)
      throw new SpecError('spec', `the spec holds more than ${MAX_NODES} values`);
    if (path.length > MAX_DEPTH)
      throw new SpecError(specPath(path), `nested deeper than ${MAX_DEPTH} levels`);
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number') {
      if (!Number.isFinite(v))
        throw new SpecError(specPath(path), `must be a finite number (got ${v})`);
      return v;
    }
    // Array.from visits holes too, so a sparse array fails on its missing item.
    if (Array.isArray(v)) return Array.from(v, (item, i) => copy(item, [...path, i]));
    if (typeof v === 'object') {
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null)
        throw new SpecError(specPath(path), 'must be plain JSON data');
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v)) {
        if (FORBIDDEN_KEYS.has(key))
          throw new SpecError(
            specPath([...path, key]),
            `the key "${key}" is not allowed anywhere in a spec`,
          );
        const item = (v as Record<string, unknown>)[key];
        if (item === undefined) continue;
        // defineProperty, not assignment: a key can never reach a setter or the prototype.
        Object.defineProperty(out, key, {
          value: copy(item, [...path, key]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    throw new SpecError(
      specPath(path),
      v === undefined
        ? 'must be JSON data (got undefined)'
        : `must be JSON data, not a ${typeof v}`,
    );
  };
  return copy(value, []);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  object: 'an object',
  array: 'a list',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
  null: 'null',
};

function typeWords(t: unknown): string {
  const types = Array.isArray(t) ? t : String(t).split(',');
  return types.map((x) => TYPE_WORDS[String(x)] ?? String(x)).join(' or ');
}

/** The value at an ajv instancePath (`/a/0/b`) of `root`. */
function at(root: unknown, pointer: string): unknown {
  let node = root;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** `defense "trades"` or `estimator "nsf"` when the object at `pointer` names one. */
function ownerOf(root: unknown, pointer: string): string | undefined {
  const node = at(root, pointer);
  if (node === null || typeof node !== 'object') return undefined;
  const o = node as Record<string, unknown>;
  if (typeof o.name === 'string' && /\/defenses\/\d+$/.test(pointer)) return `defense "${o.name}"`;
  if (typeof o.kind === 'string') return `estimator "${o.kind}"`;
  return undefined;
}

function toSpecError(e: ErrorObject, root: unknown): SpecError {
  const pointer = e.instancePath;
  const path = `spec${pointer}`;
  const params = e.params as Record<string, unknown>;
  const parentSchema = (e.parentSchema ?? {}) as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const owner = ownerOf(root, pointer);
      const need = `missing required property "${String(params.missingProperty)}"`;
      return new SpecError(
        path,
        owner ? `${owner} needs property "${String(params.missingProperty)}"` : need,
      );
    }
    case 'additionalProperties': {
      const allowed = Object.keys((parentSchema.properties ?? {}) as object);
      return new SpecError(
        path,
        `unknown property "${String(params.additionalProperty)}"; allowed: ${allowed.join(', ')}`,
      );
    }
    case 'false schema': {
      const parent = pointer.slice(0, pointer.lastIndexOf('/'));
      const owner = ownerOf(root, parent);
      return new SpecError(path, owner ? `not allowed for ${owner}` : 'not allowed here');
    }
    case 'enum': {
      const what = typeof parentSchema.title === 'string' ? parentSchema.title : 'value';
      const known = (params.allowedValues as unknown[]).map(String).join(', ');
      return new SpecError(path, `unknown ${what} ${describe(e.data)}; known: ${known}`);
    }
    case 'type':
      return new SpecError(path, `must be ${typeWords(params.type)} (got ${describe(e.data)})`);
    case 'uniqueItems':
      return new SpecError(
        path,
        `items ${String(params.j)} and ${String(params.i)} are equal; list each value once`,
      );
    case 'minItems':
    case 'maxItems': {
      const limit = Number(params.limit);
      const bound = e.keyword === 'minItems' ? 'at least' : 'at most';
      return new SpecError(
        path,
        `must list ${bound} ${limit} item${limit === 1 ? '' : 's'} (got ${describe(e.data)})`,
      );
    }
    case 'minLength':
      return new SpecError(path, 'must not be empty');
    case 'maxLength':
      return new SpecError(
        path,
        `must be at most ${String(params.limit)} characters long (got ${String((e.data as string).length)})`,
      );
    default:
      return new SpecError(path, `${e.message ?? 'is invalid'} (got ${describe(e.data)})`);
  }
}

function normalizeEstimator(e: unknown): EstimatorSpec {
  if (typeof e === 'string') return { kind: e as EstimatorSpec['kind'], architecture: {} };
  const o = e as EstimatorSpec;
  return { ...o, architecture: o.architecture ?? {} };
}

/**
 * sbi's defaults for the architecture settings that are checked against each other below
 * (sbi/estimators maf.ts MAF_DEFAULTS, nsf.ts NSF_DEFAULTS; a unit test keeps them equal).
 */
export const ARCHITECTURE_DEFAULTS = {
  maf: { logScaleMin: -7, logScaleMax: 5 },
  nsf: { bins: 12, minBinWidth: 1e-3, minBinHeight: 1e-3 },
} as const;

/**
 * The rules sbi's estimator constructors enforce between settings: a spec breaking one would only
 * fail when its trials start training, so it is refused here, before anything starts.
 */
function checkArchitecture(e: EstimatorSpec, i: number): void {
  const a = e.architecture as Record<string, number | undefined>;
  const path = `spec/estimators/${i}/architecture`;
  if (e.kind === 'maf' || e.kind === 'maf_ensemble') {
    const min = a.logScaleMin ?? ARCHITECTURE_DEFAULTS.maf.logScaleMin;
    const max = a.logScaleMax ?? ARCHITECTURE_DEFAULTS.maf.logScaleMax;
    if (!(min < max))
      throw new SpecError(
        path,
        `logScaleMin (${min}) must be below logScaleMax (${max}) for estimator "${e.kind}"`,
      );
  }
  if (e.kind === 'nsf') {
    const bins = a.bins ?? ARCHITECTURE_DEFAULTS.nsf.bins;
    if (bins < 2)
      throw new SpecError(`${path}/bins`, `must be >= 2 for estimator "nsf" (got ${bins})`);
    for (const key of ['minBinWidth', 'minBinHeight'] as const) {
      const v = a[key] ?? ARCHITECTURE_DEFAULTS.nsf[key];
      if (!(v * bins < 1))
        throw new SpecError(
          `${path}/${key}`,
          `must be below 1/bins (1/${bins}) for estimator "nsf" (got ${v})`,
        );
    }
  }
}

/** The diagnostics need what they score against and enough test pairs. */
/** The examples read the evaluation's per-point KL: their (attack, objective, eps) must be evaluated. */
function checkExamples(evaluation: SweepSpec['evaluation']): void {
  const ex = evaluation.examples;
  if (!ex) return;
  if (!evaluation.eps.includes(ex.eps))
    throw new SpecError(
      'spec/evaluation/examples/eps',
      `must be one of evaluation/eps (${evaluation.eps.join(', ')}) (got ${ex.eps})`,
    );
  if (ex.attack !== undefined && !evaluation.attacks.includes(ex.attack))
    throw new SpecError(
      'spec/evaluation/examples/attack',
      `must be one of evaluation/attacks (${evaluation.attacks.join(', ')}) (got ${ex.attack})`,
    );
  if (ex.objective !== undefined && !evaluation.objectives.includes(ex.objective))
    throw new SpecError(
      'spec/evaluation/examples/objective',
      `must be one of evaluation/objectives (${evaluation.objectives.join(', ')}) (got ${ex.objective})`,
    );
}

function checkMetrics(spec: SweepSpec): void {
  const { evaluation } = spec;
  const metrics = evaluation.metrics ?? [];
  const i = (m: string) => metrics.indexOf(m as never);
  if (metrics.includes('c2st')) {
    const without = spec.tasks.filter(
      (t) => !(REFERENCE_POSTERIOR_TASKS as readonly string[]).includes(t),
    );
    if (without.length > 0)
      throw new SpecError(
        `spec/evaluation/metrics/${i('c2st')}`,
        `c2st needs a reference posterior, which task${without.length > 1 ? 's' : ''} ${without.join(', ')} ${without.length > 1 ? 'have' : 'has'} none (tasks with one: ${REFERENCE_POSTERIOR_TASKS.join(', ')})`,
      );
  }
  if (metrics.includes('sbc') && evaluation.nTest < 2)
    throw new SpecError(
      `spec/evaluation/metrics/${i('sbc')}`,
      `sbc needs at least 2 test pairs (evaluation/nTest is ${evaluation.nTest})`,
    );
  const sbc = evaluation.sbc;
  if (sbc?.bins !== undefined && sbc.bins > (sbc.samples ?? 100) + 1)
    throw new SpecError(
      'spec/evaluation/sbc/bins',
      `must be at most samples + 1 (${(sbc.samples ?? 100) + 1}), the number of rank values (got ${sbc.bins})`,
    );
  for (const key of ['sbc', 'c2st'] as const)
    if (evaluation[key] !== undefined && !metrics.includes(key))
      throw new SpecError(
        `spec/evaluation/${key}`,
        `sets ${key} options but evaluation/metrics does not list "${key}"`,
      );
}

/** The rules of a search block a schema cannot say; `spec.search` has passed the schema. */
function checkSearch(spec: SweepSpec): void {
  const search = spec.search!;
  for (const axis of ['tasks', 'estimators', 'budgets', 'seeds'] as const)
    if (spec[axis].length !== 1)
      throw new SpecError(
        `spec/${axis}`,
        `a search sweep draws one front, so it takes exactly one ${axis.slice(0, -1)} (got ${spec[axis].length})`,
      );
  const seen = new Set<string>();
  search.space.forEach((choice, i) => {
    const path = `spec/search/space/${i}`;
    if (seen.has(choice.defense))
      throw new SpecError(
        `${path}/defense`,
        `defense "${choice.defense}" is listed twice; give each defense once`,
      );
    seen.add(choice.defense);
    for (const param of ['beta', 'trainEps'] as const) {
      const rule = DEFENSE_GRIDS[choice.defense][param === 'beta' ? 'betas' : 'trainEps'];
      const value = choice[param];
      if (rule === 'forbidden' && value !== undefined)
        throw new SpecError(`${path}/${param}`, `not allowed for defense "${choice.defense}"`);
      if (rule === 'required' && value === undefined)
        throw new SpecError(path, `defense "${choice.defense}" needs property "${param}"`);
      if (value === undefined && Array.isArray(rule)) choice[param] = rule[0];
      if (typeof value === 'object') checkRange(value, `${path}/${param}`);
    }
    for (const opt of ['mcSamples', 'probes'] as const)
      if (
        choice[opt] !== undefined &&
        !(DEFENSE_OPTIONS[choice.defense] as readonly string[]).includes(opt)
      )
        throw new SpecError(`${path}/${opt}`, `not allowed for defense "${choice.defense}"`);
  });
  const metrics = search.objectives.map((o) => o.metric);
  if (!metrics.includes('testNll') || !metrics.includes('kl'))
    throw new SpecError(
      'spec/search/objectives',
      `must be one testNll and one kl objective (got ${metrics.join(', ')})`,
    );
  search.objectives.forEach((o, i) => {
    const path = `spec/search/objectives/${i}`;
    const extra = o as Partial<Record<'attack' | 'objective' | 'eps', unknown>>;
    o.scale ??= o.metric === 'kl' ? 'log' : 'linear';
    if (o.metric === 'testNll') {
      for (const key of ['attack', 'objective', 'eps'] as const)
        if (extra[key] !== undefined)
          throw new SpecError(`${path}/${key}`, 'not allowed for the testNll objective');
      return;
    }
    for (const key of ['attack', 'objective', 'eps'] as const)
      if (extra[key] === undefined)
        throw new SpecError(path, `the kl objective needs property "${key}"`);
    const e = spec.evaluation;
    if (!e.attacks.includes(o.attack))
      throw new SpecError(
        `${path}/attack`,
        `must be one of evaluation/attacks (${e.attacks.join(', ')}) (got ${o.attack})`,
      );
    if (!e.objectives.includes(o.objective))
      throw new SpecError(
        `${path}/objective`,
        `must be one of evaluation/objectives (${e.objectives.join(', ')}) (got ${o.objective})`,
      );
    if (!e.eps.includes(o.eps))
      throw new SpecError(
        `${path}/eps`,
        `must be one of evaluation/eps (${e.eps.join(', ')}) (got ${o.eps})`,
      );
  });
  if (search.batch > search.budget)
    throw new SpecError(
      'spec/search/batch',
      `must be at most the search budget (${search.budget}) (got ${search.batch})`,
    );
  const grid = countTrials(spec);
  if (grid > search.budget)
    throw new SpecError(
      'spec/search/budget',
      `must cover the ${grid} trials of the defenses grid, which are the search's round 0 (got ${search.budget})`,
    );
}

function checkRange(r: SearchRange, path: string): void {
  if (r.min > r.max)
    throw new SpecError(`${path}/min`, `must be below max (${r.max}) (got ${r.min})`);
  if (r.min === r.max)
    throw new SpecError(
      path,
      `is an empty range (min = max = ${r.min}); give the value itself to fix it`,
    );
  if (r.scale === 'log' && r.min <= 0)
    throw new SpecError(`${path}/min`, `must be above 0 on a log scale (got ${r.min})`);
}

/**
 * Training settings written out at their meaning when absent (stopRule 'rabi', anneals 0,
 * dropLast false, an annealPatience equal to patience) are dropped, so they name the same trials
 * and models as a spec that leaves them out. annealPatience only beside anneals: without them it is
 * an error whatever its value (checkSemantics).
 */
function normalizeTraining(t: TrainingOptions): TrainingOptions {
  const out = { ...t };
  if (out.stopRule === 'rabi') delete out.stopRule;
  if (out.anneals === 0) delete out.anneals;
  if (out.dropLast === false) delete out.dropLast;
  if (out.anneals !== undefined && out.annealPatience === out.patience) delete out.annealPatience;
  return out;
}

/** The cross-field rules; `spec` has passed the schema and has its defaults. */
function checkSemantics(spec: SweepSpec): void {
  const { training, evaluation } = spec;
  if (training.minEpochs > training.maxEpochs)
    throw new SpecError(
      'spec/training/minEpochs',
      `must be <= maxEpochs (${training.maxEpochs}) (got ${training.minEpochs})`,
    );
  const smallest = Math.min(...spec.budgets);
  // Under rabi the validation rows are simulated beside the budget, not taken out of it.
  if (training.valSize !== undefined && training.preset !== 'rabi' && training.valSize >= smallest)
    throw new SpecError(
      'spec/training/valSize',
      `must be smaller than the smallest budget (${smallest}) so that training data is left (got ${training.valSize})`,
    );
  if (training.annealFactor !== undefined && training.anneals === undefined)
    throw new SpecError(
      'spec/training/annealFactor',
      `has no effect without training/anneals of at least 1 (got ${training.annealFactor})`,
    );
  if (training.annealPatience !== undefined && training.anneals === undefined)
    throw new SpecError(
      'spec/training/annealPatience',
      `has no effect without training/anneals of at least 1 (got ${training.annealPatience})`,
    );
  if (!evaluation.eps.includes(evaluation.tradeoffEps))
    throw new SpecError(
      'spec/evaluation/tradeoffEps',
      `must be one of evaluation/eps (${evaluation.eps.join(', ')}) (got ${evaluation.tradeoffEps})`,
    );
  if (
    evaluation.tradeoffAttack !== undefined &&
    !evaluation.attacks.includes(evaluation.tradeoffAttack)
  )
    throw new SpecError(
      'spec/evaluation/tradeoffAttack',
      `must be one of evaluation/attacks (${evaluation.attacks.join(', ')}) (got ${evaluation.tradeoffAttack})`,
    );
  if (
    evaluation.tradeoffObjective !== undefined &&
    !evaluation.objectives.includes(evaluation.tradeoffObjective)
  )
    throw new SpecError(
      'spec/evaluation/tradeoffObjective',
      `must be one of evaluation/objectives (${evaluation.objectives.join(', ')}) (got ${evaluation.tradeoffObjective})`,
    );
  checkExamples(evaluation);
  checkMetrics(spec);
  const estimators = new Map<string, number>();
  spec.estimators.forEach((e, i) => {
    checkArchitecture(e, i);
    const key = canonicalJson({ kind: e.kind, architecture: e.architecture });
    const first = estimators.get(key);
    if (first !== undefined)
      throw new SpecError(
        `spec/estimators/${i}`,
        `repeats estimator ${first} (same kind and architecture), which would run every trial twice`,
      );
    estimators.set(key, i);
  });
  const variants = new Map<string, number>();
  spec.defenses.forEach((d, i) => {
    for (const v of defenseVariants({ defenses: [d] })) {
      const key = canonicalJson(v);
      const first = variants.get(key);
      if (first !== undefined)
        throw new SpecError(
          `spec/defenses/${i}`,
          `repeats a grid point of defense ${first} (${key}), which would run those trials twice`,
        );
      variants.set(key, i);
    }
  });
  if (spec.pack > spec.concurrency)
    throw new SpecError(
      'spec/pack',
      `must be at most concurrency (${spec.concurrency}), since a pack's trials are in flight together (got ${spec.pack})`,
    );
  const trials = countTrials(spec);
  if (trials > MAX_TRIALS)
    throw new SpecError(
      'spec',
      `the grid expands to ${trials} trials (tasks x estimators x defense grid points x budgets x seeds); at most ${MAX_TRIALS} are allowed`,
    );
  const evaluations = countEvaluations(spec);
  if (evaluations > MAX_EVALUATIONS)
    throw new SpecError(
      'spec/evaluation',
      `the sweep asks for ${evaluations} evaluations (trials x attacks x objectives x eps); at most ${MAX_EVALUATIONS} are allowed`,
    );
}

/**
 * Checks a spec object and returns a validated copy with defaults filled and estimator shorthands
 * ("maf") expanded to objects. The argument is never modified. Throws SpecError.
 */
export function validateSweepSpec(obj: unknown): SweepSpec {
  const data = plainCopy(obj);
  const validate = validator();
  if (!validate(data)) {
    const first = validate.errors?.[0];
    if (!first) throw new SpecError('spec', 'is not a valid sweep spec');
    throw toSpecError(first, data);
  }
  const raw = data as Omit<SweepSpec, 'estimators'> & { estimators: unknown[] };
  if (raw.defenses === undefined && raw.search === undefined)
    throw new SpecError('spec', 'missing required property "defenses"');
  // A search without a grid starts from no trials (the schema asks every other spec for defenses).
  const spec: SweepSpec = {
    ...raw,
    training: normalizeTraining(raw.training),
    defenses: raw.defenses ?? [],
    estimators: raw.estimators.map(normalizeEstimator),
  };
  checkSemantics(spec);
  if (spec.search) checkSearch(spec);
  return spec;
}

/** Parses and validates spec text (the contents of a spec file). Throws SpecError. */
export function parseSweepSpec(text: string): SweepSpec {
  return validateSweepSpec(parseJsonText(text));
}
