import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  contentId,
  countEvaluations,
  ID_VERSIONS,
  modelContent,
  testSetIdOf,
  trialContent,
  countTrials,
  evaluationPlan,
  expandSweep,
  simulationIdOf,
  sweepIdOf,
  trialIndexer,
} from '../../../sweeps/expand.js';
import type { SweepSpec, TrialConfig } from '../../../sweeps/types.js';
import { parseSweepSpec, validateSweepSpec } from '../../../sweeps/validate.js';
import { baseSpec, root } from './fixtures.js';

const HEX24 = /^[0-9a-f]{24}$/;

/** The same JSON value with every object's keys in reverse order. */
function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .reverse()
        .map(([k, x]) => [k, reverseKeys(x)]),
    );
  return v;
}

const expandRaw = (raw: unknown): { spec: SweepSpec; trials: TrialConfig[] } => {
  const spec = validateSweepSpec(raw);
  return { spec, trials: expandSweep(spec) };
};

describe('expandSweep', () => {
  test('count, order (seed fastest, then budget, defense grid point, estimator, task) and random access', () => {
    const { spec, trials } = expandRaw(baseSpec());
    // 2 tasks x 2 estimators x (1 + 2 + 2) defense points x 2 budgets x 2 seeds.
    assert.equal(trials.length, 80);
    assert.equal(countTrials(spec), 80);
    assert.deepEqual(
      trials
        .slice(0, 6)
        .map((t) => [t.task, t.estimator.kind, t.defense.name, t.defense.beta, t.budget, t.seed]),
      [
        ['gaussian_linear', 'maf', 'none', undefined, 1000, 0],
        ['gaussian_linear', 'maf', 'none', undefined, 1000, 1],
        ['gaussian_linear', 'maf', 'none', undefined, 2000, 0],
        ['gaussian_linear', 'maf', 'none', undefined, 2000, 1],
        ['gaussian_linear', 'maf', 'fim', 0.001, 1000, 0],
        ['gaussian_linear', 'maf', 'fim', 0.001, 1000, 1],
      ],
    );
    assert.deepEqual(
      trials
        .filter((t) => t.defense.name === 'trades' && t.seed === 0 && t.budget === 1000)
        .map((t) => [t.task, t.estimator.kind, t.defense.beta, t.defense.trainEps]),
      [
        ['gaussian_linear', 'maf', 0.1, 0.1],
        ['gaussian_linear', 'maf', 0.1, 0.5],
        ['gaussian_linear', 'nsf', 0.1, 0.1],
        ['gaussian_linear', 'nsf', 0.1, 0.5],
        ['two_moons', 'maf', 0.1, 0.1],
        ['two_moons', 'maf', 0.1, 0.5],
        ['two_moons', 'nsf', 0.1, 0.1],
        ['two_moons', 'nsf', 0.1, 0.5],
      ],
    );
    trials.forEach((t, i) => assert.equal(t.index, i));
    const ix = trialIndexer(spec);
    assert.equal(ix.count, 80);
    assert.equal(ix.sweepId, sweepIdOf(spec));
    for (const i of [0, 1, 17, 79]) assert.deepEqual(ix.at(i), trials[i]);
    assert.throws(() => ix.at(80), RangeError);
    assert.throws(() => ix.at(-1), RangeError);
    assert.throws(() => ix.at(1.5), RangeError);
  });

  test('every trial has distinct 24-hex trial, model, simulation and test-set IDs of the right sharing', () => {
    const { trials } = expandRaw(baseSpec());
    for (const t of trials)
      for (const id of [t.trialId, t.modelId, t.simulationId, t.testSetId]) assert.match(id, HEX24);
    assert.equal(new Set(trials.map((t) => t.trialId)).size, 80);
    assert.equal(new Set(trials.map((t) => t.modelId)).size, 80);
    // Simulations are shared by (task, budget, seed); test sets by (task, nTest, seed).
    assert.equal(new Set(trials.map((t) => t.simulationId)).size, 2 * 2 * 2);
    assert.equal(new Set(trials.map((t) => t.testSetId)).size, 2 * 2);
  });

  test('the evaluation plan is attacks x objectives x eps with distinct IDs', () => {
    const { spec, trials } = expandRaw({
      ...baseSpec(),
      evaluation: {
        attacks: ['l2pgd', 'noise', 'nll'],
        objectives: ['rkl', 'fkl'],
        eps: [0.5, 1, 2],
      },
    });
    const plan = evaluationPlan(trials[3]!);
    assert.equal(plan.length, 3 * 2 * 3);
    assert.deepEqual(
      plan.slice(0, 4).map((e) => [e.attack, e.objective, e.eps]),
      [
        ['l2pgd', 'rkl', 0.5],
        ['l2pgd', 'rkl', 1],
        ['l2pgd', 'rkl', 2],
        ['l2pgd', 'fkl', 0.5],
      ],
    );
    for (const e of plan) {
      assert.equal(e.trialId, trials[3]!.trialId);
      assert.match(e.evalId, HEX24);
    }
    const all = trials.flatMap(evaluationPlan).map((e) => e.evalId);
    assert.equal(new Set(all).size, all.length);
    assert.equal(all.length, countEvaluations(spec));
  });
});

