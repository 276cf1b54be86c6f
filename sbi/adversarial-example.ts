// The adversarial example of the paper's Fig. 2: among attacked test points, the one whose posterior
// the attack moved most (largest KL under attack), with samples of its clean and attacked posteriors
// and posterior-predictive simulations from each, so the damage can be seen in parameter space and
// in data space.
import { tidyData } from './backend.js';
import { attackInBatches, type AttackName } from './attacks/index.js';
import { absoluteEps, clipBoxOf, meanPerSampleStd } from './attacks/eps.js';
import type { Discrepancy } from './attacks/objectives.js';
import { discrepancyUnderAttack } from './metrics/robustness.js';
import { rowsTensor } from './metrics/row-batches.js';
import type { DensityEstimator, RandomStream, Task } from './types.js';

export interface AdversarialExampleOptions {
  attack: AttackName;
  objective: Discrepancy;
  /** Budget relative to the test xs' mean per-sample std. */
  eps: number;
  steps?: number;
  mcSamples?: number;
  /** Samples per x for the KL that ranks the points (default 256). */
  klSamples?: number;
  /** Posterior samples kept of the chosen x, clean and attacked (default 1,000). */
  samples?: number;
  /** Posterior-predictive simulations from the first of those samples (default 20). */
  predictive?: number;
  /**
   * The point already chosen by an evaluation's per-point KL (a sweep's examples): only that point
   * is attacked again, with a stream of its own, and its KL under this attack is reported beside the
   * evaluation's. Absent: every test point is attacked and the largest KL picks.
   */
  chosen?: { index: number; klAll: number[] };
}

export interface AdversarialExample {
  /** The chosen test point's index, its true theta, its x and the attacked x~. */
  index: number;
  theta: number[];
  x: number[];
  xAdv: number[];
  eps: number;
  epsAbs: number;
  /** Its KL under attack, and the KL of every test point (what it was chosen by). */
  kl: number;
  klAll: number[];
  posterior: { clean: number[][]; attacked: number[][] };
  predictive: { clean: number[][]; attacked: number[][] };
}

function rowsOf(a: Float32Array, dim: number): number[][] {
  return Array.from({ length: a.length / dim }, (_, r) =>
    Array.from(a.subarray(r * dim, (r + 1) * dim)),
  );
}

/** The index of the largest finite KL (NaN never wins; 0 when none is finite). */
export function mostDamaged(kl: readonly number[]): number {
  let index = 0;
  for (let i = 1; i < kl.length; i++)
    if (!(kl[i]! <= kl[index]!) && Number.isFinite(kl[i]!)) index = i;
  return index;
}

export async function adversarialExample(
  est: DensityEstimator,
  task: Task,
  test: { theta: Float32Array; x: Float32Array; n: number },
  o: AdversarialExampleOptions,
  rng: RandomStream,
): Promise<AdversarialExample> {
  if (test.n < 1) throw new RangeError('The test set is empty.');
  const { xDim, thetaDim } = est;
  // The scale and the box are the whole test set's, as in the evaluation, also for one point.
  const epsAbs = absoluteEps(o.eps, meanPerSampleStd(test.x, test.n, xDim));
  const box = clipBoxOf(test.x);
  const attack = async (x: Float32Array, theta: Float32Array) => {
    const xAdv = await attackInBatches(
      o.attack,
      { estimator: est, epsAbs, box, rng: rng.fork('attack') },
      x,
      theta,
      {
        divergence: o.objective,
        ...(o.steps !== undefined ? { steps: o.steps } : {}),
        ...(o.mcSamples !== undefined ? { mcSamples: o.mcSamples } : {}),
      },
    );
    const kl = await discrepancyUnderAttack(est, o.objective, x, xAdv, rng.fork('kl'), {
      samples: o.klSamples ?? 256,
    });
    return { xAdv, kl };
  };
  let index = 0;
  let klAll: number[];
  let xAdvRow: Float32Array;
  let klOfIndex: number;
  if (o.chosen) {
    index = o.chosen.index;
    if (!Number.isInteger(index) || index < 0 || index >= test.n)
      throw new RangeError(`Test point ${index} is outside 0..${test.n - 1}.`);
    klAll = o.chosen.klAll;
    const a = await attack(
      test.x.slice(index * xDim, (index + 1) * xDim),
      test.theta.slice(index * thetaDim, (index + 1) * thetaDim),
    );
    xAdvRow = a.xAdv;
    klOfIndex = a.kl[0]!;
  } else {
    const a = await attack(test.x, test.theta);
    klAll = Array.from(a.kl);
    index = mostDamaged(klAll);
    xAdvRow = a.xAdv.slice(index * xDim, (index + 1) * xDim);
    klOfIndex = a.kl[index]!;
  }
  const row = (a: Float32Array, d: number) => a.subarray(index * d, (index + 1) * d);
  const samples = o.samples ?? 1000;
  const draw = (x: Float32Array, stream: RandomStream): Float32Array =>
    tidyData(
      () => est.sample(rowsTensor(x, 0, 1, xDim), samples, stream).dataSync() as Float32Array,
    );
  const clean = draw(row(test.x, xDim), rng.fork('posterior/clean'));
  const attacked = draw(xAdvRow, rng.fork('posterior/attacked'));
  const nPred = Math.min(o.predictive ?? 20, samples);
  const simulate = (thetas: Float32Array, stream: RandomStream): number[][] =>
    rowsOf(
      (task.simulateUnfiltered ?? task.simulate).call(
        task,
        thetas.slice(0, nPred * thetaDim),
        nPred,
        stream,
      ),
      xDim,
    );
  return {
    index,
    theta: Array.from(row(test.theta, thetaDim)),
    x: Array.from(row(test.x, xDim)),
    xAdv: Array.from(xAdvRow),
    eps: o.eps,
    epsAbs,
    kl: klOfIndex,
    klAll,
    posterior: { clean: rowsOf(clean, thetaDim), attacked: rowsOf(attacked, thetaDim) },
    predictive: {
      clean: simulate(clean, rng.fork('predictive/clean')),
      attacked: simulate(attacked, rng.fork('predictive/attacked')),
    },
  };
}
