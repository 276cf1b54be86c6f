// NPE training's settings: what they are, RABI's defaults (research/paper.md section 7), and their
// validation, so a bad setting is refused before any data is touched.

export interface NPEHyperparameters {
  learningRate: number;
  batchSize: number;
  /** Global gradient-norm clip (PyTorch clip_grad_norm_); Infinity turns it off. */
  clipNorm: number;
  /**
   * Leave out each epoch's last partial batch, as sbi's training loader does (drop_last); undefined
   * or false keeps it as a smaller step.
   */
  dropLast?: boolean;
  /** Held-out validation rows; undefined means min(512, 10% of the finite rows), at least 1. */
  valSize?: number;
  patience: number;
  /**
   * What an improvement does to early stopping's counter: 'rabi' (undefined) lowers it by one, so
   * noisy validation losses stop a run early; 'sbi' resets it, stopping after `patience` epochs
   * in a row without improvement (sbi's stop_after_epochs).
   */
  stopRule?: StopRule;
  /**
   * Times a run that early stopping would end goes on instead, from its best state, at the
   * learning rate times annealFactor (once more each time): undefined or 0, never. Adam's noise at
   * the end of a run costs likelihood that a smaller step recovers (BENCHMARKS.md, "Annealing").
   */
  anneals?: number;
  /** The learning rate's factor at each anneal, in (0, 1); undefined means 0.1. */
  annealFactor?: number;
  /**
   * Early stopping's patience once an anneal is taken; undefined means `patience`. At the cut rate
   * the validation loss moves less between epochs, so a shorter wait sees the same plateau.
   */
  annealPatience?: number;
  /** Early stopping may not stop before this many epochs have run past the first (RABI: epoch index < minEpochs). */
  minEpochs: number;
  maxEpochs: number;
  /** NaN validation losses tolerated (each reloads the best state) before DivergedError. */
  maxNanResets: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

export const STOP_RULES = ['rabi', 'sbi'] as const;
export type StopRule = (typeof STOP_RULES)[number];

export const DEFAULT_NPE_HYPERPARAMETERS: Readonly<NPEHyperparameters> = Object.freeze({
  learningRate: 1e-3,
  batchSize: 512,
  clipNorm: 75,
  patience: 10,
  minEpochs: 5,
  maxEpochs: 300,
  maxNanResets: 10,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
});

/** The defaults overlaid with the given settings (undefined ones skipped), each checked. */
export function resolveHyperparameters(
  partial: Partial<NPEHyperparameters> | undefined,
): NPEHyperparameters {
  const hp: NPEHyperparameters = { ...DEFAULT_NPE_HYPERPARAMETERS };
  for (const [k, v] of Object.entries(partial ?? {})) {
    if (v !== undefined) (hp as unknown as Record<string, unknown>)[k] = v;
  }
  const positiveInt = (name: keyof NPEHyperparameters, min: number): void => {
    const v = hp[name];
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < min)) {
      throw new RangeError(
        `NPE hyperparameter ${name} must be an integer >= ${min}, got ${String(v)}.`,
      );
    }
  };
  positiveInt('batchSize', 1);
  positiveInt('maxEpochs', 1);
  positiveInt('minEpochs', 0);
  positiveInt('patience', 0);
  positiveInt('maxNanResets', 0);
  positiveInt('valSize', 1);
  positiveInt('anneals', 0);
  positiveInt('annealPatience', 0);
  if (hp.annealFactor !== undefined && !(hp.annealFactor > 0 && hp.annealFactor < 1))
    throw new RangeError(
      `NPE hyperparameter annealFactor must lie in (0, 1), got ${String(hp.annealFactor)}.`,
    );
  if (hp.dropLast !== undefined && typeof hp.dropLast !== 'boolean')
    throw new RangeError(
      `NPE hyperparameter dropLast must be true or false, got ${String(hp.dropLast)}.`,
    );
  // Off is the default: recorded as absent, so checkpoints and model files compare equal.
  if (hp.dropLast === false) delete hp.dropLast;
  if (hp.stopRule !== undefined && !(STOP_RULES as readonly string[]).includes(hp.stopRule))
    throw new RangeError(
      `NPE hyperparameter stopRule must be ${STOP_RULES.join(' or ')}, got ${String(hp.stopRule)}.`,
    );
  if (!(hp.learningRate > 0) || !Number.isFinite(hp.learningRate))
    throw new RangeError(
      `NPE hyperparameter learningRate must be a positive number, got ${hp.learningRate}.`,
    );
  if (!(hp.clipNorm > 0))
    throw new RangeError(
      `NPE hyperparameter clipNorm must be positive (Infinity disables clipping), got ${hp.clipNorm}.`,
    );
  if (!(hp.beta1 >= 0 && hp.beta1 < 1 && hp.beta2 >= 0 && hp.beta2 < 1 && hp.epsilon > 0))
    throw new RangeError(
      'NPE hyperparameters beta1 and beta2 must lie in [0, 1) and epsilon must be positive.',
    );
  return hp;
}
