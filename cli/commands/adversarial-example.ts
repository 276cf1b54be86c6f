// `robustsbi adversarial-example`: the paper's Fig. 2 for a saved model: attack fresh test points,
// keep the one whose posterior moved most, and write its x, x~, clean and attacked posterior samples
// and their posterior-predictive simulations as one JSON document.
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { checkOutputPath, parseCommandArgs, parseInteger, required } from '../sbi-args.js';

// Kept here, not imported from sbi/attacks, so that `robustsbi --help` does not load tfjs.
const ATTACKS = ['l2pgd', 'linfpgd', 'noise', 'nll', 'fim-eigen'] as const;
const OBJECTIVES = ['rkl', 'fkl'] as const;

const usage = `robustsbi adversarial-example --model MODEL --eps E --out example.json [options]

  --attack A            l2pgd (default), linfpgd, noise, nll, fim-eigen
  --objective O         rkl (default) or fkl: what the attack maximizes and the points are ranked by
  --eps E               budget relative to the test xs' mean per-sample std (the paper: 2, SIR 0.2)
  --n-test K            test simulations attacked (default 100)
  --seed S              seed of the test set, the attack and the samples (default 0)
  --samples K           posterior samples kept, clean and attacked (default 1000)
  --predictive K        posterior-predictive simulations from each (default 20)
  --steps K             PGD iterations (default per attack)
  --backend B           tfjs-node-gpu, tfjs-node, wasm, cpu or auto (default)
  --out FILE            the JSON document, written atomically`;

function choice<T extends string>(option: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text))
    throw new UserError(`--${option} "${text}" is not one of ${allowed.join(', ')}.`);
  return text as T;
}

async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs('adversarial-example', argv, {
    model: { type: 'string' },
    attack: { type: 'string', default: 'l2pgd' },
    objective: { type: 'string', default: 'rkl' },
    eps: { type: 'string' },
    'n-test': { type: 'string', default: '100' },
    seed: { type: 'string', default: '0' },
    samples: { type: 'string', default: '1000' },
    predictive: { type: 'string', default: '20' },
    steps: { type: 'string' },
    backend: { type: 'string' },
    out: { type: 'string' },
  });
  const modelPath = required(v.model, 'model', 'adversarial-example');
  const attack = choice('attack', v.attack!, ATTACKS);
  const objective = choice('objective', v.objective!, OBJECTIVES);
  const epsText = required(v.eps, 'eps', 'adversarial-example');
  const eps = Number(epsText);
  if (!Number.isFinite(eps) || eps < 0)
    throw new UserError(`--eps must be a non-negative number, got "${epsText}".`);
  const nTest = parseInteger('n-test', v['n-test']!, 1);
  const seed = parseInteger('seed', v.seed!, 0);
  const samples = parseInteger('samples', v.samples!, 1);
  const predictive = parseInteger('predictive', v.predictive!, 0);
  const steps = v.steps === undefined ? undefined : parseInteger('steps', v.steps, 1);
  const out = checkOutputPath('out', required(v.out, 'out', 'adversarial-example'));

  const { startBackend, modelTestSet, loadOrFail } = await import('../sbi-context.js');
  const { loadModel } = await import('../../sbi/model-file.js');
  const { createRng } = await import('../../sbi/rng.js');
  const { adversarialExample } = await import('../../sbi/adversarial-example.js');
  const { writeFileAtomic } = await import('../../sbi/atomic-file.js');
  const { toJsonText } = await import('../../sbi/json-numbers.js');

  const backend = await startBackend(v.backend);
  const saved = loadOrFail(() => loadModel(modelPath));
  const model = saved.estimator;
  try {
    const rng = createRng(seed);
    // The same test set as `robustsbi evaluate --seed S` draws.
    const { task, test } = modelTestSet(saved, modelPath, nTest, rng);
    const ex = await adversarialExample(
      model,
      task,
      test,
      { attack, objective, eps, samples, predictive, ...(steps !== undefined ? { steps } : {}) },
      rng.fork('adversarial-example'),
    );
    const doc = {
      task: task.name,
      model: modelPath,
      paramNames: saved.paramNames,
      seed,
      backend: backend.name,
      attack,
      objective,
      ...ex,
    };
    writeFileAtomic(out, `${toJsonText(doc, 1)}\n`);
    console.error(
      `adversarial-example: test point ${ex.index} of ${test.n}, ${objective} ${ex.kl.toPrecision(4)} at eps ${eps} -> ${v.out}`,
    );
  } finally {
    model.dispose();
  }
  return 0;
}

export const command: Command = {
  name: 'adversarial-example',
  summary: "The most damaging adversarial example (the paper's Fig. 2) with its posteriors",
  usage,
  run,
};
