// One winston logger for every layer: JSON lines to a file (for later reading by tools) plus a short
// human line on stderr (stdout stays free for command results). Credentials never reach either: every
// string in a log entry passes through redact().
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import winston from 'winston';
import type { LogLevel } from './config.js';

const MASK = '***';

/** Secret values known at run time (an API key from the config); redact() masks them verbatim. */
const knownSecrets = new Set<string>();
export function addSecret(value: string | undefined): void {
  if (value && value.length >= 4) knownSecrets.add(value);
}

// scheme://user:password@host  ->  scheme://user:***@host
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@]*):([^\s/@]*)@/gi;
// ?password=...&  or  &tlsCertificateKeyFilePassword=...  (values of credential-like query parameters)
const SECRET_PARAM =
  /([?&;](?:[a-z]*password|[a-z]*secret|[a-z]*token|api[_-]?key|authMechanismProperties)=)([^&\s#]*)/gi;

/** Masks the credentials in URIs and known secrets anywhere in a string. */
export function redact(text: string): string {
  let out = text.replace(
    USERINFO,
    (_m, scheme: string, user: string) => `${scheme}${user}:${MASK}@`,
  );
  out = out.replace(SECRET_PARAM, (_m, key: string) => `${key}${MASK}`);
  for (const s of knownSecrets) out = out.split(s).join(MASK);
  return out;
}

/** redact() applied to every string inside a value (objects and arrays walked, cycles cut). */
export function redactDeep(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redact(value);
  if (value instanceof Error) {
    const copy: Record<string, unknown> = { name: value.name, message: redact(value.message) };
    if (value.stack) copy.stack = redact(value.stack);
    return copy;
  }
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[cycle]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, seen));
  if (value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, seen);
  return out;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    (info as Record<string, unknown>)[key] = redactDeep((info as Record<string, unknown>)[key]);
  }
  return info;
});

const consoleLine = winston.format.printf((info) => {
  const { level, message, component, ...rest } = info as Record<string, unknown>;
  delete rest.timestamp;
  const extras = Object.keys(rest).length > 0 ? ' ' + JSON.stringify(rest) : '';
  const who = component ? `[${String(component)}] ` : '';
  return `${String(level).padEnd(5)} ${who}${String(message)}${extras}`;
});

export interface LoggerOptions {
  level: LogLevel;
  /** JSON-lines file; its folder is created. Omit for console only. */
  file?: string;
  /** false silences the console (tests). */
  console?: boolean;
}

export type Logger = winston.Logger;

export function createLogger(opts: LoggerOptions): Logger {
  const transports: winston.transport[] = [];
  if (opts.console !== false) {
    transports.push(
      new winston.transports.Console({
        // Everything to stderr: command results own stdout.
        stderrLevels: [...(['error', 'warn', 'info', 'debug'] as const)],
        format: consoleLine,
      }),
    );
  }
  if (opts.file) {
    mkdirSync(dirname(opts.file), { recursive: true });
    transports.push(
      new winston.transports.File({ filename: opts.file, format: winston.format.json() }),
    );
  }
  return winston.createLogger({
    level: opts.level,
    format: winston.format.combine(redactFormat(), winston.format.timestamp()),
    transports,
    // A logger with no transport would warn on every write.
    silent: transports.length === 0,
  });
}

/** Waits until the file transport has written everything (call before process exit in scripts). */
export function closeLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    logger.on('finish', () => resolve());
    logger.end();
  });
}
