// The rule by which `robustsbi train` (and the parity bench, which must score what a user gets)
// picks among candidate architectures: each trains on the same split, the lowest best validation
// NLL is kept. Held in one place so the CLI and the bench cannot drift apart.

/** A candidate's architecture settings with the best validation NLL its training reached. */
export interface CandidateScore {
  architecture: Record<string, unknown>;
  bestValLoss: number;
}

export interface ValidationChoice<T> {
  /** The kept run; every other run has been disposed. */
  chosen: T;
  architecture: Record<string, unknown>;
  /** Every candidate that finished training, in the order tried. */
  scores: CandidateScore[];
  /** Candidates whose training failed in a way `passOver` accepted. */
  passedOver: Record<string, unknown>[];
}

export interface ChooseOptions<T> {
  bestValLoss: (run: T) => number;
  /** Frees a run that lost (its model's tensors). */
  dispose: (run: T) => void;
  /**
   * Whether a candidate that threw may be passed over while others train (a diverged run); with a
   * single candidate nothing is passed over, so the caller sees its error.
   */
  passOver?: (error: unknown) => boolean;
  /**
   * Goes on with the kept run once the choice is made, returning the run that replaces it (which
   * then owns what the kept run held): candidates train on `candidateSchedule`, and only the kept
   * one takes the anneals. The scores stay those the choice was made on.
   */
  finish?: (run: T) => Promise<T>;
}

/**
 * The schedule a candidate trains on where several compete: up to its first early stop, the
 * anneals left to the kept one (a run resumed from that stop with them ends as one run with them
 * would; sbi/npe.ts). Comparing candidates before their anneals costs no accuracy measured
 * (BENCHMARKS.md, "Annealing only the kept candidate") and saves each loser its anneals' epochs.
 * Returns `hp` itself when nothing is deferred, so a caller can tell by identity.
 */
export function candidateSchedule<H extends { anneals?: number }>(hp: H, candidates: number): H {
  return candidates > 1 && (hp.anneals ?? 0) > 0 ? { ...hp, anneals: 0 } : hp;
}

/**
 * Trains every architecture in turn and keeps the one with the lowest best validation NLL (the first
 * on ties), disposing a run as soon as it loses so at most two models live at once. Undefined when
 * every candidate was passed over. An error not passed over disposes the kept run and propagates.
 */
export async function chooseByValidation<T>(
  architectures: readonly Record<string, unknown>[],
  train: (architecture: Record<string, unknown>) => Promise<T>,
  opts: ChooseOptions<T>,
): Promise<ValidationChoice<T> | undefined> {
  const scores: CandidateScore[] = [];
  const passedOver: Record<string, unknown>[] = [];
  let best: { run: T; architecture: Record<string, unknown>; loss: number } | undefined;
  for (const architecture of architectures) {
    let run: T;
    try {
      run = await train(architecture);
    } catch (e) {
      if (architectures.length > 1 && opts.passOver?.(e)) {
        passedOver.push(architecture);
        continue;
      }
      if (best) opts.dispose(best.run);
      throw e;
    }
    const loss = opts.bestValLoss(run);
    scores.push({ architecture, bestValLoss: loss });
    if (best === undefined || loss < best.loss) {
      if (best) opts.dispose(best.run);
      best = { run, architecture, loss };
    } else opts.dispose(run);
  }
  if (best === undefined) return undefined;
  let chosen = best.run;
  if (opts.finish) {
    try {
      chosen = await opts.finish(best.run);
    } catch (e) {
      opts.dispose(best.run);
      throw e;
    }
    if (chosen !== best.run) opts.dispose(best.run);
  }
  return { chosen, architecture: best.architecture, scores, passedOver };
}

/**
 * A MAF candidate in a few words: its hidden layers, and nflows' scale and initialization (or
 * torch's biases alone) where it has them; a candidate of another kind (train-defaults.ts
 * CANDIDATE_ESTIMATOR_KEY) by its kind.
 */
export function describeMade(arch: Record<string, unknown>): string {
  if (arch.estimator === 'linear_gaussian') return 'the linear-Gaussian fit';
  if (typeof arch.estimator === 'string') return arch.estimator;
  const hidden = Array.isArray(arch.hidden) ? `[${(arch.hidden as number[]).join(', ')}]` : 'MADE';
  const traits: string[] = [];
  if (arch.affine === 'nflows') traits.push("nflows' scale");
  if (arch.contextLayer === 'tanh') traits.push("nflows' context layer");
  if (arch.degrees === 'nflows') traits.push("nflows' degrees");
  const separate = arch.inputFanIn === 'separate';
  const torchBiases = arch.biasInit === 'torch';
  if (separate && torchBiases) traits.push("nflows' initialization");
  else {
    if (separate) traits.push("nflows' first-layer fan-in");
    if (torchBiases) traits.push("torch's biases");
  }
  return traits.length === 0 ? hidden : `${hidden} with ${traits.join(' and ')}`;
}

/** "chose A by validation NLL A 1.2345, B 1.3456": the line both the CLI and the bench print. */
export function describeChoice(choice: ValidationChoice<unknown>, digits = 4): string {
  return (
    `chose ${describeMade(choice.architecture)} by validation NLL ` +
    choice.scores
      .map((s) => `${describeMade(s.architecture)} ${s.bestValLoss.toFixed(digits)}`)
      .join(', ')
  );
}
