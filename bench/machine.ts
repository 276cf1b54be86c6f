// The machine a bench ran on, as the suite reports it: CPU model and cores, memory, load, node, the
// tfjs backends that load here, and the PyTorch version of the reference venv (or "missing").
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { BACKENDS, initBackend, tf } from '../sbi/backend.js';
import { torchPython } from './torch-venv.js';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  ramGiB: number;
  os: string;
  node: string;
  tfjs: string;
  /** Backends that load in this process (the ones tried before the chosen one and failed are left out). */
  tfjsBackends: string[];
  /** Why the others did not load. */
  tfjsUnavailable: Record<string, string>;
  /** torch.__version__ in the reference venv, or "missing (<reason>)". */
  torch: string;
  /** 1-minute load average when the description was taken (other work on the machine). */
  loadAverage1m: number;
  date: string;
}

function torchVersion(): string {
  const py = torchPython(false);
  if (!py.ok) return `missing (${py.reason})`;
  const r = spawnSync(py.python, ['-c', 'import torch; print(torch.__version__)'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return r.status === 0 ? r.stdout.trim() : 'missing (torch does not import)';
}

export async function describeMachine(): Promise<MachineInfo> {
  const report = await initBackend();
  const skipped = Object.fromEntries(report.skipped.map((s) => [s.name, s.reason]));
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    ramGiB: Math.round((10 * totalmem()) / 2 ** 30) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    tfjs: tf.version.tfjs,
    tfjsBackends: BACKENDS.filter((b) => !(b in skipped)),
    tfjsUnavailable: skipped,
    torch: torchVersion(),
    loadAverage1m: Math.round(100 * loadavg()[0]!) / 100,
    date: new Date().toISOString(),
  };
}

export function machineLines(m: MachineInfo): string[] {
  return [
    `- CPU: ${m.cpuModel}, ${m.cores} cores; RAM ${m.ramGiB} GiB; ${m.os}`,
    `- node ${m.node}; tfjs ${m.tfjs}, backends available: ${m.tfjsBackends.join(', ')}` +
      (Object.keys(m.tfjsUnavailable).length
        ? ` (not: ${Object.keys(m.tfjsUnavailable).join(', ')})`
        : ''),
    `- torch: ${m.torch}`,
    `- load average (1 min) at ${m.date}: ${m.loadAverage1m}`,
  ];
}
