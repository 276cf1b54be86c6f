// Shared by the integration tests: run the real CLI in a child process, find free ports, and read the
// stack that scripts/test.mjs started (TEMPORAL_ADDRESS / MONGODB_URI).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The CLI entry next to this file: compiled JS under dist/, the TS source under tsx. */
const cliMain = (() => {
  const js = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
})();

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function robustsbi(args: string[], env: NodeJS.ProcessEnv): CliResult {
  const r = spawnSync(
    process.execPath,
    [...process.execArgv.filter((a) => !a.startsWith('--test')), cliMain, ...args],
    {
      env,
      encoding: 'utf8',
      timeout: 240_000,
    },
  );
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** The CLI as a long-running child process (a worker), its stderr piped for the test to read. */
export function spawnRobustsbi(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(
    process.execPath,
    [...process.execArgv.filter((a) => !a.startsWith('--test')), cliMain, ...args],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Environment for a private embedded stack: own data dir and ports, no external servers. */
export async function privateStackEnv(dataDir: string): Promise<NodeJS.ProcessEnv> {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('TEMPORAL_') || k === 'MONGODB_URI' || k === 'ROBUSTSBI_LOG_FILE')
      delete env[k];
  }
  const ports = new Set<number>();
  while (ports.size < 3) ports.add(await freePort());
  const [t, u, m] = [...ports];
  return {
    ...env,
    ROBUSTSBI_DATA_DIR: dataDir,
    ROBUSTSBI_TEMPORAL_PORT: String(t),
    ROBUSTSBI_TEMPORAL_UI_PORT: String(u),
    ROBUSTSBI_MONGODB_PORT: String(m),
  };
}

/** The test stack's environment, or a clear failure when the tests were not started by scripts/test.mjs. */
export function sharedStackEnv(): NodeJS.ProcessEnv {
  if (!process.env.TEMPORAL_ADDRESS || !process.env.MONGODB_URI) {
    throw new Error(
      'Integration tests need TEMPORAL_ADDRESS and MONGODB_URI of a running stack; run them with "npm test".',
    );
  }
  return { ...process.env };
}

/** Pids of live processes whose command line mentions `needle` (Linux /proc). */
export function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes(needle) && Number(name) !== process.pid) out.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}
