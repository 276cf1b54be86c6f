// The dashboard in Debian's headless Chromium (playwright-core, no downloaded browser) over a
// finished demo-sized sweep stored in the real MongoDB-protocol server of the test stack, plus the
// report command on the same data. The screenshot goes to test-output/dashboard.png.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Db, MongoClient } from 'mongodb';
import { chromium, type Browser } from 'playwright-core';
import { loadConfig, projectRoot } from '../../infra/config.js';
import { mongoClient } from '../../infra/connections.js';
import { aggregateSweep } from '../../results/aggregate.js';
import { startDashboard, type Dashboard } from '../../results/dashboard/server.js';
import { trialInputFromSweep } from '../../results/documents.js';
import { ExampleStore, exampleDoc } from '../../results/examples.js';
import { ResultStore } from '../../results/store.js';
import { evaluationPlan, expandSweep, proposedTrial, sweepIdOf } from '../../sweeps/expand.js';
import type { SweepSpec } from '../../sweeps/types.js';
import { parseSweepSpec, validateSweepSpec } from '../../sweeps/validate.js';
import { evaluation, lcg, LEVELS, syntheticGroundTruth } from '../unit/results/fixtures.js';
import { robustsbi } from './harness.js';

// Browser globals used inside page callbacks (this project compiles without the DOM library).
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelectorAll(selector: string): { length: number };
  querySelector(selector: string): { textContent: string | null } | null;
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const XSS_NAME = '<script>alert(1)</script>';
const root = projectRoot();

let client: MongoClient;
let db: Db;
let store: ResultStore;
let dash: Dashboard;
let browser: Browser;
let demoId: string;
let xssId: string;
let xssTrials: string[];
const dbName = `dashboard_test_${process.pid}_${Date.now()}`;

/** Registers a sweep's trials; completes the first `complete` of them with synthetic results. */
async function seed(spec: SweepSpec, complete: number, seed: number): Promise<string[]> {
  const id = sweepIdOf(spec);
  const rand = lcg(seed);
  await store.createSweep({
    _id: id,
    name: spec.name,
    spec: spec as unknown as Record<string, unknown>,
    specHash: id,
    codeVersion: 'test',
  });
  const trials = expandSweep(spec);
  await store.upsertTrials(trials.map((t) => trialInputFromSweep(id, t, 'test')));
  await store.setSweepStatus(id, 'running');
  for (const t of trials.slice(0, complete)) await completeTrial(t, rand);
  return trials.map((t) => t.trialId);
}

async function completeTrial(t: ReturnType<typeof expandSweep>[number], rand: () => number) {
  await store.transitionTrial(t.trialId, 'running', { attempt: 1 });
  const beta = t.defense.beta ?? 0;
  // gaussian_linear: every evaluation of the trial carries its ground-truth metrics.
  const groundTruth = syntheticGroundTruth(beta, t.seed);
  await store.putEvaluations(
    evaluationPlan(t).map((e) => ({
      ...evaluation(t.trialId, e.attack, e.objective as 'rkl', e.eps, rand),
      groundTruth,
    })),
  );
  await store.transitionTrial(t.trialId, 'completed', {
    attempt: 1,
    summary: {
      testNll: 2 + 3 * beta + rand(),
      valLoss: 2 + rand(),
      epochs: 20,
      trainSeconds: 10 * rand(),
      droppedSims: 0,
    },
  });
}

