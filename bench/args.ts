// What every bench CLI shares: `--key value` / `--flag` parsing, and whether a module was started
// directly (node bench/x.ts) rather than imported by bench/main.ts or the suite.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** `--key value` pairs and bare `--flag`s (value 'true'); anything else is an error. */
export function parseArgs(argv: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (!k.startsWith('--')) throw new Error(`unexpected argument ${k}`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) m.set(k.slice(2), 'true');
    else m.set(k.slice(2), (i++, next));
  }
  return m;
}

export function numberArg(a: Map<string, string>, key: string, fallback: number): number {
  const v = a.get(key);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${key} must be a number, not ${v}`);
  return n;
}

/**
 * `--key 1,2,3` as numbers (the fallback's when absent); every entry must be a number that `ok`
 * accepts, else one sentence saying what the list must hold.
 */
export function numberListArg(
  a: Map<string, string>,
  key: string,
  fallback: string,
  ok: (v: number) => boolean = () => true,
  what = 'numbers',
): number[] {
  return (a.get(key) ?? fallback).split(',').map((s) => {
    const v = s.trim() === '' ? NaN : Number(s);
    if (!Number.isFinite(v) || !ok(v)) throw new Error(`--${key} must list ${what}, not ${s}`);
    return v;
  });
}

/** true when the module at `metaUrl` is the script node was started with. */
export function isMain(metaUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}

/** Wall and process-CPU seconds of f. */
export async function timed<T>(
  f: () => Promise<T>,
): Promise<{ value: T; wallS: number; cpuS: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await f();
  const c = process.cpuUsage(c0);
  return { value, wallS: (performance.now() - t0) / 1000, cpuS: (c.user + c.system) / 1e6 };
}

/**
 * Runs a bench CLI on this process's arguments; an error becomes one message on stderr and exit
 * code 1 (an uncaught one would make the wasm backend print its whole minified source).
 */
export async function runMain(cli: (argv: readonly string[]) => Promise<void>): Promise<void> {
  try {
    await cli(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  }
}
