import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { computeCurves, type CurveTrial } from '../../../results/curves.js';
import {
  evaluationFromRecord,
  evaluationId,
  trialInputFromSweep,
  type CollectionName,
} from '../../../results/documents.js';
import { SchemaError } from '../../../results/errors.js';
import { encodeDocument } from '../../../results/nonfinite.js';
import { fieldName, validateDocument, validatePatch } from '../../../results/validate.js';
import type { EvaluationRecord } from '../../../sbi/evaluation.js';
import { summarize } from '../../../sbi/metrics/summary.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../../sweeps/expand.js';
import { parseSweepSpec } from '../../../sweeps/validate.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../../infra/config.js';
import { klSummaryFrom, LEVELS, syntheticSweep } from './fixtures.js';
import { FAILURE_TYPES } from '../../../sweeps/failures.js';

const at = new Date('2026-01-01T00:00:00Z');

function sweep(): Record<string, unknown> {
  return {
    _id: 'sweep-a',
    name: 'demo',
    spec: {
      tasks: ['gaussian_linear'],
      defenses: [{ name: 'fim', betas: [0.1, 1] }],
      eps: [0.5, 2],
    },
    specHash: 'ab12cd34ef56',
    status: 'running',
    counts: { trials: 2, queued: 1, running: 1, completed: 0, failed: 0, cancelled: 0 },
    codeVersion: '0.1.0',
    createdAt: at,
    updatedAt: at,
  };
}

function trial(): Record<string, unknown> {
  return {
    _id: 'trial-1',
    sweepIds: ['sweep-a', 'sweep-b'],
    positions: [{ sweepId: 'sweep-a', index: 0 }],
    config: {
      task: 'gaussian_linear',
      estimator: 'maf',
      defense: 'fim',
      beta: 0.1,
      budget: 1000,
      seed: 3,
      hidden: 50,
    },
    status: 'completed',
    attempt: 1,
    summary: {
      testNll: 1.5,
      valLoss: 1.4,
      epochs: 20,
      trainSeconds: 3.2,
      droppedSims: 0,
      c2st: 0.55,
    },
    modelArtifact: 'models/trial-1',
    backend: 'wasm',
    codeVersion: '0.1.0',
    createdAt: at,
    updatedAt: at,
    startedAt: at,
    endedAt: at,
  };
}

function evaluationDoc(): Record<string, unknown> {
  const s = syntheticSweep('sweep-a');
  return encodeDocument({ ...s.evaluations[0]!, createdAt: at, updatedAt: at });
}

/** The SchemaError of a rejected document. */
function rejected(collection: CollectionName, doc: unknown): SchemaError {
  try {
    validateDocument(collection, doc);
  } catch (err) {
    assert.ok(err instanceof SchemaError, String(err));
    assert.ok(err.message.includes(err.field), err.message);
    return err;
  }
  assert.fail('expected the document to be rejected');
}

function withField(
  doc: Record<string, unknown>,
  path: string[],
  value: unknown,
): Record<string, unknown> {
  const copy = structuredClone(doc);
  let o = copy as Record<string, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
  if (value === undefined) delete o[path[path.length - 1]!];
  else o[path[path.length - 1]!] = value;
  return copy;
}

