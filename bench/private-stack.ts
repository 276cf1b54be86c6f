// A private embedded stack for the benches that need servers (orchestration, mongo-writes): a
// Temporal dev server and FerretDB on free loopback ports, state under .data/bench/<name>, started
// empty and always stopped, so neither a user's stack nor the test stack is ever touched.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ENV_VARS, loadConfig, projectRoot, type Config } from '../infra/config.js';
import { SERVICES, down, stackPaths, up, type ServiceName } from '../infra/stack.js';
import { SEARCH_ATTRIBUTES } from '../sweeps/search-attributes.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** The config of a private stack in .data/bench/<name> on the given ports (nothing external). */
export function privateStackConfig(name: string, ports: number[]): Config {
  const root = projectRoot();
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Always embedded: a user's TEMPORAL_ADDRESS / MONGODB_URI must not redirect a bench.
  for (const v of Object.values(ENV_VARS)) delete env[v];
  Object.assign(env, {
    ROBUSTSBI_DATA_DIR: join(root, '.data', 'bench', name),
    ROBUSTSBI_TEMPORAL_PORT: String(ports[0]),
    ROBUSTSBI_TEMPORAL_UI_PORT: String(ports[1]),
    ROBUSTSBI_MONGODB_PORT: String(ports[2]),
    MONGODB_DB: 'robustsbi_bench',
    ROBUSTSBI_LOG_LEVEL: 'warn',
  });
  return loadConfig(env, root);
}

/**
 * CPU seconds (user + system) each embedded server has used so far, from /proc (Linux); absent
 * where that cannot be read. The servers are separate processes, so a bench's own process.cpuUsage
 * does not see them.
 */
export function serverCpuSeconds(config: Config): Partial<Record<ServiceName, number>> {
  const out: Partial<Record<ServiceName, number>> = {};
  for (const service of SERVICES) {
    try {
      const f = stackPaths(config).pidFile(service);
      if (!existsSync(f)) continue;
      const pid = (JSON.parse(readFileSync(f, 'utf8')) as { pid: number }).pid;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
      out[service] = (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // Not Linux, or the process is gone: leave it out.
    }
  }
  return out;
}

/**
 * Starts a fresh private stack, runs fn against it, and stops the stack whatever happens (also on
 * SIGINT / SIGTERM). The data dir is emptied before the start.
 */
export async function withPrivateStack<T>(
  name: string,
  fn: (config: Config) => Promise<T>,
): Promise<T> {
  const config = privateStackConfig(name, await freePorts(3));
  const say = (m: string) => console.error(`stack: ${m}`);
  await down(config).catch(() => {});
  rmSync(config.dataDir, { recursive: true, force: true });
  const onSignal = (sig: NodeJS.Signals) => {
    void down(config).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const t0 = performance.now();
    await up(config, { say, searchAttributes: SEARCH_ATTRIBUTES });
    say(`up in ${((performance.now() - t0) / 1000).toFixed(1)} s (${config.dataDir})`);
    return await fn(config);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const r = await down(config);
    for (const l of r.lines) say(l);
  }
}
