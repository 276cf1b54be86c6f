// "Does it answer?" for each service: a real round trip, not a port check, so status means the server works.
import { Connection } from '@temporalio/client';
import type { Config } from './config.js';
import { mongoClient, mongoHosts, temporalConnectionOptions } from './connections.js';
import { redact } from './logger.js';

export interface Probe {
  ok: boolean;
  /** Server version, or the reason it does not answer (one clause, no trailing period). */
  detail: string;
}

function reason(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } };
  const msg = e?.cause?.message || e?.message || String(err);
  return redact(msg.split('\n')[0]!.replace(/\.$/, ''));
}

export async function probeTemporal(config: Config, timeoutMs = 3000): Promise<Probe> {
  let conn: Connection | undefined;
  try {
    conn = await Connection.connect({
      ...temporalConnectionOptions(config),
      connectTimeout: timeoutMs,
    });
    const deadline = new Date(Date.now() + timeoutMs);
    const info = await conn.withDeadline(deadline, () => conn!.workflowService.getSystemInfo({}));
    try {
      await conn.withDeadline(new Date(Date.now() + timeoutMs), () =>
        conn!.workflowService.describeNamespace({ namespace: config.temporal.namespace }),
      );
    } catch (err) {
      return {
        ok: false,
        detail: `it answers but namespace "${config.temporal.namespace}" is not usable (${reason(err)})`,
      };
    }
    return { ok: true, detail: `server ${info.serverVersion || 'unknown version'}` };
  } catch (err) {
    return { ok: false, detail: reason(err) };
  } finally {
    await conn?.close().catch(() => {});
  }
}

export async function probeMongo(config: Config, timeoutMs = 3000): Promise<Probe> {
  const client = mongoClient(config, timeoutMs);
  try {
    await client.connect();
    const db = client.db(config.mongo.db);
    await db.command({ ping: 1 });
    const info = await db.command({ buildInfo: 1 });
    const ferret =
      typeof info.ferretdbVersion === 'string' ? `FerretDB ${info.ferretdbVersion}, ` : '';
    return { ok: true, detail: `${ferret}MongoDB protocol ${String(info.version)}` };
  } catch (err) {
    return { ok: false, detail: reason(err) };
  } finally {
    await client.close().catch(() => {});
  }
}

/** The sentence a user sees when a service does not answer. */
export function unreachableSentence(
  service: 'temporal' | 'mongodb',
  config: Config,
  probe: Probe,
): string {
  return service === 'temporal'
    ? `The Temporal server at ${config.temporal.address} does not answer (${probe.detail}).`
    : `The MongoDB server at ${mongoHosts(config.mongo.uri)} does not answer (${probe.detail}).`;
}
