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

/** One configuration in both spellings: the train command's options and the sweep's training block. */
interface Case {
  name: string;
  cliSchedule: string[];
  training: TrainInput['training'];
  /** What the model file must record of the schedule. */
  records?: RegExp;
}

const d = DEFAULT_NPE_HYPERPARAMETERS;
const rabiSchedule = {
  learningRate: d.learningRate,
  clipNorm: d.clipNorm,
  maxNanResets: d.maxNanResets,
  batchSize: 64,
};
const cases: Case[] = [
  {
    name: "RABI's schedule",
    // The train command's own defaults are not the sweeps' (RABI's): name RABI's here.
    cliSchedule: [
      ...['--max-epochs', '3', '--min-epochs', '1', '--patience', String(d.patience)],
      ...['--stop-rule', 'rabi', '--anneals', '0'],
    ],
    training: { ...rabiSchedule, maxEpochs: 3, minEpochs: 1, patience: d.patience },
  },
  {
    name: "sbi's stop rule with anneals",
    // A high rate, patience 1, 30 epochs: the run anneals, so the cut rate is in the weights too.
    cliSchedule: [
      ...['--lr', '0.05', '--max-epochs', '30', '--min-epochs', '0', '--patience', '1'],
      ...[
        '--stop-rule',
        'sbi',
        '--anneals',
        '2',
        '--anneal-factor',
        '0.2',
        '--anneal-patience',
        '2',
      ],
    ],
    training: {
      ...rabiSchedule,
      learningRate: 0.05,
      maxEpochs: 30,
      minEpochs: 0,
      patience: 1,
      stopRule: 'sbi',
      anneals: 2,
      annealFactor: 0.2,
      annealPatience: 2,
    },
    records: /"summary":\s*\{[^}]*"anneals":\s*[12]\b/,
  },
  {
    name: "sbi's loader: the last partial batch dropped",
    // 135 training rows in batches of 64: two steps an epoch, the 7 rows left over dropped.
    cliSchedule: [
      ...['--max-epochs', '3', '--min-epochs', '1', '--patience', String(d.patience)],
      ...['--stop-rule', 'rabi', '--anneals', '0', '--drop-last'],
    ],
    training: { ...rabiSchedule, maxEpochs: 3, minEpochs: 1, patience: d.patience, dropLast: true },
    records: /"dropLast":\s*true/,
  },
];

describe('one configuration, CLI and sweep', () => {
  for (const c of cases) {
    test(`give byte-identical model files: ${c.name}`, async () => {
      const cliFile = join(dir, `cli-${cases.indexOf(c)}.json`);
      const log = console.log;
      console.log = () => {};
      try {
        const code = await trainCommand.run([
          ...['--task', 'gaussian_linear', '--n', '150', '--seed', '3', '--hidden', '8'],
          ...['--activation', 'relu', '--batch-size', '64'],
          ...['--lr', String(d.learningRate), '--clip', String(d.clipNorm)],
          // A later --lr in the case's schedule overrides the one above.
          ...c.cliSchedule,
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
        training: c.training,
      };
      const r: TrainResult = await new MockActivityEnvironment().run(train, deps, input);
      const sweepBytes = await deps.artifacts.get(r.modelArtifact);
      assert.ok(sweepBytes, 'the activity stored the model');

      const cliText = readFileSync(cliFile, 'utf8');
      const sweepText = new TextDecoder().decode(sweepBytes);
      // The defense's default budget is recorded by both (the activity used to leave it out).
      assert.match(sweepText, /"trainEps":\s*1\b/);
      if (c.records) assert.match(sweepText, c.records);
      assert.equal(normalized(sweepText), normalized(cliText));
    });
  }
});
