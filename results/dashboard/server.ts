// The live dashboard: a read-only node:http server over the results database. GET only (anything
// else is 405), 127.0.0.1 unless told otherwise, a strict Content-Security-Policy, requests for a
// loopback server only under a loopback Host name (no DNS rebinding), and no credentials anywhere
// (the database is named by host and port only).
import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mongoHosts } from '../../infra/connections.js';
import { redact } from '../../infra/logger.js';
import { countTrials } from '../../sweeps/expand.js';
import type { SweepSpec } from '../../sweeps/types.js';
import type { SweepDoc, TrialCounts } from '../documents.js';
import { loadExamples } from '../example-figures.js';
import { ExampleStore } from '../examples.js';
import { figuresOf } from '../figures.js';
import { emptyTrialCounts } from '../trial-counts.js';
import { plotlyBundlePath, reportTables, sweepCurves } from '../report.js';
import { loadSearchReport } from '../search-report.js';
import type { ResultStore } from '../store.js';
import { diagnosticsRoute } from './diagnostics.js';
import { PAGE_CSS, PAGE_HTML, PAGE_SCRIPT } from './page.js';
import { ViewsApi } from './views-api.js';
import { VIEWS_CSS, VIEWS_SCRIPT } from './views/index.js';

export interface DashboardOptions {
  store: ResultStore;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default DEFAULT_PORT; 0 picks a free port. */
  port?: number;
  /** The database URI, for display only: shown as host:port, never with credentials. */
  mongoUri?: string;
  /** Called with a line (already redacted) for each failed request. */
  onError?: (message: string) => void;
}

export interface Dashboard {
  url: string;
  host: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export const DEFAULT_PORT = 8765;

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // Plotly sets inline styles on the elements it draws.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

const SWEEP_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'Content-Length': String(Buffer.byteLength(body)),
    ...extra,
  });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

/** The total a sweep will have: its spec's grid size, or what is registered when that fails. */
function expectedTrials(sweep: SweepDoc, counts: TrialCounts): number {
  try {
    return Math.max(counts.trials, countTrials(sweep.spec as unknown as SweepSpec));
  } catch {
    return counts.trials;
  }
}

function sweepSummary(sweep: SweepDoc, counts: TrialCounts) {
  return {
    id: sweep._id,
    name: sweep.name,
    status: sweep.status,
    counts,
    total: expectedTrials(sweep, counts),
    createdAt: sweep.createdAt.toISOString(),
    updatedAt: sweep.updatedAt.toISOString(),
    ...(sweep.completedAt ? { completedAt: sweep.completedAt.toISOString() } : {}),
  };
}

