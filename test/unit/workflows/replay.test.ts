// The sweep workflows replay histories recorded by earlier code (test/replay/histories/<commit>/,
// made by test/replay/record-histories.ts): sweeps and trials running when workers are upgraded go
// on under the new code, which must issue the same commands at every step of an old history, or the
// run fails with a nondeterminism error. One folder per recorded code version.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import proto from '@temporalio/proto';
import {
  DefaultLogger,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { sweepWorkflowBundle } from '../../../workers/bundle.js';

/** test/replay/histories in the source tree (this file runs from dist/test/unit/workflows). */
const historiesDir = fileURLToPath(new URL('../../../../test/replay/histories', import.meta.url));

type History = ReturnType<typeof proto.temporal.api.history.v1.History.decode>;

function loadHistories(): { version: string; file: string; history: History }[] {
  const out = [];
  for (const version of readdirSync(historiesDir).sort()) {
    for (const file of readdirSync(join(historiesDir, version)).sort()) {
      if (!file.endsWith('.pb')) continue;
      const bytes = readFileSync(join(historiesDir, version, file));
      out.push({ version, file, history: proto.temporal.api.history.v1.History.decode(bytes) });
    }
  }
  return out;
}

/** The type of the workflow a history ran. */
function workflowType(h: History): string {
  return h.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? '?';
}

let bundle: WorkflowBundleWithSourceMap;
const histories = loadHistories();

before(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  bundle = await sweepWorkflowBundle();
});

describe('recorded histories', () => {
  test('cover sweeps, trials and packs, completed, failed and cancelled', () => {
    const types = new Set(histories.map((h) => workflowType(h.history)));
    assert.deepEqual([...types].sort(), ['sweepWorkflow', 'trialPackWorkflow', 'trialWorkflow']);
    const ends = new Set<string>(
      histories.map(({ history }) => {
        const last = history.events?.[history.events.length - 1];
        if (last?.workflowExecutionCompletedEventAttributes) return 'completed';
        if (last?.workflowExecutionFailedEventAttributes) return 'failed';
        if (last?.workflowExecutionCanceledEventAttributes) return 'cancelled';
        return 'other';
      }),
    );
    for (const end of ['completed', 'failed', 'cancelled']) assert.ok(ends.has(end), end);
  });

  test('cover a sweep that computes adversarial examples after its trials', () => {
    const activities = histories
      .filter(
        (h) => h.version === 'adversarial-examples' && workflowType(h.history) === 'sweepWorkflow',
      )
      .flatMap(({ history }) =>
        (history.events ?? []).map(
          (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? '',
        ),
      )
      .filter((name) => name !== '');
    // One examples activity per trial (a batch of one at two trials), before the aggregation.
    assert.deepEqual(
      activities.filter((a) => a === 'adversarialExamples' || a === 'aggregate'),
      ['adversarialExamples', 'adversarialExamples', 'aggregate'],
    );
  });

  for (const { version, file, history } of histories) {
    test(
      `${version}/${file} (${workflowType(history)}) replays without nondeterminism`,
      {
        timeout: 120_000,
      },
      async () => {
        await Worker.runReplayHistory({ workflowBundle: bundle }, history, `${version}/${file}`);
      },
    );
  }
});
