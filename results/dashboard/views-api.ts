// The JSON behind the dashboard's views (results/dashboard/views/): a sweep's trial table one page
// at a time, one trial (config, evaluations, learning curve, annotations), several sweeps' curves
// for comparison, and the sweeps' annotations. Read-only. A sweep's rows are built once per state
// of the sweep (its status and trial counts) or every ROWS_MAX_AGE_MS, and each request filters,
// sorts and pages them here, so a sweep of thousands of trials answers a page quickly.
import { redact } from '../../infra/logger.js';
import { AnnotationStore, type AnnotationDoc } from '../annotations.js';
import type { CurveDoc, EvaluationDoc, SweepDoc } from '../documents.js';
import { LearningCurveStore } from '../learning-curves.js';
import { sweepCurves } from '../report.js';
import type { ResultStore } from '../store.js';
import {
  applyTableQuery,
  columnsOf,
  parseTableQuery,
  QueryError,
  trialRow,
  withTags,
  type Row,
} from '../trial-table.js';

export const ROWS_MAX_AGE_MS = 10_000;
const ID = /^[A-Za-z0-9_.:-]{1,128}$/;
export const MAX_COMPARED = 8;
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/** An answer the server sends as JSON with this status. */
export interface ViewAnswer {
  status: number;
  body: unknown;
}

const notFound = (what: string): ViewAnswer => ({
  status: 404,
  body: { error: `No ${what} with this ID.` },
});

export function publicAnnotation(a: AnnotationDoc | null | undefined) {
  return {
    tags: { ...(a?.tags ?? {}) },
    notes: (a?.notes ?? []).map((n) => ({ text: n.text, at: n.at.toISOString() })),
  };
}

export class ViewsApi {
  private readonly annotations: AnnotationStore;
  private readonly curves: LearningCurveStore;
  private readonly curveCache = new Map<
    string,
    { stamp: string; value: { curves: CurveDoc[]; source: string } }
  >();
  private readonly rows = new Map<string, { stamp: string; at: number; rows: Promise<Row[]> }>();

  constructor(private readonly store: ResultStore) {
    this.annotations = new AnnotationStore(store.db);
    this.curves = new LearningCurveStore(store.db);
  }

  /** Answers the paths it knows (under /api/), undefined for others. */
  async answer(path: string, params: URLSearchParams): Promise<ViewAnswer | undefined> {
    let m = /^\/api\/sweeps\/([^/]+)\/table$/.exec(path);
    if (m) return this.table(decode(m[1]!), params);
    m = /^\/api\/trials\/([^/]+)$/.exec(path);
    if (m) return this.trial(decode(m[1]!));
    if (path === '/api/compare') return this.compare(params.get('ids') ?? '');
    if (path === '/api/annotations') {
      const all = await this.annotations.all('sweep');
      return {
        status: 200,
        body: { sweeps: Object.fromEntries([...all].map(([id, a]) => [id, publicAnnotation(a)])) },
      };
    }
    return undefined;
  }

  /** Every sweep's tags (for the sweeps list and its filter). */
  async sweepTags(): Promise<Map<string, Record<string, string>>> {
    const all = await this.annotations.all('sweep');
    return new Map([...all].map(([id, a]) => [id, { ...(a.tags ?? {}) }]));
  }

  /**
   * The sweep's rows. A finished sweep's rows change only with its document (a rerun moves its
   * status), so they are kept until it changes; a running sweep's are rebuilt when its trial counts
   * move, or after ROWS_MAX_AGE_MS (a retry changes a trial without moving the counts). Concurrent
   * requests (the table and the parallel coordinates) share one build.
   */
  private async sweepRows(sweep: SweepDoc): Promise<Row[]> {
    const finished = FINISHED.has(sweep.status);
    const stamp = finished
      ? JSON.stringify([sweep.status, sweep.updatedAt.getTime()])
      : JSON.stringify([sweep.status, await this.store.trialCounts(sweep._id)]);
    const hit = this.rows.get(sweep._id);
    if (hit && hit.stamp === stamp && (finished || Date.now() - hit.at < ROWS_MAX_AGE_MS))
      return hit.rows;
    const rows = this.buildRows(sweep._id);
    this.rows.set(sweep._id, { stamp, at: Date.now(), rows });
    rows.catch(() => this.rows.delete(sweep._id));
    return rows;
  }

  private async buildRows(sweepId: string): Promise<Row[]> {
    const trials = await this.store.listTrials(sweepId);
    const evals = await this.store.listEvaluations({ sweepId });
    const byTrial = new Map<string, EvaluationDoc[]>();
    for (const e of evals) {
      const list = byTrial.get(e.trialId) ?? [];
      list.push(e);
      byTrial.set(e.trialId, list);
    }
    return trials.map((t, i) => {
      const r = trialRow(t, byTrial.get(t._id) ?? [], i);
      if (typeof r.error === 'string') r.error = redact(r.error);
      return r;
    });
  }

