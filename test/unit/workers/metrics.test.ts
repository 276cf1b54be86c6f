// The Prometheus text format written by workers/prometheus-text.ts, and what workers/sweep-metrics.ts
// reads from the pack activities' inputs and results.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry, escapeLabelValue, formatValue } from '../../../workers/prometheus-text.js';
import { FAILED, SweepMetrics } from '../../../workers/sweep-metrics.js';
import { processMetricsAddress, sdkMetricsAddress } from '../../../workers/metrics-address.js';
import { buildIdOf, workerDeploymentOptions } from '../../../workers/versioning.js';

describe('Prometheus text format', () => {
  test('counters: HELP and TYPE once, a series per label set, label values escaped', () => {
    const r = new Registry();
    const c = r.counter('x_total', 'Things.\nCounted \\ here.', ['reason']);
    c.inc({ reason: 'a"b' });
    c.inc({ reason: 'a"b' }, 2);
    c.inc({ reason: 'line\nbreak\\' });
    assert.equal(
      r.render(),
      [
        '# HELP x_total Things.\\nCounted \\\\ here.',
        '# TYPE x_total counter',
        'x_total{reason="a\\"b"} 3',
        'x_total{reason="line\\nbreak\\\\"} 1',
        '',
      ].join('\n'),
    );
    assert.equal(c.get({ reason: 'a"b' }), 3);
  });

  test('a counter without labels is shown at zero before anything happens', () => {
    const r = new Registry();
    r.counter('y_total', 'Y.');
    assert.equal(r.render(), '# HELP y_total Y.\n# TYPE y_total counter\ny_total 0\n');
  });

  test('histograms: cumulative buckets, +Inf equal to the count, sum and count', () => {
    const r = new Registry();
    const h = r.histogram('d_seconds', 'D.', ['k'], [0.1, 1]);
    h.observe({ k: 'a' }, 0.05);
    h.observe({ k: 'a' }, 0.1);
    h.observe({ k: 'a' }, 0.5);
    h.observe({ k: 'a' }, 7);
    h.observe({ k: 'a' }, NaN);
    assert.equal(
      r.render(),
      [
        '# HELP d_seconds D.',
        '# TYPE d_seconds histogram',
        'd_seconds_bucket{k="a",le="0.1"} 2',
        'd_seconds_bucket{k="a",le="1"} 3',
        'd_seconds_bucket{k="a",le="+Inf"} 4',
        'd_seconds_sum{k="a"} 7.65',
        'd_seconds_count{k="a"} 4',
        '',
      ].join('\n'),
    );
  });

  test('values, names and labels are checked', () => {
    assert.equal(formatValue(Infinity), '+Inf');
    assert.equal(formatValue(-Infinity), '-Inf');
    assert.equal(formatValue(NaN), 'NaN');
    assert.equal(formatValue(1e-7), '1e-7');
    assert.equal(escapeLabelValue('plain'), 'plain');
    const r = new Registry();
    assert.throws(() => r.counter('bad-name', 'x'), /not a Prometheus name/);
    assert.throws(() => r.counter('ok', 'x', ['le']), /not allowed/);
    const c = r.counter('c_total', 'c', ['a']);
    assert.throws(() => c.inc({ b: 'x' }), /takes the labels \[a\]/);
    assert.throws(() => c.inc({ a: 'x' }, -1), /may only grow/);
    assert.throws(() => r.counter('c_total', 'again'), /registered twice/);
    assert.throws(() => r.histogram('h', 'h', [], [1, 1]), /increasing/);
  });
});

