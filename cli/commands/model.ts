// `robustsbi model get TRIAL --out m.json`: the model a sweep trained for one trial, as the model
// file `robustsbi train` writes (the artifact is that file's bytes, activities/artifacts.ts), so
// `robustsbi sample`, `logprob`, `evaluate` and `adversarial-example` take it.
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { checkOutputPath } from '../sbi-args.js';
import { closeLogger } from '../../infra/logger.js';
import { probeMongo, unreachableSentence } from '../../infra/probe.js';
import { commandContext } from './infra.js';

const usage = `robustsbi model get TRIAL --out FILE

  TRIAL   the trial ID ("robustsbi export SWEEP --what trials" lists them)
  --out   the model file to write (JSON, what "robustsbi train --out" writes)`;

async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'get')
    throw new UserError(
      sub === undefined
        ? '"robustsbi model" needs a sub-command: get.'
        : `Unknown sub-command "${sub}" of "robustsbi model"; the only one is get.`,
    );
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { out: { type: 'string' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    const quoted = /'([^']+)'/.exec((e as Error).message)?.[1] ?? '';
    throw new UserError(
      `${quoted ? `Unknown or incomplete option "${quoted}"` : (e as Error).message.split('.')[0]} for "robustsbi model get"; run "robustsbi model --help".`,
    );
  }
  const { values: v, positionals } = parsed;
  if (positionals.length !== 1)
    throw new UserError('"robustsbi model get" needs exactly one trial ID.');
  const trialId = positionals[0]!;
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(trialId))
    throw new UserError(`"${trialId}" is not a trial ID.`);
  if (v.out === undefined) throw new UserError('--out is required: the model file to write.');
  const out = checkOutputPath('out', v.out);

  const { config, logger } = commandContext();
  try {
    const m = await probeMongo(config);
    if (!m.ok)
      throw new UserError(
        unreachableSentence('mongodb', config, m) +
          ' Start the embedded stack with "robustsbi infra up" or fix MONGODB_URI.',
        1,
      );
    const { openResultStore } = await import('../../results/store.js');
    const { ArtifactStore } = await import('../../results/artifacts.js');
    const { store, close } = await openResultStore(config);
    try {
      const trial = await store.getTrial(trialId);
      if (!trial) throw new UserError(`No trial with ID ${trialId} is stored in MongoDB.`, 1);
      if (!trial.modelArtifact)
        throw new UserError(
          `Trial ${trialId} has no trained model yet (status ${trial.status}${trial.error ? `: ${trial.error.message}` : ''}).`,
          1,
        );
      const bytes = await new ArtifactStore(store.db).get(trial.modelArtifact);
      if (!bytes)
        throw new UserError(
          `The model artifact ${trial.modelArtifact} of trial ${trialId} is not in the artifact store.`,
          1,
        );
      const { writeFileAtomic } = await import('../../sbi/atomic-file.js');
      writeFileAtomic(out, bytes);
      console.error(
        `robustsbi: wrote the ${String(trial.config.estimator)} model of trial ${trialId} (${String(trial.config.task)}, ${bytes.length} bytes) to ${v.out}.`,
      );
    } finally {
      await close();
    }
    return 0;
  } finally {
    await closeLogger(logger);
  }
}

export const command: Command = {
  name: 'model',
  summary: "Write a trial's trained model to a file that sample, logprob and evaluate take",
  usage,
  run,
};
