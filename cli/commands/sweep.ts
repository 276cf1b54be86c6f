// `robustsbi sweep run | plan | status | list | pause | resume | cancel | rerun-failed | tag | note`: durable sweeps on
// Temporal. A spec is validated completely before anything is started; its ID is a hash of its
// scientific content, so resubmitting it attaches to the running sweep or reruns only what did not
// complete.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { ANNOTATE_HELP, ANNOTATE_USAGE, annotateCommand } from '../sweep-annotate.js';
import { parseInteger } from '../sbi-args.js';
import { visibilityQuery } from '../workflow-query.js';
import { probeMongo, probeTemporal, unreachableSentence } from '../../infra/probe.js';
import { closeLogger } from '../../infra/logger.js';
import { commandContext, userFacing } from './infra.js';
import type { Config } from '../../infra/config.js';
import type { SweepSpec } from '../../sweeps/types.js';
import type { SweepOptions, SweepProgress } from '../../workflows/messages.js';

const usage = `robustsbi sweep run SPEC [--wait] [--dry-run] [--continue-as-new-every N] [--heartbeat-timeout D]
       robustsbi sweep plan SPEC [--processes N|auto] [--recalibrate] [--backend B] [--json]
       robustsbi sweep status ID [--json] [--table]
       robustsbi sweep list [--json] [--query Q] [--sweep-id ID] [--trial-status S] [--task T] [--defense D]
       robustsbi sweep pause | resume | cancel ID
       robustsbi sweep rerun-failed ID [--wait]
${ANNOTATE_USAGE}

  run SPEC        validate the spec (JSON), start its sweep and print the sweep ID; a spec whose sweep
                  is running attaches to it, a finished one reruns only failed or missing trials
  --wait          show progress until the sweep ends (exit 1 unless it completed)
  --dry-run       print the plan (as "sweep plan") and start nothing
  plan SPEC       trials, activities per step and the estimated CPU time of each step and of the
                  sweep, from rates measured on this host and backend (stored in MongoDB; what is
                  missing is measured first, a few seconds per configuration); warns where one
                  activity would outrun its timeout. --processes: worker processes for the wall
                  time (default: the cores here); --recalibrate measures everything again
  status ID       state and trial counts, and the plan's estimate against what ran (--json: state,
                  trials, completed, failed, running, ...);
                  --table: the accuracy-robustness trade-off table of its stored curves
  list            every sweep in MongoDB, newest first; with --query (a Temporal visibility query,
                  e.g. "SweepId='x' AND TrialStatus='failed'") or the flags --sweep-id, --trial-status
                  (running, completed, skipped, failed, cancelled), --task, --defense: the sweep and
                  trial workflows Temporal finds by their search attributes, newest first
  pause / resume  stop / restart making new trials (running ones finish)
  cancel          cancel the running trials and end the sweep as cancelled
  rerun-failed    run the failed, cancelled and missing trials of a finished sweep again
${ANNOTATE_HELP}
  --queue-prefix P  task-queue prefix of the workers to use (default none)`;

const SUBS = [
  'run',
  'plan',
  'status',
  'list',
  'pause',
  'resume',
  'cancel',
  'rerun-failed',
  'tag',
  'note',
] as const;
type Sub = (typeof SUBS)[number];

function parse(sub: Sub, argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: {
        wait: { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        recalibrate: { type: 'boolean', default: false },
        processes: { type: 'string' },
        backend: { type: 'string' },
        json: { type: 'boolean', default: false },
        table: { type: 'boolean', default: false },
        'queue-prefix': { type: 'string', default: '' },
        'continue-as-new-every': { type: 'string' },
        'heartbeat-timeout': { type: 'string' },
        query: { type: 'string' },
        'sweep-id': { type: 'string' },
        'trial-status': { type: 'string' },
        task: { type: 'string' },
        defense: { type: 'string' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    const quoted = /'([^']+)'/.exec((e as Error).message)?.[1] ?? '';
    throw new UserError(
      `${quoted ? `Unknown or incomplete option "${quoted}"` : (e as Error).message.split('.')[0]} for "robustsbi sweep ${sub}"; run "robustsbi sweep --help".`,
    );
  }
}

