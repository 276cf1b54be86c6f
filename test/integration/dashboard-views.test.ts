// The dashboard's views in Debian's headless Chromium over two sweeps seeded through the stores
// into the real MongoDB-protocol server: the trial table filters and sorts (on the server, a page
// at a time), a trial's page draws its stored learning curve and follows new epochs, the
// comparison overlays both sweeps, each URL opens its view, and a markup name, tag or note shows
// as text. Plus `robustsbi sweep tag | note` on the same data.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Db, MongoClient } from 'mongodb';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadConfig, projectRoot } from '../../infra/config.js';
import { mongoClient } from '../../infra/connections.js';
import { aggregateSweep } from '../../results/aggregate.js';
import { AnnotationStore } from '../../results/annotations.js';
import { startDashboard, type Dashboard } from '../../results/dashboard/server.js';
import { trialInputFromSweep } from '../../results/documents.js';
import { LearningCurveStore } from '../../results/learning-curves.js';
import { ResultStore } from '../../results/store.js';
import { evaluationPlan, expandSweep, sweepIdOf } from '../../sweeps/expand.js';
import type { SweepSpec } from '../../sweeps/types.js';
import { parseSweepSpec } from '../../sweeps/validate.js';
import { evaluation, lcg } from '../unit/results/fixtures.js';
import { robustsbi } from './harness.js';

// Browser globals used inside page callbacks (this project compiles without the DOM library).
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelectorAll(selector: string): { length: number };
  querySelector(selector: string): unknown;
};
declare const location: { hash: string };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HOSTILE = '<img src=x onerror=alert(1)>';
const dbName = `dashboard_views_${process.pid}_${Date.now()}`;

let client: MongoClient;
let db: Db;
let store: ResultStore;
let curves: LearningCurveStore;
let dash: Dashboard;
let browser: Browser;
let aId: string;
let bId: string;
let aTrials: string[];
let bTrials: string[];
/** testNll of each trial of sweep A, by trial ID. */
const nllOf = new Map<string, number>();

type Trial = ReturnType<typeof expandSweep>[number];

async function seed(spec: SweepSpec, rand: () => number, fail: number[] = []): Promise<string[]> {
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
  await store.setSweepStatus(id, 'running');
  for (const [i, t] of trials.entries()) {
    if (fail.includes(i)) await failTrial(t);
    else await completeTrial(t, rand);
  }
  await aggregateSweep(store, id);
  await store.setSweepStatus(id, 'completed');
  return trials.map((t) => t.trialId);
}

async function completeTrial(t: Trial, rand: () => number): Promise<void> {
  await store.transitionTrial(t.trialId, 'running', { attempt: 1 });
  await store.putEvaluations(
    evaluationPlan(t).map((e) =>
      evaluation(t.trialId, e.attack, e.objective as 'rkl', e.eps, rand),
    ),
  );
  const testNll = 2 + 3 * (t.defense.beta ?? 0) + rand();
  nllOf.set(t.trialId, testNll);
  await store.transitionTrial(t.trialId, 'completed', {
    attempt: 1,
    summary: { testNll, valLoss: 2, epochs: 3, trainSeconds: 1, droppedSims: 0 },
  });
}

async function failTrial(t: Trial): Promise<void> {
  await store.transitionTrial(t.trialId, 'running', { attempt: 1 });
  await store.transitionTrial(t.trialId, 'failed', {
    attempt: 1,
    error: { type: 'DivergedError', message: `loss diverged ${HOSTILE}`, nonRetryable: true },
  });
}

