// `robustsbi worker --processes N`: a supervisor of N worker processes, one per core. tfjs runs the
// science on the JavaScript thread of its process, so one process uses one core however many
// activities it holds; N processes use N cores. The supervisor spawns each child with the worker's
// own argv, labels every line a child prints with its index and pid, restarts a child that dies
// (with a back-off, and gives up when one keeps dying before it polls), and on SIGINT / SIGTERM
// passes the signal on and waits until every child has stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';

/** The line a worker logs once it polls its task queue (workers/sweep-worker.ts): it has started. */
export const STARTED_MARK = 'worker: polling task queue';

/** Set in a child's environment: its index (1-based) under the supervisor. */
export const PROCESS_INDEX_ENV = 'ROBUSTSBI_WORKER_PROCESS';

export class ProcessesError extends Error {}

/**
 * `--processes` as given: a positive whole number no larger than the cores available, or auto (all
 * of them). Every refusal is one sentence.
 */
export function parseProcesses(text: string, cores = availableParallelism()): number {
  const t = text.trim().toLowerCase();
  if (t === 'auto') return cores;
  if (!/^[+]?\d+$/.test(t))
    throw new ProcessesError(
      `--processes must be a whole number of worker processes or "auto" (got "${text}").`,
    );
  const n = Number(t);
  if (n < 1)
    throw new ProcessesError(`--processes must be at least 1 (got ${text}); use 1 or "auto".`);
  if (n > cores)
    throw new ProcessesError(
      `--processes ${n} is more than the ${cores} core${cores === 1 ? '' : 's'} available here; use at most ${cores}, or "auto".`,
    );
  return n;
}

/** argv without `--processes V` / `--processes=V`. */
export function withoutProcessesOption(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--processes') i++;
    else if (!a.startsWith('--processes=')) out.push(a);
  }
  return out;
}

export interface SupervisorOptions {
  processes: number;
  /** Executable and arguments of one worker process (the same for every child). */
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Where the labelled lines of the children and the supervisor's own lines go. */
  write?: (line: string) => void;
  /** First restart delay; doubled after each death before start, up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Deaths in a row before a child polled its queue after which the supervisor gives up. */
  maxEarlyDeaths?: number;
  /**
   * A child alive this long counts as started even without its polling line (a log level above
   * info hides that line).
   */
  startedAfterMs?: number;
}

export interface SupervisorResult {
  /** 0 when stopped by a signal (or `stop`), 1 when it gave up. */
  code: number;
  /** The one sentence why it gave up. */
  reason?: string;
  /** Restarts done, per child index (1-based). */
  restarts: number[];
}

interface Slot {
  index: number;
  child?: ChildProcess;
  started: boolean;
  earlyDeaths: number;
  restarts: number;
  lastLine: string;
  timer?: NodeJS.Timeout;
  aliveTimer?: NodeJS.Timeout;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

/**
 * Runs the children until SIGINT / SIGTERM (or `stop` aborts), then forwards the signal and waits for
 * all of them. Resolves once every child has exited.
 */
export function runSupervisor(
  opts: SupervisorOptions,
  stop?: AbortSignal,
): Promise<SupervisorResult> {
  const write = opts.write ?? ((l: string) => process.stderr.write(`${l}\n`));
  const backoff0 = opts.backoffMs ?? 1000;
  const backoffMax = opts.maxBackoffMs ?? 30_000;
  const maxEarly = opts.maxEarlyDeaths ?? 3;
  const startedAfter = opts.startedAfterMs ?? 60_000;
  const slots: Slot[] = Array.from({ length: opts.processes }, (_, i) => ({
    index: i + 1,
    started: false,
    earlyDeaths: 0,
    restarts: 0,
    lastLine: '',
  }));
  let stopping: NodeJS.Signals | undefined;
  let reason: string | undefined;
  const say = (m: string) => write(`[supervisor pid ${process.pid}] ${m}`);

  return new Promise((resolve) => {
    const finishIfDone = () => {
      if (!stopping) return;
      if (slots.some((s) => s.child || s.timer)) return;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      stop?.removeEventListener('abort', onAbort);
      say(`all ${slots.length} worker processes stopped`);
      resolve({
        code: reason ? 1 : 0,
        ...(reason ? { reason } : {}),
        restarts: slots.map((s) => s.restarts),
      });
    };

    const shutdown = (sig: NodeJS.Signals) => {
      const again = stopping !== undefined;
      stopping = sig;
      if (!again) say(`${sig}: stopping ${slots.length} worker processes`);
      for (const s of slots) {
        if (s.timer) {
          clearTimeout(s.timer);
          s.timer = undefined;
        }
        // A second signal is passed on too: the children treat it as their own second signal.
        if (s.child && s.child.exitCode === null && s.child.signalCode === null) s.child.kill(sig);
      }
      finishIfDone();
    };
    const onSignal = (sig: NodeJS.Signals) => shutdown(sig);
    const onAbort = () => shutdown('SIGTERM');
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    stop?.addEventListener('abort', onAbort, { once: true });

    const start = (s: Slot) => {
      s.timer = undefined;
      s.started = false;
      const child = spawn(opts.command, opts.args, {
        env: { ...(opts.env ?? process.env), [PROCESS_INDEX_ENV]: String(s.index) },
        // The IPC channel lets a child notice that its supervisor is gone (workers/sweep-worker.ts).
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      s.child = child;
      s.aliveTimer = setTimeout(() => {
        s.started = true;
        s.earlyDeaths = 0;
      }, startedAfter);
      s.aliveTimer.unref();
      const label = `[worker ${s.index} pid ${child.pid ?? '?'}]`;
      const relay = (stream: NodeJS.ReadableStream | null) => {
        if (!stream) return;
        createInterface({ input: stream }).on('line', (line) => {
          if (line.trim()) s.lastLine = line;
          if (!s.started && line.includes(STARTED_MARK)) {
            s.started = true;
            s.earlyDeaths = 0;
          }
          write(`${label} ${line}`);
        });
      };
      relay(child.stdout);
      relay(child.stderr);
      child.on('error', (err) => {
        s.lastLine = err.message;
      });
      // 'close', not 'exit': the child's last lines are relayed before it is reported gone.
      child.on('close', (code, signal) => {
        s.child = undefined;
        clearTimeout(s.aliveTimer);
        if (stopping) {
          say(`worker ${s.index} (pid ${child.pid}) stopped: ${describeExit(code, signal)}`);
          finishIfDone();
          return;
        }
        if (!s.started) s.earlyDeaths++;
        const how = describeExit(code, signal);
        if (s.earlyDeaths >= maxEarly) {
          reason = `Worker process ${s.index} died ${s.earlyDeaths} times in a row before it polled its task queue (last: ${how}${s.lastLine ? `, "${s.lastLine.trim()}"` : ''}), so the supervisor stopped.`;
          say(reason);
          shutdown('SIGTERM');
          return;
        }
        const delay = s.started
          ? backoff0
          : Math.min(backoffMax, backoff0 * 2 ** Math.max(0, s.earlyDeaths - 1));
        say(
          `worker ${s.index} (pid ${child.pid}) died (${how}); restarting it in ${(delay / 1000).toFixed(1)} s`,
        );
        s.restarts++;
        s.timer = setTimeout(() => start(s), delay);
      });
      say(`worker ${s.index} started, pid ${child.pid ?? '?'}`);
    };

    for (const s of slots) start(s);
  });
}
