// `robustsbi export SWEEP --what trials|evaluations|points --format csv|jsonl [--out FILE]`: a
// sweep's per-trial, per-evaluation or per-test-point data for pandas or R, streamed from MongoDB
// (results/export.ts, results/export-source.ts), so its memory does not grow with the sweep.
import { once } from 'node:events';
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { closeLogger } from '../../infra/logger.js';
import { probeMongo, unreachableSentence } from '../../infra/probe.js';
import {
  EXPORT_FORMATS,
  EXPORT_KINDS,
  type ExportFormat,
  type ExportKind,
  type ExportSink,
  type ExportStats,
} from '../../results/export.js';
import { commandContext } from './infra.js';

const usage = `robustsbi export SWEEP --what trials|evaluations|points [--format csv|jsonl] [--out FILE]

  SWEEP      the sweep ID ("robustsbi sweep list" shows them)
  --what     trials: one row per trial (config, status, summary; nested fields as dotted
             columns); evaluations: one row per (trial, attack, objective, eps); points: one row
             per (trial, attack, objective, eps, test point) from the values each evaluation kept
  --format   csv (default; RFC 4180, arrays as JSON text in one cell, NaN / Infinity as text),
             jsonl (one JSON document per line, nested as stored, NaN / Infinity as strings)
             or arrow (an Apache Arrow IPC stream: the CSV's columns, typed float64 / bool / utf8)
  --out      write FILE (whole or not at all) instead of standard output`;

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        what: { type: 'string' },
        format: { type: 'string', default: 'csv' },
        out: { type: 'string' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    const quoted = /'([^']+)'/.exec((e as Error).message)?.[1] ?? '';
    throw new UserError(
      `${quoted ? `Unknown or incomplete option "${quoted}"` : (e as Error).message.split('.')[0]} for "robustsbi export"; run "robustsbi export --help".`,
    );
  }
}

/** A sink that waits for 'drain' when the stream's buffer is full (backpressure). */
function streamSink(stream: Writable): ExportSink {
  return {
    async write(text) {
      if (!stream.write(text)) await once(stream, 'drain');
    },
  };
}

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv);
  if (positionals.length !== 1)
    throw new UserError('"robustsbi export" needs exactly one sweep ID.');
  const id = positionals[0]!.replace(/^sweep\//, '');
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(id))
    throw new UserError(
      `"${positionals[0]}" is not a sweep ID ("robustsbi sweep list" shows them).`,
    );
  if (v.what === undefined)
    throw new UserError(`--what is required: one of ${EXPORT_KINDS.join(', ')}.`);
  const what = v.what as ExportKind;
  if (!EXPORT_KINDS.includes(what))
    throw new UserError(`--what must be one of ${EXPORT_KINDS.join(', ')} (got "${v.what}").`);
  const format = v.format as ExportFormat;
  if (!EXPORT_FORMATS.includes(format))
    throw new UserError(
      `--format must be one of ${EXPORT_FORMATS.join(', ')} (got "${v.format}").`,
    );
  if (v.out === '') throw new UserError('--out needs a file name.');

  const { config, logger } = commandContext();
  const m = await probeMongo(config);
  if (!m.ok) {
    await closeLogger(logger);
    throw new UserError(
      unreachableSentence('mongodb', config, m) +
        ' Start the embedded stack with "robustsbi infra up" or fix MONGODB_URI.',
      1,
    );
  }
  const { openResultStore } = await import('../../results/store.js');
  const { store, close } = await openResultStore(config);
  // Into a temporary sibling renamed over FILE at the end: a failed export leaves no half file.
  const tmp =
    v.out === undefined
      ? undefined
      : join(
          dirname(v.out),
          `.${basename(v.out)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
        );
  let file: Writable | undefined;
  try {
    if (!(await store.getSweep(id)))
      throw new UserError(`No sweep with ID ${id} is stored in MongoDB.`, 1);
    if (tmp !== undefined) {
      file = createWriteStream(tmp, { flags: 'wx' });
      await Promise.race([
        once(file, 'open'),
        once(file, 'error').then(([e]) => {
          throw new UserError(
            `The export cannot be written to ${v.out} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`,
            1,
          );
        }),
      ]);
    }
    const sink = streamSink(file ?? process.stdout);
    const stats = await exportTo(what, format, id, store, sink);
    if (file) {
      file.end();
      await once(file, 'finish');
      renameSync(tmp!, v.out!);
      console.error(
        `robustsbi: wrote ${stats.rows} ${what} rows of sweep ${id} to ${v.out} (${format}).`,
      );
    }
    return 0;
  } catch (e) {
    if (file) file.destroy();
    if (tmp !== undefined) rmSync(tmp, { force: true });
    throw e;
  } finally {
    await close();
    await closeLogger(logger);
  }
}

async function exportTo(
  what: ExportKind,
  format: ExportFormat,
  sweepId: string,
  store: import('../../results/store.js').ResultStore,
  sink: ExportSink,
): Promise<ExportStats> {
  const { writeCsv, writeJsonLines, POINT_COLUMNS } = await import('../../results/export.js');
  const { writeArrow } = await import('../../results/export-arrow.js');
  const { trialRows, evaluationRows } = await import('../../results/export-source.js');
  if (what === 'points') {
    const { ArtifactStore } = await import('../../results/artifacts.js');
    const { pointRows } = await import('../export-points.js');
    const artifacts = new ArtifactStore(store.db);
    const gaps = { missing: [] as { trialId: string; attack: string; eps: number }[] };
    const rows = () => pointRows(store, artifacts, sweepId, gaps);
    const stats =
      format === 'csv'
        ? await writeCsv('points', rows, sink, POINT_COLUMNS)
        : format === 'arrow'
          ? await writeArrow('points', rows, sink)
          : await writeJsonLines(rows(), sink);
    if (gaps.missing.length > 0)
      console.error(
        `robustsbi: ${gaps.missing.length} evaluations (trial, attack, eps) kept no per-point values (evaluated before robustsbi kept them for every test set), e.g. trial ${gaps.missing[0]!.trialId} ${gaps.missing[0]!.attack} eps ${gaps.missing[0]!.eps}.`,
      );
    return stats;
  }
  const rows = () =>
    what === 'trials' ? trialRows(store, sweepId) : evaluationRows(store, sweepId);
  if (format === 'arrow') return writeArrow(what, rows, sink);
  return format === 'csv' ? writeCsv(what, rows, sink) : writeJsonLines(rows(), sink);
}

export const command: Command = {
  name: 'export',
  summary: "Stream a sweep's trials, evaluations or per-test-point values as CSV or JSON lines",
  usage,
  run,
};
