// The C2ST classifier on the fused WebAssembly products (sbi/metrics/c2st-fused.ts) against the
// same classifier on tfjs ops, in one process on the same rows: CPU per classifier step, the ratio,
// and both scores. Each fold runs exactly --epochs epochs (the stopping rule switched off), so the
// two paths do the same number of steps; --full adds the fused path's whole sbibm-size C2ST (its
// own stopping rule, at most --max-epochs epochs per fold), the cost a benchmark cell pays.
//
//   npm run bench -- c2st-speed [--dims 2,5,10] [--rows 10000] [--epochs 3] [--shift 0.3]
//        [--backend wasm] [--full] [--max-epochs 500]
import { initBackend } from '../sbi/backend.js';
import { c2st, type C2STOptions } from '../sbi/metrics/c2st.js';
import { createRng } from '../sbi/rng.js';
import { isMain, numberArg, numberListArg, parseArgs, runMain } from './args.js';

interface Timed {
  accuracy: number;
  cpuS: number;
  epochs: number;
}

/** rows x d standard normals, the first coordinate shifted by `shift`. */
function gaussians(rows: number, d: number, shift: number, seed: number): Float32Array {
  const out = new Float32Array(rows * d);
  createRng(seed).fillNormal(out);
  for (let i = 0; i < rows; i++) out[i * d]! += shift;
  return out;
}

function timed(a: Float32Array, b: Float32Array, d: number, o: C2STOptions): Timed {
  const t0 = process.cpuUsage();
  const r = c2st(a, b, d, createRng(1), o);
  const t = process.cpuUsage(t0);
  const epochs = r.foldEpochs.reduce((s, e) => s + e, 0);
  return { accuracy: r.accuracy, cpuS: (t.user + t.system) / 1e6, epochs };
}

const mib = (): number => Math.round(process.resourceUsage().maxRSS / 1024);

export async function cli(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const args = parseArgs(argv);
  const dims = numberListArg(
    args,
    'dims',
    '2,5,10',
    (v) => Number.isInteger(v) && v > 0,
    'positive integers',
  );
  const rows = numberArg(args, 'rows', 10000);
  const epochs = numberArg(args, 'epochs', 3);
  const shift = numberArg(args, 'shift', 0.3);
  const maxEpochs = numberArg(args, 'max-epochs', 500);
  const backend = (await initBackend(args.get('backend') ?? 'wasm')).name;
  // Four fifths of the pooled rows train in each of the five folds, in batches of 200.
  const stepsPerEpoch = Math.ceil((2 * rows * 4) / 5 / 200);
  console.log(
    `C2ST classifier, ${rows} vs ${rows} rows, ${epochs} epochs per fold (${stepsPerEpoch} steps of 200), tfjs backend ${backend}`,
  );
  console.log(
    '| d | hidden | fused ms/step | tfjs ms/step | tfjs / fused | C2ST fused / tfjs | peak RSS MiB after fused / tfjs |',
  );
  console.log('|---|---|---|---|---|---|---|');
  const fixed = { maxEpochs: epochs, nIterNoChange: Number.MAX_SAFE_INTEGER };
  for (const d of dims) {
    const a = gaussians(rows, d, 0, 1);
    const b = gaussians(rows, d, shift, 2);
    const fused = timed(a, b, d, { ...fixed, kernels: 'fused' });
    const rssFused = mib();
    const plain = timed(a, b, d, { ...fixed, kernels: 'tfjs' });
    const rssPlain = mib();
    const steps = fused.epochs * stepsPerEpoch;
    const msF = (1000 * fused.cpuS) / steps;
    const msT = (1000 * plain.cpuS) / steps;
    console.log(
      `| ${d} | ${10 * d} | ${msF.toFixed(3)} | ${msT.toFixed(3)} | **${(msT / msF).toFixed(1)}** | ${fused.accuracy.toFixed(4)} / ${plain.accuracy.toFixed(4)} | ${rssFused} / ${rssPlain} |`,
    );
  }
  if (!args.has('full')) return;
  console.log(
    `\nThe fused path's whole C2ST (sklearn's stopping rule, at most ${maxEpochs} epochs per fold):`,
  );
  console.log('| d | CPU s | epochs per fold (mean) | C2ST |');
  console.log('|---|---|---|---|');
  for (const d of dims) {
    const r = timed(gaussians(rows, d, 0, 1), gaussians(rows, d, shift, 2), d, { maxEpochs });
    console.log(
      `| ${d} | ${r.cpuS.toFixed(1)} | ${(r.epochs / 5).toFixed(0)} | ${r.accuracy.toFixed(4)} |`,
    );
  }
}

if (isMain(import.meta.url)) await runMain(cli);
