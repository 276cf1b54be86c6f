// `robustsbi worker --metrics host:port` against the real stack (issue 23): scraped while a small
// sweep runs, its one endpoint shows robustsbi's trials completed rising to the sweep's count, the
// work counters and activity durations, and the Temporal SDK's task-queue metrics merged in.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { sweepIdOf } from '../../sweeps/expand.js';
import { freePort, robustsbi, sharedStackEnv, spawnRobustsbi } from './harness.js';
import {
  NOISE_EVALUATION,
  HEALTHY_MAF,
  openSweepTestContext,
  sleep,
  tinySpec,
  until,
  type SweepTestContext,
} from './sweep-harness.js';

let ctx: SweepTestContext;
let worker: ChildProcess | undefined;

before(async () => {
  ctx = await openSweepTestContext();
});

after(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  await ctx?.close();
});

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** A port whose successor is free too (the SDK's exporter takes it). */
async function metricsPort(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p < 65535 && (await portFree(p + 1))) return p;
  }
}

/** The value of the sample `series` (name and labels as written), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('one scrape endpoint: robustsbi trials rising and the SDK task-queue metrics', async () => {
  const port = await metricsPort();
  const url = `http://127.0.0.1:${port}/metrics`;
  let err = '';
  worker = spawnRobustsbi(
    [
      'worker',
      '--queue',
      'cpu',
      '--queue-prefix',
      ctx.queuePrefix,
      '--metrics',
      `127.0.0.1:${port}`,
    ],
    sharedStackEnv(),
  );
  worker.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await until('the worker polls', async () => /polling task queue/.test(err), 60_000);
  assert.match(
    err,
    new RegExp(`metrics at ${url.replace(/[.]/g, '\\.')} \\(Temporal SDK exporter`),
  );

  const scrape = async () => {
    const r = await fetch(url);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return r.text();
  };
  const first = await scrape();
  assert.equal(sample(first, 'robustsbi_trials_completed_total'), 0);

  // Two trials, one at a time, so that scrapes in between see the count rise.
  const spec = tinySpec({
    name: 'metrics',
    estimators: [HEALTHY_MAF],
    evaluation: NOISE_EVALUATION,
    concurrency: 1,
  });
  await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix });
  const seen: number[] = [];
  let done = false;
  const watching = (async () => {
    while (!done) {
      seen.push(sample(await scrape(), 'robustsbi_trials_completed_total') ?? -1);
      await sleep(150);
    }
  })();
  const final = await waitForSweep(ctx.client, sweepIdOf(spec), () => {}, 300);
  done = true;
  await watching;
  assert.equal(final.state, 'completed');
  const text = await scrape();
  seen.push(sample(text, 'robustsbi_trials_completed_total')!);

  assert.equal(seen[seen.length - 1], 2);
  assert.ok(
    seen.every((v, i) => i === 0 || v >= seen[i - 1]!),
    `never falls: ${seen.join(' ')}`,
  );
  assert.ok(seen[0]! < 2, `rose during the sweep: ${seen.join(' ')}`);
  // What the sweep did, by kind: simulations (train + test sets), training rows, points scored.
  assert.ok(sample(text, 'robustsbi_simulations_total')! >= 300);
  assert.ok(sample(text, 'robustsbi_training_rows_total')! > 0);
  assert.equal(sample(text, 'robustsbi_evaluation_points_total'), 2 * NOISE_EVALUATION.nTest);
  assert.equal(
    sample(text, 'robustsbi_activity_duration_seconds_count{activity="trainMany",outcome="ok"}'),
    2,
  );
  assert.match(text, /^# TYPE robustsbi_activity_duration_seconds histogram$/m);

  // The SDK's own metrics, labelled with this test's task queue.
  const queue = `${ctx.queuePrefix}cpu`;
  for (const name of [
    'temporal_workflow_task_schedule_to_start_latency_bucket',
    'temporal_activity_schedule_to_start_latency_bucket',
    'temporal_num_pollers',
  ])
    assert.match(
      text,
      new RegExp(`^${name}\\{[^}]*task_queue="${queue}"`, 'm'),
      `${name} for ${queue}`,
    );

  // `infra status` says where the metrics are, and that a worker answers there.
  const status = robustsbi(['infra', 'status'], {
    ...sharedStackEnv(),
    ROBUSTSBI_METRICS_ADDR: `127.0.0.1:${port}`,
  });
  assert.equal(status.code, 0, status.stderr);
  assert.match(
    status.stdout,
    new RegExp(`^metrics +${url.replace(/[.]/g, '\\.')} .*: a worker answers$`, 'm'),
  );

  const exited = new Promise((resolve) => worker!.once('exit', resolve));
  worker.kill('SIGTERM');
  await exited;
});