describe('schemas accept valid documents', () => {
  test('a sweep, a trial and an evaluation', () => {
    validateDocument('sweeps', sweep());
    validateDocument('trials', trial());
    // A gaussian_linear trial's summary with its ground-truth metrics, one of them non-finite.
    validateDocument(
      'trials',
      withField(trial(), ['summary'], {
        ...(trial().summary as object),
        c2stTruth: 0.52,
        klQPTruth: null,
        klPQTruth: 0.04,
      }),
    );
    validateDocument('trials', { ...withField(trial(), ['summary'], undefined), status: 'queued' });
    validateDocument('evaluations', evaluationDoc());
    // Documents written before the ground-truth metrics existed stay valid, and so do those with them.
    const withTruth = evaluationDoc();
    assert.equal((withTruth.groundTruth as { samples: number }).samples, 100);
    validateDocument('evaluations', withField(withTruth, ['groundTruth'], undefined));
  });

  test('every curve computed from a synthetic sweep, in stored form', () => {
    const s = syntheticSweep('sweep-a');
    const trials = s.trials.map((t): CurveTrial => ({
      ...t,
      status: 'completed',
      summary: s.summaries.get(t._id)!,
    }));
    const curves = computeCurves('sweep-a', trials, s.evaluations);
    assert.equal(curves.length, 6);
    for (const c of curves) validateDocument('curves', encodeDocument(c));
  });

  test('an evaluation made from an sbi evaluation record, with a non-finite KL', () => {
    const kl = klSummaryFrom([0.1, 0.2, 0.4]);
    kl.max = Infinity;
    const nllSummary = summarize([1, 2, NaN]);
    const record = {
      attack: 'l2pgd',
      objective: 'rkl',
      eps: 2,
      epsAbs: 1.4,
      epsScale: 0.7,
      nTest: 3,
      kl,
      coverageAbsArea: 0.12,
      coverage: [0, 0.2, 0.4, 0.7, 1],
      cleanCoverageAbsArea: 0.01,
      cleanCoverage: [0, 0.25, 0.5, 0.75, 1],
      alphas: [...LEVELS],
      nll: { clean: 1.2, attacked: NaN },
      groundTruth: { c2st: 0.7, klQP: Infinity, klPQ: 0.3, samples: 100 },
      nllAttacked: nllSummary,
      seconds: 0.5,
    } as unknown as EvaluationRecord;
    const doc = evaluationFromRecord('trial-1', record);
    assert.equal(doc._id, evaluationId('trial-1', 'l2pgd', 'rkl', 2));
    assert.deepEqual(doc.coverage.attacked, record.coverage);
    assert.equal(doc.coverageAbsArea.clean, 0.01);
    assert.deepEqual(doc.nllAttackedSummary, nllSummary);
    const stored = encodeDocument({ ...doc, createdAt: at, updatedAt: at });
    assert.equal(stored.nllAttacked, null);
    const markers = stored.nonFinite as Record<string, unknown[]>;
    assert.deepEqual(markers.kl, [{ path: '/max', value: 'inf' }]);
    assert.deepEqual(markers.nllAttacked, [{ path: '', value: 'nan' }]);
    // The ground-truth metrics (gaussian_linear), a diverged KL(q||p) kept as a marker.
    assert.deepEqual(stored.groundTruth, { c2st: 0.7, klQP: null, klPQ: 0.3, samples: 100 });
    assert.deepEqual(markers.groundTruth, [{ path: '/klQP', value: 'inf' }]);
    // Every NaN of the per-x NLL summary (a NaN x poisons mean, std and the upper quantiles).
    assert.deepEqual(
      markers.nllAttackedSummary!.map((m) => (m as { path: string }).path).sort(),
      Object.entries(nllSummary)
        .filter(([, v]) => Number.isNaN(v))
        .map(([k]) => `/${k}`)
        .sort(),
    );
    assert.ok(markers.nllAttackedSummary!.length >= 3);
    validateDocument('evaluations', stored);
    // Unencoded, the same document is refused: NaN is not storable.
    assert.equal(rejected('evaluations', { ...stored, nllAttacked: NaN }).field, 'nllAttacked');
  });
});

