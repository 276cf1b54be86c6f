// The worker supervisor with stand-in children (`node -e` scripts), so that its restart, give-up and
// drain logic runs on real processes without a stack; test/integration/worker-processes.test.ts runs
// it with real workers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PROCESS_INDEX_ENV,
  ProcessesError,
  STARTED_MARK,
  parseProcesses,
  runSupervisor,
  withoutProcessesOption,
} from '../../../workers/supervisor.js';

describe('--processes', () => {
  test('takes 1..cores and auto', () => {
    assert.equal(parseProcesses('1', 2), 1);
    assert.equal(parseProcesses('2', 2), 2);
    assert.equal(parseProcesses('auto', 4), 4);
    assert.equal(parseProcesses(' AUTO ', 3), 3);
  });
  test('refuses 0, a non-number and more than the cores, each in one sentence', () => {
    const sentence = (text: string) => {
      try {
        parseProcesses(text, 2);
      } catch (e) {
        assert.ok(e instanceof ProcessesError);
        return e.message;
      }
      assert.fail(`accepted ${text}`);
    };
    assert.match(sentence('0'), /^--processes must be at least 1 \(got 0\)/);
    assert.match(sentence('two'), /^--processes must be a whole number .*\(got "two"\)\.$/);
    assert.match(sentence('1.5'), /whole number/);
    assert.match(sentence('-1'), /whole number/);
    assert.match(sentence('3'), /^--processes 3 is more than the 2 cores available here/);
    for (const t of ['0', 'two', '3']) assert.equal(sentence(t).split(/\.\s/).length, 1);
  });
  test('is dropped from the argv the children get', () => {
    assert.deepEqual(
      withoutProcessesOption(['--queue', 'cpu', '--processes', '2', '--concurrency', '1']),
      ['--queue', 'cpu', '--concurrency', '1'],
    );
    assert.deepEqual(withoutProcessesOption(['--processes=auto', '--queue', 'gpu']), [
      '--queue',
      'gpu',
    ]);
  });
});

/**
 * A child that announces its start like a worker and then waits for a signal. Its SIGTERM handler
 * is in place before it announces: the test stops the supervisor as soon as a child has started.
 */
const healthy = `process.on('SIGTERM', () => { console.error('bye'); process.exit(0); });
console.error('${STARTED_MARK} q as ' + process.env.${PROCESS_INDEX_ENV});
setInterval(() => {}, 1000);`;

describe('runSupervisor', () => {
  test('gives up with one sentence when a child keeps dying before it starts', async () => {
    const lines: string[] = [];
    const r = await runSupervisor({
      processes: 2,
      command: process.execPath,
      args: ['-e', "console.error('cannot start'); process.exit(3)"],
      write: (l) => lines.push(l),
      backoffMs: 1,
      maxEarlyDeaths: 3,
    });
    assert.equal(r.code, 1);
    assert.match(
      r.reason ?? '',
      /^Worker process [12] died 3 times in a row before it polled its task queue \(last: exit code 3, "cannot start"\), so the supervisor stopped\.$/,
    );
    assert.ok(lines.some((l) => /^\[worker 1 pid \d+\] cannot start$/.test(l)));
  });

  test('labels lines, restarts a killed child, and stops every child on abort', async () => {
    const lines: string[] = [];
    const stop = new AbortController();
    let killed = false;
    const pids = new Set<number>();
    const done = runSupervisor(
      {
        processes: 2,
        command: process.execPath,
        args: ['-e', healthy],
        write: (l) => {
          lines.push(l);
          const m = /^\[worker (\d) pid (\d+)\] .*polling task queue/.exec(l);
          if (!m) return;
          pids.add(Number(m[2]));
          // Kill worker 1 once both have started; stop once its replacement has started.
          if (!killed && pids.size === 2) {
            killed = true;
            const first = lines.find((x) => x.startsWith('[worker 1 pid'))!;
            process.kill(Number(/pid (\d+)/.exec(first)![1]), 'SIGKILL');
          } else if (killed && pids.size === 3) stop.abort();
        },
        backoffMs: 1,
      },
      stop.signal,
    );
    const r = await done;
    assert.equal(r.code, 0);
    assert.deepEqual(r.restarts, [1, 0]);
    assert.ok(
      lines.some((l) => /worker 1 \(pid \d+\) died \(killed by SIGKILL\); restarting/.test(l)),
    );
    assert.ok(
      lines.some((l) => /^\[worker 2 pid \d+\] .* as 2$/.test(l)),
      'the index reaches the child',
    );
    assert.equal(lines.filter((l) => / bye$/.test(l)).length, 2, 'both children got SIGTERM');
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'no child left running');
  });
});
