// `robustsbi dashboard` as a user starts it, against the test stack: with no --host it listens on
// 127.0.0.1 only (no other interface of this machine answers on its port), serves GET and refuses
// writes, and stops cleanly on SIGTERM.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { sharedStackEnv } from './harness.js';

const cliMain = (() => {
  const js = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
})();

let child: ChildProcess | undefined;

after(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
});

/** Whether something accepts a TCP connection at host:port. */
function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 2000 });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
  });
}

describe('robustsbi dashboard', () => {
  test('listens on 127.0.0.1 unless told otherwise, read-only, and stops on SIGTERM', async () => {
    child = spawn(
      process.execPath,
      [
        ...process.execArgv.filter((a) => !a.startsWith('--test')),
        cliMain,
        'dashboard',
        '--port',
        '0',
      ],
      { env: sharedStackEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve));
    const end = Date.now() + 60_000;
    const line = /Dashboard at (http:\/\/([^/:]+):(\d+)\/)/;
    let m = out.match(line);
    while (!m) {
      if (child.exitCode !== null) assert.fail(`the dashboard exited: ${err}`);
      if (Date.now() > end) assert.fail(`no dashboard line after 60 s: ${out} ${err}`);
      await new Promise((r) => setTimeout(r, 100));
      m = out.match(line);
    }
    const [, url, host, portText] = m;
    const port = Number(portText);
    assert.equal(host, '127.0.0.1');

    const page = await fetch(url!);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await fetch(new URL('/api/sweeps', url), { method, body: '{}' });
      assert.equal(r.status, 405, method);
    }
    // Every other address of this machine: nothing listens there on the dashboard's port.
    const others = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    for (const addr of others)
      assert.equal(await answers(addr, port), false, `the dashboard answers on ${addr}`);
    assert.equal(await answers('127.0.0.1', port), true);

    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    assert.doesNotMatch(err, /listens on/, 'no exposure warning on loopback');
  });
});
