// The layer table of ARCHITECTURE.md, enforced: every product source file's imports (static, type-only
// and dynamic) are parsed, and an import that reaches a layer the table does not allow, a package the
// layer may not load, or a cycle among the files fails with the file and the import named.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';
import { root } from '../sweeps/fixtures.js';

type Layer =
  'sbi' | 'results' | 'sweeps' | 'workflows' | 'activities' | 'workers' | 'cli' | 'infra';

const LAYERS: readonly Layer[] = [
  'sbi',
  'results',
  'sweeps',
  'workflows',
  'activities',
  'workers',
  'cli',
  'infra',
];

interface Rule {
  /** Layers whose modules it may import at run time (its own is always allowed). */
  values: readonly Layer[];
  /** Further layers it may import types from only (`import type`: erased, nothing runs). */
  types?: readonly Layer[];
  /** Packages (prefixes of the specifier) it may import; `node:` is Node's built-ins. */
  packages: readonly string[];
}

/**
 * What each layer may import, pinned from ARCHITECTURE.md's table and from what the code needs:
 * - infra/ is the bottom of the product (configuration, connections, logging, the embedded stack)
 *   and imports none of it, so any layer with side effects may use it; sbi/, sweeps/ and
 *   workflows/ may not (the science takes its settings as arguments; sweeps/ and workflows/ are
 *   bundled into the deterministic workflow sandbox).
 * - sweeps/ is pure code (the spec, its expansion, IDs, the failure vocabulary): ajv and nothing
 *   with side effects, not even Node's built-ins, because workflows bundle it.
 * - sbi/ is the science: tfjs, and Node's built-ins for its save/load helpers, the shipped VAE
 *   weights, loading optional backends and V8 flags of the fused kernel.
 * - results/ reads sbi/ types and sbi's tfjs-free constants (checked below), sweeps/' IDs and trial
 *   counts, and infra/'s connection and redaction helpers.
 * - workflows/ is deterministic orchestration: @temporalio/workflow, @temporalio/common (its
 *   failure classes are bundle-safe), sweeps/, and activity and result *types*.
 * - activities/ adapt sbi/ and results/ to Temporal; they read sweeps/ (trial configs, failure
 *   names) and infra/ (the logger type).
 * - workers/ and cli/ assemble everything; only cli/ may import workers/.
 */
const RULES: Record<Layer, Rule> = {
  infra: { values: [], packages: ['node:', 'mongodb', 'winston', 'ajv', '@temporalio/client'] },
  sweeps: { values: [], packages: ['ajv'] },
  sbi: { values: [], packages: ['node:', '@tensorflow/'] },
  results: {
    values: ['sbi', 'sweeps', 'infra'],
    packages: ['node:', 'mongodb', 'ajv'],
  },
  workflows: {
    values: ['sweeps'],
    types: ['activities', 'results'],
    packages: ['@temporalio/workflow', '@temporalio/common'],
  },
  activities: {
    values: ['sbi', 'results', 'sweeps', 'infra'],
    packages: ['node:', '@temporalio/activity', '@temporalio/common', 'mongodb'],
  },
  workers: {
    values: ['sbi', 'results', 'sweeps', 'workflows', 'activities', 'infra'],
    packages: ['node:', '@temporalio/'],
  },
  cli: {
    values: ['sbi', 'results', 'sweeps', 'workflows', 'activities', 'workers', 'infra'],
    packages: ['node:', '@temporalio/'],
  },
};

/** sbi/ may touch the file system only in its explicit save/load helpers (ARCHITECTURE.md). */
const SBI_FS_FILES = ['sbi/atomic-file.ts', 'sbi/tasks/vae-decoder.ts'];
/** One module decides which kernels run: the rest of sbi/ imports `tf` from backend.ts. */
const TFJS_FILES = ['sbi/backend.ts', 'sbi/wasm-kernels.ts'];
/**
 * Inside sbi/: the density estimators are what attacks, defenses and metrics are built on, and the
 * tasks (priors, simulators) stand alone, so neither imports those folders.
 */
const SBI_FOLDERS_MAY_NOT: Record<string, readonly string[]> = {
  estimators: ['attacks', 'defenses', 'metrics'],
  tasks: ['estimators', 'attacks', 'defenses', 'metrics'],
};

