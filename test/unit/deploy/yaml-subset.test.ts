import assert from 'node:assert/strict';
import { test } from 'node:test';
import { YamlSubsetError, parseYamlDocuments } from './yaml-subset.js';

test('the YAML subset: mappings, sequences, item mappings, scalars, flow lists, comments, documents', () => {
  const docs = parseYamlDocuments(
    [
      '# head',
      'a: 1',
      'b: "x # not a comment" # a comment',
      "c: 'it''s'",
      'd: [x, "y, z", 3]',
      'e:',
      '  - plain: mongodb://h:1/?r=s',
      '    n: null',
      '  - - nested',
      '  -',
      '    k: true',
      'f:',
      '- at the same indent',
      'g:',
      'w:',
      "  ['wrapped', 'flow: list']",
      '---',
      'h: "off"',
    ].join('\n'),
  );
  assert.deepEqual(docs, [
    {
      a: 1,
      b: 'x # not a comment',
      c: "it's",
      d: ['x', 'y, z', 3],
      e: [{ plain: 'mongodb://h:1/?r=s', n: null }, ['nested'], { k: true }],
      f: ['at the same indent'],
      g: null,
      w: ['wrapped', 'flow: list'],
    },
    { h: 'off' },
  ]);
});

test('what is outside the subset is an error naming the line', () => {
  assert.throws(() => parseYamlDocuments('a: &x 1'), YamlSubsetError);
  assert.throws(() => parseYamlDocuments('a: |\n  text'), /line 1/);
  assert.throws(() => parseYamlDocuments('a: 1\na: 2'), /duplicate key "a"/);
  assert.throws(() => parseYamlDocuments('a:\n  b: 1\n c: 2'), /line 3/);
  assert.throws(() => parseYamlDocuments('a: {b: 1}'), YamlSubsetError);
});
