import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../../infra/config.js';

const root = '/srv/robustsbi';

function configError(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env, root);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  test('metrics address and worker versioning (issue 23)', () => {
    const d = loadConfig({}, root);
    assert.equal(d.metrics, undefined);
    assert.deepEqual(d.worker, { deploymentName: 'robustsbi', versioning: false });
    const c = loadConfig(
      {
        ROBUSTSBI_METRICS_ADDR: '0.0.0.0:9464',
        ROBUSTSBI_WORKER_DEPLOYMENT: 'sbi-prod',
        ROBUSTSBI_BUILD_ID: '0_2_0+abc',
        ROBUSTSBI_WORKER_VERSIONING: 'on',
      },
      root,
    );
    assert.deepEqual(c.metrics, { host: '0.0.0.0', port: 9464 });
    assert.deepEqual(c.worker, {
      deploymentName: 'sbi-prod',
      buildId: '0_2_0+abc',
      versioning: true,
    });
    assert.deepEqual(loadConfig({ ROBUSTSBI_METRICS_ADDR: '[::1]:9000' }, root).metrics, {
      host: '::1',
      port: 9000,
    });
    assert.match(
      configError({ ROBUSTSBI_METRICS_ADDR: '9464' }),
      /^ROBUSTSBI_METRICS_ADDR must be host:port/,
    );
    assert.match(configError({ ROBUSTSBI_METRICS_ADDR: 'h:65535' }), /port from 1 to 65534/);
    assert.match(
      configError({ ROBUSTSBI_WORKER_DEPLOYMENT: 'a.b' }),
      /^ROBUSTSBI_WORKER_DEPLOYMENT must be/,
    );
    assert.match(configError({ ROBUSTSBI_BUILD_ID: 'v1.0' }), /^ROBUSTSBI_BUILD_ID must be/);
    assert.match(
      configError({ ROBUSTSBI_WORKER_VERSIONING: 'maybe' }),
      /^ROBUSTSBI_WORKER_VERSIONING must be on or off/,
    );
  });

  test('defaults describe the embedded stack on loopback', () => {
    const c = loadConfig({}, root);
    assert.equal(c.temporal.address, '127.0.0.1:7233');
    assert.equal(c.temporal.namespace, 'default');
    assert.equal(c.temporal.external, false);
    assert.equal(c.mongo.uri, 'mongodb://127.0.0.1:27017/?directConnection=true&retryWrites=false');
    assert.equal(c.mongo.db, 'robustsbi');
    assert.equal(c.mongo.external, false);
    assert.equal(c.dataDir, '/srv/robustsbi/.data');
    assert.equal(c.log.file, '/srv/robustsbi/.data/logs/robustsbi.log');
    assert.equal(c.log.level, 'info');
    assert.equal(c.temporal.tls, undefined);
  });

  test('embedded ports move the default addresses', () => {
    const c = loadConfig(
      {
        ROBUSTSBI_TEMPORAL_PORT: '17233',
        ROBUSTSBI_MONGODB_PORT: '17017',
        ROBUSTSBI_DATA_DIR: 'x/y',
      },
      root,
    );
    assert.equal(c.temporal.address, '127.0.0.1:17233');
    assert.match(c.mongo.uri, /^mongodb:\/\/127\.0\.0\.1:17017\//);
    assert.equal(c.embedded.temporalUiPort, 8233);
    assert.equal(c.dataDir, '/srv/robustsbi/x/y');
  });

  test('TEMPORAL_ADDRESS and MONGODB_URI make the services external', () => {
    const c = loadConfig(
      {
        TEMPORAL_ADDRESS: 'temporal.example.org:7233',
        TEMPORAL_NAMESPACE: 'research',
        MONGODB_URI: 'mongodb+srv://u:p@cluster0.example.net/',
        MONGODB_DB: 'rabi',
      },
      root,
    );
    assert.equal(c.temporal.external, true);
    assert.equal(c.temporal.address, 'temporal.example.org:7233');
    assert.equal(c.temporal.namespace, 'research');
    assert.equal(c.mongo.external, true);
    assert.equal(c.mongo.uri, 'mongodb+srv://u:p@cluster0.example.net/');
    assert.equal(c.mongo.db, 'rabi');
  });

  test('blank values count as unset', () => {
    assert.equal(
      loadConfig({ TEMPORAL_ADDRESS: '  ', MONGODB_URI: '' }, root).temporal.external,
      false,
    );
  });

  test('a bad port is one sentence naming the variable and the value', () => {
    assert.equal(
      configError({ ROBUSTSBI_MONGODB_PORT: '12x' }),
      'ROBUSTSBI_MONGODB_PORT must be an integer from 1 to 65535 (got "12x").',
    );
    assert.match(
      configError({ ROBUSTSBI_TEMPORAL_PORT: '70000' }),
      /^ROBUSTSBI_TEMPORAL_PORT must be an integer from 1 to 65535 \(got "70000"\)\.$/,
    );
  });

  test('bad addresses, names and levels name their variable', () => {
    assert.match(
      configError({ TEMPORAL_ADDRESS: 'http://x:7233' }),
      /^TEMPORAL_ADDRESS must be host:port/,
    );
    assert.match(configError({ MONGODB_DB: 'a.b' }), /^MONGODB_DB must be a MongoDB database name/);
    assert.match(
      configError({ ROBUSTSBI_LOG_LEVEL: 'loud' }),
      /^ROBUSTSBI_LOG_LEVEL must be error, warn, info, debug/,
    );
    assert.match(configError({ TEMPORAL_NAMESPACE: 'has space' }), /^TEMPORAL_NAMESPACE must be/);
  });

  test('a bad MONGODB_URI is reported without echoing it (it may hold a password)', () => {
    const msg = configError({ MONGODB_URI: 'postgres://u:hunter2@h/' });
    assert.match(msg, /^MONGODB_URI must be a MongoDB connection string/);
    assert.doesNotMatch(msg, /hunter2/);
  });

  test('clashing ports are refused', () => {
    assert.match(
      configError({ ROBUSTSBI_TEMPORAL_PORT: '27017' }),
      /must be three different ports/,
    );
  });

  test('TLS files must exist and cert and key come together', () => {
    const dir = mkdtempSync(join(tmpdir(), 'robustsbi-tls-'));
    const cert = join(dir, 'c.pem');
    const key = join(dir, 'k.pem');
    writeFileSync(cert, 'x');
    writeFileSync(key, 'y');
    const c = loadConfig(
      {
        TEMPORAL_TLS_CERT: cert,
        TEMPORAL_TLS_KEY: key,
        TEMPORAL_TLS_SERVER_NAME: 'ns.tmprl.cloud',
      },
      root,
    );
    assert.deepEqual(c.temporal.tls, {
      certPath: cert,
      keyPath: key,
      serverName: 'ns.tmprl.cloud',
    });
    assert.match(
      configError({ TEMPORAL_TLS_CERT: cert }),
      /TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together/,
    );
    assert.match(
      configError({ TEMPORAL_TLS_CA: join(dir, 'missing.pem') }),
      /^TEMPORAL_TLS_CA names a file that does not exist/,
    );
  });
});
