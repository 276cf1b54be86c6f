import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  decodeDocument,
  decodeNonFinite,
  encodeDocument,
  encodeNonFinite,
  encodeSetFields,
} from '../../../results/nonfinite.js';
import { storabilityProblem } from '../../../results/validate.js';

describe('non-finite encoding', () => {
  test('NaN and +-Infinity become null with markers, finite numbers are untouched', () => {
    const value = { a: 1, b: NaN, c: [0, Infinity, -Infinity], d: { e: -0.5, f: NaN } };
    const e = encodeNonFinite(value);
    assert.deepEqual(e.value, { a: 1, b: null, c: [0, null, null], d: { e: -0.5, f: null } });
    assert.deepEqual(e.markers, [
      { path: '/b', value: 'nan' },
      { path: '/c/1', value: 'inf' },
      { path: '/c/2', value: '-inf' },
      { path: '/d/f', value: 'nan' },
    ]);
    assert.equal(storabilityProblem(e.value), undefined);
    // The input is not modified.
    assert.ok(Number.isNaN(value.b));
    const back = decodeNonFinite(e.value, e.markers) as typeof value;
    assert.equal(back.a, 1);
    assert.ok(Number.isNaN(back.b));
    assert.deepEqual(back.c, [0, Infinity, -Infinity]);
    assert.ok(Number.isNaN(back.d.f));
    assert.equal(back.d.e, -0.5);
  });

  test('keys with / and ~ are escaped in the pointers (RFC 6901) and decode back', () => {
    const e = encodeNonFinite({ 'a/b': { '~c': NaN } });
    assert.deepEqual(e.markers, [{ path: '/a~1b/~0c', value: 'nan' }]);
    const back = decodeNonFinite(e.value, e.markers) as Record<string, Record<string, number>>;
    assert.ok(Number.isNaN(back['a/b']!['~c']));
  });

  test('a bare non-finite number encodes to null with the empty pointer', () => {
    const e = encodeNonFinite(-Infinity);
    assert.equal(e.value, null);
    assert.deepEqual(e.markers, [{ path: '', value: '-inf' }]);
    assert.equal(decodeNonFinite(e.value, e.markers), -Infinity);
  });

  test('typed arrays are stored as plain arrays', () => {
    const e = encodeNonFinite({ v: Float64Array.from([1, NaN]) });
    assert.deepEqual(e.value, { v: [1, null] });
    assert.deepEqual(e.markers, [{ path: '/v/1', value: 'nan' }]);
  });

  test('documents keep markers per top-level field and round-trip; Dates pass through', () => {
    const at = new Date(0);
    const doc = { _id: 'x', kl: { mean: NaN, max: Infinity }, nll: 2, cov: [NaN, 0.5], at };
    const enc = encodeDocument(doc);
    assert.deepEqual(enc.nonFinite, {
      kl: [
        { path: '/mean', value: 'nan' },
        { path: '/max', value: 'inf' },
      ],
      cov: [{ path: '/0', value: 'nan' }],
    });
    assert.equal(enc.at, at);
    assert.equal(storabilityProblem(enc), undefined);
    const dec = decodeDocument<typeof doc>(enc);
    assert.ok(Number.isNaN(dec.kl.mean));
    assert.equal(dec.kl.max, Infinity);
    assert.ok(Number.isNaN(dec.cov[0]!));
    assert.equal(dec.cov[1], 0.5);
    assert.equal(dec.nll, 2);
    assert.equal('nonFinite' in dec, false);
    // The stored form is left intact by decoding.
    assert.equal((enc.kl as Record<string, unknown>).mean, null);
  });

  test('undefined object properties are left out, as JSON does; in an array it stays (and is refused)', () => {
    const enc = encodeDocument({ _id: 'u', a: undefined, b: { c: undefined, d: 1 } });
    assert.deepEqual(enc, { _id: 'u', b: { d: 1 } });
    assert.equal('a' in enc, false);
    const arr = encodeNonFinite({ v: [1, undefined] }).value;
    assert.match(storabilityProblem(arr)!.problem, /undefined/);
  });

  test('a finite document has no nonFinite map', () => {
    const enc = encodeDocument({ _id: 'y', a: { b: [1, 2] } });
    assert.equal('nonFinite' in enc, false);
  });

  test('update fields carry their own markers, empty when finite (clearing old ones)', () => {
    const set = encodeSetFields({ summary: { testNll: NaN, valLoss: 1 }, status: 'failed' });
    assert.deepEqual(set, {
      summary: { testNll: null, valLoss: 1 },
      'nonFinite.summary': [{ path: '/testNll', value: 'nan' }],
      status: 'failed',
      'nonFinite.status': [],
    });
  });

  test('a marker that points at a non-null or missing value is an error', () => {
    assert.throws(() => decodeNonFinite({ a: 1 }, [{ path: '/a', value: 'nan' }]), /non-null/);
    assert.throws(
      () => decodeNonFinite({ a: 1 }, [{ path: '/b/c', value: 'nan' }]),
      /points nowhere/,
    );
  });
});