function oneId(sub: Sub, positionals: string[]): string {
  if (positionals.length !== 1)
    throw new UserError(`"robustsbi sweep ${sub}" needs exactly one sweep ID.`);
  const id = positionals[0]!.replace(/^sweep\//, '');
  if (!/^[0-9a-f]{8,64}$/.test(id))
    throw new UserError(`"${positionals[0]}" is not a sweep ID (the hex ID "sweep run" printed).`);
  return id;
}

/** Reads and validates a spec file; every problem is one sentence naming the file and JSON path. */
async function readSpec(file: string): Promise<SweepSpec> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      `The sweep spec ${file} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (e as Error).message})`}.`,
    );
  }
  const { parseSweepSpec, SpecError } = await import('../../sweeps/validate.js');
  try {
    return parseSweepSpec(text);
  } catch (e) {
    if (e instanceof SpecError)
      throw new UserError(`The sweep spec ${file} is invalid: ${e.message}.`.replace(/\.\.$/, '.'));
    throw e;
  }
}

async function checkServers(config: Config): Promise<void> {
  const [t, m] = await Promise.all([probeTemporal(config), probeMongo(config)]);
  const hint =
    ' Start the embedded stack with "robustsbi infra up" or fix TEMPORAL_ADDRESS / MONGODB_URI.';
  if (!t.ok) throw new UserError(unreachableSentence('temporal', config, t) + hint, 1);
  if (!m.ok) throw new UserError(unreachableSentence('mongodb', config, m) + hint, 1);
}

/**
 * The plan's estimate for the sweep's completed trials against their stored timings, from the rates
 * this host has measured for the worker backend (nothing is measured here); undefined without any.
 */
async function estimateLine(
  cals: import('../../results/calibrations.js').CalibrationStore,
  store: import('../../results/store.js').ResultStore,
  sweepId: string,
): Promise<string | undefined> {
  const doc = await store.getSweep(sweepId);
  if (!doc) return undefined;
  const { validateSweepSpec } = await import('../../sweeps/validate.js');
  const spec = validateSweepSpec(doc.spec);
  const { entriesToRates } = await import('../../results/calibrations.js');
  const { hostname, availableParallelism } = await import('node:os');
  // The backend the workers recorded on the trials, else any this host has rates for.
  const trial = (await store.trials.findOne(
    { sweepIds: sweepId, backend: { $exists: true } },
    { projection: { backend: 1 } },
  )) as { backend?: string } | null;
  const cal = trial?.backend ? await cals.get(hostname(), trial.backend) : undefined;
  if (!cal)
    return `estimate vs ran: no rates measured on ${hostname()}${trial?.backend ? ` for the ${trial.backend} backend` : ''}; "robustsbi sweep plan SPEC" measures them`;
  const { compareLine, ranFigures, reportPlan, typicalEpochShare } =
    await import('../sweep-plan.js');
  const typical = await typicalEpochShare(store);
  const report = reportPlan(spec, entriesToRates(cal.rates), {
    processes: availableParallelism(),
    ...(typical ? { typical } : {}),
    calibration: cal,
  });
  return compareLine(report, await ranFigures(store, sweepId));
}

function bar(done: number, total: number, width = 24): string {
  const filled = total > 0 ? Math.round((width * done) / total) : width;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

function progressLine(p: SweepProgress, training: string): string {
  return `${bar(p.completed + p.failed + p.cancelled, p.trials)} ${p.state}: ${p.completed}/${p.trials} completed, ${p.failed} failed, ${p.running} running${training}`;
}

/** `sweep plan SPEC` and `sweep run SPEC --dry-run`: needs MongoDB (the rates), never Temporal. */
async function planCommand(
  spec: SweepSpec,
  v: { processes?: string; recalibrate?: boolean; backend?: string; json?: boolean },
  options: Partial<SweepOptions>,
): Promise<number> {
  const { parseProcesses, ProcessesError } = await import('../../workers/supervisor.js');
  let processes: number;
  try {
    processes = parseProcesses(v.processes ?? 'auto');
  } catch (e) {
    if (e instanceof ProcessesError) throw new UserError(e.message);
    throw e;
  }
  const { config, logger } = commandContext();
  const { openResultStore } = await import('../../results/store.js');
  let closeMongo: (() => Promise<void>) | undefined;
  try {
    const m = await probeMongo(config);
    if (!m.ok)
      throw new UserError(
        `${unreachableSentence('mongodb', config, m)} The plan reads and stores this host's measured rates there; start the embedded stack with "robustsbi infra up" or fix MONGODB_URI.`,
        1,
      );
    const { startBackend } = await import('../sbi-context.js');
    const backend = await startBackend(v.backend);
    const opened = await openResultStore(config);
    closeMongo = opened.close;
    const { calibrateFor, planSweep, reportPlan, typicalEpochShare } =
      await import('../sweep-plan.js');
    const { codeVersionLabel } = await import('../code-version.js');
    const { CalibrationStore } = await import('../../results/calibrations.js');
    const calibrations = new CalibrationStore(opened.client.db(config.mongo.db));
    const cal = await calibrateFor(calibrations, [planSweep(spec)], {
      backend: backend.name,
      codeVersion: codeVersionLabel(),
      recalibrate: v.recalibrate === true,
      say: (msg) => logger.info(msg),
    });
    const typical = await typicalEpochShare(opened.store);
    const report = reportPlan(spec, cal.rates, {
      processes,
      options,
      ...(typical ? { typical } : {}),
      calibration: cal.doc,
      failed: cal.failed,
    });
    if (v.json) {
      const numbers: Partial<typeof report> = { ...report };
      delete numbers.lines;
      console.log(JSON.stringify({ ...numbers, measuredNow: cal.measured }, null, 1));
    } else {
      for (const line of report.lines) console.log(line);
    }
    return 0;
  } catch (err) {
    throw userFacing(err);
  } finally {
    await closeMongo?.().catch(() => {});
    await closeLogger(logger);
  }
}

