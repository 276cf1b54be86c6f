// The sweep workflows' bundle, built once per process with bundleWorkflowCode (webpack) and shared by
// every worker of the process, instead of each Worker.create bundling from workflowsPath.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  DefaultLogger,
  bundleWorkflowCode,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';

/** workflows/index: compiled JS when built, the TS source under tsx. */
export function sweepWorkflowsPath(): string {
  const js = fileURLToPath(new URL('../workflows/index.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
}

let cached: Promise<WorkflowBundleWithSourceMap> | undefined;

export function sweepWorkflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  cached ??= bundleWorkflowCode({
    workflowsPath: sweepWorkflowsPath(),
    logger: new DefaultLogger('WARN'),
  }).catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}
