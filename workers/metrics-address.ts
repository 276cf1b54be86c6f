// Where a worker's metrics are served. Pure and light: `robustsbi --help` loads the worker command,
// which places each supervised process's endpoint with it.
import type { HostPort } from '../infra/config.js';

/** Where the SDK's own exporter listens: the port after the worker's, on loopback only. */
export function sdkMetricsAddress(addr: HostPort): HostPort {
  if (addr.port >= 65535 || addr.port === 0)
    throw new Error(
      `The metrics port must be below 65535 and not 0: the Temporal SDK's exporter takes the next one (got ${addr.port}).`,
    );
  return { host: '127.0.0.1', port: addr.port + 1 };
}

/** The address of supervised process `index`: two ports each (robustsbi's, then the SDK's). */
export function processMetricsAddress(addr: HostPort, index: number): HostPort {
  return { host: addr.host, port: addr.port + 2 * index };
}

export const formatHostPort = (a: HostPort): string =>
  a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
