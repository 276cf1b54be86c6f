import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TrialDoc } from '../../../results/documents.js';
import {
  applyTableQuery,
  columnsOf,
  flattenConfig,
  klColumn,
  matches,
  parseFilter,
  parseTableQuery,
  QueryError,
  trialRow,
  withTags,
  type Row,
} from '../../../results/trial-table.js';
import { evaluation, lcg } from './fixtures.js';

function trial(i: number, over: Partial<TrialDoc> = {}): TrialDoc {
  const t0 = new Date(Date.UTC(2026, 0, 1));
  return {
    _id: `t${String(i).padStart(3, '0')}`,
    sweepIds: ['s'],
    config: {
      task: 'gaussian_linear',
      estimator: 'maf',
      defense: i % 2 === 0 ? 'none' : 'fim',
      beta: i % 2 === 0 ? 0 : 0.1 * i,
      budget: 1000,
      seed: i,
      architecture: { hidden: [16, 16], numTransforms: 2 },
    },
    status: 'completed',
    attempt: 1,
    summary: { testNll: 10 - i, valLoss: 1, epochs: 5, trainSeconds: 2, droppedSims: 0 },
    codeVersion: 'test',
    createdAt: t0,
    updatedAt: t0,
    startedAt: t0,
    endedAt: new Date(t0.getTime() + 1000 * (i + 1)),
    ...over,
  };
}

const q = (s: string) => parseTableQuery(new URLSearchParams(s));

describe('trial table rows', () => {
  test('flattenConfig: nested objects as dotted keys, arrays as JSON text', () => {
    assert.deepEqual(flattenConfig({ a: 1, b: { c: 'x', d: [1, 2] }, e: null }), {
      'config.a': 1,
      'config.b.c': 'x',
      'config.b.d': '[1,2]',
      'config.e': null,
    });
  });

  test('a row holds status, attempts, duration, config, metrics and the mean KL per eps', () => {
    const rand = lcg(3);
    const evals = [
      evaluation('t001', 'l2pgd', 'rkl', 0.5, rand),
      evaluation('t001', 'l2pgd', 'rkl', 1, rand),
    ];
    const r = trialRow(trial(1), evals, 7);
    assert.equal(r.id, 't001');
    assert.equal(r.index, 7);
    assert.equal(r.status, 'completed');
    assert.equal(r.attempt, 1);
    assert.equal(r.duration, 2);
    assert.equal(r['config.defense'], 'fim');
    assert.equal(r['config.architecture.hidden'], '[16,16]');
    assert.equal(r.testNll, 9);
    assert.equal(r[klColumn('l2pgd', 'rkl', 0.5)], evals[0]!.kl.mean);
    assert.equal(r[klColumn('l2pgd', 'rkl', 1)], evals[1]!.kl.mean);
    assert.equal(r.error, null);
  });

  test('non-finite metrics become empty cells; a failure is its type and message', () => {
    const r = trialRow(
      trial(2, {
        status: 'failed',
        summary: undefined,
        endedAt: undefined,
        error: { type: 'DivergedError', message: 'NaN at epoch 3', nonRetryable: true },
      }),
      [],
      0,
    );
    assert.equal(r.testNll, null);
    assert.equal(r.duration, null);
    assert.equal(r.error, 'DivergedError: NaN at epoch 3');
    const nan = trialRow(
      trial(3, {
        summary: { testNll: NaN, valLoss: Infinity, epochs: 1, trainSeconds: 1, droppedSims: 0 },
      }),
      [],
      0,
    );
    assert.equal(nan.testNll, null);
    assert.equal(nan.valLoss, null);
  });

  test('columns: identity first, then config, metrics, KL, tags; numeric and varying flags', () => {
    const rand = lcg(4);
    const rows = withTags(
      [0, 1, 2].map((i) => trialRow(trial(i), [evaluation(`t00${i}`, 'noise', 'rkl', 1, rand)], i)),
      new Map([['t001', { group: '<b>x</b>' }]]),
    );
    const cols = columnsOf(rows);
    const keys = cols.map((c) => c.key);
    assert.deepEqual(keys.slice(0, 5), ['id', 'index', 'status', 'attempt', 'duration']);
    assert.ok(keys.indexOf('config.beta') < keys.indexOf('testNll'));
    assert.ok(keys.indexOf('testNll') < keys.indexOf(klColumn('noise', 'rkl', 1)));
    assert.ok(keys.indexOf(klColumn('noise', 'rkl', 1)) < keys.indexOf('tag.group'));
    const byKey = new Map(cols.map((c) => [c.key, c]));
    assert.equal(byKey.get('config.beta')!.numeric, true);
    assert.equal(byKey.get('config.beta')!.varies, true);
    assert.equal(byKey.get('config.task')!.numeric, false);
    assert.equal(byKey.get('config.task')!.varies, false);
    assert.equal(byKey.get('tag.group')!.varies, true, 'present in one row only');
    assert.equal(rows[1]!['tag.group'], '<b>x</b>');
  });
});

