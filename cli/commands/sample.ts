// `robustsbi sample`: K draws from a saved posterior estimator at one observation, as CSV (a header row
// of parameter names, then one sample per row). Draws outside the prior's support are redrawn, as
// sbi's posterior.sample does, unless --leakage keep.
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import {
  checkOutputPath,
  formatFloat32,
  parseCommandArgs,
  parseInteger,
  parseLeakage,
  parseVector,
  required,
} from '../sbi-args.js';

const usage = `robustsbi sample --model MODEL --x '[x1,...,xd]' [--n K] [--seed S] [--leakage reject|keep] [--out samples.csv] [--backend B]

  --n K        number of samples (default 1000)
  --leakage    reject (default): redraw samples outside the task's prior support, as sbi does;
               keep: take the estimator's draws as they are (no task needed)
  --out F      CSV file to write (default: stdout)`;

async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs('sample', argv, {
    model: { type: 'string' },
    x: { type: 'string' },
    n: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '0' },
    leakage: { type: 'string', default: 'reject' },
    out: { type: 'string' },
    backend: { type: 'string' },
  });
  const modelPath = required(v.model, 'model', 'sample');
  const xText = required(v.x, 'x', 'sample');
  parseVector('x', xText); // the syntax now, the length once the model is known
  const n = parseInteger('n', v.n!, 1);
  const seed = parseInteger('seed', v.seed!, 0);
  const leakage = parseLeakage(v.leakage!);
  const out = v.out === undefined ? undefined : checkOutputPath('out', v.out);

  const { startBackend, loadOrFail, modelPrior } = await import('../sbi-context.js');
  const { loadModel } = await import('../../sbi/model-file.js');
  const { createRng } = await import('../../sbi/rng.js');
  const { samplePosterior, LeakageError } = await import('../../sbi/posterior-samples.js');
  const { writeFileAtomic } = await import('../../sbi/atomic-file.js');

  await startBackend(v.backend);
  const saved = loadOrFail(() => loadModel(modelPath));
  const model = saved.estimator;
  try {
    const xo = parseVector('x', xText, model.xDim);
    const prior = leakage === 'reject' ? modelPrior(saved, modelPath) : undefined;
    let draws;
    try {
      draws = samplePosterior(model, xo, n, createRng(seed), prior);
    } catch (e) {
      if (e instanceof LeakageError)
        throw new UserError(`${e.message} Use --leakage keep to take the draws as they are.`);
      throw e;
    }
    const lines = [saved.paramNames.map(csvField).join(',')];
    for (let i = 0; i < n; i++) {
      const row: string[] = [];
      for (let j = 0; j < model.thetaDim; j++)
        row.push(formatFloat32(draws.samples[i * model.thetaDim + j]!));
      lines.push(row.join(','));
    }
    const text = `${lines.join('\n')}\n`;
    if (out === undefined) process.stdout.write(text);
    else {
      writeFileAtomic(out, text);
      console.error(`sample: ${n} samples of ${saved.task} (seed ${seed}) -> ${v.out}`);
    }
    if (draws.drawn > n)
      console.error(
        `sample: ${draws.drawn - n} of ${draws.drawn} draws fell outside the prior's support and were drawn again (acceptance ${draws.acceptance.toFixed(3)}).`,
      );
  } finally {
    model.dispose();
  }
  return 0;
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const command: Command = {
  name: 'sample',
  summary: 'Draw posterior samples from a saved model at one observation (CSV)',
  usage,
  run,
};
