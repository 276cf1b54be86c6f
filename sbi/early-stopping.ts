// Early stopping on the validation NLL with RABI's counter rule (research/paper.md section 7), and
// its NaN recovery. Pure: trainNPE feeds it one validation loss per epoch.
import type { NPEHyperparameters } from './npe-hyperparameters.js';

// Early stopping (pure)

export interface EarlyStoppingState {
  /** Infinity until a finite validation loss is seen. */
  bestValLoss: number;
  /** 1-based epoch of bestValLoss; 0 before any. */
  bestEpoch: number;
  counter: number;
  nanResets: number;
  /** Learning-rate cuts taken so far (hyperparameter anneals); absent in older checkpoints: 0. */
  anneals?: number;
}

/** How a training run ended. */
/** 'closed-form': no epochs ran (DensityEstimator.fitClosedForm). */
export type StoppedBy = 'early-stopping' | 'max-epochs' | 'closed-form';

export type StopDecision = 'continue' | 'stop' | 'reload' | 'diverged' | 'anneal';

export function initialEarlyStopping(): EarlyStoppingState {
  return { bestValLoss: Infinity, bestEpoch: 0, counter: 0, nanResets: 0 };
}

/**
 * RABI's EarlyStopping.__call__: an improvement lowers the counter by one (floored at 0, not reset;
 * under stopRule 'sbi' it resets it to 0),
 * anything else raises it; a non-finite loss asks for the best state back ('reload') until more
 * than maxNanResets have happened ('diverged'); otherwise stop once counter > patience, but never
 * while epochIndex < minEpochs. With anneals left, a stop becomes 'anneal' instead: the counter
 * starts again and the caller reloads the best state and cuts the learning rate; after an anneal
 * the counter is held to annealPatience where set. epochIndex is 0-based.
 */
export function earlyStoppingStep(
  s: EarlyStoppingState,
  epochIndex: number,
  valLoss: number,
  rule: Pick<
    NPEHyperparameters,
    'patience' | 'minEpochs' | 'maxNanResets' | 'stopRule' | 'anneals' | 'annealPatience'
  >,
): { state: EarlyStoppingState; decision: StopDecision; improved: boolean } {
  const next = { ...s };
  const improved = valLoss < s.bestValLoss; // false for NaN
  if (improved) {
    next.bestValLoss = valLoss;
    next.bestEpoch = epochIndex + 1;
    next.counter = rule.stopRule === 'sbi' ? 0 : Math.max(s.counter - 1, 0);
  } else {
    next.counter = s.counter + 1;
  }
  const patience = (s.anneals ?? 0) > 0 ? (rule.annealPatience ?? rule.patience) : rule.patience;
  let decision: StopDecision;
  if (!Number.isFinite(valLoss)) {
    next.nanResets = s.nanResets + 1;
    decision = next.nanResets > rule.maxNanResets ? 'diverged' : 'reload';
  } else if (epochIndex < rule.minEpochs) {
    decision = 'continue';
  } else if (next.counter <= patience) {
    decision = 'continue';
  } else if ((s.anneals ?? 0) < (rule.anneals ?? 0)) {
    next.anneals = (s.anneals ?? 0) + 1;
    next.counter = 0;
    decision = 'anneal';
  } else {
    decision = 'stop';
  }
  return { state: next, decision, improved };
}
