// `robustsbi evaluate`: attack a saved model on fresh test simulations of its task and score it (KL
// under attack, expected coverage, NLL), one JSON record per (attack, objective, eps).
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { checkOutputPath, parseCommandArgs, parseInteger, required } from '../sbi-args.js';

// Kept here, not imported from sbi/attacks, so that `robustsbi --help` does not load tfjs.
const ATTACKS = ['l2pgd', 'linfpgd', 'noise', 'nll', 'fim-eigen'] as const;
const OBJECTIVES = ['rkl', 'fkl', 'mmd'] as const;
const DEFAULT_EPS = '0.1,0.2,0.3,0.5,1,2';

const usage = `robustsbi evaluate --model MODEL --attack A --out results.json [options]

  --attack A            l2pgd, linfpgd, noise, nll, fim-eigen (comma-separated for several)
  --objective O         rkl = KL(q(.|x~) || q(.|x)) (default), fkl = KL(q(.|x) || q(.|x~)),
                        mmd = MMD^2(q(.|x~), q(.|x)) (RBF kernel, l = 10); several: rkl,fkl,mmd
                        (what PGD maximizes and the value reported; nll and noise only report it)
  --eps E,E,...         budgets relative to the test xs' mean per-sample std (default ${DEFAULT_EPS})
  --n-test K            test simulations drawn from the model's task (default 1000)
  --seed S              seed of the test set, the attacks and the Monte Carlo estimates (default 0)
  --out FILE            JSON array of records, written atomically
  --steps K             PGD iterations (default 200 for l2pgd and nll, 120 for linfpgd)
  --mc-samples K        Monte Carlo samples per PGD step (default 5; 10 for mmd)
  --eval-samples K      samples per x for the reported KL or MMD (default 256)
  --coverage-samples K  samples per x for expected coverage (default 2000)
  --batch-size B        x attacked at once (default 1000)
  --backend B           tfjs-node-gpu, tfjs-node, wasm, cpu or auto (default)`;

function parseChoices<T extends string>(option: string, text: string, allowed: readonly T[]): T[] {
  const parts = text.split(',').map((s) => s.trim());
  for (const p of parts) {
    if (!(allowed as readonly string[]).includes(p)) {
      throw new UserError(`--${option} "${p}" is not one of ${allowed.join(', ')}.`);
    }
  }
  return [...new Set(parts)] as T[];
}

function parseEpsList(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const values = parts.map((p) => (p === '' ? NaN : Number(p)));
  const bad = values.findIndex((e) => !Number.isFinite(e) || e < 0);
  if (bad >= 0) {
    throw new UserError(
      `--eps must be a comma-separated list of non-negative numbers such as ${DEFAULT_EPS}, got "${parts[bad]}".`,
    );
  }
  return [...new Set(values)];
}

