// The worker's one Prometheus endpoint, GET /metrics on ROBUSTSBI_METRICS_ADDR (or --metrics): robustsbi's
// own metrics followed by the Temporal SDK's. The SDK (1.24) can only export Prometheus from its own
// HTTP server, so it binds the neighbour port on loopback (sdkMetricsAddress) and each scrape here
// fetches its text and appends it; a scraper needs only this one address.
// (workers/metrics-address.ts places them.)
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HostPort } from '../infra/config.js';
import { formatHostPort } from './metrics-address.js';
import { PROMETHEUS_CONTENT_TYPE } from './prometheus-text.js';

/** The metrics address cannot be listened on; the message is one sentence for the user. */
export class MetricsAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricsAddressError';
  }
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

async function sdkText(sdk: HostPort | undefined): Promise<string> {
  if (!sdk) return '';
  try {
    const r = await fetch(`http://${formatHostPort(sdk)}/metrics`, {
      signal: AbortSignal.timeout(2000),
    });
    if (!r.ok) return `# Temporal SDK metrics unavailable: HTTP ${r.status}\n`;
    const t = await r.text();
    return t.endsWith('\n') || t === '' ? t : `${t}\n`;
  } catch (err) {
    return `# Temporal SDK metrics unavailable: ${(err as Error).message.replace(/\n/g, ' ')}\n`;
  }
}

/** Serves `render()` and the SDK's text (when `sdk` is given) at /metrics until close(). */
export function startMetricsServer(
  addr: HostPort,
  render: () => string,
  sdk?: HostPort,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Metrics are at /metrics.\n');
      return;
    }
    void sdkText(sdk).then((tail) => {
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(render() + tail);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new MetricsAddressError(
          `The metrics endpoint cannot listen on ${formatHostPort(addr)} (${err.code ?? err.message}); choose another address with --metrics or ROBUSTSBI_METRICS_ADDR.`,
        ),
      ),
    );
    server.listen(addr.port, addr.host, () => {
      server.removeAllListeners('error');
      const a = server.address() as AddressInfo;
      resolve({
        url: `http://${formatHostPort({ host: addr.host, port: a.port })}/metrics`,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
