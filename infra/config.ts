// The one place that reads the environment. Every layer takes a Config instead of reading
// process.env, so a real deployment is configured in one spot and a bad value fails early with one
// sentence that names the variable.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';

/** A setting the user got wrong; its message is one sentence naming the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface TemporalTls {
  certPath?: string;
  keyPath?: string;
  caPath?: string;
  serverName?: string;
}

export interface Config {
  /** Project root (where package.json lives); relative paths in settings resolve against it. */
  root: string;
  temporal: {
    address: string;
    namespace: string;
    /** true when TEMPORAL_ADDRESS was given: the embedded server is neither started nor stopped. */
    external: boolean;
    tls?: TemporalTls;
    apiKey?: string;
  };
  mongo: {
    uri: string;
    db: string;
    /** true when MONGODB_URI was given. */
    external: boolean;
  };
  /** The embedded stack: always on 127.0.0.1. */
  embedded: {
    temporalPort: number;
    temporalUiPort: number;
    mongoPort: number;
  };
  dataDir: string;
  log: { level: LogLevel; file: string };
  /** Where a worker serves Prometheus metrics (ROBUSTSBI_METRICS_ADDR); absent: no endpoint. */
  metrics?: HostPort;
  /** How workers identify their code to Temporal (worker versioning, see workers/versioning.ts). */
  worker: {
    /** Worker Deployment name the build IDs belong to. */
    deploymentName: string;
    /** Overrides the build ID derived from the code version (tests, or a CI-stamped image). */
    buildId?: string;
    /** true: Temporal routes tasks by version (the deployment's current version gets new work). */
    versioning: boolean;
  };
}

export interface HostPort {
  host: string;
  port: number;
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):([0-9]{1,5})$/;

/** "host:port" or "[v6]:port" -> its parts, or undefined when it is neither (or the port is out of range). */
export function parseHostPort(s: string): HostPort | undefined {
  const m = HOST_PORT.exec(s.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

/** The variables this module reads; anything else in the environment is ignored. */
export const ENV_VARS = {
  temporalAddress: 'TEMPORAL_ADDRESS',
  temporalNamespace: 'TEMPORAL_NAMESPACE',
  temporalTlsCert: 'TEMPORAL_TLS_CERT',
  temporalTlsKey: 'TEMPORAL_TLS_KEY',
  temporalTlsCa: 'TEMPORAL_TLS_CA',
  temporalTlsServerName: 'TEMPORAL_TLS_SERVER_NAME',
  temporalApiKey: 'TEMPORAL_API_KEY',
  mongoUri: 'MONGODB_URI',
  mongoDb: 'MONGODB_DB',
  temporalPort: 'ROBUSTSBI_TEMPORAL_PORT',
  temporalUiPort: 'ROBUSTSBI_TEMPORAL_UI_PORT',
  mongoPort: 'ROBUSTSBI_MONGODB_PORT',
  dataDir: 'ROBUSTSBI_DATA_DIR',
  logLevel: 'ROBUSTSBI_LOG_LEVEL',
  logFile: 'ROBUSTSBI_LOG_FILE',
  metricsAddr: 'ROBUSTSBI_METRICS_ADDR',
  workerDeployment: 'ROBUSTSBI_WORKER_DEPLOYMENT',
  buildId: 'ROBUSTSBI_BUILD_ID',
  workerVersioning: 'ROBUSTSBI_WORKER_VERSIONING',
} as const;
type Key = keyof typeof ENV_VARS;

export const DEFAULTS = {
  temporalNamespace: 'default',
  mongoDb: 'robustsbi',
  temporalPort: 7233,
  temporalUiPort: 8233,
  mongoPort: 27017,
  logLevel: 'info' as LogLevel,
  workerDeployment: 'robustsbi',
};

const port = { type: 'integer', minimum: 1, maximum: 65535 };
const path = { type: 'string', minLength: 1 };
// Each property is the raw value of one variable, so an ajv error path maps back to its name.
const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    temporalAddress: {
      type: 'string',
      pattern: '^[A-Za-z0-9._\\-]+:[0-9]{1,5}$|^\\[[0-9A-Fa-f:]+\\]:[0-9]{1,5}$',
    },
    temporalNamespace: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._\\-]{0,254}$' },
    temporalTlsCert: path,
    temporalTlsKey: path,
    temporalTlsCa: path,
    temporalTlsServerName: { type: 'string', minLength: 1 },
    temporalApiKey: { type: 'string', minLength: 1 },
    mongoUri: { type: 'string', pattern: '^mongodb(\\+srv)?://[^\\s]+$' },
    // MongoDB forbids these characters in database names.
    mongoDb: { type: 'string', pattern: '^[^/\\\\. "$*<>:|?]{1,63}$' },
    temporalPort: port,
    temporalUiPort: port,
    mongoPort: port,
    dataDir: path,
    logLevel: { type: 'string', enum: [...LOG_LEVELS] },
    logFile: path,
    metricsAddr: {
      type: 'string',
      pattern: '^([A-Za-z0-9._\\-]+|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}$',
    },
    // Temporal's rules for deployment names and build IDs: no ".", at most 255 characters.
    workerDeployment: { type: 'string', pattern: '^[A-Za-z0-9_\\-+]{1,200}$' },
    buildId: { type: 'string', pattern: '^[A-Za-z0-9_\\-+]{1,200}$' },
    workerVersioning: { type: 'string', enum: ['0', '1', 'true', 'false', 'on', 'off'] },
  },
} as const;

