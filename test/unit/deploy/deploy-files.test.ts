// deploy/ checked against the code (issue 23): every robustsbi command the images, the compose file
// and the Kubernetes manifests run exists with the flags they pass, every environment variable they
// set for robustsbi is one robustsbi reads, and the files parse: with `docker compose config` and
// `kubectl kustomize` where those tools are installed (neither needs a daemon or a cluster), and
// always with the YAML-subset reader and the structural checks below.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { Command } from '../../../cli/command.js';
import { ENV_VARS } from '../../../infra/config.js';
import { root } from '../sweeps/fixtures.js';
import { parseYamlDocuments, type Yaml } from './yaml-subset.js';

const deploy = join(root, 'deploy');
const PRODUCT = ['sbi', 'results', 'sweeps', 'workflows', 'activities', 'workers', 'cli', 'infra'];

function filesUnder(dir: string, keep: (f: string) => boolean): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p, keep) : keep(p) ? [p] : [];
  });
}

/** Environment variables robustsbi reads: the config registry and every env read in its source. */
function variablesRead(): Set<string> {
  const names = new Set<string>(Object.values(ENV_VARS));
  const patterns = [
    /\bprocess\.env\.([A-Z][A-Z0-9_]*)/g,
    /\bprocess\.env\[\s*['"]([A-Z][A-Z0-9_]*)['"]\s*\]/g,
    /\benv\.([A-Z][A-Z0-9_]*)/g,
    // Names kept in constants and read as env[NAME_VAR] (binaries.ts, supervisor.ts).
    /\bconst [A-Z0-9_]*(?:_VAR|_ENV)\s*=\s*'([A-Z][A-Z0-9_]*)'/g,
  ];
  for (const dir of PRODUCT)
    for (const f of filesUnder(join(root, dir), (p) => p.endsWith('.ts'))) {
      const src = readFileSync(f, 'utf8');
      for (const re of patterns) for (const m of src.matchAll(re)) names.add(m[1]!);
    }
  return names;
}

/** The robustsbi commands, with their usage text (the flags and sub-commands they accept). */
async function commands(): Promise<Map<string, Command>> {
  const dir = fileURLToPath(new URL('../../../cli/commands/', import.meta.url));
  const ext = existsSync(join(dir, 'worker.js')) ? '.js' : '.ts';
  const out = new Map<string, Command>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith(ext))) {
    const mod = (await import(join(dir, f))) as { command?: Command };
    if (mod.command) out.set(mod.command.name, mod.command);
  }
  return out;
}

/** What is wrong with `robustsbi ...argv`, or undefined: the command, its sub-command and flags. */
function checkInvocation(all: Map<string, Command>, argv: string[]): string | undefined {
  const [name, ...rest] = argv;
  const c = all.get(name ?? '');
  if (!c) return `"${name}" is not a robustsbi command`;
  const words = new Set(c.usage.split(/[^A-Za-z0-9_-]+/));
  const sub = rest[0];
  if (sub !== undefined && !sub.startsWith('-') && ['infra', 'sweep'].includes(c.name)) {
    if (!words.has(sub)) return `"robustsbi ${c.name} ${sub}": no such sub-command`;
  }
  for (const a of rest) {
    if (!a.startsWith('--')) continue;
    const flag = a.split('=')[0]!;
    if (!new RegExp(`(^|[\\s\\[|])${flag}(?=[\\s\\]=|,]|$)`, 'm').test(c.usage))
      return `"robustsbi ${c.name}" has no option ${flag}`;
  }
  return undefined;
}

const isMap = (v: Yaml | undefined): v is { [k: string]: Yaml } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const asMap = (v: Yaml | undefined, what: string): { [k: string]: Yaml } => {
  assert.ok(isMap(v), `${what} is a mapping`);
  return v;
};
const asStrings = (v: Yaml | undefined, what: string): string[] => {
  assert.ok(
    Array.isArray(v) && v.every((x) => typeof x === 'string'),
    `${what} is a list of strings`,
  );
  return v as string[];
};

/** The JSON-array form of a Dockerfile instruction (ENTRYPOINT, CMD). */
function dockerArray(lines: string[], instr: string): string[] | undefined {
  const l = lines.find((x) => x.startsWith(`${instr} `));
  return l === undefined ? undefined : (JSON.parse(l.slice(instr.length + 1)) as string[]);
}