before(async () => {
  if (!process.env.MONGODB_URI) {
    throw new Error('This test needs MONGODB_URI of a running server; run it with "npm test".');
  }
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not at ${CHROMIUM}; install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH.`,
    );
  }
  const config = loadConfig(process.env);
  client = mongoClient(config);
  await client.connect();
  db = client.db(dbName);
  store = new ResultStore(db);
  await store.ensureIndexes();

  const demo = parseSweepSpec(readFileSync(join(root, 'sweeps', 'demo.json'), 'utf8'));
  demoId = sweepIdOf(demo);
  await seed(demo, expandSweep(demo).length, 11);
  await aggregateSweep(store, demoId);
  await store.setSweepStatus(demoId, 'completed');

  // A second, running sweep whose name is markup: it must show as text, and its progress must move.
  const xss = { ...demo, name: XSS_NAME, seeds: [1] };
  xssId = sweepIdOf(xss);
  xssTrials = await seed(xss, 0, 12);

  dash = await startDashboard({
    store,
    port: 0,
    // Display only: the page must show host:port and never these credentials.
    mongoUri: 'mongodb://alice:s3cretpw@127.0.0.1:27017/?authSource=admin',
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  await dash?.close();
  await db?.dropDatabase();
  await client?.close();
});

function rawGet(
  path: string,
  method = 'GET',
  host?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: dash.port,
        path,
        method,
        headers: host ? { host } : {},
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard', () => {
  test('binds 127.0.0.1, serves GET only, with a CSP, and only to loopback Host names', async () => {
    assert.equal(dash.host, '127.0.0.1');
    assert.equal(
      dash.server.address() && (dash.server.address() as { address: string }).address,
      '127.0.0.1',
    );
    const page = await rawGet('/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const r = await rawGet('/api/sweeps', method);
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET');
    }
    assert.equal((await rawGet('/api/sweeps', 'GET', 'evil.example:80')).status, 421);
    assert.equal((await rawGet('/api/sweeps/nope')).status, 404);
    const api = JSON.parse((await rawGet('/api/sweeps')).body) as { source: string };
    assert.equal(api.source, 'MongoDB at 127.0.0.1:27017');
  });

  test('Chromium shows the sweeps, the three plots with every point, and markup as text', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const dialogs: string[] = [];
    const problems: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    await page.goto(dash.url);
    await page.waitForFunction(() => document.querySelectorAll('#sweeps tbody tr').length === 2);

    const names = await page.$$eval('#sweeps tbody td.name', (tds) =>
      tds.map((td) => td.textContent),
    );
    assert.ok(names.includes(XSS_NAME), `names: ${JSON.stringify(names)}`);
    assert.ok(names.includes('demo'));
    assert.equal(await page.$$eval('main script', (s) => s.length), 0);
    const body = await page.textContent('body');
    assert.ok(!body!.includes('s3cretpw'), 'the password is not shown');
    assert.match(body!, /127\.0\.0\.1:27017/);

    await page.click(`#sweeps tr[data-sweep-id="${demoId}"]`);
    await page.waitForFunction(
      (id) =>
        document.body.dataset.drawnSweep === id &&
        document.querySelectorAll('#plots .plot .main-svg').length >= 3,
      demoId,
    );
    const plots = await page.$$eval('#plots .plot', (divs) =>
      divs.map((d) => {
        const data = (d as unknown as { data?: { meta?: string; x: unknown[]; y: unknown[] }[] })
          .data!;
        const mine = data.filter((t) => t.meta === 'data');
        return {
          kind: (d as unknown as { dataset: Record<string, string> }).dataset.kind,
          points: mine.reduce((s, t) => s + t.x.length, 0),
          xy: mine.flatMap((t) => t.x.map((x, i) => [x, t.y[i]])),
          drawnMarkers: d.querySelectorAll('.scatterlayer .trace .points path').length,
        };
      }),
    );
    assert.deepEqual(
      plots.map((p) => p.kind),
      ['tradeoff', 'kl_vs_eps', 'coverage'],
    );
    // Demo: 4 trials (none, fim at 3 betas); 2 attacks x 1 objective x 3 eps.
    const [tradeoff, kl, coverage] = plots;
    assert.equal(tradeoff!.points, 4);
    assert.equal(tradeoff!.drawnMarkers, 4, 'Plotly drew one marker per trial');
    assert.equal(kl!.points, 2 * 4 * 3);
    assert.equal(coverage!.points, 2 * 4 * (3 + 1) * LEVELS.length);

    // The trade-off points are the raw results: mean rKL of L2 PGD at eps 2 and the test NLL.
    const trials = await store.listTrials(demoId);
    const evals = await store.listEvaluations({ sweepId: demoId });
    const expected = trials.map((t) => {
      const e = evals.find((v) => v.trialId === t._id && v.attack === 'l2pgd' && v.eps === 2)!;
      return [e.kl.mean, t.summary!.testNll];
    });
    const sortXy = (a: unknown[][]) => [...a].sort((p, q) => Number(p[0]) - Number(q[0]));
    assert.deepEqual(sortXy(tradeoff!.xy), sortXy(expected));

    // The ground-truth metrics of every trial (gaussian_linear), as text, 4 significant digits.
    const truthRows = await page.$$eval('#truth-table tbody tr', (trs) =>
      trs.map((tr) => ({
        id: (tr as unknown as { dataset: Record<string, string> }).dataset.trialId,
        cells: [...tr.querySelectorAll('td.c2st, td.klqp, td.klpq')].map((td) => td.textContent),
      })),
    );
    assert.equal(truthRows.length, 4);
    assert.equal(
      await page.$eval('#truth', (d) => (d as unknown as { hidden: boolean }).hidden),
      false,
    );
    for (const r of truthRows) {
      const g = evals.find((v) => v.trialId === r.id)!.groundTruth!;
      assert.deepEqual(
        r.cells,
        [g.c2st, g.klQP, g.klPQ].map((v) => String(Number(v.toPrecision(4)))),
      );
    }

    mkdirSync(join(root, 'test-output'), { recursive: true });
    await page.screenshot({ path: join(root, 'test-output', 'dashboard.png'), fullPage: true });

    // Live: a trial of the running sweep completes, and its row moves within a few polls.
    const progressOf = () =>
      page.$eval(`#sweeps tr[data-sweep-id="${xssId}"] td.progress`, (td) => td.textContent);
    assert.equal((await progressOf())!.trim(), '0/4');
    const demo = parseSweepSpec(readFileSync(join(root, 'sweeps', 'demo.json'), 'utf8'));
    const xssTrial = expandSweep({ ...demo, name: XSS_NAME, seeds: [1] }).find(
      (t) => t.trialId === xssTrials[0],
    )!;
    await completeTrial(xssTrial, lcg(5));
    await page.waitForFunction(
      (id) =>
        document
          .querySelector(`#sweeps tr[data-sweep-id="${id}"] td.progress`)
          ?.textContent?.trim() === '1/4',
      xssId,
      { timeout: 10_000 },
    );

    // Selecting the markup-named sweep shows its name as text and its one-trial trade-off.
    await page.click(`#sweeps tr[data-sweep-id="${xssId}"]`);
    await page.waitForFunction(
      (id) =>
        document.body.dataset.drawnSweep === id &&
        document.querySelectorAll('#plots .plot .main-svg').length >= 3,
      xssId,
    );
    assert.equal(await page.textContent('#detail-title'), `Sweep ${XSS_NAME}`);
    assert.equal(await page.$$eval('#detail script', (s) => s.length), 0);
    // The sweep's diagnostics page (SBC, C2ST) is one click away.
    assert.equal(
      await page.getAttribute('#diagnostics-link', 'href'),
      `/sweeps/${encodeURIComponent(xssId)}/diagnostics`,
    );

    // The plots of the running sweep follow it: one trade-off point, then two.
    const tradeoffPoints = () =>
      page.$eval('#plots .plot[data-kind="tradeoff"]', (d) =>
        (d as unknown as { data: { meta?: string; x: unknown[] }[] }).data
          .filter((t) => t.meta === 'data')
          .reduce((n, t) => n + t.x.length, 0),
      );
    assert.equal(await tradeoffPoints(), 1);
    const second = expandSweep({ ...demo, name: XSS_NAME, seeds: [1] }).find(
      (t) => t.trialId === xssTrials[1],
    )!;
    await completeTrial(second, lcg(6));
    await page.waitForFunction(
      () => {
        const d = document.querySelector('#plots .plot[data-kind="tradeoff"]') as unknown as {
          data?: { meta?: string; x: unknown[] }[];
        } | null;
        return (
          (d?.data ?? []).filter((t) => t.meta === 'data').reduce((n, t) => n + t.x.length, 0) === 2
        );
      },
      undefined,
      { timeout: 10_000 },
    );

    assert.deepEqual(dialogs, [], 'no script from the database ran');
    assert.deepEqual(problems, []);
    await page.close();
  });
});

