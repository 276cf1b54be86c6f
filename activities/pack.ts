// Activities over a pack of trials (workflows/pack.ts). Each runs a single-trial activity for every
// item in turn, so a pack of short trials costs the Temporal server one task per step instead of one
// per trial. The single activities are idempotent (a stored simulation, model or evaluation is
// reused), so a retried pack activity redoes nothing that finished. A failure no retry can fix
// (InvalidConfig, Diverged, ...) is returned as its item's outcome, so one bad trial does not fail
// the others; any other error fails the whole activity, which Temporal retries.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ErrorInfo } from '../results/documents.js';
import { mapInFlight } from '../results/bulk-write.js';
import type { EvaluateInput, EvaluateResult } from './evaluate.js';
import type { ClaimResult, CompleteTrialInput, EndTrialInput } from './persist.js';
import type { SimulateInput, SimulateResult } from './simulate.js';
import type { TrainInput, TrainResult } from './train.js';

export type ItemOutcome<T> = { ok: T } | { error: ErrorInfo };

/** The single-trial activities the pack activities are made of. */
export interface TrialStepActivities {
  simulate(input: SimulateInput): Promise<SimulateResult>;
  train(input: TrainInput): Promise<TrainResult>;
  evaluate(input: EvaluateInput): Promise<EvaluateResult>;
  claimTrial(input: { trialId: string }): Promise<ClaimResult>;
  completeTrial(input: CompleteTrialInput): Promise<string>;
  endTrial(input: EndTrialInput): Promise<string>;
}

/** The failure an item ends with when no retry can fix it; undefined for one Temporal should retry. */
function finalFailure(err: unknown, nonRetryableTypes: readonly string[]): ErrorInfo | undefined {
  if (err instanceof ApplicationFailure) {
    const type = err.type ?? 'Error';
    if (err.nonRetryable || nonRetryableTypes.includes(type))
      return { type, message: err.message, nonRetryable: true };
    return undefined;
  }
  const e = err as { name?: string; message?: string };
  if (e?.name && nonRetryableTypes.includes(e.name))
    return { type: e.name, message: e.message ?? String(err), nonRetryable: true };
  return undefined;
}

async function eachItem<I, O>(
  items: readonly I[],
  run: (item: I) => Promise<O>,
  nonRetryableTypes: readonly string[],
): Promise<ItemOutcome<O>[]> {
  const ctx = Context.current();
  const out: ItemOutcome<O>[] = [];
  for (let i = 0; i < items.length; i++) {
    // Between items: a cancelled pack stops here, and the heartbeat says how far it got. Not before
    // the first, whose own first heartbeat (a training's epoch) then reaches the server unthrottled.
    if (i > 0) ctx.heartbeat({ item: i, of: items.length });
    if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
    try {
      out.push({ ok: await run(items[i]!) });
    } catch (err) {
      const failure = finalFailure(err, nonRetryableTypes);
      if (!failure) throw err;
      out.push({ error: failure });
    }
  }
  return out;
}

/** Store writes of one pack in flight at once: enough to hide the round trips, few enough to queue nothing. */
const WRITES_IN_FLIGHT = 8;

export function packActivities(acts: TrialStepActivities, nonRetryableTypes: readonly string[]) {
  return {
    simulateMany: (input: { items: SimulateInput[] }) =>
      eachItem(input.items, (x) => acts.simulate(x), nonRetryableTypes),
    trainMany: (input: { items: TrainInput[] }) =>
      eachItem(input.items, (x) => acts.train(x), nonRetryableTypes),
    evaluateMany: (input: { items: EvaluateInput[] }) =>
      eachItem(input.items, (x) => acts.evaluate(x), nonRetryableTypes),
    claimTrials: (input: { trialIds: string[] }) =>
      mapInFlight(input.trialIds, WRITES_IN_FLIGHT, (trialId) => acts.claimTrial({ trialId })),
    completeTrials: (input: { items: CompleteTrialInput[] }) =>
      mapInFlight(input.items, WRITES_IN_FLIGHT, (x) => acts.completeTrial(x)),
    endTrials: (input: { items: EndTrialInput[] }) =>
      mapInFlight(input.items, WRITES_IN_FLIGHT, (x) => acts.endTrial(x)),
  };
}

export type PackActivities = ReturnType<typeof packActivities>;