const HOW: Partial<Record<Key, string>> = {
  temporalAddress: 'host:port, for example 127.0.0.1:7233',
  temporalNamespace: 'a Temporal namespace name (letters, digits, ".", "_", "-")',
  mongoUri: 'a MongoDB connection string starting with mongodb:// or mongodb+srv://',
  mongoDb: 'a MongoDB database name without / \\ . " $ * < > : | ? or spaces',
  temporalPort: 'an integer from 1 to 65535',
  temporalUiPort: 'an integer from 1 to 65535',
  mongoPort: 'an integer from 1 to 65535',
  logLevel: LOG_LEVELS.join(', ') + ' (one of)',
  metricsAddr: 'host:port, for example 0.0.0.0:9464',
  workerDeployment: 'a Worker Deployment name of letters, digits, "_", "-" and "+" (no ".")',
  buildId: 'a build ID of letters, digits, "_", "-" and "+" (no ".")',
  workerVersioning: 'on or off (1 / 0, true / false)',
};

let validator: ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
function validate(raw: Record<string, unknown>): ErrorObject | undefined {
  validator ??= new Ajv({ allErrors: false, strict: true }).compile(schema);
  return validator(raw) ? undefined : (validator.errors ?? [])[0];
}

/** The project root, found from this file's place in the tree (source or dist/). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

function describeValue(key: Key, value: unknown): string {
  // Never echo secrets back; a URI may carry a password.
  if (key === 'temporalApiKey') return '';
  if (key === 'mongoUri') return '';
  return ` (got "${String(value)}")`;
}

/** Reads and validates the settings; throws ConfigError with one sentence on the first bad value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, root = projectRoot()): Config {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(ENV_VARS) as [Key, string][]) {
    const v = env[name];
    if (v === undefined || v.trim() === '') continue;
    const s = v.trim();
    // Ports arrive as strings; coerce only clean integers so "12x" is reported, not truncated.
    raw[key] = key.endsWith('Port') && /^[0-9]+$/.test(s) ? Number(s) : s;
  }
  const err = validate(raw);
  if (err) {
    const key = (err.instancePath.replace(/^\//, '') || 'unknown') as Key;
    const name = ENV_VARS[key] ?? key;
    const how = HOW[key] ?? (err.message ? `valid (${err.message})` : 'valid');
    throw new ConfigError(`${name} must be ${how}${describeValue(key, raw[key])}.`);
  }
  const str = (k: Key) => raw[k] as string | undefined;
  const num = (k: Key) => raw[k] as number | undefined;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(root, p));

  const tls: TemporalTls = {};
  if (str('temporalTlsCert')) tls.certPath = abs(str('temporalTlsCert')!);
  if (str('temporalTlsKey')) tls.keyPath = abs(str('temporalTlsKey')!);
  if (str('temporalTlsCa')) tls.caPath = abs(str('temporalTlsCa')!);
  if (str('temporalTlsServerName')) tls.serverName = str('temporalTlsServerName');
  if (!!tls.certPath !== !!tls.keyPath) {
    throw new ConfigError(
      `${ENV_VARS.temporalTlsCert} and ${ENV_VARS.temporalTlsKey} must be set together (mutual TLS needs both the certificate and its key).`,
    );
  }
  for (const [k, p] of [
    ['temporalTlsCert', tls.certPath],
    ['temporalTlsKey', tls.keyPath],
    ['temporalTlsCa', tls.caPath],
  ] as [Key, string | undefined][]) {
    if (p && !existsSync(p))
      throw new ConfigError(`${ENV_VARS[k]} names a file that does not exist: ${p}.`);
  }

  const embedded = {
    temporalPort: num('temporalPort') ?? DEFAULTS.temporalPort,
    temporalUiPort: num('temporalUiPort') ?? DEFAULTS.temporalUiPort,
    mongoPort: num('mongoPort') ?? DEFAULTS.mongoPort,
  };
  const ports = [embedded.temporalPort, embedded.temporalUiPort, embedded.mongoPort];
  if (new Set(ports).size !== ports.length) {
    throw new ConfigError(
      `${ENV_VARS.temporalPort}, ${ENV_VARS.temporalUiPort} and ${ENV_VARS.mongoPort} must be three different ports (got ${ports.join(', ')}).`,
    );
  }
  const dataDir = abs(str('dataDir') ?? '.data');
  const temporalAddress = str('temporalAddress');
  const mongoUri = str('mongoUri');
  const hasTls = Object.keys(tls).length > 0;
  let metrics: HostPort | undefined;
  if (str('metricsAddr')) {
    metrics = parseHostPort(str('metricsAddr')!);
    if (!metrics || metrics.port >= 65535)
      throw new ConfigError(
        `${ENV_VARS.metricsAddr} must be host:port with a port from 1 to 65534 (got "${str('metricsAddr')}").`,
      );
  }
  const versioning = ['1', 'true', 'on'].includes(str('workerVersioning') ?? '0');
  return {
    root,
    temporal: {
      address: temporalAddress ?? `127.0.0.1:${embedded.temporalPort}`,
      namespace: str('temporalNamespace') ?? DEFAULTS.temporalNamespace,
      external: temporalAddress !== undefined,
      ...(hasTls ? { tls } : {}),
      ...(str('temporalApiKey') ? { apiKey: str('temporalApiKey') } : {}),
    },
    mongo: {
      // FerretDB is a standalone server without transactions: no replica-set discovery, no retryable writes.
      uri:
        mongoUri ??
        `mongodb://127.0.0.1:${embedded.mongoPort}/?directConnection=true&retryWrites=false`,
      db: str('mongoDb') ?? DEFAULTS.mongoDb,
      external: mongoUri !== undefined,
    },
    embedded,
    dataDir,
    log: {
      level: (str('logLevel') as LogLevel | undefined) ?? DEFAULTS.logLevel,
      file: abs(str('logFile') ?? join(dataDir, 'logs', 'robustsbi.log')),
    },
    ...(metrics ? { metrics } : {}),
    worker: {
      deploymentName: str('workerDeployment') ?? DEFAULTS.workerDeployment,
      ...(str('buildId') ? { buildId: str('buildId') } : {}),
      versioning,
    },
  };
}
