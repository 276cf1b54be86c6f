// The rules sbi's estimator constructors enforce between architecture settings, checked by sweep
// validation so that a spec breaking one is refused before anything starts (issue 9), and the
// defaults those checks assume kept equal to sbi's.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend } from '../../../sbi/backend.js';
import { createEstimator, defaultEstimatorConfig } from '../../../sbi/estimators/index.js';
import { computeZScore } from '../../../sbi/estimators/zscore.js';
import { createRng } from '../../../sbi/rng.js';
import { ARCHITECTURE_DEFAULTS, SpecError, validateSweepSpec } from '../../../sweeps/validate.js';
import { baseSpec } from './fixtures.js';

before(async () => {
  await initBackend('cpu');
});

const withEstimator = (kind: string, architecture: Record<string, unknown>) => ({
  ...baseSpec(),
  estimators: ['gaussian', { kind, architecture }],
});

function refusal(kind: string, architecture: Record<string, unknown>): SpecError {
  try {
    validateSweepSpec(withEstimator(kind, architecture));
  } catch (e) {
    assert.ok(e instanceof SpecError, String(e));
    assert.ok(!e.message.includes('\n'), 'one line');
    return e;
  }
  assert.fail(`${kind} ${JSON.stringify(architecture)} was accepted`);
}

/** Whether sbi builds the estimator (the same rules, enforced where they matter). */
function sbiBuilds(kind: string, architecture: Record<string, unknown>): boolean {
  const z = computeZScore(new Float32Array([0, 1, 2, 3]), new Float32Array([0, 1, 2, 3]), 2, 2, 2);
  try {
    const e = createEstimator(kind, {
      thetaDim: 2,
      xDim: 2,
      zscore: z,
      config: { hidden: [4], ...architecture },
      rng: createRng(1),
    });
    e.dispose();
    return true;
  } catch {
    return false;
  }
}

describe('architecture settings checked against each other', () => {
  test("the assumed defaults are sbi's", () => {
    for (const kind of ['maf', 'nsf'] as const) {
      const sbi = defaultEstimatorConfig(kind);
      for (const [k, v] of Object.entries(ARCHITECTURE_DEFAULTS[kind])) assert.equal(sbi[k], v, k);
    }
  });

  const refused: [string, Record<string, unknown>, string, RegExp][] = [
    [
      'maf',
      { logScaleMin: 5, logScaleMax: 1 },
      'spec/estimators/1/architecture',
      /logScaleMin \(5\) must be below logScaleMax \(1\) for estimator "maf"/,
    ],
    ['maf', { logScaleMin: 2, logScaleMax: 2 }, 'spec/estimators/1/architecture', /below/],
    // Only one side given: the other is sbi's default (logScaleMax 5).
    ['maf', { logScaleMin: 6 }, 'spec/estimators/1/architecture', /logScaleMax \(5\)/],
    [
      'maf_ensemble',
      { members: 2, logScaleMin: 5, logScaleMax: 1 },
      'spec/estimators/1/architecture',
      /logScaleMin \(5\) must be below logScaleMax \(1\) for estimator "maf_ensemble"/,
    ],
    ['maf_ensemble', { members: 0 }, 'spec/estimators/1/architecture/members', /1/],
    ['maf_ensemble', { members: 1.5 }, 'spec/estimators/1/architecture/members', /integer/],
    ['nsf', { bins: 1 }, 'spec/estimators/1/architecture/bins', /must be >= 2.*got 1/],
    [
      'nsf',
      { bins: 8, minBinWidth: 0.125 },
      'spec/estimators/1/architecture/minBinWidth',
      /must be below 1\/bins \(1\/8\) for estimator "nsf" \(got 0.125\)/,
    ],
    ['nsf', { bins: 4, minBinHeight: 0.3 }, 'spec/estimators/1/architecture/minBinHeight', /1\/4/],
    // Only the width given: the bins are sbi's default 12.
    ['nsf', { minBinWidth: 0.09 }, 'spec/estimators/1/architecture/minBinWidth', /1\/12/],
  ];
  for (const [kind, architecture, path, re] of refused) {
    test(`${kind} ${JSON.stringify(architecture)} is refused with its path, as sbi would refuse it`, () => {
      const e = refusal(kind, architecture);
      assert.equal(e.path, path, e.message);
      assert.match(e.message, re);
      assert.equal(sbiBuilds(kind, architecture), false, 'sbi refuses it too');
    });
  }

  test('settings just inside the rules are accepted, and sbi builds them', () => {
    const ok: [string, Record<string, unknown>][] = [
      ['maf', { logScaleMin: -100, logScaleMax: -90 }],
      ['maf', { logScaleMin: 4.9 }],
      ['maf_ensemble', { members: 2, logScaleMin: 4.9 }],
      ['maf_ensemble', { members: 1 }],
      ['nsf', { bins: 2, minBinWidth: 0.49, minBinHeight: 0.49 }],
      ['nsf', { bins: 256 }],
    ];
    for (const [kind, architecture] of ok) {
      assert.doesNotThrow(() => validateSweepSpec(withEstimator(kind, architecture)));
      assert.equal(sbiBuilds(kind, architecture), true, `${kind} ${JSON.stringify(architecture)}`);
    }
  });
});