describe('IDs', () => {
  test('golden values: a change to canonical JSON or hashing must bump ID_VERSIONS', () => {
    const spec = validateSweepSpec({
      name: 'golden',
      tasks: ['gaussian_linear'],
      estimators: ['maf'],
      defenses: [{ name: 'fim', betas: [0.01] }],
      seeds: [0],
      budgets: [1000],
    });
    const [t] = expandSweep(spec);
    assert.deepEqual(
      {
        sweepId: sweepIdOf(spec),
        trialId: t!.trialId,
        modelId: t!.modelId,
        simulationId: t!.simulationId,
        testSetId: t!.testSetId,
        evalId: evaluationPlan(t!)[0]!.evalId,
      },
      GOLDEN,
    );
  });

  test("a preset's revision keys only the estimator kind whose meaning it changed", () => {
    const trials = expandSweep(
      validateSweepSpec({
        name: 'revisions',
        tasks: ['gaussian_linear'],
        estimators: ['maf', 'nsf'],
        defenses: [{ name: 'none' }],
        seeds: [0],
        budgets: [1000],
        training: { preset: 'rabi' },
      }),
    );
    const plain = (t: TrialConfig): string => {
      const { task, estimator, defense, budget, seed, training } = t;
      return contentId(ID_VERSIONS.model, { task, estimator, defense, budget, seed, training });
    };
    const maf = trials.find((t) => t.estimator.kind === 'maf')!;
    const nsf = trials.find((t) => t.estimator.kind === 'nsf')!;
    // rabi's MAF means what it meant: its ID is the plain content's.
    assert.equal(maf.modelId, plain(maf));
    // rabi's NSF changed spline (revision 2): an NSF trained before cannot be found under it.
    assert.notEqual(nsf.modelId, plain(nsf));
    assert.deepEqual((modelContent(nsf) as { presetRevision?: number }).presetRevision, 2);
    for (const t of trials) {
      assert.equal(t.modelId, contentId(ID_VERSIONS.model, modelContent(t)));
      assert.equal(t.trialId, contentId(ID_VERSIONS.trial, trialContent(t)));
    }
    // Without the preset nothing is revised.
    const own = expandSweep(
      validateSweepSpec({
        name: 'revisions',
        tasks: ['gaussian_linear'],
        estimators: ['nsf'],
        defenses: [{ name: 'none' }],
        seeds: [0],
        budgets: [1000],
      }),
    )[0]!;
    assert.equal(own.modelId, plain(own));
  });

  test('an ID is the SHA-256 of the canonical JSON of { id: tag, value }, cut to 24 hex digits', () => {
    const text =
      '{"id":"robustsbi.simulation/1","value":{"budget":1000,"seed":0,"task":"gaussian_linear"}}';
    const expected = createHash('sha256').update(text).digest('hex').slice(0, 24);
    assert.equal(simulationIdOf('gaussian_linear', 1000, 0), expected);
    assert.equal(expected, GOLDEN.simulationId);
  });

  test('trial and model IDs are contentId of trialContent / modelContent for every trial', () => {
    for (const raw of [
      baseSpec(),
      {
        ...baseSpec(),
        estimators: [{ kind: 'mdn', architecture: { hidden: [7], components: 3 } }],
        defenses: [
          { name: 'fim-fast', betas: [0, 1e-7, 20], probes: 3 },
          { name: 'adversarial', trainEps: [0.25] },
        ],
        training: { clipNorm: null, valSize: 99 },
      },
    ]) {
      for (const t of expandSweep(validateSweepSpec(raw))) {
        assert.equal(t.trialId, contentId(ID_VERSIONS.trial, trialContent(t)));
        assert.equal(t.modelId, contentId(ID_VERSIONS.model, modelContent(t)));
        assert.equal(t.simulationId, simulationIdOf(t.task, t.budget, t.seed));
        assert.equal(t.testSetId, testSetIdOf(t.task, t.evaluation.nTest, t.seed));
      }
    }
  });

  test('stable across parses, key order, number spelling and estimator shorthand', () => {
    const text = JSON.stringify(baseSpec());
    const a = parseSweepSpec(text);
    const b = parseSweepSpec(JSON.stringify(reverseKeys(baseSpec())));
    const spelled = text
      .replace('0.001', '1e-3')
      .replace('[1000,2000]', '[1e3, 2.0e3]')
      .replace('"maf"', '{"architecture": {}, "kind": "maf"}');
    assert.notEqual(spelled, text);
    const c = parseSweepSpec(spelled);
    const ids = (s: SweepSpec): string[] => [sweepIdOf(s), ...expandSweep(s).map((t) => t.trialId)];
    assert.deepEqual(ids(b), ids(a));
    assert.deepEqual(ids(c), ids(a));
    assert.deepEqual(ids(parseSweepSpec(text)), ids(a));
    // A validated spec survives a JSON round trip (a Temporal payload) and revalidation unchanged.
    const again = validateSweepSpec(JSON.parse(JSON.stringify(a)));
    assert.deepEqual(again, a);
    assert.deepEqual(ids(again), ids(a));
  });

  test('name, description, concurrency, pack, routing, queues and failFast change no ID', () => {
    const a = validateSweepSpec(baseSpec());
    const b = validateSweepSpec({
      ...baseSpec(),
      name: 'renamed',
      description: 'same science',
      concurrency: 64,
      pack: 16,
      failFast: true,
      routing: { train: 'gpu', evaluate: 'gpu' },
      estimators: [
        { kind: 'maf', queue: 'cpu' },
        { kind: 'nsf', architecture: { bins: 8 }, queue: 'gpu' },
      ],
    });
    assert.equal(sweepIdOf(b), sweepIdOf(a));
    const ta = expandSweep(a);
    const tb = expandSweep(b);
    assert.deepEqual(
      tb.map((t) => t.trialId),
      ta.map((t) => t.trialId),
    );
    assert.notDeepEqual(
      tb.map((t) => t.queues),
      ta.map((t) => t.queues),
    );
  });

  test('every change of a trial configuration changes its trial ID', () => {
    const base = {
      name: 'one',
      tasks: ['gaussian_linear'],
      estimators: [{ kind: 'maf', architecture: { hidden: [50, 50] } }],
      defenses: [{ name: 'fim', betas: [0.01], mcSamples: 5 }],
      seeds: [0],
      budgets: [1000],
      training: { maxEpochs: 20, valSize: 100 },
      evaluation: { eps: [0.5, 2], nTest: 100, steps: 50 },
    };
    const one = (patch: (s: typeof base) => unknown): TrialConfig => {
      const s = structuredClone(base);
      const r = patch(s) ?? s;
      const trials = expandSweep(validateSweepSpec(r));
      assert.equal(trials.length, 1);
      return trials[0]!;
    };
    const ref = one(() => undefined);
    const changes: Record<string, (s: typeof base) => unknown> = {
      task: (s) => void (s.tasks = ['sir']),
      estimator: (s) => void (s.estimators = [{ kind: 'nsf', architecture: { hidden: [50, 50] } }]),
      architecture: (s) => void (s.estimators[0]!.architecture.hidden = [50, 51]),
      architectureKey: (s) =>
        void (s.estimators = [
          { kind: 'maf', architecture: { hidden: [50, 50], numTransforms: 2 } as never },
        ]),
      defense: (s) => void (s.defenses = [{ name: 'fim-fast', betas: [0.01], probes: 2 } as never]),
      beta: (s) => void (s.defenses[0]!.betas = [0.010000000000000002]),
      defenseOption: (s) => void (s.defenses[0]!.mcSamples = 4),
      gradClamp: (s) => void ((s.defenses[0] as { gradClamp?: number }).gradClamp = 1000),
      budget: (s) => void (s.budgets = [1001]),
      seed: (s) => void (s.seeds = [1]),
      maxEpochs: (s) => void (s.training.maxEpochs = 21),
      valSize: (s) => void (s.training.valSize = 101),
      minEpochs: (s) => ({ ...s, training: { ...s.training, minEpochs: 6 } }),
      batchSize: (s) => ({ ...s, training: { ...s.training, batchSize: 256 } }),
      learningRate: (s) => ({ ...s, training: { ...s.training, learningRate: 0.0005 } }),
      patience: (s) => ({ ...s, training: { ...s.training, patience: 11 } }),
      clipNorm: (s) => ({ ...s, training: { ...s.training, clipNorm: null } }),
      maxNanResets: (s) => ({ ...s, training: { ...s.training, maxNanResets: 3 } }),
      stopRule: (s) => ({ ...s, training: { ...s.training, stopRule: 'sbi' } }),
      anneals: (s) => ({ ...s, training: { ...s.training, anneals: 2 } }),
      annealFactor: (s) => ({ ...s, training: { ...s.training, anneals: 2, annealFactor: 0.2 } }),
      annealPatience: (s) => ({ ...s, training: { ...s.training, anneals: 2, annealPatience: 5 } }),
      evalEps: (s) => void (s.evaluation.eps = [0.5, 1, 2]),
      nTest: (s) => void (s.evaluation.nTest = 101),
      steps: (s) => void (s.evaluation.steps = 51),
      attacks: (s) => ({ ...s, evaluation: { ...s.evaluation, attacks: ['l2pgd'] } }),
      objectives: (s) => ({ ...s, evaluation: { ...s.evaluation, objectives: ['fkl'] } }),
      mcSamples: (s) => ({ ...s, evaluation: { ...s.evaluation, mcSamples: 6 } }),
      evalSamples: (s) => ({ ...s, evaluation: { ...s.evaluation, evalSamples: 128 } }),
      coverageSamples: (s) => ({ ...s, evaluation: { ...s.evaluation, coverageSamples: 1000 } }),
      coverageLevels: (s) => ({ ...s, evaluation: { ...s.evaluation, coverageLevels: 50 } }),
      attackBatchSize: (s) => ({ ...s, evaluation: { ...s.evaluation, attackBatchSize: 500 } }),
    };
    const seen = new Map<string, string>([[ref.trialId, 'reference']]);
    for (const [what, patch] of Object.entries(changes)) {
      const t = one(patch);
      assert.ok(!seen.has(t.trialId), `${what} gives the same trial ID as ${seen.get(t.trialId)}`);
      seen.set(t.trialId, what);
      const evaluationOnly =
        /^(evalEps|nTest|steps|attacks|objectives|mcSamples|evalSamples|coverage|attackBatchSize)/.test(
          what,
        );
      // Evaluation settings leave the trained model (and so its cache key) alone; the rest change it.
      if (evaluationOnly) assert.equal(t.modelId, ref.modelId, what);
      else assert.notEqual(t.modelId, ref.modelId, what);
      const simulationChanges = ['task', 'budget', 'seed'].includes(what);
      assert.equal(t.simulationId !== ref.simulationId, simulationChanges, what);
    }
    // The trade-off eps is read by the aggregation only: same trial, different sweep.
    const tradeoff = validateSweepSpec({
      ...base,
      evaluation: { ...base.evaluation, tradeoffEps: 0.5 },
    });
    assert.equal(expandSweep(tradeoff)[0]!.trialId, ref.trialId);
    assert.notEqual(sweepIdOf(tradeoff), sweepIdOf(validateSweepSpec(base)));
    // So are its attack and objective; leaving them out keeps the sweepId older code gave.
    const named = validateSweepSpec({
      ...base,
      evaluation: {
        ...base.evaluation,
        tradeoffAttack: 'noise',
        tradeoffObjective: 'rkl',
      },
    });
    assert.equal(expandSweep(named)[0]!.trialId, ref.trialId);
    assert.ok(!('tradeoffAttack' in expandSweep(named)[0]!.evaluation));
    assert.equal(validateSweepSpec(base).evaluation.tradeoffAttack, undefined);
    // Examples are read off finished trials: same trial, different sweep.
    const examples = validateSweepSpec({
      ...base,
      evaluation: { ...base.evaluation, examples: { eps: base.evaluation.eps[0] } },
    });
    assert.equal(expandSweep(examples)[0]!.trialId, ref.trialId);
    assert.ok(!('examples' in expandSweep(examples)[0]!.evaluation));
    assert.notEqual(sweepIdOf(examples), sweepIdOf(validateSweepSpec(base)));
    assert.deepEqual(examples.evaluation.examples, {
      eps: base.evaluation.eps[0],
      samples: 1000,
      predictive: 10,
    });
    // Diagnostics change what a trial computes; a spec without them keeps its IDs (no defaults).
    const diagnosed = validateSweepSpec({
      ...base,
      evaluation: { ...base.evaluation, metrics: ['sbc'] },
    });
    assert.notEqual(expandSweep(diagnosed)[0]!.trialId, ref.trialId);
    assert.equal(expandSweep(diagnosed)[0]!.modelId, ref.modelId);
    assert.ok(!('metrics' in validateSweepSpec(base).evaluation));
  });
});

