// The embedded stack: a Temporal dev server and FerretDB (SQLite backend), both on 127.0.0.1 with
// their state, logs and pid files under the data dir. `up` is idempotent, `down` stops only the
// processes whose pid files this module wrote and whose command line still matches, and a service
// configured to point elsewhere (TEMPORAL_ADDRESS, MONGODB_URI) is never started or stopped here.
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { Config } from './config.js';
import { ensureBinary, type BinaryName } from './binaries.js';
import { mongoHosts } from './connections.js';
import { redact } from './logger.js';
import { probeMongo, probeTemporal, unreachableSentence, type Probe } from './probe.js';

export type ServiceName = 'temporal' | 'mongodb';
export const SERVICES: ServiceName[] = ['temporal', 'mongodb'];
const BINARY: Record<ServiceName, BinaryName> = { temporal: 'temporal', mongodb: 'ferretdb' };

/** The stack cannot be brought up or down; the message is one sentence for the user. */
export class StackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackError';
  }
}

export interface PidFile {
  service: ServiceName;
  pid: number;
  binary: string;
  args: string[];
  startedAt: string;
}

type Say = (message: string) => void;

export function stackPaths(config: Config) {
  const d = config.dataDir;
  return {
    run: join(d, 'run'),
    logs: join(d, 'logs'),
    temporalDb: join(d, 'temporal.sqlite'),
    ferretData: join(d, 'ferretdb', 'data'),
    ferretState: join(d, 'ferretdb', 'state'),
    pidFile: (s: ServiceName) => join(d, 'run', `${s}.pid`),
    logFile: (s: ServiceName) => join(d, 'logs', `${s}.log`),
    lock: join(d, 'run', 'stack.lock'),
  };
}

/** Custom search attributes to register on the dev server at start: name -> type (Keyword, Double, ...). */
export type SearchAttributeTypes = Readonly<Record<string, string>>;

export function serviceArgs(
  service: ServiceName,
  config: Config,
  searchAttributes: SearchAttributeTypes = {},
): string[] {
  const p = stackPaths(config);
  const e = config.embedded;
  if (service === 'temporal') {
    const args = [
      'server',
      'start-dev',
      '--db-filename',
      p.temporalDb,
      '--ip',
      '127.0.0.1',
      '--port',
      String(e.temporalPort),
      '--ui-port',
      String(e.temporalUiPort),
      '--log-level',
      'warn',
      // Workflow updates are used for pause/resume later; the SDK's own test server enables the same.
      '--dynamic-config-value',
      'frontend.enableUpdateWorkflowExecution=true',
      '--dynamic-config-value',
      'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
      // Eager activity dispatch: an activity scheduled on the workflow's own task queue comes back
      // with the workflow task's completion instead of through a separate poll (BENCHMARKS.md).
      '--dynamic-config-value',
      'system.enableActivityEagerExecution=true',
    ];
    if (config.temporal.namespace !== 'default')
      args.push('--namespace', config.temporal.namespace);
    // Registered in every namespace the dev server creates; a restart registers them again.
    for (const [name, type] of Object.entries(searchAttributes))
      args.push('--search-attribute', `${name}=${type}`);
    return args;
  }
  return [
    '--handler=sqlite',
    // FerretDB wants a file: URL of an existing directory ending in "/".
    `--sqlite-url=file:${p.ferretData}/`,
    `--listen-addr=127.0.0.1:${e.mongoPort}`,
    `--state-dir=${p.ferretState}`,
    '--telemetry=disable',
    '--debug-addr=-',
    '--log-level=warn',
  ];
}

/** The argument that ties a process to this data dir, so a pid reused by anything else never matches. */
function identityArg(service: ServiceName, config: Config): string {
  const p = stackPaths(config);
  return service === 'temporal' ? p.temporalDb : `--sqlite-url=file:${p.ferretData}/`;
}

function readPidFile(config: Config, service: ServiceName): PidFile | undefined {
  const f = stackPaths(config).pidFile(service);
  if (!existsSync(f)) return undefined;
  try {
    const v = JSON.parse(readFileSync(f, 'utf8')) as PidFile;
    return Number.isInteger(v.pid) && v.pid > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The command line of a live, non-zombie process, or undefined. */
export function processCommandLine(pid: number): string[] | undefined {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  if (existsSync('/proc/self/stat')) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') return undefined;
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      return undefined;
    }
  }
  // No /proc (macOS, BSD): ask ps. The command comes back as one string, which isOurs handles.
  const r = spawnSync('ps', ['-o', 'stat=', '-o', 'command=', '-p', String(pid)], {
    encoding: 'utf8',
  });
  const m = r.status === 0 ? /^\s*(\S+)\s+(.*\S)\s*$/.exec(r.stdout) : null;
  if (!m || m[1]!.startsWith('Z')) return undefined;
  return [m[2]!];
}

