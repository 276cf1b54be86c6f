// One configuration trained by `robustsbi train` and by the sweep's train activity gives the same
// model file, byte for byte, once the fields that say when and by which build it was written are
// set aside (createdAt, summary.trainMs, code: the CLI records package version and commit, a worker
// its version label). Both go through sbi/fit.ts; this keeps them from drifting apart again.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityDeps } from '../../../activities/deps.js';
import { train, type TrainInput, type TrainResult } from '../../../activities/train.js';
import { command as trainCommand } from '../../../cli/commands/train.js';
import { createLogger } from '../../../infra/logger.js';
import { initBackend } from '../../../sbi/backend.js';
import { MAF_DEFAULTS } from '../../../sbi/estimators/maf.js';
import { DEFAULT_NPE_HYPERPARAMETERS } from '../../../sbi/npe-hyperparameters.js';
import { memoryArtifacts } from './memory-artifacts.js';

const dir = mkdtempSync(join(tmpdir(), 'robustsbi-fit-'));

before(async () => {
  process.env.ROBUSTSBI_BACKEND = 'cpu';
  await initBackend('cpu');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The model file's text with the writing time, training time and code version set aside. */
function normalized(text: string): string {
  const doc = JSON.parse(text) as Record<string, unknown> & { summary: Record<string, unknown> };
  assert.equal(typeof doc.createdAt, 'string');
  assert.equal(typeof doc.summary.trainMs, 'number');
  assert.equal(typeof doc.code, 'object');
  return text
    .replace(/"createdAt":\s*"[^"]*"/, '"createdAt":"T"')
    .replace(/"trainMs":\s*\d+/, '"trainMs":0')
    .replace(/"code":\s*\{[^}]*\}/, '"code":{}');
}

describe('one configuration, CLI and sweep', () => {
  test('give byte-identical model files', async () => {
    const d = DEFAULT_NPE_HYPERPARAMETERS;
    const cliFile = join(dir, 'cli.json');
    const log = console.log;
    console.log = () => {};
    try {
      const code = await trainCommand.run([
        ...['--task', 'gaussian_linear', '--n', '150', '--seed', '3', '--hidden', '8'],
        ...['--activation', 'relu'],
        ...['--max-epochs', '3', '--min-epochs', '1', '--batch-size', '64'],
        // The train command's own defaults are not the sweeps' (RABI's): name RABI's here.
        ...['--lr', String(d.learningRate), '--patience', String(d.patience)],
        ...['--clip', String(d.clipNorm), '--stop-rule', 'rabi', '--anneals', '0'],
        ...['--transforms', String(MAF_DEFAULTS.numTransforms)],
        ...['--defense', 'noise', '--backend', 'cpu', '--out', cliFile],
      ]);
      assert.equal(code, 0);
    } finally {
      console.log = log;
    }

    const deps: ActivityDeps = {
      store: {} as ActivityDeps['store'],
      artifacts: memoryArtifacts(),
      logger: createLogger({ level: 'warn', console: false }),
      codeVersion: 'test',
      backend: 'cpu',
    };
    const input: TrainInput = {
      trialId: 'trial-1',
      modelId: 'model-1',
      simulationId: 'sims-1',
      task: 'gaussian_linear',
      estimator: { kind: 'maf', architecture: { hidden: [8] } },
      defense: { name: 'noise' },
      budget: 150,
      seed: 3,
      training: {
        maxEpochs: 3,
        minEpochs: 1,
        batchSize: 64,
        learningRate: d.learningRate,
        patience: d.patience,
        clipNorm: d.clipNorm,
        maxNanResets: d.maxNanResets,
      },
    };
    const r: TrainResult = await new MockActivityEnvironment().run(train, deps, input);
    const sweepBytes = await deps.artifacts.get(r.modelArtifact);
    assert.ok(sweepBytes, 'the activity stored the model');

    const cliText = readFileSync(cliFile, 'utf8');
    const sweepText = new TextDecoder().decode(sweepBytes);
    // The defense's default budget is recorded by both (the activity used to leave it out).
    assert.match(sweepText, /"trainEps":\s*1\b/);
    assert.equal(normalized(sweepText), normalized(cliText));
  });
});