interface Import {
  specifier: string;
  /** Every binding is a type (`import type`, `export type`, or `type` on each named binding). */
  typeOnly: boolean;
  dynamic: boolean;
  line: number;
  /** The product file it resolves to (repository-relative, .ts), when it is one. */
  target?: string;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${ent.name}`;
    if (ent.isDirectory()) out.push(...sourceFiles(rel));
    // .as.ts is AssemblyScript (compiled to wasm, not by tsc).
    else if (
      ent.name.endsWith('.ts') &&
      !ent.name.endsWith('.as.ts') &&
      !ent.name.endsWith('.d.ts')
    )
      out.push(rel);
  }
  return out.sort();
}

function layerOf(file: string): Layer | undefined {
  const top = file.split('/')[0] as Layer;
  return LAYERS.includes(top) ? top : undefined;
}

function importsOf(file: string): Import[] {
  const text = readFileSync(join(root, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out: Import[] = [];
  const add = (spec: ts.Expression, typeOnly: boolean, dynamic: boolean) => {
    if (!ts.isStringLiteral(spec)) return;
    const line = sf.getLineAndCharacterOfPosition(spec.getStart(sf)).line + 1;
    const specifier = spec.text;
    let target: string | undefined;
    if (specifier.startsWith('.')) {
      const abs = resolve(dirname(join(root, file)), specifier.replace(/\.js$/, '.ts'));
      target = relative(root, abs).split(sep).join('/');
    }
    out.push({ specifier, typeOnly, dynamic, line, ...(target ? { target } : {}) });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            named !== undefined &&
            ts.isNamedImports(named) &&
            named.elements.length > 0 &&
            named.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, typeOnly, false);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const typeOnly =
        node.isTypeOnly ||
        (node.exportClause !== undefined &&
          ts.isNamedExports(node.exportClause) &&
          node.exportClause.elements.length > 0 &&
          node.exportClause.elements.every((e) => e.isTypeOnly));
      add(node.moduleSpecifier, typeOnly, false);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0]
    ) {
      add(node.arguments[0], false, true);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal as ts.Expression, true, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const files = LAYERS.flatMap((l) => (existsSync(join(root, l)) ? sourceFiles(l) : []));
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const where = (file: string, imp: Import) => `${file}:${imp.line} imports '${imp.specifier}'`;

/** Whether `file` loads tfjs when it is imported (its static value imports, transitively). */
function loadsTfjs(file: string, seen = new Set<string>()): boolean {
  if (seen.has(file)) return false;
  seen.add(file);
  return (graph.get(file) ?? []).some(
    (imp) =>
      !imp.typeOnly &&
      !imp.dynamic &&
      (imp.specifier.startsWith('@tensorflow/') ||
        (imp.target !== undefined && loadsTfjs(imp.target, seen))),
  );
}

/** The layer rules' verdict on one import: a sentence, or undefined when it is allowed. */
function problem(file: string, imp: Import): string | undefined {
  const from = layerOf(file)!;
  const rule = RULES[from];
  if (imp.target === undefined) {
    const pkg = imp.specifier;
    const open = (p: string) => p.endsWith(':') || p.endsWith('/');
    if (
      !rule.packages.some((p) =>
        open(p) ? pkg.startsWith(p) : pkg === p || pkg.startsWith(`${p}/`),
      )
    )
      return `${where(file, imp)}: ${from}/ may import only ${rule.packages.join(', ')} from outside the product`;
    if (from === 'sbi' && /^node:fs(\/|$)/.test(pkg) && !SBI_FS_FILES.includes(file))
      return `${where(file, imp)}: sbi/ touches the file system only in ${SBI_FS_FILES.join(', ')}`;
    if (pkg.startsWith('@tensorflow/') && !TFJS_FILES.includes(file))
      return `${where(file, imp)}: sbi/ imports tfjs through sbi/backend.ts (only ${TFJS_FILES.join(', ')} load it)`;
    return undefined;
  }
  if (!graph.has(imp.target))
    return `${where(file, imp)}, which is no product source file (${imp.target})`;
  const to = layerOf(imp.target);
  if (to === undefined) return `${where(file, imp)}: product code may not import ${imp.target}`;
  if (to === 'sbi' && from === 'sbi') {
    const sub = (f: string) => f.split('/')[1]!;
    if (SBI_FOLDERS_MAY_NOT[sub(file)]?.includes(sub(imp.target)))
      return `${where(file, imp)}: sbi/${sub(file)}/ may not import sbi/${sub(imp.target)}/`;
  }
  if (to === from) return undefined;
  if (rule.values.includes(to)) {
    if (from === 'results' && to === 'sbi' && !imp.typeOnly && loadsTfjs(imp.target))
      return `${where(file, imp)}: results/ may import from sbi/ only types and tfjs-free modules, and ${imp.target} loads tfjs`;
    return undefined;
  }
  if (imp.typeOnly && rule.types?.includes(to)) return undefined;
  const allowed = [...rule.values, ...(rule.types ?? []).map((t) => `types of ${t}`)];
  return `${where(file, imp)}: ${from}/ may import ${allowed.length ? allowed.join(', ') : 'no other layer'}, not ${to}/${imp.typeOnly ? ' (even types)' : ''}`;
}

/** Every cycle among the product files (static and dynamic imports, types included), one per strongly connected component. */
function cycles(): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const edges = (f: string) =>
    (graph.get(f) ?? [])
      .map((i) => i.target)
      .filter((t): t is string => t !== undefined && graph.has(t));
  const strong = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || edges(v).includes(v)) out.push(scc.sort());
    }
  };
  for (const f of files) if (!index.has(f)) strong(f);
  return out;
}

/** One path around a cycle within `scc`, starting at its first file, as "a -> b -> a". */
function cyclePath(scc: string[]): string {
  const inScc = new Set(scc);
  const start = scc[0]!;
  const path = [start];
  const seen = new Set([start]);
  const walk = (v: string): boolean => {
    for (const imp of graph.get(v) ?? []) {
      const w = imp.target;
      if (w === undefined || !inScc.has(w)) continue;
      if (w === start) {
        path.push(`${start} (${v}:${imp.line})`);
        return true;
      }
      if (seen.has(w)) continue;
      seen.add(w);
      path.push(w);
      if (walk(w)) return true;
      path.pop();
    }
    return false;
  };
  walk(start);
  return path.join(' -> ');
}

describe('import rules (ARCHITECTURE.md layer table)', () => {
  test('the product source files are found and parsed', () => {
    for (const l of LAYERS)
      assert.ok(
        files.some((f) => layerOf(f) === l),
        `no files in ${l}/`,
      );
    assert.ok([...graph.values()].some((imps) => imps.some((i) => i.typeOnly)));
    assert.ok([...graph.values()].some((imps) => imps.some((i) => i.dynamic)));
  });

  test('no layer imports one the table does not allow', () => {
    const problems = files.flatMap((f) => graph.get(f)!.flatMap((imp) => problem(f, imp) ?? []));
    assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
  });

  test('no import cycles', () => {
    const found = cycles().map(cyclePath);
    assert.deepEqual(found, [], `\n${found.join('\n')}`);
  });

  test('the rules catch what they are meant to', () => {
    const verdict = (file: string, specifier: string, typeOnly = false): string | undefined => {
      const target = specifier.startsWith('.')
        ? relative(root, resolve(root, dirname(file), specifier.replace(/\.js$/, '.ts')))
            .split(sep)
            .join('/')
        : undefined;
      const imp = { specifier, typeOnly, dynamic: false, line: 1, ...(target ? { target } : {}) };
      return problem(file, imp);
    };
    assert.match(verdict('activities/index.ts', '../workflows/messages.js')!, /not workflows/);
    assert.equal(verdict('activities/index.ts', '../sweeps/failures.js'), undefined);
    assert.match(verdict('activities/index.ts', '@temporalio/workflow')!, /outside the product/);
    assert.match(verdict('workflows/trial.ts', '../activities/index.js')!, /not activities/);
    assert.equal(verdict('workflows/trial.ts', '../activities/index.js', true), undefined);
    assert.match(verdict('sbi/estimators/maf.ts', '../attacks/ball.js')!, /sbi\/attacks/);
    assert.match(verdict('sbi/ops.ts', '@tensorflow/tfjs')!, /through sbi\/backend.ts/);
    assert.match(verdict('sbi/npe.ts', 'node:fs')!, /file system/);
    assert.match(verdict('results/report.ts', '../sbi/backend.js')!, /loads tfjs/);
    assert.equal(verdict('results/report.ts', '../sbi/backend.js', true), undefined);
    assert.match(verdict('sweeps/expand.ts', 'node:crypto')!, /outside the product/);
  });
});
