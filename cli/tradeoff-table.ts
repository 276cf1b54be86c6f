// The accuracy-robustness trade-off of a finished sweep as a text table, read from its stored
// curves (results/curves.ts computed them): one row per trial, sorted by defense and strength.
import { tradeoffGap } from '../results/curves.js';
import type { CurveDoc, TradeoffCurveDoc } from '../results/documents.js';

const num = (v: number | null | undefined, digits = 3): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);

export function tradeoffTables(curves: readonly CurveDoc[]): string {
  const tradeoffs = curves.filter((c): c is TradeoffCurveDoc => c.kind === 'tradeoff');
  if (tradeoffs.length === 0) return 'No trade-off curve is stored for this sweep yet.';
  const out: string[] = [];
  for (const c of tradeoffs) {
    out.push(
      `${c.task}: test NLL (accuracy) against mean ${c.objective} KL under ${c.attack} at eps ${c.eps} (robustness); * = Pareto front`,
    );
    // Tasks with an analytic posterior (gaussian_linear): each trial against it as well.
    const truth = c.points.some((p) => p.groundTruth !== undefined);
    if (truth)
      out.push(
        'C2ST, KL(q||p), KL(p||q): the trained posterior against the analytic one on the clean test x',
      );
    const header = [
      'defense',
      'beta',
      'train eps',
      'estimator',
      'N',
      'seed',
      'KL',
      'NLL',
      ...(truth ? ['C2ST', 'KL(q||p)', 'KL(p||q)'] : []),
      '',
    ];
    const rows = [...c.points]
      .sort(
        (a, b) =>
          (a.defense < b.defense ? -1 : a.defense > b.defense ? 1 : 0) ||
          a.beta - b.beta ||
          (a.trainEps ?? 0) - (b.trainEps ?? 0) ||
          a.seed - b.seed,
      )
      .map((p) => [
        p.defense,
        String(p.beta),
        p.trainEps === undefined ? '-' : String(p.trainEps),
        p.estimator,
        String(p.budget),
        String(p.seed),
        num(p.x),
        num(p.y),
        ...(truth
          ? [num(p.groundTruth?.c2st), num(p.groundTruth?.klQP), num(p.groundTruth?.klPQ)]
          : []),
        p.pareto ? '*' : '',
      ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]) =>
      r
        .map((v, i) => v.padEnd(widths[i]!))
        .join('  ')
        .trimEnd();
    out.push(line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line));
    const gap = tradeoffGap(c);
    if (gap !== undefined) out.push(gap);
    out.push('');
  }
  return out.join('\n').trimEnd();
}
