import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { addSecret, closeLogger, createLogger, redact, redactDeep } from '../../../infra/logger.js';

describe('redact', () => {
  test('masks the password in URIs of any scheme, keeping user and host', () => {
    assert.equal(
      redact('mongodb://alice:pa55w0rd@db.example.org:27017/x'),
      'mongodb://alice:***@db.example.org:27017/x',
    );
    assert.equal(
      redact('connect to mongodb+srv://bob:p%40ss@cluster0.example.net/?retryWrites=true failed'),
      'connect to mongodb+srv://bob:***@cluster0.example.net/?retryWrites=true failed',
    );
    assert.equal(
      redact('https://u:t0k@h/a and redis://:pw@r:6379'),
      'https://u:***@h/a and redis://:***@r:6379',
    );
  });

  test('masks credential query parameters', () => {
    assert.equal(
      redact(
        'mongodb://h/?tlsCertificateKeyFilePassword=abc&authSource=admin&authMechanismProperties=AWS_SESSION_TOKEN:xyz',
      ),
      'mongodb://h/?tlsCertificateKeyFilePassword=***&authSource=admin&authMechanismProperties=***',
    );
  });

  test('leaves URIs without credentials alone', () => {
    const s = 'mongodb://127.0.0.1:27017/?directConnection=true and 127.0.0.1:7233';
    assert.equal(redact(s), s);
  });

  test('masks registered secrets verbatim', () => {
    addSecret('tmprl-api-key-0123456789');
    assert.equal(redact('key tmprl-api-key-0123456789 used'), 'key *** used');
  });

  test('walks objects, arrays and errors', () => {
    const out = redactDeep({ a: ['mongodb://u:p1@h/'], e: new Error('bad mongodb://u:p2@h/') }) as {
      a: string[];
      e: { message: string };
    };
    assert.equal(out.a[0], 'mongodb://u:***@h/');
    assert.equal(out.e.message, 'bad mongodb://u:***@h/');
  });
});

describe('createLogger', () => {
  test('writes JSON lines to its file with credentials masked in message and metadata', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'robustsbi-log-')), 'logs', 'r.log');
    const logger = createLogger({ level: 'info', file, console: false });
    logger.info('connecting to mongodb://carol:topsecret@db:27017/r', {
      uri: 'mongodb://carol:topsecret@db/',
      nested: { list: ['x://a:topsecret@b'] },
    });
    logger.debug('below the level');
    logger.warn('second');
    await closeLogger(logger);
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /topsecret/);
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    assert.equal(lines[0]!.level, 'info');
    assert.equal(lines[0]!.message, 'connecting to mongodb://carol:***@db:27017/r');
    assert.equal(lines[0]!.uri, 'mongodb://carol:***@db/');
    assert.deepEqual(lines[0]!.nested, { list: ['x://a:***@b'] });
    assert.equal(typeof lines[0]!.timestamp, 'string');
    assert.equal(lines[1]!.message, 'second');
  });
});
