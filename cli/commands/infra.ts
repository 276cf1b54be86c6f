// `robustsbi infra up | down | status`: the embedded stack, or a report on the configured servers.
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { BinaryError } from '../../infra/binaries.js';
import { ConfigError, loadConfig, type Config } from '../../infra/config.js';
import { closeLogger, createLogger, redact, type Logger } from '../../infra/logger.js';
import { StackError, down, status, up } from '../../infra/stack.js';
import { SEARCH_ATTRIBUTES } from '../../sweeps/search-attributes.js';

/** Settings and logger for a command; a bad setting becomes the one-sentence UserError. */
export function commandContext(): { config: Config; logger: Logger } {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) throw new UserError(err.message);
    throw err;
  }
  const logger = createLogger({ level: config.log.level, file: config.log.file });
  return { config, logger };
}

/** Errors with a user-facing sentence become UserErrors; anything else keeps its stack. */
export function userFacing(err: unknown): unknown {
  if (err instanceof StackError || err instanceof BinaryError || err instanceof ConfigError) {
    return new UserError(redact(err.message), 1);
  }
  return err;
}

/** Where workers started with this environment serve their metrics, and whether one answers there. */
export async function metricsLine(config: Config): Promise<string> {
  if (!config.metrics)
    return 'metrics  off: start workers with ROBUSTSBI_METRICS_ADDR=host:port (or "robustsbi worker --metrics host:port") to serve Prometheus metrics';
  const { host, port } = config.metrics;
  const url = (h: string) => `http://${h.includes(':') ? `[${h}]` : h}:${port}/metrics`;
  // A worker bound to every interface is reached here through loopback.
  const probeHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  let answers: boolean;
  try {
    answers = (await fetch(url(probeHost), { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    answers = false;
  }
  return `metrics  ${url(host)} (robustsbi_* and temporal_*; the Temporal SDK's own exporter on 127.0.0.1:${port + 1}; with --processes, process i on port ${port} + 2i): ${answers ? 'a worker answers' : 'no worker answers there now'}`;
}

async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (rest.length > 0)
    throw new UserError(
      `"robustsbi infra ${sub}" takes no further arguments (got "${rest.join(' ')}").`,
    );
  if (sub !== 'up' && sub !== 'down' && sub !== 'status') {
    throw new UserError(
      `"robustsbi infra" needs one of up, down or status${sub ? ` (got "${sub}")` : ''}.`,
    );
  }
  const { config, logger } = commandContext();
  const say = (m: string) => logger.info(m);
  try {
    if (sub === 'up') {
      const r = await up(config, { say, searchAttributes: SEARCH_ATTRIBUTES });
      for (const line of r.lines) console.log(line);
      logger.debug('infra up done', { lines: r.lines });
      return 0;
    }
    if (sub === 'down') {
      const r = await down(config, { say });
      for (const line of r.lines) console.log(line);
      logger.debug('infra down done', { lines: r.lines });
      return 0;
    }
    const all = await status(config);
    for (const s of all) {
      const who =
        s.mode === 'embedded'
          ? `embedded${s.pid ? `, pid ${s.pid}` : ', not running'}`
          : 'external';
      console.log(
        `${s.service.padEnd(8)} ${s.target} (${who}): ${s.probe.ok ? `answers, ${s.probe.detail}` : 'does not answer'}`,
      );
    }
    console.log(await metricsLine(config));
    const bad = all.filter((s) => s.problem);
    for (const s of bad) console.error(`robustsbi: ${s.problem}`);
    logger.debug('infra status', { services: all });
    return bad.length === 0 ? 0 : 1;
  } catch (err) {
    throw userFacing(err);
  } finally {
    await closeLogger(logger);
  }
}

export const command: Command = {
  name: 'infra',
  summary: 'Start, stop or check the Temporal and MongoDB servers (embedded stack under .data/)',
  usage: 'robustsbi infra up | down | status',
  run,
};
