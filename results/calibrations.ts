// The calibrations collection: the per-unit rates (sweeps/plan.ts Rates) measured on one host with
// one tensor backend, one document per (host, backend), reused by every later plan there. The rate
// keys are canonical JSON (with '.' in numbers), which FerretDB refuses as field names, so the rates
// are stored as a list of {kind, key, ...} entries. Validated with ajv before every write, like the
// other collections (results/validate.ts).
import type { Db } from 'mongodb';
import type { Rates } from '../sweeps/plan.js';
import { documentValidator } from './validate.js';

export const CALIBRATIONS_COLLECTION = 'calibrations';

export const RATE_KINDS = ['simulate', 'train', 'attack', 'metric'] as const;
export type RateKind = (typeof RATE_KINDS)[number];

export interface RateEntry {
  kind: RateKind;
  key: string;
  /** Seconds per unit (for metric: per KL sample). */
  seconds: number;
  /** metric only: seconds per coverage sample. */
  coverageSeconds?: number;
}

export interface CalibrationDoc {
  /** `${host}/${backend}`. */
  _id: string;
  host: string;
  backend: string;
  /** Cores available (os.availableParallelism) and the 1-minute load average when last measured. */
  cores: number;
  loadAverage1m: number;
  codeVersion: string;
  rates: RateEntry[];
  createdAt: Date;
  updatedAt: Date;
}

const positive = { type: 'number', exclusiveMinimum: 0 } as const;

export const calibrationSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    '_id',
    'host',
    'backend',
    'cores',
    'loadAverage1m',
    'codeVersion',
    'rates',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    _id: { type: 'string', minLength: 3, maxLength: 600 },
    host: { type: 'string', minLength: 1, maxLength: 255 },
    backend: { type: 'string', minLength: 1, maxLength: 64 },
    cores: { type: 'integer', minimum: 1 },
    loadAverage1m: { type: 'number', minimum: 0 },
    codeVersion: { type: 'string', maxLength: 200 },
    rates: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['kind', 'key', 'seconds'],
        properties: {
          kind: { enum: [...RATE_KINDS] },
          key: { type: 'string', minLength: 1, maxLength: 2000 },
          seconds: positive,
          coverageSeconds: positive,
        },
      },
    },
    createdAt: { bsonDate: true },
    updatedAt: { bsonDate: true },
  },
} as const;

const validate = documentValidator(CALIBRATIONS_COLLECTION, calibrationSchema);

/** Throws SchemaError naming the first offending field. */
export function validateCalibration(doc: unknown): asserts doc is CalibrationDoc {
  validate(doc);
}

export function calibrationId(host: string, backend: string): string {
  return `${host}/${backend}`;
}

export function ratesToEntries(r: Rates): RateEntry[] {
  const out: RateEntry[] = [];
  for (const [key, seconds] of Object.entries(r.simulate))
    out.push({ kind: 'simulate', key, seconds });
  for (const [key, seconds] of Object.entries(r.train)) out.push({ kind: 'train', key, seconds });
  for (const [key, seconds] of Object.entries(r.attack)) out.push({ kind: 'attack', key, seconds });
  for (const [key, m] of Object.entries(r.metric))
    out.push({ kind: 'metric', key, seconds: m.kl, coverageSeconds: m.coverage });
  return out;
}

export function entriesToRates(entries: readonly RateEntry[]): Rates {
  const r: Rates = { simulate: {}, train: {}, attack: {}, metric: {} };
  for (const e of entries) {
    if (e.kind === 'metric') r.metric[e.key] = { kl: e.seconds, coverage: e.coverageSeconds ?? 0 };
    else r[e.kind][e.key] = e.seconds;
  }
  return r;
}

export class CalibrationStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private get collection() {
    return this.db.collection<CalibrationDoc>(CALIBRATIONS_COLLECTION);
  }

  async get(host: string, backend: string): Promise<CalibrationDoc | undefined> {
    return (await this.collection.findOne({ _id: calibrationId(host, backend) })) ?? undefined;
  }

  /** Stores the rates of (host, backend), replacing what was there (the caller merges). */
  async put(
    input: Pick<CalibrationDoc, 'host' | 'backend' | 'cores' | 'loadAverage1m' | 'codeVersion'> & {
      rates: Rates;
    },
  ): Promise<CalibrationDoc> {
    const _id = calibrationId(input.host, input.backend);
    const old = await this.collection.findOne({ _id });
    const now = this.now();
    const doc: CalibrationDoc = {
      _id,
      host: input.host,
      backend: input.backend,
      cores: input.cores,
      loadAverage1m: input.loadAverage1m,
      codeVersion: input.codeVersion,
      rates: ratesToEntries(input.rates),
      createdAt: old?.createdAt ?? now,
      updatedAt: now,
    };
    validateCalibration(doc);
    await this.collection.replaceOne({ _id }, doc, { upsert: true });
    return doc;
  }

  /** Forgets the rates of (host, backend) (`calibrate --recalibrate`). */
  async remove(host: string, backend: string): Promise<void> {
    await this.collection.deleteOne({ _id: calibrationId(host, backend) });
  }
}
