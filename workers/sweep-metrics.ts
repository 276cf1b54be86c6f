// robustsbi's own metrics (robustsbi_*), recorded by an activity interceptor on the sweep worker:
// every activity's duration by kind and outcome, and from the pack activities' inputs and results
// the trials ended and the work done. Throughput is a counter: Prometheus' rate() of it over a
// window is the per-second figure (simulations, training rows, evaluation points per second).
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type {
  CompleteTrialInput,
  EndTrialInput,
  EvaluateInput,
  EvaluateResult,
  ItemOutcome,
  SimulateInput,
  SimulateResult,
  TrainInput,
  TrainResult,
} from '../activities/index.js';
import { Registry, type Counter, type Histogram } from './prometheus-text.js';

/** Seconds: bookkeeping takes milliseconds, a training hours. */
export const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400,
];

export class SweepMetrics {
  readonly registry = new Registry();
  readonly trialsCompleted: Counter;
  readonly trialsFailed: Counter;
  readonly trialsCancelled: Counter;
  readonly activityDuration: Histogram;
  readonly simulations: Counter;
  readonly trainingRows: Counter;
  readonly evaluationPoints: Counter;

  constructor() {
    const r = this.registry;
    this.trialsCompleted = r.counter(
      'robustsbi_trials_completed_total',
      'Trials this worker recorded as completed.',
    );
    this.trialsFailed = r.counter(
      'robustsbi_trials_failed_total',
      'Trials this worker recorded as failed, by reason (the failure type, e.g. Diverged).',
      ['reason'],
    );
    this.trialsCancelled = r.counter(
      'robustsbi_trials_cancelled_total',
      'Trials this worker recorded as cancelled.',
    );
    this.activityDuration = r.histogram(
      'robustsbi_activity_duration_seconds',
      'Wall time of one activity attempt on this worker, by activity kind and outcome (ok or error).',
      ['activity', 'outcome'],
      DURATION_BUCKETS,
    );
    this.simulations = r.counter(
      'robustsbi_simulations_total',
      'Simulations drawn (rows kept and dropped) by this worker; rate() is simulations per second.',
    );
    this.trainingRows = r.counter(
      'robustsbi_training_rows_total',
      'Training rows processed (training-set rows x epochs trained) by this worker; rate() is rows per second.',
    );
    this.evaluationPoints = r.counter(
      'robustsbi_evaluation_points_total',
      'Test points attacked and scored by this worker (per attack and epsilon); rate() is points per second.',
    );
  }

  /** Records one activity attempt: its duration, and what its input and result say was done. */
  activityEnded(activity: string, input: unknown, result: unknown, seconds: number): void {
    this.activityDuration.observe(
      { activity, outcome: result === FAILED ? 'error' : 'ok' },
      seconds,
    );
    if (result === FAILED) return;
    const items = (input as { items?: unknown[] } | undefined)?.items ?? [];
    const outs = Array.isArray(result) ? (result as unknown[]) : [];
    switch (activity) {
      case 'completeTrials':
        (items as CompleteTrialInput[]).forEach((_, i) => {
          if (outs[i] === 'applied') this.trialsCompleted.inc();
        });
        break;
      case 'endTrials':
        (items as EndTrialInput[]).forEach((x, i) => {
          if (outs[i] !== 'applied') return;
          if (x.status === 'failed') this.trialsFailed.inc({ reason: x.error?.type ?? 'Error' });
          else this.trialsCancelled.inc();
        });
        break;
      case 'simulateMany':
        (items as SimulateInput[]).forEach((_, i) => {
          const o = okOf<SimulateResult>(outs[i]);
          if (o && !o.cached && o.blocks === undefined) this.simulations.inc({}, o.n + o.dropped);
        });
        break;
      case 'trainMany':
        (items as TrainInput[]).forEach((_, i) => {
          const o = okOf<TrainResult>(outs[i]);
          if (o && !o.cached) this.trainingRows.inc({}, o.nTrain * o.epochsThisAttempt);
        });
        break;
      case 'evaluateMany':
        (items as EvaluateInput[]).forEach((x, i) => {
          const o = okOf<EvaluateResult>(outs[i]);
          if (!o || o.cached) return;
          const ev = x.trial.evaluation;
          // A shard scores one chunk; the call without a shard scores the chunks no shard kept,
          // which for a sharded evaluation were all kept: count those calls for unsharded ones only.
          if (x.shard !== undefined)
            this.evaluationPoints.inc({}, chunkPoints(ev.nTest, ev.attackBatchSize, x.shard));
          else if (ev.nTest <= ev.attackBatchSize) this.evaluationPoints.inc({}, ev.nTest);
        });
        break;
    }
  }

  render(): string {
    return this.registry.render();
  }
}

/** The result of an activity attempt that threw. */
export const FAILED = Symbol('failed');

function okOf<T>(o: unknown): T | undefined {
  return o && typeof o === 'object' && 'ok' in o ? (o as ItemOutcome<T> & { ok: T }).ok : undefined;
}

function chunkPoints(nTest: number, batch: number, shard: number): number {
  return Math.max(0, Math.min(batch, nTest - shard * batch));
}

/** The worker interceptor that feeds `metrics` from every activity (local ones included). */
export function metricsInterceptor(metrics: SweepMetrics): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const t0 = performance.now();
        const seconds = () => (performance.now() - t0) / 1000;
        let result: unknown = FAILED;
        try {
          result = await next(input);
          return result;
        } finally {
          try {
            metrics.activityEnded(ctx.info.activityType, input.args[0], result, seconds());
          } catch {
            // A metric must never fail the activity it measures.
          }
        }
      },
    },
  });
}