const ENTRY = ['node', '/app/bin/robustsbi.js'];

describe('deploy/', async () => {
  const all = await commands();
  const vars = variablesRead();

  test('the variables robustsbi reads are found (the checker itself works)', () => {
    for (const v of [
      'TEMPORAL_ADDRESS',
      'MONGODB_URI',
      'ROBUSTSBI_METRICS_ADDR',
      'ROBUSTSBI_BACKEND',
    ])
      assert.ok(vars.has(v), v);
    assert.ok(!vars.has('NODE_ENV'));
    assert.equal(checkInvocation(all, ['worker', '--queue', 'cpu', '--metrics', 'h:1']), undefined);
    assert.match(checkInvocation(all, ['worker', '--gpus', '1'])!, /no option --gpus/);
    assert.match(checkInvocation(all, ['sweep', 'launch'])!, /no such sub-command/);
    assert.match(checkInvocation(all, ['serve'])!, /not a robustsbi command/);
  });

  test('the Dockerfiles run robustsbi commands, set variables it reads, copy what exists', () => {
    for (const f of ['worker.Dockerfile', 'worker-gpu.Dockerfile']) {
      // Continuation lines joined: one instruction per line.
      const lines = readFileSync(join(deploy, f), 'utf8')
        .replace(/\\\n/g, ' ')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'));
      assert.deepEqual(dockerArray(lines, 'ENTRYPOINT'), ENTRY, f);
      const cmd = dockerArray(lines, 'CMD')!;
      assert.equal(checkInvocation(all, cmd), undefined, `${f}: CMD ${cmd.join(' ')}`);
      for (const l of lines.filter((x) => x.startsWith('ENV '))) {
        const name = /^ENV ([A-Za-z_][A-Za-z0-9_]*)=/.exec(l)?.[1];
        assert.ok(name, `${f}: ENV in NAME=value form: ${l}`);
        assert.ok(vars.has(name), `${f}: robustsbi does not read ${name}`);
      }
      for (const l of lines.filter((x) => x.startsWith('COPY ') && !x.includes('--from='))) {
        const srcs = l.split(/\s+/).slice(1, -1);
        for (const s of srcs) {
          const path = s.includes('*') ? dirname(s) : s;
          assert.ok(existsSync(join(root, path)), `${f}: COPY source ${s} exists`);
        }
      }
      // The variant's backend package, at the version package.json pins.
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
        optionalDependencies: Record<string, string>;
      };
      const want = f.includes('gpu') ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
      assert.ok(
        lines.some((l) => l.includes(`${want}@${pkg.optionalDependencies[want]}`)),
        `${f} installs ${want}@${pkg.optionalDependencies[want]}`,
      );
    }
  });

  test('compose.yaml: the stack, and robustsbi services that run real commands', () => {
    const [doc] = parseYamlDocuments(readFileSync(join(deploy, 'compose.yaml'), 'utf8'));
    const services = asMap(asMap(doc, 'compose.yaml').services, 'services');
    for (const s of [
      'postgresql',
      'temporal',
      'temporal-ui',
      'mongodb',
      'worker-cpu',
      'worker-gpu',
      'dashboard',
    ])
      assert.ok(isMap(services[s]), `service ${s}`);
    assert.deepEqual(asStrings(asMap(services['worker-gpu'], 'worker-gpu').profiles, 'profiles'), [
      'gpu',
    ]);
    assert.match(String(asMap(services.mongodb, 'mongodb').command), /--replSet/);
    let robustsbiServices = 0;
    for (const [name, v] of Object.entries(services)) {
      const s = asMap(v, name);
      const build = isMap(s.build) ? String(s.build.dockerfile) : undefined;
      if (!String(s.image ?? '').startsWith('robustsbi') && !build) continue;
      robustsbiServices++;
      if (build) assert.ok(existsSync(join(deploy, '..', build)), `${name}: ${build} exists`);
      const cmd = asStrings(s.command, `${name}.command`);
      assert.equal(checkInvocation(all, cmd), undefined, `${name}: ${cmd.join(' ')}`);
      for (const k of Object.keys(asMap(s.environment, `${name}.environment`)))
        assert.ok(vars.has(k), `${name}: robustsbi does not read ${k}`);
      // Depending on services that exist.
      for (const d of Object.keys(isMap(s.depends_on) ? s.depends_on : {}))
        assert.ok(d in services, `${name} depends on ${d}`);
    }
    assert.equal(robustsbiServices, 4);
  });

  test('docker compose config accepts compose.yaml (where the compose plugin is installed)', () => {
    const v = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    const present = v.status === 0;
    if (present) {
      const r = spawnSync(
        'docker',
        ['compose', '-f', join(deploy, 'compose.yaml'), '--profile', 'gpu', 'config', '--quiet'],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
    }
    // Either way the file is in the subset the reader checks (the test above).
    assert.ok(parseYamlDocuments(readFileSync(join(deploy, 'compose.yaml'), 'utf8')).length === 1);
  });

  test('Kubernetes manifests: kustomize layout, real commands, variables robustsbi reads', () => {
    const k8s = join(deploy, 'k8s');
    const yamls = filesUnder(k8s, (p) => p.endsWith('.yaml'));
    const configKeys = new Set<string>();
    const deployments: { file: string; spec: { [k: string]: Yaml } }[] = [];
    for (const f of yamls) {
      const where = relative(root, f);
      for (const doc of parseYamlDocuments(readFileSync(f, 'utf8'))) {
        const d = asMap(doc, where);
        assert.equal(typeof d.apiVersion, 'string', `${where}: apiVersion`);
        assert.equal(typeof d.kind, 'string', `${where}: kind`);
        if (d.kind === 'Kustomization') {
          for (const r of asStrings(d.resources, `${where}: resources`))
            assert.ok(existsSync(join(dirname(f), r)), `${where}: resource ${r} exists`);
          continue;
        }
        assert.equal(typeof asMap(d.metadata, `${where}: metadata`).name, 'string');
        if (d.kind === 'ConfigMap')
          for (const [k, v] of Object.entries(asMap(d.data, `${where}: data`))) {
            assert.equal(typeof v, 'string', `${where}: ${k} is a string`);
            configKeys.add(k);
          }
        if (d.kind === 'Deployment') deployments.push({ file: where, spec: asMap(d.spec, where) });
      }
    }
    for (const k of configKeys) assert.ok(vars.has(k), `configmap: robustsbi does not read ${k}`);
    assert.deepEqual(deployments.map((d) => d.file.split('/').pop()).sort(), [
      'dashboard.yaml',
      'worker-cpu.yaml',
      'worker-gpu.yaml',
    ]);
    for (const { file, spec } of deployments) {
      const template = asMap(spec.template, file);
      const labels = asMap(asMap(template.metadata, file).labels, file);
      for (const [k, v] of Object.entries(asMap(asMap(spec.selector, file).matchLabels, file)))
        assert.equal(labels[k], v, `${file}: the selector matches the pod labels`);
      const containers = asMap(template.spec, file).containers as Yaml[];
      for (const c of containers.map((x) => asMap(x, file))) {
        const args = asStrings(c.args, `${file}: args`);
        assert.equal(checkInvocation(all, args), undefined, `${file}: ${args.join(' ')}`);
        for (const e of (c.env ?? []) as Yaml[])
          assert.ok(
            vars.has(String(asMap(e, file).name)),
            `${file}: robustsbi does not read ${String(asMap(e, file).name)}`,
          );
      }
    }
  });

  test('kubectl kustomize builds both layouts (where kubectl is installed; no cluster needed)', () => {
    const present =
      spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
    const layouts = ['base', 'overlays/gpu'];
    for (const l of layouts) {
      assert.ok(existsSync(join(deploy, 'k8s', l, 'kustomization.yaml')), l);
      if (!present) continue;
      const r = spawnSync('kubectl', ['kustomize', join(deploy, 'k8s', l)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${l}: ${r.stderr}`);
      assert.match(r.stdout, /name: robustsbi-worker-cpu/);
      assert.equal(/name: robustsbi-worker-gpu/.test(r.stdout), l.includes('gpu'));
      assert.doesNotMatch(r.stdout, /image: robustsbi(-gpu)?$/m, `${l}: every image is rewritten`);
    }
  });
});