async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs('evaluate', argv, {
    model: { type: 'string' },
    attack: { type: 'string' },
    objective: { type: 'string', default: 'rkl' },
    eps: { type: 'string', default: DEFAULT_EPS },
    'n-test': { type: 'string', default: '1000' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string' },
    steps: { type: 'string' },
    'mc-samples': { type: 'string' },
    'eval-samples': { type: 'string', default: '256' },
    'coverage-samples': { type: 'string', default: '2000' },
    'batch-size': { type: 'string', default: '1000' },
    backend: { type: 'string' },
  });

  // Every option is checked before anything is loaded, simulated or attacked.
  const modelPath = required(v.model, 'model', 'evaluate');
  const attacks = parseChoices('attack', required(v.attack, 'attack', 'evaluate'), ATTACKS);
  const objectives = parseChoices('objective', v.objective!, OBJECTIVES);
  const eps = parseEpsList(v.eps!);
  const nTest = parseInteger('n-test', v['n-test']!, 1);
  const seed = parseInteger('seed', v.seed!, 0);
  const out = checkOutputPath('out', required(v.out, 'out', 'evaluate'));
  const steps = v.steps === undefined ? undefined : parseInteger('steps', v.steps, 1);
  const mcSamples =
    v['mc-samples'] === undefined ? undefined : parseInteger('mc-samples', v['mc-samples'], 1);
  const evalSamples = parseInteger('eval-samples', v['eval-samples']!, 1);
  const coverageSamples = parseInteger('coverage-samples', v['coverage-samples']!, 1);
  const batchSize = parseInteger('batch-size', v['batch-size']!, 1);

  const { startBackend, modelTestSet, loadOrFail } = await import('../sbi-context.js');
  const { loadModel } = await import('../../sbi/model-file.js');
  const { createRng } = await import('../../sbi/rng.js');
  const { evaluateRobustness } = await import('../../sbi/evaluation.js');
  const { writeFileAtomic } = await import('../../sbi/atomic-file.js');
  const { toJsonText } = await import('../../sbi/json-numbers.js');

  const backend = await startBackend(v.backend);
  const saved = loadOrFail(() => loadModel(modelPath));
  const model = saved.estimator;
  try {
    const rng = createRng(seed);
    const { task, test } = modelTestSet(saved, modelPath, nTest, rng);
    if (test.dropped > 0)
      console.error(`evaluate: dropped ${test.dropped} failed test simulations, ${test.n} left`);
    // The attack perturbs x as simulated; a model that reads log x is as fragile as log makes it.
    if (model.config.xTransform !== undefined)
      console.error(
        'evaluate: this model reads log x (robustsbi train --x-transform), so a small change of a small x moves it far; ' +
          'train with --x-transform none to study robustness of a model that reads x as simulated',
      );
    // A task with an analytic posterior (gaussian_linear) is also scored against it.
    const truth = task.analyticPosterior?.bind(task);
    const records = await evaluateRobustness(
      model,
      truth ? { ...test, analyticPosterior: truth } : test,
      {
        attacks,
        divergences: objectives,
        eps,
        ...(steps !== undefined ? { steps } : {}),
        ...(mcSamples !== undefined ? { mcSamples } : {}),
        evalSamples,
        coverageSamples,
        attackBatchSize: batchSize,
      },
      rng.fork('evaluate/attacks'),
      {
        onChunkRecord: (chunk, chunks, r) => {
          if (chunks > 1)
            console.error(
              `evaluate: ${r.attack} ${r.objective} eps ${r.eps}: test points of chunk ${chunk + 1} of ${chunks} in ${r.seconds.toFixed(1)} s`,
            );
        },
        onRecord: (r) =>
          console.error(
            `evaluate: ${r.attack} ${r.objective} eps ${r.eps} (abs ${r.epsAbs.toPrecision(4)}): ` +
              `KL mean ${r.kl.mean.toPrecision(4)} median ${r.kl.median.toPrecision(4)}, ` +
              `coverage area ${r.coverageAbsArea.toFixed(3)} (clean ${r.cleanCoverageAbsArea.toFixed(3)}), ` +
              `NLL ${r.nll.attacked.toFixed(3)} (clean ${r.nll.clean.toFixed(3)}), ${r.seconds.toFixed(1)} s`,
          ),
      },
    );
    const g = records[0]?.groundTruth;
    if (g)
      console.error(
        `evaluate: against the analytic posterior (clean x, ${g.samples} samples per x): ` +
          `C2ST ${g.c2st.toPrecision(4)}, KL(q||p) ${g.klQP.toPrecision(4)}, KL(p||q) ${g.klPQ.toPrecision(4)}`,
      );
    const doc = records.map((r) => ({
      task: task.name,
      model: modelPath,
      seed,
      backend: backend.name,
      ...r,
    }));
    writeFileAtomic(out, `${toJsonText(doc, 1)}\n`);
    console.error(`evaluate: ${records.length} records -> ${v.out}`);
  } finally {
    model.dispose();
  }
  return 0;
}

export const command: Command = {
  name: 'evaluate',
  summary: 'Attack a saved model and score its robustness (KL, coverage, NLL)',
  usage,
  run,
};
