// `npm run bench -- <name> [options]`: runs one bench by name (they are never part of npm test).
//   throughput  MAF training throughput per tfjs backend vs PyTorch (bench/train-throughput.ts)
//   accuracy    C2ST of NPE posteriors against reference posteriors (bench/accuracy.ts)
//   simulators  simulator throughput per task (bench/simulators.ts)
const BENCHES: Record<string, string> = {
  throughput: './train-throughput.js',
  accuracy: './accuracy.js',
  simulators: './simulators.js',
};

const name = process.argv[2];
if (name === undefined || !(name in BENCHES)) {
  console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [options]`);
  process.exit(2);
}
// The bench modules parse process.argv themselves; drop the bench name first.
process.argv.splice(2, 1);
await import(BENCHES[name]!);
