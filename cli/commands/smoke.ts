// `robustsbi smoke`: proves the configured servers work together (worker, workflow, MongoDB round trip).
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { probeMongo, probeTemporal, unreachableSentence } from '../../infra/probe.js';
import { closeLogger } from '../../infra/logger.js';
import { commandContext, userFacing } from './infra.js';

async function run(argv: string[]): Promise<number> {
  if (argv.length > 0)
    throw new UserError(`"robustsbi smoke" takes no arguments (got "${argv.join(' ')}").`);
  const { config, logger } = commandContext();
  try {
    // Check reachability first so an absent server is one sentence, not a worker stack trace.
    const [t, m] = await Promise.all([probeTemporal(config), probeMongo(config)]);
    const hint =
      ' Start the embedded stack with "robustsbi infra up" or fix TEMPORAL_ADDRESS / MONGODB_URI.';
    if (!t.ok) throw new UserError(unreachableSentence('temporal', config, t) + hint, 1);
    if (!m.ok) throw new UserError(unreachableSentence('mongodb', config, m) + hint, 1);
    // Loaded here: the worker package is heavy and `robustsbi --help` loads every command module.
    const { runSmoke } = await import('../../workers/smoke.js');
    const out = await runSmoke(config, logger);
    if (!out.result.matches) {
      throw new UserError(
        `The smoke workflow ${out.workflowId} ran, but the document read back from MongoDB differs from the one written.`,
        1,
      );
    }
    console.log(
      `smoke: workflow ${out.workflowId} completed on ${config.temporal.address} (namespace ${config.temporal.namespace}); its activity wrote and read back document ${out.result.id} in ${config.mongo.db}.smoke`,
    );
    return 0;
  } catch (err) {
    throw userFacing(err);
  } finally {
    await closeLogger(logger);
  }
}

export const command: Command = {
  name: 'smoke',
  summary: 'Run a tiny workflow whose activity writes to MongoDB and reads it back',
  usage: 'robustsbi smoke',
  run,
};
