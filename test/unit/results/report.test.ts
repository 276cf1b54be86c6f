// The report: HTML escaping of database strings, the inline-script and JSON-block guards, and that
// every figure in the tables equals a recomputation straight from the raw evaluations.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { computeCurves, type CurveTrial } from '../../../results/curves.js';
import type { SweepDoc } from '../../../results/documents.js';
import { escapeHtml, inlineScriptSource, jsonForScript } from '../../../results/html.js';
import {
  buildReport,
  renderCsv,
  renderHtml,
  renderText,
  type SweepReport,
  type Table,
} from '../../../results/report.js';
import { LEVELS, syntheticSweep } from './fixtures.js';

const EVIL = '</script><script>alert(1)</script><!--';

function sweepDoc(name: string): SweepDoc {
  const t = new Date('2026-01-02T03:04:05Z');
  return {
    _id: 'abcdef0123456789',
    name,
    spec: {},
    specHash: 'abcdef0123456789',
    status: 'completed',
    counts: { trials: 12, queued: 0, running: 0, completed: 12, failed: 0, cancelled: 0 },
    codeVersion: 'test',
    createdAt: t,
    updatedAt: t,
  };
}

function synthetic(name = 'synthetic'): {
  report: SweepReport;
  trials: CurveTrial[];
  s: ReturnType<typeof syntheticSweep>;
} {
  const s = syntheticSweep('sw-report');
  const trials: CurveTrial[] = s.trials.map((t) => ({
    _id: t._id,
    status: 'completed',
    config: t.config,
    summary: s.summaries.get(t._id)!,
  }));
  const curves = computeCurves(s.sweepId, trials, s.evaluations as never);
  const sweep = sweepDoc(name);
  return { report: buildReport(sweep, sweep.counts, curves, 'stored'), trials, s };
}