async function run(argv: string[]): Promise<number> {
  const [subArg, ...rest] = argv;
  if (!SUBS.includes(subArg as Sub))
    throw new UserError(
      `"robustsbi sweep" needs one of ${SUBS.join(', ')}${subArg ? ` (got "${subArg}")` : ''}.`,
    );
  const sub = subArg as Sub;
  if (sub === 'tag' || sub === 'note') return annotateCommand(sub, rest);
  const { values: v, positionals } = parse(sub, rest);
  const prefix = v['queue-prefix']!;
  const options: Partial<SweepOptions> = { queuePrefix: prefix };
  if (v['continue-as-new-every'] !== undefined)
    options.continueAsNewEvery = parseInteger(
      'continue-as-new-every',
      v['continue-as-new-every'],
      1,
    );
  if (v['heartbeat-timeout'] !== undefined) {
    if (!/^\d+(\.\d+)?\s*(ms|s|m|h|seconds?|minutes?|hours?)$/.test(v['heartbeat-timeout']))
      throw new UserError(
        `--heartbeat-timeout must be a duration such as 30s or 10m (got "${v['heartbeat-timeout']}").`,
      );
    options.heartbeatTimeout = v['heartbeat-timeout'];
  }

  // The spec is checked before any connection is made: a bad spec never starts anything.
  let spec: SweepSpec | undefined;
  if (sub === 'run' || sub === 'plan') {
    if (positionals.length !== 1)
      throw new UserError(`"robustsbi sweep ${sub}" needs exactly one spec file.`);
    spec = await readSpec(positionals[0]!);
    if (sub === 'plan' || v['dry-run']) return planCommand(spec, v, options);
  }
  let listQuery: string | undefined;
  if (sub === 'list') {
    if (positionals.length > 0) throw new UserError('"robustsbi sweep list" takes no arguments.');
    listQuery = visibilityQuery({
      ...(v.query !== undefined ? { query: v.query } : {}),
      ...(v['sweep-id'] !== undefined ? { sweepId: v['sweep-id'] } : {}),
      ...(v['trial-status'] !== undefined ? { trialStatus: v['trial-status'] } : {}),
      ...(v.task !== undefined ? { task: v.task } : {}),
      ...(v.defense !== undefined ? { defense: v.defense } : {}),
    });
  } else if (
    [v.query, v['sweep-id'], v['trial-status'], v.task, v.defense].some((x) => x !== undefined)
  )
    throw new UserError(
      `--query, --sweep-id, --trial-status, --task and --defense belong to "robustsbi sweep list".`,
    );
  const id = sub === 'run' || sub === 'list' ? undefined : oneId(sub, positionals);

  const { config, logger } = commandContext();
  const client = await import('../sweep-client.js');
  const { openResultStore } = await import('../../results/store.js');
  let closeTemporal: (() => Promise<void>) | undefined;
  let closeMongo: (() => Promise<void>) | undefined;
  try {
    await checkServers(config);
    const t = await client.connectTemporal(config);
    closeTemporal = t.close;
    const m = await openResultStore(config);
    closeMongo = m.close;
    const store = m.store;

    const warnSearchAttributes = (missing: string[]) => {
      if (missing.length > 0)
        logger.warn(
          `namespace ${config.temporal.namespace} lacks the search attributes ${missing.join(', ')} (or they could not be listed): this sweep's workflows carry none; README "Run it on a cluster" shows how to register them`,
        );
    };

    const waitAndReport = async (sweepId: string): Promise<number> => {
      const tty = process.stderr.isTTY === true;
      let lastLine = '';
      const final = await client.waitForSweep(
        t.client,
        sweepId,
        (p) => {
          void (async () => {
            let training = '';
            const first = p.runningTrials[0];
            if (first) {
              const hb = await client.trainingProgress(t.client, first.trialId, first.workflowId);
              if (hb)
                training = `; trial ${first.index} training ${bar(hb.epoch, hb.maxEpochs, 10)} epoch ${hb.epoch}/${hb.maxEpochs} val ${Number.isFinite(hb.valLoss) && hb.valLoss !== null ? Number(hb.valLoss).toFixed(3) : '-'}`;
            }
            const line = progressLine(p, training);
            if (line === lastLine) return;
            lastLine = line;
            process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
          })();
        },
        1000,
      );
      if (tty) process.stderr.write('\n');
      console.log(
        `sweep ${sweepId} ${final.state}: ${final.completed}/${final.trials} trials completed (${final.skipped} already done), ${final.failed} failed, ${final.cancelled} cancelled`,
      );
      for (const f of final.failures)
        console.log(`  failed ${f.trialId} (${f.type}): ${f.message}`);
      if (final.completed > 0) {
        const { tradeoffTables } = await import('../tradeoff-table.js');
        console.log(`\n${tradeoffTables(await store.listCurves(sweepId))}`);
      }
      return final.state === 'completed' ? 0 : 1;
    };

    switch (sub) {
      case 'run': {
        const s = await client.submitSweep(t.client, spec!, options);
        warnSearchAttributes(s.missingSearchAttributes);
        console.log(s.sweepId);
        logger.info(
          s.attached
            ? `sweep ${s.sweepId} is running already; attached to it`
            : `sweep ${s.sweepId} started (workflow ${s.workflowId})`,
        );
        return v.wait ? await waitAndReport(s.sweepId) : 0;
      }
      case 'rerun-failed': {
        const doc = await store.getSweep(id!);
        if (!doc) throw new UserError(`No sweep with ID ${id} is stored in MongoDB.`);
        const { validateSweepSpec } = await import('../../sweeps/validate.js');
        const { sweepIdOf } = await import('../../sweeps/expand.js');
        const stored = validateSweepSpec(doc.spec);
        if (sweepIdOf(stored) !== id)
          throw new UserError(
            `The spec stored for sweep ${id} no longer hashes to its ID; resubmit the spec file instead.`,
          );
        const st = await client.sweepStatus(t.client, store, id!);
        if (st.workflowStatus === 'RUNNING')
          throw new UserError(
            `Sweep ${id} is still running; rerun its failed trials once it has ended.`,
          );
        const s = await client.submitSweep(t.client, stored, options);
        warnSearchAttributes(s.missingSearchAttributes);
        console.log(s.sweepId);
        logger.info(`sweep ${id}: rerunning its failed, cancelled and missing trials`);
        return v.wait ? await waitAndReport(s.sweepId) : 0;
      }
      case 'status': {
        let st;
        try {
          st = await client.sweepStatus(t.client, store, id!);
        } catch (e) {
          if (e instanceof client.SweepNotFoundError) throw new UserError(e.message);
          throw e;
        }
        if (v.json) {
          const { progress, ...flat } = st;
          console.log(
            JSON.stringify(
              {
                ...flat,
                ...(progress
                  ? { runningTrials: progress.runningTrials, failures: progress.failures }
                  : {}),
              },
              null,
              1,
            ),
          );
        } else {
          console.log(
            `sweep ${st.sweepId}${st.name ? ` (${st.name})` : ''}: ${st.state}; ${st.trials} trials: ${st.completed} completed, ${st.failed} failed, ${st.running} running, ${st.queued} queued, ${st.cancelled} cancelled`,
          );
          if (st.error) console.log(`  ${st.error.message}`);
        }
        if (!v.json) {
          const { CalibrationStore } = await import('../../results/calibrations.js');
          const cals = new CalibrationStore(m.client.db(config.mongo.db));
          const line = await estimateLine(cals, store, id!).catch(
            (e: Error) => `estimate vs ran: not available (${e.message})`,
          );
          if (line) console.log(line);
        }
        if (v.table) {
          const { tradeoffTables } = await import('../tradeoff-table.js');
          console.log(`\n${tradeoffTables(await store.listCurves(id!))}`);
        }
        return 0;
      }
      case 'list': {
        if (listQuery !== undefined) {
          const found = await client.listWorkflows(t.client, listQuery);
          if (v.json) console.log(JSON.stringify(found, null, 1));
          else if (found.length === 0) console.log(`No workflow matches ${listQuery}.`);
          else
            for (const w of found)
              console.log(
                `${w.workflowId}  ${w.status.padEnd(10)}  ${w.startTime}  ${Object.entries(
                  w.searchAttributes,
                )
                  .map(([k, x]) => `${k}=${Array.isArray(x) ? x.join(',') : String(x)}`)
                  .join(' ')}`,
              );
          return 0;
        }
        const all = await store.listSweeps();
        if (v.json) {
          console.log(
            JSON.stringify(
              all.map((s) => ({
                sweepId: s._id,
                name: s.name,
                status: s.status,
                counts: s.counts,
                createdAt: s.createdAt,
              })),
              null,
              1,
            ),
          );
        } else if (all.length === 0) {
          console.log('No sweeps yet; start one with "robustsbi sweep run SPEC".');
        } else {
          for (const s of all)
            console.log(
              `${s._id}  ${s.status.padEnd(9)}  ${String(s.counts.completed).padStart(5)}/${String(s.counts.trials).padEnd(5)} completed  ${s.createdAt.toISOString()}  ${s.name}`,
            );
        }
        return 0;
      }
      case 'pause':
      case 'resume':
      case 'cancel': {
        const sent = await client.controlSweep(t.client, id!, sub);
        if (!sent)
          throw new UserError(
            `Sweep ${id} is not running, so it cannot be ${sub === 'pause' ? 'paused' : sub === 'resume' ? 'resumed' : 'cancelled'}.`,
            1,
          );
        console.log(`sweep ${id}: ${sub} sent`);
        return 0;
      }
    }
    return 2;
  } catch (err) {
    if (err instanceof client.SweepQueryError) throw new UserError(err.message);
    throw userFacing(err);
  } finally {
    await closeTemporal?.().catch(() => {});
    await closeMongo?.().catch(() => {});
    await closeLogger(logger);
  }
}

export const command: Command = {
  name: 'sweep',
  summary:
    'Plan, run, watch, control and annotate durable sweeps (plan, run, status, list, pause, resume, cancel, rerun-failed, tag, note)',
  usage,
  run,
};
