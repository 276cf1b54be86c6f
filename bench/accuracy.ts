// Accuracy bar of issue 3: C2ST (sbi/metrics/c2st.ts, sbibm's definition) between NPE posterior
// samples and reference posterior samples, averaged over observations k = 1..K, where observation k
// is simulated from a prior draw seeded with k (sbibm style).
//
//   node dist/bench/accuracy.js [--tasks gaussian_linear,two_moons] [--n 10000] [--obs 5]
//        [--estimator maf] [--samples 10000] [--c2st-samples 10000] [--max-epochs 300]
//        [--c2st-max-epochs 10000] [--backend wasm] [--seed 0]
//        [--batch-size 512] [--lr 1e-3] [--patience 10] [--clip 75] [--min-epochs 5] [--stop-rule rabi|sbi]
//        [--config '{"hidden":[50,50]}'] [--no-fused]
//
// Where the task has an analytic posterior, each observation also reports
// KL(p || q) = E_p[log p - log q] over the reference samples: a direct measure of how far the
// trained estimator is from the exact posterior, independent of the C2ST classifier's power.
//
// NPE is amortized: one model per (task, budget) is trained and then scored on every observation
// (sbibm retrains per observation; with one round the training data do not depend on x_o, so this
// differs only in the training seed). Posterior samples outside the prior's support are rejected
// and redrawn, as sbi's leakage correction does. --c2st-samples below 10000 subsamples both sets
// for speed; a smaller C2ST has less power, so its scores sit closer to 0.5 than sbibm's would.
import { initBackend } from '../sbi/backend.js';
import { c2st } from '../sbi/metrics/c2st.js';
import { samplePosterior } from '../sbi/posterior-samples.js';
import { createRng } from '../sbi/rng.js';
import {
  analyticKL,
  benchTask,
  cellDataset,
  cellRng,
  meanSd,
  observation,
  referenceSamples,
  trainCell,
} from './accuracy-core.js';

const BARS: Record<string, number> = {
  gaussian_linear: 0.55,
  sbibm_gaussian_linear: 0.55,
  two_moons: 0.61,
  slcp: 0.9,
};

function args(): Map<string, string> {
  const m = new Map<string, string>();
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const k = a[i]!;
    if (!k.startsWith('--')) throw new Error(`unexpected argument ${k}`);
    const next = a[i + 1];
    if (next === undefined || next.startsWith('--')) m.set(k.slice(2), 'true');
    else m.set(k.slice(2), (i++, next));
  }
  return m;
}

interface ObsResult {
  k: number;
  c2st: number;
  kl: number | null;
  acceptance: number;
  c2stS: number;
}

