// The evaluate activity: one attack at one epsilon (every objective of the trial) against the
// trained model on the trial's test set. Its records go straight to the evaluations collection
// (idempotent upserts keyed by evalId); the workflow gets a few numbers back.
import { Context } from '@temporalio/activity';
import { evaluationFromRecord } from '../results/documents.js';
import type { AttackName } from '../sbi/attacks/index.js';
import { evaluateRobustness } from '../sbi/evaluation.js';
import { finiteOrNull } from '../sbi/json-numbers.js';
import { createRng } from '../sbi/rng.js';
import type { Objective } from '../sweeps/names.js';
import type { TrialConfig } from '../sweeps/types.js';
import type { ActivityDeps } from './deps.js';
import { classify } from './failures.js';
import { keepAlive } from './keep-alive.js';
import { loadDataset } from './simulate.js';
import { loadModelArtifact } from './train.js';

export interface EvaluateInput {
  trial: Pick<TrialConfig, 'trialId' | 'testSetId' | 'task' | 'seed' | 'evaluation'>;
  modelArtifact: string;
  attack: AttackName;
  eps: number;
}

export interface EvaluateRecordSummary {
  objective: Objective;
  eps: number;
  klMean: number | null;
  nllClean: number | null;
  nllAttacked: number | null;
}

export interface EvaluateResult {
  records: EvaluateRecordSummary[];
  /** true when every record was already stored (an earlier attempt finished) and nothing was computed. */
  cached: boolean;
}

export async function evaluate(deps: ActivityDeps, input: EvaluateInput): Promise<EvaluateResult> {
  const { trial, attack, eps } = input;
  const ev = trial.evaluation;
  const objectives = ev.objectives;
  const stored = (await deps.store.listEvaluations({ trialId: trial.trialId })).filter(
    (e) => e.attack === attack && e.eps === eps && (objectives as string[]).includes(e.objective),
  );
  if (stored.length === objectives.length) {
    return {
      cached: true,
      records: stored.map((e) => ({
        objective: e.objective as Objective,
        eps: e.eps,
        klMean: finiteOrNull(e.kl.mean),
        nllClean: finiteOrNull(e.nllClean),
        nllAttacked: finiteOrNull(e.nllAttacked),
      })),
    };
  }
  const test = await loadDataset(deps, {
    purpose: 'test',
    task: trial.task,
    n: ev.nTest,
    seed: trial.seed,
    id: trial.testSetId,
  });
  const saved = await loadModelArtifact(deps, input.modelArtifact);
  const ctx = Context.current();
  try {
    ctx.heartbeat({ attack, eps });
    let records;
    const stopKeepAlive = keepAlive(ctx, () => ({ attack, eps }));
    try {
      // The same streams as `robustsbi evaluate --seed`: each record forks its own key, so one
      // (attack, eps) at a time gives the records one call over the whole grid would.
      records = await evaluateRobustness(
        saved.estimator,
        test,
        {
          attacks: [attack],
          divergences: objectives,
          eps: [eps],
          ...(ev.steps !== undefined ? { steps: ev.steps } : {}),
          mcSamples: ev.mcSamples,
          evalSamples: ev.evalSamples,
          coverageSamples: ev.coverageSamples,
          coverageLevels: ev.coverageLevels,
          attackBatchSize: ev.attackBatchSize,
        },
        createRng(trial.seed).fork('evaluate/attacks'),
        {
          onChunkRecord: (chunk, _n, r) =>
            ctx.heartbeat({ attack, eps, objective: r.objective, chunk }),
        },
      );
    } catch (err) {
      throw classify(err);
    } finally {
      stopKeepAlive();
    }
    await deps.store.putEvaluations(records.map((r) => evaluationFromRecord(trial.trialId, r)));
    return {
      cached: false,
      records: records.map((r) => ({
        objective: r.objective,
        eps: r.eps,
        klMean: finiteOrNull(r.kl.mean),
        nllClean: finiteOrNull(r.nll.clean),
        nllAttacked: finiteOrNull(r.nll.attacked),
      })),
    };
  } finally {
    saved.estimator.dispose();
  }
}