describe('dashboard, search sweep', () => {
  test('Chromium draws the front by round and the hypervolume per round', async () => {
    // The demo as a search: its none trial is round 0, two fim betas round 1, one round 2.
    const demo = parseSweepSpec(readFileSync(join(root, 'sweeps', 'demo.json'), 'utf8'));
    const spec = validateSweepSpec({
      ...demo,
      name: 'search-demo',
      defenses: [{ name: 'none' }],
      search: {
        space: [{ defense: 'fim', beta: { min: 1e-3, max: 1, scale: 'log' } }],
        objectives: [
          { metric: 'testNll' },
          { metric: 'kl', attack: 'l2pgd', objective: 'rkl', eps: 2 },
        ],
        budget: 4,
        batch: 2,
      },
    });
    const id = sweepIdOf(spec);
    await store.createSweep({
      _id: id,
      name: spec.name,
      spec: spec as unknown as Record<string, unknown>,
      specHash: id,
      codeVersion: 'test',
    });
    const grid = expandSweep(spec);
    const rounds = [0, 1, 1, 2];
    const trials = [
      ...grid,
      ...[1e-3, 1, 0.03162].map((beta, k) => proposedTrial(spec, { name: 'fim', beta }, 1 + k)),
    ];
    await store.upsertTrials(
      trials.map((t, i) => ({ ...trialInputFromSweep(id, t, 'test'), round: rounds[i]! })),
    );
    const rand = lcg(21);
    for (const t of trials) await completeTrial(t, rand);
    await store.setSweepStatus(id, 'completed');

    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(dash.url);
    await page.click(`#sweeps tr[data-sweep-id="${id}"]`);
    await page.waitForFunction(
      (sid) =>
        document.body.dataset.drawnSweep === sid &&
        document.querySelectorAll('#plots .plot[data-kind^="search"] .main-svg').length >= 2,
      id,
    );
    const search = await page.$$eval('#plots .plot[data-kind^="search"]', (divs) =>
      divs.map((d) => {
        const data = (d as unknown as { data: { meta?: string; name?: string; x: unknown[] }[] })
          .data;
        return {
          kind: (d as unknown as { dataset: Record<string, string> }).dataset.kind,
          points: data.filter((t) => t.meta === 'data').reduce((n, t) => n + t.x.length, 0),
          fronts: data.filter((t) => t.meta === 'front').map((t) => t.name),
        };
      }),
    );
    assert.deepEqual(search, [
      {
        kind: 'search_front',
        points: 4,
        fronts: ['front after round 0', 'front after round 1', 'front after round 2'],
      },
      { kind: 'search_hypervolume', points: 3, fronts: [] },
    ]);
    await page.close();
  });
});

