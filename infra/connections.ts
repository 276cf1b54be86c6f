// Connections to the two services, built from the Config so that the embedded stack and a real
// deployment differ only in settings. Workers use NativeConnection, clients use Connection; both
// take the same options.
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import type { Config } from './config.js';
import { addSecret, redact } from './logger.js';

export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

export function temporalConnectionOptions(config: Config): TemporalConnectionOptions {
  const { address, tls, apiKey } = config.temporal;
  addSecret(apiKey);
  const opts: TemporalConnectionOptions = { address };
  if (tls) {
    const t: TLSConfig = {};
    if (tls.serverName) t.serverNameOverride = tls.serverName;
    if (tls.caPath) t.serverRootCACertificate = readFileSync(tls.caPath);
    if (tls.certPath && tls.keyPath)
      t.clientCertPair = { crt: readFileSync(tls.certPath), key: readFileSync(tls.keyPath) };
    opts.tls = t;
  }
  if (apiKey) {
    opts.apiKey = apiKey;
    // API keys are only accepted over TLS (Temporal Cloud).
    opts.tls ??= true;
  }
  return opts;
}

/**
 * A client for config.mongo.uri that gives up quickly when nobody answers. A socket silent for two
 * minutes fails its operation, so an activity stuck on a wedged or frozen server is retried instead
 * of hanging until its own timeout (an hour for simulate).
 */
export function mongoClient(config: Config, timeoutMs = 5000): MongoClient {
  return new MongoClient(config.mongo.uri, {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: 120_000,
    appName: 'robustsbi',
  });
}

/** host:port list of a MongoDB URI without credentials or options, for messages. */
export function mongoHosts(uri: string): string {
  const m = /^mongodb(?:\+srv)?:\/\/(?:[^@/]*@)?([^/?]*)/.exec(uri);
  return m?.[1] || redact(uri);
}