  private async table(id: string, params: URLSearchParams): Promise<ViewAnswer> {
    if (!ID.test(id)) return notFound('sweep');
    const sweep = await this.store.getSweep(id);
    if (!sweep) return notFound('sweep');
    let query;
    try {
      query = parseTableQuery(params);
    } catch (e) {
      if (e instanceof QueryError) return { status: 400, body: { error: e.message } };
      throw e;
    }
    const trialTags = await this.annotations.all('trial');
    const tags = new Map([...trialTags].map(([k, a]) => [k, a.tags ?? {}]));
    const rows = withTags(await this.sweepRows(sweep), tags);
    const page = applyTableQuery(rows, query);
    return {
      status: 200,
      body: {
        sweep: { id: sweep._id, name: sweep.name, status: sweep.status },
        annotation: publicAnnotation(await this.annotations.get('sweep', sweep._id)),
        columns: columnsOf(rows),
        query,
        ...page,
      },
    };
  }

  private async trial(id: string): Promise<ViewAnswer> {
    if (!ID.test(id)) return notFound('trial');
    const t = await this.store.getTrial(id);
    if (!t) return notFound('trial');
    const [evals, curve, annotation, sweeps] = await Promise.all([
      this.store.listEvaluations({ trialId: id }),
      this.curves.get(id, typeof t.config.modelId === 'string' ? t.config.modelId : undefined),
      this.annotations.get('trial', id),
      Promise.all(t.sweepIds.map((s) => this.store.getSweep(s))),
    ]);
    return {
      status: 200,
      body: {
        trial: {
          id: t._id,
          status: t.status,
          attempt: t.attempt,
          config: t.config,
          summary: t.summary ?? null,
          error: t.error ? { ...t.error, message: redact(t.error.message) } : null,
          backend: t.backend ?? null,
          codeVersion: t.codeVersion,
          modelArtifact: t.modelArtifact ?? null,
          createdAt: t.createdAt.toISOString(),
          updatedAt: t.updatedAt.toISOString(),
          startedAt: t.startedAt?.toISOString() ?? null,
          endedAt: t.endedAt?.toISOString() ?? null,
          sweeps: sweeps
            .filter((s): s is SweepDoc => s !== null)
            .map((s) => ({ id: s._id, name: s.name })),
        },
        evaluations: evals.sort(byAttackThenEps).map((e) => ({
          attack: e.attack,
          objective: e.objective,
          eps: e.eps,
          epsAbs: e.epsAbs,
          nTest: e.nTest,
          klMean: e.kl.mean,
          klMedian: e.kl.median,
          nllClean: e.nllClean,
          nllAttacked: e.nllAttacked,
          coverageAbsArea: e.coverageAbsArea,
          groundTruth: e.groundTruth ?? null,
        })),
        curve: curve
          ? {
              trialId: curve.trialId,
              epochs: curve.epochs,
              // JSON has no NaN: a non-finite loss travels as null (a gap in the plot).
              trainLoss: curve.trainLoss.map(orNull),
              valLoss: curve.valLoss.map(orNull),
              bestValLoss: curve.bestValLoss.map(orNull),
              attempt: curve.attempt,
            }
          : null,
        annotation: publicAnnotation(annotation),
      },
    };
  }

  /** A sweep's curves, recomputed (for a running sweep) only when its state moves, as sweepRows. */
  private async curvesOf(sweep: SweepDoc): Promise<{ curves: CurveDoc[]; source: string }> {
    const stamp = FINISHED.has(sweep.status)
      ? JSON.stringify([sweep.status, sweep.updatedAt.getTime()])
      : JSON.stringify([sweep.status, await this.store.trialCounts(sweep._id)]);
    const hit = this.curveCache.get(sweep._id);
    if (hit && hit.stamp === stamp) return hit.value;
    const { curves, source } = await sweepCurves(this.store, sweep);
    const value = { curves: jsonSafe(curves), source: source as string };
    this.curveCache.set(sweep._id, { stamp, value });
    return value;
  }

  private async compare(idsText: string): Promise<ViewAnswer> {
    const ids = [...new Set(idsText.split(',').filter((s) => s !== ''))];
    if (ids.length === 0 || ids.length > MAX_COMPARED || !ids.every((i) => ID.test(i)))
      return {
        status: 400,
        body: { error: `ids must name 1 to ${MAX_COMPARED} sweeps, separated by commas.` },
      };
    const out: { id: string; name: string; status: string; source: string; curves: CurveDoc[] }[] =
      [];
    for (const id of ids) {
      const sweep = await this.store.getSweep(id);
      if (!sweep) return { status: 404, body: { error: `No sweep with ID ${id}.` } };
      const { curves, source } = await this.curvesOf(sweep);
      out.push({ id, name: sweep.name, status: sweep.status, source, curves });
    }
    return { status: 200, body: { sweeps: out } };
  }
}

function byAttackThenEps(a: EvaluationDoc, b: EvaluationDoc): number {
  const k = (e: EvaluationDoc) => `${e.attack}\u0000${e.objective}`;
  return k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : a.eps - b.eps;
}

function orNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/** Non-finite numbers as null (JSON.stringify does the same; explicit so the page can rely on it). */
function jsonSafe<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return '';
  }
}