before(async () => {
  if (!process.env.MONGODB_URI)
    throw new Error('This test needs MONGODB_URI of a running server; run it with "npm test".');
  if (!existsSync(CHROMIUM))
    throw new Error(
      `Chromium is not at ${CHROMIUM}; install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH.`,
    );
  client = mongoClient(loadConfig(process.env));
  await client.connect();
  db = client.db(dbName);
  store = new ResultStore(db);
  await store.ensureIndexes();
  curves = new LearningCurveStore(db);
  const demo = parseSweepSpec(readFileSync(join(projectRoot(), 'sweeps', 'demo.json'), 'utf8'));
  // A: the demo's 4 trials (none, fim at 3 betas). B: markup for a name, seed 1, its fim 0.01 failed.
  const a = { ...demo, name: 'budget-2000' };
  const b = { ...demo, name: HOSTILE, seeds: [1] };
  aId = sweepIdOf(a);
  bId = sweepIdOf(b);
  aTrials = await seed(a, lcg(21));
  bTrials = await seed(b, lcg(22), [2]);
  // Three epochs of the first trial of A.
  for (const epoch of [1, 2, 3])
    await curves.putEpoch(aTrials[0]!, 'model', 1, {
      epoch,
      trainLoss: 5 - epoch,
      valLoss: 5.5 - epoch,
      bestValLoss: 5.5 - epoch,
    });
  const notes = new AnnotationStore(db);
  await notes.tag('trial', aTrials[1]!, { group: HOSTILE });
  await notes.tag('trial', aTrials[2]!, { group: 'baseline' });
  await notes.tag('sweep', bId, { owner: HOSTILE });

  dash = await startDashboard({ store, port: 0 });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await dash?.close();
  await db?.dropDatabase();
  await client?.close();
});

/** A page that records dialogs (a script from the data ran) and script errors. */
async function open(hash: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(dash.url + hash);
  return { page, problems };
}

/** Screenshots for a reader of the CI output, in test-output/. */
async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(join(projectRoot(), 'test-output'), { recursive: true });
  await page.screenshot({ path: join(projectRoot(), 'test-output', name), fullPage: true });
}

const cellsOf = (page: Page, column: string) =>
  page.$$eval(`#trial-table tbody td[data-column="${column}"]`, (tds) =>
    tds.map((td) => td.textContent),
  );
const rowIds = (page: Page) =>
  page.$$eval('#trial-table tbody tr', (trs) =>
    trs.map((tr) => (tr as unknown as { dataset: Record<string, string> }).dataset.trialId),
  );

