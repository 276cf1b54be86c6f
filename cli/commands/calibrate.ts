// `robustsbi calibrate [SPEC ...]`: measures, on this host and tensor backend, the rates `sweep plan`
// estimates from (seconds per simulation of every task, per epoch-row of each training configuration
// of the specs, per attack step and metric sample of their evaluations) and stores them in MongoDB,
// where every later plan on this host reuses them. Without a spec it calibrates the shipped demo and
// paper-gaussian_linear specs. About a minute on two cores.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from '../command.js';
import { UserError } from '../errors.js';
import { parseCommandArgs } from '../sbi-args.js';
import { probeMongo, unreachableSentence } from '../../infra/probe.js';
import { closeLogger } from '../../infra/logger.js';
import { commandContext, userFacing } from './infra.js';

const usage = `robustsbi calibrate [--spec FILE]... [--recalibrate] [--backend B]

  --spec FILE     a sweep spec whose configurations to measure (repeatable); default the shipped
                  sweeps/demo.json and sweeps/paper-gaussian_linear.json
  --recalibrate   forget this host's stored rates for the backend and measure everything again
  --backend B     tensor backend to measure (tfjs-node-gpu, tfjs-node, wasm, cpu; default auto, as a
                  worker picks it)`;

/** The shipped specs next to the compiled (or source) sweeps folder. */
function shippedSpec(name: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const base of [join(here, '..', '..', 'sweeps'), join(here, '..', '..', '..', 'sweeps')]) {
    const f = join(base, name);
    if (existsSync(f)) return f;
  }
  throw new UserError(`The shipped spec sweeps/${name} is missing; name a spec with --spec.`);
}

async function run(argv: string[]): Promise<number> {
  const v = parseCommandArgs('calibrate', argv, {
    spec: { type: 'string', multiple: true },
    recalibrate: { type: 'boolean', default: false },
    backend: { type: 'string' },
  });
  const files = v.spec?.length
    ? v.spec
    : [shippedSpec('demo.json'), shippedSpec('paper-gaussian_linear.json')];
  const { readFileSync } = await import('node:fs');
  const { parseSweepSpec, SpecError } = await import('../../sweeps/validate.js');
  const specs = files.map((f) => {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new UserError(
        `The sweep spec ${f} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`,
      );
    }
    try {
      return parseSweepSpec(text);
    } catch (e) {
      if (e instanceof SpecError)
        throw new UserError(`The sweep spec ${f} is invalid: ${e.message}.`.replace(/\.\.$/, '.'));
      throw e;
    }
  });
  const { config, logger } = commandContext();
  let close: (() => Promise<void>) | undefined;
  try {
    const m = await probeMongo(config);
    if (!m.ok)
      throw new UserError(
        `${unreachableSentence('mongodb', config, m)} Calibrations are stored there; start the embedded stack with "robustsbi infra up" or fix MONGODB_URI.`,
        1,
      );
    const { startBackend } = await import('../sbi-context.js');
    const backend = await startBackend(v.backend);
    const { mongoClient } = await import('../../infra/connections.js');
    const client = mongoClient(config);
    await client.connect();
    close = () => client.close();
    const { calibrateFor, planSweep } = await import('../sweep-plan.js');
    const { TASK_NAMES } = await import('../../sweeps/names.js');
    const { codeVersionLabel } = await import('../code-version.js');
    const t0 = performance.now();
    const { CalibrationStore } = await import('../../results/calibrations.js');
    const calibrations = new CalibrationStore(client.db(config.mongo.db));
    const cal = await calibrateFor(calibrations, specs.map(planSweep), {
      backend: backend.name,
      codeVersion: codeVersionLabel(),
      recalibrate: v.recalibrate === true,
      extraTasks: [...TASK_NAMES],
      say: (msg) => console.log(msg),
    });
    console.log(
      cal.measured.length
        ? `calibrated ${cal.doc._id}: ${cal.measured.length} rates measured in ${((performance.now() - t0) / 1000).toFixed(0)} s, ${cal.doc.rates.length} stored`
        : `${cal.doc._id} is calibrated already (${cal.doc.rates.length} rates, measured ${cal.doc.updatedAt.toISOString()}); --recalibrate measures them again`,
    );
    return 0;
  } catch (err) {
    throw userFacing(err);
  } finally {
    await close?.().catch(() => {});
    await closeLogger(logger);
  }
}

export const command: Command = {
  name: 'calibrate',
  summary: 'Measure this host and backend for "sweep plan" estimates (stored in MongoDB)',
  usage,
  run,
};
