// The pure parts of the fim / PGD comparison with PyTorch (bench/fim-pgd-vs-torch.ts) and of the
// suite's --only: parsing the torch script's JSON line, per-step times from training epochs, the
// JSON parts' ratios and their torch-unavailable forms, the table rows, and the missing-venv hint.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { DefenseCostRow } from '../../../bench/defense-cost.js';
import {
  evaluationThroughput,
  fimFromRows,
  fimStepVsTorch,
  lowerMedian,
  msPerBatch,
  parseTorchFimPgd,
  pointStepsPerSecond,
  sideBySideRows,
  type BackendPgd,
  type TorchFimPgd,
} from '../../../bench/fim-pgd-vs-torch.js';
import { NOT_RUN, SUITE_PARTS, parseOnly } from '../../../bench/suite.js';

const part = (cpu: number, rss: number) => ({
  ms_per_step_cpu: cpu,
  ms_per_step_wall: cpu + 1,
  reps_ms_per_step_cpu: [cpu, cpu + 2],
  reps_ms_per_step_wall: [cpu + 1, cpu + 3],
  steps_per_rep: 8,
  peak_rss_mb: rss,
});

const TORCH_LINE = JSON.stringify({
  impl: 'torch',
  torch_version: '2.0.0',
  threads: 1,
  plain: part(4, 700),
  fim: { ...part(160, 900), ratio_to_plain_cpu: 40 },
  pgd: { ...part(20, 580), points_steps_per_cpu_s: 5000 },
});

const row = (label: string, epochCpuMs: number[], maxRssMB = 700): DefenseCostRow => ({
  label,
  ms: 1,
  maxRssMB,
  valNll: 1,
  trace: 1,
  nTrain: 10000,
  batchSize: 512,
  step: 'tfjs ops',
  epochMs: epochCpuMs.map((v) => v * 2),
  epochCpuMs,
});

const unavailable: TorchFimPgd = {
  ok: false,
  reason: 'no torch venv at /x; npm run bench -- --install-torch creates it',
};

