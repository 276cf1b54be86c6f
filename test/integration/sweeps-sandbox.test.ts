// sweeps/ inside the real workflow sandbox: bundled by Temporal's webpack (no node: built-ins, no ajv)
// and computing the same sweep, trial and evaluation IDs as the client does.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig } from '../../infra/config.js';
import { temporalConnectionOptions } from '../../infra/connections.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import { parseSweepSpec } from '../../sweeps/validate.js';
import { sharedStackEnv } from './harness.js';
import type { SweepIds } from './workflows/sweep-ids.js';

function workflowsPath(): string {
  const js = fileURLToPath(new URL('./workflows/sweep-ids.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('./workflows/sweep-ids.ts', import.meta.url));
}

function rootFile(rel: string): string {
  // From source: test/integration -> root; compiled: dist/test/integration -> dist -> root.
  for (const up of ['../../', '../../../']) {
    const p = fileURLToPath(new URL(`${up}${rel}`, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error(`${rel} not found`);
}

test('a workflow expands the example specs to the IDs the client computes', async () => {
  const config = loadConfig(sharedStackEnv());
  const opts = temporalConnectionOptions(config);
  const native = await NativeConnection.connect(opts);
  const conn = await Connection.connect(opts);
  try {
    const client = new Client({ connection: conn, namespace: config.temporal.namespace });
    const taskQueue = `robustsbi-sweep-ids-${randomUUID()}`;
    const worker = await Worker.create({
      connection: native,
      namespace: config.temporal.namespace,
      taskQueue,
      workflowsPath: workflowsPath(),
    });
    await worker.runUntil(async () => {
      for (const file of ['sweeps/demo.json', 'sweeps/paper-sir.json']) {
        const spec = parseSweepSpec(readFileSync(rootFile(file), 'utf8'));
        const trials = expandSweep(spec);
        const got = (await client.workflow.execute('sweepIdsWorkflow', {
          taskQueue,
          workflowId: `sweep-ids-${randomUUID()}`,
          args: [spec],
          workflowExecutionTimeout: '2 minutes',
        })) as SweepIds;
        assert.equal(got.sweepId, sweepIdOf(spec), file);
        assert.deepEqual(
          got.trialIds,
          trials.map((t) => t.trialId),
          file,
        );
        assert.deepEqual(
          got.evalIds,
          evaluationPlan(trials.at(-1)!).map((e) => e.evalId),
          file,
        );
      }
    });
  } finally {
    await conn.close().catch(() => {});
    await native.close().catch(() => {});
  }
});
