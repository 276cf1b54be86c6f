// The simulate activity over a dataset of several blocks: asked for the whole, it answers with the
// block count and stores nothing; each block is then drawn (and kept) alone, a block already kept
// is not drawn again, and the last call joins them by reference. Read back, the dataset is byte for
// byte the one drawn in a single process, whatever order the blocks were drawn in.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ActivityDeps } from '../../../activities/deps.js';
import {
  drawDataset,
  loadDataset,
  simulate,
  type SimulateInput,
} from '../../../activities/simulate.js';
import { createLogger } from '../../../infra/logger.js';
import { encodeSimulations } from '../../../sbi/simulation-file.js';
import { getTask } from '../../../sbi/tasks/index.js';
import type { Task } from '../../../sbi/types.js';
import { memoryArtifacts, type MemoryArtifacts } from './memory-artifacts.js';

/** gaussian_linear with blocks of 40 rows. */
const blocked = (name: string): Task =>
  Object.create(getTask(name), { simulationBlock: { value: 40 } }) as Task;

function deps(artifacts: MemoryArtifacts): ActivityDeps {
  return {
    store: {} as ActivityDeps['store'],
    artifacts,
    logger: createLogger({ level: 'warn', console: false }),
    codeVersion: 'test',
    backend: 'cpu',
    getTask: blocked,
  };
}

const input: SimulateInput = {
  purpose: 'train',
  task: 'gaussian_linear',
  n: 130,
  seed: 9,
  id: 'sims-blocked',
};

describe('the simulate activity on a dataset of blocks', () => {
  test('answers with its blocks, draws each alone, then joins them into the one-process bytes', async () => {
    const artifacts = memoryArtifacts();
    const d = deps(artifacts);
    const first = await simulate(d, input);
    assert.equal(first.blocks, 4);
    assert.deepEqual(artifacts.names(), [], 'nothing stored before the blocks are drawn');

    for (const block of [2, 0, 3]) {
      const r = await simulate(d, { ...input, block });
      assert.equal(r.cached, false);
      assert.equal(r.n, block === 3 ? 10 : 40);
    }
    // Not every block yet: still no dataset.
    assert.equal((await simulate(d, input)).blocks, 4);
    await simulate(d, { ...input, block: 1 });
    // A block drawn again (its first activity's worker died after storing it) is read, not redrawn.
    assert.equal((await simulate(d, { ...input, block: 1 })).cached, true);

    const joined = await simulate(d, input);
    assert.equal(joined.blocks, undefined);
    assert.equal(joined.n, 130);
    assert.equal((await simulate(d, input)).cached, true);

    const back = await loadDataset(d, input);
    assert.deepEqual(encodeSimulations(back), encodeSimulations(drawDataset(input, d)));
    // By reference: the dataset's artifact is a short list, the rows stay in the blocks.
    const list = await artifacts.get('sims/sims-blocked');
    assert.ok(list!.length < 200, `${list!.length} bytes`);
  });

  test('draws a run of blocks in one call, keeping each, and joins them like single ones', async () => {
    const artifacts = memoryArtifacts();
    const d = deps(artifacts);
    const run = await simulate(d, { ...input, block: 1, lastBlock: 3 });
    assert.deepEqual([run.n, run.cached], [90, false]);
    assert.equal((await simulate(d, { ...input, block: 0 })).n, 40);
    assert.equal((await simulate(d, { ...input, block: 2, lastBlock: 3 })).cached, true);
    assert.equal((await simulate(d, input)).n, 130);
    const back = await loadDataset(d, input);
    assert.deepEqual(encodeSimulations(back), encodeSimulations(drawDataset(input, d)));
  });

  test('loadDataset draws the blocks itself when nothing is stored', async () => {
    const a = memoryArtifacts();
    const back = await loadDataset(deps(a), { ...input, purpose: 'test', id: 'test-blocked' });
    const drawn = drawDataset({ ...input, purpose: 'test', id: 'test-blocked' }, deps(a));
    assert.deepEqual(encodeSimulations(back), encodeSimulations(drawn));
    assert.equal(a.names().filter((n) => n.includes('/block-')).length, 4);
  });
});