const col = (t: Table, name: string) => t.columns.indexOf(name);
const table = (r: SweepReport, name: Table['name']) => r.tables.find((t) => t.name === name)!;
const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('escaping', () => {
  test('escapeHtml leaves no markup', () => {
    assert.equal(
      escapeHtml(`<a href="x" onclick='y'>&</a>`),
      '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });

  test('jsonForScript has no <, > or & and parses back to the same value', () => {
    const v = { name: EVIL, amp: 'a&b', sep: 'x\u2028y\u2029z' };
    const s = jsonForScript(v);
    assert.ok(!/[<>&\u2028\u2029]/.test(s));
    assert.deepEqual(JSON.parse(s), v);
  });

  test('inlineScriptSource removes every way out of a script element', () => {
    const src = 'var a="</script>",b="</SCRIPT >",c="<!--";';
    const out = inlineScriptSource(src);
    assert.ok(!/<\/script/i.test(out) && !out.includes('<!--'));
    // The same strings at run time.
    const run = new Function(`${out}; return [a, b, c];`) as () => string[];
    assert.deepEqual(run(), ['</script>', '</SCRIPT >', '<!--']);
  });

  test('a sweep named with markup renders as text in every part of the HTML report', () => {
    const { report } = synthetic(EVIL);
    const fakePlotly = 'window.Plotly={newPlot:function(){}};var s="</script><!--";';
    const html = renderHtml(report, fakePlotly);
    assert.ok(!html.includes('<script>alert(1)'));
    assert.ok(html.includes(`<h1>Sweep ${escapeHtml(EVIL)}</h1>`));
    assert.ok(html.includes(`<title>robustsbi report: ${escapeHtml(EVIL)}</title>`));
    // Exactly three script elements, each closed where it was meant to be.
    assert.equal(html.match(/<script\b/gi)!.length, 3);
    assert.equal(html.match(/<\/script>/gi)!.length, 3);
    const block = /<script type="application\/json" id="report-data">([^]*?)<\/script>/.exec(html);
    const data = JSON.parse(block![1]!) as { sweep: { name: string }; figures: unknown[] };
    assert.equal(data.sweep.name, EVIL);
    assert.equal(data.figures.length, report.figures.length);
    // The CSP allows exactly the two inline scripts, by hash.
    const csp = /Content-Security-Policy" content="([^"]*)"/.exec(html)![1]!.replace(/&#39;/g, "'");
    const scripts = [...html.matchAll(/<script>([^]*?)<\/script>/g)].map((m) => m[1]!);
    assert.equal(scripts.length, 2);
    for (const s of scripts) {
      const h = createHash('sha256').update(s, 'utf8').digest('base64');
      assert.ok(csp.includes(`'sha256-${h}'`), 'script hash in the CSP');
    }
    assert.match(csp, /default-src 'none'/);
  });

  test('CSV quotes separators and defuses formulas; text drops control characters', () => {
    const { report } = synthetic();
    const t = table(report, 'tradeoff');
    t.rows[0]![col(t, 'defense')] = 'a,"b"';
    t.rows[1]![col(t, 'defense')] = '=HYPERLINK("x")';
    t.rows[2]![col(t, 'defense')] = 'bell\u0007\u001b[2J';
    const csv = renderCsv(report, 'tradeoff').split('\r\n');
    assert.ok(csv[1]!.includes(',"a,""b""",'));
    assert.ok(csv[2]!.includes(`,"'=HYPERLINK(""x"")",`));
    const text = renderText(report);
    const controls = [...text].filter((ch) => ch.charCodeAt(0) < 0x20 && ch !== '\n');
    assert.deepEqual(controls, []);
    assert.ok(text.includes('bell??[2J'));
  });
});

describe('report figures equal a recomputation from the raw evaluations', () => {
  test('trade-off: mean rKL of L2 PGD at eps 2 and test NLL per trial, Pareto by brute force', () => {
    const { report, s } = synthetic();
    const t = table(report, 'tradeoff');
    assert.equal(t.rows.length, s.trials.length);
    const pts = s.trials.map((tr) => {
      const e = s.evaluations.find(
        (v) => v.trialId === tr._id && v.attack === 'l2pgd' && v.objective === 'rkl' && v.eps === 2,
      )!;
      return {
        id: tr._id,
        task: tr.config.task,
        x: e.kl.mean,
        y: s.summaries.get(tr._id)!.testNll,
        truth: e.groundTruth,
      };
    });
    for (const p of pts) {
      const row = t.rows.find((r) => r[col(t, 'trialId')] === p.id)!;
      assert.equal(row[col(t, 'meanKl')], p.x);
      assert.equal(row[col(t, 'meanNll')], p.y);
      // Against the analytic posterior: gaussian_linear's trials only.
      const g = p.truth;
      assert.deepEqual(
        [row[col(t, 'c2stTruth')], row[col(t, 'klQPTruth')], row[col(t, 'klPQTruth')]],
        g ? [g.c2st, g.klQP, g.klPQ] : [null, null, null],
        p.id,
      );
      assert.equal(g !== undefined, p.task === 'gaussian_linear');
      // Its training cost beside it: the trial summary's seconds and epochs.
      const summary = s.summaries.get(p.id)!;
      assert.equal(row[col(t, 'trainSeconds')], summary.trainSeconds);
      assert.equal(row[col(t, 'epochs')], summary.epochs);
      const dominated = pts.some(
        (q) => q.task === p.task && q.x <= p.x && q.y <= p.y && (q.x < p.x || q.y < p.y),
      );
      assert.equal(row[col(t, 'pareto')], !dominated, p.id);
    }
    // The plotted points are the table's.
    const plotted = report.figures
      .filter((f) => f.kind === 'tradeoff')
      .flatMap((f) => f.data.filter((d) => d.meta === 'data'))
      .flatMap((d) => (d.x as number[]).map((x, i) => `${x},${(d.y as number[])[i]}`))
      .sort();
    assert.deepEqual(plotted, pts.map((p) => `${p.x},${p.y}`).sort());
    // The hover of a gaussian_linear point names its ground-truth metrics; others have none.
    for (const f of report.figures.filter((g) => g.kind === 'tradeoff')) {
      const texts = f.data
        .filter((d) => d.meta === 'data')
        .flatMap((d) => (d.text as string[] | undefined) ?? []);
      assert.ok(texts.length > 0);
      for (const text of texts) {
        assert.equal(
          /vs\. true posterior: C2ST 0\.\d+, KL\(q\|\|p\) /.test(text),
          f.task === 'gaussian_linear',
          text,
        );
        assert.match(text, /<br>trained \d[\d.e-]* s, 3 epochs<br>/);
      }
    }
  });

  test('KL vs eps: per group and eps, the mean over seeds of the median and quantiles', () => {
    const { report, s } = synthetic();
    const t = table(report, 'kl_vs_eps');
    // 2 tasks x 2 attack/objective pairs x 3 defense settings x 3 eps.
    assert.equal(t.rows.length, 2 * 2 * 3 * 3);
    for (const row of t.rows) {
      const at = s.evaluations.filter((e) => {
        const tr = s.trials.find((x) => x._id === e.trialId)!;
        return (
          tr.config.task === row[col(t, 'task')] &&
          e.attack === row[col(t, 'attack')] &&
          e.objective === row[col(t, 'objective')] &&
          tr.config.defense === row[col(t, 'defense')] &&
          tr.config.beta === row[col(t, 'beta')] &&
          e.eps === row[col(t, 'eps')]
        );
      });
      assert.equal(at.length, 2, 'two seeds');
      assert.equal(row[col(t, 'trials')], 2);
      assert.ok(
        Math.abs((row[col(t, 'median')] as number) - meanOf(at.map((e) => e.kl.median))) < 1e-12,
      );
      assert.ok(Math.abs((row[col(t, 'q15')] as number) - meanOf(at.map((e) => e.kl.q15))) < 1e-12);
      assert.ok(Math.abs((row[col(t, 'q85')] as number) - meanOf(at.map((e) => e.kl.q85))) < 1e-12);
      assert.ok(
        Math.abs((row[col(t, 'mean')] as number) - meanOf(at.map((e) => e.kl.mean))) < 1e-12,
      );
    }
    const kl = report.figures.filter((f) => f.kind === 'kl_vs_eps');
    assert.equal(
      kl.reduce((n, f) => n + f.points, 0),
      t.rows.length,
    );
  });

  test('coverage: abs area per eps and clean, mean over seeds; the figure holds every level', () => {
    const { report, s } = synthetic();
    const t = table(report, 'coverage');
    assert.equal(t.rows.length, 2 * 2 * 3 * (3 + 1));
    for (const row of t.rows) {
      const eps = row[col(t, 'eps')];
      const at = s.evaluations.filter((e) => {
        const tr = s.trials.find((x) => x._id === e.trialId)!;
        return (
          tr.config.task === row[col(t, 'task')] &&
          e.attack === row[col(t, 'attack')] &&
          tr.config.defense === row[col(t, 'defense')] &&
          tr.config.beta === row[col(t, 'beta')] &&
          (eps === 'clean' ? e.eps === 0.5 : e.eps === eps)
        );
      });
      assert.equal(at.length, 2);
      const want = meanOf(
        at.map((e) => (eps === 'clean' ? e.coverageAbsArea.clean : e.coverageAbsArea.attacked)),
      );
      assert.ok(Math.abs((row[col(t, 'absArea')] as number) - want) < 1e-12);
    }
    const cov = report.figures.filter((f) => f.kind === 'coverage');
    assert.equal(
      cov.reduce((n, f) => n + f.points, 0),
      t.rows.length * LEVELS.length,
    );
  });

  test('CSV keeps every digit', () => {
    const { report } = synthetic();
    const t = table(report, 'tradeoff');
    const lines = renderCsv(report, 'tradeoff').trim().split('\r\n');
    assert.deepEqual(lines[0]!.split(','), t.columns);
    lines.slice(1).forEach((line, i) => {
      const cells = line.split(',');
      assert.equal(Number(cells[col(t, 'meanKl')]), t.rows[i]![col(t, 'meanKl')]);
      assert.equal(Number(cells[col(t, 'meanNll')]), t.rows[i]![col(t, 'meanNll')]);
    });
  });
});