describe('workflow-safe imports', () => {
  test('expand and everything it imports use only relative sweeps/ modules (no node:, no ajv)', () => {
    const dir = join(root, 'sweeps');
    const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
    const importsOf = (f: string): string[] =>
      [
        ...readFileSync(join(dir, f), 'utf8').matchAll(
          /^\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/gm,
        ),
      ].map((m) => m[1]!);
    const seen = new Set<string>();
    const visit = (f: string): void => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const spec of importsOf(f)) {
        assert.match(spec, /^\.\/[a-z-]+\.js$/, `${f} imports ${spec}`);
        visit(spec.slice(2).replace(/\.js$/, '.ts'));
      }
    };
    visit('expand.ts');
    assert.ok(!seen.has('validate.ts'));
    assert.ok(seen.has('hash.ts') && seen.has('canonical.ts'));
    // ajv stays in validate.ts.
    for (const f of files)
      if (f !== 'validate.ts') assert.ok(!importsOf(f).some((s) => s.startsWith('ajv')), f);
  });
});

const GOLDEN = {
  sweepId: 'e6319e7fed1cee84fb54df07',
  trialId: 'ed44d274c228c5400e4e8aaa',
  modelId: '6049e57eb7d3a2166e46b97b',
  simulationId: 'c541d40568c2ea3677a066c2',
  testSetId: '26d1525019652249b109108d',
  evalId: 'b6ac39dd0f72d4193b34986d',
};
