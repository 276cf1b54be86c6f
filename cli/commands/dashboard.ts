// `robustsbi dashboard`: the live, read-only web view of the results database (results/dashboard/),
// on 127.0.0.1 unless --host says otherwise. Runs until interrupted.
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { closeLogger } from '../../infra/logger.js';
import { probeMongo, unreachableSentence } from '../../infra/probe.js';
import { parseInteger } from '../sbi-args.js';
import { commandContext } from './infra.js';

const usage = `robustsbi dashboard [--port P] [--host H]

  --port   TCP port (default 8765; 0 picks a free one)
  --host   address to listen on (default 127.0.0.1, this machine only); anything else exposes
           the read-only results to the network: put it behind an authenticating proxy`;

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    const quoted = /'([^']+)'/.exec((e as Error).message)?.[1] ?? '';
    throw new UserError(
      `${quoted ? `Unknown or incomplete option or argument "${quoted}"` : (e as Error).message.split('.')[0]} for "robustsbi dashboard"; run "robustsbi dashboard --help".`,
    );
  }
}

async function run(argv: string[]): Promise<number> {
  const { values: v } = parse(argv);
  const { DEFAULT_PORT, startDashboard } = await import('../../results/dashboard/server.js');
  const port = v.port === undefined ? DEFAULT_PORT : parseInteger('port', v.port, 0);
  if (port > 65535) throw new UserError(`--port must be at most 65535 (got ${port}).`);
  const host = v.host!;
  const { config, logger } = commandContext();
  const { openResultStore } = await import('../../results/store.js');
  const m = await probeMongo(config);
  if (!m.ok) {
    await closeLogger(logger);
    throw new UserError(
      unreachableSentence('mongodb', config, m) +
        ' Start the embedded stack with "robustsbi infra up" or fix MONGODB_URI.',
      1,
    );
  }
  const { store, close } = await openResultStore(config);
  let dash;
  try {
    dash = await startDashboard({
      store,
      host,
      port,
      mongoUri: config.mongo.uri,
      onError: (line) => logger.warn(line),
    });
  } catch (e) {
    await close();
    await closeLogger(logger);
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'EADDRINUSE'
        ? `Port ${port} on ${host} is in use; choose another with --port.`
        : `The dashboard cannot listen on ${host}:${port} (${code ?? (e as Error).message}).`,
      1,
    );
  }
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1')
    logger.warn(`The dashboard listens on ${host}: anyone who can reach it can read the results.`);
  console.log(`Dashboard at ${dash.url} (read-only; Ctrl-C stops it).`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await dash.close();
  await close();
  await closeLogger(logger);
  return 0;
}

export const command: Command = {
  name: 'dashboard',
  summary: 'Serve the live, read-only results dashboard on 127.0.0.1',
  usage,
  run,
};
