// `robustsbi train`: NPE on a task's simulations (drawn here, or read with --sims), written as one
// self-describing model file. Progress goes to stderr, the summary to stdout.
import type { ValidationChoice } from '../../sbi/choose-by-validation.js';
import type { SavedModel } from '../../sbi/model-file.js';
import type { TrainingState } from '../../sbi/npe-checkpoint.js';
import { DEFENSE_NAMES, DEFENSE_TAKES, isDefenseName } from '../../sbi/defenses/names.js';
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import {
  checkOutputPath,
  parseCommandArgs,
  parseInteger,
  parseIntegerList,
  parsePositiveNumber,
  required,
} from '../sbi-args.js';
import { STOP_RULES, type StopRule } from '../../sbi/npe-hyperparameters.js';
import {
  DEFAULT_TRAIN_ESTIMATOR,
  candidateEstimator,
  closedFormFits,
  trainCandidates,
  trainDefaults,
} from '../../sbi/train-defaults.js';

const ESTIMATORS = [
  'maf',
  'nsf',
  'gaussian',
  'mdn',
  'multivariate_gaussian',
  'maf_ensemble',
  'linear_gaussian',
];

const usage = `robustsbi train --task TASK --n N --out MODEL [options]
       robustsbi train --sims FILE --out MODEL [options]

  --task T            gaussian_linear, lotka_volterra, sir, two_moons, slcp,
                      hodgkin_huxley, spatial_sir, vae, pyloric (taken from --sims when given)
  --estimator E       maf (default), nsf, gaussian, mdn, multivariate_gaussian (full covariance),
                      maf_ensemble (a uniform mixture of --members MAFs), linear_gaussian
                      (N(W x + b, Sigma) fitted in closed form: no epochs, no defense)
  --n N               simulation budget (with --sims: use the first N rows)
  --seed S            seed of simulation, initialization and shuffling (default 0)
  --preset P          robustsbi (default) or rabi: the paper's code exactly (theta not z-scored,
                      pyro's MAF direction and clamp, pyro's linear-rational NSF on [-30, 30],
                      torch biases, 512 validation rows simulated beside N, restarts at lr x 0.1
                      after a divergence, RABI's architecture and schedule; see sbi/presets.ts)
  --sims FILE         train on a file written by "robustsbi simulate"
  --out MODEL         the model file to write
  Defaults below are robustsbi's (sbi 0.27's NPE recipe on robustsbi's MAF, chosen on C2ST and KL; see
  BENCHMARKS.md); with --preset rabi they are RABI's, in brackets (sweeps default to RABI's).
  --max-epochs K      default 2000 [300]   --min-epochs K   default 5
  --batch-size B      default 200 [512]    --lr R           default 0.0005 [0.001]
  --patience P        default 20 [10]      --val-size V     default min(512, 10% of N)
  --clip C            global gradient-norm clip, default 5 [75] (inf: off)
  --stop-rule R       sbi (default): stop after --patience epochs in a row without a better
                      validation loss; [rabi]: an improvement only takes one off the count
  --drop-last         leave out each epoch's last partial batch, as sbi's training loader does
                      (default: keep it as a smaller step)
  --anneals K         when the rule would stop, go on from the best state at the learning
                      rate times --anneal-factor (default 0.1), up to K times (default 2 [0])
  --anneal-patience P after an anneal, stop after P epochs without a better validation loss
                      (default 10; unset: --patience)
  --hidden 50,50      hidden layer sizes (maf default 50,50 [100,100]; others: their own).
                      A maf with none of --hidden, --transforms, --activation and no defense
                      also trains 50,50,50 with nflows' scale and initialization on the same
                      split and keeps the one with the lower validation NLL at their first
                      early stop; only the kept one then takes the anneals. Below 10,000
                      simulations the candidates are instead 50,50 with nflows' scale and
                      initialization, the same with nflows' context layer, and the
                      linear-Gaussian fit (not with --ensemble)
  --sbi-made          maf: also try sbi's MADE exactly (50,50,50 with nflows' context layer
                      and degrees) as a third candidate: slcp's C2ST at sbi's at 1k, for
                      1.4 to 2.1 times the training CPU (BENCHMARKS.md)
  --transforms K      flow transforms (maf, nsf, maf_ensemble; maf default 5 [3])
  --bins K            spline bins (nsf)    --components K   mixture components (mdn)
  --members K         MAFs in the ensemble (maf_ensemble, default 10)
  --ensemble K        maf: train K MAFs of the kept architecture apart (own initialization
                      and shuffles, one split) and save their mixture, a maf_ensemble
                      file (default 1)
  --mixture M         with --ensemble: fitted (default), the member weights that maximize
                      the validation rows' likelihood, or uniform
  --activation A      MADE hidden units, relu or tanh (maf, nsf, maf_ensemble; maf default
                      tanh [relu]); the fused kernels run tanh in the plain
                      training step only, so defenses and attacks on a tanh MAF run on tfjs ops
  --x-transform T     auto (default), log or none: log x on the dimensions positive in every
                      training row; auto logs where a linear-Gaussian probe of theta on x gains
                      over 0.2 nats of validation NLL per parameter from the log (sir's counts
                      do, lotka_volterra's do not). [none]; none with a defense, whose eps is
                      measured in x as simulated
  --backend B         tfjs-node-gpu, tfjs-node, wasm, cpu or auto (default)
  --defense D         none (default), fim, fim-fast, trades, adversarial, noise, fim-exact
                      (closed-form trace, plain gradient), fim-eigenvalue (largest FIM eigenvalue)
  --beta B            fim / fim-fast / fim-exact regularizer weight (default 0.05), fim-eigenvalue
                      (default 0.1), trades KL weight (default 0.1)
  --train-eps E       trades / adversarial / noise budget relative to the training x scale
                      (defaults 0.5, 0.5, 1)
  --adversarial-update U  adversarial and trades: intended (default) or rabi: also add the weight
                      gradient of every PGD iterate's attack loss (adversarial: the NLL; trades:
                      the one-sample rKL) to the update, as RABI's code does (tfjs ops, slower)
  --mc-samples M      fim defenses: samples of theta per x (default 5; RABI's pyloric run: 1)
  --grad-clamp G      fim: global-norm bound on the regularizer's gradient alone (RABI's
                      grad_clamp_val; its pyloric run: 1000)`;

