// `robustsbi sample`: K draws from a saved posterior estimator at one observation, as CSV (a header row
// of parameter names, then one sample per row).
import type { Command } from '../command.js';
import {
  checkOutputPath,
  formatFloat32,
  parseCommandArgs,
  parseInteger,
  parseVector,
  required,
} from '../sbi-args.js';

const usage = `robustsbi sample --model MODEL --x '[x1,...,xd]' [--n K] [--seed S] [--out samples.csv] [--backend B]

  --n K     number of samples (default 1000)
  --out F   CSV file to write (default: stdout)`;

const CHUNK = 10_000;

async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs('sample', argv, {
    model: { type: 'string' },
    x: { type: 'string' },
    n: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string' },
    backend: { type: 'string' },
  });
  const modelPath = required(v.model, 'model', 'sample');
  const xText = required(v.x, 'x', 'sample');
  parseVector('x', xText); // the syntax now, the length once the model is known
  const n = parseInteger('n', v.n!, 1);
  const seed = parseInteger('seed', v.seed!, 0);
  const out = v.out === undefined ? undefined : checkOutputPath('out', v.out);

  const { startBackend, loadOrFail } = await import('../sbi-context.js');
  const { loadModel } = await import('../../sbi/model-file.js');
  const { createRng } = await import('../../sbi/rng.js');
  const { tf } = await import('../../sbi/backend.js');
  const { writeFileAtomic } = await import('../../sbi/atomic-file.js');

  await startBackend(v.backend);
  const saved = loadOrFail(() => loadModel(modelPath));
  const model = saved.estimator;
  try {
    const xo = parseVector('x', xText, model.xDim);
    const rng = createRng(seed);
    const lines = [saved.paramNames.map(csvField).join(',')];
    const xT = tf.tensor2d(xo, [1, model.xDim]);
    try {
      for (let done = 0; done < n; done += CHUNK) {
        const k = Math.min(CHUNK, n - done);
        const s = model.sample(xT, k, rng);
        const values = s.dataSync();
        s.dispose();
        for (let i = 0; i < k; i++) {
          const row: string[] = [];
          for (let j = 0; j < model.thetaDim; j++)
            row.push(formatFloat32(values[i * model.thetaDim + j]!));
          lines.push(row.join(','));
        }
      }
    } finally {
      xT.dispose();
    }
    const text = `${lines.join('\n')}\n`;
    if (out === undefined) process.stdout.write(text);
    else {
      writeFileAtomic(out, text);
      console.error(`sample: ${n} samples of ${saved.task} (seed ${seed}) -> ${v.out}`);
    }
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
