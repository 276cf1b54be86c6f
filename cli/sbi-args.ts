// Option parsing shared by the standalone science commands (simulate, train, sample, logprob): strict
// parseArgs, numbers and vectors checked up front, every mistake one UserError sentence. Light on
// purpose (no tfjs): `robustsbi --help` loads every command module.
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from './errors.js';
import type { Leakage } from '../sbi/posterior-samples.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with strict options and no positionals; its errors become one sentence naming the command. */
export function parseCommandArgs<O extends Options>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    const err = e as Error & { code?: string };
    const quoted = /'([^']+)'/.exec(err.message)?.[1] ?? '';
    const help = `run "robustsbi ${command} --help" for its options`;
    switch (err.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new UserError(`Unknown option "${quoted}" for "robustsbi ${command}"; ${help}.`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        throw new UserError(
          `Option ${quoted.split(' ')[0]} of "robustsbi ${command}" needs a value; ${help}.`,
        );
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw new UserError(
          `"robustsbi ${command}" takes no argument "${quoted}" without an option name; ${help}.`,
        );
      default:
        throw new UserError(
          `${err.message.split(/\.(\s|$)/)[0]} ("robustsbi ${command}"); ${help}.`,
        );
    }
  }
}

export function required<T>(value: T | undefined, option: string, command: string): T {
  if (value === undefined || value === '')
    throw new UserError(`"robustsbi ${command}" needs --${option}.`);
  return value;
}

export function parseInteger(option: string, text: string, min = 0): number {
  const t = text.trim();
  const v = /^[+-]?\d+(e\+?\d+)?$/i.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(v) || v < min) {
    throw new UserError(`--${option} must be an integer >= ${min}, got "${text}".`);
  }
  return v;
}

export function parsePositiveNumber(option: string, text: string, allowInfinity = false): number {
  const t = text.trim().toLowerCase();
  const v =
    allowInfinity && (t === 'inf' || t === 'infinity') ? Infinity : t === '' ? NaN : Number(t);
  if (!(v > 0) || (!allowInfinity && !Number.isFinite(v)) || Number.isNaN(v)) {
    throw new UserError(
      `--${option} must be a positive number${allowInfinity ? ' (or inf)' : ''}, got "${text}".`,
    );
  }
  return v;
}

/** "100,100" -> [100, 100]. */
export function parseIntegerList(option: string, text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) {
    throw new UserError(
      `--${option} must be a comma-separated list of positive integers such as 100,100, got "${text}".`,
    );
  }
  return parts.map(Number);
}

/** A JSON list of finite numbers ('[1.2, -3]'); `length` is the dimension it must have. */
export function parseVector(option: string, text: string, length?: number): number[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new UserError(
      `--${option} must be a JSON list of numbers such as [0.1,-2.5], got "${text}".`,
    );
  }
  if (typeof v === 'number') v = [v];
  if (!Array.isArray(v) || !v.every((a) => typeof a === 'number' && Number.isFinite(a))) {
    throw new UserError(
      `--${option} must be a JSON list of finite numbers such as [0.1,-2.5], got "${text}".`,
    );
  }
  if (length !== undefined && v.length !== length) {
    throw new UserError(`--${option} has ${v.length} values, but the model expects ${length}.`);
  }
  return v as number[];
}

/** Fails before any work is done when an output file could not be written. */
export function checkOutputPath(option: string, path: string): string {
  const full = resolve(path);
  const dir = dirname(full);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`--${option} ${path}: the folder ${dir} does not exist.`);
  }
  if (existsSync(full) && statSync(full).isDirectory())
    throw new UserError(`--${option} ${path} is a folder, not a file.`);
  return full;
}

/**
 * Shortest decimal that reads back as the same float32, so CSV files stay short yet exact.
 */
export function formatFloat32(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const f = Math.fround(v);
  for (let p = 1; p < 9; p++) {
    const s = f.toPrecision(p);
    if (Math.fround(Number(s)) === f) return String(Number(s));
  }
  return String(Number(f.toPrecision(9)));
}

/** --leakage: reject (sbi's default: posterior draws and densities restricted to the prior's support) or keep. */
export function parseLeakage(text: string): Leakage {
  if (text === 'reject' || text === 'keep') return text;
  throw new UserError(`--leakage must be reject or keep (got "${text}").`);
}
