// Reads a JSON fixture from test/fixtures/, found by walking up from the compiled test (dist/test/...)
// or the source (test/...), so the tests run from either tree.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function readFixture<T>(name: string): T {
  const rel = join('test', 'fixtures', name);
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, rel))) return JSON.parse(readFileSync(join(dir, rel), 'utf8')) as T;
    if (dirname(dir) === dir)
      throw new Error(`${rel} not found above ${fileURLToPath(import.meta.url)}`);
  }
}
