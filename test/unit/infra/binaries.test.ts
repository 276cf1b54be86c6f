import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  BinaryError,
  cachedPath,
  ensureBinary,
  findOnPath,
  locateBinary,
  toolsDir,
} from '../../../infra/binaries.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'robustsbi-bin-'));
}

function fakeExecutable(dir: string, name: string): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, '#!/bin/sh\nexit 0\n');
  chmodSync(p, 0o755);
  return p;
}

describe('binaries', () => {
  test('the cache folder is per user, keyed by version, and overridable', () => {
    assert.equal(toolsDir({ HOME: '/home/r' }), '/home/r/.cache/robustsbi/tools');
    assert.equal(toolsDir({ HOME: '/home/r', XDG_CACHE_HOME: '/c' }), '/c/robustsbi/tools');
    assert.equal(toolsDir({ HOME: '/home/r', ROBUSTSBI_TOOLS_DIR: '/opt/t' }), '/opt/t');
    assert.equal(
      cachedPath('temporal', { ROBUSTSBI_TOOLS_DIR: '/opt/t' }),
      '/opt/t/temporal-v1.5.1/temporal',
    );
    assert.equal(
      cachedPath('ferretdb', { ROBUSTSBI_TOOLS_DIR: '/opt/t' }),
      '/opt/t/ferretdb-v1.24.2/ferretdb',
    );
  });

  test('PATH wins over the cache, and non-executables are skipped', () => {
    const d = tmp();
    const bin = join(d, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'temporal'), 'not executable');
    const cached = fakeExecutable(join(d, 'tools', 'temporal-v1.5.1'), 'temporal');
    const env = { PATH: bin, ROBUSTSBI_TOOLS_DIR: join(d, 'tools') };
    assert.equal(findOnPath('temporal', env), undefined);
    assert.equal(locateBinary('temporal', env), cached);
    const onPath = fakeExecutable(join(d, 'bin2'), 'temporal');
    assert.equal(locateBinary('temporal', { ...env, PATH: `${join(d, 'bin2')}:${bin}` }), onPath);
  });

  test('a cached binary is reused without Go', async () => {
    const d = tmp();
    const cached = fakeExecutable(join(d, 'ferretdb-v1.24.2'), 'ferretdb');
    assert.equal(
      await ensureBinary('ferretdb', { env: { PATH: '', ROBUSTSBI_TOOLS_DIR: d } }),
      cached,
    );
  });

  test('without Go and without the binary, one sentence says what to install', async () => {
    const d = tmp();
    await assert.rejects(
      ensureBinary('temporal', { env: { PATH: join(d, 'empty'), ROBUSTSBI_TOOLS_DIR: d } }),
      (err: unknown) => {
        assert.ok(err instanceof BinaryError);
        assert.match(
          err.message,
          /^The Go toolchain .* is needed once to build the Temporal CLI and FerretDB; install it/,
        );
        assert.equal(err.message.split('. ').length, 1);
        return true;
      },
    );
  });
});
