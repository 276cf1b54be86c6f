// `robustsbi report ID`: the curves of one sweep as text tables, CSV, JSON or a self-contained HTML
// page with Plotly plots. Reads MongoDB only.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { closeLogger } from '../../infra/logger.js';
import { probeMongo, unreachableSentence } from '../../infra/probe.js';
import { commandContext } from './infra.js';

const FORMATS = ['table', 'csv', 'json', 'html'] as const;
const TABLES = ['tradeoff', 'kl_vs_eps', 'coverage', 'diagnostics'] as const;

const usage = `robustsbi report ID [--format table|csv|json|html] [--table NAME] [--out FILE]

  ID         the sweep ID ("robustsbi sweep list" shows them)
  --format   table (default): aligned text; csv: the three tables, each after a line with its
             name (or only --table tradeoff|kl_vs_eps|coverage|diagnostics, the SBC and C2ST
             of specs with evaluation.metrics); json: tables and curves;
             html: one self-contained page with the plots (works offline)
  --out      write to FILE instead of standard output (html without --out goes to stdout too)`;

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        format: { type: 'string', default: 'table' },
        table: { type: 'string' },
        out: { type: 'string' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    const quoted = /'([^']+)'/.exec((e as Error).message)?.[1] ?? '';
    throw new UserError(
      `${quoted ? `Unknown or incomplete option "${quoted}"` : (e as Error).message.split('.')[0]} for "robustsbi report"; run "robustsbi report --help".`,
    );
  }
}

async function run(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv);
  if (positionals.length !== 1)
    throw new UserError('"robustsbi report" needs exactly one sweep ID.');
  const id = positionals[0]!.replace(/^sweep\//, '');
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(id))
    throw new UserError(
      `"${positionals[0]}" is not a sweep ID ("robustsbi sweep list" shows them).`,
    );
  const format = v.format as (typeof FORMATS)[number];
  if (!FORMATS.includes(format))
    throw new UserError(`--format must be one of ${FORMATS.join(', ')} (got "${v.format}").`);
  const table = v.table as (typeof TABLES)[number] | undefined;
  if (table !== undefined && !TABLES.includes(table))
    throw new UserError(`--table must be one of ${TABLES.join(', ')} (got "${v.table}").`);
  if (table !== undefined && format !== 'csv')
    throw new UserError('--table applies to --format csv only.');

  const { config, logger } = commandContext();
  const { openResultStore } = await import('../../results/store.js');
  const { loadReport, renderReport } = await import('../../results/report.js');
  try {
    const m = await probeMongo(config);
    if (!m.ok)
      throw new UserError(
        unreachableSentence('mongodb', config, m) +
          ' Start the embedded stack with "robustsbi infra up" or fix MONGODB_URI.',
        1,
      );
    const { store, close } = await openResultStore(config);
    let text: string;
    try {
      const report = await loadReport(store, id);
      if (!report) throw new UserError(`No sweep with ID ${id} is stored in MongoDB.`, 1);
      text = renderReport(report, format, table);
    } finally {
      await close();
    }
    if (v.out !== undefined) {
      try {
        writeFileSync(v.out, text);
      } catch (e) {
        throw new UserError(
          `The report cannot be written to ${v.out} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`,
          1,
        );
      }
      console.error(`robustsbi: wrote the ${format} report of sweep ${id} to ${v.out}.`);
    } else {
      process.stdout.write(text);
    }
    return 0;
  } finally {
    await closeLogger(logger);
  }
}

export const command: Command = {
  name: 'report',
  summary: "Print or write a sweep's trade-off, KL-vs-eps and coverage tables, or an HTML report",
  usage,
  run,
};