function isOurs(service: ServiceName, config: Config, rec: PidFile): boolean {
  const cmd = processCommandLine(rec.pid);
  if (!cmd) return false;
  const line = cmd.join(' ');
  return line.startsWith(rec.binary) && line.includes(identityArg(service, config));
}

export function isAlive(pid: number): boolean {
  return processCommandLine(pid) !== undefined;
}

function portAnswers(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function logTail(file: string, lines = 8): string {
  if (!existsSync(file)) return '';
  return redact(readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n'));
}

function probe(service: ServiceName, config: Config, timeoutMs?: number): Promise<Probe> {
  return service === 'temporal' ? probeTemporal(config, timeoutMs) : probeMongo(config, timeoutMs);
}

function portsOf(service: ServiceName, config: Config): number[] {
  const e = config.embedded;
  return service === 'temporal' ? [e.temporalPort, e.temporalUiPort] : [e.mongoPort];
}

function portVar(config: Config, port: number): string {
  const e = config.embedded;
  if (port === e.temporalPort) return 'ROBUSTSBI_TEMPORAL_PORT';
  return port === e.temporalUiPort ? 'ROBUSTSBI_TEMPORAL_UI_PORT' : 'ROBUSTSBI_MONGODB_PORT';
}

async function withLock<T>(config: Config, fn: () => Promise<T>): Promise<T> {
  const { lock, run } = stackPaths(config);
  mkdirSync(run, { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(lock, 'utf8'));
      if (!Number.isInteger(holder) || holder <= 0 || !isAlive(holder)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new StackError(
          `Another robustsbi (pid ${holder}) has held ${lock} for minutes; stop it or delete the file.`,
        );
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

async function startService(
  service: ServiceName,
  config: Config,
  say: Say,
  startTimeoutMs: number,
  searchAttributes: SearchAttributeTypes,
): Promise<string> {
  const paths = stackPaths(config);
  const existing = readPidFile(config, service);
  if (existing && isOurs(service, config, existing)) {
    const p = await waitUntilAnswers(service, config, existing.pid, startTimeoutMs);
    return `${service}: already running (pid ${existing.pid}), ${p.detail}`;
  }
  if (existing) rmSync(paths.pidFile(service), { force: true });

  for (const port of portsOf(service, config)) {
    if (await portAnswers(port)) {
      throw new StackError(
        `Port ${port} on 127.0.0.1 is already taken by another program, so the embedded ${service} cannot start; stop that program or choose another port with ${portVar(config, port)}.`,
      );
    }
  }
  const binary = await ensureBinary(BINARY[service], { say });
  mkdirSync(paths.logs, { recursive: true });
  if (service === 'mongodb') {
    mkdirSync(paths.ferretData, { recursive: true });
    mkdirSync(paths.ferretState, { recursive: true });
  }
  const args = serviceArgs(service, config, searchAttributes);
  const logFile = paths.logFile(service);
  const out = openSync(logFile, 'a');
  writeFileSync(out, `--- ${new Date().toISOString()} starting ${binary} ${args.join(' ')}\n`);
  // Detached in its own process group so it outlives this command and a Ctrl-C here does not reach it.
  const child = spawn(binary, args, {
    cwd: config.dataDir,
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  let exited: number | null | undefined;
  child.on('exit', (code, signal) => {
    exited = code ?? (signal ? 128 : 1);
  });
  child.on('error', () => {
    exited = 127;
  });
  const pid = child.pid;
  if (!pid) throw new StackError(`Could not start ${binary}; see ${logFile}.`);
  const rec: PidFile = { service, pid, binary, args, startedAt: new Date().toISOString() };
  writeFileSync(paths.pidFile(service), JSON.stringify(rec, null, 2) + '\n');
  say(`${service}: started pid ${pid}, waiting until it answers`);
  try {
    const p = await waitUntilAnswers(service, config, pid, startTimeoutMs, () => exited);
    child.unref();
    return `${service}: started (pid ${pid}), ${p.detail}`;
  } catch (err) {
    if (exited === undefined) child.kill('SIGKILL');
    rmSync(paths.pidFile(service), { force: true });
    const tail = logTail(logFile);
    throw new StackError(
      `${(err as Error).message}${tail ? `\nLast lines of ${logFile}:\n${tail}` : ''}`,
    );
  }
}

async function waitUntilAnswers(
  service: ServiceName,
  config: Config,
  pid: number,
  timeoutMs: number,
  exitCode: () => number | null | undefined = () => undefined,
): Promise<Probe> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const code = exitCode();
    if (code !== undefined)
      throw new StackError(
        `The embedded ${service} server (pid ${pid}) exited with code ${code} while starting.`,
      );
    if (!isAlive(pid))
      throw new StackError(`The embedded ${service} server (pid ${pid}) is no longer running.`);
    const last = await probe(service, config, 2000);
    if (last.ok) return last;
    if (Date.now() > deadline) {
      throw new StackError(
        `The embedded ${service} server (pid ${pid}) did not answer within ${Math.round(timeoutMs / 1000)} s (${last.detail}).`,
      );
    }
    await sleep(300);
  }
}

export interface UpResult {
  lines: string[];
}

/** Starts whatever is not external and not already running; waits until each answers. */
export async function up(
  config: Config,
  opts: { say?: Say; startTimeoutMs?: number; searchAttributes?: SearchAttributeTypes } = {},
): Promise<UpResult> {
  const say = opts.say ?? (() => {});
  const timeout = opts.startTimeoutMs ?? 120_000;
  mkdirSync(config.dataDir, { recursive: true });
  return withLock(config, async () => {
    const lines: string[] = [];
    for (const service of SERVICES) {
      if (isExternal(service, config)) {
        lines.push(`${service}: external (${target(service, config)}), nothing started`);
        continue;
      }
      lines.push(await startService(service, config, say, timeout, opts.searchAttributes ?? {}));
    }
    return { lines };
  });
}

function isExternal(service: ServiceName, config: Config): boolean {
  return service === 'temporal' ? config.temporal.external : config.mongo.external;
}

function target(service: ServiceName, config: Config): string {
  return service === 'temporal'
    ? `${config.temporal.address}, namespace ${config.temporal.namespace}`
    : `${mongoHosts(config.mongo.uri)}, database ${config.mongo.db}`;
}

/** Stops the processes `up` started in this data dir, and nothing else. */
export async function down(
  config: Config,
  opts: { say?: Say; stopTimeoutMs?: number } = {},
): Promise<{ lines: string[] }> {
  const stopTimeout = opts.stopTimeoutMs ?? 20_000;
  return withLock(config, async () => {
    const lines: string[] = [];
    // Stop in reverse start order.
    for (const service of [...SERVICES].reverse()) {
      const f = stackPaths(config).pidFile(service);
      const rec = readPidFile(config, service);
      if (!rec) {
        if (existsSync(f)) rmSync(f, { force: true });
        lines.push(
          `${service}: ${isExternal(service, config) ? `external (${target(service, config)}), nothing to stop` : 'not running'}`,
        );
        continue;
      }
      if (!isOurs(service, config, rec)) {
        rmSync(f, { force: true });
        lines.push(
          `${service}: pid ${rec.pid} is no longer our server (left alone; stale pid file removed)`,
        );
        continue;
      }
      process.kill(rec.pid, 'SIGTERM');
      const deadline = Date.now() + stopTimeout;
      while (isAlive(rec.pid) && Date.now() < deadline) await sleep(100);
      let how = 'stopped';
      if (isAlive(rec.pid)) {
        process.kill(rec.pid, 'SIGKILL');
        while (isAlive(rec.pid)) await sleep(50);
        how = 'killed after it ignored SIGTERM';
      }
      rmSync(f, { force: true });
      lines.push(`${service}: ${how} (pid ${rec.pid})`);
    }
    return { lines };
  });
}

export interface ServiceStatus {
  service: ServiceName;
  target: string;
  mode: 'embedded' | 'external';
  pid?: number;
  probe: Probe;
  /** One sentence when it does not answer. */
  problem?: string;
}

export async function status(config: Config): Promise<ServiceStatus[]> {
  return Promise.all(
    SERVICES.map(async (service) => {
      const mode = isExternal(service, config) ? 'external' : 'embedded';
      const rec = mode === 'embedded' ? readPidFile(config, service) : undefined;
      const pid = rec && isOurs(service, config, rec) ? rec.pid : undefined;
      const p = await probe(service, config);
      const s: ServiceStatus = { service, target: target(service, config), mode, probe: p };
      if (pid !== undefined) s.pid = pid;
      if (!p.ok) {
        s.problem =
          mode === 'embedded' && pid === undefined
            ? `${unreachableSentence(service, config, p).slice(0, -1)}; the embedded server is not running, start it with "robustsbi infra up".`
            : unreachableSentence(service, config, p);
      }
      return s;
    }),
  );
}