describe('dashboard views', () => {
  test('the API pages, filters and sorts on the server, and says why a query is bad', async () => {
    const get = async (p: string) => {
      const r = await fetch(new URL(p, dash.url));
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    const page = await get(
      `/api/sweeps/${aId}/table?f=config.defense%3Dfim&sort=testNll&dir=desc&size=2&page=1`,
    );
    assert.equal(page.status, 200);
    assert.equal(page.body.total, 4);
    assert.equal(page.body.matched, 3);
    assert.equal(page.body.pages, 2);
    const fims = aTrials.filter((_, i) => i > 0).sort((x, y) => nllOf.get(y)! - nllOf.get(x)!);
    assert.deepEqual(
      (page.body.rows as { id: string }[]).map((r) => r.id),
      fims.slice(0, 2),
    );
    const bad = await get(`/api/sweeps/${aId}/table?dir=sideways`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'dir must be asc or desc (got "sideways").');
    assert.equal((await get('/api/trials/nope')).status, 404);
    assert.equal((await get('/api/compare?ids=')).status, 400);
  });

  test('the trial table opens from its URL, sorts by a header and filters by config and tag', async () => {
    const { page, problems } = await open(`#/sweep/${aId}`);
    await page.waitForFunction(
      () => document.querySelectorAll('#trial-table tbody tr').length === 4,
    );
    // The sweep's plots (page.ts) are drawn for the same URL.
    await page.waitForFunction((id) => document.body.dataset.drawnSweep === id, aId);

    await page.click('#trial-table th[data-column="testNll"]');
    await page.waitForFunction(() => /sort=testNll/.test(location.hash));
    const byNll = [...aTrials].sort((x, y) => nllOf.get(x)! - nllOf.get(y)!);
    await page.waitForFunction(
      (first) =>
        (document.querySelector('#trial-table tbody tr') as { dataset: Record<string, string> })
          ?.dataset.trialId === first,
      byNll[0],
    );
    assert.deepEqual(await rowIds(page), byNll);
    await page.click('#trial-table th[data-column="testNll"]');
    await page.waitForFunction(() => /dir=desc/.test(location.hash));
    await page.waitForFunction(
      (first) =>
        (document.querySelector('#trial-table tbody tr') as { dataset: Record<string, string> })
          ?.dataset.trialId === first,
      byNll[3],
    );
    assert.deepEqual(await rowIds(page), [...byNll].reverse());

    await page.fill('#trial-filter', 'config.defense=fim; config.beta<0.05');
    await page.press('#trial-filter', 'Enter');
    await page.waitForFunction(
      () => document.querySelectorAll('#trial-table tbody tr').length === 2,
    );
    assert.deepEqual((await cellsOf(page, 'config.beta')).sort(), ['0.001', '0.01']);

    // A tag filter, and the markup tag shown as text in its column.
    await page.fill('#trial-filter', 'tag.group~<img');
    await page.press('#trial-filter', 'Enter');
    await page.waitForFunction(
      () => document.querySelectorAll('#trial-table tbody tr').length === 1,
    );
    assert.deepEqual(await rowIds(page), [aTrials[1]]);
    assert.deepEqual(await cellsOf(page, 'tag.group'), [HOSTILE]);
    assert.equal(await page.$$eval('main img', (e) => e.length), 0);

    // Parallel coordinates over the completed trials passing the filter (none now: one tag
    // filter left one trial), then over all four once the filter is cleared.
    await page.fill('#trial-filter', '');
    await page.press('#trial-filter', 'Enter');
    await page.waitForFunction(
      () =>
        (document.querySelector('#parcoords') as { dataset: Record<string, string> }).dataset
          .lines === '4' && document.querySelectorAll('#parcoords .axis-title').length > 0,
    );
    const axes = await page.$$eval('#parcoords .axis-title', (t) => t.map((x) => x.textContent));
    assert.ok(
      axes.includes('beta') && axes.includes('defense') && axes.includes('testNll'),
      axes.join(),
    );
    assert.ok(
      axes.some((l) => l!.startsWith('kl.l2pgd.rkl@')),
      axes.join(),
    );
    assert.equal(await page.$$eval('#parcoords polyline.trial-line', (l) => l.length), 4);
    // A line leads to its trial's page.
    // (A click event: the centre of a line's bounding box need not lie on the line.)
    await page.dispatchEvent(`#parcoords polyline[data-trial-id="${aTrials[0]}"]`, 'click');
    await page.waitForFunction((id) => document.body.dataset.drawnTrial === id, aTrials[0]);
    await page.goBack();
    await page.waitForFunction(() => document.querySelectorAll('#parcoords polyline').length === 4);
    await shot(page, 'dashboard-sweep.png');

    // Sweep B's view shows its markup tag as text, and its failed trial's row.
    await page.goto(`${dash.url}#/sweep/${bId}`);
    await page.waitForFunction(
      (id) =>
        (document.querySelector('#views-sweep') as { dataset: Record<string, string> }).dataset
          .sweepId === id && document.querySelectorAll('#sweep-annotations .tag').length === 1,
      bId,
    );
    assert.equal(await page.textContent('#sweep-annotations .tag'), `owner=${HOSTILE}`);
    assert.deepEqual(await cellsOf(page, 'status'), [
      'completed',
      'completed',
      'failed',
      'completed',
    ]);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('the table of a running sweep follows its trials', async () => {
    const demo = parseSweepSpec(readFileSync(join(projectRoot(), 'sweeps', 'demo.json'), 'utf8'));
    const spec = { ...demo, name: 'running', seeds: [2] };
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
    await store.setSweepStatus(id, 'running');
    const { page, problems } = await open(`#/sweep/${id}`);
    await page.waitForFunction(
      () => document.querySelectorAll('#trial-table tbody tr').length === 4,
    );
    assert.deepEqual(await cellsOf(page, 'status'), ['queued', 'queued', 'queued', 'queued']);
    await completeTrial(trials[1]!, lcg(23));
    await page.waitForFunction(
      () =>
        (
          document.querySelector('#trial-table tbody tr:nth-child(2) td[data-column="status"]') as {
            textContent: string;
          } | null
        )?.textContent === 'completed',
      undefined,
      { timeout: 10_000 },
    );
    assert.deepEqual(await cellsOf(page, 'status'), ['queued', 'completed', 'queued', 'queued']);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('a trial URL opens its page: config, evaluations, curve, failure; new epochs appear live', async () => {
    const { page, problems } = await open(`#/trial/${aTrials[0]}`);
    await page.waitForFunction(
      (id) =>
        document.body.dataset.drawnTrial === id &&
        document.querySelectorAll('#trial-curve .main-svg').length > 0,
      aTrials[0],
    );
    assert.equal(await page.isVisible('#sweeps-section'), false);
    const curve = () =>
      page.$eval('#trial-curve', (d) =>
        (d as unknown as { data: { meta: string; x: number[]; y: number[] }[] }).data.map((t) => [
          t.meta,
          t.x,
          t.y,
        ]),
      );
    assert.deepEqual(await curve(), [
      ['train', [1, 2, 3], [4, 3, 2]],
      ['val', [1, 2, 3], [4.5, 3.5, 2.5]],
    ]);
    // demo: 2 attacks x 1 objective x 3 eps.
    assert.equal(await page.$$eval('#trial-evaluations tbody tr', (t) => t.length), 6);
    const config = await page.$$eval('#trial-config tr', (trs) => trs.map((tr) => tr.textContent));
    assert.ok(config.includes('defensenone'), config.join('|'));
    assert.ok(config.includes('architecture.hidden[50,50]'), config.join('|'));

    await curves.putEpoch(aTrials[0]!, 'model', 1, {
      epoch: 4,
      trainLoss: 1.5,
      valLoss: NaN,
      bestValLoss: 1.5,
    });
    await page.waitForFunction(
      () =>
        (document.querySelector('#trial-curve') as { dataset: Record<string, string> }).dataset
          .epochs === '4',
      undefined,
      { timeout: 10_000 },
    );
    assert.deepEqual((await curve())[1], ['val', [1, 2, 3, 4], [4.5, 3.5, 2.5, null]]);
    await shot(page, 'dashboard-trial.png');

    // The failed trial of B: its reason as text, its sweep's markup name as a link's text.
    await page.goto(`${dash.url}#/trial/${bTrials[2]}`);
    await page.waitForFunction((id) => document.body.dataset.drawnTrial === id, bTrials[2]);
    assert.equal(
      await page.textContent('#trial-failure'),
      `Failed: DivergedError: loss diverged ${HOSTILE} (not retried)`,
    );
    assert.equal(await page.textContent('#views-trial a.sweep-link'), HOSTILE);
    assert.equal(await page.$$eval('main img', (e) => e.length), 0);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('the comparison URL overlays both sweeps; markup names and tags are text', async () => {
    const { page, problems } = await open(`#/compare?ids=${aId},${bId}`);
    await page.waitForFunction(
      (ids) =>
        document.body.dataset.drawnCompare === ids &&
        document.querySelectorAll('#compare-kl .main-svg').length > 0,
      `${aId},${bId}`,
    );
    const sweepsIn = (id: string) =>
      page.$eval(`#${id}`, (d) => [
        ...new Set((d as unknown as { data: { meta: string }[] }).data.map((t) => t.meta)),
      ]);
    assert.deepEqual((await sweepsIn('compare-tradeoff')).sort(), [aId, bId].sort());
    assert.deepEqual((await sweepsIn('compare-kl')).sort(), [aId, bId].sort());
    // Trade-off points: A's 4 trials and B's 3 completed ones.
    const points = await page.$eval('#compare-tradeoff', (d) =>
      (d as unknown as { data: { name: string; mode: string; x: unknown[] }[] }).data
        .filter((t) => t.mode === 'markers')
        .map((t) => t.x.length),
    );
    assert.deepEqual(points, [4, 3]);
    const picked = await page.$$eval('#compare-picker li', (lis) =>
      lis.map((li) => li.textContent),
    );
    assert.ok(
      picked.some((t) => t!.includes(HOSTILE) && t!.includes(`owner=${HOSTILE}`)),
      picked.join('|'),
    );
    assert.match(
      (await page.textContent('#compare-meta'))!,
      /<img src=x onerror=alert\(1\)> \(completed\)/,
    );
    // The legend shows the name as text (Plotly gets it escaped).
    const legend = await page.$$eval('#compare-tradeoff .legendtext', (t) =>
      t.map((x) => x.textContent),
    );
    assert.ok(
      legend.some((t) => t!.startsWith(HOSTILE)),
      legend.join('|'),
    );
    await shot(page, 'dashboard-compare.png');
    assert.equal(await page.$$eval('main img', (e) => e.length), 0);

    // The sweeps list shows tags and filters by them.
    await page.goto(`${dash.url}#/`);
    // Three sweeps: A, B and the running one of the test before.
    await page.waitForFunction(() => document.querySelectorAll('#sweeps tbody tr').length === 3);
    await page.fill('#sweep-filter', 'owner=<img');
    await page.waitForFunction(() => document.querySelectorAll('#sweeps tbody tr').length === 1);
    assert.equal(await page.textContent('#sweeps tbody td.tags'), `owner=${HOSTILE}`);
    assert.deepEqual(problems, []);
    await page.close();
  });
});

describe('sweep tag and note', () => {
  const env = () => ({ ...process.env, MONGODB_DB: dbName });

  test('tags and notes land in MongoDB; bad keys and unknown IDs are one sentence', async () => {
    const ok = robustsbi(['sweep', 'tag', aId, 'budget=2000', 'estimator=maf'], env());
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), `sweep ${aId}: tags budget=2000 estimator=maf; 0 notes`);
    const note = robustsbi(['sweep', 'note', '--trial', aTrials[3]!, 'odd coverage'], env());
    assert.equal(note.code, 0, note.stderr);
    const notes = new AnnotationStore(db);
    assert.deepEqual((await notes.get('sweep', aId))!.tags, { budget: '2000', estimator: 'maf' });
    assert.deepEqual(
      (await notes.get('trial', aTrials[3]!))!.notes.map((n) => n.text),
      ['odd coverage'],
    );
    const bad = robustsbi(['sweep', 'tag', aId, 'a.b=1'], env());
    assert.equal(bad.code, 2);
    assert.equal(
      bad.stderr.trim(),
      'robustsbi: The tag key "a.b" must start with a letter and hold only letters, digits, "_" and "-" (at most 64 characters).',
    );
    const missing = robustsbi(['sweep', 'note', 'ffffffffffff', 'x'], env());
    assert.notEqual(missing.code, 0);
    assert.equal(
      missing.stderr.trim(),
      'robustsbi: No sweep with ID ffffffffffff is stored in MongoDB.',
    );
    // The trial's page gets the note.
    const r = await fetch(new URL(`/api/trials/${aTrials[3]}`, dash.url));
    const body = (await r.json()) as { annotation: { notes: { text: string }[] } };
    assert.deepEqual(
      body.annotation.notes.map((n) => n.text),
      ['odd coverage'],
    );
  });
});
