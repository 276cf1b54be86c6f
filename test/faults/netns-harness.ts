// Several "hosts" on one machine for the fault tests: Linux network namespaces joined by veth pairs
// to a bridge in the root namespace, each host with one address in a private /24. The stack
// (Temporal dev server + FerretDB) is reached at its host's address; workers run as separate processes
// in their own namespaces; the test process reaches every host through the bridge. Cutting a host's
// link (`ip link set <veth> down`) is a network partition for that host alone.
// Needs root (CAP_NET_ADMIN) and iproute2; probeNetns says in one sentence why not where it fails.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBinary } from '../../infra/binaries.js';
import { loadConfig, projectRoot, type Config } from '../../infra/config.js';
import { probeMongo, probeTemporal } from '../../infra/probe.js';
import { connectTemporal } from '../../cli/sweep-client.js';
import { WorkflowNotFoundError } from '@temporalio/client';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ip(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return { ok: false, out: r.error.message };
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

function ipOrThrow(args: string[]): string {
  const r = ip(args);
  if (!r.ok) throw new Error(`ip ${args.join(' ')} failed: ${r.out}`);
  return r.out;
}

/** Whether namespaces, veth pairs and bridges can be made here; the reason when not. */
export function probeNetns(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  const which = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (which.error)
    return {
      ok: false,
      reason: `the "ip" command (iproute2) is not available: ${which.error.message}`,
    };
  const tag = randomBytes(3).toString('hex');
  const ns = `rsbi-probe-${tag}`;
  const br = `rsbp${tag}`;
  try {
    const add = ip(['netns', 'add', ns]);
    if (!add.ok)
      return {
        ok: false,
        reason: `cannot create a network namespace (needs root / CAP_NET_ADMIN): ${add.out}`,
      };
    const veth = ip(['-n', ns, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'a1']);
    if (!veth.ok) return { ok: false, reason: `cannot create a veth pair: ${veth.out}` };
    const bridge = ip(['link', 'add', br, 'type', 'bridge']);
    if (!bridge.ok) return { ok: false, reason: `cannot create a bridge: ${bridge.out}` };
    return { ok: true };
  } finally {
    ip(['link', 'del', br]);
    ip(['netns', 'del', ns]);
  }
}

export interface Host {
  name: string;
  /** The namespace this host's processes run in. */
  ns: string;
  address: string;
  /** The root-namespace end of the host's veth pair: down cuts the host off. */
  link: string;
}

export interface HostProcess {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Picks a 10.x.y.0/24 that no interface or route on this machine uses yet. */
function freeSubnet(): string {
  const used = `${ip(['-4', 'addr']).out}\n${ip(['-4', 'route']).out}`;
  for (let i = 0; i < 50; i++) {
    const s = `10.${randomInt(200, 250)}.${randomInt(1, 254)}`;
    if (!used.includes(`${s}.`)) return s;
  }
  throw new Error('found no free 10.x.y.0/24 subnet for the test network');
}

function labDir(tag: string): string {
  const parent = join(projectRoot(), '.data', 'faults');
  mkdirSync(parent, { recursive: true });
  return mkdtempSync(join(parent, `netns-${tag}-`));
}

export class NetnsLab {
  readonly tag = randomBytes(3).toString('hex');
  readonly subnet = freeSubnet();
  readonly bridge = `rsbr${this.tag}`;
  /** Under .data/faults, where `npm run test:faults` looks for processes a test left running. */
  readonly dir = labDir(this.tag);
  readonly hosts: Host[] = [];
  private readonly procs: HostProcess[] = [];
  private destroyed = false;
  private readonly onExit = () => this.destroySync();
  // A runner that times the file out sends SIGTERM, which skips 'exit' handlers: clean up, then
  // die of the same signal.
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.destroySync();
    process.kill(process.pid, signal);
  };

  constructor() {
    // A crash of the test process must not leave namespaces, links or servers behind.
    process.once('exit', this.onExit);
    process.once('SIGTERM', this.onSignal);
    process.once('SIGINT', this.onSignal);
    ipOrThrow(['link', 'add', this.bridge, 'type', 'bridge']);
    ipOrThrow(['addr', 'add', `${this.subnet}.254/24`, 'dev', this.bridge]);
    ipOrThrow(['link', 'set', this.bridge, 'up']);
  }

  /** A new namespace with one veth link to the bridge and the next address of the subnet. */
  addHost(name: string): Host {
    const i = this.hosts.length + 1;
    const host: Host = {
      name,
      ns: `rsbi-${this.tag}-${name}`,
      address: `${this.subnet}.${i}`,
      link: `rsb${this.tag}h${i}`,
    };
    const peer = `rsb${this.tag}n${i}`;
    ipOrThrow(['netns', 'add', host.ns]);
    this.hosts.push(host);
    ipOrThrow(['link', 'add', host.link, 'type', 'veth', 'peer', 'name', peer]);
    ipOrThrow(['link', 'set', peer, 'netns', host.ns]);
    ipOrThrow(['link', 'set', host.link, 'master', this.bridge]);
    ipOrThrow(['link', 'set', host.link, 'up']);
    ipOrThrow(['-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', peer]);
    ipOrThrow(['-n', host.ns, 'link', 'set', peer, 'up']);
    ipOrThrow(['-n', host.ns, 'link', 'set', 'lo', 'up']);
    return host;
  }

  /** Partition: the host can reach nothing and nothing reaches it. */
  cut(host: Host): void {
    ipOrThrow(['link', 'set', host.link, 'down']);
  }

  restore(host: Host): void {
    ipOrThrow(['link', 'set', host.link, 'up']);
  }

  /** Runs a command inside the host's namespace (`ip netns exec` keeps the pid: it execs). */
  spawn(host: Host, command: string, args: string[], env: NodeJS.ProcessEnv): HostProcess {
    const child = spawn('ip', ['netns', 'exec', host.ns, command, ...args], {
      env,
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const p: HostProcess = { child, output: () => out, exited };
    this.procs.push(p);
    return p;
  }

  /** Kills every process this lab started, then removes the namespaces, links and bridge. */
  async destroy(): Promise<string[]> {
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await Promise.race([p.exited, sleep(10_000)]);
      }
    }
    return this.removeNetwork();
  }

  private destroySync(): void {
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
    this.removeNetwork();
  }

  private removeNetwork(): string[] {
    if (this.destroyed) return [];
    this.destroyed = true;
    process.removeListener('exit', this.onExit);
    process.removeListener('SIGTERM', this.onSignal);
    process.removeListener('SIGINT', this.onSignal);
    const problems: string[] = [];
    // Deleting a namespace deletes the veth end inside it, and with it the root end; a pair that
    // never reached its namespace (a failed addHost) is deleted by its root end.
    for (const h of this.hosts) {
      if (ip(['link', 'show', h.link]).ok) ip(['link', 'del', h.link]);
      const r = ip(['netns', 'del', h.ns]);
      if (!r.ok) problems.push(`netns del ${h.ns}: ${r.out}`);
    }
    const r = ip(['link', 'del', this.bridge]);
    if (!r.ok) problems.push(`link del ${this.bridge}: ${r.out}`);
    rmSync(this.dir, { recursive: true, force: true });
    return problems;
  }

  /** What is left of this lab on the machine (namespaces or links named with its tag). */
  leftovers(): string[] {
    const names = `${ip(['netns', 'list']).out}\n${ip(['link', 'show']).out}`;
    return names.split('\n').filter((l) => l.includes(this.tag));
  }
}

export interface NetnsStack {
  host: Host;
  /** Environment for a client or worker on any host of the lab: the stack's addresses, nothing else. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  config: Config;
}

/** How long the server holds a poll open before it answers "no task" (Temporal's default: 60 s). */
export const LONG_POLL_EXPIRY_S = 5;
const TEMPORAL_PORT = 7233;
const MONGO_PORT = 27017;

/** Temporal dev server (in memory) and FerretDB (SQLite in the lab dir) on the host's address. */
export async function startStack(
  lab: NetnsLab,
  host: Host,
  timeoutMs = 90_000,
): Promise<NetnsStack> {
  const temporal = await ensureBinary('temporal');
  const ferretdb = await ensureBinary('ferretdb');
  const data = join(lab.dir, 'ferretdb');
  mkdirSync(join(data, 'data'), { recursive: true });
  mkdirSync(join(data, 'state'), { recursive: true });
  const base = { ...process.env };
  for (const k of Object.keys(base)) {
    if (k.startsWith('TEMPORAL_') || k === 'MONGODB_URI' || k.startsWith('ROBUSTSBI_'))
      delete base[k];
  }
  const servers = [
    lab.spawn(
      host,
      temporal,
      [
        'server',
        'start-dev',
        // All addresses of the stack's namespace (its loopback and its one link), not the host
        // address alone: the dev server's internal services dial each other on 127.0.0.1, and with
        // --ip set to another address they listen there only (frontend calls fail "connection refused").
        '--ip',
        '0.0.0.0',
        '--port',
        String(TEMPORAL_PORT),
        '--headless',
        '--log-level',
        'warn',
        // A partitioned worker's polls are never closed (no RST crosses a downed link), and the
        // server hands tasks to them as to live ones: a task without a heartbeat (simulate,
        // persist) would then wait out its start-to-close timeout (up to an hour). Short long
        // polls make a cut-off worker's polls expire within seconds.
        '--dynamic-config-value',
        `matching.longPollExpirationInterval="${LONG_POLL_EXPIRY_S}s"`,
      ],
      base,
    ),
    lab.spawn(
      host,
      ferretdb,
      [
        '--handler=sqlite',
        `--sqlite-url=file:${join(data, 'data')}/`,
        `--listen-addr=${host.address}:${MONGO_PORT}`,
        `--state-dir=${join(data, 'state')}`,
        '--telemetry=disable',
        '--debug-addr=-',
        '--log-level=warn',
      ],
      base,
    ),
  ];
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    ...base,
    TEMPORAL_ADDRESS: `${host.address}:${TEMPORAL_PORT}`,
    MONGODB_URI: `mongodb://${host.address}:${MONGO_PORT}/?directConnection=true&retryWrites=false`,
    ROBUSTSBI_DATA_DIR: join(lab.dir, 'data'),
    ...extra,
  });
  const config = loadConfig(env());
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const s of servers) {
      if (s.child.exitCode !== null || s.child.signalCode !== null)
        throw new Error(`a stack server exited while starting: ${s.output().slice(-2000)}`);
    }
    const [t, m] = await Promise.all([probeTemporal(config, 2000), probeMongo(config, 2000)]);
    if (t.ok && m.ok && (await historyAnswers(config))) break;
    if (Date.now() > deadline)
      throw new Error(
        `the stack in ${host.ns} did not answer within ${timeoutMs / 1000} s (temporal: ${t.detail}; mongodb: ${m.detail})`,
      );
    await sleep(300);
  }
  return { host, env, config };
}

/** The frontend answers before the history service does; a lookup of no workflow needs both. */
async function historyAnswers(config: Config): Promise<boolean> {
  const { client, close } = await connectTemporal(config);
  try {
    await client.workflow
      .getHandle(`no-such-workflow-${randomBytes(4).toString('hex')}`)
      .describe();
    return false;
  } catch (err) {
    return err instanceof WorkflowNotFoundError;
  } finally {
    await close();
  }
}