async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs('train', argv, {
    task: { type: 'string' },
    estimator: { type: 'string', default: DEFAULT_TRAIN_ESTIMATOR },
    n: { type: 'string' },
    seed: { type: 'string', default: '0' },
    preset: { type: 'string', default: 'robustsbi' },
    sims: { type: 'string' },
    out: { type: 'string' },
    'max-epochs': { type: 'string' },
    'min-epochs': { type: 'string' },
    'batch-size': { type: 'string' },
    lr: { type: 'string' },
    patience: { type: 'string' },
    'val-size': { type: 'string' },
    clip: { type: 'string' },
    'stop-rule': { type: 'string' },
    'drop-last': { type: 'boolean', default: false },
    'sbi-made': { type: 'boolean', default: false },
    anneals: { type: 'string' },
    'anneal-factor': { type: 'string' },
    'anneal-patience': { type: 'string' },
    hidden: { type: 'string' },
    transforms: { type: 'string' },
    bins: { type: 'string' },
    components: { type: 'string' },
    members: { type: 'string' },
    ensemble: { type: 'string' },
    mixture: { type: 'string' },
    activation: { type: 'string' },
    backend: { type: 'string' },
    defense: { type: 'string', default: 'none' },
    beta: { type: 'string' },
    'train-eps': { type: 'string' },
    'adversarial-update': { type: 'string' },
    'mc-samples': { type: 'string' },
    'grad-clamp': { type: 'string' },
    'x-transform': { type: 'string' },
  });

  // Every option is checked before anything is simulated or trained.
  const kind = v.estimator!;
  if (!ESTIMATORS.includes(kind))
    throw new UserError(`Unknown estimator "${kind}"; use one of ${ESTIMATORS.join(', ')}.`);
  if (v.task === undefined && v.sims === undefined)
    throw new UserError('"robustsbi train" needs --task (with --n) or --sims.');
  const seed = parseInteger('seed', v.seed!, 0);
  const { isPresetName, PRESETS, PRESET_SETTINGS } = await import('../../sbi/presets.js');
  if (!isPresetName(v.preset!))
    throw new UserError(`Unknown preset "${v.preset}"; use one of ${PRESETS.join(', ')}.`);
  const preset = v.preset;
  const nOption = v.n === undefined ? undefined : parseInteger('n', v.n, 2);
  if (nOption === undefined && v.sims === undefined)
    throw new UserError('"robustsbi train" needs --n (the simulation budget) when it simulates.');
  const out = checkOutputPath('out', required(v.out, 'out', 'train'));
  const defenseName = v.defense!;
  if (!isDefenseName(defenseName))
    throw new UserError(
      `Unknown defense "${defenseName}"; use one of ${DEFENSE_NAMES.join(', ')}.`,
    );
  if (v.beta !== undefined && !DEFENSE_TAKES[defenseName].beta)
    throw new UserError(
      `--beta applies to fim, fim-fast, fim-exact, fim-eigenvalue and trades, not to --defense ${defenseName}.`,
    );
  if (v['train-eps'] !== undefined && !DEFENSE_TAKES[defenseName].trainEps)
    throw new UserError(
      `--train-eps applies to trades, adversarial and noise, not to --defense ${defenseName}.`,
    );
  if (
    v['mc-samples'] !== undefined &&
    !['fim', 'fim-fast', 'fim-exact', 'fim-eigenvalue'].includes(defenseName)
  )
    throw new UserError(
      `--mc-samples applies to fim, fim-fast, fim-exact and fim-eigenvalue, not to --defense ${defenseName}.`,
    );
  if (v['grad-clamp'] !== undefined && defenseName !== 'fim')
    throw new UserError(`--grad-clamp applies to --defense fim, not to --defense ${defenseName}.`);
  const xTransformMode =
    v['x-transform'] ?? (preset === 'robustsbi' && defenseName === 'none' ? 'auto' : 'none');
  if (!['auto', 'log', 'none'].includes(xTransformMode))
    throw new UserError(`--x-transform must be auto, log or none, got "${xTransformMode}".`);
  if (xTransformMode !== 'none' && defenseName !== 'none')
    throw new UserError(
      `--x-transform ${xTransformMode} does not combine with --defense ${defenseName}, whose eps is measured in x as simulated.`,
    );
  const update = v['adversarial-update'];
  if (update !== undefined && defenseName !== 'adversarial' && defenseName !== 'trades')
    throw new UserError(
      `--adversarial-update applies to --defense adversarial and trades, not to --defense ${defenseName}.`,
    );
  if (update !== undefined && update !== 'intended' && update !== 'rabi')
    throw new UserError(`--adversarial-update must be intended or rabi, got "${update}".`);
  const defenseOptions = {
    beta: v.beta === undefined ? undefined : parseNonNegativeNumber('beta', v.beta),
    trainEps:
      v['train-eps'] === undefined ? undefined : parsePositiveNumber('train-eps', v['train-eps']),
    ...(update !== undefined ? { update: update as 'intended' | 'rabi' } : {}),
    ...(v['mc-samples'] !== undefined
      ? { mcSamples: parseInteger('mc-samples', v['mc-samples'], 1) }
      : {}),
    ...(v['grad-clamp'] !== undefined
      ? { gradClamp: parsePositiveNumber('grad-clamp', v['grad-clamp']) }
      : {}),
  };
  const hyperparameters = {
    maxEpochs:
      v['max-epochs'] === undefined ? undefined : parseInteger('max-epochs', v['max-epochs'], 1),
    minEpochs:
      v['min-epochs'] === undefined ? undefined : parseInteger('min-epochs', v['min-epochs'], 0),
    batchSize:
      v['batch-size'] === undefined ? undefined : parseInteger('batch-size', v['batch-size'], 1),
    learningRate: v.lr === undefined ? undefined : parsePositiveNumber('lr', v.lr),
    patience: v.patience === undefined ? undefined : parseInteger('patience', v.patience, 0),
    valSize: v['val-size'] === undefined ? undefined : parseInteger('val-size', v['val-size'], 1),
    clipNorm: v.clip === undefined ? undefined : parsePositiveNumber('clip', v.clip, true),
    stopRule: v['stop-rule'] === undefined ? undefined : parseStopRule(v['stop-rule']),
    // Absent when off: the library's default, so the model file matches a sweep's.
    dropLast: v['drop-last'] ? true : undefined,
    anneals: v.anneals === undefined ? undefined : parseInteger('anneals', v.anneals, 0),
    annealFactor:
      v['anneal-factor'] === undefined ? undefined : parseAnnealFactor(v['anneal-factor']),
    annealPatience:
      v['anneal-patience'] === undefined
        ? undefined
        : parseInteger('anneal-patience', v['anneal-patience'], 0),
  };
  // The command's own defaults (robustsbi's accurate recipe, or RABI's under --preset rabi) fill
  // what the options leave unset, so the model file records every setting it was trained with.
  const defaults = trainDefaults(preset, kind);
  for (const [k, value] of Object.entries(defaults.hyperparameters)) {
    const key = k as keyof typeof hyperparameters;
    if (key in hyperparameters && hyperparameters[key] === undefined)
      (hyperparameters as Record<string, unknown>)[key] = value;
  }
  // RABI's counter is the library's default: recorded as unset, so a model file matches the sweep's.
  if (hyperparameters.stopRule === 'rabi') hyperparameters.stopRule = undefined;
  // Likewise no anneals, the library's default; without anneals their patience means nothing.
  if (hyperparameters.anneals === 0) hyperparameters.anneals = undefined;
  if (hyperparameters.anneals === undefined) hyperparameters.annealPatience = undefined;
  const overrides: Record<string, unknown> = { ...defaults.architecture };
  if (v.hidden !== undefined) overrides.hidden = parseIntegerList('hidden', v.hidden);
  const onlyFor = (option: string, kinds: string[]): void => {
    if (!kinds.includes(kind))
      throw new UserError(
        `--${option} applies to ${kinds.slice(0, -1).join(', ')}${kinds.length > 1 ? ' and ' : ''}${kinds.at(-1)} only, not to ${kind}.`,
      );
  };
  if (v.transforms !== undefined) {
    onlyFor('transforms', ['maf', 'nsf', 'maf_ensemble']);
    overrides.numTransforms = parseInteger('transforms', v.transforms, 1);
  }
  if (v.bins !== undefined) {
    onlyFor('bins', ['nsf']);
    overrides.bins = parseInteger('bins', v.bins, 2);
  }
  if (v.components !== undefined) {
    onlyFor('components', ['mdn']);
    overrides.components = parseInteger('components', v.components, 1);
  }
  if (v.members !== undefined) {
    onlyFor('members', ['maf_ensemble']);
    overrides.members = parseInteger('members', v.members, 1);
  }
  let ensemble = 1;
  if (v.ensemble !== undefined) {
    onlyFor('ensemble', ['maf']);
    ensemble = parseInteger('ensemble', v.ensemble, 1);
  }
  let mixture: 'fitted' | 'uniform' = 'fitted';
  if (v.mixture !== undefined) {
    if (ensemble < 2)
      throw new UserError('--mixture applies to an ensemble of 2 or more (--ensemble K).');
    if (v.mixture !== 'fitted' && v.mixture !== 'uniform')
      throw new UserError(`--mixture must be fitted or uniform, got "${v.mixture}".`);
    mixture = v.mixture;
  }
  if (v.activation !== undefined) {
    onlyFor('activation', ['maf', 'nsf', 'maf_ensemble']);
    if (v.activation !== 'relu' && v.activation !== 'tanh')
      throw new UserError(`--activation must be relu or tanh, got "${v.activation}".`);
    // ReLU is the MADE's own default, recorded as absent: a model file then matches a sweep's.
    if (v.activation === 'relu') delete overrides.activation;
    else overrides.activation = v.activation;
  }

  // Unpinned, a default MAF is chosen by validation among the preset's candidate architectures.
  const pinned = v.hidden !== undefined || v.transforms !== undefined || v.activation !== undefined;
  const oneArchitecture = pinned || defenseName !== 'none';
  if (v['sbi-made']) {
    onlyFor('sbi-made', ['maf']);
    if (preset === 'rabi')
      throw new UserError(
        "--sbi-made adds a candidate to robustsbi's MAF; --preset rabi trains RABI's one.",
      );
    if (oneArchitecture)
      throw new UserError(
        "--sbi-made adds a candidate beside the default's; --hidden, --transforms, --activation and a defense pin one architecture.",
      );
  }

  const { startBackend, taskByName, loadOrFail } = await import('../sbi-context.js');
  const { createRng } = await import('../../sbi/rng.js');
  const { simulateDataset } = await import('../../sbi/simulate.js');
  const { loadSimulations } = await import('../../sbi/simulation-file.js');
  const { DivergedError } = await import('../../sbi/errors.js');
  const { candidateSchedule, chooseByValidation, describeChoice, describeMade } =
    await import('../../sbi/choose-by-validation.js');
  const { checkFitConfig, fitModel } = await import('../../sbi/fit.js');
  const { saveModel } = await import('../../sbi/model-file.js');
  const { codeVersion } = await import('../code-version.js');
  const { epochProgress } = await import('../progress.js');

  // Under a preset with separate validation rows (rabi), N trains and the rows beside it validate.
  const presetSettings = PRESET_SETTINGS[preset];
  const extraRows =
    presetSettings.validation === 'extra'
      ? (hyperparameters.valSize ?? presetSettings.extraValidationRows)
      : 0;

  // Data: the simulation file decides the task; otherwise simulate as `robustsbi simulate` would.
  let task;
  let theta: Float32Array;
  let x: Float32Array;
  let n: number;
  let droppedBefore = 0;
  if (v.sims !== undefined) {
    const sims = loadOrFail(() => loadSimulations(v.sims!));
    if (v.task !== undefined && v.task !== sims.task) {
      throw new UserError(
        `--task ${v.task} does not match the simulation file ${v.sims}, which holds ${sims.task} simulations.`,
      );
    }
    task = taskByName(sims.task);
    if (sims.thetaDim !== task.thetaDim || sims.xDim !== task.xDim) {
      throw new UserError(
        `The simulation file ${v.sims} has ${sims.thetaDim}->${sims.xDim} dimensions, but ${task.name} has ${task.thetaDim}->${task.xDim}.`,
      );
    }
    n = nOption ?? sims.n - extraRows;
    if (n + extraRows > sims.n)
      throw new UserError(
        `--n ${n}${extraRows ? ` and ${extraRows} validation rows` : ''} exceed the ${sims.n} simulations in ${v.sims}.`,
      );
    n += extraRows;
    theta = sims.theta.subarray(0, n * task.thetaDim);
    x = sims.x.subarray(0, n * task.xDim);
    droppedBefore = sims.dropped;
  } else {
    task = taskByName(v.task!);
    n = nOption! + extraRows;
  }
  if (!extraRows && hyperparameters.valSize !== undefined && hyperparameters.valSize >= n) {
    throw new UserError(
      `--val-size ${hyperparameters.valSize} leaves no training data out of ${n} simulations.`,
    );
  }
  // Unpinned, the candidates depend on the budget (the small one's are other architectures, and a
  // closed-form fit an ensemble cannot use); unpinned, the options left no mark on `overrides`.
  const architectures = oneArchitecture
    ? [overrides]
    : trainCandidates(preset, kind, {
        sbiMade: v['sbi-made'],
        n: n - extraRows,
        first: overrides,
        closedForm: ensemble === 1 && closedFormFits(task, n - extraRows),
      });
  const config = {
    task: task.name,
    estimator: kind,
    architecture: overrides,
    defense: defenseName,
    defenseOptions,
    hyperparameters,
    seed,
    preset,
  };
  try {
    for (const candidate of architectures)
      checkFitConfig({ ...config, ...candidateEstimator(candidate, kind) }, n + droppedBefore);
  } catch (e) {
    if (e instanceof RangeError) throw new UserError(e.message);
    throw e;
  }
  const backend = await startBackend(v.backend);
  if (v.sims === undefined) {
    // The training streams fork from the seed by name, so drawing here leaves them as they are.
    const data = simulateDataset(task, n, createRng(seed));
    ({ theta, x } = data);
    droppedBefore = data.dropped;
    n = data.n;
  }
  const { chooseTrainXTransform } = await import('../x-transform-option.js');
  const xTransform = chooseTrainXTransform(
    xTransformMode,
    theta!,
    x!,
    n,
    task.thetaDim,
    task.xDim,
    createRng(seed).fork('x-transform'),
  );

  type Fitted = Awaited<ReturnType<typeof fitModel>> & { architecture: Record<string, unknown> };
  let trainMs = 0;
  const fitOnce = async (
    architecture: Record<string, unknown>,
    runHyperparameters: typeof hyperparameters,
    resumeFrom?: TrainingState,
    member = 0,
  ): Promise<Fitted> => {
    const progress = epochProgress();
    try {
      const f = await fitModel(
        {
          ...config,
          ...candidateEstimator(architecture, kind),
          hyperparameters: runHyperparameters,
          ...(xTransform ? { xTransform } : {}),
          ...(member > 0 ? { member } : {}),
        },
        { theta: theta!, x: x!, n, dropped: droppedBefore },
        {
          onEpoch: (p) => progress.onEpoch(p),
          // A candidate whose anneals wait for the choice keeps its end state to go on from.
          keepFinalState: runHyperparameters !== hyperparameters,
          ...(resumeFrom ? { resumeFrom } : {}),
        },
        { code: codeVersion(), backend: backend.name, ...(v.sims ? { sims: v.sims } : {}) },
      );
      trainMs += f.trainMs;
      return { ...f, architecture };
    } finally {
      progress.done();
    }
  };
  const schedule = candidateSchedule(hyperparameters, architectures.length);
  let choice: ValidationChoice<Fitted> | undefined;
  try {
    choice = await chooseByValidation(
      architectures,
      (architecture) => fitOnce(architecture, schedule),
      {
        bestValLoss: (f) => f.result.bestValLoss,
        dispose: (f) => f.saved.estimator.dispose(),
        // A candidate that diverges is passed over while another one trains.
        passOver: (e) => e instanceof DivergedError,
        // The kept candidate takes its anneals from where it stopped; one restarted after a
        // divergence trained at another rate, so it trains again from the start.
        ...(schedule !== hyperparameters
          ? {
              finish: async (f: Fitted) => {
                const from =
                  f.saved.training.nanRestarts === undefined ? f.result.finalState : undefined;
                const g = await fitOnce(f.architecture, hyperparameters, from);
                // The model file's training time is the kept model's: both segments when resumed.
                if (from) g.saved.summary.trainMs = Math.round(f.trainMs + g.trainMs);
                return g;
              },
            }
          : {}),
      },
    );
  } catch (e) {
    if (e instanceof DivergedError)
      throw new UserError(
        `${e.message.replace(/\.$/, '')}, so nothing was written (a smaller --lr may help).`,
        1,
      );
    if (e instanceof RangeError) throw new UserError(e.message);
    throw e;
  }
  if (choice === undefined)
    throw new UserError(
      'Every candidate architecture diverged, so nothing was written (a smaller --lr may help).',
      1,
    );
  const { result } = choice.chosen;
  let { saved } = choice.chosen;
  if (architectures.length > 1)
    console.log(
      `train: ${describeChoice(choice)}` +
        choice.passedOver.map((a) => `; ${describeMade(a)} diverged`).join(''),
    );
  if (ensemble > 1)
    saved = await trainEnsemble(choice.chosen, ensemble, mixture, (k) =>
      fitOnce(choice.chosen.architecture, hyperparameters, undefined, k),
    );
  try {
    saveModel(out, saved);
  } finally {
    saved.estimator.dispose();
  }
  const annealed =
    result.anneals === 0 ? '' : ` after ${result.anneals} anneal${result.anneals > 1 ? 's' : ''}`;
  console.log(
    `train: ${saved.training.estimator} on ${task.name} (${result.nTrain} train / ${result.nVal} validation, ${saved.summary.dropped} non-finite dropped): ` +
      `${result.epochs} epochs (${result.stoppedBy}${annealed}), best validation NLL ${result.bestValLoss.toFixed(4)} at epoch ${result.bestEpoch}, ` +
      `${(trainMs / 1000).toFixed(1)} s on ${backend.name}${result.fused ? ' (fused wasm step)' : ''} -> ${v.out}`,
  );
  return 0;
}