describe('dashboard, adversarial examples', () => {
  test('Chromium draws the posterior marginals and predictives of each trial at its example', async () => {
    const demo = parseSweepSpec(readFileSync(join(root, 'sweeps', 'demo.json'), 'utf8'));
    const spec = validateSweepSpec({
      ...demo,
      name: 'examples-demo',
      seeds: [5],
      evaluation: { ...demo.evaluation, examples: { eps: 2 } },
    });
    const id = sweepIdOf(spec);
    await store.createSweep({
      _id: id,
      name: spec.name,
      spec: spec as unknown as Record<string, unknown>,
      specHash: id,
      codeVersion: 'test',
    });
    const trials = expandSweep(spec);
    await store.upsertTrials(trials.map((t) => trialInputFromSweep(id, t, 'test')));
    const rand = lcg(31);
    for (const t of trials) await completeTrial(t, rand);
    await store.setSweepStatus(id, 'completed');
    // Two parameters, x of 6 values as two named traces of 3.
    const examples = new ExampleStore(db);
    for (const [k, t] of trials.entries()) {
      const rows = (shift: number) =>
        Array.from({ length: 50 }, (_, r) => [r / 50 + shift * k, -r / 50]);
      await examples.put(
        exampleDoc(
          {
            index: k,
            theta: [0.5, -0.5],
            x: [1, 2, 3, 4, 5, 6],
            xAdv: [1.1, 2, 3, 4, 5, 6.1],
            eps: 2,
            epsAbs: 0.2,
            kl: 0.5,
            klAll: [0.5, 0.4, 0.3],
            posterior: { clean: rows(0), attacked: rows(1) },
            predictive: { clean: [[1, 2, 3, 4, 5, 6]], attacked: [[2, 3, 4, 5, 6, 7]] },
          },
          {
            trialId: t.trialId,
            task: t.task,
            paramNames: ['first', 'second'],
            xTraces: ['A', 'B'],
            attack: 'l2pgd',
            objective: 'rkl',
            nTest: 3,
            klMeanEvaluation: 0.4,
            predictiveKept: 5,
            artifact: `examples/${t.trialId}`,
          },
          new Date(),
        ),
      );
    }
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(dash.url);
    await page.click(`#sweeps tr[data-sweep-id="${id}"]`);
    const n = trials.length;
    await page.waitForFunction(
      ([sid, count]) =>
        document.body.dataset.drawnSweep === sid &&
        document.querySelectorAll('#plots .plot[data-kind^="example"] .main-svg').length >=
          2 * (count as number),
      [id, n] as const,
    );
    const drawn = await page.$$eval('#plots .plot[data-kind^="example"]', (divs) =>
      divs.map((d) => {
        const data = (d as unknown as { data: { meta?: string; xaxis?: string }[] }).data;
        return {
          kind: (d as unknown as { dataset: Record<string, string> }).dataset.kind,
          traces: data.filter((t) => t.meta === 'data').length,
          panels: new Set(data.map((t) => t.xaxis)).size,
        };
      }),
    );
    // Per trial: marginals (2 per parameter, 2 panels) and predictives (4 lines per named trace).
    assert.deepEqual(
      drawn,
      trials.flatMap(() => [
        { kind: 'example_marginals', traces: 4, panels: 2 },
        { kind: 'example_predictive', traces: 8, panels: 2 },
      ]),
    );
    await page.close();
  });
});

