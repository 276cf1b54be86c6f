// `robustsbi worker --processes 2` against the real stack: two worker processes under a supervisor
// run a sweep while one of them is SIGKILLed; the supervisor restarts it, the sweep completes, and a
// SIGTERM to the supervisor stops every child.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { submitSweep, waitForSweep } from '../../cli/sweep-client.js';
import { sweepIdOf } from '../../sweeps/expand.js';
import { robustsbi, sharedStackEnv, spawnRobustsbi } from './harness.js';
import { openSweepTestContext, tinySpec, until, type SweepTestContext } from './sweep-harness.js';

let ctx: SweepTestContext;
let supervisor: ChildProcess | undefined;

before(async () => {
  ctx = await openSweepTestContext();
});

after(async () => {
  if (supervisor && supervisor.exitCode === null && supervisor.signalCode === null)
    supervisor.kill('SIGKILL');
  await ctx?.close();
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test(
  'two worker processes: a killed one is restarted, the sweep completes, SIGTERM stops all',
  { skip: availableParallelism() < 2 ? 'needs 2 cores for --processes 2' : false },
  async () => {
    let out = '';
    supervisor = spawnRobustsbi(
      ['worker', '--queue', 'cpu', '--processes', '2', '--queue-prefix', ctx.queuePrefix],
      sharedStackEnv(),
    );
    supervisor.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) =>
      supervisor!.once('exit', (code) => resolve(code)),
    );
    const polling = () => [...out.matchAll(/^\[worker (\d) pid (\d+)\] .*polling task queue/gm)];
    await until('both worker processes poll', async () => polling().length >= 2);
    const firstPids = polling().map((m) => Number(m[2]));

    const spec = tinySpec();
    // The plan measures this host's rates first, so that `sweep status` can set them against the run.
    const specFile = join(mkdtempSync(join(tmpdir(), 'robustsbi-procs-')), 'spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
    const plan = robustsbi(['sweep', 'plan', specFile, '--processes', '2'], sharedStackEnv());
    assert.equal(plan.code, 0, plan.stderr);
    await submitSweep(ctx.client, spec, { queuePrefix: ctx.queuePrefix, heartbeatTimeout: '4s' });
    // Kill worker 1 once a trial has started work somewhere.
    await until('an activity has run', async () => /\[activity\]/.test(out));
    const victim = Number(polling().find((m) => m[1] === '1')![2]);
    process.kill(victim, 'SIGKILL');
    await until('worker 1 is restarted', async () =>
      polling().some((m) => m[1] === '1' && Number(m[2]) !== victim),
    );
    assert.match(out, /worker 1 \(pid \d+\) died \(killed by SIGKILL\); restarting it/);

    const final = await waitForSweep(ctx.client, sweepIdOf(spec), () => {}, 500);
    assert.equal(final.state, 'completed', out);
    assert.equal(final.completed, 2);

    const status = robustsbi(['sweep', 'status', sweepIdOf(spec)], sharedStackEnv());
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /^estimate vs ran \(2 of 2 trials completed\): training .* at maxEpochs.* vs .* ran .*; evaluation .* vs .* in the 8 records' own timings; wall .* on 1 worker process, .* on \d+, vs .* from submission to the last trial$/m,
    );

    const allPids = [...new Set([...firstPids, ...polling().map((m) => Number(m[2]))])];
    supervisor.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.match(out, /all 2 worker processes stopped/);
    for (const pid of allPids) assert.equal(alive(pid), false, `worker pid ${pid} still runs`);
  },
);
