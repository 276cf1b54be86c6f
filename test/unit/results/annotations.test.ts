import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnnotationError, checkNote, parseTags } from '../../../results/annotations.js';
import { parseAnnotateArgs } from '../../../cli/sweep-annotate.js';
import { UserError } from '../../../cli/errors.js';

const SWEEP = '0123456789abcdef';

describe('tag and note parsing', () => {
  test('key=value pairs; a value may hold "=" and any text', () => {
    assert.deepEqual(
      parseTags(['budget=small', 'x_1=a=b', 'html=<img src=x onerror=alert(1)>', 'empty=']),
      {
        budget: 'small',
        x_1: 'a=b',
        html: '<img src=x onerror=alert(1)>',
        empty: '',
      },
    );
  });

  test('bad keys are one sentence naming the key', () => {
    for (const bad of ['a.b=1', '$x=1', '=1', '1st=1', 'a b=1', `${'k'.repeat(65)}=1`]) {
      assert.throws(
        () => parseTags([bad]),
        (e: Error) =>
          e instanceof AnnotationError &&
          /^The tag key ".*" must start with a letter/.test(e.message),
        bad,
      );
    }
    assert.throws(() => parseTags(['novalue']), /The tag "novalue" is not key=value\./);
    assert.throws(() => parseTags([]), /at least one tag/);
    assert.throws(() => parseTags([`k=${'v'.repeat(201)}`]), /at most 200/);
  });

  test('notes are trimmed and not empty', () => {
    assert.equal(checkNote('  rerun with more sims \n'), 'rerun with more sims');
    assert.throws(() => checkNote('   '), /The note is empty\./);
    assert.throws(() => checkNote('x'.repeat(2001)), /at most 2000/);
  });

  test('the CLI arguments: sweep or --trial, tags and --remove, one quoted note', () => {
    assert.deepEqual(parseAnnotateArgs('tag', [SWEEP, 'a=1', 'b=2']), {
      sub: 'tag',
      kind: 'sweep',
      id: SWEEP,
      tags: { a: '1', b: '2' },
      remove: [],
    });
    assert.deepEqual(parseAnnotateArgs('tag', ['--trial', `trial/${SWEEP}`, '--remove', 'a']), {
      sub: 'tag',
      kind: 'trial',
      id: SWEEP,
      tags: {},
      remove: ['a'],
    });
    assert.equal(parseAnnotateArgs('note', [SWEEP, 'looks good']).note, 'looks good');
    const userError = (re: RegExp) => (e: Error) => e instanceof UserError && re.test(e.message);
    assert.throws(() => parseAnnotateArgs('tag', []), userError(/needs a sweep ID first/));
    assert.throws(
      () => parseAnnotateArgs('tag', ['nothex!', 'a=1']),
      userError(/is not a sweep ID/),
    );
    assert.throws(() => parseAnnotateArgs('tag', [SWEEP, 'a.b=1']), userError(/tag key "a\.b"/));
    assert.throws(
      () => parseAnnotateArgs('tag', [SWEEP, 'a=1', '--remove', 'a']),
      userError(/both set and removed/),
    );
    assert.throws(
      () => parseAnnotateArgs('note', [SWEEP, 'a', 'b']),
      userError(/one note after the ID/),
    );
    assert.throws(
      () => parseAnnotateArgs('note', [SWEEP, 'x', '--remove', 'a']),
      userError(/--remove applies/),
    );
    assert.throws(
      () => parseAnnotateArgs('tag', [SWEEP, '--color']),
      userError(/Unknown or incomplete option "--color"/),
    );
  });
});
