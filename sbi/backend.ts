// Tensor backend selection. Everything in sbi/ imports `tf` from here so that one module decides
// which kernels run. Native backends are optional packages (their install downloads libtensorflow),
// so each is tried and skipped with the reason kept for the report.
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { BackendUnavailableError, InvalidSettingError } from './errors.js';
import { installWasmKernels } from './wasm-kernels.js';

export { tf };

export const BACKENDS = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendReport {
  /** The backend that runs the kernels. */
  name: BackendName;
  /** The tfjs registry name (tensorflow, wasm, cpu). */
  tfName: string;
  /** Why each preferred backend before it was not taken. */
  skipped: { name: BackendName; reason: string }[];
}

const require = createRequire(import.meta.url);
let current: BackendReport | undefined;

export function isBackendName(s: string): s is BackendName {
  return (BACKENDS as readonly string[]).includes(s);
}

async function tryBackend(name: BackendName): Promise<string> {
  switch (name) {
    case 'tfjs-node-gpu':
    case 'tfjs-node': {
      // Loading the package registers the 'tensorflow' backend; it throws when libtensorflow is absent.
      require(`@tensorflow/${name}`);
      if (!(await tf.setBackend('tensorflow'))) throw new Error('setBackend(tensorflow) failed');
      return 'tensorflow';
    }
    case 'wasm':
      if (!(await tf.setBackend('wasm'))) throw new Error('setBackend(wasm) failed');
      installWasmKernels();
      return 'wasm';
    case 'cpu':
      if (!(await tf.setBackend('cpu'))) throw new Error('setBackend(cpu) failed');
      return 'cpu';
  }
}

/**
 * Selects the tensor backend. `force` (or the ROBUSTSBI_BACKEND environment variable) names one
 * backend and fails if it cannot be loaded; otherwise the first that loads of tfjs-node-gpu,
 * tfjs-node, wasm, cpu is taken.
 */
export async function initBackend(force?: string): Promise<BackendReport> {
  const wanted = force ?? process.env.ROBUSTSBI_BACKEND;
  // PROD silences the "install tfjs-node" banner. Not IS_TEST: that turns on tfjs' per-kernel leak
  // check, which on wasm rejects every customGrad that saves a tensor (tf.logSoftmax's gradient too).
  tf.env().set('PROD', true);
  if (wanted !== undefined && wanted !== '' && wanted !== 'auto') {
    if (!isBackendName(wanted)) {
      throw new InvalidSettingError(
        `Unknown backend "${wanted}": use one of ${BACKENDS.join(', ')} or auto.`,
      );
    }
    if (current?.name === wanted) return current;
    try {
      const tfName = await tryBackend(wanted);
      await tf.ready();
      current = { name: wanted, tfName, skipped: [] };
      return current;
    } catch (e) {
      throw new BackendUnavailableError(
        `Backend "${wanted}" is not available here: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
  }
  if (current) return current;
  const skipped: BackendReport['skipped'] = [];
  for (const name of BACKENDS) {
    try {
      const tfName = await tryBackend(name);
      await tf.ready();
      current = { name, tfName, skipped };
      return current;
    } catch (e) {
      skipped.push({ name, reason: firstLine((e as Error).message) });
    }
  }
  throw new Error(`No tensor backend could be loaded: ${JSON.stringify(skipped)}`);
}

/**
 * Whether tensors live in host memory (wasm, cpu): there, work outside tfjs (host Adam, the fused
 * kernels) needs no device round trip.
 */
export function onHostBackend(): boolean {
  const b = tf.getBackend();
  return b === 'wasm' || b === 'cpu';
}

/**
 * tf.tidy for a body that reads data out (dataSync): tf.tidy walks whatever its body returns, looking
 * for tensors to keep, and walks a typed array element by element (about 0.2 us each: 19 ms for
 * 100,000 floats, where leaving the tidy through a closure takes 0.2 ms). Returns what fn returns.
 */
export function tidyData<T>(fn: () => T): T {
  let out: { value: T } | undefined;
  tf.tidy(() => {
    out = { value: fn() };
  });
  return out!.value;
}

export function currentBackend(): BackendReport | undefined {
  return current;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