describe('schemas reject invalid documents and name the field', () => {
  const cases: [string, CollectionName, () => unknown, string, RegExp][] = [
    ['missing spec', 'sweeps', () => withField(sweep(), ['spec'], undefined), 'spec', /required/],
    ['unknown status', 'sweeps', () => withField(sweep(), ['status'], 'done'), 'status', /one of/],
    [
      'negative count',
      'sweeps',
      () => withField(sweep(), ['counts', 'failed'], -1),
      'counts.failed',
      /must be >= 0/,
    ],
    [
      'string date',
      'sweeps',
      () => withField(sweep(), ['createdAt'], '2026-01-01'),
      'createdAt',
      /Date/,
    ],
    [
      'dotted key in spec',
      'sweeps',
      () => withField(sweep(), ['spec', 'optimizer.lr'], 0.1),
      'spec["optimizer.lr"]',
      /'\.'/,
    ],
    [
      '$ key in spec',
      'sweeps',
      () => withField(sweep(), ['spec', '$where'], 1),
      'spec.$where',
      /'\$'/,
    ],
    [
      'nested array in spec',
      'sweeps',
      () => withField(sweep(), ['spec', 'grid'], [[1, 2]]),
      'spec.grid[0]',
      /array inside an array/,
    ],
    ['no sweep', 'trials', () => withField(trial(), ['sweepIds'], []), 'sweepIds', /fewer than 1/],
    [
      'a sweep listed twice',
      'trials',
      () => withField(trial(), ['sweepIds'], ['s', 's']),
      'sweepIds',
      /duplicate/,
    ],
    [
      'unknown top-level field',
      'trials',
      () => withField(trial(), ['extra'], 1),
      'extra',
      /not a known field/,
    ],
    [
      'beta not a number',
      'trials',
      () => withField(trial(), ['config', 'beta'], '0.1'),
      'config.beta',
      /number/,
    ],
    [
      'fractional seed',
      'trials',
      () => withField(trial(), ['config', 'seed'], 1.5),
      'config.seed',
      /integer/,
    ],
    [
      'missing task',
      'trials',
      () => withField(trial(), ['config', 'task'], undefined),
      'config.task',
      /required/,
    ],
    ['bad status', 'trials', () => withField(trial(), ['status'], 'done'), 'status', /one of/],
    [
      'summary metric not a number',
      'trials',
      () => withField(trial(), ['summary', 'c2st'], 'x'),
      'summary.c2st',
      /number/,
    ],
    [
      'completed without summary',
      'trials',
      () => withField(trial(), ['summary'], undefined),
      'summary',
      /required when status/,
    ],
    [
      'NaN in summary',
      'trials',
      () => withField(trial(), ['summary', 'valLoss'], NaN),
      'summary.valLoss',
      /number/,
    ],
    [
      'quantile missing',
      'evaluations',
      () => withField(evaluationDoc(), ['kl', 'q2_5'], undefined),
      'kl.q2_5',
      /required/,
    ],
    [
      'dotted quantile key',
      'evaluations',
      () => withField(evaluationDoc(), ['kl', 'q2.5'], 1),
      'kl["q2.5"]',
      /not a known field/,
    ],
    [
      'unknown objective',
      'evaluations',
      () => withField(evaluationDoc(), ['objective'], 'nll'),
      'objective',
      /one of/,
    ],
    ['negative eps', 'evaluations', () => withField(evaluationDoc(), ['eps'], -1), 'eps', />= 0/],
    [
      'ground truth without its sample count',
      'evaluations',
      () => withField(evaluationDoc(), ['groundTruth'], { c2st: 0.6, klQP: 0.1, klPQ: 0.2 }),
      'groundTruth.samples',
      /required/,
    ],
    [
      'ground-truth C2ST a string',
      'evaluations',
      () =>
        withField(evaluationDoc(), ['groundTruth'], {
          c2st: '0.6',
          klQP: 0.1,
          klPQ: 0.2,
          samples: 100,
        }),
      'groundTruth.c2st',
      /number/,
    ],
    [
      'coverage value a string',
      'evaluations',
      () => withField(evaluationDoc(), ['coverage', 'clean', '2'], 'x'),
      'coverage.clean[2]',
      /number/,
    ],
    [
      'coverage of another length',
      'evaluations',
      () => withField(evaluationDoc(), ['coverage', 'attacked'], [0, 1]),
      'coverage.attacked',
      /one value per level/,
    ],
    [
      'marker on a number',
      'evaluations',
      () => withField(evaluationDoc(), ['nonFinite'], { kl: [{ path: '/mean', value: 'nan' }] }),
      'nonFinite.kl',
      /inconsistent/,
    ],
    [
      'curve of unknown kind',
      'curves',
      () => ({ _id: 'c', sweepId: 's', task: 't', kind: 'roc' }),
      'kind',
      /one of/,
    ],
    [
      'tradeoff point without x',
      'curves',
      () => ({
        _id: 'c',
        sweepId: 's',
        task: 't',
        kind: 'tradeoff',
        attack: 'l2pgd',
        objective: 'rkl',
        eps: 2,
        points: [
          {
            trialId: 'a',
            defense: 'none',
            beta: 0,
            estimator: 'maf',
            budget: 10,
            seed: 0,
            y: 1,
            pareto: true,
          },
        ],
        front: [],
        missing: [],
      }),
      'points[0].x',
      /required/,
    ],
    [
      'kl series with ragged arrays',
      'curves',
      () => ({
        _id: 'c',
        sweepId: 's',
        task: 't',
        kind: 'kl_vs_eps',
        series: [
          {
            attack: 'l2pgd',
            objective: 'rkl',
            defense: 'none',
            beta: 0,
            estimator: 'maf',
            budget: 10,
            eps: [1, 2],
            median: [1],
            q15: [1, 2],
            q85: [1, 2],
            mean: [1, 2],
            trials: [1, 1],
          },
        ],
      }),
      'series[0].median',
      /one value per eps/,
    ],
  ];
  for (const [what, collection, make, field, problem] of cases) {
    test(`${collection}: ${what} -> ${field}`, () => {
      const err = rejected(collection, make());
      assert.equal(err.field, field);
      assert.match(err.problem, problem);
      assert.equal(err.collection, collection);
    });
  }

  test('the message names the document and its place in a batch', () => {
    try {
      validateDocument('trials', withField(trial(), ['config', 'beta'], -1), 4);
      assert.fail('expected a SchemaError');
    } catch (err) {
      assert.ok(err instanceof SchemaError);
      assert.equal(
        err.message,
        'trials document "trial-1" (#4 of the batch): config.beta must be >= 0.',
      );
    }
  });

  test('patches of a trial transition are checked field by field', () => {
    validatePatch(
      'trials',
      {
        status: 'failed',
        attempt: 2,
        error: { type: FAILURE_TYPES.diverged, message: 'NaN loss', nonRetryable: true },
      },
      't',
    );
    assert.throws(
      () =>
        validatePatch(
          'trials',
          { status: 'failed', error: { type: FAILURE_TYPES.diverged, message: 'x' } },
          't',
        ),
      (e: unknown) => e instanceof SchemaError && e.field === 'error.nonRetryable',
    );
    assert.throws(
      () => validatePatch('trials', { config: {} }, 't'),
      (e: unknown) => e instanceof SchemaError && e.field === 'config',
    );
  });
});