describe('trial table queries', () => {
  const rows: Row[] = Array.from({ length: 120 }, (_, i) => trialRow(trial(i), [], i));

  test('parseFilter reads COLUMN OP VALUE for every operator', () => {
    assert.deepEqual(parseFilter('config.defense=fim'), {
      column: 'config.defense',
      op: '=',
      value: 'fim',
    });
    assert.deepEqual(parseFilter('testNll<=3.5'), { column: 'testNll', op: '<=', value: '3.5' });
    assert.deepEqual(parseFilter('kl.l2pgd.rkl@0.5>1'), {
      column: 'kl.l2pgd.rkl@0.5',
      op: '>',
      value: '1',
    });
    assert.deepEqual(parseFilter('tag.note~a=b'), { column: 'tag.note', op: '~', value: 'a=b' });
    assert.deepEqual(parseFilter('status!=failed'), {
      column: 'status',
      op: '!=',
      value: 'failed',
    });
    assert.throws(() => parseFilter('no operator'), QueryError);
  });

  test('parseTableQuery: defaults, bounds and one sentence for bad values', () => {
    assert.deepEqual(q(''), { filters: [], sort: 'index', dir: 'asc', page: 1, size: 50 });
    assert.equal(q('size=100000').size, 5000);
    assert.throws(() => q('dir=up'), /dir must be asc or desc/);
    assert.throws(() => q('page=0'), /page must be a positive integer/);
    assert.throws(() => q('sort=a%20b'), /sort must name a column/);
  });

  test('numbers compare as numbers, text as text, ~ is a case-blind substring', () => {
    assert.ok(matches(10, { column: 'x', op: '>', value: '9' }));
    assert.ok(!matches('10', { column: 'x', op: '<', value: '9' }));
    assert.ok(matches('fim', { column: 'x', op: '=', value: 'fim' }));
    assert.ok(matches('FIM-v2', { column: 'x', op: '~', value: 'fim' }));
    assert.ok(!matches(null, { column: 'x', op: '<', value: '3' }), 'an empty cell is not below 3');
    assert.ok(matches(undefined, { column: 'x', op: '!=', value: 'a' }));
  });

  test('filters combine; sort by a number descending; pages of the filtered rows', () => {
    const p = applyTableQuery(
      rows,
      q('f=config.defense%3Dfim&f=testNll%3C0&sort=testNll&dir=desc&size=10&page=2'),
    );
    // fim: odd i; testNll = 10 - i < 0: i > 10, so i in 11, 13, ..., 119: 55 rows.
    assert.equal(p.total, 120);
    assert.equal(p.matched, 55);
    assert.equal(p.pages, 6);
    assert.equal(p.page, 2);
    assert.deepEqual(
      p.rows.map((r) => r.index),
      [31, 33, 35, 37, 39, 41, 43, 45, 47, 49],
    );
    const last = applyTableQuery(
      rows,
      q('f=config.defense%3Dfim&f=testNll%3C0&sort=testNll&dir=desc&size=10&page=99'),
    );
    assert.equal(last.page, 6);
    assert.equal(last.rows.length, 5);
  });

  test('empty cells sort last both ways; ties keep the sweep order; text sorts', () => {
    const mixed = rows
      .slice(0, 6)
      .map((r, i) => ({ ...r, testNll: i === 2 ? null : (r.testNll as number) % 3 }));
    const asc = applyTableQuery(mixed, q('sort=testNll')).rows.map((r) => r.index);
    const desc = applyTableQuery(mixed, q('sort=testNll&dir=desc')).rows.map((r) => r.index);
    // testNll % 3 of i = 0..5: 1, 0, (null), 1, 0, 2.
    assert.deepEqual(asc, [1, 4, 0, 3, 5, 2]);
    assert.deepEqual(desc, [5, 0, 3, 1, 4, 2]);
    const byDefense = applyTableQuery(rows.slice(0, 4), q('sort=config.defense')).rows.map(
      (r) => r['config.defense'],
    );
    assert.deepEqual(byDefense, ['fim', 'fim', 'none', 'none']);
  });

  test('a filter on a tag column keeps the tagged trials only', () => {
    const tagged = withTags(
      rows,
      new Map([
        ['t005', { group: 'base' }],
        ['t007', { group: 'baseline' }],
      ]),
    );
    assert.deepEqual(
      applyTableQuery(tagged, q('f=tag.group~base')).rows.map((r) => r.id),
      ['t005', 't007'],
    );
    assert.deepEqual(
      applyTableQuery(tagged, q('f=tag.group%3Dbase')).rows.map((r) => r.id),
      ['t005'],
    );
  });
});