async function main(): Promise<void> {
  const a = args();
  const tasks = (a.get('tasks') ?? 'gaussian_linear,two_moons').split(',');
  const n = Number(a.get('n') ?? 10000);
  const nObs = Number(a.get('obs') ?? 5);
  const estimator = a.get('estimator') ?? 'maf';
  // Estimator settings as JSON, e.g. '{"hidden":[50,50]}' (the keys `robustsbi train` documents).
  const config = a.has('config') ? (JSON.parse(a.get('config')!) as Record<string, unknown>) : {};
  const nSamples = Number(a.get('samples') ?? 10000);
  const c2stSamples = Number(a.get('c2st-samples') ?? nSamples);
  const maxEpochs = Number(a.get('max-epochs') ?? 300);
  // sbibm's classifier may run 10000 epochs; nearly separable sets keep improving that long.
  const c2stMaxEpochs = Number(a.get('c2st-max-epochs') ?? 10000);
  const seed = Number(a.get('seed') ?? 0);
  const trainHp = {
    maxEpochs,
    ...(a.has('batch-size') ? { batchSize: Number(a.get('batch-size')) } : {}),
    ...(a.has('lr') ? { learningRate: Number(a.get('lr')) } : {}),
    ...(a.has('patience') ? { patience: Number(a.get('patience')) } : {}),
    ...(a.has('clip') ? { clipNorm: Number(a.get('clip')) } : {}),
    ...(a.has('min-epochs') ? { minEpochs: Number(a.get('min-epochs')) } : {}),
    ...(a.has('stop-rule') ? { stopRule: a.get('stop-rule') as 'rabi' | 'sbi' } : {}),
  };
  const backend = await initBackend(a.get('backend'));
  console.error(`backend ${backend.name}; ${estimator} on ${tasks.join(', ')} at ${n} simulations`);

  const summary: Record<string, unknown>[] = [];
  for (const name of tasks) {
    const task = benchTask(name);
    const rng = cellRng(seed, name, n);
    const t0 = performance.now();
    // Training CPU time (user + sys, all threads): the cost a loaded machine does not distort.
    const cpu0 = process.cpuUsage();
    const data = cellDataset(task, n, rng);
    const { trained } = await trainCell({
      task,
      data,
      cell: rng,
      estimator,
      config,
      hyperparameters: trainHp,
      // --no-fused: tfjs ops train even where the fused wasm step could (a control for variants
      // the fused kernels refuse, such as activation 'tanh').
      ...(a.has('no-fused') ? { fused: false } : {}),
    });
    const trainS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const trainCpuS = (cpu.user + cpu.system) / 1e6;
    console.error(
      `  ${name}: trained ${trained.epochs} epochs (${trained.stoppedBy}), best val ${trained.bestValLoss.toFixed(3)}, ${trainS.toFixed(0)} s wall, ${trainCpuS.toFixed(1)} s CPU${trained.fused ? ' (fused wasm step)' : ''}`,
    );
    const perObs: ObsResult[] = [];
    for (let k = 1; k <= nObs; k++) {
      const { x } = observation(task, k);
      const ref = referenceSamples(task, k, x, nSamples);
      const post = samplePosterior(
        trained.model,
        x,
        nSamples,
        rng.fork(`posterior-${k}`),
        task.prior,
      );
      const kl = analyticKL(trained.model, task, x, ref);
      const c0 = performance.now();
      const score = c2st(ref, post.samples, task.thetaDim, createRng(1).fork(`c2st-${k}`), {
        maxSamples: c2stSamples,
        maxEpochs: c2stMaxEpochs,
      });
      const r: ObsResult = {
        k,
        c2st: score.accuracy,
        kl,
        acceptance: post.acceptance,
        c2stS: (performance.now() - c0) / 1000,
      };
      perObs.push(r);
      console.error(
        `  ${name} obs ${k}: C2ST ${r.c2st.toFixed(3)}${kl === null ? '' : `, KL(p||q) ${kl.toFixed(3)}`} (acceptance ${r.acceptance.toFixed(3)}, ${r.c2stS.toFixed(0)} s)`,
      );
    }
    trained.model.dispose();
    const scores = perObs.map((r) => r.c2st);
    const { mean, sd } = meanSd(scores);
    summary.push({
      task: name,
      estimator,
      n,
      observations: nObs,
      c2stMean: mean,
      c2stSd: sd,
      bar: BARS[name] ?? null,
      meetsBar: BARS[name] === undefined ? null : mean <= BARS[name],
      epochs: trained.epochs,
      stoppedBy: trained.stoppedBy,
      bestValLoss: trained.bestValLoss,
      trainS,
      trainCpuS,
      fused: trained.fused,
      perObservation: perObs,
    });
  }

  console.log(
    `backend: ${backend.name}; posterior and reference samples: ${nSamples}; C2ST on ${c2stSamples} vs ${c2stSamples}, at most ${c2stMaxEpochs} classifier epochs; NPE at most ${maxEpochs} epochs`,
  );
  console.log(
    '| task | estimator | sims | C2ST per observation | C2ST mean ± sd | bar (sbibm NPE) | meets | epochs | train s | train CPU s |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const s of summary) {
    console.log(
      `| ${s.task} | ${s.estimator} | ${s.n} | ${(s.perObservation as ObsResult[]).map((r) => r.c2st.toFixed(3)).join(', ')} | ${(s.c2stMean as number).toFixed(3)} ± ${(s.c2stSd as number).toFixed(3)} | ${s.bar ?? '-'} | ${s.meetsBar ?? '-'} | ${s.epochs} | ${(s.trainS as number).toFixed(0)} | ${(s.trainCpuS as number).toFixed(1)} |`,
    );
  }
  console.log(
    JSON.stringify({
      bench: 'accuracy',
      backend: backend.name,
      samples: nSamples,
      c2stSamples,
      c2stMaxEpochs,
      training: trainHp,
      seed,
      results: summary,
    }),
  );
}

await main();
