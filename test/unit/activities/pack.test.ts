// The pack activities (activities/pack.ts) over stand-in single-trial activities, in the SDK's
// activity context: an item that fails for good becomes that item's outcome, anything else fails the
// whole call (for Temporal to retry), items run in order with a heartbeat between them, a cancelled
// pack stops between items, and the store writes keep the order of their inputs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { packActivities, type TrialStepActivities } from '../../../activities/pack.js';
import type { ClaimResult, EndTrialInput } from '../../../activities/persist.js';
import type { SimulateInput, SimulateResult } from '../../../activities/simulate.js';
import { FAILURE_TYPES, FINAL_FAILURE_TYPES } from '../../../sweeps/failures.js';

const simInput = (id: string): SimulateInput => ({
  purpose: 'train',
  task: 'gaussian_linear',
  n: 10,
  seed: 1,
  id,
});
const simResult = (id: string): SimulateResult => ({
  artifact: `simulations/${id}`,
  n: 10,
  dropped: 0,
  cached: false,
});

/** Stand-ins whose simulate fails as told by the item's id. */
function steps(log: string[], onSimulate?: (id: string) => void): TrialStepActivities {
  const unused = () => Promise.reject(new Error('not used here'));
  return {
    simulate: async (x) => {
      log.push(x.id);
      onSimulate?.(x.id);
      if (x.id === 'diverges')
        throw ApplicationFailure.create({
          type: FAILURE_TYPES.diverged,
          message: 'NaN',
          nonRetryable: true,
        });
      if (x.id === 'bad-config') {
        const e = new Error('Trial t is not registered.');
        e.name = FAILURE_TYPES.notFound;
        throw e;
      }
      if (x.id === 'retryable-app')
        throw ApplicationFailure.create({ type: 'Busy', message: 'try again' });
      if (x.id === 'connection') throw new Error('ECONNREFUSED');
      return simResult(x.id);
    },
    train: unused,
    evaluate: unused,
    claimTrial: async ({ trialId }) => {
      // Later items answer first: the results must still come back in input order.
      await new Promise((r) => setTimeout(r, 20 - Number(trialId.slice(1))));
      log.push(trialId);
      return trialId === 't0' ? { skip: true, status: 'completed' } : { skip: false, attempt: 3 };
    },
    completeTrial: async (x) => `applied ${x.trialId}`,
    endTrial: async (x) => `${x.status} ${x.trialId}`,
  };
}

describe('pack activities', () => {
  test('items that fail for good are outcomes; the others go on, in order', async () => {
    const log: string[] = [];
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const acts = packActivities(steps(log), FINAL_FAILURE_TYPES);
    const out = await env.run(acts.simulateMany, {
      items: ['a', 'diverges', 'b', 'bad-config', 'c'].map(simInput),
    });
    assert.deepEqual(log, ['a', 'diverges', 'b', 'bad-config', 'c']);
    assert.deepEqual(out, [
      { ok: simResult('a') },
      { error: { type: FAILURE_TYPES.diverged, message: 'NaN', nonRetryable: true } },
      { ok: simResult('b') },
      {
        error: {
          type: FAILURE_TYPES.notFound,
          message: 'Trial t is not registered.',
          nonRetryable: true,
        },
      },
      { ok: simResult('c') },
    ]);
    assert.deepEqual(
      beats,
      [1, 2, 3, 4].map((item) => ({ item, of: 5 })),
    );
  });

  test('an error a retry may fix fails the whole call', async () => {
    for (const id of ['retryable-app', 'connection']) {
      const log: string[] = [];
      const acts = packActivities(steps(log), FINAL_FAILURE_TYPES);
      await assert.rejects(
        new MockActivityEnvironment().run(acts.simulateMany, {
          items: ['a', id, 'b'].map(simInput),
        }),
        id === 'connection' ? /ECONNREFUSED/ : /try again/,
      );
      assert.deepEqual(log, ['a', id], 'nothing after the failing item ran');
    }
  });

  test('a cancelled pack stops between items', async () => {
    const log: string[] = [];
    const env = new MockActivityEnvironment();
    const acts = packActivities(
      steps(log, (id) => {
        if (id === 'b') env.cancel();
      }),
      FINAL_FAILURE_TYPES,
    );
    await assert.rejects(env.run(acts.simulateMany, { items: ['a', 'b', 'c'].map(simInput) }));
    assert.deepEqual(log, ['a', 'b']);
  });

  test('store writes run concurrently and answer in input order', async () => {
    const log: string[] = [];
    const acts = packActivities(steps(log), FINAL_FAILURE_TYPES);
    const ids = Array.from({ length: 12 }, (_, i) => `t${i}`);
    const claims: ClaimResult[] = await new MockActivityEnvironment().run(acts.claimTrials, {
      trialIds: ids,
    });
    assert.deepEqual(claims[0], { skip: true, status: 'completed' });
    assert.deepEqual(
      claims.slice(1),
      ids.slice(1).map(() => ({ skip: false, attempt: 3 })),
    );
    assert.notDeepEqual(log, ids, 'the claims overlapped');
    assert.deepEqual([...log].sort(), [...ids].sort());
    const items: EndTrialInput[] = [
      { trialId: 'x', attempt: 1, status: 'failed' },
      { trialId: 'y', attempt: 1, status: 'cancelled' },
    ];
    const ended = await new MockActivityEnvironment().run(acts.endTrials, { items });
    assert.deepEqual(ended, ['failed x', 'cancelled y']);
  });
});