/** Loopback servers answer only to loopback Host names: a rebinding DNS name gets 421. */
function hostAllowed(req: IncomingMessage, boundHost: string): boolean {
  if (!LOOPBACK_HOSTS.has(boundHost)) return true;
  const h = req.headers.host;
  if (!h) return false;
  const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.split(':')[0]!;
  return LOOPBACK_HOSTS.has(name.toLowerCase());
}

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const { store } = opts;
  const host = opts.host ?? '127.0.0.1';
  const source = opts.mongoUri ? `MongoDB at ${redact(mongoHosts(opts.mongoUri))}` : '';
  // Curves are recomputed only when a sweep's status or trial counts move.
  const cache = new Map<string, { stamp: string; body: unknown }>();
  const views = new ViewsApi(store);
  const examples = new ExampleStore(store.db);

  async function sweepAndCounts(id: string): Promise<{ sweep: SweepDoc; counts: TrialCounts }> {
    if (!SWEEP_ID.test(id)) throw new HttpError(404, 'No sweep with this ID.');
    const sweep = await store.getSweep(id);
    if (!sweep) throw new HttpError(404, 'No sweep with this ID.');
    const counts = await store.trialCounts(id);
    return { sweep, counts };
  }

  async function curvesBody(id: string, withFigures: boolean): Promise<unknown> {
    const { sweep, counts } = await sweepAndCounts(id);
    // Examples arrive after the trials, while the counts stand still: their number joins the stamp.
    const asked = (sweep.spec as { evaluation?: { examples?: unknown } }).evaluation?.examples;
    const exampleCount =
      withFigures && asked !== undefined ? await examples.collection.countDocuments({}) : 0;
    const stamp = JSON.stringify([sweep.status, counts, withFigures, exampleCount]);
    const key = `${id}|${withFigures}`;
    const hit = cache.get(key);
    if (hit && hit.stamp === stamp) return hit.body;
    const { curves, source: from } = await sweepCurves(store, sweep);
    const summary = sweepSummary(sweep, counts);
    // A search sweep adds its front by round and hypervolume plots (results/search-report.ts).
    const search = withFigures ? await loadSearchReport(store, sweep) : undefined;
    const ex = withFigures ? await loadExamples(store, id, asked !== undefined) : undefined;
    const body = withFigures
      ? {
          sweep: summary,
          source: from,
          figures: [...figuresOf(curves), ...(search?.figures ?? []), ...(ex?.figures ?? [])],
          tables: [...reportTables(curves), ...(search?.tables ?? []), ...(ex ? [ex.table] : [])],
        }
      : { sweep: summary, source: from, curves };
    cache.set(key, { stamp, body });
    return body;
  }

  async function route(path: string, params: URLSearchParams, res: ServerResponse): Promise<void> {
    if (path === '/' || path === '/index.html') {
      send(res, 200, 'text/html; charset=utf-8', PAGE_HTML);
      return;
    }
    if (path === '/app.js') {
      send(res, 200, 'text/javascript; charset=utf-8', PAGE_SCRIPT);
      return;
    }
    if (path === '/app.css') {
      send(res, 200, 'text/css; charset=utf-8', PAGE_CSS);
      return;
    }
    if (path === '/views.js') {
      send(res, 200, 'text/javascript; charset=utf-8', VIEWS_SCRIPT);
      return;
    }
    if (path === '/views.css') {
      send(res, 200, 'text/css; charset=utf-8', VIEWS_CSS);
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204, SECURITY_HEADERS);
      res.end();
      return;
    }
    if (path === '/vendor/plotly.min.js') {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': 'text/javascript; charset=utf-8',
        'Cache-Control': 'max-age=3600',
      });
      createReadStream(plotlyBundlePath()).pipe(res);
      return;
    }
    if (path === '/api/sweeps') {
      const sweeps = await store.listSweeps();
      const counts = await store.trialCountsBySweep();
      const tags = await views.sweepTags();
      sendJson(res, 200, {
        source,
        sweeps: sweeps.map((s) => ({
          ...sweepSummary(s, counts.get(s._id) ?? emptyTrialCounts()),
          tags: tags.get(s._id) ?? {},
        })),
      });
      return;
    }
    // SBC and C2ST of a sweep: results/dashboard/diagnostics.ts.
    const diagnostics = await diagnosticsRoute(store, path);
    if (diagnostics) {
      if (diagnostics.kind === 'json') sendJson(res, diagnostics.status, diagnostics.body);
      else send(res, diagnostics.status, 'text/html; charset=utf-8', diagnostics.body);
      return;
    }
    const m = /^\/api\/sweeps\/([^/]+)(?:\/(curves|figures|trials))?$/.exec(path);
    if (m) {
      let id: string;
      try {
        id = decodeURIComponent(m[1]!);
      } catch {
        throw new HttpError(404, 'No sweep with this ID.');
      }
      if (m[2] === 'curves') sendJson(res, 200, await curvesBody(id, false));
      else if (m[2] === 'figures') sendJson(res, 200, await curvesBody(id, true));
      else if (m[2] === 'trials') {
        const { sweep, counts } = await sweepAndCounts(id);
        const trials = await store.listTrials(id);
        sendJson(res, 200, {
          sweep: sweepSummary(sweep, counts),
          trials: trials.map((t) => ({
            id: t._id,
            status: t.status,
            config: {
              task: t.config.task,
              estimator: t.config.estimator,
              defense: t.config.defense,
              beta: t.config.beta,
              ...(t.config.trainEps !== undefined ? { trainEps: t.config.trainEps } : {}),
              budget: t.config.budget,
              seed: t.config.seed,
            },
            summary: t.summary ?? null,
            error: t.error ? { type: t.error.type, message: redact(t.error.message) } : null,
          })),
        });
      } else {
        const { sweep, counts } = await sweepAndCounts(id);
        sendJson(res, 200, { sweep: sweepSummary(sweep, counts) });
      }
      return;
    }
    const answer = await views.answer(path, params);
    if (answer) {
      sendJson(res, answer.status, answer.body);
      return;
    }
    throw new HttpError(404, 'Not found.');
  }

  const server = createServer((req, res) => {
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      sendJson(res, 405, { error: 'This dashboard is read-only: only GET is allowed.' });
      return;
    }
    if (!hostAllowed(req, host)) {
      sendJson(res, 421, { error: 'Unexpected Host header.' });
      return;
    }
    let path: string;
    let params: URLSearchParams;
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      path = url.pathname;
      params = url.searchParams;
    } catch {
      sendJson(res, 400, { error: 'Bad request.' });
      return;
    }
    route(path, params, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        sendJson(res, err.status, { error: err.message });
        return;
      }
      opts.onError?.(
        redact(`dashboard: GET ${path} failed: ${(err as Error)?.message ?? String(err)}`),
      );
      sendJson(res, 503, { error: 'The results database did not answer; retrying.' });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? DEFAULT_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/`,
    host,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