describe('robustsbi metrics from the pack activities', () => {
  const value = (m: SweepMetrics, series: string) =>
    Number(
      m
        .render()
        .split('\n')
        .find((l) => l.startsWith(`${series} `))
        ?.split(' ')[1],
    );

  test('trials ended, counted once each (a stale transition is not counted)', () => {
    const m = new SweepMetrics();
    m.activityEnded(
      'completeTrials',
      { items: [{}, {}, {}] },
      ['applied', 'refused', 'applied'],
      0.01,
    );
    m.activityEnded(
      'endTrials',
      {
        items: [
          { status: 'failed', error: { type: 'Diverged' } },
          { status: 'failed', error: { type: 'Diverged' } },
          { status: 'cancelled' },
        ],
      },
      ['applied', 'applied', 'applied'],
      0.01,
    );
    assert.equal(value(m, 'robustsbi_trials_completed_total'), 2);
    assert.equal(value(m, 'robustsbi_trials_failed_total{reason="Diverged"}'), 2);
    assert.equal(value(m, 'robustsbi_trials_cancelled_total'), 1);
  });

  test('work done: fresh simulations, rows x epochs trained, points scored', () => {
    const m = new SweepMetrics();
    m.activityEnded(
      'simulateMany',
      { items: [{}, {}, {}] },
      [
        { ok: { n: 290, dropped: 10, cached: false } },
        { ok: { n: 500, dropped: 0, cached: true } },
        { error: { type: 'Error' } },
      ],
      1,
    );
    m.activityEnded(
      'trainMany',
      { items: [{}, {}] },
      [
        { ok: { nTrain: 270, epochsThisAttempt: 3, cached: false } },
        { ok: { nTrain: 9, epochsThisAttempt: 9, cached: true } },
      ],
      2,
    );
    const evaluation = { nTest: 50, attackBatchSize: 20 };
    m.activityEnded(
      'evaluateMany',
      {
        items: [
          { trial: { evaluation }, shard: 2 },
          { trial: { evaluation } },
          { trial: { evaluation: { nTest: 20, attackBatchSize: 20 } } },
        ],
      },
      [{ ok: { cached: false } }, { ok: { cached: false } }, { ok: { cached: false } }],
      3,
    );
    assert.equal(value(m, 'robustsbi_simulations_total'), 300);
    assert.equal(value(m, 'robustsbi_training_rows_total'), 810);
    // The last shard holds 10 points; the pooling call of a sharded evaluation scores none itself.
    assert.equal(value(m, 'robustsbi_evaluation_points_total'), 30);
  });

  test('durations by activity and outcome; a failed attempt counts no work', () => {
    const m = new SweepMetrics();
    m.activityEnded('trainMany', { items: [{}] }, FAILED, 42);
    assert.equal(
      value(m, 'robustsbi_activity_duration_seconds_count{activity="trainMany",outcome="error"}'),
      1,
    );
    assert.equal(
      value(m, 'robustsbi_activity_duration_seconds_sum{activity="trainMany",outcome="error"}'),
      42,
    );
    assert.equal(value(m, 'robustsbi_training_rows_total'), 0);
  });
});

describe('where metrics are served, and the build a worker announces', () => {
  test('the SDK exporter takes the next port on loopback; process i takes two ports each', () => {
    assert.deepEqual(sdkMetricsAddress({ host: '0.0.0.0', port: 9464 }), {
      host: '127.0.0.1',
      port: 9465,
    });
    assert.throws(() => sdkMetricsAddress({ host: 'h', port: 65535 }), /below 65535/);
    assert.deepEqual(processMetricsAddress({ host: 'h', port: 9464 }, 3), {
      host: 'h',
      port: 9470,
    });
  });

  test('build IDs keep version, 12 commit digits and a dirty mark, without dots', () => {
    assert.equal(
      buildIdOf({ version: '0.1.0', commit: '0123456789abcdef0123-dirty' }),
      '0_1_0+0123456789ab-dirty',
    );
    assert.equal(buildIdOf({ version: '1.2.3' }), '1_2_3');
  });

  test('versioned workers run every workflow AUTO_UPGRADE; unversioned ones only label', () => {
    const version = { deploymentName: 'robustsbi', buildId: 'b' };
    assert.deepEqual(workerDeploymentOptions({ ...version, versioning: true }), {
      version,
      useWorkerVersioning: true,
      defaultVersioningBehavior: 'AUTO_UPGRADE',
    });
    assert.deepEqual(workerDeploymentOptions({ ...version, versioning: false }), {
      version,
      useWorkerVersioning: false,
    });
  });
});
