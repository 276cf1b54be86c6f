import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalJson, CanonicalJsonError } from '../../../sweeps/canonical.js';
import {
  sha256Hex,
  shortHash,
  utf8Bytes,
  utf8Length,
  ID_HEX_LENGTH,
} from '../../../sweeps/hash.js';

const nodeSha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

describe('sha256 (pure JS)', () => {
  test('FIPS 180-2 / NIST vectors', () => {
    assert.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(
      sha256Hex('abc'),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    assert.equal(
      sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'),
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
    assert.equal(
      sha256Hex('a'.repeat(1_000_000)),
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
    );
  });

  test('agrees with node:crypto at every length around the padding boundaries', () => {
    let s = '';
    for (let n = 0; n <= 200; n++) {
      assert.equal(sha256Hex(s), nodeSha(s), `length ${n}`);
      s += String.fromCharCode(97 + ((n * 7) % 26));
    }
  });

  test('UTF-8 encoding matches Buffer, including astral characters and lone surrogates', () => {
    for (const s of ['é', '€uro', 'θ≈x̃', '😀 emoji', 'a\ud800b', '\udc00', 'mixed ¢ह€한𐍈']) {
      const expected = new Uint8Array(Buffer.from(s, 'utf8'));
      assert.deepEqual(utf8Bytes(s), expected, s);
      assert.equal(utf8Length(s), expected.length, s);
      assert.equal(sha256Hex(s), nodeSha(expected), s);
    }
  });

  test('short IDs are the first ID_HEX_LENGTH hex digits', () => {
    assert.equal(ID_HEX_LENGTH, 24);
    assert.equal(shortHash('abc'), 'ba7816bf8f01cfea414140de');
  });
});

describe('canonicalJson', () => {
  test('sorts keys at every level and drops whitespace', () => {
    assert.equal(
      canonicalJson({ b: 1, a: [1, { d: 2, c: 'x' }], é: null, A: true }),
      '{"A":true,"a":[1,{"c":"x","d":2}],"b":1,"é":null}',
    );
  });

  test('is independent of key insertion order', () => {
    const a = { x: { p: 1, q: [1, 2] }, y: 'z' };
    const b = { y: 'z', x: { q: [1, 2], p: 1 } };
    assert.equal(canonicalJson(a), canonicalJson(b));
  });

  test('normalizes number spellings and keeps array order', () => {
    const spelled = JSON.parse(
      '[1e-3, 0.001, 1.0E-3, 1.0, 100000, 1e5, -0, 1e21, 1e-7]',
    ) as number[];
    assert.equal(canonicalJson(spelled), '[0.001,0.001,0.001,1,100000,100000,0,1e+21,1e-7]');
    assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  });

  test('escapes strings as JSON does and leaves undefined properties out', () => {
    assert.equal(canonicalJson({ s: 'a"b\\c\n', u: undefined }), '{"s":"a\\"b\\\\c\\n"}');
  });

  test('refuses values without a JSON form', () => {
    assert.throws(() => canonicalJson({ a: NaN }), CanonicalJsonError);
    assert.throws(() => canonicalJson([Infinity]), CanonicalJsonError);
    assert.throws(() => canonicalJson({ d: new Date(0) }), CanonicalJsonError);
    assert.throws(() => canonicalJson([undefined]), CanonicalJsonError);
    assert.throws(() => canonicalJson({ f: () => 1 }), CanonicalJsonError);
  });
});
