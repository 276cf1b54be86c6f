// `robustsbi logprob`: log q(theta | x) of a saved model for each row of a CSV of theta (as written by
// `robustsbi sample`), one value per line. By default the density of what `sample` draws: q
// restricted to the prior's support and renormalized there, as sbi's posterior.log_prob.
import { readFileSync } from 'node:fs';
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

const usage = `robustsbi logprob --model MODEL --x '[x1,...,xd]' --theta samples.csv [--leakage reject|keep] [--seed S] [--out FILE] [--backend B]

  --theta F    CSV of parameter values, one row each (a header row of names is optional)
  --leakage    reject (default): -Infinity outside the task's prior support and log q - log m
               inside, m the estimator's mass inside it (10,000 draws, seeded by --seed), as sbi
               does; keep: the estimator's log q as it is (no task needed)
  --out F      file to write (default: stdout)`;

const CHUNK = 10_000;

/** Reads a theta CSV: an optional header row, then rows of `dim` finite numbers. */
export function readThetaCsv(path: string, dim: number): { theta: Float32Array; n: number } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      `The theta file ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}.`,
    );
  }
  const rows = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const values: number[] = [];
  let n = 0;
  rows.forEach((line, r) => {
    const cells = line.split(',').map((c) => c.trim());
    const nums = cells.map((c) => (c === '' ? NaN : Number(c)));
    if (r === 0 && nums.some(Number.isNaN)) {
      if (cells.length !== dim)
        throw new UserError(
          `The theta file ${path} has ${cells.length} columns in its header, but the model has ${dim} parameters.`,
        );
      return; // header
    }
    if (cells.length !== dim)
      throw new UserError(
        `The theta file ${path} has ${cells.length} values in row ${r + 1}, but the model has ${dim} parameters.`,
      );
    const bad = nums.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new UserError(
        `The theta file ${path} has "${cells[bad]}" in row ${r + 1}, column ${bad + 1}, which is not a finite number.`,
      );
    values.push(...nums);
    n += 1;
  });
  if (n === 0) throw new UserError(`The theta file ${path} holds no rows of parameter values.`);
  return { theta: Float32Array.from(values), n };
}

async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs('logprob', argv, {
    model: { type: 'string' },
    x: { type: 'string' },
    theta: { type: 'string' },
    leakage: { type: 'string', default: 'reject' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string' },
    backend: { type: 'string' },
  });
  const modelPath = required(v.model, 'model', 'logprob');
  const xText = required(v.x, 'x', 'logprob');
  parseVector('x', xText);
  const thetaPath = required(v.theta, 'theta', 'logprob');
  const leakage = parseLeakage(v.leakage!);
  const seed = parseInteger('seed', v.seed!, 0);
  const out = v.out === undefined ? undefined : checkOutputPath('out', v.out);

  const { startBackend, loadOrFail, modelPrior } = await import('../sbi-context.js');
  const { loadModel } = await import('../../sbi/model-file.js');
  const { createRng } = await import('../../sbi/rng.js');
  const { supportMass, SUPPORT_MASS_DRAWS } = await import('../../sbi/posterior-samples.js');
  const { tf } = await import('../../sbi/backend.js');
  const { writeFileAtomic } = await import('../../sbi/atomic-file.js');

  await startBackend(v.backend);
  const saved = loadOrFail(() => loadModel(modelPath));
  const model = saved.estimator;
  try {
    const xo = parseVector('x', xText, model.xDim);
    const { theta, n } = readThetaCsv(thetaPath, model.thetaDim);
    const prior = leakage === 'reject' ? modelPrior(saved, modelPath) : undefined;
    let logMass = 0;
    let inSupport: Float64Array | undefined;
    if (prior !== undefined) {
      const mass = supportMass(model, xo, prior, createRng(seed).fork('leakage'));
      if (mass === 0)
        throw new UserError(
          `None of ${SUPPORT_MASS_DRAWS.toLocaleString('en-US')} draws from the estimator fell inside the prior's support at this observation, so its density there cannot be normalized; use --leakage keep for log q as it is.`,
        );
      logMass = Math.log(mass);
      inSupport = prior.logProb(theta, n);
      if (mass < 1)
        console.error(
          `logprob: ${formatFloat32(mass)} of the estimator's mass lies inside the prior's support at this x (${SUPPORT_MASS_DRAWS.toLocaleString('en-US')} draws); the values are renormalized over it.`,
        );
    }
    const lines: string[] = [];
    for (let start = 0; start < n; start += CHUNK) {
      const k = Math.min(CHUNK, n - start);
      const lp = tf.tidy(() => {
        const th = tf.tensor2d(
          theta.subarray(start * model.thetaDim, (start + k) * model.thetaDim),
          [k, model.thetaDim],
        );
        const xs = tf.tile(tf.tensor2d(xo, [1, model.xDim]), [k, 1]) as typeof th;
        return model.logProb(th, xs);
      });
      const values = lp.dataSync();
      for (let i = 0; i < k; i++) {
        const outside = inSupport !== undefined && !Number.isFinite(inSupport[start + i]!);
        lines.push(formatFloat32(outside ? -Infinity : values[i]! - logMass));
      }
      lp.dispose();
    }
    const text = `${lines.join('\n')}\n`;
    if (out === undefined) process.stdout.write(text);
    else {
      writeFileAtomic(out, text);
      console.error(`logprob: ${n} values -> ${v.out}`);
    }
  } finally {
    model.dispose();
  }
  return 0;
}

export const command: Command = {
  name: 'logprob',
  summary: 'Evaluate log q(theta | x) of a saved model for rows of a CSV',
  usage,
  run,
};