/** A trained member of a deep ensemble: its model file, training time and validation rows' log q. */
interface EnsembleMember {
  saved: SavedModel;
  trainMs: number;
  result: { valLogProbs: Float64Array };
}

/**
 * The kept run as member 0 and `members - 1` more of its architecture, each trained apart to its
 * own stop, saved as their mixture (sbi/estimators/deep-ensemble.ts): weighted by the validation
 * rows they share, or uniform. The file's summary is member 0's with every member's epochs, best
 * validation NLL and weight beside it.
 */
async function trainEnsemble(
  kept: EnsembleMember,
  members: number,
  mixture: 'fitted' | 'uniform',
  fitMember: (k: number) => Promise<EnsembleMember>,
): Promise<SavedModel> {
  const { fitMixtureWeights, mixMafs } = await import('../../sbi/estimators/deep-ensemble.js');
  const { DivergedError } = await import('../../sbi/errors.js');
  const first = kept.saved;
  // Member 0's training time is its file's: both segments where its anneals resumed it.
  const fitted = [{ ...kept, trainMs: first.summary.trainMs ?? 0 }];
  try {
    for (let k = 1; k < members; k++) {
      try {
        fitted.push(await fitMember(k));
      } catch (e) {
        if (e instanceof DivergedError)
          throw new UserError(
            `Member ${k} of the ensemble diverged (${e.message.replace(/\.$/, '')}), so nothing was written (a smaller --lr may help).`,
            1,
          );
        throw e;
      }
    }
    const fit =
      mixture === 'fitted' ? fitMixtureWeights(fitted.map((f) => f.result.valLogProbs)) : undefined;
    const estimator = mixMafs(
      fitted.map((f) => f.saved.estimator),
      fit?.weights,
    );
    const perMember = fitted.map((f, k) => ({
      epochs: f.saved.summary.epochs,
      bestValLoss: f.saved.summary.bestValLoss,
      weight: fit ? fit.weights[k]! : 1 / members,
    }));
    console.log(
      `train: a ${mixture} mixture of ${members} MAFs trained apart; best validation NLL per member ${perMember.map((m) => m.bestValLoss.toFixed(4)).join(', ')}` +
        (fit
          ? `; weights ${perMember.map((m) => m.weight.toFixed(3)).join(', ')} (the mixture's validation NLL ${(-fit.meanLogLik).toFixed(4)})`
          : ''),
    );
    return {
      ...first,
      estimator,
      training: { ...first.training, ensemble: members, mixture },
      summary: {
        ...first.summary,
        members: perMember,
        trainMs: Math.round(fitted.reduce((t, f) => t + f.trainMs, 0)),
      },
    };
  } finally {
    for (const f of fitted) f.saved.estimator.dispose();
  }
}

function parseStopRule(text: string): StopRule {
  if (!(STOP_RULES as readonly string[]).includes(text))
    throw new UserError(`--stop-rule must be ${STOP_RULES.join(' or ')}, got "${text}".`);
  return text as StopRule;
}

function parseAnnealFactor(text: string): number {
  const value = parsePositiveNumber('anneal-factor', text);
  if (value >= 1)
    throw new UserError(`--anneal-factor must be a number between 0 and 1, got "${text}".`);
  return value;
}

function parseNonNegativeNumber(option: string, text: string): number {
  const t = text.trim();
  const value = t === '' ? NaN : Number(t);
  if (!(value >= 0) || !Number.isFinite(value))
    throw new UserError(`--${option} must be a number >= 0, got "${text}".`);
  return value;
}

export const command: Command = {
  name: 'train',
  summary: 'Train a neural posterior estimator and save it to one model file',
  usage,
  run,
};