describe('fim / PGD against torch', () => {
  test('parseTorchFimPgd reads the three parts and refuses a malformed line', () => {
    const t = parseTorchFimPgd(TORCH_LINE);
    assert.equal(t.version, '2.0.0');
    assert.deepEqual(t.fim, {
      msPerStepCpu: 160,
      msPerStepWall: 161,
      repsMsPerStepCpu: [160, 162],
      peakRssMb: 900,
    });
    assert.equal(t.plain.msPerStepCpu, 4);
    assert.equal(t.pgd.peakRssMb, 580);
    const o = JSON.parse(TORCH_LINE) as Record<string, Record<string, unknown>>;
    delete o.pgd;
    assert.throws(() => parseTorchFimPgd(JSON.stringify(o)), /no pgd part/);
    o.pgd = { ...part(20, 580), ms_per_step_cpu: 'fast' };
    assert.throws(() => parseTorchFimPgd(JSON.stringify(o)), /pgd\.ms_per_step_cpu/);
    assert.throws(
      () => parseTorchFimPgd(JSON.stringify({ ...o, torch_version: undefined })),
      /torch_version/,
    );
  });

  test('msPerBatch: the median epoch after the first, scaled to one batch', () => {
    assert.equal(lowerMedian([3, 1, 2]), 2);
    assert.equal(lowerMedian([4, 1, 3, 2]), 2);
    assert.ok(Number.isNaN(lowerMedian([])));
    // The slow first epoch is left out; 20,000 ms over 10,000 rows is 1,024 ms per 512.
    const r = row('fim', [99999, 20000, 30000, 20000]);
    assert.deepEqual(msPerBatch(r), { cpu: 1024, wall: 2048 });
    // One epoch: that one.
    assert.equal(msPerBatch(row('fim', [10000])).cpu, 512);
  });

  test('fimStepVsTorch: torch / robustsbi by CPU, and the plain steps beside', () => {
    const torch = parseTorchFimPgd(TORCH_LINE);
    const f = fimStepVsTorch(row('fim', [0, 10000], 741), row('none', [0, 100]), torch);
    assert.equal(f.backendMsPerStep, 512);
    assert.equal(f.torchMsPerStep, 160);
    assert.equal(f.ratio, 160 / 512);
    assert.equal(f.backendPlainMsPerStep, 5.12);
    assert.equal(f.backendRatioToPlain, 100);
    assert.equal(f.torchRatioToPlain, 40);
    assert.equal(f.backendPeakRssMb, 741);
    assert.equal(f.torchPeakRssMb, 900);
    assert.deepEqual(f.torch, { ok: true, version: '2.0.0' });
    assert.equal(f.backendStep, 'tfjs ops');
    assert.deepEqual(f.settings, { nTrain: 10000, batch: 512, mcSamples: 5, epochs: 2 });
  });

  test('fimStepVsTorch without torch: null torch figures and the reason', () => {
    const f = fimStepVsTorch(row('fim', [10000]), undefined, unavailable);
    assert.equal(f.backendMsPerStep, 512);
    assert.equal(f.ratio, null);
    assert.equal(f.torchMsPerStep, null);
    assert.equal(f.torchPeakRssMb, null);
    assert.equal(f.backendPlainMsPerStep, null);
    assert.deepEqual(f.torch, unavailable);
    assert.deepEqual(fimFromRows([row('none', [1])], unavailable), {
      error: 'the fim training run failed',
    });
  });

  const backend: BackendPgd = {
    backend: 'wasm',
    points: 100,
    steps: 5,
    reps: 3,
    msPerStepCpu: 200,
    msPerStepWall: 210,
    repsMsPerStepCpu: [200, 190, 220],
    peakRssMb: 250,
  };

  test('evaluationThroughput: test points x steps per CPU-second, robustsbi / torch', () => {
    assert.equal(pointStepsPerSecond(100, 200), 500);
    const e = evaluationThroughput(backend, parseTorchFimPgd(TORCH_LINE));
    assert.equal(e.backend, 500);
    assert.equal(e.torch, 5000);
    assert.equal(e.ratio, 0.1);
    assert.equal(e.backendPeakRssMb, 250);
    assert.equal(e.torchPeakRssMb, 580);
    assert.equal(e.torchVersion, '2.0.0');
  });

  test('evaluationThroughput without torch: torch is { ok: false, reason }', () => {
    const e = evaluationThroughput(backend, unavailable);
    assert.equal(e.backend, 500);
    assert.deepEqual(e.torch, unavailable);
    assert.equal(e.ratio, null);
    assert.equal(e.torchPeakRssMb, null);
    assert.ok(!('torchVersion' in e));
  });

  test('sideBySideRows: figures with torch, the reason without, failures', () => {
    const torch = parseTorchFimPgd(TORCH_LINE);
    const withTorch = sideBySideRows(
      fimStepVsTorch(row('fim', [0, 10000]), row('none', [0, 100]), torch),
      evaluationThroughput(backend, torch),
    );
    assert.equal(withTorch.length, 4);
    assert.deepEqual(
      withTorch.map((r) => r[2]),
      ['512.0', '160.0', '500', '5,000'],
    );
    assert.match(withTorch[1]![3]!, /torch\/robustsbi 0\.31/);
    assert.match(withTorch[3]![3]!, /robustsbi\/torch 0\.10/);
    const without = sideBySideRows(
      fimStepVsTorch(row('fim', [10000]), undefined, unavailable),
      evaluationThroughput(backend, unavailable),
    );
    assert.deepEqual(
      without.filter((r) => r[2] === 'unavailable').map((r) => r[3]),
      [unavailable.reason, unavailable.reason],
    );
    const failed = sideBySideRows({ error: 'boom' }, { error: NOT_RUN });
    assert.deepEqual(
      failed.map((r) => [r[1], r[3]]),
      [
        ['failed', 'boom'],
        ['failed', NOT_RUN],
      ],
    );
  });
});

describe('suite --only', () => {
  test('parseOnly takes part names and refuses others', () => {
    assert.equal(parseOnly(undefined), undefined);
    assert.deepEqual(parseOnly('fimStepVsTorch, evaluationThroughput'), [
      'fimStepVsTorch',
      'evaluationThroughput',
    ]);
    assert.ok(SUITE_PARTS.includes('defenseCostRatios'));
    assert.throws(() => parseOnly('fim'), /--only takes a comma-separated list of/);
    assert.throws(() => parseOnly(','), /--only/);
  });
});

describe('torch venv hint', () => {
  test('a missing venv names the suite flag that creates it', () => {
    const mod = fileURLToPath(new URL('../../../bench/torch-venv.js', import.meta.url));
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(mod)}); console.log(JSON.stringify(m.torchPython(false)));`,
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, ROBUSTSBI_TORCH_VENV: '/nonexistent/robustsbi-torch-venv' },
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; reason: string };
    assert.equal(out.ok, false);
    assert.match(out.reason, /no torch venv at \/nonexistent\/robustsbi-torch-venv/);
    assert.match(out.reason, /npm run bench -- --install-torch/);
    assert.doesNotMatch(out.reason, /--no-install/);
  });
});