describe('ids and field names', () => {
  test("evaluation IDs are sweeps/' evalIds, and the shortest form of eps decides", () => {
    assert.equal(evaluationId('t', 'l2pgd', 'rkl', 2.0), evaluationId('t', 'l2pgd', 'rkl', 2));
    assert.notEqual(evaluationId('t', 'l2pgd', 'rkl', 2), evaluationId('t', 'l2pgd', 'rkl', 1));
    assert.notEqual(evaluationId('t', 'l2pgd', 'rkl', 2), evaluationId('t', 'l2pgd', 'fkl', 2));
    assert.notEqual(evaluationId('t', 'l2pgd', 'rkl', 2), evaluationId('u', 'l2pgd', 'rkl', 2));
    assert.throws(() => evaluationId('t', 'l2pgd', 'rkl', NaN), /cannot hold/);
  });

  test('the demo sweep: every trial maps to a valid trial document, every planned evalId to evaluationId', () => {
    const spec = parseSweepSpec(readFileSync(join(projectRoot(), 'sweeps', 'demo.json'), 'utf8'));
    const sweepId = sweepIdOf(spec);
    const trials = expandSweep(spec);
    assert.ok(trials.length >= 2);
    for (const t of trials) {
      const input = trialInputFromSweep(sweepId, t, '0.1.0');
      assert.equal(input._id, t.trialId);
      assert.equal(input.config.defense, t.defense.name);
      assert.equal(input.config.beta, t.defense.beta ?? 0);
      assert.equal(input.config.estimator, t.estimator.kind);
      const { sweepId: sid, index, ...rest } = input;
      validateDocument(
        'trials',
        encodeDocument({
          ...rest,
          sweepIds: [sid],
          positions: [{ sweepId: sid, index }],
          status: 'queued',
          attempt: 0,
          createdAt: at,
          updatedAt: at,
        }),
      );
      for (const item of evaluationPlan(t)) {
        assert.equal(evaluationId(t.trialId, item.attack, item.objective, item.eps), item.evalId);
      }
    }
  });

  test('a defense trained at an attack budget keeps it as config.trainEps', () => {
    const spec = parseSweepSpec(readFileSync(join(projectRoot(), 'sweeps', 'demo.json'), 'utf8'));
    const t = expandSweep(spec)[0]!;
    const adv = { ...t, defense: { name: 'adversarial', trainEps: 0.5 } } as unknown as typeof t;
    const input = trialInputFromSweep('s', adv, 'v');
    assert.equal(input.config.defense, 'adversarial');
    assert.equal(input.config.trainEps, 0.5);
    assert.equal(input.config.beta, 0);
    assert.equal('defenseOptions' in input.config, false);
    const fim = { ...t, defense: { name: 'fim', beta: 0.1, mcSamples: 4 } } as unknown as typeof t;
    const f = trialInputFromSweep('s', fim, 'v').config;
    assert.deepEqual([f.beta, f.trainEps, f.defenseOptions], [0.1, undefined, { mcSamples: 4 }]);
  });

  test('JSON pointers read as dotted paths', () => {
    assert.equal(fieldName('/kl/q2_5'), 'kl.q2_5');
    assert.equal(fieldName('/coverage/clean/3'), 'coverage.clean[3]');
    assert.equal(fieldName('/series/0/curves/1/observed'), 'series[0].curves[1].observed');
    assert.equal(fieldName('/spec/a~1b'), 'spec["a/b"]');
    assert.equal(fieldName('/spec/optimizer.lr'), 'spec["optimizer.lr"]');
    assert.equal(fieldName(''), '');
  });
});
