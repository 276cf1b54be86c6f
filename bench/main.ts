// `npm run bench` runs the whole suite (bench/suite.ts) and prints one markdown table with the
// machine described; `npm run bench -- --json` prints the same figures as one JSON object on stdout
// (logs on stderr); `--quick` uses small budgets (a couple of minutes in all), otherwise the sizes
// BENCHMARKS.md documents; `--install-torch` creates the PyTorch venv the speed comparisons need;
// `--only fimStepVsTorch,evaluationThroughput` runs some parts (bench/suite.ts SUITE_PARTS). `npm run bench -- <name> [options]` runs one bench (never part of npm test):
//   throughput     MAF training throughput per tfjs backend vs PyTorch (bench/train-throughput.ts)
//   defenses       training cost of the defenses relative to none (bench/defense-cost.ts)
//   fim-torch      the exact fim step and the PGD-rKL step against PyTorch (bench/fim-pgd-vs-torch.ts)
//   simulators     simulator throughput per task, pyloric against its reference (bench/simulators.ts)
//   pyloric-validity  valid pyloric simulations under the prior, against the reference (bench/pyloric-validity.ts)
//   pyloric-embedding  the pyloric CNN's passes, conv family against the unfold it replaced (bench/pyloric-embedding.ts)
//   orchestration  trivial trials through the real sweep workflows (bench/orchestration.ts)
//   mongo-writes   ResultStore writes per second to the embedded FerretDB (bench/mongo-writes.ts)
//   train-checkpoints  the train activity with a checkpoint per epoch against one per 10 s (bench/train-checkpoints.ts)
//   attacks        cost of the attacks and metrics per estimator (bench/attack-cost.ts)
//   accuracy       C2ST of NPE posteriors against reference posteriors (bench/accuracy.ts)
//   c2st-speed     the C2ST classifier on the fused kernels against tfjs ops (bench/c2st-speed.ts)
//   sbi-parity     robustsbi train's default against sbi 0.27's NPE() on the same rows and observations (bench/sbi-parity.ts)
//   candidate-race  whether train could drop its losing candidate early, from the candidates' validation curves (bench/candidate-race.ts)
//   heldout-screen  variants of the default by paired held-out NLL over training streams (bench/heldout-screen.ts)
//   linear-gaussian-probe  a closed-form linear-Gaussian q on the flows' own split and held-out rows (bench/linear-gaussian-probe.ts)
//   validation-split  one training under several validation splits of the same rows (bench/validation-split.ts)
//   sbi-same-start  robustsbi's trainer from sbi's own split and initial MAF, against sbi's run (bench/sbi-same-start.ts)
//   exact-attack   the exact gaussian_linear posterior under attack (bench/exact-posterior-attack.ts)
//   adaptive-search  hypervolume of the adaptive search vs grid and random (bench/adaptive-search.ts)
//   scaling        one CPU-bound sweep on 1 and 2 worker processes, and the plan's estimate (bench/scaling.ts)
//   dashboard-table  the dashboard's trial table pages on a large sweep against listing every trial (bench/dashboard-table.ts)
import { runMain } from './args.js';

type Cli = (argv: readonly string[]) => Promise<void>;

/** Benches exporting a cli; the last two run on import and read process.argv themselves. */
const BENCHES: Record<string, () => Promise<Cli>> = {
  throughput: async () => (await import('./train-throughput.js')).cli,
  defenses: async () => (await import('./defense-cost.js')).cli,
  'fim-torch': async () => (await import('./fim-pgd-vs-torch.js')).cli,
  simulators: async () => (await import('./simulators.js')).cli,
  'pyloric-validity': async () => (await import('./pyloric-validity.js')).cli,
  'pyloric-embedding': async () => (await import('./pyloric-embedding.js')).cli,
  orchestration: async () => (await import('./orchestration.js')).cli,
  'mongo-writes': async () => (await import('./mongo-writes.js')).cli,
  'train-checkpoints': async () => (await import('./train-checkpoints.js')).cli,
  attacks: async () => async () => void (await import('./attack-cost.js')),
  accuracy: async () => async () => void (await import('./accuracy.js')),
  'c2st-speed': async () => (await import('./c2st-speed.js')).cli,
  'sbi-parity': async () => (await import('./sbi-parity.js')).cli,
  'heldout-screen': async () => (await import('./heldout-screen.js')).cli,
  'linear-gaussian-probe': async () => (await import('./linear-gaussian-probe.js')).cli,
  'candidate-race': async () => (await import('./candidate-race.js')).cli,
  'validation-split': async () => (await import('./validation-split.js')).cli,
  'sbi-same-start': async () => (await import('./sbi-same-start.js')).cli,
  'exact-attack': async () => (await import('./exact-posterior-attack.js')).cli,
  scaling: async () => (await import('./scaling.js')).cli,
  'adaptive-search': async () => (await import('./adaptive-search.js')).cli,
  'dashboard-table': async () => (await import('./dashboard-table.js')).cli,
};

const name = process.argv[2];
if (name === undefined || name.startsWith('--')) {
  await runMain(async (argv) => (await import('./suite.js')).cli(argv));
} else if (!(name in BENCHES)) {
  console.error(
    `usage: npm run bench [-- --quick] [-- --json] [-- --install-torch] [-- --only <part,...>]\n       npm run bench -- <${Object.keys(BENCHES).join('|')}> [options]`,
  );
  process.exit(2);
} else {
  // The bench modules parse process.argv (or the argv given); drop the bench name first.
  process.argv.splice(2, 1);
  const cli = await BENCHES[name]!();
  await runMain(cli);
}