describe('report command', () => {
  const env = () => ({ ...process.env, MONGODB_DB: dbName });

  test('an unknown sweep ID is one sentence and a non-zero exit', () => {
    const r = robustsbi(['report', 'ffffffffffff'], env());
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim(), 'robustsbi: No sweep with ID ffffffffffff is stored in MongoDB.');
  });

  test('json and html of the seeded sweep hold the stored curves', () => {
    const r = robustsbi(['report', demoId, '--format', 'json'], env());
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      source: string;
      tables: { name: string; rows: unknown[][] }[];
    };
    assert.equal(j.source, 'stored');
    assert.equal(j.tables.find((t) => t.name === 'tradeoff')!.rows.length, 4);
    assert.equal(j.tables.find((t) => t.name === 'kl_vs_eps')!.rows.length, 24);

    // The HTML (Plotly inlined, about 5 MB) goes to a file.
    const dir = mkdtempSync(join(tmpdir(), 'report-'));
    const xssOut = join(dir, 'xss.html');
    const h = robustsbi(['report', xssId, '--format', 'html', '--out', xssOut], env());
    assert.equal(h.code, 0, h.stderr);
    const html = readFileSync(xssOut, 'utf8');
    assert.ok(!html.includes(XSS_NAME));
    assert.ok(html.includes('<h1>Sweep &lt;script&gt;alert(1)&lt;/script&gt;</h1>'));
  });

  test('the HTML report draws its plots offline in Chromium under its own CSP', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'report-')), 'demo.html');
    const r = robustsbi(['report', demoId, '--format', 'html', '--out', out], env());
    assert.equal(r.code, 0, r.stderr);
    const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    // Offline: the page may load nothing but itself.
    await page.route(/^(?!file:)/, (route) => {
      problems.push(`request: ${route.request().url()}`);
      return route.abort();
    });
    await page.goto(pathToFileURL(out).href);
    await page.waitForFunction(() => document.querySelectorAll('.plot .main-svg').length >= 3);
    const counts = await page.$$eval('.plot', (divs) =>
      divs.map((d) => {
        const data = (d as unknown as { data: { meta?: string; x: unknown[] }[] }).data;
        return data.filter((t) => t.meta === 'data').reduce((s, t) => s + t.x.length, 0);
      }),
    );
    assert.deepEqual(counts, [4, 2 * 4 * 3, 2 * 4 * (3 + 1) * LEVELS.length]);
    assert.deepEqual(problems, []);
    await page.close();
  });
});
